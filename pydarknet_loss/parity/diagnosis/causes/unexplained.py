"""unexplained: what no cause's model reproduces."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..evidence import Evidence
from ..model import Array, CauseSpec, cells_of, cells_str, role_name


def message(arr: Array, ev: Optional[Evidence], sel: np.ndarray, parts: str) -> str:
    idx = np.argwhere(sel)
    roles = sorted({role_name(arr, int(e)) for e in idx[:, 2]})
    if getattr(arr.layer, "kind", None) in ("region_ab", "detection"):  # no decision record
        return (f"for {arr.layer.kind} only the generic causes are recognised (layout, sign, scale, NaN); "
                f"compare the deltas there term by term. Differences at {', '.join(roles)} entries.")
    if ev is None:
        return ("no model could be tried: pass input= and truth= (a golden case carries both) so that the oracle's "
                f"decisions explain each element. Differences at {', '.join(roles)} entries.")
    hint = ("compare the targets there with the oracle's (pdl.implied.select gives each element's target and scale)"
            if ev.kind != "yolo_ab" else
            "none of the AlexeyAB causes in the README's table reproduces them alone (two departures acting on one "
            "cell have no joint model); report.assignment shows darknet's decision per cell beside yours, and "
            "parts= judges the other parts while you look")
    where = f"; the parts table says how your values relate to darknet's there ({parts})" if parts else ""
    return (f"no cause's model reproduces these {arr.name} elements ({', '.join(roles)} entries at "
            f"{cells_str(ev, cells_of(sel))}){where}; {hint}.")


CAUSE = CauseSpec(
    code="unexplained", stage="residual", parts=("*",),
    summary="none of the models above reproduces the value",
    recognised="no model reproduces the value; the message lists where, and `report.parts` how your values relate "
               "to darknet's on each part")

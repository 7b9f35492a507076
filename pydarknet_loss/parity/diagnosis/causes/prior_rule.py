"""prior_rule: [region]'s seen < 12800 pull of every box towards its anchor."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim


def prior_rule(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    if ev.kind != "region":
        return None
    free = ~ev.e_assigned()
    box = arr.role_mask(range(4), free)
    if ev.seen < 12800:
        mask = box & (arr.E != 0) & (arr.A == 0)
    else:
        mask = box & (arr.E == 0) & (arr.A != 0)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        if ev.seen < 12800:
            return (f"while seen < 12800 (here {ev.seen}) upstream pulls every cell's box towards its anchor at the "
                    "cell centre (scale .01); the implementation leaves those box deltas 0. Add the prior term "
                    "while seen < 12800.")
        return (f"upstream's prior pull of every box towards its anchor stops once seen >= 12800 (here "
                f"{ev.seen}); the implementation still applies it. Drop it from seen = 12800 on.")
    return Claim(mask, say=say)

CAUSE = CauseSpec(
    code="prior_rule", stage="decision", model=prior_rule, kinds=("region",), parts=("prior", "none"),
    summary="`[region]`: the `seen < 12800` pull of every box towards its anchor, missed or applied after it",
    recognised="box deltas of unassigned cells: 0 in yours, darknet's prior in its (or the reverse)")

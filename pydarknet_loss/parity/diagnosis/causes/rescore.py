"""rescore: [region]'s objectness target, the IoU (rescore=1) or 1."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim


def rescore(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    if ev.kind != "region" or ev.layer.background:
        return None
    o = arr.obj
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    alt = np.zeros(cells.shape, np.float64)
    s = float(ev.layer.object_scale)
    for (b, a, j, i), rows in ev.assigned.items():
        t = rows[-1]
        y = float(ev.Y[b, a, o, j, i])
        iou = float(ev.rec["row_iou"][b, t])
        alt[b, a, j, i] = s * ((1.0 if ev.layer.rescore else iou) - y)
        cells[b, a, j, i] = True
    ok = np.abs(arr.A64[:, :, o] - alt) <= 1e-4 * np.abs(alt) + 4 * arr.bound[:, :, o] + 1e-12
    mask = arr.role_mask([o], cells & ok)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        if ev.layer.rescore:
            return ("with rescore=1 upstream's objectness target at an assigned cell is the IoU of the predicted box "
                    "with the truth; the implementation used 1. Use the IoU as the target.")
        return "with rescore=0 upstream's objectness target is 1; the implementation used the IoU. Use 1."
    return Claim(mask, say=say)

CAUSE = CauseSpec(
    code="rescore", stage="decision", model=rescore, kinds=("region",), parts=("objectness.positive",),
    summary="`[region]`: objectness target 1 where rescore makes it the IoU, or the reverse",
    recognised="your objectness is `object_scale·(1 − p)` (or `·(IoU − p)`)")

"""box_scale: box deltas without (or with twice) the 2 - w*h factor."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str


def box_scale(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    cells = ev.e_assigned()
    S = np.where(ev.sel.has, ev.sel.scale, np.nan)
    box = arr.role_mask(range(4), cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        dropped = arr.close(arr.A64, arr.E64 / S) | arr.close(arr.A64, arr.E64 * S)
    mask = box & dropped & (np.abs(S - 1) > 1e-6)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        return ("upstream scales every box delta of an assigned cell by 2 - w*h of its truth (small boxes weigh up "
                "to twice as much); the implementation's box deltas differ from upstream's by exactly that factor "
                f"({cells_str(ev, cells_of(sel))}). Multiply by (2 - w*h).")
    return Claim(mask, say=say)

CAUSE = CauseSpec(
    code="box_scale", stage="decision", model=box_scale, kinds=("yolo", "region"),
    parts=("box.x", "box.y", "box.w", "box.h"),
    summary="box deltas off by the `2 − w·h` factor",
    recognised="your box delta is darknet's divided (or multiplied) by its recorded scale")

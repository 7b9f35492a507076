"""box_scale: box deltas without (or with twice) the 2 - w*h factor."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str


def box_scale(arr: Array) -> Optional[Claim]:
    ev = arr.ev
    assert ev is not None
    cells = ev.e_assigned() & arr.fail[:, :, :4].any(axis=2)
    b, a, j, i = np.nonzero(cells)
    if not b.size:
        return None
    # Only the box entries of assigned cells with a failing one.
    ix = (b, a, slice(0, 4), j, i)
    S = np.where(ev.sel_ix("has", ix), ev.sel_ix("scale", ix), np.nan)
    A, E, bound = arr.a64_ix(ix), arr.e64_ix(ix), 4 * arr.bound_ix(ix)
    with np.errstate(invalid="ignore", divide="ignore"):
        dropped = (np.abs(A - E / S) <= 1e-4 * np.abs(E / S) + bound + 1e-30) | \
            (np.abs(A - E * S) <= 1e-4 * np.abs(E * S) + bound + 1e-30)
    keep = dropped & (np.abs(S - 1) > 1e-6)
    if not keep.any():
        return None
    mask = np.zeros(arr.E.shape, bool)
    k, e = np.nonzero(keep)
    mask[b[k], a[k], e, j[k], i[k]] = True
    mask &= arr.fail

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

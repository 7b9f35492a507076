"""objectness_target: a [yolo] assigned cell's objectness target other than 1."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str


def objectness_target(arr: Array) -> Optional[Claim]:
    """At cells given a truth: the implementation's objectness is t' − p
    with t' the IoU of the predicted box with that truth (as [region]'s
    rescore), or one constant below 1 (a smoothed target)."""
    ev = arr.ev
    if ev is None or ev.kind != "yolo":
        return None
    o = arr.obj
    cells = ev.e_assigned()
    if ev.thresh_cells is not None:
        cells &= ~ev.thresh_cells
    fail = arr.fail[:, :, o] & cells
    if not fail.any():
        return None
    y = ev.Y[:, :, o].astype(np.float64)
    A = arr.a64_ix((slice(None), slice(None), o))
    iou = np.full(cells.shape, np.nan)
    for c, rows in ev.assigned.items():
        iou[c] = float(ev.rec["row_iou"][c[0], rows[-1]])
    const = float(np.median((A + y)[fail]))
    bound = arr.bound_ix((slice(None), slice(None), o))
    best = None
    for name, t in (("iou", iou), ("constant", np.full(cells.shape, const))):
        if name == "constant" and (abs(const - 1) <= 1e-4 or fail.sum() < 2):
            continue  # a constant fitted on one cell says nothing
        pred = t - y
        ok = fail & (np.abs(A - pred) <= 1e-4 * np.abs(pred) + 4 * bound + 1e-30)
        if ok.any() and (best is None or ok.sum() > best[1].sum()):
            best = (name, ok)
    if best is None:
        return None
    name, ok = best
    mask = arr.role_mask([o], ok)

    def say(sel: np.ndarray) -> str:
        where = cells_str(ev, cells_of(sel))
        if name == "iou":
            return (f"at {where} the implementation's objectness target is the IoU of the predicted box with the "
                    "truth (as [region]'s rescore); [yolo]'s target is 1. Use 1.")
        return (f"at {where} the implementation's objectness target is {const:.6g} (a smoothed target); [yolo]'s "
                "is 1. Use 1.")
    return Claim(mask, say=say, detail={"target": name} if name == "iou" else {"target": const})


CAUSE = CauseSpec(
    code="objectness_target", stage="decision", model=objectness_target, kinds=("yolo",),
    parts=("objectness.positive",),
    summary="a `[yolo]` assigned cell's objectness target other than 1 (the IoU, as `[region]`'s rescore, or a "
            "smoothed target)",
    recognised="your objectness there is `IoU − p` (the IoU of upstream's predicted box with the truth) or "
               "`c − p` for one constant c")

"""truth_thresh: the ignore loop's truth_thresh branch, taken or missed."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import F, Array, CauseSpec, Claim, cells_of, cells_str, class_of, positive_classes, rows_str


def truth_thresh(arr: Array) -> Optional[Claim]:
    """Cells whose best IoU reaches truth_thresh, where the implementation
    took upstream's truth_thresh branch and upstream did not, or the reverse."""
    ev = arr.ev
    assert ev is not None
    if ev.kind == "yolo_ab":
        return _truth_thresh_ab(arr)
    if ev.kind != "yolo":
        return None
    tt = float(ev.layer.truth_thresh)
    best = ev.rec["best_iou"]
    o = arr.obj
    loop2 = np.zeros(best.shape, bool)
    for c in ev.assigned:
        loop2[c] = True
    cand = (best > tt) | (best == F(tt))
    cells = np.zeros_like(cand)
    bt = ev.rec["best_truth"]
    # Cells loop 2 also assigns keep only the branch's class, where a missing
    # short-circuit would look the same: they count only when the branch
    # shows at a cell of its own.
    for c in sorted(map(tuple, np.argwhere(cand)), key=lambda c: bool(loop2[c])):
        if loop2[c]:
            if not cells.any():
                break
            # Loop 2 overwrites the branch's box and objectness; what stays
            # is its truth's class among the cell's classes.
            rows = ev.assigned[c]  # type: ignore[index]
            own = class_of(ev, c[0], int(bt[c])) if bt[c] >= 0 else -1
            loop2_classes = {class_of(ev, c[0], t) for t in rows}
            e_pos = positive_classes(arr, False, c)  # type: ignore[arg-type]
            a_pos = positive_classes(arr, True, c)  # type: ignore[arg-type]
            if own not in loop2_classes:
                cells[c] = a_pos == e_pos - {own} or a_pos == e_pos | {own}
        else:
            cells[c] = (arr.E[c[0], c[1], o, c[2], c[3]] > 0) != (arr.A[c[0], c[1], o, c[2], c[3]] > 0)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        used = {(c[0], int(bt[c])) for c in cs if bt[c] >= 0}
        ious = sorted({float(best[c]) for c in cs})
        return (f"upstream's ignore loop assigns a cell whose best IoU beats truth_thresh = {tt:g} (IoU > "
                f"truth_thresh: objectness 1, class and box deltas from that truth); at "
                f"{cells_str(ev, cs)} (best IoU {', '.join(f'{v:.6g}' for v in ious[:3])}; {rows_str(used)}) the "
                "implementation took that branch where upstream does not, or missed it. Reproduce the branch with "
                "a strict '>'.")
    return Claim(arr.cell_mask(cells), rows={}, say=say)

def _truth_thresh_ab(arr: Array) -> Optional[Claim]:
    """AlexeyAB's layer: darknet's run with the branch never taken reproduces
    the elements.  truth_thresh = 1 does not turn it off: upstream's float
    IoU of a box with itself can round to just above 1 (yolo_layer.c's
    ``best_iou > l.truth_thresh``), so the replay uses 2."""
    from ._ab_replay import replay, reproduced
    tt = float(arr.layer.truth_thresh)
    m = reproduced(arr, replay(arr, truth_thresh=2.0))
    if m is None:
        return None
    return Claim(m, say=lambda sel: (
        f"{int(sel.sum())} elements are darknet's without its truth_thresh branch: upstream's first loop assigns "
        f"every cell whose best IoU (over all truths, no class gate) beats truth_thresh = {tt:g} (objectness 1, the "
        "best truth's class and box deltas, accumulated"
        + ("; at 1, where its float IoU rounds above 1" if tt >= 1 else "") + "); the implementation left it out."))


CAUSE = CauseSpec(
    code="truth_thresh", stage="decision", model=truth_thresh, kinds=("yolo", "yolo_ab"),
    parts=("objectness.positive", "objectness.negative", "objectness.ignored", "classes.positive",
           "classes.negative", "box.x", "box.y", "box.w", "box.h", "none"),
    summary="the `truth_thresh` branch taken or missed",
    recognised="a cell whose best IoU reaches `truth_thresh` is assigned in one array and not the other (or its "
               "classes show the branch's truth missing)")

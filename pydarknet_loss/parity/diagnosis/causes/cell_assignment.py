"""cell_assignment: a truth put in another cell (x*W rounded instead of truncated)."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..model import F, Array, CauseSpec, Claim, cells_of, rows_str
from ._ab_models import moved_cells
from ._placement import moved_rows, region_moved


def cell_assignment(arr: Array) -> Optional[Claim]:
    """Rows the implementation placed in the cell x*W rounds to rather than
    the one it truncates to."""
    ev = arr.ev
    assert ev is not None
    if ev.kind == "yolo_ab":
        return moved_cells(arr)
    n = ev.Y.shape[1]

    def where(b: int, t: int) -> Optional[Tuple[int, int, List[int]]]:
        (j, i), (jr, ir) = ev.row_cell[b, t], ev.row_round[b, t]
        if (j, i) == (jr, ir):
            return None
        a = int(ev.row_anchor[b, t])
        anchors = [a] if ev.kind == "yolo" else [a] + [m for m in range(n) if m != a]
        return int(jr), int(ir), ([] if a < 0 else anchors)

    if ev.kind == "region":
        mask, who = region_moved(arr, where)
        if not mask.any():
            return None
    else:
        cells, who = moved_rows(arr, where)
        if not cells.any():
            return None
        mask = arr.cell_mask(cells)

    def say(sel: np.ndarray) -> str:
        used = sorted({(c[0], t) for c in cells_of(sel) for t in who.get(c, ())})
        ex = ""
        if used:
            b, t = used[0]
            row = ev.truth[b, t]
            W = ev.Y.shape[4]
            ex = (f" (image {b} row {t}: x*W = {float(F(row[0] * F(W))):.6g}, cell column "
                  f"{int(ev.row_cell[b, t][1])} upstream, {int(ev.row_round[b, t][1])} rounded)")
        return ("upstream puts a truth in cell (int)(x*W), (int)(y*H), the float32 product truncated; the "
                f"implementation used another cell for {rows_str(set(used))}{ex}. Truncate (floor) instead of "
                "rounding.")
    return Claim(mask, rows=who, say=say)


CAUSE = CauseSpec(
    code="cell_assignment", stage="decision", model=cell_assignment, kinds=("yolo", "region", "yolo_ab"),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "objectness.ignored",
           "classes.positive", "classes.negative", "none", "prior"),
    summary="put a truth in another cell (rounded instead of truncated)",
    recognised="the same, for `round(x·W)` instead of `(int)(x·W)`; AlexeyAB: darknet's own assignment of the row "
               "at the rounded cell (its truth_thresh branch, replayed) with loop 1's values left at its cell")

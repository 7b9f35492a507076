"""Truth rows upstream never reads (after an x == 0 row, past max_boxes): what reading them gives."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Optional, Set, Tuple

import numpy as np

from .... import _native
from ..model import Array, Claim, box_delta_of_row, box_matches, cells_of, rows_str


def unread_rows(arr: Array, statuses: Tuple[int, ...], code: str, *, ignore_cells: str) -> Optional[Claim]:
    """Cells where the implementation did what reading truth rows of these
    statuses (rows upstream never reads) implies: such a row's box deltas at
    its cell and anchor, or its effect on a cell's ignore test or
    truth_thresh branch.  ``ignore_cells``: "never", "if_assigned" (only
    when some unread row's assignment shows in the values: strong evidence
    that the implementation reads them), or "always"."""
    ev = arr.ev
    assert ev is not None
    status = ev.rec["row_status"]
    rows = np.isin(status, statuses) & (ev.rec["best_anchor"] >= 0)
    if not rows.any():
        return None
    e_asg = ev.e_assigned()
    cells = np.zeros(e_asg.shape, bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = defaultdict(set)
    for b, t in np.argwhere(rows):
        a = int(ev.row_anchor[b, t])
        j, i = (int(v) for v in ev.row_cell[b, t])
        if a < 0:
            continue
        if box_matches(arr, int(b), a, j, i, box_delta_of_row(ev, int(b), a, int(t), j, i)):
            cells[b, a, j, i] = True
            who[(int(b), a, j, i)].add(int(t))
    if ignore_cells == "always" or (ignore_cells == "if_assigned" and cells.any()):
        o = arr.obj
        bt = ev.rec["best_truth_ext"]
        ext, base = ev.rec["best_iou_ext"], ev.rec["best_iou"]
        via = np.zeros_like(cells)
        for b in range(bt.shape[0]):
            ok = bt[b] >= 0
            via[b][ok] = rows[b][bt[b][ok]]
        free = ~e_asg
        thr = ev.ignore
        ignored = via & free & (ext > thr) & ~(base > thr) & (arr.A[:, :, o] == 0) & (arr.E[:, :, o] != 0)
        taken = np.zeros_like(ignored)
        if ev.kind == "yolo":
            tt = float(ev.layer.truth_thresh)
            taken = via & (ext > tt) & ~(base > tt) & (arr.A[:, :, o] > 0) & (arr.E[:, :, o] <= 0)
        for b, a, j, i in np.argwhere(ignored | taken):
            cells[b, a, j, i] = True
            who[(int(b), int(a), int(j), int(i))].add(int(bt[b, a, j, i]))
    if not cells.any():
        return None
    first = {}
    for b in range(status.shape[0]):
        term = np.flatnonzero(status[b] == _native.lib.DN_ROW_TERMINATOR)
        if term.size:
            first[b] = int(term[0])

    def say(sel: np.ndarray) -> str:
        used = {(c[0], t) for c in cells_of(sel) for t in who.get(c, ())}
        if code == "x0_terminator":
            stops = ", ".join(f"image {b} row {t}" for b, t in sorted(first.items()) if any(u[0] == b for u in used))
            return (f"upstream stops reading an image's truth list at its first row with x == 0 ({stops}); the "
                    f"implementation also used {rows_str(used)}, at or after it. Stop at the first x == 0 (or "
                    "pad the truth list with zero rows only after the last box).")
        return (f"upstream reads at most max_boxes = {ev.layer.max_boxes} truth rows per image; the implementation "
                f"also used {rows_str(used)}. Read only the first max_boxes rows.")
    return Claim(arr.cell_mask(cells), rows=who, say=say)


X0_ROWS = (_native.lib.DN_ROW_TERMINATOR, _native.lib.DN_ROW_AFTER)
LIMIT_ROWS = (_native.lib.DN_ROW_BEYOND_MAX,)

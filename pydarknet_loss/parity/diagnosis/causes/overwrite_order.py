"""overwrite_order: two truths in one cell and anchor, the first kept where upstream keeps the last."""
from __future__ import annotations

from typing import Dict, Optional, Set, Tuple

import numpy as np

from ..model import (Array, CauseSpec, Claim, box_delta_of_row, box_matches, cells_of, cells_str, class_of, multi,
                     positive_classes, rows_str)


def overwrite_order(arr: Array) -> Optional[Claim]:
    """Cells with two truths where the implementation kept the first: its
    box deltas are the first truth's, or its only positive class is the
    first truth's where upstream's short-circuit keeps both."""
    if arr.ev is not None and arr.ev.kind == "yolo_ab":  # AlexeyAB's layer: causes/_ab_models.py
        from ._ab_models import overwrite
        return overwrite(arr)
    ev = arr.ev
    assert ev is not None
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = {}
    for c, rows in multi(ev).items():
        b, a, j, i = c
        if len(rows) < 2 or not arr.fail[b, a, :, j, i].any():
            continue
        first_box = arr.fail[b, a, :4, j, i].any() and \
            box_matches(arr, b, a, j, i, box_delta_of_row(ev, b, a, rows[0], j, i))
        a_pos = positive_classes(arr, True, c)
        first_cls = class_of(ev, b, rows[0])
        # (where the last truth's class is the first's too, a missing
        # short-circuit gives the same classes: both models claim the cell
        # and are shown as alternatives)
        first_only = a_pos == {first_cls} and a_pos != positive_classes(arr, False, c)
        if first_box or first_only:
            cells[c] = True
            who[c] = set(rows)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        used = {(c[0], t) for c in cs for t in who.get(c, ())}
        return (f"where two truths ({rows_str(used)}) fall in one cell and anchor, upstream writes both in truth "
                "order, so the LAST one's box and objectness deltas stand (and its class joins the first's); the "
                f"implementation kept the first truth's ({cells_str(ev, cs)}). Let a later truth overwrite.")
    return Claim(arr.cell_mask(cells), rows=who, say=say)

CAUSE = CauseSpec(
    code="overwrite_order", stage="decision", model=overwrite_order, kinds=("yolo", "region", "yolo_ab"),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "classes.positive", "classes.negative"),
    summary="with two truths in one cell and anchor, kept the first; upstream keeps the last",
    recognised="your box deltas there are the first truth's, or your one positive class is the first truth's")

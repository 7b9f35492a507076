"""anchor_assignment: a truth matched to another anchor than upstream's."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from .... import _native
from ..model import Array, CauseSpec, Claim, cells_of, cells_str, rows_str
from ._placement import moved_rows, placed


def anchor_assignment(arr: Array) -> Optional[Claim]:
    """Rows the implementation placed on another anchor of their cell: for
    [yolo] the best anchor within the mask where upstream's best of all
    anchors is another (or outside the mask); any other anchor otherwise."""
    if arr.ev is not None and arr.ev.kind == "yolo_ab":  # AlexeyAB's layer: causes/_ab_models.py
        from ._ab_models import anchor_measure
        return anchor_measure(arr)
    ev = arr.ev
    assert ev is not None
    rec = ev.rec
    n = ev.Y.shape[1]
    notes: List[str] = []

    def where(b: int, t: int) -> Optional[Tuple[int, int, List[int]]]:
        j, i = (int(v) for v in ev.row_cell[b, t])
        a = int(ev.row_anchor[b, t])
        if ev.kind == "yolo":
            k = int(rec["best_in_mask"][b, t])
            if k == a:
                return None
            others = [k] + [m for m in range(n) if m not in (k, a)]
            if a < 0 and len(notes) < 2:
                notes.append(f"image {b} row {t}: upstream's best of all {ev.layer.total} anchors is anchor "
                             f"{int(rec['best_anchor'][b, t])}, not in this layer's mask "
                             f"{list(map(int, ev.layer.mask))}, so upstream assigns it nothing here")
            return j, i, others
        return j, i, [m for m in range(n) if m != a]

    if ev.kind == "region":
        # The anchor depends on the prediction at the cell: no single
        # alternative world, only the rows seen on another anchor.
        cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
        who: Dict[Tuple[int, int, int, int], Set[int]] = defaultdict(set)
        for b, t in np.argwhere((rec["row_status"] == _native.lib.DN_ROW_READ) & (rec["best_anchor"] >= 0)):
            b, t = int(b), int(t)
            j, i, others = where(b, t)  # type: ignore[misc]
            k = placed(arr, b, t, j, i, others)
            if k is not None:
                a = int(ev.row_anchor[b, t])
                for m in (k, a):
                    cells[b, m, j, i] = True
                    who[(b, m, j, i)].add(t)
    else:
        cells, who = moved_rows(arr, where)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        used = {(c[0], t) for c in cells_of(sel) for t in who.get(c, ())}
        ns = [m for m in notes if any(f"image {b} row {t}:" in m for b, t in used)]
        detail = ("; " + "; ".join(ns)) if ns else ""
        base = ("upstream matches each truth to the best of ALL the network's anchors by shape (IoU of centred "
                "boxes) and assigns it in this layer only if that anchor is in the mask")
        if ev.kind == "region":
            base = ("upstream matches each truth to the anchor whose predicted box at the truth's cell (or anchor "
                    "shape, with bias_match) best fits its shape")
        return (f"{base}; the implementation put {rows_str(used)} on another anchor "
                f"({cells_str(ev, cells_of(sel))}){detail}. Search the best anchor as upstream does.")
    return Claim(arr.cell_mask(cells), rows=who, say=say)


CAUSE = CauseSpec(
    code="anchor_assignment", stage="decision", model=anchor_assignment, kinds=("yolo", "region",
                                                                                   "yolo_ab"),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "objectness.ignored",
           "classes.positive", "classes.negative", "none"),
    summary="matched a truth to another anchor (e.g. the best anchor searched within the mask only)",
    recognised="with the truths placed as the departure places them, upstream's arithmetic gives your values at "
               "every cell it changes; AlexeyAB: the best anchor by CIoU/GIoU of the shapes (centred or "
               "corner-aligned), with darknet's `iou_thresh` anchors kept or left out too")

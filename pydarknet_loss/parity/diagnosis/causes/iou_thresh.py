"""iou_thresh: AlexeyAB's extra anchors (every other masked anchor whose shape
IoU with the truth beats iou_thresh) missed, or added where the layer has none
(a threshold below the layer's: an iou_thresh where the cfg has none)."""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from ..evidence import ab_record
from ..model import F, Array, CauseSpec, Claim, cells_of
from ._ab_models import _shape_scores, read_rows
from ._ab_replay import replay, reproduced


def added_thresholds(arr: Array) -> List[float]:
    """Thresholds below the layer's that would add the masked anchors the
    implementation's values show assigned where darknet's do not (a positive
    objectness delta at a read row's cell and anchor, darknet's not): just
    below the lowest shape IoU among them.  Empty when none shows."""
    ev = arr.ev
    assert ev is not None
    rec = ab_record(ev)
    if rec is None:
        return []
    th = float(ev.layer.iou_thresh)
    o = arr.obj
    kind = str(getattr(ev.layer, "iou_thresh_kind", "iou"))
    mask_ids = [int(m) for m in ev.layer.mask]
    seen = []
    for b, t in read_rows(ev):
        i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
        best = int(rec["best_anchor"][b, t])
        if i < 0 or j < 0:
            continue
        scores = _shape_scores(ev, float(ev.truth[b, t, 2]), float(ev.truth[b, t, 3]), kind)
        for a, n in enumerate(mask_ids):
            if n == best or rec["extra"][b, t, a] or scores[n] > th:
                continue
            if arr.A64[b, a, o, j, i] > 4 * arr.bound[b, a, o, j, i] and not arr.E64[b, a, o, j, i] > 0:
                seen.append(scores[n])
    if not seen:
        return []
    # just below the lowest (the replay's own float IoU decides)
    low = float(F(min(seen) * (1 - 1e-6)))
    return [low] if low < th else []


def _loop1_zeroed(arr: Array, R: Optional[np.ndarray], m: np.ndarray) -> Optional[np.ndarray]:
    """Objectness elements of cells darknet assigns only through an
    iou_thresh anchor, which the implementation leaves unassigned (the rest
    of the cell is the iou_thresh = 1 run's: ``m`` claims it) and ignores:
    0 where that run keeps the cell a negative.  An unassigned cell's
    objectness is loop 1's, -obj_normalizer*p or 0 as the ignore test
    decides; the implementation's test is its own (ignore_rule's model), so
    either value is this departure's there.  None if no such element."""
    if R is None:
        return None
    o = arr.obj
    cell_claimed = m.any(axis=2)
    with np.errstate(invalid="ignore"):
        cand = cell_claimed & arr.fail[:, :, o] & (arr.E64[:, :, o] > 0) & (R[:, :, o] < 0) & \
            (np.abs(arr.A64[:, :, o]) <= 4 * arr.bound[:, :, o])
    if not cand.any():
        return None
    return arr.role_mask([o], cand)


def iou_thresh(arr: Array) -> Optional[Claim]:
    th = float(getattr(arr.layer, "iou_thresh", 1.0))
    cands = ([1.0] if th < 1 else []) + added_thresholds(arr)
    for v in cands:
        R = replay(arr, iou_thresh=v)
        m = reproduced(arr, R)
        if m is None:
            continue
        loop1 = _loop1_zeroed(arr, R, m) if v == 1.0 else None
        if loop1 is not None:
            m = m | loop1
        if v == 1.0:
            text = (f"darknet's without the iou_thresh anchors (iou_thresh = {th:g}: every other masked anchor whose "
                    "shape IoU with the truth beats it is assigned too, and the box deltas of a cell are then "
                    "divided by its number of positive classes)")
        else:
            text = (f"darknet's with extra anchors added: iou_thresh = {v:.4g} (or any value down to the next anchor "
                    f"IoU) where the layer has {th:g}{' (none)' if th >= 1 else ''}; every other masked anchor whose "
                    "shape IoU with the truth beats it is then assigned too. Use the cfg's iou_thresh")
        if loop1 is not None:
            text += (f". At {len(cells_of(loop1))} of the cells left unassigned the objectness is 0, where darknet's "
                     "own ignore test keeps it a negative: loop 1's other value, as the implementation's own ignore "
                     "test decides it (see ignore_rule); the anchor left out and that test together give it")
        return Claim(m, say=lambda sel, text=text: f"{int(sel.sum())} elements are {text}.",
                     detail={"iou_thresh": v, "direction": "missed" if v == 1.0 else "added"})
    return None


CAUSE = CauseSpec(
    code="iou_thresh", stage="decision", model=iou_thresh, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "classes.positive",
           "classes.negative"),
    summary="AlexeyAB: the `iou_thresh` extra anchors missed, or added where the layer has none (a lower threshold)",
    recognised="darknet's layer run with `iou_thresh` = 1 gives your values (a cell it unassigns may carry loop 1's "
               "other objectness, as your own ignore test decides); or run with a lower `iou_thresh` (just below the "
               "lowest shape IoU of the anchors your values show assigned beyond darknet's)")

"""iou_thresh: AlexeyAB's extra anchors (every other masked anchor whose shape
IoU with the truth beats iou_thresh) missed, or added where the layer has none."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_replay import replay, reproduced



def iou_thresh(arr: Array) -> Optional[Claim]:
    th = float(getattr(arr.layer, "iou_thresh", 1.0))
    # Only "missed": extra anchors ADDED where the layer has none look, cell for
    # cell, like a best anchor chosen another way (anchor_assignment).
    cands = (1.0,) if th < 1 else ()
    for v in cands:
        m = reproduced(arr, replay(arr, iou_thresh=v))
        if m is None:
            continue
        text = (f"darknet's without the iou_thresh anchors (iou_thresh = {th:g}: every other masked anchor whose "
                    "shape IoU with the truth beats it is assigned too, and the box deltas of a cell are then divided "
                "by its number of positive classes)")
        return Claim(m, say=lambda sel, text=text: f"{int(sel.sum())} elements are {text}.",
                     detail={"iou_thresh": v})
    return None


CAUSE = CauseSpec(
    code="iou_thresh", stage="decision", model=iou_thresh, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "classes.positive",
           "classes.negative"),
    summary="AlexeyAB: the `iou_thresh` extra anchors missed",
    recognised="darknet's layer run with `iou_thresh` = 1 gives your values (extra anchors added where the layer "
               "has none: not recognised)")

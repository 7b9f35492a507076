"""scale_x_y: AlexeyAB's x, y decoded without scale_x_y (in the box deltas or
in the ignore test), or with it where the layer has none."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_replay import entries_named, replayed, with_composed

TRIED = (1.05, 1.1, 1.2, 2.0)  #: yolov4's and yolov7's values, tried where the layer has 1


def scale_x_y(arr: Array) -> Optional[Claim]:
    """Darknet's layer with scale_x_y = 1 (or, where the layer has 1, one of
    the usual values) reproduces the elements; with another iou_loss or
    iou_normalizer = 1 too, the box deltas only all of them give
    (``composed_box``)."""
    if getattr(arr.ev, "kind", None) != "yolo_ab":
        return None
    return with_composed(arr, "scale_x_y", _single(arr))


def _single(arr: Array) -> Optional[Claim]:
    s = float(getattr(arr.layer, "scale_x_y", 1.0))
    cands = (1.0,) if s != 1 else TRIED
    for v in cands:
        m = replayed(arr, scale_x_y=v)
        if m is None:
            continue
        # the output's x, y are the implementation's own business here: only the delta is judged
        text = (f"darknet's with x, y decoded without scale_x_y = {s:g} (sigmoid(x)*s - (s - 1)/2: in the box deltas "
                "and in the ignore test's IoU)" if s != 1 else
                f"darknet's with scale_x_y = {v:g} (the layer has 1)")
        return Claim(m, say=lambda sel, text=text: f"{int(sel.sum())} elements ({entries_named(arr, sel)}) are "
                     f"{text}.", detail={"scale_x_y": v})
    return None


CAUSE = CauseSpec(
    code="scale_x_y", stage="decision", model=scale_x_y, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.negative", "objectness.ignored"),
    summary="AlexeyAB: x, y decoded without `scale_x_y` (box deltas, ignore test), or with it where it is 1",
    recognised="darknet's layer run with `scale_x_y` = 1 (or 1.05, 1.1, 1.2, 2 where it is 1) gives your values")

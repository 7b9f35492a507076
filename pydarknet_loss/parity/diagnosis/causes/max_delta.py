"""max_delta: AlexeyAB's clip of the IoU-loss box deltas to max_delta missed."""
from __future__ import annotations

from typing import Optional

from ..model import Array, CauseSpec, Claim
from ._ab_replay import replay, reproduced


def max_delta(arr: Array) -> Optional[Claim]:
    md = getattr(arr.layer, "max_delta", None)
    if md is None:
        return None
    m = reproduced(arr, replay(arr, max_delta=None))
    if m is None:
        return None
    return Claim(m, say=lambda sel: (
        f"{int(sel.sum())} box deltas are darknet's without the clip to max_delta = {float(md):g}: upstream "
        "clips each IoU-loss box delta (after iou_normalizer, NaN zeroed) to [-max_delta, max_delta]."))


CAUSE = CauseSpec(
    code="max_delta", stage="decision", model=max_delta, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h"),
    summary="AlexeyAB: the clip of the IoU-loss box deltas to `max_delta` missed",
    recognised="darknet's layer run without `max_delta` gives your values")

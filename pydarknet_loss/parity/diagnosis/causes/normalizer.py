"""normalizer: AlexeyAB's iou_normalizer, obj_normalizer or cls_normalizer
left out (taken as 1), named as such."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim
from ._ab_replay import entries_named, replay, reproduced

#: option -> what it multiplies upstream
WHAT = {"iou_normalizer": "the box deltas (times the class multiplier)",
        "obj_normalizer": "every objectness delta",
        "cls_normalizer": "the truth's class delta (only with counters_per_class: upstream applies it with the "
                          "class multiplier)"}


def normalizer(arr: Array) -> Optional[Claim]:
    """Darknet's layer with one normalizer set to 1 reproduces the elements."""
    mask = np.zeros(arr.E.shape, bool)
    named = []
    for opt in WHAT:
        m = reproduced(arr, replay(arr, **{opt: 1.0}))
        if m is not None:
            mask |= m
            named.append(opt)
    if not named:
        return None
    values = {opt: float(getattr(arr.layer, opt)) for opt in named}

    def say(sel: np.ndarray) -> str:
        parts = "; ".join(f"{opt} = {values[opt]:g} multiplies {WHAT[opt]}" for opt in named)
        return (f"{int(sel.sum())} elements ({entries_named(arr, sel)}) are darknet's with "
                f"{' and '.join(named)} left out (taken as 1): {parts}. Multiply by it as the cfg says.")
    return Claim(mask, say=say, detail={"options": tuple(named)})


CAUSE = CauseSpec(
    code="normalizer", stage="decision", model=normalizer, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "classes.positive"),
    summary="AlexeyAB: `iou_normalizer`, `obj_normalizer` or `cls_normalizer` left out, named as such",
    recognised="darknet's layer run with that normalizer = 1 gives your values")

"""normalizer: AlexeyAB's iou_normalizer, obj_normalizer or cls_normalizer
left out (taken as 1), named as such."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import Array, CauseSpec, Claim
from . import new_coords
from ._ab_replay import entries_named, replayed, reproduced, with_composed

#: option -> what it multiplies upstream
WHAT = {"iou_normalizer": "the box deltas (times the class multiplier)",
        "obj_normalizer": "every objectness delta",
        "cls_normalizer": "the truth's class delta (only with counters_per_class: upstream applies it with the "
                          "class multiplier)"}


def _with_new_coords(arr: Array, opt: str) -> Optional[np.ndarray]:
    """The elements darknet's layer reproduces with ``opt`` = 1 AND new_coords
    flipped (one of new_coords's forms), less those the flip alone
    reproduces (those are new_coords's): a port with both departures, whose
    box deltas carry both."""
    if float(getattr(arr.layer, opt)) == 1:
        return None
    for v in new_coords.variants(arr.layer):
        both = reproduced(arr, new_coords.flipped(arr, v, **{opt: 1.0}))
        if both is None:
            continue
        alone = reproduced(arr, new_coords.flipped(arr, v))
        m = both & ~alone if alone is not None else both
        if m.any():
            return m
    return None


def normalizer(arr: Array) -> Optional[Claim]:
    """Darknet's layer with one normalizer set to 1 reproduces the elements
    (or, where new_coords is flipped too, the elements that only both give;
    or, with another iou_loss or scale_x_y = 1 too, the box deltas that only
    all of them give: ``composed_box``)."""
    if getattr(arr.ev, "kind", None) == "yolo_ab":
        return with_composed(arr, "normalizer", _normalizer(arr))
    return _normalizer(arr)


def _normalizer(arr: Array) -> Optional[Claim]:
    mask = np.zeros(arr.E.shape, bool)
    named = []
    composed = False
    for opt in WHAT:
        m = replayed(arr, **{opt: 1.0})
        if m is None and getattr(arr.ev, "kind", None) == "yolo_ab":
            m = _with_new_coords(arr, opt)
            composed |= m is not None
        if m is not None:
            mask |= m
            named.append(opt)
    if not named:
        return None
    values = {opt: float(getattr(arr.layer, opt)) for opt in named}

    def say(sel: np.ndarray) -> str:
        parts = "; ".join(f"{opt} = {values[opt]:g} multiplies {WHAT[opt]}" for opt in named)
        return (f"{int(sel.sum())} elements ({entries_named(arr, sel)}) are darknet's with "
                f"{' and '.join(named)} left out (taken as 1){' and new_coords flipped (see new_coords)' if composed else ''}"
                f": {parts}. Multiply by it as the cfg says.")
    return Claim(mask, say=say, detail={"options": tuple(named), "with_new_coords": composed})


CAUSE = CauseSpec(
    code="normalizer", stage="decision", model=normalizer, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "classes.positive"),
    summary="AlexeyAB: `iou_normalizer`, `obj_normalizer` or `cls_normalizer` left out, named as such",
    recognised="darknet's layer run with that normalizer = 1 gives your values")

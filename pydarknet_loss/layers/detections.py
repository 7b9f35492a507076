"""Detections and non-maximum suppression as upstream computes them
(src/yolo_layer.c, src/region_layer.c, src/box.c)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from .. import _native, _validate


@dataclass(frozen=True, eq=False)
class Detections:
    """A list of darknet ``detection`` structs as arrays.

    ``bbox`` (N, 4) float32 x, y, w, h; ``objectness`` (N,); ``prob``
    (N, classes).  After NMS, ``order[i]`` is the input index of the
    detection now at position i and ``sort_class`` each entry's final
    ``sort_class`` (detections start at 0, as make_network_boxes' calloc
    leaves them).  Detections from a layer carry ``output_after``, the
    layer's whole output buffer after the call (flip-averaged for batch 2,
    hierarchy products for a tree), and for [yolo] ``num_alloc_upstream``,
    the count upstream allocates before averaging.
    """

    bbox: np.ndarray
    objectness: np.ndarray
    prob: np.ndarray
    sort_class: Optional[np.ndarray] = None
    order: Optional[np.ndarray] = None
    output_after: Optional[np.ndarray] = field(default=None, repr=False)
    num_alloc_upstream: Optional[int] = None
    mask: Optional[np.ndarray] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        bbox = _validate.float32_array("bbox", self.bbox, 2)
        obj = _validate.float32_array("objectness", self.objectness, 1)
        prob = _validate.float32_array("prob", self.prob, 2)
        n = len(obj)
        if bbox.shape != (n, 4):
            raise ValueError(f"bbox must have shape ({n}, 4) to match objectness, got {bbox.shape}")
        if prob.shape[0] != n or prob.shape[1] < 1:
            raise ValueError(f"prob must have shape ({n}, classes) with classes >= 1, got {prob.shape}")
        if n > _validate.INT_MAX or prob.shape[1] > _validate.INT_MAX:
            raise ValueError(f"prob of shape {prob.shape} does not fit the C core's int")
        object.__setattr__(self, "bbox", bbox)
        object.__setattr__(self, "objectness", obj)
        object.__setattr__(self, "prob", prob)
        for name in ("sort_class", "order"):
            v = getattr(self, name)
            if v is None:
                continue
            _validate.not_masked(name, v)
            if not isinstance(v, np.ndarray) or v.dtype != np.int32 or v.shape != (n,):
                got = f"{v.dtype.str} of shape {v.shape}" if isinstance(v, np.ndarray) else type(v).__name__
                raise TypeError(f"{name} must be an int32 array of shape ({n},), got {got}")
            if name == "sort_class" and ((v >= prob.shape[1]) | (v < -1)).any():
                raise ValueError(f"sort_class values must be -1 or a class in [0, {prob.shape[1]})")
            object.__setattr__(self, name, _validate.aligned(v))
        if self.mask is not None:
            _validate.float32_array("mask", self.mask, 2)
        if self.output_after is not None:
            _validate.float32_array("output_after", self.output_after, 4)
        if self.num_alloc_upstream is not None:
            _validate.integer("num_alloc_upstream", self.num_alloc_upstream, minimum=0)

    def __len__(self) -> int:
        return len(self.objectness)

    @property
    def count(self) -> int:
        return len(self.objectness)

    @property
    def classes(self) -> int:
        return int(self.prob.shape[1])


def _nms(which: str, dets: Detections, thresh: Any) -> Detections:
    if not isinstance(dets, Detections):
        raise TypeError(f"expected Detections, got {type(dets).__name__}")
    t = _validate.real32("thresh", thresh)
    sc = dets.sort_class if dets.sort_class is not None else np.zeros(len(dets), np.int32)
    out = _native.nms(which, dets.bbox, dets.objectness, dets.prob, sc, t)
    order = out.pop("order")
    if dets.order is not None:  # chained NMS: keep pointing at the original input
        order = dets.order[order]
    return replace(dets, order=order, output_after=dets.output_after, **out)


def nms_sort(dets: Detections, thresh: float = 0.45) -> Detections:
    """darknet's do_nms_sort: per class, sort by that class's probability
    (glibc 2.36 qsort's order, implemented here) and zero the probability of
    every later box whose IoU with a kept one exceeds ``thresh``.
    Zero-objectness entries are first swapped to the end (their order is not
    kept) and left out.  A zero-area pair has IoU NaN, which never
    suppresses.  Returns the arrays as upstream leaves them."""
    return _nms("sort", dets, thresh)


def nms_obj(dets: Detections, thresh: float = 0.45) -> Detections:
    """darknet's do_nms_obj: sort by objectness and zero every later box
    (objectness and all probabilities) whose IoU with a kept one exceeds
    ``thresh``."""
    return _nms("obj", dets, thresh)

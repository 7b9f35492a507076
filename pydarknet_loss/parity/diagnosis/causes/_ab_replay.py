"""AlexeyAB's [yolo] replayed with one option changed: the model of a
departure that IS one of the layer's options (a normalizer left out, MSE
where the cfg says CIoU, no max_delta clip, no label smoothing, no
iou_thresh anchors, x, y decoded without scale_x_y).  The bit-exact layer is
run on the same input and truths with that one option changed; a cause
claims the failing elements where that run's delta equals the
implementation's within darknet's rounding, and not darknet's own."""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..model import Array


def replay(arr: Array, **changes: Any) -> Optional[np.ndarray]:
    """The delta (B, n, P, H, W, float64) of darknet's layer with ``changes``
    applied to its options; None when the layer has no such options or
    refuses them.  Cached on the evidence, per set of changes."""
    return replay_with(arr, None, **changes)


def replay_with(arr: Array, tag: Optional[str], X: Optional[np.ndarray] = None, truth: Optional[np.ndarray] = None,
                **changes: Any) -> Optional[np.ndarray]:
    """The same, on another input ``X`` (B, n, P, H, W) or truth buffer
    (B, max_boxes, 6) where given: ``tag`` names them in the cache (one tag,
    one input).  Without ``tag`` at least one option must change."""
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab" or arr.name != "delta":
        return None
    layer = ev.layer
    params_of = getattr(layer, "params", None)
    if params_of is None:
        return None
    cache: Dict[Tuple[Any, ...], Optional[np.ndarray]] = ev.__dict__.setdefault("_ab_replays", {})
    key = ((tag,) if tag is not None else ()) + tuple(sorted(changes.items()))
    if key not in cache:
        params = params_of()
        if any(k not in params for k in changes) or \
                (tag is None and all(params[k] == v for k, v in changes.items())):
            cache[key] = None
            return None
        params.update(changes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                other = type(layer)(**params)
                B, n, P, H, W = ev.X.shape
                x = ev.X if X is None else X
                res = other.forward(np.ascontiguousarray(x.reshape(B, n * P, H, W), dtype=np.float32),
                                    ev.truth if truth is None else truth, net_w=ev.net_w, net_h=ev.net_h)
            cache[key] = res.delta.reshape(ev.X.shape).astype(np.float64)
        except (TypeError, ValueError):
            cache[key] = None
    return cache[key]


def reproduced(arr: Array, alt: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The failing elements where ``alt`` gives the implementation's value
    (within darknet's rounding) and differs from darknet's; None if none."""
    if alt is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        m = arr.fail & arr.close(arr.A64, alt, rel=1e-5) & (alt != arr.E64)
        # A negative objectness delta is -obj_normalizer*p or 0 (ignored): any
        # departure that moves the ignore test flips some of them, so these
        # count only when the implementation has most of the replay's flips.
        neg = arr.role_mask([arr.obj]) & (arr.E64 <= 0) & (alt <= 0)
        flips = neg & ~arr.close(alt, arr.E64, rel=1e-5)
        if (m & neg).any() and (m & neg).sum() < 0.8 * flips.sum():
            m &= ~neg
        # A cell counts only when the implementation has what the replay
        # changes there: all of its box deltas where it changes them (values,
        # not a 0 that many departures give) and half of the rest, or 90% of
        # the cell where the box is not changed.  A class delta of 0 where
        # darknet's extra anchor wants one says nothing when the cell's box
        # is darknet's.
        changed = ~arr.close(alt, arr.E64, rel=1e-5)
        got = m & changed
        box_changed = changed[:, :, :4].sum(axis=2)
        box_ok = got[:, :, :4].sum(axis=2) == box_changed
        share = got.sum(axis=2) / np.maximum(changed.sum(axis=2), 1)
        keep = np.where(box_changed > 0, box_ok & (share >= 0.5), share >= 0.9)
        m &= keep[:, :, None]
    return m if m.any() else None


def entries_named(arr: Array, mask: np.ndarray) -> str:
    """Which entries a mask covers, in words (x, y, w, h, objectness, classes)."""
    c = arr.coords
    names = []
    per = mask.reshape(mask.shape[0], mask.shape[1], mask.shape[2], -1).any(axis=(0, 1, 3))
    for e in np.flatnonzero(per):
        name = "xywh"[e] if e < 4 else "objectness" if e == c else "classes"
        if name not in names:
            names.append(name)
    return ", ".join(names)

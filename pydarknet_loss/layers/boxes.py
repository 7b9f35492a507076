"""Box geometry with upstream's float arithmetic (darknet src/box.c)."""
from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

from .. import _native, _validate

BoxLike = Union[np.ndarray, "tuple[float, float, float, float]", "list[float]"]


def _number32(name: str, v: Any) -> np.float32:
    """A Python number as the float32 a C float field would hold; NaN and
    infinities pass (upstream computes with them), a finite value beyond
    float32's range is refused rather than turned into inf."""
    f = _validate.number(name, v)
    if math.isfinite(f):
        return _validate.real32(name, f)
    return np.float32(f)


def _boxes(name: str, v: Any) -> np.ndarray:
    _validate.not_masked(name, v)
    if isinstance(v, np.ndarray):
        if v.dtype != np.float32:
            raise TypeError(f"{name} must have dtype float32, got {v.dtype.str}; the oracle never casts silently")
        arr = v
    elif isinstance(v, (tuple, list)) and len(v) == 4:
        # One box of Python numbers: each is rounded to float32, as a C float
        # field would store it.  NaN and infinities pass through (upstream
        # computes with them).
        arr = np.array([_number32(f"{name}[{i}]", c) for i, c in enumerate(v)], dtype=np.float32)
    else:
        raise TypeError(f"{name} must be a float32 array of shape (..., 4) or one box (x, y, w, h), "
                        f"got {type(v).__name__}")
    if arr.ndim < 1 or arr.shape[-1] != 4:
        raise ValueError(f"{name} must have a last dimension of 4 (x, y, w, h), got shape {arr.shape}")
    return arr


def _rows(op: str, a: Any, b: Any) -> Union[np.float32, np.ndarray]:
    a = _boxes("a", a)
    b = _boxes("b", b)
    try:
        a2, b2 = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"box shapes {a.shape} and {b.shape} do not broadcast") from None
    shape = a2.shape[:-1]
    flat_a = _validate.aligned(a2.reshape(-1, 4))
    flat_b = _validate.aligned(b2.reshape(-1, 4))
    out = _native.box_rows(op, flat_a, flat_b).reshape(shape)
    return out[()] if out.ndim == 0 else out


def box_iou(a: BoxLike, b: BoxLike) -> Union[np.float32, np.ndarray]:
    """IoU of boxes (x, y, w, h), as upstream's box_iou: float arithmetic,
    NaN for two zero-area boxes.  Broadcasts over leading dimensions."""
    return _rows("iou", a, b)


def box_rmse(a: BoxLike, b: BoxLike) -> Union[np.float32, np.ndarray]:
    """Upstream's box_rmse: float differences squared and summed in double."""
    return _rows("rmse", a, b)

"""Memory layouts of a loss layer's arrays.

Darknet's buffer is ``[b][anchor][entry][row][col]``: a conv output in
PyTorch's NCHW, ``(B, A*(5+classes), H, W)``.  Ports also hold it as NHWC,
``(B, H, W, C)``, or as ``(B, A, H, W, 5+classes)`` ("bahwc", most PyTorch
YOLO ports).  Every API that takes or returns such an array takes
``layout=``; these convert (copies, never views that alias).
"""
from __future__ import annotations

import numpy as np

LAYOUTS = ("nchw", "nhwc", "bahwc")


def check(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    return layout


def to_nchw(a: np.ndarray, layout: str, n: int, name: str = "x") -> np.ndarray:
    """An array in `layout` as darknet's (B, C, H, W) (a C-contiguous copy
    unless it is NCHW already); shape errors name the layout."""
    check(layout)
    if not isinstance(a, np.ndarray):
        return a  # the caller's validation says what is wrong
    if layout == "nchw":
        return a
    if layout == "bahwc":
        if a.ndim != 5 or a.shape[1] != n:
            raise ValueError(f"{name} must have 5 dimensions (B, A={n}, H, W, 5+classes) with layout='bahwc', "
                             f"got shape {a.shape}")
        b, an, h, w, p = a.shape
        return np.ascontiguousarray(a.transpose(0, 1, 4, 2, 3).reshape(b, an * p, h, w))
    if a.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions (B, H, W, C) with layout='nhwc', got shape {a.shape}")
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def from_nchw(a: np.ndarray, layout: str, n: int) -> np.ndarray:
    """Darknet's (B, C, H, W) array in `layout` (a C-contiguous copy unless
    the layout is NCHW)."""
    check(layout)
    if layout == "nchw":
        return a
    if layout == "nhwc":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    b, c, h, w = a.shape
    return np.ascontiguousarray(a.reshape(b, n, c // n, h, w).transpose(0, 1, 3, 4, 2))

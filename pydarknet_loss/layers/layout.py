"""Memory layouts of a loss layer's arrays.

Darknet's buffer is ``[b][anchor][entry][row][col]``: a conv output in
PyTorch's NCHW, ``(B, A*(5+classes), H, W)``.  Ports also hold it as NHWC,
``(B, H, W, C)``, or as ``(B, A, H, W, 5+classes)`` ("bahwc", most PyTorch
YOLO ports).  Every API that takes or returns such an array takes
``layout=``; these convert (copies, never views that alias).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validate

LAYOUTS = ("nchw", "nhwc", "bahwc")


def check(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    return layout


def to_nchw(a: np.ndarray, layout: str, n: int, name: str = "x") -> np.ndarray:
    """An array in `layout` as darknet's (B, C, H, W) (a C-contiguous copy
    unless it is NCHW already); shape errors name the layout."""
    check(layout)
    a = _validate.host_array(name, a)  # a torch tensor, read into NumPy
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


# ---- the public converters (pdl.to_layout, pdl.from_layout) ----

def _anchors(layer: Any) -> int:
    n = getattr(layer, "n", layer)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise TypeError("layer must be a loss layer (YoloLayer, RegionLayer, alexeyab.YoloLayer) or its number of "
                        f"anchors as a positive int, got {type(layer).__name__}")
    return int(n)


def _torch_convert(a: Any, layout: str, n: int, to: bool) -> Any:
    """The same conversions on a torch tensor, in torch (device and autograd kept)."""
    if layout == "nchw":
        return a
    if to:  # (B, C, H, W) -> layout
        if a.dim() != 4:
            raise ValueError(f"array must have 4 dimensions (B, C, H, W), got shape {tuple(a.shape)}")
        if layout == "nhwc":
            return a.permute(0, 2, 3, 1).contiguous()
        b, c, h, w = a.shape
        return a.reshape(b, n, c // n, h, w).permute(0, 1, 3, 4, 2).contiguous()
    if layout == "nhwc":
        if a.dim() != 4:
            raise ValueError(f"array must have 4 dimensions (B, H, W, C) with layout='nhwc', got shape "
                             f"{tuple(a.shape)}")
        return a.permute(0, 3, 1, 2).contiguous()
    if a.dim() != 5 or a.shape[1] != n:
        raise ValueError(f"array must have 5 dimensions (B, A={n}, H, W, 5+classes) with layout='bahwc', got shape "
                         f"{tuple(a.shape)}")
    b, an, h, w, p = a.shape
    return a.permute(0, 1, 4, 2, 3).reshape(b, an * p, h, w)


def to_layout(array: Any, layout: str, layer: Any) -> Any:
    """Darknet's (B, C, H, W) array (``x``, an output or a delta) in another
    ``layout``: ``"nhwc"`` (B, H, W, C) or ``"bahwc"`` (B, A, H, W,
    5+classes), as your implementation holds it; ``"nchw"`` returns it as
    it is.  ``layer`` (or its number of anchors) splits the channels into
    anchors.  A NumPy array gives a C-contiguous copy; a torch tensor a
    tensor on its device (autograd kept).  The inverse is
    :func:`from_layout`."""
    check(layout)
    n = _anchors(layer)
    if _validate.is_torch_tensor(array):
        return _torch_convert(array, layout, n, to=True)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a numpy.ndarray or a torch.Tensor, got {type(array).__name__}")
    if array.ndim != 4:
        raise ValueError(f"array must have 4 dimensions (B, C, H, W), darknet's layout, got shape {array.shape}")
    if array.shape[1] % n:
        raise ValueError(f"array has {array.shape[1]} channels, not a multiple of the layer's {n} anchors")
    return from_nchw(array, layout, n)


def from_layout(array: Any, layout: str, layer: Any) -> Any:
    """An array in ``layout`` (``"nchw"``, ``"nhwc"``, ``"bahwc"``) as
    darknet's (B, C, H, W): the inverse of :func:`to_layout`."""
    check(layout)
    n = _anchors(layer)
    if _validate.is_torch_tensor(array):
        return _torch_convert(array, layout, n, to=False)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array must be a numpy.ndarray or a torch.Tensor, got {type(array).__name__}")
    if layout == "nchw" and array.ndim != 4:
        raise ValueError(f"array must have 4 dimensions (B, C, H, W), got shape {array.shape}")
    return to_nchw(array, layout, n, "array")

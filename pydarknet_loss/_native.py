"""The only module that touches the compiled core.

Buffers in, buffers out: it points C `layer`/`network` structs at NumPy
arrays (without copying), calls one C function and hands back NumPy arrays
and plain numbers.  It validates nothing that the public API has not already
validated, except what the C core itself reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

try:
    from ._core import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on how it was installed
    raise ImportError(
        "pydarknet_loss: the compiled core (pydarknet_loss._core) is missing. "
        "Install the package with `pip install .` from the repository root, or build it "
        "in place with `python build_ffi.py`. If you run Python from the repository root, "
        "the source folder may shadow the installed package: run from another folder."
    ) from exc

BUILD_CFLAGS: str = ffi.string(lib.dn_build_cflags()).decode()

# Return codes of the C core (darknet_loss.h).
DN_OK = lib.DN_OK
ERRORS = {
    lib.DN_E_LAYER: "layer",
    lib.DN_E_TRUTH_VALUE: "value",
    lib.DN_E_TRUTH_SIZE: "size",
    lib.DN_E_TRUTH_CELL: "cell",
    lib.DN_E_MAP_INDEX: "map",
    lib.DN_E_TRUTH_CLASS: "class",
}


def _f32(a: np.ndarray) -> Any:
    """A `float *` over a C-contiguous float32 array, without copying."""
    return ffi.cast("float *", ffi.from_buffer(a))


def _i32(a: np.ndarray) -> Any:
    return ffi.cast("int *", ffi.from_buffer(a))


@dataclass
class YoloSpec:
    """What the C `layer` needs besides the input's shape."""

    classes: int
    total: int
    mask: np.ndarray  # int32, C-contiguous
    biases: np.ndarray  # float32, 2*total
    max_boxes: int
    ignore_thresh: np.float32
    truth_thresh: np.float32
    map: Optional[np.ndarray]  # int32 or None


class _Call:
    """A C layer and network over NumPy buffers; keeps every buffer alive
    for as long as the structs point at it."""

    def __init__(self, spec: YoloSpec, batch: int, h: int, w: int,
                 out: Optional[tuple[np.ndarray, np.ndarray]] = None) -> None:
        self.keep: list[Any] = []
        self.layer = ffi.new("layer *")
        rc = lib.yolo_layer_init(self.layer, batch, w, h, len(spec.mask), spec.total, spec.classes)
        if rc != DN_OK:
            raise ValueError("layer sizes do not fit the C core (too large or not positive)")
        l = self.layer
        l.mask = self._ptr(_i32, spec.mask)
        l.biases = self._ptr(_f32, spec.biases)
        l.max_boxes = spec.max_boxes
        l.ignore_thresh = spec.ignore_thresh
        l.truth_thresh = spec.truth_thresh
        if spec.map is not None:
            l.map = self._ptr(_i32, spec.map)
            l.map_len = len(spec.map)
        if out is None:
            self.output = np.empty((batch, l.c, h, w), dtype=np.float32)
            self.delta = np.empty((batch, l.c, h, w), dtype=np.float32)
        else:
            self.output, self.delta = out
        l.output = self._ptr(_f32, self.output)
        l.delta = self._ptr(_f32, self.delta)
        self.cost = ffi.new("float *")
        self.stats = ffi.new("loss_stats *")
        l.cost = self.cost
        l.stats = self.stats

    def _ptr(self, conv: Any, a: np.ndarray) -> Any:
        self.keep.append(a)
        return conv(a)

    def check_truths(self, truth: np.ndarray) -> tuple[int, int, int]:
        """(code, image, row) of the first truth row the C core refuses."""
        bad = ffi.new("int[2]")
        rc = lib.check_truths(self.layer[0], _f32(truth), bad, bad + 1)
        return rc, bad[0], bad[1]

    def forward_yolo(self, x: np.ndarray, truth: Optional[np.ndarray], net_w: int, net_h: int,
                     train: bool, index: int) -> int:
        net = ffi.new("network *")
        net.input = _f32(x)
        if truth is not None:
            net.truth = _f32(truth)
        net.train = 1 if train else 0
        net.w = net_w
        net.h = net_h
        net.index = index
        return int(lib.forward_yolo_layer(self.layer[0], net[0]))


def yolo_call(spec: YoloSpec, batch: int, h: int, w: int,
              out: Optional[tuple[np.ndarray, np.ndarray]] = None) -> _Call:
    return _Call(spec, batch, h, w, out)


def box_rows(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """box_iou or box_rmse of matching rows of two C-contiguous (n, 4) float32 arrays."""
    out = np.empty(a.shape[0], dtype=np.float32)
    fn = lib.box_iou_rows if op == "iou" else lib.box_rmse_rows
    fn(_f32(a), _f32(b), a.shape[0], _f32(out))
    return out

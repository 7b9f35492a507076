"""box.c: overlap, intersection, union, IoU and RMSE with upstream's float
arithmetic, checked against values upstream's own box.c computed
(tests/data/upstream_box.npz) and against cases worked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss._native import ffi, lib

DATA = np.load(G.HERE / "data" / "upstream_box.npz")


def _c_box(row: np.ndarray):  # type: ignore[no-untyped-def]
    b = ffi.new("box *")
    b.x, b.y, b.w, b.h = (float(v) for v in row)
    return b[0]


def _each(fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([fn(_c_box(x), _c_box(y)) for x, y in zip(a, b)], dtype=np.float32)


@pytest.mark.parametrize("name,fn", [
    ("intersection", lib.box_intersection),
    ("union", lib.box_union),
    ("iou", lib.box_iou),
    ("rmse", lib.box_rmse),
])
def test_box_functions_match_upstream(name: str, fn) -> None:  # type: ignore[no-untyped-def]
    ours = _each(fn, DATA["a"], DATA["b"])
    assert G.bits_equal(ours, DATA[name]), G.first_difference(ours, DATA[name])


def test_overlap_matches_upstream() -> None:
    a, b = DATA["a"], DATA["b"]
    ours = np.array([lib.overlap(float(x[0]), float(x[2]), float(y[0]), float(y[2])) for x, y in zip(a, b)],
                    dtype=np.float32)
    assert G.bits_equal(ours, DATA["overlap"]), G.first_difference(ours, DATA["overlap"])


def test_float_to_box_reads_with_stride() -> None:
    buf = np.arange(12, dtype=np.float32)
    b = lib.float_to_box(ffi.cast("float *", ffi.from_buffer(buf)), 3)
    assert (b.x, b.y, b.w, b.h) == (0.0, 3.0, 6.0, 9.0)


def test_public_box_iou_and_rmse_match_upstream_and_broadcast() -> None:
    a, b = DATA["a"], DATA["b"]
    assert G.bits_equal(pdl.box_iou(a, b), DATA["iou"])
    assert G.bits_equal(pdl.box_rmse(a, b), DATA["rmse"])
    # (n, 1, 4) against (1, m, 4): every pair, still upstream's values.
    ious = pdl.box_iou(a[:5, None, :], b[None, :7, :])
    assert ious.shape == (5, 7)
    assert G.bits_equal(ious[3, 3], DATA["iou"][3])


def test_hand_worked_values() -> None:
    # Dyadic coordinates make every float step exact, so these are exact.
    # Identical boxes: intersection == union, IoU exactly 1.
    assert pdl.box_iou((0.5, 0.5, 0.25, 0.25), (0.5, 0.5, 0.25, 0.25)) == 1.0
    # ...whereas 0.2-wide boxes round: right - left = 0.6f - 0.4f is not
    # 0.2f, and the float IoU of a box with itself is 1.0000002 (upstream's
    # value too: see the first row of upstream_box.npz).
    assert pdl.box_iou((0.5, 0.5, 0.2, 0.2), (0.5, 0.5, 0.2, 0.2)) == DATA["iou"][0] == np.float32(1.0000002)
    # Two unit-height halves side by side touch along an edge: overlap 0, IoU 0.
    assert pdl.box_iou((0.25, 0.5, 0.5, 1.0), (0.75, 0.5, 0.5, 1.0)) == 0.0
    # Disjoint boxes: box_intersection returns 0 (w < 0), so IoU is 0.
    assert pdl.box_iou((0.1, 0.1, 0.1, 0.1), (0.9, 0.9, 0.1, 0.1)) == 0.0
    # Half of a square inside another of twice the area: 1/2 in float32.
    assert pdl.box_iou((0.5, 0.5, 1.0, 1.0), (0.25, 0.5, 0.5, 1.0)) == np.float32(0.5)
    # Two zero-area boxes: 0/0 is NaN, which then loses every comparison.
    assert math.isnan(pdl.box_iou((0.5, 0.5, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0)))
    # rmse of (3, 4, 0, 0) apart is 5.
    assert pdl.box_rmse((3.0, 4.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0)) == 5.0


def test_box_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="float32"):
        pdl.box_iou(np.zeros(4), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="last dimension of 4"):
        pdl.box_iou(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="do not broadcast"):
        pdl.box_iou(np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="real number"):
        pdl.box_iou((0.5, 0.5, "w", 0.1), (0.5, 0.5, 0.1, 0.1))

"""Bad input to the [yolo] oracle: a clear exception that says what is
wrong and what was expected; never a crash, a hang or a silent cast."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import pydarknet_loss as pdl

V3 = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]


def layer(**kw: Any) -> pdl.YoloLayer:
    args: dict = dict(classes=3, anchors=V3, mask=[6, 7, 8])
    args.update(kw)
    return pdl.YoloLayer(**args)


def x_for(l: pdl.YoloLayer, b: int = 2, h: int = 3, w: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((b, l.channels, h, w)).astype(np.float32)


def truth(b: int = 2, *rows: Any) -> np.ndarray:
    t = np.zeros((b, 90, 5), np.float32)
    t[:, 0] = [0.5, 0.5, 0.3, 0.3, 1]
    for img, r, vals in rows:
        t[img, r] = vals
    return t


def fwd(l: pdl.YoloLayer, t: Any, **kw: Any) -> pdl.YoloResult:
    return l.forward(x_for(l), t, **kw)


# ---- arrays ------------------------------------------------------------

def test_x_must_be_float32() -> None:
    l = layer()
    with pytest.raises(TypeError, match="float32.*got <f8"):
        l.forward(x_for(l).astype(np.float64), truth())


def test_big_endian_float32_is_refused_not_swapped() -> None:
    l = layer()
    with pytest.raises(TypeError, match="native byte order"):
        l.forward(x_for(l).astype(">f4"), truth())


def test_truth_must_be_float32() -> None:
    with pytest.raises(TypeError, match="truth must have dtype float32"):
        fwd(layer(), truth().astype(np.float64))


def test_lists_are_refused_not_converted() -> None:
    l = layer()
    with pytest.raises(TypeError, match="numpy.ndarray"):
        l.forward(x_for(l).tolist(), truth())
    with pytest.raises(TypeError, match=r"truth\[0\] must be a numpy.ndarray"):
        fwd(l, [[[0.5, 0.5, 0.2, 0.2, 1]], [[0.5, 0.5, 0.2, 0.2, 1]]])


def test_wrong_rank() -> None:
    l = layer()
    with pytest.raises(ValueError, match="4 dimensions"):
        l.forward(x_for(l)[0], truth())


def test_wrong_channel_count_names_the_expected_count() -> None:
    l = layer()
    x = np.zeros((2, 25, 3, 4), np.float32)
    with pytest.raises(ValueError, match="25 channels, expected 24"):
        l.forward(x, truth())


def test_batch_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\(2, 90, 5\)"):
        fwd(layer(), truth(3))
    with pytest.raises(ValueError, match="3 images but x has batch 2"):
        fwd(layer(), [np.zeros((0, 5), np.float32)] * 3)


def test_more_than_90_boxes() -> None:
    many = np.tile(np.array([[0.5, 0.5, 0.1, 0.1, 0]], np.float32), (91, 1))
    with pytest.raises(ValueError, match=r"truth\[1\] has 91 boxes.*at most 90"):
        fwd(layer(), [many[:3], many])


def test_train_needs_truth() -> None:
    l = layer()
    with pytest.raises(ValueError, match="needs truth"):
        l.forward(x_for(l))


# ---- layer parameters --------------------------------------------------

def test_anchors_must_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="pairs, got 17"):
        layer(anchors=V3[:-1])


def test_anchors_beyond_total_are_refused() -> None:
    with pytest.raises(ValueError, match=r"18 values \(9 pairs\) but total is 3"):
        layer(total=3, mask=[0, 1, 2])


def test_mask_outside_the_anchors() -> None:
    with pytest.raises(ValueError, match=r"mask\[2\] = 9 is not an anchor index.*total = 9"):
        layer(mask=[6, 7, 9])
    with pytest.raises(ValueError, match=r"mask\[0\] = -1"):
        layer(mask=[-1])


def test_classes_at_least_one() -> None:
    with pytest.raises(ValueError, match="classes must be >= 1"):
        layer(classes=0)
    with pytest.raises(TypeError, match="classes must be an integer"):
        layer(classes=3.0)


def test_max_boxes_above_90() -> None:
    with pytest.raises(ValueError, match="max_boxes must be <= 90"):
        layer(max_boxes=91)


@pytest.mark.parametrize("bad", ["0.5", None, float("nan"), 1j, True])
def test_thresholds_must_be_real_numbers(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="ignore_thresh"):
        layer(ignore_thresh=bad)
    with pytest.raises((TypeError, ValueError), match="truth_thresh"):
        layer(truth_thresh=bad)


def test_map_values_outside_classes() -> None:
    with pytest.raises(ValueError, match=r"map\[1\] = 3 sends a class outside \[0, 3\)"):
        layer(map=[0, 3])


@pytest.mark.parametrize("net", [dict(net_w=0), dict(net_h=-416)])
def test_network_size_must_be_positive(net: Any) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        fwd(layer(), truth(), **net)


# ---- truth rows --------------------------------------------------------

@pytest.mark.parametrize("x,y,col", [(1.0, 0.5, "x"), (0.5, 1.0, "y"), (-0.3, 0.5, "x"), (7.0, 0.5, "x")])
def test_cell_outside_the_grid_names_image_and_row(x: float, y: float, col: str) -> None:
    t = truth(2, (1, 1, [x, y, 0.2, 0.2, 0]))
    with pytest.raises(ValueError, match=r"truth image 1, row 1 .*outside the 4x3 grid"):
        fwd(layer(), t)


def test_slightly_negative_x_truncates_into_cell_zero_like_upstream() -> None:
    # (int)(-0.1*4) = (int)-0.4 = 0: inside the grid, so upstream defines it.
    res = fwd(layer(), truth(2, (1, 1, [-0.1, 0.5, 0.9, 0.9, 0])))
    assert res.stats.count == 3


@pytest.mark.parametrize("w,h", [(0.0, 0.2), (0.2, -0.1)])
def test_non_positive_size(w: float, h: float) -> None:
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*non-positive width or height"):
        fwd(layer(), truth(2, (0, 1, [0.5, 0.5, w, h, 0])))


def test_nan_in_a_used_row() -> None:
    with pytest.raises(ValueError, match=r"truth image 1, row 0 .*NaN or an infinity"):
        fwd(layer(), truth(2, (1, 0, [0.5, np.nan, 0.2, 0.2, 0])))


@pytest.mark.parametrize("cls", [3.0, -1.0, 1e12])
def test_class_outside_range(cls: float) -> None:
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*outside \[0, 3\)"):
        fwd(layer(), truth(2, (0, 1, [0.5, 0.5, 0.2, 0.2, cls])))


def test_class_outside_the_map() -> None:
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*class id 2.5 \(truncated to int\) "
                                         r"is outside the map's 2 entries"):
        fwd(layer(map=[2, 1]), truth(2, (0, 1, [0.5, 0.5, 0.2, 0.2, 2.5])))


def test_rows_after_the_terminator_are_not_checked() -> None:
    # Upstream never reads them, so garbage there is legal.
    t = truth(2, (0, 1, [0, 0, 0, 0, 0]), (0, 2, [9.0, np.nan, -1, 0, 77]))
    assert fwd(layer(), t).stats.count == 2


def test_rows_beyond_max_boxes_are_not_checked_and_warn_from_a_list() -> None:
    l = layer(max_boxes=1)
    boxes = np.array([[0.5, 0.5, 0.3, 0.3, 1], [9.0, 0.5, 0.3, 0.3, 1]], np.float32)
    with pytest.warns(pdl.DarknetQuirkWarning, match="reads at most 1"):
        res = l.forward(x_for(l), [boxes, boxes[:1]])
    assert res.stats.count == 2


def test_fewer_anchor_values_than_total_keep_upstreams_half() -> None:
    # A cfg can list an odd number of values; upstream leaves the rest at .5.
    l = layer(anchors=[10, 13, 16], total=2, mask=[0, 1])
    assert l.anchors.tolist() == [10, 13, 16, 0.5]
    with pytest.raises(ValueError, match="pairs, got 3"):
        layer(anchors=[10, 13, 16], mask=[0])

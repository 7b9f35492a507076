"""pdl.to_truth: truths as other implementations hold them, packed into
darknet's buffer; and the warning for class-first rows passed as darknet's."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import pydarknet_loss as pdl

DARKNET = [np.array([[0.5, 0.4, 0.3, 0.2, 7], [0.2, 0.7, 0.1, 0.1, 0]], np.float32),
           np.array([[0.8, 0.3, 0.5, 0.6, 2]], np.float32)]


def packed_by_hand() -> np.ndarray:
    out = np.zeros((2, 90, 5), np.float32)
    out[0, :2] = DARKNET[0]
    out[1, :1] = DARKNET[1]
    return out


def test_every_format_gives_the_same_buffer() -> None:
    want = packed_by_hand()
    yolo = [np.ascontiguousarray(np.concatenate([a[:, 4:5], a[:, :4]], axis=1)) for a in DARKNET]
    ultra = np.concatenate([np.concatenate([np.full((len(a), 1), i, np.float32), y], axis=1)
                            for i, (a, y) in enumerate(zip(DARKNET, yolo))])
    padded = np.full((2, 4, 5), -1, np.float32)
    padded[0, :2], padded[1, :1] = yolo[0], yolo[1]
    assert np.array_equal(pdl.to_truth(DARKNET), want)
    assert np.array_equal(pdl.to_truth(yolo, format="yolo"), want)
    assert np.array_equal(pdl.to_truth(ultra, format="ultralytics"), want)
    assert np.array_equal(pdl.to_truth(padded, format="yolo", pad=-1), want)
    # The oracle gives the same result on either.
    layer = pdl.YoloLayer(classes=8, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    x = np.random.default_rng(0).standard_normal((2, layer.channels, 4, 4)).astype(np.float32)
    a = layer.forward(x, DARKNET, net_w=128, net_h=128)
    b = layer.forward(x, pdl.to_truth(ultra, format="ultralytics"), net_w=128, net_h=128)
    assert np.array_equal(a.delta, b.delta)


def test_ultralytics_batch_and_empty_images() -> None:
    ultra = np.array([[2, 1, 0.5, 0.5, 0.2, 0.2]], np.float32)
    out = pdl.to_truth(ultra, format="ultralytics", batch=4)
    assert out.shape == (4, 90, 5) and out[2, 0, 4] == 1 and not out[[0, 1, 3]].any()
    with pytest.raises(ValueError, match="batch must be >= 3"):
        pdl.to_truth(ultra, format="ultralytics", batch=2)
    with pytest.raises(ValueError, match="image index 0.5"):
        pdl.to_truth(np.array([[0.5, 1, 0.5, 0.5, 0.2, 0.2]], np.float32), format="ultralytics")


def test_class_first_rows_passed_as_darknet_rows_warn() -> None:
    yolo = [np.array([[3, 0.5, 0.4, 0.3, 0.2]], np.float32)]
    with pytest.warns(pdl.DarknetQuirkWarning, match="format='yolo'"):
        pdl.to_truth(yolo, format="darknet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdl.to_truth(yolo, format="yolo")


def test_region_and_alexeyab_buffers() -> None:
    assert pdl.to_truth(DARKNET, layer="region").shape == (2, 30, 5)
    ab = pdl.alexeyab.YoloLayer(classes=8, anchors=[10, 13], max_boxes=5)
    out = pdl.to_truth(DARKNET, layer=ab)
    assert out.shape == (2, 5, 6) and np.array_equal(out[0, :2, :5], DARKNET[0]) and not out[..., 5].any()


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="format must be"):
        pdl.to_truth(DARKNET, format="coco")
    with pytest.raises(ValueError, match=r"rows\[0\] must have 5 columns"):
        pdl.to_truth([np.zeros((1, 4), np.float32)])
    with pytest.raises(ValueError, match="image 0, row 0: NaN"):
        pdl.to_truth([np.array([[np.nan, 0.5, 0.1, 0.1, 0]], np.float32)])
    with pytest.raises(TypeError, match="float32"):
        pdl.to_truth([np.zeros((1, 5))])


def test_class_first_lists_given_to_a_layer_warn_with_the_format_to_use() -> None:
    layer = pdl.YoloLayer(classes=8, anchors=[10, 13, 16, 30], mask=[0, 1])
    x = np.zeros((1, layer.channels, 2, 2), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.forward(x, [np.array([[0.5, 0.4, 0.3, 0.2, 3], [0.5, 0.5, 0.2, 0.1, 2]], np.float32)])  # darknet's
    with pytest.warns(pdl.DarknetQuirkWarning, match=r"truth\[0\].*format='yolo'"), \
            pytest.raises(ValueError, match=r"format='yolo'"):
        layer.forward(x, [np.array([[3, 0.5, 0.4, 0.3, 0.2]], np.float32)])  # class 3 read as x = 3


def test_layouts_in_and_out_of_forward() -> None:
    layer = pdl.YoloLayer(classes=3, anchors=[10, 13, 16, 30], mask=[0, 1])
    x = np.random.default_rng(0).standard_normal((2, layer.channels, 3, 4)).astype(np.float32)
    t = [np.array([[0.5, 0.5, 0.2, 0.3, 1]], np.float32)] * 2
    ref = layer.forward(x, t)
    for lay in ("nhwc", "bahwc"):
        xl = pdl.layers.layout.from_nchw(x, lay, layer.n)
        res = layer.forward(xl, t, layout=lay)
        assert res.layout == lay and res.delta.shape == xl.shape
        assert np.array_equal(pdl.layers.layout.to_nchw(res.delta, lay, layer.n), ref.delta)
        assert res.cost == ref.cost
    with pytest.raises(ValueError, match="out= takes darknet's"):
        layer.forward(pdl.layers.layout.from_nchw(x, "bahwc", 2), t, layout="bahwc",
                      out=(np.empty_like(x), np.empty_like(x)))
    with pytest.raises(ValueError, match="layout must be"):
        layer.forward(x, t, layout="chw")


def test_anchors_in_grid_units() -> None:
    anchors = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
    strides = [8, 8, 8, 16, 16, 16, 32, 32, 32]
    grid = [a / s for a, s in zip(anchors, [s for s in strides for _ in (0, 1)])]
    layer = pdl.YoloLayer(classes=80, anchors=grid, anchors_in="grid", stride=strides, mask=[6, 7, 8])
    assert layer.anchors.tolist() == [float(a) for a in anchors]
    head = pdl.alexeyab.YoloLayer(classes=1, anchors=[116 / 32, 90 / 32], anchors_in="grid", stride=32)
    assert head.anchors.tolist() == [116.0, 90.0]
    with pytest.raises(ValueError, match="needs stride="):
        pdl.YoloLayer(classes=1, anchors=[1, 2], anchors_in="grid")
    with pytest.raises(ValueError, match="one per pair"):
        pdl.YoloLayer(classes=1, anchors=[1, 2, 3, 4], anchors_in="grid", stride=[8])

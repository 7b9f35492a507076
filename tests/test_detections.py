"""Detection decoding and NMS: upstream's quirks shown on small inputs, and
bad input refused."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl

V3 = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]


def activated(layer: pdl.YoloLayer, b: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((b, layer.channels, h, w)).astype(np.float32)
    return layer.forward(x, train=False).output


def test_flip_averaging_mixes_up_entries_and_anchors() -> None:
    """Batch 2: upstream indexes [entry][anchor][cell] in an [anchor][entry]
    buffer.  Modelled here in NumPy and compared with the C core (which the
    golden cases tagged flip_average check against upstream)."""
    layer = pdl.YoloLayer(classes=2, anchors=V3, mask=[6, 7, 8])
    h, w = 2, 5  # odd width: the middle column is never swapped
    out = activated(layer, 2, h, w)
    dets = layer.detections(out, img_w=416, img_h=416, thresh=0.0)
    flat = out.reshape(2, -1).copy()
    flip = flat[1]
    n, entries = 3, 2 + 5
    for j in range(h):
        for i in range(w // 2):
            for a in range(n):
                for z in range(entries):
                    i1 = z * w * h * n + a * w * h + j * w + i
                    i2 = z * w * h * n + a * w * h + j * w + (w - i - 1)
                    flip[i1], flip[i2] = flip[i2], flip[i1]
                    if z == 0:
                        flip[i1], flip[i2] = -flip[i1], -flip[i2]
    expect = flat.copy()
    expect[0] = ((flat[0].astype(np.float64) + flip) / 2.0).astype(np.float32)
    assert G.bits_equal(dets.output_after.reshape(2, -1), expect)
    # z == 0 covers offsets a*w*h, a < n: planes 0..n-1 of the buffer, which
    # are anchor 0's x, y and w -- not every anchor's x.
    # Only image 0 is averaged; image 1 is left as the (mirrored) flip.
    assert G.bits_equal(dets.output_after[1].ravel(), flip)


def test_letterbox_zero_dimension_gives_inf_and_nan_not_a_crash() -> None:
    layer = pdl.YoloLayer(classes=1, anchors=[10, 13], mask=[0])
    out = activated(layer, 1, 2, 2)
    d = layer.detections(out, img_w=1, img_h=1000, net_w=416, net_h=416, thresh=0.0)
    # new_w = (1*416)/1000 = 0 in int division: x and w divide by zero.
    assert d.count == 4 and not np.isfinite(d.bbox[:, [0, 2]]).any()
    assert np.isfinite(d.bbox[:, [1, 3]]).all()


def test_zero_objectness_entries_are_swapped_to_the_end_out_of_order() -> None:
    bbox = np.array([[.1, .1, .1, .1], [.3, .3, .1, .1], [.5, .5, .1, .1], [.7, .7, .1, .1]], np.float32)
    dets = pdl.Detections(bbox=bbox, objectness=np.array([0, .5, 0, .7], np.float32),
                          prob=np.array([[0], [.5], [0], [.7]], np.float32))
    r = pdl.nms_obj(dets, 0.45)
    # A (0) swaps with D, C stays: [D, B, C, A]; then D, B sort by objectness.
    assert r.order.tolist() == [3, 1, 2, 0]
    assert r.sort_class.tolist() == [-1, -1, 0, 0]  # only the kept front gets sort_class -1


def test_zero_area_pair_has_nan_iou_and_never_suppresses() -> None:
    box = [.5, .5, 0, 0]
    dets = pdl.Detections(bbox=np.array([box, box], np.float32), objectness=np.array([.9, .8], np.float32),
                          prob=np.array([[.9], [.8]], np.float32))
    assert math.isnan(pdl.box_iou(tuple(box), tuple(box)))
    assert G.bits_equal(pdl.nms_sort(dets, 0.1).prob, dets.prob)
    same = pdl.Detections(bbox=np.array([[.5, .5, .2, .2]] * 2, np.float32), objectness=dets.objectness,
                          prob=dets.prob)
    assert pdl.nms_sort(same, 0.1).prob[1, 0] == 0


def test_chained_nms_keeps_pointing_at_the_input() -> None:
    rng = np.random.default_rng(3)
    dets = pdl.Detections(bbox=rng.uniform(0, 1, (20, 4)).astype(np.float32),
                          objectness=rng.choice([0, .3, .6], 20).astype(np.float32),
                          prob=rng.uniform(0, 1, (20, 3)).astype(np.float32))
    once = pdl.nms_obj(dets, .5)
    twice = pdl.nms_sort(once, .5)
    assert sorted(twice.order.tolist()) == list(range(20))
    assert G.bits_equal(twice.bbox, dets.bbox[twice.order])


def test_region_tree_map_must_have_200_entries() -> None:
    tree = pdl.Tree.from_parents([-1] * 250)
    layer = pdl.RegionLayer(classes=250, anchors=[1, 1], num=1, softmax=True, tree=tree)
    out = np.random.default_rng(0).uniform(0, 1, (1, layer.channels, 1, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="reads map\\[0..199\\] whatever its length"):
        layer.detections(out, img_w=10, img_h=10, map=list(range(80)))
    d = layer.detections(out, img_w=10, img_h=10, map=list(range(200)))
    assert d.prob.shape == (1, 250) and not d.prob[0, 200:].any()
    small = pdl.RegionLayer(classes=3, anchors=[1, 1], num=1, softmax=True, tree=[-1, -1, -1])
    with pytest.raises(ValueError, match="writes 200 class probabilities"):
        small.detections(np.zeros((1, 8, 1, 1), np.float32), img_w=10, img_h=10, map=[0] * 200)


def test_region_map_without_a_tree_is_ignored_with_a_warning() -> None:
    layer = pdl.RegionLayer(classes=3, anchors=[1, 1], softmax=True)
    out = np.zeros((1, 8, 2, 2), np.float32)
    with pytest.warns(pdl.DarknetQuirkWarning, match="only read on the tree path"):
        with_map = layer.detections(out, img_w=10, img_h=10, map=[0, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = layer.detections(out, img_w=10, img_h=10)
    assert G.bits_equal(with_map.prob, plain.prob)


@pytest.mark.parametrize("kw,err", [
    (dict(img_w=0), "img_w must be >= 1"), (dict(net_h=-1), "net_h must be >= 1"),
    (dict(thresh="0.5"), "thresh must be a real number"), (dict(thresh=float("nan")), "thresh must be finite"),
    (dict(img_h=2**20, net_w=2**12), "must fit a C int"),
])
def test_detection_arguments_are_checked(kw: dict, err: str) -> None:
    layer = pdl.YoloLayer(classes=1, anchors=[10, 13], mask=[0])
    args = dict(img_w=640, img_h=480, net_w=416, net_h=416, thresh=0.5)
    args.update(kw)
    with pytest.raises((TypeError, ValueError), match=err):
        layer.detections(np.zeros((1, 6, 2, 2), np.float32), **args)
    with pytest.raises(ValueError, match="7 channels, expected 6"):
        layer.detections(np.zeros((1, 7, 2, 2), np.float32), img_w=1, img_h=1)


def test_detections_constructor_checks_arrays() -> None:
    with pytest.raises(TypeError, match="float32"):
        pdl.Detections(bbox=np.zeros((2, 4)), objectness=np.zeros(2, np.float32), prob=np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match=r"bbox must have shape \(2, 4\)"):
        pdl.Detections(bbox=np.zeros((3, 4), np.float32), objectness=np.zeros(2, np.float32),
                       prob=np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="classes >= 1"):
        pdl.Detections(bbox=np.zeros((2, 4), np.float32), objectness=np.zeros(2, np.float32),
                       prob=np.zeros((2, 0), np.float32))
    with pytest.raises(TypeError, match="expected Detections"):
        pdl.nms_sort(np.zeros((2, 4), np.float32), 0.5)

"""hank-ai f684e1d7's [region] and [Gaussian_yolo] (pydarknet_loss.hankai):
the golden cases hank-ai computed (tests/golden/hankai-more-f684e1d7), its
fatal class checks, its line format and Network.from_cfg(flavor="hankai")."""
import json
import math
import pathlib
import textwrap

import numpy as np
import pytest

from pydarknet_loss import Network, alexeyab, hankai

HERE = pathlib.Path(__file__).parent / "golden" / "hankai-more-f684e1d7"
CASES = sorted(p.name for p in HERE.glob("*.npz"))


def _bits_equal(a, b):
    a = np.asarray(a, np.float32).ravel()
    b = np.asarray(b, np.float32).ravel()
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(na, nb) and np.array_equal(a[~na].view(np.uint32), b[~nb].view(np.uint32)))


def _run(case, cls_region=hankai.RegionLayer, cls_gauss=hankai.GaussianYoloLayer):
    kw = json.loads(str(case["kwargs"]))
    train = bool(case["train"])
    if str(case["kind"]) == "region_hankai":
        return cls_region(**kw).forward(case["input"], case["truth"], train=train, seen=int(case["seen"]))
    return cls_gauss(**kw).forward(case["input"], case["truth"], train=train, net_w=int(case["net_w"]),
                                   net_h=int(case["net_h"]), index=int(case["index"]))


def test_the_cases_are_there():
    manifest = json.loads((HERE / "MANIFEST.json").read_text())
    assert sorted(m["file"] for m in manifest) == CASES
    kinds = [m["kind"] for m in manifest]
    assert kinds.count("region_hankai") >= 20 and kinds.count("gaussian_yolo_hankai") >= 20


@pytest.mark.parametrize("name", CASES)
def test_golden_case_bit_for_bit(name):
    case = np.load(HERE / name)
    res = _run(case)
    assert _bits_equal(res.output, case["output"])
    if bool(case["train"]):
        assert _bits_equal(res.delta, case["delta"])
        assert _bits_equal([res.cost], [case["cost"]])
    assert res.text == str(case["text"])


@pytest.mark.parametrize("name", [n for n in CASES if "differs" in n])
def test_alexeyab_arithmetic_gives_other_bits(name):
    """The hank-ai flavor is what makes these pass: AlexeyAB's layer misses them."""
    case = np.load(HERE / name)
    res = _run(case, alexeyab.RegionLayer, alexeyab.GaussianYoloLayer)
    assert not (_bits_equal(res.output, case["output"]) and _bits_equal(res.delta, case["delta"]))


def _x(layer, h=3, w=3, seed=0):
    return np.random.default_rng(seed).standard_normal((1, layer.channels, h, w)).astype(np.float32)


def test_region_class_id_past_classes_is_fatal_in_hankai_only():
    kw = dict(classes=3, num=2, max=4)
    truth = np.zeros((1, 4, 6), np.float32)
    truth[0, 0] = [.5, .5, .2, .3, 1, 0]
    truth[0, 1] = [0, .5, .2, .3, 3, 0]  # x == 0 but the id is checked first (hank-ai region_layer.cpp:320-323)
    layer = hankai.RegionLayer(**kw)
    with pytest.raises(ValueError, match=r"image 0 row 1 .*class id 3 >= classes=3.*fatal"):
        layer.forward(_x(layer), truth)
    res = alexeyab.RegionLayer(**kw).forward(_x(layer), truth)  # AlexeyAB: a warning, the row skipped
    assert "Warning: in txt-labels class_id=3" in res.text


@pytest.mark.filterwarnings("ignore:truth\\[0\\] row 1 has x == 0")
def test_gaussian_class_id_past_classes_is_fatal_in_hankai_only():
    kw = dict(classes=2, num=3, mask=[0, 1, 2], anchors=[10, 13, 16, 30, 33, 23], max=3)
    # x == 0 with an id >= classes: AlexeyAB's loop 1 skips it (warning) before its x == 0 end, loop 2
    # stops there; hank-ai's loop 1 aborts on it (gaussian_yolo_layer.cpp:547)
    truth = [np.array([[.5, .5, .2, .3, 0], [0, .4, .1, .1, 2]], np.float32)]
    layer = hankai.GaussianYoloLayer(**kw)
    with pytest.raises(ValueError, match=r"image 0 row 1 .*invalid class ID #2"):
        layer.forward(_x(layer), truth)
    assert "Warning" in alexeyab.GaussianYoloLayer(**kw).forward(_x(layer), truth).text


def test_gaussian_left_top_cell_outside_the_grid_is_refused():
    """std::clamp(i, w - 1, (int)(x - w/2)*w): x - w/2 <= -1 makes the cell negative."""
    layer = hankai.GaussianYoloLayer(classes=1, num=1, mask=[0], anchors=[30, 30], max=2, yolo_point="left_top")
    with pytest.raises(ValueError):
        layer.forward(_x(layer, 4, 4), [np.array([[.2, .5, 2.6, .3, 0]], np.float32)])
    # inside: x - w/2 in (-1, 1) gives hi = 0, so the cell is column 0 whatever x is
    res = layer.forward(_x(layer, 4, 4), [np.array([[.9, .9, .2, .2, 0]], np.float32)])
    assert res.stats.count == 1
    d = res.delta.reshape(1, 10, 4, 4)
    assert d[0, 0, 0, 0] != 0 and np.all(d[0, 0, 3, 3] == 0)


def test_lines_are_hankai_stream_format():
    """hank-ai's output stream is std::fixed (CfgAndState::reset), precision 6 unless changed."""
    s = hankai.RegionStats(avg_iou=0.25, avg_cat=float("nan"), avg_obj=1 / 3, avg_anyobj=1e-7, recall=1.0,
                           count=2, class_count=0)
    assert s.line() == ("Region avg IoU: 0.250000, class: nan, obj: 0.333333, no obj: 0.000000, "
                        "avg recall: 1.000000, count: 2")
    assert s.line(precision=2) == ("Region avg IoU: 0.25, class: nan, obj: 0.33, no obj: 0.00, avg recall: 1.00, "
                                   "count: 2")
    g = hankai.GaussianYoloStats(avg_iou=0.5, avg_cat=0.125, avg_obj=2.0, avg_anyobj=0.1, recall=0.0, recall75=0.0,
                                 count=3, class_count=3, class_loss=12.5, iou_loss=1234567.0, uc_loss=-0.5,
                                 total_loss=math.inf, index=7)
    assert g.line() == ("Region 7: avg IOU=0.500000, class=0.125000, obj=2.000000, no obj=0.100000, "
                        "recall 50%=0.000000, recall 75%=0.000000, count=3, class loss=12.500000, "
                        "IOU loss=1234567.000000, uc loss=-0.500000, total loss=inf")
    with pytest.raises(ValueError, match="precision"):
        g.line(precision=-1)


def test_no_line_without_training():
    layer = hankai.RegionLayer(classes=2, num=1)
    assert layer.forward(_x(layer), None, train=False).text == ""


def test_from_cfg_builds_the_hankai_layers(tmp_path):
    head = textwrap.dedent("""\
        [net]
        batch=1
        width=96
        height=96
        channels=3

        """)
    region = head + textwrap.dedent("""\
        [convolutional]
        size=1
        stride=32
        pad=0
        filters=35
        activation=linear

        [region]
        anchors = 1.08,1.19, 3.42,4.41, 6.63,11.38, 9.42,5.11, 16.62,10.52, 1,1
        classes=2
        coords=4
        num=5
        softmax=1
        """)
    p = tmp_path / "r.cfg"
    p.write_text(region)
    net = Network.from_cfg(str(p), flavor="hankai")
    (loss,) = [l.loss for l in net.layers if l.loss is not None]
    assert type(loss) is hankai.RegionLayer and loss.num == 5 and loss.classes == 2
    # anchors past 2*num are ignored (parse_region_section: i < num*2)
    assert np.array_equal(loss.anchors, np.float32([1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52]))
    gauss = head + textwrap.dedent("""\
        [convolutional]
        size=1
        stride=32
        pad=0
        filters=30
        activation=linear

        [Gaussian_yolo]
        mask = 0,1,2
        anchors = 10,13, 16,30, 33,23
        classes=1
        num=3
        iou_loss=giou
        """)
    p.write_text(gauss)
    net = Network.from_cfg(str(p), flavor="hankai")
    (loss,) = [l.loss for l in net.layers if l.loss is not None]
    assert type(loss) is hankai.GaussianYoloLayer and loss.iou_loss == "giou"
    p.write_text(gauss.replace("iou_loss=giou", "iou_loss=Giou"))
    with pytest.raises(Exception, match="not supported by hank-ai"):
        Network.from_cfg(str(p), flavor="hankai")

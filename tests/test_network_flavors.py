"""Network.from_cfg(path, flavor=...): each darknet's parse and shape rules
(files/flavors/), checked against upstream's own parse of its cfgs."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

import goldens_ab as GA
import pydarknet_loss as pdl
from pydarknet_loss.files.cfg import CfgError
from pydarknet_loss.files.flavors import FLAVORS

AB_CFGS = ["yolov3", "yolov4", "yolov4-tiny", "yolov4-csp", "yolov7-tiny", "yolov7"]


def diff(ours: Any, theirs: Any, path: str = "") -> List[str]:
    """Field-for-field differences; floats compared as float32 bit patterns."""
    if isinstance(theirs, dict):
        out = [f"{path}.{k}: missing" for k in theirs if k not in ours]
        out += [f"{path}.{k}: extra" for k in ours if k not in theirs]
        for k in theirs:
            if k in ours:
                out += diff(ours[k], theirs[k], f"{path}.{k}")
        return out
    if isinstance(theirs, list):
        if not isinstance(ours, list) or len(ours) != len(theirs):
            return [f"{path}: {ours!r} vs {theirs!r}"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in diff(a, b, f"{path}[{i}]")]
    if isinstance(theirs, float) or isinstance(ours, (float, np.floating)):
        same = (ours is not None and theirs is not None and
                np.float32(ours).view(np.uint32) == np.float32(theirs).view(np.uint32))
        return [] if same else [f"{path}: {ours!r} vs {theirs!r}"]
    if type(ours) is not type(theirs) and not (isinstance(ours, int) and isinstance(theirs, int)):
        return [f"{path}: {ours!r} ({type(ours).__name__}) vs {theirs!r}"]
    return [] if ours == theirs else [f"{path}: {ours!r} vs {theirs!r}"]


@pytest.mark.skipif(GA.shared() is None, reason=GA.SHARED_REASON)
@pytest.mark.parametrize("name", AB_CFGS)
def test_alexeyab_cfg_parses_to_upstreams_json_field_for_field(name: str) -> None:
    root = GA.shared() / "cfg"
    up = json.loads((root / f"{name}.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # upstream reported nothing unused either
        net = pdl.Network.from_cfg(root / f"{name}.cfg", flavor="alexeyab")
    ours = net.upstream_fields()
    assert diff(ours["net"], up["net"], "net") == []
    assert diff(ours["layers"], up["layers"], "layers") == []
    manifest = json.loads((root / "MANIFEST.json").read_text())
    heads = next(f["yolo_layers"] for f in manifest["files"] if f["cfg"] == f"{name}.cfg")
    assert [i for i, _ in net.loss_layers] == [h["index"] for h in heads]
    assert all(isinstance(l, pdl.alexeyab.YoloLayer) for _, l in net.loss_layers)


@pytest.mark.skipif(GA.shared() is None, reason=GA.SHARED_REASON)
@pytest.mark.parametrize("name", ["yolov4", "yolov4-tiny", "yolov7"])
def test_an_alexeyab_cfg_read_as_pjreddie_is_refused_naming_the_option(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CfgError, match=r"line \d+ \(\[\w+\]\): '\w+' is an option of the other darknet's parser "
                                           r"\(alexeyab\).*flavor='alexeyab'"):
            pdl.Network.from_cfg(GA.shared() / "cfg" / f"{name}.cfg")


@pytest.mark.skipif(GA.shared() is None, reason=GA.SHARED_REASON)
def test_the_cfgs_heads_are_the_shared_cases_layers() -> None:
    """A shared case taken from a cfg head: the layer the cfg builds runs it bit for bit."""
    root = GA.shared()
    for path in GA.with_tag("cfg_head"):
        d = GA.load(path)
        p = d["params"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = pdl.Network.from_cfg(root / "cfg" / p["source_cfg"], flavor="alexeyab")
        index, layer = net.loss_layers[p["source_head"]]
        assert index == p["net_index"]
        res = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]),
                            index=index)
        GA.assert_matches(res, d)


def test_flavor_names() -> None:
    assert set(FLAVORS) == {"pjreddie", "alexeyab", "hankai"}
    with pytest.raises(ValueError, match="flavor must be one of 'pjreddie', 'alexeyab', 'hankai'"):
        pdl.Network.from_text("[net]\nwidth=8\nheight=8\nchannels=3\n", flavor="hank-ai")
    assert pdl.Network.from_cfg(pdl.example_cfg("tiny-yolov3")).flavor.name == "pjreddie"  # the default


TINY_AB = """[net]
batch=4
subdivisions=2
width=64
height=64
channels=3
mosaic=1
[convolutional]
filters=16
size=3
stride=2
pad=1
activation=leaky
[route]
layers=-1
groups=2
group_id=1
[maxpool]
size=2
stride=2
[convolutional]
filters=21
size=1
activation=linear
[yolo]
mask=3,4,5
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=2
num=6
iou_loss=ciou
iou_normalizer=0.07
scale_x_y=1.05
iou_thresh=0.213
max=10
"""


def test_route_groups_divide_outputs_and_w_h_are_the_first_inputs_input_size() -> None:
    net = pdl.Network.from_text(TINY_AB, flavor="alexeyab")
    assert net.batch == 2 and net.shapes == [(16, 32, 32), (8, 32, 32), (8, 16, 16), (21, 16, 16), (21, 16, 16)]
    # [route] w, h are its first input's *input* size (64), not its output size (32): upstream's JSON agrees
    assert (net.layers[1].w, net.layers[1].h) == (64, 64) and net.layers[1].outputs == 16 * 32 * 32 // 2
    ((index, layer),) = net.loss_layers
    assert index == 4 and layer.iou_loss == "ciou" and layer.max_boxes == 10 and layer.iou_thresh == np.float32(.213)


def test_alexeyab_network_forward_is_each_layer_alone_and_the_cost_averages() -> None:
    net = pdl.Network.from_text(TINY_AB, flavor="alexeyab")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 21, 16, 16)).astype(np.float32)
    truth = [np.array([[0.5, 0.4, 0.3, 0.4, 1, 3]], np.float32), np.array([[0.2, 0.7, 0.1, 0.1, 0]], np.float32)]
    res = net.forward({4: x}, truth)
    alone = net.loss_layers[0][1].forward(x, truth, net_w=64, net_h=64, index=4)
    assert np.array_equal(res.layers[4].delta, alone.delta) and res.cost == alone.cost
    assert res.lines() == [alone.stats.line()]
    assert net.train_loss([res, res]) == np.float32(np.float32(alone.cost + alone.cost) / np.float32(4))


def test_alexeyab_heads_with_different_max_are_refused_in_forward() -> None:
    text = TINY_AB + "[route]\nlayers=-2\n[yolo]\nmask=0,1,2\nanchors=10,14,23,27,37,58,81,82,135,169,344,319\n" \
                     "classes=2\nnum=6\n"
    net = pdl.Network.from_text(text, flavor="alexeyab")
    x = np.zeros((2, 21, 16, 16), np.float32)
    with pytest.raises(ValueError, match=r"different max= \(\[10, 200\]\)"):
        net.forward([x, x], [np.zeros((0, 5), np.float32)] * 2)


@pytest.mark.parametrize("body, match", [
    ("[local_avgpool]\n", r"\[local_avgpool\].*not modelled"),
    ("[region]\nclasses=2\n", r"\[region\].*upstream asserts l.outputs == params.inputs"),  # modelled since issue 23
    ("[blob]\n", r"unknown section type \[blob\]"),
    ("[convolutional]\nfilters=4\nantialiasing=1\n", "antialiasing=1 is not modelled"),
    ("[convolutional]\nfilters=4\nstride_x=0\nstride=0\n", r"stride=0: expected a stride of at least 1"),
    ("[route]\nlayers=-1\ngroups=0\n", "groups=0"),
    ("[maxpool]\nsize=4\nstride=4\n[shortcut]\nfrom=-2\n", "upstream asserts they agree"),
    ("[shortcut]\nfrom=0\nweights_type=per_pixel\n", "weights_type=per_pixel"),
    ("[convolutional]\nfilters=4\n[convolutional]\nfilters=4\nsize=3\nshare_index=0\n", "share_index=0"),
])
def test_alexeyab_layer_errors(body: str, match: str) -> None:
    head = "[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=1\n"
    with pytest.raises(CfgError, match=match):
        pdl.Network.from_text(head + body, flavor="alexeyab")


def test_alexeyab_unknown_iou_loss_is_iou_with_a_warning() -> None:
    text = TINY_AB.replace("iou_loss=ciou", "iou_loss=CIoU")
    with pytest.warns(pdl.DarknetQuirkWarning, match="iou_loss=CIoU: upstream reads any name other than"):
        net = pdl.Network.from_text(text, flavor="alexeyab")
    assert net.loss_layers[0][1].iou_loss == "iou"


def test_alexeyab_batch_clamps_to_1_where_pjreddie_refuses() -> None:
    text = "[net]\nbatch=-4\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=1\n"
    assert pdl.Network.from_text(text, flavor="alexeyab").batch == 1  # parse_network_cfg_custom: batch < 1 -> 1
    with pytest.raises(CfgError, match=r"line 2 \(batch=-4\), in \[net\] of line 1: batch/subdivisions\*time_steps = -4\*1 = -4"):
        pdl.Network.from_text(text)


def test_dilation_does_not_enter_alexeyabs_conv_output_size() -> None:
    """convolutional_out_height uses l.size, whatever the dilation."""
    text = "[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=4\nsize=3\ndilation=4\n"
    assert pdl.Network.from_text(text, flavor="alexeyab").shapes == [(4, 30, 30)]


def test_pjreddie_rules_live_in_their_own_module() -> None:
    from pydarknet_loss.files.flavors import alexeyab, pjreddie
    assert "yolo" in pjreddie.RULES and pjreddie.RULES["yolo"].__module__.endswith("flavors.pjreddie")
    assert alexeyab.FLAVOR.rules["yolo"].__module__.endswith("flavors.alexeyab")
    assert not hasattr(pdl.Network, "_l_convolutional")


def test_path_and_file_names_in_errors(tmp_path: Path) -> None:
    p = tmp_path / "my.cfg"
    p.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=2147483648\n")
    with pytest.raises(CfgError, match=r"my\.cfg, line 6 \(\[convolutional\]\): filters=2147483648: "
                                       r"'2147483648' does not fit a C int"):
        pdl.Network.from_cfg(p, flavor="alexeyab")

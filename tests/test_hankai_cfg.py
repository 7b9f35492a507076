"""Network.from_cfg(path, flavor="hankai"): hank-ai's C++ cfg reader
(darknet_cfg.cpp) with AlexeyAB's keys and sizes, checked against hank-ai's
own parse of its cfgs, and its fatal errors as CfgErrors naming file, line
and key."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import goldens_hankai as GH
import pydarknet_loss as pdl
from pydarknet_loss import hankai
from pydarknet_loss.files.cfg import CfgError
from pydarknet_loss.files.flavors import hankai as hf
from test_network_flavors import diff

CFG = GH.REPO.parent / "cfg"  # the six cfgs the shared cases' heads come from, with hank-ai's JSON
COPIED = ["yolov3", "yolov4", "yolov4-tiny", "yolov4-csp", "yolov7-tiny", "yolov7"]


def _compare(cfg: Path, up: dict, parsed_with: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = pdl.Network.from_cfg(cfg, flavor="hankai")
    ours = net.upstream_fields()
    custom = parsed_with != "parse_network_cfg"  # parse_network_cfg_custom(path, 1, 1): batch 1
    a, b = dict(ours["net"]), {k: v for k, v in up["net"].items() if k != "_end"}
    if custom:
        a.pop("batch"), b.pop("batch")
    assert diff(a, b, "net") == []
    mine = [l for l in ours["layers"] if l["type_name"] == "yolo"]
    theirs = [l for l in up["layers"] if l["type_name"] == "yolo"]
    assert len(mine) == len(theirs) > 0
    skip = {"type", "type_enum", "_end"} | ({"batch"} if custom else set())
    for x, y in zip(mine, theirs):
        assert diff({k: v for k, v in x.items() if k not in skip}, {k: v for k, v in y.items() if k not in skip},
                    f"layer {y['index']}") == []
    # every layer's sizes
    for x, y in zip(ours["layers"], up["layers"]):
        for k in ("w", "h", "c", "out_w", "out_h", "out_c"):
            assert x[k] == y[k], (y["index"], k)
    assert all(isinstance(l, hankai.YoloLayer) for _, l in net.loss_layers)


@pytest.mark.parametrize("name", COPIED)
def test_hankai_cfg_parses_to_upstreams_json(name: str) -> None:
    m = json.loads((CFG / "MANIFEST.json").read_text())
    f = next(f for f in m["files"] if f["cfg"] == f"{name}.cfg")
    _compare(CFG / f"{name}.cfg", json.loads((CFG / f"{name}.json").read_text()), f["parsed_with"])


@pytest.mark.skipif(GH.shared() is None, reason=GH.SHARED_REASON)
def test_every_shared_cfg_hankai_parsed_parses_the_same_or_is_refused_with_the_reason() -> None:
    root = GH.shared() / "cfg"
    m = json.loads((root / "MANIFEST.json").read_text())
    listed = {f["cfg"]: f for f in m["files"]}
    same, unmodelled = 0, []
    for cfg in sorted(root.glob("*.cfg")):
        if cfg.name not in listed:
            continue
        try:
            _compare(cfg, json.loads((root / listed[cfg.name]["json"]).read_text()), listed[cfg.name]["parsed_with"])
            same += 1
        except CfgError as exc:
            assert "not modelled by this package's hankai flavor" in str(exc), (cfg.name, exc)
            unmodelled.append(cfg.name)
    assert same == 32 and len(unmodelled) == 4


@pytest.mark.skipif(GH.shared() is None, reason=GH.SHARED_REASON)
def test_the_cfg_hankai_could_not_read_is_refused_for_its_reason() -> None:
    with pytest.raises(CfgError, match=r"yolov3-openimages.cfg, lines 3 and 6: duplicate key \"batch\" in \[net\]"):
        pdl.Network.from_cfg(GH.shared() / "cfg" / "yolov3-openimages.cfg", flavor="hankai")


def test_the_cfgs_heads_are_the_shared_cases_layers() -> None:
    """A shared case taken from a cfg head: the layer the hankai cfg flavor builds runs it bit for bit."""
    n = 0
    for path in GH.with_tag("cfg_head"):
        d = GH.load(path)
        p = d["params"]
        net = pdl.Network.from_cfg(CFG / p["source_cfg"], flavor="hankai")
        index, layer = net.loss_layers[p["source_head"]]
        assert index == p["net_index"]
        res = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]),
                            index=index)
        GH.assert_matches(res, d)
        n += 1
    assert n == 22


NET = "[net]\nbatch=2\nsubdivisions=1\nwidth=64\nheight=64\nchannels=3\n"
CONV = "[convolutional]\nsize=1\nstride=1\npad=1\nfilters=21\nactivation=linear\n"
YOLO = "[yolo]\nmask=0,1,2\nanchors=10,13, 16,30, 33,23\nclasses=2\nnum=3\n"


def net_of(text: str) -> pdl.Network:
    return pdl.Network.from_text(text, path="t.cfg", flavor="hankai")


def test_a_plain_cfg_reads_and_runs() -> None:
    net = net_of(NET + CONV + YOLO)
    (index, layer), = net.loss_layers
    assert isinstance(layer, hankai.YoloLayer) and layer.mask.tolist() == [0, 1, 2]
    x = np.zeros((2, 21, 64, 64), np.float32)
    res = net.forward([x], [np.zeros((0, 5), np.float32)] * 2)
    assert res.layers[index].stats is not None and res.layers[index].text.startswith("v3 mse loss, ")


@pytest.mark.parametrize("extra, match", [
    ("show_details=1\n", r"t.cfg, line 18 \(\[yolo\]\): show_details=1: hank-ai stops with 'config line #18 "
                         r"from section \[yolo\] is unused or invalid' \(hank-ai reads no show_details"),
    ("beta1=0.6\n", r"line 18 \(\[yolo\]\): beta1=0.6: .*unused or invalid"),
    ("classes=3\n", r"t.cfg, lines 16 and 18: duplicate key \"classes\" in \[yolo\]"),
    ("iou_loss=CIOU\n", r"line 18 \(\[yolo\]\): iou_loss=CIOU: IoU loss \"CIOU\" is not supported by hank-ai.*"
                        r"case-sensitive"),
    ("iou_loss=siou\n", r"iou_loss=siou: IoU loss \"siou\" is not supported"),
    ("iou_thresh_kind=Giou\n", r"iou_thresh_kind=Giou: .*not supported"),
    ("nms_kind=soft\n", r"nms_kind=soft: NMS kind \"soft\" is not supported"),
    ("iou_normalizer=7e-2\n", r"line 18 \(\[yolo\]\): iou_normalizer=7e-2: hank-ai expects a number made only of "
                              r"the characters -.0123456789"),
    ("ignore_thresh=0x1p-1\n", r"ignore_thresh=0x1p-1: hank-ai expects a number"),
    ("counters_per_class=10,20,30\n", r"line 18 \(\[yolo\]\): counters_per_class has 3 values but classes=2"),
    ("jitter=-\n", r"t.cfg, line 18: jitter=-: hank-ai fails to parse this numeric value"),
])
def test_hankai_parse_errors_name_file_line_and_key(extra: str, match: str) -> None:
    with pytest.raises(CfgError, match=match):
        net_of(NET + CONV + YOLO + extra)


def test_alexeyab_reads_what_hankai_refuses() -> None:
    """The same lines AlexeyAB's parser accepts (warning or falling back)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for extra in ("iou_normalizer=7e-2\n", "iou_loss=CIOU\n", "show_details=1\n"):
            pdl.Network.from_text(NET + CONV + YOLO + extra, path="t.cfg", flavor="alexeyab")


def test_unknown_section_names_are_fatal_and_case_sensitive() -> None:
    with pytest.raises(CfgError, match=r"t.cfg, line 7: layer name \"Convolutional\" is not supported by hank-ai"):
        net_of(NET + CONV.replace("[convolutional]", "[Convolutional]") + YOLO)
    with pytest.raises(CfgError, match=r"layer name \"local\" is not supported"):
        net_of(NET + "[local]\nsize=1\n" + CONV + YOLO)


def test_net_keys_hankai_no_longer_reads_and_policies() -> None:
    with pytest.raises(CfgError, match=r"t.cfg, line 7 \(\[net\]\): max_crop=448: hank-ai stops .*unused"):
        net_of(NET + "max_crop=448\n" + CONV + YOLO)
    with pytest.raises(CfgError, match=r"policy=stepz: learning rate policy \"stepz\" is not supported"):
        net_of(NET + "policy=stepz\n" + CONV + YOLO)


def test_more_anchors_than_num_would_write_past_the_biases() -> None:
    with pytest.raises(CfgError, match=r"anchors gives 8 values but num=3 holds 6: hank-ai writes every value"):
        net_of(NET + CONV + YOLO.replace("33,23", "33,23, 5,5"))


def test_lines_hankai_skips_and_comments_after_values() -> None:
    text = NET + CONV + "[yolo]\nmask = 0,1,2   # the first three\nanchors=10,13, 16,30, 33,23,\nclasses=2\n" \
        "num=3\nnot a key line\nrandom=\n# a comment\n"
    (_, layer), = net_of(text).loss_layers
    assert layer.mask.tolist() == [0, 1, 2] and layer.anchors.tolist() == [10, 13, 16, 30, 33, 23]


def test_numbers_round_once_to_float_and_ints_truncate() -> None:
    # std::stof rounds the decimal once to float; atof's double then float can differ.
    # 1.00000005960464477539062500001 lies just above the midpoint of 1 and the next float:
    # once rounded it is 1 + 2^-23; through the double it is the midpoint's double, then 1 (ties to even).
    assert hf.stof("1.00000005960464477539062500001") == np.float32(1 + 2**-23)
    assert np.float32(float("1.00000005960464477539062500001")) == np.float32(1)
    assert hf.stof("-.5") == np.float32(-.5) and hf.stof("1-2") == np.float32(1)
    assert hf.stof("-") is None and hf.stof(".") is None and hf.stof("1" + "0" * 40) is None
    with pytest.warns(pdl.DarknetQuirkWarning, match=r"expected an integer for 'classes' but found 2.5; it "
                                                     r"truncates to 2"):
        (_, layer), = net_of(NET + CONV + YOLO.replace("classes=2", "classes=2.5")).loss_layers
    assert layer.classes == 2


def test_int_arrays_take_runs_of_digits() -> None:
    (_, layer), = net_of(NET + CONV + YOLO.replace("mask=0,1,2", "mask=0;1 2")).loss_layers
    assert layer.mask.tolist() == [0, 1, 2]


def test_a_route_without_layer_numbers_is_refused() -> None:
    with pytest.raises(CfgError, match=r"\[route\] needs layers="):
        net_of(NET + CONV + "[route]\nlayers=x\n" + CONV + YOLO)

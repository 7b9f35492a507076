"""The cfg reader and shape inference: upstream's rules, checked against
what upstream's own parser made of upstream's cfgs and of ours."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss.files.cfg import CfgError, c_atof, c_atoi, parse_cfg_text

SHAPE_FIELDS = ("batch", "w", "h", "c", "out_w", "out_h", "out_c", "inputs", "outputs")
YOLO_FIELDS = {"classes": "classes", "n": "n", "total": "total", "max_boxes": "max_boxes", "random": "random"}
YOLO_FLOATS = ("jitter", "ignore_thresh", "truth_thresh")
REGION_FIELDS = {"classes": "classes", "n": "num", "coords": "coords", "max_boxes": "max_boxes",
                 "random": "random", "softmax": "softmax", "background": "background", "rescore": "rescore",
                 "bias_match": "bias_match", "log": "log", "sqrt": "sqrt", "absolute": "absolute",
                 "classfix": "classfix"}
REGION_FLOATS = ("jitter", "thresh", "coord_scale", "object_scale", "noobject_scale", "class_scale",
                 "mask_scale", "temperature")
# issue 23: YOLOv1's [detection] (pdl.DetectionLayer)
DETECTION_FIELDS = {"classes": "classes", "n": "num", "coords": "coords", "side": "side", "max_boxes": "max_boxes",
                    "random": "random", "softmax": "softmax", "rescore": "rescore", "sqrt": "sqrt",
                    "forced": "forced", "reorg": "reorg"}
DETECTION_FLOATS = ("jitter", "coord_scale", "object_scale", "noobject_scale", "class_scale")


def f32bits(v: Any) -> int:
    return int(np.float32(v).view(np.uint32))


# ---- the reader -----------------------------------------------------------

def test_c_number_parsing() -> None:
    assert c_atoi("3.7") == 3 and c_atoi("-2x") == -2 and c_atoi("abc") == 0 and c_atoi("") == 0
    assert c_atoi("+15") == 15
    assert c_atof("1e-3") == 0.001 and c_atof(".5,") == 0.5 and c_atof("0x1p-3") == 0.125
    assert c_atof("2.5abc") == 2.5 and c_atof("x") == 0.0 and c_atof("-inf") == float("-inf")
    with pytest.raises(CfgError, match="does not fit a C int"):
        c_atoi("99999999999")


def test_reader_strips_all_whitespace_and_keeps_the_first_key() -> None:
    text = "[net]\nwidth = 4 16\n\theight=8\n# comment\n; another\n\n[yolo]\nclasses=3\nclasses=5\nmask=0, 1,2\n"
    sections = parse_cfg_text(text)
    assert [s.type for s in sections] == ["[net]", "[yolo]"]
    net, yolo = sections
    assert net.get_int("width", 0) == 416  # "4 16" -> "416": spaces inside values go too
    assert net.get_int("height", 0) == 8
    assert yolo.get_int("classes", 20) == 3  # the first occurrence wins
    assert yolo.get_str("mask") == "0,1,2"
    assert [o.key for o in yolo.unused()] == ["classes"]  # the second one is never read


def test_reader_comments_are_whole_lines_only() -> None:
    s = parse_cfg_text("[net]\nsize=3#three\n")[0]
    assert s.get_str("size") == "3#three" and s.get_int("size", 0) == 3


def test_reader_line_without_equals_and_trailing_equals() -> None:
    s = parse_cfg_text("[net]\nflag\nwidth=8\n")[0]
    assert s.find("flag") is None and s.get_int("width", 0) == 8
    with pytest.raises(CfgError, match=r"line 2: 'width=' has no value"):
        parse_cfg_text("[net]\nwidth=\n")


def test_option_before_any_section() -> None:
    with pytest.raises(CfgError, match="line 1: option 'batch=1' before any"):
        parse_cfg_text("batch=1\n[net]\n")


def net_text(body: str) -> str:
    return "[net]\nwidth=32\nheight=32\nchannels=3\n" + body


def test_unknown_section_names_type_and_line() -> None:
    with pytest.raises(CfgError, match=r"line 5 \(\[convolution\]\): unknown section type \[convolution\]"):
        pdl.Network.from_text(net_text("[convolution]\nfilters=3\n"))


def test_crlf_section_names_are_refused_with_the_reason() -> None:
    with pytest.raises(CfgError, match="carriage return"):
        pdl.Network.from_text(net_text("[convolutional]\r\nfilters=3\r\n"))


def test_first_section_must_be_net() -> None:
    with pytest.raises(CfgError, match=r"must be \[net\] or \[network\]"):
        pdl.Network.from_text("[convolutional]\nfilters=3\n")


def test_batch_is_divided_by_subdivisions() -> None:
    n = pdl.Network.from_text(net_text("batch=64\nsubdivisions=16\n[maxpool]\nsize=2\nstride=2\n"))
    assert (n.batch, n.subdivisions) == (4, 16)
    assert n.shapes == [(3, 16, 16)]


def test_route_and_shortcut_indices_must_be_earlier_layers() -> None:
    with pytest.raises(CfgError, match="layers refers to layer 3, which is not an earlier layer"):
        pdl.Network.from_text(net_text("[maxpool]\nstride=2\n[route]\nlayers=3\n"))
    with pytest.raises(CfgError, match="needs from="):
        pdl.Network.from_text(net_text("[shortcut]\nactivation=linear\n"))


def test_yolo_size_must_match_the_previous_layer() -> None:
    text = net_text("[convolutional]\nfilters=20\nsize=1\n[yolo]\nclasses=3\nnum=3\nanchors=1,2,3,4,5,6\n")
    with pytest.raises(CfgError, match=r"n\*\(classes\+5\)\*w\*h .*= 24576 values per image, but the previous "
                                       r"layer outputs 20480"):
        pdl.Network.from_text(text)


def test_yolo_layer_errors_name_the_line() -> None:
    text = net_text("[convolutional]\nfilters=24\nsize=1\n[yolo]\nclasses=3\nnum=6\nmask=0,1,7\n"
                    "anchors=1,2,3,4,5,6,7,8,9,10,11,12\n")
    with pytest.raises(CfgError, match=r"line 8 \(\[yolo\]\), layer 1: mask\[2\] = 7 is not an anchor index"):
        pdl.Network.from_text(text)


def test_unused_fields_are_reported_as_upstream_does() -> None:
    with pytest.warns(pdl.DarknetCfgWarning, match="line 6: unused field 'filtres = 8'"):
        n = pdl.Network.from_text(net_text("[convolutional]\nfiltres=8\n"))
    assert n.unused == [(6, "filtres = 8")]


def test_map_and_tree_files_are_read_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "m.map").write_text("2\n0\n1\n")
    (tmp_path / "t.tree").write_text("a -1\nb -1\nc 0\n")
    text = net_text("[convolutional]\nfilters=8\nsize=1\n[region]\nclasses=3\nnum=1\nsoftmax=1\n"
                    "map=m.map\ntree=t.tree\n")
    n = pdl.Network.from_text(text, base_dir=tmp_path)
    layer = n.loss_layers[0][1]
    assert layer.map.tolist() == [2, 0, 1] and layer.tree.n == 3
    with pytest.raises(FileNotFoundError):
        pdl.Network.from_text(text, base_dir=tmp_path / "elsewhere")


# ---- our bundled cfgs against upstream's parse of them -----------------------

EXAMPLES = json.loads((G.HERE / "data" / "examples_upstream_parse.json").read_text())


@pytest.mark.parametrize("name", ["tiny-yolov3", "tiny-yolov2"])
def test_bundled_cfgs_parse_as_upstream_parses_them(name: str) -> None:
    n = pdl.Network.from_cfg(pdl.example_cfg(name))
    up = EXAMPLES[name]
    assert (n.batch, n.subdivisions, n.width, n.height, n.channels, n.inputs) == tuple(
        up["net"][k] for k in ("batch", "subdivisions", "w", "h", "c", "inputs"))
    assert len(n.layers) == len(up["layers"])
    for ours, theirs in zip(n.layers, up["layers"]):
        assert [getattr(ours, k) for k in SHAPE_FIELDS] == [theirs[k] for k in SHAPE_FIELDS], ours.index
        if "loss" in theirs:
            layer = ours.loss
            classes, count, total, max_boxes = (int(v) for v in theirs["loss"][:4])
            biases = [float.fromhex(v) for v in theirs["loss"][9:] if not v.startswith(("m", "tree", "map"))
                      and ("x" in v)][:len(layer.anchors)]
            assert layer.classes == classes and layer.max_boxes == max_boxes
            assert np.array_equal(layer.anchors, np.float32(biases))


# ---- upstream's own cfgs against upstream's own parse -------------------------

def upstream_cfgs() -> List[str]:
    root = G.shared_golden()
    if root is None:
        return []
    return sorted(p.name for p in (root / "cfg").glob("*.cfg"))


def check_cfg(name: str) -> None:
    root = G.shared_golden() / "cfg"
    up = json.loads((root / name.replace(".cfg", ".json")).read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pdl.DarknetCfgWarning)
        # upstream ran from the darknet root, where data/ files live; ours
        # are beside the cfg folder in the shared set.
        n = pdl.Network.from_cfg(root / name, base_dir=root.parent)
    net = up["net"]
    assert (n.batch, n.subdivisions, n.width, n.height, n.channels, n.inputs, n.time_steps, n.outputs,
            n.truths) == tuple(net[k] for k in ("batch", "subdivisions", "w", "h", "c", "inputs",
                                                  "time_steps", "outputs", "truths"))
    assert len(n.layers) == len(up["layers"])
    for ours, theirs in zip(n.layers, up["layers"]):
        assert ours.type == theirs["type_enum"].lower(), ours.index
        assert [getattr(ours, k) for k in SHAPE_FIELDS] == [theirs[k] for k in SHAPE_FIELDS], ours.index
        assert ours.params.get("truths", 0) == theirs["truths"], ours.index
    for index, layer in n.loss_layers:
        theirs: Dict[str, Any] = up["layers"][index]
        if layer.kind == "detection":  # issue 23
            for key, attr in DETECTION_FIELDS.items():
                assert getattr(layer, attr) == theirs[key], (index, key)
            for key in DETECTION_FLOATS:
                assert f32bits(getattr(layer, key)) == f32bits(theirs[key]), (index, key)
            assert theirs["biases"] is None
            continue
        ints, floats = (YOLO_FIELDS, YOLO_FLOATS) if layer.kind == "yolo" else (REGION_FIELDS, REGION_FLOATS)
        for key, attr in ints.items():
            assert getattr(layer, attr) == theirs[key], (index, key)
        for key in floats:
            assert f32bits(getattr(layer, key)) == f32bits(theirs[key]), (index, key)
        assert np.array_equal(layer.anchors.view(np.uint32), np.float32(theirs["biases"]).view(np.uint32))
        if layer.kind == "yolo":
            assert layer.mask.tolist() == theirs["mask"]
        else:
            assert int(layer.map is not None) == theirs["map_set"]
            assert int(layer.tree is not None) == theirs["softmax_tree_set"]
    assert sorted(u for _, u in n.unused) == sorted(u.strip() for u in up["_meta"]["unused_fields"])


@pytest.mark.skipif(G.shared_golden() is None, reason=G.SHARED_REASON)
@pytest.mark.parametrize("name", upstream_cfgs() or ["none"])
def test_upstream_cfg_parses_as_upstream_parsed_it(name: str) -> None:
    check_cfg(name)


@pytest.mark.skipif(G.shared_golden() is None, reason=G.SHARED_REASON)
def test_the_shared_cfg_set_is_all_there() -> None:
    assert len(upstream_cfgs()) == 41

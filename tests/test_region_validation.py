"""Bad input to the [region] oracle: clear exceptions, never a crash."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl

VOC = [1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52]
SMALL = G.HERE / "data" / "small.tree"


def layer(**kw: Any) -> pdl.RegionLayer:
    args: dict = dict(classes=4, anchors=VOC, softmax=True)
    args.update(kw)
    return pdl.RegionLayer(**args)


def x_for(l: pdl.RegionLayer, b: int = 2, h: int = 3, w: int = 4) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((b, l.channels, h, w)).astype(np.float32)


def truth(l: pdl.RegionLayer, b: int = 2, *rows: Any) -> np.ndarray:
    t = np.zeros((b, 30, l.coords + 1), np.float32)
    t[:, 0, :5] = [0.5, 0.5, 0.3, 0.3, 1]
    for img, r, vals in rows:
        t[img, r, :len(vals)] = vals
    return t


def test_defaults_are_parse_regions() -> None:
    l = pdl.RegionLayer(anchors=VOC)
    assert (l.coords, l.num, l.softmax, l.max_boxes) == (4, 5, 0, 30)
    assert l.thresh == np.float32(0.5)
    assert all(getattr(l, s) == 1 for s in ("coord_scale", "object_scale", "noobject_scale",
                                             "class_scale", "mask_scale"))


def test_channels_must_match_num_coords_classes() -> None:
    l = layer()
    with pytest.raises(ValueError, match=r"50 channels, expected 45 = n=5 \* \(coords=4 \+ 1 \+ classes=4\)"):
        l.forward(np.zeros((1, 50, 3, 4), np.float32), truth(l, 1))


def test_more_anchor_pairs_than_num() -> None:
    with pytest.raises(ValueError, match=r"10 values \(5 pairs\) but num is 3"):
        layer(num=3)


def test_fewer_anchor_pairs_than_num_keep_upstreams_half() -> None:
    l = layer(anchors=[1.0, 2.0], num=3)
    assert l.anchors.tolist() == [1.0, 2.0, 0.5, 0.5, 0.5, 0.5]


def test_truth_shape_is_30_rows_of_coords_plus_one() -> None:
    l = layer(coords=5)
    with pytest.raises(ValueError, match=r"\(2, 30, 6\)"):
        l.forward(x_for(l), np.zeros((2, 30, 5), np.float32))
    with pytest.raises(ValueError, match=r"truth\[0\] has 31 boxes.*at most 30"):
        l.forward(x_for(l), [np.full((31, 6), 0.5, np.float32), np.zeros((0, 6), np.float32)])


def test_wrong_dtype_and_non_arrays() -> None:
    l = layer()
    with pytest.raises(TypeError, match="float32"):
        l.forward(x_for(l).astype(np.float16), truth(l))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        l.forward(x_for(l), truth(l).tolist())


@pytest.mark.parametrize("x,y", [(1.0, 0.5), (0.5, 1.0), (0.5, -2.0)])
def test_cell_outside_the_grid(x: float, y: float) -> None:
    l = layer()
    with pytest.raises(ValueError, match=r"truth image 1, row 1 .*outside the 4x3 grid"):
        l.forward(x_for(l), truth(l, 2, (1, 1, [x, y, 0.2, 0.2, 0])))


def test_class_outside_range_after_map() -> None:
    l = layer(map=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*outside the map's 4 entries"):
        l.forward(x_for(l), truth(l, 2, (0, 1, [0.5, 0.5, 0.2, 0.2, 4])))
    with pytest.raises(ValueError, match=r"map\[0\] = 4 sends a class outside \[0, 4\)"):
        layer(map=[4])
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        layer().forward(x_for(layer()), truth(layer(), 2, (0, 1, [0.5, 0.5, 0.2, 0.2, 4.0])))


def test_classification_only_rows_need_a_tree() -> None:
    l = layer()
    with pytest.raises(ValueError, match="outside the 4x3 grid"):
        l.forward(x_for(l), truth(l, 2, (0, 1, [200000, 300000, 0.5, 0.5, 1])))


def test_classification_only_class_is_checked_against_the_tree() -> None:
    l = layer(classes=14, tree=SMALL, temperature=1.0, num=1, anchors=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*outside \[0, 14\)"):
        l.forward(x_for(l, 1, 1, 1), truth(l, 1, (0, 1, [200000, 300000, 0.5, 0.5, 14])))


def test_tree_must_have_one_node_per_class(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="14 nodes but classes is 4"):
        layer(tree=SMALL)
    bad = tmp_path / "bad.tree"
    bad.write_text("a -1\nb 7\n")
    with pytest.raises(ValueError, match="line 2"):
        layer(classes=2, tree=bad)
    with pytest.raises(FileNotFoundError):
        layer(tree=tmp_path / "nope.tree")


def test_tree_as_parent_array() -> None:
    l = layer(classes=3, tree=[-1, -1, 0])
    assert l.tree is not None and l.tree.groups == 2


@pytest.mark.parametrize("name,value", [("softmax", 2), ("background", -1), ("rescore", "yes")])
def test_flags_are_0_or_1(name: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        layer(**{name: value})


@pytest.mark.parametrize("name", ["thresh", "coord_scale", "object_scale", "noobject_scale",
                                  "class_scale", "mask_scale", "temperature"])
def test_scales_must_be_real(name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        layer(**{name: float("nan")})
    with pytest.raises(TypeError, match=name):
        layer(**{name: "1"})


def test_coords_below_4() -> None:
    with pytest.raises(ValueError, match="coords must be >= 4"):
        layer(coords=3)


def test_seen_must_be_a_non_negative_int() -> None:
    l = layer()
    with pytest.raises(ValueError, match="seen must be >= 0"):
        l.forward(x_for(l), truth(l), seen=-1)
    with pytest.raises(TypeError, match="seen must be an integer"):
        l.forward(x_for(l), truth(l), seen=1.5)


def test_rows_after_the_terminator_are_not_checked() -> None:
    l = layer()
    res = l.forward(x_for(l), truth(l, 2, (0, 2, [7.0, np.nan, -1, 0, 99])))
    assert res.stats.count == 2

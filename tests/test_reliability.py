"""Issue 11: no input reaches memory it does not own.  One test (at least)
per problem the issue lists; each names what it guards.  The fuzz harness
(tests/fuzz, test_api_fuzz.py) runs the same inputs as its first cases, in
forked children, and many more around them."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss._native import ffi, lib

SMALL = G.HERE / "data" / "small.tree"
TREE_FIELDS = ("parent", "child", "group", "leaf", "group_size", "group_offset")


def yolo(**kw: Any) -> pdl.YoloLayer:
    args: Dict[str, Any] = dict(classes=3, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    args.update(kw)
    return pdl.YoloLayer(**args)


def region(**kw: Any) -> pdl.RegionLayer:
    args: Dict[str, Any] = dict(classes=3, anchors=[1.0, 1.0, 2.0, 2.0])
    args.update(kw)
    return pdl.RegionLayer(**args)


def x_for(layer: Any, b: int = 1, h: int = 3, w: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((b, layer.channels, h, w)).astype(np.float32)


def truth(b: int = 1, rows: int = 90) -> np.ndarray:
    t = np.zeros((b, rows, 5), np.float32)
    t[:, 0] = [0.3, 0.3, 0.2, 0.2, 1]
    t[:, 1] = [0.7, 0.6, 0.4, 0.3, 2]
    return t


def misaligned(a: np.ndarray) -> np.ndarray:
    raw = np.zeros(a.nbytes + 1, np.uint8)
    m = raw[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    return m


# ---- 1. out= sharing memory with the truth ------------------------------------------

@pytest.mark.parametrize("which", ["output", "delta"])
def test_out_sharing_memory_with_the_truth_is_refused_yolo(which: str) -> None:
    l = yolo()
    x = x_for(l, 2)
    buf = np.zeros(x.size + 900, np.float32)
    shared = buf[:x.size].reshape(x.shape)
    t = buf[x.size - 10:x.size + 890].reshape(2, 90, 5)  # overlaps the end of `shared`
    t[...] = truth(2)
    out = (shared, np.zeros_like(x)) if which == "output" else (np.zeros_like(x), shared)
    with pytest.raises(ValueError, match=f"out {which} shares memory with truth"):
        l.forward(x, t, out=out)
    assert np.array_equal(t, truth(2))  # refused before anything was written


def test_out_sharing_memory_with_the_truth_is_refused_region() -> None:
    l = region()
    x = x_for(l)
    t = truth(1, 30)
    buf = np.zeros(x.size + t.size, np.float32)
    tv = buf[:t.size].reshape(t.shape)
    tv[...] = t
    with pytest.raises(ValueError, match="out delta shares memory with truth"):
        l.forward(x, tv, out=(np.zeros_like(x), buf[t.size // 2:t.size // 2 + x.size].reshape(x.shape)))


def test_out_sharing_memory_with_a_truth_list_element_is_fine_it_is_packed_first() -> None:
    l = yolo()
    x = x_for(l)
    buf = np.zeros(x.size + 10, np.float32)
    row = buf[x.size - 5:x.size + 5].reshape(2, 5)
    row[...] = truth(1)[0, :2]
    want = l.forward(x, [truth(1)[0, :2]])
    got = l.forward(x, [row], out=(buf[:x.size].reshape(x.shape), np.zeros_like(x)))
    assert G.bits_equal(got.delta, want.delta) and G.bits_equal(got.output, want.output)


def test_out_sharing_memory_with_x_or_each_other_is_refused() -> None:
    l = yolo()
    x = x_for(l)
    with pytest.raises(ValueError, match="out output shares memory with x"):
        l.forward(x, truth(), out=(x, np.zeros_like(x)))
    d = np.zeros_like(x)
    with pytest.raises(ValueError, match="output and delta must not share memory"):
        l.forward(x, truth(), out=(d, d))


def test_inputs_sharing_memory_with_each_other_is_fine() -> None:
    """x and truth are both only read: sharing memory changes nothing."""
    l = yolo()
    x, t = x_for(l), truth()
    buf = np.concatenate([x.ravel(), t.ravel()])
    a = l.forward(buf[:x.size].reshape(x.shape), buf[x.size:].reshape(t.shape))
    b = l.forward(x, t)
    assert G.bits_equal(a.delta, b.delta) and a.cost.tobytes() == b.cost.tobytes()


# ---- 2. the tree hang ------------------------------------------------------------------

def tree_layer(temperature: float) -> pdl.RegionLayer:
    return pdl.RegionLayer(classes=14, anchors=[1.0, 1.0], tree=SMALL, temperature=temperature, softmax=True)


def test_tree_detections_that_upstream_never_finishes_are_refused() -> None:
    l = tree_layer(1.0)
    out = np.abs(np.tanh(x_for(l, 1, 2, 2))).astype(np.float32)
    out[0, 5:] = 0  # no class above 0: upstream's walk returns to node 0's children forever
    with pytest.raises(ValueError, match=r"tree_thresh = -0\.01: upstream's hierarchy_top_prediction never returns for detection 0 \(anchor 0, row 0, "
                                         r"col 0\).*Expected tree_thresh >= 0"):
        l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=-0.01)


def test_tree_detections_at_temperature_0_with_negative_thresh_are_refused() -> None:
    l = tree_layer(0.0)
    with pytest.warns(pdl.DarknetQuirkWarning):
        out = l.forward(x_for(l, 1, 1, 1), train=False).output  # NaN probabilities
    assert np.isnan(out[0, 5:]).all()
    with pytest.raises(ValueError, match="tree_thresh"):
        l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=-0.5)
    # With tree_thresh >= 0 upstream returns (the root group's node 0), and so do we.
    d = l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=0.5)
    assert d.prob.shape == (1, 14)


def test_negative_tree_thresh_is_fine_where_upstream_returns() -> None:
    """With every probability above 0 upstream descends to a leaf whatever
    tree_thresh < 0 is; the bound changes nothing there."""
    l = tree_layer(1.0)
    out = np.full((1, l.channels, 1, 1), 0.5, np.float32)
    d = l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=-1.0, thresh=0.1)
    # Node 0 (vehicle) wins group 0 (ties keep the first), then car (3), then sedan (9): a leaf.
    assert np.flatnonzero(d.prob[0]).tolist() == [9]


def small_tree_c(keep: list) -> Any:
    t = pdl.read_tree(SMALL)
    arrays = {k: np.array(getattr(t, k)) for k in TREE_FIELDS}
    ct = ffi.new("tree *")
    ct.n, ct.groups = t.n, t.groups
    for k, a in arrays.items():
        keep.append(a)
        setattr(ct, k, ffi.cast("int *", ffi.from_buffer(a)))
    return ct, arrays


def test_c_hierarchy_top_prediction_is_bounded_and_says_so() -> None:
    keep: list = []
    ct, _ = small_tree_c(keep)
    zeros = np.zeros(14, np.float32)
    top = ffi.new("int *")
    assert lib.hierarchy_top_prediction_checked(ffi.cast("float *", ffi.from_buffer(zeros)), ct, -0.01, 1, top) \
        == lib.DN_E_TREE_LOOP
    assert lib.hierarchy_top_prediction(ffi.cast("float *", ffi.from_buffer(zeros)), ct, -0.01, 1) == 0
    # Where upstream returns, the same node: all zero and thresh >= 0 stops at the root group's first node.
    assert lib.hierarchy_top_prediction_checked(ffi.cast("float *", ffi.from_buffer(zeros)), ct, 0.0, 1, top) \
        == lib.DN_OK and top[0] == 0


# ---- 3. Tree and Labels built directly -----------------------------------------------------

def small_arrays() -> Dict[str, np.ndarray]:
    t = pdl.read_tree(SMALL)
    return {k: np.array(getattr(t, k)) for k in TREE_FIELDS}


def test_tree_built_directly_is_checked_against_its_parents() -> None:
    a = small_arrays()
    assert pdl.Tree(**a).groups == 7  # the same arrays: fine
    bad = dict(a, child=a["child"].copy())
    bad["child"][3] = 10**6
    with pytest.raises(ValueError, match=r"Tree child\[3\] = 1000000, but the parents give 4"):
        pdl.Tree(**bad)
    with pytest.raises(ValueError, match="Tree group has 3 entries; the 14 parents give 14"):
        pdl.Tree(**dict(a, group=a["group"][:3]))
    go = a["group_offset"].astype(np.int64)
    go[1] = 2**33 + 1
    with pytest.raises(ValueError, match=r"Tree group_offset\[1\] = 8589934593 does not fit a C int"):
        pdl.Tree(**dict(a, group_offset=go))
    with pytest.raises(TypeError, match="Tree leaf must be a 1-D integer array"):
        pdl.Tree(**dict(a, leaf=a["leaf"].astype(np.float32)))
    with pytest.raises(ValueError, match="Tree names has 2 entries for 14 nodes"):
        pdl.Tree(**a, names=("a", "b"))


def test_tree_arrays_are_read_only_for_good() -> None:
    t = pdl.Tree.from_parents([-1, 0, 0])
    with pytest.raises(ValueError, match="read-only"):
        t.child[0] = 5
    with pytest.raises(ValueError, match="WRITEABLE"):
        t.child.setflags(write=True)


def test_c_check_tree_refuses_out_of_range_indices() -> None:
    keep: list = []
    ct, arrays = small_tree_c(keep)
    assert lib.check_tree(ct) == lib.DN_OK
    for name, i, v, why in [("child", 3, 10**6, "child index"), ("group", 2, 99, "group index"),
                            ("group_offset", 1, 2**30, "past the last node"), ("parent", 5, 7, "parent")]:
        old = int(arrays[name][i])
        arrays[name][i] = v
        assert lib.check_tree(ct) == lib.DN_E_LAYER
        assert why in ffi.string(lib.tree_problem(ct)).decode()
        arrays[name][i] = old
    assert lib.check_tree(ct) == lib.DN_OK


def test_labels_built_directly_follow_read_labels_rules() -> None:
    with pytest.raises(ValueError, match=r"Labels ids\[0\] = -7: expected a class id >= 0"):
        pdl.Labels(ids=np.array([-7], np.int32), boxes=np.array([[0.5, 0.5, 0.2, 0.2]], np.float32))
    with pytest.raises(ValueError, match=r"Labels boxes\[1\] = \(nan, 0.5, 0.2, 0.2\): expected x, y, w, h in \[0, 1\]"):
        pdl.Labels(ids=np.array([1, 2], np.int32),
                   boxes=np.array([[0.5, 0.5, 0.2, 0.2], [np.nan, 0.5, 0.2, 0.2]], np.float32))
    with pytest.raises(TypeError, match="Labels boxes must have dtype float32"):
        pdl.Labels(ids=np.array([1], np.int32), boxes=np.array([[0.5, 0.5, 0.2, 0.2]]))
    with pytest.raises(ValueError, match=r"Labels boxes must have shape \(1, 4\)"):
        pdl.Labels(ids=np.array([1], np.int32), boxes=np.zeros((1, 3), np.float32))
    lab = pdl.Labels(ids=[1], boxes=np.array([[0.5, 0.5, 0.2, 0.2]], np.float32))
    assert lab.ids.dtype == np.int32 and not lab.ids.flags.writeable


# ---- 4. misaligned and byte-swapped arrays --------------------------------------------------

def test_misaligned_arrays_are_copied_and_give_the_same_bits() -> None:
    l = yolo()
    x, t = x_for(l, 2), truth(2)
    mx, mt = misaligned(x), misaligned(t)
    assert not mx.flags.aligned and not mt.flags.aligned and mx.flags.c_contiguous
    a, b = l.forward(mx, mt, net_w=64, net_h=64), l.forward(x, t, net_w=64, net_h=64)
    assert G.bits_equal(a.output, b.output) and G.bits_equal(a.delta, b.delta)
    assert a.output.flags.aligned
    boxes = np.random.default_rng(1).uniform(0, 1, (5, 4)).astype(np.float32)
    assert G.bits_equal(pdl.box_iou(misaligned(boxes), boxes[::-1].copy()), pdl.box_iou(boxes, boxes[::-1].copy()))
    d = pdl.Detections(bbox=misaligned(boxes), objectness=misaligned(boxes[:, 0].copy()),
                       prob=misaligned(boxes[:, 1:].copy()), sort_class=misaligned(np.zeros(5, np.int32)))
    assert all(getattr(d, k).flags.aligned for k in ("bbox", "objectness", "prob", "sort_class"))


def test_misaligned_out_arrays_are_refused() -> None:
    l = yolo()
    x = x_for(l)
    with pytest.raises(ValueError, match="out output must be C-contiguous, aligned and writable"):
        l.forward(x, truth(), out=(misaligned(np.zeros_like(x)), np.zeros_like(x)))


def test_byte_swapped_arrays_are_refused_everywhere() -> None:
    l = yolo()
    x = x_for(l)
    with pytest.raises(TypeError, match="x must have dtype float32 \\(native byte order\\), got >f4"):
        l.forward(x.astype(">f4"), truth())
    with pytest.raises(TypeError, match="output must have dtype float32"):
        l.detections(np.abs(x).astype(">f4"), img_w=10, img_h=10)
    with pytest.raises(TypeError, match="bbox must have dtype float32"):
        pdl.Detections(bbox=np.zeros((1, 4), ">f4"), objectness=np.ones(1, np.float32),
                       prob=np.ones((1, 1), np.float32))


# ---- 5. attributes changed after construction ------------------------------------------------

def test_layer_attributes_are_read_only() -> None:
    l = yolo(anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119], mask=[3, 4, 5])
    with pytest.raises(AttributeError, match="YoloLayer.anchors is read-only"):
        l.anchors = np.array([10, 13], np.float32)
    with pytest.raises(ValueError, match="read-only"):
        l.anchors[0] = 1
    with pytest.raises(ValueError, match="WRITEABLE"):
        l.mask.setflags(write=True)
    r = region()
    with pytest.raises(AttributeError, match="RegionLayer.thresh is read-only"):
        r.thresh = 2.0
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del r.classes


def test_a_layer_changed_behind_its_back_is_refused_not_overrun() -> None:
    l = yolo(anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119], mask=[3, 4, 5])
    object.__setattr__(l, "anchors", np.array([10, 13], np.float32))
    with pytest.raises(ValueError, match="anchors: expected a C-contiguous, aligned float32 array of 12 values"):
        l.forward(x_for(l), truth())
    l = yolo()
    object.__setattr__(l, "mask", np.array([0, 9, 1], np.int32))
    with pytest.raises(ValueError, match="a mask index lies outside"):
        l.forward(x_for(l), truth())
    l = yolo()
    object.__setattr__(l, "max_boxes", 2**31)
    with pytest.raises(ValueError, match="max_boxes = 2147483648 does not fit the C layer"):
        l.forward(x_for(l), truth())


def test_detections_changed_behind_their_back_are_refused() -> None:
    d = pdl.Detections(bbox=np.ones((2, 4), np.float32), objectness=np.ones(2, np.float32),
                       prob=np.ones((2, 6), np.float32))
    d.prob.shape = (6, 2)
    with pytest.raises(ValueError, match=r"prob has shape \(6, 2\), not \(n, classes\) for the 2 detections"):
        pdl.nms_sort(d)


# ---- 6. silent accepts --------------------------------------------------------------------------

def test_pack_truth_refuses_what_read_labels_refuses() -> None:
    with pytest.raises(ValueError, match=r"labels\[0\] boxes\[0\] = \(nan, 0.5, 0.2, 0.2\)"):
        pdl.pack_truth([np.array([[1, np.nan, 0.5, 0.2, 0.2]], np.float32)])
    with pytest.raises(ValueError, match=r"labels\[0\] row 1: class id -3.0: expected a whole number in \[0, "):
        pdl.pack_truth([np.array([[1, .5, .5, .2, .2], [-3, 0.5, 0.5, 0.2, 0.2]], np.float32)])
    with pytest.raises(ValueError, match=r"labels\[0\] row 0: class id 3000000000.0"):
        pdl.pack_truth([np.array([[3e9, 0.5, 0.5, 0.2, 0.2]], np.float32)])
    with pytest.raises(ValueError, match="flip must be 0 or 1"):
        pdl.pack_truth([], flip=2)


@pytest.mark.parametrize("name", ["thresh", "object_scale", "noobject_scale", "temperature"])
def test_floats_beyond_float32_are_refused_not_made_inf(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} = 1e\\+39 does not fit a float32 .* expected \\|{name}\\| <= "
                                         "3.40282347e\\+38"):
        region(**{name: 1e39})
    assert float(region(**{name: 3.4028234e38}).__dict__[name]) == float(np.float32(3.4028234e38))


def test_anchor_arrays_follow_the_list_rules() -> None:
    for anchors in ([1e300, 1.0], np.array([1e300, 1.0]), np.array([1e39, 1.0]), (1e39, 1.0)):
        with pytest.raises(ValueError, match=r"anchors\[0\] = .* does not fit a float32"):
            yolo(anchors=anchors, mask=[0])
    with pytest.raises(ValueError, match=r"anchors\[0\] = 1e-50 is 0.0 as a float32: anchor sizes must be positive"):
        yolo(anchors=[1e-50, 1.0], mask=[0])
    assert np.array_equal(yolo(anchors=np.array([10, 13]), mask=[0]).anchors, np.float32([10, 13]))


def test_masked_arrays_are_refused() -> None:
    l = yolo()
    x = x_for(l)
    mx = np.ma.masked_array(x, mask=np.zeros(x.shape, bool))
    with pytest.raises(TypeError, match="x is a numpy masked array"):
        l.forward(mx, truth())
    with pytest.raises(TypeError, match="truth is a numpy masked array"):
        l.forward(x, np.ma.masked_array(truth()))
    with pytest.raises(TypeError, match="mask is a numpy masked array"):
        yolo(mask=np.ma.masked_array([0, 1, 2], mask=[1, 0, 0]))
    with pytest.raises(TypeError, match="anchors is a numpy masked array"):
        yolo(anchors=np.ma.masked_array([1.0, 2.0]), mask=[0])
    with pytest.raises(TypeError, match="a is a numpy masked array"):
        pdl.box_iou(np.ma.masked_array(np.zeros(4, np.float32)), np.zeros(4, np.float32))


def test_a_label_line_starting_with_nul_is_not_blank(tmp_path: Path) -> None:
    f = tmp_path / "nul.txt"
    f.write_bytes(b"1 0.5 0.5 0.2 0.2\n\x00 junk\n")
    with pytest.raises(ValueError, match="nul.txt, line 2: the line holds a NUL byte"):
        pdl.read_labels(f)
    f.write_bytes(b"1 0.5 0.5 0.2 0.2\x00 trailing\n")
    with pytest.raises(ValueError, match="line 1: the line holds a NUL byte"):
        pdl.read_labels(f)
    t = tmp_path / "nul.tree"
    t.write_bytes(b"a -1\nb\x00 -1\n")
    with pytest.raises(ValueError, match="nul.tree, line 2: .*no NUL byte"):
        pdl.read_tree(t)


# ---- 7. messages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["net_w", "net_h", "index"])
def test_c_ints_are_named_when_too_large(name: str) -> None:
    l = yolo()
    with pytest.raises(ValueError, match=f"{name} = 2147483648 does not fit the C core's int"):
        l.forward(x_for(l), truth(), **{name: 2**31})


def test_sizes_that_do_not_fit_are_named() -> None:
    with pytest.raises(ValueError, match="classes = 1099511627776 does not fit the C core's int"):
        yolo(classes=2**40)
    with pytest.raises(ValueError, match=r"coords = 71582788: the truth stride 30\*\(coords\+1\) does not fit"):
        region(classes=1, anchors=[1.0, 1.0], coords=71582788)
    with pytest.raises(ValueError, match="ignore_thresh = 1000.* is too large for a real number"):
        yolo(ignore_thresh=10**400)
    with pytest.raises(ValueError, match="total = 1000000000 anchors: more than 1048576 is refused"):
        yolo(total=10**9)  # 8 GB of anchors and 10**9 comparisons per truth: refused before allocating
    with pytest.raises(ValueError, match="num = 2147483648 does not fit the C core's int"):
        region(num=2**31)


def test_the_c_core_says_why_it_refuses_a_layer() -> None:
    """The layer_problem string reaches the message (here through a layer
    whose tree was swapped behind its back for one of another size)."""
    l = region(classes=14, anchors=[1.0, 1.0], tree=SMALL, temperature=1.0)
    object.__setattr__(l, "tree", pdl.Tree.from_parents([-1, 0]))
    with pytest.raises(ValueError, match=r"the C core refused RegionLayer\(.*\) on a 1x1 grid: the tree's node count "
                                         "differs from classes"):
        l.forward(np.zeros((1, l.channels, 1, 1), np.float32), train=False)


@pytest.mark.parametrize("kind,what", [("dir", "is a directory"), ("fifo", r"is a FIFO \(named pipe\)"),
                                       ("dev", "is a character device")])
def test_label_and_tree_paths_that_are_not_files_say_what_they_are(tmp_path: Path, kind: str, what: str) -> None:
    if kind == "dir":
        p = str(tmp_path)
        err: Any = IsADirectoryError
    elif kind == "fifo":
        p = str(tmp_path / "fifo")
        os.mkfifo(p)
        err = ValueError
    else:
        p, err = "/dev/null", ValueError
    with pytest.raises(err, match=f"label file {p} {what}: expected a regular file"):
        pdl.read_labels(p)
    with pytest.raises(err, match=f"tree file {p} {what}"):
        pdl.read_tree(p)
    with pytest.raises(FileNotFoundError, match="label file not found"):
        pdl.read_labels(tmp_path / "missing.txt")


def test_no_raw_numpy_or_cffi_errors() -> None:
    d = pdl.Detections(bbox=np.zeros((3, 4), np.float32), objectness=np.ones(3, np.float32),
                       prob=np.ones((3, 2), np.float32), order=np.zeros(3, np.int32))
    assert len(pdl.nms_sort(d)) == 3
    with pytest.raises(TypeError, match=r"order must be an int32 array of shape \(3,\)"):
        pdl.Detections(bbox=np.zeros((3, 4), np.float32), objectness=np.ones(3, np.float32),
                       prob=np.ones((3, 2), np.float32), order=np.zeros(1, np.int32))
    l = yolo()
    with pytest.raises(ValueError, match="relative must be 0 or 1"):
        l.detections(np.abs(x_for(l)), img_w=10, img_h=10, relative=2)
    with pytest.raises(TypeError, match=r"relative must be a bool \(or 0 or 1\), got ndarray"):
        l.detections(np.abs(x_for(l)), img_w=10, img_h=10, relative=np.array([True, False]))
    with pytest.raises(ValueError, match=r"box_label|Labels boxes must have shape \(1, 4\)"):
        pdl.pack_truth([pdl.Labels(ids=np.array([1], np.int32), boxes=np.zeros((1, 3), np.float32))])


def test_warnings_do_not_hide_casts() -> None:
    """No numpy RuntimeWarning on the way to C for in-range values."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        region(thresh=3.4028234e38, object_scale=-3.4028234e38)
        yolo(anchors=np.array([1e-3, 1e38]), mask=[0])

"""Bad input to alexeyab.YoloLayer: a clear exception that says what and
where, never a crash, a silent cast or upstream's out-of-bounds write."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import goldens_ab as GA
import pydarknet_loss as pdl
from pydarknet_loss import alexeyab

ANCHORS = [10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319]


def layer(**kw):  # type: ignore[no-untyped-def]
    args = dict(classes=2, anchors=ANCHORS, mask=[3, 4, 5], max_boxes=4)
    args.update(kw)
    return alexeyab.YoloLayer(**args)


def x_for(l: alexeyab.YoloLayer, b: int = 1, h: int = 3, w: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((b, l.channels, h, w)).astype(np.float32)


def test_import_paths() -> None:
    from pydarknet_loss import alexeyab as ab
    assert ab is pdl.alexeyab and "alexeyab" in pdl.__all__


def test_constructor_defaults_are_parse_yolos() -> None:
    l = alexeyab.YoloLayer(anchors=[10, 13, 16, 30])
    assert (l.classes, l.total, l.max_boxes, l.mask.tolist()) == (20, 2, 200, [0, 1])
    assert (float(l.ignore_thresh), float(l.truth_thresh), float(l.iou_thresh)) == (0.5, 1.0, 1.0)
    assert l.iou_loss == "mse" and l.iou_thresh_kind == "iou" and l.max_delta is None
    assert l.iou_normalizer == np.float32(0.75) and l.show_details == 1 and l.scale_x_y == 1


def test_anchors_fewer_than_total_leave_half_and_more_are_ignored() -> None:
    l = alexeyab.YoloLayer(anchors=[10, 13, 16], total=3)
    assert l.anchors.tolist() == [10, 13, 16, 0.5, 0.5, 0.5]
    with pytest.warns(pdl.DarknetQuirkWarning, match="reads only the first 2"):
        l = alexeyab.YoloLayer(anchors=[10, 13, 16, 30], total=1)
    assert l.anchors.tolist() == [10, 13]


@pytest.mark.parametrize("kw, match", [
    (dict(iou_loss="CIoU"), "iou_loss must be one of"),
    (dict(iou_thresh_kind="mse"), "iou_thresh_kind must be one of"),
    (dict(mask=[3, 6]), r"mask\[1\] = 6 is not an anchor index"),
    (dict(counters_per_class=[1, 2, 3]), "counters_per_class has 3 values but classes is 2"),
    (dict(map=[0, 2]), r"map\[1\] = 2 sends class 1 outside \[0, 2\)"),
    (dict(max_boxes=-1), "max_boxes must be >= 0"),
    (dict(scale_x_y=float("nan")), "scale_x_y must be finite"),
    (dict(truth_thresh=-1, max_boxes=0), "no row 0"),
    (dict(classes=0), "classes must be >= 1"),
    (dict(new_coords=1.5), "new_coords must be an integer"),
])
def test_bad_options(kw: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        layer(**kw)


def test_x_must_be_float32_of_the_layers_channels() -> None:
    l = layer()
    with pytest.raises(TypeError, match="float32"):
        l.forward(x_for(l).astype(np.float64), [np.zeros((0, 5), np.float32)])
    with pytest.raises(ValueError, match=r"x has 20 channels, expected 21"):
        l.forward(np.zeros((1, 20, 3, 3), np.float32), [np.zeros((0, 5), np.float32)])


def test_truth_shapes() -> None:
    l = layer()
    x = x_for(l, b=2)
    with pytest.raises(ValueError, match=r"truth must have shape \(2, 4, 6\)"):
        l.forward(x, np.zeros((2, 90, 5), np.float32))
    with pytest.raises(ValueError, match=r"truth\[1\] must have shape \(k, 5\)"):
        l.forward(x, [np.full((1, 5), 0.5, np.float32), np.full((1, 4), 0.5, np.float32)])
    with pytest.raises(ValueError, match=r"truth\[0\] has 5 boxes; the layer's truth buffer holds max_boxes = 4"):
        l.forward(x, [np.full((5, 5), 0.5, np.float32), np.zeros((0, 5), np.float32)])
    with pytest.raises(ValueError, match="train=True needs truth"):
        l.forward(x)


def test_list_truth_packs_like_the_buffer_and_5_columns_mean_track_id_0() -> None:
    l = layer()
    x = x_for(l, b=2)
    rows = np.array([[0.5, 0.4, 0.3, 0.2, 1]], np.float32)
    packed = np.zeros((2, 4, 6), np.float32)
    packed[0, 0, :5] = rows
    a = l.forward(x, [rows, np.zeros((0, 6), np.float32)])
    b = l.forward(x, packed)
    assert np.array_equal(a.delta, b.delta) and np.array_equal(a.labels, b.labels)
    assert a.labels.max() == 0  # track id 0


@pytest.mark.parametrize("row, match", [
    ([1.0, 0.5, 0.2, 0.2, 0, 0], r"outside the 3x3 grid"),
    ([0.5, 1.2, 0.2, 0.2, 0, 0], "Wrong label"),
    ([-0.01, 0.5, 0.2, 0.2, 0, 0], "Wrong label"),
    ([0.5, 0.5, -0.2, 0.2, 0, 0], "Wrong label"),
    ([0.5, 0.5, np.nan, 0.2, 0, 0], "NaN or an infinity"),
    ([0.5, 0.5, 0.2, 0.2, 0, np.inf], "NaN or an infinity"),
    ([0.5, 0.5, 0.2, 0.2, 3e9, 0], "does not fit a C int"),
    ([0.5, 0.5, 0.2, 0.2, 0, -3e9], "does not fit a C int"),
])
def test_truth_rows_upstream_would_misuse_are_refused_with_image_and_row(row: list, match: str) -> None:
    l = layer()
    t = [np.array([[0.3, 0.3, 0.2, 0.2, 1, 0], row], np.float32)]
    with pytest.raises(ValueError, match=r"truth image 0, row 1 .*" + match):
        l.forward(x_for(l), t)


def test_a_map_must_cover_the_class_ids_used() -> None:
    l = layer(map=[1])
    with pytest.raises(ValueError, match="outside the map's 1 entries"):
        l.forward(x_for(l), [np.array([[0.3, 0.3, 0.2, 0.2, 1]], np.float32)])


def test_out_of_range_class_ids_are_not_refused_but_skipped() -> None:
    l = layer()
    res = l.forward(x_for(l), [np.array([[0.3, 0.3, 0.2, 0.2, 7], [0.6, 0.6, 0.2, 0.2, -1]], np.float32)])
    assert res.skipped_truths == 2 and res.total_bbox == 0
    assert res.text.count("Warning: in txt-labels class_id=7 >= classes=2") == l.n * 9


def test_truth_thresh_below_zero_needs_a_usable_row_0() -> None:
    l = layer(truth_thresh=-0.5)
    t = np.zeros((1, 4, 6), np.float32)
    t[0, 0] = [0.5, 0.5, 0.2, 0.2, 5, 0]  # skipped by upstream, yet every cell reads its class
    with pytest.raises(ValueError, match=r"row 0 .*truth_thresh = -0.5 < 0"):
        l.forward(x_for(l), t)
    t[0, 0, 4] = 1
    assert l.forward(x_for(l), t).total_bbox >= l.n * 9


def test_rows_after_the_terminator_are_not_checked() -> None:
    l = layer()
    t = np.zeros((1, 4, 6), np.float32)
    t[0, 0] = [0.5, 0.5, 0.2, 0.2, 1, 0]
    t[0, 2] = [5.0, np.nan, -1, 0, 1e12, 0]  # never read
    l.forward(x_for(l), t)


def test_x0_rows_in_a_list_warn() -> None:
    l = layer()
    with pytest.warns(pdl.DarknetQuirkWarning, match=r"row 0 has x == 0"):
        l.forward(x_for(l), [np.array([[0, 0.5, 0.2, 0.2, 1], [0.5, 0.5, 0.2, 0.2, 1]], np.float32)])


def test_train_false_needs_no_truth_and_leaves_labels_at_minus_1() -> None:
    l = layer()
    res = l.forward(x_for(l), train=False)
    assert res.stats is None and res.cost == 0 and res.count == -1 and np.all(res.labels == -1)
    assert not np.any(res.delta) and res.text == ""


def test_out_buffers() -> None:
    l = layer()
    x = x_for(l)
    out = (np.empty_like(x), np.empty_like(x))
    res = l.forward(x, [np.array([[0.5, 0.5, 0.2, 0.2, 1]], np.float32)], out=out)
    assert res.output is out[0] and res.delta is out[1]
    with pytest.raises(ValueError, match="share memory"):
        l.forward(x, [np.zeros((0, 5), np.float32)], out=(x, out[1]))


def test_sizes_beyond_a_c_int_are_refused_before_allocation() -> None:
    l = alexeyab.YoloLayer(classes=2, anchors=ANCHORS, mask=[0], max_boxes=2**29)
    with pytest.raises(ValueError, match=r"batch\*max_boxes\*6 = 2\*536870912\*6 = 6442450944 floats, more than a C int"):
        l.forward(np.zeros((2, l.channels, 1, 1), np.float32), [np.zeros((0, 5), np.float32)] * 2)


def test_layer_from_params_round_trips_a_golden_case() -> None:
    d = GA.load(GA.REPO / "case_0046_yolo_ab.npz")
    l = alexeyab.layer_from_params(d["params"])
    again = alexeyab.YoloLayer(**l.params())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GA.assert_matches(again.forward(d["input"], d["truth"], net_w=d["params"]["net_w"],
                                        net_h=d["params"]["net_h"], index=d["params"]["net_index"]), d)


def test_the_c_core_refuses_what_python_would_have(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The C API checks on its own (for C/C++ users of make lib): a truth
    outside the grid gives DN_E_TRUTH_CELL before any buffer is touched."""
    from pydarknet_loss import _native
    l = layer()
    call = _native.ABCall(l._spec(), 1, 3, 3)
    t = np.zeros((1, 4, 6), np.float32)
    t[0, 0] = [1.0, 0.5, 0.2, 0.2, 0, 0]
    call.delta[...] = 7
    rc = call.forward(x_for(l), t, train=True, net_w=416, net_h=416, index=0)
    assert rc == _native.lib.DN_E_TRUTH_CELL and np.all(call.delta == 7)


def test_c_program_runs_the_alexeyab_layer_and_agrees_with_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess
    from pathlib import Path
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    root = Path(__file__).resolve().parent.parent
    src = root / "darknet_src"
    exe = tmp_path / "ab_yolo_api"
    subprocess.run([cc, "-std=c99", "-O2", "-fno-fast-math", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
                    "-I", str(src), str(root / "tests" / "c" / "ab_yolo_api.c"),
                    *(str(src / f) for f in ("ab_yolo_layer.c", "ab_box.c", "box.c", "utils.c", "ab_fast.c",
                                             "ab_fast_avx2.c", "fast.c", "fast_avx2.c", "parallel.c", "activations.c")),
                    "-lm", "-pthread", "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    head = lines[0].split()
    assert head[:2] == ["rc", "0"]
    values = np.array([[float.fromhex(v) for v in ln.split()] for ln in lines[1:-1]], dtype=np.float32)
    l = layer(iou_loss="ciou", iou_normalizer=.07, scale_x_y=1.05, iou_thresh=.213, max_delta=5)
    x = np.array([((i * 37) % 11 - 5) / 4 for i in range(3 * 7 * 4)], dtype=np.float32).reshape(1, 21, 2, 2)
    res = l.forward(x, [np.array([[.3, .6, .3, .4, 1, 7]], np.float32)], net_w=416, net_h=416, index=30)
    assert np.array_equal(values[:, 0], res.output.ravel()) and np.array_equal(values[:, 1], res.delta.ravel())
    assert float.fromhex(head[3]) == res.cost and int(head[5]) == res.count
    assert int(head[9]) == res.total_bbox
    assert lines[-1] == "refused -4 1 untouched 1"

"""compare / assert_parity on constructed differences: one ULP, a truth on
another anchor or cell, an ignored cell treated as negative, a missing
class short-circuit, NHWC layout, tolerances, the report and its picture."""
from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss.parity.compare import ulp_distance

NAMES = {c["name"]: c["file"] for c in G.manifest(G.EXTRA_GOLDEN) if c["kind"] == "yolo"}


def oracle(name: str):  # type: ignore[no-untyped-def]
    d = G.load(G.EXTRA_GOLDEN / "cases" / NAMES[name])
    p = d["params"]
    layer = G.yolo_layer(p)
    res = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], index=p["net_index"])
    return d, layer, res


def copy(res: Any) -> Dict[str, Any]:
    return {"output": res.output.copy(), "delta": res.delta.copy(), "cost": np.float32(res.cost)}


def test_ulp_distance() -> None:
    one = np.float32(1)
    assert ulp_distance(one, np.nextafter(one, np.float32(2))) == 1
    assert ulp_distance(np.float32(-0.0), np.float32(0.0)) == 0
    assert ulp_distance(np.float32(-1e-45), np.float32(1e-45)) == 2
    assert ulp_distance(np.float32(np.nan), np.float32(np.nan)) == 0
    assert ulp_distance(np.float32(np.nan), one) == np.iinfo(np.int64).max


def test_identical_results_pass_exactly() -> None:
    _, layer, res = oracle("yolov3_head")
    report = pdl.compare(res, copy(res), layer)
    assert report.ok and report.mismatches == 0 and not report.causes
    # Without input and truth the default (float32) cannot be computed: the
    # comparison is exact, and the first line says so.
    assert str(report).startswith("[yolo] parity OK (tolerance: exact; float32, the default, needs input= and "
                                  "truth=)")
    assert pdl.assert_parity(res, copy(res), layer).ok


def test_one_ulp_is_found_named_and_tolerated_on_request() -> None:
    d, layer, res = oracle("yolov3_head")
    act = copy(res)
    b, c, r, col = 1, 85 + 2, 4, 7  # mask index 1, entry 2 (w)
    act["delta"][b, c, r, col] = np.nextafter(act["delta"][b, c, r, col], np.float32(np.inf))
    report = pdl.compare(res, act, layer)
    assert not report.ok and report.mismatches == 1
    w = next(x for x in report.components if x.array == "delta" and x.component == "w")
    assert (w.mismatches, w.max_ulp) == (1, 1)
    loc = report.worst[0]
    assert (loc.image, loc.anchor, loc.row, loc.col, loc.component, loc.ulp) == (1, 1, 4, 7, "w", 1)
    # Anchors are named as the cfg's anchor index and the mask index.
    assert loc.cfg_anchor == int(layer.mask[1])
    assert f"delta[image 1, anchor {int(layer.mask[1])} (mask 1), row 4, col 7, w]" in str(report)
    assert pdl.compare(res, act, layer, max_ulp=1).ok
    assert pdl.compare(res, act, layer, atol=1e-6).ok
    with pytest.raises(AssertionError, match=r"delta  w .* 1 ulp"):
        pdl.assert_parity(res, act, layer)
    # Within darknet's own rounding: float32 tolerance passes it, and with
    # input and truth the exact comparison names the cause.
    kw = dict(input=d["input"], truth=d["truth"], net_w=d["params"]["net_w"], net_h=d["params"]["net_h"])
    assert pdl.compare(res, act, layer, tolerance="float32", **kw).ok
    exact = pdl.compare(res, act, layer, tolerance="exact", **kw)
    assert [c.code for c in exact.causes] == ["float_rounding"] and exact.causes[0].count == 1
    assert exact.worst[0].cause == "float_rounding"


def test_headroom_is_shown_when_the_comparison_passes() -> None:
    d, layer, res = oracle("yolov3_head")
    act = copy(res)
    act["delta"] = np.nextafter(act["delta"], np.float32(np.inf))  # 1 ULP everywhere
    report = pdl.compare(res, act, layer, max_ulp=1)
    assert report.ok
    rows = {c.component: c for c in report.components if c.array == "delta"}
    assert rows["x"].max_ulp == 1 and rows["x"].max_abs > 0 and rows["x"].max_rel is not None
    assert "1 ulp" in str(report)


def test_ulps_only_between_values_of_one_sign_and_no_relative_error_against_zero() -> None:
    _, layer, res = oracle("yolov3_head")
    act = copy(res)
    d = act["delta"]
    flat = d.reshape(-1)
    pos = int(np.flatnonzero(flat > 0.5)[0])
    zero = int(np.flatnonzero(flat == 0)[0])
    flat[pos] = -flat[pos]  # a sign flip: no ULP distance is shown for it
    flat[zero] = np.float32(1e-3)  # against an expected 0: no relative error
    report = pdl.compare(res, act, layer)
    rows = [c for c in report.components if c.array == "delta" and c.mismatches]
    assert sum(c.sign_flips for c in rows if not c.component.startswith(("class ", "+"))) == 1
    assert all(c.max_ulp is None or c.max_ulp < 2**30 for c in rows)
    assert "sign flips" in str(report)
    # The element against 0 counts in max abs but never in max rel (no inf).
    assert all(c.max_rel is None or np.isfinite(c.max_rel) for c in report.components)
    assert " inf" not in str(report)


def test_many_failing_classes_are_collapsed() -> None:
    _, layer, res = oracle("yolov3_head")
    act = copy(res)
    five = act["delta"].reshape(2, 3, 85, 13, 13)
    five[:, :, 5:] += np.float32(0.25)  # every class of every cell off
    report = pdl.compare(res, act, layer)
    names = [c.component for c in report.components if c.array == "delta"]
    assert names.count("classes") == 1
    assert len([n for n in names if n.startswith("class ")]) == 3
    assert "+77 classes" in names
    assert len(str(report).splitlines()) < 40


def test_layouts() -> None:
    _, layer, res = oracle("yolov3_head")
    nhwc = {k: np.ascontiguousarray(np.transpose(v, (0, 2, 3, 1))) for k, v in copy(res).items() if k != "cost"}
    assert pdl.compare(res, nhwc, layer, layout="nhwc").ok
    report = pdl.compare(res, nhwc, layer)  # the same arrays read as NCHW: wrong shape
    assert not report.ok and "shape (2, 13, 13, 255)" in str(report) and "layout='nhwc'" in str(report)
    bahwc = {k: np.ascontiguousarray(v.reshape(2, 3, 85, 13, 13).transpose(0, 1, 3, 4, 2))
             for k, v in copy(res).items() if k != "cost"}
    assert pdl.compare(res, bahwc, layer, layout="bahwc").ok
    report = pdl.compare(res, bahwc, layer)
    assert not report.ok and "layout='bahwc'" in str(report)
    # The right shape, the wrong memory order: found as the cause.
    wrong = {"delta": np.ascontiguousarray(np.transpose(res.delta, (0, 2, 3, 1))).reshape(res.delta.shape)}
    report = pdl.compare(res, wrong, layer)
    assert [c.code for c in report.causes] == ["layout"] and "nhwc" in report.causes[0].message


def test_float64_arrays_are_a_problem_that_says_why() -> None:
    _, layer, res = oracle("yolov3_head")
    report = pdl.compare(res, {"delta": res.delta.astype(np.float64)}, layer)
    assert not report.ok
    assert "dtype float64" in str(report) and "float32" in str(report)
    assert report.mismatches == 0  # the values themselves agree after the cast


def test_float32_tolerance_needs_the_input() -> None:
    _, layer, res = oracle("yolov3_head")
    with pytest.raises(ValueError, match="input= and truth="):
        pdl.compare(res, copy(res), layer, tolerance="float32")
    with pytest.raises(ValueError, match="tolerance"):
        pdl.compare(res, copy(res), layer, tolerance="loose")


def test_a_golden_case_brings_its_input_and_truth() -> None:
    d, layer, res = oracle("dup_cell_overwrite")
    case = pdl.golden.GoldenCase.load(G.EXTRA_GOLDEN / "cases" / NAMES["dup_cell_overwrite"])
    report = pdl.compare(case, {"delta": pdl.mistakes.YOLO["no_short_circuit"](
        case.input, case.truth, layer, 416, 416)}, layer, tolerance="float32")
    assert report.explained and report.causes[0].code == "class_short_circuit"


def test_cost_is_compared() -> None:
    _, layer, res = oracle("yolov3_head")
    act = copy(res)
    act["cost"] = np.nextafter(res.cost, np.float32(0))
    report = pdl.compare(res, act, layer)
    assert not report.ok and report.cost[2] == 1 and "cost: expected" in str(report)
    assert pdl.compare(res, act, layer, max_ulp=1).ok


def test_region_components_include_the_mask_coords() -> None:
    d = G.load(G.EXTRA_GOLDEN / "cases" / next(c["file"] for c in G.manifest(G.EXTRA_GOLDEN)
                                               if c.get("name") == "mask_coords"))
    layer = G.region_layer(d["params"])
    res = layer.forward(d["input"], d["truth"], seen=int(d["seen"]))
    report = pdl.compare(res, {"delta": res.delta}, layer)
    assert [c.component for c in report.components] == ["x", "y", "w", "h", "mask0", "mask1", "objectness",
                                                         "classes"]


def test_bad_arguments() -> None:
    _, layer, res = oracle("yolov3_head")
    with pytest.raises(ValueError, match="none of output, delta, cost"):
        pdl.compare(res, {}, layer)
    with pytest.raises(ValueError, match="layout"):
        pdl.compare(res, copy(res), layer, layout="chw")
    with pytest.raises(TypeError, match="numpy.ndarray or a torch.Tensor"):
        pdl.compare(res, {"delta": res.delta.tolist()}, layer)
    with pytest.raises(TypeError, match="YoloLayer, RegionLayer or alexeyab.YoloLayer"):
        pdl.compare(res, copy(res), "yolo")


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the [plot] extra, which [test] installs")
    _, layer, res = oracle("dup_cell_overwrite")
    act = copy(res)
    act["delta"][0, 2, 1, 1] += 1
    out = pdl.compare(res, act, layer).plot(str(tmp_path / "diff.png"))
    data = Path(out).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    fig = pdl.compare(res, act, layer).figure()
    used = [ax for ax in fig.axes if ax.get_title()]
    assert used and all(ax.get_xlabel() == "col (grid x)" and ax.get_ylabel() == "row (grid y)" for ax in used)


def test_plot_without_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_mpl(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    _, layer, res = oracle("dup_cell_overwrite")
    with pytest.raises(ImportError, match=r"pip install 'pydarknet_loss\[plot\]'"):
        pdl.compare(res, copy(res), layer).plot(str(tmp_path / "x.png"))


def test_the_c_comparison_agrees_with_the_python_definitions() -> None:
    """dn_compare_arrays (one pass in C) against ulp_distance, same_sign and
    _per_entry, on arrays with NaN, infinities, signed zeros, subnormals and
    blocks that are bit-identical."""
    rng = np.random.default_rng(3)
    e = rng.standard_normal((3, 2, 7, 4, 5)).astype(np.float32)
    a = e.copy()
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-42, -1e-42], np.float32)
    for k in range(60):
        idx = tuple(int(rng.integers(0, s)) for s in e.shape)
        e[idx] = special[rng.integers(0, len(special))]
        a[idx] = special[rng.integers(0, len(special))] if k % 3 else np.nextafter(e[idx], np.float32(9))
    a[1, 1, 3] = -a[1, 1, 3]
    e5, a5 = e.reshape(6, 1, 7, 4, 5), a.reshape(6, 1, 7, 4, 5)
    for atol, rtol, mu in ((0.0, 0.0, 0), (1e-3, 0.0, 0), (0.0, 1e-2, 3)):
        assert_c_compare_is_the_python_one(np.ascontiguousarray(e5), np.ascontiguousarray(a5), atol, rtol, mu)


def assert_c_compare_is_the_python_one(e: np.ndarray, a: np.ndarray, atol: float, rtol: float, mu: int,
                                       note: Any = None) -> Any:
    """dn_compare_arrays's failure map, count and per-entry table equal the
    Python definitions' (Tolerance.passes, ulp_distance, _per_entry) on e, a
    ((B, n, entries, H, W) float32); also used by test_compare_planes.
    Returns (failing count, the C pass's per-entry table)."""
    from pydarknet_loss import _native
    from pydarknet_loss.parity.compare import _per_entry

    stats, bad, n = _native.compare_arrays(e, a, atol, rtol, mu)
    ulp = ulp_distance(e, a)
    want_bad = ~pdl.parity.compare.Tolerance(atol, rtol, mu).passes(e, a, ulp)
    assert np.array_equal(bad, want_bad) and n == int(want_bad.sum()), note
    pe = _per_entry(e, a, want_bad, ulp)
    got = pdl.parity.compare._PerEntry.of(stats)
    for f in ("size", "fail", "max_abs", "max_rel", "max_ulp", "nan_vs_num", "flips"):
        assert np.array_equal(getattr(got, f), getattr(pe, f)), (f, note)
    return n, got


@pytest.mark.parametrize("kind", ["yolo", "region"])
def test_the_c_delta_bound_is_rounding_bounds(kind: str) -> None:
    """dn_delta_bound (C, what the diagnosis uses) gives rounding_bound's
    numbers bit for bit, NaN and huge logits included."""
    from pydarknet_loss.implied import rounding_bound
    from pydarknet_loss.parity import diagnosis as dg

    rng = np.random.default_rng(4)
    if kind == "yolo":
        layer = pdl.YoloLayer(classes=5, anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119], mask=[3, 4, 5])
        truth = [np.array([[.3, .4, .2, .3, 1], [.7, .1, .05, .04, 2]], np.float32),
                 np.array([[.5, .5, .9, .9, 4]], np.float32)]
        extra = {"net_w": 416, "net_h": 416}
    else:
        layer = pdl.RegionLayer(classes=5, num=2, anchors=[1, 1.5, 3, 2], rescore=1)
        truth = [np.array([[.3, .4, .2, .3, 1], [.7, .1, .05, .04, 2]], np.float32),
                 np.array([[.5, .5, .9, .9, 4]], np.float32)]
        extra = {"seen": 100}
    x = (rng.standard_normal((2, layer.channels, 7, 9)) * 5).astype(np.float32)
    x[0, 3, 2, 2] = np.nan
    x[1, 4, 1, 1] = 100
    ev = dg.evidence(layer, x, truth, **extra)
    got = ev.bound_for("delta")
    want = rounding_bound(ev.sel, x, of="delta").reshape(got.shape)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


def test_float32_tolerance_allows_underflow_and_float64_targets() -> None:
    """Issue 19's correct port: at logit -90 darknet's double logistic keeps
    a subnormal (delta about -8e-40) where a float32 sigmoid underflows to
    0; and targets computed in float64 (x*W, log(w*net_w/anchor)) differ
    from darknet's float32 ones by their rounding.  Both pass under
    tolerance="float32", with no cause named."""
    layer = pdl.YoloLayer(classes=2, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, layer.channels, 13, 13)).astype(np.float32)
    x[0, 4, 3, 3] = -90.0  # objectness of anchor 0 at a negative cell
    truth = [np.array([[0.7, 0.7, 0.3, 0.2, 1]], np.float32)]
    exp = layer.forward(x, truth, net_w=416, net_h=416)
    d = exp.delta.copy()
    assert 0 < -d[0, 4, 3, 3] < 1e-38  # darknet's subnormal
    d[0, 4, 3, 3] = 0.0  # the float32 port's underflow
    # A float64 port's box targets: tx = x*W - i without the float32 product's rounding.
    b5 = d.reshape(1, 3, 7, 13, 13)
    cells = np.argwhere(b5[0, :, 2] != 0)
    assert cells.size
    a, j, i = cells[0]
    y = exp.output.reshape(1, 3, 7, 13, 13)[0, a, 0, j, i].astype(np.float64)
    scale = 2 - 0.3 * 0.2
    b5[0, a, 0, j, i] = np.float32(scale * ((0.7 * 13 - i) - y))
    report = pdl.compare(exp, {"delta": d}, layer, input=x, truth=truth, net_w=416, net_h=416)
    assert report.ok and not report.causes, str(report)
    exact = pdl.compare(exp, {"delta": d}, layer, input=x, truth=truth, net_w=416, net_h=416, tolerance="exact")
    assert {c.code for c in exact.causes} == {"float_rounding"}, str(exact)

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
    assert report.ok and report.mismatches == 0 and not report.issues
    assert "parity OK (exact)" in str(report)
    assert pdl.assert_parity(res, copy(res), layer).ok


def test_one_ulp_is_found_named_and_tolerated_on_request() -> None:
    _, layer, res = oracle("yolov3_head")
    act = copy(res)
    b, c, r, col = 1, 85 + 2, 4, 7  # anchor 1, entry 2 (w)
    act["delta"][b, c, r, col] = np.nextafter(act["delta"][b, c, r, col], np.float32(np.inf))
    report = pdl.compare(res, act, layer)
    assert not report.ok and report.mismatches == 1
    w = next(x for x in report.components if x.array == "delta" and x.component == "w")
    assert (w.mismatches, w.max_ulp) == (1, 1)
    loc = report.worst[0]
    assert (loc.image, loc.anchor, loc.row, loc.col, loc.component, loc.ulp) == (1, 1, 4, 7, "w", 1)
    assert "delta[image 1, anchor 1, row 4, col 7, w]" in str(report)
    assert pdl.compare(res, act, layer, max_ulp=1).ok
    assert pdl.compare(res, act, layer, atol=1e-6).ok
    with pytest.raises(AssertionError, match=r"delta  w .* 1 ulp"):
        pdl.assert_parity(res, act, layer)


def test_a_truth_on_another_anchor_of_the_same_cell() -> None:
    _, layer, res = oracle("dup_cell_overwrite")
    act = copy(res)
    d5 = act["delta"].reshape(1, 3, 8, 3, 4)
    d5[:, 1, :, 1, 1], d5[:, 2, :, 1, 1] = d5[:, 2, :, 1, 1].copy(), 0  # anchor 2's deltas moved to anchor 1
    report = pdl.compare(res, act, layer)
    kinds = [i.kind for i in report.issues]
    assert "assignment" in kinds
    msg = next(i.message for i in report.issues if i.kind == "assignment")
    assert "anchor 2 at row 1, col 1" in msg and "assigns anchor 1 of that cell instead" in msg


def test_a_truth_in_another_cell() -> None:
    d, layer, res = oracle("fractional_class")
    truth = d["truth"].copy()
    truth[0, 0, 0] += np.float32(0.25)  # one column to the right (W = 4)
    moved = layer.forward(d["input"], truth, net_w=416, net_h=416)
    report = pdl.compare(res, {"delta": moved.delta}, layer)
    assert not report.ok
    assignment = [i for i in report.issues if i.kind == "assignment"]
    assert any("upstream assigns a truth" in i.message for i in assignment)
    assert any("where upstream assigns none" in i.message for i in assignment)


def test_an_ignored_cell_treated_as_negative() -> None:
    d, layer, res = oracle("truth_thresh_branch")
    e = res.delta.reshape(1, 3, 8, 3, 4)
    cls_assigned = (e[:, :, 5:] != 0).any(axis=2)
    ignored = np.argwhere(~cls_assigned & (e[:, :, 4] == 0))
    assert len(ignored), "the case has ignored cells"
    act = copy(res)
    a = act["delta"].reshape(1, 3, 8, 3, 4)
    b, n, r, c = ignored[0]
    a[b, n, 4, r, c] = 0 - res.output.reshape(1, 3, 8, 3, 4)[b, n, 4, r, c]
    report = pdl.compare(res, act, layer)
    issue = next(i for i in report.issues if i.kind == "ignored_as_negative")
    assert (issue.image, issue.anchor, issue.row, issue.col) == (b, n, r, c)
    assert "upstream ignores this cell" in issue.message


def test_a_missing_class_short_circuit() -> None:
    _, layer, res = oracle("dup_cell_overwrite")
    act = copy(res)
    a = act["delta"].reshape(1, 3, 8, 3, 4)
    p = res.output.reshape(1, 3, 8, 3, 4)[0, 2, 5:, 1, 1]
    a[0, 2, 5:, 1, 1] = [0 - p[0], 0 - p[1], 1 - p[2]]  # the second truth rewrote every class
    report = pdl.compare(res, act, layer)
    issue = next(i for i in report.issues if i.kind == "short_circuit")
    assert "class short-circuit not reproduced" in issue.message
    assert "keeps 2 classes at 1 - p, the implementation 1" in issue.message
    assert "disagreements in kind" in str(report)
    # The class block that differs has its own row in the table.
    rows = [(c.component, c.mismatches) for c in report.components if c.array == "delta"]
    assert ("classes", 1) in rows and ("class 0", 1) in rows and not any(r[0] == "class 1" for r in rows)


def test_nhwc_layout() -> None:
    _, layer, res = oracle("yolov3_head")
    nhwc = {k: np.ascontiguousarray(np.transpose(v, (0, 2, 3, 1))) for k, v in copy(res).items() if k != "cost"}
    assert pdl.compare(res, nhwc, layer, layout="nhwc").ok
    report = pdl.compare(res, nhwc, layer)  # the same arrays read as NCHW: wrong shape
    assert not report.ok and "shape (2, 13, 13, 255)" in str(report)


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
    with pytest.raises(TypeError, match="numpy.ndarray"):
        pdl.compare(res, {"delta": res.delta.tolist()}, layer)
    with pytest.raises(TypeError, match="YoloLayer or RegionLayer"):
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

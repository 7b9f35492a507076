"""Issue 19, "the first hour": each test does what the new user did.

Items 3 (one default tolerance, said first), 4 (torch tensors everywhere),
5 (public layout converters; cause_map in the compared layout) and 11 (the
smaller rough edges).  Items 2, 7 and 8 are tested in test_fuzz.py and
test_plugin_and_golden_cli.py, 6 in test_readme.py, 10 in test_docs.py.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss.parity import cli
from pydarknet_loss.parity.compare import DEFAULT_TOLERANCE

ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]


def _case() -> Tuple[pdl.YoloLayer, np.ndarray, list, Any]:
    layer = pdl.YoloLayer(classes=80, anchors=ANCHORS, mask=[6, 7, 8], ignore_thresh=0.7)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, layer.channels, 13, 13)).astype(np.float32)
    truth = [np.array([[0.5, 0.4, 0.3, 0.2, 7], [0.51, 0.42, 0.28, 0.22, 3]], np.float32),
             np.array([[0.2, 0.7, 0.6, 0.5, 0]], np.float32)]
    return layer, x, truth, layer.forward(x, truth, net_w=416, net_h=416)


def _one_ulp_off(delta: np.ndarray) -> np.ndarray:
    """A float32 port's rounding: one ULP off on a few large elements."""
    d = delta.copy()
    idx = np.flatnonzero(np.abs(d) > 0.1)[:5]
    assert idx.size == 5
    d.flat[idx] = np.nextafter(d.flat[idx], np.float32(np.inf))
    return d


# ---- item 3: one default tolerance ---------------------------------------------------------------

def test_every_entry_point_defaults_to_the_float32_tolerance() -> None:
    from pydarknet_loss.parity import fuzz as F

    assert DEFAULT_TOLERANCE == "float32"
    assert inspect.signature(pdl.compare).parameters["tolerance"].default is None  # None: the default, resolved
    assert inspect.signature(F.fuzz).parameters["tolerance"].default == "float32"
    assert inspect.signature(F.parity_test).parameters["tolerance"].default == "float32"
    parser = cli.build_parser()
    # check: None is the default, resolved by compare (float32; exact for layers whose bound is not derived)
    assert parser.parse_args(["check", "--golden", "g", "--actual", "a"]).tolerance is None
    assert parser.parse_args(["fuzz", "m:f"]).tolerance == "float32"
    torch = pytest.importorskip("torch")
    del torch
    assert inspect.signature(pdl.torch.check_gradient).parameters["tolerance"].default == "float32"


def test_a_float32_ports_rounding_passes_compare_and_assert_parity_by_default() -> None:
    layer, x, truth, expected = _case()
    mine = {"delta": _one_ulp_off(expected.delta)}
    report = pdl.compare(expected, mine, layer, input=x, truth=truth)
    assert report.ok, report.summary()
    assert report.summary().splitlines()[0].startswith("[yolo] parity OK (tolerance: float32 (darknet's own rounding))")
    assert 0 < report.tolerance_used <= 1
    pdl.assert_parity(expected, mine, layer, input=x, truth=truth)
    # exact stays available, and names the rounding.
    exact = pdl.compare(expected, mine, layer, input=x, truth=truth, tolerance="exact")
    assert not exact.ok and exact.headline().startswith("[yolo] parity FAILED (tolerance: exact)")
    assert {c.code for c in exact.causes} == {"float_rounding"}


def test_without_input_the_default_says_it_compared_exactly() -> None:
    layer, x, truth, expected = _case()
    report = pdl.compare(expected, {"delta": _one_ulp_off(expected.delta)}, layer)
    assert not report.ok
    assert report.headline().startswith("[yolo] parity FAILED (tolerance: exact; float32, the default, needs "
                                        "input= and truth=)")
    with pytest.raises(ValueError, match="needs input= and truth="):  # asked for explicitly: an error
        pdl.compare(expected, {"delta": expected.delta}, layer, tolerance="float32")


# ---- item 4: torch tensors ---------------------------------------------------------------------

def test_torch_tensors_for_truth_in_compare_and_x_in_forward() -> None:
    torch = pytest.importorskip("torch")
    layer, x, truth, expected = _case()
    tt = [torch.tensor(t) for t in truth]
    # layer.forward(tensor) and a list of tensors for truth; the packed buffer as a tensor too.
    res = layer.forward(torch.tensor(x), tt, net_w=416, net_h=416)
    assert np.array_equal(res.delta.view(np.uint32), expected.delta.view(np.uint32))
    packed = torch.tensor(pdl.to_truth(truth))
    xr = torch.tensor(x, requires_grad=True)  # a tensor that requires grad is read, not refused
    res = layer.forward(xr, packed, net_w=416, net_h=416)
    assert np.array_equal(res.delta.view(np.uint32), expected.delta.view(np.uint32))
    # In another layout, as a tensor.
    res = layer.forward(torch.tensor(pdl.to_layout(x, "bahwc", layer)), tt, net_w=416, net_h=416, layout="bahwc")
    assert np.array_equal(pdl.from_layout(res.delta, "bahwc", layer), expected.delta)
    # compare takes tensors for the arrays, input and truth.
    report = pdl.compare(expected, {"delta": torch.tensor(expected.delta)}, layer, input=torch.tensor(x), truth=tt)
    assert report.ok and report.explained
    report = pdl.compare(expected, {"delta": torch.tensor(expected.delta)}, layer, input=torch.tensor(x),
                         truth=packed)
    assert report.ok


def test_tensors_keep_the_no_silent_cast_rule() -> None:
    torch = pytest.importorskip("torch")
    layer, x, truth, _ = _case()
    with pytest.raises(TypeError, match="x must have dtype float32.*got <f8"):
        layer.forward(torch.tensor(x, dtype=torch.float64), truth)
    with pytest.raises(TypeError, match="x: a torch.Tensor of dtype torch.bfloat16 on cpu cannot be read"):
        layer.forward(torch.tensor(x).to(torch.bfloat16), truth)
    with pytest.raises(TypeError, match=r"truth\[0\] must have dtype float32"):
        layer.forward(x, [torch.tensor(truth[0], dtype=torch.float64), torch.tensor(truth[1])])

    class NotAnArray:
        pass

    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray \(or torch.Tensor\) of float32, got NotAnArray"):
        layer.forward(NotAnArray(), truth)


def test_check_gradient_takes_a_tensor_truth() -> None:
    torch = pytest.importorskip("torch")
    layer, x, truth, _ = _case()
    packed = torch.tensor(pdl.to_truth(truth))

    def my_loss(xt: Any, t: Any) -> Any:
        assert isinstance(t, torch.Tensor)  # the loss gets the truth as given
        return pdl.torch.YoloLoss(layer, net_w=416, net_h=416)(xt, t.numpy())

    report = pdl.torch.check_gradient(my_loss, layer, torch.tensor(x), packed, net_w=416, net_h=416)
    assert report.ok, report.summary()
    assert "tolerance: float32" in report.headline()


# ---- item 5: layouts -------------------------------------------------------------------------------

def test_public_layout_converters_round_trip_numpy_and_torch() -> None:
    layer, x, _, _ = _case()
    b, c, h, w = x.shape
    bahwc = pdl.to_layout(x, "bahwc", layer)
    assert bahwc.shape == (b, 3, h, w, 85)
    # Entry e of anchor a at row r, col k is darknet's x[b, a*85 + e, r, k].
    assert bahwc[1, 2, 4, 5, 7] == x[1, 2 * 85 + 7, 4, 5]
    nhwc = pdl.to_layout(x, "nhwc", 3)  # the number of anchors will do
    assert nhwc.shape == (b, h, w, c) and nhwc[1, 4, 5, 2 * 85 + 7] == x[1, 2 * 85 + 7, 4, 5]
    for layout, a in (("bahwc", bahwc), ("nhwc", nhwc), ("nchw", x)):
        assert np.array_equal(pdl.from_layout(a, layout, layer), x)
    with pytest.raises(ValueError, match="layout must be one of"):
        pdl.to_layout(x, "nchwc", layer)
    with pytest.raises(ValueError, match="not a multiple of the layer's 3 anchors"):
        pdl.to_layout(x[:, :254], "bahwc", layer)
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    bt = pdl.to_layout(xt, "bahwc", layer)
    assert isinstance(bt, torch.Tensor) and bt.requires_grad
    assert np.array_equal(bt.detach().numpy(), bahwc)
    assert np.array_equal(pdl.from_layout(bt, "bahwc", layer).detach().numpy(), x)


def test_cause_map_comes_back_in_the_compared_layout() -> None:
    layer, x, truth, expected = _case()
    mine = pdl.mistakes.YOLO["first_truth_wins"](x, truth, layer, 416, 416)
    nchw = pdl.compare(expected, {"delta": mine}, layer, input=x, truth=truth).cause_map("delta")
    report = pdl.compare(expected, {"delta": pdl.to_layout(mine, "bahwc", layer)}, layer, input=x, truth=truth,
                         layout="bahwc")
    cm = report.cause_map("delta")
    assert cm.shape == (2, 3, 13, 13, 85)
    assert np.array_equal(cm, pdl.to_layout(nchw, "bahwc", layer))
    assert (cm == "overwrite_order").sum() == 5
    assert np.array_equal(report.cause_map("delta", layout="nchw"), nchw)


# ---- item 11: the smaller rough edges ----------------------------------------------------------------

def test_identical_float64_arrays_say_float64_first() -> None:
    layer, x, truth, expected = _case()
    report = pdl.compare(expected, {"delta": expected.delta.astype(np.float64)}, layer, input=x, truth=truth)
    first = report.summary().splitlines()[0]
    assert not report.ok
    assert first.startswith("[yolo] parity FAILED (tolerance: float32 (darknet's own rounding)): float64 given, "
                            "float32 expected (delta)"), first
    assert str(report).splitlines()[0] == first


def test_the_layout_hint_is_printed_once() -> None:
    layer, x, truth, expected = _case()
    bahwc = pdl.to_layout(expected.delta, "bahwc", layer)
    report = pdl.compare(expected, {"delta": bahwc}, layer, input=x, truth=truth)
    assert not report.ok
    assert str(report).count("layout='bahwc'") == 1, str(report)
    assert report.summary().count("layout='bahwc'") == 1


def test_a_passing_report_states_its_headroom_against_the_tolerance() -> None:
    layer, x, truth, expected = _case()
    same = pdl.compare(expected, {"delta": expected.delta}, layer, input=x, truth=truth)
    assert same.tolerance_used == 0 and same.headroom() == "every element bit-identical to darknet's"
    near = pdl.compare(expected, {"delta": _one_ulp_off(expected.delta)}, layer, input=x, truth=truth)
    assert near.ok and "of the tolerance (float32 (darknet's own rounding))" in near.headroom()


def test_extras_include_all_and_the_docs() -> None:
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")

    extras: Dict[str, list] = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
                                            )["project"]["optional-dependencies"]
    names = {d.split(">")[0].split("=")[0].split("[")[0] for d in extras["all"]}
    for extra in ("torch", "plot", "fuzz", "docs"):
        for dep in extras[extra]:
            assert dep.split(">")[0].split("=")[0] in names, (extra, dep)

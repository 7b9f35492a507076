"""The PyTorch modules: autograd's gradient is minus darknet's net_delta on
every golden case (CI installs the CPU wheel for this job)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import goldens as G
import implied_cases as IC
import pydarknet_loss as pdl

torch = pytest.importorskip("torch", reason="PyTorch is the optional [torch] extra; CI installs it for this job")

CASES = [(p, "cpu") for p in IC.training_cases("yolo")] + [
    (p, b) for p in IC.training_cases("region") for b in ("gpu", "cpu")]


@pytest.mark.parametrize("path,build", CASES, ids=[f"{G.ids([p])[0]}-{b}" for p, b in CASES])
def test_autograd_gradient_is_minus_net_delta(path: Path, build: str) -> None:
    d = G.load(path)
    p = d["params"]
    if IC.expected_refusal(d, build):
        with pytest.raises(pdl.implied.NotAGradientError):
            pdl.torch.RegionLoss(G.region_layer(p), seen=int(d["seen"]), build=build)(
                torch.tensor(d["input"]), d["truth"])
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pdl.DarknetQuirkWarning)
        ref, layer = IC.build_loss(d, build)
        if d["kind"] == "yolo":
            crit = pdl.torch.YoloLoss(layer, net_w=p["net_w"], net_h=p["net_h"])
        else:
            crit = pdl.torch.RegionLoss(layer, seen=int(d["seen"]), build=build)
        x = torch.tensor(d["input"], requires_grad=True)
        loss = crit(x, d["truth"])
    loss.backward()
    minus_nd = -ref.net_delta.astype(np.float64)
    g = x.grad.numpy().astype(np.float64)
    # The gradient reaches x in float32: one more rounding.
    bound = ref.rounding_bound(d["input"]) + np.spacing(np.abs(minus_nd).astype(np.float32))
    assert (np.abs(g - minus_nd) <= bound).all(), np.max(np.abs(g - minus_nd) / bound)
    value, parts = ref.value(d["input"])
    assert float(loss.detach()) == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert crit.last_parts == pytest.approx(parts, rel=1e-12, abs=1e-12)


def test_a_training_step_moves_x_as_darknet_would() -> None:
    d = G.load(IC.training_cases("yolo")[3])
    p = d["params"]
    layer = G.yolo_layer(p)
    x = torch.tensor(d["input"], requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.1)
    crit = pdl.torch.YoloLoss(layer, net_w=p["net_w"], net_h=p["net_h"])
    opt.zero_grad()
    crit(x, d["truth"]).backward()
    opt.step()
    delta = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"]).delta
    # darknet's update: x += lr * delta (delta is minus the gradient).
    expect = d["input"].astype(np.float64) + 0.1 * delta.astype(np.float64)
    # (float32 arithmetic in the step: a relative 1e-6 covers its rounding;
    # any other update rule would be off by far more.)
    assert np.allclose(x.detach().numpy(), expect, rtol=1e-6, atol=1e-6)


def test_module_arguments() -> None:
    layer = pdl.YoloLayer(classes=1, anchors=[10, 13], mask=[0])
    crit = pdl.torch.YoloLoss(layer)
    with pytest.raises(TypeError, match="float32"):
        crit(torch.zeros((1, 6, 2, 2), dtype=torch.float64), [np.zeros((0, 5), np.float32)])
    with pytest.raises(TypeError, match="RegionLayer"):
        pdl.torch.RegionLoss(layer)
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        pdl.torch.RegionLoss(pdl.RegionLayer(classes=1, anchors=[1, 1]), build="x")


# ---- check_gradient ---------------------------------------------------------------------------

def _golden_yolo() -> "object":
    import gallery_cases as GC

    cases = GC.golden_cases("yolo")
    return next(c for c in cases if np.abs(c.x).max() > 20)


def test_check_gradient_passes_for_the_implied_loss() -> None:
    case = _golden_yolo()
    crit = pdl.torch.YoloLoss(case.layer, net_w=case.net_w, net_h=case.net_h)
    report = pdl.torch.check_gradient(lambda x, t: crit(x, t), case.layer, case.x, case.truth, net_w=case.net_w,
                                      net_h=case.net_h)
    assert report.ok, report.summary()


def test_check_gradient_explains_bce_on_probabilities() -> None:
    """A PyTorch loss with darknet's targets, but torch.nn.BCELoss applied to
    sigmoid outputs: its gradient vanishes where the logits saturate."""
    case = _golden_yolo()
    sel = pdl.implied.select(case.x, case.truth, case.layer, net_w=case.net_w, net_h=case.net_h)
    has = torch.tensor(sel.has)
    t = torch.tensor(np.where(sel.has, sel.target, 0.0), dtype=torch.float32)
    s = torch.tensor(np.where(sel.has, sel.scale, 0.0), dtype=torch.float32)

    def loss_fn(x: "torch.Tensor", truth: object) -> "torch.Tensor":
        b, c, h, w = x.shape
        x5 = x.reshape(b, sel.n, c // sel.n, h, w)
        p = torch.sigmoid(x5)
        bce = torch.nn.functional.binary_cross_entropy(p, t.clamp(0, 1), reduction="none")
        act = torch.ones(x5.shape[2], dtype=torch.bool)
        act[2:4] = False
        wh = 0.5 * (x5 - t) ** 2
        per = torch.where(act[None, None, :, None, None], bce, wh)
        return (torch.where(has, s * per, torch.zeros_like(per))).sum()

    report = pdl.torch.check_gradient(loss_fn, case.layer, case.x, case.truth, net_w=case.net_w, net_h=case.net_h)
    assert not report.ok and report.causes[0].code == "saturated_gradient", report.summary()
    assert "unexplained" not in [c.code for c in report.causes], report.summary()


def test_check_gradient_takes_other_layouts_and_refuses_bad_losses() -> None:
    case = _golden_yolo()
    crit = pdl.torch.YoloLoss(case.layer, net_w=case.net_w, net_h=case.net_h)
    b, c, h, w = case.x.shape
    n = case.layer.n
    xb = np.ascontiguousarray(case.x.reshape(b, n, c // n, h, w).transpose(0, 1, 3, 4, 2))

    def in_bahwc(x: "torch.Tensor", truth: object) -> "torch.Tensor":
        return crit(x.permute(0, 1, 4, 2, 3).reshape(b, c, h, w), truth)

    report = pdl.torch.check_gradient(in_bahwc, case.layer, xb, case.truth, net_w=case.net_w, net_h=case.net_h,
                                      layout="bahwc")
    assert report.ok, report.summary()
    with pytest.raises(TypeError, match="scalar"):
        pdl.torch.check_gradient(lambda x, t: x * 2, case.layer, case.x, case.truth)
    with pytest.raises(TypeError, match="callable"):
        pdl.torch.check_gradient("loss", case.layer, case.x, case.truth)
    with pytest.raises(TypeError, match="float32"):
        pdl.torch.check_gradient(lambda x, t: x.sum(), case.layer, case.x.astype(np.float64), case.truth)


def test_compare_accepts_torch_tensors() -> None:
    case = _golden_yolo()
    report = pdl.compare({"delta": case.expected}, {"delta": torch.tensor(case.expected)}, case.layer)
    assert report.ok


def test_fuzz_gradient_finds_a_torch_loss_that_departs() -> None:
    pytest.importorskip("hypothesis", reason="the [fuzz] extra")

    def good(x: "torch.Tensor", truth: object) -> "torch.Tensor":
        return _implied_loss(x, truth)

    state: dict = {}

    def _implied_loss(x: "torch.Tensor", truth: object) -> "torch.Tensor":
        return pdl.torch.YoloLoss(state["layer"], net_w=416, net_h=416)(x, truth)

    layer = pdl.YoloLayer(classes=2, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    state["layer"] = layer
    res = pdl.torch.fuzz_gradient(good, layer, net=(416, 416), examples=60, seed=0)
    assert res.ok, str(res)

    def halved(x: "torch.Tensor", truth: object) -> "torch.Tensor":
        return 0.5 * _implied_loss(x, truth)

    res = pdl.torch.fuzz_gradient(halved, layer, net=(416, 416), examples=200, seed=0)
    assert not res.ok and res.failure.cause == "scale", str(res)
    with pytest.raises(ValueError, match="yolo"):
        pdl.torch.fuzz_gradient(good, kind="yolo_ab")  # AlexeyAB's delta is no gradient


def test_fuzz_gradient_takes_region_losses_against_the_gpu_build() -> None:
    """fuzz_gradient(kind="region"): RegionLoss (the GPU build's implied loss)
    passes; its gradient is compared with the GPU build's delta."""
    pytest.importorskip("hypothesis")
    import pydarknet_loss.torch as pt

    def loss(x, truth, layer=None):
        return pt.RegionLoss(layer_of[0], build="gpu")(x, truth)

    from pydarknet_loss import strategies as S

    layer_of = [pdl.RegionLayer(classes=3, num=2, anchors=[1, 1.5, 3, 2])]
    # The loss is built for seen = 0 (the prior rule on): the cases too.
    res = pt.fuzz_gradient(loss, kind="region", cases=S.cases(layer_of[0], kind="region", seen=0), examples=20,
                           seed=0)
    assert res.ok, str(res)

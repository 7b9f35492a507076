"""The implied loss: its gradient is minus what darknet hands on
(net_delta), on every golden case, by finite differences and analytically;
and where no such loss exists, the proof that darknet's delta is not a
gradient."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import goldens as G
import implied_cases as IC
import pydarknet_loss as pdl
from pydarknet_loss.implied import NotAGradientError

YOLO = IC.training_cases("yolo")
REGION = IC.training_cases("region")


def check_gradient(d: dict, build: str) -> None:
    if IC.expected_refusal(d, build):
        with pytest.raises(NotAGradientError):
            IC.build_loss(d, build)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pdl.DarknetQuirkWarning)
        loss, layer = IC.build_loss(d, build)
    x = d["input"]
    minus_nd = -loss.net_delta.astype(np.float64)
    bound = loss.rounding_bound(x)
    fd, fd_err = loss.numeric_gradient(x, with_error=True)
    # Finite differences of the loss equal -net_delta within darknet's own
    # float32 rounding (bound) plus the differences' own error.
    assert (np.abs(fd - minus_nd) <= bound + fd_err).all(), np.max(np.abs(fd - minus_nd) / (bound + fd_err))
    # The analytic gradient does too, within darknet's rounding alone.
    g = loss.gradient(x)
    assert (np.abs(g - minus_nd) <= bound).all(), np.max(np.abs(g - minus_nd) / bound)
    value, parts = loss.value(x)
    total = 0.0
    for k in pdl.implied.PARTS:
        total += parts[k]
    assert value == total and set(parts) == set(pdl.implied.PARTS)
    if d["kind"] == "region" and build == "cpu":
        assert value == 0 and not g.any() and not loss.net_delta.any()


@pytest.mark.parametrize("path", YOLO, ids=G.ids(YOLO))
def test_yolo_gradient_is_minus_net_delta(path: Path) -> None:
    check_gradient(G.load(path), "cpu")


@pytest.mark.parametrize("build", ["gpu", "cpu"])
@pytest.mark.parametrize("path", REGION, ids=G.ids(REGION))
def test_region_gradient_is_minus_net_delta(path: Path, build: str) -> None:
    check_gradient(G.load(path), build)


@pytest.mark.skipif(G.shared_golden() is None, reason=G.SHARED_REASON)
@pytest.mark.parametrize("name", IC.shared_tree_cases() or ["none"])
def test_9k_tree_cases(name: str) -> None:
    check_gradient(G.load(G.shared_golden() / "cases" / name), "gpu")


def test_case_counts() -> None:
    # Every training case takes part: the shared set's 83 [yolo] cases less
    # 4 refused (x*W == W) and 4 inference ones, and our 36 less 3 inference.
    assert len(YOLO) == 75 + 33
    # [region]: 62 shared less 6 refused and 6 inference; our 35 less 2 inference.
    assert len(REGION) == 50 + 33


def test_float64_finite_differences_agree_with_the_analytic_gradient_tightly() -> None:
    for name in ("case_0011_yolo.npz", "case_0044_region.npz"):
        d = G.load(G.REPO_GOLDEN / "cases" / name)
        build = "gpu"
        if IC.expected_refusal(d, build):
            continue
        loss, _ = IC.build_loss(d, build)
        g = loss.gradient(d["input"])
        fd, err = loss.numeric_gradient(d["input"], with_error=True)
        assert np.all(np.abs(fd - g) <= err + 1e-13)
        assert np.median(np.abs(fd - g)[g != 0] / np.abs(g[g != 0])) < 1e-8


def _oracle_minus_nd(layer, x, truth, seen, build="gpu") -> np.ndarray:  # type: ignore[no-untyped-def]
    return -layer.forward(x, truth, seen=seen).net_delta(build).astype(np.float64)


def test_background_softmax_delta_is_not_a_gradient() -> None:
    """A gradient field has a symmetric Jacobian.  With softmax and
    background, in a negative cell objectness's delta depends on a class
    input, but no class delta depends on objectness (there is none)."""
    path = next(p for p in REGION if "combo_s1_b1_r0_m0" in G.load(p)["tags"])
    d = G.load(path)
    layer = G.region_layer(d["params"])
    x, seen = d["input"], int(d["seen"])
    res = layer.forward(x, d["truth"], seen=seen)
    per = layer.coords + 1 + layer.classes
    e = res.delta.reshape(x.shape[0], layer.n, per, *x.shape[2:])
    neg = np.argwhere(~(e[:, :, layer.coords + 1:] != 0).any(axis=2) & (e[:, :, layer.coords] != 0))
    b, a, r, c = neg[0]
    obj, cls = a * per + layer.coords, a * per + layer.coords + 1
    h = np.float32(0.05)
    base = _oracle_minus_nd(layer, x, d["truth"], seen)

    def column(k: int) -> np.ndarray:
        xp = x.copy()
        xp[b, k, r, c] += h
        return (_oracle_minus_nd(layer, xp, d["truth"], seen) - base) / float(h)

    j_obj_cls = column(cls)[b, obj, r, c]   # d(-nd_obj)/dx_cls
    j_cls_obj = column(obj)[b, cls, r, c]   # d(-nd_cls)/dx_obj
    assert j_cls_obj == 0 and abs(j_obj_cls) > 1e-3
    with pytest.raises(NotAGradientError, match="share one softmax"):
        pdl.implied.region(x, d["truth"], layer, seen=seen, build="gpu")


def test_tree_offset_bug_makes_the_delta_no_gradient() -> None:
    """With n*w*h > 1 the CPU tree softmax mixes cells: the Jacobian of the
    class deltas is not symmetric, so no loss has them as its gradient."""
    name = next(c["file"] for c in G.manifest(G.EXTRA_GOLDEN) if c.get("name") == "tree_t1_group_offset_bug")
    d = G.load(G.EXTRA_GOLDEN / "cases" / name)
    layer = G.region_layer(d["params"])
    x, seen = d["input"], int(d["seen"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pdl.DarknetQuirkWarning)
        base = _oracle_minus_nd(layer, x, d["truth"], seen)
        per = layer.coords + 1 + layer.classes
        # Every entry of image 0: perturb it, see which deltas move.  (The
        # mixed softmax reaches into x, y, w, h entries of other cells too.)
        ks = [(0, ch, r, c) for ch in range(layer.n * per) for r in range(x.shape[2]) for c in range(x.shape[3])]
        h = np.float32(0.05)
        cols = {}
        for k in ks:
            xp = x.copy()
            xp[k] += h
            cols[k] = (_oracle_minus_nd(layer, xp, d["truth"], seen) - base) / float(h)
        asym = max(abs(cols[k][m] - cols[m][k]) for k in ks for m in ks)
        assert asym > 1e-2
        with pytest.raises(NotAGradientError, match="group-offset bug"):
            pdl.implied.region(x, d["truth"], layer, seen=seen, build="gpu")


def test_implied_loss_is_not_the_printed_cost() -> None:
    d = G.load(YOLO[0])
    p = d["params"]
    layer = G.yolo_layer(p)
    res = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"])
    loss, parts = pdl.implied.yolo_loss(d["input"], d["truth"], layer, net_w=p["net_w"], net_h=p["net_h"])
    assert loss != pytest.approx(float(res.cost), rel=1e-3)
    assert parts["obj_neg"] > 0 and parts["prior"] == 0


def test_arguments() -> None:
    d = G.load(YOLO[0])
    with pytest.raises(TypeError, match="YoloLayer"):
        pdl.implied.yolo_loss(d["input"], d["truth"], "yolo")
    r = G.load(REGION[0])
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        pdl.implied.region_loss(r["input"], r["truth"], G.region_layer(r["params"]), build="tpu")

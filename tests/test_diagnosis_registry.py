"""The registry of causes: one unit per cause, the README's table generated
from it, and each cause tested on its departure and on a look-alike it must
not claim."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss.parity import diagnosis as dg
from pydarknet_loss.parity.diagnosis.model import STAGES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_table_is_the_registrys() -> None:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- causes-table: generated[^\n]*-->\n(.*?)\n<!-- causes-table: end -->", text, re.S)
    assert m, "the README has no generated cause table"
    assert m.group(1) == dg.readme_table(), "regenerate it: python -c 'from pydarknet_loss.parity.diagnosis " \
                                            "import readme_table; print(readme_table())'"


def test_every_cause_is_one_unit_with_a_code_model_parts_and_message() -> None:
    codes = [c.code for c in dg.REGISTRY]
    assert len(codes) == len(set(codes))
    assert codes[:2] == ["darknet_flavor", "float_rounding"] and codes[-1] == "unexplained"
    for c in dg.REGISTRY:
        assert c.stage in STAGES and c.parts and len(c.summary) > 20 and len(c.recognised) > 20, c.code
        assert (c.model is not None) == (c.stage in ("exact", "decision", "output")), c.code
        assert set(c.parts) <= set(dg.PARTS) | {"*"}, c.code
    assert dg.canonical("objectness_loss") == "chain" and dg.canonical("sign") == "sign"


# ---- pairs: the departure, and a look-alike the cause must not claim ----------------------

LAYER = pdl.YoloLayer(classes=4, anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119], mask=[3, 4, 5],
                      ignore_thresh=.6)


def _case(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, LAYER.channels, 6, 6)).astype(np.float32)
    truth = [np.array([[.31, .42, .3, .25, 1], [.72, .6, .5, .4, 3]], np.float32),
             np.array([[.5, .5, .6, .7, 2]], np.float32)]
    return x, truth, LAYER.forward(x, truth, net_w=192, net_h=192)


def _report(delta: np.ndarray, x, truth, exp):
    return pdl.compare(exp, {"delta": delta.astype(np.float32)}, LAYER, input=x, truth=truth, net_w=192,
                       net_h=192, tolerance="float32")


def _split(d: np.ndarray) -> np.ndarray:
    return d.reshape(d.shape[0], LAYER.n, -1, d.shape[2], d.shape[3]).copy()


def _join(d: np.ndarray) -> np.ndarray:
    return d.reshape(d.shape[0], -1, d.shape[3], d.shape[4])


def test_weight_claims_a_part_weight_and_not_a_whole_array_factor() -> None:
    x, truth, exp = _case()
    d = _split(exp.delta)
    d[:, :, 4] *= np.where(d[:, :, 4] < 0, .5, 1).astype(np.float32)  # negative objectness x 0.5
    r = _report(_join(d), x, truth, exp)
    assert [c.code for c in r.causes] == ["weight"], str(r)
    assert r.causes[0].detail["part"] == "objectness.negative" and r.causes[0].detail["factor"] == .5
    assert any(p.part == "box.x" and p.relation == "equal" for p in r.parts)
    # The look-alike: the whole array halved is a scale, not a weight.
    r = _report(exp.delta * np.float32(.5), x, truth, exp)
    assert [c.code for c in r.causes] == ["scale"], str(r)


def test_a_batch_mean_with_a_part_weight_on_most_elements_is_a_scale_and_a_weight() -> None:
    # Everything halved (a batch mean) and negative objectness 4 times more:
    # that part's factor (2) holds on more elements than the mean's (0.5),
    # but on one part group only; the mean spans the others.  It used to be
    # read as two weights, x2 and x0.5.
    x, truth, exp = _case()
    d = _split(exp.delta) * np.float32(.5)
    neg = (_split(exp.delta)[:, :, :4] == 0).all(axis=2) & (_split(exp.delta)[:, :, 4] < 0)
    d[:, :, 4] *= np.where(neg, 4, 1).astype(np.float32)
    r = _report(_join(d), x, truth, exp)
    codes = {c.code: c for c in r.causes}
    assert set(codes) == {"scale", "weight"}, str(r)
    assert codes["scale"].detail["factor"] == .5
    assert codes["weight"].detail["part"] == "objectness.negative" and codes["weight"].detail["factor"] == 4
    assert "besides the factor 0.5 on the whole array" in codes["weight"].message


def test_scale_never_claims_an_element_no_factor_turns_into_the_implementations() -> None:
    x, truth, exp = _case()
    d = _split(exp.delta) / np.float32(2)
    neg = (_split(exp.delta)[:, :, 4] < 0) & (_split(exp.delta)[:, :, :4] == 0).all(axis=2)
    b, a, j, i = np.argwhere(neg)[0]
    d[b, a, 4, j, i] = 0  # a negative cell ignored: no factor turns darknet's value into 0
    r = _report(_join(d), x, truth, exp)
    m = r.cause_map("delta").reshape(d.shape)
    assert m[b, a, 4, j, i] != "scale", str(r)
    assert r.causes[0].code == "scale"


def test_chain_claims_p_one_minus_p_and_not_a_constant_weight() -> None:
    x, truth, exp = _case()
    y = _split(exp.output).astype(np.float64)
    d = _split(exp.delta).astype(np.float64)
    d[:, :, :2] *= y[:, :, :2] * (1 - y[:, :, :2])  # x, y through the logistic
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "chain" and r.causes[0].detail["part"] == "xy", str(r)
    d = _split(exp.delta)
    d[:, :, :2] *= np.float32(.25)  # a constant .25 looks like p(1 - p) at p = .5 only
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "weight", str(r)


def test_chain_is_shown_beside_saturation_where_both_reproduce_the_values() -> None:
    # A squared error on the sigmoid's objectness, where every logit is
    # saturated (no telling element for the part's fit to find the chain on): there its values are 0, as a saturated BCE's would be.
    # saturated_gradient reproduces them, and so does the chain (p(1 - p)
    # is 0 there too): the chain must be named or shown as the alternative,
    # never saturation alone (the gallery's mse_objectness used to be).
    x, truth, exp0 = _case()
    X = _split(x)
    X[:, :, 4] = np.where(X[:, :, 4] < 0, -40, 40).astype(np.float32)  # every objectness logit saturated
    x = _join(X)
    exp = LAYER.forward(x, truth, net_w=192, net_h=192)
    y = _split(exp.output).astype(np.float64)
    d = _split(exp.delta).astype(np.float64)
    d[:, :, 4] *= y[:, :, 4] * (1 - y[:, :, 4])
    r = _report(_join(d), x, truth, exp)
    assert r.causes, str(r)
    for c in r.causes:
        assert c.code == "chain" or "chain" in c.alternatives, str(r)
    # the look-alike: a saturated BCE leaves the other logits' values as darknet's; no chain claims there
    d = _split(exp.delta).copy()
    sat = np.abs(X[:, :, 4]) > 30
    d[:, :, 4] = np.where(sat, 0, d[:, :, 4])
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "saturated_gradient", str(r)
    assert set(r.cause_map("delta")[r.cause_map("delta") != ""]) == {"saturated_gradient"}, str(r)


def test_a_part_whose_few_values_share_one_p_one_minus_p_reads_as_the_chain_not_an_odd_weight() -> None:
    # Objectness through the logistic at the assigned cells only, whose
    # logits are equal: the ratio to darknet's is one constant, p(1 - p) =
    # 0.1966..., which a weight would claim as "times 0.196612".  The chain
    # at c = 1 is the simpler model reproducing the same values.
    x, truth, exp0 = _case()
    pos = (_split(exp0.delta)[:, :, :4] != 0).any(axis=2)
    X = _split(x)
    X[:, :, 4] = np.where(pos, 1.5, X[:, :, 4]).astype(np.float32)
    x = _join(X)
    exp = LAYER.forward(x, truth, net_w=192, net_h=192)
    assert (pos == (_split(exp.delta)[:, :, :4] != 0).any(axis=2)).all()
    y = _split(exp.output).astype(np.float64)
    d = _split(exp.delta).astype(np.float64)
    d[:, :, 4] = np.where(pos, d[:, :, 4] * y[:, :, 4] * (1 - y[:, :, 4]), d[:, :, 4])
    r = _report(_join(d), x, truth, exp)
    row = {p.part: p for p in r.parts}["objectness.positive"]
    assert (row.relation, row.factor) == ("×σ′", 1.0), str(r)
    # (with one logit at every cell an odd objectness target reproduces them too: shown beside it)
    named = {c.code for c in r.causes} | {a for c in r.causes for a in c.alternatives}
    assert "chain" in named and "weight" not in named, str(r)
    # the look-alike: a simple weight on the same cells (the case's own logits) stays a weight
    x0 = _case()[0]
    d = _split(exp0.delta).copy()
    d[:, :, 4] = np.where(pos, d[:, :, 4] * np.float32(2), d[:, :, 4])
    r = _report(_join(d), x0, truth, exp0)
    assert [c.code for c in r.causes] == ["weight"] and r.causes[0].detail["factor"] == 2, str(r)


def test_class_loss_claims_softmax_cross_entropy_and_not_class_weights() -> None:
    x, truth, exp = _case()
    X = _split(x).astype(np.float64)
    d = _split(exp.delta).astype(np.float64)
    cls = d[:, :, 5:] != 0
    cells = cls.any(axis=2)
    z = X[:, :, 5:]
    q = np.exp(z - z.max(axis=2, keepdims=True))
    q /= q.sum(axis=2, keepdims=True)
    y = _split(exp.output).astype(np.float64)[:, :, 5:]
    t = d[:, :, 5:] + y
    soft = (t - q)
    d[:, :, 5:] = np.where(cells[:, :, None], soft, d[:, :, 5:])
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "class_loss", str(r)
    d = _split(exp.delta)
    d[:, :, 5:] *= np.float32(2)
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "weight" and r.causes[0].detail["part"] == "classes", str(r)


def test_class_target_claims_smoothing_and_not_a_weight() -> None:
    x, truth, exp = _case()
    y = _split(exp.output).astype(np.float64)[:, :, 5:]
    d = _split(exp.delta).astype(np.float64)
    has = (d[:, :, 5:] != 0).any(axis=2)
    t = np.round(d[:, :, 5:] + y)
    smooth = t * .9 + .025
    d[:, :, 5:] = np.where(has[:, :, None], smooth - y, d[:, :, 5:])
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "class_target" and abs(r.causes[0].detail["negative"] - .025) < 1e-6, str(r)


def test_objectness_target_claims_an_iou_target_and_not_a_positive_weight() -> None:
    x, truth, exp = _case()
    ev = dg.evidence(LAYER, x, truth, net_w=192, net_h=192)
    d = _split(exp.delta).astype(np.float64)
    y = _split(exp.output).astype(np.float64)
    for (b, a, j, i), rows in ev.assigned.items():
        d[b, a, 4, j, i] = float(ev.rec["row_iou"][b, rows[-1]]) - y[b, a, 4, j, i]
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "objectness_target", str(r)
    d = _split(exp.delta)
    pos = np.zeros(d.shape, bool)
    for c in ev.assigned:
        pos[c[0], c[1], 4, c[2], c[3]] = True
    d[pos] *= np.float32(5)
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "weight" and r.causes[0].detail["part"] == "objectness.positive", str(r)


def test_two_departures_at_once_are_both_named() -> None:
    x, truth, exp = _case()
    d = _split(-exp.delta)
    d[:, :, :4] *= np.float32(2)  # the gradient, and box deltas without the squared error's 1/2
    r = _report(_join(d), x, truth, exp)
    codes = {c.code for c in r.causes}
    assert codes == {"sign", "weight"}, str(r)
    assert "unexplained" not in codes


@pytest.mark.parametrize("form", ["nhwc", "bahwc"])
def test_a_layout_with_a_part_weight_names_both(form: str) -> None:
    x, truth, exp = _case()
    d = _split(exp.delta)
    d[:, :, 4] *= np.where(d[:, :, 4] < 0, .5, 1).astype(np.float32)
    d4 = _join(d)
    if form == "nhwc":
        raw = np.ascontiguousarray(d4.transpose(0, 2, 3, 1)).reshape(d4.shape)
    else:
        raw = np.ascontiguousarray(d.transpose(0, 1, 3, 4, 2)).reshape(d4.shape)
    r = _report(raw, x, truth, exp)
    assert {c.code for c in r.causes} == {"layout", "weight"}, str(r)


def test_the_report_prints_the_parts_table() -> None:
    x, truth, exp = _case()
    d = _split(exp.delta)
    d[:, :, :4] *= np.float32(2)
    text = str(_report(_join(d), x, truth, exp))
    assert "parts of the delta" in text and "box.x" in text and "×2" in text


def test_the_parts_table_counts_the_entries_darknet_gives_no_delta() -> None:
    # A port that writes where darknet has no delta (the box of a cell it
    # does not assign): the "none" row holds those failures, and the rows
    # add up to every element and every failing one.
    x, truth, exp = _case()
    d = _split(exp.delta)
    free = np.argwhere((d[:, :, :4] == 0).all(axis=2) & (d[:, :, 4] != 0))[:3]
    for b, a, j, i in free:
        d[b, a, :4, j, i] = np.float32(.25)
    r = _report(_join(d), x, truth, exp)
    rows = {p.part: p for p in r.parts}
    assert rows["none"].failing == 12 and rows["none"].relation == "other", str(r)
    assert sum(p.elements for p in r.parts) == exp.delta.size
    assert sum(p.failing for p in r.parts) == int((r.cause_map("delta") != "").sum()) == 12
    assert "    none " in str(r)
    # an implementation equal to darknet's: the row is there, nothing fails
    r = _report(exp.delta * np.float32(2), x, truth, exp)
    assert {p.part: p for p in r.parts}["none"].failing == 0


def test_build_gpu_compares_with_what_the_gpu_build_hands_on() -> None:
    """compare(build="gpu"): [region]'s GPU-build delta (times p(1 - p) on x,
    y and objectness) passes; the CPU build's delta is named as such."""
    layer = pdl.RegionLayer(classes=4, num=2, anchors=[1, 1.5, 3, 2], rescore=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, layer.channels, 5, 5)).astype(np.float32)
    truth = [np.array([[.3, .4, .2, .3, 1], [.7, .2, .4, .5, 2]], np.float32),
             np.array([[.5, .5, .3, .3, 3]], np.float32)]
    res = layer.forward(x, truth, seen=20000)
    kw = dict(input=x, truth=truth, seen=20000)
    assert pdl.compare(res, {"delta": res.net_delta("gpu")}, layer, build="gpu", **kw).ok
    r = pdl.compare(res, {"delta": res.delta}, layer, build="gpu", **kw)
    assert [c.code for c in r.causes] == ["chain"] and "CPU build's delta" in r.causes[0].message, str(r)
    r = pdl.compare(res, {"delta": res.net_delta("gpu")}, layer, **kw)
    assert [c.code for c in r.causes] == ["chain"] and "GPU build's values" in r.causes[0].message, str(r)
    # the GPU form averaged over the batch of 2 (lightnet's RegionLoss), compared as the CPU build: still
    # "the GPU build's values", with the factor named, not the MSE-vs-BCE advice
    r = pdl.compare(res, {"delta": (res.net_delta("gpu") * np.float32(.5))}, layer, **kw)
    chain = [c for c in r.causes if c.code == "chain"]
    assert chain and "GPU build's values" in chain[0].message and "a mean over the batch of 2" in chain[0].message \
        and "cross-entropy" not in chain[0].message, str(r)
    with pytest.raises(ValueError, match="build='gpu' needs input= and truth="):
        pdl.compare(res, {"delta": res.delta}, layer, build="gpu")
    with pytest.raises(ValueError, match="build must be"):
        pdl.compare(res, {"delta": res.delta}, layer, build="tpu", **kw)


def test_box_loss_claims_an_iou_family_gradient_and_not_a_box_weight() -> None:
    from pydarknet_loss.parity.diagnosis.causes.box_loss import _minus_gradient

    x, truth, exp = _case()
    ev = dg.evidence(LAYER, x, truth, net_w=192, net_h=192)
    d = _split(exp.delta).astype(np.float64)
    for (b, a, j, i), rows in ev.assigned.items():
        if len(rows) != 1:
            continue
        m = LAYER.mask[a]
        g = _minus_gradient(ev.X[b, a, :4, j, i].astype(np.float64)[None], np.array([i]), np.array([j]),
                            np.array([LAYER.anchors[2 * m] / 192]), np.array([LAYER.anchors[2 * m + 1] / 192]),
                            ev.truth[b, rows[-1], :4].astype(np.float64)[None], 6, 6, "ciou")
        d[b, a, :4, j, i] = g[0]
    r = _report(_join(d), x, truth, exp)
    assert r.causes[0].code == "box_loss" and r.causes[0].detail["loss"] == "ciou", str(r)
    d = _split(exp.delta)
    d[:, :, :4] *= np.float32(5)
    r = _report(_join(d), x, truth, exp)
    assert [c.code for c in r.causes] == ["weight"], str(r)


def test_class_short_circuit_claims_only_the_positives_its_model_predicts() -> None:
    # Two truths share a cell.  A missing short-circuit leaves the last
    # truth's class alone positive: claimed.  A third class added there (a
    # row read past x == 0 landing in that cell) is not what a missing
    # short-circuit gives: not claimed by it.
    layer = pdl.YoloLayer(classes=6, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2], ignore_thresh=.6)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, layer.channels, 4, 4)).astype(np.float32)
    truth = [np.array([[.30, .30, .05, .07, 1], [.31, .32, .05, .07, 4]], np.float32)]
    res = layer.forward(x, truth, net_w=64, net_h=64)
    d = res.delta.reshape(1, 3, 11, 4, 4).copy()
    a, j, i = np.argwhere((d[0, :, :4] != 0).any(axis=1))[0]
    assert d[0, a, 5 + 1, j, i] > 0 and d[0, a, 5 + 4, j, i] > 0  # the short-circuit keeps both
    y = res.output.reshape(d.shape)
    mine = d.copy()
    mine[0, a, 5 + 1, j, i] = 0 - y[0, a, 5 + 1, j, i]  # without it: the last truth's vector, class 4 alone
    r = pdl.compare(res, {"delta": mine.reshape(res.delta.shape)}, layer, input=x, truth=truth, net_w=64, net_h=64)
    assert [c.code for c in r.causes] == ["class_short_circuit"], str(r)
    mine = d.copy()
    mine[0, a, 5 + 2, j, i] = 1 - y[0, a, 5 + 2, j, i]  # a third class made positive there
    r = pdl.compare(res, {"delta": mine.reshape(res.delta.shape)}, layer, input=x, truth=truth, net_w=64, net_h=64)
    assert "class_short_circuit" not in {c.code for c in r.causes}, str(r)


def test_a_prior_weight_on_top_of_the_box_forms_is_named() -> None:
    """lightnet's RegionLoss with its prior: GPU-build values averaged over
    the batch, the prior 10 times darknet's; compared as the CPU build its
    prior is 5·p(1 - p) on x, y and 5 on w, h.  The prior weight is fitted
    on top of the forms the box entries carry (x, y: 0.5·p(1 - p); w, h:
    0.5) and claims every prior element; it used to be all unexplained."""
    layer = pdl.RegionLayer(classes=4, num=2, anchors=[1, 1.5, 3, 2], rescore=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, layer.channels, 5, 5)).astype(np.float32)
    truth = [np.array([[.3, .4, .2, .3, 1], [.7, .2, .4, .5, 2]], np.float32),
             np.array([[.5, .5, .3, .3, 3]], np.float32)]
    r0, r1 = layer.forward(x, truth, seen=0), layer.forward(x, truth, seen=20000)
    d0, d1 = r0.net_delta("gpu").astype(np.float64), r1.net_delta("gpu").astype(np.float64)
    mine = (0.5 * (d0 + 9 * (d0 - d1))).astype(np.float32)  # d0 - d1: the prior alone (assigned cells overwrite it)
    r = pdl.compare(r0, {"delta": mine}, layer, input=x, truth=truth, seen=0)
    prior = {p.part: p for p in r.parts}["prior"]
    w = [c for c in r.causes if c.code == "weight" and c.detail.get("part") == "prior"]
    assert w and w[0].detail["factor"] == 10 and w[0].count == prior.failing > 0, str(r)
    assert "unexplained" not in {c.code for c in r.causes}, str(r)
    # the look-alike: the prior 10 times darknet's in the CPU form, nothing else: a plain prior weight
    d = r0.delta.astype(np.float64) + 9 * (r0.delta.astype(np.float64) - r1.delta.astype(np.float64))
    r = pdl.compare(r0, {"delta": d.astype(np.float32)}, layer, input=x, truth=truth, seen=0)
    assert [(c.code, c.detail.get("factor")) for c in r.causes] == [("weight", 10)], str(r)
    assert "On top of the forms" not in r.causes[0].message

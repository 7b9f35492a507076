"""The record of AlexeyAB's [yolo] decisions (darknet_src/ab_record.c, issue 20),
checked against first principles: the held-out NumPy port's own arithmetic
(tests/heldout_ab_impls.py, written from upstream's yolo_layer.c and box.c),
not against the C core's forward."""
from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

import pydarknet_loss as pdl
import heldout_ab_impls as H

evidence_mod = importlib.import_module("pydarknet_loss.parity.diagnosis.evidence")


def _record(c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evidence_mod._evidence_ab(c.layer, c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
    return ev, evidence_mod.ab_record(ev)


def _rows_case():
    """x == 0 terminator at row 2 of image 0 and a class id out of range at row 1 of image 1."""
    rows = [[[0.3, 0.4, 0.2, 0.3, 1], [0.6, 0.2, 0.1, 0.15, 0], [0.0, 0.5, 0.3, 0.3, 2], [0.7, 0.7, 0.2, 0.2, 3]],
            [[0.5, 0.5, 0.25, 0.2, 2], [0.2, 0.8, 0.1, 0.1, 7], [0.8, 0.3, 0.3, 0.35, 1]]]
    with pytest.warns(pdl.DarknetQuirkWarning, match="x == 0"):
        return H.ab_case(7, H.CIOU_HEAD, rows=rows)


def test_rows_read_and_why_not() -> None:
    c = _rows_case()
    _, rec = _record(c)
    st = rec["row_status"]
    assert st.shape == (2, c.layer.max_boxes)
    assert st[0, :2].tolist() == [0, 0] and (st[0, 2:] == 1).all()   # x == 0 ends image 0's list
    assert st[1, :3].tolist() == [0, 2, 0] and (st[1, 3:] == 1).all()  # class 7 of 4: skipped
    assert (rec["best_anchor"][st != 0] == -1).all() and (rec["row_i"][st != 0] == -1).all()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_each_rows_anchor_cell_and_iou_thresh_anchors(seed: int) -> None:
    c = H.ab_case(seed, H.CIOU_HEAD, n_truth=6)
    _, rec = _record(c)
    layer = c.layer
    H_, W_ = c.x.shape[2], c.x.shape[3]
    mask = [int(m) for m in layer.mask]
    writes = np.zeros_like(rec["writes"])
    for b in range(c.truth.shape[0]):
        for t in range(layer.max_boxes):
            row = c.truth[b, t]
            if not row[0]:
                break
            shifted = (0.0, 0.0, float(row[2]), float(row[3]))
            ious = [H.box_iou((0.0, 0.0, H._r(layer.anchors[2 * a] / 416), H._r(layer.anchors[2 * a + 1] / 416)),
                              shifted) for a in range(layer.total)]
            best = 0
            for a in range(layer.total):  # the first of the largest, 0 when none overlaps
                if ious[a] > ious[best]:
                    best = a
            i, j = int(np.float32(row[0]) * np.float32(W_)), int(np.float32(row[1]) * np.float32(H_))
            assert rec["best_anchor"][b, t] == best
            assert rec["best_in_mask"][b, t] == (mask.index(best) if best in mask else -1)
            assert (rec["row_i"][b, t], rec["row_j"][b, t]) == (i, j)
            extra = [k for k, a in enumerate(mask) if a != best and ious[a] > float(layer.iou_thresh)]
            assert np.flatnonzero(rec["extra"][b, t]).tolist() == extra
            for k in extra + ([mask.index(best)] if best in mask else []):
                writes[b, k, j, i] += 1
    # truth_thresh is 1 here: only loop 2 writes box deltas
    np.testing.assert_array_equal(rec["writes"], writes)
    assert rec["extra"].any()


def test_each_cells_best_iou_with_and_without_the_class_gate() -> None:
    c = H.ab_case(21, H.CIOU_HEAD, n_truth=4, no_class_cells=True, ignore_thresh=0.5)
    ev, rec = _record(c)
    layer = c.layer
    B, n, P, H_, W_ = ev.Y.shape
    rows = [(b, t) for b in range(B) for t in range(layer.max_boxes) if rec["row_status"][b, t] == 0]
    for b in range(B):
        for a in range(n):
            anchor = int(layer.mask[a])
            for j in range(H_):
                for i in range(W_):
                    o = ev.Y[b, a, :, j, i]
                    pred = (H._r(H._r(i + float(o[0])) / W_), H._r(H._r(j + float(o[1])) / H_),
                            H._r(np.exp(np.float64(ev.X[b, a, 2, j, i])) * float(layer.anchors[2 * anchor]) / 416),
                            H._r(np.exp(np.float64(ev.X[b, a, 3, j, i])) * float(layer.anchors[2 * anchor + 1]) / 416))
                    gate = bool((o[5:] > np.float32(0.25)).any())
                    ious = [H.box_iou(pred, tuple(float(v) for v in c.truth[bb, t, :4])) for bb, t in rows if bb == b]
                    best_all = max(ious + [0.0])
                    assert rec["best_iou_all"][b, a, j, i] == np.float32(best_all)
                    assert rec["best_iou"][b, a, j, i] == np.float32(best_all if gate else 0.0)
    # the case has cells the gate closes with an IoU above ignore_thresh
    assert ((rec["best_iou_all"] > 0.5) & (rec["best_iou"] == 0)).any()


def test_the_record_follows_hank_ais_flavor() -> None:
    """hank-ai's layer records with its own box_iou (the layer's flavor): the rows are the same here."""
    c = H.ab_case(31, H.CIOU_HEAD, n_truth=3)
    params = c.layer.params()
    params.pop("show_details", None)
    hk = pdl.hankai.YoloLayer(**params)
    c2 = H.Case(hk, c.x, c.truth)
    _, rec_ab = _record(c)
    _, rec_hk = _record(c2)
    np.testing.assert_array_equal(rec_ab["best_anchor"], rec_hk["best_anchor"])


# ---- every element's delta, its form, target and scale ------------------------------------------------------------
#
# The record replays process_batch's writes to l.delta (rec["delta"]) and says
# how each value was formed: AB_FORM_TARGET where it is
# (scale*(target - output))*norm in float32 (norm is 1 but for MSE box deltas,
# whose iou_normalizer comes after scale = 2 - w*h).  Checked against
# upstream's own delta (the golden cases) and the oracle's (random cases).

import goldens_ab as GA  # noqa: E402
import goldens_hankai as GH  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pydarknet_loss import _native, alexeyab, hankai  # noqa: E402
from pydarknet_loss import strategies as S  # noqa: E402

ZERO, TARGET, OTHER = 0, 1, 2
assert (_native.lib.AB_FORM_ZERO, _native.lib.AB_FORM_TARGET, _native.lib.AB_FORM_OTHER) == (ZERO, TARGET, OTHER)
U32 = np.uint32


def _native_record(layer, x, truth, net_w, net_h):
    """The oracle's forward, then the record; the forward's output and delta
    (copied before the record ran) and whether the record left them alone."""
    x = np.ascontiguousarray(x, np.float32)
    B, _, H, W = x.shape
    truth = np.ascontiguousarray(layer.pack_truth(truth, B), np.float32)
    call = _native.ABCall(layer._spec(), B, H, W)
    assert call.forward(x, truth, train=True, net_w=net_w, net_h=net_h, index=0, threads=1) == _native.DN_OK
    out, delta = call.output.copy(), call.delta.copy()
    rec = call.record(truth, net_w=net_w, net_h=net_h)
    untouched = np.array_equal(call.output.view(U32), out.view(U32)) and \
        np.array_equal(call.delta.view(U32), delta.view(U32))
    shape = rec["delta"].shape
    return rec, out.reshape(shape), delta.reshape(shape), untouched


def _form_value(rec, output):
    with np.errstate(all="ignore"):
        return (rec["scale"] * (rec["target"] - output)) * rec["norm"]


def _assert_forms(rec, output, delta) -> None:
    """rec's replay is `delta` bit for bit; each target form reproduces it
    bit for bit; the zeros are zeros; the fields of the rest are 0."""
    form = rec["form"]
    assert set(np.unique(form).tolist()) <= {ZERO, TARGET, OTHER}
    np.testing.assert_array_equal(rec["delta"].view(U32), delta.view(U32))
    t = form == TARGET
    got = _form_value(rec, output)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[t].view(U32), delta[t].view(U32))
    assert (delta[form == ZERO] == 0).all()
    for k in ("target", "scale", "norm"):
        assert (rec[k][~t] == 0).all()


def _golden_train_cases():
    """The training cases (inference ones have no delta) of both lineages."""
    out = []
    for module, tag, folders in ((alexeyab, "ab", (GA.REPO, GA.EXTRA)), (hankai, "hankai", (GH.REPO, GH.EXTRA))):
        for folder in folders:
            if not (folder / "MANIFEST.json").is_file():
                continue
            for c in GA.manifest(folder)["cases"]:
                if c["kind"] == "yolo_ab" and c["train"]:
                    out.append(pytest.param(folder / c["file"], module, id=f"{tag}-{folder.parent.name}-{c['file']}"))
    return out


GOLDEN = _golden_train_cases()


def test_the_golden_sets_are_there_and_varied() -> None:
    assert len(GOLDEN) >= 100


@pytest.mark.parametrize("path,module", GOLDEN)
def test_forms_reproduce_upstreams_delta_bit_for_bit(path, module) -> None:
    """Against upstream's own output and delta (a build of 59596d7 / hank-ai's
    f684e1d7): the replay is its delta and each target form its value."""
    d = GA.load(path)
    assert d["train"]
    p = d["params"]
    layer = module.layer_from_params(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec, out, delta, untouched = _native_record(layer, d["input"], d["truth"], p["net_w"], p["net_h"])
    shape = rec["delta"].shape
    up_out = np.asarray(d["output"], np.float32).reshape(shape)
    up_delta = np.asarray(d["delta"], np.float32).reshape(shape)
    assert untouched
    _assert_forms(rec, up_out, up_delta)


@pytest.mark.parametrize("path", ["auto", "reference"])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # the env is constant
@given(data=st.data())
def test_forms_reproduce_the_oracles_delta_on_random_cases(path, data, monkeypatch) -> None:
    """Drawn layers of both lineages (every box loss, iou_thresh kinds,
    new_coords, objectness_smooth, label smoothing, focal loss,
    counters_per_class, max_delta) and yolov4.cfg's heads with every option:
    the oracle's delta on its fast and its reference path."""
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
    which = data.draw(st.sampled_from(["alexeyab", "hankai", "yolov4.cfg"]))
    if which == "yolov4.cfg":
        c = data.draw(S.cases(kind="yolo_ab", options="all"))
    else:
        layer = data.draw(S.alexeyab_layers() if which == "alexeyab" else S.hankai_layers())
        c = data.draw(S.cases(layer, kind="yolo_ab"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec, out, delta, untouched = _native_record(c.layer, c.x, c.truth, c.net_w, c.net_h)
    assert untouched
    _assert_forms(rec, out, delta)


def _case_record(c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _native_record(c.layer, c.x, c.truth, c.net_w, c.net_h)


def _assigned(rec, layer):
    """(b, mask index, j, i) -> the rows written there (best anchor or iou_thresh)."""
    cells = {}
    B, R = rec["row_status"].shape
    for b in range(B):
        for t in range(R):
            if rec["row_status"][b, t]:
                continue
            j, i = int(rec["row_j"][b, t]), int(rec["row_i"][b, t])
            a = int(rec["best_in_mask"][b, t])
            if a >= 0:
                cells.setdefault((b, a, j, i), []).append((t, int(layer.mask[a])))
            for k in np.flatnonzero(rec["extra"][b, t]):
                cells.setdefault((b, int(k), j, i), []).append((t, int(layer.mask[k])))
    return cells


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_mse_targets_from_first_principles(seed: int) -> None:
    """An MSE head: a cell one row was written at has its box deltas in
    target form with upstream's targets (x*w - i, y*h - j, log(w*net_w /
    anchor_w), log(h*net_h / anchor_h)), scale 2 - w*h and norm
    iou_normalizer; objectness target 1 times obj_normalizer; the classes
    one-hot, scale 1.  A cell no row was written at: objectness target 0
    times obj_normalizer, or a plain zero where its class-gated best IoU is
    above ignore_thresh; its box and class deltas zeros."""
    c = H.ab_case(seed, H.MSE_HEAD, n_truth=6, obj_normalizer=2.0)
    layer = c.layer
    rec, out, delta, _ = _case_record(c)
    _, _, _, Hh, Ww = rec["delta"].shape
    f32 = np.float32
    cells = _assigned(rec, layer)
    singles = 0
    for (b, a, j, i), rows in cells.items():
        if len(rows) != 1:
            continue
        singles += 1
        (t, anchor), = rows
        x, y, w, h, cls = (f32(v) for v in c.truth[b, t, :5])
        aw, ah = f32(layer.anchors[2 * anchor]), f32(layer.anchors[2 * anchor + 1])
        targets = [f32(x * f32(Ww) - f32(i)), f32(y * f32(Hh) - f32(j)),
                   f32(np.log(np.float64(f32(f32(w * f32(c.net_w)) / aw)))),
                   f32(np.log(np.float64(f32(f32(h * f32(c.net_h)) / ah))))]
        for k in range(4):
            assert rec["form"][b, a, k, j, i] == TARGET
            assert rec["target"][b, a, k, j, i] == targets[k]
            assert rec["scale"][b, a, k, j, i] == f32(2 - w * h)
            assert rec["norm"][b, a, k, j, i] == f32(0.75)
        assert (rec["form"][b, a, 4, j, i], rec["target"][b, a, 4, j, i], rec["scale"][b, a, 4, j, i]) == \
            (TARGET, 1, 2)
        onehot = (np.arange(layer.classes) == int(cls)).astype(np.float32)
        assert (rec["form"][b, a, 5:, j, i] == TARGET).all()
        np.testing.assert_array_equal(rec["target"][b, a, 5:, j, i], onehot)
        assert (rec["scale"][b, a, 5:, j, i] == 1).all()
    assert singles >= 5
    ignored = negative = 0
    B, n = rec["form"].shape[:2]
    for b in range(B):
        for a in range(n):
            for j in range(Hh):
                for i in range(Ww):
                    if (b, a, j, i) in cells:
                        continue
                    assert (rec["form"][b, a, :4, j, i] == ZERO).all() and (rec["form"][b, a, 5:, j, i] == ZERO).all()
                    if rec["best_iou"][b, a, j, i] > f32(0.7):
                        ignored += 1
                        assert rec["form"][b, a, 4, j, i] == ZERO and delta[b, a, 4, j, i] == 0
                    else:
                        negative += 1
                        assert (rec["form"][b, a, 4, j, i], rec["target"][b, a, 4, j, i],
                                rec["scale"][b, a, 4, j, i]) == (TARGET, 0, 2)
    assert ignored >= 1 and negative >= 1


def test_two_rows_at_one_cell() -> None:
    """Two rows of one class written at the same cell and anchor: their box
    deltas are added (no target form); the second row's class delta takes
    upstream's duplicate branch: the class alone, target 1, no
    cls_normalizer (1 here either way)."""
    c = H.ab_case(5, H.MSE_HEAD, rows=H._shared_rows())
    rec, out, delta, _ = _case_record(c)
    shared = [k for k, rows in _assigned(rec, c.layer).items() if len(rows) >= 2]
    assert shared
    for (b, a, j, i) in shared:
        assert (rec["writes"][b, a, j, i]) >= 2
        assert (rec["form"][b, a, :4, j, i] == OTHER).all()
        cls = int(c.truth[b, _assigned(rec, c.layer)[(b, a, j, i)][0][0], 4])
        assert (rec["form"][b, a, 5 + cls, j, i], rec["target"][b, a, 5 + cls, j, i]) == (TARGET, 1)
    _assert_forms(rec, out, delta)


def test_iou_family_box_deltas_are_no_target_form() -> None:
    c = H.ab_case(7, H.CIOU_HEAD, n_truth=6)
    rec, out, delta, _ = _case_record(c)
    box = rec["form"][:, :, :4]
    assert (box != TARGET).all()
    assert (box == OTHER).sum() >= 4 * len(_assigned(rec, c.layer)) - 4  # a gradient can be an exact 0
    assert (rec["form"][:, :, 4] == TARGET).any()


def test_class_multipliers_and_cls_normalizer() -> None:
    """counters_per_class: the assigned class's delta is times its
    multiplier and cls_normalizer (upstream applies cls_normalizer only
    with multipliers), the other classes' are not; objectness is times the
    multiplier and obj_normalizer."""
    counters = [10, 300, 40, 7]
    c = H.ab_case(9, H.MSE_HEAD, n_truth=4, counters_per_class=counters, cls_normalizer=0.5, iou_thresh=1.0)
    layer = c.layer
    m = np.asarray(layer.classes_multipliers, np.float32)
    assert len(set(m.tolist())) > 1
    rec, out, delta, _ = _case_record(c)
    seen = 0
    for (b, a, j, i), rows in _assigned(rec, layer).items():
        if len(rows) != 1:
            continue
        cls = int(c.truth[b, rows[0][0], 4])
        assert rec["scale"][b, a, 5 + cls, j, i] == np.float32(m[cls] * np.float32(0.5))
        others = [k for k in range(layer.classes) if k != cls]
        assert (rec["scale"][b, a, [5 + k for k in others], j, i] == 1).all()
        assert rec["scale"][b, a, 4, j, i] == np.float32(m[cls] * np.float32(layer.obj_normalizer))
        assert rec["norm"][b, a, 0, j, i] == np.float32(np.float32(0.75) * m[cls])
        seen += 1
    assert seen >= 3
    _assert_forms(rec, out, delta)


def test_focal_loss_is_a_target_form_of_scale_alpha_grad() -> None:
    c = H.ab_case(13, H.CIOU_HEAD, n_truth=10, focal_loss=1, iou_thresh=1.0)
    rec, out, delta, _ = _case_record(c)
    seen = 0
    for (b, a, j, i), rows in _assigned(rec, c.layer).items():
        if len(rows) != 1:
            continue
        cls = int(c.truth[b, rows[0][0], 4])
        pt = np.float64(out[b, a, 5 + cls, j, i]) + 1e-15
        grad = -(1 - pt) * (2 * pt * np.log(pt) + pt - 1)
        assert (rec["form"][b, a, 5:, j, i] == TARGET).all()
        np.testing.assert_allclose(rec["scale"][b, a, 5:, j, i], 0.5 * grad, rtol=1e-5)
        seen += 1
    assert seen >= 3
    _assert_forms(rec, out, delta)


def test_objectness_smooth_targets_the_best_iou() -> None:
    """objectness_smooth: an ignored cell's objectness targets its
    class-gated best IoU where that pushes above the target-0 delta."""
    c = H.ab_case(17, H.CIOU_HEAD, n_truth=5, objectness_smooth=1, ignore_thresh=0.5)
    rec, out, delta, _ = _case_record(c)
    assigned = _assigned(rec, c.layer)
    hits = 0
    B, n, _, Hh, Ww = rec["form"].shape
    for b in range(B):
        for a in range(n):
            for j in range(Hh):
                for i in range(Ww):
                    if (b, a, j, i) in assigned or rec["best_iou"][b, a, j, i] <= np.float32(0.5):
                        continue
                    assert rec["form"][b, a, 4, j, i] == TARGET
                    assert rec["target"][b, a, 4, j, i] == rec["best_iou"][b, a, j, i]
                    hits += 1
    assert hits >= 1
    _assert_forms(rec, out, delta)

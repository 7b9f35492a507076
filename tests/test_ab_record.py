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

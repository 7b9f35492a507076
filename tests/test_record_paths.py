"""record.c's two ways of filling the record: upstream's loops as written
(record_loss_layer: one thread, DN_PATH_REFERENCE) and the fast one the
diagnosis uses (record_loss_layer_opt: the forward's kernels, images on
several threads).  They must give the same arrays, bit for bit, on every
input: random [yolo] and [region] layers, truth lists ended early by x == 0,
rows past the terminator or past max_boxes that still look like boxes (the
``_ext`` arrays) or not, and non-finite inputs."""
from __future__ import annotations

import warnings
from typing import Any, Dict

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss import _native
from pydarknet_loss.parity import diagnosis as dg


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32) if a.dtype == np.float32 else a


def _records(ev: Any) -> Dict[str, Dict[str, np.ndarray]]:
    call, truth = ev._call, ev.truth
    out = {}
    for name, threads, path in (("reference", 1, _native.lib.DN_PATH_REFERENCE),
                                ("portable", 1, _native.lib.DN_PATH_PORTABLE),
                                ("auto", 1, _native.lib.DN_PATH_AUTO),
                                ("auto, 3 threads", 3, _native.lib.DN_PATH_AUTO)):
        out[name] = _native.record(call, truth, net_w=ev.net_w, net_h=ev.net_h, threads=threads, path=path)
    return out


def _truth(rng: np.random.Generator, batch: int, rows: int, classes: int) -> np.ndarray:
    t = np.zeros((batch, rows, 5), np.float32)
    for b in range(batch):
        k = int(rng.integers(0, min(rows, 25) + 1))
        t[b, :k, 0:2] = rng.uniform(0.0, 1.0, (k, 2))
        t[b, :k, 2:4] = rng.uniform(0.005, 0.7, (k, 2))
        t[b, :k, 4] = rng.integers(0, classes, k)
        if k and rng.random() < 0.3:  # an early terminator, with boxes after it (read by no one but the _ext arrays)
            t[b, int(rng.integers(0, k)), 0] = 0
        if k < rows and rng.random() < 0.2:  # past the list: a row that is not a box (outside the grid)
            t[b, k + 1:k + 2, 0:4] = [1.5, 0.5, 0.1, 0.1]
    return t


def _x(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    x = (rng.standard_normal(shape) * rng.choice([0.5, 2.0, 6.0])).astype(np.float32)
    if rng.random() < 0.2:
        flat = x.reshape(-1)
        flat[rng.integers(0, flat.size, 5)] = rng.choice([np.nan, np.inf, -np.inf, 90.0, -90.0], 5)
    return x


@pytest.mark.parametrize("seed", range(40))
def test_yolo_record_is_the_same_on_every_path(seed: int) -> None:
    rng = np.random.default_rng([seed, 18])
    total = int(rng.integers(1, 10))
    anchors = rng.uniform(4, 400, 2 * total).round(1).tolist()
    mask = sorted(rng.choice(total, int(rng.integers(1, total + 1)), replace=False).tolist())
    classes = int(rng.integers(1, 6))
    layer = pdl.YoloLayer(classes=classes, anchors=anchors, mask=mask, max_boxes=int(rng.choice([90, 90, 7, 2])),
                          ignore_thresh=0.7, truth_thresh=float(rng.choice([1.0, 0.8])))
    B, H, W = int(rng.integers(1, 5)), int(rng.integers(1, 30)), int(rng.integers(1, 30))
    x = _x(rng, (B, len(mask) * (5 + classes), H, W))
    truth = _truth(rng, B, 90, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = dg.evidence(layer, x, truth, net_w=int(rng.choice([416, 320])), net_h=416)
    recs = _records(ev)
    ref = recs.pop("reference")
    for name, rec in recs.items():
        for key, want in ref.items():
            assert np.array_equal(_bits(rec[key]), _bits(want)), (name, key)


@pytest.mark.parametrize("seed", range(8))
def test_region_record_is_the_same_on_every_path(seed: int) -> None:
    rng = np.random.default_rng([seed, 19])
    layer = pdl.RegionLayer(classes=3, coords=4, anchors=[1.08, 1.19, 3.42, 4.41, 6.63, 11.38], softmax=1,
                            bias_match=int(rng.integers(0, 2)), rescore=1, thresh=0.6)
    B, H, W = int(rng.integers(1, 4)), int(rng.integers(1, 14)), int(rng.integers(1, 14))
    x = _x(rng, (B, 3 * (5 + 3), H, W))
    truth = _truth(rng, B, 30, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = dg.evidence(layer, x, truth, seen=int(rng.choice([0, 20000])))
    recs = _records(ev)
    ref = recs.pop("reference")
    for name, rec in recs.items():
        for key, want in ref.items():
            assert np.array_equal(_bits(rec[key]), _bits(want)), (name, key)


def test_the_fast_record_is_taken_and_sees_the_truths() -> None:
    """The bench's head (the fast path's case): most cells overlap a truth,
    and the record names the row as the reference does."""
    rng = np.random.default_rng(3)
    layer = pdl.YoloLayer(classes=80, anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198,
                                               373, 326], mask=[0, 1, 2], ignore_thresh=0.7)
    x = rng.standard_normal((4, 255, 52, 52)).astype(np.float32)
    truth = np.zeros((4, 90, 5), np.float32)
    truth[:, :20, 0:2] = rng.uniform(0.01, 0.99, (4, 20, 2))
    truth[:, :20, 2:4] = rng.uniform(0.02, 0.6, (4, 20, 2))
    ev = dg.evidence(layer, x, truth, net_w=416, net_h=416)
    recs = _records(ev)
    ref = recs["reference"]
    assert (ref["best_truth"] >= 0).mean() > 0.3
    for name, rec in recs.items():
        for key, want in ref.items():
            assert np.array_equal(_bits(rec[key]), _bits(want)), (name, key)

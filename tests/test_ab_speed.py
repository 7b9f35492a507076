"""AlexeyAB's [yolo]: the fast paths and threads change no bit.  Every
AlexeyAB golden case on every path (AVX2, portable C, upstream's loops) and
thread count; the fast paths and any thread count against upstream's loops
on adversarial random layers (NaN, infinities, huge values, skipped rows,
truth_thresh and iou_thresh branches); the fast logistic and expf kernels
against libm on a strided subset of all 2^32 floats (the whole set:
scripts/check_ab_logistic.py, result recorded in
scripts/ab_logistic_exhaustive.txt)."""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import pytest

import goldens as G
import goldens_ab as GA
from pydarknet_loss import _native, alexeyab
from pydarknet_loss._native import ffi, lib

PATHS = ["auto", "portable", "reference"]
THREADS = [1, 2, 3]
CASES = [(p, GA.load(p)) for p in GA.cases(GA.REPO) + GA.cases(GA.EXTRA)]


def _forward(d: Dict[str, Any], threads: int) -> alexeyab.YoloResult:
    p = d["params"]
    return alexeyab.layer_from_params(p).forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"],
                                                 train=bool(d["train"]), index=p["net_index"], threads=threads)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("path", PATHS)
def test_every_alexeyab_golden_case_on_every_path(path: str, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
    assert len(CASES) >= 80 + 40
    for p, d in CASES:
        try:
            GA.assert_matches(_forward(d, threads), d)
        except AssertionError as e:
            raise AssertionError(f"{p.name}: {e}") from None


# ---- adversarial random layers: every path and thread count equals upstream's loops ----

def _nasty(rng: np.random.Generator, shape: Tuple[int, ...]) -> np.ndarray:
    """Inputs at every scale, with NaN (both signs), infinities, subnormals,
    zeros of both signs and values where exp and expf over- or underflow."""
    x = rng.standard_normal(shape) * rng.choice([0.5, 3, 20, 200], size=shape)
    x = x.astype(np.float32)
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 87.0, -87.0, 87.5, -87.5,
                        88.8, -103.9, -104.1, 710, -745, 3e38, -3e38, 16.6, 17.4, 36.7, 37.5], np.float32)
    pick = rng.random(shape) < 0.03
    x[pick] = rng.choice(special, size=int(pick.sum()))
    return x


def _truths(rng: np.random.Generator, batch: int, rows: int, h: int, w: int, classes: int) -> np.ndarray:
    """Rows upstream accepts (finite, x, y in [0, 1], w, h >= 0, the cell inside
    the grid), some with class ids it skips, duplicate cells, terminators."""
    t = np.zeros((batch, rows, 6), np.float32)
    for b in range(batch):
        k = int(rng.integers(0, rows + 1))
        t[b, :k, 0] = rng.uniform(0.001, 0.999, k)
        t[b, :k, 1] = rng.uniform(0.001, 0.999, k)
        t[b, :k, 2] = rng.choice([rng.uniform(0.001, 1.5), 1e-6, 0.0, 3.0, 1e4], size=k,
                                 p=[0.8, 0.05, 0.05, 0.05, 0.05])
        t[b, :k, 3] = rng.uniform(0.0, 1.2, k)
        t[b, :k, 4] = rng.integers(0, classes, k)
        t[b, :k, 5] = rng.integers(-3, 50, k)
        if k > 1 and rng.random() < 0.3:  # a class id upstream skips (it warns per cell)
            t[b, int(rng.integers(0, k)), 4] = rng.choice([-1, classes, classes + 7])
        if k > 2 and rng.random() < 0.5:  # two truths in one cell
            t[b, 1, :2] = t[b, 0, :2]
        if k > 4 and rng.random() < 0.2:  # an x == 0 terminator mid-list
            t[b, k // 2, 0] = 0
        bad = (np.floor(t[b, :, 0] * np.float32(w)) >= w) | (np.floor(t[b, :, 1] * np.float32(h)) >= h)
        t[b, bad, 0:2] = np.float32(0.5)
    return t


def _random_layer(rng: np.random.Generator) -> Tuple[alexeyab.YoloLayer, np.ndarray, np.ndarray, Dict[str, int]]:
    total = int(rng.integers(1, 10))
    n = int(rng.integers(1, total + 1))
    classes = int(rng.integers(1, 12))
    w, h = int(rng.integers(1, 23)), int(rng.integers(1, 23))
    batch = int(rng.integers(1, 6))
    anchors = rng.uniform(2, 400, 2 * total).astype(np.float32)
    if rng.random() < 0.1:
        anchors[0] = 1e-30  # boxes that underflow to zero area
    max_boxes = int(rng.choice([200, 30, 7, 1]))
    layer = alexeyab.YoloLayer(
        classes=classes, anchors=anchors.tolist(), mask=sorted(rng.choice(total, n, replace=False).tolist()),
        max_boxes=max_boxes, ignore_thresh=float(rng.choice([0.5, 0.7, 0.0, -0.1, 0.95])),
        truth_thresh=float(rng.choice([1.0, 1.0, 0.6, 0.3, 0.0, -0.2])),
        iou_thresh=float(rng.choice([1.0, 0.213, 0.0])),
        iou_thresh_kind=str(rng.choice(["iou", "giou", "diou", "ciou"])),
        iou_loss=str(rng.choice(["mse", "ciou", "giou", "iou", "diou"])),
        iou_normalizer=float(rng.choice([0.75, 0.07])), obj_normalizer=float(rng.choice([1.0, 0.4])),
        cls_normalizer=float(rng.choice([1.0, 0.5])), max_delta=None if rng.random() < 0.5 else 5.0,
        scale_x_y=float(rng.choice([1.0, 1.05, 1.2, 2.0])), new_coords=int(rng.random() < 0.2),
        objectness_smooth=int(rng.random() < 0.2), label_smooth_eps=float(rng.choice([0.0, 0.1])),
        focal_loss=int(rng.random() < 0.15),
        counters_per_class=rng.integers(0, 30, classes).tolist() if rng.random() < 0.2 else None,
        map=rng.permutation(classes).tolist() if rng.random() < 0.15 else None,
        show_details=int(rng.choice([1, 1, 0])))
    x = _nasty(rng, (batch, n * (5 + classes), h, w))
    truth = _truths(rng, batch, max_boxes, h, w, classes)
    if layer.truth_thresh < 0:  # every cell then takes row 0's class: it must be one (else refused)
        truth[:, 0, 4] = np.mod(truth[:, 0, 4], classes)
    return layer, x, truth, dict(net_w=int(rng.choice([416, 608, 97])), net_h=int(rng.choice([416, 320])))


def _fields(res: alexeyab.YoloResult) -> Dict[str, Any]:
    return dict(output=res.output, delta=res.delta, cost=np.float32(res.cost), labels=res.labels,
                class_ids=res.class_ids, line=res.stats.line() if res.stats else "",
                stats=res.stats.as_array() if res.stats else np.zeros(0),
                counters=(res.count, res.total_bbox, res.rewritten_bbox, res.skipped_truths))


def _same(a: Dict[str, Any], b: Dict[str, Any], what: str) -> None:
    for k in a:
        if k in ("counters", "line"):
            assert a[k] == b[k], (what, k, a[k], b[k])
        else:
            assert G.bits_equal(np.asarray(a[k]), np.asarray(b[k])), (what, k, G.first_difference(a[k], b[k]))


def test_fast_paths_and_threads_equal_upstreams_loops_on_adversarial_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1414)
    for trial in range(60):
        layer, x, truth, net = _random_layer(rng)
        monkeypatch.setenv("PYDARKNET_LOSS_PATH", "reference")
        ref = _fields(layer.forward(x, truth, threads=1, **net))
        for path in PATHS:
            monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
            for threads in (1, 2, 3, 7):
                if path == "reference" and threads == 1:
                    continue
                _same(_fields(layer.forward(x, truth, threads=threads, **net)), ref,
                      f"trial {trial} {layer!r} {path} x{threads}")


def test_threads_do_not_change_a_large_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """yolov4's largest head, big enough for the default to use every CPU,
    with NaN and infinite inputs; every image's sums added in image order."""
    rng = np.random.default_rng(4)
    layer = alexeyab.YoloLayer(classes=80, anchors=[12, 16, 19, 36, 40, 28, 36, 75, 76, 55, 72, 146, 142, 110,
                                                    192, 243, 459, 401], mask=[0, 1, 2], iou_loss="ciou",
                               iou_normalizer=.07, iou_thresh=.213, ignore_thresh=.7, max_delta=5, scale_x_y=1.2)
    x = _nasty(rng, (4, 255, 40, 40))
    truth = _truths(rng, 4, 200, 40, 40, 80)
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", "reference")
    ref = _fields(layer.forward(x, truth, net_w=608, net_h=608, threads=1))
    monkeypatch.delenv("PYDARKNET_LOSS_PATH")
    for threads in (None, 1, 2, 4):
        _same(_fields(layer.forward(x, truth, net_w=608, net_h=608, threads=threads)), ref, f"x{threads}")


def test_threads_keyword_is_checked() -> None:
    layer = alexeyab.YoloLayer(classes=1, anchors=[10, 13], mask=[0])
    x = np.zeros((1, 6, 2, 2), np.float32)
    truth = np.zeros((1, 200, 6), np.float32)
    for bad in (0, -1, 1025, 1.5, "2", True):
        with pytest.raises((ValueError, TypeError), match="threads"):
            layer.forward(x, truth, threads=bad)
    assert layer.forward(x, truth, threads=1024).cost == layer.forward(x, truth, threads=1).cost


def test_c_api_opt_refuses_what_the_plain_forward_refuses() -> None:
    """ab_forward_yolo_layer_opt checks the layer and truths before touching
    anything, whatever the path and thread count."""
    l = ffi.new("ab_yolo_layer *")
    assert lib.ab_yolo_layer_init(l, 1, 2, 2, 1, 1, 1, 4) == lib.DN_OK
    st = ffi.new("ab_network_state *")
    for path in (lib.DN_PATH_AUTO, lib.DN_PATH_PORTABLE, lib.DN_PATH_REFERENCE):
        assert lib.ab_forward_yolo_layer_opt(l[0], st[0], 2, path) == lib.DN_E_LAYER  # no buffers


# ---- the kernels on a strided subset of all 2^32 floats ----------------------------

def _strided(step: int = 4093) -> np.ndarray:
    return np.arange(0, 1 << 32, step, dtype=np.uint64).astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("kernel", ["logistic", "expf"])
def test_ab_kernels_equal_libm_on_a_strided_subset_of_all_floats(kernel: str) -> None:
    fn = lib.ab_logistic_array_path if kernel == "logistic" else lib.ab_expf_array_path
    x = _strided()
    ref, got = np.empty_like(x), np.empty_like(x)
    with np.errstate(all="ignore"):
        # the reference path is libm's expf on every element
        assert fn(ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(ref)), len(x),
                  _native.PATHS["reference"]) == len(x)
    for path in ("auto", "portable"):
        fallbacks = fn(ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(got)), len(x),
                       _native.PATHS[path])
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (path, G.first_difference(got, ref))
        inside = int(np.count_nonzero(np.abs(x) <= 87))
        if _native.path_in_use(path) == "avx2" and lib.ab_expf_premise():
            # about 1/64 of the proved range fails check (C) and goes to libm, as does everything outside it
            assert len(x) - inside <= fallbacks <= len(x) - inside + inside // 40, (path, fallbacks)
        else:  # the portable path calls libm: glibc's scalar expf is faster than a scalar kernel
            assert fallbacks == len(x)


def test_the_premise_holds_where_glibc_is_new_enough() -> None:
    import platform
    name, version = platform.libc_ver()
    if name != "glibc":
        pytest.skip(f"not glibc ({name or 'unknown'}): the fast logistic is off, every element calls libm")
    major, minor = (int(v) for v in version.split(".")[:2])
    assert lib.ab_expf_premise() == int((major, minor) >= (2, 27))


def test_ab_kernels_equal_libm_on_dense_sweeps() -> None:
    """Every float within 2^16 ULPs of a few points (ln 2, -1.5, 3.25 and
    -86.9, near the range's end): the fast kernels give libm's bits."""
    base = np.float32(np.log(np.float32(2.0)))
    x = np.concatenate([np.arange(-2 ** 16, 2 ** 16, dtype=np.int64) + int(v.view(np.int32))
                        for v in (base, np.float32(-1.5), np.float32(3.25), np.float32(-86.9))]).astype(
        np.int32).view(np.float32)
    for fn in (lib.ab_logistic_array_path, lib.ab_expf_array_path):
        ref, got = np.empty_like(x), np.empty_like(x)
        fn(ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(ref)), len(x),
           _native.PATHS["reference"])
        for path in ("auto", "portable"):
            fn(ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(got)), len(x),
               _native.PATHS[path])
            assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (path, G.first_difference(got, ref))



def test_the_exhaustive_check_is_recorded() -> None:
    """scripts/check_ab_logistic.py's recorded run: both kernels, all 2^32
    inputs, no difference from libm."""
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "scripts" / "ab_logistic_exhaustive.txt").read_text()
    lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.startswith(("logistic ", "expf "))}
    assert set(lines) == {"logistic", "expf"}
    for ln in lines.values():
        assert "avx2: 0 differ" in ln and ln.endswith("-> OK")
    assert text.rstrip().splitlines()[-1].startswith("all OK")

"""The fast paths change no bit: every golden case on every path (AVX2,
portable C, upstream's loops) and thread count; the fast paths against
upstream's loops on adversarial random layers; the fast kernels against the
reference expressions on a strided subset of all 2^32 floats (the whole set:
scripts/check_fast_kernels.py, result recorded in scripts/fast_kernels_exhaustive.txt)."""
from __future__ import annotations

import ctypes
import threading
import time
import warnings
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss import _native
from pydarknet_loss._native import ffi, lib

PATHS = ["auto", "portable", "reference"]
THREADS = [1, 2, 3]


def _cases(kind: str) -> List[Any]:
    paths = G.repo_cases(kind) + G.extra_cases(kind)
    out = []
    for p in paths:
        d = G.load(p)
        if "x_times_w_eq_w" not in d["tags"]:
            out.append((p, d))
    return out


YOLO = _cases("yolo")
REGION = _cases("region")


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("path", PATHS)
def test_every_yolo_golden_case_on_every_path(path: str, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
    assert YOLO
    for p, d in YOLO:
        prm = d["params"]
        res = G.yolo_layer(prm).forward(d["input"], d["truth"], net_w=prm["net_w"], net_h=prm["net_h"],
                                        train=bool(d["train"]), index=prm["net_index"], threads=threads)
        try:
            G.assert_matches(res, d)
        except AssertionError as e:
            raise AssertionError(f"{p.name}: {e}") from None


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("path", PATHS)
def test_every_region_golden_case_on_every_path(path: str, threads: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
    assert REGION
    for p, d in REGION:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = G.region_layer(d["params"]).forward(d["input"], d["truth"], seen=int(d["seen"]),
                                                      train=bool(d["train"]), threads=threads)
        try:
            G.assert_matches(res, d)
        except AssertionError as e:
            raise AssertionError(f"{p.name}: {e}") from None


def test_auto_is_avx2_where_the_cpu_has_it() -> None:
    flags = open("/proc/cpuinfo").read().split() if _has_proc() else []
    expect = "avx2" if ("avx2" in flags and "fma" in flags) else "portable"
    assert _native.path_in_use("auto") == expect
    assert _native.path_in_use("portable") == "portable"
    assert _native.path_in_use("reference") == "reference"


def _has_proc() -> bool:
    try:
        open("/proc/cpuinfo").close()
        return True
    except OSError:
        return False


# ---- adversarial random layers: every path equals upstream's loops ----------------

def _nasty(rng: np.random.Generator, shape: Tuple[int, ...]) -> np.ndarray:
    """Inputs at every scale, with NaN, infinities, subnormals, zeros of both
    signs and values where exp over- or underflows."""
    x = rng.standard_normal(shape) * rng.choice([0.5, 3, 20, 200], size=shape)
    x = x.astype(np.float32)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 87.5, -87.5, 88.8, -103.9,
                        -104.1, 710, -745, 3e38, -3e38, 16.6, 17.4, 36.7, 37.5], np.float32)
    pick = rng.random(shape) < 0.03
    x[pick] = rng.choice(special, size=int(pick.sum()))
    return x


def _truths(rng: np.random.Generator, batch: int, rows: int, cols: int, h: int, w: int,
            classes: int) -> np.ndarray:
    t = np.zeros((batch, rows, cols), np.float32)
    for b in range(batch):
        k = int(rng.integers(0, rows + 1))
        t[b, :k, 0] = rng.uniform(0.001, 0.999, k)
        t[b, :k, 1] = rng.uniform(0.001, 0.999, k)
        t[b, :k, 2] = rng.choice([rng.uniform(0.001, 1.5), 1e-6, 3.0, 1e4], size=k, p=[0.85, 0.05, 0.05, 0.05])
        t[b, :k, 3] = rng.uniform(0.001, 1.2, k)
        t[b, :k, cols - 1] = rng.integers(0, classes, k)
        if k > 2 and rng.random() < 0.5:  # two truths in one cell
            t[b, 1, :2] = t[b, 0, :2]
        if k > 4 and rng.random() < 0.2:  # an x == 0 terminator mid-list
            t[b, k // 2, 0] = 0
        # truths whose cell would lie outside the grid are refused, not run
        bad = (np.floor(t[b, :, 0] * np.float32(w)) >= w) | (np.floor(t[b, :, 1] * np.float32(h)) >= h)
        t[b, bad, 0:2] = np.float32(0.5)
    return t


def _run(layer: Any, x: np.ndarray, truth: np.ndarray, threads: int, **net: Any) -> Dict[str, Any]:
    call, _ = layer._run(x, truth, train=True, out=None, targets=True, threads=threads, **net)
    s = call.stats
    return dict(output=call.output, delta=call.delta, target=call.target, target_scale=call.target_scale,
                cost=np.float32(call.cost[0]),
                stats=np.array([s.avg_iou, s.avg_cat, s.avg_obj, s.avg_anyobj, s.recall, s.recall75],
                               np.float32), count=(s.count, s.class_count))


def _same(a: Dict[str, Any], b: Dict[str, Any], what: str) -> None:
    for k in a:
        if k == "count":
            assert a[k] == b[k], (what, k)
        else:
            assert G.bits_equal(np.asarray(a[k]), np.asarray(b[k])), (what, k, G.first_difference(a[k], b[k]))


def _random_yolo(rng: np.random.Generator) -> Tuple[pdl.YoloLayer, np.ndarray, np.ndarray, Dict[str, int]]:
    total = int(rng.integers(1, 10))
    n = int(rng.integers(1, total + 1))
    classes = int(rng.integers(1, 12))
    w, h = int(rng.integers(1, 23)), int(rng.integers(1, 23))
    batch = int(rng.integers(1, 5))
    anchors = rng.uniform(2, 400, 2 * total).astype(np.float32)
    if rng.random() < 0.1:
        anchors[0] = 1e-30  # boxes that underflow to zero area: NaN IoUs
    ignore, tt = (float(rng.choice([0.5, 0.7, 0.0, -0.1, 0.95])), float(rng.choice([1.0, 1.0, 0.6, 0.3, 0.0])))
    layer = pdl.YoloLayer(classes=classes, anchors=anchors.tolist(), mask=sorted(rng.choice(total, n, replace=False)),
                          ignore_thresh=ignore, truth_thresh=tt, max_boxes=int(rng.choice([90, 90, 7, 1])))
    x = _nasty(rng, (batch, n * (5 + classes), h, w))
    truth = _truths(rng, batch, 90, 5, h, w, classes)
    return layer, x, truth, dict(net_w=int(rng.choice([416, 608, 97])), net_h=int(rng.choice([416, 320])))


def _random_region(rng: np.random.Generator) -> Tuple[pdl.RegionLayer, np.ndarray, np.ndarray, Dict[str, int]]:
    n = int(rng.integers(1, 6))
    classes = int(rng.integers(1, 12))
    coords = int(rng.choice([4, 4, 4, 6]))
    w, h = int(rng.integers(1, 16)), int(rng.integers(1, 16))
    batch = int(rng.integers(1, 5))
    anchors = rng.uniform(0.2, 12, 2 * n).astype(np.float32)
    layer = pdl.RegionLayer(classes=classes, anchors=anchors.tolist(), coords=coords,
                            softmax=bool(rng.random() < 0.6), background=bool(rng.random() < 0.2),
                            rescore=bool(rng.random() < 0.5), bias_match=bool(rng.random() < 0.5),
                            thresh=float(rng.choice([0.6, 0.5, 0.0, 0.99])), object_scale=5, noobject_scale=1,
                            class_scale=1, coord_scale=1, mask_scale=float(rng.choice([1, 2.7])))
    x = _nasty(rng, (batch, n * (coords + 1 + classes), h, w))
    truth = _truths(rng, batch, 30, coords + 1, h, w, classes)
    return layer, x, truth, dict(seen=int(rng.choice([0, 12800, 12799])))


@pytest.mark.parametrize("kind", ["yolo", "region"])
def test_fast_paths_equal_upstreams_loops_on_adversarial_layers(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(14 if kind == "yolo" else 15)
    make = _random_yolo if kind == "yolo" else _random_region
    for trial in range(60):
        layer, x, truth, net = make(rng)
        monkeypatch.setenv("PYDARKNET_LOSS_PATH", "reference")
        ref = _run(layer, x, truth, 1, **net)
        for path in ("auto", "portable"):
            monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
            for threads in (1, 2, 5):
                _same(_run(layer, x, truth, threads, **net), ref, f"trial {trial} {layer!r} {path} x{threads}")


def test_threads_and_path_do_not_change_a_large_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big enough that the default uses every CPU: the truth_thresh branch
    (whole-image cost sums) in some images, not in others."""
    rng = np.random.default_rng(3)
    layer = pdl.YoloLayer(classes=20, anchors=[10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319],
                          mask=[0, 1, 2], truth_thresh=0.8)
    x = (rng.standard_normal((6, 75, 52, 52)) * 2).astype(np.float32)
    truth = _truths(rng, 6, 90, 5, 52, 52, 20)
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", "reference")
    ref = _run(layer, x, truth, 1, net_w=416, net_h=416)
    monkeypatch.delenv("PYDARKNET_LOSS_PATH")
    for threads in (1, 2, 4):
        _same(_run(layer, x, truth, threads, net_w=416, net_h=416), ref, f"x{threads}")
    res = layer.forward(x, truth)
    assert G.bits_equal(res.delta, ref["delta"]) and G.bits_equal(res.cost, ref["cost"])


# ---- the kernels on a strided subset of every float ------------------------------------

def _strided_floats() -> np.ndarray:
    bits = np.arange(0, 2**32, 4093, dtype=np.uint64).astype(np.uint32)
    special = np.array([0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x00800000, 0x7f800000, 0xff800000,
                        0x7fc00000, 0xffc00000, 0x7f800001, 0x42ae0000, 0xc2ae0000, 0x42b00000, 0xc2b00000,
                        0x442f0000, 0xc42f0000, 0x7f7fffff, 0xff7fffff], np.uint32)
    return np.concatenate([bits, special]).view(np.float32)


def _kernel(name: str, x: np.ndarray, path: str, scale: float = 0.0, div: int = 0) -> Tuple[np.ndarray, int]:
    out = np.empty_like(x)
    pin, pout = ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(out))
    p = _native.PATHS[path]
    if name == "logistic":
        fb = lib.logistic_array_path(pin, pout, len(x), p)
    elif name == "box":
        fb = lib.box_size_array_path(pin, pout, len(x), scale, div, p)
    else:
        fb = lib.expf_array_path(pin, pout, len(x), p)
    return out, int(fb)


@pytest.mark.parametrize("name,scale,div", [("logistic", 0, 0), ("expf", 0, 0), ("box", 373.0, 416),
                                            ("box", 1.08, 13), ("box", -2.5, 7)])
def test_fast_kernels_equal_the_reference_on_every_4093rd_float(name: str, scale: float, div: int) -> None:
    x = _strided_floats()
    ref, _ = _kernel(name, x, "reference", scale, div)
    for path in ("auto", "portable"):
        for offset in (0, 1, 5):  # every alignment of the vector loop and its tail
            got, fallbacks = _kernel(name, x[offset:], path, scale, div)
            assert np.array_equal(got.view(np.uint32), ref[offset:].view(np.uint32)), (path, offset)
            assert fallbacks < len(x) // 2


def test_fast_kernels_handle_in_place_calls() -> None:
    x = _strided_floats()[:100003].copy()
    ref, _ = _kernel("logistic", x, "reference")
    for path in ("auto", "portable"):
        y = x.copy()
        p = ffi.cast("float *", ffi.from_buffer(y))
        lib.logistic_array_path(p, p, len(y), _native.PATHS[path])
        assert np.array_equal(y.view(np.uint32), ref.view(np.uint32)), path


# ---- the Python switches ----------------------------------------------------------------

def test_threads_keyword_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = pdl.YoloLayer(classes=1, anchors=[10, 13], mask=[0])
    x = np.zeros((1, 6, 2, 2), np.float32)
    truth = [np.array([[0.5, 0.5, 0.1, 0.1, 0]], np.float32)]
    for bad in (0, -1, 1025):
        with pytest.raises(ValueError, match="threads"):
            layer.forward(x, truth, threads=bad)
    with pytest.raises(TypeError, match="threads"):
        layer.forward(x, truth, threads=2.0)  # type: ignore[arg-type]
    monkeypatch.setenv("PYDARKNET_LOSS_THREADS", "two")
    with pytest.raises(ValueError, match="PYDARKNET_LOSS_THREADS"):
        layer.forward(x, truth)
    monkeypatch.setenv("PYDARKNET_LOSS_THREADS", "1")
    assert _native.default_threads() == 1
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", "fastest")
    with pytest.raises(ValueError, match="PYDARKNET_LOSS_PATH"):
        layer.forward(x, truth)


def test_the_gil_is_released_during_a_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another Python thread keeps running while the C core works (on the
    reference path, so that one call lasts long enough to tell)."""
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", "reference")
    rng = np.random.default_rng(0)
    layer = pdl.YoloLayer(classes=80, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    x = rng.standard_normal((8, 255, 52, 52)).astype(np.float32)
    truth = _truths(rng, 8, 90, 5, 52, 52, 80)
    out = (np.empty_like(x), np.empty_like(x))
    layer.forward(x, truth, out=out, threads=1)
    t0 = time.perf_counter()
    layer.forward(x, truth, out=out, threads=1)
    alone = time.perf_counter() - t0
    stamps: List[float] = []
    worker = threading.Thread(target=lambda: layer.forward(x, truth, out=out, threads=1))
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
    worker.join()
    gaps = np.diff(stamps) if len(stamps) > 1 else np.array([np.inf])
    # Holding the GIL for a whole forward would stall this loop that long.
    assert len(stamps) > 100 and gaps.max() < 0.5 * alone, (len(stamps), gaps.max(), alone)


# ---- pdl.torch.YoloLoss: darknet's delta as the gradient ------------------------------

@pytest.mark.parametrize("path", ["auto", "portable"])
def test_torch_yolo_loss_gradient_is_darknets_delta_bit_for_bit(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is the optional [torch] extra")
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
    import implied_cases as IC

    rng = np.random.default_rng(5)
    big = pdl.YoloLayer(classes=20, anchors=[10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319],
                        mask=[3, 4, 5], ignore_thresh=0.6)
    cases = [(G.yolo_layer(d["params"]), d["input"], d["truth"], d["params"]["net_w"], d["params"]["net_h"])
             for d in map(G.load, IC.training_cases("yolo"))]
    x = (rng.standard_normal((3, 75, 13, 13)) * 2).astype(np.float32)
    truth = _truths(rng, 3, 90, 5, 13, 13, 20)
    cases += [(big, x, truth, 416, 416), (pdl.YoloLayer(classes=20, anchors=big.anchors.tolist(), mask=[0, 1],
                                                          truth_thresh=0.5), x[:, :50], truth, 416, 416)]
    for layer, x, truth, net_w, net_h in cases:
        xt = torch.tensor(x, requires_grad=True)
        crit = pdl.torch.YoloLoss(layer, net_w=net_w, net_h=net_h)
        loss = crit(xt, truth)
        loss.backward(retain_graph=True)
        delta = layer.forward(x, truth, net_w=net_w, net_h=net_h).delta
        assert np.array_equal(xt.grad.numpy().view(np.uint32), (np.float32(0) - delta).view(np.uint32))
        value, parts = pdl.implied.yolo(x, truth, layer, net_w=net_w, net_h=net_h).value(x)
        assert float(loss.detach()) == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert crit.last_parts == pytest.approx(parts, rel=1e-12, abs=1e-12)
        with pytest.raises(RuntimeError, match="backward ran twice"):
            loss.backward()
    xt = torch.tensor(x, requires_grad=True)
    (3 * crit(xt, truth)).backward()
    assert np.array_equal(xt.grad.numpy().view(np.uint32), ((np.float32(0) - delta) * 3).view(np.uint32))


# ---- recycled memory for large fresh arrays ---------------------------------------------

def test_large_results_use_recycled_memory_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydarknet_loss import _buffers

    _buffers.release()
    rng = np.random.default_rng(9)
    layer = pdl.YoloLayer(classes=80, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    x = rng.standard_normal((4, 255, 52, 52)).astype(np.float32)  # 11 MB per array
    truth = _truths(rng, 4, 90, 5, 52, 52, 80)
    want = layer.forward(x, truth, out=(np.empty_like(x), np.empty_like(x)))
    first = layer.forward(x, truth)
    assert isinstance(_owner(first.delta), ctypes.Array) and first.delta.flags.writeable
    view = first.delta[1:3]
    addr = view.ctypes.data
    del first  # the view keeps the delta's memory leased: a new result must not get it
    second = layer.forward(x, truth)
    assert not np.shares_memory(second.delta, view) and not np.shares_memory(second.output, view)
    assert view.ctypes.data == addr and G.bits_equal(view, want.delta[1:3])
    del view, second
    third = layer.forward(x, truth)  # memory from the free list, full of the previous results
    for name in ("output", "delta"):
        assert G.bits_equal(getattr(third, name), getattr(want, name)), name
    assert G.bits_equal(third.cost, want.cost)
    monkeypatch.setenv("PYDARKNET_LOSS_RECYCLE", "0")
    plain = layer.forward(x, truth)
    assert not isinstance(_owner(plain.delta), ctypes.Array)
    assert _buffers.release() > 0


def _owner(a: Any) -> Any:
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


# ---- NaN signs in the printed statistics ---------------------------------------------------

NAN_SIGN = sorted((G.HERE / "data" / "nan_sign").glob("*.npz"))


@pytest.mark.parametrize("path", ["auto", "portable", "reference"])
def test_nan_signs_of_the_statistics_are_upstreams(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream-computed cases whose statistics add NaNs of both signs: the
    printed line ("nan" or "-nan") must be upstream's on every path."""
    monkeypatch.setenv("PYDARKNET_LOSS_PATH", path)
    assert len(NAN_SIGN) == 5
    for p in NAN_SIGN:
        d = G.load(p)
        prm = d["params"]
        assert "nan" in d["text"]
        for threads in (1, 2):
            if d["kind"] == "yolo":
                res = G.yolo_layer(prm).forward(d["input"], d["truth"], net_w=prm["net_w"], net_h=prm["net_h"],
                                                threads=threads)
            else:
                res = G.region_layer(prm).forward(d["input"], d["truth"], seen=int(d["seen"]), threads=threads)
            G.assert_matches(res, d)

"""Times the oracle on darknet's own workloads (a script, not a test).

YOLOv3 workload: 416x416 network, three [yolo] layers on 13x13, 26x26 and
52x52 grids with masks 6,7,8 / 3,4,5 / 0,1,2, 80 classes, 20 boxes per
image (--truths to change).  For each batch size and thread count it
prints the median milliseconds of one three-layer forward:

  c         benchmarks/bench_core.c calling forward_yolo_layer_opt directly,
            buffers allocated once (as darknet's make_yolo_layer does); it
            works on the very arrays py(out=) uses, so that the ratio of the
            two is the cost of the Python layer and nothing else
  py(out=)  the Python API writing into preallocated buffers (out=)
  py        the Python API as most users call it: fresh output/delta arrays
            every call (the extra time is the kernel handing out new pages)

--region adds the YOLOv2-VOC [region] workload (yolov2-voc.cfg's layer:
13x13, 5 anchors, 20 classes, softmax, rescore, bias_match, thresh .6,
object_scale 5), with seen = 12800 (after the prior-box rule) and seen = 0.
pdl.compare is timed on the 52x52 head at B = 16 (passing and failing with
the full diagnosis) against that layer's forward (--no-compare to skip).
--torch times pdl.torch.YoloLoss (the three heads' losses summed, then
backward) against the oracle's own forward on the YOLOv3 workload.
--ab (or --ab-other EXE) adds AlexeyAB's [yolo] on yolov4.cfg's three heads
at 608x608 (benchmarks/bench_ab.py, which says how threads are compared).

The C driver is compiled here with the core's strict flags and loaded as a
shared object, so that the variants alternate rep by rep: a noisy machine
then slows all alike.  Every variant must produce the same cost, bit for
bit, or the script stops.

--other EXE (and --region-other EXE) also times a second program that takes
the arguments DIR REPS, reads the files this script writes into DIR (see
bench_core.c) and prints "MEDIAN_MS COST" (cost as a C hex float) on its last
line: for instance one you build yourself, outside this repository, around
upstream darknet's own forward_yolo_layer (forward_region_layer).  It runs
once per rep (REPS = 1), between our own variants, and its cost must equal
ours bit for bit.

Usage: python benchmarks/bench_yolo.py [--batches 1 16 64] [--truths 20 90] [--threads 1 2]
           [--reps N] [--other EXE] [--region] [--region-other EXE] [--torch]
           [--ab] [--ab-other EXE] [--ab-batches 16] [--ab-truths 20]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import pydarknet_loss as pdl
from pydarknet_loss import _native

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "darknet_src"
ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
HEADS = [(13, [6, 7, 8]), (26, [3, 4, 5]), (52, [0, 1, 2])]
CLASSES = 80
BOXES = 20
NET = 416
IGNORE_THRESH = 0.7  # yolov3.cfg's
# yolov2-voc.cfg's [region]
V2_ANCHORS = [1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071]
V2 = dict(classes=20, coords=4, softmax=1, background=0, rescore=1, bias_match=1, thresh=0.6,
          coord_scale=1.0, object_scale=5.0, noobject_scale=1.0, class_scale=1.0)
V2_GRID = 13

FP = ctypes.POINTER(ctypes.c_float)
PATH = 0  # DN_PATH_AUTO unless --path says otherwise


def _boxes(rng: np.random.Generator, batch: int, rows: int, cols: int, boxes: int, classes: int) -> np.ndarray:
    truth = np.zeros((batch, rows, cols), np.float32)
    truth[:, :boxes, 0:2] = rng.uniform(0.01, 0.99, (batch, boxes, 2))
    truth[:, :boxes, 2:4] = rng.uniform(0.02, 0.6, (batch, boxes, 2))
    truth[:, :boxes, cols - 1] = rng.integers(0, classes, (batch, boxes))
    return truth


def workload(batch: int, seed: int = 0, boxes: int = BOXES) -> Tuple[List[pdl.YoloLayer], List[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = [pdl.YoloLayer(classes=CLASSES, anchors=ANCHORS, mask=m, ignore_thresh=IGNORE_THRESH)
              for _, m in HEADS]
    xs = [rng.standard_normal((batch, 3 * (5 + CLASSES), g, g)).astype(np.float32) for g, _ in HEADS]
    return layers, xs, _boxes(rng, batch, 90, 5, boxes, CLASSES)


def region_workload(batch: int, seed: int = 0, boxes: int = BOXES) -> Tuple[pdl.RegionLayer, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    layer = pdl.RegionLayer(anchors=V2_ANCHORS, **V2)
    x = rng.standard_normal((batch, 5 * (5 + V2["classes"]), V2_GRID, V2_GRID)).astype(np.float32)
    return layer, x, _boxes(rng, batch, 30, 5, min(boxes, 30), V2["classes"])


def write_data(tmp: Path, xs: List[np.ndarray], truth: np.ndarray) -> None:
    """The YOLOv3 workload in the files bench_core.c reads."""
    batch = truth.shape[0]
    with open(tmp / "spec.txt", "w") as f:
        for g, m in HEADS:
            f.write(f"{g} {g} {CLASSES} {len(ANCHORS) // 2} {batch} {NET} {NET} {IGNORE_THRESH} "
                    f"{m[0]} {m[1]} {m[2]}\n")
    for k, x in enumerate(xs):
        x.tofile(tmp / f"input_{k}.bin")
    np.asarray(ANCHORS, np.float32).tofile(tmp / "anchors.bin")
    truth.tofile(tmp / "truth.bin")


def write_region_data(tmp: Path, x: np.ndarray, truth: np.ndarray, seen: int) -> None:
    with open(tmp / "region_spec.txt", "w") as f:
        f.write(f"{V2_GRID} {V2_GRID} {V2['classes']} {V2['coords']} 5 {x.shape[0]} {seen} {V2['softmax']} "
                f"{V2['background']} {V2['rescore']} {V2['bias_match']} {V2['thresh']} {V2['coord_scale']} "
                f"{V2['object_scale']} {V2['noobject_scale']} {V2['class_scale']}\n")
    np.asarray(V2_ANCHORS, np.float32).tofile(tmp / "region_anchors.bin")
    truth.tofile(tmp / "region_truth.bin")
    x.tofile(tmp / "region_input.bin")


def build_driver(tmp: Path) -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("bench_yolo: no C compiler for the C driver (set CC)")
    so = tmp / "bench_core.so"
    subprocess.run([cc, *pdl.BUILD_CFLAGS.split(), "-fPIC", "-shared", "-DBENCH_LIB", "-I", str(SRC),
                    str(ROOT / "benchmarks" / "bench_core.c"), *map(str, sorted(SRC.glob("*.c"))), str(SRC / "cuda" / "no_cuda.c"),
                    "-lm", "-pthread", "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.bench_load.argtypes = [ctypes.c_char_p]
    lib.bench_region_load.argtypes = [ctypes.c_char_p]
    lib.bench_forward.argtypes = [FP]
    lib.bench_forward.restype = ctypes.c_double
    lib.bench_region_forward.argtypes = [FP]
    lib.bench_region_forward.restype = ctypes.c_double
    lib.bench_set.argtypes = [ctypes.c_int, ctypes.c_int]
    return lib


def run_other(exe: Path, tmp: Path, reps: int) -> Tuple[float, np.float32]:
    out = subprocess.run([str(exe), str(tmp), str(reps)], check=True, capture_output=True, text=True).stdout
    ms, cost = out.strip().splitlines()[-1].split()
    return float(ms), np.float32(float.fromhex(cost))


def bits(v: float) -> int:
    return int(np.float32(v).view(np.uint32))


Variant = Tuple[str, Callable[[], Tuple[float, float]]]


def interleave(variants: List[Variant], reps: int) -> Dict[str, float]:
    """Median ms of each variant, run rep by rep in alternating order (the
    first round warms up and is not counted); all must give the same cost."""
    times: Dict[str, List[float]] = {k: [] for k, _ in variants}
    costs = {}
    for r in range(reps + 1):
        order = variants if r % 2 else variants[::-1]
        for name, fn in order:
            ms, cost = fn()
            costs[name] = bits(cost)
            if r:
                times[name].append(ms)
    if len(set(costs.values())) != 1:
        sys.exit(f"bench: the variants computed different costs: { {k: hex(v) for k, v in costs.items()} }")
    return {k: statistics.median(v) for k, v in times.items()}


def timed(fn: Callable[[], float]) -> Tuple[float, float]:
    t0 = time.perf_counter()
    cost = fn()
    return (time.perf_counter() - t0) * 1e3, cost


def bench_yolo(lib: ctypes.CDLL, tmp: Path, batch: int, truths: int, threads: List[int], reps: int,
               other: Optional[Path]) -> List[str]:
    layers, xs, truth = workload(batch, boxes=truths)
    write_data(tmp, xs, truth)
    if lib.bench_load(str(tmp).encode()) != 0:
        sys.exit("bench_yolo: the C driver could not load the workload")
    outs = [(np.empty_like(x), np.empty_like(x)) for x in xs]
    for k, (x, (o, dl)) in enumerate(zip(xs, outs)):
        lib.bench_use(k, x.ctypes.data_as(FP), truth.ctypes.data_as(FP), o.ctypes.data_as(FP),
                      dl.ctypes.data_as(FP))

    def c(t: int) -> Callable[[], Tuple[float, float]]:
        def run() -> Tuple[float, float]:
            cost = ctypes.c_float()
            lib.bench_set(t, PATH)
            ms = lib.bench_forward(ctypes.byref(cost))
            return ms, cost.value
        return run

    def py(t: int, out: bool) -> Callable[[], Tuple[float, float]]:
        def run() -> float:
            cost = np.float32(0)
            for l, x, o in zip(layers, xs, outs):  # costs summed in float, in layer order, as the driver does
                res = l.forward(x, truth, net_w=NET, net_h=NET, out=o if out else None, threads=t)
                cost = np.float32(cost + res.cost)
            return float(cost)
        return lambda: timed(run)

    variants: List[Variant] = []
    for t in threads:
        variants += [(f"c{t}", c(t)), (f"out{t}", py(t, True)), (f"py{t}", py(t, False))]
    if other is not None:
        variants.append(("other", lambda: run_other(other, tmp, 1)))
    med = interleave(variants, reps)
    lines = []
    for t in threads:
        line = (f"{batch:>4} {truths:>6} {t:>3} {med[f'c{t}']:>9.1f} {med[f'out{t}']:>9.1f} {med[f'py{t}']:>9.1f} "
                f"{med[f'py{t}'] / med[f'out{t}']:>11.2f}")
        if other is not None:
            line += f" {med['other']:>9.1f} {med[f'c{t}'] / med['other']:>7.3f} {med[f'out{t}'] / med['other']:>10.3f}"
        lines.append(line)
    return lines


def bench_region(lib: ctypes.CDLL, tmp: Path, batch: int, truths: int, seen: int, threads: List[int], reps: int,
                 other: Optional[Path]) -> List[str]:
    layer, x, truth = region_workload(batch, boxes=truths)
    write_region_data(tmp, x, truth, seen)
    if lib.bench_region_load(str(tmp).encode()) != 0:
        sys.exit("bench_yolo: the C driver could not load the region workload")
    out = (np.empty_like(x), np.empty_like(x))
    lib.bench_region_use(x.ctypes.data_as(FP), truth.ctypes.data_as(FP), out[0].ctypes.data_as(FP),
                         out[1].ctypes.data_as(FP))

    def c(t: int) -> Callable[[], Tuple[float, float]]:
        def run() -> Tuple[float, float]:
            cost = ctypes.c_float()
            lib.bench_set(t, PATH)
            ms = lib.bench_region_forward(ctypes.byref(cost))
            return ms, cost.value
        return run

    def py(t: int, o: bool) -> Callable[[], Tuple[float, float]]:
        return lambda: timed(lambda: float(layer.forward(x, truth, seen=seen, out=out if o else None,
                                                         threads=t).cost))

    variants: List[Variant] = []
    for t in threads:
        variants += [(f"c{t}", c(t)), (f"out{t}", py(t, True)), (f"py{t}", py(t, False))]
    if other is not None:
        variants.append(("other", lambda: run_other(other, tmp, 1)))
    med = interleave(variants, reps)
    lines = []
    for t in threads:
        line = (f"{batch:>4} {truths:>6} {seen:>6} {t:>3} {med[f'c{t}']:>8.2f} {med[f'out{t}']:>9.2f} "
                f"{med[f'py{t}']:>8.2f}")
        if other is not None:
            line += f" {med['other']:>9.2f} {med[f'c{t}'] / med['other']:>7.3f} {med[f'out{t}'] / med['other']:>10.3f}"
        lines.append(line)
    return lines


def bench_torch(batch: int, truths: int, reps: int) -> str:
    import torch

    layers, xs, truth = workload(batch, boxes=truths)
    crits = [pdl.torch.YoloLoss(layer, net_w=NET, net_h=NET) for layer in layers]
    xts = [torch.from_numpy(x.copy()).requires_grad_(True) for x in xs]

    def oracle() -> Tuple[float, float]:
        def run() -> float:
            cost = np.float32(0)
            for layer, x in zip(layers, xs):
                cost = np.float32(cost + layer.forward(x, truth, net_w=NET, net_h=NET).cost)
            return float(cost)
        return timed(run)

    def step() -> Tuple[float, float]:
        def run() -> float:
            for xt in xts:
                xt.grad = None
            loss = sum(crit(xt, truth) for crit, xt in zip(crits, xts))
            loss.backward()
            return 0.0
        ms, _ = timed(run)
        return ms, 0.0

    times: Dict[str, List[float]] = {"oracle": [], "step": []}
    for r in range(reps + 1):
        for name, fn in (("oracle", oracle), ("step", step)) if r % 2 else (("step", step), ("oracle", oracle)):
            ms, _ = fn()
            if r:
                times[name].append(ms)
    o, s = statistics.median(times["oracle"]), statistics.median(times["step"])
    # The step's gradient is 0 - the oracle's delta, bit for bit (checked here, not timed).
    for layer, x, xt in zip(layers, xs, xts):
        delta = layer.forward(x, truth, net_w=NET, net_h=NET).delta
        if not np.array_equal(xt.grad.numpy().view(np.uint32), (np.float32(0) - delta).view(np.uint32)):
            sys.exit("bench_yolo: YoloLoss's gradient is not minus the oracle's delta")
    return (f"{batch:>4} {truths:>6} {o:>9.1f} {s:>9.1f} {s / o:>9.2f}   torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads")


def bench_compare(batch: int, truths: int, reps: int) -> List[str]:
    """pdl.compare on the YOLOv3 52x52 head (mask 0,1,2), with input and
    truth, against that layer's own forward: the oracle's delta itself
    (passes, bit for bit), the gallery's float32 NumPy port (passes within
    darknet's rounding), and two failing ones with the full diagnosis (a
    part weight on every negative cell; truths in rounded cells, a few cells)."""
    from pydarknet_loss.parity import mistakes

    layers, xs, truth = workload(batch, boxes=truths)
    layer, x = layers[2], xs[2]
    exp = layer.forward(x, truth, net_w=NET, net_h=NET)
    ported = mistakes.YOLO["correct"](x, truth, layer, NET, NET)
    d5 = exp.delta.reshape(batch, 3, -1, x.shape[2], x.shape[3]).copy()
    d5[:, :, 4] *= np.where(d5[:, :, 4] < 0, np.float32(.5), np.float32(1))
    weighted = d5.reshape(exp.delta.shape)
    rounded = mistakes.YOLO["rounded_cell"](x, truth, layer, NET, NET)

    # Each call starts with the previous one's garbage collected: a report
    # holds the oracle's arrays in reference cycles until the collector runs,
    # and what runs next would otherwise pay for fresh pages (or not) by the
    # collector's timing, not by its own work.
    def fwd() -> float:
        gc.collect()
        t = time.perf_counter()
        layer.forward(x, truth, net_w=NET, net_h=NET)
        return (time.perf_counter() - t) * 1e3

    def cmp(delta: np.ndarray, ok: bool) -> Callable[[], float]:
        def run() -> float:
            gc.collect()
            t = time.perf_counter()
            r = pdl.compare(exp, {"delta": delta}, layer, input=x, truth=truth, net_w=NET, net_h=NET,
                            tolerance="float32")
            ms = (time.perf_counter() - t) * 1e3
            if r.ok != ok:
                sys.exit(f"bench_yolo: compare gave ok={r.ok}, expected {ok}")
            return ms
        return run

    cases = [("same bits", cmp(exp.delta, True)), ("float32 port", cmp(ported, True)),
             ("neg. obj x0.5", cmp(weighted, False)), ("rounded cells", cmp(rounded, False))]
    times: Dict[str, List[float]] = {name: [] for name, _ in cases}
    base: List[float] = []
    for r in range(reps + 1):
        f = fwd()
        for name, fn in cases:
            ms = fn()
            if r:
                times[name].append(ms)
        if r:
            base.append(f)
    f = statistics.median(base)
    lines = [f"forward of the 52x52 head, B={batch}, {truths} truths: {f:.1f} ms"]
    for name, _ in cases:
        m = statistics.median(times[name])
        lines.append(f"  compare, {name:<14} {m:>9.1f} ms {m / f:>8.1f}x the forward")
    return lines


def python_layer_us(calls: int = 20000) -> float:
    """Microseconds per forward() call on a layer so small that nearly all
    of it is the Python layer: validation, marshalling, the cffi call."""
    layer = pdl.YoloLayer(classes=1, anchors=[10, 13], mask=[0])
    x = np.zeros((1, 6, 1, 1), np.float32)
    truth = np.zeros((1, 90, 5), np.float32)
    truth[0, 0] = [0.5, 0.5, 0.1, 0.1, 0]
    out = (np.empty_like(x), np.empty_like(x))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            layer.forward(x, truth, out=out)
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} CPUs, load average {load:.2f} at start"


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--truths", type=int, nargs="+", default=[BOXES], help="boxes per image (at most 90)")
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, _native.default_threads()}))
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions (default: by batch size)")
    ap.add_argument("--other", type=Path, help="a second program to time on the same [yolo] data")
    ap.add_argument("--region", action="store_true", help="also the YOLOv2-VOC [region] workload")
    ap.add_argument("--region-other", type=Path, help="a second program to time on the same [region] data")
    ap.add_argument("--region-batches", type=int, nargs="+", default=[16])
    ap.add_argument("--region-truths", type=int, default=BOXES, help="boxes per image (at most 30)")
    ap.add_argument("--torch", action="store_true", help="also pdl.torch.YoloLoss (B = 16)")
    ap.add_argument("--no-yolo", action="store_true", help="skip the [yolo] table")
    ap.add_argument("--no-compare", action="store_true", help="skip pdl.compare's timings")
    ap.add_argument("--ab", action="store_true", help="also AlexeyAB's [yolo] (yolov4.cfg's heads, bench_ab.py)")
    ap.add_argument("--ab-other", type=Path, help="a second program to time on the same AlexeyAB data")
    ap.add_argument("--ab-batches", type=int, nargs="+", default=[16])
    ap.add_argument("--ab-truths", type=int, nargs="+", default=[BOXES], help="boxes per image (at most 200)")
    ap.add_argument("--path", choices=sorted(_native.PATHS), default="auto",
                    help="the kernels (as $PYDARKNET_LOSS_PATH): every path gives the same bits")
    args = ap.parse_args(argv)
    os.environ["PYDARKNET_LOSS_PATH"] = args.path
    global PATH
    PATH = _native.PATHS[args.path]

    print(f"pydarknet_loss {pdl.__version__}, core built with {pdl.BUILD_CFLAGS}; "
          f"kernels: {_native.path_in_use()}")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lib = build_driver(tmp)
        if not args.no_yolo:
            print(f"\nYOLOv3 workload: {NET}x{NET}, grids 13/26/52, {CLASSES} classes; median ms per three-layer "
                  "forward; thr = threads")
            other = "" if args.other is None else f" {'upstream':>9} {'c/up':>7} {'py(out=)/up':>10}"
            print(f"{'B':>4} {'truths':>6} {'thr':>3} {'c':>9} {'py(out=)':>9} {'py':>9} {'py/py(out=)':>11}{other}")
            for truths in args.truths:
                for batch in args.batches:
                    reps = args.reps or max(7, 96 // batch)
                    for line in bench_yolo(lib, tmp, batch, truths, args.threads, reps, args.other):
                        print(line, flush=True)
            lib.bench_free()
        if args.region or args.region_other:
            print(f"\nYOLOv2-VOC [region] workload: {V2_GRID}x{V2_GRID}, 5 anchors, 20 classes, softmax, rescore, "
                  "bias_match; median ms per forward")
            other = "" if args.region_other is None else f" {'upstream':>9} {'c/up':>7} {'py(out=)/up':>10}"
            print(f"{'B':>4} {'truths':>6} {'seen':>6} {'thr':>3} {'c':>8} {'py(out=)':>9} {'py':>8}{other}")
            for batch in args.region_batches:
                for seen in (12800, 0):
                    reps = args.reps or max(15, 480 // batch)
                    for line in bench_region(lib, tmp, batch, min(args.region_truths, 30), seen, args.threads, reps,
                                             args.region_other):
                        print(line, flush=True)
            lib.bench_region_free()
    if args.torch:
        print("\npdl.torch.YoloLoss, YOLOv3 workload (three heads, losses summed, one backward); median ms")
        print(f"{'B':>4} {'truths':>6} {'oracle':>9} {'step':>9} {'step/oracle':>9}")
        for truths in args.truths:
            print(bench_torch(16, truths, args.reps or 9), flush=True)
    if args.ab or args.ab_other:
        import bench_ab

        print()
        bench_ab.main(["--batches", *map(str, args.ab_batches), "--truths", *map(str, args.ab_truths),
                       "--threads", *map(str, args.threads), "--path", args.path]
                      + (["--reps", str(args.reps)] if args.reps else [])
                      + (["--ab-other", str(args.ab_other)] if args.ab_other else []))
    if not args.no_compare:
        print("\npdl.compare (tolerance float32, with input and truth) against the layer's forward; median ms")
        for line in bench_compare(16, BOXES, args.reps or 5):
            print(line, flush=True)
    us = python_layer_us()
    print(f"\nPython layer: {us:.1f} us per forward call (measured on a 1x1, one-class layer); "
          f"{3 * us:.0f} us per three-layer forward")


if __name__ == "__main__":
    main()

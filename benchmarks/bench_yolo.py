"""Times the [yolo] oracle on the YOLOv3 workload (a script, not a test).

416x416 network, three [yolo] layers on 13x13, 26x26 and 52x52 grids with
masks 6,7,8 / 3,4,5 / 0,1,2, 80 classes, 20 boxes per image.  For each batch
size it prints the median milliseconds of one three-layer forward:

  c         benchmarks/bench_core.c calling forward_yolo_layer directly,
            buffers allocated once (as darknet's make_yolo_layer does); it
            works on the very arrays py(out=) uses, so that the ratio of the
            two is the cost of the Python layer and nothing else
  py(out=)  the Python API writing into preallocated buffers (out=)
  py        the Python API as most users call it: fresh output/delta arrays
            every call (the extra time is the kernel handing out new pages)

and the Python/C ratios.  On a shared 2-core machine single ratios wander
by a few percent either way, so the script also measures what the Python
layer itself costs: the time of a forward call on a 1x1, one-class layer,
where the C work is next to nothing.  The C driver is compiled here with the core's
strict flags and loaded as a shared object, so that C and Python
repetitions alternate one by one: a noisy machine then slows both alike.
Every variant must produce the same cost, bit for bit, or the script stops.

--other EXE also times a second program that takes the arguments DIR REPS,
reads the files this script writes into DIR (see bench_core.c) and prints
"MEDIAN_MS COST" (cost as a C hex float) on its last line: for instance one
you build yourself, outside this repository, around upstream darknet's own
forward_yolo_layer.  Its cost must equal ours bit for bit.

Usage: python benchmarks/bench_yolo.py [--batches 1 16 64] [--reps N] [--other EXE]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

import pydarknet_loss as pdl

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "darknet_src"
ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
HEADS = [(13, [6, 7, 8]), (26, [3, 4, 5]), (52, [0, 1, 2])]
CLASSES = 80
BOXES = 20
NET = 416
IGNORE_THRESH = 0.7  # yolov3.cfg's


def workload(batch: int, seed: int = 0) -> Tuple[List[pdl.YoloLayer], List[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = [pdl.YoloLayer(classes=CLASSES, anchors=ANCHORS, mask=m, ignore_thresh=IGNORE_THRESH)
              for _, m in HEADS]
    xs = [rng.standard_normal((batch, 3 * (5 + CLASSES), g, g)).astype(np.float32) for g, _ in HEADS]
    truth = np.zeros((batch, 90, 5), np.float32)
    truth[:, :BOXES, 0:2] = rng.uniform(0.01, 0.99, (batch, BOXES, 2))
    truth[:, :BOXES, 2:4] = rng.uniform(0.02, 0.6, (batch, BOXES, 2))
    truth[:, :BOXES, 4] = rng.integers(0, CLASSES, (batch, BOXES))
    return layers, xs, truth


def write_data(tmp: Path, xs: List[np.ndarray], truth: np.ndarray) -> None:
    """The workload in the files bench_core.c reads."""
    batch = truth.shape[0]
    with open(tmp / "spec.txt", "w") as f:
        for g, m in HEADS:
            f.write(f"{g} {g} {CLASSES} {len(ANCHORS) // 2} {batch} {NET} {NET} {IGNORE_THRESH} "
                    f"{m[0]} {m[1]} {m[2]}\n")
    for k, x in enumerate(xs):
        x.tofile(tmp / f"input_{k}.bin")
    np.asarray(ANCHORS, np.float32).tofile(tmp / "anchors.bin")
    truth.tofile(tmp / "truth.bin")


def build_driver(tmp: Path) -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("bench_yolo: no C compiler for the C driver (set CC)")
    so = tmp / "bench_core.so"
    subprocess.run([cc, *pdl.BUILD_CFLAGS.split(), "-fPIC", "-shared", "-DBENCH_LIB", "-I", str(SRC),
                    str(ROOT / "benchmarks" / "bench_core.c"), *map(str, sorted(SRC.glob("*.c"))),
                    "-lm", "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.bench_load.argtypes = [ctypes.c_char_p]
    lib.bench_forward.argtypes = [ctypes.POINTER(ctypes.c_float)]
    lib.bench_forward.restype = ctypes.c_double
    lib.bench_set.argtypes = [ctypes.c_int, ctypes.c_int]
    return lib


def run_other(exe: Path, tmp: Path, reps: int) -> Tuple[float, np.float32]:
    out = subprocess.run([str(exe), str(tmp), str(reps)], check=True, capture_output=True, text=True).stdout
    ms, cost = out.strip().splitlines()[-1].split()
    return float(ms), np.float32(float.fromhex(cost))


def same_bits(a: np.float32, b: np.float32) -> bool:
    return bool(np.float32(a).view(np.uint32) == np.float32(b).view(np.uint32))


def bench(lib: ctypes.CDLL, tmp: Path, batch: int, reps: int, other: Optional[Path], threads: int = 1) -> str:
    layers, xs, truth = workload(batch)
    lib.bench_set(threads, 0)
    write_data(tmp, xs, truth)
    if lib.bench_load(str(tmp).encode()) != 0:
        sys.exit("bench_yolo: the C driver could not load the workload")
    outs = [(np.empty_like(x), np.empty_like(x)) for x in xs]
    fp = ctypes.POINTER(ctypes.c_float)
    for k, (x, (o, dl)) in enumerate(zip(xs, outs)):
        lib.bench_use(k, x.ctypes.data_as(fp), truth.ctypes.data_as(fp), o.ctypes.data_as(fp),
                      dl.ctypes.data_as(fp))

    def py(out: bool) -> np.float32:
        cost = np.float32(0)
        for l, x, o in zip(layers, xs, outs):  # costs summed in float, in layer order, as the driver does
            res = l.forward(x, truth, net_w=NET, net_h=NET, out=o if out else None, threads=threads)
            cost = np.float32(cost + res.cost)
        return cost

    c_cost = ctypes.c_float()
    times: dict = {"c": [], "out": [], "fresh": []}
    costs = set()
    for r in range(reps + 1):  # the first round warms up and is not timed
        order = ("c", "out", "fresh") if r % 2 else ("fresh", "out", "c")
        for k in order:
            if k == "c":
                ms = lib.bench_forward(ctypes.byref(c_cost))
                cost = np.float32(c_cost.value)
            else:
                t0 = time.perf_counter()
                cost = py(out=(k == "out"))
                ms = (time.perf_counter() - t0) * 1e3
            costs.add(int(np.float32(cost).view(np.uint32)))
            if r:
                times[k].append(ms)
    if len(costs) != 1:
        sys.exit(f"bench_yolo: C and Python computed different costs: {sorted(costs)}")
    c_ms, out_ms, fresh_ms = (statistics.median(times[k]) for k in ("c", "out", "fresh"))
    line = (f"{batch:>4} {c_ms:>10.1f} {out_ms:>10.1f} {fresh_ms:>10.1f} "
            f"{out_ms / c_ms:>11.3f} {fresh_ms / c_ms:>7.3f}")
    if other is not None:
        o_ms, o_cost = run_other(other, tmp, reps)
        if not same_bits(o_cost, np.float32(c_cost.value)):
            sys.exit(f"bench_yolo: {other} computed cost {o_cost!r}, we computed {c_cost.value!r}")
        line += f" {o_ms:>10.1f} {c_ms / o_ms:>8.3f}"
    return line


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


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions (default: by batch size)")
    ap.add_argument("--other", type=Path, help="a second program to time on the same data")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    print(f"pydarknet_loss {pdl.__version__}, core built with {pdl.BUILD_CFLAGS}")
    print(f"YOLOv3 workload: {NET}x{NET}, grids 13/26/52, {CLASSES} classes, {BOXES} boxes/image; "
          "median ms per three-layer forward")
    other = "" if args.other is None else f" {'other':>10} {'c/other':>8}"
    print(f"{'B':>4} {'c':>10} {'py(out=)':>10} {'py':>10} {'py(out=)/c':>11} {'py/c':>7}{other}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lib = build_driver(tmp)
        for batch in args.batches:
            reps = args.reps or max(7, 96 // batch)
            print(bench(lib, tmp, batch, reps, args.other, args.threads), flush=True)
        lib.bench_free()
    us = python_layer_us()
    print(f"Python layer: {us:.1f} us per forward call (measured on a 1x1, one-class layer); "
          f"{3 * us:.0f} us per three-layer forward")


if __name__ == "__main__":
    main()

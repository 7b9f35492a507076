"""Times AlexeyAB's [yolo] (pydarknet_loss.alexeyab) on yolov4.cfg's heads
(a script, not a test).

Workload: yolov4.cfg's three [yolo] layers at 608x608 (layers 139, 150, 161:
76x76 / 38x38 / 19x19 grids, masks 0,1,2 / 3,4,5 / 6,7,8, scale_x_y 1.2 /
1.1 / 1.05), 80 classes, iou_loss=ciou, iou_normalizer .07, iou_thresh .213,
ignore_thresh .7, max_delta 5, max=200 (the default); standard normal
inputs, 20 boxes per image (--truths to change).  It prints the median
milliseconds of one three-layer forward:

  py(out=)  the Python API writing into preallocated buffers (out=)
  py        the Python API with fresh output/delta arrays every call

--ab-other EXE also times a second program that takes the arguments DIR
REPS, reads the files this script writes into DIR (ab_spec.txt: per layer
"w h batch net_w net_h index CFG", CFG holding the [yolo] section's option
lines; ab_input_K.bin; ab_truth.bin, batch*max_boxes*6 floats) and prints
"MEDIAN_MS COST" (COST: the layers' costs summed in float in layer order, a
C hex float) on its last line: for instance one you build yourself, outside
this repository, around AlexeyAB darknet's own parse_yolo and
forward_yolo_layer.  It runs once per rep (REPS = 1), between our own
variants, and its cost must equal ours bit for bit or the script stops.

Threads.  Upstream's forward runs one thread per image of the batch, however
many CPUs there are.  "The same number of threads" is therefore measured as
the same CPUs: for each N of --threads the whole process (and so the other
program, which inherits it) is confined to N CPUs (sched_setaffinity; the
first N this process may use), and ours runs with threads=N.  --no-pin
leaves the affinity alone.

Usage: python benchmarks/bench_ab.py [--batches 16] [--truths 20] [--threads 1 2] [--reps N]
           [--ab-other EXE] [--no-pin] [--path auto|portable|reference]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

import pydarknet_loss as pdl
from pydarknet_loss import _native, alexeyab

# The other program's protocol, the interleaved medians and the cost check: bench_yolo.py's.
from bench_yolo import Variant, interleave, run_other

NET = 608
CLASSES = 80
BOXES = 20
ANCHORS = [12, 16, 19, 36, 40, 28, 36, 75, 76, 55, 72, 146, 142, 110, 192, 243, 459, 401]
# (grid, mask, scale_x_y, layer index) of yolov4.cfg's [yolo] sections
HEADS = [(76, [0, 1, 2], 1.2, 139), (38, [3, 4, 5], 1.1, 150), (19, [6, 7, 8], 1.05, 161)]
COMMON = dict(classes=CLASSES, num=9, jitter=.3, ignore_thresh=.7, truth_thresh=1, iou_thresh=.213,
              cls_normalizer=1.0, iou_normalizer=.07, iou_loss="ciou", nms_kind="greedynms", beta_nms=.6,
              max_delta=5)
MAX_BOXES = 200


def cfg_lines(mask: List[int], scale: float) -> str:
    """The [yolo] section of yolov4.cfg for one head, as option lines."""
    opts = {"mask": ",".join(map(str, mask)), "anchors": ", ".join(map(str, ANCHORS)), **COMMON,
            "scale_x_y": scale}
    return "[yolo]\n" + "".join(f"{k}={v}\n" for k, v in opts.items())


def layers() -> List[alexeyab.YoloLayer]:
    return [alexeyab.YoloLayer(classes=CLASSES, anchors=ANCHORS, mask=m, ignore_thresh=.7, truth_thresh=1,
                               iou_thresh=.213, cls_normalizer=1.0, iou_normalizer=.07, iou_loss="ciou",
                               max_delta=5, scale_x_y=s, max_boxes=MAX_BOXES)
            for _, m, s, _ in HEADS]


def workload(batch: int, boxes: int, seed: int = 0) -> Tuple[List[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((batch, 3 * (5 + CLASSES), g, g)).astype(np.float32) for g, _, _, _ in HEADS]
    truth = np.zeros((batch, MAX_BOXES, 6), np.float32)
    truth[:, :boxes, 0:2] = rng.uniform(0.01, 0.99, (batch, boxes, 2))
    truth[:, :boxes, 2:4] = rng.uniform(0.02, 0.6, (batch, boxes, 2))
    truth[:, :boxes, 4] = rng.integers(0, CLASSES, (batch, boxes))
    truth[:, :boxes, 5] = np.arange(boxes)  # track ids
    return xs, truth


def write_data(tmp: Path, xs: List[np.ndarray], truth: np.ndarray) -> None:
    batch = truth.shape[0]
    with open(tmp / "ab_spec.txt", "w") as f:
        for k, (g, m, s, index) in enumerate(HEADS):
            (tmp / f"ab_yolo_{k}.cfg").write_text(cfg_lines(m, s))
            f.write(f"{g} {g} {batch} {NET} {NET} {index} ab_yolo_{k}.cfg\n")
    for k, x in enumerate(xs):
        x.tofile(tmp / f"ab_input_{k}.bin")
    truth.tofile(tmp / "ab_truth.bin")


def bench(tmp: Path, batch: int, truths: int, threads: int, reps: int, other: Optional[Path]) -> str:
    ls = layers()
    xs, truth = workload(batch, truths)
    write_data(tmp, xs, truth)
    outs = [(np.empty_like(x), np.empty_like(x)) for x in xs]

    def py(out: bool) -> Callable[[], Tuple[float, float]]:
        def run() -> Tuple[float, float]:
            t0 = time.perf_counter()
            cost = np.float32(0)
            for layer, x, o, (_, _, _, index) in zip(ls, xs, outs, HEADS):
                res = layer.forward(x, truth, net_w=NET, net_h=NET, index=index, out=o if out else None,
                                    threads=threads)
                cost = np.float32(cost + res.cost)  # in float, in layer order, as the other program adds them
            return (time.perf_counter() - t0) * 1e3, float(cost)
        return run

    variants: List[Variant] = [("out", py(True)), ("py", py(False))]
    if other is not None:
        variants.append(("other", lambda: run_other(other, tmp, 1)))
    med = interleave(variants, reps)
    line = f"{batch:>4} {truths:>6} {threads:>3} {med['out']:>9.1f} {med['py']:>9.1f}"
    if other is not None:
        line += f" {med['other']:>9.1f} {med['out'] / med['other']:>11.3f} {med['py'] / med['other']:>7.3f}"
    return line


def _busy_seconds() -> float:
    """CPU seconds all processes have spent busy (/proc/stat), or NaN."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[16])
    ap.add_argument("--truths", type=int, nargs="+", default=[BOXES], help="boxes per image (at most 200)")
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, _native.default_threads()}))
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions (default: by batch size, at least 7)")
    ap.add_argument("--ab-other", type=Path, help="a second program to time on the same data")
    ap.add_argument("--no-pin", action="store_true", help="do not confine the process to N CPUs for threads=N")
    ap.add_argument("--path", choices=sorted(_native.PATHS), default="auto",
                    help="the kernels (as $PYDARKNET_LOSS_PATH): every path gives the same bits")
    args = ap.parse_args(argv)
    os.environ["PYDARKNET_LOSS_PATH"] = args.path
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    print(f"pydarknet_loss {pdl.__version__}, core built with {pdl.BUILD_CFLAGS}; "
          f"kernels: {_native.path_in_use()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start")
    busy0, own0, wall0 = _busy_seconds(), _own_seconds(), time.time()
    print(f"\nAlexeyAB [yolo], yolov4.cfg's heads at {NET}x{NET} (76/38/19, 80 classes, ciou, iou_thresh .213); "
          "median ms per three-layer forward; thr = our threads"
          + ("" if args.no_pin or not allowed else " = the CPUs both programs may use"))
    other = "" if args.ab_other is None else f" {'upstream':>9} {'py(out=)/up':>11} {'py/up':>7}"
    print(f"{'B':>4} {'truths':>6} {'thr':>3} {'py(out=)':>9} {'py':>9}{other}")
    try:
        with tempfile.TemporaryDirectory() as d:
            for truths in args.truths:
                for batch in args.batches:
                    for t in args.threads:
                        if allowed and not args.no_pin:
                            if t > len(allowed):
                                sys.exit(f"bench_ab: {t} threads asked but this process may use {len(allowed)} CPUs")
                            os.sched_setaffinity(0, allowed[:t])
                        reps = args.reps or max(7, 112 // batch)
                        print(bench(Path(d), batch, min(truths, MAX_BOXES), t, reps, args.ab_other), flush=True)
    finally:
        if allowed:
            os.sched_setaffinity(0, allowed)
    # The load average at the end counts upstream's own per-image threads;
    # what other processes took meanwhile is the busy time less our own.
    other = (_busy_seconds() - busy0 - (_own_seconds() - own0)) / (time.time() - wall0)
    print(f"other processes used {max(other, 0.0):.2f} CPUs on average during the run")


if __name__ == "__main__":
    main()

"""Checks the fast kernels against the reference expressions on every one of
the 2^32 float32 bit patterns (NaNs, infinities, subnormals and both zeros
included), on each fast path this CPU has: the AVX2+FMA kernels and the
portable C ones.  A script, not a test (it takes minutes); the tests check a
strided subset on every run.

  logistic   (float)(1./(1. + exp((double)-x)))          every [yolo]/[region] activation
  expf       (float)exp((double)x)                       softmax() terms
  box S/D    (float)(exp((double)x) * S / D)             get_yolo_box's w, h (two anchors)

For each kernel it prints the number of elements whose bits differ from the
reference (must be 0), how many each fast path handed to libm because check
(C) of fast.c could not prove them (and how many lie outside the proved
range and go to libm by design), and the
SHA-256 of the reference's output table (2^32 float32, little-endian, in
input bit order), which every fast path's table must equal.  With --record
FILE it also writes those lines there (scripts/fast_kernels_exhaustive.txt
holds the recorded run).

Usage: python scripts/check_fast_kernels.py [--kernels logistic expf box] [--chunk-log2 24] [--record FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

import pydarknet_loss as pdl
from pydarknet_loss import _native
from pydarknet_loss._native import ffi, lib

BOXES = [(373.0, 416), (1.3221, 13)]  # yolov3's largest anchor's w at 416; yolov2-voc's first at 13x13


def outside(name: str, x: np.ndarray, ref: np.ndarray) -> int:
    """Elements outside the kernel's proved range (fast.c, (X)), which go to
    libm by design; the rest of the fallbacks are check (C)'s."""
    with np.errstate(invalid="ignore"):
        if name == "box":
            a = np.abs(ref.astype(np.float64))
            return int(np.count_nonzero(~((np.abs(x) <= 700) & (a >= 2.0**-125) & (a <= 2.0**127))))
        return int(np.count_nonzero(~(np.abs(x) <= 87)))


def kernel(name: str, scale: float = 0.0, div: int = 0) -> Callable[[np.ndarray, np.ndarray, int], int]:
    def run(x: np.ndarray, out: np.ndarray, path: int) -> int:
        pin, pout = ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(out))
        if name == "logistic":
            return int(lib.logistic_array_path(pin, pout, len(x), path))
        if name == "expf":
            return int(lib.expf_array_path(pin, pout, len(x), path))
        return int(lib.box_size_array_path(pin, pout, len(x), scale, div, path))
    return run


def check(label: str, name: str, run: Callable[[np.ndarray, np.ndarray, int], int], paths: List[str],
          chunk_log2: int) -> Tuple[str, bool]:
    n = 1 << chunk_log2
    ref_hash = hashlib.sha256()
    fast_hash = {p: hashlib.sha256() for p in paths}
    mismatches = {p: 0 for p in paths}
    fallbacks = {p: 0 for p in paths}
    out_of_range = 0
    ref = np.empty(n, np.float32)
    got = np.empty(n, np.float32)
    t0 = time.time()
    for start in range(0, 1 << 32, n):
        x = np.arange(start, start + n, dtype=np.uint64).astype(np.uint32).view(np.float32)
        run(x, ref, _native.PATHS["reference"])
        ref_hash.update(ref.tobytes())
        out_of_range += outside(name, x, ref)
        for p in paths:
            fallbacks[p] += run(x, got, _native.PATHS[p])
            mismatches[p] += int(np.count_nonzero(got.view(np.uint32) != ref.view(np.uint32)))
            fast_hash[p].update(got.tobytes())
        done = (start + n) / (1 << 32)
        print(f"\r{label}: {done:6.1%} ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    digest = ref_hash.hexdigest()
    ok = all(mismatches[p] == 0 and fast_hash[p].hexdigest() == digest for p in paths)
    detail = "; ".join(f"{_native.path_in_use(p)}: {mismatches[p]} differ, "
                       f"{fallbacks[p] - out_of_range} check fallbacks" for p in paths)
    detail += f" (and {out_of_range} outside the proved range)"
    return f"{label:<16} sha256 {digest}  {detail}  -> {'OK' if ok else 'FAILED'}", ok


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", nargs="+", default=["logistic", "expf", "box"], choices=["logistic", "expf", "box"])
    ap.add_argument("--chunk-log2", type=int, default=24)
    ap.add_argument("--record", help="also write the result lines to this file")
    args = ap.parse_args(argv)

    paths = ["auto", "portable"] if _native.path_in_use("auto") != "portable" else ["portable"]
    todo: List[Tuple[str, str, Callable[[np.ndarray, np.ndarray, int], int]]] = []
    if "logistic" in args.kernels:
        todo.append(("logistic", "logistic", kernel("logistic")))
    if "expf" in args.kernels:
        todo.append(("expf", "expf", kernel("expf")))
    if "box" in args.kernels:
        todo += [(f"box {s:g}/{d}", "box", kernel("box", s, d)) for s, d in BOXES]
    return run_checks(f"all 2^32 float32 inputs per kernel; fast paths: "
                      f"{', '.join(_native.path_in_use(p) for p in paths)}",
                      [lambda t=t: check(t[0], t[1], t[2], paths, args.chunk_log2) for t in todo], args.record)


def run_checks(what: str, checks: List[Callable[[], Tuple[str, bool]]], record: Optional[str]) -> int:
    """Prints a header (the build, the machine, ``what``), runs each check
    (a result line and whether it passed), prints a footer; with ``record``
    writes them all to that file.  0 if every check passed, else 1.  Shared
    with check_ab_logistic.py."""
    header = [f"pydarknet_loss {pdl.__version__}; core flags {pdl.BUILD_CFLAGS}",
              f"machine: {platform.machine()}, {_cpu()}; {platform.libc_ver()[0]} {platform.libc_ver()[1]}; "
              f"python {platform.python_version()}, numpy {np.__version__}",
              what]
    for line in header:
        print(line)
    lines, all_ok = [], True
    start = time.time()
    for run in checks:
        line, ok = run()
        print(line, flush=True)
        lines.append(line)
        all_ok &= ok
    footer = f"{'all OK' if all_ok else 'FAILED'} in {time.time() - start:.0f} s on {time.strftime('%Y-%m-%d')}"
    print(footer)
    if record:
        with open(record, "w") as f:
            f.write("\n".join(header + lines + [footer]) + "\n")
    return 0 if all_ok else 1


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())

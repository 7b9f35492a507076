"""Checks AlexeyAB's fast logistic and the expf kernel under it against libm
on every one of the 2^32 float32 bit patterns (NaNs, infinities, subnormals
and both zeros included).  A script, not a test (it takes minutes); the
tests check a strided subset on every run (tests/test_ab_speed.py).

  logistic   1.f/(1.f + expf(-x))     every AlexeyAB [yolo] activation
  expf       expf(x)                  the kernel the logistic is built on

The fast kernel runs on the AVX2+FMA path where libm's expf is one
darknet_src/ab_fast.c's proof covers (glibc 2.27 or later); the portable
path calls libm itself.  For each kernel it prints how many elements'
bits differ from libm's (must be 0), how many the fast path handed to libm
because check (C) of ab_fast.c could not prove them (and how many lie
outside the proved range |x| <= 87 and go to libm by design), and the
SHA-256 of libm's output table (2^32 float32, little-endian, in input bit
order), which the fast path's table must equal.  With --record FILE it also
writes those lines there (scripts/ab_logistic_exhaustive.txt holds the
recorded run).

Usage: python scripts/check_ab_logistic.py [--kernels logistic expf] [--chunk-log2 24] [--record FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import List, Optional, Tuple

import numpy as np

from pydarknet_loss import _native
from pydarknet_loss._native import ffi, lib

from check_fast_kernels import run_checks  # this folder: the header, footer and record they share


def run(name: str, x: np.ndarray, out: np.ndarray, path: str) -> int:
    fn = lib.ab_logistic_array_path if name == "logistic" else lib.ab_expf_array_path
    return int(fn(ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(out)), len(x),
                  _native.PATHS[path]))


def check(name: str, chunk_log2: int) -> Tuple[str, bool]:
    n = 1 << chunk_log2
    ref_hash, fast_hash = hashlib.sha256(), hashlib.sha256()
    mismatches = fallbacks = out_of_range = 0
    ref = np.empty(n, np.float32)
    got = np.empty(n, np.float32)
    t0 = time.time()
    for start in range(0, 1 << 32, n):
        x = np.arange(start, start + n, dtype=np.uint64).astype(np.uint32).view(np.float32)
        run(name, x, ref, "reference")
        ref_hash.update(ref.tobytes())
        with np.errstate(invalid="ignore"):
            out_of_range += int(np.count_nonzero(~(np.abs(x) <= 87)))
        fallbacks += run(name, x, got, "auto")
        mismatches += int(np.count_nonzero(got.view(np.uint32) != ref.view(np.uint32)))
        fast_hash.update(got.tobytes())
        print(f"\r{name}: {(start + n) / (1 << 32):6.1%} ({time.time() - t0:.0f} s)", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    digest = ref_hash.hexdigest()
    ok = mismatches == 0 and fast_hash.hexdigest() == digest
    return (f"{name:<9} sha256 {digest}  {_native.path_in_use('auto')}: {mismatches} differ, "
            f"{fallbacks - out_of_range} check fallbacks (and {out_of_range} outside the proved range)"
            f"  -> {'OK' if ok else 'FAILED'}"), ok


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", nargs="+", default=["logistic", "expf"], choices=["logistic", "expf"])
    ap.add_argument("--chunk-log2", type=int, default=24)
    ap.add_argument("--record", help="also write the result lines to this file")
    args = ap.parse_args(argv)

    if _native.path_in_use("auto") != "avx2" or not lib.ab_expf_premise():
        print("the fast logistic does not run here (no AVX2+FMA, or a libm its proof does not cover): "
              "every path calls libm, nothing to check")
        return 0
    return run_checks("all 2^32 float32 inputs per kernel; the avx2 path against libm (the reference path)",
                      [lambda name=name: check(name, args.chunk_log2) for name in args.kernels], args.record)


if __name__ == "__main__":
    sys.exit(main())

"""python -m fuzz (from tests/): run the fuzz harness and print a summary.

Exit status 0 when no case failed, 1 otherwise.  Examples:

    python -m fuzz --cases 100000                 # the long run
    python -m fuzz --cases 2000 --seed 7 --jobs 2
    python -m fuzz --start 40123 --cases 1 -v     # re-run one reported case
"""
from __future__ import annotations

import argparse
import os
import sys

from . import cases as C
from .runner import run


def main(argv: list = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=2000, help="how many cases (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="the generator's seed (default 0)")
    p.add_argument("--start", type=int, default=0,
                   help=f"first case number (0..{len(C.CORPUS) - 1} are issue 11's named cases)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="children at once")
    p.add_argument("--per-child", type=int, default=100, help="cases per forked child")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a case may take before it is a hang")
    p.add_argument("--strict", action="store_true", help="count the KNOWN_OPEN failures too")
    p.add_argument("--only", nargs="+", default=[], metavar="TARGET",
                   help="draw only these targets (e.g. hostile ab_ctor compare_opts tensors); case numbers then "
                        "refer to this selection: re-run one with the same --only")
    p.add_argument("-v", "--verbose", action="store_true", help="print failures as they happen")
    p.add_argument("--progress", type=int, default=0, metavar="N", help="a line on stderr every N cases")
    a = p.parse_args(argv)
    if a.strict:
        C.KNOWN_OPEN.clear()
    unknown = sorted(set(a.only) - {t for _, t in C.TARGETS})
    if unknown:
        p.error(f"unknown targets {unknown}; there are {sorted(t for _, t in C.TARGETS)}")
    C.ONLY[:] = a.only
    s = run(a.cases, seed=a.seed, start=a.start, jobs=a.jobs, per_child=a.per_child, timeout=a.timeout,
            verbose=a.verbose, progress=a.progress)
    print(s.report())
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Digests of the diagnosis over many cases (a script, not a test): for
checking that a change meant only for speed leaves every report as it was.

Per case it records hashes of str(report), of report.cause_map("delta"),
of each cause's fields (code, count, truth rows, cells, arrays, detail,
alternatives) and of report.parts, and writes them as JSON.  Two runs are
compared with --against: the cases whose digests differ are listed.

Cases: the held-out sets (tests/heldout_impls.py, tests/heldout_ab_impls.py,
each configuration on its own case and on two more seeds), the gallery of
pdl.mistakes on tests/gallery_cases.py's golden and generated cases, and
the bench's 52x52 head at B = 16 with several mistakes (the large arrays,
where the diagnosis takes its bounded paths).

Usage: PYTHONPATH=. python benchmarks/diagnosis_digest.py OUT.json [--against OLD.json] [--generated N]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pydarknet_loss as pdl  # noqa: E402
from pydarknet_loss import mistakes as M  # noqa: E402


def _h(v: Any) -> str:
    if isinstance(v, np.ndarray):
        v = v.astype(str).tobytes() if v.dtype == object else v.tobytes()
    elif not isinstance(v, bytes):
        v = repr(v).encode()
    return hashlib.sha1(v).hexdigest()[:16]


def digest(report: Any) -> Dict[str, str]:
    out = {"str": _h(str(report)), "ok": str(report.ok)}
    try:
        out["map"] = _h(report.cause_map("delta"))
    except (KeyError, ValueError):
        out["map"] = "-"
    for k, c in enumerate(report.causes):
        out[f"cause{k}"] = _h((c.code, c.count, tuple(c.truth_rows), tuple(c.cells), c.message, tuple(c.arrays),
                               sorted(dict(c.detail).items(), key=str), tuple(c.alternatives)))
    out["parts"] = _h([repr(r) for r in getattr(report, "parts", None) or []])
    return out


Case = Tuple[str, Callable[[], Any]]


def heldout() -> Iterator[Case]:
    import heldout_impls as H

    for name, (impl, kind, _) in H.TABLE.items():
        for seed in (None, 1, 2):
            def run(name: str = name, kind: str = kind, seed: Any = seed) -> Any:
                c = H.CASES[name]()
                if seed is not None:  # the same configuration on another input (fresh x, same truths)
                    rng = np.random.default_rng([seed, 99])
                    c.x = rng.standard_normal(c.x.shape).astype(np.float32)
                kw: Dict[str, Any] = dict(input=c.x, truth=c.truth, net_w=c.net_w, net_h=c.net_h,
                                          tolerance="float32")
                if kind == "yolo":
                    res = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
                else:
                    res = c.layer.forward(c.x, c.truth, seen=c.seen)
                    kw["seen"] = c.seen
                return pdl.compare(res, {"delta": H.run(name, c)}, c.layer, **kw)
            yield f"heldout/{name}/{seed}", run


def heldout_ab() -> Iterator[Case]:
    import heldout_ab_impls as H

    for name in H.TABLE:
        def run(name: str = name) -> Any:
            c = H.CASES[name]()
            res = c.layer.forward(c.x, c.truth, net_w=c.net_w, net_h=c.net_h)
            return pdl.compare(res, {"delta": H.run(name, c)}, c.layer, input=c.x, truth=c.truth, net_w=c.net_w,
                               net_h=c.net_h, tolerance="float32")
        yield f"heldout_ab/{name}", run


def gallery(generated: int) -> Iterator[Case]:
    import gallery_cases as GC

    for kind, impls, cases in (("yolo", M.YOLO, GC.golden_cases("yolo") + list(GC.generated_yolo(generated))),
                               ("region", M.REGION, GC.golden_cases("region"))):
        for case in cases:
            for name, impl in impls.items():
                def run(case: Any = case, impl: Any = impl) -> Any:
                    kw = {"seen": case.seen} if kind == "region" else {}
                    return case.compare(impl(case.x, case.truth, case.layer, case.net_w, case.net_h, **kw),
                                        tolerance="float32")
                yield f"gallery/{case.name}/{name}", run


def bench_head() -> Iterator[Case]:
    import bench_yolo as BY

    state: Dict[str, Any] = {}

    def setup() -> Dict[str, Any]:
        if not state:
            layers, xs, truth = BY.workload(16, boxes=BY.BOXES)
            layer, x = layers[2], xs[2]
            state.update(layer=layer, x=x, truth=truth, exp=layer.forward(x, truth, net_w=BY.NET, net_h=BY.NET))
        return state

    def weighted(s: Dict[str, Any]) -> np.ndarray:
        d = s["exp"].delta
        d5 = d.reshape(d.shape[0], 3, -1, d.shape[2], d.shape[3]).copy()
        d5[:, :, 4] *= np.where(d5[:, :, 4] < 0, np.float32(.5), np.float32(1))
        return d5.reshape(d.shape)

    makers: Dict[str, Callable[[Dict[str, Any]], np.ndarray]] = {"neg_obj_x0.5": weighted}
    for name in ("correct", "rounded_cell", "first_truth_wins", "ignore_ge", "no_wh_scale", "grid_anchors",
                 "no_short_circuit", "bce_on_probabilities", "gradient_sign", "batch_mean"):
        if name in M.YOLO:
            makers[name] = lambda s, f=M.YOLO[name]: f(s["x"], s["truth"], s["layer"], BY.NET, BY.NET)
    for name, make in makers.items():
        def run(make: Any = make) -> Any:
            s = setup()
            return pdl.compare(s["exp"], {"delta": make(s)}, s["layer"], input=s["x"], truth=s["truth"],
                               net_w=BY.NET, net_h=BY.NET, tolerance="float32")
        yield f"bench52/{name}", run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--against", type=Path)
    ap.add_argument("--generated", type=int, default=40)
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    args = ap.parse_args()
    print(f"pydarknet_loss from {pdl.__file__}")
    result: Dict[str, Dict[str, str]] = {}
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in (heldout(), heldout_ab(), gallery(args.generated), bench_head()):
            for name, run in source:
                if args.only and args.only not in name:
                    continue
                try:
                    result[name] = digest(run())
                except Exception as exc:  # a case that raises is recorded as such
                    result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    args.out.write_text(json.dumps(result, indent=0, sort_keys=True))
    print(f"{len(result)} cases in {time.time() - t0:.0f} s -> {args.out}")
    if args.against:
        old = json.loads(args.against.read_text())
        names = sorted(set(old) | set(result))
        diff = [n for n in names if old.get(n) != result.get(n)]
        for n in diff:
            o, r = old.get(n, {}), result.get(n, {})
            keys = sorted(k for k in set(o) | set(r) if o.get(k) != r.get(k))
            print(f"DIFFERS {n}: {keys}")
        print(f"{len(diff)} of {len(names)} cases differ")


if __name__ == "__main__":
    main()

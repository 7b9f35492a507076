"""Command line: ``pydarknet-loss`` / ``python -m pydarknet_loss``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .. import _validate
from .._native import BUILD_CFLAGS, BUILD_SANITIZERS, cuda_info
from .._version import UPSTREAM_COMMIT, __version__
from ..files.network import EXAMPLES, Network, example_cfg, train_loss
from ..layers import alexeyab
from ..layers import hankai
from . import golden, mistakes
from . import diagnosis as dg
from .compare import DEFAULT_TOLERANCE, LAYOUTS, PART_GROUPS, TOLERANCES, Tolerance, compare

DEMO_CFG = "tiny-yolov3"
DEMO_MISTAKE = "rounded_cell"


def demo_inputs(seed: int = 0) -> Tuple[Network, List[Tuple[Dict[int, np.ndarray], List[np.ndarray], int]]]:
    """The demo's network (the bundled tiny-yolov3.cfg) and seeded data for
    one training batch: per subdivision, the loss layers' inputs (logits ~
    N(0, 1), as at the start of training), the images' boxes (x, y, w, h,
    class rows) and *net.seen during that forward.  RandomState, whose
    streams NumPy keeps frozen, so the demo prints the same numbers with
    every NumPy version."""
    net = Network.from_cfg(example_cfg(DEMO_CFG))
    rng = np.random.RandomState(seed)
    classes = net.loss_layers[0][1].classes
    calls = []
    for sub in range(net.subdivisions):
        boxes = []
        for _ in range(net.batch):
            k = rng.randint(1, 6)
            b = np.zeros((k, 5), np.float32)
            b[:, 0:2] = rng.uniform(0.05, 0.95, (k, 2))
            b[:, 2:4] = rng.uniform(0.05, 0.8, (k, 2))
            b[:, 4] = rng.randint(0, classes, k)
            boxes.append(b)
        xs = {}
        for index, _ in net.loss_layers:
            info = net.layers[index]
            xs[index] = rng.standard_normal((net.batch, info.c, info.h, info.w)).astype(np.float32)
        calls.append((xs, boxes, (sub + 1) * net.batch))
    return net, calls


def demo(seed: int = 0) -> int:
    """One training batch of a small bundled network on seeded data:
    darknet's printed lines, the network cost per subdivision, and what
    train_network returns; then the parity workflow on a built-in
    implementation with a classic mistake."""
    net, calls = demo_inputs(seed)
    print(f"pydarknet_loss {__version__}: darknet {UPSTREAM_COMMIT[:7]}'s YOLO losses, bit for bit")
    print(f"Built-in example (seed {seed}): {DEMO_CFG}.cfg, {net.width}x{net.height} input, "
          f"[yolo] layers {[i for i, _ in net.loss_layers]}; one batch of {net.batch * net.subdivisions} "
          f"images in {net.subdivisions} subdivisions; logits ~ N(0, 1)\n")
    results = []
    for xs, boxes, seen in calls:
        res = net.forward(xs, boxes, seen=seen)
        for line in res.lines():
            print(line)
        print(f"  *net.cost = {float(res.cost):.9g}  (float32 bits {res.cost.view(np.uint32):#010x})")
        results.append(res)
    loss = train_loss(results, batch=net.batch)
    print(f"\ntrain_network returns {float(loss):.9g}  (float32 bits {loss.view(np.uint32):#010x}): the sum of "
          f"the {len(results)} costs over subdivisions*batch = {len(results) * net.batch}")

    # The job itself: another implementation against the oracle, and why it differs.
    xs, boxes, _ = calls[0]
    index, layer = net.loss_layers[0]
    x = xs[index]
    expected = layer.forward(x, boxes, net_w=net.width, net_h=net.height, index=index)
    impl = mistakes.YOLO[DEMO_MISTAKE]
    mine = impl(x, [np.asarray(b) for b in boxes], layer, net.width, net.height)
    report = compare(expected, {"delta": mine}, layer, input=x, truth=boxes, net_w=net.width, net_h=net.height,
                     tolerance="float32")
    print(f"\nParity check of a re-implementation (pydarknet_loss.mistakes.YOLO[{DEMO_MISTAKE!r}]: "
          f"{impl.__doc__}) against the oracle, layer {index}, subdivision 0:")
    print('  report = pdl.compare(expected, {"delta": mine}, layer, input=x, truth=boxes, tolerance="float32")')
    print(report.summary())
    return 0


def info() -> int:
    print(f"pydarknet_loss {__version__}")
    print(f"upstream: pjreddie/darknet {UPSTREAM_COMMIT}; AlexeyAB/darknet {alexeyab.AB_COMMIT}; "
          f"hank-ai/darknet {hankai.HANKAI_COMMIT}")
    print(f"core flags: {BUILD_CFLAGS}")
    print(f"sanitizers: {BUILD_SANITIZERS or 'none'}")
    cuda = cuda_info()
    if not cuda.built:
        print("CUDA build: absent (CPU core only; PYDARKNET_LOSS_CUDA=1 pip install . builds it, with nvcc)")
    elif cuda.device_count == 0:
        print(f"CUDA build: present, no device (runtime {cuda.runtime}, driver {cuda.driver or 'none'})")
    else:
        cc = cuda.compute_capability
        print(f"CUDA build: present, device {cuda.device} (compute capability {cc[0]}.{cc[1]}), "
              f"runtime {cuda.runtime}, driver {cuda.driver}")
    if cuda.built:
        print(f"CUDA device code: {cuda.flags}")
    return 0


def example_cfg_command(name: str) -> int:
    """Print a bundled example cfg (``pydarknet-loss example-cfg tiny-yolov3 > tiny-yolov3.cfg``)."""
    sys.stdout.write(example_cfg(name).read_text())
    return 0


# ---- golden export ---------------------------------------------------------------------------

def _export_layers(args: argparse.Namespace) -> List[Dict[str, object]]:
    """The layers `golden export` draws cases for, with their case params."""
    if args.cfg is not None:
        net = Network.from_cfg(args.cfg, flavor=args.flavor)
        batch = args.batch if args.batch is not None else min(net.batch, 2)
        specs = []
        for index, layer in net.loss_layers:
            info = net.layers[index]
            if info.params.get("tree_file") is not None:
                raise SystemExit("golden export: cfgs with a softmax tree are not exported (upstream's CPU tree "
                                 "path gives NaN; pass --layer-json with temperature to export tree cases)")
            kind = layer.kind
            params = golden.layer_params(layer, w=info.w, h=info.h, batch=batch, net_w=net.width,
                                         net_h=net.height, net_index=index)
            specs.append({"kind": kind, "layer": layer, "params": params})
        if not specs:
            raise SystemExit(f"golden export: {args.cfg} has no loss layer ([yolo] or [region])")
        return specs
    try:
        spec = json.loads(_validate.read_text(args.layer_json, "--layer-json file"))  # a FIFO is refused, not read
    except (OSError, ValueError) as exc:
        raise SystemExit(f"golden export: cannot read --layer-json {args.layer_json}: {exc}") from None
    if not isinstance(spec, dict) or spec.get("kind") not in golden.KINDS:
        raise SystemExit("golden export: --layer-json must hold one object with kind 'yolo', 'region', "
                         "'yolo_ab', 'yolo_hankai', 'gaussian_yolo_ab', 'region_ab' or 'detection' and the keys of a "
                         "golden case's params")
    kind = spec.pop("kind")
    spec["batch"] = args.batch if args.batch is not None else spec.get("batch", 1)
    if kind == "detection":  # issue 23: the grid is side x side
        side = spec.get("kwargs", {}).get("side", 7)
        spec.setdefault("w", side)
        spec.setdefault("h", side)
    missing = [k for k in ("w", "h") if k not in spec]
    if missing:
        raise SystemExit(f"golden export: --layer-json lacks {', '.join(missing)} (the grid size)")
    base = Path(args.layer_json).resolve().parent
    if kind != "region":
        spec.setdefault("net_w", 416)
        spec.setdefault("net_h", 416)
    if kind in golden.AB_KINDS:
        cls = hankai.YoloLayer if kind == "yolo_hankai" else alexeyab.YoloLayer
        layer = cls(**{k: v for k, v in spec.items() if k not in ("w", "h", "batch", "net_w", "net_h", "net_index")})
    elif kind == "gaussian_yolo_ab" and "kwargs" not in spec:  # the cfg keys at the top level
        layer = alexeyab.GaussianYoloLayer(**{k: v for k, v in spec.items()
                                              if k not in ("w", "h", "batch", "net_w", "net_h", "net_index")})
    else:
        layer = golden.layer_from_params(kind, spec, base)
    tree = spec.get("tree")
    if tree is not None:
        # Cases name their tree relative to where GoldenCase.load looks (the
        # output folder, or its parent for a folder named cases/ as in the
        # shared layout).
        case_base = golden.default_base(Path(args.out).resolve() / "case.npz")
        tree = os.path.relpath(base / tree, case_base)
    params = golden.layer_params(layer, w=spec["w"], h=spec["h"], batch=spec["batch"],
                                 net_w=spec.get("net_w", 0), net_h=spec.get("net_h", 0),
                                 net_index=spec.get("net_index", 0), tree=tree)
    return [{"kind": kind, "layer": layer, "params": params}]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def golden_export(args: argparse.Namespace) -> int:
    specs = _export_layers(args)
    est = golden.estimate_bytes(specs, args.cases)
    print(f"writing {args.cases} cases ({args.profile} profile, batch {specs[0]['params']['batch']}) to "
          f"{args.out}: at most {_mb(est)} before compression", file=sys.stderr)
    show = args.progress if args.progress is not None else True
    try:
        paths = golden.export(specs, args.cases, args.seed, args.out, profile=args.profile, tags=args.tags,
                              exclude_tags=args.exclude_tags, force=args.force,
                              progress=golden.Progress("exporting") if show else None)
    except golden.GoldenError as exc:
        print(f"pydarknet-loss golden export: {exc}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} cases and MANIFEST.json to {args.out} ({_mb(size)})")
    return 0


# ---- check ----------------------------------------------------------------------------------

def _load_actual(path: Path) -> Dict[str, np.ndarray]:
    # golden.read_arrays: a FIFO, a text file or a lying header is a GoldenError naming the file (issue 22)
    return golden.read_arrays(path, what="file of actual arrays", keys=("output", "delta", "cost"))


#: Rows of the per-tag table shown when some case fails, before "N more tags".
TAG_ROWS = 12


def tag_summary(results: Iterable[Tuple[Sequence[str], bool]]) -> List[str]:
    """What the failing cases share and what they do not, then the tags that
    tell passing from failing cases, and which tags only failing cases carry
    ("fails only on ...").  When every case passes: per tag, how many."""
    per: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    failing: List[Sequence[str]] = []
    n_ok = n_bad = 0
    for tags, ok in results:
        for t in tags:
            per[t][0 if ok else 1] += 1
        if ok:
            n_ok += 1
        else:
            n_bad += 1
            failing.append(tags)
    if not per:
        return []
    if not n_bad:
        lines = ["per tag (passed/failed):"]
        width = max(len(t) for t in per)
        for t in sorted(per, key=lambda t: (-per[t][1], t)):
            ok, bad = per[t]
            lines.append(f"  {t:<{width}}  {ok:>4} passed  {bad:>4} failed")
        return lines
    return _failure_summary(per, failing, n_ok, n_bad)


def _failure_summary(per: Dict[str, List[int]], failing: List[Sequence[str]], n_ok: int, n_bad: int) -> List[str]:
    """tag_summary's lines when some case fails (issue 19: say what the
    failing cases share and what they do not, not every tag)."""
    lines: List[str] = []
    every = "all" if n_bad > 1 else "the"
    shared = sorted((t for t, (ok, bad) in per.items() if bad == n_bad), key=lambda t: (per[t][0], t))
    if not n_ok:
        lines.append(f"every case fails ({n_bad} of {n_bad}): the cause is in what all of them exercise, not in a "
                     "quirk only some carry")
    if shared:
        lines.append(f"shared by {every} {n_bad} failing case{'s' if n_bad > 1 else ''}: "
                     + ", ".join(t + ("" if not n_ok else f" (also on {per[t][0]} passing)" if per[t][0]
                                          else " (on no passing case)") for t in shared[:8]) + (f", +{len(shared) - 8} more" if len(shared) > 8 else ""))
    else:
        lines.append(f"the {n_bad} failing cases share no tag")
    partial = sorted((t for t, (ok, bad) in per.items() if 0 < bad < n_bad), key=lambda t: (-per[t][1], t))
    if partial:
        lines.append(f"not shared (on some failing cases only): {len(partial)} tag{'s' if len(partial) > 1 else ''}, "
                     + ", ".join(f"{t} ({per[t][1]} of {n_bad})" for t in partial[:6])
                     + (", ..." if len(partial) > 6 else ""))
    if n_ok:
        # The tags that tell passing from failing cases, most failures first.
        rows = sorted((t for t, (ok, bad) in per.items() if bad), key=lambda t: (-per[t][1], per[t][0], t))
        if rows:  # (a failing case may carry no tag: an unreadable file)
            lines.append("per tag (passed/failed), tags on failing cases:")
        width = max((len(t) for t in rows[:TAG_ROWS]), default=0)
        for t in rows[:TAG_ROWS]:
            ok, bad = per[t]
            lines.append(f"  {t:<{width}}  {ok:>4} passed  {bad:>4} failed")
        if len(rows) > TAG_ROWS:
            lines.append(f"  ... {len(rows) - TAG_ROWS} more tags")
    if n_ok:
        only = sorted(t for t, (ok, bad) in per.items() if bad and not ok)
        if only and all(any(t in only for t in tags) for tags in failing):
            lines.append(f"fails only on cases tagged {' or '.join(only)}")
        elif only:
            lines.append(f"tags no passing case has: {', '.join(only)}; the failures are not limited to them")
        else:
            lines.append("the failures share no tag that passing cases lack")
    return lines


def golden_check(args: argparse.Namespace) -> int:
    golden_dir = Path(args.golden)
    actual_dir = Path(args.actual)
    for what, d in (("--golden", golden_dir), ("--actual", actual_dir)):
        if not d.is_dir():
            print(f"pydarknet-loss check: {what} {d}: no such folder", file=sys.stderr)
            return 2
    try:
        entries = golden.case_entries(golden_dir)
    except golden.GoldenError as exc:
        print(f"pydarknet-loss check: {exc}", file=sys.stderr)
        return 2
    if not args.inference:
        entries = [e for e in entries if e.train]
    if not entries:
        print(f"pydarknet-loss check: no training-forward golden cases in {golden_dir}", file=sys.stderr)
        return 2
    tol = dict(atol=args.atol, rtol=args.rtol, max_ulp=args.max_ulp)
    _validate.tolerance_options(args.atol, args.rtol, args.max_ulp, 0)  # a ValueError naming the option: exit 2
    tol_name = Tolerance(**tol, float32=(args.tolerance or DEFAULT_TOLERANCE) == "float32")
    tol["build"] = args.build
    judged = ""
    if args.parts is not None:
        if args.inference:
            print("pydarknet-loss check: --parts judges parts of the delta, which inference cases (train=False) have "
                  "none of: drop --inference", file=sys.stderr)
            return 2
        try:
            tol["parts"] = _validate.parts_option(args.parts, PART_GROUPS, dg.PARTS)
        except ValueError as exc:
            print(f"pydarknet-loss check: --parts: {exc}", file=sys.stderr)
            return 2
        judged = f"; parts judged: {', '.join(tol['parts'])}"
    print(f"checking {len(entries)} golden case{'s' if len(entries) != 1 else ''} of {golden_dir} against "
          f"{actual_dir} (tolerance: {tol_name}{judged})")
    results: List[Tuple[Sequence[str], bool]] = []
    errors = 0
    for e in entries:
        name = e.path.name
        actual_path = actual_dir / name
        if not actual_path.exists() and not actual_path.is_symlink():
            print(f"{name}: MISSING {actual_path} (no file of the implementation's for this case)")
            results.append((e.tags, False))
            continue
        try:
            case = golden.GoldenCase.load(e.path)
            actual = _load_actual(actual_path)
            if not actual:
                raise ValueError(f"{actual_path}: holds none of output, delta, cost")
            report = case.check(actual, layout=args.layout, tolerance=args.tolerance, **tol)
        except (golden.GoldenError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
            print(f"{name}: ERROR {actual_path if not isinstance(exc, golden.GoldenError) else ''}"
                  f"{': ' if not isinstance(exc, golden.GoldenError) else ''}{exc}")
            errors += 1
            results.append((e.tags, False))
            continue
        results.append((case.tags, report.ok))
        known = ""
        if report.known:
            known = (f" ({report.known_mismatches} failing elements outside --parts, not judged: "
                     + ", ".join(f"{d.part} {d.failing}" if d.array == "delta" else f"{d.array} {d.part} {d.failing}"
                                 for d in report.known) + ")")
        if report.ok:
            print(f"{name}: ok{known}")
        else:
            print(f"{name}: {report if args.verbose else report.summary()}")
    failed = sum(1 for _, ok in results if not ok)
    for line in tag_summary(results):
        print(line)
    print(f"{len(results) - failed} of {len(results)} cases match ({tol_name}{judged})"
          + (f"; {failed} do not" if failed else "") + (f" ({errors} could not be read)" if errors else ""))
    return 1 if failed else 0


# ---- fuzz ------------------------------------------------------------------------------------------

def fuzz_command(args: argparse.Namespace) -> int:
    try:
        from . import fuzz as F
    except ImportError as exc:
        print(f"pydarknet-loss fuzz: {exc}", file=sys.stderr)
        return 2
    try:
        F.load_impl(args.impl)
    except ValueError as exc:
        print(f"pydarknet-loss fuzz: {exc}", file=sys.stderr)
        return 2
    layers = None
    kind = args.kind
    if args.cfg is not None:
        net = Network.from_cfg(args.cfg, flavor=args.flavor)
        layers = [layer for _, layer in net.loss_layers
                  if layer.kind in ("yolo", "region", "yolo_ab", "yolo_hankai", "region_ab", "detection")]
        if not layers:
            print(f"pydarknet-loss fuzz: {args.cfg} has no [yolo] or [region] layer to fuzz", file=sys.stderr)
            return 2
        kind = layers[0].kind
        if args.net is None:
            args.net = [net.width, net.height]
    jobs = max(1, args.jobs)
    # Without --seed the jobs run unseeded: Hypothesis then tries the
    # failures its database kept first (a seeded run is repeatable and,
    # as Hypothesis does for a seeded test, consults no database).
    seed = args.seed
    share = [args.examples // jobs + (1 if j < args.examples % jobs else 0) for j in range(jobs)]
    options = None
    if args.options:
        options = "all" if args.options == ["all"] else tuple(args.options)
        if layers is not None:
            print("pydarknet-loss fuzz: --options draws settings of the standard heads; with --cfg the layers are "
                  "the cfg's", file=sys.stderr)
            return 2
        try:
            from .. import strategies as S

            S.check_options(kind, options)
        except ValueError as exc:
            print(f"pydarknet-loss fuzz: {exc}", file=sys.stderr)
            return 2
    parts = None
    if args.parts is not None:
        try:
            parts = _validate.parts_option(args.parts, PART_GROUPS, dg.PARTS)
        except ValueError as exc:
            print(f"pydarknet-loss fuzz: --parts: {exc}", file=sys.stderr)
            return 2
    if args.database is not None and not args.database.strip():
        print("pydarknet-loss fuzz: --database: give a folder, or none", file=sys.stderr)
        return 2
    work = [(args.impl, layers, kind, max(n, 1), None if seed is None else seed + j, args.tolerance, args.layout,
             str(args.out) if args.out is not None else None, tuple(args.net) if args.net else None, j, options,
             parts, args.database, args.build)
            for j, n in enumerate(share)]
    what = (f"{args.cfg}'s loss layers" if layers is not None else
            f"the heads of {_standard_cfg(kind)}" + (f", drawing {', '.join(options) if options != 'all' else 'every layer option'}"
                                                     if options else ""))
    if parts is not None:
        what += f", judging {', '.join(parts)} only"
    if args.build != "cpu":
        what += f", against the {args.build.upper()} build's values"
    print(f"fuzzing {args.impl} on {what} ({args.examples} cases, {jobs} job{'s' if jobs > 1 else ''}, "
          f"{'unseeded' if seed is None else f'seed {seed}'}, "
          f"tolerance {Tolerance(float32=args.tolerance == 'float32')})", file=sys.stderr)
    if jobs == 1:
        outcomes = [F.run_job(work[0])]
    else:
        import multiprocessing as mp

        with mp.get_context("fork" if sys.platform != "win32" else "spawn").Pool(jobs) as pool:
            outcomes = pool.map(F.run_job, work)
    failed = [o for o in outcomes if not o.ok]
    passed = sum(o.passed for o in outcomes)
    worst = max((o.max_difference for o in outcomes), key=lambda d: (d.used, d.ulp, d.abs))
    if not failed:
        print(f"{passed} cases passed (tolerance: {Tolerance(float32=args.tolerance == 'float32')}); "
              f"{F._difference_words(worst)}")
        return 0
    first = min(failed, key=lambda o: o.job)
    print(f"departs from darknet: {first.cause} (job {first.job}, "
          f"{'unseeded' if first.seed is None else f'seed {first.seed}'}, after {first.examples} cases)")
    print(first.summary)
    if args.out is not None:
        print(f"\nthe minimal case is stored in {args.out}: check it with\n  pydarknet-loss check --golden {args.out} "
              "--actual <your arrays>, or keep it for the pytest plugin (--darknet-golden)")
    print("\nreproducer:\n" + first.reproducer)
    return 1


def _standard_cfg(kind: str) -> str:
    from .. import strategies as S

    return S.STANDARD_HEADS[kind][0]


# ---- the parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pydarknet-loss",
        description="Bit-exact oracle for darknet's YOLO losses: compare your implementation with it and learn "
                    "where and why it departs.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_demo = sub.add_parser("demo", help="run the built-in example: darknet's lines, then a parity check of a "
                                         "mistaken implementation")
    p_demo.add_argument("--seed", type=int, default=0, help="seed of the example's data (default 0)")
    sub.add_parser("info", help="version, upstream commits, build flags, CUDA build")
    p_ex = sub.add_parser("example-cfg", help="print a small cfg bundled with the package (ours), to start from",
                          description="Print a small darknet cfg bundled with the package, e.g. "
                                      "`pydarknet-loss example-cfg tiny-yolov3 > tiny-yolov3.cfg`.")
    p_ex.add_argument("name", nargs="?", default=EXAMPLES[0], choices=EXAMPLES,
                      help=f"which one (default {EXAMPLES[0]}): {', '.join(EXAMPLES)}")

    p_golden = sub.add_parser("golden", help="golden cases: export cases computed by the oracle")
    gsub = p_golden.add_subparsers(dest="golden_command", required=True, metavar="SUBCOMMAND")
    p_exp = gsub.add_parser("export", help="write golden cases computed by the oracle, for your CI",
                            description="Write golden cases (.npz, the shared golden format) that carry the "
                                        "expected arrays, so a CI needs no darknet build.")
    src = p_exp.add_mutually_exclusive_group(required=True)
    src.add_argument("--cfg", type=Path, help="a darknet cfg: cases for each of its loss layers")
    src.add_argument("--layer-json", type=Path,
                     help="a JSON object: kind ('yolo', 'region', 'yolo_ab', 'yolo_hankai', 'gaussian_yolo_ab', "
                          "'region_ab', 'detection') plus a golden case's params (w and h required; region_ab and "
                          "detection: the cfg options as 'kwargs', detection's grid is side x side)")
    p_exp.add_argument("--flavor", choices=("pjreddie", "alexeyab", "hankai"), default="pjreddie",
                       help="which darknet the --cfg is for (default pjreddie; a cfg cannot say)")
    p_exp.add_argument("--cases", type=int, default=10, help="number of cases (default 10)")
    p_exp.add_argument("--seed", type=int, default=0, help="seed: the same seed writes the same files (default 0)")
    p_exp.add_argument("--batch", type=int, default=None,
                       help="images per case (default: 2 for --cfg, whatever its batch; the JSON's batch or 1 for "
                            "--layer-json)")
    p_exp.add_argument("--profile", choices=golden.PROFILES, default="all",
                       help="realistic: typical training inputs and boxes; stress: upstream's quirks, several per "
                            "case; all (default): realistic, half the cases with one quirk added")
    p_exp.add_argument("--tags", nargs="+", default=[], metavar="TAG",
                       help="keep only cases carrying every one of these tags (e.g. dup_cell_hit)")
    p_exp.add_argument("--exclude-tags", nargs="+", default=[], metavar="TAG",
                       help="leave out cases carrying any of these tags (e.g. extreme_inputs train_false)")
    p_exp.add_argument("--out", type=Path, required=True, help="the folder to write (must be empty, or --force)")
    p_exp.add_argument("--force", action="store_true",
                       help="replace the golden cases already in --out (they are deleted first)")
    p_exp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show progress on stderr (default on: a bar on a terminal, a line every few seconds "
                            "elsewhere)")

    p_chk = sub.add_parser("check", help="compare your implementation's arrays with golden cases",
                           description="Compare .npz files of yours (named as the golden cases, with output, "
                                       "delta and/or cost) with golden cases; each failure is explained. Exits 1 "
                                       "when a case fails, 2 on a usage error.")
    p_chk.add_argument("--golden", type=Path, required=True, help="folder of golden cases")
    p_chk.add_argument("--actual", type=Path, required=True,
                       help="folder of your .npz files, named as the cases, with output, delta and/or cost")
    p_chk.add_argument("--layout", choices=LAYOUTS, default="nchw",
                       help="your arrays' layout: nchw = darknet's (B, C, H, W) (default), nhwc = (B, H, W, C), "
                            "bahwc = (B, A, H, W, 5+classes)")
    p_chk.add_argument("--build", choices=("cpu", "gpu"), default="cpu",
                       help="compare your delta with the CPU build's (default) or, for [region], with what the GPU "
                            "build hands on (delta times p(1 - p) on x, y and objectness)")
    p_chk.add_argument("--tolerance", choices=TOLERANCES, default=None,
                       help="float32 (darknet's own rounding of each element, default) or exact (bit for bit: "
                            "only a bit-exact port of darknet's C passes it); layers whose bound is not derived "
                            "are compared exactly by default")
    p_chk.add_argument("--atol", type=float, default=0.0, help="also pass |actual - expected| <= atol")
    p_chk.add_argument("--rtol", type=float, default=0.0, help="also pass |actual - expected| <= rtol*|expected|")
    p_chk.add_argument("--max-ulp", type=int, default=0, help="also pass within this many float32 ULPs")
    p_chk.add_argument("--inference", action="store_true",
                       help="also check the train=False cases (output only; skipped by default)")
    p_chk.add_argument("--parts", nargs="+", default=None, metavar="PART",
                       help="judge only these parts of darknet's delta: groups box, objectness, classes, or parts "
                            "(box.x, objectness.negative, classes.positive, prior...); failing elements elsewhere "
                            "are reported as known departures, not failures, and the cost is not judged")
    p_chk.add_argument("-v", "--verbose", action="store_true", help="print whole reports, not only the causes")

    p_fz = sub.add_parser("fuzz", help="find the smallest input on which your implementation departs from darknet",
                          description="Draw cases, run IMPL and the oracle on each, and shrink the first departure "
                                      "to a minimal case with its cause. IMPL is package.module:function, called as "
                                      "function(x, truth, layer, net_w, net_h) and returning its delta (or a dict "
                                      "with delta, output, cost). Needs Hypothesis (the [fuzz] extra). Exits 1 when "
                                      "a departure is found.")
    p_fz.add_argument("impl", metavar="IMPL", help="package.module:function (the current folder is importable)")
    p_fz.add_argument("--kind", choices=("yolo", "region", "yolo_ab", "yolo_hankai", "gaussian_yolo_ab", "region_ab",
                                         "detection"), default="yolo",
                      help="the layer to fuzz without --cfg: the heads of pjreddie's yolov3.cfg (yolo, default), "
                           "yolov2-voc.cfg (region), AlexeyAB's yolov4.cfg (yolo_ab) or hank-ai's (yolo_hankai); "
                           "drawn layers of AlexeyAB's [Gaussian_yolo] (gaussian_yolo_ab) and [region] (region_ab), "
                           "YOLOv1's [detection] (detection)")
    p_fz.add_argument("--options", nargs="+", metavar="OPTION",
                      help="without --cfg: also draw these layer options (e.g. map max_boxes truth_thresh), or all")
    p_fz.add_argument("--cfg", type=Path, help="fix the layers to this cfg's loss layers (and its network size)")
    p_fz.add_argument("--flavor", choices=("pjreddie", "alexeyab", "hankai"), default="pjreddie",
                      help="which darknet the --cfg is for (default pjreddie)")
    p_fz.add_argument("--examples", type=int, default=500, help="cases to try in all (default 500)")
    p_fz.add_argument("--jobs", type=int, default=1,
                      help="processes, each with its own seed and share of the cases (default 1)")
    p_fz.add_argument("--seed", type=int, default=None, help="seed of job 0 (job j uses seed + j): a repeatable run, which consults no example database; "
                           "default: unseeded, failures kept in the database tried first")
    p_fz.add_argument("--tolerance", choices=TOLERANCES, default=DEFAULT_TOLERANCE,
                      help="float32 (darknet's own rounding, default) or exact")
    p_fz.add_argument("--layout", choices=LAYOUTS, default="nchw",
                      help="your implementation's layout of x and its arrays (default nchw)")
    p_fz.add_argument("--net", type=int, nargs=2, metavar=("W", "H"), help="fix the network input size")
    p_fz.add_argument("--out", type=Path,
                      help="folder to store the minimal case in, as a golden .npz, with a reproducer script")
    p_fz.add_argument("--parts", nargs="+", default=None, metavar="PART",
                      help="judge only these parts of darknet's delta (as check --parts: box, objectness, classes, "
                           "or single parts); departures elsewhere are known, not failures")
    p_fz.add_argument("--build", choices=("cpu", "gpu"), default="cpu",
                      help="as check --build: compare with the CPU build's delta (default) or, for [region], with "
                           "what the GPU build hands on (delta times p(1 - p) on x, y and objectness)")
    p_fz.add_argument("--database", metavar="PATH|none", default=None,
                      help="folder of Hypothesis's example database (failures found are tried first next time); "
                           "default: $PYDARKNET_LOSS_HYPOTHESIS_DB, else $XDG_CACHE_HOME/pydarknet_loss/hypothesis, "
                           "else ~/.cache/pydarknet_loss/hypothesis (never the current folder); none: keep nothing")
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if args.command == "demo":
            return demo(args.seed)
        if args.command == "info":
            return info()
        if args.command == "example-cfg":
            return example_cfg_command(args.name)
        if args.command == "golden":
            if args.cases < 1:
                ap.error("--cases must be at least 1")
            if args.batch is not None and args.batch < 1:
                ap.error("--batch must be at least 1")
            return golden_export(args)
        if args.command == "fuzz":
            if args.examples < 1 or args.jobs < 1:
                ap.error("--examples and --jobs must be at least 1")
            return fuzz_command(args)
        return golden_check(args)
    except BrokenPipeError:  # e.g. `pydarknet-loss demo | head`
        return 0
    except (ValueError, OSError, golden.GoldenError) as exc:  # OSError: a path that is a folder, unreadable, ...
        print(f"pydarknet-loss: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

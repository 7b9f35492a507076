"""Command line: ``pydarknet-loss`` / ``python -m pydarknet_loss``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .._version import UPSTREAM_COMMIT, __version__
from .._native import BUILD_CFLAGS
from . import golden
from .compare import Tolerance
from ..files.network import Network, example_cfg, train_loss

DEMO_CFG = "tiny-yolov3"


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
    train_network returns."""
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
    return 0


def cuda_build_present() -> bool:
    """Whether a CUDA build of the GPU path is installed (none ships yet)."""
    import importlib.util

    return importlib.util.find_spec("pydarknet_loss._core_cuda") is not None


def info() -> int:
    print(f"pydarknet_loss {__version__}")
    print(f"upstream: pjreddie/darknet {UPSTREAM_COMMIT}")
    print(f"core flags: {BUILD_CFLAGS}")
    print(f"CUDA build: {'present' if cuda_build_present() else 'absent (CPU core only)'}")
    return 0


def _export_layers(args: argparse.Namespace) -> List[Dict[str, object]]:
    """The layers `golden export` draws cases for, with their case params."""
    if args.cfg is not None:
        net = Network.from_cfg(args.cfg)
        specs = []
        for index, layer in net.loss_layers:
            info = net.layers[index]
            tree = info.params.get("tree_file")
            params = golden.layer_params(layer, w=info.w, h=info.h, batch=net.batch, net_w=net.width,
                                         net_h=net.height, net_index=index, tree=None)
            if tree is not None:
                raise SystemExit("golden export: cfgs with a softmax tree are not exported (upstream's CPU tree "
                                 "path gives NaN; pass --layer-json with temperature to export tree cases)")
            specs.append({"kind": layer.kind, "layer": layer, "params": params})
        if not specs:
            raise SystemExit(f"golden export: {args.cfg} has no [yolo] or [region] layer")
        return specs
    spec = json.loads(Path(args.layer_json).read_text())
    if not isinstance(spec, dict) or spec.get("kind") not in ("yolo", "region"):
        raise SystemExit("golden export: --layer-json must hold one object with kind 'yolo' or 'region' "
                         "and the keys of a golden case's params")
    kind = spec.pop("kind")
    spec.setdefault("batch", 1)
    missing = [k for k in ("w", "h") if k not in spec]
    if missing:
        raise SystemExit(f"golden export: --layer-json lacks {', '.join(missing)} (the grid size)")
    base = Path(args.layer_json).resolve().parent
    if kind == "yolo":
        spec.setdefault("net_w", 416)
        spec.setdefault("net_h", 416)
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


def golden_export(args: argparse.Namespace) -> int:
    specs = _export_layers(args)
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and args.cases >= 20)
    paths = golden.export(specs, args.cases, args.seed, args.out,
                          progress=golden.text_progress() if show else None)
    print(f"wrote {len(paths)} cases and MANIFEST.json to {args.out}")
    return 0


def _load_actual(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in ("output", "delta", "cost") if k in z.files}


def golden_check(args: argparse.Namespace) -> int:
    files = golden.case_files(args.golden)
    if not files:
        print(f"no training-forward golden cases in {args.golden}", file=sys.stderr)
        return 2
    failed = 0
    tol = dict(atol=args.atol, rtol=args.rtol, max_ulp=args.max_ulp)
    for path in files:
        actual_path = Path(args.actual) / path.name
        if not actual_path.is_file():
            print(f"{path.name}: MISSING {actual_path}")
            failed += 1
            continue
        case = golden.GoldenCase.load(path)
        report = case.check(_load_actual(actual_path), **tol)
        if report.ok:
            print(f"{path.name}: ok")
        else:
            failed += 1
            print(f"{path.name}: {report}")
    print(f"{len(files) - failed} of {len(files)} cases match ({Tolerance(**tol)})"
          + (f"; {failed} do not" if failed else ""))
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="pydarknet-loss",
                                 description="Bit-exact oracle for darknet's YOLO losses.")
    sub = ap.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the built-in example and print darknet's lines")
    p_demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("info", help="version, upstream commit, build flags, CUDA build")
    p_golden = sub.add_parser("golden", help="export golden cases")
    gsub = p_golden.add_subparsers(dest="golden_command", required=True)
    p_exp = gsub.add_parser("export", help="write golden cases computed by the oracle")
    src = p_exp.add_mutually_exclusive_group(required=True)
    src.add_argument("--cfg", type=Path, help="a darknet cfg: cases for each of its loss layers")
    src.add_argument("--layer-json", type=Path, help="one object: kind plus a golden case's params")
    p_exp.add_argument("--cases", type=int, default=10)
    p_exp.add_argument("--seed", type=int, default=0)
    p_exp.add_argument("--out", type=Path, required=True)
    p_exp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show a progress bar (default: on a terminal for 20 cases or more)")
    p_chk = sub.add_parser("check", help="compare another implementation's outputs with golden cases")
    p_chk.add_argument("--golden", type=Path, required=True, help="folder of golden cases")
    p_chk.add_argument("--actual", type=Path, required=True,
                       help="folder of .npz files named as the cases, with output, delta and/or cost")
    p_chk.add_argument("--atol", type=float, default=0.0)
    p_chk.add_argument("--rtol", type=float, default=0.0)
    p_chk.add_argument("--max-ulp", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        if args.command == "demo":
            return demo(args.seed)
        if args.command == "info":
            return info()
        if args.command == "golden":
            if args.cases < 1:
                ap.error("--cases must be at least 1")
            return golden_export(args)
        return golden_check(args)
    except BrokenPipeError:  # e.g. `pydarknet-loss demo | head`
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"pydarknet-loss: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

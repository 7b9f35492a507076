"""Command line: ``pydarknet-loss`` / ``python -m pydarknet_loss``."""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import UPSTREAM_COMMIT, __version__
from ._native import BUILD_CFLAGS
from .network import Network, example_cfg, train_loss

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
        for index, layer in net.loss_layers:
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


def info() -> int:
    print(f"pydarknet_loss {__version__}")
    print(f"upstream: pjreddie/darknet {UPSTREAM_COMMIT}")
    print(f"core flags: {BUILD_CFLAGS}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="pydarknet-loss",
                                 description="Bit-exact oracle for darknet's YOLO losses.")
    sub = ap.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the built-in example and print darknet's lines")
    p_demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("info", help="version, upstream commit and build flags")
    args = ap.parse_args(argv)
    if args.command == "demo":
        return demo(args.seed)
    return info()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

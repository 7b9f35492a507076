"""Command line: ``pydarknet-loss`` / ``python -m pydarknet_loss``."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Tuple

import numpy as np

from . import UPSTREAM_COMMIT, __version__
from ._native import BUILD_CFLAGS
from .layers import YoloLayer

#: yolov3.cfg's anchors and heads: (darknet layer index, grid, mask).
V3_ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
V3_HEADS = [(82, 13, [6, 7, 8]), (94, 26, [3, 4, 5]), (106, 52, [0, 1, 2])]
DEMO_CLASSES = 80
DEMO_NET = 416


def demo_inputs(seed: int = 0) -> Tuple[List[np.ndarray], List[Tuple[int, YoloLayer, np.ndarray]]]:
    """The demo's seeded data: two images' boxes, and per head its darknet
    layer index, layer and input (logits ~ N(0, 1), as at the start of
    training).  RandomState, whose streams NumPy keeps frozen, so the demo
    prints the same numbers with every NumPy version."""
    rng = np.random.RandomState(seed)
    boxes = []
    for k in (6, 3):
        b = np.zeros((k, 5), np.float32)
        b[:, 0:2] = rng.uniform(0.05, 0.95, (k, 2))
        b[:, 2:4] = rng.uniform(0.03, 0.7, (k, 2))
        b[:, 4] = rng.randint(0, DEMO_CLASSES, k)
        boxes.append(b)
    heads = []
    for index, grid, mask in V3_HEADS:
        layer = YoloLayer(classes=DEMO_CLASSES, anchors=V3_ANCHORS, mask=mask, ignore_thresh=0.7)
        x = rng.standard_normal((2, layer.channels, grid, grid)).astype(np.float32)
        heads.append((index, layer, x))
    return boxes, heads


def demo(seed: int = 0) -> int:
    """A YOLOv3 head on seeded data: darknet's printed lines and the costs."""
    boxes, heads = demo_inputs(seed)
    print(f"pydarknet_loss {__version__}: the [yolo] loss of darknet {UPSTREAM_COMMIT[:7]}, bit for bit")
    print(f"Built-in example (seed {seed}): a YOLOv3 head, {DEMO_NET}x{DEMO_NET} input, {DEMO_CLASSES} "
          f"classes, 2 images with {len(boxes[0])} and {len(boxes[1])} boxes, logits ~ N(0, 1)\n")
    costs = []
    for index, layer, x in heads:
        res = layer.forward(x, boxes, net_w=DEMO_NET, net_h=DEMO_NET, index=index)
        assert res.stats is not None
        print(res.stats.line())
        costs.append((index, x.shape[-1], res.cost))
    print("\nlayer  grid    cost (*l.cost = pow(mag_array(delta), 2))")
    for index, grid, cost in costs:
        print(f"{index:>5}  {grid:>2}x{grid:<2}  {float(cost):.9g}  (float32 bits {cost.view(np.uint32):#010x})")
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

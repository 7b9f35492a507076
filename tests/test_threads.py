"""Eight threads calling every public entry point at once give, bit for bit,
what one thread gives (issue 11).  The C core keeps no globals and cffi
releases the GIL around each call, so the calls really overlap."""
from __future__ import annotations

import threading
import warnings
from typing import Any, Callable, Dict, List

import numpy as np

import goldens as G
import pydarknet_loss as pdl

SMALL = G.HERE / "data" / "small.tree"
LABELS = sorted((G.HERE / "data" / "labels").glob("img*.txt"))
V3 = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]


def fingerprint(v: Any) -> Any:
    """Every array (float bits included) and number a result holds."""
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (np.floating, float)):
        return np.float32(v).tobytes() if isinstance(v, np.float32) else np.float64(v).tobytes()
    if isinstance(v, (list, tuple)):
        return tuple(fingerprint(i) for i in v)
    if isinstance(v, dict):
        return tuple((k, fingerprint(i)) for k, i in sorted(v.items()))
    if hasattr(v, "__dataclass_fields__"):
        return tuple((k, fingerprint(getattr(v, k))) for k in v.__dataclass_fields__)
    return repr(v)


def entry_points() -> Dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(11)
    yolo = pdl.YoloLayer(classes=4, anchors=V3, mask=[6, 7, 8], ignore_thresh=.6)
    x = rng.standard_normal((2, yolo.channels, 13, 13)).astype(np.float32)
    tr = [np.array([[0.5, 0.4, 0.3, 0.2, 1], [0.2, 0.7, 0.1, 0.1, 0]], np.float32),
          np.array([[0.8, 0.3, 0.5, 0.6, 2]], np.float32)]
    region = pdl.RegionLayer(classes=5, anchors=[1.08, 1.19, 3.42, 4.41, 6.63, 11.38], softmax=True, rescore=True,
                             bias_match=True)
    xr = rng.standard_normal((2, region.channels, 7, 7)).astype(np.float32)
    tree_l = pdl.RegionLayer(classes=14, anchors=[1.0, 1.0], tree=SMALL, temperature=1.0, softmax=True)
    xt = rng.standard_normal((1, tree_l.channels, 1, 1)).astype(np.float32)
    ttruth = [np.array([[0.5, 0.5, 0.2, 0.2, 12]], np.float32)]
    act = yolo.forward(x, train=False).output
    ract = region.forward(xr, train=False).output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tact = tree_l.forward(xt, train=False).output
    net = pdl.Network.from_cfg(pdl.example_cfg("tiny-yolov3"))
    xs = [rng.standard_normal((2,) + net.layers[i].shape).astype(np.float32) for i, _ in net.loss_layers]
    boxes = rng.uniform(0, 1, (64, 4)).astype(np.float32)
    dets = yolo.detections(act, img_w=640, img_h=480, thresh=0.3)
    cfg_text = pdl.example_cfg("tiny-yolov2").read_text()
    ab = pdl.alexeyab.YoloLayer(classes=4, anchors=V3, mask=[6, 7, 8], iou_loss="ciou", iou_normalizer=.07,
                                iou_thresh=.213, scale_x_y=1.05, max_boxes=20)
    xa = rng.standard_normal((2, ab.channels, 13, 13)).astype(np.float32)

    def tree_fwd() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tree_l.forward(xt, ttruth, seen=0)

    return {
        "yolo.forward": lambda: yolo.forward(x, tr, net_w=416, net_h=416, index=3),
        "yolo.forward(out=)": lambda: yolo.forward(x, tr, out=(np.empty_like(x), np.empty_like(x))),
        "region.forward": lambda: region.forward(xr, tr, seen=100),
        "region.forward(tree)": tree_fwd,
        "yolo.detections": lambda: yolo.detections(act, img_w=640, img_h=480, thresh=0.3),
        "yolo.detections(batch 2)": lambda: yolo.detections(act, img_w=500, img_h=375, thresh=0.2),
        "region.detections": lambda: region.detections(ract, img_w=640, img_h=480, thresh=0.2),
        "region.detections(tree)": lambda: tree_l.detections(np.abs(tact), img_w=10, img_h=10, tree_thresh=.3),
        "nms_sort": lambda: pdl.nms_sort(dets, 0.45),
        "nms_obj": lambda: pdl.nms_obj(dets, 0.45),
        "box_iou": lambda: pdl.box_iou(boxes, boxes[::-1].copy()),
        "box_rmse": lambda: pdl.box_rmse(boxes[:, None], boxes[None, :8]),
        "read_labels+pack_truth": lambda: pdl.pack_truth([pdl.read_labels(p) for p in LABELS[:2]], "yolo",
                                                         dx=.1, sy=.9, flip=True),
        "read_tree": lambda: pdl.read_tree(SMALL)._arrays(),
        "Tree.from_parents": lambda: pdl.Tree.from_parents([-1, -1, 0, 0, 1, 2])._arrays(),
        "Network.from_text": lambda: pdl.Network.from_text(cfg_text).shapes,
        "Network.forward": lambda: net.forward(xs, tr, seen=64),
        "implied.yolo_loss": lambda: pdl.implied.yolo_loss(x, tr, yolo, net_w=416, net_h=416)[0],
        "compare": lambda: pdl.compare(yolo.forward(x, tr), yolo.forward(x, tr), yolo).ok,
        "compare (diagnosis)": lambda: [c.code for c in pdl.compare(
            yolo.forward(x, tr), {"delta": -yolo.forward(x, tr).delta}, yolo, input=x, truth=tr).causes],
        "alexeyab.forward": lambda: ab.forward(xa, tr, net_w=608, net_h=608, index=5),
        "to_truth": lambda: pdl.to_truth([np.array([[1, 0.5, 0.4, 0.3, 0.2]], np.float32)], format="yolo"),
    }


def test_eight_threads_give_the_single_thread_bits() -> None:
    calls = entry_points()
    expected = {name: fingerprint(f()) for name, f in calls.items()}
    names = list(calls)
    rounds = 6
    errors: List[str] = []
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                # Each thread walks the entry points in its own order, so different calls overlap.
                for name in names[k % len(names):] + names[:k % len(names)]:
                    got = fingerprint(calls[name]())
                    if got != expected[name]:
                        errors.append(f"thread {k}, round {r}: {name} differs from the single-thread result")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"thread {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, "\n".join(errors[:20])

"""The parity toolkit's view of the issue-23 layers: AlexeyAB's [region]
(``region_ab``) and YOLOv1's [detection] (``detection``).

compare() reports per component on a (B, A, entries, H, W) view; these
layers store their arrays otherwise, so this module gives that view of each
array as upstream leaves it:

* ``region_ab``: ``output`` is upstream's flattened, channels-last
  (B, H, W, C) buffer (read as such, then viewed per anchor); ``delta`` is
  darknet's (B, C, H, W).
* ``detection``: a flat (B, side*side*((1+coords)*num + classes)) buffer,
  viewed per cell as (B, 1, classes + num*(1 + coords), side, side): the
  cell's class scores, its num confidences, then its num boxes.

No decision record exists for these layers, so a report explains a
difference only by the generic causes (scale, sign, NaN/inf); compare()
with ``tolerance="float32"`` is refused for them.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import numpy as np

KINDS = ("region_ab", "detection")


def is_more(layer: Any) -> bool:
    return getattr(layer, "kind", None) in KINDS


def names(layer: Any) -> List[str]:
    """Entry names of one anchor (region_ab) or one cell (detection)."""
    if layer.kind == "region_ab":
        return (["x", "y", "w", "h"] + [f"mask{i}" for i in range(layer.coords - 4)] + ["objectness"]
                + [f"class {k}" for k in range(layer.classes)])
    box = ["x", "y", "w", "h"] + [f"coord{i}" for i in range(4, layer.coords)]
    return [f"class {k}" for k in range(layer.classes)] + ["confidence"] * layer.num + box * layer.num


def view5(layer: Any, key: str, a: np.ndarray, what: str) -> np.ndarray:
    """The (B, A, entries, H, W) view of one of the layer's arrays, as upstream stores it."""
    a = np.asarray(a)
    if layer.kind == "region_ab":
        if a.ndim != 4:
            raise ValueError(f"{what} must have 4 dimensions, got shape {a.shape}")
        if key == "output":  # (B, H, W, C), upstream's flattened buffer
            if a.shape[3] != layer.channels:
                raise ValueError(f"{what}: AlexeyAB's [region] output is upstream's flattened (B, H, W, C) buffer with "
                                 f"C = {layer.channels}, got shape {a.shape}")
            a = a.transpose(0, 3, 1, 2)
        elif a.shape[1] != layer.channels:
            raise ValueError(f"{what}: delta is (B, C, H, W) with C = {layer.channels}, got shape {a.shape}")
        b, c, h, w = a.shape
        return np.ascontiguousarray(a).reshape(b, layer.num, c // layer.num, h, w)
    if a.ndim != 2 or a.shape[1] != layer.inputs:
        raise ValueError(f"{what}: [detection] arrays are (B, {layer.inputs}) flat buffers, got shape {a.shape}")
    b = a.shape[0]
    loc, n, cls, co = layer.side * layer.side, layer.num, layer.classes, layer.coords
    classes = a[:, :loc * cls].reshape(b, loc, cls)
    conf = a[:, loc * cls:loc * (cls + n)].reshape(b, loc, n)
    boxes = a[:, loc * (cls + n):].reshape(b, loc, n * co)
    cells = np.concatenate([classes, conf, boxes], axis=2)  # (B, loc, per)
    return np.ascontiguousarray(cells.transpose(0, 2, 1)).reshape(b, 1, cells.shape[2], layer.side, layer.side)


# ---- golden export: params, drawing, running, arrays --------------------------------------------------

def case_params(layer: Any, *, w: int, h: int, batch: int, net_w: int = 0, net_h: int = 0,
                net_index: int = 0) -> Dict[str, Any]:
    """A case's ``params`` in the more-layers format: ``kwargs`` (the cfg
    options, parsed), ``map``, ``batch``, the grid and the network."""
    kw = layer.params()
    cmap = kw.pop("map", None)
    if layer.kind == "detection":
        w = h = layer.side
    return dict(kwargs=kw, map=cmap, batch=batch, w=w, h=h, net_w=net_w, net_h=net_h, net_index=net_index,
                forwards=1)


def _inside(v: float, size: int) -> float:
    f = np.float32(v)
    while np.float32(f * np.float32(size)) >= size:
        f = np.nextafter(f, np.float32(0))
    return float(f)


def draw(layer: Any, params: Dict[str, Any], rng: np.random.Generator, profile: str) -> Dict[str, Any]:
    """An input and truths the oracle accepts (golden.draw_case for these kinds):
    ``realistic``: N(0, 1) logits ([region]) or uniform [0, 1) outputs
    ([detection]), a few ordinary boxes, seen past the prior/random phase;
    ``stress`` (and half of ``all``): larger magnitudes, tiny/huge boxes,
    out-of-range and fractional class ids, an x == 0 row mid-list, no
    truths, seen before 12800 / 64000, soft labels, is_obj 0.6."""
    stress = profile == "stress" or (profile == "all" and rng.random() < 0.5)
    b = int(params["batch"])
    tags = [f"batch_{b}", f"profile_{profile}"] + (["stress"] if stress else [])
    if layer.kind == "region_ab":
        w, h = int(params["w"]), int(params["h"])
        mag = float(rng.choice([1.0, 4.0, 20.0])) if stress else 1.0
        x = (rng.standard_normal((b, layer.channels, h, w)) * mag).astype(np.float32)
        truth = np.zeros((b, layer.max_boxes, 6), np.float32)
        for bi in range(b):
            k = int(rng.integers(0 if stress else 1, min(layer.max_boxes, 10) + 1)) if layer.max_boxes else 0
            for t in range(k):
                cx, cy = rng.uniform(0.01, 0.99, 2)
                bw, bh = rng.uniform(0.02, 0.8, 2)
                cls = float(rng.integers(0, layer.classes))
                if stress:
                    u = rng.random()
                    if u < 0.1:
                        bw, bh, tag = bw * 1e-3, bh * 1e-3, "tiny_box"
                    elif u < 0.2:
                        bw, bh, tag = 1.2 + bw, 1.1 + bh, "huge_box"
                    elif u < 0.3:
                        cls, tag = float(layer.classes + int(rng.integers(0, 2))), "class_id_out_of_range"
                    elif u < 0.4:
                        cls, tag = cls + 0.7, "fractional_class_id"
                    else:
                        tag = ""
                    if tag:
                        tags.append(tag)
                truth[bi, t] = (_inside(cx, w), _inside(cy, h), bw, bh, cls, float(rng.integers(0, 4)))
            if stress and k > 2 and rng.random() < 0.3:
                truth[bi, int(rng.integers(1, k - 1)), 0] = 0
                tags.append("x0_terminator_mid")
        seen = int(rng.choice([0, 12799, 12800])) if stress else 64000
        tags.append("seen_lt_12800" if seen < 12800 else "seen_ge_12800")
    else:
        loc = layer.side * layer.side
        if stress:
            x = (rng.uniform(-1, 1, (b, layer.inputs)) * float(rng.choice([1.0, 4.0]))).astype(np.float32)
        else:
            x = rng.uniform(0, 1, (b, layer.inputs)).astype(np.float32)
        truth = np.zeros((b, loc, 1 + layer.classes + layer.coords), np.float32)
        p = float(rng.choice([0.0, 0.3, 1.0])) if stress else 0.3
        for bi in range(b):
            for i in range(loc):
                if rng.random() >= p:
                    continue
                truth[bi, i, 0] = 0.6 if stress and rng.random() < 0.1 else 1.0
                if stress and rng.random() < 0.2:
                    truth[bi, i, 1:1 + layer.classes] = rng.random(layer.classes)
                    tags.append("soft_class_labels")
                else:
                    truth[bi, i, 1 + int(rng.integers(0, layer.classes))] = 1
                truth[bi, i, 1 + layer.classes:5 + layer.classes] = (rng.random(), rng.random(),
                                                                     rng.uniform(0.02, 1), rng.uniform(0.02, 1))
        seen = int(rng.choice([0, 63999, 64000])) if stress else 64000
        if layer.random:
            tags.append("random_lt_64000" if seen < 64000 else "random_ge_64000")
    return {"x": x, "truth": truth, "train": True, "seen": seen, "tags": sorted(set(tags))}


def run(layer: Any, params: Dict[str, Any], drawn: Dict[str, Any]) -> Any:
    """The oracle on a drawn case: a fresh layer (detection: srand(0)), ``forwards`` forwards."""
    fresh = type(layer)(**layer.params())
    res = None
    for _ in range(int(params.get("forwards", 1))):
        res = fresh.forward(drawn["x"], drawn["truth"], seen=drawn["seen"], train=drawn["train"],
                            index=params.get("net_index", 0))
    return res


def arrays(res: Any) -> Dict[str, Any]:
    """The kind-specific keys of a case file (the shared more-layers format)."""
    stats = res.stats
    return dict(count=np.int64(res.count), text=np.array(res.text),
                line=np.array(stats.line() if stats is not None else ""),
                stats_names=np.array(json.dumps(list(stats.names) if stats is not None else [])))

"""Truth rows placed elsewhere than upstream places them: the world that placement gives, replayed with upstream's arithmetic."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from .... import _native
from ..evidence import Evidence
from ..model import F, Array, box_delta_of_row, box_matches, class_of


def placed(arr: Array, b: int, t: int, j: int, i: int, anchors: Sequence[int]) -> Optional[int]:
    """The anchor among `anchors` at cell (j, i) where the implementation's
    box deltas are those of truth row t, or None."""
    ev = arr.ev
    assert ev is not None
    for k in anchors:
        if box_matches(arr, b, k, j, i, box_delta_of_row(ev, b, k, t, j, i)):
            return k
    return None


Where = Callable[[int, int], Optional[Tuple[int, int, List[int]]]]


def world(ev: Evidence, where: Where) -> Tuple[np.ndarray, Dict[Tuple[int, int, int, int], Set[int]],
                                                 Dict[Tuple[int, int, int, int], List[int]]]:
    """The world where every row read goes where `where` sends it (its
    first anchor): the cells whose list of truths differs from upstream's,
    the rows involved, and ([yolo]) each cell's list of truths in it."""
    read = (ev.rec["row_status"] == _native.lib.DN_ROW_READ) & (ev.rec["best_anchor"] >= 0)
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = defaultdict(set)
    world: Dict[Tuple[int, int, int, int], List[int]] = defaultdict(list)
    if ev.kind == "region":
        # [region]'s anchor depends on the prediction at the cell: every
        # anchor of a cell a row moves to may change.
        for b, t in np.argwhere(read):
            b, t = int(b), int(t)
            alt = where(b, t)
            if alt is None:
                continue
            a = int(ev.row_anchor[b, t])
            j, i = (int(v) for v in ev.row_cell[b, t])
            cells[b, :, alt[0], alt[1]] = True
            cells[b, a, j, i] = True
            for k in range(cells.shape[1]):
                who[(b, k, alt[0], alt[1])].add(t)
            who[(b, a, j, i)].add(t)
        return cells, who, world
    for b, t in np.argwhere(read):
        b, t = int(b), int(t)
        alt = where(b, t)
        if alt is None:
            a = int(ev.row_anchor[b, t])
            if a >= 0:
                j, i = (int(v) for v in ev.row_cell[b, t])
                world[(b, a, j, i)].append(t)
        elif alt[2]:
            world[(b, alt[2][0], alt[0], alt[1])].append(t)
    for c in set(world) | set(ev.assigned):
        if world.get(c, []) != ev.assigned.get(c, []):
            cells[c] = True
            who[c].update(world.get(c, []) + ev.assigned.get(c, []))
    return cells, who, world


def predicted(arr: Array, c: Tuple[int, int, int, int], rows: List[int]) -> Optional[np.ndarray]:
    """[yolo]: the deltas upstream's arithmetic writes at cell c when these
    truth rows land there in this order: the last one's box and objectness,
    every one's class at 1 - p (the short-circuit), the rest -p; with no
    truth, objectness -p (0 where the ignore test holds) and nothing else.
    At a cell the truth_thresh branch writes first (loop 1: the best
    truth's box, objectness 1 - p and class vector), the rows then overwrite
    the box and add their classes (delta_yolo_class's short-circuit)."""
    ev = arr.ev
    assert ev is not None
    b, a, j, i = c
    co = arr.coords
    y = ev.Y[b, a, :, j, i].astype(np.float64)
    out = np.zeros(arr.E.shape[2])
    if ev.thresh_cells is not None and ev.thresh_cells[c]:
        if ev.kind != "yolo":
            return None
        best = int(ev.rec["best_truth"][c])
        if best < 0:
            return None
        out[:4] = box_delta_of_row(ev, b, a, rows[-1] if rows else best, j, i)
        out[co] = 1 - y[co]
        out[co + 1:] = _class_deltas(ev.Y[b, a, co + 1:, j, i], [class_of(ev, b, r) for r in [best] + list(rows)])
        return out
    if rows:
        out[:4] = box_delta_of_row(ev, b, a, rows[-1], j, i)
        out[co] = 1 - y[co]
        out[co + 1:] = _class_deltas(ev.Y[b, a, co + 1:, j, i], [class_of(ev, b, r) for r in rows])
    else:
        out[co] = 0.0 if ev.rec["best_iou"][c] > ev.ignore else -y[co]
    return out


def _class_deltas(y: np.ndarray, classes: List[int]) -> np.ndarray:
    """delta_yolo_class called for each class in turn on one cell, in float32:
    the first writes the whole vector (t - p); a later one only its own
    class's 1 - p, when the first class entry's delta is non-zero (the
    short-circuit tests that entry: where it is exactly 0, e.g. class 0
    positive with p rounded to 1, the next truth writes the whole vector)."""
    F32 = np.float32
    d = np.zeros(y.shape, F32)
    for k in classes:
        if d[0] != 0:
            d[k] = F32(1) - y[k]
        else:
            t = np.zeros(y.shape, F32)
            t[k] = 1
            d = (t - y.astype(F32)).astype(F32)
    return d.astype(np.float64)


def fits(arr: Array, c: Tuple[int, int, int, int], pred: np.ndarray) -> bool:
    b, a, j, i = c
    got = arr.a64_cell(b, a, j, i)
    return bool(np.all(np.abs(got - pred) <= 1e-4 * np.abs(pred) + 4 * arr.bound_cell(b, a, j, i) + 1e-30))


def moved_rows(arr: Array, where: Where) -> Tuple[np.ndarray, Dict[Tuple[int, int, int, int], Set[int]]]:
    """Cells of the rows the implementation placed elsewhere than upstream:
    `where(b, t)` gives the cell and candidate anchors of row t's
    alternative placement (or None).  [yolo]: the cells whose values are
    exactly what upstream's arithmetic writes with the truths placed so
    (box, objectness and classes); [region]: where some row's box deltas
    show at its alternative place, every cell the departure changes."""
    ev = arr.ev
    assert ev is not None
    changed, who, world_ = world(ev, where)
    if ev.kind == "yolo":
        # Every cell the departure changes must show it: a cell where it
        # predicts other values but the implementation has upstream's
        # refutes it for the rows in that cell (a later truth moving away
        # from a cell shared with an earlier one looks like first-truth-wins
        # on its own); cells of other rows still count.
        fit = np.zeros_like(changed)
        failing = arr.fail.any(axis=2)
        refuted: Set[Tuple[int, int]] = set()
        for c in map(tuple, np.argwhere(changed)):
            c = tuple(int(v) for v in c)
            pred = predicted(arr, c, world_.get(c, []))  # type: ignore[arg-type]
            if pred is None:
                continue
            if not failing[c]:
                b, a, j, i = c  # type: ignore[misc]
                e = arr.e64_cell(b, a, j, i)
                if not np.all(np.abs(e - pred) <= 1e-4 * np.abs(pred) + 4 * arr.bound_cell(b, a, j, i) + 1e-30):
                    refuted.update((b, t) for t in who.get(c, ()))  # type: ignore[arg-type]
                continue
            fit[c] = fits(arr, c, pred)  # type: ignore[arg-type]
        for c in map(tuple, np.argwhere(fit)):
            c = tuple(int(v) for v in c)
            if any((c[0], t) in refuted for t in who.get(c, ())):  # type: ignore[arg-type]
                fit[c] = False
        return fit, who
    read = (ev.rec["row_status"] == _native.lib.DN_ROW_READ) & (ev.rec["best_anchor"] >= 0)
    for b, t in np.argwhere(read):
        alt = where(int(b), int(t))
        if alt is not None and placed(arr, int(b), int(t), alt[0], alt[1], alt[2]) is not None:
            return changed, who
    return np.zeros_like(changed), {}


# ---- [region]: the world a moved row makes, every entry of the cells it changes -----------------

def region_anchor(ev: Evidence, b: int, t: int, j: int, i: int) -> int:
    """[region]'s best anchor for truth row t at cell (j, i): the anchor
    whose predicted box there (its anchor shape with bias_match), centred,
    has the best IoU with the truth's shape (first strict maximum from 0),
    with upstream's float32 box_iou."""
    n = ev.Y.shape[1]
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    bias = np.asarray(ev.layer.anchors, F)
    if ev.layer.bias_match:
        pw = (bias[0:2 * n:2] / F(W)).astype(F)
        ph = (bias[1:2 * n:2] / F(H)).astype(F)
    else:
        with np.errstate(over="ignore"):
            pw = (np.exp(ev.X[b, :, 2, j, i].astype(np.float64)) * bias[0:2 * n:2] / W).astype(F)
            ph = (np.exp(ev.X[b, :, 3, j, i].astype(np.float64)) * bias[1:2 * n:2] / H).astype(F)
    row = ev.truth[b, t]
    pred = np.zeros((n, 4), F)
    pred[:, 2], pred[:, 3] = pw, ph
    truth = np.zeros((n, 4), F)
    truth[:, 2], truth[:, 3] = row[2], row[3]
    iou = _native.box_rows("iou", pred, truth)
    best, k = F(0), 0
    for m in range(n):
        if iou[m] > best:
            best, k = iou[m], m
    return k


def region_prior(ev: Evidence, b: int, a: int, j: int, i: int) -> np.ndarray:
    """[region]'s prior box deltas at a cell (seen < 12800): a truth at the
    cell centre, (i + .5)/W in double stored as float, of the anchor's
    shape biases/W, with scale .01."""
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    bias = ev.layer.anchors
    tx, ty = F((i + .5) / W), F((j + .5) / H)
    tw, th = F(F(bias[2 * a]) / F(W)), F(F(bias[2 * a + 1]) / F(H))
    with np.errstate(divide="ignore"):
        t4 = (F(tx * F(W) - F(i)), F(ty * F(H) - F(j)),
              F(np.log(np.float64(F(F(tw * F(W)) / F(bias[2 * a]))))),
              F(np.log(np.float64(F(F(th * F(H)) / F(bias[2 * a + 1]))))))
    v = (ev.Y[b, a, 0, j, i], ev.Y[b, a, 1, j, i], ev.X[b, a, 2, j, i], ev.X[b, a, 3, j, i])
    return np.array([F(F(.01) * F(tk - vk)) for tk, vk in zip(t4, v)], np.float64)


def region_predicted(arr: Array, c: Tuple[int, int, int, int], rows: List[int]) -> np.ndarray:
    """[region]: every entry upstream's arithmetic writes at cell c when
    these truth rows land there in this order (the last one's box and
    objectness; classes with the short-circuit unless softmax); with none,
    the negative objectness (0 where the ignore test holds), the prior's box
    deltas while seen < 12800, no class delta."""
    ev = arr.ev
    assert ev is not None
    b, a, j, i = c
    lay = ev.layer
    co = arr.coords
    y = ev.Y[b, a, :, j, i].astype(np.float64)
    out = np.zeros(arr.E.shape[2])
    if not rows:
        o = 0.0 if ev.rec["best_iou"][c] > lay.thresh else lay.noobject_scale * ((1.0 if lay.background else 0.0)
                                                                                  - y[co])
        out[co] = o
        if ev.seen < 12800:
            out[:4] = region_prior(ev, b, a, j, i)
        return out
    t = rows[-1]
    out[:4] = box_delta_of_row(ev, b, a, t, j, i)
    if lay.background:
        out[co] = lay.object_scale * (0 - y[co])
    elif lay.rescore:
        H, W = ev.Y.shape[3], ev.Y.shape[4]
        with np.errstate(over="ignore"):
            pb = np.array([[(i + ev.Y[b, a, 0, j, i]) / F(W), (j + ev.Y[b, a, 1, j, i]) / F(H),
                            np.exp(np.float64(ev.X[b, a, 2, j, i])) * np.float64(lay.anchors[2 * a]) / W,
                            np.exp(np.float64(ev.X[b, a, 3, j, i])) * np.float64(lay.anchors[2 * a + 1]) / H]], F)
        iou = float(_native.box_rows("iou", pb, np.ascontiguousarray(ev.truth[b, t:t + 1, :4], F))[0])
        out[co] = lay.object_scale * (iou - y[co])
    else:
        out[co] = lay.object_scale * (1 - y[co])
    k0 = co + 1
    cls = np.zeros(arr.E.shape[2] - k0)
    if lay.softmax:
        cls[class_of(ev, b, t)] = 1
    else:
        for r in rows:
            cls[class_of(ev, b, r)] = 1
    out[k0:] = lay.class_scale * (cls - y[k0:])
    return out


def region_moved(arr: Array, where: Where) -> Tuple[np.ndarray, Dict[Tuple[int, int, int, int], Set[int]]]:
    """[region]: the elements of the cells a departure changes whose values
    are what upstream's arithmetic writes in the world where each row read
    goes where ``where`` sends it (to its best anchor there)."""
    ev = arr.ev
    assert ev is not None
    read = (ev.rec["row_status"] == _native.lib.DN_ROW_READ) & (ev.rec["best_anchor"] >= 0)
    world_: Dict[Tuple[int, int, int, int], List[int]] = defaultdict(list)
    for b, t in np.argwhere(read):
        b, t = int(b), int(t)
        alt = where(b, t)
        if alt is None:
            j, i = (int(v) for v in ev.row_cell[b, t])
            world_[(b, int(ev.row_anchor[b, t]), j, i)].append(t)
        else:
            world_[(b, region_anchor(ev, b, t, alt[0], alt[1]), alt[0], alt[1])].append(t)
    mask = np.zeros(arr.E.shape, bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = defaultdict(set)
    for c in set(world_) | set(ev.assigned):
        if world_.get(c, []) == ev.assigned.get(c, []):
            continue
        b, a, j, i = c
        pred = region_predicted(arr, c, world_.get(c, []))
        got = arr.a64_cell(b, a, j, i)
        ok = np.abs(got - pred) <= 1e-4 * np.abs(pred) + 4 * arr.bound_cell(b, a, j, i) + 1e-30
        mask[b, a, :, j, i] = ok & arr.fail[b, a, :, j, i]
        if mask[b, a, :, j, i].any():
            who[c].update(world_.get(c, []) + ev.assigned.get(c, []))
    return mask, who

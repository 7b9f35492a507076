"""box_loss: another box loss than darknet's: for pjreddie's layers an
IoU-family loss where darknet uses squared error on (tx, ty, tw, th); for
AlexeyAB's lineage the box deltas of another iou_loss (MSE against the IoU
family, or another IoU kind)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..model import Array, CauseSpec, Claim, cells_of, cells_str
from ._ab_replay import composed_box, composed_text, entries_named, replayed

KINDS = ("iou", "giou", "diou", "ciou")
AB_KINDS = ("mse", "iou", "giou", "diou", "ciou")


def _iou_family(p: np.ndarray, t: np.ndarray, kind: str) -> np.ndarray:
    """1 - IoU (GIoU, DIoU, CIoU) of boxes (x, y, w, h) in rows, float64."""
    px1, px2, py1, py2 = p[:, 0] - p[:, 2] / 2, p[:, 0] + p[:, 2] / 2, p[:, 1] - p[:, 3] / 2, p[:, 1] + p[:, 3] / 2
    tx1, tx2, ty1, ty2 = t[:, 0] - t[:, 2] / 2, t[:, 0] + t[:, 2] / 2, t[:, 1] - t[:, 3] / 2, t[:, 1] + t[:, 3] / 2
    iw = np.clip(np.minimum(px2, tx2) - np.maximum(px1, tx1), 0, None)
    ih = np.clip(np.minimum(py2, ty2) - np.maximum(py1, ty1), 0, None)
    inter = iw * ih
    union = p[:, 2] * p[:, 3] + t[:, 2] * t[:, 3] - inter
    iou = inter / union
    cw = np.maximum(px2, tx2) - np.minimum(px1, tx1)
    ch = np.maximum(py2, ty2) - np.minimum(py1, ty1)
    if kind == "iou":
        return 1 - iou
    if kind == "giou":
        c = cw * ch
        return 1 - (iou - (c - union) / c)
    rho2 = (p[:, 0] - t[:, 0]) ** 2 + (p[:, 1] - t[:, 1]) ** 2
    diou = iou - rho2 / (cw ** 2 + ch ** 2)
    if kind == "diou":
        return 1 - diou
    v = 4 / np.pi ** 2 * (np.arctan(t[:, 2] / t[:, 3]) - np.arctan(p[:, 2] / p[:, 3])) ** 2
    alpha = v / ((1 - iou) + v)
    return 1 - (diou - alpha * v)


def _minus_gradient(raw: np.ndarray, i: np.ndarray, j: np.ndarray, aw: np.ndarray, ah: np.ndarray,
                    truth: np.ndarray, W: int, H: int, kind: str) -> np.ndarray:
    """-(d loss / d raw) at the raw logits (tx, ty, tw, th), through the
    logistic (x, y) and exp (w, h) of the predicted box, by central
    differences in float64 (K, 4)."""
    def loss(r: np.ndarray) -> np.ndarray:
        box = np.stack([(i + 1 / (1 + np.exp(-r[:, 0]))) / W, (j + 1 / (1 + np.exp(-r[:, 1]))) / H,
                        np.exp(r[:, 2]) * aw, np.exp(r[:, 3]) * ah], axis=1)
        return _iou_family(box, truth, kind)

    g = np.zeros_like(raw)
    eps = 1e-6
    with np.errstate(all="ignore"):
        for k in range(4):
            up, dn = raw.copy(), raw.copy()
            up[:, k] += eps
            dn[:, k] -= eps
            g[:, k] = (loss(up) - loss(dn)) / (2 * eps)
    return -g


def _pjreddie_box_loss(arr: Array) -> Optional[Claim]:
    """At cells given one truth: the implementation's box deltas are minus
    the gradient of 1 - IoU (GIoU, DIoU or CIoU) of darknet's predicted box
    with the truth, at the raw logits, times 1 or darknet's 2 - w*h."""
    ev = arr.ev
    if ev is None or ev.kind not in ("yolo", "region"):
        return None
    cells = {c: rows for c, rows in ev.assigned.items() if len(rows) == 1 and arr.fail[c[0], c[1], :4, c[2], c[3]].any()}
    if not cells:
        return None
    keys = list(cells)
    b, a, j, i = (np.array(v) for v in zip(*keys))
    t = np.array([cells[c][-1] for c in keys])
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    bias = np.asarray(ev.layer.anchors, np.float64)
    if ev.kind == "yolo":
        m = np.asarray(ev.layer.mask)[a]
        aw, ah = bias[2 * m] / ev.net_w, bias[2 * m + 1] / ev.net_h
    else:
        aw, ah = bias[2 * a] / W, bias[2 * a + 1] / H
    raw = ev.X[b, a, :4, j, i].astype(np.float64)
    truth = ev.truth[b, t, :4].astype(np.float64)
    A = arr.a64_ix((b, a, slice(0, 4), j, i))
    wh = 2 - truth[:, 2] * truth[:, 3]
    best: Optional[Tuple[int, np.ndarray, Dict[str, object]]] = None
    for kind in KINDS:
        g = _minus_gradient(raw, i, j, aw, ah, truth, W, H, kind)
        for scaled in (False, True):
            pred = g * (wh[:, None] if scaled else 1.0)
            ok = (np.abs(A - pred) <= 1e-3 * np.abs(pred) + 1e-6).all(axis=1)
            n = int(ok.sum())
            if n and (best is None or n > best[0]):
                best = (n, ok, {"loss": kind, "scaled": scaled})
    if best is None:
        return None
    _, ok, detail = best
    mask = np.zeros(arr.E.shape, bool)
    mask[b[ok], a[ok], :4, j[ok], i[ok]] = True
    mask &= arr.fail

    def say(sel: np.ndarray) -> str:
        kind = str(detail["loss"]).upper()
        return (f"at {cells_str(ev, cells_of(sel))} the implementation's box deltas are minus the gradient of "
                f"1 - {kind} of the predicted box with its truth (at the raw logits"
                + (", times 2 - w*h" if detail["scaled"] else "") + "); this darknet's box delta is a squared "
                "error on (tx, ty, tw, th), scale*(t - x) with t = x*W - i (after the logistic for x, y) and "
                "log(w*net_w/anchor). Use the squared error (an IoU-family box loss is AlexeyAB's iou_loss=).")
    return Claim(mask, say=say, detail=detail)


def _alexeyab_box_loss(arr: Array) -> Optional[Claim]:
    """The iou_loss whose replay reproduces the most failing box elements."""
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab":
        return None
    mine = getattr(arr.layer, "iou_loss", None)
    best, best_m = None, None
    for kind in AB_KINDS:
        if kind == mine:
            continue
        m = replayed(arr, iou_loss=kind)
        if m is None:
            continue
        # four box deltas of 0 are what an unassigned cell has too (and the
        # IoU loss's gradient where the boxes do not overlap): they tell no loss
        unassigned = (arr.A64[:, :, :4] == 0).all(axis=2)
        m = m & arr.role_mask([0, 1, 2, 3]) & ~unassigned[:, :, None]
        if m.any() and (best_m is None or m.sum() > best_m.sum()):
            best, best_m = kind, m

    def say(sel):
        how = ("the MSE form scale*(t - x)*iou_normalizer on the activated x, y and raw w, h" if best == "mse" else
               f"the {best.upper()} gradient (box.c dx_box_iou, w and h times exp, times iou_normalizer, NaN "
               "zeroed, clipped to max_delta)")
        return (f"{int(sel.sum())} box deltas are darknet's with iou_loss = {best} where the layer says {mine}: "
                f"{how}. Use the cfg's iou_loss.")

    comp = composed_box(arr)
    if comp is not None and "box_loss" in comp["names"] and comp["masks"]["box_loss"].any():
        own = comp["masks"]["box_loss"]
        single = best_m

        def say_both(sel: np.ndarray) -> str:
            parts = []
            if single is not None and (sel & single).any():
                parts.append(say(sel & single))
            got = sel & own
            if got.any():
                parts.append(f"{int(got.sum())} " + composed_text(arr, comp, "box_loss").format(
                    n=entries_named(arr, got)))
            return " ".join(parts)
        return Claim(own if single is None else (own | single), say=say_both,
                     detail={"iou_loss": best if single is not None else comp["changes"]["iou_loss"],
                             "with": tuple(n for n in comp["names"] if n != "box_loss")})
    if best_m is None:
        return None
    return Claim(best_m, say=say, detail={"iou_loss": best, "with": ()})


def box_loss(arr: Array) -> Optional[Claim]:
    """pjreddie's layers: an IoU-family gradient replayed on darknet's
    predicted box; AlexeyAB's: the layer replayed with another iou_loss."""
    ev = arr.ev
    if ev is not None and ev.kind == "yolo_ab":
        return _alexeyab_box_loss(arr)
    return _pjreddie_box_loss(arr)


CAUSE = CauseSpec(
    code="box_loss", stage="decision", model=box_loss, kinds=("yolo", "region", "yolo_ab"),
    parts=("box.x", "box.y", "box.w", "box.h"),
    summary="another box loss: for pjreddie's layers an IoU-family loss (IoU, GIoU, DIoU, CIoU) where darknet uses "
            "squared error on (tx, ty, tw, th); for AlexeyAB's, MSE against the IoU family, or another IoU kind",
    recognised="pjreddie: at a cell given one truth, your four box deltas are `−∂(1 − IoU-kind)/∂x` of darknet's "
               "predicted box at the raw logits (times 1 or `2 − w·h`); AlexeyAB: darknet's layer run with that "
               "`iou_loss` gives your box deltas")

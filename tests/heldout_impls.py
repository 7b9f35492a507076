"""A HELD-OUT set of mistaken re-implementations of pjreddie darknet's [yolo] and
[region] deltas, for testing the diagnosis on code it has never seen.

Written independently of ``pydarknet_loss.parity.mistakes`` and of the diagnosis
(neither was read to write this): one NumPy port of upstream's arithmetic
(pjreddie/darknet f6afaab, src/yolo_layer.c, src/region_layer.c CPU build with
coords=4 and no tree), written the way a PyTorch user writes a port: target
tensors, an assigned-cell mask, a negative mask and an ignore mask, the losses'
analytic gradients computed on whole arrays, and a Python loop over the truths
only to build the targets.  Each departure is a switch of the port; ``TABLE``
names the configurations, the inputs that make each departure show, and the
causes the diagnosis must name.

Upstream rules the correct port keeps (each named where it is coded):
x == 0 ends an image's truth list; the truth stride is 90 rows ([yolo]) or 30
([region]); [yolo] reads at most ``max_boxes`` rows; a truth's anchor is the best
over ALL anchors (IoU of the shapes), skipped when it is not in the mask; the
cell is ``(int)(x*W)`` with the product in float32; a later truth overwrites an
earlier one in a cell and anchor, while the class delta short-circuits; the
``truth_thresh`` branch assigns cells whose best IoU exceeds it; the box scale is
``2 - w*h``; [region]: while ``seen < 12800`` every cell is pulled to its anchor
with scale .01, the objectness target is the IoU under ``rescore``, softmax
classes have no short-circuit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import pydarknet_loss as pdl

F32 = np.float32
F64 = np.float64

YOLOV3_ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
VOC_ANCHORS = [1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52]


# --------------------------------------------------------------------------------------------
# The departures: one switch each.  Defaults are darknet's arithmetic.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dep:
    f64: bool = False                 # compute everything in float64 (a correct port, other rounding)
    # part weights (a constant factor on one part of the delta)
    box_w: float = 1.0                # x, y, w, h at assigned cells (x2: squared error without 1/2; lambda_coord)
    obj_pos_w: float = 1.0            # objectness at assigned cells
    obj_neg_w: float = 1.0            # objectness at negative cells (lambda_noobj)
    cls_w: float = 1.0                # classes at assigned cells
    # chain: a squared error on the activated output, differentiated through the logistic
    xy_chain: bool = False
    obj_chain: bool = False
    # other losses / targets
    softmax_ce: bool = False          # softmax cross-entropy where darknet has independent logistics
    class_offset: int = 0             # class ids off by this
    smooth_eps: float = 0.0           # label smoothing: targets onehot*(1-eps) + eps/classes
    smooth_bce: bool = False          # ... or ultralytics' smooth_BCE form: 1 - eps/2 and eps/2
    obj_target_iou: bool = False      # [yolo] assigned-cell objectness target = IoU
    giou: bool = False                # 1 - GIoU as the box loss, its gradient through the sigmoid (x, y) and exp
                                      # (w, h) to the raw logits, no 2 - w*h (central differences in float64)
    bce_on_probs: bool = False        # BCE on sigmoid outputs (torch.nn.BCELoss), objectness and classes
    # truth reading and assignment
    no_x0_stop: bool = False          # every row with w, h > 0 is a truth
    no_max_boxes: bool = False        # reads all 90 rows whatever max_boxes says
    round_cells: bool = False         # round(x*W) instead of (int)(x*W)
    anchor_in_mask: bool = False      # best anchor within the mask only
    first_wins: bool = False          # a second truth in an assigned cell and anchor is skipped
    no_short_circuit: bool = False    # the later truth writes a full one-hot
    no_box_scale: bool = False        # no 2 - w*h
    wh_grid: bool = False             # pixel anchors used as if in grid units in the w/h target
    ignore_ge: bool = False           # ignored when best IoU >= thresh (darknet: >)
    no_truth_thresh: bool = False     # the truth_thresh branch left out
    # global
    sign: bool = False                # gradient instead of delta
    batch_mean: bool = False          # divided by the batch size
    nhwc: bool = False                # the buffer in (B, H, W, C) memory order, handed on in (B, C, H, W) shape
    # [region]
    prior_scale: float = 0.01         # the seen < 12800 prior's scale
    no_prior: bool = False
    no_rescore: bool = False
    gpu_form: bool = False            # x, y and objectness times p(1-p) (darknet's GPU build's backward)


# --------------------------------------------------------------------------------------------
# Shared arithmetic, written to follow darknet's float/double steps when dt is float32
# --------------------------------------------------------------------------------------------
def logistic(x: np.ndarray, dt: Any) -> np.ndarray:
    # darknet: 1/(1+exp(-x)) in double, rounded once to float
    return (1.0 / (1.0 + np.exp(-x.astype(F64)))).astype(dt)


def softmax(x: np.ndarray, axis: int, dt: Any) -> np.ndarray:
    x = x.astype(F64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(dt)


def box_iou(ax, ay, aw, ah, bx, by, bw, bh, dt: Any) -> np.ndarray:
    """IoU of (center, size) boxes, the operations in box.c's order (broadcasting)."""
    two = dt(2)

    def overlap(x1, w1, x2, w2):
        left = np.maximum(x1 - w1 / two, x2 - w2 / two)
        right = np.minimum(x1 + w1 / two, x2 + w2 / two)
        return right - left

    ow = overlap(ax, aw, bx, bw)
    oh = overlap(ay, ah, by, bh)
    inter = np.where((ow < 0) | (oh < 0), dt(0), ow * oh)
    union = aw * ah + bw * bh - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return (inter / union).astype(dt)


def truth_rows(truth: Any, batch: int, stride: int) -> np.ndarray:
    """darknet's packed truth buffer (B, stride, 5) from a packed array or a list of (k, 5) arrays."""
    if isinstance(truth, (list, tuple)):
        out = np.zeros((batch, stride, 5), F32)
        for b, t in enumerate(truth):
            t = np.asarray(t, F32).reshape(-1, 5)
            out[b, :len(t)] = t
        return out
    return np.asarray(truth, F32).reshape(batch, stride, 5)


def used_rows(rows: np.ndarray, limit: int, dep: Dep) -> List[int]:
    """Indices of the rows darknet reads for one image (x == 0 ends the list)."""
    if dep.no_x0_stop:   # a common port: every row with a positive size is a box
        return [t for t in range(limit) if rows[t, 2] > 0 and rows[t, 3] > 0]
    out = []
    for t in range(limit):
        if rows[t, 0] == 0:
            break
        out.append(t)
    return out


def _cell(v: Any, n: int, dep: Dep) -> int:
    p = F32(v) * F32(n)
    return int(np.floor(p + F32(0.5))) if dep.round_cells else int(p)   # darknet: (int)(x*W)


def _finish(delta: np.ndarray, batch: int, dep: Dep) -> np.ndarray:
    """Global departures, and the (B, C, H, W) float32 array handed back."""
    if dep.batch_mean:
        delta = delta / delta.dtype.type(batch)
    if dep.sign:
        delta = -delta
    b, a, k, h, w = delta.shape
    out = delta.reshape(b, a * k, h, w).astype(F32)
    if dep.nhwc:   # permuted to (B, H, W, C), then handed on as if it were (B, C, H, W)
        out = np.ascontiguousarray(out.transpose(0, 2, 3, 1)).reshape(b, a * k, h, w)
    return out


def _giou_grad(raw: np.ndarray, gi: np.ndarray, gj: np.ndarray, aw: np.ndarray, ah: np.ndarray,
               tb: np.ndarray, W: int, H: int, nw: float, nh: float) -> np.ndarray:
    """-(d(1 - GIoU)/d raw) for rows of (tx, ty, tw, th) logits, central differences in float64."""
    def loss(r):
        px = (gi + 1 / (1 + np.exp(-r[:, 0]))) / W
        py = (gj + 1 / (1 + np.exp(-r[:, 1]))) / H
        pw = np.exp(r[:, 2]) * aw / nw
        ph = np.exp(r[:, 3]) * ah / nh
        x1, x2 = px - pw / 2, px + pw / 2
        y1, y2 = py - ph / 2, py + ph / 2
        t1, t2 = tb[:, 0] - tb[:, 2] / 2, tb[:, 0] + tb[:, 2] / 2
        u1, u2 = tb[:, 1] - tb[:, 3] / 2, tb[:, 1] + tb[:, 3] / 2
        iw = np.clip(np.minimum(x2, t2) - np.maximum(x1, t1), 0, None)
        ih = np.clip(np.minimum(y2, u2) - np.maximum(y1, u1), 0, None)
        inter = iw * ih
        union = pw * ph + tb[:, 2] * tb[:, 3] - inter
        cw = np.maximum(x2, t2) - np.minimum(x1, t1)
        ch = np.maximum(y2, u2) - np.minimum(y1, u1)
        c = cw * ch
        return 1 - (inter / union - (c - union) / c)

    raw = raw.astype(F64)
    g = np.zeros_like(raw)
    eps = 1e-6
    for k in range(4):
        up, dn = raw.copy(), raw.copy()
        up[:, k] += eps
        dn[:, k] -= eps
        g[:, k] = (loss(up) - loss(dn)) / (2 * eps)
    return -g


# --------------------------------------------------------------------------------------------
# [yolo]
# --------------------------------------------------------------------------------------------
def yolo_port(x: np.ndarray, truth: Any, layer: Any, net_w: int, net_h: int, dep: Dep = Dep()) -> np.ndarray:
    dt = F64 if dep.f64 else F32
    x = np.asarray(x, F32)
    B, C, H, W = x.shape
    A, nc = layer.n, layer.classes
    K = 5 + nc
    xv = x.reshape(B, A, K, H, W)
    p = logistic(xv, dt)                           # x, y, objectness, classes through the logistic
    bias = np.asarray(layer.anchors, F32).reshape(-1, 2)
    mask = [int(m) for m in layer.mask]
    cmap = None if layer.map is None else [int(v) for v in layer.map]
    rows_all = truth_rows(truth, B, 90)            # the stride is 90 rows whatever max_boxes says
    limit = 90 if dep.no_max_boxes else int(layer.max_boxes)
    gi = np.arange(W, dtype=dt)[None, None, :]
    gj = np.arange(H, dtype=dt)[None, :, None]

    raw_w, raw_h = xv[:, :, 2].astype(dt), xv[:, :, 3].astype(dt)
    aw = bias[mask, 0].astype(dt)[None, :, None, None]
    ah = bias[mask, 1].astype(dt)[None, :, None, None]
    # predicted boxes (B, A, H, W): exp in double, rounded to float (get_yolo_box)
    px = (gi + p[:, :, 0]) / dt(W)
    py = (gj + p[:, :, 1]) / dt(H)
    pw = (np.exp(raw_w.astype(F64)) * aw / net_w).astype(dt)
    ph = (np.exp(raw_h.astype(F64)) * ah / net_h).astype(dt)

    # target tensors
    tbox = np.zeros((B, A, H, W, 4), dt)
    ttruth = np.zeros((B, A, H, W, 4), dt)        # the assigned truth's box (x, y, w, h)
    tscale = np.zeros((B, A, H, W), dt)
    tanchor = np.zeros((B, A, H, W), np.int64)
    obj_mask = np.zeros((B, A, H, W), bool)
    tobj = np.ones((B, A, H, W), dt)
    tcls = np.zeros((B, A, H, W, nc), dt)
    cls_set = np.zeros((B, A, H, W), bool)
    noobj_mask = np.ones((B, A, H, W), bool)
    truths: List[List[int]] = []

    def class_of(row) -> int:
        c = int(row[4])                            # truncated, then mapped
        if cmap is not None:
            c = cmap[c]
        return (c + dep.class_offset) % nc

    def set_class(b, a, j, i, c):
        if cls_set[b, a, j, i] and not dep.no_short_circuit:
            tcls[b, a, j, i, c] = 1                # upstream's short-circuit: only this class is set
        else:
            tcls[b, a, j, i] = 0
            tcls[b, a, j, i, c] = 1
        cls_set[b, a, j, i] = True

    def set_box(b, a, j, i, row, anchor):
        tx = dt(row[0]) * dt(W) - dt(i)
        ty = dt(row[1]) * dt(H) - dt(j)
        gw = W if dep.wh_grid else net_w
        gh = H if dep.wh_grid else net_h
        tw = dt(np.log(F64(dt(row[2]) * dt(gw) / dt(bias[anchor, 0]))))
        th = dt(np.log(F64(dt(row[3]) * dt(gh) / dt(bias[anchor, 1]))))
        tbox[b, a, j, i] = (tx, ty, tw, th)
        ttruth[b, a, j, i] = row[:4]
        tscale[b, a, j, i] = dt(1) if dep.no_box_scale else dt(2) - dt(row[2]) * dt(row[3])
        tanchor[b, a, j, i] = anchor

    best_iou = np.zeros((B, A, H, W), dt)
    best_t = np.zeros((B, A, H, W), np.int64)
    for b in range(B):
        ts = used_rows(rows_all[b], limit, dep)
        truths.append(ts)
        if not ts:
            continue
        r = rows_all[b, ts].astype(dt)
        ious = box_iou(px[b][None], py[b][None], pw[b][None], ph[b][None],
                       r[:, 0, None, None, None], r[:, 1, None, None, None],
                       r[:, 2, None, None, None], r[:, 3, None, None, None], dt)
        ious = np.nan_to_num(ious, nan=0.0)
        k = np.argmax(ious, axis=0)                # the first truth of the largest IoU (strict >)
        best_iou[b] = np.take_along_axis(ious, k[None], 0)[0]
        best_t[b] = np.asarray(ts)[k]
    ig = dt(layer.ignore_thresh)
    ignored = best_iou >= ig if dep.ignore_ge else best_iou > ig
    noobj_mask &= ~ignored

    if not dep.no_truth_thresh:                    # the truth_thresh branch, cell by cell
        for b, a, j, i in zip(*np.nonzero(best_iou > dt(layer.truth_thresh))):
            row = rows_all[b, best_t[b, a, j, i]]
            obj_mask[b, a, j, i] = True
            noobj_mask[b, a, j, i] = False
            set_class(b, a, j, i, class_of(row))
            set_box(b, a, j, i, row, mask[a])

    # each truth: the best anchor over ALL anchors (shapes only), skipped when not in the mask
    sw = (bias[:, 0] / F32(net_w)).astype(dt)
    sh = (bias[:, 1] / F32(net_h)).astype(dt)
    for b in range(B):
        for t in truths[b]:
            row = rows_all[b, t]
            z = np.zeros_like(sw)
            ious = box_iou(z, z, sw, sh, z, z, dt(row[2]), dt(row[3]), dt)
            cand = mask if dep.anchor_in_mask else list(range(len(bias)))
            best_n, best = 0 if not dep.anchor_in_mask else mask[0], dt(0)
            for n in cand:
                if ious[n] > best:
                    best, best_n = ious[n], n
            if best_n not in mask:
                continue
            a = mask.index(best_n)
            i, j = _cell(row[0], W, dep), _cell(row[1], H, dep)
            if dep.first_wins and obj_mask[b, a, j, i]:
                continue
            obj_mask[b, a, j, i] = True
            noobj_mask[b, a, j, i] = False
            set_box(b, a, j, i, row, best_n)
            set_class(b, a, j, i, class_of(row))

    # the deltas, on whole arrays
    delta = np.zeros((B, A, K, H, W), dt)
    pobj = p[:, :, 4]
    out_box = np.stack([p[:, :, 0], p[:, :, 1], raw_w, raw_h], axis=-1)       # (B, A, H, W, 4)
    box_d = tscale[..., None] * (tbox - out_box)
    if dep.giou:
        idx = np.nonzero(obj_mask)
        aidx = tanchor[idx]
        rb = np.stack([xv[:, :, e][idx] for e in range(4)], axis=-1)
        g = _giou_grad(rb, idx[3].astype(F64), idx[2].astype(F64), bias[aidx, 0].astype(F64),
                       bias[aidx, 1].astype(F64), ttruth[idx].astype(F64), W, H, net_w, net_h)
        box_d = np.zeros_like(box_d)
        box_d[idx] = g.astype(dt)
    if dep.xy_chain:
        box_d[..., 0] *= p[:, :, 0] * (1 - p[:, :, 0])
        box_d[..., 1] *= p[:, :, 1] * (1 - p[:, :, 1])
    box_d = np.where(obj_mask[..., None], box_d * dt(dep.box_w), dt(0))
    for e in range(4):
        delta[:, :, e] = box_d[..., e]

    if dep.obj_target_iou:   # the IoU of the prediction with its truth, detached (as [region]'s rescore)
        iou_pred = box_iou(px, py, pw, ph, ttruth[..., 0], ttruth[..., 1], ttruth[..., 2], ttruth[..., 3], dt)
        tobj = np.where(obj_mask, np.nan_to_num(iou_pred), tobj)
    if dep.bce_on_probs:
        def bce(pp, t):   # torch.nn.BCELoss on sigmoid outputs, through the sigmoid's backward
            d = pp * (dt(1) - pp)
            return -((pp - t) / np.maximum(d, dt(1e-12)) * d)
    else:
        def bce(pp, t):
            return t - pp
    obj_d = np.where(obj_mask, bce(pobj, tobj) * dt(dep.obj_pos_w),
                     np.where(noobj_mask, bce(pobj, dt(0)) * dt(dep.obj_neg_w), dt(0)))
    if dep.obj_chain:
        obj_d = obj_d * (pobj * (dt(1) - pobj))
    delta[:, :, 4] = obj_d

    tc = np.moveaxis(tcls, -1, 2)                  # (B, A, nc, H, W)
    if dep.smooth_eps and dep.smooth_bce:
        tc = np.where(tc > 0, dt(1 - dep.smooth_eps / 2), dt(dep.smooth_eps / 2))
    elif dep.smooth_eps:
        tc = tc * dt(1 - dep.smooth_eps) + dt(dep.smooth_eps / nc)
    pc = softmax(xv[:, :, 5:], 2, dt) if dep.softmax_ce else p[:, :, 5:]
    cls_d = bce(pc, tc) * dt(dep.cls_w)
    delta[:, :, 5:] = np.where(cls_set[:, :, None], cls_d, dt(0))
    return _finish(delta, B, dep)


# --------------------------------------------------------------------------------------------
# [region] (CPU build, coords=4, no tree)
# --------------------------------------------------------------------------------------------
def region_port(x: np.ndarray, truth: Any, layer: Any, net_w: int, net_h: int, seen: int,
                dep: Dep = Dep()) -> np.ndarray:
    dt = F64 if dep.f64 else F32
    x = np.asarray(x, F32)
    B, C, H, W = x.shape
    A, nc = layer.n, layer.classes
    K = 5 + nc
    xv = x.reshape(B, A, K, H, W)
    p = logistic(xv, dt)
    pc = softmax(xv[:, :, 5:], 2, dt) if layer.softmax else p[:, :, 5:]
    bias = np.asarray(layer.anchors, F32).reshape(-1, 2)
    cmap = None if layer.map is None else [int(v) for v in layer.map]
    rows_all = truth_rows(truth, B, 30)            # all 30 rows are read, whatever max says
    gi = np.arange(W, dtype=dt)[None, None, :]
    gj = np.arange(H, dtype=dt)[None, :, None]
    raw_w, raw_h = xv[:, :, 2].astype(dt), xv[:, :, 3].astype(dt)
    aw = bias[:, 0].astype(dt)[None, :, None, None]
    ah = bias[:, 1].astype(dt)[None, :, None, None]
    px = (gi + p[:, :, 0]) / dt(W)
    py = (gj + p[:, :, 1]) / dt(H)
    pw = (np.exp(raw_w.astype(F64)) * aw / W).astype(dt)      # anchors in grid cells
    ph = (np.exp(raw_h.astype(F64)) * ah / H).astype(dt)

    best_iou = np.zeros((B, A, H, W), dt)
    truths = []
    for b in range(B):
        ts = used_rows(rows_all[b], 30, dep)
        truths.append(ts)
        if ts:
            r = rows_all[b, ts].astype(dt)
            ious = box_iou(px[b][None], py[b][None], pw[b][None], ph[b][None],
                           r[:, 0, None, None, None], r[:, 1, None, None, None],
                           r[:, 2, None, None, None], r[:, 3, None, None, None], dt)
            best_iou[b] = np.nan_to_num(ious, nan=0.0).max(axis=0)
    noobj_mask = ~(best_iou > dt(layer.thresh))

    # the prior while seen < 12800: every cell pulled to its anchor's box at the cell's centre
    prior_box = np.zeros((B, A, H, W, 4), dt)
    if seen < 12800 and not dep.no_prior:
        cx = ((np.arange(W) + .5) / W).astype(dt)[None, None, None, :]   # (i + .5)/w in double, to float
        cy = ((np.arange(H) + .5) / H).astype(dt)[None, None, :, None]
        bw = (bias[:, 0] / F32(W)).astype(dt)[None, :, None, None]
        bh = (bias[:, 1] / F32(H)).astype(dt)[None, :, None, None]
        ptx = cx * dt(W) - gi
        pty = cy * dt(H) - gj
        ptw = np.log((bw * dt(W) / aw).astype(F64)).astype(dt)
        pth = np.log((bh * dt(H) / ah).astype(F64)).astype(dt)
        s = dt(dep.prior_scale)
        prior_box[..., 0] = s * (ptx - p[:, :, 0])
        prior_box[..., 1] = s * (pty - p[:, :, 1])
        prior_box[..., 2] = s * (ptw - raw_w)
        prior_box[..., 3] = s * (pth - raw_h)

    obj_mask = np.zeros((B, A, H, W), bool)
    tbox = np.zeros((B, A, H, W, 4), dt)
    tscale = np.zeros((B, A, H, W), dt)
    tobj = np.zeros((B, A, H, W), dt)
    tcls = np.zeros((B, A, H, W, nc), dt)
    cls_set = np.zeros((B, A, H, W), bool)
    sw = (bias[:, 0] / F32(W)).astype(dt)
    sh = (bias[:, 1] / F32(H)).astype(dt)
    for b in range(B):
        for t in truths[b]:
            row = rows_all[b, t]
            i, j = _cell(row[0], W, dep), _cell(row[1], H, dep)
            z = np.zeros_like(sw)
            if layer.bias_match:
                ious = box_iou(z, z, sw, sh, z, z, dt(row[2]), dt(row[3]), dt)
            else:
                ious = box_iou(z, z, pw[b, :, j, i], ph[b, :, j, i], z, z, dt(row[2]), dt(row[3]), dt)
            best_n, best = 0, dt(0)
            for n in range(A):
                if ious[n] > best:
                    best, best_n = ious[n], n
            tx = dt(row[0]) * dt(W) - dt(i)
            ty = dt(row[1]) * dt(H) - dt(j)
            tw = dt(np.log(F64(dt(row[2]) * dt(W) / dt(bias[best_n, 0]))))
            th = dt(np.log(F64(dt(row[3]) * dt(H) / dt(bias[best_n, 1]))))
            tbox[b, best_n, j, i] = (tx, ty, tw, th)
            tscale[b, best_n, j, i] = dt(layer.coord_scale) * (dt(2) - dt(row[2]) * dt(row[3]))
            iou = box_iou(px[b, best_n, j, i], py[b, best_n, j, i], pw[b, best_n, j, i], ph[b, best_n, j, i],
                          dt(row[0]), dt(row[1]), dt(row[2]), dt(row[3]), dt)
            obj_mask[b, best_n, j, i] = True
            tobj[b, best_n, j, i] = iou if (layer.rescore and not dep.no_rescore) else dt(1)
            c = int(row[4])
            if cmap is not None:
                c = cmap[c]
            if cls_set[b, best_n, j, i] and not layer.softmax:
                tcls[b, best_n, j, i, c] = 1       # the flat short-circuit (off under softmax)
            else:
                tcls[b, best_n, j, i] = 0
                tcls[b, best_n, j, i, c] = 1
            cls_set[b, best_n, j, i] = True

    delta = np.zeros((B, A, K, H, W), dt)
    out_box = np.stack([p[:, :, 0], p[:, :, 1], raw_w, raw_h], axis=-1)
    box_d = np.where(obj_mask[..., None], tscale[..., None] * (tbox - out_box), prior_box)
    for e in range(4):
        delta[:, :, e] = box_d[..., e]
    pobj = p[:, :, 4]
    delta[:, :, 4] = np.where(obj_mask, dt(layer.object_scale) * (tobj - pobj),
                              np.where(noobj_mask, dt(layer.noobject_scale) * (dt(0) - pobj), dt(0)))
    tc = np.moveaxis(tcls, -1, 2)
    delta[:, :, 5:] = np.where(cls_set[:, :, None], dt(layer.class_scale) * (tc - pc), dt(0))
    if dep.gpu_form:   # backward_region_layer_gpu: delta *= (1-y)*y on x, y and objectness
        for e in (0, 1, 4):
            delta[:, :, e] = delta[:, :, e] * ((dt(1) - p[:, :, e]) * p[:, :, e])
    return _finish(delta, B, dep)


def yolo_impl(dep: Dep) -> Callable[..., np.ndarray]:
    def impl(x, truth, layer, net_w, net_h):
        return yolo_port(x, truth, layer, net_w, net_h, dep)
    return impl


def region_impl(dep: Dep) -> Callable[..., np.ndarray]:
    def impl(x, truth, layer, net_w, net_h, seen=0):
        return region_port(x, truth, layer, net_w, net_h, seen, dep)
    return impl


# --------------------------------------------------------------------------------------------
# Cases: (layer, x, truth, net_w, net_h, seen), fixed seeds, made so each departure shows
# --------------------------------------------------------------------------------------------
@dataclass
class Case:
    layer: Any
    x: np.ndarray
    truth: np.ndarray
    net_w: int = 416
    net_h: int = 416
    seen: int = 0


def _yolo_layer(**kw) -> Any:
    args = dict(classes=4, anchors=YOLOV3_ANCHORS, mask=[6, 7, 8], ignore_thresh=0.5)
    args.update(kw)
    return pdl.YoloLayer(**args)


def _pack(rows: Sequence[Sequence[Sequence[float]]], stride: int) -> np.ndarray:
    out = np.zeros((len(rows), stride, 5), F32)
    for b, rs in enumerate(rows):
        for t, r in enumerate(rs):
            out[b, t] = r
    return out


def _random_rows(rng, k: int, classes: int, lo=0.2, hi=0.7) -> List[List[float]]:
    return [[rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(lo, hi), rng.uniform(lo, hi),
             int(rng.integers(classes))] for _ in range(k)]


def _plant(x: np.ndarray, layer: Any, b: int, a: int, row, H: int, W: int, net_w: int, net_h: int,
           anchor_wh: Tuple[float, float], jitter: float = 0.0) -> None:
    """Set one cell's box logits so that its predicted box is (close to) the truth's."""
    K = 5 + layer.classes
    i, j = int(F32(row[0]) * F32(W)), int(F32(row[1]) * F32(H))
    fx, fy = row[0] * W - i, row[1] * H - j
    fx, fy = min(max(fx, 0.02), 0.98), min(max(fy, 0.02), 0.98)
    x[b, a * K + 0, j, i] = np.log(fx / (1 - fx)) + jitter
    x[b, a * K + 1, j, i] = np.log(fy / (1 - fy)) - jitter
    x[b, a * K + 2, j, i] = np.log(row[2] * net_w / anchor_wh[0]) + jitter
    x[b, a * K + 3, j, i] = np.log(row[3] * net_h / anchor_wh[1]) - jitter


def yolo_case(seed: int, rows: Optional[List[List[List[float]]]] = None, B: int = 2, H: int = 13,
              n_truth: int = 4, big: bool = False, plant: bool = False, **layer_kw) -> Case:
    rng = np.random.default_rng(seed)
    layer = _yolo_layer(**layer_kw)
    if rows is None:
        rows = [_random_rows(rng, n_truth, layer.classes) for _ in range(B)]
    B = len(rows)
    x = rng.standard_normal((B, layer.channels, H, H)).astype(F32)
    truth = _pack(rows, 90)
    if plant:   # predicted boxes close to the truths at the other anchors of each truth's cell
        anchors = np.asarray(layer.anchors).reshape(-1, 2)
        for b in range(B):
            for r in rows[b]:
                if r[0] == 0:
                    break
                for a, m in enumerate(layer.mask):
                    _plant(x, layer, b, a, r, H, H, 416, 416, tuple(anchors[m]), jitter=0.05)
    if big:     # logits beyond float32 sigmoid saturation in objectness and classes
        K = 5 + layer.classes
        for a in range(layer.n):
            sl = slice(a * K + 4, (a + 1) * K)
            m = rng.random((B, K - 4, H, H)) < 0.3
            x[:, sl] = np.where(m, np.float32(25.0) * np.sign(x[:, sl]), x[:, sl])
    return Case(layer, x, truth)


def _shared_cell_rows() -> List[List[List[float]]]:
    # image 0: rows 0 and 1 share a cell and anchor (classes 1 then 3); image 1: ordinary
    return [[[0.50, 0.40, 0.30, 0.20, 1], [0.51, 0.42, 0.28, 0.22, 3], [0.2, 0.75, 0.6, 0.5, 0]],
            [[0.3, 0.3, 0.5, 0.4, 2], [0.72, 0.61, 0.35, 0.45, 1]]]


def _x0_rows() -> List[List[List[float]]]:
    # a row with x == 0 in the middle: darknet stops there; the rows after it are not read
    return [[[0.5, 0.4, 0.3, 0.25, 1], [0.0, 0.5, 0.4, 0.35, 2], [0.25, 0.7, 0.55, 0.5, 3],
             [0.8, 0.2, 0.3, 0.6, 0]],
            [[0.3, 0.6, 0.45, 0.35, 2], [0.7, 0.3, 0.35, 0.3, 0]]]


def _small_rows() -> List[List[List[float]]]:
    # boxes whose best anchor over all nine is not in the mask [6, 7, 8], and ones whose is
    return [[[0.5, 0.4, 0.12, 0.2, 1], [0.2, 0.7, 0.6, 0.5, 0], [0.7, 0.25, 0.15, 0.1, 2]],
            [[0.33, 0.58, 0.18, 0.25, 3], [0.72, 0.61, 0.45, 0.35, 1]]]


def _rounding_rows() -> List[List[List[float]]]:
    # x*W and y*H with fractional parts above .5: rounding moves them to the next cell
    return [[[0.5, 0.45, 0.3, 0.25, 1], [0.27, 0.73, 0.55, 0.5, 3]],
            [[0.66, 0.35, 0.4, 0.35, 2]]]


def ignore_tie_case(seed: int) -> Case:
    """A cell whose best IoU equals ignore_thresh exactly (darknet: > keeps it negative; >= ignores it)."""
    base = yolo_case(seed)
    b = 0
    # best IoU per cell with the port's float32 arithmetic (box.c's order)
    B, C, H, W = base.x.shape
    layer = base.layer
    K = 5 + layer.classes
    xv = base.x.reshape(B, layer.n, K, H, W)
    p = logistic(xv, F32)
    bias = np.asarray(layer.anchors, F32).reshape(-1, 2)
    px = (np.arange(W, dtype=F32)[None, :] + p[b, :, 0]) / F32(W)
    py = (np.arange(H, dtype=F32)[:, None] + p[b, :, 1]) / F32(H)
    pw = (np.exp(xv[b, :, 2].astype(F64)) * bias[layer.mask, 0][:, None, None] / 416).astype(F32)
    ph = (np.exp(xv[b, :, 3].astype(F64)) * bias[layer.mask, 1][:, None, None] / 416).astype(F32)
    rows = base.truth[b][base.truth[b, :, 0] != 0]
    best = np.max([box_iou(px, py, pw, ph, F32(r[0]), F32(r[1]), F32(r[2]), F32(r[3]), F32) for r in rows], 0)
    cand = np.argwhere((best > 0.3) & (best < 0.9))
    a, j, i = cand[len(cand) // 2]
    thresh = float(best[a, j, i])
    return Case(_yolo_layer(ignore_thresh=thresh), base.x, base.truth)


def region_layer(**kw) -> Any:
    args = dict(classes=20, anchors=VOC_ANCHORS, coords=4, softmax=True, rescore=True, bias_match=True,
                thresh=0.6, object_scale=5, noobject_scale=1, class_scale=1, coord_scale=1)
    args.update(kw)
    return pdl.RegionLayer(**args)


def region_case(seed: int, rows: Optional[List[List[List[float]]]] = None, seen: int = 0, B: int = 2,
                H: int = 13, n_truth: int = 4, **layer_kw) -> Case:
    rng = np.random.default_rng(seed)
    layer = region_layer(**layer_kw)
    if rows is None:
        rows = [_random_rows(rng, n_truth, layer.classes, 0.1, 0.6) for _ in range(B)]
    B = len(rows)
    x = rng.standard_normal((B, layer.channels, H, H)).astype(F32)
    truth = _pack(rows, 30)
    return Case(layer, x, truth, 416, 416, seen)


def _region_x0_rows() -> List[List[List[float]]]:
    return [[[0.5, 0.4, 0.3, 0.25, 11], [0.0, 0.5, 0.4, 0.35, 2], [0.25, 0.7, 0.55, 0.5, 7],
             [0.8, 0.2, 0.1, 0.2, 19]],
            [[0.3, 0.6, 0.45, 0.35, 14], [0.7, 0.3, 0.35, 0.3, 0]]]


# --------------------------------------------------------------------------------------------
# The table: name -> (impl, kind, expected, case builder)
# --------------------------------------------------------------------------------------------
def _w(part: str, factor: float) -> Dict[str, Any]:
    return {"part": part, "factor": factor}


Y, R = "yolo", "region"
_yc = yolo_case
_rc = region_case

#: name -> (Dep, kind, expected, case builder)
_CONFIGS: Dict[str, Tuple[Dep, str, Dict[str, Any], Callable[[], Case]]] = {
    # correct, other rounding
    "correct_float64": (Dep(f64=True), Y, {"codes": set()}, lambda: _yc(101, rows=_shared_cell_rows())),
    "region_correct_float64": (Dep(f64=True), R, {"codes": set()}, lambda: _rc(102)),
    # part weights
    "box_x2": (Dep(box_w=2.0), Y, {"codes": {"weight"}, "details": {"weight": _w("box", 2.0)}},
               lambda: _yc(1)),
    "box_lambda_coord5": (Dep(box_w=5.0), Y, {"codes": {"weight"}, "details": {"weight": _w("box", 5.0)}},
                          lambda: _yc(2)),
    "classes_x2": (Dep(cls_w=2.0), Y, {"codes": {"weight"}, "details": {"weight": _w("classes", 2.0)}},
                   lambda: _yc(3)),
    "negative_objectness_x0.5": (Dep(obj_neg_w=0.5), Y,
                                 {"codes": {"weight"}, "details": {"weight": _w("objectness.negative", 0.5)}},
                                 lambda: _yc(4)),
    "positive_objectness_x5": (Dep(obj_pos_w=5.0), Y,
                               {"codes": {"weight"}, "details": {"weight": _w("objectness.positive", 5.0)}},
                               lambda: _yc(5)),
    # chain
    "xy_times_sigmoid_prime": (Dep(xy_chain=True), Y, {"codes": {"chain"}, "details": {"chain": {"part": "xy"}}},
                               lambda: _yc(6)),
    "mse_objectness": (Dep(obj_chain=True), Y, {"codes": {"chain"}, "details": {"chain": {"part": "objectness"}}},
                       lambda: _yc(7)),
    # losses and targets
    "softmax_ce_classes": (Dep(softmax_ce=True), Y, {"codes": {"class_loss"}}, lambda: _yc(8)),
    "class_ids_off_by_one": (Dep(class_offset=1), Y, {"codes": {"class_target"}}, lambda: _yc(9)),
    "label_smoothing_0.1": (Dep(smooth_eps=0.1), Y, {"codes": {"class_target"}}, lambda: _yc(10)),
    "label_smoothing_bce_0.1": (Dep(smooth_eps=0.1, smooth_bce=True), Y, {"codes": {"class_target"}},
                                lambda: _yc(27)),
    "objectness_target_iou": (Dep(obj_target_iou=True), Y, {"codes": {"objectness_target"}}, lambda: _yc(11)),
    "giou_box_loss": (Dep(giou=True), Y, {"codes": {"box_loss"}}, lambda: _yc(12)),
    "bce_on_probabilities": (Dep(bce_on_probs=True), Y, {"codes": {"saturated_gradient"}},
                             lambda: _yc(13, big=True)),
    # truth reading and assignment
    "no_x0_stop": (Dep(no_x0_stop=True), Y, {"codes": {"x0_terminator"}}, lambda: _yc(14, rows=_x0_rows())),
    "rows_past_max_boxes": (Dep(no_max_boxes=True), Y, {"codes": {"truth_limit"}},
                            lambda: _yc(15, n_truth=5, max_boxes=2)),
    "rounded_cells": (Dep(round_cells=True), Y, {"codes": {"cell_assignment"}},
                      lambda: _yc(16, rows=_rounding_rows())),
    "best_anchor_within_mask": (Dep(anchor_in_mask=True), Y, {"codes": {"anchor_assignment"}},
                                lambda: _yc(17, rows=_small_rows())),
    "first_truth_wins": (Dep(first_wins=True), Y, {"codes": {"overwrite_order"}},
                         lambda: _yc(18, rows=_shared_cell_rows())),
    "no_short_circuit": (Dep(no_short_circuit=True), Y, {"codes": {"class_short_circuit"}},
                         lambda: _yc(19, rows=_shared_cell_rows())),
    "no_box_scale": (Dep(no_box_scale=True), Y, {"codes": {"box_scale"}}, lambda: _yc(20)),
    "wh_in_grid_units": (Dep(wh_grid=True), Y, {"codes": {"wh_target"}}, lambda: _yc(21)),
    "ignore_ge": (Dep(ignore_ge=True), Y, {"codes": {"ignore_rule"}}, lambda: ignore_tie_case(22)),
    "no_truth_thresh_branch": (Dep(no_truth_thresh=True), Y, {"codes": {"truth_thresh"}},
                               lambda: _yc(23, plant=True, truth_thresh=0.6)),
    # global
    "gradient_sign": (Dep(sign=True), Y, {"codes": {"sign"}}, lambda: _yc(24)),
    "batch_mean": (Dep(batch_mean=True), Y, {"codes": {"scale"}}, lambda: _yc(25)),
    "nhwc_layout": (Dep(nhwc=True), Y, {"codes": {"layout"}}, lambda: _yc(26)),
    # [region]
    "region_prior_x10": (Dep(prior_scale=0.1), R, {"codes": {"weight"}, "details": {"weight": _w("prior", 10.0)}},
                         lambda: _rc(31)),
    "region_no_prior": (Dep(no_prior=True), R, {"codes": {"prior_rule"}}, lambda: _rc(32)),
    "region_no_rescore": (Dep(no_rescore=True), R, {"codes": {"rescore"}}, lambda: _rc(33, seen=20000)),
    "region_rows_past_x0": (Dep(no_x0_stop=True), R, {"codes": {"x0_terminator"}},
                            lambda: _rc(34, rows=_region_x0_rows(), seen=20000)),
    "region_gpu_form": (Dep(gpu_form=True), R, {"codes": {"chain"}}, lambda: _rc(35, seen=20000)),
    "region_batch_mean": (Dep(batch_mean=True), R, {"codes": {"scale"}}, lambda: _rc(36)),
    # two departures at once
    "sign+box_x2": (Dep(sign=True, box_w=2.0), Y, {"codes": {"sign", "weight"},
                                                   "details": {"weight": _w("box", 2.0)}}, lambda: _yc(41)),
    "batch_mean+ignore_ge": (Dep(batch_mean=True, ignore_ge=True), Y, {"codes": {"scale", "ignore_rule"}},
                             lambda: ignore_tie_case(42)),
    "nhwc+negative_objectness_x0.5": (Dep(nhwc=True, obj_neg_w=0.5), Y,
                                      {"codes": {"layout", "weight"},
                                       "details": {"weight": _w("objectness.negative", 0.5)}}, lambda: _yc(43)),
    "region_gpu_form+no_rescore": (Dep(gpu_form=True, no_rescore=True), R, {"codes": {"chain", "rescore"}},
                                   lambda: _rc(44, seen=20000)),
    "xy_chain+classes_x2": (Dep(xy_chain=True, cls_w=2.0), Y,
                            {"codes": {"chain", "weight"}, "details": {"weight": _w("classes", 2.0)}},
                            lambda: _yc(45)),
    "batch_mean+first_truth_wins": (Dep(batch_mean=True, first_wins=True), Y,
                                    {"codes": {"scale", "overwrite_order"}},
                                    lambda: _yc(46, rows=_shared_cell_rows())),
}

#: name -> (impl, kind, expected)
TABLE: Dict[str, Tuple[Callable[..., np.ndarray], str, Dict[str, Any]]] = {
    name: ((yolo_impl if kind == Y else region_impl)(dep), kind, exp) for name, (dep, kind, exp, _) in _CONFIGS.items()
}
#: name -> the configuration's departures
DEPS: Dict[str, Dep] = {name: dep for name, (dep, _, _, _) in _CONFIGS.items()}
#: name -> case builder
CASES: Dict[str, Callable[[], Case]] = {name: build for name, (_, _, _, build) in _CONFIGS.items()}
#: the correct (float32) port of each kind
CORRECT: Dict[str, Callable[..., np.ndarray]] = {Y: yolo_impl(Dep()), R: region_impl(Dep())}


def run(name: str, case: Optional[Case] = None) -> np.ndarray:
    """The named configuration's delta on its case."""
    impl, kind, _ = TABLE[name]
    c = case or CASES[name]()
    if kind == Y:
        return impl(c.x, c.truth, c.layer, c.net_w, c.net_h)
    return impl(c.x, c.truth, c.layer, c.net_w, c.net_h, c.seen)

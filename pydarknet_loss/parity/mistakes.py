"""A gallery of classic mistakes in re-implementations of darknet's YOLO
losses, each a small NumPy implementation with exactly one of them.

They are written independently of the oracle (plain NumPy, float32 where
upstream computes in float, float64 where it computes in double), so that
the diagnosis can be tested on implementations that really make these
mistakes, and so that users can see what each mistake does to the numbers::

    from pydarknet_loss import mistakes
    delta = mistakes.YOLO["bce_on_probabilities"](x, truth, layer, 416, 416)
    report = pdl.compare(expected, {"delta": delta}, layer, input=x, truth=truth)
    report.causes[0].code          # 'saturated_gradient'

Every implementation has the signature ``impl(x, truth, layer, net_w, net_h)``
(``pdl.fuzz``'s) and returns the delta in darknet's (B, C, H, W) layout;
``truth`` is darknet's packed buffer.  ``YOLO`` and ``REGION`` map a mistake's
name to its implementation; ``EXPECTED_CAUSE`` maps it to the cause code the
diagnosis names (``None`` for the correct ones).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np

Impl = Callable[..., np.ndarray]

F = np.float32

#: mistake name -> (the cause the diagnosis must name, one line on the mistake)
DESCRIPTIONS: Dict[str, tuple] = {
    "correct": (None, "upstream's arithmetic, computed in NumPy (exact to float32 rounding)"),
    "bce_on_probabilities": ("saturated_gradient", "BCE applied to sigmoid outputs (torch.nn.BCELoss on "
                             "sigmoid(x)): the gradient vanishes where float32 sigmoid saturates"),
    "no_x0_stop": ("x0_terminator", "keeps reading truth rows after a row with x == 0 (takes every row with "
                   "w, h > 0)"),
    "no_max_boxes": ("truth_limit", "reads every truth row, ignoring max_boxes"),
    "rounded_cell": ("cell_assignment", "rounds x*W to the nearest cell instead of truncating"),
    "first_truth_wins": ("overwrite_order", "a second truth in an assigned cell and anchor is skipped "
                         "(upstream: the later one overwrites)"),
    "no_wh_scale": ("box_scale", "box deltas without the 2 - w*h factor"),
    "best_anchor_in_mask": ("anchor_assignment", "picks the best anchor among this layer's mask only "
                            "(upstream: among all anchors, then skips the truth if that one is not in the mask)"),
    "grid_anchors": ("wh_target", "w/h target log(w*W/anchor): pixel anchors used as if in grid units"),
    "ignore_ge": ("ignore_rule", "ignores a cell when its best IoU >= ignore_thresh (upstream: >)"),
    "mse_objectness": ("chain", "objectness delta of a squared error on the sigmoid: (t - p)*p*(1 - p)"),
    "no_short_circuit": ("class_short_circuit", "a second truth in a cell resets every class "
                         "(upstream keeps the first truth's class at 1 - p)"),
    "no_truth_thresh": ("truth_thresh", "leaves out the truth_thresh branch of the ignore loop"),
    "gradient_sign": ("sign", "returns the gradient instead of darknet's delta (minus the gradient)"),
    "batch_mean": ("scale", "divides the delta by the batch size (a mean over the batch)"),
    "nhwc_layout": ("layout", "computes in (B, H, W, C) and reshapes that memory to (B, C, H, W)"),
    # [region]
    "region_correct": (None, "upstream's [region] arithmetic (CPU build), computed in NumPy"),
    "region_no_prior": ("prior_rule", "leaves out the seen < 12800 pull of every box towards its anchor"),
    "region_no_rescore": ("rescore", "objectness target 1 where rescore asks for the IoU"),
    "region_rounded_cell": ("cell_assignment", "rounds x*W to the nearest cell instead of truncating"),
    "region_gradient_sign": ("sign", "returns the gradient instead of darknet's delta"),
}

EXPECTED_CAUSE: Dict[str, Optional[str]] = {k: v[0] for k, v in DESCRIPTIONS.items()}


# ---- arithmetic shared by both layers -------------------------------------------------

def _logistic(v: np.ndarray) -> np.ndarray:
    """Upstream's logistic: the float negated, exp and 1/(1 + e) in double, rounded once."""
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-v.astype(np.float64)))).astype(F)


def _iou(ax: Any, ay: Any, aw: Any, ah: Any, bx: Any, by: Any, bw: Any, bh: Any) -> np.ndarray:
    """box_iou with every operation in float32, in upstream's order (broadcasting)."""
    two = F(2)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        def overlap(x1: Any, w1: Any, x2: Any, w2: Any) -> Any:
            l1, l2 = x1 - w1 / two, x2 - w2 / two
            r1, r2 = x1 + w1 / two, x2 + w2 / two
            # `l1 > l2 ? l1 : l2` and `r1 < r2 ? r1 : r2`: NaN picks the second.
            return np.where(r1 < r2, r1, r2) - np.where(l1 > l2, l1, l2)
        w = overlap(ax, aw, bx, bw)
        h = overlap(ay, ah, by, bh)
        inter = np.where((w < 0) | (h < 0), F(0), w * h)
        union = aw * ah + bw * bh - inter
        return (inter / union).astype(F)


def _best(iou: np.ndarray) -> tuple:
    """The ignore loop's `if (iou > best)` from best = 0 over the last axis:
    the best value (0 when nothing beats 0, NaN never) and its first index."""
    clean = np.where(np.isnan(iou), -np.inf, iou)
    if clean.shape[-1] == 0:
        return np.zeros(clean.shape[:-1], F), np.zeros(clean.shape[:-1], int)
    best = np.maximum(clean.max(axis=-1), F(0)).astype(F)
    idx = np.argmax(clean == best[..., None], axis=-1)
    return best, np.where(best > 0, idx, 0)


def _rows(truth: np.ndarray, b: int, limit: int, *, stop_at_x0: bool = True) -> list:
    """The truth rows of image b an implementation reads: upstream stops at
    the first x == 0; without the stop, every row with w, h > 0."""
    out = []
    for t in range(limit):
        row = truth[b, t]
        if stop_at_x0:
            if row[0] == 0:
                break
            out.append(t)
        elif row[2] > 0 and row[3] > 0:
            out.append(t)
    return out


def _packed(truth: Any, batch: int, rows: int, cols: int) -> np.ndarray:
    if isinstance(truth, np.ndarray) and truth.ndim == 3:
        return truth
    packed = np.zeros((batch, rows, cols), F)
    for b, a in enumerate(truth):
        packed[b, :len(a)] = a
    return packed


# ---- [yolo] ----------------------------------------------------------------------

def yolo_delta(x: np.ndarray, truth: Any, layer: Any, net_w: int, net_h: int, *,
               mistake: str = "correct") -> np.ndarray:
    """darknet's [yolo] delta computed in NumPy, with one named mistake (see
    DESCRIPTIONS; "correct" for none)."""
    if mistake not in DESCRIPTIONS or mistake.startswith("region_"):
        raise ValueError(f"not a [yolo] mistake: {mistake!r}")
    B, C, H, W = x.shape
    n, classes = len(layer.mask), layer.classes
    P = 5 + classes
    truth = _packed(truth, B, 90, 5)
    X = x.reshape(B, n, P, H, W)
    Y = X.copy()
    Y[:, :, 0:2] = _logistic(X[:, :, 0:2])
    Y[:, :, 4:] = _logistic(X[:, :, 4:])
    D = np.zeros_like(Y)
    anchors = np.asarray(layer.anchors, F)
    mask = [int(m) for m in layer.mask]
    cmap = None if layer.map is None else [int(v) for v in layer.map]
    limit = 90 if mistake == "no_max_boxes" else int(layer.max_boxes)
    wF, hF = F(W), F(H)
    ii = np.arange(W, dtype=F)[None, :]
    jj = np.arange(H, dtype=F)[:, None]

    def box_delta(b: int, a: int, row: np.ndarray, i: int, j: int, anchor: int) -> None:
        scale = F(1) if mistake == "no_wh_scale" else F(F(2) - row[2] * row[3])
        tx = F(row[0] * wF - F(i))
        ty = F(row[1] * hF - F(j))
        size_w = F(W) if mistake == "grid_anchors" else F(net_w)
        size_h = F(H) if mistake == "grid_anchors" else F(net_h)
        with np.errstate(divide="ignore"):
            tw = F(np.log(np.float64(F(F(row[2] * size_w) / anchors[2 * anchor]))))
            th = F(np.log(np.float64(F(F(row[3] * size_h) / anchors[2 * anchor + 1]))))
        for k, t in enumerate((tx, ty, tw, th)):
            D[b, a, k, j, i] = F(scale * F(t - X[b, a, k, j, i] if k >= 2 else t - Y[b, a, k, j, i]))

    def class_delta(b: int, a: int, cls: int, i: int, j: int) -> None:
        if D[b, a, 5, j, i] != 0 and mistake != "no_short_circuit":
            D[b, a, 5 + cls, j, i] = F(1) - Y[b, a, 5 + cls, j, i]
            return
        t = np.zeros(classes, F)
        t[cls] = 1
        D[b, a, 5:, j, i] = t - Y[b, a, 5:, j, i]

    def class_of(row: np.ndarray) -> int:
        c = int(row[4])
        return cmap[c] if cmap is not None else c

    for b in range(B):
        rows = _rows(truth, b, limit, stop_at_x0=mistake != "no_x0_stop")
        T = truth[b, rows]
        # Loop 1: every prediction against every truth read.
        px = ((ii + Y[b, :, 0]) / wF).astype(F)
        py = ((jj + Y[b, :, 1]) / hF).astype(F)
        with np.errstate(over="ignore"):
            pw = (np.exp(X[b, :, 2].astype(np.float64)) * anchors[[2 * m for m in mask]].astype(np.float64)[:, None, None]
                  / net_w).astype(F)
            ph = (np.exp(X[b, :, 3].astype(np.float64)) * anchors[[2 * m + 1 for m in mask]].astype(np.float64)[:, None, None]
                  / net_h).astype(F)
        ious = _iou(px[..., None], py[..., None], pw[..., None], ph[..., None],
                    T[:, 0], T[:, 1], T[:, 2], T[:, 3])
        best, best_t = _best(ious)
        D[b, :, 4] = F(0) - Y[b, :, 4]
        ignored = best >= layer.ignore_thresh if mistake == "ignore_ge" else best > layer.ignore_thresh
        D[b, :, 4][ignored] = 0
        if mistake != "no_truth_thresh":
            for a, j, i in zip(*np.nonzero(best > layer.truth_thresh)):
                row = T[best_t[a, j, i]]
                D[b, a, 4, j, i] = F(1) - Y[b, a, 4, j, i]
                class_delta(b, a, class_of(row), i, j)
                box_delta(b, a, row, i, j, mask[a])
        # Loop 2: every truth to its best anchor's cell.
        assigned = set()
        for t in rows:
            row = truth[b, t]
            if mistake == "rounded_cell":
                i = min(int(np.floor(np.float64(row[0] * wF) + 0.5)), W - 1)
                j = min(int(np.floor(np.float64(row[1] * hF) + 0.5)), H - 1)
            else:
                i, j = int(F(row[0] * wF)), int(F(row[1] * hF))
            cand = mask if mistake == "best_anchor_in_mask" else range(layer.total)
            shape = _iou(F(0), F(0), anchors[[2 * c for c in cand]] / F(net_w),
                         anchors[[2 * c + 1 for c in cand]] / F(net_h), F(0), F(0), row[2], row[3])
            _, k = _best(shape)
            best_n = list(cand)[int(k)]
            if best_n not in mask:
                continue
            a = mask.index(best_n)
            if mistake == "first_truth_wins" and (a, j, i) in assigned:
                continue
            assigned.add((a, j, i))
            box_delta(b, a, row, i, j, best_n)
            D[b, a, 4, j, i] = F(1) - Y[b, a, 4, j, i]
            class_delta(b, a, class_of(row), i, j)
    if mistake in ("bce_on_probabilities", "mse_objectness"):
        D = _loss_form(D, X, Y, mistake)
    out = D.reshape(B, C, H, W)
    return _returned(out, mistake)


def _loss_form(D: np.ndarray, X: np.ndarray, Y: np.ndarray, mistake: str) -> np.ndarray:
    """Objectness and class deltas of an implementation whose loss has
    another form than darknet's (their targets are 0 or 1, their scale 1)."""
    D = D.copy()
    y = Y[:, :, 4:]
    d = D[:, :, 4:]
    if mistake == "mse_objectness":
        # d/dx of (p - t)^2 / 2 on p = sigmoid(x): (p - t)*p*(1 - p).
        D[:, :, 4] = (D[:, :, 4] * (Y[:, :, 4] * (F(1) - Y[:, :, 4]))).astype(F)
        return D
    # BCE on probabilities, as torch.nn.BCELoss does it: p = sigmoid(x) in
    # float32, dL/dp = (p - t)/max(p(1 - p), 1e-12), then back through the
    # sigmoid's p(1 - p): the same as p - t in real numbers, 0 once p rounds
    # to 1 in float32.
    with np.errstate(over="ignore"):
        p = (F(1) / (F(1) + np.exp(-X[:, :, 4:]))).astype(F)
    q = (p * (F(1) - p)).astype(F)
    t = (d + y > F(0.5)).astype(F)
    g = (((p - t) / np.maximum(q, F(1e-12))).astype(F) * q).astype(F)
    D[:, :, 4:] = np.where(d != 0, -g, d).astype(F)
    return D


def _returned(delta: np.ndarray, mistake: str) -> np.ndarray:
    if mistake in ("gradient_sign", "region_gradient_sign"):
        return (-delta).astype(F)
    if mistake == "batch_mean":
        return (delta / F(delta.shape[0])).astype(F)
    if mistake == "nhwc_layout":
        B, C, H, W = delta.shape
        return np.ascontiguousarray(delta.transpose(0, 2, 3, 1)).reshape(B, C, H, W)
    return delta


# ---- [region] ---------------------------------------------------------------------

def _softmax(v: np.ndarray, axis: int) -> np.ndarray:
    """Upstream's CPU softmax: exp of (x - max) in double rounded to float, a
    sequential float sum, a float division."""
    v = np.moveaxis(v, axis, 0)
    largest = np.maximum(v.max(axis=0), F(-np.finfo(F).max))
    e = np.exp((v / F(1) - largest / F(1)).astype(F).astype(np.float64)).astype(F)
    s = np.zeros(v.shape[1:], F)
    for k in range(v.shape[0]):
        s = (s + e[k]).astype(F)
    return np.moveaxis((e / s).astype(F), 0, axis)


def region_delta(x: np.ndarray, truth: Any, layer: Any, *, seen: int = 12800,
                 mistake: str = "region_correct") -> np.ndarray:
    """darknet's [region] delta (CPU build, coords 4, no tree) in NumPy,
    with one named mistake."""
    if not mistake.startswith("region_"):
        raise ValueError(f"not a [region] mistake: {mistake!r}")
    if layer.coords != 4 or layer.tree is not None:
        raise ValueError("the gallery's [region] implementations cover coords=4 without a tree")
    B, C, H, W = x.shape
    n, classes = layer.n, layer.classes
    P = 5 + classes
    truth = _packed(truth, B, 30, 5)
    X = x.reshape(B, n, P, H, W)
    Y = X.copy()
    Y[:, :, 0:2] = _logistic(X[:, :, 0:2])
    if not layer.background:
        Y[:, :, 4] = _logistic(X[:, :, 4])
    if layer.softmax:
        start = 4 if layer.background else 5
        Y[:, :, start:] = _softmax(X[:, :, start:], axis=2)
    else:
        Y[:, :, 5:] = _logistic(X[:, :, 5:])
    D = np.zeros_like(Y)
    anchors = np.asarray(layer.anchors, F)
    cmap = None if layer.map is None else [int(v) for v in layer.map]
    wF, hF = F(W), F(H)
    ii = np.arange(W, dtype=F)[None, :]
    jj = np.arange(H, dtype=F)[:, None]
    aw = anchors[0::2][:, None, None]
    ah = anchors[1::2][:, None, None]

    def box_delta(b: int, a: int, tx: Any, ty: Any, tw: Any, th: Any, i: int, j: int, scale: Any) -> float:
        bx = F((F(i) + Y[b, a, 0, j, i]) / wF)
        by = F((F(j) + Y[b, a, 1, j, i]) / hF)
        with np.errstate(over="ignore"):
            bw = F(np.exp(np.float64(X[b, a, 2, j, i])) * np.float64(anchors[2 * a]) / W)
            bh = F(np.exp(np.float64(X[b, a, 3, j, i])) * np.float64(anchors[2 * a + 1]) / H)
        iou = float(_iou(bx, by, bw, bh, tx, ty, tw, th))
        t = (F(tx * wF - F(i)), F(ty * hF - F(j)))
        with np.errstate(divide="ignore"):
            t = t + (F(np.log(np.float64(F(F(tw * wF) / anchors[2 * a])))),
                     F(np.log(np.float64(F(F(th * hF) / anchors[2 * a + 1])))))
        for k in range(4):
            v = Y[b, a, k, j, i] if k < 2 else X[b, a, k, j, i]
            D[b, a, k, j, i] = F(scale * F(t[k] - v))
        return iou

    for b in range(B):
        rows = _rows(truth, b, 30)
        T = truth[b, rows]
        px = ((ii + Y[b, :, 0]) / wF).astype(F)
        py = ((jj + Y[b, :, 1]) / hF).astype(F)
        with np.errstate(over="ignore"):
            pw = (np.exp(X[b, :, 2].astype(np.float64)) * aw.astype(np.float64) / W).astype(F)
            ph = (np.exp(X[b, :, 3].astype(np.float64)) * ah.astype(np.float64) / H).astype(F)
        best, _ = _best(_iou(px[..., None], py[..., None], pw[..., None], ph[..., None],
                             T[:, 0], T[:, 1], T[:, 2], T[:, 3]))
        D[b, :, 4] = (layer.noobject_scale * (F(0) - Y[b, :, 4])).astype(F)
        if layer.background:
            D[b, :, 4] = (layer.noobject_scale * (F(1) - Y[b, :, 4])).astype(F)
        D[b, :, 4][best > layer.thresh] = 0
        if seen < 12800 and mistake != "region_no_prior":
            for a in range(n):
                for j in range(H):
                    for i in range(W):
                        box_delta(b, a, F((i + .5) / W), F((j + .5) / H), F(anchors[2 * a] / wF),
                                  F(anchors[2 * a + 1] / hF), i, j, F(.01))
        for t in rows:
            row = truth[b, t]
            if mistake == "region_rounded_cell":
                i = min(int(np.floor(np.float64(row[0] * wF) + 0.5)), W - 1)
                j = min(int(np.floor(np.float64(row[1] * hF) + 0.5)), H - 1)
            else:
                i, j = int(F(row[0] * wF)), int(F(row[1] * hF))
            if layer.bias_match:
                sw, sh = anchors[0::2] / wF, anchors[1::2] / hF
            else:
                with np.errstate(over="ignore"):
                    sw = (np.exp(X[b, :, 2, j, i].astype(np.float64)) * anchors[0::2].astype(np.float64) / W).astype(F)
                    sh = (np.exp(X[b, :, 3, j, i].astype(np.float64)) * anchors[1::2].astype(np.float64) / H).astype(F)
            _, a = _best(_iou(F(0), F(0), sw, sh, F(0), F(0), row[2], row[3]))
            a = int(a)
            iou = box_delta(b, a, row[0], row[1], row[2], row[3], i, j,
                            F(layer.coord_scale * F(F(2) - row[2] * row[3])))
            o = Y[b, a, 4, j, i]
            os_ = layer.object_scale
            D[b, a, 4, j, i] = F(os_ * F(F(1) - o))
            if layer.rescore and mistake != "region_no_rescore":
                D[b, a, 4, j, i] = F(os_ * F(F(iou) - o))
            if layer.background:
                D[b, a, 4, j, i] = F(os_ * F(F(0) - o))
            cls = int(row[4])
            cls = cmap[cls] if cmap is not None else cls
            if D[b, a, 5, j, i] != 0 and not layer.softmax:
                D[b, a, 5 + cls, j, i] = F(layer.class_scale * F(F(1) - Y[b, a, 5 + cls, j, i]))
            else:
                tgt = np.zeros(classes, F)
                tgt[cls] = 1
                D[b, a, 5:, j, i] = (layer.class_scale * (tgt - Y[b, a, 5:, j, i])).astype(F)
    return _returned(D.reshape(B, C, H, W), mistake)


def _yolo_impl(name: str) -> Impl:
    def impl(x: np.ndarray, truth: Any, layer: Any, net_w: int = 416, net_h: int = 416) -> np.ndarray:
        return yolo_delta(x, truth, layer, net_w, net_h, mistake=name)
    impl.__name__ = name
    impl.__qualname__ = f"YOLO[{name!r}]"  # what a reproducer imports and calls
    impl.__doc__ = DESCRIPTIONS[name][1]
    return impl


def _region_impl(name: str) -> Impl:
    def impl(x: np.ndarray, truth: Any, layer: Any, net_w: int = 416, net_h: int = 416,
             seen: int = 12800) -> np.ndarray:
        return region_delta(x, truth, layer, seen=seen, mistake=name)
    impl.__name__ = name
    impl.__qualname__ = f"REGION[{name!r}]"
    impl.__doc__ = DESCRIPTIONS[name][1]
    return impl


#: [yolo] implementations by mistake ("correct" has none).
YOLO: Dict[str, Impl] = {k: _yolo_impl(k) for k in DESCRIPTIONS if not k.startswith("region_")}
#: [region] implementations by mistake ("region_correct" has none).
REGION: Dict[str, Impl] = {k: _region_impl(k) for k in DESCRIPTIONS if k.startswith("region_")}

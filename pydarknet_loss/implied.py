"""The implied loss: a scalar function of the layer's raw input whose
gradient is minus what darknet hands to the layers below (``net_delta``).

Darknet never writes its loss down: it writes ``delta``, and the cost it
prints, ``sum(delta**2)``, is not the function being minimised.  Each
term here is derived from upstream's delta code (comments name the line it
answers) and holds the *selection* fixed: which cells and anchors are
assigned a truth, ignored or overwritten, and with which target and scale,
comes from an oracle forward pass, so every upstream quirk carries over.

Per entry with a delta term ``delta = s*(t - v)`` (``v`` the layer output):

====================  ==========================================  =============================
entry                 [yolo] (both builds)                        [region], GPU build
====================  ==========================================  =============================
x, y                  ``s*BCE(x, t)`` on the logit                ``s/2*(σ(x) - t)²``
w, h                  ``s/2*(x - t)²``                            ``s/2*(x - t)²``
objectness            ``s*BCE(x, t)``, t = 1 assigned, 0 else,    ``s/2*(σ(x) - t)²`` (raw
                      no term where ignored                       ``s/2*(x - t)²`` with background)
classes               ``BCE(x, t)`` per class (short-circuit:     logistic: ``s*BCE``; softmax:
                      two truths in a cell keep both at 1)        ``s*CE(softmax(x), t)`` per group
mask coords           --                                          ``s*((1+t)x³/3 - x⁴/4 - t x²/2)``
====================  ==========================================  =============================

``BCE(x, t) = softplus(x) - t*x`` (cross-entropy on the logit), whose
derivative is ``σ(x) - t``.  The region CPU build hands on nothing
(``backward_region_layer`` is commented out): its implied loss is a
constant, 0.  Where darknet's delta is not the gradient of any function
(see :class:`NotAGradientError`) no implied loss exists and one is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .layers import alexeyab
from .layers.pjreddie import RegionLayer, RegionResult, YoloLayer

PARTS = ("xy", "wh", "obj_pos", "obj_neg", "class", "prior", "mask")


class NotAGradientError(ValueError):
    """Darknet's delta for this layer configuration is not the gradient of
    any scalar function of the input (its Jacobian is not symmetric), so no
    implied loss exists."""


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _bce(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """softplus(x) - t*x, written without cancellation: for x > 0 it is
    (1 - t)*x + log(1 + e^-x), for x <= 0 log(1 + e^x) - t*x."""
    pos = np.maximum(x, 0)
    neg = np.minimum(x, 0)
    return (1 - t) * pos - t * neg + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 1/(1+exp(-x)) as upstream computes it, in double.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _logsumexp(z: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return (m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))).squeeze(axis)


@dataclass
class Selection:
    """What an oracle forward pass fixes: per entry the target t and scale
    s (NaN where the entry has no term), in (B, anchors, entries, H, W)."""

    kind: str
    build: str
    target: np.ndarray
    scale: np.ndarray
    output: np.ndarray
    delta: np.ndarray
    net_delta: np.ndarray
    n: int
    coords: int
    classes: int
    background: int = 0
    softmax: int = 0
    groups: Optional[List[Tuple[int, int]]] = None  # tree groups (offset, size)
    temperature: float = 1.0

    @property
    def has(self) -> np.ndarray:
        cached = self.__dict__.get("_has")
        if cached is None or cached.shape != self.scale.shape:
            cached = self.__dict__["_has"] = ~np.isnan(self.scale)
        return cached

    @property
    def assigned(self) -> np.ndarray:
        """(B, n, H, W): cells and anchors that were given a truth (only they
        get class deltas)."""
        return self.has[:, :, self.coords + 1:].any(axis=2)


def _split(a: np.ndarray, n: int) -> np.ndarray:
    b, c, h, w = a.shape
    return a.reshape(b, n, c // n, h, w)


def _refuse_alexeyab(layer: Any) -> None:
    """AlexeyAB's [yolo]: no implied loss is derived here.  For the IoU losses
    none exists: the box delta is dx_box_iou's gradient in the *activated* x, y
    (no chain rule through the logistic or scale_x_y, nor through the cell
    offset and grid size), but through exp for w, h; its corner selection,
    "not divided by 2" w, h terms, NaN/inf zeroing and max_delta clipping
    make it no exact gradient even there, and deltas of several truths are
    added.  Its Jacobian in the raw input is not symmetric."""
    if isinstance(layer, alexeyab.GaussianYoloLayer):
        raise NotAGradientError(
            "AlexeyAB's [Gaussian_yolo]: the x, y and sigma deltas are the Gaussian log-likelihood's gradient in the "
            "*activated* outputs (no chain rule through the logistic or scale_x_y), w, h's in the raw ones (or, "
            "with an IoU loss, dx_box_iou's as for [yolo]); NaN/inf are zeroed, max_delta clips, several truths "
            "add up and every cell's box deltas are then divided by its number of positive class deltas: not the "
            "gradient of any function of the layer's input, so there is no implied loss")
    if not isinstance(layer, alexeyab.YoloLayer):
        return
    if layer.iou_loss != "mse":
        raise NotAGradientError(
            f"AlexeyAB's [yolo] with iou_loss={layer.iou_loss}: the box delta is dx_box_iou's IoU gradient taken in "
            "the activated x, y (no chain rule through the logistic and scale_x_y) but through exp for w, h, "
            "with NaN/inf zeroed and max_delta clipping, added up over truths: it is not the gradient of any "
            "function of the layer's input, so there is no implied loss")
    raise NotImplementedError("no implied loss is derived for AlexeyAB's [yolo] (iou_loss=mse); the oracle gives "
                              "its delta (layer.forward) bit for bit")


def select(x: np.ndarray, truth: Any, layer: Any, *, build: str = "cpu", net_w: int = 416, net_h: int = 416,
           seen: int = 0, activations: str = "cpu") -> Selection:
    """The oracle forward pass that fixes the selection.  ``build``: whose
    backward ([region]: the CPU build hands on nothing, the GPU build
    delta * sigma'); ``activations``: whose forward, "cpu" (the CPU build's
    double logistic and softmax) or "gpu" (the GPU build's device kernels,
    run on this machine's GPU: needs the CUDA build and a device)."""
    _refuse_alexeyab(layer)
    if build not in ("cpu", "gpu"):
        raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
    if activations not in ("cpu", "gpu"):
        raise ValueError(f"activations must be 'cpu' or 'gpu', got {activations!r}")
    if activations == "gpu" and isinstance(layer, RegionLayer) and layer.coords > 4:
        raise ValueError("activations='gpu' with mask coords (coords > 4): the GPU build activates them and "
                         "the CPU build does not, and no implied loss is derived for that mix; use "
                         "activations='cpu'")
    if isinstance(layer, YoloLayer):
        call, _ = layer._run(x, truth, train=True, out=None, targets=True, net_w=net_w, net_h=net_h, index=0,
                             build=activations)
        res_delta = call.delta
        nd = call.delta
        extra: Dict[str, Any] = {}
    elif isinstance(layer, RegionLayer):
        call, _ = layer._run(x, truth, train=True, out=None, targets=True, seen=seen, build=activations)
        rr = RegionResult(output=call.output, delta=call.delta, cost=np.float32(0), stats=None, n=layer.n,
                          coords=layer.coords, background=layer.background)
        res_delta = call.delta
        nd = rr.net_delta(build)
        groups = None
        if layer.tree is not None:
            groups = [(int(o), int(s)) for o, s in zip(layer.tree.group_offset, layer.tree.group_size)]
        extra = dict(background=layer.background, softmax=layer.softmax, groups=groups,
                     # the GPU build's tree softmax runs at temperature 1
                     temperature=float(layer.temperature) if layer.tree is not None and activations == "cpu"
                     else 1.0)
    else:
        raise TypeError("layer must be a YoloLayer or RegionLayer")
    assert call.target is not None and call.target_scale is not None
    n = layer.n
    return Selection(kind=layer.kind, build=build, target=_split(call.target, n).astype(np.float64),
                     scale=_split(call.target_scale, n).astype(np.float64), output=_split(call.output, n),
                     delta=_split(res_delta, n), net_delta=_split(np.asarray(nd), n), n=n, coords=layer.coords,
                     classes=layer.classes, **extra)


class ImpliedLoss:
    """The implied loss with a selection held fixed: ``value(x)``,
    ``gradient(x)`` (analytic) and ``numeric_gradient(x)`` (central
    differences) of the raw input x, in float64."""

    def __init__(self, sel: Selection) -> None:
        self.sel = sel
        self._check_conservative()
        if sel.kind == "region" and sel.build == "gpu" and (sel.softmax or sel.groups is not None):
            self._ce(np.zeros(sel.target.shape))  # checks every softmax group's selection

    # -- which formula each entry gets ------------------------------------------
    def _check_conservative(self) -> None:
        s = self.sel
        if s.kind != "region" or s.build == "cpu":
            return
        if s.softmax and s.background and s.groups is None:
            raise NotAGradientError(
                "[region] with softmax=1 and background=1: objectness and the classes share one softmax, "
                "but a negative cell gets a delta on objectness alone (and a positive one object_scale on "
                "objectness, class_scale on the classes), so darknet's delta is not the gradient of any "
                "loss; there is no implied loss")
        if s.groups is not None and s.n * s.target.shape[3] * s.target.shape[4] > 1:
            raise NotAGradientError(
                "[region] with a softmax tree on more than one cell and anchor: upstream's CPU forward "
                "mixes cells in each group's softmax (the group-offset bug), so the class deltas are not "
                "the gradient of any loss of the input; there is no implied loss")
        if s.groups is not None and s.temperature == 0:
            raise NotAGradientError("the tree softmax at temperature 0 is NaN everywhere")

    def _roles(self) -> Dict[str, slice]:
        c = self.sel.coords
        return {"xy": slice(0, 2), "wh": slice(2, 4), "mask": slice(4, c), "obj": slice(c, c + 1),
                "class": slice(c + 1, None)}

    # -- per-element terms and their derivatives ------------------------------------
    def _elementwise(self, X: np.ndarray) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray],
                                                   Dict[str, np.ndarray]]:
        """Per-role value, derivative and the size of the intermediate values
        whose float64 rounding the value carries, for every separable entry;
        entries without a term are 0."""
        s = self.sel
        S = np.where(s.has, s.scale, 0.0)
        T = s.target
        r = self._roles()
        vals: Dict[str, np.ndarray] = {}
        ders: Dict[str, np.ndarray] = {}
        mags: Dict[str, np.ndarray] = {}
        Term = Tuple[np.ndarray, np.ndarray, np.ndarray]

        def bce(sl: slice) -> Term:
            x, t, sc = X[:, :, sl], T[:, :, sl], S[:, :, sl]
            # delta = s*(t - σ(x)) handed on as is: cross-entropy on the logit.
            f = sc * _bce(x, t)
            return f, sc * (_sigmoid(x) - t), np.abs(f)

        def se_raw(sl: slice) -> Term:
            x, t, sc = X[:, :, sl], T[:, :, sl], S[:, :, sl]
            # delta = s*(t - x) on a raw entry: half squared error.
            f = sc / 2 * (x - t) ** 2
            return f, sc * (x - t), np.abs(f)

        def se_sigmoid(sl: slice) -> Term:
            x, t, sc = X[:, :, sl], T[:, :, sl], S[:, :, sl]
            y = _sigmoid(x)
            # delta = s*(t - σ(x)) times σ' on a GPU build: squared error on the sigmoid.
            return sc / 2 * (y - t) ** 2, sc * (y - t) * y * (1 - y), np.abs(sc * (y - t))

        vals["wh"], ders["wh"], mags["wh"] = se_raw(r["wh"])
        if s.kind == "yolo":
            for role in ("xy", "obj", "class"):
                vals[role], ders[role], mags[role] = bce(r[role])
            return vals, ders, mags
        vals["xy"], ders["xy"], mags["xy"] = se_sigmoid(r["xy"])
        if s.coords > 4:
            x, t, sc = X[:, :, r["mask"]], T[:, :, r["mask"]], S[:, :, r["mask"]]
            # The CPU forward leaves mask coords raw, and the GPU backward
            # multiplies their delta s*(t - x) by (1-x)*x: the antiderivative.
            vals["mask"] = sc * ((1 + t) * x ** 3 / 3 - x ** 4 / 4 - t * x ** 2 / 2)
            ders["mask"] = sc * x * (x - t) * (1 - x)
            mags["mask"] = np.abs(sc) * (x ** 4 + np.abs(1 + t) * np.abs(x) ** 3 + np.abs(t) * x ** 2)
        vals["obj"], ders["obj"], mags["obj"] = (se_raw if s.background else se_sigmoid)(r["obj"])
        if not s.softmax and s.groups is None:
            vals["class"], ders["class"], mags["class"] = bce(r["class"])
        return vals, ders, mags

    def _softmax_groups(self) -> List[Tuple[int, int]]:
        return _groups(self.sel)

    def _ce(self, X: np.ndarray, groups: Optional[List[Tuple[int, int]]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Softmax cross-entropy per group of each assigned cell: value
        (B, n, H, W) and derivative over the class entries."""
        s = self.sel
        c0 = s.coords + 1
        tau = s.temperature
        value = np.zeros(X.shape[:2] + X.shape[3:])
        der = np.zeros_like(X[:, :, c0:])
        for off, size in groups if groups is not None else self._softmax_groups():
            if size == 0:
                continue
            sl = slice(c0 + off, c0 + off + size)
            has = s.has[:, :, sl]
            cells = has.any(axis=2)
            if not cells.any():
                continue
            if not (has.all(axis=2) | ~cells).all():
                raise NotAGradientError("a softmax group got deltas on only some of its entries")
            sc = np.where(has, s.scale[:, :, sl], 0)
            s_cell = sc.max(axis=2)
            if not np.all((sc == s_cell[:, :, None]) | ~has):
                raise NotAGradientError("a softmax group's entries have different scales")
            t = np.where(has, s.target[:, :, sl], 0)
            z = X[:, :, sl] / tau
            if not ((t.sum(axis=2) == 1) | ~cells).all() or not ((t == 0) | (t == 1)).all():
                raise NotAGradientError("a softmax group's targets are not one-hot")
            # delta = s*(t - p) over the whole group: s*T*CE(softmax(x/T), t),
            # with CE = log(1 + sum_{j != c} exp(z_j - z_c)) for target class c
            # (free of the cancellation in lse(z) - z_c when p_c is near 1).
            zc = np.sum(t * z, axis=2, keepdims=True)
            others = np.where(t == 1, -np.inf, z - zc)
            if size > 1:
                a = _logsumexp(others, axis=2)
                value += np.where(cells, s_cell * tau * _softplus(a), 0)
            lse = _logsumexp(z, axis=2)
            p = np.exp(z - lse[:, :, None])
            der[:, :, off:off + size] += np.where(has, sc * (p - t), 0)
        return value, der

    def _X(self, x: np.ndarray) -> np.ndarray:
        return _split(np.asarray(x, dtype=np.float64), self.sel.n)

    # -- public ----------------------------------------------------------------------------
    def value(self, x: np.ndarray) -> Tuple[float, Dict[str, float]]:
        """(loss, parts): float64 sums; the parts add up to the loss."""
        s = self.sel
        parts = {k: 0.0 for k in PARTS}
        if s.kind == "region" and s.build == "cpu":
            return 0.0, parts
        X = self._X(x)
        vals, _, _ = self._elementwise(X)
        assigned = s.assigned[:, :, None]
        for role in ("xy", "wh"):
            v = vals[role]
            parts[role] += float(np.sum(np.where(assigned, v, 0)))
            parts["prior"] += float(np.sum(np.where(assigned, 0, v)))
        parts["obj_pos"] = float(np.sum(np.where(assigned, vals["obj"], 0)))
        parts["obj_neg"] = float(np.sum(np.where(assigned, 0, vals["obj"])))
        if "mask" in vals:
            parts["mask"] = float(np.sum(vals["mask"]))
        if "class" in vals:
            parts["class"] = float(np.sum(vals["class"]))
        else:
            parts["class"] = float(np.sum(self._ce(X)[0]))
        loss = 0.0
        for k in PARTS:
            loss += parts[k]
        return loss, parts

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """The analytic gradient, in x's shape (float64)."""
        s = self.sel
        X = self._X(x)
        g = np.zeros_like(X)
        if s.kind == "region" and s.build == "cpu":
            return g.reshape(np.shape(x))
        _, ders, _ = self._elementwise(X)
        r = self._roles()
        for role, d in ders.items():
            g[:, :, r[role]] = d
        if "class" not in ders:
            g[:, :, r["class"]] = self._ce(X)[1]
        return g.reshape(np.shape(x))

    def _central(self, X: np.ndarray, step: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Central differences of each term on its own entries, and the size
        of the term values involved (for the rounding error)."""
        s = self.sel
        g = np.zeros_like(X)
        size = np.zeros_like(X)
        vp, _, mp = self._elementwise(X + step)
        vm, _, mm = self._elementwise(X - step)
        r = self._roles()
        for role in vp:
            g[:, :, r[role]] = (vp[role] - vm[role]) / (2 * step[:, :, r[role]])
            size[:, :, r[role]] = np.maximum(mp[role], mm[role])
        if "class" not in vp:
            c0 = s.coords + 1
            for off, gsize in self._softmax_groups():
                one = [(off, gsize)]
                for k in range(c0 + off, c0 + off + gsize):
                    if not s.has[:, :, k].any():
                        continue
                    Xp, Xm = X.copy(), X.copy()
                    Xp[:, :, k] += step[:, :, k]
                    Xm[:, :, k] -= step[:, :, k]
                    fp, fm = self._ce(Xp, one)[0], self._ce(Xm, one)[0]
                    g[:, :, k] = (fp - fm) / (2 * step[:, :, k])
                    size[:, :, k] = np.maximum(np.abs(fp), np.abs(fm))
        return g, size

    def numeric_gradient(self, x: np.ndarray, h: float = 1e-5, *, with_error: bool = False) -> Any:
        """Central differences of the implied loss, entry by entry (each
        separable term differenced on its own entry, each softmax group
        term on each of its entries), in float64, with a step of
        h*max(1, |x|).  With ``with_error``, also an estimate of the
        differences' own error: the change from doubling the step
        (truncation) plus the float64 rounding of the differenced values."""
        s = self.sel
        X = self._X(x)
        if s.kind == "region" and s.build == "cpu":
            z = np.zeros_like(X).reshape(np.shape(x))
            return (z, z) if with_error else z
        step = h * np.maximum(1.0, np.abs(X))
        g, size = self._central(X, step)
        if not with_error:
            return g.reshape(np.shape(x))
        g2, size2 = self._central(X, 2 * step)
        err = np.abs(g - g2) + 8 * np.finfo(np.float64).eps * np.maximum(size, size2) / step
        return g.reshape(np.shape(x)), err.reshape(np.shape(x))

    def rounding_bound(self, x: np.ndarray) -> np.ndarray:
        """Per entry, how far darknet's float32 net_delta may lie from the
        exact value of its own formula (see :func:`rounding_bound`)."""
        return rounding_bound(self.sel, x)

    @property
    def net_delta(self) -> np.ndarray:
        """What darknet hands on, in the input's layout: minus the gradient."""
        nd = self.sel.net_delta
        return nd.reshape(nd.shape[0], -1, nd.shape[3], nd.shape[4])


def _groups(s: Selection) -> List[Tuple[int, int]]:
    return s.groups if s.groups is not None else [(0, s.classes)]


def rounding_bound(s: Selection, x: np.ndarray, of: str = "net_delta",
                   positions: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
    """Per entry, how far darknet's float32 ``net_delta`` (or, with
    ``of="delta"``, the forward's own ``delta``) may lie from the exact value
    of its own formula: two float32 ULPs of every rounding step upstream
    takes (the output y, t - y, the scale, the GPU's (1-y)*y factor, and for
    a softmax the float sum over its group).  Where the value is exactly 0
    the bound is 1e-6 absolute.  This is the tolerance within which the
    implied loss's gradient equals -net_delta, and within which a float32
    implementation of darknet's formulas agrees with darknet; relative to the
    value itself it can be thousands of ULPs when t - y cancels (y's own
    rounding is half an ULP of y)."""
    if of not in ("net_delta", "delta"):
        raise ValueError(f"of must be 'net_delta' or 'delta', got {of!r}")
    u32 = lambda v: np.spacing(np.abs(v).astype(np.float32)).astype(np.float64)  # noqa: E731
    S = np.abs(np.where(s.has, s.scale, 0))
    T = np.abs(np.where(s.has, s.target, 0))
    V = s.output.astype(np.float64)
    gpu = of == "net_delta" and s.kind == "region" and s.build == "gpu"
    nothing = of == "net_delta" and s.kind == "region" and s.build == "cpu"
    nd = (s.net_delta if of == "net_delta" else s.delta).astype(np.float64)
    bound = u32(S * np.maximum(T, np.abs(V)))
    c0 = s.coords + 1
    # The box targets' own intermediate roundings: tx = x*W - i takes the
    # float32 product x*W (up to half an ULP of x*W, i.e. of tx + i; twice
    # that for [region]'s prior, whose x = (i + .5)/W is rounded too), and
    # tw = log(w*net_w/anchor) a float32 product and quotient (a relative
    # 2^-23 of the argument, an absolute 2^-23 after the log): what an
    # implementation computing the same formulas in float64 differs by.
    # ``positions`` (col, row) when s holds gathered cells rather than a grid.
    H, W = V.shape[3], V.shape[4]
    cells = positions if positions is not None else \
        (np.arange(W)[None, None, None, None, :], np.arange(H)[None, None, None, :, None])
    for e, idx in ((0, cells[0]), (1, cells[1])):
        bound[:, :, e] += 2 * S[:, :, e] * u32(T[:, :, e] + idx[:, :, 0])
    bound[:, :, 2:4] += S[:, :, 2:4] * 2.0 ** -23 * s.has[:, :, 2:4]
    if s.kind == "region":
        # rescore's target is box_iou in float32: its overlaps subtract
        # coordinates of about 1, so an overlap of size o carries about
        # 2^-24/o of relative error; 2^-16 of the IoU covers o >= 1/256.
        o = s.coords
        iou = (T[:, :, o] > 0) & (T[:, :, o] < 1)
        bound[:, :, o] += np.where(iou, S[:, :, o] * T[:, :, o] * 2.0 ** -16, 0)
    if s.kind == "region" and (s.softmax or s.groups is not None):
        # The CPU softmax: e = exp(x/T - max/T) with the argument rounded
        # in float (an absolute error that exp turns into a relative
        # one), then a float sum over the group and a division.
        rel = np.zeros_like(V)
        groups = list(_groups(s))
        start = c0
        if s.background and s.groups is None:
            groups, start = [(0, s.classes + 1)], s.coords
        X = _split(np.asarray(x, dtype=np.float64), s.n)
        tau = s.temperature or 1.0
        for off, size in groups:
            if size == 0:
                continue
            sl = slice(start + off, start + off + size)
            z = X[:, :, sl] / tau
            m = np.max(z, axis=2, keepdims=True)
            with np.errstate(invalid="ignore"):
                arg = np.abs(z) + np.abs(m) + np.abs(z - m)
            rel[:, :, sl] = 2.0 ** -24 * (np.nan_to_num(arg, nan=0.0, posinf=0.0) + size + 3)
        bound = bound + rel * S * np.abs(V)
    if gpu:
        idx = [0, 1, *range(4, s.coords)] + ([] if s.background else [s.coords])
        factor = np.ones_like(V)
        factor[:, :, idx] = np.abs((1 - V) * V)[:, :, idx]
        extra = np.zeros_like(V)
        extra[:, :, idx] = (np.abs(s.delta.astype(np.float64)) * u32(V))[:, :, idx]
        bound = bound * factor + extra
    if nothing:
        bound = np.zeros_like(V)
    bound = 2 * (bound + u32(nd))
    # Float32 underflow: darknet's double logistic keeps a subnormal where a
    # float32 sigmoid rounds to 0 (|x| beyond about 88); no more than that.
    bound = np.maximum(bound, 2.0 ** -126)
    out = np.where(nd == 0, 1e-6, bound)
    return out.reshape(out.shape[0], -1, out.shape[3], out.shape[4])


def yolo(x: np.ndarray, truth: Any, layer: YoloLayer, *, net_w: int = 416, net_h: int = 416) -> ImpliedLoss:
    _refuse_alexeyab(layer)
    if not isinstance(layer, YoloLayer):
        raise TypeError("yolo() needs a YoloLayer")
    return ImpliedLoss(select(x, truth, layer, net_w=net_w, net_h=net_h))


def region(x: np.ndarray, truth: Any, layer: RegionLayer, *, seen: int = 0, build: str = "cpu") -> ImpliedLoss:
    if not isinstance(layer, RegionLayer):
        raise TypeError("region() needs a RegionLayer")
    return ImpliedLoss(select(x, truth, layer, build=build, seen=seen))


def yolo_loss(x: np.ndarray, truth: Any, layer: YoloLayer, net_w: int = 416,
              net_h: int = 416) -> Tuple[float, Dict[str, float]]:
    """(loss, parts) of the [yolo] implied loss at x; its gradient in x is
    minus darknet's delta (see the module docstring for the terms)."""
    return yolo(x, truth, layer, net_w=net_w, net_h=net_h).value(x)


def region_loss(x: np.ndarray, truth: Any, layer: RegionLayer, seen: int = 0,
                build: str = "cpu") -> Tuple[float, Dict[str, float]]:
    """(loss, parts) of the [region] implied loss at x for the given build:
    on the CPU build a constant 0 (no gradient is handed on); on the GPU
    build squared errors on the sigmoid for x, y and objectness."""
    return region(x, truth, layer, seen=seen, build=build).value(x)

"""PyTorch modules for the implied loss (``pip install 'pydarknet_loss[torch]'``).

``YoloLoss`` and ``RegionLoss`` are drop-in losses whose autograd gradient
with respect to the layer's raw input is minus what darknet hands on: a
training loop that minimises them moves the network exactly as darknet
does.  Each call runs the oracle on the input (on the CPU, in float32) to
fix the selection (assignments, ignored cells, overwrites, targets and
scales), then evaluates the terms of :mod:`pydarknet_loss.implied` in
float64.

``YoloLoss`` hands back darknet's own delta as the gradient: ``x.grad`` is
``0 - net_delta`` bit for bit (times the incoming gradient), with the loss value
computed in float64 from the entries that have a term, so a step costs about
one oracle forward.  It has no second derivative.  ``RegionLoss`` evaluates
the terms in torch (float64) on the input's device and differentiates them.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from . import _buffers, _validate, implied
from .layers.pjreddie import RegionLayer, YoloLayer

__all__ = ["YoloLoss", "RegionLoss"]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    # torch.sigmoid: the same value in float64, with a gradient that stays
    # finite where exp(-x) overflows.
    return torch.sigmoid(x)


class _ImpliedModule(nn.Module):
    last_parts: Optional[Dict[str, float]]

    def __init__(self) -> None:
        super().__init__()
        self.last_parts = None

    def _select(self, x: np.ndarray, truth: Any) -> implied.Selection:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, truth: Any) -> torch.Tensor:
        """The implied loss at ``x`` (float32, (B, C, H, W), darknet's
        layout); ``truth`` as the layer's forward takes it."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.float32:
            raise TypeError(f"x must be float32 (the oracle's arithmetic is float32), got {x.dtype}")
        _validate.tensor_usable("x", x)  # a meta, sparse or nested tensor has no values to read
        if isinstance(self, YoloLoss):
            return _yolo_loss(self, x, truth)
        sel = self._select(x.detach().cpu().numpy(), truth)
        loss, parts = _terms(implied.ImpliedLoss(sel), x)
        self.last_parts = {k: float(v.detach()) for k, v in parts.items()}
        return loss


class YoloLoss(_ImpliedModule):
    """The [yolo] implied loss (see pydarknet_loss.implied)."""

    def __init__(self, layer: YoloLayer, net_w: int = 416, net_h: int = 416, build: str = "cpu") -> None:
        """``build``: the darknet build whose selection and delta the loss
        follows: "cpu", or "gpu" (the GPU build's device logistic, computed
        on this machine's GPU: needs the CUDA build and a device).  x may be
        on any device; the gradient comes back on x's."""
        super().__init__()
        if not isinstance(layer, YoloLayer):
            raise TypeError("YoloLoss needs a YoloLayer")
        if build not in ("cpu", "gpu"):
            raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
        self.layer, self.net_w, self.net_h, self.build = layer, net_w, net_h, build

    def _select(self, x: np.ndarray, truth: Any) -> implied.Selection:
        return implied.select(x, truth, self.layer, net_w=self.net_w, net_h=self.net_h, activations=self.build)


class RegionLoss(_ImpliedModule):
    """The [region] implied loss for a darknet build's backward: ``"gpu"``
    (squared errors on the sigmoid for x, y and objectness) or ``"cpu"`` (a
    constant: the CPU build hands on no gradient).  ``activations``: whose
    forward fixes the selection: "cpu" (default: the CPU build's double
    logistic and softmax, computed here) or "gpu" (the GPU build's device
    kernels on this machine's GPU, needs the CUDA build and a device): with
    ``build="gpu", activations="gpu"`` the loss is the GPU build's, exactly."""

    def __init__(self, layer: RegionLayer, seen: int = 0, build: str = "gpu", activations: str = "cpu") -> None:
        super().__init__()
        if not isinstance(layer, RegionLayer):
            raise TypeError("RegionLoss needs a RegionLayer")
        if build not in ("cpu", "gpu"):
            raise ValueError(f"build must be 'cpu' or 'gpu', got {build!r}")
        if activations not in ("cpu", "gpu"):
            raise ValueError(f"activations must be 'cpu' or 'gpu', got {activations!r}")
        self.layer, self.seen, self.build, self.activations = layer, seen, build, activations

    def _select(self, x: np.ndarray, truth: Any) -> implied.Selection:
        return implied.select(x, truth, self.layer, build=self.build, seen=self.seen, activations=self.activations)


# ---- YoloLoss: darknet's delta as the gradient --------------------------------

#: Per thread: the oracle's output and selection buffers, reused from call to
#: call (fresh ones would cost the kernel's page zeroing every step).  The
#: delta is fresh each call: it becomes the gradient.
_BUFFERS = threading.local()


def _buffer(key: Tuple[Any, ...], shape: Tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    cache = getattr(_BUFFERS, "cache", None)
    if cache is None:
        cache = _BUFFERS.cache = {}
    if key not in cache:
        cache[key] = np.empty(shape, dtype)
    return cache[key]


class _DeltaGradient(torch.autograd.Function):
    """value(x) with gradient 0 - delta: darknet's own, bit for bit."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: torch.Tensor, minus_delta: torch.Tensor) -> torch.Tensor:
        ctx.minus_delta = minus_delta
        ctx.device = x.device
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        g = ctx.minus_delta
        if g is None:
            raise RuntimeError("YoloLoss: backward ran twice through one loss value; compute the loss again")
        ctx.minus_delta = None  # handed on (and scaled in place): the buffer is this call's own
        if not bool(grad == 1):
            g.mul_(grad.to(dtype=torch.float32, device="cpu"))
        return g.to(ctx.device), None, None


def _yolo_loss(module: "YoloLoss", x: torch.Tensor, truth: Any) -> torch.Tensor:
    """The [yolo] implied loss: forward_yolo_layer_terms computes its parts
    (implied.ImpliedLoss.value's terms, float64) on the C core's threads and
    leaves the gradient, 0 - delta, in the delta buffer.  Where a cell went
    through the truth_thresh branch, which that selection does not cover,
    the forward runs again with the dense targets and the parts are computed
    here."""
    layer = module.layer
    xn = x.detach().cpu().numpy()
    b, c, h, w = xn.shape
    n, e = layer.n, c // layer.n
    rows = b * layer.max_boxes
    out = _buffer(("out",) + xn.shape, xn.shape)
    delta = _buffers.empty(xn.shape)  # becomes the gradient; recycled once that is gone
    terms = (_buffer(("obj_t", b, n, h * w), (b, n, h * w)), _buffer(("obj_s", b, n, h * w), (b, n, h * w)),
             _buffer(("cells", rows), (rows,), np.int32), _buffer(("cell_t", rows, e), (rows, e)),
             _buffer(("cell_s", rows, e), (rows, e)), np.zeros(len(implied.PARTS), np.float64))
    net: Dict[str, Any] = dict(net_w=module.net_w, net_h=module.net_h, index=0)
    if module.build == "gpu":
        # The compact selection reads the raw logits from the forward's
        # input, which the GPU build's forward gets activated: the dense one.
        net["build"] = "gpu"
        parts = _dense_yolo_parts(layer, xn, truth, out, delta, net)
        module.last_parts = parts
        loss = torch.tensor(sum(parts[k] for k in implied.PARTS), dtype=torch.float64, device=x.device)
        return _DeltaGradient.apply(x, loss, torch.from_numpy(delta))
    call, _ = layer._run(xn, truth, train=True, out=(out, delta), terms=terms, **net)
    if getattr(call, "terms_dense", False):
        parts = _dense_yolo_parts(layer, xn, truth, out, delta, net)
    else:
        parts = dict(zip(implied.PARTS, map(float, terms[5])))
    value = 0.0
    for k in implied.PARTS:
        value += parts[k]
    module.last_parts = parts
    loss = torch.tensor(value, dtype=torch.float64, device=x.device)
    return _DeltaGradient.apply(x, loss, torch.from_numpy(delta))


def _dense_yolo_parts(layer: YoloLayer, xn: np.ndarray, truth: Any, out: np.ndarray, delta: np.ndarray,
                      net: Dict[str, Any]) -> Dict[str, float]:
    """The parts from a forward with the dense targets (and delta turned into
    0 - delta, as forward_yolo_layer_terms leaves it)."""
    b, c, h, w = xn.shape
    n, e = layer.n, c // layer.n
    tg = _buffer(("target",) + xn.shape, xn.shape)
    sc = _buffer(("scale",) + xn.shape, xn.shape)
    layer._run(xn, truth, train=True, out=(out, delta), targets=(tg, sc), **net)
    np.subtract(np.float32(0), delta, out=delta)
    X, T, S = (a.reshape(b, n, e, h * w) for a in (xn, tg, sc))
    assigned = ~np.isnan(S[:, :, 5])
    os64 = S[:, :, 4].astype(np.float64)
    has = ~np.isnan(os64)
    obj = np.zeros_like(os64)
    obj[has] = os64[has] * implied._bce(X[:, :, 4][has].astype(np.float64), T[:, :, 4][has].astype(np.float64))
    parts = {k: 0.0 for k in implied.PARTS}
    parts["obj_pos"] = float(np.sum(obj[assigned]))
    parts["obj_neg"] = float(np.sum(obj[~assigned]))
    ib, ia, ic = np.nonzero(assigned)
    if len(ib):
        xs = X[ib, ia, :, ic].astype(np.float64)  # (cells, entries)
        ss, ts = S[ib, ia, :, ic], T[ib, ia, :, ic]
        on = ~np.isnan(ss)
        s64 = np.where(on, ss, 0).astype(np.float64)
        t64 = np.where(on, ts, 0).astype(np.float64)
        parts["xy"] = float(np.sum(s64[:, 0:2] * implied._bce(xs[:, 0:2], t64[:, 0:2])))
        parts["wh"] = float(np.sum(s64[:, 2:4] / 2 * (xs[:, 2:4] - t64[:, 2:4]) ** 2))
        parts["class"] = float(np.sum(s64[:, 5:] * implied._bce(xs[:, 5:], t64[:, 5:])))
    return parts


def _terms(loss: implied.ImpliedLoss, x: torch.Tensor) -> Any:
    """The same terms as ImpliedLoss.value, in torch (float64)."""
    s = loss.sel
    dev = x.device
    parts = {k: torch.zeros((), dtype=torch.float64, device=dev) for k in implied.PARTS}
    if s.kind == "region" and s.build == "cpu":
        return (x * 0).sum().double(), parts
    b, c, h, w = x.shape
    X = x.double().reshape(b, s.n, c // s.n, h, w)
    has = torch.from_numpy(s.has).to(dev)
    S = torch.from_numpy(np.where(s.has, s.scale, 0.0)).to(dev)
    T = torch.from_numpy(np.where(s.has, s.target, 0.0)).to(dev)
    assigned = torch.from_numpy(s.assigned[:, :, None]).to(dev)
    co = s.coords

    def bce(sl: slice) -> torch.Tensor:
        x, t = X[:, :, sl], T[:, :, sl]
        # softplus(x) - t*x: its autograd derivative is sigmoid(x) - t
        # everywhere (a sum of clamps and |x| would give 1 - 2t at x == 0,
        # where their one-sided derivatives meet).  Above the threshold
        # softplus returns x, whose derivative 1 is sigmoid(x) to 2e-22.
        return S[:, :, sl] * (torch.nn.functional.softplus(x, beta=1, threshold=50) - t * x)

    def se_raw(sl: slice) -> torch.Tensor:
        return S[:, :, sl] / 2 * (X[:, :, sl] - T[:, :, sl]) ** 2

    def se_sigmoid(sl: slice) -> torch.Tensor:
        return S[:, :, sl] / 2 * (_sigmoid(X[:, :, sl]) - T[:, :, sl]) ** 2

    xy = bce(slice(0, 2)) if s.kind == "yolo" else se_sigmoid(slice(0, 2))
    wh = se_raw(slice(2, 4))
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    for name, v in (("xy", xy), ("wh", wh)):
        parts[name] = torch.where(assigned, v, zero).sum()
        parts["prior"] = parts["prior"] + torch.where(assigned, zero, v).sum()
    obj_sl = slice(co, co + 1)
    if s.kind == "yolo":
        obj = bce(obj_sl)
    else:
        obj = (se_raw if s.background else se_sigmoid)(obj_sl)
    parts["obj_pos"] = torch.where(assigned, obj, zero).sum()
    parts["obj_neg"] = torch.where(assigned, zero, obj).sum()
    if s.kind == "region" and co > 4:
        m, t, sc = X[:, :, 4:co], T[:, :, 4:co], S[:, :, 4:co]
        parts["mask"] = (sc * ((1 + t) * m ** 3 / 3 - m ** 4 / 4 - t * m ** 2 / 2)).sum()
    cls = slice(co + 1, None)
    if s.kind == "yolo" or (not s.softmax and s.groups is None):
        parts["class"] = bce(cls).sum()
    else:
        total = zero
        tau = s.temperature
        for off, size in loss._softmax_groups():
            if size < 2:
                continue
            sl = slice(co + 1 + off, co + 1 + off + size)
            cells = has[:, :, sl].any(dim=2)
            if not bool(cells.any()):
                continue
            t = T[:, :, sl]
            sc = S[:, :, sl].amax(dim=2)
            z = X[:, :, sl] / tau
            zc = (t * z).sum(dim=2, keepdim=True)
            others = torch.where(t == 1, torch.tensor(-np.inf, dtype=torch.float64, device=dev), z - zc)
            a = torch.logsumexp(others, dim=2)
            total = total + torch.where(cells, sc * tau * _softplus(a), zero).sum()
        parts["class"] = total
    value = zero
    for k in implied.PARTS:
        value = value + parts[k]
    return value, parts


# ---- checking a user's PyTorch loss -------------------------------------------------------

def check_gradient(loss_fn: Any, layer: Any, x: Any, truth: Any, *, net_w: int = 416, net_h: int = 416,
                   seen: int = 0, layout: str = "nchw", tolerance: str = "float32", loss_truth: Any = None,
                   parts: Any = None, **tol: Any) -> Any:
    """Check a PyTorch loss against darknet in one call.

    ``loss_fn(x, truth)`` is your loss: it gets a float32 tensor copy of
    ``x`` (in ``layout``, on ``x``'s device when ``x`` is a tensor) that
    requires grad, and ``truth`` (or ``loss_truth``, when your loss takes
    its truths in another format than darknet's), and returns a scalar.
    Its gradient is taken with autograd, negated (darknet's delta is minus
    a gradient) and compared with what darknet hands on for the same input
    (``net_delta``: the delta for [yolo]; for [region], the GPU build's
    delta times the logistic's derivative, the CPU build handing on
    nothing), with the diagnosis.  Returns the
    :class:`~pydarknet_loss.parity.compare.ParityReport`.

    ``parts``: judge only those parts of darknet's delta (compare's
    ``parts=``, e.g. ``("objectness", "classes")`` for a port whose box loss
    differs on purpose); the others' failing elements are reported as known
    departures, not failures.  The loss value is not compared here.
    """
    from .layers import alexeyab
    from .layers.layout import check, to_nchw
    from .parity.compare import compare

    check(layout)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(x, truth), got {type(loss_fn).__name__}")
    if parts is not None:  # refused before the loss runs
        from .parity.compare import PART_GROUPS
        from .parity.diagnosis import PARTS

        _validate.parts_option(parts, PART_GROUPS, PARTS)
    device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    xn = _validate.tensor_array("x", x) if isinstance(x, torch.Tensor) else np.asarray(x)
    if xn.dtype != np.float32:
        raise TypeError(f"x must be float32 (the oracle's arithmetic is float32), got {xn.dtype}")
    xd = to_nchw(xn, layout, layer.n)
    xt = torch.tensor(xn, device=device, requires_grad=True)
    loss = loss_fn(xt, truth if loss_truth is None else loss_truth)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}"
                        + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else ""))
    (grad,) = torch.autograd.grad(loss.reshape(()), xt)
    minus_grad = (-grad).detach().to(torch.float32)
    net = dict(net_w=net_w, net_h=net_h) if not isinstance(layer, RegionLayer) else dict(seen=seen)
    build = "cpu"
    if isinstance(layer, RegionLayer):
        res = layer.forward(xd, truth, seen=seen)
        expected = {"delta": res.delta, "cost": res.cost}
        build = "gpu"  # compare applies the GPU build's factor to the oracle's delta
    elif isinstance(layer, (YoloLayer, alexeyab.YoloLayer, alexeyab.GaussianYoloLayer)):
        res = layer.forward(xd, truth, net_w=net_w, net_h=net_h)
        expected = {"delta": res.delta, "cost": res.cost}
    else:
        raise TypeError("layer must be a YoloLayer, RegionLayer, alexeyab.YoloLayer or hankai.YoloLayer (or "
                        "alexeyab.GaussianYoloLayer)")
    if parts is not None:
        tol["parts"] = parts
    return compare(expected, {"delta": minus_grad}, layer, input=xd, truth=truth, layout=layout,
                   tolerance=tolerance, build=build, **net, **tol)


def fuzz_gradient(loss_fn: Any, layer: Any = None, *, loss_truth: Optional[Any] = None, **kw: Any) -> Any:
    """:func:`pydarknet_loss.fuzz` for a PyTorch loss: on each drawn case
    ``loss_fn(x, truth)`` runs on a tensor copy of ``x`` with autograd and
    its ``-grad`` is compared with what darknet hands on, as in
    :func:`check_gradient`: the delta for [yolo]; for [region]
    (``kind="region"``) the GPU build's delta times the logistic's
    derivative (``build="gpu"``: the CPU build hands on nothing).
    ``loss_truth(truth)``, when given, converts darknet's truth buffer into
    what ``loss_fn`` takes.  Other keywords are :func:`pydarknet_loss.fuzz`'s."""
    from .parity.fuzz import fuzz

    if kw.get("kind", "yolo") not in ("yolo", "region"):
        raise ValueError("fuzz_gradient checks pjreddie's [yolo] (kind='yolo') and [region] (kind='region') "
                         "losses, whose delta is a gradient")
    if kw.get("kind") == "region":
        kw.setdefault("build", "gpu")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(x, truth), got {type(loss_fn).__name__}")

    def minus_grad(x: np.ndarray, truth: np.ndarray, layer: Any, net_w: int = 416, net_h: int = 416,
                   seen: int = 0) -> np.ndarray:
        xt = torch.tensor(x, requires_grad=True)
        loss = loss_fn(xt, truth if loss_truth is None else loss_truth(truth))
        (grad,) = torch.autograd.grad(loss.reshape(()), xt)
        return (-grad).detach().to(torch.float32).numpy()

    return fuzz(minus_grad, layer, **kw)


# ==== issue 23: YOLOv1's [detection] ====

class DetectionLoss(nn.Module):
    """The [detection] (YOLOv1) implied loss: ``½ Σ s·(t − out)²`` over the terms
    darknet writes (no-object confidences, the responsible box's confidence, box
    and its cell's classes; ``rescore``'s IoU target and the pick held constant),
    whose gradient with respect to the layer's input is minus darknet's delta.
    ``x.grad`` is ``0 - delta`` bit for bit (times the incoming gradient); the
    value is computed in float64 from the delta as ``Σ d²/(2s)``.

    Each call is a training forward of ``layer``: with ``random=1`` and
    ``seen < 64000`` it draws from the layer's rand() as upstream's training
    steps do.  Refused: ``softmax=1`` (the class delta is then taken on the
    softmax's output, not a gradient with respect to the input:
    :class:`pydarknet_loss.implied.NotAGradientError`), and a cell whose pick
    falls outside its own boxes (upstream's "box -1"; forced's box 1 with
    num=1): its terms land on another cell's entries."""

    last_parts: Optional[Dict[str, float]]

    def __init__(self, layer: Any, seen: int = 0) -> None:
        super().__init__()
        from .layers.detection import DetectionLayer

        if not isinstance(layer, DetectionLayer):
            raise TypeError("DetectionLoss needs a pydarknet_loss.DetectionLayer")
        if layer.softmax:
            raise implied.NotAGradientError(
                "[detection] with softmax=1: darknet's class delta is class_scale*(t - p) on the softmax's output p, "
                "handed on as if it were the gradient with respect to the logits; it is not the gradient of any "
                "function of the layer's input")
        self.layer, self.seen = layer, int(seen)
        self.last_parts = None

    def forward(self, x: torch.Tensor, truth: Any) -> torch.Tensor:
        """The loss at ``x`` (float32, (B, side*side*((1+coords)*num + classes))); ``truth`` as
        DetectionLayer.forward takes it."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.float32:
            raise TypeError(f"x must be float32 (the oracle's arithmetic is float32), got {x.dtype}")
        layer = self.layer
        res = layer.forward(x.detach().cpu().numpy(), truth, seen=self.seen)
        picks = res.picks
        if ((picks == -1) | (picks >= layer.num)).any():
            b, i = (int(v) for v in np.argwhere((picks == -1) | (picks >= layer.num))[0])
            raise ValueError(f"image {b} cell {i}: the box upstream uses is not one of the cell's own (no box "
                             "qualifies: 'box -1', or forced's box 1 with num=1), so its terms land on another "
                             "cell's entries; no implied loss is defined there")
        loc, n, cls, co = layer.side * layer.side, layer.num, layer.classes, layer.coords
        bsz = picks.shape[0]
        scale = np.zeros((bsz, layer.inputs), np.float64)
        part = np.zeros((bsz, layer.inputs), np.int8)  # 0 no term, 1 class, 2 no-object, 3 object, 4 box
        obj_b, obj_i = np.nonzero(picks >= 0)
        for b, i in zip(obj_b.tolist(), obj_i.tolist()):
            scale[b, i * cls:(i + 1) * cls], part[b, i * cls:(i + 1) * cls] = float(layer.class_scale), 1
        conf = slice(loc * cls, loc * (cls + n))
        scale[:, conf], part[:, conf] = float(layer.noobject_scale), 2
        for b, i in zip(obj_b.tolist(), obj_i.tolist()):
            j = int(picks[b, i])
            scale[b, loc * cls + i * n + j], part[b, loc * cls + i * n + j] = float(layer.object_scale), 3
            k = loc * (cls + n) + (i * n + j) * co
            scale[b, k:k + 4], part[b, k:k + 4] = float(layer.coord_scale), 4
        d = res.delta.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(scale != 0, d * d / (2 * np.where(scale != 0, scale, 1)), 0.0)
        names = {1: "class", 2: "noobj", 3: "obj", 4: "box"}
        self.last_parts = {names[k]: float(terms[part == k].sum()) for k in names}
        value = torch.tensor(float(terms.sum()), dtype=torch.float64, device=x.device)
        minus_delta = torch.from_numpy(np.float32(0) - res.delta)
        return _DeltaGradient.apply(x, value, minus_delta)


__all__.append("DetectionLoss")


# ==== issue 23: AlexeyAB's [region] (YOLOv2) ====

class ABRegionLoss(nn.Module):
    """AlexeyAB's [region] implied loss: the terms the CPU forward writes last,
    ``½ s (t − σ(x))²`` on x, y and objectness, ``½ s (t − x)²`` on w, h, and on the
    classes ``s·(logsumexp(z) − t·z)`` (cross-entropy, ``softmax=1``) or
    ``½ s (t − x)²`` (raw), targets and scales held constant (``rescore``'s IoU,
    ``classfix``).  Its gradient with respect to the layer's raw input is minus
    darknet's delta: ``x.grad`` is ``0 - delta`` bit for bit (what backward hands on
    in both of AlexeyAB's builds), the value is computed in float64.  Refused:
    ``focal_loss=1`` (its class delta is not a gradient:
    :class:`pydarknet_loss.implied.NotAGradientError`)."""

    last_parts: Optional[Dict[str, float]]

    def __init__(self, layer: Any, seen: int = 0) -> None:
        super().__init__()
        from .layers.ab_region import RegionLayer as ABRegionLayer

        if not isinstance(layer, ABRegionLayer):
            raise TypeError("ABRegionLoss needs a pydarknet_loss.alexeyab.RegionLayer")
        if layer.focal_loss:
            raise implied.NotAGradientError(
                "AlexeyAB's [region] with focal_loss=1: every class delta is multiplied by the target class's focal "
                "factor, which is not the gradient of any function of the input")
        self.layer, self.seen = layer, int(seen)
        self.last_parts = None

    def terms(self, x: torch.Tensor, truth: Any) -> Tuple[torch.Tensor, Any]:
        """(value, oracle result): the implied loss as a differentiable float64 torch
        expression of ``x`` (its autograd gradient approximates 0 - delta in
        float64), and the oracle's result."""
        layer = self.layer
        res, target, scale = layer.terms(x.detach().cpu().numpy(), truth, seen=self.seen)
        b, c, h, w = x.shape
        size = layer.coords + 1 + layer.classes
        z = x.to(torch.float64).reshape(b, layer.num, size, h, w)
        t = torch.from_numpy(target.astype(np.float64)).to(x.device).reshape(z.shape)
        s_np = scale.astype(np.float64).reshape(b, layer.num, size, h, w)
        has = torch.from_numpy(~np.isnan(s_np)).to(x.device)
        s = torch.from_numpy(np.nan_to_num(s_np, nan=0.0)).to(x.device)
        parts: Dict[str, torch.Tensor] = {}
        sig = torch.sigmoid(z[:, :, [0, 1, 4]])
        sq = 0.5 * s[:, :, [0, 1, 4]] * (t[:, :, [0, 1, 4]] - sig) ** 2
        parts["xy"] = torch.where(has[:, :, [0, 1]], sq[:, :, :2], torch.zeros_like(sq[:, :, :2])).sum()
        parts["obj"] = torch.where(has[:, :, 4], sq[:, :, 2], torch.zeros_like(sq[:, :, 2])).sum()
        wh = 0.5 * s[:, :, 2:4] * (t[:, :, 2:4] - z[:, :, 2:4]) ** 2
        parts["wh"] = torch.where(has[:, :, 2:4], wh, torch.zeros_like(wh)).sum()
        cz, ct, cs, ch = (a[:, :, 5:5 + layer.classes] for a in (z, t, s, has))
        if layer.softmax:
            group = ch.any(dim=2)  # a class group is written whole, with one scale
            ce = cs[:, :, 0] * (torch.logsumexp(cz, dim=2) - (ct * cz).sum(dim=2))
            parts["class"] = torch.where(group, ce, torch.zeros_like(ce)).sum()
        else:
            sqc = 0.5 * cs * (ct - cz) ** 2
            parts["class"] = torch.where(ch, sqc, torch.zeros_like(sqc)).sum()
        value = parts["xy"] + parts["wh"] + parts["obj"] + parts["class"]
        self.last_parts = {k: float(v.detach()) for k, v in parts.items()}
        return value, res

    def forward(self, x: torch.Tensor, truth: Any) -> torch.Tensor:
        """The loss at ``x`` (float32 (B, C, H, W), darknet's layout); ``truth`` as the
        layer's forward takes it.  Gradient: 0 - delta, bit for bit."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.float32:
            raise TypeError(f"x must be float32 (the oracle's arithmetic is float32), got {x.dtype}")
        with torch.no_grad():
            value, res = self.terms(x.detach(), truth)
        return _DeltaGradient.apply(x, value.detach(), torch.from_numpy(np.float32(0) - res.delta))


__all__.append("ABRegionLoss")

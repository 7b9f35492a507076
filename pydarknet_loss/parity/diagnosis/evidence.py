"""What the oracle did on one input: its forward's arrays (input, output,
delta, cost), every element's target and scale, darknet's own rounding
bound per element, and the record of its decisions (darknet_src/record.c:
which truth rows it read, each row's anchor and cell, each cell's best IoU),
all computed with upstream's own arithmetic."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ... import _buffers, _native, _validate
from ...implied import Selection, rounding_bound

F = np.float32

def cell_index(flat: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Flat element indices into a (B, n, entries, H, W) array -> the linear
    indices of their cells in (B, n, H, W) (the entry axis dropped)."""
    P, hw = shape[2], shape[3] * shape[4]
    return (flat // (P * hw)) * hw + flat % hw


class Evidence:
    """The oracle's forward on one input, and its record of the decisions.

    Only the forward runs when it is made; the selection (every element's
    target and scale), the record (record.c), the derived assignments and
    the full rounding bounds are computed when first asked for, so that a
    comparison that passes, or fails on a few cells, pays for what it uses."""

    def __init__(self, layer: Any, kind: str, X: np.ndarray, Y: np.ndarray, D: np.ndarray, truth: np.ndarray,
                 net_w: int, net_h: int, seen: int, cost: np.float32, *, call: Any = None,
                 sel: Optional[Selection] = None, bound: Optional[Dict[str, np.ndarray]] = None,
                 rec: Optional[Dict[str, np.ndarray]] = None, x4: Optional[np.ndarray] = None) -> None:
        self.layer, self.kind = layer, kind
        self.X, self.Y, self.D = X, Y, D  #: raw input, output, delta, (B, n, P, H, W)
        self.truth = truth  #: packed (B, rows, cols)
        self.net_w, self.net_h, self.seen, self.cost = net_w, net_h, seen, cost
        self.build = "cpu"  #: whose delta the implementation is compared with (compare(build=))
        self._call, self._sel, self._x4 = call, sel, x4
        self._bound: Dict[str, np.ndarray] = dict(bound or {})
        self._rec = rec
        self._derived = rec is not None and not rec
        self._assigned: Dict[Tuple[int, int, int, int], List[int]] = {}
        self._thresh_cells: Optional[np.ndarray] = None
        self._row_cell: Optional[np.ndarray] = None
        self._row_round: Optional[np.ndarray] = None
        self._row_anchor: Optional[np.ndarray] = None

    def _split32(self, name: str) -> Optional[np.ndarray]:
        """The forward's float32 target or target_scale, (B, n, P, H, W), a view (no copy)."""
        if self._call is None:
            return None
        a = getattr(self._call, name)
        return a.reshape(a.shape[0], self.layer.n, a.shape[1] // self.layer.n, a.shape[2], a.shape[3])

    @property
    def scale32(self) -> Optional[np.ndarray]:
        """Every element's scale as the forward left it (float32, NaN: no term); ``sel.scale`` without the copy."""
        return self._split32("target_scale")

    @property
    def target32(self) -> Optional[np.ndarray]:
        """Every element's target as the forward left it (float32); ``sel.target`` without the copy."""
        return self._split32("target")

    def sel_ix(self, name: str, ix: Tuple[Any, ...]) -> np.ndarray:
        """``sel.target[ix]``, ``sel.scale[ix]`` or ``sel.has[ix]``: the same
        values, read from the forward's float32 arrays when the selection
        (whole float64 copies) is not made."""
        if self._sel is None and self._call is not None:
            if name == "has":
                return ~np.isnan(self.scale32[ix])  # type: ignore[index]
            if name in ("target", "scale"):
                return (self.target32 if name == "target" else self.scale32)[ix].astype(np.float64)  # type: ignore[index]
        sel = self.sel
        assert sel is not None
        return getattr(sel, name)[ix]

    @property
    def has_selection(self) -> bool:
        """Whether ``sel`` is (or can be made): ``sel is not None`` without making it."""
        return self._sel is not None or self._call is not None

    @property
    def sel(self) -> Optional[Selection]:
        """Targets and scales of every element (None for AlexeyAB's layer)."""
        if self._sel is None and self._call is not None:
            self._sel = _selection(self.layer, self._call)
        return self._sel

    @property
    def rec(self) -> Dict[str, np.ndarray]:
        """record.c's arrays (empty for AlexeyAB's layer)."""
        if self._rec is None:
            self._rec = _native.record(self._call, self.truth, net_w=self.net_w, net_h=self.net_h)
        if not self._derived:
            self._derived = True
            _derive(self)
        return self._rec

    def _derive_once(self) -> None:
        self.rec  # noqa: B018  (computes and derives)

    @property
    def assigned(self) -> Dict[Tuple[int, int, int, int], List[int]]:
        """(image, mask index, row, col) -> the truth rows loop 2 writes there, in order."""
        self._derive_once()
        return self._assigned

    @property
    def thresh_cells(self) -> Optional[np.ndarray]:
        self._derive_once()
        return self._thresh_cells

    @property
    def row_cell(self) -> Optional[np.ndarray]:
        self._derive_once()
        return self._row_cell

    @property
    def row_round(self) -> Optional[np.ndarray]:
        self._derive_once()
        return self._row_round

    @property
    def row_anchor(self) -> Optional[np.ndarray]:
        self._derive_once()
        return self._row_anchor

    def bound_for(self, name: str) -> np.ndarray:
        """Darknet's own rounding bound of each element of an array
        ("delta" or "output"), (B, n, P, H, W), computed when first asked for."""
        if name not in self._bound:
            if name == "delta" and self._call is not None and not (
                    self.kind == "region" and (self.layer.softmax or self.layer.tree is not None)):
                # In C, the same numbers (tests/test_compare.py checks them against rounding_bound).
                self._bound[name] = _native.delta_bound(self._call, self.layer.n, self.layer.coords,
                                                        self.kind == "region")
            elif name == "delta":
                assert self.sel is not None and self._x4 is not None
                b = rounding_bound(self.sel, self._x4, of="delta")
                self._bound[name] = b.reshape(self.D.shape)
            else:
                self._bound[name] = _output_bound(self.layer, self.Y, self.X)
        return self._bound[name]

    def _bound_in_c(self, name: str) -> bool:
        """Whether bound_for(name) is dn_delta_bound's (then dn_delta_bound_at gives its values anywhere)."""
        return name == "delta" and self._call is not None and not (
            self.kind == "region" and (self.layer.softmax or self.layer.tree is not None))

    def bound_flat(self, name: str, flat: np.ndarray) -> np.ndarray:
        """``bound_for(name).reshape(-1)[flat]``, the same bits, computed at
        those elements only (in C) when the whole array's is not at hand."""
        if name not in self._bound and self._bound_in_c(name):
            return _native.delta_bound_at(self._call, self.layer.n, self.layer.coords, self.kind == "region",
                                          flat)
        return self.bound_for(name).reshape(-1)[flat]

    def bound_at(self, name: str, flat: np.ndarray) -> np.ndarray:
        """The bound at some elements only (flat indices into the (B, n,
        entries, H, W) array): through their cells when few, in C at those
        elements (the whole array's values) when many."""
        if name in self._bound or (name == "delta" and self._call is None):
            return self.bound_for(name).reshape(-1)[flat]
        B, n, P, H, W = self.D.shape
        cell = cell_index(flat, self.D.shape)
        seen = np.zeros(B * n * H * W, bool)
        seen[cell] = True
        if np.count_nonzero(seen) * 8 > self.D.size // P:  # many cells: the whole array's values
            return self.bound_flat(name, flat)
        e = (flat // (H * W)) % P
        uniq, inv = np.unique(cell, return_inverse=True)
        cells = np.unravel_index(uniq, self.D.shape[:2] + self.D.shape[3:])
        return self.bound_cells(name, cells)[inv.reshape(-1), e]

    def bound_cells(self, name: str, cells: Tuple[np.ndarray, ...]) -> np.ndarray:
        """The bound of every entry of some cells only: ``cells`` = (b, a,
        row, col) index arrays; returns (K, entries).  What a comparison
        needs when few cells differ."""
        b, a, j, i = cells
        many = b.size * 8 > self.D.shape[0] * self.D.shape[1] * self.D.shape[3] * self.D.shape[4]
        if name in self._bound or (name == "delta" and (self._call is None or many)):
            return self.bound_for(name)[b, a, :, j, i]
        if name == "output":
            Y = self.Y[b, a, :, j, i][:, None, :, None, None]
            X = self.X[b, a, :, j, i][:, None, :, None, None]
            return _output_bound(self.layer, Y, X)[:, 0, :, 0, 0]
        assert self._call is not None
        n = self.layer.n

        def gather(a4: np.ndarray) -> np.ndarray:
            v = a4.reshape(a4.shape[0], n, -1, a4.shape[2], a4.shape[3])[b, a, :, j, i]
            return v[:, None, :, None, None]
        c = self._call
        sel = Selection(kind=self.kind, build="cpu", target=gather(c.target).astype(np.float64),
                        scale=gather(c.target_scale).astype(np.float64), output=gather(c.output),
                        delta=gather(c.delta), net_delta=gather(c.delta), n=1, coords=self.layer.coords,
                        classes=self.layer.classes, **_region_extra(self.layer))
        X4 = self.X[b, a, :, j, i][:, :, None, None]
        out = rounding_bound(sel, X4, of="delta", positions=(i[:, None, None, None, None], j[:, None, None, None, None]))
        return out[:, :, 0, 0]

    def expected(self) -> Dict[str, Any]:
        """The oracle's output, delta and cost on this input, darknet's layout."""
        join = lambda a: a.reshape(a.shape[0], -1, a.shape[3], a.shape[4])  # noqa: E731
        return {"output": join(self.Y), "delta": join(self.D), "cost": self.cost}

    @property
    def coords(self) -> int:
        return int(self.layer.coords)

    @property
    def ignore(self) -> float:
        return float(self.layer.ignore_thresh if self.kind == "yolo" else self.layer.thresh)

    def anchor_name(self, a: int) -> str:
        if self.kind == "yolo":
            return f"anchor {int(self.layer.mask[a])} (mask index {a})"
        return f"anchor {a}"

    def cell_name(self, c: Tuple[int, int, int, int]) -> str:
        b, a, j, i = c
        return f"image {b}, {self.anchor_name(a)}, row {j}, col {i}"

    def e_assigned(self) -> np.ndarray:
        """(B, n, H, W): cells upstream gives a truth (loop 2, or the truth_thresh branch)."""
        m = np.zeros(self.Y.shape[:2] + self.Y.shape[3:], bool)
        for c in self.assigned:
            m[c] = True
        if self.thresh_cells is not None:
            m |= self.thresh_cells
        return m


def evidence(layer: Any, x: np.ndarray, truth: Any, *, net_w: int = 416, net_h: int = 416,
             seen: int = 0) -> Evidence:
    """Run the oracle on ``x`` and ``truth`` and record what it decided."""
    kind = layer.kind
    if kind in ("yolo_ab", "yolo_hankai"):  # hank-ai's is AlexeyAB's layer, another arithmetic: one family here
        return _evidence_ab(layer, x, truth, net_w=net_w, net_h=net_h)
    packed = _validate.truth_buffer(truth, batch=x.shape[0], rows=layer.rows, cols=layer.coords + 1,
                                    used_rows=layer._used_rows())
    # The target and scale buffers come from recycled memory (_buffers), as
    # output and delta do: a training forward writes every element of both
    # (0 and NaN where there is no term), and fresh pages are most of the
    # cost of arrays this size.
    shape = np.shape(x)
    targets: Any = (_buffers.empty(shape), _buffers.empty(shape)) if len(shape) == 4 else True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "yolo":
            call, _ = layer._run(x, packed, train=True, out=None, targets=targets, net_w=net_w, net_h=net_h,
                                 index=0)
        else:
            call, _ = layer._run(x, packed, train=True, out=None, targets=targets, seen=seen)
    n = layer.n
    split = lambda a: a.reshape(a.shape[0], n, a.shape[1] // n, a.shape[2], a.shape[3])  # noqa: E731
    return Evidence(layer, kind, split(x), split(call.output), split(call.delta), packed, net_w, net_h, seen,
                    np.float32(call.cost[0]), call=call, x4=x)


def _region_extra(layer: Any) -> Dict[str, Any]:
    if layer.kind != "region":
        return {}
    groups = None
    if layer.tree is not None:
        groups = [(int(o), int(s)) for o, s in zip(layer.tree.group_offset, layer.tree.group_size)]
    return dict(background=layer.background, softmax=layer.softmax, groups=groups,
                temperature=float(layer.temperature) if layer.tree is not None else 1.0)


def _selection(layer: Any, call: Any) -> Selection:
    n = layer.n
    split = lambda a: a.reshape(a.shape[0], n, a.shape[1] // n, a.shape[2], a.shape[3])  # noqa: E731
    return Selection(kind=layer.kind, build="cpu", target=split(call.target).astype(np.float64),
                     scale=split(call.target_scale).astype(np.float64), output=split(call.output),
                     delta=split(call.delta), net_delta=split(call.delta), n=n, coords=layer.coords,
                     classes=layer.classes, **_region_extra(layer))


def _evidence_ab(layer: Any, x: np.ndarray, truth: Any, *, net_w: int, net_h: int) -> Evidence:
    """AlexeyAB's [yolo]: the forward's arrays, without a record of its
    decisions (record.c covers pjreddie's layers), so that the generic causes
    apply: rounding, layout, sign, scale and saturation.  Its rounding bound
    is two ULPs of each value and of the output it came from, times the
    largest normalizer or class multiplier."""
    packed = layer.pack_truth(truth, x.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = layer.forward(x, packed, net_w=net_w, net_h=net_h)
    n = layer.n
    split = lambda a: a.reshape(a.shape[0], n, a.shape[1] // n, a.shape[2], a.shape[3])  # noqa: E731
    X, Y, D = split(x), split(res.output), split(res.delta)
    u32 = lambda v: np.spacing(np.abs(v).astype(F)).astype(np.float64)  # noqa: E731
    scales = [1.0, float(layer.iou_normalizer), float(layer.obj_normalizer), float(layer.cls_normalizer)]
    if layer.classes_multipliers is not None:
        scales.append(float(np.max(layer.classes_multipliers)))
    bound = np.where(D == 0, 1e-6, 2 * (u32(D) + max(scales) * u32(Y)))
    return Evidence(layer, "yolo_ab", X, Y, D, packed, net_w, net_h, 0, np.float32(res.cost), bound={"delta": bound},
                    rec={})


def ab_record(ev: Evidence) -> Optional[Dict[str, np.ndarray]]:
    """AlexeyAB's layer (and hank-ai's): the decisions its forward took on
    the evidence's input and truths, from ``darknet_src/ab_record.c`` with
    upstream's own arithmetic (the rows read and why not, each row's best
    anchor, cell and iou_thresh anchors, the box writes per cell, each cell's
    best IoU with and without the class gate) and, per element in the
    evidence's (B, n, entries, H, W) layout, how its delta was formed:
    ``delta`` (the replay: ``ev.D`` bit for bit), ``form`` (0 a zero, 1 a
    target form, 2 another), and where ``form`` is 1 ``target``, ``scale``
    and ``norm`` with ``delta == (scale*(target - ev.Y))*norm`` in float32.
    Computed once, on demand; None for the other layers."""
    if ev.kind != "yolo_ab":
        return None
    cached = ev.__dict__.get("_ab_rec")
    if cached is None:
        B, n, P, H, W = ev.X.shape
        x = np.ascontiguousarray(ev.X.reshape(B, n * P, H, W), dtype=F)
        truth = np.ascontiguousarray(ev.truth, dtype=F)
        call = _native.ABCall(ev.layer._spec(), B, H, W)
        rc = call.forward(x, truth, train=True, net_w=ev.net_w, net_h=ev.net_h, index=0, threads=1)
        if rc != _native.DN_OK:  # pragma: no cover - the same forward ran for the evidence
            raise RuntimeError(f"the C core refused the forward ({_native.ERRORS.get(rc, rc)})")
        cached = ev.__dict__["_ab_rec"] = call.record(truth, net_w=ev.net_w, net_h=ev.net_h)
    return cached


def _output_bound(layer: Any, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Darknet's own rounding of each output entry: raw entries are copied
    (bound 0); a logistic is rounded once from double (2 ULPs of y covers a
    float32 implementation's expf and division); a softmax adds its float
    sum over the group."""
    u32 = np.spacing(np.abs(Y).astype(F)).astype(np.float64)
    raw = np.isclose(Y, X, rtol=0, atol=0) | (Y.view(np.uint32) == X.view(np.uint32))
    bound = np.where(raw, 0.0, 2 * u32)
    if getattr(layer, "softmax", 0) or getattr(layer, "tree", None) is not None:
        groups = layer.classes + 1
        bound = bound + 2.0 ** -24 * (groups + 3) * np.abs(Y) * ~raw
    return bound


def _derive(ev: Evidence) -> None:
    """Cells, anchors and assignments of every truth row, from the record."""
    rec = ev._rec
    assert rec is not None
    B, R = rec["row_status"].shape
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    cell = np.full((B, R, 2), -1, int)
    rnd = np.full((B, R, 2), -1, int)
    anchor = np.full((B, R), -1, int)
    best = rec["best_anchor"]
    bs, ts = np.nonzero(best >= 0)  # the rows loop 2 places, in (image, row) order
    if bs.size:
        rows = ev.truth[bs, ts]
        fx, fy = (rows[:, 0] * F(W)).astype(F), (rows[:, 1] * F(H)).astype(F)  # float32 products, as upstream's
        cell[bs, ts] = np.stack([fy.astype(int), fx.astype(int)], axis=1)  # (int): truncation toward 0
        rnd[bs, ts] = np.stack([np.minimum(np.floor(fy.astype(np.float64) + 0.5).astype(int), H - 1),
                                np.minimum(np.floor(fx.astype(np.float64) + 0.5).astype(int), W - 1)], axis=1)
        k = best[bs, ts].astype(int)
        if ev.kind == "yolo":
            where = np.full(int(ev.layer.total), -1, int)  # anchor index -> its mask index (-1: not in the mask)
            for m, a in enumerate(int(v) for v in ev.layer.mask):
                if where[a] < 0:
                    where[a] = m  # mask.index(): the first
            k = where[k]
        anchor[bs, ts] = k
        read = (rec["row_status"][bs, ts] == _native.lib.DN_ROW_READ) & (k >= 0)
        for b, t, a, j, i in zip(bs[read].tolist(), ts[read].tolist(), k[read].tolist(),
                                 cell[bs[read], ts[read], 0].tolist(), cell[bs[read], ts[read], 1].tolist()):
            ev._assigned.setdefault((b, a, j, i), []).append(t)
    ev._row_cell, ev._row_round, ev._row_anchor = cell, rnd, anchor
    if ev.kind == "yolo":
        ev._thresh_cells = rec["best_iou"] > ev.layer.truth_thresh



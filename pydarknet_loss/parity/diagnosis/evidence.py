"""What the oracle did on one input: its forward's arrays (input, output,
delta, cost), every element's target and scale, darknet's own rounding
bound per element, and the record of its decisions (darknet_src/record.c:
which truth rows it read, each row's anchor and cell, each cell's best IoU),
all computed with upstream's own arithmetic."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ... import _native, _validate
from ...implied import Selection, rounding_bound

F = np.float32

@dataclass
class Evidence:
    """The oracle's forward on one input, and its record of the decisions."""

    layer: Any
    kind: str
    X: np.ndarray  #: raw input (B, n, P, H, W)
    Y: np.ndarray  #: oracle output
    D: np.ndarray  #: oracle delta
    sel: Optional[Selection]  #: targets and scales; None for AlexeyAB's layer
    bound: Dict[str, np.ndarray]  #: see bound_for()  #: per array, darknet's rounding bound (B, n, P, H, W)
    rec: Dict[str, np.ndarray]
    truth: np.ndarray  #: packed (B, rows, cols)
    net_w: int
    net_h: int
    seen: int
    assigned: Dict[Tuple[int, int, int, int], List[int]] = field(default_factory=dict)
    thresh_cells: Optional[np.ndarray] = None  #: (B, n, H, W): truth_thresh branch taken
    row_cell: Optional[np.ndarray] = None  #: (B, rows, 2) (j, i), -1 where not a box
    row_round: Optional[np.ndarray] = None  #: (B, rows, 2) with rounding instead of truncation
    row_anchor: Optional[np.ndarray] = None  #: (B, rows): the mask index loop 2 uses, -1 none
    cost: np.float32 = np.float32(0)  #: the forward's *l.cost

    def bound_for(self, name: str) -> np.ndarray:
        """Darknet's own rounding bound of each element of an array
        ("delta" or "output"; the latter computed when first asked for)."""
        if name not in self.bound:
            self.bound[name] = _output_bound(self.layer, self.Y, self.X)
        return self.bound[name]

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
    if kind == "yolo_ab":
        return _evidence_ab(layer, x, truth, net_w=net_w, net_h=net_h)
    packed = _validate.truth_buffer(truth, batch=x.shape[0], rows=layer.rows, cols=layer.coords + 1,
                                    used_rows=layer._used_rows())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "yolo":
            call, _ = layer._run(x, packed, train=True, out=None, targets=True, net_w=net_w, net_h=net_h, index=0)
        else:
            call, _ = layer._run(x, packed, train=True, out=None, targets=True, seen=seen)
    rec = _native.record(call, packed, net_w=net_w, net_h=net_h)
    n = layer.n
    split = lambda a: a.reshape(a.shape[0], n, a.shape[1] // n, a.shape[2], a.shape[3])  # noqa: E731
    extra: Dict[str, Any] = {}
    if kind == "region":
        groups = None
        if layer.tree is not None:
            groups = [(int(o), int(s)) for o, s in zip(layer.tree.group_offset, layer.tree.group_size)]
        extra = dict(background=layer.background, softmax=layer.softmax, groups=groups,
                     temperature=float(layer.temperature) if layer.tree is not None else 1.0)
    sel = Selection(kind=kind, build="cpu", target=split(call.target).astype(np.float64),
                    scale=split(call.target_scale).astype(np.float64), output=split(call.output),
                    delta=split(call.delta), net_delta=split(call.delta), n=n, coords=layer.coords,
                    classes=layer.classes, **extra)
    X = split(x)
    Y = split(call.output)
    bound_delta = split(rounding_bound(sel, x, of="delta"))
    ev = Evidence(layer=layer, kind=kind, X=X, Y=Y, D=split(call.delta), sel=sel, bound={"delta": bound_delta},
                  rec=rec, truth=packed, net_w=net_w, net_h=net_h, seen=seen, cost=np.float32(call.cost[0]))
    _derive(ev)
    return ev


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
    return Evidence(layer=layer, kind="yolo_ab", X=X, Y=Y, D=D, sel=None, bound={"delta": bound}, rec={},
                    truth=packed, net_w=net_w, net_h=net_h, seen=0, cost=np.float32(res.cost))


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
    rec = ev.rec
    B, R = rec["row_status"].shape
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    cell = np.full((B, R, 2), -1, int)
    rnd = np.full((B, R, 2), -1, int)
    anchor = np.full((B, R), -1, int)
    mask = [int(m) for m in ev.layer.mask] if ev.kind == "yolo" else None
    for b in range(B):
        for t in range(R):
            best = int(rec["best_anchor"][b, t])
            if best < 0:
                continue
            row = ev.truth[b, t]
            fx, fy = F(row[0] * F(W)), F(row[1] * F(H))
            cell[b, t] = (int(fy), int(fx))
            rnd[b, t] = (min(int(np.floor(np.float64(fy) + 0.5)), H - 1), min(int(np.floor(np.float64(fx) + 0.5)), W - 1))
            if mask is None:
                anchor[b, t] = best
            elif best in mask:
                anchor[b, t] = mask.index(best)
            if rec["row_status"][b, t] == _native.lib.DN_ROW_READ and anchor[b, t] >= 0:
                j, i = cell[b, t]
                ev.assigned.setdefault((b, int(anchor[b, t]), int(j), int(i)), []).append(t)
    ev.row_cell, ev.row_round, ev.row_anchor = cell, rnd, anchor
    if ev.kind == "yolo":
        ev.thresh_cells = rec["best_iou"] > ev.layer.truth_thresh



"""Why another implementation departs from darknet: every element that
fails the tolerance is given exactly one cause.

The causes are derived from what the oracle did on the same input, never
guessed from the values alone: an oracle forward records each element's
target and scale, and ``record_loss_layer`` (darknet_src/record.c) records
the decisions behind them with upstream's own arithmetic -- which truth
rows upstream reads, the anchor and cell each truth goes to, each cell's
best IoU for the ignore test, and what an implementation reading past the
x == 0 terminator or past ``max_boxes`` would have seen.  A rule then asks
whether the implementation's value at an element is what one specific
departure from upstream's rule would give there.

``CAUSES`` is the vocabulary, in the order the rules are tried: the first
rule that explains an element names its cause.  ``unexplained`` is what is
left, with the places listed.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from .. import _native, _validate
from ..implied import Selection, rounding_bound

F = np.float32

#: The causes, in the order the rules are tried, with what the implementation did.
CAUSES: Dict[str, str] = {
    "float_rounding": "within darknet's own float32 rounding bound for that element (ImpliedLoss.rounding_bound); "
                      "not a defect under tolerance='float32'",
    "layout": "the array is in another memory layout",
    "sign": "returned the gradient instead of the delta (everything negated)",
    "scale": "the whole array off by one constant factor (batch mean, 0.5)",
    "x0_terminator": "used a truth row at or after a row with x == 0, where upstream stops reading",
    "truth_limit": "used rows beyond max_boxes",
    "truth_thresh": "the truth_thresh branch, taken or missed",
    "anchor_assignment": "matched a truth to another anchor (e.g. best anchor searched within the mask only)",
    "cell_assignment": "put a truth in another cell (rounded instead of truncated)",
    "overwrite_order": "with two truths in one cell and anchor, kept the first; upstream keeps the last",
    "class_short_circuit": "upstream's class-delta short-circuit not reproduced",
    "objectness_loss": "objectness delta of another form (squared error on the sigmoid: (t-p)*p(1-p))",
    "saturated_gradient": "gives exactly 0 (or +-tiny) where upstream's delta is not, at a logit beyond float32 "
                          "sigmoid saturation: BCE on probabilities instead of on logits",
    "ignore_rule": "treated a cell's objectness as negative where upstream ignores it, or the reverse, for a "
                   "reason other than the causes above (best IoU and the threshold in the message; '>' vs '>=' "
                   "shows here)",
    "rescore": "[region]: objectness target 1 where rescore makes it the IoU, or the reverse",
    "prior_rule": "[region]: the seen < 12800 pull of every box towards its anchor, missed or applied after it",
    "box_scale": "box deltas off by the 2 - w*h factor",
    "wh_target": "a w/h target other than log(w*net_w/anchor) (anchors in grid units, an epsilon, a sqrt)",
    "activation": "an output entry activated where upstream leaves it raw, or the reverse",
    "unexplained": "none of the above (the message lists where)",
}


@dataclass(frozen=True)
class Cause:
    """One reason elements differ.  ``cells`` are (image, mask_index, row,
    col), ``truth_rows`` (image, row) of the truth buffer."""

    code: str
    count: int
    truth_rows: Tuple[Tuple[int, int], ...]
    cells: Tuple[Tuple[int, int, int, int], ...]
    message: str
    arrays: Tuple[Tuple[str, int], ...] = ()  #: (array name, elements) pairs

    def __str__(self) -> str:
        return f"{self.code} ({self.count} element{'s' if self.count != 1 else ''}): {self.message}"


# ---- what the oracle did ------------------------------------------------------------

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


# ---- rules -----------------------------------------------------------------------------

@dataclass
class Finding:
    """What one rule explains: a mask over the array's elements, the truth
    rows behind each cell it names, and how to say it."""

    mask: np.ndarray
    rows: Dict[Tuple[int, int, int, int], Set[int]] = field(default_factory=dict)
    say: Callable[[np.ndarray], str] = lambda sel: ""


class Array:
    """One compared array with everything the rules look at."""

    def __init__(self, name: str, E: np.ndarray, A: np.ndarray, fail: np.ndarray, ev: Optional[Evidence],
                 layer: Any) -> None:
        self.name, self.E, self.A, self.fail, self.ev, self.layer = name, E, A, fail, ev, layer
        self.E64 = E.astype(np.float64)
        self.A64 = A.astype(np.float64)
        self.coords = int(layer.coords)
        self.obj = self.coords
        self.bound = ev.bound_for(name) if ev is not None else np.zeros(E.shape)
        self.left: Optional[np.ndarray] = None  #: elements no rule has explained yet (set by diagnose)

    def close(self, a: np.ndarray, b: np.ndarray, rel: float = 1e-4) -> np.ndarray:
        """a within rel of b, allowing darknet's own rounding."""
        with np.errstate(invalid="ignore", over="ignore"):
            return np.abs(a - b) <= rel * np.abs(b) + 4 * self.bound + 1e-30

    def cell_mask(self, cells: np.ndarray) -> np.ndarray:
        """(B, n, H, W) -> every entry of those cells."""
        return np.broadcast_to(cells[:, :, None], self.E.shape)

    def role_mask(self, entries: Sequence[int], cells: Optional[np.ndarray] = None) -> np.ndarray:
        m = np.zeros(self.E.shape, bool)
        m[:, :, list(entries)] = True
        if cells is not None:
            m &= self.cell_mask(cells)
        return m

    def a_assigned(self) -> np.ndarray:
        """(B, n, H, W): cells the implementation treats as holding a truth:
        a positive class or objectness delta (only a target of 1 gives one)."""
        cls = self.A[:, :, self.coords + 1:]
        return (cls > 0).any(axis=2) | (self.A[:, :, self.obj] > 0)


def _nontrivial(arr: Array) -> np.ndarray:
    return np.abs(arr.E64) > arr.bound


def _global_rules(arr: Array, left: np.ndarray, min_scaled: int = 2) -> Optional[Tuple[str, Finding]]:
    """A transformation of the whole array that makes it agree: layout,
    sign or scale.  Tried on every element darknet gives a non-trivial value;
    a scale needs ``min_scaled`` of them to share the factor."""
    E, A = arr.E64, arr.A64
    big = _nontrivial(arr)
    nbig = int(big.sum())
    if nbig == 0 or not left.any():
        return None
    B, n, P, H, W = arr.E.shape
    flat = arr.A.reshape(-1)
    layouts = {
        "nhwc": lambda: flat.reshape(B, H, W, n * P).transpose(0, 3, 1, 2).reshape(B, n, P, H, W),
        "bahwc": lambda: flat.reshape(B, n, H, W, P).transpose(0, 1, 4, 2, 3),
        "bhwac": lambda: flat.reshape(B, H, W, n, P).transpose(0, 3, 4, 1, 2),
        "entry-major [b][entry][anchor]": lambda: flat.reshape(B, P, n, H, W).transpose(0, 2, 1, 3, 4),
    }
    base = int((arr.close(A, E, rel=0) | ~big).sum())
    for name, view in layouts.items():
        if (H * W == 1 and name != "entry-major [b][entry][anchor]") or (n == 1 and "anchor" in name):
            continue
        cand = view().astype(np.float64)
        ok = arr.close(cand, E, rel=1e-6)
        if ok.all() and base < E.size:
            hint = f"pass layout={name!r}" if name in ("nhwc", "bahwc") else "transpose it to darknet's layout"
            return "layout", Finding(left.copy(), say=lambda sel, name=name, hint=hint: (
                f"the values are darknet's, in {name} memory order: upstream's buffer is [b][anchor][entry][row]"
                f"[col] (NCHW for a conv output); the implementation's array holds the same numbers laid out as "
                f"{name}. Reorder it ({hint})."))
    nleft = int(left.sum())
    flipped = arr.close(-A, E, rel=1e-6)
    if (flipped & big).sum() >= 0.95 * nbig and (flipped & left).sum() >= 0.95 * nleft:
        return "sign", Finding(left.copy(), say=lambda sel: (
            "every value is darknet's with the sign flipped: darknet's delta is minus the gradient of its loss "
            "(target - output); the implementation returned the gradient. Negate it (or compare -grad)."))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = A[big] / E[big]
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size:
        k = float(np.median(ratio))
        # Only elements whose scaled value stands out of darknet's rounding say anything.
        big &= np.abs(k * E) > 4 * arr.bound
        nbig = int(big.sum())
        # One element says little about "the whole array": first two or more
        # must share the factor; one is taken only when no rule explains it.
        if k != 0 and abs(k - 1) > 1e-3 and nbig >= min_scaled:
            ok = arr.close(A, k * E, rel=1e-5)
            if (ok & big).sum() >= 0.95 * nbig and (ok & left).sum() >= 0.95 * nleft:
                guess = _factor_name(k, B)
                return "scale", Finding(left.copy(), say=lambda sel, k=k, guess=guess: (
                    f"every value is darknet's times {k:.6g}{guess}: darknet sums its loss over the batch and "
                    "scales nothing; the implementation multiplies the whole delta by a constant. Drop the factor."))
    return None


def _factor_name(k: float, batch: int) -> str:
    for v, name in ((1 / batch, f"1/{batch}: a mean over the batch of {batch}"), (0.5, "1/2"), (2.0, "2"),
                    (-1.0, "-1")):
        if abs(k - v) <= 1e-5 * abs(v):
            return f" (= {name})"
    return ""


def _rows_str(rows: Set[Tuple[int, int]], limit: int = 4) -> str:
    rs = sorted(rows)
    s = ", ".join(f"image {b} row {t}" for b, t in rs[:limit])
    return s + (f" and {len(rs) - limit} more" if len(rs) > limit else "")


def _cells_str(ev: Evidence, cells: Sequence[Tuple[int, int, int, int]], limit: int = 3) -> str:
    cs = sorted(set(cells))
    s = "; ".join(ev.cell_name(c) for c in cs[:limit])
    return s + (f"; and {len(cs) - limit} more cell{'s' if len(cs) - limit > 1 else ''}" if len(cs) > limit else "")


def _cells_of(mask: np.ndarray) -> List[Tuple[int, int, int, int]]:
    cells = mask.any(axis=2)
    return [tuple(int(v) for v in c) for c in np.argwhere(cells)]  # type: ignore[misc]


def _box_matches(arr: Array, b: int, a: int, j: int, i: int, target: np.ndarray) -> bool:
    """The implementation's four box deltas at a cell are those of `target`
    (three of four within 1e-4, allowing darknet's rounding) and upstream's
    are not: a match that upstream's own values share says nothing."""
    def near(v: np.ndarray) -> bool:
        return int((np.abs(v - target) <= 1e-4 * np.abs(target) + 4 * arr.bound[b, a, :4, j, i]).sum()) >= 3
    return near(arr.A64[b, a, :4, j, i]) and not near(arr.E64[b, a, :4, j, i])


def _unread_rows(arr: Array, statuses: Tuple[int, ...], code: str, *, ignore_cells: str) -> Optional[Finding]:
    """Cells where the implementation did what reading truth rows of these
    statuses (rows upstream never reads) implies: such a row's box deltas at
    its cell and anchor, or its effect on a cell's ignore test or
    truth_thresh branch.  ``ignore_cells``: "never", "if_assigned" (only
    when some unread row's assignment shows in the values: strong evidence
    that the implementation reads them), or "always"."""
    ev = arr.ev
    assert ev is not None
    status = ev.rec["row_status"]
    rows = np.isin(status, statuses) & (ev.rec["best_anchor"] >= 0)
    if not rows.any():
        return None
    e_asg, a_asg = ev.e_assigned(), arr.a_assigned()
    cells = np.zeros(e_asg.shape, bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = defaultdict(set)
    for b, t in np.argwhere(rows):
        a = int(ev.row_anchor[b, t])
        j, i = (int(v) for v in ev.row_cell[b, t])
        if a < 0:
            continue
        if _box_matches(arr, int(b), a, j, i, _box_delta_of_row(ev, int(b), a, int(t), j, i)):
            cells[b, a, j, i] = True
            who[(int(b), a, j, i)].add(int(t))
    if ignore_cells == "always" or (ignore_cells == "if_assigned" and cells.any()):
        o = arr.obj
        bt = ev.rec["best_truth_ext"]
        ext, base = ev.rec["best_iou_ext"], ev.rec["best_iou"]
        via = np.zeros_like(cells)
        for b in range(bt.shape[0]):
            ok = bt[b] >= 0
            via[b][ok] = rows[b][bt[b][ok]]
        free = ~e_asg
        thr = ev.ignore
        ignored = via & free & (ext > thr) & ~(base > thr) & (arr.A[:, :, o] == 0) & (arr.E[:, :, o] != 0)
        taken = np.zeros_like(ignored)
        if ev.kind == "yolo":
            tt = float(ev.layer.truth_thresh)
            taken = via & (ext > tt) & ~(base > tt) & (arr.A[:, :, o] > 0) & (arr.E[:, :, o] <= 0)
        for b, a, j, i in np.argwhere(ignored | taken):
            cells[b, a, j, i] = True
            who[(int(b), int(a), int(j), int(i))].add(int(bt[b, a, j, i]))
    if not cells.any():
        return None
    first = {}
    for b in range(status.shape[0]):
        term = np.flatnonzero(status[b] == _native.lib.DN_ROW_TERMINATOR)
        if term.size:
            first[b] = int(term[0])

    def say(sel: np.ndarray) -> str:
        used = {(c[0], t) for c in _cells_of(sel) for t in who.get(c, ())}
        if code == "x0_terminator":
            stops = ", ".join(f"image {b} row {t}" for b, t in sorted(first.items()) if any(u[0] == b for u in used))
            return (f"upstream stops reading an image's truth list at its first row with x == 0 ({stops}); the "
                    f"implementation also used {_rows_str(used)}, at or after it. Stop at the first x == 0 (or "
                    "pad the truth list with zero rows only after the last box).")
        return (f"upstream reads at most max_boxes = {ev.layer.max_boxes} truth rows per image; the implementation "
                f"also used {_rows_str(used)}. Read only the first max_boxes rows.")
    return Finding(arr.cell_mask(cells), rows=who, say=say)


def _placed(arr: Array, b: int, t: int, j: int, i: int, anchors: Sequence[int]) -> Optional[int]:
    """The anchor among `anchors` at cell (j, i) where the implementation's
    box deltas are those of truth row t, or None."""
    ev = arr.ev
    assert ev is not None
    for k in anchors:
        if _box_matches(arr, b, k, j, i, _box_delta_of_row(ev, b, k, t, j, i)):
            return k
    return None


Where = Callable[[int, int], Optional[Tuple[int, int, List[int]]]]


def _world(ev: Evidence, where: Where) -> Tuple[np.ndarray, Dict[Tuple[int, int, int, int], Set[int]],
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


def _predicted(arr: Array, c: Tuple[int, int, int, int], rows: List[int]) -> Optional[np.ndarray]:
    """[yolo]: the deltas upstream's arithmetic writes at cell c when these
    truth rows land there in this order: the last one's box and objectness,
    every one's class at 1 - p (the short-circuit), the rest -p; with no
    truth, objectness -p (0 where the ignore test holds) and nothing else.
    None at a cell the truth_thresh branch also writes."""
    ev = arr.ev
    assert ev is not None
    if ev.thresh_cells is not None and ev.thresh_cells[c]:
        return None
    b, a, j, i = c
    co = arr.coords
    y = ev.Y[b, a, :, j, i].astype(np.float64)
    out = np.zeros(arr.E.shape[2])
    if rows:
        out[:4] = _box_delta_of_row(ev, b, a, rows[-1], j, i)
        out[co] = 1 - y[co]
        t = np.zeros(arr.E.shape[2] - co - 1)
        t[[_class_of(ev, b, r) for r in rows]] = 1
        out[co + 1:] = t - y[co + 1:]
    else:
        out[co] = 0.0 if ev.rec["best_iou"][c] > ev.ignore else -y[co]
    return out


def _fits(arr: Array, c: Tuple[int, int, int, int], pred: np.ndarray) -> bool:
    b, a, j, i = c
    got = arr.A64[b, a, :, j, i]
    return bool(np.all(np.abs(got - pred) <= 1e-4 * np.abs(pred) + 4 * arr.bound[b, a, :, j, i] + 1e-30))


def _moved_rows(arr: Array, where: Where, weak: bool
                ) -> Tuple[np.ndarray, Dict[Tuple[int, int, int, int], Set[int]]]:
    """Cells of the rows the implementation placed elsewhere than upstream:
    `where(b, t)` gives the cell and candidate anchors of row t's
    alternative placement (or None).  [yolo]: the cells whose values are
    exactly what upstream's arithmetic writes with the truths placed so
    (box, objectness and classes); [region]: where some row's box deltas
    show at its alternative place, every cell the departure changes.  With
    ``weak`` (tried last, on what no other rule explained): the cells it
    would change."""
    ev = arr.ev
    assert ev is not None
    changed, who, world = _world(ev, where)
    if weak:
        return changed, who
    if ev.kind == "yolo":
        # Every cell the departure changes must show it: a cell where it
        # predicts other values but the implementation has upstream's
        # refutes it here (a later truth moving away from a cell shared
        # with an earlier one looks like first-truth-wins on its own).
        fit = np.zeros_like(changed)
        failing = arr.fail.any(axis=2)
        for c in map(tuple, np.argwhere(changed)):
            pred = _predicted(arr, c, world.get(c, []))  # type: ignore[arg-type]
            if pred is None:
                continue
            if not failing[c]:
                b, a, j, i = c  # type: ignore[misc]
                e = arr.E64[b, a, :, j, i]
                if not np.all(np.abs(e - pred) <= 1e-4 * np.abs(pred) + 4 * arr.bound[b, a, :, j, i] + 1e-30):
                    return np.zeros_like(changed), {}
                continue
            fit[c] = _fits(arr, c, pred)  # type: ignore[arg-type]
        return fit, who
    read = (ev.rec["row_status"] == _native.lib.DN_ROW_READ) & (ev.rec["best_anchor"] >= 0)
    for b, t in np.argwhere(read):
        alt = where(int(b), int(t))
        if alt is not None and _placed(arr, int(b), int(t), alt[0], alt[1], alt[2]) is not None:
            return changed, who
    return np.zeros_like(changed), {}


def _anchor_assignment(arr: Array, weak: bool = False) -> Optional[Finding]:
    """Rows the implementation placed on another anchor of their cell: for
    [yolo] the best anchor within the mask where upstream's best of all
    anchors is another (or outside the mask); any other anchor otherwise."""
    ev = arr.ev
    assert ev is not None
    rec = ev.rec
    n = ev.Y.shape[1]
    notes: List[str] = []

    def where(b: int, t: int) -> Optional[Tuple[int, int, List[int]]]:
        j, i = (int(v) for v in ev.row_cell[b, t])
        a = int(ev.row_anchor[b, t])
        if ev.kind == "yolo":
            k = int(rec["best_in_mask"][b, t])
            if k == a:
                return None
            others = [k] + [m for m in range(n) if m not in (k, a)]
            if a < 0 and len(notes) < 2:
                notes.append(f"image {b} row {t}: upstream's best of all {ev.layer.total} anchors is anchor "
                             f"{int(rec['best_anchor'][b, t])}, not in this layer's mask "
                             f"{list(map(int, ev.layer.mask))}, so upstream assigns it nothing here")
            return j, i, others
        return j, i, [m for m in range(n) if m != a]

    if ev.kind == "region":
        # The anchor depends on the prediction at the cell: no single
        # alternative world, only the rows seen on another anchor.
        if weak:
            return None
        cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
        who: Dict[Tuple[int, int, int, int], Set[int]] = defaultdict(set)
        for b, t in np.argwhere((rec["row_status"] == _native.lib.DN_ROW_READ) & (rec["best_anchor"] >= 0)):
            b, t = int(b), int(t)
            j, i, others = where(b, t)  # type: ignore[misc]
            k = _placed(arr, b, t, j, i, others)
            if k is not None:
                a = int(ev.row_anchor[b, t])
                for m in (k, a):
                    cells[b, m, j, i] = True
                    who[(b, m, j, i)].add(t)
    else:
        cells, who = _moved_rows(arr, where, weak)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        used = {(c[0], t) for c in _cells_of(sel) for t in who.get(c, ())}
        ns = [m for m in notes if any(f"image {b} row {t}:" in m for b, t in used)]
        detail = ("; " + "; ".join(ns)) if ns else ""
        base = ("upstream matches each truth to the best of ALL the network's anchors by shape (IoU of centred "
                "boxes) and assigns it in this layer only if that anchor is in the mask")
        if ev.kind == "region":
            base = ("upstream matches each truth to the anchor whose predicted box at the truth's cell (or anchor "
                    "shape, with bias_match) best fits its shape")
        return (f"{base}; the implementation put {_rows_str(used)} on another anchor "
                f"({_cells_str(ev, _cells_of(sel))}){detail}. Search the best anchor as upstream does.")
    return Finding(arr.cell_mask(cells), rows=who, say=say)


def _cell_assignment(arr: Array, weak: bool = False) -> Optional[Finding]:
    """Rows the implementation placed in the cell x*W rounds to rather than
    the one it truncates to."""
    ev = arr.ev
    assert ev is not None
    n = ev.Y.shape[1]

    def where(b: int, t: int) -> Optional[Tuple[int, int, List[int]]]:
        (j, i), (jr, ir) = ev.row_cell[b, t], ev.row_round[b, t]
        if (j, i) == (jr, ir):
            return None
        a = int(ev.row_anchor[b, t])
        anchors = [a] if ev.kind == "yolo" else [a] + [m for m in range(n) if m != a]
        return int(jr), int(ir), ([] if a < 0 else anchors)

    cells, who = _moved_rows(arr, where, weak)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        used = sorted({(c[0], t) for c in _cells_of(sel) for t in who.get(c, ())})
        ex = ""
        if used:
            b, t = used[0]
            row = ev.truth[b, t]
            W = ev.Y.shape[4]
            ex = (f" (image {b} row {t}: x*W = {float(F(row[0] * F(W))):.6g}, cell column "
                  f"{int(ev.row_cell[b, t][1])} upstream, {int(ev.row_round[b, t][1])} rounded)")
        return ("upstream puts a truth in cell (int)(x*W), (int)(y*H), the float32 product truncated; the "
                f"implementation used another cell for {_rows_str(set(used))}{ex}. Truncate (floor) instead of "
                "rounding.")
    return Finding(arr.cell_mask(cells), rows=who, say=say)


def _weak_assignment(arr: Array, which: str) -> Optional[Finding]:
    """The cell or anchor departure's changed cells, when they cover more of
    the elements still unexplained than the other's."""
    cell = _cell_assignment(arr, weak=True)
    anchor = _anchor_assignment(arr, weak=True)
    left = arr.left if arr.left is not None else arr.fail
    failing_cells = arr.fail.any(axis=2)

    def score(f: Optional[Finding]) -> Tuple[int, int]:
        # Elements explained, then (fewer is better) cells it changes where
        # nothing fails, which a change of truths would hardly leave so.
        if f is None:
            return (0, 0)
        changed = f.mask.any(axis=2)
        return (int((f.mask & left).sum()), -int((changed & ~failing_cells).sum()))
    mine, other = (cell, anchor) if which == "cell" else (anchor, cell)
    if mine is None or score(mine)[0] == 0 or score(mine) < score(other):
        return None
    return mine


def _box_delta_of_row(ev: Evidence, b: int, a: int, t: int, j: int, i: int) -> np.ndarray:
    """The four box deltas upstream computes for truth row t at this cell
    (what it writes before a later truth overwrites them)."""
    row = ev.truth[b, t]
    H, W = ev.Y.shape[3], ev.Y.shape[4]
    if ev.kind == "yolo":
        anchor = int(ev.layer.mask[a])
        size_w, size_h = F(ev.net_w), F(ev.net_h)
        scale = F(F(2) - row[2] * row[3])
    else:
        anchor = a
        size_w, size_h = F(W), F(H)
        scale = F(ev.layer.coord_scale * F(F(2) - row[2] * row[3]))
    bias = ev.layer.anchors
    with np.errstate(divide="ignore"):
        t4 = (F(row[0] * F(W) - F(i)), F(row[1] * F(H) - F(j)),
              F(np.log(np.float64(F(F(row[2] * size_w) / bias[2 * anchor])))),
              F(np.log(np.float64(F(F(row[3] * size_h) / bias[2 * anchor + 1])))))
    v = (ev.Y[b, a, 0, j, i], ev.Y[b, a, 1, j, i], ev.X[b, a, 2, j, i], ev.X[b, a, 3, j, i])
    return np.array([F(scale * F(tk - vk)) for tk, vk in zip(t4, v)], np.float64)


def _multi(ev: Evidence) -> Dict[Tuple[int, int, int, int], List[int]]:
    """Cells and anchors given two truths or more (loop 2, plus a truth_thresh assignment)."""
    out: Dict[Tuple[int, int, int, int], List[int]] = {}
    for c, rows in ev.assigned.items():
        extra = 1 if ev.thresh_cells is not None and ev.thresh_cells[c] else 0
        if len(rows) + extra >= 2:
            out[c] = rows
    return out


def _overwrite_order(arr: Array) -> Optional[Finding]:
    """Cells with two truths where the implementation kept the first: its
    box deltas are the first truth's, or its only positive class is the
    first truth's where upstream's short-circuit keeps both."""
    ev = arr.ev
    assert ev is not None
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = {}
    for c, rows in _multi(ev).items():
        b, a, j, i = c
        if len(rows) < 2 or not arr.fail[b, a, :, j, i].any():
            continue
        first_box = arr.fail[b, a, :4, j, i].any() and \
            _box_matches(arr, b, a, j, i, _box_delta_of_row(ev, b, a, rows[0], j, i))
        a_pos = _positive_classes(arr, True, c)
        first_cls = _class_of(ev, b, rows[0])
        first_only = (a_pos == {first_cls} and first_cls != _class_of(ev, b, rows[-1])
                      and a_pos != _positive_classes(arr, False, c))
        if first_box or first_only:
            cells[c] = True
            who[c] = set(rows)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = _cells_of(sel)
        used = {(c[0], t) for c in cs for t in who.get(c, ())}
        return (f"where two truths ({_rows_str(used)}) fall in one cell and anchor, upstream writes both in truth "
                "order, so the LAST one's box and objectness deltas stand (and its class joins the first's); the "
                f"implementation kept the first truth's ({_cells_str(ev, cs)}). Let a later truth overwrite.")
    return Finding(arr.cell_mask(cells), rows=who, say=say)


def _class_of(ev: Evidence, b: int, t: int) -> int:
    c = int(ev.truth[b, t, ev.coords])
    if ev.layer.map is not None:
        c = int(ev.layer.map[c])
    return c


def _class_short_circuit(arr: Array) -> Optional[Finding]:
    """Cells with two truths or more where the implementation's positive
    classes are not upstream's: the short-circuit not reproduced (or
    applied where upstream has none).  A first-truth-wins implementation
    (positives = the first truth's class) is overwrite_order's."""
    ev = arr.ev
    assert ev is not None
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    who: Dict[Tuple[int, int, int, int], Set[int]] = {}
    k0 = arr.coords + 1
    for c, rows in _multi(ev).items():
        e_pos, a_pos = _positive_classes(arr, False, c), _positive_classes(arr, True, c)
        if e_pos == a_pos:
            continue
        # The classes in dispute hold what a truth setting them would write:
        # s*(0 - p) where upstream keeps 1 - p, s*(1 - p) the other way.
        b, a, j, i = c
        y = ev.Y[b, a, k0:, j, i].astype(np.float64)
        sc = np.where(ev.sel.has[b, a, k0:, j, i], ev.sel.scale[b, a, k0:, j, i], 1.0)
        want = {k: sc[k] * ((1.0 if k in a_pos else 0.0) - y[k]) for k in e_pos ^ a_pos}
        got = arr.A64[b, a, k0:, j, i]
        bound = arr.bound[b, a, k0:, j, i]
        if not all(abs(got[k] - v) <= 1e-4 * abs(v) + 4 * bound[k] for k, v in want.items()):
            continue
        cells[c] = True
        who[c] = set(rows)
    if not cells.any():
        return None
    mask = arr.role_mask(range(arr.coords + 1, arr.E.shape[2]), cells)
    flat = ev.kind == "region" and (ev.layer.softmax or ev.layer.tree is not None)

    def say(sel: np.ndarray) -> str:
        cs = _cells_of(sel)
        used = {(c[0], t) for c in cs for t in who.get(c, ())}
        c = cs[0]
        e_pos, a_pos = sorted(_positive_classes(arr, False, c)), sorted(_positive_classes(arr, True, c))
        if flat:
            rule = ("with softmax upstream has no short-circuit: the last truth sets every class of the cell "
                    "(t - p for the softmax group)")
        else:
            rule = ("upstream's class delta short-circuits: when a cell and anchor already holds class deltas, a "
                    "second truth only sets its own class to 1 - p, so both truths' classes stay at 1 - p")
        return (f"{rule}; at {ev.cell_name(c)} ({_rows_str(used)}) upstream's positive classes are "
                f"{e_pos}, the implementation's {a_pos}. Reproduce the short-circuit as upstream has it.")
    return Finding(mask, rows=who, say=say)


def _positive_classes(arr: Array, A: bool, c: Tuple[int, int, int, int]) -> Set[int]:
    """The classes with target 1 at a cell: upstream's from the oracle's
    record, the implementation's where its delta is nearer 1 - p than -p
    (a saturated p makes 1 - p vanish, so the sign alone would not say)."""
    b, a, j, i = c
    k0 = arr.coords + 1
    ev = arr.ev
    assert ev is not None
    if not A:
        t = ev.sel.target[b, a, k0:, j, i]
        has = ev.sel.has[b, a, k0:, j, i]
        return set(int(k) for k in np.flatnonzero(has & (t == 1)))
    s = np.where(ev.sel.has[b, a, k0:, j, i], ev.sel.scale[b, a, k0:, j, i], 1.0)
    got = arr.A64[b, a, k0:, j, i]
    implied = got / np.where(s == 0, 1.0, s) + ev.Y[b, a, k0:, j, i]
    # A class without a delta has no target; 1 - p with p == 1 is the one
    # target of 1 that leaves no trace, and is taken as upstream's.
    unseen = (got == 0) & (ev.Y[b, a, k0:, j, i] == 1) & ev.sel.has[b, a, k0:, j, i] & \
        (ev.sel.target[b, a, k0:, j, i] == 1)
    return set(int(k) for k in np.flatnonzero(((got != 0) & (implied > 0.5)) | unseen))


def _truth_thresh(arr: Array) -> Optional[Finding]:
    """Cells whose best IoU reaches truth_thresh, where the implementation
    took upstream's truth_thresh branch and upstream did not, or the reverse."""
    ev = arr.ev
    assert ev is not None
    if ev.kind != "yolo":
        return None
    tt = float(ev.layer.truth_thresh)
    best = ev.rec["best_iou"]
    o = arr.obj
    loop2 = np.zeros(best.shape, bool)
    for c in ev.assigned:
        loop2[c] = True
    cand = (best > tt) | (best == F(tt))
    cells = np.zeros_like(cand)
    bt = ev.rec["best_truth"]
    # Cells loop 2 also assigns keep only the branch's class, where a missing
    # short-circuit would look the same: they count only when the branch
    # shows at a cell of its own.
    for c in sorted(map(tuple, np.argwhere(cand)), key=lambda c: bool(loop2[c])):
        if loop2[c]:
            if not cells.any():
                break
            # Loop 2 overwrites the branch's box and objectness; what stays
            # is its truth's class among the cell's classes.
            rows = ev.assigned[c]  # type: ignore[index]
            own = _class_of(ev, c[0], int(bt[c])) if bt[c] >= 0 else -1
            loop2_classes = {_class_of(ev, c[0], t) for t in rows}
            e_pos = _positive_classes(arr, False, c)  # type: ignore[arg-type]
            a_pos = _positive_classes(arr, True, c)  # type: ignore[arg-type]
            if own not in loop2_classes:
                cells[c] = a_pos == e_pos - {own} or a_pos == e_pos | {own}
        else:
            cells[c] = (arr.E[c[0], c[1], o, c[2], c[3]] > 0) != (arr.A[c[0], c[1], o, c[2], c[3]] > 0)
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = _cells_of(sel)
        used = {(c[0], int(bt[c])) for c in cs if bt[c] >= 0}
        ious = sorted({float(best[c]) for c in cs})
        return (f"upstream's ignore loop assigns a cell whose best IoU beats truth_thresh = {tt:g} (IoU > "
                f"truth_thresh: objectness 1, class and box deltas from that truth); at "
                f"{_cells_str(ev, cs)} (best IoU {', '.join(f'{v:.6g}' for v in ious[:3])}; {_rows_str(used)}) the "
                "implementation took that branch where upstream does not, or missed it. Reproduce the branch with "
                "a strict '>'.")
    return Finding(arr.cell_mask(cells), rows={}, say=say)


def _sigmoid32(X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (F(1) / (F(1) + np.exp(-X))).astype(F)


def _activated(ev: Evidence, P: int) -> List[int]:
    c = ev.coords
    if ev.kind == "yolo_ab":
        return [] if ev.layer.new_coords else [0, 1, c] + list(range(c + 1, P))
    if ev.kind == "yolo":
        return [0, 1, c] + list(range(c + 1, P))
    out = [0, 1] + ([] if ev.layer.background else [c])
    if not ev.layer.softmax and ev.layer.tree is None:
        out += list(range(c + 1, P))
    return out


def _objectness_form(arr: Array, leftovers: bool = False) -> Optional[Finding]:
    """A squared error on the sigmoid for objectness: A = k*E*y*(1 - y),
    recognised where enough elements tell it apart from upstream's form;
    with ``leftovers``, any objectness element still unexplained that has
    that value."""
    ev = arr.ev
    assert ev is not None
    o = arr.obj
    if ev.kind == "region" and ev.layer.background:
        return None
    E, A, y = arr.E64[:, :, o], arr.A64[:, :, o], ev.Y[:, :, o].astype(np.float64)
    g = y * (1 - y)
    for k in (1.0, 2.0):
        form = k * E * g
        ok = np.abs(A - form) <= 1e-3 * np.abs(form) + 4 * arr.bound[:, :, o] + 1e-30
        # Elements where the squared-error form is told apart from upstream's:
        # not saturated (g > 0), k*E*g away from E by more than rounding, and
        # the implementation's value k*E*g itself (not merely as near 0).
        telling = (np.abs(E) > arr.bound[:, :, o]) & (g > 0) & (np.abs(E - form) > 4 * arr.bound[:, :, o])
        exact = np.abs(A - form) <= 1e-3 * np.abs(form) + 1e-30
        if leftovers or (telling.sum() and (exact & telling).sum() >= 0.9 * telling.sum()):
            mask = np.zeros(arr.E.shape, bool)
            mask[:, :, o] = ok & (np.abs(A) < np.abs(E)) if leftovers else ok
            if not mask.any():
                continue

            def say(sel: np.ndarray, k: float = k) -> str:
                return ("upstream's objectness delta is t - p (cross-entropy on the logit, handed on as is); the "
                        f"implementation's is {'' if k == 1 else '2*'}(t - p)*p*(1 - p), the gradient of a squared "
                        "error on the sigmoid's output p (the MSE-vs-BCE question): it vanishes where p saturates. "
                        "Use binary cross-entropy on the logit.")
            return Finding(mask, say=say)
    return None


def _saturated_cells(ev: Evidence) -> np.ndarray:
    """Where float32 sigmoid(x) rounds to 0 or 1, or p*(1 - p) falls below
    the 1e-12 that BCE on probabilities clamps its denominator to."""
    p = _sigmoid32(ev.X)
    return (p == 0) | (p == 1) | ((p * (F(1) - p)).astype(F) < F(1e-12))


def _role_groups(arr: Array, entries: Sequence[int]) -> List[List[int]]:
    """Entries grouped by role: x and y, the mask coords, objectness, classes."""
    c = arr.coords
    groups: Dict[str, List[int]] = defaultdict(list)
    for e in entries:
        groups["xy" if e < 2 else "wh" if e < 4 else "mask" if e < c else "obj" if e == c else "class"].append(e)
    return list(groups.values())


def _saturated(arr: Array) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    act = _activated(ev, arr.E.shape[2])
    X = ev.X
    sat = _saturated_cells(ev)
    smaller = (np.abs(arr.A64) < np.abs(arr.E64)) & (arr.A64 * arr.E64 >= 0)
    cand = arr.role_mask(act) & sat & _nontrivial(arr)
    # A box or class delta that vanished where the implementation wrote no
    # box or class delta at all is a truth not given to that cell, not a
    # vanishing gradient: x, y and classes count where the cell holds w, h or
    # class deltas of the implementation's.
    c = arr.coords
    wrote = (arr.A[:, :, 2:4] != 0).any(axis=2) | (arr.A[:, :, c + 1:] != 0).any(axis=2)
    own = arr.role_mask([c]) | arr.cell_mask(wrote)
    mask = cand & smaller & own
    # In a cell two truths share a missing short-circuit leaves the same
    # small value, and at a tie with ignore_thresh '>=' leaves the same 0:
    # such cells count only when saturation shows elsewhere, and not when
    # elsewhere saturated elements keep upstream's value.
    ambiguous = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    if ev.rec:
        for c in _multi(ev):
            ambiguous[c] = True
        if _ties_decided_other_way(arr) is not False:
            ambiguous |= ~ev.e_assigned() & (ev.rec["best_iou"] == F(ev.ignore))
    plain = arr.cell_mask(~ambiguous)
    keep = np.zeros_like(mask)
    for group in _role_groups(arr, act):
        g = arr.role_mask(group)
        # Evidence per role (an implementation may use BCE on probabilities
        # for objectness only): a vanishing gradient in a plain cell, or none
        # where a saturated element kept upstream's value.
        if (mask & g & plain).any() or not (cand & g & ~arr.fail).any():
            keep |= mask & g
    mask = keep
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        xs = np.abs(X[sel]).astype(np.float64)
        roles = sorted({_role_name(arr, int(e)) for e in np.argwhere(sel)[:, 2]})
        return (f"at {', '.join(roles)} entries whose logit is beyond float32 sigmoid saturation (|x| from "
                f"{xs.min():.4g} to {xs.max():.4g}, where float32 sigmoid(x) rounds to 1 or 0, or p(1 - p) < 1e-12), "
                "upstream's delta stays t - sigmoid(x) (up to +-1), computed in double; the implementation's "
                "gradient is 0 or far smaller: "
                "it applies BCE to sigmoid outputs (torch.nn.BCELoss on probabilities, or a clamped log). Compute "
                "the loss on the logits (BCEWithLogits), whose gradient is sigmoid(x) - t.")
    return Finding(mask, say=say)


def _ties_decided_other_way(arr: Array) -> Optional[bool]:
    """Whether the implementation ignores cells whose best IoU equals the
    threshold (upstream's '>' keeps them negative): judged on such cells
    whose objectness logit is not saturated (where a vanishing gradient
    would look the same).  None when there is no such cell."""
    ev = arr.ev
    assert ev is not None
    o = arr.obj
    tie = ~ev.e_assigned() & (ev.rec["best_iou"] == F(ev.ignore))
    negative = tie & ~_saturated_cells(ev)[:, :, o] & (arr.E[:, :, o] != 0)
    if not negative.any():
        return None
    return bool((negative & (arr.A[:, :, o] == 0)).sum() >= 0.9 * negative.sum())


def _ignore_rule(arr: Array, ties_only: bool) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    o = arr.obj
    thr = ev.ignore
    best = ev.rec["best_iou"]
    free = ~ev.e_assigned()
    up_ignored = arr.E[:, :, o] == 0
    impl_ignored = arr.A[:, :, o] == 0
    cells = free & (up_ignored != impl_ignored)
    if ties_only:
        # Ties with the threshold, when the implementation shows it decides
        # them the other way at a cell whose logit is not saturated (where
        # a vanishing gradient would explain a 0 as well).
        cells &= best == F(thr)
        if not _ties_decided_other_way(arr):
            return None
    if not cells.any():
        return None
    mask = arr.role_mask([o], cells)
    name = "ignore_thresh" if ev.kind == "yolo" else "thresh"

    def say(sel: np.ndarray) -> str:
        cs = _cells_of(sel)
        tie = [c for c in cs if best[c] == F(thr)]
        neg = [c for c in cs if up_ignored[c]]
        parts = []
        if tie:
            parts.append(f"at {len(tie)} cell{'s' if len(tie) > 1 else ''} the best IoU equals {name} = {thr:g} "
                         f"exactly ({_cells_str(ev, tie, 2)}): upstream's test is best IoU > {name} (strict), so "
                         "the cell stays a negative; the implementation uses '>='")
        if len(tie) < len(cs):
            rest = [c for c in cs if c not in tie]
            ious = ", ".join(f"{float(best[c]):.6g}" for c in rest[:3])
            parts.append(f"upstream {'ignores' if neg else 'treats as negative'} {len(rest)} cell"
                         f"{'s' if len(rest) > 1 else ''} (best IoU with a truth {ious} against {name} = {thr:g}) "
                         f"that the implementation {'treats as negative' if neg else 'ignores'}"
                         f" ({_cells_str(ev, rest, 2)}): check how it computes the predicted boxes and their IoU")
        return "; ".join(parts) + ". Ignore a cell's objectness exactly when its best IoU with a truth upstream " \
                                  f"reads is > {name}."
    return Finding(mask, say=say)


def _rescore(arr: Array) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    if ev.kind != "region" or ev.layer.background:
        return None
    o = arr.obj
    cells = np.zeros(ev.Y.shape[:2] + ev.Y.shape[3:], bool)
    alt = np.zeros(cells.shape, np.float64)
    s = float(ev.layer.object_scale)
    for (b, a, j, i), rows in ev.assigned.items():
        t = rows[-1]
        y = float(ev.Y[b, a, o, j, i])
        iou = float(ev.rec["row_iou"][b, t])
        alt[b, a, j, i] = s * ((1.0 if ev.layer.rescore else iou) - y)
        cells[b, a, j, i] = True
    ok = np.abs(arr.A64[:, :, o] - alt) <= 1e-4 * np.abs(alt) + 4 * arr.bound[:, :, o] + 1e-12
    mask = arr.role_mask([o], cells & ok)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        if ev.layer.rescore:
            return ("with rescore=1 upstream's objectness target at an assigned cell is the IoU of the predicted box "
                    "with the truth; the implementation used 1. Use the IoU as the target.")
        return "with rescore=0 upstream's objectness target is 1; the implementation used the IoU. Use 1."
    return Finding(mask, say=say)


def _prior_rule(arr: Array) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    if ev.kind != "region":
        return None
    free = ~ev.e_assigned()
    box = arr.role_mask(range(4), free)
    if ev.seen < 12800:
        mask = box & (arr.E != 0) & (arr.A == 0)
    else:
        mask = box & (arr.E == 0) & (arr.A != 0)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        if ev.seen < 12800:
            return (f"while seen < 12800 (here {ev.seen}) upstream pulls every cell's box towards its anchor at the "
                    "cell centre (scale .01); the implementation leaves those box deltas 0. Add the prior term "
                    "while seen < 12800.")
        return (f"upstream's prior pull of every box towards its anchor stops once seen >= 12800 (here "
                f"{ev.seen}); the implementation still applies it. Drop it from seen = 12800 on.")
    return Finding(mask, say=say)


def _box_scale(arr: Array) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    cells = ev.e_assigned()
    S = np.where(ev.sel.has, ev.sel.scale, np.nan)
    box = arr.role_mask(range(4), cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        dropped = arr.close(arr.A64, arr.E64 / S) | arr.close(arr.A64, arr.E64 * S)
    mask = box & dropped & (np.abs(S - 1) > 1e-6)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        return ("upstream scales every box delta of an assigned cell by 2 - w*h of its truth (small boxes weigh up "
                "to twice as much); the implementation's box deltas differ from upstream's by exactly that factor "
                f"({_cells_str(ev, _cells_of(sel))}). Multiply by (2 - w*h).")
    return Finding(mask, say=say)


def _wh_target(arr: Array) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    cells = ev.e_assigned()
    xy_ok = ~arr.fail[:, :, 0:2].any(axis=2)
    mask = arr.role_mask([2, 3], cells & xy_ok)
    if not mask.any():
        return None
    S = np.where(ev.sel.has, ev.sel.scale, np.nan)

    def say(sel: np.ndarray) -> str:
        with np.errstate(invalid="ignore", divide="ignore"):
            implied = ev.X.astype(np.float64) + arr.A64 / S
        H, W = ev.Y.shape[3], ev.Y.shape[4]
        sizes = {2: (W, ev.net_w, "w", "W/net_w"), 3: (H, ev.net_h, "h", "H/net_h")}
        notes = []
        for e, (grid, net, name, ratio) in sizes.items():
            one = np.zeros_like(sel)
            one[:, :, e] = sel[:, :, e]
            diff = (implied - ev.sel.target)[one]
            diff = diff[np.isfinite(diff)]
            if not diff.size or np.ptp(diff) > 1e-3 * max(1.0, abs(float(np.median(diff)))):
                continue
            d = float(np.median(diff))
            guess = ""
            if ev.kind == "yolo" and abs(d - np.log(grid / net)) < 1e-3:
                guess = f" = log({ratio}) = log({grid}/{net}): pixel anchors used as if in grid units"
            notes.append(f"its {name} target is upstream's plus a constant {d:.6g}{guess}")
        const = ("; " + "; ".join(notes)) if notes else ""
        size = "net_w" if ev.kind == "yolo" else "W"
        return (f"upstream's w, h targets are log(w*{size}/anchor_w), log(h*{'net_h' if ev.kind == 'yolo' else 'H'}"
                f"/anchor_h) with anchors in {'network pixels' if ev.kind == 'yolo' else 'grid cells'}; the "
                f"implementation's differ{const} ({_cells_str(ev, _cells_of(sel))}). Use upstream's target.")
    return Finding(mask, say=say)


def _activation(arr: Array) -> Optional[Finding]:
    ev = arr.ev
    assert ev is not None
    X = ev.X.astype(np.float64)
    raw = ev.Y.view(np.uint32) == ev.X.view(np.uint32)
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-X))
    mask = (~raw & arr.close(arr.A64, X, rel=1e-6)) | (raw & arr.close(arr.A64, sig, rel=1e-5))
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        roles = sorted({_role_name(arr, int(e)) for e in np.argwhere(sel)[:, 2]})
        return (f"upstream applies the logistic to x, y, objectness and flat classes and leaves w, h raw; the "
                f"implementation's {', '.join(roles)} output entries are activated the other way round.")
    return Finding(mask, say=say)


def _role_name(arr: Array, e: int) -> str:
    if getattr(arr.layer, "kind", None) == "detection":  # issue 23: per cell, classes, confidences, boxes
        from .more_layers import names
        name = names(arr.layer)[e]
        return "class" if name.startswith("class ") else name
    c = arr.coords
    if e < 4:
        return "xywh"[e]
    if e < c:
        return f"mask{e - 4}"
    if e == c:
        return "objectness"
    return "class"


# ---- putting it together ----------------------------------------------------------------

DeltaRule = Callable[[Array], Optional[Finding]]
_X0_ROWS = (_native.lib.DN_ROW_TERMINATOR, _native.lib.DN_ROW_AFTER)
_LIMIT_ROWS = (_native.lib.DN_ROW_BEYOND_MAX,)
DELTA_RULES: List[Tuple[str, DeltaRule]] = [
    # Rules that recognise the implementation's value itself.
    ("objectness_loss", _objectness_form),
    ("box_scale", _box_scale),
    # Rows upstream never reads, or reads elsewhere, where the values show it.
    ("x0_terminator", lambda a: _unread_rows(a, _X0_ROWS, "x0_terminator", ignore_cells="if_assigned")),
    ("truth_limit", lambda a: _unread_rows(a, _LIMIT_ROWS, "truth_limit", ignore_cells="if_assigned")),
    ("cell_assignment", _cell_assignment),
    ("anchor_assignment", _anchor_assignment),
    # Ties with ignore_thresh decided the other way: '>=' for '>'.
    ("ignore_rule", lambda a: _ignore_rule(a, ties_only=True)),
    ("saturated_gradient", _saturated),
    # Rules that recognise where the implementation put a truth.
    ("x0_terminator", lambda a: _unread_rows(a, _X0_ROWS, "x0_terminator", ignore_cells="always")),
    ("truth_limit", lambda a: _unread_rows(a, _LIMIT_ROWS, "truth_limit", ignore_cells="always")),
    ("truth_thresh", _truth_thresh),
    ("overwrite_order", _overwrite_order),
    ("class_short_circuit", _class_short_circuit),
    ("ignore_rule", lambda a: _ignore_rule(a, ties_only=False)),
    ("rescore", _rescore),
    ("prior_rule", _prior_rule),
    ("wh_target", _wh_target),
    ("objectness_loss", lambda a: _objectness_form(a, leftovers=True)),
    # Last, for what is left: the assignment departure whose changed cells
    # cover most of it, when no row showed plainly where it went.
    ("cell_assignment", lambda a: _weak_assignment(a, "cell")),
    ("anchor_assignment", lambda a: _weak_assignment(a, "anchor")),
]
OUTPUT_RULES: List[Tuple[str, DeltaRule]] = [("activation", _activation)]


@dataclass
class Diagnosis:
    """Per array, each element's cause code ('' where it passes), and the causes."""

    codes: Dict[str, np.ndarray]
    causes: List[Cause]


def diagnose(arrays: Sequence[Array], ev: Optional[Evidence]) -> Diagnosis:
    codes: Dict[str, np.ndarray] = {}
    parts: Dict[str, List[Tuple[str, np.ndarray, Finding]]] = defaultdict(list)
    for arr in arrays:
        code = np.full(arr.E.shape, "", dtype=object)
        left = arr.fail.copy()

        def take(name: str, finding: Finding) -> None:
            sel = left & finding.mask
            if sel.any():
                code[sel] = name
                parts[name].append((arr.name, sel, finding))
                left[...] = left & ~sel

        if ev is not None:
            take("float_rounding", Finding(np.abs(arr.A64 - arr.E64) <= arr.bound, say=_say_rounding(arr)))
        glob = _global_rules(arr, left)
        if glob is not None:
            take(*glob)
        if ev is not None:
            rules = DELTA_RULES if arr.name == "delta" else OUTPUT_RULES
            if ev.kind == "yolo_ab":  # no record of the decisions: the generic causes only
                rules = [("saturated_gradient", _saturated)] if arr.name == "delta" else []
            for name, rule in rules:
                if not left.any():
                    break
                arr.left = left
                finding = rule(arr)
                if finding is not None:
                    take(name, finding)
        if left.any():
            late = _global_rules(arr, left, min_scaled=1)
            if late is not None and late[0] == "scale":
                take(*late)
        if left.any():
            take("unexplained", Finding(left.copy(), say=_say_unexplained(arr, ev)))
        codes[arr.name] = code
    causes = []
    for name, items in parts.items():
        count = sum(int(sel.sum()) for _, sel, _ in items)
        cells: Set[Tuple[int, int, int, int]] = set()
        rows: Set[Tuple[int, int]] = set()
        for _, sel, f in items:
            for c in _cells_of(sel):
                cells.add(c)
                rows.update((c[0], t) for t in f.rows.get(c, ()))
        msgs = []
        for arr_name, sel, f in items:
            m = f.say(sel)
            if m and m not in msgs:
                msgs.append(m if len(items) == 1 else f"{arr_name}: {m}")
        causes.append(Cause(code=name, count=count, truth_rows=tuple(sorted(rows)), cells=tuple(sorted(cells)),
                            message=" ".join(msgs), arrays=tuple((a, int(s.sum())) for a, s, _ in items)))
    order = list(CAUSES)
    causes.sort(key=lambda c: (-c.count, order.index(c.code)))
    return Diagnosis(codes=codes, causes=causes)


def _say_rounding(arr: Array) -> Callable[[np.ndarray], str]:
    def say(sel: np.ndarray) -> str:
        d = np.abs(arr.A64 - arr.E64)[sel]
        return (f"the {arr.name} values differ from darknet's by at most {float(d.max()):.3g}, within darknet's own "
                "float32 rounding of each element (ImpliedLoss.rounding_bound): a float32 implementation of the same "
                "formulas does this. Not a defect: compare with tolerance='float32'.")
    return say


def _say_unexplained(arr: Array, ev: Optional[Evidence]) -> Callable[[np.ndarray], str]:
    def say(sel: np.ndarray) -> str:
        idx = np.argwhere(sel)
        roles = sorted({_role_name(arr, int(e)) for e in idx[:, 2]})
        if getattr(arr.layer, "kind", None) in ("region_ab", "detection"):  # issue 23: no decision record
            return (f"for {arr.layer.kind} only the generic causes are recognised (layout, sign, scale, NaN); "
                    f"compare the deltas there term by term. Differences at {', '.join(roles)} entries.")
        if ev is None:
            return ("no rule could be tried: pass input= and truth= (a golden case carries both) so that the "
                    f"oracle's decisions explain each element. Differences at {', '.join(roles)} entries.")
        cells = _cells_of(sel)
        hint = ("compare the targets there with the oracle's (pdl.implied.select gives each element's target and "
                "scale)" if ev.kind != "yolo_ab" else
                "for AlexeyAB's layer only the generic causes are recognised (rounding, layout, sign, scale, "
                "saturation); compare its deltas there term by term")
        return (f"no rule explains these {arr.name} elements ({', '.join(roles)} entries at "
                f"{_cells_str(ev, cells)}); {hint}.")
    return say

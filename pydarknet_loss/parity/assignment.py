"""The assignment, visible: per cell and anchor, what darknet decided beside
what the implementation's values show (``report.assignment``).

Darknet's side is read from the oracle's record of its forward on the same
input (``darknet_src/record.c`` for pjreddie's [yolo] and [region],
``darknet_src/ab_record.c`` for AlexeyAB's and hank-ai's [yolo]); the
order of its loops decides which wins where several apply:

- ``assigned``: a truth row is written there by the truth loop (its best
  anchor, or for AlexeyAB's layer one of the ``iou_thresh`` anchors);
- ``truth_thresh``: the cell loop's ``best IoU > truth_thresh`` branch;
- ``ignored``: the cell's best IoU is above ``ignore_thresh`` ([region]:
  ``thresh``), so its objectness delta is 0 (AlexeyAB's ``objectness_smooth``:
  a delta towards that IoU, which the reason names);
- ``negative``: objectness pushed towards 0.

The implementation's side is read from its objectness delta there (in
darknet's CPU-build terms): darknet's own value means darknet's decision; 0
means ``ignored``; darknet's target-0 form (``noobject scale × (0 − p)``)
means ``negative`` and its target-1 form (``object scale × (1 − p)``)
``positive``; any other value is read by its sign (darknet's objectness
delta is ``scale × (t − p)`` with ``p`` in (0, 1): a positive delta needs a
target above ``p``), and says so (``by sign``).  Values are matched within a
relative 1e-4 (an implementation in float32 rounds differently from darknet;
the rows are a reading, not a verdict: ``report.ok`` is the verdict).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .diagnosis.evidence import Evidence, ab_record, evidence

#: darknet's decision -> the implementation's reading that agrees with it
AGREES: Dict[str, str] = {"assigned": "positive", "truth_thresh": "positive", "ignored": "ignored",
                          "negative": "negative"}
_SHOWN = 20  # disagreeing cells printed by str()


@dataclass(frozen=True)
class CellDecision:
    """One cell and anchor: darknet's decision and the implementation's."""

    image: int
    anchor: int  #: index into the layer's anchors (the mask index for [yolo])
    cfg_anchor: Optional[int]  #: [yolo]: the anchor's number in the cfg (mask[anchor])
    row: int
    col: int
    darknet: str  #: "assigned", "truth_thresh", "ignored" or "negative"
    why: str  #: darknet's reason: which truth row(s) and how, or the IoU that ignored the cell
    implementation: str  #: "positive", "negative", "ignored" or "other" (NaN/inf)
    how: str  #: how the implementation's side was read: "darknet's value", "0", "form" or "by sign"
    expected: float  #: darknet's objectness delta there
    actual: float  #: the implementation's

    @property
    def agrees(self) -> bool:
        return AGREES[self.darknet] == self.implementation

    def where(self) -> str:
        anchor = f"anchor {self.anchor}" if self.cfg_anchor is None else \
            f"anchor {self.cfg_anchor} (mask index {self.anchor})"
        return f"image {self.image}, {anchor}, row {self.row}, col {self.col}"

    def __str__(self) -> str:
        how = "" if self.how in ("darknet's value", "form", "0") else f", {self.how}"
        return (f"{self.where()}: darknet {self.darknet}{' ' + self.why if self.why else ''}; "
                f"yours {self.implementation}{how} (objectness delta {self.expected:.6g} vs {self.actual:.6g})")


@dataclass
class Assignment:
    """Darknet's decision per cell and anchor beside the implementation's.

    ``cells`` lists every cell where either side is not ``negative`` (the
    rest, negative on both sides, are only counted); ``differ`` those where
    the two disagree; ``counts`` (darknet, implementation) -> cells, over
    every cell."""

    kind: str
    cells: List[CellDecision] = field(default_factory=list)
    counts: Dict[Tuple[str, str], int] = field(default_factory=dict)

    @property
    def differ(self) -> List[CellDecision]:
        return [c for c in self.cells if not c.agrees]

    def __str__(self) -> str:
        differ = self.differ
        total = sum(self.counts.values())
        lines = [f"[{self.kind}] assignment: {total} cells and anchors, {len(differ)} decided otherwise than darknet"]
        for c in differ[:_SHOWN]:
            lines.append(f"  {c}")
        if len(differ) > _SHOWN:
            lines.append(f"  ... and {len(differ) - _SHOWN} more (Assignment.differ lists them)")
        lines.append("  darknet        yours          cells")
        for (d, a), k in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            mark = "" if AGREES[d] == a else "   <- differ"
            lines.append(f"  {d:<14} {a:<14} {k:>6}{mark}")
        return "\n".join(lines)


def assignment(ev: Evidence, actual: np.ndarray) -> Assignment:
    """The assignment on the evidence's input: ``actual`` is the
    implementation's delta, (B, n, entries, H, W) in darknet's CPU-build
    terms (as the diagnosis sees it)."""
    layer, kind = ev.layer, ev.kind
    obj = int(layer.coords)
    B, n, _, H, W = ev.D.shape
    decision = np.full((B, n, H, W), 3, np.int8)  # 0 assigned, 1 truth_thresh, 2 ignored, 3 negative
    why: Dict[Tuple[int, int, int, int], str] = {}
    best_iou, truth_thresh, best_truth, ignore = _darknet_side(ev, decision, why)
    p = ev.Y[:, :, obj].astype(np.float64)
    E = ev.D[:, :, obj]
    A = actual[:, :, obj].astype(np.float64)
    neg_scale, pos_scale = _scales(layer, kind)
    close = lambda a, b: np.abs(a - b) <= 1e-4 * np.abs(b) + 1e-7  # noqa: E731
    with np.errstate(invalid="ignore", over="ignore"):
        same = (A == E) | close(A, E.astype(np.float64))
        zero = A == 0
        neg = close(A, neg_scale * (0 - p))
        pos = close(A, pos_scale * (1 - p))
        finite = np.isfinite(A)
    names = ("assigned", "truth_thresh", "ignored", "negative")
    dn_reading = np.array([0, 0, 2, 1], np.int8)[decision]  # 0 positive, 1 negative, 2 ignored
    impl = np.select([same, zero, neg, pos, finite & (A > 0), finite & (A < 0)],
                     [dn_reading, 2, 1, 0, 0, 1], 3).astype(np.int8)
    how = np.select([same, zero, neg | pos], [0, 1, 2], 3)
    impl_names = ("positive", "negative", "ignored", "other")
    how_names = ("darknet's value", "0", "form", "by sign")
    out = Assignment(kind=kind)
    pairs = Counter(zip(decision.reshape(-1).tolist(), impl.reshape(-1).tolist()))
    out.counts = {(names[d], impl_names[a]): k for (d, a), k in sorted(pairs.items())}
    mask = getattr(layer, "mask", None)
    shown = (decision != 3) | (impl != 1)
    for b, a, j, i in zip(*np.nonzero(shown)):
        c = (int(b), int(a), int(j), int(i))
        d = int(decision[c])
        if d == 2 and c not in why:
            why[c] = f"(best IoU {float(best_iou[c]):.4g} > {ignore:g})"
        if d == 1 and c not in why:
            why[c] = f"(row {int(best_truth[c])}, IoU {float(best_iou[c]):.4g} > truth_thresh {truth_thresh:g})"
        out.cells.append(CellDecision(c[0], c[1], None if mask is None or kind == "region" else int(mask[c[1]]),
                                      c[2], c[3], names[d], why.get(c, ""), impl_names[int(impl[c])],
                                      how_names[int(how[c])], float(E[c]), float(A[c])))
    return out


def assignment_for(layer: Any, actual: Any, *, input: Any, truth: Any, net_w: int = 416, net_h: int = 416,
                   seen: int = 0) -> Assignment:
    """The assignment without a report: the oracle runs ``layer`` (pjreddie's
    [yolo] or [region], AlexeyAB's or hank-ai's [yolo]) on ``input``
    (B, n*entries, H, W) and ``truth``; ``actual`` is the implementation's
    delta, of the input's shape, in darknet's CPU-build terms.
    ``report.assignment`` is the same reading of a compared delta."""
    kind = getattr(layer, "kind", None)
    if kind not in ("yolo", "region", "yolo_ab", "yolo_hankai"):
        raise ValueError(f"assignment_for: layer must be a [yolo] or [region] layer (pjreddie's, AlexeyAB's or "
                         f"hank-ai's), got {type(layer).__name__}")
    x = np.asarray(input)
    if x.ndim != 4 or x.dtype != np.float32:
        raise ValueError(f"assignment_for: input must be a float32 array (B, n*entries, H, W), got "
                         f"{x.dtype} of shape {x.shape}")
    a = np.asarray(actual)
    if a.shape != x.shape or not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"assignment_for: actual must be a float array of the input's shape {x.shape}, got "
                         f"{a.dtype} of shape {a.shape}")
    ev = evidence(layer, x, truth, net_w=net_w, net_h=net_h, seen=seen)
    return assignment(ev, a.reshape(ev.D.shape).astype(np.float64))


def _scales(layer: Any, kind: str) -> Tuple[float, float]:
    """Darknet's objectness scales: (target 0, target 1)."""
    if kind == "region":
        return float(layer.noobject_scale), float(layer.object_scale)
    if kind == "yolo_ab":
        return float(layer.obj_normalizer), float(layer.obj_normalizer)
    return 1.0, 1.0


def _darknet_side(ev: Evidence, decision: np.ndarray, why: Dict[Tuple[int, int, int, int], str]
                  ) -> Tuple[np.ndarray, float, np.ndarray, float]:
    """Fills darknet's decision per cell (in the order its loops apply) and
    the reasons of the assigned ones; returns the IoUs the rest quote."""
    layer = ev.layer
    if ev.kind == "yolo_ab":
        rec = ab_record(ev)
        assert rec is not None
        gated, best_all, best_truth = rec["best_iou"], rec["best_iou_all"], rec["best_truth"]
        ignore, thresh = float(layer.ignore_thresh), float(layer.truth_thresh)
        decision[gated > ignore] = 2
        decision[best_all > thresh] = 1
        rows: Dict[Tuple[int, int, int, int], List[str]] = {}
        B, R = rec["row_status"].shape
        for b, t in zip(*np.nonzero(rec["row_status"] == 0)):
            j, i = int(rec["row_j"][b, t]), int(rec["row_i"][b, t])
            a = int(rec["best_in_mask"][b, t])
            if a >= 0:
                rows.setdefault((int(b), a, j, i), []).append(f"row {int(t)} (best anchor)")
            for a in np.flatnonzero(rec["extra"][b, t]):
                rows.setdefault((int(b), int(a), j, i), []).append(f"row {int(t)} (iou_thresh)")
        for c, what in rows.items():
            decision[c] = 0
            why[c] = ", ".join(what)
        if layer.objectness_smooth:  # an ignored cell's objectness targets its best IoU instead of 0
            obj = int(layer.coords)
            smooth = (decision == 2) & (rec["form"][:, :, obj] == 1) & (rec["target"][:, :, obj] != 0)
            for c in zip(*np.nonzero(smooth)):
                c = tuple(int(v) for v in c)
                why[c] = (f"(best IoU {float(gated[c]):.4g} > {ignore:g}; objectness_smooth: target "
                          f"{float(rec['target'][c[0], c[1], obj, c[2], c[3]]):.4g})")
        # the IoU quoted for an ignored cell is the class-gated one the test used
        return np.where(decision == 1, best_all, gated), thresh, best_truth, ignore
    rec = ev.rec
    ignore = float(layer.ignore_thresh if ev.kind == "yolo" else layer.thresh)
    decision[rec["best_iou"] > ignore] = 2
    thresh = float(layer.truth_thresh) if ev.kind == "yolo" else float("inf")
    if ev.thresh_cells is not None:
        decision[ev.thresh_cells] = 1
    for c, ts in ev.assigned.items():
        decision[c] = 0
        why[c] = ", ".join(f"row {t} (best anchor)" for t in ts)
    return rec["best_iou"], thresh, rec["best_truth"], ignore

"""Models of AlexeyAB's [yolo] decisions that are not one of its options:
the ignore test's class gate, accumulation against overwriting, and the best
anchor chosen by another measure.  Each replays upstream's arithmetic
(src/yolo_layer.c, 59596d7) with that one departure, through the bit-exact
layer where it can: a truth row's own contribution is the layer run on that
row alone."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..evidence import ab_record
from ..model import F, Array, Claim, cells_of, cells_str, class_of

F64 = np.float64


def read_rows(ev: Any) -> List[Tuple[int, int]]:
    """(image, row) of every truth row upstream reads (ab_record.c: x == 0
    ends an image's list, a class id outside [0, classes) skips the row)."""
    rec = ab_record(ev)
    assert rec is not None
    return [(int(b), int(t)) for b, t in np.argwhere(rec["row_status"] == 0)]


def _forward(ev: Any, truth: np.ndarray, **changes: Any) -> np.ndarray:
    layer = ev.layer
    if changes:
        params = layer.params()
        params.update(changes)
        layer = type(layer)(**params)
    B, n, P, H, W = ev.X.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = layer.forward(ev.X.reshape(B, n * P, H, W), truth, net_w=ev.net_w, net_h=ev.net_h)
    return res.delta.reshape(ev.X.shape).astype(F64)


def row_alone(ev: Any, b: int, t: int, **changes: Any) -> np.ndarray:
    """The delta with truth row (b, t) as image b's only truth (other images: none)."""
    cache: Dict[Any, np.ndarray] = ev.__dict__.setdefault("_ab_rows", {})
    key = (b, t, tuple(sorted(changes.items())))
    if key not in cache:
        truth = np.zeros_like(ev.truth)
        truth[b, 0] = ev.truth[b, t]
        cache[key] = _forward(ev, truth, **changes)
    return cache[key]


def without_row(ev: Any, b: int, t: int) -> np.ndarray:
    cache: Dict[Any, np.ndarray] = ev.__dict__.setdefault("_ab_without", {})
    if (b, t) not in cache:
        truth = ev.truth.copy()
        rest = np.delete(truth[b], t, axis=0)
        truth[b] = np.concatenate([rest, np.zeros((1, truth.shape[2]), truth.dtype)])
        cache[(b, t)] = _forward(ev, truth)
    return cache[(b, t)]


def _near(arr: Array, idx: Tuple[Any, ...], value: np.ndarray) -> np.ndarray:
    """arr.close on the elements ``idx``: the implementation's values there are ``value`` within darknet's rounding."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(arr.A64[idx] - value) <= 1e-5 * np.abs(value) + 4 * arr.bound[idx] + 1e-30


# ---- the ignore test's class gate ---------------------------------------------------------
def ignore_gate(arr: Array) -> Optional[Claim]:
    """Cells upstream keeps negative because no class probability there
    exceeds .25 (its ignore test only takes truths at such cells), while the
    implementation ignores them: its best IoU without the gate beats
    ignore_thresh."""
    ev = arr.ev
    assert ev is not None
    if not read_rows(ev):
        return None
    o = arr.obj
    thr = float(ev.layer.ignore_thresh)
    rec = ab_record(ev)
    assert rec is not None
    # upstream's own IoUs (ab_record.c): with the gate, and over every truth
    cells = (rec["best_iou_all"] > F(thr)) & ~(rec["best_iou"] > F(thr))
    E, A = arr.E64[:, :, o], arr.A64[:, :, o]
    zero = np.abs(A) <= 4 * arr.bound[:, :, o]
    # E < 0: a negative cell upstream keeps, the ignore test alone zeroes it
    alone = cells & (E < 0) & zero
    # E > 0: a cell darknet assigns.  The ignore test alone cannot change
    # that: where the iou_thresh anchor is left out too and the cell's
    # objectness is then zeroed, iou_thresh claims it (the anchor left out
    # is the departure that unassigns it; loop 1's value is the
    # implementation's own test's), never this model.
    cells = alone
    if not cells.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        return (f"at {len(cs)} cell{'s' if len(cs) > 1 else ''} ({cells_str(ev, cs, 2)}) the implementation ignores "
                f"the objectness (best IoU > ignore_thresh = {thr:g}) where upstream's test does not: upstream's "
                "ignore test only counts a truth at a cell where some class probability exceeds .25 (the class "
                "gate of compare_yolo_class). Apply the gate.")
    return Claim(arr.role_mask([o], cells), say=say, detail={"rule": "class gate"})


# ---- accumulation against overwriting -----------------------------------------------------
def overwrite(arr: Array) -> Optional[Claim]:
    """Box deltas at cells two truth rows write: upstream adds them (+=, then
    divides by the cell's positive classes when iou_thresh < 1); the
    implementation kept one row's (the last or the first)."""
    ev = arr.ev
    assert ev is not None
    rec = ab_record(ev)
    assert rec is not None
    # the cells upstream writes twice or more (ab_record.c), and the rows
    # (loop 2: best anchor or iou_thresh anchor) that write them
    shared = rec["writes"] >= 2
    if not shared.any():
        return None
    # cells the first loop's truth_thresh branch writes too (best IoU over
    # all truths > truth_thresh, compared in float as upstream does; at
    # truth_thresh = 1 a box's float IoU with itself can round above 1)
    loop1 = rec["best_iou_all"].astype(F) > F(ev.layer.truth_thresh)
    rows = []
    for b, t in read_rows(ev):
        i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
        anchors = set(np.flatnonzero(rec["extra"][b, t]).tolist())
        if rec["best_in_mask"][b, t] >= 0:
            anchors.add(int(rec["best_in_mask"][b, t]))
        if any(shared[b, a, j, i] for a in anchors):
            rows.append((b, t))
    if not rows or len(rows) > 64 or (len(rows) < 2 and not loop1.any()):
        return None
    o = arr.obj
    averaged = float(ev.layer.iou_thresh) < 1
    # darknet's own rows, then the rows with iou_normalizer left out (the
    # normalizer cause claims the other box deltas of such a port); where
    # the truth_thresh branch writes a cell before loop 2 does, a row's
    # loop-2 write alone (the branch off: truth_thresh 2), the value a port
    # that overwrites leaves there
    variants: List[Dict[str, Any]] = [{}]
    if float(ev.layer.iou_normalizer) != 1:
        variants.append({"iou_normalizer": 1.0})
    if loop1.any():
        variants += [{**v, "truth_thresh": 2.0} for v in variants]
    for changes in variants:
        branch_off = "truth_thresh" in changes
        contrib: Dict[Tuple[int, int, int, int], List[np.ndarray]] = {}
        for b, t in rows:
            D = row_alone(ev, b, t, **changes)
            for a, j, i in np.argwhere((D[b, :, :4] != 0).any(axis=1)).tolist():
                box = D[b, a, :4, j, i].astype(F)
                if averaged and D[b, a, o, j, i] != 0:
                    k = int((D[b, a, o + 1:, j, i] > 0).sum())
                    box = (box * F(max(k, 1))).astype(F)
                contrib.setdefault((b, a, j, i), []).append(box)
        mask = np.zeros(arr.E.shape, bool)
        for (b, a, j, i), boxes in contrib.items():
            if len(boxes) + int(branch_off and loop1[b, a, j, i]) < 2:
                continue
            k = int((arr.E64[b, a, o + 1:, j, i] > 0).sum()) if averaged and arr.E64[b, a, o, j, i] != 0 else 0
            for box in (boxes[-1], boxes[0]):
                v = (box / F(k)).astype(F) if k > 0 else box
                m = arr.fail[b, a, :4, j, i] & _near(arr, (b, a, slice(0, 4), j, i), v.astype(F64))
                if m.any():
                    mask[b, a, :4, j, i] |= m
                    break
        if mask.any():
            break
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        return (f"at {len(cs)} cell{'s' if len(cs) > 1 else ''} ({cells_str(ev, cs, 2)}) two truth rows write the "
                "box deltas (or the first loop's truth_thresh branch and a truth's best anchor): upstream ADDS them "
                "(delta_yolo_box's +=; rewritten_bbox counts them), then divides by the cell's positive classes when "
                "iou_thresh < 1; the implementation kept one write's. Accumulate.")
    return Claim(mask, say=say, detail={"rule": "accumulate"})


# ---- the best anchor by another measure ---------------------------------------------------
def _shape_scores(ev: Any, w: float, h: float, kind: str) -> List[float]:
    out = []
    for a in range(ev.layer.total):
        aw = float(F(ev.layer.anchors[2 * a] / F(ev.net_w)))
        ah = float(F(ev.layer.anchors[2 * a + 1] / F(ev.net_h)))
        inter = min(aw, w) * min(ah, h)
        union = aw * ah + w * h - inter
        iou = inter / union if union > 0 else 0.0
        c = max(aw, w) ** 2 + max(ah, h) ** 2
        if kind == "iou":
            out.append(iou)
        elif kind == "giou":
            cc = max(aw, w) * max(ah, h)
            out.append(iou - (cc - union) / cc)
        elif kind == "diou":
            out.append(iou)  # centred shapes: no distance term
        else:
            v = 4 / math.pi ** 2 * (math.atan(w / h) - math.atan(aw / ah)) ** 2
            alpha = v / (1 - iou + v + 1e-6)
            # "ciou_corner": both shapes from the origin (x1 y1 x2 y2 = 0 0 w h, as
            # Tianxiaomo's port matches anchors), so their centres are apart
            rho = ((w - aw) ** 2 + (h - ah) ** 2) / 4 if kind == "ciou_corner" else 0.0
            out.append(iou - rho / c - alpha * v if c > 0 else iou)
    return out


def _assigned_anchors(scores: List[float], best: int, th: float) -> set:
    """The anchors loop 2 assigns a row: its best, and where iou_thresh < 1
    every other whose shape IoU beats it (yolo_layer.c's second test)."""
    return {best} | ({n for n, v in enumerate(scores) if n != best and v > th} if th < 1 else set())


def anchor_measure(arr: Array) -> Optional[Claim]:
    """Truth rows whose best anchor by CIoU (or GIoU) of the shapes differs
    from upstream's (IoU of the shapes, over all anchors): the
    implementation's values at the other anchor's cell are that row's
    assignment there, and at upstream's anchor's cell those of the other rows."""
    ev = arr.ev
    assert ev is not None
    th = float(ev.layer.iou_thresh)
    o = arr.obj
    mask = np.zeros(arr.E.shape, bool)
    mask_ids = [int(m) for m in ev.layer.mask]
    H, W = ev.X.shape[3], ev.X.shape[4]
    used, joints = set(), set()
    notes: set = set()
    from ._ab_replay import composed_box
    comp = composed_box(arr)
    for b, t in read_rows(ev):
        row = ev.truth[b, t]
        i, j = int(F(row[0]) * F(W)), int(F(row[1]) * F(H))
        ious = _shape_scores(ev, float(row[2]), float(row[3]), "iou")
        e_best = int(np.argmax(ious))
        darknet = _assigned_anchors(ious, e_best, th)
        # the layer's own iou_thresh, then (iou_thresh < 1) a port without the
        # extra anchors too: only its best anchor is assigned (the extras it
        # drops are iou_thresh's to claim; this model claims darknet's best)
        row_best: Optional[Tuple[int, np.ndarray, str, bool, set]] = None
        for kind, joint in [(k, jo) for jo in ([False, True] if th < 1 else [False])
                            for k in ("ciou", "giou", "ciou_corner")]:
            a_best = int(np.argmax(_shape_scores(ev, float(row[2]), float(row[3]), kind)))
            if a_best == e_best:
                continue
            # with iou_thresh < 1 the extra anchors stay as darknet has them;
            # what changes is an anchor the other best adds (its IoU below
            # the threshold) and darknet's best, dropped when it does not
            # pass the threshold itself
            theirs = {a_best} if joint else _assigned_anchors(ious, a_best, th)
            added = [mask_ids.index(n) for n in sorted(theirs - darknet) if n in mask_ids]
            dropped = [mask_ids.index(n) for n in sorted((({e_best} if joint else darknet) - theirs))
                       if n in mask_ids]
            got = np.zeros(arr.E.shape, bool)
            moved = True
            said: set = set()
            for a in added:
                V = row_alone(ev, b, t, iou_thresh=0.0)  # the row assigned at every masked anchor
                near = _near(arr, (b, a, slice(None), j, i), V[b, a, :, j, i])
                # the move shows where the row lands: its box there is the
                # row's at that anchor (a box of 0, or another anchor's box
                # moved over, is no sign of it), or, where another departure
                # changes the box (Tianxiaomo's MSE), its objectness and
                # classes are the row's there; the box is then not claimed
                box_ok = bool(near[:4].all()) and bool((V[b, a, :4, j, i] != 0).any())
                rest_ok = bool(near[o:].all()) and V[b, a, o, j, i] > 0
                moved &= box_ok or rest_ok
                got[b, a, :, j, i] = arr.fail[b, a, :, j, i] & near
                if rest_ok and not box_ok and comp is not None:
                    # the box by the option departures composed_box found (Tianxiaomo's MSE
                    # without iou_normalizer and scale_x_y), at the anchor the row lands on
                    V2 = row_alone(ev, b, t, iou_thresh=0.0, **comp["changes"])[b, a, :4, j, i]
                    with np.errstate(invalid="ignore", over="ignore"):
                        box2 = np.abs(arr.A64[b, a, :4, j, i] - V2) <= 1e-4 * np.abs(V2) + 4 * arr.bound[b, a, :4, j, i]
                    if box2.all() and (V2 != 0).any():
                        got[b, a, :4, j, i] |= arr.fail[b, a, :4, j, i]
                        said.add("boxed")
            if not added and dropped:
                # the row skipped at this head (or, joint, kept at an anchor
                # darknet also assigns): no other anchor of its cell shows a
                # box where darknet has none
                others = [a for a in range(len(mask_ids)) if mask_ids[a] not in darknet]
                moved = not any(arr.fail[b, a, :4, j, i].any() for a in others)
                if joint and a_best in mask_ids:  # ... and the row stands at its CIoU-best anchor: its box
                    k = mask_ids.index(a_best)  # there is darknet's, or (another departure on the box) its
                    # objectness is darknet's positive one
                    box_there = not arr.fail[b, k, :4, j, i].any() and bool((arr.E64[b, k, :4, j, i] != 0).any())
                    obj_there = arr.E64[b, k, o, j, i] > 0 and not arr.fail[b, k, o, j, i]
                    moved &= box_there or bool(obj_there)
            if not moved:
                continue
            for a in dropped:
                V = without_row(ev, b, t)[b, a, :, j, i].copy()
                # the row is still a truth for loop 1's ignore test there: its
                # best IoU (ab_record.c, over every truth, class gate) decides
                if ab_record(ev)["best_iou"][b, a, j, i] > F(ev.layer.ignore_thresh):
                    V[o] = 0.0
                m = arr.fail[b, a, :, j, i] & _near(arr, (b, a, slice(None), j, i), V)
                # ... unless the implementation's own ignore test decides that cell
                # otherwise (ignore_rule's business): loop 1's other value is its own too
                other = 0.0 if V[o] != 0 else float(F(F(ev.layer.obj_normalizer) * F(F(0) - F(ev.Y[b, a, o, j, i]))))
                if arr.fail[b, a, o, j, i] and _near(arr, (b, a, o, j, i), np.float64(other)):
                    m[o] = True
                    said.add("loop1")
                got[b, a, :, j, i] |= m
            # the variant reproducing the most of this row's cells (with the
            # layer's iou_thresh kept, darknet's best can stay an extra anchor
            # and only the added one shows; without the extras it is dropped too)
            n_got = int(got.sum())
            if n_got and (row_best is None or n_got > row_best[0]):
                row_best = (n_got, got, kind, joint, said)
        if row_best is not None:
            _, got, kind, joint, said = row_best
            mask |= got
            used.add(kind)
            joints.add(joint)
            notes.update(said)
    if not mask.any():
        return None

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        return (f"at {len(cs)} cell{'s' if len(cs) > 1 else ''} ({cells_str(ev, cs, 2)}) a truth is assigned to the "
                f"anchor that is best by {'/'.join(sorted(used)).upper().replace('_CORNER', ' (corner-aligned)')} of "
                "the shapes; upstream takes the best by "
                "IoU of the shapes (both centred), over all anchors, and skips the truth when that one is not in "
                "the mask." + (" Where darknet's best anchor passes no iou_thresh test, the implementation also "
                               "left out the iou_thresh anchors (see iou_thresh): both together give its values "
                               "there." if True in joints else "") +
                (" Where the row lands, its box deltas are those of the box departures named by box_loss, "
                 "normalizer and scale_x_y, composed with the anchor moved." if "boxed" in notes else "") +
                (" Where darknet's anchor is dropped, the objectness is loop 1's value as the implementation's own "
                 "ignore test decides it (see ignore_rule)." if "loop1" in notes else ""))
    return Claim(mask, say=say, detail={"measure": tuple(sorted(used)), "with_iou_thresh_left_out": True in joints})


# ---- the rows read: past an x == 0 row, or fewer than max_boxes ---------------------------
def _option_changes(layer: Any) -> List[Dict[str, Any]]:
    """Option departures a rows model is composed with (a port that reads
    other rows AND misses one of these): no iou_thresh anchors, a normalizer
    left out."""
    out: List[Dict[str, Any]] = []
    if float(layer.iou_thresh) < 1:
        out.append({"iou_thresh": 1.0})
    for opt in ("iou_normalizer", "obj_normalizer"):
        if float(getattr(layer, opt)) != 1:
            out.append({opt: 1.0})
    return out


def _rows_replay(arr: Array, tag: str, truth: np.ndarray) -> Optional[np.ndarray]:
    """The elements darknet's layer on ``truth`` reproduces; then, composed
    with an option departure, those only both reproduce (not the option's
    replay alone: those are that option's cause's): the elements of the
    rows the implementation reads otherwise, which carry both."""
    from ._ab_replay import replay, replay_with, reproduced

    m = reproduced(arr, replay_with(arr, tag, truth=truth))
    for ch in _option_changes(arr.layer):
        both = reproduced(arr, replay_with(arr, tag, truth=truth, **ch))
        if both is None:
            continue
        other = reproduced(arr, replay(arr, **ch))
        if other is not None:
            both &= ~other
        if m is not None:
            both &= ~m
        if both.any():
            m = both if m is None else (m | both)
    return m


def rows_past_x0(arr: Array) -> Optional[Claim]:
    """Rows upstream never reads because an earlier row has x == 0 (its
    loops stop there), read by the implementation, which skips such rows
    (a zero row in the middle of the list) and reads on: darknet's layer run
    on the truth buffer with the x == 0 rows taken out."""
    ev = arr.ev
    assert ev is not None
    rec = ab_record(ev)
    assert rec is not None
    status = rec["row_status"]
    truth = ev.truth
    B, R = status.shape
    compact = np.zeros_like(truth)
    extra: List[Tuple[int, int]] = []
    for b in range(B):
        keep = [t for t in range(R) if truth[b, t, 0] != 0]
        compact[b, :len(keep)] = truth[b, keep]
        extra += [(b, t) for t in keep if status[b, t] != 0 and
                  0 <= int(truth[b, t, 4]) < int(ev.layer.classes)]
    if not extra:
        return None
    m = _rows_replay(arr, "rows:past_x0", compact)
    if m is None:
        return None
    stops = {b: int(np.flatnonzero(truth[b, :, 0] == 0)[0]) for b, _ in extra}

    def say(sel: np.ndarray) -> str:
        where = ", ".join(f"image {b} row {t}" for b, t in sorted(stops.items()))
        used = ", ".join(f"image {b} row {t}" for b, t in extra[:4]) + (f" and {len(extra) - 4} more"
                                                                          if len(extra) > 4 else "")
        return (f"{int(sel.sum())} elements are darknet's with the rows after an x == 0 row read too: upstream stops "
                f"reading an image's truth list at its first row with x == 0 ({where}); the implementation skips "
                f"that row and also used {used}. Stop at the first x == 0 (or pad the truth list with zero rows "
                "only after the last box).")
    return Claim(m, rows={}, say=say, detail={"rows": tuple(extra)})


def fewer_rows(arr: Array) -> Optional[Claim]:
    """An implementation that reads at most K rows per image where upstream
    reads up to max_boxes (AlexeyAB's buffer holds exactly max_boxes rows, so
    no port reads beyond it): darknet's layer run on the first K rows.  K is
    the first read row whose best anchor's cell darknet assigns and the
    implementation does not."""
    ev = arr.ev
    assert ev is not None
    rec = ab_record(ev)
    assert rec is not None
    o = arr.obj
    missing = []
    for b, t in read_rows(ev):
        a = int(rec["best_in_mask"][b, t])
        i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
        if a < 0 or t == 0:
            continue
        if arr.E64[b, a, o, j, i] > 0 and not arr.A64[b, a, o, j, i] > 4 * arr.bound[b, a, o, j, i]:
            missing.append(t)
    if not missing:
        return None
    K = min(missing)
    if K >= int(ev.layer.max_boxes):
        return None
    cut = ev.truth.copy()
    cut[:, K:] = 0
    m = _rows_replay(arr, f"rows:first_{K}", cut)
    if m is None:
        return None
    lost = [(int(b), int(t)) for b, t in read_rows(ev) if t >= K]
    # The rows past K darknet assigns in this head are all rows whose best
    # anchor by CIoU/GIoU of the shapes (centred or corner-aligned) lies in
    # another head: anchor_assignment's model names exactly those rows, from
    # their shapes, where a limit at K only happens to fall before them
    # (measured on Tianxiaomo's port: a 3-row limit for a skinny fourth row).
    # The limit is then not this model's reading.
    mask_ids = {int(m) for m in ev.layer.mask}
    here = [(b, t) for b, t in lost if rec["best_in_mask"][b, t] >= 0 or rec["extra"][b, t].any()]
    if here and all(any(int(np.argmax(_shape_scores(ev, float(ev.truth[b, t, 2]), float(ev.truth[b, t, 3]), kind)))
                        not in mask_ids for kind in ("ciou", "giou", "ciou_corner")) for b, t in here):
        return None
    # A row past K that the implementation visibly reads refutes the limit:
    # a positive objectness at one of its cell's anchors where darknet's run
    # on the first K rows has none (Tianxiaomo's port reads every row, and
    # drops at a head those whose CIoU-best anchor lies in another).
    from ._ab_replay import replay_with
    R = replay_with(arr, f"rows:first_{K}", truth=cut)
    if R is not None:
        for b, t in lost:
            i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
            if not (0 <= i < R.shape[4] and 0 <= j < R.shape[3]):
                continue
            if (arr.A64[b, :, o, j, i] > 4 * arr.bound[b, :, o, j, i]).any() and \
                    ((arr.A64[b, :, o, j, i] > 4 * arr.bound[b, :, o, j, i]) & ~(R[b, :, o, j, i] > 0)).any():
                return None

    def say(sel: np.ndarray) -> str:
        used = ", ".join(f"image {b} row {t}" for b, t in lost[:4]) + (f" and {len(lost) - 4} more"
                                                                         if len(lost) > 4 else "")
        return (f"{int(sel.sum())} elements are darknet's with only the first {K} truth rows of each image read: "
                f"upstream reads up to max_boxes = {int(ev.layer.max_boxes)} rows (until one with x == 0); the "
                f"implementation left out {used}. Read every row up to max_boxes.")
    return Claim(m, rows={}, say=say, detail={"rows_read": K})


# ---- a truth put in another cell ----------------------------------------------------------
def moved_cells(arr: Array) -> Optional[Claim]:
    """Rows the implementation assigns at the cell round(x*W), round(y*H)
    instead of upstream's (int)(x*W), (int)(y*H), at the same anchors (the
    best one and the iou_thresh ones).  The implementation's delta is then
    darknet's with, at upstream's cell, loop 1's values (objectness
    -obj_normalizer*p, or 0 where the ignore test passes; no box or class
    delta) and, at the rounded cell, the row's assignment there: darknet's
    own arithmetic for it is its truth_thresh branch, which assigns the best
    truth at any cell, so the layer run on the row alone with truth_thresh
    below 0 gives it.  Cells another row or the truth_thresh branch also
    writes are left out (their values mix two rows)."""
    from ._ab_replay import replay_with, reproduced

    ev = arr.ev
    assert ev is not None
    rec = ab_record(ev)
    assert rec is not None
    H, W = ev.X.shape[3], ev.X.shape[4]
    o = arr.obj
    writes = rec["writes"]
    moves = []
    for b, t in read_rows(ev):
        i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
        row = ev.truth[b, t]
        ir = min(int(np.floor(F64(F(row[0] * F(W))) + 0.5)), W - 1)
        jr = min(int(np.floor(F64(F(row[1] * F(H))) + 0.5)), H - 1)
        if (ir, jr) == (i, j):
            continue
        anchors = [int(a) for a in np.flatnonzero(rec["extra"][b, t])]
        if rec["best_in_mask"][b, t] >= 0:
            anchors.append(int(rec["best_in_mask"][b, t]))
        if anchors:
            moves.append((b, t, i, j, ir, jr, anchors))
    if not moves or len(moves) > 64:
        return None
    # who holds each cell and anchor, upstream and in the implementation
    Cell = Tuple[int, int, int, int]
    up: Dict[Cell, List[int]] = {}
    port: Dict[Cell, List[int]] = {}
    moved = {(b, t): (ir, jr) for b, t, i, j, ir, jr, _ in moves}
    for b, t in read_rows(ev):
        i, j = int(rec["row_i"][b, t]), int(rec["row_j"][b, t])
        anchors = [int(a) for a in np.flatnonzero(rec["extra"][b, t])]
        if rec["best_in_mask"][b, t] >= 0:
            anchors.append(int(rec["best_in_mask"][b, t]))
        ir, jr = moved.get((b, t), (i, j))
        for a in anchors:
            up.setdefault((b, a, j, i), []).append(t)
            port.setdefault((b, a, jr, ir), []).append(t)
    alt = arr.E64.copy()
    touched = False
    obj_norm = F(ev.layer.obj_normalizer)
    thr = F(ev.layer.ignore_thresh)
    tt = rec["best_iou_all"] > F(ev.layer.truth_thresh)
    who: Dict[Tuple[int, int, int, int], set] = {}
    averaged = float(ev.layer.iou_thresh) < 1

    def assigned(b: int, t: int) -> Optional[np.ndarray]:
        """Row t's assignment, alone: at any cell when it moved (the
        truth_thresh branch assigns the row alone at any cell), at its own
        cell when it did not."""
        if (b, t) not in moved:
            return row_alone(ev, b, t)
        alone = np.zeros_like(ev.truth)
        alone[b, 0] = ev.truth[b, t]
        return replay_with(arr, f"cell:{b}:{t}", truth=alone, truth_thresh=-1.0)

    for c in set(up) | set(port):
        b, a, j, i = c
        rows_up, rows_port = up.get(c, []), port.get(c, [])
        if rows_up == rows_port or len(rows_port) > 3 or tt[b, a, j, i]:
            continue
        if not rows_port:  # loop 1's values: objectness -obj_normalizer*p, or 0 where ignored
            p = F(ev.Y[b, a, o, j, i])
            value = np.zeros(alt.shape[2])
            value[o] = 0.0 if rec["best_iou"][b, a, j, i] > thr else float(F(obj_norm * F(F(0) - p)))
        else:
            Vs = [assigned(b, t) for t in rows_port]
            if any(V is None for V in Vs):
                continue
            cols = [np.asarray(V[b, a, :, j, i], F64) for V in Vs]  # type: ignore[index]
            value = cols[0].copy()
            if len(cols) > 1:
                # loop 2 in row order: box deltas added (+=, before averaging), the objectness
                # set again, a later row's class written alone when the class already has a delta
                acc = np.zeros(4, F)
                for t, col in zip(rows_port, cols):
                    box = col[:4].astype(F)
                    if averaged and col[o] != 0:
                        box = (box * F(max(int((col[o + 1:] > 0).sum()), 1))).astype(F)
                    acc = (acc + box).astype(F)
                for t, col in zip(rows_port[1:], cols[1:]):
                    cid = class_of(ev, b, t)
                    if value[o + 1 + cid] != 0:
                        value[o + 1 + cid] = col[o + 1 + cid]
                    else:
                        value[o + 1:] = col[o + 1:]
                k = int((value[o + 1:] > 0).sum())
                value[:4] = (acc / F(k)).astype(F) if averaged and k > 0 else acc
        alt[b, a, :, j, i] = value
        who[c] = set(rows_up) | set(rows_port)
        touched = True
    if not touched:
        return None
    m = reproduced(arr, alt)
    if m is None:
        return None
    # A row's move shows where it lands: the cells it leaves (loop 1's
    # values there are what any missing assignment gives) count only for a
    # row whose landing cell the implementation's values reproduce.
    landed = {(c[0], t) for c in who if c in port and m[c[0], c[1], :, c[2], c[3]].any()
              for t in port[c] if (c[0], t) in moved}
    for c, ts in who.items():
        if any((c[0], t) in moved and (c[0], t) not in landed for t in ts):
            m[c[0], c[1], :, c[2], c[3]] = False
    who = {c: ts for c, ts in who.items() if m[c[0], c[1], :, c[2], c[3]].any()}
    if not m.any():
        return None
    rows = sorted({(c[0], next(iter(ts))) for c, ts in who.items()})

    def say(sel: np.ndarray) -> str:
        b, t = rows[0]
        x = float(F(ev.truth[b, t, 0] * F(W)))
        return (f"{int(sel.sum())} elements: upstream puts a truth in cell (int)(x*W), (int)(y*H), the float32 "
                f"product truncated; the implementation rounded it ({', '.join(f'image {b} row {t}' for b, t in rows[:4])}"
                f"{' and more' if len(rows) > 4 else ''}; image {b} row {t}: x*W = {x:.6g}, column "
                f"{int(rec['row_i'][b, t])} upstream). Truncate (floor) instead of rounding.")
    return Claim(m, rows=who, say=say, detail={"rows": tuple(rows)})


# ---- the ignore test, another way: threshold, class gate, scale_x_y, images skipped -------
#: Thresholds named before a midpoint, when the implementation's values allow several.
NICE = (0.5, 0.7, 0.6, 0.4, 0.3, 0.45, 0.55, 0.65, 0.75, 0.8, 0.35, 0.25, 0.2, 0.85, 0.9, 0.1, 0.15, 0.95,
        1.0)  # 1: no cell ever ignored


def _unscaled_best_iou(ev: Any) -> Optional[np.ndarray]:
    """(B, n, H, W) float32: each cell's best IoU over the read rows with the
    predicted x, y decoded WITHOUT scale_x_y (sigmoid only), as
    ab_get_yolo_box and box_iou compute it in float; None for a new_coords
    head (its x, y are not a sigmoid of the input)."""
    if int(ev.layer.new_coords):
        return None
    cache = ev.__dict__.get("_ab_iou_nosxy")
    if cache is not None:
        return cache
    B, n, P, H, W = ev.X.shape
    one = np.float32(1)
    with np.errstate(over="ignore"):
        sig = (one / (one + np.exp(-ev.X[:, :, 0:2].astype(F64)).astype(F))).astype(F)
    gi = np.arange(W, dtype=F)[None, :]
    gj = np.arange(H, dtype=F)[:, None]
    bias = [float(v) for v in ev.layer.anchors]
    out = np.zeros((B, n, H, W), F)
    two = np.float32(2)
    for b, t in read_rows(ev):
        T = [np.float32(v) for v in ev.truth[b, t, :4]]
        for a, m in enumerate(int(v) for v in ev.layer.mask):
            bx = ((gi + sig[b, a, 0]) / np.float32(W)).astype(F)
            by = ((gj + sig[b, a, 1]) / np.float32(H)).astype(F)
            bw = (np.exp(ev.X[b, a, 2].astype(F64)) * bias[2 * m] / ev.net_w).astype(F)
            bh = (np.exp(ev.X[b, a, 3].astype(F64)) * bias[2 * m + 1] / ev.net_h).astype(F)
            ow = np.minimum(bx + bw / two, T[0] + T[2] / two) - np.maximum(bx - bw / two, T[0] - T[2] / two)
            oh = np.minimum(by + bh / two, T[1] + T[3] / two) - np.maximum(by - bh / two, T[1] - T[3] / two)
            inter = np.where((ow < 0) | (oh < 0), np.float32(0), ow * oh).astype(F)
            union = (bw * bh + T[2] * T[3] - inter).astype(F)
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = np.where((inter == 0) | (union == 0), np.float32(0), inter / union).astype(F)
            out[b, a] = np.maximum(out[b, a], iou)
    ev.__dict__["_ab_iou_nosxy"] = out
    return out


def _skip_sets(ev: Any) -> List[Tuple[str, Tuple[int, ...]]]:
    """(measure, images) for each distinct set of images none of whose read
    rows has its best anchor (by that measure of the shapes) in the mask:
    an implementation that skips the ignore test there (Tianxiaomo's
    build_target: `if sum(best_n_mask) == 0: continue`)."""
    rec = ab_record(ev)
    assert rec is not None
    mask_ids = {int(m) for m in ev.layer.mask}
    rows: Dict[int, List[int]] = {}
    for b, t in read_rows(ev):
        rows.setdefault(b, []).append(t)
    out: List[Tuple[str, Tuple[int, ...]]] = []
    for kind in ("iou", "ciou", "giou", "ciou_corner"):
        imgs = []
        for b, ts in rows.items():
            if kind == "iou":
                bests = [int(rec["best_anchor"][b, t]) for t in ts]
            else:
                bests = [int(np.argmax(_shape_scores(ev, float(ev.truth[b, t, 2]), float(ev.truth[b, t, 3]), kind)))
                         for t in ts]
            if not any(n in mask_ids for n in bests):
                imgs.append(b)
        key = tuple(sorted(imgs))
        if key and key not in [s for _, s in out]:
            out.append((kind, key))
    return out


def ignore_variants(arr: Array) -> Optional[Claim]:
    """The ignore test as an implementation runs it, found from its values:
    upstream ignores a cell's objectness when its best IoU (class gate, x, y
    with scale_x_y) beats ignore_thresh, in every image.  Tried: the gate on
    or off, x, y with or without scale_x_y, the images whose truths all
    belong to other heads skipped or not; for each, the thresholds that
    split the implementation's ignored cells from its negative ones (an
    interval, empty when that variant cannot).  The variant with the fewest
    departures that reproduces the failing objectness elements is claimed
    (at cells darknet assigns nothing, where the implementation's value is
    0 or -obj_normalizer*p)."""
    ev = arr.ev
    assert ev is not None
    if not read_rows(ev):
        return None
    rec = ab_record(ev)
    assert rec is not None
    o = arr.obj
    thr = float(ev.layer.ignore_thresh)
    B, n, P, H, W = ev.X.shape
    free = (arr.E64[:, :, o] <= 0) & ~ev.e_assigned()
    p = ev.Y[:, :, o].astype(F)
    neg = (np.float32(ev.layer.obj_normalizer) * (np.float32(0) - p)).astype(F).astype(F64)
    A = arr.A64[:, :, o]
    bnd = 4 * arr.bound[:, :, o]
    is_zero = np.abs(A) <= bnd
    is_neg = (np.abs(A - neg) <= 1e-5 * np.abs(neg) + bnd) & ~is_zero
    info = free & (is_zero | is_neg)
    fail = arr.fail[:, :, o] & info
    if not fail.any():
        return None
    up_ignored = arr.E64[:, :, o] == 0
    # the class gate per cell (ab_compare_class: any class probability > .25)
    gate = (ev.Y[:, :, o + 1:] > np.float32(0.25)).any(axis=2)
    grids = {("sxy",): rec["best_iou_all"].astype(F)}
    if float(ev.layer.scale_x_y) != 1:
        g = _unscaled_best_iou(ev)
        if g is not None:
            grids[("no_sxy",)] = g
    skips: List[Tuple[str, Tuple[int, ...]]] = [("", ())] + _skip_sets(ev)
    best: Optional[Tuple[int, float, np.ndarray, Dict[str, Any]]] = None
    sxy_only = 0
    for (sx,), g in grids.items():
        for gated in (True, False):
            b_iou = np.where(gate, g, np.float32(0)) if gated else g
            b_iou = b_iou.astype(F64)
            for kind, imgs in skips:
                skipped = np.zeros(B, bool)
                skipped[list(imgs)] = True
                sk = skipped[:, None, None, None]
                # in a skipped image no informative cell is ignored
                if (info & sk & is_zero).any():
                    continue
                rest = info & ~sk
                bn, bz = b_iou[rest & is_neg], b_iou[rest & is_zero]
                lo = float(bn.max()) if bn.size else -np.inf
                hi = float(bz.min()) if bz.size else np.inf
                if lo < hi:  # a threshold splits them exactly
                    v = thr if lo <= thr < hi else next((c for c in NICE if lo <= c < hi), None)
                    if v is None:
                        v = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else \
                            (lo + 1e-6 if np.isfinite(lo) else hi - 1e-6)
                else:
                    # or up to the implementation's own rounding of IoUs next to it (its
                    # boxes and IoU in another order of float operations): a round value
                    # that the cells more than 1e-4 away from it do not contradict
                    v = next((c for c in (thr,) + NICE
                              if not (bn > c + 1e-4).any() and not (bz <= c - 1e-4).any()), None)
                    if v is None:
                        continue
                pred_ign = ~sk & (b_iou > np.float32(v))
                differs = info & (pred_ign != up_ignored)
                claim = fail & differs & np.where(pred_ign, is_zero, is_neg)
                k = int(claim.sum())
                if not k:
                    continue
                deps = {"gate": not gated, "scale_x_y": sx == "no_sxy", "skip": bool(imgs), "thresh": v != thr}
                # a threshold fitted to the values weighs more than a departure predicted without
                # fitting, and an odd one (no round value in its interval) more again
                n_dep = sum(deps.values()) + (0.5 if v in NICE else 2.0) * deps["thresh"]
                if not n_dep:
                    continue
                if n_dep == 1 and deps["scale_x_y"]:
                    sxy_only = max(sxy_only, k)
                if best is None or k > best[0] or (k == best[0] and n_dep < best[1]):
                    best = (k, n_dep, claim, {"thresh": float(v), "interval": (lo, hi), "gate": gated,
                                               "scale_x_y": sx == "sxy", "skipped_images": imgs,
                                               "skip_measure": kind})
    # x, y without scale_x_y alone is scale_x_y's (its replay claims it):
    # nothing here when that variant reproduces as many elements as the best
    if best is None or sxy_only >= best[0]:
        return None
    _, _, cells, d = best

    def say(sel: np.ndarray) -> str:
        cs = cells_of(sel)
        what = []
        if d["thresh"] != thr and d["thresh"] >= 1:
            what.append(f"no cell ignored at all (a threshold of 1 or more; the cfg's ignore_thresh is {thr:g})")
        elif d["thresh"] != thr:
            lo, hi = d["interval"]
            what.append(f"a threshold of {d['thresh']:g} where the cfg's ignore_thresh is {thr:g} (any value in "
                        f"[{max(lo, 0):.4g}, {min(hi, 1):.4g}) gives the same cells)")
        if not d["gate"]:
            what.append("no class gate (upstream counts a truth only at a cell where some class probability "
                        "exceeds .25, compare_yolo_class)")
        if not d["scale_x_y"]:
            what.append(f"the predicted x, y decoded without scale_x_y = {float(ev.layer.scale_x_y):g} (see "
                        "scale_x_y)")
        if d["skipped_images"]:
            how = {"iou": "IoU", "ciou": "CIoU", "giou": "GIoU", "ciou_corner": "CIoU of corner-aligned shapes"}
            what.append(f"no ignore test at all in image{'s' if len(d['skipped_images']) > 1 else ''} "
                        f"{', '.join(map(str, d['skipped_images']))}, none of whose truths has its best anchor "
                        f"(by {how[d['skip_measure']]}) in this head's mask (upstream tests every image)")
        return (f"at {len(cs)} cell{'s' if len(cs) > 1 else ''} ({cells_str(ev, cs, 2)}) the implementation's "
                "ignore test decides otherwise than upstream's (best IoU with a truth > ignore_thresh, class gate, "
                "x, y with scale_x_y, every image): its objectness there is what upstream's test gives with "
                + "; with ".join(what) + ". Run the ignore test as upstream does.")
    return Claim(arr.role_mask([o], cells), say=say, detail={"rule": "ignore test", **{k: v for k, v in d.items()
                                                                                         if k != "interval"}})

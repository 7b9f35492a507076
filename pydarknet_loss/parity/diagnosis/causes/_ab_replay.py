"""AlexeyAB's [yolo] replayed with one option changed: the model of a
departure that IS one of the layer's options (a normalizer left out, MSE
where the cfg says CIoU, no max_delta clip, no label smoothing, no
iou_thresh anchors, x, y decoded without scale_x_y).  The bit-exact layer is
run on the same input and truths with that one option changed; a cause
claims the failing elements where that run's delta equals the
implementation's within darknet's rounding, and not darknet's own."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..model import Array


def replay(arr: Array, **changes: Any) -> Optional[np.ndarray]:
    """The delta (B, n, P, H, W; float32, the layer's own values) of darknet's layer with ``changes``
    applied to its options; None when the layer has no such options or
    refuses them.  Cached on the evidence, per set of changes."""
    return replay_with(arr, None, **changes)


def replay_with(arr: Array, tag: Optional[str], X: Optional[np.ndarray] = None, truth: Optional[np.ndarray] = None,
                **changes: Any) -> Optional[np.ndarray]:
    """The same, on another input ``X`` (B, n, P, H, W) or truth buffer
    (B, max_boxes, 6) where given: ``tag`` names them in the cache (one tag,
    one input).  Without ``tag`` at least one option must change."""
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab" or arr.name != "delta":
        return None
    layer = ev.layer
    params_of = getattr(layer, "params", None)
    if params_of is None:
        return None
    cache: Dict[Tuple[Any, ...], Optional[np.ndarray]] = ev.__dict__.setdefault("_ab_replays", {})
    key = ((tag,) if tag is not None else ()) + tuple(sorted(changes.items()))
    if key not in cache:
        params = params_of()
        if any(k not in params for k in changes) or \
                (tag is None and all(params[k] == v for k, v in changes.items())):
            cache[key] = None
            return None
        params.update(changes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                other = type(layer)(**params)
                B, n, P, H, W = ev.X.shape
                x = ev.X if X is None else X
                res = other.forward(np.ascontiguousarray(x.reshape(B, n * P, H, W), dtype=np.float32),
                                    ev.truth if truth is None else truth, net_w=ev.net_w, net_h=ev.net_h)
            # kept in float32 (a replay of a large head is tens of MB in
            # float64, and a failing compare asks for dozens): readers take
            # float64 values where they compute with them
            cache[key] = res.delta.reshape(ev.X.shape)
        except (TypeError, ValueError):
            cache[key] = None
    return cache[key]


def reproduced(arr: Array, alt: Optional[np.ndarray], rel: float = 1e-5) -> Optional[np.ndarray]:
    """The failing elements where ``alt`` gives the implementation's value
    (within darknet's rounding, and ``rel`` of the value) and differs from
    darknet's; None if none.

    Worked at the elements where ``alt`` is not darknet's own value (one
    pass over the array finds them; a replay changes few): every rule below
    reads only those (an element where they are equal is neither claimed
    nor changed)."""
    if alt is None:
        return None
    E = arr.E64
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero(~(alt == E))
    if not idx.size:
        return None
    a = alt.reshape(-1)[idx].astype(np.float64)
    e = E.reshape(-1)[idx]
    v = arr.a64_at(idx)
    tol = 4 * arr.bound_at(idx) + 1e-30
    _, n, P, H, W = E.shape
    ent = (idx // (H * W)) % P
    cell = (idx // (P * H * W)) * (H * W) + idx % (H * W)
    with np.errstate(invalid="ignore", over="ignore"):
        m = arr.fail.reshape(-1)[idx] & (np.abs(v - a) <= rel * np.abs(a) + tol)
        changed = ~(np.abs(a - e) <= 1e-5 * np.abs(e) + tol)
        # A negative objectness delta is -obj_normalizer*p or 0 (ignored): any
        # departure that moves the ignore test flips some of them, so these
        # count only when the implementation has most of the replay's flips.
        neg = (ent == arr.obj) & (e <= 0) & (a <= 0)
    flips = neg & changed
    if (m & neg).any() and (m & neg).sum() < 0.8 * flips.sum():
        m &= ~neg
    # A cell counts only when the implementation has what the replay
    # changes there: all of its box deltas where it changes them (values,
    # not a 0 that many departures give) and half of the rest, or 90% of
    # the cell where the box is not changed.  A class delta of 0 where
    # darknet's extra anchor wants one says nothing when the cell's box
    # is darknet's.
    got = m & changed
    cells, inv = np.unique(cell, return_inverse=True)
    k = cells.size
    box = ent < 4
    box_changed = np.bincount(inv[changed & box], minlength=k)
    box_ok = np.bincount(inv[got & box], minlength=k) == box_changed
    share = np.bincount(inv[got], minlength=k) / np.maximum(np.bincount(inv[changed], minlength=k), 1)
    keep = np.where(box_changed > 0, box_ok & (share >= 0.5), share >= 0.9)
    m &= keep[inv]
    if not m.any():
        return None
    out = np.zeros(E.shape, bool)
    out.reshape(-1)[idx[m]] = True
    return out


def replayed(arr: Array, **changes: Any) -> Optional[np.ndarray]:
    """``reproduced(arr, replay(arr, **changes))``, kept on ``arr`` (several
    causes ask for the same single replays)."""
    cache: Dict[Tuple[Any, ...], Optional[np.ndarray]] = arr.__dict__.setdefault("_ab_reproduced", {})
    key = tuple(sorted(changes.items()))
    if key not in cache:
        cache[key] = reproduced(arr, replay(arr, **changes))
    return cache[key]


def entries_named(arr: Array, mask: np.ndarray) -> str:
    """Which entries a mask covers, in words (x, y, w, h, objectness, classes)."""
    c = arr.coords
    names = []
    per = mask.reshape(mask.shape[0], mask.shape[1], mask.shape[2], -1).any(axis=(0, 1, 3))
    for e in np.flatnonzero(per):
        name = "xywh"[e] if e < 4 else "objectness" if e == c else "classes"
        if name not in names:
            names.append(name)
    return ", ".join(names)


#: The iou_loss values AlexeyAB's layer takes.
IOU_LOSSES = ("mse", "iou", "giou", "diou", "ciou")
#: Box option departures, the cause each is: the option and its value as the departure has it.
BOX_OPTIONS = (("iou_normalizer", 1.0, "normalizer"), ("scale_x_y", 1.0, "scale_x_y"))


def composed_box(arr: Array) -> Optional[Dict[str, Any]]:
    """Several option departures on the box at once (Tianxiaomo's port: MSE
    where the cfg says CIoU, no iou_normalizer, x, y without scale_x_y): the
    layer replayed with two or three of them (another iou_loss, iou_normalizer
    = 1, scale_x_y = 1: those the layer does not have) reproduces box deltas
    that no single replay does.  Bounded: tried only where the single
    replays leave failing box elements, at most 13 replays (4 other losses x
    3 option sets, and the two options without a loss change), the first
    set reproducing the most taken.  Each element is then given to the
    departure whose replay ALONE comes nearest the implementation's value
    there (all of them are needed; the nearest one carries most of the
    change), so that each departure is named by its own cause, and each
    cause's message names the others.  Cached per Array: box_loss,
    normalizer and scale_x_y ask for it.  None when nothing composes."""
    cache = arr.__dict__.setdefault("_composed_box", {})
    if "v" in cache:
        return cache["v"]
    cache["v"] = None
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab" or arr.name != "delta":
        return None
    layer = arr.layer
    box = arr.role_mask([0, 1, 2, 3])
    box_fail = arr.fail & box
    if not box_fail.any():
        return None
    mine = getattr(layer, "iou_loss", None)
    opts = [(o, v, c) for o, v, c in BOX_OPTIONS if float(getattr(layer, o, v)) != v]
    singles: Dict[str, Optional[np.ndarray]] = {}
    alone = np.zeros(arr.E.shape, bool)
    for kind in IOU_LOSSES:
        if kind != mine:
            m = replayed(arr, iou_loss=kind)
            if m is not None:
                alone |= m
    for o, v, _ in opts:
        m = replayed(arr, **{o: v})
        if m is not None:
            alone |= m
    if not (box_fail & ~alone).any():
        return None
    zero_box = (arr.A64[:, :, :4] == 0).all(axis=2)[:, :, None]
    sets: List[Tuple[Dict[str, Any], Tuple[str, ...]]] = []
    extras = [({o: v}, (c,)) for o, v, c in opts]
    if len(opts) == 2:
        both = ({**extras[0][0], **extras[1][0]}, extras[0][1] + extras[1][1])
        extras.append(both)
        sets.append(both)  # the two options, the loss kept
    sets = [({"iou_loss": k, **e}, ("box_loss",) + names) for k in IOU_LOSSES if k != mine
            for e, names in extras] + sets
    best: Optional[Tuple[Dict[str, Any], Tuple[str, ...], np.ndarray]] = None
    for changes, names in sorted(sets, key=lambda s: len(s[1])):
        # 1e-4: the rounding bound is darknet's at its own (IoU) delta, not at
        # the replay's; an MSE x delta t*W - i - x loses digits to the
        # cancellation (the port's t*W from pixel labels differs by an ULP of
        # W: 1.8e-5 of the delta measured on Tianxiaomo's 19x19 head)
        m = reproduced(arr, replay(arr, **changes), rel=1e-4)
        if m is None:
            continue
        m = m & box & ~zero_box & ~alone
        if m.any() and (best is None or m.sum() > best[2].sum()):
            best = (changes, names, m)
    if best is None:
        return None
    changes, names, m = best
    # each element to the departure whose replay alone is nearest the implementation's value
    dist = []
    at = np.flatnonzero(m)
    A = arr.a64_at(at)
    for name in names:
        if name == "box_loss":
            R = replay(arr, iou_loss=changes["iou_loss"])
        else:
            o = next(o for o, _, c in BOX_OPTIONS if c == name)
            R = replay(arr, **{o: changes[o]})
        assert R is not None
        r = R.reshape(-1)[at].astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.full(m.size, np.inf)
            d[at] = np.where(np.isfinite(r), np.abs(A - r), np.inf)
        dist.append(d)
    idx = np.flatnonzero(m)
    owner = np.argmin(np.stack([d[idx] for d in dist]), axis=0)
    masks = {}
    for k, name in enumerate(names):
        own = np.zeros(m.shape, bool)
        own.reshape(-1)[idx[owner == k]] = True
        masks[name] = own
    out = {"changes": changes, "names": names, "masks": masks, "mask": m}
    cache["v"] = out
    return out


def composed_text(arr: Array, comp: Dict[str, Any], me: str) -> str:
    """How a composed box claim is said by cause ``me``: every departure of
    the set, and that only all of them together give the values."""
    layer = arr.layer
    ch = comp["changes"]
    what = {"box_loss": f"iou_loss = {ch.get('iou_loss')} where the layer says {getattr(layer, 'iou_loss', None)} "
                        "(box_loss)",
            "normalizer": f"iou_normalizer = {float(getattr(layer, 'iou_normalizer', 1)):g} left out (normalizer)",
            "scale_x_y": f"x, y decoded without scale_x_y = {float(getattr(layer, 'scale_x_y', 1)):g} (scale_x_y)"}
    names = comp["names"]
    return (f"box deltas ({{n}}) that are darknet's with " + " and ".join(what[n] for n in names) +
            ": each departure alone gives other values there, all of them together give yours (these are the "
            f"elements where the {me} departure alone comes nearest yours; the other departures' causes hold the "
            "rest). Use the cfg's " + ", ".join({"box_loss": "iou_loss", "normalizer": "iou_normalizer",
                                                    "scale_x_y": "scale_x_y"}[n] for n in names) + ".")


def with_composed(arr: Array, me: str, claim: Optional[Any]) -> Optional[Any]:
    """``claim`` (cause ``me``'s single-departure claim, or None) together
    with the box deltas ``composed_box`` gives cause ``me``, said as such."""
    from ..model import Claim

    comp = composed_box(arr)
    if comp is None or me not in comp["names"] or not comp["masks"][me].any():
        return claim
    own = comp["masks"][me]

    def say(sel: np.ndarray) -> str:
        parts = []
        if claim is not None and (sel & claim.mask).any():
            parts.append(claim.say(sel & claim.mask))
        got = sel & own
        if got.any():
            parts.append(f"{int(got.sum())} " + composed_text(arr, comp, me).format(n=entries_named(arr, got)))
        return " ".join(parts)
    detail = dict(claim.detail) if claim is not None else {}
    detail["with"] = tuple(n for n in comp["names"] if n != me)
    return Claim(own if claim is None else (np.asarray(claim.mask) | own), say=say, detail=detail)

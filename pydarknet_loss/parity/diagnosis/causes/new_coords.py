"""new_coords: AlexeyAB's new_coords decoding (YOLOv7 / scaled-YOLOv4: the
layer activates nothing, x, y = t*scale_x_y - (scale_x_y - 1)/2 on an input
its previous layer put through the logistic, w, h = t*t*4*anchor, and the
box deltas in that form: no exp on dw, dh, MSE targets sqrt(w/(4 anchor)))
where the layer has the old one, or the old decoding (logistic on x, y,
objectness and classes, w, h = exp(t)*anchor) in a new_coords layer.

Each form is darknet's layer run with ``new_coords`` flipped: on your input
as it is (the flag alone), or on the input the other form reads (a YOLOv7
port of an old head puts every channel through the logistic first; a port
that decodes only w, h the old way in a new_coords head activates nothing,
so its x, y, objectness and classes enter the flipped layer through the
inverse of its logistic).  A cause claims the elements where that run gives
your values (upstream: src/yolo_layer.c get_yolo_box, delta_yolo_box,
forward_yolo_layer's activate_array calls, 59596d7)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..model import F, Array, CauseSpec, Claim
from ._ab_replay import entries_named, replay_with, reproduced

F64 = np.float64


def logistic32(x: np.ndarray) -> np.ndarray:
    """upstream's logistic_activate, 1.f/(1.f + expf(-x)), with expf
    correctly rounded (as glibc's is) and each float operation rounded."""
    with np.errstate(over="ignore"):
        e = np.exp(-x.astype(F64)).astype(F)
    return (F(1) / (F(1) + e)).astype(F)


def inverse_logistic32(p: np.ndarray) -> Optional[np.ndarray]:
    """x (float32) whose logistic32 is p, or the nearest there is (a value
    just below 1 that 1/(1 + e) never gives is one ULP off); None when some
    p is outside [0, 1] (no logistic gives it)."""
    p = p.astype(F)
    if not np.all((p >= 0) & (p <= 1)):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = np.log(p.astype(F64) / (1 - p.astype(F64)))
    # 0 and 1 exactly: expf overflows to inf (1/(1 + inf) = 0) or 1 + expf(-30) rounds to 1
    x0 = np.clip(np.nan_to_num(x0, nan=0.0, posinf=30.0, neginf=-104.0), -104.0, 30.0).astype(F)
    best, err = x0, np.abs(logistic32(x0).astype(F64) - p)
    for step in (1, -1, 2, -2):
        x = x0
        for _ in range(abs(step)):
            x = np.nextafter(x, F(np.inf) if step > 0 else F(-np.inf)).astype(F)
        e = np.abs(logistic32(x).astype(F64) - p)
        better = e < err
        best, err = np.where(better, x, best), np.where(better, e, err)
    return best.astype(F)


def _channels(arr: Array, skip_wh: bool) -> np.ndarray:
    P = arr.E.shape[2]
    return np.array([e for e in range(P) if not (skip_wh and e in (2, 3))])


#: (variant, input transform, text); the transform returns None where it cannot apply
Variant = Tuple[str, Callable[[Array], Optional[np.ndarray]], str]


def _wh_exp_input(arr: Array) -> Optional[np.ndarray]:
    """A new_coords layer's input for the flipped (old) layer that activates
    x, y, objectness and classes back to what the new_coords layer reads."""
    ev = arr.ev
    assert ev is not None
    X = ev.X.astype(F).copy()
    ch = _channels(arr, skip_wh=True)
    inv = inverse_logistic32(X[:, :, ch])
    if inv is None:
        return None
    X[:, :, ch] = inv
    return X


def _yolov7_input(arr: Array) -> Optional[np.ndarray]:
    ev = arr.ev
    assert ev is not None
    return logistic32(ev.X.astype(F))


def variants(layer: Any) -> List[Variant]:
    if int(layer.new_coords):
        return [("wh_exp", _wh_exp_input,
                 "darknet's with w, h decoded the old way in this new_coords head (exp(t)*anchor, dw, dh times "
                 "exp(t), MSE targets log(w/anchor)); upstream's new_coords = 1 decodes w = t*t*4*anchor/net_w "
                 "with no exp and activates nothing"),
                ("old_head", lambda arr: None if arr.ev is None else arr.ev.X,
                 "darknet's with new_coords = 0 on your input: the head run as an old one (logistic on x, y, "
                 "objectness and classes; w, h = exp(t)*anchor); upstream's new_coords = 1 activates nothing (its "
                 "input has been through the logistic already) and decodes w = t*t*4*anchor/net_w")]
    return [("yolov7", _yolov7_input,
             "darknet's with new_coords = 1 on the logistic of your input: the head decoded as YOLOv7 / "
             "scaled-YOLOv4 do (every channel through the logistic, w, h = (2*sigmoid)^2*anchor, no exp on dw, "
             "dh); this layer has new_coords = 0 (logistic on x, y, objectness and classes only, w = exp(t)*anchor)"),
            ("flag", lambda arr: None if arr.ev is None else arr.ev.X,
             "darknet's with new_coords = 1 on your input (nothing activated, w = t*t*4*anchor/net_w); this layer "
             "has new_coords = 0 (logistic on x, y, objectness and classes, w = exp(t)*anchor)")]


def flipped(arr: Array, variant: Variant, **more: Any) -> Optional[np.ndarray]:
    """Darknet's delta with new_coords flipped, on the variant's input, with
    ``more`` options changed too (None where the variant cannot apply)."""
    name, make, _ = variant
    ev = arr.ev
    if ev is None or ev.kind != "yolo_ab" or arr.name != "delta":
        return None
    key = f"new_coords:{name}"
    inputs: Dict[str, Optional[np.ndarray]] = ev.__dict__.setdefault("_ab_nc_inputs", {})
    if key not in inputs:
        inputs[key] = make(arr)
    X = inputs[key]
    if X is None:
        return None
    return replay_with(arr, key, X=X, new_coords=1 - int(arr.layer.new_coords), **more)


def _box_kept(arr: Array, V: Optional[np.ndarray]) -> bool:
    """Another decoding changes the box deltas of every assigned cell: an
    implementation whose box is darknet's own at as many of the cells the
    flip changes as it is the flip's (and at one at least) does not decode
    the other way (its objectness elsewhere can coincide: an ignore test that
    does not fire gives -p as the flip does)."""
    if V is None:
        return False
    V = V[:, :, :4].astype(np.float64)
    E, tol = arr.E64[:, :, :4], 1e-5 * np.abs(arr.E64[:, :, :4]) + 4 * arr.bound[:, :, :4] + 1e-30
    with np.errstate(invalid="ignore", over="ignore"):
        changed = ~(np.abs(V - E) <= tol)
        kept = np.abs(arr.A64[:, :, :4] - E) <= tol
        flip = np.abs(arr.A64[:, :, :4] - V) <= 1e-5 * np.abs(V) + 4 * arr.bound[:, :, :4] + 1e-30
    cells = changed.any(axis=2)
    n_kept = int((cells & kept.all(axis=2)).sum())
    return n_kept > 0 and n_kept >= int((cells & flip.all(axis=2)).sum())


def new_coords(arr: Array) -> Optional[Claim]:
    if getattr(arr.ev, "kind", None) != "yolo_ab":
        return None
    best: Optional[Tuple[np.ndarray, Variant]] = None
    for v in variants(arr.layer):
        V = flipped(arr, v)
        m = reproduced(arr, V)
        if m is not None and _box_kept(arr, V):
            m = None
        if m is not None and (best is None or int(m.sum()) > int(best[0].sum())):
            best = (m, v)
    if best is None:
        return None
    mask, (name, _, text) = best
    return Claim(mask, say=lambda sel: f"{int(sel.sum())} elements ({entries_named(arr, sel)}) are {text}.",
                 detail={"form": name, "new_coords": int(arr.layer.new_coords)})


CAUSE = CauseSpec(
    code="new_coords", stage="decision", model=new_coords, kinds=("yolo_ab",),
    parts=("box.x", "box.y", "box.w", "box.h", "objectness.positive", "objectness.negative", "objectness.ignored",
           "classes.positive", "classes.negative"),
    summary="AlexeyAB: `new_coords` decoding (YOLOv7: w, h = (2σ)²·anchor, nothing activated) where the layer has "
            "the old one, or exp decoding in a `new_coords` layer",
    recognised="darknet's layer run with `new_coords` flipped gives your values: on your input, on its logistic "
               "(a YOLOv7 head), or with only w, h decoded the other way")

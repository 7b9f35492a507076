"""Fuzz cases of the public API, built from (seed, number).

Each case is a call into pydarknet_loss and what it must do:

* ``expect="ok"``: the input is valid, the call must succeed (and, where the
  case says so, give the same bits as the same call on plain arrays);
* ``expect="error"``: the input is invalid, the call must raise one of
  ``errors`` (TypeError/ValueError unless the case says otherwise) whose
  message names one of ``names`` (the argument, image/row, file/line);
* ``expect="any"``: either, but a refusal must still be clean.

Anything else is a failure (see runner.py): a crash, a hang, a sanitizer
report, another exception type (IndexError, OverflowError, a cffi error,
KeyError, ...), a silent accept, a refusal of valid input, a message that
names nothing, a result that changes with the memory layout.

The first ``len(CORPUS)`` case numbers are the named cases of issue 11;
after them, numbers draw a target (layers, detections, NMS, trees, labels,
boxes, cfg text, golden files, CLI arguments) and mutations at random.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import pydarknet_loss as pdl
from pydarknet_loss.parity import cli as pdl_cli
from pydarknet_loss.parity import golden as pdl_golden

HERE = Path(__file__).resolve().parent.parent  # tests/
SMALL_TREE = HERE / "data" / "small.tree"
GOLDEN = HERE / "golden" / "pjreddie-f6afaab" / "cases"
INT_MAX = 2**31 - 1
CLEAN = (TypeError, ValueError)
FILE_ERRORS = (TypeError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)

#: Failures found in code this branch does not own, kept visible but not
#: counted by the bounded run: (target, failure kind, fragment of the detail
#: or label).  Empty once the owners' fixes are merged; `--strict` counts them.
KNOWN_OPEN: List[Tuple[str, str, str]] = []


class WrongResult(AssertionError):
    """A valid call gave a result that differs from the plain call's."""


@dataclass
class Case:
    target: str
    label: str
    run: Callable[[], Any]
    expect: str = "any"  # "ok", "error" or "any"
    names: Tuple[str, ...] = ()
    errors: Tuple[type, ...] = CLEAN
    require: Tuple[str, ...] = ()  # a refusal's message must contain every one of these


# ---- values ---------------------------------------------------------------------

def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def real32_ok(v: Any) -> bool:
    """A real number that is finite and stays finite as a float32."""
    if not is_real(v):
        return False
    try:
        f = float(v)
    except OverflowError:
        return False
    return math.isfinite(f) and abs(f) <= 3.4028235677973366e38


BAD_INTS: List[Any] = [2**31, -2**31 - 1, 2**63, 2**64 + 3, -1, 0, 1.5, True, "3", None, np.int64(2**40),
                       np.uint64(2**64 - 1), np.float32(2.0), 3 + 0j, [1], np.int8(-3), 2**31 - 1, np.int32(7)]
BAD_REALS: List[Any] = [1e39, -1e39, 3.5e38, 3.4028235e38, float("nan"), float("inf"), -float("inf"), "0.5", True,
                        None, 1j, np.float64(1e300), np.float16(1.5), [0.5], 1e-50, -0.0, 2**200, 10**400,
                        np.longdouble("1e4000"), np.float32("nan"), np.int64(3), -5.0]


def pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def bits(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        if a.dtype == np.float32:
            return (a.shape, a.view(np.uint32).tobytes())
        return (a.shape, str(a.dtype), a.tobytes())
    if isinstance(a, (np.floating, float)):
        return np.float32(a).view(np.uint32).item()
    return a


def same(a: Any, b: Any, what: str) -> None:
    if bits(a) != bits(b):
        raise WrongResult(f"{what} differs from the plain call's")


def misaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `a` at an odd byte offset (same dtype, same values)."""
    raw = np.zeros(a.nbytes + 1, np.uint8)
    m = raw[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned or a.nbytes == 0
    return m


def strided(a: np.ndarray) -> np.ndarray:
    """A non-contiguous view with the same values."""
    big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype) if a.ndim else np.zeros(2, a.dtype)
    v = big[..., ::2]
    v[...] = a
    return v


def float_values(rng: np.random.Generator, shape: Tuple[int, ...], wild: bool = False) -> np.ndarray:
    x = (rng.standard_normal(shape) * pick(rng, [0.5, 2.0, 8.0])).astype(np.float32)
    if wild and x.size:
        k = int(rng.integers(1, 4))
        idx = rng.integers(0, x.size, k)
        x.flat[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 88.7, -88.7, 1e-45],
                                          np.float32), k)
    return x


# ---- layers -------------------------------------------------------------------

def cell_coord(rng: np.random.Generator, size: int) -> np.float32:
    """A coordinate in (0, 1) whose cell (int)(v*size) (float32) lies in the grid."""
    for _ in range(20):
        c = int(rng.integers(size))
        v = np.float32((c + rng.uniform(0.02, 0.98)) / size)
        if v != 0 and 0 <= int(np.float32(v) * np.float32(size)) < size:
            return v
    return np.float32(0.5 / size)


def truth_rows(rng: np.random.Generator, k: int, w: int, h: int, n_ids: int, cols: int = 5) -> np.ndarray:
    t = np.zeros((k, cols), np.float32)
    for r in range(k):
        t[r, 0] = cell_coord(rng, w)
        t[r, 1] = cell_coord(rng, h)
        t[r, 2] = np.float32(rng.uniform(0.01, 1.2))
        t[r, 3] = np.float32(rng.uniform(0.01, 1.2))
        for c in range(4, cols - 1):
            t[r, c] = np.float32(rng.uniform(-1, 1))
        cid = float(rng.integers(max(1, n_ids)))
        if rng.random() < 0.2:
            cid += 0.7  # truncated to int by upstream
        t[r, cols - 1] = cid
    return t


def random_parents(rng: np.random.Generator, n: int) -> List[int]:
    parents = [-1]
    for i in range(1, n):
        if rng.random() < 0.5:
            parents.append(parents[-1])
        else:
            parents.append(int(rng.integers(-1, i)))
    return parents


@dataclass
class LayerCase:
    """What a layer-forward case calls, mutated in place by the mutations."""

    kind: str
    ctor: Dict[str, Any]
    x: Any
    truth: Any
    call: Dict[str, Any]
    post: List[Callable[[Any], None]]
    check_same: bool = False  # compare with the plain call on canonical inputs
    plain_x: Optional[np.ndarray] = None
    plain_truth: Any = None
    plain_out: bool = False
    shape: Tuple[int, int, int, int] = (1, 1, 1, 1)  # x's shape before any mutation
    base_truth: Optional[np.ndarray] = None  # the packed truth before any mutation
    compare: bool = True  # False when a mutation changed the layer itself


def yolo_ctor(rng: np.random.Generator) -> Dict[str, Any]:
    total = int(rng.integers(1, 7))
    anchors = [float(np.float32(rng.uniform(1, 400))) for _ in range(2 * total)]
    if rng.random() < 0.3:
        anchors = np.array(anchors, np.float32)
    n = int(rng.integers(1, min(total, 3) + 1))
    mask = sorted(rng.choice(total, n, replace=False).tolist())
    classes = int(rng.integers(1, 5))
    ctor: Dict[str, Any] = dict(classes=classes, anchors=anchors, mask=mask,
                                ignore_thresh=float(rng.uniform(0, 1)), truth_thresh=float(rng.uniform(0.5, 1.1)),
                                max_boxes=int(rng.integers(1, 91)))
    if rng.random() < 0.25:
        ctor["map"] = rng.integers(0, classes, int(rng.integers(1, classes + 3))).tolist()
    return ctor


def region_ctor(rng: np.random.Generator) -> Dict[str, Any]:
    num = int(rng.integers(1, 4))
    anchors = [float(np.float32(rng.uniform(0.2, 6))) for _ in range(2 * num)]
    classes = int(rng.integers(1, 6))
    ctor: Dict[str, Any] = dict(classes=classes, anchors=anchors, coords=int(pick(rng, [4, 4, 4, 5, 6])),
                                softmax=bool(rng.random() < 0.5), background=bool(rng.random() < 0.15),
                                rescore=bool(rng.random() < 0.5), bias_match=bool(rng.random() < 0.5),
                                thresh=float(rng.uniform(0, 1)), object_scale=float(rng.uniform(0.5, 5)),
                                noobject_scale=float(rng.uniform(0.5, 2)), class_scale=1.0, coord_scale=1.0,
                                mask_scale=float(rng.uniform(0, 3)))
    if rng.random() < 0.3:
        ctor["tree"] = pdl.Tree.from_parents(random_parents(rng, classes))
        ctor["temperature"] = float(pick(rng, [0.0, 1.0, 1.0, 0.5]))
        ctor["coords"] = 4
    elif rng.random() < 0.2:
        ctor["map"] = rng.integers(0, classes, int(rng.integers(1, classes + 3))).tolist()
    return ctor


def _as_int(v: Any, default: int) -> int:
    return int(v) if is_int(v) and 0 < int(v) < 2**20 else default


def n_ids(ctor: Dict[str, Any]) -> int:
    m = ctor.get("map")
    try:
        return max(1, len(m)) if m is not None else _as_int(ctor["classes"], 3)
    except TypeError:
        return 3


def channels(kind: str, ctor: Dict[str, Any]) -> int:
    if kind == "yolo":
        return len(ctor["mask"]) * (5 + ctor["classes"])
    num = len(ctor["anchors"]) // 2
    return num * (ctor["coords"] + 1 + ctor["classes"])


def base_layer_case(rng: np.random.Generator, kind: str) -> LayerCase:
    ctor = yolo_ctor(rng) if kind == "yolo" else region_ctor(rng)
    b, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    x = float_values(rng, (b, channels(kind, ctor), h, w), wild=rng.random() < 0.2)
    rows = 90 if kind == "yolo" else 30
    cols = 5 if kind == "yolo" else ctor["coords"] + 1
    limit = min(ctor.get("max_boxes", rows), 6) if kind == "yolo" else 6
    lists = []
    for _ in range(b):
        k = int(rng.integers(0, limit + 1))
        t = truth_rows(rng, k, w, h, n_ids(ctor), cols)
        if kind == "region" and "tree" in ctor and k and rng.random() < 0.3:
            t[0, 0] = t[0, 1] = 200000.0  # a classification-only row
            t[0, cols - 1] = float(rng.integers(ctor["classes"]))
        lists.append(t)
    if rng.random() < 0.5:
        truth: Any = np.zeros((b, rows, cols), np.float32)
        for i, t in enumerate(lists):
            truth[i, :len(t)] = t
    else:
        truth = lists
    call: Dict[str, Any] = {"train": bool(rng.random() < 0.85)}
    if kind == "yolo":
        call.update(net_w=int(pick(rng, [416, 128, 32, 1])), net_h=int(pick(rng, [416, 96, 1])),
                    index=int(rng.integers(0, 200)))
    else:
        call.update(seen=int(pick(rng, [0, 100, 12799, 12800, 10**6])))
    packed = np.zeros((b, rows, cols), np.float32)
    for i, t in enumerate(lists):
        packed[i, :len(t)] = t
    return LayerCase(kind, ctor, x, truth, call, [], shape=x.shape, base_truth=packed)


Mutation = Callable[[np.random.Generator, LayerCase], Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]]


def m_x_layout(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    if not isinstance(c.x, np.ndarray) or c.x.shape != c.shape or c.x.dtype != np.float32 or c.plain_x is not None:
        return "x layout skipped (x already mutated)", "any", (), CLEAN
    how = pick(rng, ["misaligned", "strided", "readonly", "fortran"])
    c.check_same = True
    c.plain_x = c.x.copy()
    if how == "misaligned":
        c.x = misaligned(c.x)
    elif how == "strided":
        c.x = strided(c.x)
    elif how == "readonly":
        c.x = c.x.copy()
        c.x.setflags(write=False)
    else:
        c.x = np.asfortranarray(c.x)
    return f"x {how}", "ok", (), CLEAN


def m_x_bad(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    how = pick(rng, ["float64", "big-endian", "list", "3-D", "channels", "masked", "empty", "int32", "float16",
                     "object", "matrix-like", "none", "0-d"])
    x = c.x if c.plain_x is None else c.plain_x
    if not isinstance(x, np.ndarray) or x.shape != c.shape or x.dtype != np.float32:
        return "x bad skipped (x already mutated)", "any", ("x",), CLEAN
    if how == "float64":
        c.x = x.astype(np.float64)
    elif how == "big-endian":
        c.x = x.astype(">f4")
    elif how == "list":
        c.x = x.tolist()
    elif how == "3-D":
        c.x = x[0]
    elif how == "channels":
        c.x = np.concatenate([x, x[:, :1]], axis=1)
    elif how == "masked":
        c.x = np.ma.masked_array(x, mask=np.zeros(x.shape, bool))
        c.x.mask.flat[0] = True
    elif how == "empty":
        c.x = x[:0] if rng.random() < 0.5 else x[:, :, :0]
    elif how == "int32":
        c.x = x.astype(np.int32)
    elif how == "float16":
        c.x = x.astype(np.float16)
    elif how == "object":
        c.x = x.astype(object)
    elif how == "matrix-like":
        c.x = x.reshape(x.shape[0], -1)
    elif how == "none":
        c.x = None
    else:
        c.x = np.float32(1.0)
    return f"x {how}", "error", ("x",), CLEAN


def _truth_array(c: LayerCase) -> np.ndarray:
    """The packed truth as it was before any mutation (mutations do not stack on the truth)."""
    assert c.base_truth is not None
    c.truth = c.base_truth.copy()
    return c.truth


def m_truth_bad(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    c.call["train"] = True
    t = _truth_array(c).copy()
    b, rows, cols = t.shape
    img = int(rng.integers(b))
    w, h = c.shape[3], c.shape[2]
    row = truth_rows(rng, 1, w, h, n_ids(c.ctor), cols)[0]
    how = pick(rng, ["nan", "inf", "cell-x", "cell-y", "neg-cell", "class-high", "class-neg", "size0", "neg-size",
                     "huge-class", "shape", "float64", "list-len", "too-many", "masked", "none", "4-D", "nan-class"])
    names: Tuple[str, ...] = ("truth",)
    if how in ("nan", "inf", "nan-class"):
        row[int(rng.integers(0, cols)) if how != "nan-class" else cols - 1] = np.nan if how != "inf" else np.inf
        if row[0] != row[0] or row[0] == 0:
            row[0] = np.nan
    elif how == "cell-x":
        row[0] = np.float32(1.0) if rng.random() < 0.5 else np.float32(np.nextafter(np.float32(1), np.float32(2)))
    elif how == "cell-y":
        row[1] = np.float32(1.5)
    elif how == "neg-cell":
        row[0] = np.float32(-1.5)
    elif how == "class-high":
        row[cols - 1] = float(n_ids(c.ctor))
    elif how == "class-neg":
        row[cols - 1] = -1.0
    elif how == "huge-class":
        row[cols - 1] = 3e9
    elif how == "size0":
        row[2] = 0
    elif how == "neg-size":
        row[3] = -0.2
    if how in ("shape", "float64", "list-len", "too-many", "masked", "none", "4-D"):
        if how == "shape":
            c.truth = t[:, :rows - 1]
        elif how == "float64":
            c.truth = t.astype(np.float64)
        elif how == "list-len":
            c.truth = [t[i % b, :1] for i in range(b + 1)]
        elif how == "too-many":
            c.truth = [np.tile(t[i, :1] if t[i, 0, 0] else row[None], (rows + 1, 1)) for i in range(b)]
        elif how == "masked":
            c.truth = np.ma.masked_array(t, mask=np.zeros(t.shape, bool))
        elif how == "none":
            c.truth = None
        else:
            c.truth = t[None]
        return f"truth {how}", "error", names, CLEAN
    # The bad row goes first in its image, so that upstream reads it.
    limit = c.ctor.get("max_boxes", rows) if c.kind == "yolo" else rows
    if limit == 0:
        return f"truth {how} (max_boxes 0: unread)", "any", names, CLEAN
    t[img, 0] = row
    if "tree" in c.ctor and row[0] > 100000 and row[1] > 100000:
        return f"truth {how}", "any", names, CLEAN
    c.truth = t
    return f"truth {how} in image {img}", "error", names, CLEAN


def m_truth_layout(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    c.call["train"] = True
    t = _truth_array(c)
    c.check_same = True
    c.plain_truth = t.copy()
    how = pick(rng, ["misaligned", "strided", "readonly", "aliases-x"])
    if how == "misaligned":
        c.truth = misaligned(t)
    elif how == "strided":
        c.truth = strided(t)
    elif how == "readonly":
        c.truth = t.copy()
        c.truth.setflags(write=False)
    elif not isinstance(c.x, np.ndarray) or c.x.shape != c.shape or c.x.dtype != np.float32:
        return "truth aliases-x skipped (x already mutated)", "any", (), CLEAN
    else:
        # Two inputs sharing memory is fine: both are only read.
        xsize = c.x.size
        buf = np.zeros(xsize + t.size, np.float32)
        buf[:xsize] = c.x.ravel()
        buf[xsize:] = t.ravel()
        c.plain_x = c.x.copy()
        c.x = buf[:xsize].reshape(c.x.shape)
        c.truth = buf[xsize:].reshape(t.shape)
    return f"truth {how}", "ok", (), CLEAN


def m_out(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    shape = c.shape
    size = int(np.prod(shape))
    how = pick(rng, ["valid", "alias-truth", "alias-truth", "alias-x", "same", "overlap", "readonly", "misaligned",
                     "float64", "shape", "strided", "list", "one", "alias-truth-list"])
    if how == "valid":
        c.call["out"] = (np.full(shape, np.nan, np.float32), np.full(shape, 7, np.float32))
        c.check_same = True
        c.plain_out = True
        return "out valid", "ok", (), CLEAN
    if how in ("alias-truth", "alias-truth-list"):
        c.call["train"] = True
        t = _truth_array(c)
        if how == "alias-truth-list":
            # The list is packed into a new buffer first: no aliasing with what C reads.
            buf = np.zeros(size + t[0].size, np.float32)
            out0 = buf[:size].reshape(shape)
            view = buf[size - min(size, t[0].size // 2):][:t[0].size].reshape(t[0].shape)
            view[...] = t[0]
            c.truth = [view] + [t[i] for i in range(1, len(t))]
            c.plain_truth = [np.array(r) for r in c.truth]
            c.call["out"] = (out0, np.zeros(shape, np.float32))
            c.check_same = True
            c.plain_out = True
            return "out aliases a truth list element (packed first)", "ok", (), CLEAN
        buf = np.zeros(size + t.size, np.float32)
        off = int(rng.integers(0, size))
        which = int(rng.integers(2))
        arr = buf[:size].reshape(shape)
        tv = buf[off:off + t.size].reshape(t.shape)
        tv[...] = t
        c.truth = tv
        other = np.zeros(shape, np.float32)
        c.call["out"] = (arr, other) if which == 0 else (other, arr)
        return f"out {'delta' if which else 'output'} aliases truth", "error", ("truth",), CLEAN
    if how == "alias-x":
        if not isinstance(c.x, np.ndarray) or c.x.shape != shape or c.x.dtype != np.float32:
            return "out alias-x skipped (x already mutated)", "any", ("x",), CLEAN
        c.x = np.array(c.x)
        c.call["out"] = (c.x, np.zeros(shape, np.float32)) if rng.random() < 0.5 else (np.zeros(shape, np.float32), c.x)
        return "out aliases x", "error", ("x",), CLEAN
    if how == "same":
        a = np.zeros(shape, np.float32)
        c.call["out"] = (a, a)
        return "out output is delta", "error", ("output", "delta"), CLEAN
    if how == "overlap":
        buf = np.zeros(size + max(1, size // 2), np.float32)
        c.call["out"] = (buf[:size].reshape(shape), buf[-size:].reshape(shape))
        return "out output overlaps delta", "error", ("output", "delta"), CLEAN
    a, d = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    if how == "readonly":
        a.setflags(write=False)
    elif how == "misaligned":
        a = misaligned(a)
    elif how == "float64":
        a = a.astype(np.float64)
    elif how == "shape":
        a = a.reshape(shape[0], -1)
    elif how == "strided":
        a = strided(a)
    if how == "list":
        c.call["out"] = [a, d]
    elif how == "one":
        c.call["out"] = (a,)
    else:
        c.call["out"] = (a, d) if rng.random() < 0.5 else (d, a)
    return f"out {how}", "error", ("out",), CLEAN


YOLO_REALS = ("ignore_thresh", "truth_thresh", "jitter")
REGION_REALS = ("thresh", "coord_scale", "object_scale", "noobject_scale", "class_scale", "mask_scale",
                "temperature", "jitter")


def m_param(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    """A constructor or call parameter set to a value from the bad pools (some are valid)."""
    if c.kind == "yolo":
        ints = {"classes": (1, 2**20), "max_boxes": (0, 90), "total": (len(c.ctor["anchors"]) // 2, 2**20),
                "net_w": (1, INT_MAX), "net_h": (1, INT_MAX), "index": (-2**31, INT_MAX), "random": (-2**31, INT_MAX)}
        reals = YOLO_REALS
    else:
        ints = {"classes": (1, 2**20), "coords": (4, 2**20), "num": (len(c.ctor["anchors"]) // 2, 2**20),
                "max_boxes": (0, INT_MAX), "seen": (0, 2**64 - 1), "random": (-2**31, INT_MAX),
                "log": (-2**31, INT_MAX), "sqrt": (-2**31, INT_MAX), "absolute": (-2**31, INT_MAX),
                "classfix": (-2**31, INT_MAX)}
        reals = REGION_REALS
    flags = ("softmax", "background", "rescore", "bias_match") if c.kind == "region" else ()
    r = rng.random()
    if r < 0.45:
        name = pick(rng, list(ints))
        v = pick(rng, BAD_INTS)
        lo, hi = ints[name]
        valid = is_int(v) and lo <= int(v) <= hi
        if v is None and name in ("total", "num"):
            valid = True  # the default: the number of anchor pairs
    elif r < 0.85 or not flags:
        name = pick(rng, list(reals))
        v = pick(rng, BAD_REALS)
        valid = real32_ok(v)
        if name == "mask_scale" and valid and not abs(float(np.float32(float(v)))) < 2**31:
            valid = False
    else:
        name = pick(rng, list(flags))
        v = pick(rng, [2, -1, 0, 1, True, np.bool_(False), "yes", None, 1.0, np.int64(1)])
        valid = isinstance(v, (bool, np.bool_)) or (is_int(v) and int(v) in (0, 1))
    if name in ("net_w", "net_h", "index", "seen"):
        c.call[name] = v
    else:
        c.ctor[name] = v
    if name in ("train",):
        pass
    # A valid value may still make the case refuse something else (x's channels, a truth's class).
    return f"{name}={v!r}", ("any" if valid else "error"), (() if valid else (name,)), CLEAN


def m_train(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    v = pick(rng, [1, 0, "yes", None, np.bool_(True), 1.0])
    c.call["train"] = v
    if isinstance(v, (bool, np.bool_)):
        return f"train={v!r}", "ok", (), CLEAN
    return f"train={v!r}", "error", ("train",), CLEAN


def m_anchors(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    a = list(c.ctor["anchors"])
    how = pick(rng, ["array-1e300", "list-1e300", "array-1e39", "negative", "nan", "odd", "2-D", "object", "string",
                     "empty", "int-array", "zero", "tiny", "masked", "bool", "complex", "float64-array", "longdouble"])
    expect, names = "error", ("anchors",)
    if how == "array-1e300":
        v: Any = np.array([1e300] + a[1:])
    elif how == "list-1e300":
        v = [1e300] + a[1:]
    elif how == "array-1e39":
        v = np.array([1e39] + a[1:], np.float64)
    elif how == "negative":
        v = [-1.0] + a[1:]
    elif how == "nan":
        v = np.array([np.nan] + a[1:], np.float32)
    elif how == "odd":
        v = a[:-1]
        expect = "any"  # allowed when total/num is given (a mutation may set it later), refused otherwise
    elif how == "2-D":
        v = np.array(a, np.float32).reshape(-1, 2)
    elif how == "object":
        v = np.array(a, dtype=object)
    elif how == "string":
        v = "10,13,16,30"
    elif how == "empty":
        v = []
    elif how == "int-array":
        v = np.array([int(max(1, round(t))) for t in a], np.int64)
        expect = "ok"
    elif how == "zero":
        v = [0.0] + a[1:]
    elif how == "tiny":
        v = [1e-50] + a[1:]  # 0 as a float32
    elif how == "masked":
        v = np.ma.masked_array(np.array(a, np.float32), mask=[True] + [False] * (len(a) - 1))
    elif how == "bool":
        v = np.ones(len(a), bool)
    elif how == "complex":
        v = np.array(a, np.complex64)
    elif how == "float64-array":
        v = np.array(a, np.float64)
        expect = "ok"
    else:
        v = np.array(a, np.longdouble)
        v[0] = np.longdouble("1e4000")
    c.ctor["anchors"] = v
    return f"anchors {how}", expect, names, CLEAN


def m_mask_map(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    name = "mask" if c.kind == "yolo" and rng.random() < 0.6 else "map"
    cur = list(c.ctor.get(name) or [0])
    top = (len(c.ctor["anchors"]) // 2) if name == "mask" else _as_int(c.ctor["classes"], 3)
    how = pick(rng, ["high", "negative", "float", "huge", "2-D", "uint64", "empty", "bool", "masked", "string",
                     "int64-ok", "object"])
    expect = "error"
    if how == "high":
        v: Any = cur[:-1] + [top]
    elif how == "negative":
        v = [-1] + cur[1:]
    elif how == "float":
        v = [float(cur[0]) + 0.5] + cur[1:]
    elif how == "huge":
        v = [2**40] + cur[1:]
    elif how == "2-D":
        v = np.array(cur).reshape(1, -1)
    elif how == "uint64":
        v = np.array([2**64 - 1] + cur[1:], np.uint64)
    elif how == "empty":
        v = []
    elif how == "bool":
        v = np.array([True] * len(cur))
    elif how == "masked":
        v = np.ma.masked_array(np.array(cur), mask=[True] + [False] * (len(cur) - 1))
    elif how == "string":
        v = "0,1"
    elif how == "object":
        v = np.array(cur, dtype=object)
    else:
        v = np.array(cur, np.int64)
        expect = "any"
    c.ctor[name] = v
    return f"{name} {how}", expect, (name,), CLEAN


def m_attr(rng: np.random.Generator, c: LayerCase) -> Tuple[str, str, Tuple[str, ...], Tuple[type, ...]]:
    """Layer attributes changed after construction."""
    attrs = ["anchors", "mask", "classes", "n", "map", "max_boxes", "total"] if c.kind == "yolo" else \
        ["anchors", "classes", "n", "num", "coords", "thresh", "map", "tree", "softmax", "temperature"]
    name = pick(rng, attrs)
    how = pick(rng, ["setattr", "setattr", "bypass", "inplace", "writeable", "reshape"])
    short = np.array([1.0, 1.0], np.float32)
    values = {"anchors": short, "mask": np.array([0, 5, 99], np.int32), "classes": 2**40, "n": 7, "map": np.array([-5], np.int32),
              "max_boxes": 2**31, "total": 0, "num": 9, "coords": 2, "thresh": 1e39, "softmax": 5, "temperature": np.nan,
              "tree": pdl.Tree.from_parents([-1, 0])}
    if how in ("setattr", "bypass"):
        v = values[name]

        def act(layer: Any) -> None:
            if how == "setattr":
                setattr(layer, name, v)
            else:
                object.__setattr__(layer, name, v)
        c.post.append(act)
        if how == "setattr":
            return f"layer.{name} = {v!r} after construction", "error", (name,), (AttributeError,)
        c.compare = False  # the layer now differs from its constructor's arguments
        return f"object.__setattr__(layer, {name!r}, ...) bypassing the layer", "any", (name, "changed"), CLEAN
    if name not in ("anchors", "mask", "map"):
        return "no-op", "any", (), CLEAN

    def act2(layer: Any) -> None:
        a = getattr(layer, name)
        if a is None:
            return
        if how == "inplace":
            a[0] = 1e9
        elif how == "writeable":
            a.setflags(write=True)
            a[0] = 1e9
        else:
            a.shape = (1, a.size)
    c.post.append(act2)
    c.compare = False
    return f"layer.{name} {how} after construction", "any", (name, "read-only", "WRITEABLE", "changed"), \
        (ValueError, TypeError, AttributeError)


YOLO_MUTATIONS: List[Tuple[float, Mutation]] = [
    (1, m_x_layout), (2, m_x_bad), (3, m_truth_bad), (1, m_truth_layout), (2, m_out), (3, m_param), (0.5, m_train),
    (1.5, m_anchors), (1.5, m_mask_map), (1.5, m_attr)]


#: Which parts of a case each mutation changes: two mutations never change the same part.
SLOTS: Dict[Any, set] = {
    m_x_layout: {"x"}, m_x_bad: {"x"}, m_truth_bad: {"truth", "train"}, m_truth_layout: {"truth", "train", "x"},
    m_out: {"out", "truth", "x", "train"}, m_train: {"train"}, m_param: {"param"}, m_anchors: {"anchors"},
    m_mask_map: {"maskmap"}, m_attr: {"attr"}}


def _choose(rng: np.random.Generator, table: List[Tuple[float, Any]]) -> Any:
    w = np.array([t[0] for t in table], float)
    return table[int(rng.choice(len(table), p=w / w.sum()))][1]


def _layer_run(c: LayerCase) -> Callable[[], Any]:
    def run() -> Any:
        cls = pdl.YoloLayer if c.kind == "yolo" else pdl.RegionLayer
        layer = cls(**c.ctor)
        for act in c.post:
            act(layer)
        res = layer.forward(c.x, c.truth, **c.call)
        if c.check_same and c.compare:
            x = c.plain_x if c.plain_x is not None else c.x
            t = c.plain_truth if c.plain_truth is not None else c.truth
            call = {k: v for k, v in c.call.items() if k != "out"}
            ref = cls(**c.ctor).forward(np.ascontiguousarray(x), t, **call)
            same(res.output, ref.output, "output")
            same(res.delta, ref.delta, "delta")
            same(res.cost, ref.cost, "cost")
            if c.plain_out:
                out = c.call["out"]
                if not (res.output is out[0] and res.delta is out[1]):
                    raise WrongResult("the result does not refer to the out= arrays")
        return res
    return run


def gen_layer(rng: np.random.Generator, kind: str) -> Case:
    c = base_layer_case(rng, kind)
    k = int(pick(rng, [0, 1, 1, 1, 2]))
    labels, expects, names, errors = [], [], [], []
    used: set = set()
    for _ in range(k):
        for _try in range(6):
            mut = _choose(rng, YOLO_MUTATIONS)
            if not (SLOTS[mut] & used):
                break
        else:
            continue
        used |= SLOTS[mut]
        lab, exp, nm, err = mut(rng, c)
        labels.append(lab)
        expects.append(exp)
        if exp != "ok":
            names.extend(nm)
        errors.extend(err)
    expect = "error" if "error" in expects else ("any" if "any" in expects else "ok")
    if "any" in expects and sum(e != "ok" for e in expects) > 1:
        names = []  # an "any" mutation may be refused first, for its own reason
    # AttributeError is only acceptable where a mutation asked for it.
    errs = tuple(dict.fromkeys(list(CLEAN) + errors))
    label = f"{kind} B{np.shape(c.x)[0] if isinstance(c.x, np.ndarray) and c.x.ndim else '?'} " + \
        ("; ".join(labels) or "valid")
    return Case(kind, label, _layer_run(c), expect, tuple(dict.fromkeys(names)), errs)


# ---- AlexeyAB's [yolo] -------------------------------------------------------------

def ab_ctor(rng: np.random.Generator) -> Dict[str, Any]:
    classes = int(rng.integers(1, 5))
    total = int(rng.integers(1, 6))
    ctor: Dict[str, Any] = dict(
        classes=classes, anchors=[float(v) for v in rng.integers(2, 400, 2 * total)], total=total,
        mask=sorted(int(v) for v in rng.choice(total, int(rng.integers(1, total + 1)), replace=False)),
        max_boxes=int(pick(rng, [200, 6, 3])), ignore_thresh=float(pick(rng, [.5, .7, 0.0])),
        truth_thresh=float(pick(rng, [1.0, .6])), iou_thresh=float(pick(rng, [1.0, .213])),
        iou_thresh_kind=pick(rng, ["iou", "giou", "diou", "ciou"]),
        iou_loss=pick(rng, ["mse", "giou", "diou", "ciou", "iou"]), iou_normalizer=float(pick(rng, [.75, .07])),
        max_delta=pick(rng, [None, 5.0]), scale_x_y=float(pick(rng, [1.0, 1.05])),
        new_coords=int(pick(rng, [0, 0, 1])), objectness_smooth=int(pick(rng, [0, 1])),
        label_smooth_eps=float(pick(rng, [0.0, 0.1])), focal_loss=int(pick(rng, [0, 1])),
        show_details=int(pick(rng, [1, 0])))
    if rng.random() < 0.2:
        ctor["counters_per_class"] = [int(v) for v in rng.integers(1, 300, classes)]
    return ctor


def gen_ab(rng: np.random.Generator, flavor: str = "alexeyab") -> Case:
    """AlexeyAB's layer (or hank-ai's, flavor="hankai"): valid cases (the
    result must equal a plain call's), and the bad inputs of the issue's
    classes: non-finite or out-of-grid truths, class ids beyond a C int (and
    for hank-ai, fatal there, class ids outside [0, classes)), wrong dtypes
    and shapes, aliasing out=, attributes changed after construction,
    invalid options."""
    ctor = ab_ctor(rng)
    cls = pdl.alexeyab.YoloLayer
    if flavor == "hankai":
        del ctor["show_details"]
        cls = pdl.hankai.YoloLayer
    b, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    n = len(ctor["mask"])
    x = float_values(rng, (b, n * (5 + ctor["classes"]), h, w), wild=rng.random() < 0.2)
    k = min(ctor["max_boxes"], 4)
    truth = [truth_rows(rng, int(rng.integers(0, k + 1)), w, h, ctor["classes"], 5) for _ in range(b)]
    net = dict(net_w=int(pick(rng, [416, 608, 64])), net_h=int(pick(rng, [416, 608, 64])))
    label, expect, names, errors = "valid", "ok", (), CLEAN
    post: List[Callable[[Any], None]] = []
    out: Any = None
    m = int(rng.integers(0, 10))
    if m == 1 and truth[0].size:
        truth[0][0, int(rng.integers(0, 4))] = pick(rng, [np.nan, np.inf])
        label, expect, names = "non-finite truth", "error", ("truth",)
    elif m == 2 and truth[0].size:
        truth[0][0, 0] = np.float32(1.0)  # x*W == W: the cell outside the grid
        label, expect, names = "x == 1", "error", ("truth",)
    elif m == 3 and truth[0].size:
        truth[0][0, 4] = np.float32(3e9)
        label, expect, names = "class id beyond a C int", "error", ("truth",)
    elif m == 4:
        x = x.astype(pick(rng, [np.float64, np.float16]))
        label, expect, names = "x dtype", "error", ("x",)
    elif m == 5:
        x = x[:, :-1]
        label, expect, names = "x channels", "error", ("x",)
    elif m == 6:
        packed = np.zeros((b, ctor["max_boxes"], 6), np.float32)
        for i, t in enumerate(truth):
            packed[i, :len(t), :5] = t
        truth = packed  # type: ignore[assignment]
        flat = packed.reshape(-1)
        if flat.size >= 2 * x.size:
            out = (flat[:x.size].reshape(x.shape), np.empty_like(x))
            label, expect, names = "out= aliasing the truth", "error", ("out",)
    elif m == 7:
        key = pick(rng, ["anchors", "mask", "classes", "max_boxes"])
        post.append(lambda layer, key=key: setattr(layer, key, None))
        label, expect, names, errors = f"set {key} after construction", "error", (key,), CLEAN + (AttributeError,)
    elif m == 8:
        key, value = pick(rng, [("iou_loss", "bogus"), ("max_delta", float("nan")), ("scale_x_y", 1e39),
                                ("counters_per_class", [1]), ("mask", [99]), ("classes", 0)])
        if key != "counters_per_class" or ctor["classes"] > 1:
            ctor[key] = value
            label, expect, names = f"{key}={value!r}", "error", (key,)
    elif m == 9:
        key = pick(rng, ["net_w", "net_h"])
        net[key] = int(pick(rng, [0, 2**31, -1]))
        label, expect, names = f"{key}={net[key]}", "error", (key,)
    if flavor == "hankai" and expect == "ok" and isinstance(truth, list) and truth[-1].size and rng.random() < 0.3:
        truth[-1][-1, 4] = np.float32(pick(rng, [ctor["classes"], -1, ctor["classes"] + 0.5]))
        label, expect, names = "class id outside [0, classes) (fatal in hank-ai)", "error", ("truth", "class id")

    def run() -> Any:
        layer = cls(**ctor)
        for act in post:
            act(layer)
        res = layer.forward(x, truth, out=out, **net)
        if expect == "ok":
            ref = cls(**ctor).forward(np.ascontiguousarray(x), truth, **net)
            same(res.output, ref.output, "output")
            same(res.delta, ref.delta, "delta")
            same(res.cost, ref.cost, "cost")
        return res
    target = "hankai_yolo" if flavor == "hankai" else "ab_yolo"
    return Case(target, f"{target} B{b} {label}", run, expect, names, errors)


# ---- AlexeyAB's [Gaussian_yolo] ---------------------------------------------------------

def gauss_ctor(rng: np.random.Generator) -> Dict[str, Any]:
    classes = int(rng.integers(1, 5))
    num = int(rng.integers(1, 6))
    return dict(
        classes=classes, num=num, anchors=[float(v) for v in rng.integers(2, 400, 2 * num)],
        mask=sorted(int(v) for v in rng.choice(num, int(rng.integers(1, num + 1)), replace=False)),
        max=int(pick(rng, [200, 6, 3])), ignore_thresh=float(pick(rng, [.5, .7, 0.0])),
        truth_thresh=float(pick(rng, [1.0, .6])), iou_thresh=float(pick(rng, [1.0, .213])),
        iou_thresh_kind=pick(rng, ["iou", "giou", "diou", "ciou"]),
        iou_loss=pick(rng, ["mse", "giou", "diou", "ciou", "iou"]), iou_normalizer=float(pick(rng, [.75, .07])),
        uc_normalizer=float(pick(rng, [1.0, .5])), yolo_point=pick(rng, ["center", "left_top", "right_bottom"]),
        max_delta=pick(rng, [None, 5.0]), scale_x_y=float(pick(rng, [1.0, 1.05])),
        objectness_smooth=int(pick(rng, [0, 1])), label_smooth_eps=float(pick(rng, [0.0, 0.1])))


def gen_gauss(rng: np.random.Generator) -> Case:
    """AlexeyAB's [Gaussian_yolo]: valid cases (the result must equal a plain
    call's) and bad inputs: non-finite or out-of-grid truths, class ids it
    would index with outside [0, classes), wrong dtypes and shapes, aliasing
    out=, attributes changed after construction, invalid options."""
    ctor = gauss_ctor(rng)
    b, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    n = len(ctor["mask"])
    x = float_values(rng, (b, n * (9 + ctor["classes"]), h, w), wild=rng.random() < 0.2)
    k = min(ctor["max"], 4)
    truth = [truth_rows(rng, int(rng.integers(0, k + 1)), w, h, ctor["classes"], 5) for _ in range(b)]
    net = dict(net_w=int(pick(rng, [416, 608, 64])), net_h=int(pick(rng, [416, 608, 64])))
    label, expect, names, errors = "valid", "ok", (), CLEAN
    post: List[Callable[[Any], None]] = []
    out: Any = None
    m = int(rng.integers(0, 11))
    if m == 1 and truth[0].size:
        truth[0][0, int(rng.integers(0, 5))] = pick(rng, [np.nan, np.inf])
        label, expect, names = "non-finite truth", "error", ("truth",)
    elif m == 2 and truth[0].size and ctor["yolo_point"] == "center":
        truth[0][0, 0] = np.float32(1.0)  # x*W == W: the cell outside the grid
        label, expect, names = "x == 1", "error", ("truth",)
    elif m == 3 and truth[0].size:
        truth[0][0, 4] = np.float32(pick(rng, [3e9, -1.0, -7.0]))
        label, expect, names = "class id negative or beyond a C int", "error", ("truth",)
    elif m == 4:
        x = x.astype(pick(rng, [np.float64, np.float16]))
        label, expect, names = "x dtype", "error", ("x",)
    elif m == 5:
        x = x[:, :-1]
        label, expect, names = "x channels", "error", ("x",)
    elif m == 6:
        packed = np.zeros((b, ctor["max"], 6), np.float32)
        for i, t in enumerate(truth):
            packed[i, :len(t), :5] = t
        truth = packed  # type: ignore[assignment]
        flat = packed.reshape(-1)
        if flat.size >= 2 * x.size:
            out = (flat[:x.size].reshape(x.shape), np.empty_like(x))
            label, expect, names = "out= aliasing the truth", "error", ("out",)
    elif m == 7:
        key = pick(rng, ["anchors", "mask", "classes", "max"])
        post.append(lambda layer, key=key: setattr(layer, key, None))
        label, expect, names, errors = f"set {key} after construction", "error", (key,), CLEAN + (AttributeError,)
    elif m == 8:
        key, value = pick(rng, [("iou_loss", "bogus"), ("yolo_point", "middle"), ("max_delta", float("nan")),
                                ("scale_x_y", 1e39), ("mask", [99]), ("classes", 0), ("map", [-1]),
                                ("anchors", [10.0] * (2 * ctor["num"] + 1))])
        ctor[key] = value
        label, expect, names = f"{key}={value!r}", "error", (key,)
    elif m == 9:
        key = pick(rng, ["net_w", "net_h"])
        net[key] = int(pick(rng, [0, 2**31, -1]))
        label, expect, names = f"{key}={net[key]}", "error", (key,)
    elif m == 10 and truth[0].size:
        # every anchor in the mask: the row is assigned, and its class indexes outside the deltas
        ctor["mask"] = list(range(ctor["num"]))
        x = float_values(rng, (b, ctor["num"] * (9 + ctor["classes"]), h, w))
        truth[0][0, 4] = np.float32(ctor["classes"] + int(rng.integers(0, 3)))
        label, expect, names = "assigned class id >= classes", "error", ("class id",)

    def run() -> Any:
        layer = pdl.alexeyab.GaussianYoloLayer(**ctor)
        for act in post:
            act(layer)
        res = layer.forward(x, truth, out=out, **net)
        if expect == "ok":
            ref = pdl.alexeyab.GaussianYoloLayer(**ctor).forward(np.ascontiguousarray(x), truth, **net)
            same(res.output, ref.output, "output")
            same(res.delta, ref.delta, "delta")
            same(res.cost, ref.cost, "cost")
            if res.text != ref.text:
                raise AssertionError("text differs from a plain call's")
        return res
    return Case("gaussian_yolo", f"gaussian_yolo B{b} {label}", run, expect, names, errors)


# ---- issue 23: AlexeyAB's [region] and YOLOv1's [detection] ----------------------------------------

def gen_more(rng: np.random.Generator) -> Case:
    """alexeyab.RegionLayer and DetectionLayer: valid cases (the result must equal a second
    fresh layer's on plain arrays), and the bad inputs of their classes: non-finite, out-of-grid
    or out-of-int truths, wrong dtypes and shapes, attributes changed after construction,
    invalid options."""
    if rng.random() < 0.5:
        classes, num = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        ctor: Dict[str, Any] = dict(classes=classes, coords=int(pick(rng, [4, 4, 5])), num=num,
                                    max=int(pick(rng, [200, 5])), anchors=[float(v) for v in rng.uniform(.3, 6, 2 * num)],
                                    softmax=int(pick(rng, [0, 1])), rescore=int(pick(rng, [0, 1])),
                                    bias_match=int(pick(rng, [0, 1])), classfix=int(pick(rng, [0, -1, 1, 2])))
        ctor["focal_loss"] = int(ctor["softmax"] and rng.random() < .5)
        b, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        c = num * (ctor["coords"] + 1 + classes)
        x = float_values(rng, (b, c, h, w), wild=rng.random() < 0.2)
        truth: Any = [truth_rows(rng, int(rng.integers(0, min(ctor["max"], 4) + 1)), w, h, classes, 5)
                      for _ in range(b)]
        make = pdl.alexeyab.RegionLayer
        kind, options = "region_ab", [("coords", 3), ("num", 0), ("classes", 0), ("thresh", float("nan")),
                                      ("map", [99]), ("max", -1), ("tree", "x.tree")]
        attrs = ["anchors", "classes", "num", "max_boxes"]
    else:
        classes, num, side = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ctor = dict(classes=classes, coords=int(pick(rng, [4, 4, 5])), num=num, side=side,
                    softmax=int(pick(rng, [0, 1])), sqrt=int(pick(rng, [0, 1])), rescore=int(pick(rng, [0, 1])),
                    random=int(pick(rng, [0, 1])), forced=int(num > 1 and rng.random() < .3))
        b = int(rng.integers(1, 3))
        loc = side * side
        x = rng.uniform(0, 1, (b, loc * ((1 + ctor["coords"]) * num + classes))).astype(np.float32)
        truth = np.zeros((b, loc, 1 + classes + ctor["coords"]), np.float32)
        for bi in range(b):
            for i in range(loc):
                if rng.random() < .4:
                    truth[bi, i, 0] = 1
                    truth[bi, i, 1 + int(rng.integers(0, classes))] = 1
                    truth[bi, i, 1 + classes:5 + classes] = rng.uniform(.05, .95, 4)
        make = pdl.DetectionLayer
        kind, options = "detection", [("coords", -1), ("num", 0), ("side", 0), ("classes", 0),
                                      ("coord_scale", float("inf")), ("random", 2**40)]
        attrs = ["classes", "num", "side", "coords"]
    seen = int(pick(rng, [0, 12799, 63999, 64000]))
    label, expect, names, errors = "valid", "ok", (), CLEAN
    post: List[Callable[[Any], None]] = []
    m = int(rng.integers(0, 9))
    if kind == "region_ab" and m == 1 and truth[0].size:
        truth[0][0, int(rng.integers(0, 5))] = pick(rng, [np.nan, np.inf])
        label, expect, names = "non-finite truth", "error", ("truth",)
    elif kind == "region_ab" and m == 2 and truth[0].size:
        truth[0][0, 0] = np.float32(1.0)
        label, expect, names = "x == 1", "error", ("truth",)
    elif kind == "region_ab" and m == 3 and truth[0].size:
        truth[0][0, 4] = np.float32(3e9)
        label, expect, names = "class id beyond a C int", "error", ("truth",)
    elif kind == "detection" and m == 1:
        truth[0, 0, 0] = pick(rng, [np.nan, np.inf, 3e9])
        label, expect, names = "is_obj not an int", "error", ("truth", "is_obj")
    elif kind == "detection" and m == 2:
        truth = truth[:, :, :-1]
        label, expect, names = "truth shape", "error", ("truth",)
    elif m == 4:
        x = x.astype(pick(rng, [np.float64, np.float16]))
        label, expect, names = "x dtype", "error", ("x",)
    elif m == 5:
        x = x[:, :-1]
        label, expect, names = "x shape", "error", ("x",)
    elif m == 6:
        key = pick(rng, attrs)
        post.append(lambda layer, key=key: setattr(layer, key, None))
        label, expect, names, errors = f"set {key} after construction", "error", (key,), CLEAN + (AttributeError,)
    elif m == 7:
        key, value = pick(rng, options)
        ctor[key] = value
        label, expect, names = f"{key}={value!r}", "error", (key,)
    elif m == 8:
        seen = int(pick(rng, [-1, 2**70]))
        label, expect, names = f"seen={seen}", "error", ("seen",)

    def run() -> Any:
        layer = make(**ctor)
        for act in post:
            act(layer)
        res = layer.forward(x, truth, seen=seen)
        if expect == "ok":
            ref = make(**ctor).forward(np.ascontiguousarray(x), truth, seen=seen)
            same(res.output, ref.output, "output")
            same(res.delta, ref.delta, "delta")
            same(res.cost, ref.cost, "cost")
        return res
    return Case("more_layers", f"{kind} {label}", run, expect, names, errors)


# ---- detections and NMS ---------------------------------------------------------

def gen_detections(rng: np.random.Generator) -> Case:
    kind = pick(rng, ["yolo", "region", "region"])
    ctor = yolo_ctor(rng) if kind == "yolo" else region_ctor(rng)
    b = int(pick(rng, [1, 1, 2]))
    h, w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    out = float_values(rng, (b, channels(kind, ctor), h, w), wild=rng.random() < 0.3)
    if rng.random() < 0.5:
        out = np.abs(np.tanh(out)).astype(np.float32)  # probabilities, as an activated buffer holds
    kw: Dict[str, Any] = dict(img_w=int(pick(rng, [640, 1, 1000, 37])), img_h=int(pick(rng, [480, 1, 333])),
                              net_w=int(pick(rng, [416, 32, 1])), net_h=int(pick(rng, [416, 32, 1])),
                              thresh=float(rng.uniform(0, 1)), relative=bool(rng.random() < 0.7))
    expect, names, labels = "ok", [], []
    if kind == "region":
        kw["tree_thresh"] = float(rng.uniform(0, 1))
    r = rng.random()
    if r < 0.25 and kind == "region":
        v = pick(rng, [-0.01, -1.0, -1e-30, 0.0, float("nan"), 1e39, 2.0, -0.0])
        kw["tree_thresh"] = v
        labels.append(f"tree_thresh={v!r}")
        if not real32_ok(v):
            expect, names = "error", ["tree_thresh"]
        elif v < 0 and "tree" in ctor:
            expect, names = "any", ["tree_thresh"]
    elif r < 0.55:
        name = pick(rng, ["img_w", "img_h", "net_w", "net_h", "thresh", "relative"])
        if name == "thresh":
            v = pick(rng, BAD_REALS)
            ok = real32_ok(v)
        elif name == "relative":
            v = pick(rng, [1, 0, "no", None, np.bool_(False), np.array([True, False]), 2])
            ok = isinstance(v, (bool, np.bool_)) or (is_int(v) and int(v) in (0, 1))
        else:
            v = pick(rng, BAD_INTS + [2**16, 3 * 10**5])
            ok = is_int(v) and 1 <= int(v) <= INT_MAX
            if ok:
                iw, ih, nw, nh = (int(v) if n == name else int(kw[n]) for n in ("img_w", "img_h", "net_w", "net_h"))
                ok = ih * nw <= INT_MAX and iw * nh <= INT_MAX
        kw[name] = v
        labels.append(f"{name}={v!r}")
        if not ok:
            expect, names = "error", [name]
    elif r < 0.7:
        how = pick(rng, ["misaligned", "strided", "big-endian", "masked", "float64", "channels", "list"])
        plain = out
        if how == "misaligned":
            out = misaligned(out)
        elif how == "strided":
            out = strided(out)
        elif how == "big-endian":
            out, expect, names = out.astype(">f4"), "error", ["output"]
        elif how == "masked":
            out, expect, names = np.ma.masked_array(out, mask=np.ones(out.shape, bool)), "error", ["output"]
        elif how == "float64":
            out, expect, names = out.astype(np.float64), "error", ["output"]
        elif how == "channels":
            out, expect, names = out[:, :-1], "error", ["output"]
        else:
            out, expect, names = out.tolist(), "error", ["output"]
        labels.append(f"output {how}")
        if expect == "ok":
            return Case("detections", f"{kind} detections, output {how}",
                        _det_run(kind, ctor, out, kw, plain), "ok")
    elif r < 0.8 and kind == "region" and "tree" in ctor:
        m = pick(rng, ["short", "ok", "negative", "none"])
        cls = ctor["classes"]
        if m == "short":
            kw["map"], expect, names = list(range(cls)), "error", ["map"]
        elif m == "negative":
            kw["map"], expect, names = [-1] * 200, "error", ["map"]
        elif m == "ok":
            kw["map"] = [0] * 200
            if cls < 200:
                expect, names = "error", ["map", "200"]
        labels.append(f"map {m}")
    if kind == "region" and "tree" in ctor and expect == "ok" and kw.get("tree_thresh", 0) < 0:
        expect = "any"
    label = f"{kind} detections B{b} {h}x{w}" + (" tree" if "tree" in ctor else "") + ": " + (
        "; ".join(labels) or "valid")
    return Case("detections", label, _det_run(kind, ctor, out, kw, None), expect, tuple(names))


def _det_run(kind: str, ctor: Dict[str, Any], out: Any, kw: Dict[str, Any], plain: Optional[np.ndarray]
             ) -> Callable[[], Any]:
    def run() -> Any:
        layer = pdl.YoloLayer(**ctor) if kind == "yolo" else pdl.RegionLayer(**ctor)
        before = None if not isinstance(out, np.ndarray) else out.copy()
        dets = layer.detections(out, **kw)
        if plain is not None:
            ref = layer.detections(np.ascontiguousarray(plain), **kw)
            for k in ("bbox", "objectness", "prob", "output_after"):
                same(getattr(dets, k), getattr(ref, k), k)
        kept = pdl.nms_sort(dets, 0.45)
        pdl.nms_obj(kept, 0.3)
        if before is not None:
            same(out, before, "the caller's output array (must not be modified)")
        return dets
    return run


def gen_nms(rng: np.random.Generator) -> Case:
    n = int(pick(rng, [0, 1, 2, 5, 12]))
    classes = int(rng.integers(1, 5))
    bbox = np.abs(float_values(rng, (n, 4), wild=rng.random() < 0.3))
    obj = np.abs(float_values(rng, (n,), wild=rng.random() < 0.3))
    prob = np.abs(float_values(rng, (n, classes), wild=rng.random() < 0.3))
    if n and rng.random() < 0.3:
        obj[rng.integers(0, n)] = 0
    kw: Dict[str, Any] = dict(bbox=bbox, objectness=obj, prob=prob)
    thresh: Any = float(rng.uniform(0, 1))
    expect, names, label = "ok", (), "valid"
    plain = None
    r = rng.random()
    if r < 0.45:
        field_ = pick(rng, ["bbox", "objectness", "prob", "sort_class", "order", "mask", "output_after",
                            "num_alloc_upstream"])
        how = pick(rng, ["float64", "shape", "list", "masked", "big-endian", "misaligned", "strided", "3-D",
                         "int64", "out-of-range", "none"])
        a = kw.get(field_)
        label = f"{field_} {how}"
        expect, names = "error", (field_,)
        if field_ in ("sort_class", "order"):
            base = np.zeros(n, np.int32)
            if how == "out-of-range":
                v: Any = base + (classes if field_ == "sort_class" else 0) - (0 if field_ == "sort_class" else 0)
                if field_ == "order":
                    v, expect = base + 10**6, "any"  # order is carried, never indexed by C
                if n == 0:
                    expect = "any"
            elif how == "int64":
                v = base.astype(np.int64)
                expect = "any"
            elif how == "shape":
                v = np.zeros(n + 1, np.int32)
            elif how == "misaligned":
                v, expect = misaligned(base), "ok"
            elif how == "strided":
                v, expect = strided(base), "ok"
            elif how == "masked":
                v = np.ma.masked_array(base, mask=np.ones(n, bool))
            elif how == "none":
                v, expect = None, "ok"
            else:
                v = base.tolist()
            kw[field_] = v
        elif field_ in ("mask", "output_after", "num_alloc_upstream"):
            kw[field_] = pick(rng, [None, np.zeros(3, np.float32), "x", -1, 2**70])
            expect = "any"
        else:
            if how == "float64":
                v = a.astype(np.float64)
            elif how == "shape":
                v = a[:-1] if a.ndim == 1 or rng.random() < 0.5 else a[:, :-1]
                if n == 0 and a.ndim == 1:
                    v = np.zeros(1, np.float32)
                if field_ == "prob" and a.ndim == 2 and v.shape[0] == n and v.shape[1] >= 1:
                    expect = "ok"
                if v.shape == a.shape:  # nothing to cut from an empty array
                    expect = "ok"
            elif how == "list":
                v = a.tolist()
            elif how == "masked":
                v = np.ma.masked_array(a, mask=np.ones(a.shape, bool))
            elif how == "big-endian":
                v = a.astype(">f4")
            elif how in ("misaligned", "strided"):
                v = misaligned(a) if how == "misaligned" else strided(a)
                expect, plain = "ok", dict(kw)
            elif how == "3-D":
                v = a[None]
            elif how == "int64":
                v = a.astype(np.int64)
            elif how == "none":
                v = None
            else:
                v = a
                expect = "ok"
            kw[field_] = v
    elif r < 0.6:
        thresh = pick(rng, BAD_REALS)
        label = f"thresh={thresh!r}"
        expect, names = ("any" if real32_ok(thresh) else "error"), ("thresh",)
    elif r < 0.65:
        label = "not Detections"
        which = pick(rng, ["sort", "obj"])

        def bad() -> Any:
            return (pdl.nms_sort if which == "sort" else pdl.nms_obj)({"bbox": bbox}, 0.5)
        return Case("nms", label, bad, "error", ("Detections",))

    def run() -> Any:
        d = pdl.Detections(**kw)
        a = pdl.nms_sort(d, thresh)
        b = pdl.nms_obj(d, thresh)
        pdl.nms_sort(a, thresh)
        if plain is not None:
            ref = pdl.Detections(**{k: (np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v)
                                   for k, v in kw.items()})
            r2 = pdl.nms_sort(ref, thresh)
            for k in ("bbox", "objectness", "prob", "order"):
                same(getattr(a, k), getattr(r2, k), k)
        return b
    return Case("nms", f"nms n={n} classes={classes}: {label}", run, expect, names)


# ---- trees -------------------------------------------------------------------------

TREE_FIELDS = ("parent", "child", "group", "leaf", "group_size", "group_offset")


def gen_tree(rng: np.random.Generator, workdir: str) -> Case:
    r = rng.random()
    n = int(rng.integers(1, 9))
    parents = random_parents(rng, n)
    if r < 0.35:
        t = pdl.Tree.from_parents(parents)
        arrays = {k: np.array(getattr(t, k)) for k in TREE_FIELDS}
        field_ = pick(rng, list(TREE_FIELDS))
        how = pick(rng, ["value-high", "value-low", "short", "long", "int64", "int64-huge", "float", "list", "2-D",
                         "masked", "misaligned", "identical", "big-endian"])
        a = arrays[field_]
        expect = "error"
        if how == "value-high":
            a = a.copy()
            a[int(rng.integers(len(a)))] = 10**6 if rng.random() < 0.5 else len(a) + 1
        elif how == "value-low":
            a = a.copy()
            a[int(rng.integers(len(a)))] = -2 if rng.random() < 0.5 else -10**6
        elif how == "short":
            a = a[:-1]
        elif how == "long":
            a = np.concatenate([a, a[:1]])
        elif how == "int64":
            a = a.astype(np.int64)
            expect = "any"
        elif how == "int64-huge":
            a = a.astype(np.int64)
            a[0] = 2**40
        elif how == "float":
            a = a.astype(np.float32)
        elif how == "list":
            a = a.tolist()
            expect = "any"
        elif how == "2-D":
            a = a.reshape(1, -1)
        elif how == "masked":
            a = np.ma.masked_array(a, mask=np.ones(a.shape, bool))
        elif how == "misaligned":
            a = misaligned(a)
            expect = "any"
        elif how == "big-endian":
            a = a.astype(">i4")
            expect = "any"
        else:
            expect = "ok"
        if how in ("value-high", "value-low") and np.array_equal(np.asarray(a), arrays[field_]):
            expect = "ok"
        arrays[field_] = a
        use = rng.random() < 0.7

        def run() -> Any:
            tree = pdl.Tree(**arrays)
            if use:
                _use_tree(tree, n, rng_seed)
            return tree
        rng_seed = int(rng.integers(2**31))
        return Case("tree", f"Tree(...) direct, {field_} {how}", run, expect, (field_, "Tree"))
    if r < 0.6:
        how = pick(rng, ["valid", "forward-parent", "self-parent", "low", "huge", "float", "empty", "2-D", "masked",
                         "string", "names-short"])
        p: Any = list(parents)
        expect, names = "error", ("parent",)
        names_arg: Any = None
        if how == "valid":
            expect = "ok"
        elif how == "forward-parent":
            if n < 2:
                p, how = [0], "self-parent"
            else:
                p[0] = n - 1
        elif how == "self-parent":
            p[-1] = n - 1
        elif how == "low":
            p[-1] = -2
        elif how == "huge":
            p[-1] = 2**40
        elif how == "float":
            p[-1] = -1.0
        elif how == "empty":
            p = []
        elif how == "2-D":
            p = np.array(p).reshape(1, -1)
        elif how == "masked":
            p = np.ma.masked_array(np.array(p), mask=[True] * n)
        elif how == "string":
            p = "-1 0 0"
        else:
            names_arg, expect, names = ["a"] * (n + 1), "error", ("names",)
        rng_seed = int(rng.integers(2**31))

        def run2() -> Any:
            t = pdl.Tree.from_parents(p, names_arg)
            _use_tree(t, len(t.parent), rng_seed)
            return t
        return Case("tree", f"Tree.from_parents {how}", run2, expect, names)
    # A tree file.
    lines = [f"n{i} {p}" for i, p in enumerate(parents)]
    how = pick(rng, ["valid", "nul", "nul-start", "forward", "noparent", "longname", "bigint", "crlf", "blank",
                     "binary", "utf8", "hugeint", "directory", "fifo", "missing", "devnull", "trailing"])
    expect, names = "error", ("line", "tree")
    path = os.path.join(workdir, f"t{int(rng.integers(10**9))}.tree")
    data: Optional[bytes] = None
    if how == "valid":
        expect = "ok"
    elif how == "nul":
        lines[-1] = lines[-1][:2] + "\x00" + lines[-1][2:]
    elif how == "nul-start":
        lines[-1] = "\x00" + lines[-1]
    elif how == "forward":
        lines[0] = f"n0 {n}"
    elif how == "noparent":
        lines[-1] = "lonely"
    elif how == "longname":
        lines[-1] = "x" * 300 + " -1"
    elif how == "bigint":
        lines[-1] = "n 99999999999999999999"
    elif how == "crlf":
        lines = [l + "\r" for l in lines]
        expect = "any"
    elif how == "blank":
        lines.insert(int(rng.integers(len(lines) + 1)), "")
    elif how == "binary":
        data = bytes(rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8))
        expect = "any"
    elif how == "utf8":
        lines[-1] = "été " + lines[-1].split()[1]
        expect = "ok"
    elif how == "hugeint":
        lines[-1] = "n 2147483648"
    elif how == "trailing":
        lines[-1] += " extra words"
        expect = "ok"
    if data is None:
        data = ("\n".join(lines) + "\n").encode()
    rng_seed = int(rng.integers(2**31))
    kind = how

    def run3() -> Any:
        target = _prepare_path(path, kind, data)
        t = pdl.read_tree(target)
        _use_tree(t, len(t.parent), rng_seed)
        return t
    if how in ("directory", "fifo", "missing", "devnull"):
        expect, names = "error", ("tree", path)
    return Case("tree", f"read_tree {how}", run3, expect, names, FILE_ERRORS)


def _prepare_path(path: str, kind: str, data: bytes) -> str:
    if kind == "directory":
        os.makedirs(path, exist_ok=True)
    elif kind == "fifo":
        if not os.path.exists(path):
            os.mkfifo(path)
    elif kind == "missing":
        pass
    elif kind == "devnull":
        return os.devnull
    else:
        with open(path, "wb") as f:
            f.write(data)
    return path


def _use_tree(tree: Any, n: int, seed: int) -> None:
    """Runs a [region] forward and detections with the tree (classes = n)."""
    rng = np.random.default_rng(seed)
    layer = pdl.RegionLayer(classes=n, anchors=[1.0, 1.0], tree=tree, temperature=float(pick(rng, [0.0, 1.0])),
                            softmax=True)
    h, w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    x = float_values(rng, (1, layer.channels, h, w))
    t = truth_rows(rng, 2, w, h, n)
    layer.forward(x, [t], seen=0)
    out = np.abs(np.tanh(x)).astype(np.float32)
    layer.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=float(rng.uniform(0, 1)))


# ---- labels ---------------------------------------------------------------------------

def gen_labels(rng: np.random.Generator, workdir: str) -> Case:
    r = rng.random()
    if r < 0.45:
        lines = [f"{int(rng.integers(0, 80))} {rng.uniform(0, 1):.6f} {rng.uniform(0, 1):.6f} "
                 f"{rng.uniform(0, 1):.6f} {rng.uniform(0, 1):.6f}" for _ in range(int(rng.integers(0, 5)))]
        how = pick(rng, ["valid", "nul-start", "nul-middle", "nan", "inf", "hex", "bigid", "negid", "float-id",
                         "few", "many", "binary", "crlf", "blank", "utf8-digits", "huge-line", "neg-zero",
                         "directory", "fifo", "missing", "devnull", "only-nul", "exponent", "spaces"])
        expect, names = "error", ("line",)
        i = int(rng.integers(len(lines) + 1))
        good = "3 0.5 0.5 0.2 0.2"
        bad = {"nul-start": "\x00" + good, "nul-middle": "3 0.5\x00 0.5 0.2 0.2", "nan": "3 nan 0.5 0.2 0.2",
               "inf": "3 0.5 inf 0.2 0.2", "bigid": "99999999999 0.5 0.5 0.2 0.2", "negid": "-2 0.5 0.5 0.2 0.2",
               "float-id": "2.5 0.5 0.5 0.2 0.2", "few": "3 0.5 0.5", "many": good + " 0.1",
               "utf8-digits": "３ 0.5 0.5 0.2 0.2", "only-nul": "\x00", "spaces": "  " + good + "  "}
        data: Optional[bytes] = None
        if how in bad:
            lines.insert(i, bad[how])
            if how == "spaces":
                expect = "ok"
        elif how == "valid":
            expect = "ok"
        elif how == "hex":
            lines.insert(i, "3 0x1p-1 0.5 0.2 0.2")
            expect = "ok"
        elif how == "neg-zero":
            lines.insert(i, "0 -0.0 0.5 0.2 0.2")
            expect = "ok"
        elif how == "exponent":
            lines.insert(i, "1 5e-1 5E-1 2e-1 1e0")
            expect = "ok"
        elif how == "crlf":
            lines = [l + "\r" for l in lines]
            expect = "ok"
        elif how == "blank":
            lines.insert(i, "   \t")
            expect = "ok"
        elif how == "binary":
            data = bytes(rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8))
            expect = "any"
        elif how == "huge-line":
            lines.insert(i, "1 " + "0" * 100000 + ".5 0.5 0.2 0.2")
            expect = "ok"
        if data is None:
            data = "\n".join(lines).encode("utf-8")
        path = os.path.join(workdir, f"l{int(rng.integers(10**9))}.txt")
        if how in ("directory", "fifo", "missing", "devnull"):
            expect, names = ("error", (path, "label")) if how != "devnull" else ("any", (os.devnull, "label"))
        kind = how

        def run() -> Any:
            target = _prepare_path(path, kind, data or b"")
            lab = pdl.read_labels(target)
            pdl.pack_truth([lab], "yolo")
            return lab
        return Case("labels", f"read_labels {how}", run, expect, names, FILE_ERRORS)
    # Labels built directly, and pack_truth.
    k = int(rng.integers(0, 5))
    ids = rng.integers(0, 10, k).astype(np.int32)
    boxes = rng.uniform(0, 1, (k, 4)).astype(np.float32)
    how = pick(rng, ["valid", "nan-box", "neg-id", "out-of-range", "float-ids", "int64-ids", "huge-id", "shape",
                     "float64-boxes", "masked", "misaligned", "list", "array-nan", "array-neg", "array-huge-id",
                     "array-frac", "aug-bad", "num_boxes", "flip", "layer", "not-list", "path"])
    expect, names = "error", ("Labels",)
    direct = rng.random() < 0.5
    rows: Any = None
    aug: Dict[str, Any] = {}
    lay: Any = pick(rng, ["yolo", "region"])
    if how == "valid":
        expect = "ok"
    elif how == "nan-box" and k:
        boxes[0, int(rng.integers(4))] = np.nan
        names = ("boxes", "NaN", "nan")
    elif how == "neg-id" and k:
        ids[0] = -1
        names = ("ids", "class")
    elif how == "out-of-range" and k:
        boxes[0, 0] = 1.5
        names = ("boxes",)
    elif how == "float-ids":
        ids = ids.astype(np.float32)
        names = ("ids",)
    elif how == "int64-ids":
        ids = ids.astype(np.int64)
        expect = "any"
    elif how == "huge-id":
        ids = ids.astype(np.int64)
        if k:
            ids[0] = 2**40
        else:
            expect = "any"
        names = ("ids",)
    elif how == "shape":
        boxes = boxes[:, :3]
        names = ("boxes",)
    elif how == "float64-boxes":
        boxes = boxes.astype(np.float64)
        names = ("boxes",)
    elif how == "masked":
        boxes = np.ma.masked_array(boxes, mask=np.ones(boxes.shape, bool))
        names = ("boxes",)
    elif how == "misaligned":
        boxes = misaligned(boxes)
        expect = "ok"
    elif how == "list":
        boxes = boxes.tolist()
        names = ("boxes",)
    elif how.startswith("array"):
        rows = np.concatenate([ids[:, None].astype(np.float32), boxes], axis=1)
        if k == 0:
            rows = np.array([[1, .5, .5, .2, .2]], np.float32)
        if how == "array-nan":
            rows[0, 2] = np.nan
        elif how == "array-neg":
            rows[0, 0] = -1
        elif how == "array-huge-id":
            rows[0, 0] = 3e9
        else:
            rows[0, 0] = 1.5
        names = ("labels[0]",)
    elif how == "aug-bad":
        name = pick(rng, ["dx", "dy", "sx", "sy"])
        v = pick(rng, BAD_REALS)
        aug[name] = v
        expect, names = ("ok" if real32_ok(v) else "error"), (name,)
    elif how == "num_boxes":
        v = pick(rng, BAD_INTS)
        aug["num_boxes"] = v
        lim = 90 if lay == "yolo" else 30
        expect, names = ("ok" if v is None or (is_int(v) and 0 <= int(v) <= lim) else "error"), ("num_boxes",)
    elif how == "flip":
        v = pick(rng, [True, False, 1, 0, 2, "yes", None, np.bool_(True)])
        aug["flip"] = v
        ok = isinstance(v, (bool, np.bool_)) or (is_int(v) and int(v) in (0, 1))
        expect, names = ("ok" if ok else "error"), ("flip",)
    elif how == "layer":
        lay = pick(rng, ["detection", None, 3, pdl.RegionLayer(classes=2, anchors=[1, 1], coords=5)])
        names = ("layer", "coords")
    elif how == "not-list":
        rows = "not a list"
        names = ("labels",)
    elif how == "path":
        def runp() -> Any:
            return pdl.Labels(ids=np.zeros(0, np.int32), boxes=np.zeros((0, 4), np.float32), path=5)
        return Case("labels", "Labels path=5", runp, "error", ("path",))
    else:
        expect = "ok"
    plain_boxes = boxes

    def run2() -> Any:
        if rows is not None:
            return pdl.pack_truth(rows if isinstance(rows, str) else [rows], lay, **aug)
        lab = pdl.Labels(ids=ids, boxes=boxes) if direct else pdl.Labels.from_arrays(ids, boxes)
        t = pdl.pack_truth([lab, lab], lay, **aug)
        if how == "misaligned":
            ref = pdl.pack_truth([pdl.Labels.from_arrays(ids, np.ascontiguousarray(plain_boxes))] * 2, lay, **aug)
            same(t, ref, "packed truth")
        return t
    return Case("labels", f"{'Labels' if direct else 'Labels.from_arrays'} / pack_truth: {how}", run2, expect,
                names + ("labels",))


# ---- boxes ------------------------------------------------------------------------------

def gen_boxes(rng: np.random.Generator) -> Case:
    shapes = [(4,), (3, 4), (2, 3, 4), (1, 4), (0, 4)]
    a = float_values(rng, pick(rng, shapes), wild=True)
    b = float_values(rng, pick(rng, [a.shape, (4,), (1, 4)]), wild=True)
    how = pick(rng, ["valid", "tuple", "misaligned", "strided", "float64", "big-endian", "masked", "shape5",
                     "no-broadcast", "0-d", "tuple-str", "tuple-short", "list-of-lists", "tuple-huge", "none"])
    expect, names = "error", ("a", "b")
    plain = (a, b)
    if how == "valid":
        expect = "ok"
    elif how == "tuple":
        a = tuple(float(v) for v in float_values(rng, (4,)))
        expect = "ok"
    elif how == "misaligned":
        a = misaligned(a)
        expect = "ok"
    elif how == "strided":
        b = strided(b)
        expect = "ok"
    elif how == "float64":
        a = a.astype(np.float64)
    elif how == "big-endian":
        b = b.astype(">f4")
    elif how == "masked":
        a = np.ma.masked_array(a, mask=np.ones(a.shape, bool))
    elif how == "shape5":
        a = np.zeros((2, 5), np.float32)
    elif how == "no-broadcast":
        a, b = np.zeros((3, 4), np.float32), np.zeros((2, 4), np.float32)
    elif how == "0-d":
        a = np.float32(1)
    elif how == "tuple-str":
        a = (1, 2, "3", 4)
    elif how == "tuple-short":
        a = (1, 2, 3)
    elif how == "list-of-lists":
        a = [[0.5, 0.5, 0.1, 0.1]] * 2
    elif how == "tuple-huge":
        a = (1e39, 0.5, 0.1, 0.1)
    else:
        a = None
    op = pick(rng, [pdl.box_iou, pdl.box_rmse])

    def run() -> Any:
        r = op(a, b)
        if how in ("misaligned", "strided"):
            same(r, op(np.ascontiguousarray(plain[0]), np.ascontiguousarray(plain[1])), "box result")
        return r
    return Case("boxes", f"{op.__name__} {how}", run, expect, names)


# ---- cfg text ---------------------------------------------------------------------------

def _example_text(name: str) -> str:
    return Path(pdl.example_cfg(name)).read_text()


#: The cfg values issue 11 lists as silently accepted or unclearly refused:
#: each must be refused, naming the file, the line and the key.
CFG_ISSUE = [
    ("filters", "６"), ("size", "３"), ("width", "-32"), ("height", "0"), ("batch", "-4"), ("filters", "-8"),
    ("stride", "0"), ("stride", "-2"), ("size", "200"), ("filters", "2147483648"), ("width", "1000000000"),
    ("subdivisions", "0"), ("channels", "-3"),
]


def gen_cfg_issue(rng: np.random.Generator, workdir: str) -> Case:
    name = pick(rng, ["tiny-yolov3", "tiny-yolov2"])
    lines = _example_text(name).split("\n")
    key, value = pick(rng, CFG_ISSUE)
    section = ""
    where = []
    for i, l in enumerate(lines):
        if l.startswith("["):
            section = l.strip()
        # A large kernel is refused where it outgrows a convolution's input;
        # a maxpool pads it by size-1 by default, a valid window.
        # A negative [upsample] stride is upstream's downsampling, a valid layer.
        if l.split("=")[0].strip() == key and (key != "size" or value != "200" or section == "[convolutional]") \
                and (key != "stride" or value != "-2" or section != "[upsample]"):
            where.append(i)
    if not where:
        key, value, where = "width", "-32", [i for i, l in enumerate(lines) if l.startswith("width")]
    i = int(pick(rng, where))
    if key == "size" and value == "200":
        # A kernel larger than its input, without padding: out_h < 0.  (The
        # section's own pad=1 would pad it by size/2, a valid layer.)
        start = max(k for k in range(i + 1) if lines[k].startswith("["))
        end = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("[")), len(lines))
        for k in range(start, end):
            if lines[k].split("=")[0].strip() == "pad":
                lines[k] = "pad=0"
        if not any(lines[k].split("=")[0].strip() == "pad" for k in range(start, end)):
            lines.insert(i + 1, "pad=0")
    lines[i] = f"{key}={value}"
    text = "\n".join(lines)
    path = os.path.join(workdir, "issue.cfg")

    def run() -> Any:
        return pdl.Network.from_text(text, path=path, base_dir=workdir)
    return Case("cfg", f"cfg-issue: {name} line {i + 1}: {key}={value}", run, "error", (key,),
                (TypeError, ValueError), require=("issue.cfg", f"line {i + 1}"))


def gen_cfg(rng: np.random.Generator, workdir: str) -> Case:
    if rng.random() < 0.3:
        return gen_cfg_issue(rng, workdir)
    name = pick(rng, ["tiny-yolov3", "tiny-yolov2"])
    lines = _example_text(name).split("\n")
    k = int(pick(rng, [0, 1, 1, 2, 3]))
    labels = []
    expect = "any" if k else "ok"
    for _ in range(k):
        i = int(rng.integers(len(lines)))
        line = lines[i]
        how = pick(rng, ["value", "value", "delete", "duplicate", "section", "nul", "nonascii-digit", "bytes",
                         "crlf", "garbage", "empty-value", "negative", "huge", "zero", "float-int", "hex",
                         "route", "anchors", "mask"])
        if "=" in line and how in ("value", "nonascii-digit", "empty-value", "negative", "huge", "zero",
                                   "float-int", "hex"):
            key, _, val = line.partition("=")
            new = {"value": pick(rng, ["-1", "0", "1", "2147483648", "1e39", "nan", "x", "3.7", " ", "-32",
                                       "99999999999999999999", "0x10", "1,2,3", "-0"]),
                   "nonascii-digit": "６", "empty-value": "", "negative": "-" + val.strip(), "huge": "1000000000",
                   "zero": "0", "float-int": val.strip() + ".9", "hex": "0x" + val.strip()}[how]
            lines[i] = f"{key}={new}"
            labels.append(f"line {i + 1}: {key}={new}")
        elif how == "delete":
            labels.append(f"delete line {i + 1} ({line[:20]!r})")
            del lines[i]
        elif how == "duplicate":
            lines.insert(i, line)
            labels.append(f"duplicate line {i + 1}")
        elif how == "section":
            s = pick(rng, ["[net]", "[yolo]", "[region]", "[route]", "[unknown]", "[", "[]", "[convolutional]"])
            lines.insert(i, s)
            labels.append(f"insert {s} at {i + 1}")
        elif how == "nul":
            lines[i] = line[:1] + "\x00" + line[1:]
            labels.append(f"NUL in line {i + 1}")
        elif how == "bytes":
            lines[i] = "".join(chr(int(c)) for c in rng.integers(1, 0x3000, 8))
            labels.append(f"random chars at line {i + 1}")
        elif how == "crlf":
            lines = [l + "\r" for l in lines]
            labels.append("CRLF")
        elif how == "garbage":
            lines.insert(i, pick(rng, ["=", "==", "key", "=value", "a=b=c", "\t", "#x=1", ";", "filters="]))
            labels.append(f"garbage at {i + 1}")
        elif how == "route":
            lines.insert(i, pick(rng, ["layers=-100", "layers=999", "layers=", "layers=-1,-1000"]))
            labels.append(f"route layers at {i + 1}")
        elif how == "anchors":
            lines.insert(i, pick(rng, ["anchors=1e300,1", "anchors=-1,-1", "anchors=nan,1", "anchors=,,,"]))
            labels.append(f"anchors at {i + 1}")
        else:
            lines.insert(i, pick(rng, ["mask=99", "mask=-1", "mask=", "num=0", "num=-3", "classes=-1",
                                       "classes=0", "max=1000000"]))
            labels.append(f"mask/num/classes at {i + 1}")
    text = "\n".join(lines)
    seed = int(rng.integers(2**31))

    def run() -> Any:
        net = pdl.Network.from_text(text, path=os.path.join(workdir, "fuzz.cfg"), base_dir=workdir)
        r = np.random.default_rng(seed)
        layers = net.loss_layers
        if layers and all(net.layers[i].outputs * max(net.batch, 1) < 2_000_000 for i, _ in layers):
            b = max(1, min(net.batch, 2))
            xs = [float_values(r, (b,) + net.layers[i].shape) for i, _ in layers]
            kind = "yolo" if isinstance(layers[0][1], pdl.YoloLayer) else "region"
            t = [truth_rows(r, 2, 1, 1, 1) for _ in range(b)]
            net.forward(xs, t if kind == "yolo" else t, seen=0)
        return net
    return Case("cfg", "cfg " + name + ": " + ("; ".join(labels) or "as bundled"), run, expect,
                (), (TypeError, ValueError, FileNotFoundError, IsADirectoryError))


# ---- golden files ------------------------------------------------------------------------

def _golden_files() -> List[Path]:
    return sorted(GOLDEN.glob("*.npz"))[:20]


def gen_golden(rng: np.random.Generator, workdir: str) -> Case:
    files = _golden_files()
    src = files[int(rng.integers(len(files)))]
    with np.load(src, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    how = pick(rng, ["valid", "drop-key", "dtype", "shape", "object", "truncate", "random-bytes", "bad-json",
                     "json-type", "huge-params", "kind", "empty", "not-zip", "nan-cost", "scalar-input",
                     "params-tree", "dir"])
    expect = "error"
    path = os.path.join(workdir, f"g{int(rng.integers(10**9))}.npz")
    raw: Optional[bytes] = None
    if how == "valid":
        # Cases tagged x_times_w_eq_w hold a truth upstream writes out of bounds with: refused by design.
        expect = "any" if "x_times_w_eq_w" in str(d.get("tags", "")) else "ok"
    elif how == "drop-key":
        d.pop(pick(rng, sorted(d)))
        expect = "any"
    elif how == "dtype":
        k = pick(rng, ["input", "truth", "output", "delta", "stats"])
        d[k] = d[k].astype(np.float64)
        expect = "any"
    elif how == "shape":
        k = pick(rng, ["input", "truth", "output", "delta"])
        d[k] = d[k].reshape(-1)[:-1] if d[k].size else d[k]
        expect = "any"
    elif how == "object":
        d["input"] = np.array([{"evil": 1}], dtype=object)
    elif how == "bad-json":
        d["params"] = np.array("{not json")
    elif how == "json-type":
        d["params"] = np.array(json.dumps(pick(rng, [[1, 2], "x", 5, None, {"classes": "many"}])))
        expect = "any"
    elif how == "huge-params":
        p = json.loads(str(d["params"]))
        p[pick(rng, ["classes", "w", "h", "batch", "net_w"])] = pick(rng, [2**40, -1, 0, 1.5])
        d["params"] = np.array(json.dumps(p))
        expect = "any"
    elif how == "kind":
        d["kind"] = np.array(pick(rng, ["detection", "", "region!"]))
    elif how == "nan-cost":
        d["cost"] = np.float32(np.nan)
        expect = "any"
    elif how == "scalar-input":
        d["input"] = np.float32(1)
    elif how == "params-tree":
        p = json.loads(str(d["params"]))
        p["tree"] = pick(rng, ["/dev/null", "../../../../etc/passwd", "/", "nope.tree"])
        d["params"] = np.array(json.dumps(p))
        expect = "any"
    if how in ("truncate", "random-bytes", "not-zip", "empty"):
        buf = io.BytesIO()
        np.savez(buf, **d)
        full = buf.getvalue()
        raw = {"truncate": full[:int(rng.integers(1, len(full)))],
               "random-bytes": bytes(rng.integers(0, 256, 500, dtype=np.uint8)),
               "not-zip": b"just text", "empty": b""}[how]
    kind = how

    def run() -> Any:
        if kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif raw is not None:
            with open(path, "wb") as f:
                f.write(raw)
        elif kind == "object":
            with open(path, "wb") as f:
                np.savez(f, **{k: v for k, v in d.items()})
        else:
            np.savez(path, **d)
        case = pdl_golden.GoldenCase.load(path, base_dir=workdir)
        res = case.run()
        case.check({"output": res.output, "delta": res.delta, "cost": res.cost})
        return case
    return Case("golden", f"golden {src.name}: {how}", run, expect,
                (os.path.basename(path),) if expect == "error" else (),
                (TypeError, ValueError, FileNotFoundError, IsADirectoryError))


# ---- CLI arguments -------------------------------------------------------------------------

class _Exit(Exception):
    pass


def gen_cli(rng: np.random.Generator, workdir: str) -> Case:
    out = os.path.join(workdir, f"o{int(rng.integers(10**9))}")
    golden_dir = str(GOLDEN)
    layer_json = os.path.join(workdir, "layer.json")
    choices = [
        ["info"], ["demo", "--seed", pick(rng, ["abc", "-1", "99999999999999999999999", "1.5", ""])],
        ["golden", "export", "--layer-json", layer_json, "--cases", pick(rng, ["1", "0", "-3", "x", "1e3"]),
         "--out", out],
        ["golden", "export", "--cfg", pick(rng, ["/nonexistent.cfg", workdir, "/dev/null"]), "--out", out],
        ["golden", "export", "--layer-json", pick(rng, ["/nonexistent.json", workdir]), "--out", out],
        ["golden", "export", "--cases", "1", "--out", out],
        ["check", "--golden", pick(rng, [golden_dir, "/nonexistent", workdir, "/dev/null"]),
         "--actual", pick(rng, [workdir, "/nonexistent", golden_dir])],
        ["check", "--golden", golden_dir, "--actual", workdir,
         pick(rng, ["--atol", "--rtol", "--max-ulp"]), pick(rng, ["nan", "-1", "inf", "x", "1e400", "-5"])],
        [pick(rng, ["", "--help-me", "golden", "nope", "\x00", "check"])],
        [],
    ]
    argv = [str(a) for a in pick(rng, choices)]
    layer_text = pick(rng, [
        json.dumps({"kind": "yolo", "classes": 2, "anchors": [10, 13, 16, 30], "w": 2, "h": 2, "batch": 1,
                    "net_w": 64, "net_h": 64}),
        json.dumps({"kind": "region", "classes": 2, "anchors": [1, 1], "w": 2, "h": 2, "batch": 1}),
        json.dumps({"kind": "yolo", "classes": -1, "anchors": [10, 13], "w": 2, "h": 2, "batch": 1}),
        json.dumps({"kind": "yolo", "classes": 2, "anchors": [10, 13], "w": 2**20, "h": 2**20, "batch": 9}),
        json.dumps([1, 2]), "{bad json", json.dumps({"kind": "mystery"}),
        json.dumps({"kind": "region", "classes": 2, "anchors": [1, 1], "w": 1, "h": 1, "batch": 1,
                    "tree": "/etc/passwd"}),
    ])
    # Leave the workload small: a demo takes a while; a huge export is refused or tiny.
    if argv and argv[0] == "demo" and argv[-1] == "":
        argv = argv[:-1]

    def run() -> Any:
        with open(layer_json, "w") as f:
            f.write(layer_text)
        with contextlib.redirect_stdout(io.StringIO()) as so, contextlib.redirect_stderr(io.StringIO()) as se:
            try:
                code = pdl_cli.main(list(argv))
            except SystemExit as e:
                code = e.code
        text = so.getvalue() + se.getvalue()
        if code not in (0, None):
            if isinstance(code, str):
                text += code
            if not text.strip():
                raise WrongResult(f"exit status {code!r} with no message")
            raise ValueError(f"CLI exited {code!r}: {text.strip()[-300:]}")
        return code
    return Case("cli", "pydarknet-loss " + " ".join(repr(a) if (" " in a or not a) else a for a in argv)
                + (f" [layer.json {layer_text[:60]}]" if "--layer-json" in argv else ""), run, "any")


# ---- the named cases of issue 11 ----------------------------------------------------------------

def _yl(**kw: Any) -> Any:
    args = dict(classes=3, anchors=[10, 13, 16, 30, 33, 23], mask=[0, 1, 2])
    args.update(kw)
    return pdl.YoloLayer(**args)


def _rl(**kw: Any) -> Any:
    args: Dict[str, Any] = dict(classes=3, anchors=[1.0, 1.0, 2.0, 2.0])
    args.update(kw)
    return pdl.RegionLayer(**args)


def _yx(l: Any, b: int = 1, h: int = 2, w: int = 2) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((b, l.channels, h, w)).astype(np.float32)


def _ytruth(b: int = 1, rows: int = 90, cols: int = 5) -> np.ndarray:
    t = np.zeros((b, rows, cols), np.float32)
    t[:, 0, :5] = [0.3, 0.3, 0.2, 0.2, 1]
    t[:, 1, :5] = [0.7, 0.6, 0.4, 0.3, 2]
    return t


def c_out_alias_truth_yolo() -> Any:
    l = _yl()
    x = _yx(l, 2, 3, 3)
    buf = np.zeros(x.size + 2 * 90 * 5, np.float32)
    output = buf[:x.size].reshape(x.shape)
    truth = buf[x.size - 10:x.size - 10 + 900].reshape(2, 90, 5)
    truth[...] = _ytruth(2)
    return l.forward(x, truth, out=(output, np.zeros_like(x)))


def c_out_alias_truth_region() -> Any:
    l = _rl()
    x = _yx(l, 1, 3, 3)
    t = _ytruth(1, 30)
    buf = np.zeros(x.size + t.size, np.float32)
    delta = buf[t.size // 2:t.size // 2 + x.size].reshape(x.shape)
    truth = buf[:t.size].reshape(t.shape)
    truth[...] = t
    return l.forward(x, truth, out=(np.zeros_like(x), delta))


def _tree_layer(temperature: float) -> Any:
    return pdl.RegionLayer(classes=14, anchors=[1.0, 1.0], tree=SMALL_TREE, temperature=temperature, softmax=True)


def c_tree_hang_negative_thresh() -> Any:
    l = _tree_layer(1.0)
    out = np.abs(np.tanh(_yx(l, 1, 2, 2))).astype(np.float32)
    out[0, 5:] = 0  # every class probability 0: no group has a best above 0
    return l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=-0.01)


def c_tree_hang_temperature0() -> Any:
    l = _tree_layer(0.0)
    x = _yx(l, 1, 1, 1)
    out = l.forward(x, train=False).output  # NaN tree probabilities at temperature 0
    return l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=-0.5)


def _small_tree_arrays() -> Dict[str, np.ndarray]:
    t = pdl.read_tree(SMALL_TREE)
    return {k: np.array(getattr(t, k)) for k in TREE_FIELDS}


def _use_direct_tree(arrays: Dict[str, np.ndarray]) -> Any:
    tree = pdl.Tree(**arrays)
    l = pdl.RegionLayer(classes=14, anchors=[1.0, 1.0], tree=tree, temperature=1.0, softmax=True)
    x = _yx(l, 1, 1, 1)
    t = np.zeros((1, 30, 5), np.float32)
    t[0, 0] = [0.5, 0.5, 0.2, 0.2, 13]
    l.forward(x, t)
    out = np.abs(np.tanh(x)).astype(np.float32)
    return l.detections(out, img_w=10, img_h=10, net_w=10, net_h=10, tree_thresh=0.1)


def c_tree_child_out_of_range() -> Any:
    a = _small_tree_arrays()
    a["child"][3] = 10**6
    return _use_direct_tree(a)


def c_tree_short_group() -> Any:
    a = _small_tree_arrays()
    a["group"] = a["group"][:3]
    return _use_direct_tree(a)


def c_tree_int64_group_offset() -> Any:
    a = _small_tree_arrays()
    a["group_offset"] = a["group_offset"].astype(np.int64)
    a["group_offset"][1] = 2**33 + 1
    return _use_direct_tree(a)


def c_labels_direct_negative() -> Any:
    lab = pdl.Labels(ids=np.array([-7], np.int32), boxes=np.array([[np.nan, 0.5, 0.2, 0.2]], np.float32))
    return pdl.pack_truth([lab])


def c_misaligned_x() -> Any:
    l = _yl()
    x = _yx(l, 1, 3, 3)
    mx = misaligned(x)
    a = l.forward(mx, _ytruth(1), net_w=64, net_h=64)
    b = l.forward(x, _ytruth(1), net_w=64, net_h=64)
    same(a.delta, b.delta, "delta")
    return a


def c_attr_anchors_shorter() -> Any:
    l = _yl(anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119], mask=[3, 4, 5])
    l.anchors = np.array([10, 13], np.float32)
    return l.forward(_yx(l), _ytruth(1))


def c_attr_anchors_bypass() -> Any:
    l = _yl(anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119], mask=[3, 4, 5])
    object.__setattr__(l, "anchors", np.array([10, 13], np.float32))
    return l.forward(_yx(l), _ytruth(1))


def c_pack_nan_box() -> Any:
    return pdl.pack_truth([np.array([[1, np.nan, 0.5, 0.2, 0.2]], np.float32)])


def c_pack_negative_class() -> Any:
    return pdl.pack_truth([np.array([[-3, 0.5, 0.5, 0.2, 0.2]], np.float32)])


def c_thresh_1e39() -> Any:
    return _rl(thresh=1e39)


def c_object_scale_1e39() -> Any:
    return _rl(object_scale=1e39)


def c_anchors_array_1e300() -> Any:
    return _yl(anchors=np.array([1e300, 1.0]), mask=[0])


def c_anchors_list_1e300() -> Any:
    return _yl(anchors=[1e300, 1.0], mask=[0])


def c_label_nul_line(workdir: str) -> Any:
    p = os.path.join(workdir, "nul.txt")
    with open(p, "wb") as f:
        f.write(b"1 0.5 0.5 0.2 0.2\n\x00 junk that is not a label\n")
    return pdl.read_labels(p)


def c_masked_x() -> Any:
    l = _yl()
    x = _yx(l)
    mx = np.ma.masked_array(x, mask=np.zeros(x.shape, bool))
    mx.mask[0, 0] = True
    return l.forward(mx, _ytruth(1))


def c_net_w_2_31() -> Any:
    l = _yl()
    return l.forward(_yx(l), _ytruth(1), net_w=2**31)


def c_net_h_2_31() -> Any:
    l = _yl()
    return l.forward(_yx(l), _ytruth(1), net_h=2**31)


def c_index_2_31() -> Any:
    l = _yl()
    return l.forward(_yx(l), _ytruth(1), index=2**31)


def c_region_huge_coords() -> Any:
    l = _rl(classes=1, anchors=[1.0, 1.0], coords=71582788)
    return l  # the layer itself: its truth stride 30*(coords+1) does not fit a C int


def c_label_dir(workdir: str) -> Any:
    return pdl.read_labels(workdir)


def c_label_fifo(workdir: str) -> Any:
    p = os.path.join(workdir, "fifo.txt")
    if not os.path.exists(p):
        os.mkfifo(p)
    return pdl.read_labels(p)


def c_label_device(workdir: str) -> Any:
    return pdl.read_labels("/dev/zero")


def c_tree_dir(workdir: str) -> Any:
    return pdl.read_tree(workdir)


def c_detections_order_index() -> Any:
    d = pdl.Detections(bbox=np.zeros((3, 4), np.float32), objectness=np.ones(3, np.float32),
                       prob=np.ones((3, 2), np.float32), order=np.zeros(1, np.int32))
    return pdl.nms_sort(d)


def c_detections_prob_reshaped() -> Any:
    d = pdl.Detections(bbox=np.ones((2, 4), np.float32), objectness=np.ones(2, np.float32),
                       prob=np.ones((2, 6), np.float32))
    d.prob.shape = (6, 2)  # metadata changed in place after validation
    return pdl.nms_sort(d)


def c_relative_array() -> Any:
    l = _yl()
    return l.detections(np.abs(_yx(l)), img_w=10, img_h=10, relative=np.array([True, False]))


def c_classes_huge() -> Any:
    return _yl(classes=2**40)


def c_number_10_400() -> Any:
    return _yl(ignore_thresh=10**400)


#: (expected outcome, names the message must contain, the call, exception types allowed, needs workdir)
CORPUS: List[Tuple[str, str, str, Tuple[str, ...], Callable[..., Any], Tuple[type, ...], bool]] = [
    ("yolo", "1 out= output aliases the truth ([yolo])", "error", ("truth",), c_out_alias_truth_yolo, CLEAN, False),
    ("region", "1 out= delta aliases the truth ([region])", "error", ("truth",), c_out_alias_truth_region, CLEAN,
     False),
    ("detections", "2 tree detections, tree_thresh=-0.01, zero probabilities", "error", ("tree_thresh",),
     c_tree_hang_negative_thresh, CLEAN, False),
    ("detections", "2 tree detections at temperature 0 (NaN), tree_thresh=-0.5", "error", ("tree_thresh",),
     c_tree_hang_temperature0, CLEAN, False),
    ("tree", "3 Tree(...) with child[3] = 10**6", "error", ("child",), c_tree_child_out_of_range, CLEAN, False),
    ("tree", "3 Tree(...) with a 3-entry group array", "error", ("group",), c_tree_short_group, CLEAN, False),
    ("tree", "3 Tree(...) with an int64 group_offset of 2**33+1", "error", ("group_offset",),
     c_tree_int64_group_offset, CLEAN, False),
    ("labels", "3 Labels(...) with class -7 and a NaN box, packed", "error", ("ids", "boxes"),
     c_labels_direct_negative, CLEAN, False),
    ("yolo", "4 x: float32 at an odd byte offset (same bits as aligned)", "ok", (), c_misaligned_x, CLEAN, False),
    ("yolo", "5 layer.anchors = a shorter array", "error", ("anchors",), c_attr_anchors_shorter, (AttributeError,),
     False),
    ("yolo", "5 anchors replaced bypassing __setattr__", "error", ("anchors",), c_attr_anchors_bypass, CLEAN, False),
    ("labels", "6 pack_truth of a NaN box", "error", ("labels[0]",), c_pack_nan_box, CLEAN, False),
    ("labels", "6 pack_truth of class id -3", "error", ("labels[0]",), c_pack_negative_class, CLEAN, False),
    ("region", "6 RegionLayer(thresh=1e39)", "error", ("thresh",), c_thresh_1e39, CLEAN, False),
    ("region", "6 RegionLayer(object_scale=1e39)", "error", ("object_scale",), c_object_scale_1e39, CLEAN, False),
    ("yolo", "6 anchors=np.array([1e300, 1.0])", "error", ("anchors",), c_anchors_array_1e300, CLEAN, False),
    ("yolo", "6 anchors=[1e300, 1.0]", "error", ("anchors",), c_anchors_list_1e300, CLEAN, False),
    ("labels", "6 a label line starting with NUL", "error", ("line 2",), c_label_nul_line, CLEAN, True),
    ("yolo", "6 a masked array as x", "error", ("x",), c_masked_x, CLEAN, False),
    ("yolo", "7 net_w = 2**31", "error", ("net_w",), c_net_w_2_31, CLEAN, False),
    ("yolo", "7 net_h = 2**31", "error", ("net_h",), c_net_h_2_31, CLEAN, False),
    ("yolo", "7 index = 2**31", "error", ("index",), c_index_2_31, CLEAN, False),
    ("region", "7 RegionLayer(coords=71582788): truth stride overflows int", "error", ("coords",),
     c_region_huge_coords, CLEAN, False),
    ("labels", "7 read_labels of a directory", "error", ("directory",), c_label_dir, FILE_ERRORS, True),
    ("labels", "7 read_labels of a FIFO", "error", ("FIFO",), c_label_fifo, FILE_ERRORS, True),
    ("labels", "7 read_labels of a character device", "error", ("device",), c_label_device, FILE_ERRORS, True),
    ("tree", "7 read_tree of a directory", "error", ("directory",), c_tree_dir, FILE_ERRORS, True),
    ("nms", "7 Detections with a 1-entry order for 3 detections", "error", ("order",), c_detections_order_index,
     CLEAN, False),
    ("nms", "7 Detections.prob reshaped in place after construction", "error", ("prob",),
     c_detections_prob_reshaped, CLEAN, False),
    ("detections", "7 relative=np.array([True, False])", "error", ("relative",), c_relative_array, CLEAN, False),
    ("yolo", "7 YoloLayer(classes=2**40)", "error", ("classes",), c_classes_huge, CLEAN, False),
    ("yolo", "7 YoloLayer(ignore_thresh=10**400)", "error", ("ignore_thresh",), c_number_10_400, CLEAN, False),
]


def corpus_case(number: int, workdir: str) -> Case:
    target, label, expect, names, fn, errors, needs_dir = CORPUS[number]
    run = (lambda: fn(workdir)) if needs_dir else fn
    return Case(target, "issue 11 #" + label, run, expect, names, errors)


# ---- dispatch ---------------------------------------------------------------------------------

#: (weight, target): how often each target is drawn.
TARGETS: List[Tuple[float, str]] = [
    (5, "yolo"), (5, "region"), (3, "ab_yolo"), (3, "detections"), (2, "nms"), (2, "tree"), (2, "labels"), (1, "boxes"),
    (2, "cfg"), (1, "golden"), (0.5, "cli"), (2, "hankai_yolo"), (2, "gaussian_yolo"), (2, "more_layers"),
    # issue 22 (surfaces22.py): hostile files, AlexeyAB's constructor, compare's options, torch tensors
    (1.5, "hostile"), (1, "ab_ctor"), (1, "compare_opts"), (1, "tensors")]


#: When set (python -m fuzz --only ...), only these targets are drawn (case numbers then differ).
ONLY: List[str] = []


def make_case(seed: int, number: int, workdir: str) -> Case:
    if number < len(CORPUS) and not ONLY:
        return corpus_case(number, workdir)
    rng = np.random.default_rng([seed, number])
    target = _choose(rng, [(w, t) for w, t in TARGETS if not ONLY or t in ONLY])
    if target in ("yolo", "region"):
        return gen_layer(rng, target)
    if target == "ab_yolo":
        return gen_ab(rng)
    if target == "hankai_yolo":
        return gen_ab(rng, "hankai")
    if target == "gaussian_yolo":
        return gen_gauss(rng)
    if target == "more_layers":  # issue 23
        return gen_more(rng)
    if target == "detections":
        return gen_detections(rng)
    if target == "nms":
        return gen_nms(rng)
    if target == "tree":
        return gen_tree(rng, workdir)
    if target == "labels":
        return gen_labels(rng, workdir)
    if target == "boxes":
        return gen_boxes(rng)
    if target == "cfg":
        return gen_cfg(rng, workdir)
    if target == "golden":
        return gen_golden(rng, workdir)
    if target in S22:
        from . import surfaces22
        gen = getattr(surfaces22, S22[target])
        return gen(rng, workdir) if target == "hostile" else gen(rng)
    return gen_cli(rng, workdir)


#: Issue 22's targets and their generators (tests/fuzz/surfaces22.py).
S22 = {"hostile": "gen_hostile", "ab_ctor": "gen_ab_ctor", "compare_opts": "gen_compare_opts",
       "tensors": "gen_tensors"}

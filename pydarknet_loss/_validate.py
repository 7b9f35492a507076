"""Every input rule in one place, with messages that say what was expected.

Nothing here converts silently: a wrong dtype is an error, not a cast; a list
where an array is expected is an error, not a conversion; a number that a C
float or int cannot hold is an error, not an inf or a wrapped value; a masked
array is an error (the C core would read the masked values too).  The one
thing done quietly is copying a float32 array that is not C-contiguous or not
aligned into a contiguous, aligned one (the same values in the same logical
layout): nothing unaligned ever reaches C.
"""
from __future__ import annotations

import errno
import io
import math
import numbers
import operator
import os
import stat
import warnings
from typing import Any, Dict, Optional, Sequence

import numpy as np

INT_MAX = 2**31 - 1
INT_MIN = -2**31
FLT_MAX = float(np.finfo(np.float32).max)
#: More anchors than this in one layer is an absurd size, refused before allocating (issue 11).
MAX_ANCHORS = 2**20


class DarknetQuirkWarning(UserWarning):
    """Upstream darknet will do something surprising (but defined) with this input."""


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:40] + "..." + r[-12:]


def integer(name: str, value: Any, *, minimum: Optional[int] = None,
            maximum: Optional[int] = None) -> int:
    """An int (or NumPy integer); bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {_short(value)}")
    v = operator.index(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_short(v)}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_short(v)}")
    return v


def c_int(name: str, value: Any, *, minimum: int = INT_MIN, maximum: int = INT_MAX) -> int:
    """An integer the C core holds in an `int` (within [minimum, maximum])."""
    if type(value) is int and minimum <= value <= maximum:  # the common case, fast
        return value
    v = integer(name, value)
    if not minimum <= v <= maximum:
        if v > INT_MAX or v < INT_MIN:
            raise ValueError(f"{name} = {_short(v)} does not fit the C core's int: expected "
                             f"{minimum} <= {name} <= {maximum}")
        raise ValueError(f"{name} must be {'>= %d' % minimum if v < minimum else '<= %d' % maximum}, got {v}")
    return v


def number(name: str, value: Any) -> float:
    """A real number (bools, strings and complex numbers refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_short(value)}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return float(value)
    except OverflowError:
        raise ValueError(f"{name} = {_short(value)} is too large for a real number: expected a finite value "
                         f"within float32's range (|{name}| <= {FLT_MAX:.9g})") from None


def real32(name: str, value: Any) -> np.float32:
    """A finite real number that stays finite as a float32, rounded to float32
    as darknet's float fields are (upstream would store 1e39 as inf)."""
    v = number(name, value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    with np.errstate(over="ignore"):
        f = np.float32(v)
    if not np.isfinite(f):
        raise ValueError(f"{name} = {v!r} does not fit a float32 (darknet's type for it), where it would "
                         f"become inf: expected |{name}| <= {FLT_MAX:.9g}")
    return f


def not_masked(name: str, a: Any) -> None:
    """Masked arrays are refused: the C core would read the masked values."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy masked array: the oracle would read the masked values as well "
                        f"(their mask means nothing to darknet); pass {name}.filled(value) or a plain ndarray")


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only copy of `a` that cannot be made writable again (its memory
    is an immutable bytes object): a layer's arrays stay what was validated."""
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=a.dtype).reshape(a.shape)


def int_array(name: str, values: Any, *, allow_empty: bool = False) -> np.ndarray:
    """A 1-D sequence of integers as a new C-contiguous, aligned int32 array."""
    not_masked(name, values)
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise TypeError(f"{name} must be a 1-D integer array, got {values.dtype} of shape {values.shape}")
        wide = values.astype(np.int64) if values.dtype.kind == "i" or values.dtype.itemsize < 8 else None
        if wide is None:  # uint64: compare before any cast
            bad = np.flatnonzero(values > np.uint64(INT_MAX))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"{name}[{i}] = {int(values[i])} does not fit a C int")
            wide = values.astype(np.int64)
        bad = np.flatnonzero((wide < INT_MIN) | (wide > INT_MAX))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name}[{i}] = {int(wide[i])} does not fit a C int")
        out = wide.astype(np.int32)
    elif isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
        items = [integer(f"{name}[{i}]", v) for i, v in enumerate(values)]
        for i, v in enumerate(items):
            if not INT_MIN <= v <= INT_MAX:
                raise ValueError(f"{name}[{i}] = {_short(v)} does not fit a C int")
        out = np.array(items, dtype=np.int32)
    else:
        raise TypeError(f"{name} must be a list of integers, got {type(values).__name__}")
    if not out.size and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return out


def anchors32(values: Any, *, pairs: bool = True) -> np.ndarray:
    """Anchor sizes as float32 (upstream: atof, then stored in a float): an
    array follows the same rules as a list, value by value.  Checked at
    NumPy speed (a value is looked at on its own only to word a refusal);
    more than ``2 * MAX_ANCHORS`` values are refused before any is read."""
    not_masked("anchors", values)
    if isinstance(values, np.ndarray):
        if values.ndim != 1 or values.dtype.kind not in "iuf":
            raise TypeError(f"anchors must be a 1-D numeric array, got {values.dtype} of shape {values.shape}")
        seq: Sequence[Any] = values
    elif isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
        seq = values
    else:
        raise TypeError(f"anchors must be a list of numbers (w, h pairs), got {type(values).__name__}")
    if len(seq) > 2 * MAX_ANCHORS:
        raise ValueError(f"anchors holds {len(seq)} values: more than {2 * MAX_ANCHORS} ({MAX_ANCHORS} pairs) is "
                         "refused before any is read (darknet cfgs use a handful)")
    f32 = _reals32(seq)
    for i in np.flatnonzero(~np.isfinite(f32)).tolist():
        # The per-value rule words the refusal (and takes whatever the fast path could not read).
        f32[i] = real32(f"anchors[{i}]", seq[i])
    if pairs and not len(f32):
        raise ValueError("anchors must not be empty")
    if pairs and len(f32) % 2:
        raise ValueError(f"anchors must come in (w, h) pairs, got {len(f32)} values")
    bad = np.flatnonzero(~(f32 > 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"anchors[{i}] = {_short(seq[i])} is {float(f32[i])!r} as a float32: anchor sizes must be "
                         "positive and finite")
    return f32


def _reals32(seq: Sequence[Any]) -> np.ndarray:
    """What real32() makes of each value (float(v), then float32), as one
    float32 array; NaN where real32() would refuse the value (the caller
    asks real32() why)."""
    if isinstance(seq, np.ndarray):
        if seq.dtype.kind in "iu" or seq.dtype.itemsize <= 8:  # correctly rounded, as float(v) is
            wide = seq.astype(np.float64)
        else:  # long doubles: Python's float() of each, as real32() takes it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wide = np.array([float(v) for v in seq.tolist()], dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            return wide.astype(np.float32)
    if set(map(type, seq)) <= {float, int, np.float64, np.float32}:
        try:
            wide = np.array(seq, dtype=np.float64)
        except OverflowError:  # an int beyond a double: value by value below
            pass
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                return wide.astype(np.float32)
    out = np.empty(len(seq), dtype=np.float64)
    for i, v in enumerate(seq):
        t = type(v)
        if t is float or t is int or t is np.float64 or t is np.float32:
            try:
                out[i] = v
            except OverflowError:  # an int beyond a double
                out[i] = np.nan
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
            out[i] = np.nan
        else:
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    out[i] = float(v)
            except (OverflowError, TypeError, ValueError):
                out[i] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):
        return out.astype(np.float32)


def biases(anchors: Any, count: Any, count_name: str, per_anchor: int = 2) -> tuple:
    """(count, biases): anchors into a float32 array of 2*count values, the
    rest at upstream's 0.5.  count defaults to the number of pairs; when it is
    given, fewer values (even an odd number, as a cfg can hold) are allowed,
    as upstream's parser allows them."""
    if anchors is None:
        if count is None:
            raise ValueError(f"give anchors (w, h pairs) or {count_name}")
        values = np.zeros(0, dtype=np.float32)
    else:
        values = anchors32(anchors, pairs=count is None)
    n = len(values) // 2 if count is None else c_int(count_name, count, minimum=1)
    anchor_count(n, count_name)
    if n * max(2, per_anchor) > INT_MAX:
        raise ValueError(f"{count_name} = {n} anchors" + (f" of coords+1+classes = {per_anchor} channels each" if per_anchor > 2 else
                         " (2 values each)") + f" do not fit the C core's int (<= {INT_MAX})")
    if len(values) > 2 * n:
        raise ValueError(f"anchors give {len(values)} values ({len(values) / 2:g} pairs) but {count_name} is {n}: "
                         "upstream would write past its biases")
    b = np.full(2 * n, 0.5, dtype=np.float32)
    b[:len(values)] = values
    return n, b


def flag(name: str, value: Any) -> int:
    """A 0/1 option (bool or int), as darknet's cfg ints are used."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be a bool (or 0 or 1), got {type(value).__name__} {_short(value)}")
    v = operator.index(value)
    if v not in (0, 1):
        raise ValueError(f"{name} must be 0 or 1 (or a bool), got {_short(v)}")
    return v


def class_map(values: Any, classes: int) -> Optional[np.ndarray]:
    if values is None:
        return None
    m = int_array("map", values)
    bad = np.flatnonzero((m < 0) | (m >= classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"map[{i}] = {int(m[i])} sends a class outside [0, {classes})")
    return m


# ---- torch tensors (issue 19): read into NumPy, dtype kept, never cast ----

def is_torch_tensor(a: Any) -> bool:
    """Whether `a` is a torch.Tensor (without importing torch)."""
    return type(a).__module__.split(".")[0] == "torch" and hasattr(a, "detach") and hasattr(a, "cpu")


def host_array(name: str, a: Any) -> Any:
    """`a` itself, or a torch tensor (CPU or CUDA, requiring grad or not)
    read into a NumPy array of its own dtype (detached, copied to the host):
    the dtype rules then apply to it as to any array.  A tensor NumPy cannot
    hold (bfloat16, a sparse or meta tensor) is a TypeError that says so."""
    if not is_torch_tensor(a):
        return a
    return tensor_array(name, a)  # meta, sparse, nested, quantized, bfloat16: refused, naming them (issue 22)


def float32_array(name: str, a: Any, ndim: int) -> np.ndarray:
    """A native float32 ndarray of the given rank, C-contiguous and aligned
    (copied only when it is not both already).  A torch tensor is read into
    NumPy first (:func:`host_array`)."""
    a = host_array(name, a)
    not_masked(name, a)
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (or torch.Tensor) of float32, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(
            f"{name} must have dtype float32 (native byte order), got {a.dtype.str}; "
            f"convert it yourself, e.g. {name}.astype(np.float32): the oracle never casts silently")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if a.size > INT_MAX:
        raise ValueError(f"{name} has {a.size} elements, more than the C core indexes ({INT_MAX})")
    return aligned(a)


def aligned(a: np.ndarray) -> np.ndarray:
    """`a` itself when it is a C-contiguous, aligned, native base ndarray; else
    such a copy (unaligned loads are undefined behaviour in C)."""
    a = np.ascontiguousarray(a)
    if not a.flags.aligned:
        a = np.array(a, order="C", copy=True)
    return a


def layer_input(x: Any, *, channels: int, what: str, name: str = "x") -> np.ndarray:
    """x: float32 (B, C, H, W) with C fixed by the layer."""
    x = float32_array(name, x, 4)
    b, c, h, w = x.shape
    if b < 1 or h < 1 or w < 1:
        raise ValueError(f"{name} must have a non-empty batch and grid, got shape {x.shape}")
    if c != channels:
        raise ValueError(f"{name} has {c} channels, expected {channels} = {what} "
                         "(darknet layout: (B, C, H, W))")
    return x


def looks_class_first(a: np.ndarray) -> bool:
    """Whether darknet-format rows (x first) look like class-first rows:
    a first column of whole numbers with some above 1, where darknet's x
    lies in [0, 1]."""
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] < 5:
        return False
    first = a[:, 0]
    first = first[np.isfinite(first) & (first != 0)]
    return bool(first.size and np.all(first == np.trunc(first)) and np.any(first > 1))


def class_first_warning(name: str) -> str:
    return (f"{name}: its first column holds whole numbers above 1, like class ids; darknet's truth rows are "
            "x, y, w, h, class (x in [0, 1]). If your rows are class, x, y, w, h (YOLO txt, most PyTorch ports), "
            "convert them with pdl.to_truth(rows, format='yolo')")


def truth_buffer(truth: Any, *, batch: int, rows: int, cols: int, used_rows: int) -> np.ndarray:
    """Darknet's packed truth buffer (batch, rows, cols), float32.

    `truth` is either that buffer already, or a list of `batch` arrays of
    shape (k, cols) with k <= rows, which is packed with zeros after the last
    box.  `used_rows` is how many rows per image upstream reads at most.
    """
    truth = host_array("truth", truth)
    if isinstance(truth, np.ndarray):
        t = float32_array("truth", truth, 3)
        if t.shape != (batch, rows, cols):
            raise ValueError(
                f"truth must have shape ({batch}, {rows}, {cols}) (batch, darknet's fixed {rows} rows, "
                f"x y w h class), got {t.shape}; or pass a list of {batch} arrays of shape (k, {cols})")
        return t
    not_masked("truth", truth)
    if not isinstance(truth, (list, tuple)):
        raise TypeError(f"truth must be a float32 array of shape ({batch}, {rows}, {cols}) or a list of "
                        f"{batch} float32 arrays of shape (k, {cols}), got {type(truth).__name__}")
    if len(truth) != batch:
        raise ValueError(f"truth lists {len(truth)} images but x has batch {batch}")
    packed = np.zeros((batch, rows, cols), dtype=np.float32)
    for b, boxes in enumerate(truth):
        a = float32_array(f"truth[{b}]", boxes, 2)
        if a.shape[1] != cols:
            raise ValueError(f"truth[{b}] must have shape (k, {cols}), got {a.shape}")
        k = a.shape[0]
        if k > rows:
            raise ValueError(f"truth[{b}] has {k} boxes; darknet's truth buffer holds at most {rows} per image")
        if looks_class_first(a):
            warnings.warn(class_first_warning(f"truth[{b}]"), DarknetQuirkWarning, stacklevel=4)
        zero = np.flatnonzero(a[:, 0] == 0)
        if zero.size:
            r = int(zero[0])
            warnings.warn(
                f"truth[{b}] row {r} has x == 0: upstream stops reading an image's truths at the first "
                f"x == 0, so rows {r}..{k - 1} of image {b} are ignored", DarknetQuirkWarning, stacklevel=4)
        elif k > used_rows:
            warnings.warn(
                f"truth[{b}] has {k} boxes but the layer reads at most {used_rows} (max_boxes): "
                f"rows {used_rows}..{k - 1} are ignored", DarknetQuirkWarning, stacklevel=4)
        packed[b, :k] = a
    return packed


_WHY = {
    "value": "holds NaN or an infinity",
    "size": "has a non-positive width or height",
}


def truth_error(kind: str, image: int, row: int, truth: np.ndarray, *, w: int, h: int,
                classes: int, class_col: int, map_: Optional[np.ndarray]) -> ValueError:
    """The message for a truth row the C core refused (checks.c); when the
    image's rows look class-first, the message says which format to use."""
    err = _truth_error(kind, image, row, truth, w=w, h=h, classes=classes, class_col=class_col, map_=map_)
    if looks_class_first(truth[image][truth[image].any(axis=1)]):
        return ValueError(f"{err}. Note: {class_first_warning(f'truth image {image}')}")
    return err


def _row_where(truth: np.ndarray, image: int, row: int) -> str:
    """How a refusal names a truth row: its image, row and values."""
    return f"truth image {image}, row {row} ({', '.join(f'{float(v):.9g}' for v in truth[image, row])})"


def _cell_error(where: str, r: np.ndarray, w: int, h: int, expected: str) -> ValueError:
    """A row whose cell, computed in float32 as upstream computes it, lies
    outside the grid (both darknets)."""
    fx = np.float32(r[0]) * np.float32(w)
    fy = np.float32(r[1]) * np.float32(h)
    return ValueError(
        f"{where}: its cell (int)(x*{w}) = (int){float(fx):.9g}, (int)(y*{h}) = (int){float(fy):.9g} "
        f"(float32, as upstream computes it) lies outside the {w}x{h} grid; upstream would write "
        f"into a neighbouring cell or past its buffer. Expected {expected}")


def mask_indices(mask: Any, total: int) -> np.ndarray:
    """A [yolo] mask: anchor indices into `total` anchors (every anchor when
    None), as int32."""
    if mask is None:
        return np.arange(total, dtype=np.int32)
    out = int_array("mask", mask)
    bad = np.flatnonzero((out < 0) | (out >= total))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"mask[{i}] = {int(out[i])} is not an anchor index: expected "
                         f"0 <= mask < total = {total} (upstream would read past its biases)")
    return out


def _truth_error(kind: str, image: int, row: int, truth: np.ndarray, *, w: int, h: int,
                 classes: int, class_col: int, map_: Optional[np.ndarray]) -> ValueError:
    r = truth[image, row]
    where = _row_where(truth, image, row)
    if kind in _WHY:
        return ValueError(f"{where} {_WHY[kind]}")
    if kind == "cell":
        return _cell_error(where, r, w, h, f"0 <= x*{w} < {w} and 0 <= y*{h} < {h}")
    c = float(r[class_col])
    if kind == "map":
        n = 0 if map_ is None else len(map_)
        return ValueError(f"{where}: class id {c:g} (truncated to int) is outside the map's {n} entries")
    mapped = ""
    if map_ is not None and -1 < c < len(map_):
        mapped = f", mapped to {int(map_[int(c)])}"
    return ValueError(f"{where}: class id {c:g} (truncated to int{mapped}) is outside [0, {classes})")


def image_sizes(img_w: Any, img_h: Any, net_w: Any, net_h: Any) -> tuple:
    """Positive image and network sizes whose letterbox products fit a C int."""
    sizes = tuple(c_int(name, v, minimum=1) for name, v in
                  (("img_w", img_w), ("img_h", img_h), ("net_w", net_w), ("net_h", net_h)))
    iw, ih, nw, nh = sizes
    if ih * nw > INT_MAX or iw * nh > INT_MAX:
        raise ValueError(f"img_h*net_w = {ih * nw} and img_w*net_h = {iw * nh} must fit a C int "
                         f"(<= {INT_MAX}): upstream's letterbox multiplies them in int")
    return sizes


def out_buffers(out: Any, shape: tuple) -> Optional[tuple]:
    """Caller-provided (output, delta) arrays: writable, C-contiguous, aligned
    float32 of the input's shape, and not the same memory."""
    if out is None:
        return None
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"out must be a tuple (output, delta) of float32 arrays, got {type(out).__name__}"
                        + (f" of {len(out)}" if isinstance(out, (tuple, list)) else ""))
    for name, a in zip(("output", "delta"), out):
        not_masked(f"out {name}", a)
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            got = a.dtype.str if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"out {name} must be a float32 numpy.ndarray (native byte order), got {got}")
        if a.shape != shape:
            raise ValueError(f"out {name} must have the input's shape {shape}, got {a.shape}")
        if not (a.flags.c_contiguous and a.flags.writeable and a.flags.aligned):
            raise ValueError(f"out {name} must be C-contiguous, aligned and writable (it is written in place); "
                             f"got contiguous={a.flags.c_contiguous}, aligned={a.flags.aligned}, "
                             f"writable={a.flags.writeable}")
    if np.shares_memory(out[0], out[1]):
        raise ValueError("out output and delta must not share memory")
    return out


def no_aliasing(outputs: Dict[str, np.ndarray], inputs: Dict[str, Optional[np.ndarray]]) -> None:
    """Refuses any output array that shares memory with an input array as the
    C core will read it (after packing and copying).  The arrays are
    C-contiguous, so np.shares_memory is an exact and cheap extent check."""
    for oname, o in outputs.items():
        for iname, i in inputs.items():
            if i is not None and np.shares_memory(o, i):
                raise ValueError(f"out {oname} shares memory with {iname}: the C core would overwrite {iname} "
                                 f"while it reads it; pass out arrays that share no memory with the inputs")


# ---- AlexeyAB [yolo] --------------------------------------------------------------

def ab_truth_buffer(truth: Any, *, batch: int, max_boxes: int) -> np.ndarray:
    """AlexeyAB's truth buffer (batch, max_boxes, 6): rows x, y, w, h,
    class_id, track_id, the image stride following max_boxes.

    ``truth`` is that buffer already, or a list of ``batch`` float32 arrays
    of shape (k, 5) (track id 0) or (k, 6), k <= max_boxes, packed with
    zeros after the last box.
    """
    truth = host_array("truth", truth)
    if isinstance(truth, np.ndarray):
        t = float32_array("truth", truth, 3)
        if t.shape != (batch, max_boxes, 6):
            raise ValueError(
                f"truth must have shape ({batch}, {max_boxes}, 6) (batch, max_boxes rows: AlexeyAB's image "
                f"stride is max_boxes*6; x y w h class_id track_id), got {t.shape}; or pass a list of "
                f"{batch} arrays of shape (k, 5) or (k, 6)")
        return t
    if not isinstance(truth, (list, tuple)):
        raise TypeError(f"truth must be a float32 array of shape ({batch}, {max_boxes}, 6) or a list of {batch} "
                        f"float32 arrays of shape (k, 5) or (k, 6), got {type(truth).__name__}")
    if len(truth) != batch:
        raise ValueError(f"truth lists {len(truth)} images but x has batch {batch}")
    packed = np.zeros((batch, max_boxes, 6), dtype=np.float32)
    for b, boxes in enumerate(truth):
        a = float32_array(f"truth[{b}]", boxes, 2)
        if a.shape[1] not in (5, 6):
            raise ValueError(f"truth[{b}] must have shape (k, 5) (x y w h class_id) or (k, 6) "
                             f"(... track_id), got {a.shape}")
        k = a.shape[0]
        if k > max_boxes:
            raise ValueError(f"truth[{b}] has {k} boxes; the layer's truth buffer holds max_boxes = {max_boxes} "
                             "per image")
        zero = np.flatnonzero(a[:, 0] == 0)
        if zero.size:
            r = int(zero[0])
            warnings.warn(
                f"truth[{b}] row {r} has x == 0: upstream stops reading an image's truths at the first "
                f"x == 0, so rows {r}..{k - 1} of image {b} are ignored", DarknetQuirkWarning, stacklevel=4)
        packed[b, :k, :a.shape[1]] = a
    return packed


def ab_truth_error(kind: str, image: int, row: int, truth: np.ndarray, *, w: int, h: int, classes: int,
                   map_: Optional[np.ndarray], truth_thresh: float) -> ValueError:
    """The message for a truth row the AlexeyAB C core refused."""
    r = truth[image, row]
    where = _row_where(truth, image, row)
    if kind == "value":
        return ValueError(f"{where} holds NaN or an infinity")
    if kind == "label":
        return ValueError(
            f"{where}: x, y must lie in [0, 1] and w, h must not be negative; upstream prints 'Wrong label' "
            "for this row and runs system() to append it to bad_label.list")
    if kind == "int":
        return ValueError(f"{where}: the class id or track id does not fit a C int (upstream converts "
                          "them with (int), which is undefined there)")
    if kind == "cell":
        return _cell_error(where, r, w, h, f"x*{w} < {w} and y*{h} < {h}")
    c = float(r[4])
    first = ""
    if row == 0 and truth_thresh < 0:
        first = (f" (truth_thresh = {truth_thresh:g} < 0: every cell without a better truth takes row 0's "
                 "class, whatever row 0 holds)")
    if kind == "map":
        n = 0 if map_ is None else len(map_)
        return ValueError(f"{where}: class id {c:g} (truncated to int) is outside the map's {n} entries{first}")
    mapped = ""
    if map_ is not None and -1 < c < len(map_):
        mapped = f", mapped to {int(map_[int(c)])}"
    return ValueError(f"{where}: class id {c:g} (truncated to int{mapped}) is outside [0, {classes}){first}")


def pixel_anchors(anchors: Any, anchors_in: str, stride: Any) -> Any:
    """[yolo] anchors in network pixels, from anchors given in ``anchors_in``
    units: ``"pixels"`` (darknet's, as a cfg writes them) or ``"grid"`` (grid
    cells of the head they belong to, as many PyTorch ports hold them), times
    ``stride``, the pixels per grid cell: one number for every anchor, or one
    per (w, h) pair.  The products are taken in double and stored in float,
    exact for the usual power-of-two strides."""
    if anchors_in not in ("pixels", "grid"):
        raise ValueError(f"anchors_in must be 'pixels' or 'grid', got {anchors_in!r}")
    if anchors_in == "pixels":
        if stride is not None:
            raise ValueError("stride is for anchors_in='grid' (anchors in grid cells); pixel anchors need none")
        return anchors
    if anchors is None:
        raise ValueError("anchors_in='grid' needs anchors")
    a = anchors32(anchors, pairs=True).astype(np.float64)
    pairs = len(a) // 2
    if stride is None:
        raise ValueError("anchors_in='grid' needs stride=: the network pixels per grid cell (net_w / W) of the "
                         "head the anchors belong to, one number or one per anchor pair")
    if isinstance(stride, (list, tuple, np.ndarray)):
        st = [number(f"stride[{i}]", v) for i, v in enumerate(np.asarray(stride, dtype=object).reshape(-1))]
        if len(st) != pairs:
            raise ValueError(f"stride lists {len(st)} values for {pairs} anchor pairs; give one per pair, or one number")
    else:
        st = [number("stride", stride)] * pairs
    for i, v in enumerate(st):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"stride[{i}] = {v!r}: expected a positive number of pixels per grid cell")
    return (a.reshape(pairs, 2) * np.asarray(st)[:, None]).reshape(-1).tolist()


# ==== hank-ai/darknet f684e1d7 (pydarknet_loss.hankai) ====

def hank_truth_error(kind: str, image: int, row: int, truth: np.ndarray, *, w: int, h: int, classes: int,
                     map_: Optional[np.ndarray], truth_thresh: float) -> ValueError:
    """The message for a truth row the hank-ai layer refuses.  hank-ai
    aborts (darknet_fatal_error, then abort()) on a class id outside
    [0, classes) in any row, and then on bad coordinates; the rest is
    AlexeyAB's (ab_truth_error)."""
    r = truth[image, row]
    where = _row_where(truth, image, row)
    if kind == "class" and not (-1 < float(r[4]) < classes):
        return ValueError(
            f"{where}: class id {float(r[4]):g} (truncated to int) is outside [0, {classes}); hank-ai stops with "
            f"'invalid class ID #{int(r[4])}' (yolo_layer.cpp:545) and aborts, where AlexeyAB skips the row. "
            f"Fix the label or the cfg's classes")
    if kind == "label":
        return ValueError(
            f"{where}: x, y must lie in [0, 1] and w, h must not be negative; hank-ai stops with 'invalid "
            f"coordinates, width, or height (x={float(r[0]):f}, y={float(r[1]):f}, w={float(r[2]):f}, "
            f"h={float(r[3]):f})' (yolo_layer.cpp:662) and aborts")
    return ab_truth_error(kind, image, row, truth, w=w, h=h, classes=classes, map_=map_, truth_thresh=truth_thresh)

# ==== end hank-ai ====

# ---- AlexeyAB [Gaussian_yolo] -----------------------------------------------------

def gaussian_truth_error(kind: str, image: int, row: int, truth: np.ndarray, *, w: int, h: int, classes: int,
                         map_: Optional[np.ndarray], yolo_point: str) -> ValueError:
    """The message for a truth row the [Gaussian_yolo] C core refused."""
    r = truth[image, row]
    where = _row_where(truth, image, row)
    if kind == "value":
        return ValueError(f"{where} holds NaN or an infinity in x, y, w, h or class_id")
    if kind == "int":
        return ValueError(f"{where}: the class id does not fit a C int (upstream converts it with (int), which "
                          "is undefined there)")
    if kind == "cell":
        return _cell_error(where, r, w, h, f"0 <= x*{w} < {w} and 0 <= y*{h} < {h} (yolo_point={yolo_point!r})")
    c = float(r[4])
    if kind == "map":
        n = 0 if map_ is None else len(map_)
        return ValueError(f"{where}: class id {c:g} (truncated to int) is outside the map's {n} entries; "
                          "upstream would read past its map")
    mapped = ""
    if map_ is not None and -1 < c < len(map_):
        mapped = f", mapped to {int(map_[int(c)])}"
    return ValueError(
        f"{where}: class id {c:g} (truncated to int{mapped}) is outside [0, {classes}). [Gaussian_yolo]'s truth "
        "loop (loop 2) has no class check: it indexes the class deltas (and the class multipliers) with it "
        "wherever the row is assigned, outside its buffers; a negative id can also become a cell's best truth "
        "in loop 1. (Upstream only skips ids >= classes in loop 1, with a warning.) Expected "
        f"0 <= class id < {classes}")

# ---- issue 22: files, counts, options and tensors ------------------------------------
#
# Every reader of a path goes through regular_file() before anything opens the
# path, and reads text through read_text(), which stops at the first NUL byte.
# The exception types (README, "What the package trusts and what it checks"):
#   FileNotFoundError  nothing readable there: missing, a broken symbolic link,
#                      a loop of symbolic links, a path through a non-folder
#   PermissionError    there, but this process may not look at it
#   IsADirectoryError  a folder
#   ValueError         a FIFO, a device or a socket (never opened: a FIFO
#                      would block), or content that is not what the reader reads

#: How much of a text file is read at a time (a NUL byte stops the reading).
READ_CHUNK = 1 << 20


def path_str(path: Any, what: str) -> str:
    """A path argument as a str (str, bytes or os.PathLike)."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"the {what} path must be a str or os.PathLike, got {type(path).__name__}") from None
    return p if isinstance(p, str) else os.fsdecode(p)


def _unreachable(p: str, what: str, exc: OSError) -> OSError:
    """The exception for a path os.stat() cannot follow, saying why."""
    if exc.errno == errno.ELOOP:
        return FileNotFoundError(f"{what} not found: {p} is a loop of symbolic links")
    if isinstance(exc, PermissionError):
        return PermissionError(f"{what} cannot be read: {p} (permission denied)")
    if os.path.islink(p):
        try:
            target = os.readlink(p)
        except OSError:  # pragma: no cover - gone meanwhile
            target = "?"
        return FileNotFoundError(f"{what} not found: {p} is a broken symbolic link (to {target!r})")
    if exc.errno == errno.ENOTDIR:
        return FileNotFoundError(f"{what} not found: {p} (a part of the path is not a folder)")
    if exc.errno == errno.ENOENT:
        return FileNotFoundError(f"{what} not found: {p}")
    return FileNotFoundError(f"{what} cannot be opened: {p} ({exc.strerror or exc})")


def _kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def _not_regular(p: str, what: str, mode: int) -> OSError:
    if stat.S_ISDIR(mode):
        return IsADirectoryError(f"{what} {p} is a directory: expected a regular file")
    return ValueError(f"{what} {p} is {_kind(mode)}: expected a regular file")  # type: ignore[return-value]


def regular_file(path: Any, what: str) -> str:
    """The path as a str when it names a regular file (after symbolic
    links); otherwise the exception above, naming the path and what it is.
    Nothing is opened: a FIFO would block the reader, a device would stream
    forever."""
    p = path_str(path, what)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _unreachable(p, what, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(p, what, st.st_mode)
    return p


def open_regular(path: Any, what: str) -> Any:
    """regular_file(), then the file opened for binary reading.  It is
    opened without blocking and checked again once open, so a path swapped
    for a FIFO in between is refused, not waited on."""
    p = regular_file(path, what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _unreachable(p, what, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(p, what, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path: Any, what: str, *, error: type = ValueError) -> str:
    """A text file's content as open(path, "r", encoding="utf-8",
    errors="surrogateescape").read() gives it, read a chunk at a time; a NUL
    byte is refused (``error``, naming the file and line) as soon as it is
    read, without reading on: a NUL is no text, and a huge (or sparse) file
    of them costs nothing."""
    f = open_regular(path, what)
    p = path_str(path, what)
    chunks = []
    newlines = offset = 0
    with f:
        while True:
            block = f.read(READ_CHUNK)
            if not block:
                break
            k = block.find(b"\0")
            if k >= 0:
                line = newlines + block.count(b"\n", 0, k) + 1
                raise error(f"{p}, line {line}: holds a NUL byte (byte {offset + k} of the file): expected a text "
                            f"{what}; nothing after it is read")
            newlines += block.count(b"\n")
            offset += len(block)
            chunks.append(block)
    return io.TextIOWrapper(io.BytesIO(b"".join(chunks)), encoding="utf-8", errors="surrogateescape").read()


def anchor_count(n: int, count_name: str) -> int:
    """More than MAX_ANCHORS anchors in one layer is refused before anything
    is allocated (both darknets' layers)."""
    if n > MAX_ANCHORS:
        raise ValueError(f"{count_name} = {n} anchors: more than {MAX_ANCHORS} is refused (the layer would "
                         f"allocate {2 * n} anchor values and compare every truth with each of them; darknet "
                         "cfgs use a handful)")
    return n


def layer_channels(n: int, classes: int, coords: int = 4) -> int:
    """A [yolo] layer's input channels, n*(coords+1+classes), which the C
    core holds in an int (l.outputs and every index derive from it)."""
    c = n * (coords + 1 + classes)
    if c > INT_MAX:
        raise ValueError(f"classes = {classes}: the layer's input channels len(mask)*({coords}+1+classes) = {n}*"
                         f"{coords + 1 + classes} = {c} do not fit the C core's int (<= {INT_MAX})")
    return c


def tolerance_options(atol: Any, rtol: Any, max_ulp: Any, worst: Any) -> tuple:
    """compare()/check's widening options: atol and rtol real numbers >= 0
    (not NaN), max_ulp and worst whole numbers >= 0."""
    out = []
    for name, v in (("atol", atol), ("rtol", rtol)):
        f = number(name, v)
        if math.isnan(f) or f < 0:
            raise ValueError(f"{name} must be a number >= 0 (a widening of the tolerance), got {_short(v)}")
        out.append(f)
    for name, v in (("max_ulp", max_ulp), ("worst", worst)):
        out.append(integer(name, v, minimum=0))
    return tuple(out)


def is_tensor(a: Any) -> bool:
    """A torch.Tensor (recognised without importing torch)."""
    return type(a).__module__.startswith("torch") and hasattr(a, "detach") and hasattr(a, "device")


def tensor_usable(name: str, t: Any) -> None:
    """Refuses a torch tensor whose values cannot be read: on the 'meta'
    device (a shape and a dtype, no data), sparse, nested or quantized."""
    device = getattr(getattr(t, "device", None), "type", None)
    if device == "meta":
        raise TypeError(f"{name} is a torch tensor on the 'meta' device: meta tensors hold no data (only a shape "
                        "and a dtype), so there is nothing to compute with; create it on a real device "
                        "(cpu or cuda)")
    layout = str(getattr(t, "layout", "torch.strided"))
    if layout != "torch.strided" or getattr(t, "is_nested", False):
        kind = "nested" if getattr(t, "is_nested", False) else layout
        raise TypeError(f"{name} is a {kind} torch tensor: pass a dense (torch.strided) tensor (.to_dense()); "
                        "the oracle does not densify silently")
    if getattr(t, "is_quantized", False):
        raise TypeError(f"{name} is a quantized torch tensor: pass float32 values (.dequantize())")


def tensor_array(name: str, t: Any) -> np.ndarray:
    """A torch tensor's values as a NumPy array (detached, copied to the
    host when it is on a device), after tensor_usable()."""
    tensor_usable(name, t)
    d = t.detach()
    if d.is_conj():
        d = d.resolve_conj()
    if d.is_neg():
        d = d.resolve_neg()
    try:
        return d.cpu().numpy()
    except (TypeError, RuntimeError) as exc:
        raise TypeError(f"{name}: a torch.Tensor of dtype {t.dtype} on {getattr(t, 'device', '?')} cannot be read "
                        f"as a NumPy array (a dtype {t.dtype} that NumPy cannot hold: {exc}); pass float32") from None


def scalar_cost(name: str, value: Any) -> np.float32:
    """One cost as a float32: a real number, or a one-element numeric array
    or tensor (anything else is refused, naming it).  NaN and infinities
    are values a cost can take, and are kept."""
    v = tensor_array(name, value) if is_tensor(value) else value
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "fiu" or v.size != 1:
            raise TypeError(f"{name} must be one number (a scalar or a one-element float array), got an array of "
                            f"dtype {v.dtype} and shape {v.shape}")
        v = v.reshape(()).item() if v.dtype.kind in "iu" else v.reshape(())[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number (a cost), got {type(v).__name__} {_short(v)}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.float32(v)
    except OverflowError:
        raise ValueError(f"{name} = {_short(v)} is too large for a cost (a float)") from None


def parts_option(parts: Any, groups: Sequence[str], names: Sequence[str]) -> tuple:
    """compare()/check's ``parts=`` (issue 20): one name, or an iterable of
    names, each a group (``groups``: box, objectness, classes) or one of
    darknet's parts (``names``: box.x, ..., prior, none).  Returns the names
    as given, deduplicated, in their order; refuses anything else naming the
    valid names, and an empty selection (which would judge nothing)."""
    valid = "the groups " + ", ".join(groups) + " and the parts " + ", ".join(n for n in names if n not in groups)
    if isinstance(parts, str):
        given: list = [parts]
    elif isinstance(parts, (bytes, bytearray)) or isinstance(parts, np.ndarray) and parts.dtype.kind not in "UO":
        raise TypeError(f"parts must be a part name or an iterable of part names (str), got {type(parts).__name__} "
                        f"{_short(parts)}; valid names: {valid}")
    else:
        try:
            given = list(parts)
        except TypeError:
            raise TypeError(f"parts must be a part name or an iterable of part names (str), got "
                            f"{type(parts).__name__} {_short(parts)}; valid names: {valid}") from None
    out: list = []
    for k, p in enumerate(given):
        if isinstance(p, np.str_):
            p = str(p)
        if not isinstance(p, str):
            raise TypeError(f"parts[{k}] must be a part name (str), got {type(p).__name__} {_short(p)}; valid "
                            f"names: {valid}")
        if p not in groups and p not in names:
            raise ValueError(f"parts[{k}] = {p!r} is not a part of darknet's delta; valid names: {valid}")
        if p not in out:
            out.append(p)
    if not out:
        raise ValueError(f"parts= is empty, so it would judge nothing: name at least one of {valid} (to judge every "
                         "part, leave parts= out)")
    return tuple(out)

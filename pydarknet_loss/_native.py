"""The only module that touches the compiled core.

Buffers in, buffers out: it points C `layer`/`network`/`tree` structs at
NumPy arrays (without copying), calls one C function and hands back NumPy
arrays and plain numbers.  The public API validates the input; what this
module checks again is only what keeps C inside its buffers, cheaply, on
every call: each array it points C at has the dtype, the size, the
contiguity and the alignment C assumes, and each number fits its C field
(so a layer whose attributes were swapped behind its back is refused here,
not read out of bounds).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _buffers

try:
    from ._core import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on how it was installed
    raise ImportError(
        "pydarknet_loss: the compiled core (pydarknet_loss._core) is missing. "
        "Install the package with `pip install .` from the repository root, or build it "
        "in place with `python build_ffi.py`. If you run Python from the repository root, "
        "the source folder may shadow the installed package: run from another folder."
    ) from exc

BUILD_CFLAGS: str = ffi.string(lib.dn_build_cflags()).decode()
#: The sanitizer flags the core was built with ("" normally; PYDARKNET_LOSS_SANITIZE=1 sets them).
BUILD_SANITIZERS: str = ffi.string(lib.dn_build_sanitizers()).decode()

# Return codes of the C core (darknet_loss.h).
DN_OK = lib.DN_OK
ERRORS = {
    lib.DN_E_LAYER: "layer",
    lib.DN_E_TRUTH_VALUE: "value",
    lib.DN_E_TRUTH_SIZE: "size",
    lib.DN_E_TRUTH_CELL: "cell",
    lib.DN_E_MAP_INDEX: "map",
    lib.DN_E_TRUTH_CLASS: "class",
    lib.DN_E_TREE_LOOP: "tree-loop",
}
INT_MAX = 2**31 - 1
SIZE_MAX = 2**(8 * ffi.sizeof("size_t")) - 1


def _buffer(a: Any, dtype: Any, size: int, what: str) -> np.ndarray:
    """`a` when C may read `size` values of `dtype` from it; else ValueError.
    (Arrays reach here validated; this guards the pointer itself.)"""
    if (not isinstance(a, np.ndarray) or a.dtype != dtype or not a.flags.c_contiguous
            or not a.flags.aligned or a.size != size):
        got = (f"{a.dtype.str} of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__)
        raise ValueError(f"{what}: expected a C-contiguous, aligned {np.dtype(dtype).name} array of {size} values, "
                         f"got {got} (was it changed after it was validated? a layer's, a Tree's and a Detections' "
                         "arrays are fixed when they are built)")
    return a


def _cint(value: Any, what: str, minimum: int = -2**31) -> int:
    if type(value) is int and minimum <= value <= INT_MAX:  # the common case, fast
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or \
            not minimum <= int(value) <= INT_MAX:
        raise ValueError(f"{what} = {value!r} does not fit the C core: expected an integer in [{minimum}, {INT_MAX}] "
                         "(a layer's attributes are fixed when it is built)")
    return int(value)


# ---- speed: threads and paths (every choice gives the same bits) ------------

PATHS = {"auto": lib.DN_PATH_AUTO, "portable": lib.DN_PATH_PORTABLE, "reference": lib.DN_PATH_REFERENCE}
_PATH_NAMES = {lib.DN_PATH_AVX2: "avx2", lib.DN_PATH_PORTABLE: "portable", lib.DN_PATH_REFERENCE: "reference"}


def default_threads() -> int:
    """Threads a forward pass uses when not told: $PYDARKNET_LOSS_THREADS, or
    the CPUs this process may run on."""
    env = os.environ.get("PYDARKNET_LOSS_THREADS", "").strip()
    if env:
        if not env.isdigit() or not 1 <= int(env) <= 1024:
            raise ValueError(f"PYDARKNET_LOSS_THREADS must be a whole number from 1 to 1024, got {env!r}")
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def forward_path() -> int:
    """The C core's DN_PATH_* for $PYDARKNET_LOSS_PATH: auto (default), portable
    (plain C, what a CPU without AVX2 runs) or reference (upstream's loops)."""
    name = os.environ.get("PYDARKNET_LOSS_PATH", "auto").strip().lower() or "auto"
    if name not in PATHS:
        raise ValueError(f"PYDARKNET_LOSS_PATH must be one of {sorted(PATHS)}, got {name!r}")
    return PATHS[name]


def path_in_use(path: Optional[str] = None) -> str:
    """Which kernels a forward pass runs here: 'avx2', 'portable' or 'reference'."""
    return _PATH_NAMES[lib.dn_path_in_use(forward_path() if path is None else PATHS[path])]


def _f32(a: np.ndarray) -> Any:
    """A `float *` over a C-contiguous float32 array, without copying."""
    return ffi.cast("float *", ffi.from_buffer(a))


def _i32(a: np.ndarray) -> Any:
    return ffi.cast("int *", ffi.from_buffer(a))


# ---- trees ----------------------------------------------------------------

TREE_ARRAYS = ("parent", "child", "group", "leaf", "group_size", "group_offset")


def tree_arrays(parent: np.ndarray) -> Optional[Dict[str, np.ndarray]]:
    """read_tree's group structure for a parent array (int32), as NumPy
    arrays; None when the C core refuses the parents."""
    n = _cint(len(parent), "the tree's node count", 1)
    parent = np.array(_buffer(parent, np.int32, n, "parent"), copy=True)
    arrays = {"parent": parent}
    for name, size in (("child", n), ("group", n), ("leaf", n), ("group_size", n + 1), ("group_offset", n + 1)):
        arrays[name] = np.zeros(size, dtype=np.int32)
    t = ffi.new("tree *")
    rc = lib.tree_init(t, n, *(_i32(arrays[k]) for k in TREE_ARRAYS))
    if rc != DN_OK:
        return None
    arrays["group_size"] = arrays["group_size"][:t.groups].copy()
    arrays["group_offset"] = arrays["group_offset"][:t.groups].copy()
    return arrays


def read_tree_file(path: str) -> Tuple[Optional[np.ndarray], Optional[List[str]], int]:
    """(parents, names, 0) of a darknet tree file, or (None, None, bad line)
    when the C reader refuses it (bad line 0: unreadable)."""
    bad = ffi.new("int *")
    t = lib.read_tree_checked(os.fsencode(path), bad)
    if t == ffi.NULL:
        return None, None, int(bad[0])
    try:
        parents = np.array([t.parent[i] for i in range(t.n)], dtype=np.int32)
        names = [ffi.string(t.name[i]).decode("utf-8", "replace") for i in range(t.n)]
    finally:
        lib.free_tree(t)
    return parents, names, 0


def tree_struct(arrays: Dict[str, np.ndarray], keep: List[Any]) -> Any:
    """A `tree *` over the arrays of tree_arrays() (kept alive via `keep`)."""
    t = ffi.new("tree *")
    n = np.size(arrays["parent"])
    groups = np.size(arrays["group_size"])
    t.n = _cint(n, "the tree's node count", 1)
    t.groups = _cint(groups, "the tree's group count", 1)
    for name in TREE_ARRAYS:
        a = _buffer(arrays[name], np.int32, groups if name.startswith("group_") else n, f"the tree's {name}")
        keep.append(a)
        setattr(t, name, _i32(a))
    keep.append(t)
    why = lib.tree_problem(t)
    if why != ffi.NULL:
        raise ValueError(f"the C core refused the tree: {ffi.string(why).decode()}")
    return t


def tree_problem(arrays: Dict[str, np.ndarray]) -> Optional[str]:
    """Why the C core refuses these tree arrays, or None."""
    try:
        tree_struct(arrays, [])
    except ValueError as exc:
        return str(exc)
    return None


# ---- layers ---------------------------------------------------------------

@dataclass
class LayerSpec:
    """What the C `layer` needs besides the input's shape."""

    kind: str  # "yolo" or "region"
    n: int
    classes: int
    biases: np.ndarray  # float32
    total: int = 0  # [yolo]
    coords: int = 4
    mask: Optional[np.ndarray] = None  # int32, [yolo]
    map: Optional[np.ndarray] = None  # int32
    tree: Optional[Dict[str, np.ndarray]] = None  # tree_arrays()
    scalars: Dict[str, Any] = field(default_factory=dict)  # C field name -> value


def _layer_struct(spec: LayerSpec, batch: int, h: int, w: int, keep: List[Any]) -> Any:
    """A C layer for `spec` on a (batch, c, h, w) input, without buffers."""
    l = ffi.new("layer *")
    keep.append(l)
    n = _cint(spec.n, "n", 1)
    classes = _cint(spec.classes, "classes", 1)
    if spec.kind == "yolo":
        total = _cint(spec.total, "total", 1)
        rc = lib.yolo_layer_init(l, batch, w, h, n, total, classes)
        nbiases = 2 * total
    else:
        rc = lib.region_layer_init(l, batch, w, h, n, classes, _cint(spec.coords, "coords", 4))
        nbiases = 2 * n
    if rc != DN_OK:
        raise ValueError(f"the layer's sizes (batch {batch}, {w}x{h} grid, n={n}, classes={classes}, "
                         f"coords={spec.coords}) do not fit the C core's int")

    def ptr(conv: Any, a: np.ndarray) -> Any:
        keep.append(a)
        return conv(a)

    l.biases = ptr(_f32, _buffer(spec.biases, np.float32, nbiases, "anchors"))
    if spec.mask is not None:
        l.mask = ptr(_i32, _buffer(spec.mask, np.int32, n, "mask"))
    if spec.map is not None:
        m = spec.map
        l.map = ptr(_i32, _buffer(m, np.int32, np.size(m), "map"))
        l.map_len = _cint(np.size(m), "len(map)", 1)
    if spec.tree is not None:
        l.softmax_tree = tree_struct(spec.tree, keep)
    for name, value in spec.scalars.items():
        try:
            setattr(l, name, value)
        except (OverflowError, TypeError):
            raise ValueError(f"{name} = {value!r} does not fit the C layer's {name} field (a layer's "
                             "attributes are fixed when it is built)") from None
    return l


def layer_problem(l: Any, forward: bool) -> Optional[str]:
    why = lib.layer_problem(l[0], 1 if forward else 0)
    return None if why == ffi.NULL else ffi.string(why).decode()


class Call:
    """A C layer over NumPy buffers for one forward pass; keeps every buffer
    alive for as long as the structs point at it."""

    def __init__(self, spec: LayerSpec, batch: int, h: int, w: int,
                 out: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                 targets: Union[bool, Tuple[np.ndarray, np.ndarray]] = False) -> None:
        self.spec = spec
        self.keep: List[Any] = []
        self.layer = l = _layer_struct(spec, batch, h, w, self.keep)
        if out is None:  # recycled memory for large arrays (_buffers)
            self.output = _buffers.empty((batch, l.c, h, w))
            self.delta = _buffers.empty((batch, l.c, h, w))
        else:
            self.output, self.delta = out
        l.output = self._ptr(_f32, self.output)
        l.delta = self._ptr(_f32, self.delta)
        self.cost = ffi.new("float *")
        self.stats = ffi.new("loss_stats *")
        l.cost = self.cost
        l.stats = self.stats
        self.target: Optional[np.ndarray] = None
        self.target_scale: Optional[np.ndarray] = None
        if isinstance(targets, tuple):  # the caller's (a training forward overwrites them all)
            self.target, self.target_scale = targets
        elif targets:
            self.target = np.zeros_like(self.output)
            self.target_scale = np.full_like(self.output, np.nan)
        if self.target is not None and self.target_scale is not None:
            l.target = self._ptr(_f32, self.target)
            l.target_scale = self._ptr(_f32, self.target_scale)

    def _ptr(self, conv: Any, a: np.ndarray) -> Any:
        self.keep.append(a)
        return conv(a)

    def check_layer(self) -> Optional[str]:
        """Why the C core refuses this layer, or None."""
        return layer_problem(self.layer, True)

    def check_truths(self, truth: np.ndarray) -> Tuple[int, int, int]:
        """(code, image, row) of the first truth row the C core refuses."""
        bad = ffi.new("int[2]")
        rc = lib.check_truths(self.layer[0], _f32(truth), bad, bad + 1)
        return int(rc), int(bad[0]), int(bad[1])

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray], *, train: bool, net_w: int = 0,
                net_h: int = 0, index: int = 0, seen: int = 0, threads: Optional[int] = None,
                terms: Optional[Tuple[np.ndarray, ...]] = None, gpu: bool = False, activated: bool = False) -> int:
        """The forward pass.  ``gpu``: the GPU build's (device activations,
        then the CPU loss); ``activated``: x already holds activations, as
        the GPU build's CPU loss receives them (no CPU activation)."""
        net = ffi.new("network *")
        net.input = _f32(x)
        net.input_activated = 1 if activated else 0
        if truth is not None:
            net.truth = _f32(truth)
        net.train = 1 if train else 0
        net.w = _cint(net_w, "net_w")
        net.h = _cint(net_h, "net_h")
        net.index = _cint(index, "index")
        if not 0 <= seen <= SIZE_MAX:
            raise ValueError(f"seen = {seen} does not fit the C core's size_t: expected 0 <= seen <= {SIZE_MAX}")
        net.seen = seen
        if threads is None:
            # Below about 2^19 floats a pass takes about a millisecond: not
            # worth starting threads for.
            threads = default_threads()
            if x.size < 1 << 19:
                threads = 1
        if terms is not None:
            # forward_yolo_layer_terms (pdl.torch): obj_target, obj_scale, cells, cell_target,
            # cell_scale, parts (float64).
            ot, os_, cells, ct, cs, parts = terms
            self.keep.append(terms)
            rc = int(lib.forward_yolo_layer_terms(self.layer[0], net[0], threads, forward_path(), _f32(ot), _f32(os_),
                                                  _i32(cells), _f32(ct), _f32(cs),
                                                  ffi.cast("double *", ffi.from_buffer(parts))))
            self.terms_dense = rc == lib.DN_TERMS_DENSE
            return DN_OK if self.terms_dense else rc
        if gpu:
            # The GPU build's forward: device activations, then the CPU loss on them.
            fn = lib.forward_yolo_layer_gpu_opt if self.spec.kind == "yolo" else lib.forward_region_layer_gpu_opt
            return int(fn(self.layer[0], net[0], threads, forward_path()))
        fn = lib.forward_yolo_layer_opt if self.spec.kind == "yolo" else lib.forward_region_layer_opt
        # cffi releases the GIL for the call.
        return int(fn(self.layer[0], net[0], threads, forward_path()))


def record(call: Call, truth: np.ndarray, *, net_w: int = 0, net_h: int = 0, threads: Optional[int] = None,
           path: Optional[int] = None) -> Dict[str, np.ndarray]:
    """record_loss_layer_opt after a training forward of `call` on `truth`:
    the decisions the forward took, as arrays (see darknet_loss.h).  On the
    forward's kernels and threads (``path``: a DN_PATH_*, $PYDARKNET_LOSS_PATH
    when None; every path gives the same values)."""
    l = call.layer
    cells = (l.batch, l.n, l.h, l.w)
    rows = (l.batch, l.truths // (l.coords + 1))
    out = {"best_iou": np.empty(cells, np.float32), "best_truth": np.empty(cells, np.int32),
           "best_iou_ext": np.empty(cells, np.float32), "best_truth_ext": np.empty(cells, np.int32),
           "row_status": np.empty(rows, np.int32), "best_anchor": np.empty(rows, np.int32),
           "best_in_mask": np.empty(rows, np.int32), "row_iou": np.empty(rows, np.float32)}
    rec = ffi.new("loss_record *")
    for name, a in out.items():
        setattr(rec, name, _f32(a) if a.dtype == np.float32 else _i32(a))
    net = ffi.new("network *")
    net.input = l.output
    net.truth = _f32(truth)
    net.train = 1
    net.w = net_w
    net.h = net_h
    if threads is None:
        threads = default_threads() if l.batch * l.outputs >= 1 << 19 else 1  # as forward() decides
    rc = lib.record_loss_layer_opt(l[0], net[0], rec[0], threads, forward_path() if path is None else path)
    if rc != DN_OK:  # pragma: no cover - the forward accepted the same layer
        raise RuntimeError(f"the C core refused to record the forward ({ERRORS.get(rc, rc)})")
    return out


def compare_arrays(expected: np.ndarray, actual: np.ndarray, atol: float, rtol: float, max_ulp: int
                   ) -> Tuple[Dict[str, np.ndarray], np.ndarray, int]:
    """dn_compare_arrays on two C-contiguous float32 arrays of one shape
    (blocks, entries, ...): per entry, the table's reductions (size, fail,
    max_abs, max_rel, max_ulp, nan_vs_num, flips; -1 where there is none),
    the failing elements (bool, the arrays' shape) and how many."""
    assert expected.shape == actual.shape and expected.dtype == actual.dtype == np.float32
    assert expected.flags.c_contiguous and actual.flags.c_contiguous and expected.ndim >= 2
    blocks, entries = int(np.prod(expected.shape[:-3] or (1,))), int(expected.shape[-3])
    hw = int(np.prod(expected.shape[-2:]))
    stats = ffi.new("dn_compare_stats[]", entries)
    fail = _buffers.empty(expected.shape, np.uint8)  # every element written; recycled pages (no faults)
    total = lib.dn_compare_arrays(_f32(expected), _f32(actual), blocks, entries, hw, float(atol), float(rtol),
                                  int(max_ulp), stats, ffi.cast("unsigned char *", ffi.from_buffer(fail)))
    names = ("size", "fail", "max_abs", "max_rel", "max_ulp", "nan_vs_num", "flips")
    out = {k: np.array([getattr(stats[e], k) for e in range(entries)]) for k in names}
    return out, fail.view(bool), int(total)


def delta_bound(call: "Call", n: int, coords: int, region: bool) -> np.ndarray:
    """dn_delta_bound on a forward's target, scale, output and delta: the
    rounding bound of its delta (float64, (B, n, entries, H, W))."""
    l = call.layer
    shape = (l.batch, n, l.outputs // (n * l.h * l.w), l.h, l.w)
    out = np.empty(shape, np.float64)
    lib.dn_delta_bound(_f32(call.target), _f32(call.target_scale), _f32(call.output), _f32(call.delta),
                       l.batch * n, shape[2], l.h, l.w, coords, int(region),
                       ffi.cast("double *", ffi.from_buffer(out)))
    return out


def delta_bound_at(call: "Call", n: int, coords: int, region: bool, flat: np.ndarray) -> np.ndarray:
    """dn_delta_bound_at: the rounding bound of a forward's delta at some
    elements only (flat indices into (B, n, entries, H, W)), bit for bit
    :func:`delta_bound`'s values there."""
    l = call.layer
    entries = l.outputs // (n * l.h * l.w)
    idx = np.ascontiguousarray(flat, dtype=np.int64)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= l.batch * l.outputs):
        raise IndexError(f"delta_bound_at: flat index out of range for {l.batch * l.outputs} elements")
    out = np.empty(idx.shape, np.float64)
    lib.dn_delta_bound_at(_f32(call.target), _f32(call.target_scale), _f32(call.output), _f32(call.delta),
                          ffi.cast("const long long *", ffi.from_buffer(idx)), idx.size, entries, l.h, l.w, coords,
                          int(region), ffi.cast("double *", ffi.from_buffer(out)))
    return out


def box_rows(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """box_iou or box_rmse of matching rows of two C-contiguous (n, 4) float32 arrays."""
    rows = a.shape[0]
    _buffer(a, np.float32, 4 * rows, "a")
    _buffer(b, np.float32, 4 * rows, "b")
    out = np.empty(rows, dtype=np.float32)
    fn = lib.box_iou_rows if op == "iou" else lib.box_rmse_rows
    fn(_f32(a), _f32(b), _cint(rows, "the number of boxes", 0), _f32(out))
    return out


# ---- labels -----------------------------------------------------------------

def read_boxes_file(path: str) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], int, int]:
    """(ids, boxes, 0, 0) of a label file, or (None, None, bad line, why)."""
    n = ffi.new("int[3]")
    boxes = lib.read_boxes_checked(os.fsencode(path), n, n + 1, n + 2)
    if boxes == ffi.NULL:
        return None, None, int(n[1]), int(n[2])
    try:
        count = int(n[0])
        ids = np.array([boxes[i].id for i in range(count)], dtype=np.int32)
        xywh = np.array([(boxes[i].x, boxes[i].y, boxes[i].w, boxes[i].h) for i in range(count)],
                        dtype=np.float32).reshape(count, 4)
    finally:
        lib.free_boxes(boxes)
    return ids, xywh, 0, 0


def fill_truth(ids: np.ndarray, xywh: np.ndarray, num_boxes: int, out: np.ndarray, dx: np.float32,
               dy: np.float32, sx: np.float32, sy: np.float32, flip: int) -> int:
    """fill_truth_detection_boxes into `out` (num_boxes*5 floats or more, zeroed)."""
    count = len(ids)
    _buffer(ids, np.int32, count, "ids")
    _buffer(xywh, np.float32, 4 * count, "boxes")
    _buffer(out, np.float32, np.size(out), "the truth buffer")
    if out.size < 5 * num_boxes:
        raise ValueError(f"the truth buffer holds {out.size} floats, fewer than num_boxes*5 = {5 * num_boxes}")
    labels = ffi.new("box_label[]", max(count, 1))
    for i in range(count):
        labels[i] = lib.box_label_from(int(ids[i]), *(float(v) for v in xywh.reshape(count, 4)[i]))
    return int(lib.fill_truth_detection_boxes(labels, count, num_boxes, _f32(out), dx, dy, sx, sy, flip))


# ---- detections and NMS --------------------------------------------------------

class TreeLoopError(ValueError):
    """Input on which upstream's hierarchy_top_prediction would loop forever."""


def _refuse(l: Any, what: str) -> None:
    why = layer_problem(l, False)
    if why is not None:
        raise ValueError(f"{what}: the C core refuses this layer: {why}")


def _read_dets(dets: Any, n: int, classes: int, prob_base: np.ndarray,
               sort_class: bool = False) -> Dict[str, np.ndarray]:
    out = {"bbox": np.empty((n, 4), np.float32), "objectness": np.empty(n, np.float32),
           "prob": np.empty((n, classes), np.float32), "sort_class": np.empty(n, np.int32),
           "order": np.empty(n, np.int32)}
    lib.dets_to_arrays(dets, n, classes, _f32(out["bbox"]), _f32(out["objectness"]), _f32(out["prob"]),
                       _i32(out["sort_class"]), _i32(out["order"]), _f32(prob_base))
    if not sort_class:
        del out["sort_class"], out["order"]
    return out


def _empty_dets(n: int, width: int, mask_n: int = 0) -> Tuple[Any, np.ndarray, Optional[np.ndarray]]:
    m = max(n, 1)
    dets = ffi.new("detection[]", m)
    prob = np.zeros((m, width), np.float32)
    mask = np.zeros((m, mask_n), np.float32) if mask_n else None
    zeros4 = np.zeros((m, 4), np.float32)
    zeros = np.zeros(m, np.float32)
    lib.dets_from_arrays(dets, m, width, _f32(zeros4), _f32(zeros), _f32(prob), ffi.NULL,
                         _f32(mask) if mask is not None else ffi.NULL, mask_n)
    return dets, prob, mask


def yolo_detections(spec: LayerSpec, output: np.ndarray, img_w: int, img_h: int, net_w: int, net_h: int,
                    thresh: np.float32, relative: bool) -> Dict[str, Any]:
    keep: List[Any] = []
    batch, _, h, w = output.shape
    after = np.array(output, dtype=np.float32, order="C", copy=True)
    l = _layer_struct(spec, batch, h, w, keep)
    l.output = _f32(after)
    _refuse(l, "YoloLayer.detections")
    num_alloc = int(lib.yolo_num_detections(l[0], thresh))
    n = w * h * spec.n
    dets, prob, _ = _empty_dets(n, spec.classes)
    count = int(lib.get_yolo_detections(l[0], img_w, img_h, net_w, net_h, thresh, ffi.NULL, int(relative), dets))
    res: Dict[str, Any] = _read_dets(dets, count, spec.classes, prob)
    res.update(output_after=after, num_alloc_upstream=num_alloc)
    return res


def region_detections(spec: LayerSpec, output: np.ndarray, img_w: int, img_h: int, net_w: int, net_h: int,
                      thresh: np.float32, tree_thresh: np.float32, relative: bool,
                      cmap: Optional[np.ndarray]) -> Dict[str, Any]:
    keep: List[Any] = []
    batch, _, h, w = output.shape
    after = np.array(output, dtype=np.float32, order="C", copy=True)
    l = _layer_struct(spec, batch, h, w, keep)
    l.output = _f32(after)
    _refuse(l, "RegionLayer.detections")
    n = w * h * spec.n
    mask_n = spec.coords - 4
    dets, prob, mask = _empty_dets(n, spec.classes, mask_n)
    map_ptr = _i32(cmap) if cmap is not None else ffi.NULL
    if cmap is not None:
        _buffer(cmap, np.int32, 200, "map")
    lib.get_region_detections(l[0], img_w, img_h, net_w, net_h, thresh, map_ptr, tree_thresh, int(relative), dets)
    if spec.tree is not None and cmap is None:
        bad = ffi.new("int *")
        rc = lib.check_tree_top(l[0], tree_thresh, bad)
        if rc != DN_OK:
            i = int(bad[0])
            anchor, cell = divmod(i, w * h)
            raise TreeLoopError(
                f"tree_thresh = {str(np.float32(tree_thresh))}: upstream's hierarchy_top_prediction never returns for "
                f"detection {i} (anchor {anchor}, row {cell // w}, col {cell % w}): a group on its way down has "
                "no probability above 0 (all <= 0, or NaN as at temperature 0), which sends upstream back to "
                "node 0's children forever while p*0 > tree_thresh. Expected tree_thresh >= 0 (upstream "
                "returns for every output then)")
    res: Dict[str, Any] = _read_dets(dets, n, spec.classes, prob)
    res.update(output_after=after, mask=None if mask is None else mask[:n].copy())
    return res


def nms(which: str, bbox: np.ndarray, objectness: np.ndarray, prob: np.ndarray, sort_class: np.ndarray,
        thresh: np.float32) -> Dict[str, np.ndarray]:
    n = np.size(objectness)
    if not isinstance(prob, np.ndarray) or prob.ndim != 2 or prob.shape[0] != n or prob.shape[1] < 1:
        raise ValueError(f"prob has shape {getattr(prob, 'shape', type(prob).__name__)}, not (n, classes) for the "
                         f"{n} detections (changed after the Detections were built?)")
    classes = prob.shape[1]
    _buffer(prob, np.float32, n * classes, "prob")
    _buffer(bbox, np.float32, 4 * n, "bbox")
    _buffer(objectness, np.float32, n, "objectness")
    _buffer(sort_class, np.int32, n, "sort_class")
    _cint(n, "the number of detections", 0)
    _cint(classes, "classes", 1)
    dets = ffi.new("detection[]", max(n, 1))
    work = np.array(prob, dtype=np.float32, order="C", copy=True)
    lib.dets_from_arrays(dets, n, classes, _f32(bbox), _f32(objectness), _f32(work), _i32(sort_class),
                         ffi.NULL, 0)
    fn = lib.do_nms_sort if which == "sort" else lib.do_nms_obj
    if fn(dets, n, classes, thresh) != 0:
        raise MemoryError("no memory for the NMS scratch buffers")
    return _read_dets(dets, n, classes, work, sort_class=True)


# ---- AlexeyAB [yolo] ------------------------------------------------------------

ERRORS.update({
    lib.DN_E_TRUTH_LABEL: "label",
    lib.DN_E_TRUTH_INT: "int",
})

#: ab_yolo_layer.flavor values (darknet_loss.h: the hank-ai variation points).
AB_FLAVOR_ALEXEYAB = int(lib.AB_FLAVOR_ALEXEYAB)
AB_FLAVOR_HANKAI = int(lib.AB_FLAVOR_HANKAI)

#: FLT_MAX: AlexeyAB's "max_delta not set".
FLT_MAX = np.float32(np.finfo(np.float32).max)


@dataclass
class ABSpec:
    """What the C `ab_yolo_layer` needs besides the input's shape."""

    n: int
    classes: int
    total: int
    max_boxes: int
    biases: np.ndarray  # float32, 2*total
    mask: np.ndarray  # int32
    map: Optional[np.ndarray] = None  # int32
    classes_multipliers: Optional[np.ndarray] = None  # float32, classes
    scalars: Dict[str, Any] = field(default_factory=dict)  # C field name -> value


def ab_classes_multipliers(counters: np.ndarray, classes: int, max_delta: np.float32) -> np.ndarray:
    """get_classes_multipliers, computed by the C core."""
    out = np.empty(classes, dtype=np.float32)
    counters = np.ascontiguousarray(counters, dtype=np.int32)
    if lib.ab_classes_multipliers(_i32(counters), classes, max_delta, _f32(out)) != DN_OK:
        raise ValueError("counters_per_class: the C core refused it")
    return out


class ABCall:
    """An `ab_yolo_layer` over NumPy buffers for one forward pass."""

    def __init__(self, spec: ABSpec, batch: int, h: int, w: int,
                 out: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> None:
        self.keep: List[Any] = []
        self.layer = l = ffi.new("ab_yolo_layer *")
        rc = lib.ab_yolo_layer_init(l, batch, w, h, spec.n, spec.total, spec.classes, spec.max_boxes)
        if rc != DN_OK:
            raise ValueError("the layer's sizes do not fit the C core (too large or not positive)")
        l.biases = self._ptr(_f32, spec.biases)
        l.mask = self._ptr(_i32, spec.mask)
        if spec.map is not None:
            l.map = self._ptr(_i32, spec.map)
            l.map_len = len(spec.map)
        if spec.classes_multipliers is not None:
            l.classes_multipliers = self._ptr(_f32, spec.classes_multipliers)
        for name, value in spec.scalars.items():
            setattr(l, name, value)
        if out is None:  # recycled memory for large arrays (_buffers)
            self.output = _buffers.empty((batch, l.c, h, w))
            self.delta = _buffers.empty((batch, l.c, h, w))
        else:
            self.output, self.delta = out
        # make_yolo_layer fills both with -1; a training forward resets them.
        self.labels = np.full((batch, spec.n, h, w), -1, dtype=np.int32)
        self.class_ids = np.full((batch, spec.n, h, w), -1, dtype=np.int32)
        l.output = self._ptr(_f32, self.output)
        l.delta = self._ptr(_f32, self.delta)
        l.labels = self._ptr(_i32, self.labels)
        l.class_ids = self._ptr(_i32, self.class_ids)
        self.cost = ffi.new("float *")
        self.stats = ffi.new("ab_yolo_stats *")
        l.cost = self.cost
        l.stats = self.stats

    def _ptr(self, conv: Any, a: np.ndarray) -> Any:
        self.keep.append(a)
        return conv(a)

    def check_layer(self) -> int:
        return int(lib.ab_check_yolo_layer(self.layer))

    def check_truths(self, truth: np.ndarray) -> Tuple[int, int, int]:
        """(code, image, row) of the first truth row the C core refuses."""
        bad = ffi.new("int[2]")
        rc = lib.ab_check_yolo_truths(self.layer, _f32(truth), bad, bad + 1)
        return int(rc), int(bad[0]), int(bad[1])

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray], *, train: bool, net_w: int, net_h: int,
                index: int, threads: Optional[int] = None) -> int:
        st = ffi.new("ab_network_state *")
        st.input = _f32(x)
        if truth is not None:
            st.truth = _f32(truth)
        st.train = 1 if train else 0
        st.net_w = net_w
        st.net_h = net_h
        st.index = index
        if threads is None:
            # As Call.forward: below about 2^19 floats threads do not pay.
            threads = default_threads()
            if x.size < 1 << 19:
                threads = 1
        # cffi releases the GIL for the call.
        return int(lib.ab_forward_yolo_layer_opt(self.layer[0], st[0], _cint(threads, "threads", 1), forward_path()))

    def record(self, truth: np.ndarray, *, net_w: int, net_h: int, elements: bool = True) -> Dict[str, np.ndarray]:
        """ab_record_yolo_layer after a training forward of this call on
        `truth`: the decisions upstream took, as arrays (darknet_loss.h);
        with `elements`, also each element's replayed delta, form (AB_FORM_*)
        and target, scale and norm, shaped (batch, n, 5 + classes, h, w)."""
        l = self.layer
        cells = (l.batch, l.n, l.h, l.w)
        rows = (l.batch, l.max_boxes)
        out = {"best_iou": np.empty(cells, np.float32), "best_iou_all": np.empty(cells, np.float32),
               "best_truth": np.empty(cells, np.int32), "writes": np.empty(cells, np.int32),
               "row_status": np.empty(rows, np.int32), "best_anchor": np.empty(rows, np.int32),
               "best_in_mask": np.empty(rows, np.int32), "row_i": np.empty(rows, np.int32),
               "row_j": np.empty(rows, np.int32), "extra": np.empty(rows + (l.n,), np.int32)}
        if elements:
            shape = (l.batch, l.n, 4 + 1 + l.classes, l.h, l.w)  # l.delta's layout
            out.update({"delta": np.empty(shape, np.float32), "form": np.empty(shape, np.int32),
                        "target": np.empty(shape, np.float32), "scale": np.empty(shape, np.float32),
                        "norm": np.empty(shape, np.float32)})
        rec = ffi.new("ab_loss_record *")
        for name, a in out.items():
            setattr(rec, name, _f32(a) if a.dtype == np.float32 else _i32(a))
        st = ffi.new("ab_network_state *")
        st.truth = _f32(truth)
        st.train = 1
        st.net_w = net_w
        st.net_h = net_h
        rc = lib.ab_record_yolo_layer(l, st, rec[0])
        if rc != DN_OK:  # pragma: no cover - the forward accepted the same layer
            raise RuntimeError(f"the C core refused to record the forward ({ERRORS.get(rc, rc)})")
        return out

    def sums(self) -> Dict[str, Any]:
        s = self.stats.sums
        return {k: getattr(s, k) for k in ("tot_iou", "tot_iou_loss", "tot_giou_loss", "count", "class_count",
                                           "total_bbox", "rewritten_bbox", "skipped_truths")}


# ---- AlexeyAB [Gaussian_yolo] ---------------------------------------------------------------------

@dataclass
class GaussianSpec:
    """What the C `ab_gaussian_yolo_layer` needs besides the input's shape."""

    n: int
    classes: int
    total: int
    max_boxes: int
    biases: np.ndarray  # float32, 2*total
    mask: np.ndarray  # int32, n
    map: Optional[np.ndarray] = None  # int32
    classes_multipliers: Optional[np.ndarray] = None  # float32, classes
    scalars: Dict[str, Any] = field(default_factory=dict)  # C field name -> value


class GaussianCall:
    """An `ab_gaussian_yolo_layer` over NumPy buffers for one forward pass."""

    def __init__(self, spec: GaussianSpec, batch: int, h: int, w: int,
                 out: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> None:
        self.keep: List[Any] = []
        self.layer = l = ffi.new("ab_gaussian_yolo_layer *")
        rc = lib.ab_gaussian_yolo_layer_init(l, batch, w, h, spec.n, spec.total, spec.classes, spec.max_boxes)
        if rc != DN_OK:
            raise ValueError("the layer's sizes do not fit the C core (too large or not positive)")
        if len(spec.biases) != 2 * spec.total or len(spec.mask) != spec.n:
            raise ValueError("the layer's biases or mask do not match its total or n")
        l.biases = self._ptr(_f32, np.ascontiguousarray(spec.biases, dtype=np.float32))
        l.mask = self._ptr(_i32, np.ascontiguousarray(spec.mask, dtype=np.int32))
        if spec.map is not None:
            l.map = self._ptr(_i32, np.ascontiguousarray(spec.map, dtype=np.int32))
            l.map_len = len(spec.map)
        if spec.classes_multipliers is not None:
            if len(spec.classes_multipliers) != spec.classes:
                raise ValueError("classes_multipliers must hold one value per class")
            l.classes_multipliers = self._ptr(_f32, np.ascontiguousarray(spec.classes_multipliers,
                                                                         dtype=np.float32))
        for name, value in spec.scalars.items():
            setattr(l, name, value)
        if out is None:
            self.output = _buffers.empty((batch, l.c, h, w))
            self.delta = _buffers.empty((batch, l.c, h, w))
        else:
            self.output, self.delta = out
            for a in out:
                _buffer(a, np.float32, batch * l.outputs, "out")
        l.output = self._ptr(_f32, self.output)
        l.delta = self._ptr(_f32, self.delta)
        self.cost = ffi.new("float *")
        self.stats = ffi.new("ab_gaussian_stats *")
        l.cost = self.cost
        l.stats = self.stats

    def _ptr(self, conv: Any, a: np.ndarray) -> Any:
        self.keep.append(a)
        return conv(a)

    def check_layer(self) -> int:
        return int(lib.ab_check_gaussian_yolo_layer(self.layer))

    def _state(self, x: Optional[np.ndarray], truth: Optional[np.ndarray], train: bool, net_w: int, net_h: int,
               index: int) -> Any:
        st = ffi.new("ab_network_state *")
        if x is not None:
            st.input = _f32(_buffer(x, np.float32, self.layer.batch * self.layer.outputs, "x"))
        if truth is not None:
            st.truth = _f32(_buffer(truth, np.float32, self.layer.batch * self.layer.truths, "truth"))
        st.train = 1 if train else 0
        st.net_w = _cint(net_w, "net_w", 1)
        st.net_h = _cint(net_h, "net_h", 1)
        st.index = _cint(index, "index")
        return st

    def check_truths(self, truth: np.ndarray, net_w: int, net_h: int) -> Tuple[int, int, int]:
        """(code, image, row) of the first truth row the C core refuses."""
        bad = ffi.new("int[2]")
        st = self._state(None, truth, True, net_w, net_h, 0)
        rc = lib.ab_check_gaussian_yolo_truths(self.layer, st[0], bad, bad + 1)
        return int(rc), int(bad[0]), int(bad[1])

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray], *, train: bool, net_w: int, net_h: int,
                index: int) -> int:
        st = self._state(x, truth, train, net_w, net_h, index)
        return int(lib.ab_forward_gaussian_yolo_layer(self.layer[0], st[0]))

    def detections(self, output: np.ndarray, img_w: int, img_h: int, net_w: int, net_h: int, thresh: np.float32,
                   relative: bool, letter: bool) -> Dict[str, Any]:
        """get_gaussian_yolo_detections on image 0 of `output` (not modified)."""
        l = self.layer
        after = np.array(output, dtype=np.float32, order="C", copy=True)
        _buffer(after, np.float32, l.batch * l.outputs, "output")
        l.output = self._ptr(_f32, after)
        n = l.w * l.h * l.n
        dets, prob, _ = _empty_dets(n, l.classes)
        uc = np.zeros((max(n, 1), 4), np.float32)
        count = int(lib.ab_get_gaussian_yolo_detections(l[0], img_w, img_h, net_w, net_h, thresh, int(relative),
                                                        int(letter), dets, _f32(uc)))
        if count < 0:
            raise ValueError(f"get_gaussian_yolo_detections: the C core refused the layer ({ERRORS.get(count, count)})")
        res: Dict[str, Any] = _read_dets(dets, count, l.classes, prob)
        res["uc"] = uc[:count].copy()
        return res


# ---- the CUDA build (darknet_src/cuda/) -------------------------------------------------------------

#: How the GPU build's device code was compiled ("" in a CPU-only build).
BUILD_CUDA: str = ffi.string(lib.dn_build_cuda()).decode()


@dataclass(frozen=True)
class CudaInfo:
    built: bool                 # compiled with CUDA (PYDARKNET_LOSS_CUDA=1)
    device_count: int           # devices the CUDA runtime sees
    device: Optional[str]       # the current device's name
    compute_capability: Optional[Tuple[int, int]]
    runtime: Optional[str]      # the CUDA runtime the core was built with, "13.0"
    driver: Optional[str]       # the driver's CUDA version, None without a driver
    flags: str                  # nvcc's device flags and targets


def _cuda_version(v: int) -> Optional[str]:
    return f"{v // 1000}.{v % 1000 // 10}" if v > 0 else None


class CudaError(RuntimeError):
    """build="gpu" cannot run here: no CUDA build, no device, or a CUDA
    runtime call failed.  The message says which and what to do."""


CUDA_CODES = (lib.DN_E_NO_CUDA, lib.DN_E_NO_DEVICE, lib.DN_E_NO_MEMORY)


def is_cuda_code(code: int) -> bool:
    return code in CUDA_CODES or code <= lib.DN_E_CUDA_RUNTIME


def cuda_error(code: int) -> CudaError:
    """The CudaError for a code of the GPU build's functions."""
    if code == lib.DN_E_NO_CUDA:
        return CudaError("build='gpu' needs the CUDA build, and this pydarknet_loss was built without it: "
                         "reinstall with `PYDARKNET_LOSS_CUDA=1 pip install .` (needs nvcc; `pydarknet-loss info` "
                         "says what was built), or use build='cpu'")
    if code == lib.DN_E_NO_DEVICE:
        info = cuda_info()
        return CudaError(f"build='gpu' needs a CUDA device: the CUDA build is present (runtime {info.runtime}) but "
                         f"the CUDA runtime sees no GPU (driver: {info.driver or 'none'}); run on a machine with "
                         "an NVIDIA GPU and its driver, or use build='cpu'")
    if code == lib.DN_E_NO_MEMORY:
        return CudaError("build='gpu': no host memory for the device's activations")
    buf = ffi.new("char[256]")
    lib.dn_cuda_error_text(code, buf, 256)
    return CudaError(f"build='gpu': a CUDA runtime call failed: {ffi.string(buf).decode(errors='replace')}")


def cuda_info() -> CudaInfo:
    info = ffi.new("dn_cuda_device *")
    rc = lib.dn_cuda_info(info)
    has = rc == DN_OK and info.device_count > 0
    return CudaInfo(bool(info.built), int(info.device_count),
                    ffi.string(info.name).decode(errors="replace") if has else None,
                    (int(info.cc_major), int(info.cc_minor)) if has else None,
                    _cuda_version(int(info.runtime_version)), _cuda_version(int(info.driver_version)), BUILD_CUDA)


# ==== issue 23 (layers branch): AlexeyAB's [region] and pjreddie's [detection] ====

ERRORS_MORE = {
    lib.DN_E_DET_TRUTH: "det-truth",
    lib.DN_E_DET_PICK: "det-pick",
    lib.DN_E_DET_COORDS: "det-coords",
    lib.DN_E_TRUTH_LABEL: "label",
    lib.DN_E_TRUTH_INT: "int",
}


@dataclass
class ABRegionSpec:
    """What the C `ab_region_layer` needs besides the input's shape."""

    n: int
    classes: int
    coords: int
    max_boxes: int
    biases: np.ndarray  # float32, 2*n
    map: Optional[np.ndarray] = None  # int32
    scalars: Dict[str, Any] = field(default_factory=dict)  # C field name -> value


class ABRegionCall:
    """An `ab_region_layer` over NumPy buffers for one forward pass.  output
    is (B, H, W, C) (upstream's flattened, channels-last buffer), delta
    (B, C, H, W)."""

    def __init__(self, spec: ABRegionSpec, batch: int, h: int, w: int, targets: bool = False) -> None:
        self.keep: List[Any] = []
        self.layer = l = ffi.new("ab_region_layer *")
        rc = lib.ab_region_layer_init(l, _cint(batch, "batch", 1), _cint(w, "w", 1), _cint(h, "h", 1),
                                      _cint(spec.n, "num", 1), _cint(spec.classes, "classes", 1),
                                      _cint(spec.coords, "coords", 4), _cint(spec.max_boxes, "max", 0))
        if rc != DN_OK:
            raise ValueError(f"the layer's sizes (batch {batch}, {w}x{h} grid, num={spec.n}, classes={spec.classes}, "
                             f"coords={spec.coords}, max={spec.max_boxes}) do not fit the C core's int")
        l.biases = self._ptr(_f32, _buffer(spec.biases, np.float32, 2 * spec.n, "anchors"))
        if spec.map is not None:
            l.map = self._ptr(_i32, _buffer(spec.map, np.int32, np.size(spec.map), "map"))
            l.map_len = _cint(np.size(spec.map), "len(map)", 1)
        for name, value in spec.scalars.items():
            try:
                setattr(l, name, value)
            except (OverflowError, TypeError):
                raise ValueError(f"{name} = {value!r} does not fit the C layer's {name} field") from None
        self.output = np.zeros((batch, h, w, l.c), dtype=np.float32)
        self.delta = np.zeros((batch, l.c, h, w), dtype=np.float32)
        l.output = self._ptr(_f32, self.output)
        l.delta = self._ptr(_f32, self.delta)
        self.cost = ffi.new("float *")
        self.stats = ffi.new("ab_region_stats *")
        l.cost = self.cost
        l.stats = self.stats
        self.target: Optional[np.ndarray] = None
        self.target_scale: Optional[np.ndarray] = None
        if targets:  # the implied loss's record (pdl.torch.ABRegionLoss)
            self.target = np.zeros_like(self.delta)
            self.target_scale = np.full_like(self.delta, np.nan)
            l.target = self._ptr(_f32, self.target)
            l.target_scale = self._ptr(_f32, self.target_scale)

    def _ptr(self, conv: Any, a: np.ndarray) -> Any:
        self.keep.append(a)
        return conv(a)

    def check_truths(self, truth: np.ndarray) -> Tuple[int, int, int]:
        """(code, image, row) of the first truth row the C core refuses."""
        l = self.layer
        _buffer(truth, np.float32, l.batch * l.truths, "truth")
        bad = ffi.new("int[2]")
        rc = lib.ab_check_region_truths(l, _f32(truth), bad, bad + 1)
        return int(rc), int(bad[0]), int(bad[1])

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray], *, train: bool, seen: int, index: int = 0,
                net_w: int = 0, net_h: int = 0) -> int:
        l = self.layer
        _buffer(x, np.float32, l.batch * l.outputs, "x")
        st = ffi.new("ab_network_state *")
        st.input = _f32(x)
        if truth is not None:
            _buffer(truth, np.float32, l.batch * l.truths, "truth")
            st.truth = _f32(truth)
        st.train = 1 if train else 0
        st.net_w = _cint(net_w, "net_w")
        st.net_h = _cint(net_h, "net_h")
        st.index = _cint(index, "index")
        if not 0 <= seen <= SIZE_MAX:
            raise ValueError(f"seen = {seen} does not fit the C core's size_t: expected 0 <= seen <= {SIZE_MAX}")
        return int(lib.ab_forward_region_layer(l[0], st[0], seen))


def ab_region_detections(call: "ABRegionCall", output0: np.ndarray, w: int, h: int, net_w: int, net_h: int,
                         thresh: np.float32, relative: int, letter: int) -> Tuple[np.ndarray, np.ndarray]:
    """custom_get_region_detections on image 0's flattened output: (bbox, prob)."""
    l = call.layer
    n = l.w * l.h * l.n
    _buffer(output0, np.float32, l.outputs, "output")
    dets = ffi.new("detection[]", n)
    prob = np.zeros((n, l.classes), dtype=np.float32)
    base = _f32(prob)
    for i in range(n):
        dets[i].prob = base + i * l.classes
        dets[i].classes = l.classes
    rc = lib.ab_custom_get_region_detections(l[0], _f32(output0), _cint(w, "w", 1), _cint(h, "h", 1),
                                             _cint(net_w, "net_w", 1), _cint(net_h, "net_h", 1), thresh,
                                             int(relative), int(letter), dets)
    if rc != DN_OK:
        raise ValueError("the C core refused the layer or the sizes")
    bbox = np.array([[dets[i].bbox.x, dets[i].bbox.y, dets[i].bbox.w, dets[i].bbox.h] for i in range(n)],
                    dtype=np.float32).reshape(n, 4)
    return bbox, prob


def glibc_rand_state(seed: int = 0) -> Any:
    """A fresh glibc rand() state after srand(seed) (owned by the caller)."""
    s = ffi.new("dn_glibc_rand *")
    lib.dn_glibc_srand(s, _cint(seed, "seed", 0) if seed <= INT_MAX else seed)
    return s


def glibc_rand(state: Any, count: int) -> np.ndarray:
    """The next `count` values of rand() from `state` (advancing it)."""
    return np.array([lib.dn_glibc_rand_next(state) for _ in range(count)], dtype=np.int64)


def glibc_rand_copy(state: Any) -> Any:
    s = ffi.new("dn_glibc_rand *")
    ffi.memmove(s, state, ffi.sizeof("dn_glibc_rand"))
    return s


@dataclass
class DetectionSpec:
    side: int
    n: int
    classes: int
    coords: int
    scalars: Dict[str, Any] = field(default_factory=dict)


class DetectionCall:
    """A C `detection_layer` over NumPy buffers (B, inputs) for one forward."""

    def __init__(self, spec: DetectionSpec, batch: int, rand_state: Any) -> None:
        self.keep: List[Any] = []
        self.layer = l = ffi.new("detection_layer *")
        rc = lib.detection_layer_init(l, _cint(batch, "batch", 1), _cint(spec.side, "side", 1), _cint(spec.n, "num", 1),
                                      _cint(spec.classes, "classes", 1), _cint(spec.coords, "coords", 0))
        if rc != DN_OK:
            raise ValueError(f"the layer's sizes (batch {batch}, side={spec.side}, num={spec.n}, classes={spec.classes}, "
                             f"coords={spec.coords}) do not fit the C core's int")
        for name, value in spec.scalars.items():
            try:
                setattr(l, name, value)
            except (OverflowError, TypeError):
                raise ValueError(f"{name} = {value!r} does not fit the C layer's {name} field") from None
        l.rand_state = rand_state
        self.keep.append(rand_state)
        self.output = np.zeros((batch, l.outputs), dtype=np.float32)
        self.delta = np.zeros((batch, l.outputs), dtype=np.float32)
        self.picks = np.full((batch, l.side * l.side), -2, dtype=np.int32)
        l.output = _f32(self.output)
        l.delta = _f32(self.delta)
        l.picks = _i32(self.picks)
        self.cost = ffi.new("float *")
        self.stats = ffi.new("detection_stats *")
        l.cost = self.cost
        l.stats = self.stats

    def check_truths(self, x: np.ndarray, truth: np.ndarray, seen: int) -> Tuple[int, int, int]:
        l = self.layer
        _buffer(x, np.float32, l.batch * l.inputs, "x")
        _buffer(truth, np.float32, l.batch * l.truths, "truth")
        bad = ffi.new("int[2]")
        rc = lib.check_detection_truths(l, _f32(x), _f32(truth), seen, bad, bad + 1)
        return int(rc), int(bad[0]), int(bad[1])

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray], *, train: bool, seen: int, index: int = 0) -> int:
        l = self.layer
        net = ffi.new("network *")
        net.input = _f32(_buffer(x, np.float32, l.batch * l.inputs, "x"))
        if truth is not None:
            net.truth = _f32(_buffer(truth, np.float32, l.batch * l.truths, "truth"))
        net.train = 1 if train else 0
        net.index = _cint(index, "index")
        if not 0 <= seen <= SIZE_MAX:
            raise ValueError(f"seen = {seen} does not fit the C core's size_t: expected 0 <= seen <= {SIZE_MAX}")
        net.seen = seen
        return int(lib.forward_detection_layer(l[0], net[0]))

    def detections(self, w: int, h: int, thresh: np.float32) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """get_detection_detections on this call's output: (bbox, objectness, prob)."""
        l = self.layer
        n = l.side * l.side * l.n
        dets = ffi.new("detection[]", n)
        prob = np.zeros((n, l.classes), dtype=np.float32)
        base = _f32(prob)
        for i in range(n):
            dets[i].prob = base + i * l.classes
            dets[i].classes = l.classes
        rc = lib.get_detection_detections(l[0], _cint(w, "w", 1), _cint(h, "h", 1), thresh, dets)
        if rc != DN_OK:
            raise ValueError("the C core refused the detection layer (coords < 4?)")
        bbox = np.array([[dets[i].bbox.x, dets[i].bbox.y, dets[i].bbox.w, dets[i].bbox.h] for i in range(n)],
                        dtype=np.float32).reshape(n, 4)
        obj = np.array([dets[i].objectness for i in range(n)], dtype=np.float32)
        return bbox, obj, prob

# ==== end of issue 23's block ====

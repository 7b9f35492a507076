"""The only module that touches the compiled core.

Buffers in, buffers out: it points C `layer`/`network`/`tree` structs at
NumPy arrays (without copying), calls one C function and hands back NumPy
arrays and plain numbers.  It validates nothing that the public API has not
already validated, except what the C core itself reports.
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

# Return codes of the C core (darknet_loss.h).
DN_OK = lib.DN_OK
ERRORS = {
    lib.DN_E_LAYER: "layer",
    lib.DN_E_TRUTH_VALUE: "value",
    lib.DN_E_TRUTH_SIZE: "size",
    lib.DN_E_TRUTH_CELL: "cell",
    lib.DN_E_MAP_INDEX: "map",
    lib.DN_E_TRUTH_CLASS: "class",
}


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
    n = len(parent)
    parent = np.ascontiguousarray(parent, dtype=np.int32)
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
    t.n = len(arrays["parent"])
    t.groups = len(arrays["group_size"])
    for name in TREE_ARRAYS:
        keep.append(arrays[name])
        setattr(t, name, _i32(arrays[name]))
    keep.append(t)
    return t


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
    if spec.kind == "yolo":
        rc = lib.yolo_layer_init(l, batch, w, h, spec.n, spec.total, spec.classes)
    else:
        rc = lib.region_layer_init(l, batch, w, h, spec.n, spec.classes, spec.coords)
    if rc != DN_OK:
        raise ValueError("the layer's sizes do not fit the C core (too large or not positive)")

    def ptr(conv: Any, a: np.ndarray) -> Any:
        keep.append(a)
        return conv(a)

    l.biases = ptr(_f32, spec.biases)
    if spec.mask is not None:
        l.mask = ptr(_i32, spec.mask)
    if spec.map is not None:
        l.map = ptr(_i32, spec.map)
        l.map_len = len(spec.map)
    if spec.tree is not None:
        l.softmax_tree = tree_struct(spec.tree, keep)
    for name, value in spec.scalars.items():
        setattr(l, name, value)
    return l


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

    def check_layer(self) -> int:
        return int(lib.check_layer(self.layer[0]))

    def check_truths(self, truth: np.ndarray) -> Tuple[int, int, int]:
        """(code, image, row) of the first truth row the C core refuses."""
        bad = ffi.new("int[2]")
        rc = lib.check_truths(self.layer[0], _f32(truth), bad, bad + 1)
        return int(rc), int(bad[0]), int(bad[1])

    def forward(self, x: np.ndarray, truth: Optional[np.ndarray], *, train: bool, net_w: int = 0,
                net_h: int = 0, index: int = 0, seen: int = 0, threads: Optional[int] = None,
                terms: Optional[Tuple[np.ndarray, ...]] = None) -> int:
        net = ffi.new("network *")
        net.input = _f32(x)
        if truth is not None:
            net.truth = _f32(truth)
        net.train = 1 if train else 0
        net.w = net_w
        net.h = net_h
        net.index = index
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
        fn = lib.forward_yolo_layer_opt if self.spec.kind == "yolo" else lib.forward_region_layer_opt
        # cffi releases the GIL for the call.
        return int(fn(self.layer[0], net[0], threads, forward_path()))


def box_rows(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """box_iou or box_rmse of matching rows of two C-contiguous (n, 4) float32 arrays."""
    out = np.empty(a.shape[0], dtype=np.float32)
    fn = lib.box_iou_rows if op == "iou" else lib.box_rmse_rows
    fn(_f32(a), _f32(b), a.shape[0], _f32(out))
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
    labels = ffi.new("box_label[]", max(count, 1))
    for i in range(count):
        labels[i] = lib.box_label_from(int(ids[i]), *(float(v) for v in xywh[i]))
    return int(lib.fill_truth_detection_boxes(labels, count, num_boxes, _f32(out), dx, dy, sx, sy, flip))


# ---- detections and NMS --------------------------------------------------------

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
    n = w * h * spec.n
    mask_n = spec.coords - 4
    dets, prob, mask = _empty_dets(n, spec.classes, mask_n)
    map_ptr = _i32(cmap) if cmap is not None else ffi.NULL
    lib.get_region_detections(l[0], img_w, img_h, net_w, net_h, thresh, map_ptr, tree_thresh, int(relative), dets)
    res: Dict[str, Any] = _read_dets(dets, n, spec.classes, prob)
    res.update(output_after=after, mask=None if mask is None else mask[:n].copy())
    return res


def nms(which: str, bbox: np.ndarray, objectness: np.ndarray, prob: np.ndarray, sort_class: np.ndarray,
        thresh: np.float32) -> Dict[str, np.ndarray]:
    n, classes = prob.shape
    dets = ffi.new("detection[]", max(n, 1))
    work = np.array(prob, dtype=np.float32, order="C", copy=True)
    lib.dets_from_arrays(dets, n, classes, _f32(bbox), _f32(objectness), _f32(work), _i32(sort_class),
                         ffi.NULL, 0)
    fn = lib.do_nms_sort if which == "sort" else lib.do_nms_obj
    if fn(dets, n, classes, thresh) != 0:
        raise MemoryError("no memory for the NMS scratch buffers")
    return _read_dets(dets, n, classes, work, sort_class=True)

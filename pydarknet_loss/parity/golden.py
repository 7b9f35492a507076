"""Golden cases: the training-forward format of the golden set computed by
upstream darknet, read, run, checked and exported.  The format, key by key,
ships with the package: :mod:`pydarknet_loss.parity.golden_format`
(``help(pydarknet_loss.parity.golden_format)``).

A case is one ``.npz`` with ``kind`` (``yolo``, ``region``, AlexeyAB's
``yolo_ab`` or ``gaussian_yolo_ab``: the shared more-layers format), ``params`` (JSON), ``input``, ``truth``, ``train``, ``seen``
(region), ``output``, ``delta``, ``cost``, ``stats``, ``count``, ``text`` and
``tags`` (JSON); ``yolo_ab`` adds ``stats_names``, ``labels``,
``class_ids``, ``total_bbox``, ``rewritten_bbox``, ``counters_racy`` and
``truth_cols``; hank-ai's ``yolo_hankai`` is ``yolo_ab``'s format (the
shared hank-ai cases say ``yolo_ab`` with ``params.upstream`` naming hank-ai,
and are run as ``yolo_hankai``); cases written here add ``provenance`` (JSON).  A folder holds
cases and a ``MANIFEST.json``.  Files are read with ``allow_pickle=False``;
a file that is not such a case is a :class:`GoldenError` naming it.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import _native, _validate
from .._version import UPSTREAM_COMMIT, __version__
from ..layers import alexeyab
from ..layers import gaussian, hankai
from ..layers.pjreddie import RegionLayer, RegionResult, YoloLayer, YoloResult
from .compare import ParityReport, compare
from . import more_layers as _more  # issue 23

PathLike = Union[str, "os.PathLike[str]"]
Result = Union[YoloResult, RegionResult, alexeyab.YoloResult, alexeyab.GaussianYoloResult]
Layer = Union[YoloLayer, RegionLayer, alexeyab.YoloLayer, alexeyab.GaussianYoloLayer]

#: The training-forward kinds (region_ab: AlexeyAB's [region]; detection: YOLOv1's [detection], issue 23).
KINDS = ("yolo", "region", "yolo_ab", "yolo_hankai", "gaussian_yolo_ab", "region_ab", "detection")
#: The [yolo] kinds of AlexeyAB's lineage (their files share one format).
AB_KINDS = ("yolo_ab", "yolo_hankai")
#: Kinds whose cases keep upstream's own buffer layouts (more-layers README) and whose params hold the
#: cfg options as ``kwargs`` (and ``map``, ``forwards``).
MORE_KINDS = ("region_ab", "detection")


def case_kind(kind: str, params: Dict[str, Any]) -> str:
    """A case's kind as this package runs it: hank-ai's shared cases are
    written as ``yolo_ab`` with ``params.upstream`` naming hank-ai; they run
    as ``yolo_hankai`` (pydarknet_loss.hankai)."""
    if kind == "yolo_ab" and str(params.get("upstream", "")).startswith("hank-ai/"):
        return "yolo_hankai"
    return kind


def flavor_of(kind: str) -> str:
    """The darknet a case kind reproduces."""
    return {"yolo_ab": "alexeyab", "yolo_hankai": "hankai", "gaussian_yolo_ab": "alexeyab",
            "region_ab": "alexeyab"}.get(kind, "pjreddie")
#: What ``golden export --profile`` draws (see :func:`draw_case`).
PROFILES = ("realistic", "stress", "all")
#: The stress features ``all`` adds one of to half its cases.
STRESS_FEATURES = ("mag_n4", "mag_n20", "extreme_inputs", "tiny_box", "huge_box", "border_touch",
                   "cell_boundary_xy", "dup_cell_hit", "x0_terminator_mid", "fractional_class_id", "zero_truths",
                   "train_false")


class GoldenError(ValueError):
    """A file that is not a readable golden case, or a folder that cannot be
    written; the message names the file."""


#: The params keys each pjreddie layer's constructor takes (same names);
#: absent keys take the constructor's defaults, which are upstream's parser defaults.
LAYER_KEYS = {
    "yolo": ("classes", "anchors", "total", "mask", "ignore_thresh", "truth_thresh", "max_boxes", "map"),
    "region": ("classes", "anchors", "coords", "num", "softmax", "background", "rescore", "bias_match", "thresh",
               "coord_scale", "object_scale", "noobject_scale", "class_scale", "mask_scale", "max_boxes", "map",
               "log", "sqrt", "absolute", "classfix"),
}


def layer_from_params(kind: str, params: Dict[str, Any], base_dir: Optional[PathLike] = None,
                      *, need_tree: bool = True) -> Layer:
    """The layer a case's ``params`` describe.  A region ``tree`` path is
    read relative to ``base_dir``; with ``need_tree=False`` a missing tree
    file is left out (enough to name components)."""
    kind = case_kind(kind, params)
    if kind == "yolo_hankai":
        return hankai.layer_from_params(params)
    if kind == "yolo_ab":
        return alexeyab.layer_from_params(params)
    if kind == "gaussian_yolo_ab":  # the cfg options as parsed (params.kwargs), the map, the batch
        return gaussian.layer_from_params(params)
    if kind == "region_ab":
        from ..layers import ab_region
        return ab_region.layer_from_case(params)
    if kind == "detection":
        from ..layers import detection
        return detection.layer_from_case(params)
    if kind not in LAYER_KEYS:
        raise ValueError(f"not a training-forward case kind: {kind!r} (expected one of {', '.join(KINDS)})")
    kw = {k: params[k] for k in LAYER_KEYS[kind] if params.get(k) is not None}
    if kind == "yolo":
        return YoloLayer(**kw)
    tree = params.get("tree")
    if tree is not None:
        path = Path(tree) if base_dir is None else Path(base_dir) / tree
        if path.is_file() or need_tree:
            kw["tree"] = path
    # The shared cases write temperature null for upstream's 0.
    return RegionLayer(temperature=params.get("temperature") or 0.0, **kw)


_NEED = ("kind", "params", "input", "truth", "train", "output", "delta", "cost")
_AB_EXTRA = ("labels", "class_ids", "total_bbox", "rewritten_bbox", "stats_names", "counters_racy", "truth_cols")


def _read(path: Path) -> Dict[str, np.ndarray]:
    """The arrays of a case file; anything unreadable is a GoldenError naming it."""
    return read_arrays(path)


# ---- reading .npz files without trusting them (issue 22) --------------------------------
#: Deflate expands at most about 1032-fold (RFC 1951: 258 bytes from 2 bits, plus block overhead).
_DEFLATE_MAX_RATIO = 1032
#: A golden case holds about 25 arrays; more members than this is not one.
_MAX_MEMBERS = 256


def _what_it_is(head: bytes) -> str:
    """What a file that is no zip archive looks like, from its first bytes."""
    if not head:
        return "it is empty (0 bytes)"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array (np.save), not an .npz archive of a case's arrays (np.savez)"
    if head[:1] == b"\x80":
        return "it looks like a Python pickle, which is never loaded (it can run code)"
    if head.startswith(b"PK"):
        return "it starts like a zip archive but is damaged or truncated"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"it is plain text (it starts {head[:40]!r}), not an .npz (zip) archive"
    return f"it is binary data that is not an .npz (zip) archive (it starts {head[:16]!r})"


def read_arrays(path: PathLike, *, what: str = "golden case", keys: Optional[Sequence[str]] = None
                ) -> Dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (only ``keys``, when given), read
    without trusting it; anything wrong is a :class:`GoldenError` naming the
    file (and the member):

    * the path must be a regular file (a FIFO is never opened: it would
      block), not missing, not a broken or looping symbolic link;
    * the file must be a zip archive of ``.npy`` members, stored or
      deflated, each member's sizes possible for the file's size;
    * each member's header (shape and dtype) must describe exactly the bytes
      the member holds, no object dtype (pickles are never loaded), at most
      2**31 - 1 values: checked before anything is allocated.
    """
    p = Path(path)
    try:
        f = _validate.open_regular(p, what)
    except (OSError, ValueError) as exc:
        raise GoldenError(str(exc)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(64)
        f.seek(0)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise GoldenError(f"{p}: not a {what} (.npz) file: {_what_it_is(head)} ({exc})") from None
        with zf:
            infos = zf.infolist()
            if len(infos) > _MAX_MEMBERS:
                raise GoldenError(f"{p}: holds {len(infos)} members; a {what} holds a few dozen arrays")
            out: Dict[str, np.ndarray] = {}
            for info in infos:
                name = info.filename
                key = name[:-4] if name.endswith(".npy") else None
                if key is None:
                    raise GoldenError(f"{p}: member {name!r} is not a .npy array; a {what} holds arrays only")
                if key in out:
                    raise GoldenError(f"{p}: member {name!r} appears twice")
                if keys is not None and key not in keys:
                    continue
                out[key] = _member(zf, info, p, size)
    return out


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path, size: int) -> np.ndarray:
    """One .npy member, its header checked against its size before anything is allocated."""
    where = f"{p}, member {info.filename!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise GoldenError(f"{where}: compression method {info.compress_type}; golden files are stored or deflated "
                          "(np.savez, np.savez_compressed)")
    if info.compress_size > size:
        raise GoldenError(f"{where}: claims {info.compress_size} packed bytes, more than the file's {size}")
    most = info.compress_size if info.compress_type == zipfile.ZIP_STORED else \
        info.compress_size * _DEFLATE_MAX_RATIO + 1024
    if info.file_size > most:
        raise GoldenError(f"{where}: claims {info.file_size} bytes unpacked from {info.compress_size} packed, more "
                          "than its compression can give")
    nbytes = 0
    try:
        with zf.open(info) as m:
            version = np.lib.format.read_magic(m)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(m)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(m)
            else:
                raise GoldenError(f"{where}: .npy format version {version[0]}.{version[1]}; golden files use "
                                  "1.0 or 2.0 (np.save)")
            start = m.tell()
        if dtype.hasobject:
            raise GoldenError(f"{where}: holds pickled Python objects (dtype {dtype}); golden cases hold plain "
                              "arrays only, and pickles are never loaded (they can run code)")
        if any(int(d) < 0 for d in shape):
            raise GoldenError(f"{where}: its header claims shape {tuple(shape)}, with a negative dimension")
        count = extent = 1
        for d in shape:
            count *= int(d)
            extent *= max(int(d), 1)  # a zero dimension does not excuse the others (NumPy refuses those too)
        nbytes = count * dtype.itemsize
        if extent > _validate.INT_MAX:
            raise GoldenError(f"{where}: its header claims shape {tuple(shape)}, {extent} values, more than the C "
                              f"core indexes ({_validate.INT_MAX})")
        if nbytes != info.file_size - start:
            raise GoldenError(f"{where}: its header claims shape {tuple(shape)} of {dtype} ({nbytes} bytes), but the "
                              f"member holds {info.file_size - start} bytes after its header: refused before "
                              "allocating anything")
        with zf.open(info) as m:
            return np.lib.format.read_array(m, allow_pickle=False)
    except GoldenError:
        raise
    except MemoryError:
        raise GoldenError(f"{where}: no memory for its {nbytes} bytes") from None
    except Exception as exc:  # whatever a damaged member raises, said with the file's name
        raise GoldenError(f"{where}: not a readable .npy array ({type(exc).__name__}: {exc})") from None


@dataclass
class GoldenCase:
    """One training-forward case, as stored."""

    path: Path
    kind: str
    params: Dict[str, Any]
    input: np.ndarray
    truth: np.ndarray
    train: bool
    output: np.ndarray
    delta: np.ndarray
    cost: np.float32
    stats: np.ndarray
    count: int
    text: str
    tags: List[str]
    seen: int = 0
    provenance: Dict[str, Any] = field(default_factory=dict)
    base_dir: Optional[Path] = None  #: where tree/map paths in params are relative to
    extra: Dict[str, Any] = field(default_factory=dict)  #: yolo_ab: labels, class_ids, counters, ...

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def load(cls, path: PathLike, base_dir: Optional[PathLike] = None) -> "GoldenCase":
        p = Path(path)
        d = _read(p)
        missing = [k for k in _NEED if k not in d]
        if missing:
            raise GoldenError(f"{p}: not a training-forward golden case: no {', '.join(missing)}")
        kind = str(d["kind"])
        if kind not in KINDS:
            raise GoldenError(f"{p}: kind {kind!r} is not a training-forward case ({', '.join(KINDS)})")
        try:
            params = json.loads(str(d["params"]))
            tags = json.loads(str(d["tags"])) if "tags" in d else []
            prov = json.loads(str(d["provenance"])) if "provenance" in d else {}
        except json.JSONDecodeError as exc:
            raise GoldenError(f"{p}: params, tags or provenance is not JSON ({exc})") from None
        if not isinstance(params, dict):
            raise GoldenError(f"{p}: params must be a JSON object")
        for key in ("input", "truth", "output", "delta"):
            if d[key].dtype != np.float32:
                raise GoldenError(f"{p}: {key} has dtype {d[key].dtype}, expected float32")
        if kind == "region_ab":  # output is upstream's flattened (B, H, W, C) buffer
            b_, c_, h_, w_ = d["input"].shape if d["input"].ndim == 4 else (0, 0, 0, 0)
            if d["input"].ndim != 4 or d["output"].shape != (b_, h_, w_, c_) or d["delta"].shape != d["input"].shape:
                raise GoldenError(f"{p}: region_ab input and delta must be (B, C, H, W) and output (B, H, W, C), "
                                  f"got {d['input'].shape}, {d['output'].shape}, {d['delta'].shape}")
        elif kind == "detection":
            if d["input"].ndim != 2 or d["output"].shape != d["input"].shape or d["delta"].shape != d["input"].shape:
                raise GoldenError(f"{p}: detection input, output and delta must share one (B, inputs) shape, got "
                                  f"{d['input'].shape}, {d['output'].shape}, {d['delta'].shape}")
        elif d["input"].ndim != 4 or d["output"].shape != d["input"].shape or d["delta"].shape != d["input"].shape:
            raise GoldenError(f"{p}: input, output and delta must share one (B, C, H, W) shape, got "
                              f"{d['input'].shape}, {d['output'].shape}, {d['delta'].shape}")
        kind = case_kind(kind, params)
        try:
            return cls._build(p, d, kind, params, tags, prov, base_dir)
        except (TypeError, ValueError) as exc:  # a scalar key holding an array, a non-JSON extra, ...
            if isinstance(exc, GoldenError):
                raise
            raise GoldenError(f"{p}: not a training-forward golden case: {exc}") from None

    @classmethod
    def _build(cls, p: Path, d: Dict[str, np.ndarray], kind: str, params: Dict[str, Any], tags: Any,
               prov: Any, base_dir: Optional[PathLike]) -> "GoldenCase":
        extra: Dict[str, Any] = {}
        if kind == "gaussian_yolo_ab":
            for k in ("stats_names", "line", "truth_cols"):
                if k in d:
                    extra[k] = json.loads(str(d[k])) if k != "line" else str(d[k])
        if kind in MORE_KINDS:
            for k in ("stats_names", "line"):
                if k in d:
                    extra[k] = json.loads(str(d[k])) if k == "stats_names" else str(d[k])
        if kind in AB_KINDS:
            for k in _AB_EXTRA:
                if k in d:
                    v = d[k]
                    extra[k] = json.loads(str(v)) if k in ("stats_names", "truth_cols") else v
        return cls(path=p, kind=kind, params=params, input=d["input"], truth=d["truth"], train=bool(d["train"]),
                   output=d["output"], delta=d["delta"], cost=np.float32(d["cost"]),
                   stats=d.get("stats", np.zeros(0)), count=int(d["count"]) if "count" in d else -1,
                   text=str(d["text"]) if "text" in d else "", tags=list(tags),
                   seen=int(d["seen"]) if "seen" in d else 0, provenance=prov,
                   base_dir=Path(base_dir) if base_dir is not None else default_base(p), extra=extra)

    def layer(self, need_tree: bool = True) -> Layer:
        return layer_from_params(self.kind, self.params, self.base_dir, need_tree=need_tree)

    @property
    def net(self) -> Dict[str, int]:
        """The network arguments of a forward: net_w, net_h ([yolo] kinds) or seen ([region])."""
        if self.kind == "region":
            return {"seen": self.seen}
        return {"net_w": int(self.params["net_w"]), "net_h": int(self.params["net_h"])}

    def run(self) -> Result:
        """The oracle on this case's input."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = self.layer()
            if self.kind in MORE_KINDS:
                res = None
                for _ in range(int(self.params.get("forwards", 1))):  # detection: one layer, its rand() continues
                    res = layer.forward(self.input, self.truth, seen=self.seen, train=self.train,
                                        index=self.params.get("net_index", 0))
                return res
            if isinstance(layer, RegionLayer):
                return layer.forward(self.input, self.truth, seen=self.seen, train=self.train)
            return layer.forward(self.input, self.truth, train=self.train, index=self.params.get("net_index", 0),
                                 **self.net)

    def expected(self) -> Dict[str, Any]:
        return {"output": self.output, "delta": self.delta, "cost": self.cost}

    def check(self, actual: Any, *, parts: Any = None, **kw: Any) -> ParityReport:
        """compare() of another implementation's arrays with this case, its
        input and truth explaining each difference (when the case trains and
        its tree, if any, is at hand).  ``parts``: judge only those parts
        (compare's ``parts=``, e.g. ``("objectness", "classes")``); the
        failing elements of the others are reported as known departures.
        It needs a training case whose oracle can run (its tree at hand).
        A case tagged ``build_gpu`` (found by a fuzz run with ``build="gpu"``)
        is compared with the GPU build's values unless ``build=`` says otherwise."""
        if parts is not None:
            kw["parts"] = parts
        if "build_gpu" in self.tags:
            kw.setdefault("build", "gpu")
        try:
            layer = self.layer()
        except FileNotFoundError as exc:
            if parts is not None:
                raise ValueError(f"{self.name}: parts= needs darknet's parts of the delta on this case, from the "
                                 f"oracle's run, which needs the case's tree file ({exc})") from None
            return compare(self.expected(), actual, self.layer(need_tree=False), **kw)
        return compare(self, actual, layer, **kw)

    def assert_parity(self, actual: Any, **kw: Any) -> ParityReport:
        """check(), raising AssertionError with the whole report (the causes,
        the per-component table) when it fails: the one line a test needs."""
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        report = self.check(actual, **kw)
        if not report.ok:
            raise AssertionError(f"{self.name}:\n{report}")
        return report


def default_base(path: Path) -> Path:
    """Where tree/map paths in a case's params are relative to."""
    # Shared layout: <root>/cases/case.npz with tree paths like data/9k.tree
    # relative to <root>; our own cases use paths relative to the case folder.
    return path.parent.parent if path.parent.name in ("cases", "inference") else path.parent


@dataclass(frozen=True)
class CaseEntry:
    """One training-forward case of a folder: its file and what the
    MANIFEST (or the file) says of it."""

    path: Path
    kind: str
    train: bool
    tags: List[str]


def case_entries(folder: PathLike) -> List[CaseEntry]:
    """The training-forward cases of a folder, in MANIFEST order (or sorted
    by name when there is none)."""
    d = Path(folder)
    if not d.exists():
        raise FileNotFoundError(f"golden folder not found: {d}")
    if not d.is_dir():
        raise GoldenError(f"{d}: not a folder of golden cases")
    man = d / "MANIFEST.json"
    if man.exists() or man.is_symlink():  # a FIFO or a broken link is refused by name, not skipped
        try:
            top = json.loads(_validate.read_text(man, "golden MANIFEST"))
            cases = top.get("cases", [])
            # the more-layers MANIFESTs name the kind once, as "layer"
            default_kind = top.get("layer") if isinstance(top.get("layer"), str) else None
            return [CaseEntry(d / str(c["file"]), c.get("kind", default_kind), bool(c.get("train", True)),
                              list(c.get("tags", [])))
                    for c in cases if isinstance(c, dict) and c.get("kind", default_kind) in KINDS and "file" in c]
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError, TypeError, ValueError, OSError) as exc:
            raise GoldenError(f"{man}: not a golden MANIFEST ({exc})") from None
    out = []
    for p in sorted(d.glob("*.npz")):
        try:
            z = read_arrays(p, keys=("kind", "tags", "train"))
            tags = json.loads(str(z["tags"])) if "tags" in z else []
            tags = [str(t) for t in tags] if isinstance(tags, list) else []
            train = bool(z["train"]) if "train" in z else True
        except (GoldenError, json.JSONDecodeError, ValueError, TypeError):
            out.append(CaseEntry(p, "?", True, []))  # reported by name when it is checked
            continue
        if "kind" in z and str(z["kind"]) in KINDS:
            out.append(CaseEntry(p, str(z["kind"]), train, tags))
    return out


def case_files(folder: PathLike, *, train: Optional[bool] = None) -> List[Path]:
    """The training-forward case files of a folder (``train=True``: only
    those that train, ``False``: only inference ones)."""
    return [e.path for e in case_entries(folder) if train is None or e.train == train]


def load_cases(folder: PathLike) -> List[GoldenCase]:
    return [GoldenCase.load(p) for p in case_files(folder)]


# ---- writing --------------------------------------------------------------------

def write_npz(path: PathLike, arrays: Dict[str, Any]) -> None:
    """np.savez_compressed, but byte-reproducible: fixed entry order and
    timestamps, so the same content gives the same file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asanyarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, data.getvalue())
    Path(path).write_bytes(buf.getvalue())


def _commit(flavor: str) -> str:
    return {"alexeyab": alexeyab.AB_COMMIT, "hankai": hankai.HANKAI_COMMIT}.get(flavor, UPSTREAM_COMMIT)


def provenance(flavor: str = "pjreddie", **extra: Any) -> Dict[str, Any]:
    upstream = {"alexeyab": "AlexeyAB/darknet", "hankai": "hank-ai/darknet"}.get(flavor, "pjreddie/darknet")
    upstream = f"{upstream} {_commit(flavor)}"
    return {"computed_by": f"pydarknet_loss {__version__}, reproducing upstream {upstream} (CPU build)",
            "package_version": __version__,
            "upstream_commit": _commit(flavor),
            "cflags": _native.BUILD_CFLAGS, **extra}


def case_arrays(kind: str, params: Dict[str, Any], x: np.ndarray, truth: np.ndarray, train: bool,
                seen: int, res: Result, tags: Sequence[str], prov: Dict[str, Any]) -> Dict[str, Any]:
    """The keys of one case file for an oracle result."""
    stats = res.stats
    d: Dict[str, Any] = {
        "kind": np.array(kind), "params": np.array(json.dumps(params, sort_keys=True)), "input": x, "truth": truth,
        "train": np.array(bool(train)), "output": res.output, "delta": res.delta, "cost": np.float32(res.cost),
        "stats": stats.as_array() if stats is not None else np.zeros(0),
        "tags": np.array(json.dumps(sorted(set(tags)))), "provenance": np.array(json.dumps(prov, sort_keys=True)),
    }
    if isinstance(res, alexeyab.GaussianYoloResult):  # the shared more-layers format
        d.update(count=np.int64(res.count), text=np.array(res.text), seen=np.int64(seen),
                 stats_names=np.array(json.dumps(list(alexeyab.GaussianYoloStats.NAMES))),
                 line=np.array(stats.line() if stats is not None else ""),
                 truth_cols=np.array(json.dumps(["x", "y", "w", "h", "class_id", "track_id"])))
    if kind in MORE_KINDS:
        d.update(_more.arrays(res))
        d["seen"] = np.int64(seen)
        return d
    if isinstance(res, alexeyab.YoloResult):
        d.update(count=np.int64(res.count), text=np.array(res.text),
                 stats_names=np.array(json.dumps(stats.names if stats is not None else [])),
                 labels=res.labels, class_ids=res.class_ids, total_bbox=np.int64(res.total_bbox),
                 rewritten_bbox=np.int64(res.rewritten_bbox), counters_racy=np.array(x.shape[0] > 1),
                 truth_cols=np.array(json.dumps(["x", "y", "w", "h", "class_id", "track_id"])))
        return d
    d.update(count=np.int64(stats.count if stats is not None else -1),
             text=np.array(stats.line() + "\n" if stats is not None else ""))
    if kind == "region":
        d["seen"] = np.int64(seen)
    return d


def layer_params(layer: Layer, *, w: int, h: int, batch: int, net_w: int = 0, net_h: int = 0,
                 net_index: int = 0, tree: Optional[str] = None) -> Dict[str, Any]:
    """A case's ``params`` for a layer (floats as the float32 values, written
    as doubles, as the shared set writes them)."""
    f = lambda v: float(np.float32(v))  # noqa: E731
    if isinstance(layer, alexeyab.GaussianYoloLayer):
        # the shared more-layers form: the options as parsed in kwargs, the map beside them
        kw = {k: v for k, v in layer.params().items() if v is not None and k not in ("map", "batch")}
        return dict(kwargs=kw, map=None if layer.map is None else layer.map.tolist(), w=w, h=h, batch=batch,
                    net_w=net_w, net_h=net_h, net_index=net_index, seen=0)
    if _more.is_more(layer):
        return _more.case_params(layer, w=w, h=h, batch=batch, net_w=net_w, net_h=net_h, net_index=net_index)
    if isinstance(layer, alexeyab.YoloLayer):
        p: Dict[str, Any] = layer.params()
        p.update(max_delta=float(layer._max_delta32()), n=layer.n, net_w=net_w, net_h=net_h, net_index=net_index)
    elif isinstance(layer, YoloLayer):
        p = dict(classes=layer.classes, total=layer.total, mask=layer.mask.tolist(),
                 anchors=[f(a) for a in layer.anchors], ignore_thresh=f(layer.ignore_thresh),
                 truth_thresh=f(layer.truth_thresh), max_boxes=layer.max_boxes,
                 net_w=net_w, net_h=net_h, net_index=net_index)
    else:
        p = dict(classes=layer.classes, coords=layer.coords, num=layer.num, anchors=[f(a) for a in layer.anchors],
                 softmax=layer.softmax, background=layer.background, rescore=layer.rescore,
                 bias_match=layer.bias_match, thresh=f(layer.thresh), coord_scale=f(layer.coord_scale),
                 object_scale=f(layer.object_scale), noobject_scale=f(layer.noobject_scale),
                 class_scale=f(layer.class_scale), mask_scale=f(layer.mask_scale), max_boxes=layer.max_boxes,
                 log=layer.log, sqrt=layer.sqrt, absolute=layer.absolute, classfix=layer.classfix)
        if layer.temperature != 0:
            p["temperature"] = f(layer.temperature)
        if tree is not None:
            p["tree"] = tree
    if layer.map is not None:
        p["map"] = layer.map.tolist()
    p.update(w=w, h=h, batch=batch)
    return p


# ---- drawing cases ------------------------------------------------------------------

MAGNITUDES = {"mag_n1": 1.0, "mag_n4": 4.0, "mag_n20": 20.0}


def _truth_rows(layer: Layer) -> int:
    if isinstance(layer, (alexeyab.YoloLayer, alexeyab.GaussianYoloLayer)):
        return layer.max_boxes
    return 90 if isinstance(layer, YoloLayer) else 30


def _truth_cols(layer: Layer) -> int:
    return 6 if isinstance(layer, (alexeyab.YoloLayer, alexeyab.GaussianYoloLayer)) else layer.coords + 1


def draw_case(layer: Layer, params: Dict[str, Any], rng: np.random.Generator, profile: str = "stress"
              ) -> Dict[str, Any]:
    """An input and truths for one case.

    ``"stress"``: the shared set's kinds of variation, several per case:
    input magnitudes up to exp overflow, tiny, huge, border-touching and
    cell-boundary boxes, duplicate hits, fractional class ids, an x == 0
    terminator mid-list, no truths, inference; for [region] seen on both
    sides of 12800.  ``"realistic"``: what a training step sees: logits
    ~ N(0, 1), one to ten ordinary boxes with whole class ids, training,
    seen past 12800.  ``"all"``: realistic, and in half the cases one stress
    feature added (tagged, so that a failure says which).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if _more.is_more(layer):
        return _more.draw(layer, params, rng, profile)
    feature = None
    if profile == "all" and rng.random() < 0.5:
        feature = str(rng.choice(STRESS_FEATURES))
    if profile == "stress":
        return _draw_stress(layer, params, rng)
    return _draw_realistic(layer, params, rng, feature)


def _keep_in_grid(truth: np.ndarray, b: int, t: int, w: int, h: int) -> None:
    """Keep a truth's cell inside the grid, as the oracle requires."""
    for col, size in ((0, w), (1, h)):
        while np.float32(truth[b, t, col]) * np.float32(size) >= size:
            truth[b, t, col] = np.nextafter(truth[b, t, col], np.float32(0))


def _classes_drawn(layer: Layer) -> int:
    if isinstance(layer, hankai.YoloLayer):
        return layer.classes  # an id past classes is fatal in hank-ai (map or not)
    return len(layer.map) if layer.map is not None else layer.classes


def _draw_realistic(layer: Layer, params: Dict[str, Any], rng: np.random.Generator,
                    feature: Optional[str]) -> Dict[str, Any]:
    B, h, w = params["batch"], params["h"], params["w"]
    tags: List[str] = ["realistic"]
    scale = {"mag_n4": 4.0, "mag_n20": 20.0}.get(feature or "", 1.0)
    x = (rng.standard_normal((B, layer.channels, h, w)) * scale).astype(np.float32)
    tags.append({1.0: "mag_n1", 4.0: "mag_n4", 20.0: "mag_n20"}[scale])
    if feature == "extreme_inputs":
        x = (x * np.float32(100)).astype(np.float32)
        tags.append("extreme_inputs")
    if np.abs(x).max() > 88:
        tags.append("exp_overflow_mag")
    rows, cols = _truth_rows(layer), _truth_cols(layer)
    truth = np.zeros((B, rows, cols), np.float32)
    limit = min(rows, 10, getattr(layer, "max_boxes", rows) or rows)
    n_classes = _classes_drawn(layer)
    for b in range(B):
        k = 0 if feature == "zero_truths" else int(rng.integers(1, limit + 1)) if limit else 0
        for t in range(k):
            cx, cy = rng.uniform(0.02, 0.98, 2)
            bw, bh = rng.uniform(0.05, 0.6, 2)
            if feature == "tiny_box" and t == 0:
                bw, bh = rng.uniform(1e-4, 3e-3, 2)
            elif feature == "huge_box" and t == 0:
                bw, bh = rng.uniform(0.85, 1.0, 2)
            elif feature == "border_touch" and t == 0:
                cx = bw / 2
            elif feature == "cell_boundary_xy" and t == 0:
                cx = (int(rng.integers(1, w)) / w) if w > 1 else 0.5
            cls = float(rng.integers(0, n_classes))
            if feature == "fractional_class_id" and t == 0:
                cls += float(rng.choice([0.3, 0.7, 0.99]))
            truth[b, t, :4] = [cx, cy, bw, bh]
            if isinstance(layer, (alexeyab.YoloLayer, alexeyab.GaussianYoloLayer)):
                truth[b, t, 4], truth[b, t, 5] = cls, float(rng.integers(0, 5))  # class id, track id
            else:
                truth[b, t, 4:cols - 1] = rng.uniform(0, 1, cols - 5)  # [region] mask targets
                truth[b, t, cols - 1] = cls
            if feature == "dup_cell_hit" and t == 1:
                truth[b, t, :2] = truth[b, 0, :2]
            _keep_in_grid(truth, b, t, w, h)
        if feature == "x0_terminator_mid" and k > 2:
            truth[b, int(rng.integers(1, k - 1)), 0] = 0
    if feature and feature not in ("mag_n4", "mag_n20", "extreme_inputs"):
        tags.append(feature)
    if not truth[:, :, 0].any() and "zero_truths" not in tags:
        tags.append("zero_truths")
    train = feature != "train_false"
    seen = 0
    if isinstance(layer, RegionLayer):
        seen = 50000
        tags.append("seen_ge_12800")
    return dict(x=x, truth=truth, train=train, seen=seen, tags=tags)


def _draw_stress(layer: Layer, params: Dict[str, Any], rng: np.random.Generator) -> Dict[str, Any]:
    B, h, w = params["batch"], params["h"], params["w"]
    tags: List[str] = []
    mag = rng.choice(list(MAGNITUDES) + ["mag_n20x"])
    tags.append(str(mag))
    if mag == "mag_n20x":
        x = (rng.standard_normal((B, layer.channels, h, w)) * 20 * rng.choice([1, 5], (B, 1, 1, 1))).astype(np.float32)
        tags.append("extreme_inputs")
    else:
        x = (rng.standard_normal((B, layer.channels, h, w)) * MAGNITUDES[str(mag)]).astype(np.float32)
    if np.abs(x).max() > 88:
        tags.append("exp_overflow_mag")
    rows, cols = _truth_rows(layer), _truth_cols(layer)
    truth = np.zeros((B, rows, cols), np.float32)
    limit = min(getattr(layer, "max_boxes", rows) if not isinstance(layer, RegionLayer) else rows, rows, 12)
    n_classes = _classes_drawn(layer)
    ab = isinstance(layer, (alexeyab.YoloLayer, alexeyab.GaussianYoloLayer))
    for b in range(B):
        k = int(rng.integers(0, limit + 1))
        for t in range(k):
            style = rng.choice(["plain", "plain", "tiny", "huge", "border", "cell"])
            cx, cy = rng.uniform(0.01, 0.99, 2)
            bw, bh = rng.uniform(0.02, 0.7, 2)
            if style == "tiny":
                bw, bh = rng.uniform(1e-4, 3e-3, 2)
                tags.append("tiny_box")
            elif style == "huge":
                bw, bh = rng.uniform(0.85, 1.0, 2)
                tags.append("huge_box")
            elif style == "border":
                bw = rng.uniform(0.05, 0.5)
                cx = bw / 2
                tags.append("border_touch")
            elif style == "cell":
                cx = (int(rng.integers(1, w)) / w) if w > 1 else 0.5
                tags.append("cell_boundary_xy")
            cls = float(rng.integers(0, n_classes))
            if rng.random() < 0.15:
                cls += float(rng.choice([0.3, 0.7, 0.99]))
                tags.append("fractional_class_id")
            truth[b, t, :4] = [cx, cy, bw, bh]
            if ab:
                truth[b, t, 4], truth[b, t, 5] = cls, float(rng.integers(0, 5))
            else:
                truth[b, t, 4:cols - 1] = rng.uniform(0, 1, cols - 5)
                truth[b, t, cols - 1] = cls
            if t and rng.random() < 0.15:
                truth[b, t, :2] = truth[b, t - 1, :2]
                tags.append("dup_cell_hit")
            _keep_in_grid(truth, b, t, w, h)
        if k > 2 and rng.random() < 0.15:
            truth[b, int(rng.integers(1, k - 1)), 0] = 0
            tags.append("x0_terminator_mid")
    if not truth[:, :, 0].any():
        tags.append("zero_truths")
    train = bool(rng.random() > 0.1)
    if not train:
        tags.append("train_false")
    seen = 0
    if isinstance(layer, RegionLayer):
        seen = int(rng.choice([0, 6400, 12799, 12800, 50000]))
        tags.append("seen_lt_12800" if seen < 12800 else "seen_ge_12800")
    return dict(x=x, truth=truth, train=train, seen=seen, tags=tags)


# ---- exporting ------------------------------------------------------------------------

def estimate_bytes(layers: Sequence[Dict[str, Any]], n: int) -> int:
    """An upper bound on what ``n`` cases take unpacked: input, output and
    delta of every case, and its truth buffer."""
    total = 0
    for i in range(n):
        spec = layers[i % len(layers)]
        p, layer = spec["params"], spec["layer"]
        elems = p["batch"] * (layer.inputs if getattr(layer, "kind", "") == "detection"
                              else layer.channels * p["h"] * p["w"])
        total += 4 * (3 * elems + p["batch"] * _truth_rows(layer) * _truth_cols(layer)) + 2048
    return total


def _run(layer: Layer, params: Dict[str, Any], drawn: Dict[str, Any]) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _more.is_more(layer):
            return _more.run(layer, params, drawn)
        if isinstance(layer, RegionLayer):
            return layer.forward(drawn["x"], drawn["truth"], seen=drawn["seen"], train=drawn["train"])
        return layer.forward(drawn["x"], drawn["truth"], net_w=params["net_w"], net_h=params["net_h"],
                             train=drawn["train"], index=params.get("net_index", 0))


def prepare_folder(out: PathLike, force: bool) -> Path:
    """The output folder, empty: refused when it holds anything unless
    ``force``, which removes the golden files there (cases and MANIFEST)."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise GoldenError(f"{d}: exists and is not a folder")
    if d.is_dir():
        inside = list(d.iterdir())
        ours = [p for p in inside if p.suffix == ".npz" or p.name == "MANIFEST.json"]
        if inside and not force:
            raise GoldenError(f"{d} is not empty ({len(inside)} entries): pass --force to replace the golden cases "
                              "there (stale cases would otherwise stay beside the new ones), or choose another "
                              "folder")
        others = [p for p in inside if p not in ours]
        if others:
            raise GoldenError(f"{d} holds files other than golden cases ({others[0].name}, ...): refusing to "
                              "write into it even with --force")
        for p in ours:
            p.unlink()
    d.mkdir(parents=True, exist_ok=True)
    return d


def export(layers: Sequence[Dict[str, Any]], n: int, seed: int, out: PathLike, *, profile: str = "all",
           tags: Sequence[str] = (), exclude_tags: Sequence[str] = (), force: bool = False,
           progress: Optional[Callable[[int, int], None]] = None, max_tries: int = 200) -> List[Path]:
    """Write ``n`` cases (cycling over ``layers``: dicts with ``kind``,
    ``layer`` and ``params``) and a MANIFEST.json into ``out``.

    Case i is drawn from a generator seeded with (seed, i) under
    ``profile``; with ``tags``/``exclude_tags`` drawing goes on until n
    cases carry every tag asked for and none excluded (at most
    ``max_tries * n`` draws).  The same arguments give the same files, byte
    for byte.  ``out`` must be empty, or ``force`` given (its old cases are
    removed first)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    for spec in layers:
        p, layer = spec["params"], spec["layer"]
        for key in ("w", "h", "batch"):
            if not (isinstance(p.get(key), int) and not isinstance(p.get(key), bool) and p[key] >= 1):
                raise GoldenError(f"params {key} must be a whole number >= 1, got {p.get(key)!r}")
        elems = p["batch"] * (layer.inputs if getattr(layer, "kind", "") == "detection"
                              else layer.channels * p["h"] * p["w"])
        if elems > 2**31 - 1:
            raise GoldenError(f"a case of batch {p['batch']} on a {p['w']}x{p['h']} grid with {layer.channels} channels "
                              f"holds {elems} values per array, more than the C core indexes (2**31 - 1): refused "
                              "before allocating anything")
    out_dir = prepare_folder(out, force)
    manifest = []
    paths = []
    draw = 0
    want, avoid = set(tags), set(exclude_tags)
    while len(paths) < n:
        if draw >= max_tries * n:
            raise GoldenError(f"only {len(paths)} of {n} cases carry tags {sorted(want)} without "
                              f"{sorted(avoid)} after {draw} draws: these tags are rare or impossible under "
                              f"profile {profile!r} (try --profile stress or all)")
        i = len(paths)
        spec = layers[i % len(layers)]
        layer, params, kind = spec["layer"], spec["params"], spec["kind"]
        rng = np.random.default_rng([seed, draw])
        draw += 1
        try:
            drawn = draw_case(layer, params, rng, profile)
        except MemoryError:
            raise GoldenError(f"no memory for a case of {estimate_bytes([spec], 1)} bytes (batch {params['batch']}, "
                              f"{params['w']}x{params['h']} grid): try --batch 1 or a smaller grid") from None
        case_tags = set(drawn["tags"]) | {f"profile_{profile}"}
        if not want <= case_tags or avoid & case_tags:
            continue
        res = _run(layer, params, drawn)
        name = f"case_{i:04d}_{kind}.npz"
        flavor = flavor_of(kind)
        prov = provenance(flavor, seed=seed, draw=draw - 1, profile=profile)
        write_npz(out_dir / name, case_arrays(kind, params, drawn["x"], drawn["truth"], drawn["train"],
                                              drawn["seen"], res, sorted(case_tags), prov))
        stats = res.stats
        count = (res.count if isinstance(res, (alexeyab.YoloResult, alexeyab.GaussianYoloResult))
                 else (stats.count if stats is not None else None))
        manifest.append({"file": name, "kind": kind, "shape": list(drawn["x"].shape), "train": drawn["train"],
                         "tags": sorted(case_tags), "cost": float(res.cost), "count": count})
        paths.append(out_dir / name)
        if progress is not None:
            progress(len(paths), n)
    kinds = {c["kind"] for c in manifest}
    flavor = flavor_of(kinds.pop()) if len(kinds) == 1 else "pjreddie"
    (out_dir / "MANIFEST.json").write_text(json.dumps(
        {"seed": seed, "profile": profile, "variant": "strict",
         "upstream_commit": _commit(flavor),
         "format": "shared golden README", "provenance": provenance(flavor, seed=seed, profile=profile),
         "cases": manifest}, indent=1, sort_keys=True))
    return paths


class Progress:
    """Progress of a long job on stderr: a bar redrawn in place on a
    terminal, elsewhere (CI logs, pipes) one line every few seconds and at
    the end."""

    def __init__(self, what: str, stream: Any = None, width: int = 30, every: float = 3.0) -> None:
        self.what, self.width, self.every = what, width, every
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.last = -every

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.tty:
            filled = int(self.width * done / max(total, 1))
            self.stream.write(f"\r{self.what} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
            if done == total:
                self.stream.write("\n")
        elif done == total or now - self.last >= self.every:
            self.last = now
            self.stream.write(f"{self.what}: {done}/{total} ({now - self.start:.0f} s)\n")
        self.stream.flush()


def text_progress(stream: Any = None, width: int = 30) -> Callable[[int, int], None]:
    """A progress display on stderr (see :class:`Progress`)."""
    return Progress("exporting", stream, width)

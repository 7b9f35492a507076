"""Golden cases: the training-forward format of the shared golden set
(``../shared/golden/README.md``), read, run, checked and exported.

A case is one ``.npz`` with ``kind``, ``params`` (JSON), ``input``,
``truth``, ``train``, ``seen`` (region), ``output``, ``delta``, ``cost``,
``stats``, ``count``, ``text`` and ``tags`` (JSON); cases written here add
``provenance`` (JSON).  A folder holds cases and a ``MANIFEST.json``.
"""
from __future__ import annotations

import io
import json
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import _native
from .._version import UPSTREAM_COMMIT, __version__
from .compare import ParityReport, compare
from ..layers.pjreddie import RegionLayer, RegionResult, YoloLayer, YoloResult

PathLike = Union[str, "os.PathLike[str]"]
Result = Union[YoloResult, RegionResult]


#: The params keys each layer's constructor takes (same names); absent keys
#: take the constructor's defaults, which are upstream's parser defaults.
LAYER_KEYS = {
    "yolo": ("classes", "anchors", "total", "mask", "ignore_thresh", "truth_thresh", "max_boxes", "map"),
    "region": ("classes", "anchors", "coords", "num", "softmax", "background", "rescore", "bias_match", "thresh",
               "coord_scale", "object_scale", "noobject_scale", "class_scale", "mask_scale", "max_boxes", "map",
               "log", "sqrt", "absolute", "classfix"),
}


def layer_from_params(kind: str, params: Dict[str, Any], base_dir: Optional[PathLike] = None,
                      *, need_tree: bool = True) -> Union[YoloLayer, RegionLayer]:
    """The layer a case's ``params`` describe.  A region ``tree`` path is
    read relative to ``base_dir``; with ``need_tree=False`` a missing tree
    file is left out (enough to name components)."""
    if kind not in LAYER_KEYS:
        raise ValueError(f"not a training-forward case kind: {kind!r} (expected 'yolo' or 'region')")
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

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def load(cls, path: PathLike, base_dir: Optional[PathLike] = None) -> "GoldenCase":
        p = Path(path)
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        kind = str(d["kind"])
        if kind not in ("yolo", "region"):
            raise ValueError(f"{p}: kind {kind!r} is not a training-forward case")
        return cls(path=p, kind=kind, params=json.loads(str(d["params"])), input=d["input"], truth=d["truth"],
                   train=bool(d["train"]), output=d["output"], delta=d["delta"], cost=np.float32(d["cost"]),
                   stats=d["stats"], count=int(d["count"]), text=str(d["text"]), tags=json.loads(str(d["tags"])),
                   seen=int(d["seen"]) if "seen" in d else 0,
                   provenance=json.loads(str(d["provenance"])) if "provenance" in d else {},
                   base_dir=Path(base_dir) if base_dir is not None else default_base(p))

    def layer(self, need_tree: bool = True) -> Union[YoloLayer, RegionLayer]:
        return layer_from_params(self.kind, self.params, self.base_dir, need_tree=need_tree)

    def run(self) -> Result:
        """The oracle on this case's input."""
        layer = self.layer()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(layer, YoloLayer):
                return layer.forward(self.input, self.truth, net_w=self.params["net_w"],
                                     net_h=self.params["net_h"], train=self.train,
                                     index=self.params.get("net_index", 0))
            return layer.forward(self.input, self.truth, seen=self.seen, train=self.train)

    def expected(self) -> Dict[str, Any]:
        return {"output": self.output, "delta": self.delta, "cost": self.cost}

    def check(self, actual: Any, **kw: Any) -> ParityReport:
        """compare() of another implementation's arrays with this case, its
        input and truth explaining each difference (when the case trains and
        its tree, if any, is at hand)."""
        try:
            layer = self.layer()
        except FileNotFoundError:
            return compare(self.expected(), actual, self.layer(need_tree=False), **kw)
        return compare(self, actual, layer, **kw)


def default_base(path: Path) -> Path:
    """Where tree/map paths in a case's params are relative to."""
    # Shared layout: <root>/cases/case.npz with tree paths like data/9k.tree
    # relative to <root>; our own cases use paths relative to the case folder.
    return path.parent.parent if path.parent.name in ("cases", "inference") else path.parent


def case_files(folder: PathLike) -> List[Path]:
    """The training-forward cases of a folder, in MANIFEST order (or sorted)."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"golden folder not found: {d}")
    man = d / "MANIFEST.json"
    if man.is_file():
        cases = json.loads(man.read_text()).get("cases", [])
        return [d / c["file"] for c in cases if c.get("kind") in ("yolo", "region")]
    out = []
    for p in sorted(d.glob("*.npz")):
        with np.load(p, allow_pickle=False) as z:
            if "kind" in z.files and str(z["kind"]) in ("yolo", "region"):
                out.append(p)
    return out


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


def provenance(**extra: Any) -> Dict[str, Any]:
    return {"computed_by": f"pydarknet_loss {__version__}, reproducing upstream pjreddie/darknet "
                           f"{UPSTREAM_COMMIT} (CPU build)",
            "package_version": __version__, "upstream_commit": UPSTREAM_COMMIT,
            "cflags": _native.BUILD_CFLAGS, **extra}


def case_arrays(kind: str, params: Dict[str, Any], x: np.ndarray, truth: np.ndarray, train: bool,
                seen: int, res: Result, tags: Sequence[str], prov: Dict[str, Any]) -> Dict[str, Any]:
    """The keys of one case file for an oracle result."""
    d: Dict[str, Any] = {
        "kind": np.array(kind), "params": np.array(json.dumps(params, sort_keys=True)), "input": x, "truth": truth,
        "train": np.array(bool(train)), "output": res.output, "delta": res.delta, "cost": np.float32(res.cost),
        "stats": res.stats.as_array() if res.stats is not None else np.zeros(0),
        "count": np.int64(res.stats.count if res.stats is not None else -1),
        "text": np.array(res.stats.line() + "\n" if res.stats is not None else ""),
        "tags": np.array(json.dumps(sorted(set(tags)))), "provenance": np.array(json.dumps(prov, sort_keys=True)),
    }
    if kind == "region":
        d["seen"] = np.int64(seen)
    return d


def layer_params(layer: Union[YoloLayer, RegionLayer], *, w: int, h: int, batch: int, net_w: int = 0,
                 net_h: int = 0, net_index: int = 0, tree: Optional[str] = None) -> Dict[str, Any]:
    """A case's ``params`` for a layer (floats as the float32 values, written
    as doubles, as the shared set writes them)."""
    f = lambda v: float(np.float32(v))  # noqa: E731
    if isinstance(layer, YoloLayer):
        p: Dict[str, Any] = dict(classes=layer.classes, total=layer.total, mask=layer.mask.tolist(),
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


def draw_case(layer: Union[YoloLayer, RegionLayer], params: Dict[str, Any], rng: np.random.Generator
              ) -> Dict[str, Any]:
    """Inputs and truths with the kinds of variation of the shared set: input
    magnitudes up to exp overflow, tiny, huge, border-touching and
    cell-boundary boxes, duplicate hits, fractional class ids, an x == 0
    terminator mid-list, no truths, inference; for [region] seen on both
    sides of 12800."""
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
    rows = 90 if isinstance(layer, YoloLayer) else 30
    cols = layer.coords + 1
    truth = np.zeros((B, rows, cols), np.float32)
    limit = min(layer.max_boxes if isinstance(layer, YoloLayer) else rows, 12)
    n_classes = len(layer.map) if layer.map is not None else layer.classes
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
            truth[b, t, 4:cols - 1] = rng.uniform(0, 1, cols - 5)
            truth[b, t, cols - 1] = cls
            if t and rng.random() < 0.15:
                truth[b, t, :2] = truth[b, t - 1, :2]
                tags.append("dup_cell_hit")
            # Keep the cell inside the grid, as the oracle requires.
            for col, size in ((0, w), (1, h)):
                while np.float32(truth[b, t, col]) * np.float32(size) >= size:
                    truth[b, t, col] = np.nextafter(truth[b, t, col], np.float32(0))
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


def export(layers: Sequence[Dict[str, Any]], n: int, seed: int, out: PathLike, *,
           progress: Optional[Callable[[int, int], None]] = None) -> List[Path]:
    """Write ``n`` cases (cycling over ``layers``: dicts with ``kind``,
    ``layer`` and ``params``) and a MANIFEST.json into ``out``.  Case i is
    drawn from a generator seeded with (seed, i): the same seed gives the
    same files, byte for byte."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = []
    paths = []
    for i in range(n):
        spec = layers[i % len(layers)]
        layer, params, kind = spec["layer"], spec["params"], spec["kind"]
        rng = np.random.default_rng([seed, i])
        drawn = draw_case(layer, params, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "yolo":
                res: Result = layer.forward(drawn["x"], drawn["truth"], net_w=params["net_w"], net_h=params["net_h"],
                                            train=drawn["train"], index=params.get("net_index", 0))
            else:
                res = layer.forward(drawn["x"], drawn["truth"], seen=drawn["seen"], train=drawn["train"])
        name = f"case_{i:04d}_{kind}.npz"
        prov = provenance(seed=seed, case=i)
        write_npz(out_dir / name, case_arrays(kind, params, drawn["x"], drawn["truth"], drawn["train"],
                                              drawn["seen"], res, drawn["tags"], prov))
        manifest.append({"file": name, "kind": kind, "shape": list(drawn["x"].shape), "train": drawn["train"],
                         "tags": sorted(set(drawn["tags"])), "cost": float(res.cost),
                         "count": res.stats.count if res.stats is not None else None})
        paths.append(out_dir / name)
        if progress is not None:
            progress(i + 1, n)
    (out_dir / "MANIFEST.json").write_text(json.dumps(
        {"seed": seed, "variant": "strict", "upstream_commit": UPSTREAM_COMMIT, "format": "shared golden README",
         "provenance": provenance(seed=seed), "cases": manifest}, indent=1, sort_keys=True))
    return paths


def text_progress(stream: Any = None, width: int = 30) -> Callable[[int, int], None]:
    """A one-line progress bar on stderr."""
    s = stream if stream is not None else sys.stderr

    def show(done: int, total: int) -> None:
        filled = int(width * done / max(total, 1))
        s.write(f"\rexporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            s.write("\n")
        s.flush()
    return show

"""Fuzz cases for the surfaces issue 22 found the first harness missed.

* ``hostile``: hostile paths for every file reader: FIFOs (also named
  ``*.npz``, also behind a symbolic link), 8 GiB sparse files of NULs (with
  or without a valid text prefix), symbolic link loops, broken links, paths
  through a file, folders, devices; ``.npz`` files whose member headers,
  zip sizes or member lists lie; a valid file behind a link (accepted).
  Each reader must refuse with the exception type the README's table gives
  for it, naming the path, and quickly (a hang is a failure).
* ``ab_ctor``: AlexeyAB's ``YoloLayer(...)`` with one or two options drawn
  from the bad pools (counts up to 2**31 - 1 and beyond, classes whose
  channels overflow an int, huge anchor lists, NaN and 1e39 floats, bools,
  strings); valid ones must build (and run a small forward).
* ``compare_opts``: ``compare``'s atol, rtol, max_ulp, worst, tolerance,
  layout and cost from pools; with valid options, identical arrays must pass.
* ``tensors``: torch tensors on every device here (cpu, meta, cuda when
  present) in every layout (contiguous, channels_last, transposed and
  sliced views, requires_grad, sparse COO/CSR, nested, quantized) and dtype,
  into pdl.torch.YoloLoss/RegionLoss, check_gradient, compare (actual
  arrays, cost, input) and layer.forward; a dense float32 tensor must give
  the bits of the same values as a NumPy array.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import pydarknet_loss as pdl
from pydarknet_loss.files.cfg import CfgError, read_cfg, read_map
from pydarknet_loss.parity import cli as pdl_cli
from pydarknet_loss.parity import golden as pdl_golden
from pydarknet_loss.parity.golden import GoldenError

from .cases import (BAD_INTS, BAD_REALS, CLEAN, GOLDEN, INT_MAX, SMALL_TREE, Case, WrongResult, ab_ctor,
                    float_values, is_int, is_real, pick, real32_ok, same, truth_rows)

#: Per reader: the README table's row (missing-like, directory, FIFO/device, content).
ROWS: Dict[str, Tuple[type, type, type, type]] = {
    "read_labels": (FileNotFoundError, IsADirectoryError, ValueError, ValueError),
    "read_tree": (FileNotFoundError, IsADirectoryError, ValueError, ValueError),
    "RegionLayer(tree=path)": (FileNotFoundError, IsADirectoryError, ValueError, ValueError),
    "read_map": (FileNotFoundError, IsADirectoryError, ValueError, CfgError),
    "read_cfg": (FileNotFoundError, IsADirectoryError, ValueError, CfgError),
    "Network.from_cfg": (FileNotFoundError, IsADirectoryError, CfgError, CfgError),
    "GoldenCase.load": (GoldenError,) * 4,
    "read_arrays": (GoldenError,) * 4,
}
READ: Dict[str, Callable[[str], Any]] = {
    "read_labels": pdl.read_labels,
    "read_tree": pdl.read_tree,
    "RegionLayer(tree=path)": lambda p: pdl.RegionLayer(classes=14, anchors=[1.0, 1.0], tree=p, temperature=1.0),
    "read_map": read_map,
    "read_cfg": read_cfg,
    "Network.from_cfg": pdl.Network.from_cfg,
    "GoldenCase.load": pdl_golden.GoldenCase.load,
    "read_arrays": lambda p: pdl_golden.read_arrays(p),
}
COLUMN = {"missing": 0, "broken": 0, "loop": 0, "through-file": 0, "dir": 1, "fifo": 2, "fifo-link": 2,
          "device": 2, "sparse": 3, "sparse-prefix": 3}


def _valid_content(reader: str) -> bytes:
    if reader == "read_labels":
        return b"0 0.5 0.5 0.2 0.2\n3 0.25 0.75 0.1 0.3\n"
    if reader in ("read_tree", "RegionLayer(tree=path)"):
        return SMALL_TREE.read_bytes()
    if reader == "read_map":
        return b"0\n1\n2\n"
    if reader in ("read_cfg", "Network.from_cfg"):
        return Path(pdl.example_cfg("tiny-yolov3")).read_bytes()
    return sorted(GOLDEN.glob("*.npz"))[0].read_bytes()


def _sparse(path: str, prefix: bytes, size: int) -> None:
    with open(path, "wb") as f:
        f.write(prefix)
        f.truncate(size)


def gen_hostile(rng: np.random.Generator, workdir: str) -> Case:
    r = rng.random()
    if r < 0.3:
        return _gen_npz(rng, workdir)
    if r < 0.4:
        return _gen_golden_folder(rng, workdir)
    reader = pick(rng, sorted(READ))
    how = pick(rng, ["missing", "broken", "loop", "through-file", "dir", "fifo", "fifo-link", "device", "sparse",
                     "sparse-prefix", "valid-link", "valid"])
    tag = f"h{int(rng.integers(10**9))}"
    path = os.path.join(workdir, tag + pick(rng, [".npz", ".txt", ".cfg", ".tree", ""]))
    size = int(pick(rng, [8 << 30, 1 << 33, 1 << 20, 4096, 1]))
    prefix_lines = int(rng.integers(0, 4))

    def make() -> str:
        if how == "missing":
            return path
        if how == "broken":
            os.symlink(path + ".nowhere", path)
        elif how == "loop":
            os.symlink(path + ".b", path)
            os.symlink(path, path + ".b")
        elif how == "through-file":
            with open(path, "wb") as f:
                f.write(b"x")
            return os.path.join(path, "inside")
        elif how == "dir":
            os.mkdir(path)
        elif how == "fifo":
            os.mkfifo(path)
        elif how == "fifo-link":
            os.mkfifo(path + ".fifo")
            os.symlink(path + ".fifo", path)
        elif how == "device":
            return pick(rng, ["/dev/null", "/dev/zero"])
        elif how == "sparse":
            _sparse(path, b"", size)
        elif how == "sparse-prefix":
            text = b"".join(_valid_content(reader).splitlines(keepends=True)[:prefix_lines]) \
                if reader not in ("GoldenCase.load", "read_arrays") else b"PK\x03\x04"
            _sparse(path, text, max(size, len(text) + 1))
        else:
            with open(path + ".real", "wb") as f:
                f.write(_valid_content(reader))
            if how == "valid-link":
                os.symlink(path + ".real", path)
            else:
                os.rename(path + ".real", path)
        return path

    def run() -> Any:
        p = make()
        return READ[reader](p)
    if how in ("valid", "valid-link"):
        return Case("hostile", f"{reader} on a {how} file", run, "ok")
    exc = ROWS[reader][COLUMN[how]]
    names: Tuple[str, ...] = (tag,) if how != "device" else ("/dev/",)
    return Case("hostile", f"{reader} on a {how} path" + (f" ({size} bytes)" if "sparse" in how else ""), run,
                "error", names, (exc,))


# ---- .npz files that lie ------------------------------------------------------------------------

DESCRS = ["<f4", "<f8", "|O", "<c16", "|u1", ">f4", "<U10", "|V8", "<f2", "<i8", "|b1"]


def _npy_bytes(header: Dict[str, Any], payload: bytes, version: int) -> bytes:
    b = io.BytesIO()
    if version == 1:
        np.lib.format.write_array_header_1_0(b, header)
    else:
        np.lib.format.write_array_header_2_0(b, header)
    return b.getvalue() + payload


def _gen_npz(rng: np.random.Generator, workdir: str) -> Case:
    """A member with a drawn header and payload, in a real case or alone;
    read_arrays must accept it exactly when it is consistent."""
    descr = pick(rng, DESCRS)
    nd = int(rng.integers(0, 4))
    dims = [int(pick(rng, [0, 1, 2, 3, 7, 2**16, 2**31 - 1, 2**31, 2**40, 10**12, -1, -2])) for _ in range(nd)]
    shape = tuple(dims)
    dtype = np.dtype(descr)
    count = math.prod(shape) if shape else 1
    honest = count * dtype.itemsize
    how = pick(rng, ["honest", "honest", "short", "long", "random"])
    if how == "honest" and 0 <= honest <= 4096:
        n = honest
    elif how == "short":
        n = max(0, min(honest, 4096) - int(rng.integers(1, 9)))
    elif how == "long":
        n = min(max(honest, 0), 4096) + int(rng.integers(1, 9))
    else:
        n = int(rng.integers(0, 64))
    payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if descr == "|b1":
        payload = bytes(b & 1 for b in payload)
    version = int(pick(rng, [1, 1, 2]))
    member = _npy_bytes({"descr": descr, "fortran_order": bool(rng.random() < 0.2), "shape": shape}, payload, version)
    key = pick(rng, ["input", "delta", "kind", "tags", "extra"])
    deflate = bool(rng.random() < 0.5)
    path = os.path.join(workdir, f"n{int(rng.integers(10**9))}.npz")
    in_case = rng.random() < 0.5
    src = sorted(GOLDEN.glob("*.npz"))[int(rng.integers(3))]
    extent = math.prod(max(d, 1) for d in shape) if shape else 1
    consistent = (not dtype.hasobject and all(d >= 0 for d in shape) and extent <= INT_MAX and n == honest)
    surface = pick(rng, ["read_arrays", "read_arrays", "GoldenCase.load", "case_entries", "check"])

    def run() -> Any:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
            if in_case:
                with zipfile.ZipFile(src) as zin:
                    for info in zin.infolist():
                        if info.filename != key + ".npy":
                            z.writestr(info.filename, zin.read(info))
            z.writestr(key + ".npy", member)
        if surface == "read_arrays":
            arrays = pdl_golden.read_arrays(path)
            a = arrays[key]
            if a.shape != shape or a.dtype != dtype:
                raise WrongResult(f"read {a.dtype} {a.shape} for a header of {dtype} {shape}")
            return arrays
        if surface == "GoldenCase.load":
            return pdl_golden.GoldenCase.load(path)
        if surface == "case_entries":
            return pdl_golden.case_entries(workdir)
        return _cli_check(path, workdir, in_case and (key != "kind" or not consistent))
    label = f"npz {surface}: member {key}.npy v{version} {descr} {shape} with {n} bytes ({how}), " \
            f"{'in a case' if in_case else 'alone'}, {'deflated' if deflate else 'stored'}"
    if surface == "read_arrays":
        return Case("hostile", label, run, "ok" if consistent else "error", (os.path.basename(path),), (GoldenError,))
    if surface == "GoldenCase.load":
        return Case("hostile", label, run, "any", (os.path.basename(path),), (GoldenError,))
    return Case("hostile", label, run, "any", (), (GoldenError, ValueError))


def _cli_check(path: str, workdir: str, must_report: bool) -> Any:
    """pydarknet-loss check on a folder holding the file: it must report the
    file (by name, when it has a case's kind) and go on, exiting 0, 1 or 2
    with a message."""
    gold = os.path.join(workdir, f"g{os.getpid()}_{abs(hash(path)) % 10**9}")
    os.makedirs(gold, exist_ok=True)
    shutil.copy(sorted(GOLDEN.glob("*.npz"))[0], os.path.join(gold, "case_0000_yolo.npz"))
    os.replace(path, os.path.join(gold, os.path.basename(path)))
    with contextlib.redirect_stdout(io.StringIO()) as so, contextlib.redirect_stderr(io.StringIO()) as se:
        code = pdl_cli.main(["check", "--golden", gold, "--actual", gold])
    text = so.getvalue() + se.getvalue()
    if code not in (0, 1, 2) or not text.strip():
        raise WrongResult(f"check exited {code!r} with {text[-300:]!r}")
    if must_report and code != 2 and os.path.basename(path) not in text:
        raise WrongResult(f"check did not report {os.path.basename(path)}: {text[-300:]!r}")
    return code


def _gen_golden_folder(rng: np.random.Generator, workdir: str) -> Case:
    """A golden folder holding a hostile entry beside a good case: the
    folder readers and `check` must list or report it, never block on it."""
    how = pick(rng, ["fifo", "fifo-link", "loop", "broken", "dir", "sparse", "text", "zip-sizes", "many-members",
                     "non-npy", "manifest-fifo", "manifest-nul"])
    surface = pick(rng, ["case_entries", "load_cases", "check"])
    folder = os.path.join(workdir, f"f{int(rng.integers(10**9))}")
    name = "case_0500_yolo.npz"

    def run() -> Any:
        os.makedirs(folder)
        shutil.copy(sorted(GOLDEN.glob("*.npz"))[0], os.path.join(folder, "case_0000_yolo.npz"))
        p = os.path.join(folder, name)
        if how == "fifo":
            os.mkfifo(p)
        elif how == "fifo-link":
            os.mkfifo(p + ".fifo")
            os.symlink(p + ".fifo", p)
        elif how == "loop":
            os.symlink(p + ".b", p)
            os.symlink(p, p + ".b")
        elif how == "broken":
            os.symlink(p + ".nowhere", p)
        elif how == "dir":
            os.mkdir(p)
        elif how == "sparse":
            _sparse(p, b"", 8 << 30)
        elif how == "text":
            with open(p, "w") as f:
                f.write("just text\n")
        elif how == "zip-sizes":
            shutil.copy(sorted(GOLDEN.glob("*.npz"))[1], p)
            _patch_sizes(p, int(rng.integers(0, 2**32)), bool(rng.random() < 0.5))
        elif how == "many-members":
            with zipfile.ZipFile(p, "w") as z:
                for i in range(300):
                    z.writestr(f"a{i}.npy", _npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (1,)},
                                                       b"\0" * 4, 1))
        elif how == "non-npy":
            with zipfile.ZipFile(p, "w") as z:
                z.writestr("kind", b"yolo")
        elif how == "manifest-fifo":
            os.mkfifo(os.path.join(folder, "MANIFEST.json"))
        else:
            _sparse(os.path.join(folder, "MANIFEST.json"), b'{"cases": [', 8 << 30)
        if surface == "case_entries":
            return pdl_golden.case_entries(folder)
        if surface == "load_cases":
            return pdl_golden.load_cases(folder)
        with contextlib.redirect_stdout(io.StringIO()) as so, contextlib.redirect_stderr(io.StringIO()) as se:
            code = pdl_cli.main(["check", "--golden", folder, "--actual", folder])
        text = so.getvalue() + se.getvalue()
        manifest = how.startswith("manifest")
        if code != (2 if manifest else 1) or (name if not manifest else "MANIFEST") not in text:
            raise WrongResult(f"check exited {code!r} without naming the entry: {text[-300:]!r}")
        return code
    manifest = how.startswith("manifest")
    expect = "error" if surface == "load_cases" or manifest and surface == "case_entries" else "any"
    names = (name, "MANIFEST") if expect == "error" else ()
    return Case("hostile", f"golden folder with a {how} entry: {surface}", run, expect, names,
                (GoldenError,))


def _patch_sizes(path: str, value: int, packed: bool) -> None:
    """Sets one member's unpacked (or packed) size in the central directory."""
    raw = bytearray(Path(path).read_bytes())
    k = raw.rfind(b"PK\x01\x02")
    if k >= 0:
        off = 20 if packed else 24
        raw[k + off:k + off + 4] = value.to_bytes(4, "little")
    Path(path).write_bytes(bytes(raw))


# ---- AlexeyAB's constructor -------------------------------------------------------------------

AB_INTS = {"classes": (1, INT_MAX), "total": (1, 2**20), "max_boxes": (0, INT_MAX)}
AB_REALS = ("ignore_thresh", "truth_thresh", "iou_thresh", "iou_normalizer", "obj_normalizer", "cls_normalizer",
            "delta_normalizer", "max_delta", "scale_x_y", "label_smooth_eps")
AB_FLAGS = ("new_coords", "objectness_smooth", "focal_loss", "show_details")
BIG_INTS = [2**20, 2**20 + 1, 2**31 - 1, 2**31, 2**63, 10**30, 2**31 - 6, 2**30, 429496729]


def gen_ab_ctor(rng: np.random.Generator) -> Case:
    ctor = ab_ctor(rng)
    ctor.pop("counters_per_class", None)
    bad: List[str] = []
    labels = []
    for _ in range(int(pick(rng, [1, 1, 2]))):
        r = rng.random()
        if r < 0.4:
            name = pick(rng, sorted(AB_INTS))
            v = pick(rng, BAD_INTS + BIG_INTS)
            ctor[name] = v
        elif r < 0.7:
            name = pick(rng, list(AB_REALS))
            ctor[name] = v = pick(rng, BAD_REALS + [None])
        elif r < 0.8:
            name = pick(rng, list(AB_FLAGS))
            ctor[name] = v = pick(rng, [2, -1, 0, 1, True, np.bool_(False), "yes", None, 1.0, 2**31, np.int64(7)])
        elif r < 0.9:
            name = pick(rng, ["iou_loss", "iou_thresh_kind"])
            ctor[name] = v = pick(rng, ["mse", "iou", "giou", "diou", "ciou", "MSE", "", None, 3, "bogus"])
        else:
            name = "anchors"
            size = int(pick(rng, [2 * 2**20, 2 * 2**20 + 2, 2 * 2**20 - 1, 10**6, 3]))
            kind = pick(rng, ["list", "array", "nan-at-end"])
            vals = np.full(size, 7.0)
            if kind == "nan-at-end":
                vals[-1] = np.nan
            ctor[name] = v = vals.tolist() if kind != "array" else vals
            ctor["total"] = None
            labels.append(f"anchors: {size} values ({kind})")
        if name != "anchors":
            labels.append(f"{name}={v!r}"[:80])
    # What the rules say of the whole constructor.
    n = len(ctor["mask"])
    for name, (lo, hi) in AB_INTS.items():
        v = ctor.get(name)
        if name == "total" and v is None:
            continue
        if not (is_int(v) and lo <= int(v) <= hi):
            bad.append(name)
    if "classes" not in bad and n * (5 + int(ctor["classes"])) > INT_MAX:
        bad.append("classes")
    anchors = ctor["anchors"]
    n_anchor = len(anchors)
    total = ctor.get("total")
    if n_anchor > 2 * 2**20 or not all(np.isfinite(np.asarray(anchors, dtype=float))):
        bad.append("anchors")
    elif total is None and n_anchor % 2:
        bad.append("anchors")
    pairs = int(total) if is_int(total) and "total" not in bad else (n_anchor // 2 if total is None else None)
    if pairs is not None and pairs > 2**20:
        bad.append("anchors" if total is None else "total")
    if pairs is not None and max(ctor["mask"]) >= pairs:
        bad.append("mask")
    for name in AB_REALS:
        v = ctor.get(name)
        if name not in ctor or (name == "max_delta" and v is None):
            continue
        if not real32_ok(v):
            bad.append(name)
    for name in AB_FLAGS:
        v = ctor[name]
        if not (isinstance(v, (bool, np.bool_)) or (is_int(v) and -2**31 <= int(v) <= INT_MAX)):
            bad.append(name)
    for name, allowed in (("iou_loss", ("iou", "giou", "mse", "diou", "ciou")),
                          ("iou_thresh_kind", ("iou", "giou", "diou", "ciou"))):
        if not (isinstance(ctor[name], str) and ctor[name] in allowed):
            bad.append(name)
    if not bad and float(np.float32(ctor["truth_thresh"])) < 0 and int(ctor["max_boxes"]) == 0:
        bad.append("truth_thresh")
    seed = int(rng.integers(2**31))

    def run() -> Any:
        layer = pdl.alexeyab.YoloLayer(**ctor)
        if layer.channels * 4 <= 4000 and layer.max_boxes <= 1000:
            r = np.random.default_rng(seed)
            x = float_values(r, (1, layer.channels, 2, 2))
            t = [truth_rows(r, min(layer.max_boxes, 2), 2, 2, layer.classes, 5)]
            a = layer.forward(x, t, net_w=64, net_h=64)
            b = pdl.alexeyab.YoloLayer(**ctor).forward(x.copy(), t, net_w=64, net_h=64)
            same(a.delta, b.delta, "delta")
            same(a.cost, b.cost, "cost")
        return layer
    expect = "error" if bad else "ok"
    return Case("ab_ctor", "alexeyab.YoloLayer(" + ", ".join(labels) + ")", run, expect, tuple(dict.fromkeys(bad)),
                CLEAN)


# ---- compare's options ------------------------------------------------------------------------

REAL_OPTS = [0, 0.0, -0.0, 1e-6, 1.0, float("inf"), -1, -1e-30, float("nan"), "1", None, True, np.float32(0.5),
             np.float64("nan"), 10**400, 1j, np.int64(2), [0.1]]
INT_OPTS = [0, 1, 5, 2**40, 2**70, -1, -5, 1.5, True, "3", None, np.int64(3), np.uint8(2), np.int64(-2)]


def _real_opt_ok(v: Any) -> bool:
    if not is_real(v):
        return False
    try:
        f = float(v)
    except OverflowError:
        return False
    return not math.isnan(f) and f >= 0


def _small_result(rng: np.random.Generator) -> Tuple[Any, Any, np.ndarray, List[np.ndarray]]:
    ab = rng.random() < 0.3
    if ab:
        l = pdl.alexeyab.YoloLayer(classes=2, anchors=[10.0, 13.0, 30.0, 61.0], mask=[0, 1])
    else:
        l = pdl.YoloLayer(classes=2, anchors=[10.0, 13.0, 30.0, 61.0], mask=[0, 1])
    x = float_values(rng, (1, l.channels, 2, 3))
    t = [truth_rows(rng, 2, 3, 2, 2, 5)]
    return l, l.forward(x, t, net_w=64, net_h=64), x, t


def gen_compare_opts(rng: np.random.Generator) -> Case:
    l, res, x, t = _small_result(rng)
    kw: Dict[str, Any] = {}
    bad: List[str] = []
    for name in ("atol", "rtol"):
        if rng.random() < 0.4:
            kw[name] = v = pick(rng, REAL_OPTS)
            if not _real_opt_ok(v):
                bad.append(name)
    for name in ("max_ulp", "worst"):
        if rng.random() < 0.4:
            kw[name] = v = pick(rng, INT_OPTS)
            if not (is_int(v) and int(v) >= 0):
                bad.append(name)
    tolerance = pick(rng, ["exact", "exact", "float32", "bogus"])
    if tolerance == "bogus":
        bad.insert(0, "tolerance")
    layout = pick(rng, ["nchw", "nchw", "nhwc", "bahwc"])
    from pydarknet_loss.layers import layout as lay
    actual: Dict[str, Any] = {"delta": lay.from_nchw(res.delta, layout, l.n)}
    cost_how = pick(rng, ["none", "float", "f32", "array1", "array0", "str", "array3", "bool", "strarray", "f64"])
    costs = {"float": float(res.cost), "f32": np.float32(res.cost), "array1": np.array([res.cost]),
             "array0": np.array(res.cost), "str": "x", "array3": np.zeros(3, np.float32), "bool": True,
             "strarray": np.array(["1.0"]), "f64": np.float64(res.cost)}
    if cost_how != "none":
        actual["cost"] = costs[cost_how]
        if cost_how in ("str", "array3", "bool", "strarray"):
            bad.append("cost")
    expect = "error" if bad else "ok"

    def run() -> Any:
        rep = pdl.compare(res, actual, l, input=x, truth=t, net_w=64, net_h=64, tolerance=tolerance, layout=layout,
                          **kw)
        if expect == "ok" and not (rep.ok and rep.cost_ok is not False):
            raise WrongResult(f"identical arrays fail under {kw}, tolerance {tolerance}, layout {layout}: "
                              f"{rep.summary()[:300]}")
        return rep
    label = f"compare(tolerance={tolerance}, layout={layout}, cost={cost_how}, " + \
        ", ".join(f"{k}={v!r}" for k, v in kw.items()) + ")"
    return Case("compare_opts", label, run, expect, tuple(dict.fromkeys(bad)), CLEAN)


# ---- torch tensors -------------------------------------------------------------------------------

FORMS = ["contiguous", "contiguous", "channels_last", "transposed", "sliced", "requires_grad", "sparse_coo",
         "sparse_csr", "nested", "quantized", "bfloat16", "float16", "float64", "int32"]


def _devices(torch: Any) -> List[str]:
    out = ["cpu", "meta"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


def _tensor(torch: Any, a: np.ndarray, form: str, device: str) -> Any:
    t = torch.from_numpy(np.ascontiguousarray(a))
    if form == "channels_last" and t.dim() == 4:
        t = t.to(memory_format=torch.channels_last)
    elif form == "transposed" and t.dim() == 4:
        t = t.transpose(2, 3).contiguous().transpose(2, 3)
    elif form == "sliced" and t.dim() == 4:
        big = torch.zeros(t.shape[:-1] + (t.shape[-1] * 2,), dtype=t.dtype)
        big[..., ::2] = t
        t = big[..., ::2]
    elif form == "requires_grad":
        t = t.clone().requires_grad_(True)
    elif form == "sparse_coo":
        t = t.to_sparse()
    elif form == "sparse_csr":
        t = t.reshape(-1, t.shape[-1]).to_sparse_csr() if t.dim() >= 2 else t.to_sparse()
    elif form == "nested":
        t = torch.nested.nested_tensor([t.reshape(-1), t.reshape(-1)[:1]])
    elif form == "quantized":
        t = torch.quantize_per_tensor(t.float(), 0.1, 0, torch.qint8)
    elif form in ("bfloat16", "float16", "float64", "int32"):
        t = t.to(getattr(torch, form))
    if device != "cpu":
        t = t.to(device)
    return t


def gen_tensors(rng: np.random.Generator) -> Case:
    try:
        import torch
    except ImportError:  # pragma: no cover - the [torch] extra absent: the target is left out
        return Case("tensors", "torch not installed", lambda: None, "ok")
    torch.set_num_threads(1)
    import pydarknet_loss.torch as pt
    device = pick(rng, _devices(torch))
    form = pick(rng, FORMS)
    if device == "meta" and form in ("sparse_csr", "nested", "quantized"):
        device = "cpu"  # torch cannot move these to the meta device
    surface = pick(rng, ["YoloLoss", "RegionLoss", "compare_delta", "compare_cost", "compare_input",
                         "check_gradient", "forward"])
    seed = int(rng.integers(2**31))
    dense32 = form in ("contiguous", "channels_last", "transposed", "sliced", "requires_grad")
    usable = device != "meta" and form not in ("sparse_coo", "sparse_csr", "nested", "quantized")
    label = f"{surface} with a {device} {form} tensor"
    if surface in ("YoloLoss", "RegionLoss", "check_gradient"):
        name = "x"
    elif surface == "compare_input":
        name = "input"
    elif surface == "compare_cost":
        name = "actual cost"
    elif surface == "forward":
        name = "x"
    else:
        name = "actual delta"

    def run() -> Any:
        r = np.random.default_rng(seed)
        if surface == "RegionLoss":
            l: Any = pdl.RegionLayer(classes=2, anchors=[1.0, 1.0, 2.0, 2.0])
        else:
            l = pdl.YoloLayer(classes=2, anchors=[10.0, 13.0, 30.0, 61.0], mask=[0, 1])
        x = float_values(r, (1, l.channels, 2, 3))
        t = [truth_rows(r, 2, 3, 2, 2, 5)]
        if surface in ("YoloLoss", "RegionLoss"):
            mod = pt.YoloLoss(l, 64, 64) if surface == "YoloLoss" else pt.RegionLoss(l)
            xt = _tensor(torch, x, form, device)
            if not xt.requires_grad and xt.is_floating_point() and xt.layout == torch.strided and \
                    xt.device.type != "meta":
                xt.requires_grad_(True)
            loss = mod(xt, t)
            loss.backward()
            ref_x = torch.from_numpy(x.copy()).requires_grad_(True)
            ref = (pt.YoloLoss(l, 64, 64) if surface == "YoloLoss" else pt.RegionLoss(l))(ref_x, t)
            ref.backward()
            if float(loss.detach().cpu()) != float(ref.detach()) and not (math.isnan(float(ref.detach()))):
                raise WrongResult(f"loss {float(loss)} differs from the NumPy-backed call's {float(ref)}")
            same(xt.grad.detach().cpu().contiguous().numpy(), ref_x.grad.numpy(), "the gradient")
            return loss
        res = l.forward(x, t, net_w=64, net_h=64)
        if surface == "compare_delta":
            rep = pdl.compare(res, {"delta": _tensor(torch, res.delta, form, device)}, l)
            if dense32 and not rep.ok:
                raise WrongResult(f"identical values as a {form} tensor fail: {rep.summary()[:300]}")
            return rep
        if surface == "compare_cost":
            rep = pdl.compare(res, {"cost": _tensor(torch, np.array(res.cost), form, device)}, l)
            if dense32 and not rep.cost_ok:
                raise WrongResult("the same cost as a tensor fails")
            return rep
        if surface == "compare_input":
            return pdl.compare(res, {"delta": res.delta}, l, input=_tensor(torch, x, form, device), truth=t,
                               net_w=64, net_h=64)
        if surface == "check_gradient":
            return pt.check_gradient(lambda xx, tt: (xx * xx).sum(), l, _tensor(torch, x, form, device), t,
                                     net_w=64, net_h=64)
        out = l.forward(_tensor(torch, x, form, device), t, net_w=64, net_h=64)
        same(np.asarray(out.delta), res.delta, "delta")  # if tensors are taken (issue 19), the same bits
        return out
    if not usable:
        why = {"meta": "meta"}.get(device, "")
        require: Tuple[str, ...] = ()
        if device == "meta" and form in ("contiguous", "channels_last", "transposed", "sliced", "requires_grad",
                                         "float64", "float16", "bfloat16", "int32") and surface != "forward":
            require = ("meta tensors hold no data",)
        if surface in ("YoloLoss", "RegionLoss") and form in ("quantized", "bfloat16", "float16", "float64",
                                                              "int32"):
            require = ()  # refused for its dtype first
        return Case("tensors", label, run, "error", (name,), CLEAN, require)
    if surface in ("YoloLoss", "RegionLoss", "check_gradient") and not dense32:
        return Case("tensors", label, run, "error", (name, "x"), CLEAN)  # dtype: x must be float32
    if surface == "forward":
        return Case("tensors", label, run, "any", (name,), CLEAN)
    if dense32:
        return Case("tensors", label, run, "ok")
    return Case("tensors", label, run, "any", (name,), CLEAN)

"""Issue 22 (reliability, second round): one test (at least) per problem the
issue lists, each doing what its reporter did; and issue 19 item 9 (a broken
``.npz`` is a GoldenError that says what the file is).  Calls that used to
hang run in a forked child with a time limit, so a regression fails here
instead of hanging the suite.  The fuzz harness (tests/fuzz, the
``hostile``, ``ab_ctor``, ``compare_opts`` and ``tensors`` targets) runs
the same inputs and many more around them."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import signal
import sys
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss import _validate
from pydarknet_loss.files.cfg import CfgError, read_cfg, read_map
from pydarknet_loss.parity import cli, golden
from pydarknet_loss.parity.golden import GoldenError

README = G.HERE.parent / "docs" / "behaviour.md"  # the page holding the table of exceptions per reader
SMALL_TREE = G.HERE / "data" / "small.tree"
GOLDEN_CASES = G.HERE / "golden" / "pjreddie-f6afaab" / "cases"
needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(os, "mkfifo"),
                                reason="FIFOs and the hang guard need a POSIX system")


def in_child(fn: Callable[[], Any], timeout: float = 20.0) -> Tuple[str, Any, float]:
    """Runs fn in a forked child: ("ok", the result, seconds) or
    (exception type name, message, seconds).  A child that does not answer
    within `timeout` is killed and the test fails: the call hung."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(rfd)
            t0 = time.monotonic()
            try:
                r = fn()
                out: Tuple[str, Any, float] = ("ok", r, time.monotonic() - t0)
            except BaseException as exc:  # noqa: B902 - reported to the parent
                out = (type(exc).__name__, str(exc), time.monotonic() - t0)
            try:
                data = pickle.dumps(out)
            except Exception:
                data = pickle.dumps((out[0], repr(out[1]), out[2]))
            with os.fdopen(wfd, "wb") as f:
                f.write(data)
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    os.close(wfd)
    deadline = time.monotonic() + timeout
    data = b""
    import select
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(rfd)
            pytest.fail(f"the call hung (no answer within {timeout:g} s)")
        ready, _, _ = select.select([rfd], [], [], left)
        if ready:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    assert data, "the child died without answering"
    return pickle.loads(data)


def raises_in_child(fn: Callable[[], Any], exc: str, match: str, timeout: float = 20.0) -> float:
    kind, msg, secs = in_child(fn, timeout)
    assert kind == exc, (kind, msg)
    assert re.search(match, msg), msg
    return secs


# ---- hangs: FIFOs named *.npz -------------------------------------------------------------

@needs_fork
def test_a_fifo_named_npz_is_named_as_such_by_golden_load(tmp_path: Path) -> None:
    fifo = tmp_path / "case.npz"
    os.mkfifo(fifo)
    raises_in_child(lambda: golden.GoldenCase.load(fifo), "GoldenError",
                    re.escape(f"golden case {fifo} is a FIFO (named pipe): expected a regular file"))


@needs_fork
def test_case_entries_lists_a_fifo_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "case_0000_yolo.npz")
    kind, msg, _ = in_child(lambda: [(e.path.name, e.kind) for e in golden.case_entries(tmp_path)])
    assert (kind, msg) == ("ok", [("case_0000_yolo.npz", "?")])
    raises_in_child(lambda: golden.load_cases(tmp_path), "GoldenError", "is a FIFO")


@needs_fork
def test_golden_export_layer_json_from_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "layer.npz"
    os.mkfifo(fifo)
    raises_in_child(lambda: cli.main(["golden", "export", "--layer-json", str(fifo), "--out", str(tmp_path / "o")]),
                    "SystemExit", r"cannot read --layer-json .*layer.npz is a FIFO \(named pipe\)")


def _copy_case(dst: Path) -> Tuple[str, Dict[str, np.ndarray]]:
    """A good case in dst, and arrays equal to its expected ones."""
    src = sorted(GOLDEN_CASES.glob("*.npz"))[0]
    shutil.copy(src, dst / src.name)
    case = golden.GoldenCase.load(dst / src.name)
    return src.name, {"output": case.output, "delta": case.delta, "cost": case.cost}


@needs_fork
def test_check_on_a_folder_holding_a_fifo_reports_it_and_goes_on(tmp_path: Path, capsys: Any) -> None:
    gold, actual = tmp_path / "golden", tmp_path / "actual"
    gold.mkdir()
    actual.mkdir()
    name, arrays = _copy_case(gold)
    np.savez(actual / name, **arrays)
    os.mkfifo(gold / "case_9999_yolo.npz")
    os.mkfifo(actual / "case_9999_yolo.npz")  # the actual side too: never opened either
    out = _check_output(gold, actual)
    assert out.startswith("exit 1\n"), out  # a case fails; not a hang, not a traceback
    assert f"{name}: ok" in out
    assert re.search(r"case_9999_yolo.npz: ERROR .*is a FIFO \(named pipe\)", out), out
    assert "1 of 2 cases match" in out and "(1 could not be read)" in out


def _check_output(gold: Path, actual: Path, *extra: str) -> str:
    """pydarknet-loss check's stdout, run in a child (its answer is the text)."""
    def run() -> Any:
        import contextlib
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            code = cli.main(["check", "--golden", str(gold), "--actual", str(actual), *extra])
        return f"exit {code}\n" + buf.getvalue()
    kind, msg, _ = in_child(run)
    assert kind == "ok", (kind, msg)
    return msg


# ---- hangs: 8 GiB sparse files of NULs -----------------------------------------------------

@pytest.fixture
def sparse_nuls(tmp_path: Path) -> Path:
    """An 8 GiB file of NUL bytes that takes no disk space (truncate)."""
    p = tmp_path / "zeros.txt"
    with open(p, "wb") as f:
        f.truncate(8 << 30)
    if os.stat(p).st_blocks * 512 > (1 << 20):  # pragma: no cover - a file system without sparse files
        pytest.skip("this file system does not keep sparse files sparse")
    return p


@needs_fork
@pytest.mark.parametrize("reader,exc,match", [
    ("read_labels", "ValueError", r"line 1: the line holds a NUL byte"),
    ("read_tree", "ValueError", r"line 1: expected 'name parent' .*no NUL byte"),
    ("RegionLayer(tree=...)", "ValueError", r"line 1: expected 'name parent' .*no NUL byte"),
    ("read_map", "CfgError", r"line 1: holds a NUL byte \(byte 0 of the file\): expected a text map file"),
    ("read_cfg", "CfgError", r"line 1: holds a NUL byte \(byte 0 of the file\)"),
    ("Network.from_cfg", "CfgError", r"line 1: holds a NUL byte \(byte 0 of the file\)"),
    ("GoldenCase.load", "GoldenError", r"not a golden case \(.npz\) file: it is binary data"),
])
def test_an_8_gib_sparse_file_of_nuls_is_refused_at_once(sparse_nuls: Path, reader: str, exc: str,
                                                         match: str) -> None:
    calls: Dict[str, Callable[[], Any]] = {
        "read_labels": lambda: pdl.read_labels(sparse_nuls),
        "read_tree": lambda: pdl.read_tree(sparse_nuls),
        "RegionLayer(tree=...)": lambda: pdl.RegionLayer(classes=2, anchors=[1.0, 1.0], tree=sparse_nuls),
        "read_map": lambda: read_map(sparse_nuls),
        "read_cfg": lambda: read_cfg(sparse_nuls),
        "Network.from_cfg": lambda: pdl.Network.from_cfg(sparse_nuls),
        "GoldenCase.load": lambda: golden.GoldenCase.load(sparse_nuls),
    }
    secs = raises_in_child(calls[reader], exc, re.escape(str(sparse_nuls)) + ".*" + match)
    assert secs < 1.0, f"{reader} took {secs:.2f} s on the sparse file: it reads on after the first NUL"


def test_read_map_refuses_a_line_with_a_nul_byte(tmp_path: Path) -> None:
    p = tmp_path / "map.txt"
    p.write_bytes(b"0\n1\n2\x003\n4\n")
    with pytest.raises(CfgError, match=re.escape(f"{p}, line 3: holds a NUL byte (byte 5 of the file)")):
        read_map(p)
    p.write_bytes(b"0\n1\r\n 2\n")  # legal: as before, atoi of each line
    assert read_map(p) == [0, 1, 2]


def test_a_nul_after_the_first_chunk_names_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_validate, "READ_CHUNK", 7)
    p = tmp_path / "map.txt"
    p.write_bytes(b"10\n11\n12\n13\n1\x004\n")
    with pytest.raises(CfgError, match=r"line 5: holds a NUL byte \(byte 13 of the file\)"):
        read_map(p)
    p.write_bytes(b"10\n11\n12\n13\n14\n")
    assert read_map(p) == [10, 11, 12, 13, 14]


def test_a_nul_mid_file_stops_the_label_and_tree_readers_on_its_line(tmp_path: Path) -> None:
    p = tmp_path / "l.txt"
    p.write_bytes(b"0 0.5 0.5 0.1 0.1\n1 0.5 0.5\x00 0.1 0.1\n" + b"\x00" * 10000)
    with pytest.raises(ValueError, match=re.escape(f"{p}, line 2: the line holds a NUL byte")):
        pdl.read_labels(p)
    t = tmp_path / "t.tree"
    t.write_bytes(b"a -1\nb 0\nc\x00 0\n")
    with pytest.raises(ValueError, match=re.escape(f"{t}, line 3: ")):
        pdl.read_tree(t)


# ---- hangs: ~2 million anchor values ----------------------------------------------------------

@pytest.mark.parametrize("how", ["list", "array"])
@pytest.mark.parametrize("layer", ["yolo", "region", "ab"])
def test_two_million_anchor_values_are_checked_at_numpy_speed(how: str, layer: str) -> None:
    values = np.random.default_rng(0).uniform(1, 600, 2 * (2**20 - 1))
    anchors: Any = values.tolist() if how == "list" else values
    make = {"yolo": lambda: pdl.YoloLayer(classes=1, anchors=anchors, mask=[0]),
            "region": lambda: pdl.RegionLayer(classes=1, anchors=anchors),
            "ab": lambda: pdl.alexeyab.YoloLayer(classes=1, anchors=anchors, mask=[0])}[layer]
    t0 = time.perf_counter()
    l = make()
    secs = time.perf_counter() - t0
    assert secs < 3.0, f"{secs:.1f} s to check {values.size} anchor values (7-17 s before the fix)"
    assert np.array_equal(l.anchors, values.astype(np.float32))
    bad = values.copy()
    bad[1_500_001] = np.nan
    with pytest.raises(ValueError, match=r"anchors\[1500001\] must be finite"):
        pdl.YoloLayer(classes=1, anchors=bad.tolist() if how == "list" else bad, mask=[0])


def test_more_anchor_values_than_the_cap_are_refused_before_reading_them() -> None:
    class Endless(list):  # would take minutes to read value by value
        def __iter__(self) -> Any:
            raise AssertionError("read")

    too_many = Endless([1.0] * (2**21 + 2))
    for make in (lambda: pdl.YoloLayer(classes=1, anchors=too_many, mask=[0]),
                 lambda: pdl.alexeyab.YoloLayer(classes=1, anchors=too_many, mask=[0], total=1)):
        with pytest.raises(ValueError, match=r"anchors holds 2097154 values: more than 2097152"):
            make()


def test_fast_anchor_reading_rounds_as_real32_value_by_value() -> None:
    """The vectorised reading gives what real32() (float(v), then float32)
    gives for each value, value kinds mixed, ties and int rounding included."""
    vals: List[Any] = [2**53 + 1, 2**63 + 2**11 + 1, 16777217, 0.1, 1e-45, 3.4028235e38, np.float32(1.5),
                       np.float64(33554433.0), np.int64(2**62 + 1), np.float16(0.333), 7, np.longdouble("0.1")]
    expect = np.array([_validate.real32(f"a{i}", v) for i, v in enumerate(vals)], np.float32)
    got = _validate.anchors32(vals, pairs=True)
    assert got.tobytes() == expect.tobytes()
    for arr in (np.array([2**53 + 1, 2**63 - 1, 16777217, 3], np.int64), np.array([2**64 - 1, 5], np.uint64),
                np.array([0.1, 1e-45, 3.4028235e38, 1e-3], np.float64), np.array([0.1, 2.5], np.longdouble)):
        expect = np.array([_validate.real32("a", v) for v in arr], np.float32)
        assert _validate.anchors32(arr).tobytes() == expect.tobytes(), arr
    for bad, match in (([1.0, True], r"anchors\[1\] must be a real number, got bool"),
                       ([1.0, "2"], r"anchors\[1\] must be a real number, got str"),
                       ([1.0, 10**400], r"anchors\[1\] = .* is too large"),
                       ([1.0, 3.5e38], r"anchors\[1\] = 3.5e\+38 does not fit a float32"),
                       ([1.0, -2.0], r"anchors\[1\] = -2.0 is -2.0 as a float32: anchor sizes must be positive"),
                       ([1.0, 1e-50], r"anchors\[1\] = 1e-50 is 0.0 as a float32")):
        with pytest.raises((TypeError, ValueError), match=match):
            _validate.anchors32(bad)


# ---- silent acceptance: AlexeyAB's constructor -------------------------------------------------

@pytest.mark.parametrize("total", [2**20 + 1, 2**31 - 1])
def test_alexeyab_caps_the_anchor_count_like_pjreddie(total: int) -> None:
    for make in (pdl.alexeyab.YoloLayer, pdl.YoloLayer):
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=rf"total = {total} anchors: more than 1048576 is refused"):
            make(classes=1, anchors=[10.0, 13.0], total=total, mask=[0])
        assert time.perf_counter() - t0 < 0.5  # refused before allocating 2*total biases
    assert pdl.alexeyab.YoloLayer(classes=1, anchors=[10.0, 13.0], total=2**20, mask=[0]).total == 2**20


@pytest.mark.parametrize("classes", [2**31, 2**63, 10**30])
def test_alexeyab_classes_beyond_a_c_int_are_refused(classes: int) -> None:
    for make in (pdl.alexeyab.YoloLayer, pdl.YoloLayer):
        with pytest.raises(ValueError, match=rf"classes = {classes} does not fit the C core's int"):
            make(classes=classes, anchors=[10.0, 13.0], mask=[0])


@pytest.mark.parametrize("make", [pdl.alexeyab.YoloLayer, pdl.YoloLayer])
def test_classes_whose_channels_overflow_an_int_are_refused(make: Any) -> None:
    anchors = [10.0, 13.0, 16.0, 30.0, 33.0, 23.0]
    with pytest.raises(ValueError, match=r"classes = 2147483647: the layer's input channels len\(mask\)\*\(4\+1\+"
                                         r"classes\) = 3\*2147483652 = 6442450956 do not fit"):
        make(classes=2**31 - 1, anchors=anchors, mask=[0, 1, 2])
    # The largest legal count: 1*(5 + classes) == INT_MAX.
    assert make(classes=2**31 - 6, anchors=anchors[:2], mask=[0]).channels == 2**31 - 1


# ---- silent acceptance: compare / check options, costs -------------------------------------------

def _yolo_case() -> Tuple[Any, Any]:
    l = pdl.YoloLayer(classes=1, anchors=[10.0, 13.0], mask=[0])
    x = np.random.default_rng(1).standard_normal((1, 6, 2, 2)).astype(np.float32)
    return l, l.forward(x, [np.array([[0.3, 0.6, 0.2, 0.3, 0]], np.float32)], net_w=64, net_h=64)


@pytest.mark.parametrize("opt,value,match", [
    ("atol", float("nan"), r"atol must be a number >= 0 .*got nan"),
    ("atol", -1, r"atol must be a number >= 0 .*got -1"),
    ("rtol", -1, r"rtol must be a number >= 0 .*got -1"),
    ("worst", -1, r"worst must be >= 0, got -1"),
    ("max_ulp", -5, r"max_ulp must be >= 0, got -5"),
    ("max_ulp", 1.5, r"max_ulp must be an integer, got float"),
    ("atol", "1", r"atol must be a real number, got str"),
])
def test_compare_refuses_options_that_make_no_sense(opt: str, value: Any, match: str) -> None:
    l, r = _yolo_case()
    with pytest.raises((ValueError, TypeError), match=match):
        pdl.compare(r, r, l, **{opt: value})


def test_compare_of_identical_arrays_passes_with_legal_options() -> None:
    l, r = _yolo_case()
    for kw in ({}, {"max_ulp": 0}, {"atol": 0.0, "rtol": 0.0}, {"atol": float("inf")}, {"worst": 0}):
        assert pdl.compare(r, r, l, **kw).ok, kw


def test_compare_names_a_cost_that_is_no_number() -> None:
    l, r = _yolo_case()
    for bad, match in (("x", r"actual cost must be a number \(a cost\), got str 'x'"),
                       (np.array(["x"]), r"actual cost must be one number .*dtype <U1"),
                       (np.zeros(3, np.float32), r"actual cost must be one number .*shape \(3,\)"),
                       (True, r"actual cost must be a number \(a cost\), got bool")):
        with pytest.raises(TypeError, match=match):
            pdl.compare(r, {"cost": bad}, l)
    assert pdl.compare(r, {"cost": np.array([r.cost])}, l).cost_ok  # a one-element array is one number
    assert pdl.compare(r, {"cost": float(r.cost)}, l).cost_ok


@pytest.mark.parametrize("opt,value", [("--atol", "nan"), ("--atol", "-1"), ("--rtol", "-1"), ("--max-ulp", "-5")])
def test_check_refuses_the_same_options_with_a_usage_error(tmp_path: Path, opt: str, value: str, capsys: Any) -> None:
    code = cli.main(["check", "--golden", str(GOLDEN_CASES), "--actual", str(tmp_path), opt, value])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(rf"{opt.lstrip('-').replace('-', '_')} must be .*>= 0", err), err


def test_calc_network_cost_refuses_what_is_not_one_cost_per_layer() -> None:
    with pytest.raises(TypeError, match=r"costs\[0\] must be one number \(a scalar or a one-element float array\), "
                                        r"got an array of dtype float64 and shape \(3,\)"):
        pdl.calc_network_cost([np.zeros(3)])
    with pytest.raises(TypeError, match=r"costs\[1\] must be a number \(a cost\), got str"):
        pdl.calc_network_cost([1.0, "2"])
    with pytest.raises(TypeError, match="costs must be a list"):
        pdl.calc_network_cost("12")
    with pytest.raises(TypeError, match=r"results\[0\] must be one number"):
        pdl.train_loss([np.zeros(2)], batch=1)
    # Legal: float sum / count in float, as upstream: (1 + 2) / 2 and (0.1f + 0.2f) / 2.
    assert pdl.calc_network_cost([1.0, np.float32(2)]) == np.float32(1.5)
    s = np.float32(np.float32(0.1) + np.float32(0.2))
    assert pdl.calc_network_cost([np.float32(0.1), np.array(np.float32(0.2))]) == np.float32(s / np.float32(2))


# ---- exceptions: .npz member headers ------------------------------------------------------------

def _npy(header: Dict[str, Any], payload: bytes = b"\0" * 16) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, header)
    return b.getvalue() + payload


def _case_with(tmp: Path, name: str, member: str, data: bytes, deflate: bool = False) -> Path:
    """A real golden case with one member replaced by raw bytes."""
    src = sorted(GOLDEN_CASES.glob("*.npz"))[0]
    out = tmp / name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if deflate else
                                                       zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, data if info.filename == member else zin.read(info))
    return out


HUGE = [
    ({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}, r"1000000000000 values, more than the C core"),
    ({"descr": "<f8", "fortran_order": False, "shape": (2**30,)}, r"\(8589934592 bytes\), but the member holds 16"),
    ({"descr": "<c16", "fortran_order": False, "shape": (2**31 - 1,)}, r"but the member holds 16 bytes"),
    ({"descr": "|O", "fortran_order": False, "shape": (3,)}, r"holds pickled Python objects"),
]


@pytest.mark.parametrize("header,match", HUGE)
def test_a_member_header_claiming_a_huge_shape_is_a_golden_error(tmp_path: Path, header: Dict[str, Any],
                                                                 match: str) -> None:
    p = _case_with(tmp_path, "case_0000_yolo.npz", "input.npy", _npy(header))
    where = re.escape(f"{p}, member 'input.npy'")
    t0 = time.perf_counter()
    with pytest.raises(GoldenError, match=where + ".*" + match):
        golden.GoldenCase.load(p)
    with pytest.raises(GoldenError, match=where):
        golden.load_cases(tmp_path)
    assert [e.kind for e in golden.case_entries(tmp_path)] == ["yolo"]  # kind/tags/train read; input later
    p2 = _case_with(tmp_path, "case_0001_yolo.npz", "kind.npy", _npy(header))
    assert [e.kind for e in golden.case_entries(tmp_path)] == ["yolo", "?"]
    with pytest.raises(GoldenError, match=re.escape(f"{p2}, member 'kind.npy'")):
        golden.read_arrays(p2)
    assert time.perf_counter() - t0 < 2.0


def test_a_member_whose_zip_entry_claims_more_than_deflate_can_give_is_refused(tmp_path: Path) -> None:
    p = _case_with(tmp_path, "case.npz", "input.npy", b"x" * 100, deflate=True)
    raw = bytearray(p.read_bytes())
    # Patch the central directory's uncompressed size of input.npy to 2**31.
    name = b"input.npy"
    k = raw.rfind(b"PK\x01\x02" + bytes(0), 0)
    while k >= 0:
        n = int.from_bytes(raw[k + 28:k + 30], "little")
        if raw[k + 46:k + 46 + n] == name:
            raw[k + 24:k + 28] = (2**31).to_bytes(4, "little")
            break
        k = raw.rfind(b"PK\x01\x02", 0, k)
    p.write_bytes(bytes(raw))
    with pytest.raises(GoldenError, match=r"member 'input.npy': claims 2147483648 bytes unpacked from \d+ packed, "
                                          "more than its compression can give"):
        golden.read_arrays(p)


def test_check_reports_a_file_with_a_huge_header_and_goes_on(tmp_path: Path) -> None:
    gold, actual = tmp_path / "golden", tmp_path / "actual"
    gold.mkdir()
    actual.mkdir()
    name, arrays = _copy_case(gold)
    np.savez(actual / name, **arrays)
    _case_with(gold, "case_0500_yolo.npz", "delta.npy", _npy(HUGE[0][0]))
    shutil.copy(gold / name, actual / "case_0500_yolo.npz")
    # the actual side with a lying header, for a third case
    shutil.copy(gold / name, gold / "case_0600_yolo.npz")
    _case_with(actual, "case_0600_yolo.npz", "delta.npy", _npy(HUGE[1][0]))
    out = _check_output(gold, actual)
    assert out.startswith("exit 1\n"), out
    assert f"{name}: ok" in out
    assert re.search(r"case_0500_yolo.npz: ERROR .*case_0500_yolo.npz, member 'delta.npy': its header claims "
                     r"shape \(1000000, 1000000\)", out), out
    assert re.search(r"case_0600_yolo.npz: ERROR .*actual.*case_0600_yolo.npz, member 'delta.npy': its header "
                     r"claims shape \(1073741824,\)", out), out
    assert "1 of 3 cases match" in out and "(2 could not be read)" in out


# ---- issue 19 item 9: a broken .npz says what it is -----------------------------------------------

@pytest.mark.parametrize("content,match", [
    (b"just some text\n", r"it is plain text \(it starts b'just some text\\n'\), not an .npz \(zip\) archive"),
    (b"", r"it is empty \(0 bytes\)"),
    (b"\x80\x04\x95" + b"\0" * 20, r"looks like a Python pickle, which is never loaded"),
    (None, r"it is a single .npy array \(np.save\), not an .npz archive"),
    (b"PK\x03\x04" + b"\x01" * 40, r"starts like a zip archive but is damaged or truncated"),
    (bytes(range(256)), r"binary data that is not an .npz \(zip\) archive"),
])
def test_a_broken_npz_is_a_golden_error_that_says_what_the_file_is(tmp_path: Path, content: Any, match: str) -> None:
    p = tmp_path / "case.npz"
    if content is None:
        with open(p, "wb") as f:
            np.save(f, np.zeros(3, np.float32))
    else:
        p.write_bytes(content)
    with pytest.raises(GoldenError) as info:
        golden.GoldenCase.load(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: not a golden case (.npz) file: ")
    assert re.search(match, msg), msg
    assert "allow_pickle" not in msg


# ---- exceptions: torch tensors on the meta device (and other layouts) ----------------------------

def _torch() -> Any:
    return pytest.importorskip("torch", reason="PyTorch is the optional [torch] extra")


def test_meta_tensors_are_refused_saying_they_hold_no_data() -> None:
    torch = _torch()
    import pydarknet_loss.torch as pt
    l, r = _yolo_case()
    region = pdl.RegionLayer(classes=1, anchors=[1.0, 1.0])
    truth = [np.array([[0.3, 0.6, 0.2, 0.3, 0]], np.float32)]
    xm = torch.zeros((1, 6, 2, 2), device="meta")
    msg = r"is a torch tensor on the 'meta' device: meta tensors hold no data"
    with pytest.raises(TypeError, match="x " + msg):
        pt.YoloLoss(l, 64, 64)(xm, truth)
    with pytest.raises(TypeError, match="x " + msg):
        pt.RegionLoss(region)(xm, truth)
    with pytest.raises(TypeError, match="actual delta " + msg):
        pdl.compare(r, {"delta": xm}, l)
    with pytest.raises(TypeError, match="actual cost " + msg):
        pdl.compare(r, {"cost": torch.zeros((), device="meta")}, l)
    with pytest.raises(TypeError, match="x " + msg):
        pt.check_gradient(lambda x, t: x.sum(), l, xm, truth, net_w=64, net_h=64)
    with pytest.raises(TypeError):  # as layer.forward refused it already
        l.forward(xm, truth, net_w=64, net_h=64)


def test_tensor_layouts_are_refused_or_read_exactly() -> None:
    torch = _torch()
    import pydarknet_loss.torch as pt
    l, r = _yolo_case()
    truth = [np.array([[0.3, 0.6, 0.2, 0.3, 0]], np.float32)]
    dense = torch.from_numpy(r.delta.copy())
    with pytest.raises(TypeError, match=r"actual delta is a torch.sparse_coo torch tensor: pass a dense"):
        pdl.compare(r, {"delta": dense.to_sparse()}, l)
    with pytest.raises(TypeError, match=r"x is a torch.sparse_coo torch tensor"):
        pt.YoloLoss(l, 64, 64)(dense.to_sparse(), truth)
    with pytest.raises(TypeError, match=r"dtype torch.bfloat16 that NumPy cannot hold"):
        pdl.compare(r, {"delta": dense.to(torch.bfloat16)}, l)
    # Legal memory layouts: the same values, the same verdict.
    for t in (dense.to(memory_format=torch.channels_last), dense.transpose(2, 3).contiguous().transpose(2, 3),
              dense.clone().requires_grad_(True)):
        rep = pdl.compare(r, {"delta": t, "cost": torch.tensor(r.cost)}, l)
        assert rep.ok and rep.cost_ok
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 6, 2, 2)).astype(np.float32))
    g = []
    for xt in (x.clone(), x.to(memory_format=torch.channels_last)):
        xt.requires_grad_(True)
        pt.YoloLoss(l, 64, 64)(xt, truth).backward()
        g.append(xt.grad.detach().contiguous().numpy().tobytes())
    assert g[0] == g[1]


# ---- the README's table of exceptions per reader --------------------------------------------------

def _readme_table() -> List[List[str]]:
    text = README.read_text()
    k = text.index("<!-- reader-exceptions")
    rows = []
    for line in text[k:].splitlines()[1:]:
        line = line.strip()
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows[2:]  # past the header and the rule


READERS: Dict[str, Callable[[Path], Any]] = {
    "read_labels": pdl.read_labels,
    "read_tree": pdl.read_tree,
    "RegionLayer(tree=path)": lambda p: pdl.RegionLayer(classes=2, anchors=[1.0, 1.0], tree=p),
    "files.cfg.read_map": read_map,
    "files.cfg.read_cfg": read_cfg,
    "Network.from_cfg": pdl.Network.from_cfg,
    "golden.GoldenCase.load": golden.GoldenCase.load,
    "golden.read_arrays": lambda p: golden.read_arrays(p),
}
ERRORS = {"FileNotFoundError": FileNotFoundError, "IsADirectoryError": IsADirectoryError, "ValueError": ValueError,
          "CfgError": CfgError, "GoldenError": GoldenError}


def _hostile_paths(tmp: Path) -> Dict[str, List[Tuple[str, Path]]]:
    (tmp / "loop_a").symlink_to(tmp / "loop_b")
    (tmp / "loop_b").symlink_to(tmp / "loop_a")
    (tmp / "broken").symlink_to(tmp / "nowhere")
    (tmp / "a_file").write_text("x")
    os.mkfifo(tmp / "fifo")
    (tmp / "content").write_bytes(b"\0garbage\n")
    return {"missing": [("missing", tmp / "missing.txt"), ("broken symlink", tmp / "broken"),
                        ("symlink loop", tmp / "loop_a"), ("through a file", tmp / "a_file" / "x")],
            "directory": [("directory", tmp)],
            "fifo": [("FIFO", tmp / "fifo"), ("device", Path("/dev/null"))],
            "content": [("unreadable content", tmp / "content")]}


def _table_problems(tmp: Path, rows: List[List[str]]) -> List[str]:
    """Every cell of the table tried: what differs from it."""
    paths = _hostile_paths(tmp)
    problems = []
    for cells in rows:
        for reader in re.findall(r"`([^`]+)`", cells[0]):
            for column, cell in zip(("missing", "directory", "fifo", "content"), cells[1:]):
                exc = ERRORS[cell.strip("`")]
                for label, p in paths[column]:
                    try:
                        READERS[reader](p)
                        problems.append(f"{reader} on a {label}: accepted")
                    except BaseException as e:  # noqa: B902 - judged here
                        if not isinstance(e, exc):
                            problems.append(f"{reader} on a {label}: {type(e).__name__}: {e} (README: {cell})")
                        elif str(p) not in str(e):
                            problems.append(f"{reader} on a {label}: the message does not name {p}: {e}")
    return problems


@needs_fork
def test_each_reader_raises_what_the_readme_table_says(tmp_path: Path) -> None:
    rows = _readme_table()
    assert len(rows) == 5, rows
    named = {r for cells in rows for r in re.findall(r"`([^`]+)`", cells[0])}
    assert named == set(READERS), named
    kind, problems, _ = in_child(lambda: _table_problems(tmp_path, rows), timeout=60)  # a FIFO must not block
    assert kind == "ok", (kind, problems)
    assert problems == []

"""tree.c and the softmax: checked against what upstream's own read_tree and
softmax computed (tests/data/upstream_*.npz), and on hand-worked edges."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss._native import ffi, lib

DATA = G.HERE / "data"
SMALL = DATA / "small.tree"


def test_read_tree_matches_upstream_on_our_small_tree() -> None:
    t = pdl.read_tree(SMALL)
    up = np.load(DATA / "upstream_small_tree.npz")
    for name in ("parent", "child", "group", "leaf", "group_size", "group_offset"):
        assert np.array_equal(getattr(t, name), up[name]), name
    assert t.n == 14 and t.groups == 7
    assert t.names[:3] == ("vehicle", "animal", "plant") and t.names[-1] == "tabby"


@pytest.mark.skipif(G.shared_golden() is None, reason=G.SHARED_REASON)
def test_read_tree_on_upstreams_9k_tree() -> None:
    t = pdl.read_tree(G.shared_golden() / "data" / "9k.tree")
    assert t.n == 9418
    # The golden tree cases record the parent array upstream read.
    case = G.load(G.shared_golden() / "cases" / G.shared_only_cases("region")[0])
    assert np.array_equal(t.parent, case["tree_parent"])
    assert int(t.group_size.sum()) == t.n


def test_from_parents_builds_what_read_tree_builds() -> None:
    a = pdl.read_tree(SMALL)
    b = pdl.Tree.from_parents(a.parent.tolist())
    for name in ("child", "group", "leaf", "group_size", "group_offset"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_first_node_with_a_parent_records_an_empty_group_zero() -> None:
    # read_tree closes a group whenever the parent changes, starting from -1;
    # this is impossible in a real tree file but defined.
    t = pdl.Tree.from_parents([-1, 0, 0])
    assert t.group_size.tolist() == [1, 2] and t.group.tolist() == [0, 1, 1]


@pytest.mark.parametrize("text,line", [
    ("a -1\nb 0\nc 5\n", 3),          # parent after the node
    ("a -1\nb\n", 2),                  # no parent (upstream would take -1)
    ("a -1\n\nb 0\n", 2),              # empty line
    ("a -1\nb -2\n", 2),               # parent below -1
    ("a -1\nb x\n", 2),                # not an integer
    ("x" * 256 + " -1\n", 1),          # name longer than upstream's 256-byte buffer
])
def test_malformed_tree_files_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    f = tmp_path / "bad.tree"
    f.write_text(text)
    with pytest.raises(ValueError, match=f"line {line}: expected 'name parent'"):
        pdl.read_tree(f)


def test_tree_file_edge_cases(tmp_path: Path) -> None:
    f = tmp_path / "ok.tree"
    f.write_text("a -1\r\nb 0 trailing words\nc 0")  # CRLF, trailing text, no final newline
    assert pdl.read_tree(f).parent.tolist() == [-1, 0, 0]
    with pytest.raises(FileNotFoundError):
        pdl.read_tree(tmp_path / "missing.tree")
    (tmp_path / "empty.tree").write_text("")
    with pytest.raises(ValueError, match="cannot read a tree"):
        pdl.read_tree(tmp_path / "empty.tree")


def test_parent_arrays_are_checked() -> None:
    with pytest.raises(ValueError, match="node 2 has parent 2"):
        pdl.Tree.from_parents([-1, 0, 2])


def test_c_read_tree_and_free_tree() -> None:
    t = lib.read_tree(str(SMALL).encode())
    try:
        assert t.n == 14 and t.groups == 7 and ffi.string(t.name[13]) == b"tabby"
    finally:
        lib.free_tree(t)
    assert lib.read_tree(b"/nonexistent/tree") == ffi.NULL


def _softmax(x: np.ndarray, n: int, temp: float, stride: int) -> np.ndarray:
    out = np.full(x.shape, -5.0, np.float32)
    lib.softmax(ffi.cast("float *", ffi.from_buffer(x)), n, temp, stride, ffi.cast("float *", ffi.from_buffer(out)))
    return out


def test_softmax_matches_upstream() -> None:
    d = np.load(DATA / "upstream_softmax.npz")
    off = d["offsets"]
    for k in range(len(d["n"])):
        x = np.ascontiguousarray(d["input"][off[k]:off[k + 1]])
        ours = _softmax(x, int(d["n"][k]), float(d["temp"][k]), int(d["stride"][k]))
        assert G.bits_equal(ours, d["output"][off[k]:off[k + 1]]), (k, x, ours)


def test_softmax_edges() -> None:
    # All-equal inputs: every exp is exp(0) = 1, so each is exactly 1/n.
    assert _softmax(np.full(4, 3.25, np.float32), 4, 1.0, 1).tolist() == [0.25] * 4
    # One-element group: exactly 1.
    assert _softmax(np.array([-7.5], np.float32), 1, 1.0, 1).tolist() == [1.0]
    # -inf contributes exp(-inf) = 0.
    out = _softmax(np.array([-np.inf, 0.0, 0.0], np.float32), 3, 1.0, 1)
    assert out.tolist() == [0.0, 0.5, 0.5]
    # All -inf: the running max starts at -FLT_MAX and stays there, every
    # exp is 0, and 0/0 is NaN.
    assert np.isnan(_softmax(np.full(2, -np.inf, np.float32), 2, 1.0, 1)).all()
    # Temperature 0 (upstream's tree default): x/0 - max/0 is NaN or inf - inf.
    assert np.isnan(_softmax(np.array([0.5, 2.0], np.float32), 2, 0.0, 1)).all()
    # Stride: only every stride-th entry is read and written.
    x = np.array([1.0, 9.0, 1.0, 9.0], np.float32)
    out = _softmax(x, 2, 1.0, 2)
    assert out.tolist() == [0.5, -5.0, 0.5, -5.0]
    assert math.isclose(float(lib.logistic_activate(0.0)), 0.5)

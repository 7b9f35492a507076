"""The C core as C and C++ users see it: one header, make/forward/free, the
strict flags, and refusal without side effects."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pydarknet_loss as pdl
from pydarknet_loss._native import ffi, lib

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "darknet_src"
HEADER = SRC / "darknet_loss.h"
CC = shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("c++") or shutil.which("g++")


def test_build_used_the_strict_flags() -> None:
    flags = pdl.BUILD_CFLAGS.split()
    assert flags[:4] == ["-std=c99", "-O2", "-fno-fast-math", "-ffp-contract=off"]
    assert not any(f in flags for f in ("-ffast-math", "-Ofast", "-march=native", "-O3"))


def test_every_function_in_the_header_is_bound() -> None:
    decls = re.findall(r"^\w[\w\s\*]*?\b(\w+)\(", HEADER.read_text(), re.M)
    assert "forward_yolo_layer" in decls and "box_iou" in decls
    for name in decls:
        assert hasattr(lib, name), name


def test_make_yolo_layer_sets_parse_yolo_defaults() -> None:
    l = lib.make_yolo_layer(2, 3, 4, 3, 9, ffi.NULL, 5)
    try:
        assert [l.mask[i] for i in range(3)] == [0, 1, 2]
        assert [l.biases[i] for i in range(18)] == [0.5] * 18
        assert (l.c, l.outputs, l.truths, l.max_boxes) == (30, 360, 450, 90)
        assert l.ignore_thresh == np.float32(0.5) and l.truth_thresh == 1.0
        assert lib.check_layer(l) == lib.DN_OK
    finally:
        lib.free_layer(l)


def test_make_yolo_layer_refuses_nonsense_sizes() -> None:
    l = lib.make_yolo_layer(1, 0, 4, 3, 9, ffi.NULL, 5)
    assert l.output == ffi.NULL
    lib.free_layer(l)  # freeing the empty layer is harmless


def test_check_layer_refuses_what_upstream_would_overrun() -> None:
    mask = ffi.new("int[]", [6, 7, 9])
    l = lib.make_yolo_layer(1, 2, 2, 3, 9, mask, 2)
    try:
        assert lib.check_layer(l) == lib.DN_E_LAYER  # mask 9 >= total 9
        l.mask[2] = 8
        assert lib.check_layer(l) == lib.DN_OK
        l.max_boxes = 91  # would read the next image's truths
        assert lib.check_layer(l) == lib.DN_E_LAYER
    finally:
        lib.free_layer(l)


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_c_program_links_the_core_and_agrees_with_python(tmp_path: Path) -> None:
    exe = tmp_path / "yolo_api"
    cmd = [CC, "-std=c99", "-O2", "-fno-fast-math", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
           "-I", str(SRC), str(ROOT / "tests" / "c" / "yolo_api.c"), *map(str, sorted(SRC.glob("*.c"))),
           str(SRC / "cuda" / "no_cuda.c"), "-lm", "-pthread", "-o", str(exe)]
    subprocess.run(cmd, check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    head = lines[0].split()
    assert head[:2] == ["rc", "0"]
    values = np.array([[float.fromhex(v) for v in ln.split()] for ln in lines[1:-1]], dtype=np.float32)

    x = np.array([((i * 37) % 11 - 5) / 4 for i in range(3 * 7 * 4)], dtype=np.float32).reshape(1, 21, 2, 2)
    t = np.zeros((1, 90, 5), np.float32)
    t[0, 0] = [.3, .6, .8, .7, 1]
    res = pdl.YoloLayer(classes=2, anchors=[10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90,
                                            156, 198, 373, 326], mask=[6, 7, 8]).forward(x, t, index=82)
    assert np.array_equal(values[:, 0], res.output.ravel())
    assert np.array_equal(values[:, 1], res.delta.ravel())
    assert float.fromhex(head[3]) == res.cost and int(head[5]) == res.stats.count
    assert lines[-1] == f"refused {lib.DN_E_TRUTH_CELL} 1 untouched 1"


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_header_compiles_as_cpp(tmp_path: Path) -> None:
    src = tmp_path / "use.cpp"
    src.write_text('#include "darknet_loss.h"\nint main() { layer l = layer(); return l.n; }\n')
    subprocess.run([CXX, "-fsyntax-only", "-Wall", "-Werror", "-I", str(SRC), str(src)], check=True)


def test_makefile_lib_uses_the_same_flags() -> None:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("STRICT_CFLAGS ="))
    assert line.split("=", 1)[1].split() == pdl.BUILD_CFLAGS.split()


def test_make_region_layer_sets_parse_region_defaults() -> None:
    l = lib.make_region_layer(1, 13, 13, 5, 20, 4)
    try:
        assert (l.c, l.truths, l.max_boxes, l.n, l.total) == (125, 150, 30, 5, 5)
        assert l.thresh == np.float32(0.5)
        assert (l.coord_scale, l.object_scale, l.noobject_scale, l.class_scale, l.mask_scale) == (1, 1, 1, 1, 1)
        assert [l.biases[i] for i in range(10)] == [0.5] * 10
        assert lib.check_layer(l) == lib.DN_OK
    finally:
        lib.free_layer(l)


def test_check_layer_refuses_a_tree_that_does_not_fit() -> None:
    parents = ffi.new("int[]", [-1, -1, 0])
    bufs = [ffi.new("int[]", 4) for _ in range(5)]
    t = ffi.new("tree *")
    assert lib.tree_init(t, 3, parents, *bufs) == lib.DN_OK
    l = lib.make_region_layer(1, 2, 2, 1, 3, 4)
    try:
        l.softmax_tree = t
        assert lib.check_layer(l) == lib.DN_OK
        t.n = 2  # one node per class, or the truth classes walk past parent[]
        assert lib.check_layer(l) == lib.DN_E_LAYER
        t.n = 3
        t.group_size[0] = 5  # groups must tile the nodes
        assert lib.check_layer(l) == lib.DN_E_LAYER
    finally:
        lib.free_layer(l)
    bad = ffi.new("int[]", [-1, 2, 0])  # a parent after its child
    assert lib.tree_init(t, 3, bad, *bufs) == lib.DN_E_LAYER


def test_forward_refuses_a_layer_of_the_other_type() -> None:
    l = lib.make_region_layer(1, 2, 2, 1, 3, 4)
    try:
        x = np.zeros(l.outputs, np.float32)
        net = ffi.new("network *")
        net.input = ffi.cast("float *", ffi.from_buffer(x))
        assert lib.forward_yolo_layer(l, net[0]) == lib.DN_E_LAYER  # would read l.mask (NULL)
        assert lib.forward_region_layer(l, net[0]) == lib.DN_OK
    finally:
        lib.free_layer(l)

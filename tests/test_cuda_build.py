"""The CUDA build, where no GPU is needed: nvcc compiles the device code, with
upstream's device flags, to the same arithmetic on every -gencode target; a
CPU build says it has no CUDA; the build's switches agree.

The GPU's own answers (upstream's GPU build bit for bit) are test_cuda.py's,
which runs only on a GPU.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import pytest

import ptx_check
from pydarknet_loss._native import ffi, lib

ROOT = Path(__file__).resolve().parent.parent
GPU_CU = ROOT / "darknet_src" / "cuda" / "gpu.cu"
BUILD_FFI = (ROOT / "build_ffi.py").read_text()
NVCC = shutil.which("nvcc")
#: nvcc's environment: without the sanitizer job's preloaded libasan, which
#: nvcc's own (uninstrumented) programs crash under.
NVCC_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def _build_list(name: str) -> list:
    m = re.search(rf'^{name} = os.environ.get\("PYDARKNET_LOSS_CUDA_ARCH", "([\d ]+)"\)', BUILD_FFI, re.M)
    assert m, f"build_ffi.py's {name} not found"
    return m.group(1).split()


ARCHS = _build_list("CUDA_ARCHS")
DEVICE_FLAGS = re.search(r"^NVCC_DEVICE_FLAGS = \[(.*)\]", BUILD_FFI, re.M).group(1).replace('"', "").split(", ")


def test_makefile_and_build_ffi_agree() -> None:
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^CUDA_ARCHS \?= (.*)$", make, re.M).group(1).split() == ARCHS
    assert re.search(r"^NVCC_DEVICE_FLAGS = (.*)$", make, re.M).group(1).split() == DEVICE_FLAGS


def test_device_flags_are_nvccs_defaults_without_fast_math() -> None:
    assert DEVICE_FLAGS == ["-O3", "-fmad=true", "-prec-div=true", "-prec-sqrt=true", "-ftz=false"]
    assert "use_fast_math" not in BUILD_FFI.replace("no -use_fast_math", "")


def test_the_cpu_build_says_it_has_no_cuda() -> None:
    info = ffi.new("dn_cuda_device *")
    assert lib.dn_cuda_info(info) == lib.DN_OK
    if info.built:
        pytest.skip("this is a CUDA build (PYDARKNET_LOSS_CUDA=1)")
    assert info.device_count == 0 and ffi.string(lib.dn_build_cuda()) == b""
    x = ffi.new("float[1]", [0.5])
    assert lib.dn_cuda_logistic(x, x, 1) == lib.DN_E_NO_CUDA
    buf = ffi.new("char[64]")
    assert lib.dn_cuda_error_text(lib.DN_E_NO_CUDA, buf, 64) == lib.DN_OK
    assert ffi.string(buf) == b"built without CUDA"


needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed (CI compiles the CUDA sources "
                                                     "wherever it is)")


@pytest.fixture(scope="module")
def ptx() -> Dict[str, Dict[str, str]]:
    """compute capability -> kernel name -> PTX body, for every build target."""
    out = {}
    for arch in ARCHS:
        proc = subprocess.run([NVCC, "-ptx", "-o", "-", str(GPU_CU), f"-arch=compute_{arch}", *DEVICE_FLAGS],
                              capture_output=True, text=True, env=NVCC_ENV, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out[arch] = ptx_check.entries(proc.stdout)
    return out


def _kernel(bodies: Dict[str, str], name: str) -> str:
    found = [body for mangled, body in bodies.items() if name in mangled]
    assert len(found) == 1, (name, list(bodies))
    return found[0]


@needs_nvcc
def test_gpu_cu_compiles_warning_free_for_every_target(tmp_path: Path) -> None:
    gencode = [f for a in ARCHS for f in ("-gencode", f"arch=compute_{a},code=sm_{a}")]
    proc = subprocess.run([NVCC, "-c", str(GPU_CU), "-o", str(tmp_path / "gpu.o"), "-Xcompiler", "-fPIC,-Wall",
                           "-Werror", "all-warnings", *DEVICE_FLAGS, *gencode],
                          capture_output=True, text=True, env=NVCC_ENV, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_nvcc
def test_the_logistic_is_the_same_float_operations_on_every_target(ptx) -> None:  # type: ignore[no-untyped-def]
    """logistic_activate_kernel: `1.f/(1.f + expf(-x))`.  With -fmad=true nvcc
    fuses `1.f +` with expf's last multiply (its 2^k scaling) into one FMA,
    then takes an IEEE reciprocal; upstream's build does the same, so must we."""
    ops = {arch: ptx_check.float_ops(_kernel(bodies, "dn_logistic_runs_kernel")) for arch, bodies in ptx.items()}
    first = ops[ARCHS[0]]
    for arch in ARCHS[1:]:
        assert ops[arch] == first, f"compute_{arch} computes the logistic differently from compute_{ARCHS[0]}"
    text = "\n".join(first)
    assert re.search(r"fma\.rn\.f32 (r\d+), r\d+, r\d+, 0f3F800000\nrcp\.rn\.f32 r\d+, \1", text), text
    assert sum(op.startswith("ex2.approx.ftz.f32") for op in first) == 1


@needs_nvcc
def test_device_code_rounds_as_ieee_except_expfs_ex2(ptx) -> None:  # type: ignore[no-untyped-def]
    allowed_approx = {"ex2.approx.ftz.f32"}
    for arch, bodies in ptx.items():
        for name, body in bodies.items():
            for op in ptx_check.opcodes(body):
                if ".approx" in op or ".ftz" in op or op.startswith(("div.full", "sqrt", "rsqrt", "lg2", "sin", "cos")):
                    assert op in allowed_approx, f"compute_{arch} {name}: {op}"
                if op.startswith(("div.", "rcp.")):
                    assert ".rn" in op, f"compute_{arch} {name}: {op} is not an IEEE division"


@needs_nvcc
def test_the_softmax_kernels_agree_across_targets(ptx) -> None:  # type: ignore[no-untyped-def]
    """softmax_device: the largest value over `int` conversions (cvt.rzi),
    IEEE divisions by the temperature and by the sum.  sm_100 and newer unroll
    the loops differently; the operations and constants are the same."""
    for kernel in ("dn_softmax_kernel", "dn_softmax_tree_kernel"):
        seqs = {arch: ptx_check.float_ops(_kernel(b, kernel)) for arch, b in ptx.items()}
        for arch in ARCHS:
            ops = set(op.split()[0] for op in seqs[arch])
            assert {"cvt.rzi.s32.f32", "cvt.rn.f32.s32", "div.rn.f32", "ex2.approx.ftz.f32"} <= ops, (arch, ops)
            assert ops == set(o.split()[0] for o in seqs[ARCHS[0]]), f"compute_{arch} {kernel}: {sorted(ops)}"
            consts = set(re.findall(r"0f[0-9A-F]{8}", " ".join(seqs[arch])))
            assert consts == set(re.findall(r"0f[0-9A-F]{8}", " ".join(seqs[ARCHS[0]]))), (arch, kernel)
        older = [a for a in ARCHS if int(a) < 100]
        for arch in older[1:]:
            assert seqs[arch] == seqs[older[0]], f"compute_{arch} {kernel}"

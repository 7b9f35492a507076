"""cffi builder (API mode) for pydarknet_loss._core.

The public header darknet_src/darknet_loss.h is the single source of truth:
its declarations are fed to cdef() after dropping preprocessor lines and the
C++ guard, so nothing is declared twice.

The core is compiled with -O2 -fno-fast-math -ffp-contract=off, the flags the
golden data was computed with.  They come last on the command line, so they
win over whatever Python's own CFLAGS say (-O3 here, -ffast-math elsewhere).
Never add -ffast-math, -Ofast or -march=native: bit-exactness depends on it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "darknet_src"
HEADER = SRC / "darknet_loss.h"

#: The strict flags, also recorded in the built module (pydarknet_loss.BUILD_CFLAGS).
#: The rest change no arithmetic, only speed: -fno-semantic-interposition lets
#: the compiler inline calls between the core's own functions inside a shared
#: module as in a static build; -fno-wrapv undoes the -fwrapv Python's own
#: CFLAGS add; the alignments keep the hot loops' placement from costing a few
#: percent depending on where the linker happens to put them.
STRICT_CFLAGS = ["-std=c99", "-O2", "-fno-fast-math", "-ffp-contract=off",
                 "-fno-semantic-interposition", "-fno-wrapv", "-falign-functions=64", "-falign-loops=64"]

#: PYDARKNET_LOSS_SANITIZE=1 (any value but "" or "0") builds the core with
#: AddressSanitizer and UBSan, every report fatal: the CI's sanitizer job
#: (README, "What the package trusts and what it checks").  Python itself is
#: not instrumented: run it with libasan preloaded (the README says how).
SANITIZE = os.environ.get("PYDARKNET_LOSS_SANITIZE", "") not in ("", "0")
SANITIZE_CFLAGS = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
                   "-fno-omit-frame-pointer", "-g"]

#: PYDARKNET_LOSS_CUDA=1 (any value but "" or "0") also compiles the GPU
#: build's device code (darknet_src/cuda/gpu.cu) with nvcc and links the CUDA
#: runtime statically; without it nothing changes and nvcc is never looked
#: for (darknet_src/cuda/no_cuda.c answers DN_E_NO_CUDA instead).  The name
#: is fixed: tools set it.
CUDA = os.environ.get("PYDARKNET_LOSS_CUDA", "") not in ("", "0")
#: The device code's targets: one cubin per compute capability, and PTX of the
#: last for GPUs newer than the toolkit.  PYDARKNET_LOSS_CUDA_ARCH="90" (a
#: space-separated list) builds fewer.  tests/test_cuda_build.py checks that
#: the device arithmetic compiles to the same PTX for every target.
CUDA_ARCHS = os.environ.get("PYDARKNET_LOSS_CUDA_ARCH", "75 80 86 89 90 100 120").split()
#: nvcc's own defaults for device code, as upstream's Makefile leaves them:
#: no -use_fast_math, so -fmad=true, -prec-div=true, -prec-sqrt=true and
#: -ftz=false.  Stated explicitly so that an nvcc.profile cannot change them.
NVCC_DEVICE_FLAGS = ["-O3", "-fmad=true", "-prec-div=true", "-prec-sqrt=true", "-ftz=false"]

_DEFINE = re.compile(r"^#define\s+(\w+)\s+(-?\d+)\b")


def cdef_source(header_text: str) -> str:
    """The header as cdef() accepts it: integer #defines kept, every other
    preprocessor line and the `extern "C"` guard block dropped."""
    out = []
    skipping_cplusplus = False
    for line in header_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#ifdef __cplusplus"):
            skipping_cplusplus = True
            continue
        if skipping_cplusplus:
            if stripped.startswith("#endif"):
                skipping_cplusplus = False
            continue
        if stripped.startswith("#"):
            m = _DEFINE.match(stripped)
            if m:
                out.append(f"#define {m.group(1)} {m.group(2)}")
            continue
        out.append(line)
    return "\n".join(out)


def _sources() -> list[str]:
    # Relative paths keep the build reproducible from any checkout location.
    found = sorted(str(p.relative_to(ROOT)) for p in SRC.glob("*.c"))
    return found if CUDA else found + ["darknet_src/cuda/no_cuda.c"]


def gencode_flags(archs: list[str]) -> list[str]:
    flags = []
    for arch in archs:
        flags += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    flags += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]
    return flags


def find_nvcc() -> str:
    """nvcc from $CUDA_HOME/bin, then $PATH, then /usr/local/cuda/bin, or a
    SystemExit that says what to do."""
    import shutil

    candidates = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]) / "bin" / "nvcc")
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    raise SystemExit("PYDARKNET_LOSS_CUDA=1 asks for the CUDA build, but nvcc was not found (looked in "
                     "$CUDA_HOME/bin, $CUDA_PATH/bin, $PATH and /usr/local/cuda/bin). Install the CUDA toolkit "
                     "or set CUDA_HOME to it; or unset PYDARKNET_LOSS_CUDA for the CPU build.")


def cuda_lib_dir(nvcc: str) -> str:
    """The toolkit's library folder, where libcudart_static.a is: asked of
    nvcc itself (--dryrun names its -L folders), so wrappers and symlinks
    are followed."""
    import subprocess

    dry = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                         capture_output=True, text=True)
    folders = re.findall(r'-L"?([^"\s]+)"?', dry.stdout + dry.stderr)
    top = Path(nvcc).resolve().parent.parent
    folders += [str(top / "lib64"), str(top / "lib")]
    for folder in folders:
        if (Path(folder) / "libcudart_static.a").is_file():
            return str(Path(folder).resolve())
    raise SystemExit(f"PYDARKNET_LOSS_CUDA=1: found {nvcc} but not the CUDA runtime's libcudart_static.a "
                     f"(looked in {', '.join(folders)}); set CUDA_HOME to a complete toolkit.")


def compile_cuda(out_dir: Path) -> tuple[list[str], list[str], str]:
    """nvcc -c darknet_src/cuda/gpu.cu: the object, the link flags, and a
    line that says how it was built (pydarknet_loss' CUDA_BUILD)."""
    import subprocess

    nvcc = find_nvcc()
    lib = cuda_lib_dir(nvcc)
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / "gpu.o"
    cmd = [nvcc, "-c", str(SRC / "cuda" / "gpu.cu"), "-o", str(obj), "-Xcompiler", "-fPIC",
           *NVCC_DEVICE_FLAGS, *gencode_flags(CUDA_ARCHS)]
    print(" ".join(cmd))
    subprocess.run(cmd, check=True)
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    release = re.search(r"release ([\d.]+)", version)
    line = (f"nvcc {release.group(1) if release else '?'} {' '.join(NVCC_DEVICE_FLAGS)}, "
            f"targets sm_{' sm_'.join(CUDA_ARCHS)} + compute_{CUDA_ARCHS[-1]} PTX")
    return [str(obj)], [f"-L{lib}", "-lcudart_static", "-lrt", "-ldl", "-lpthread", "-lstdc++"], line


cuda_objects, cuda_link, cuda_line = compile_cuda(ROOT / "build" / "cuda") if CUDA else ([], [], "")

ffibuilder = FFI()
ffibuilder.cdef(cdef_source(HEADER.read_text()))
ffibuilder.cdef("const char *dn_build_cflags(void);")
ffibuilder.cdef("const char *dn_build_sanitizers(void);")
ffibuilder.cdef("const char *dn_build_cuda(void);")
ffibuilder.set_source(
    "pydarknet_loss._core",
    '#include "darknet_loss.h"\n'
    f'static const char *dn_build_cflags(void) {{ return "{" ".join(STRICT_CFLAGS)}"; }}\n'
    f'static const char *dn_build_sanitizers(void) {{ return "{" ".join(SANITIZE_CFLAGS) if SANITIZE else ""}"; }}\n'
    f'static const char *dn_build_cuda(void) {{ return "{cuda_line}"; }}\n',
    sources=_sources(),
    include_dirs=[str(SRC.relative_to(ROOT))],
    extra_compile_args=STRICT_CFLAGS + (SANITIZE_CFLAGS if SANITIZE else []),
    extra_objects=cuda_objects,
    extra_link_args=(SANITIZE_CFLAGS[:1] if SANITIZE else []) + cuda_link,
    # pthread: the forward passes' per-call threads (darknet_src/parallel.c).
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    # `python build_ffi.py` builds the module in place, for development.
    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)

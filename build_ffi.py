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
    return sorted(str(p.relative_to(ROOT)) for p in SRC.glob("*.c"))


ffibuilder = FFI()
ffibuilder.cdef(cdef_source(HEADER.read_text()))
ffibuilder.cdef("const char *dn_build_cflags(void);")
ffibuilder.set_source(
    "pydarknet_loss._core",
    '#include "darknet_loss.h"\n'
    f'static const char *dn_build_cflags(void) {{ return "{" ".join(STRICT_CFLAGS)}"; }}\n',
    sources=_sources(),
    include_dirs=[str(SRC.relative_to(ROOT))],
    extra_compile_args=STRICT_CFLAGS,
    # pthread: the forward passes' per-call threads (darknet_src/parallel.c).
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    # `python build_ffi.py` builds the module in place, for development.
    import os

    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)

"""Reading nvcc's PTX for the device arithmetic of darknet_src/cuda/gpu.cu.

Used by test_cuda_build.py to check, on a machine with nvcc and no GPU, that
every -gencode target of the build computes the same float operations:

* ``float_ops(body)``: a kernel's float instructions in order, with
  registers renamed by first use, constants loaded by a single ``mov``
  inlined, and a negation feeding a multiply by a constant folded into the
  constant (``neg a; fma a, K, c`` is ``fma a, -K, c``, exactly: newer PTX
  targets write it that way);
* ``entries(ptx)``: the kernels' bodies by name.
"""
from __future__ import annotations

import re
from typing import Dict, List

_INSTR = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)\s+([^;]*);")


def entries(ptx: str) -> Dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"\.entry (\w+)\((.*?)\n\}", ptx, re.S)}


def _flip(const: str) -> str:
    return "0f%08X" % (int(const[2:], 16) ^ 0x80000000)


def instructions(body: str) -> List[tuple]:
    out = []
    for line in body.splitlines():
        m = _INSTR.match(line)
        if m:
            out.append((m.group(1), [a.strip() for a in m.group(2).split(",")]))
    return out


def float_ops(body: str) -> List[str]:
    instrs = [(op, args) for op, args in instructions(body) if ".f32" in op or ".f64" in op]
    defs: Dict[str, int] = {}
    for op, args in instrs:
        if args and args[0].startswith("%"):
            defs[args[0]] = defs.get(args[0], 0) + 1
    consts = {args[0]: args[1] for op, args in instrs
              if op == "mov.f32" and args[1].startswith("0f") and defs.get(args[0]) == 1}
    negs = {args[0]: args[1] for op, args in instrs if op == "neg.f32" and defs.get(args[0]) == 1}
    ops = []
    for op, args in instrs:
        if op.startswith("ld.param") or (op == "mov.f32" and args[0] in consts) or (op == "neg.f32" and args[0] in negs):
            continue
        args = [consts.get(a, a) for a in args]
        if op.startswith(("fma", "mul")):
            for i, j in ((1, 2), (2, 1)):
                if args[i] in negs and args[j].startswith("0f"):
                    args[i], args[j] = negs[args[i]], _flip(args[j])
        args = [("-" + negs[a]) if a in negs else a for a in args]
        ops.append((op, args))
    names: Dict[str, str] = {}

    def canon(a: str) -> str:
        if a.startswith("["):
            return "[mem]"
        bare = a.lstrip("-")
        if re.fullmatch(r"%\w+", bare):
            names.setdefault(bare, f"r{len(names)}")
            return ("-" if a.startswith("-") else "") + names[bare]
        return a

    return [op + " " + ", ".join(canon(a) for a in args) for op, args in ops]


def opcodes(body: str) -> set:
    """The distinct float opcodes (with their rounding and approximation
    modifiers) of a kernel."""
    return {op for op, _ in instructions(body) if ".f32" in op or ".f64" in op}

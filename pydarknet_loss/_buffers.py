"""Recycled memory for the large arrays a forward pass hands back.

Without ``out=``, every forward pass returns new output and delta arrays.  At
large batch sizes the kernel's zeroing of their fresh pages (and, on a
virtual machine, the host's faults behind it) costs as much as the forward
pass itself.  Arrays of at least ``MIN_BYTES`` therefore come from anonymous
mappings that go back to a small free list when the last array (or view)
using them is gone, and are handed out again for the next array of the same
size: a loop that drops each result before the next call reuses the same
pages.  Up to ``KEEP_BYTES`` of free mappings are kept; more are unmapped.

The arrays are ordinary writable NumPy arrays (their ``base`` is the ctypes
buffer over the mapping).  Like ``np.empty``'s, their memory holds whatever
was there before: the forward pass writes every element of output and delta.
``PYDARKNET_LOSS_RECYCLE=0`` turns recycling off (plain ``np.empty``).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import threading
import weakref
from typing import Dict, List, Tuple

import numpy as np

MIN_BYTES = 8 << 20
KEEP_BYTES = 1 << 30
_HUGE = 2 << 20  # transparent huge pages: mappings aligned to and advised for them

_lock = threading.Lock()
_free: Dict[int, List[mmap.mmap]] = {}
_free_bytes = 0


def _give_back(mm: mmap.mmap, size: int) -> None:
    """The last array over `mm` is gone: keep the mapping for the next one
    (or let it go, unmapped once nothing refers to it)."""
    global _free_bytes
    with _lock:
        if _free_bytes + size <= KEEP_BYTES:
            _free.setdefault(size, []).append(mm)
            _free_bytes += size


def _take(size: int) -> mmap.mmap:
    global _free_bytes
    with _lock:
        stack = _free.get(size)
        if stack:
            _free_bytes -= size
            return stack.pop()
    mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            mm.madvise(mmap.MADV_HUGEPAGE)
        except OSError:  # pragma: no cover - a kernel without THP
            pass
    return mm


def empty(shape: Tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array, from recycled memory when large."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes < MIN_BYTES or os.environ.get("PYDARKNET_LOSS_RECYCLE", "1").strip() == "0":
        return np.empty(shape, dt)
    size = -(-nbytes // _HUGE) * _HUGE + _HUGE  # room to start on a huge-page boundary
    mm = _take(size)
    start = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    holder = (ctypes.c_char * nbytes).from_buffer(mm, -start % _HUGE)
    weakref.finalize(holder, _give_back, mm, size)
    return np.frombuffer(holder, dtype=dt).reshape(shape)


def release() -> int:
    """Unmaps every free mapping now; returns how many bytes that freed."""
    global _free_bytes
    with _lock:
        stacks = list(_free.values())
        freed = _free_bytes
        _free.clear()
        _free_bytes = 0
    for stack in stacks:
        for mm in stack:
            try:
                mm.close()
            except BufferError:  # pragma: no cover - still exported: unmapped when its last user goes
                pass
    return freed

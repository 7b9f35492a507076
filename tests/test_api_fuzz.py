"""The bounded fuzz run (issue 11): a few thousand generated cases of the
public API, each in a forked child with a time limit.  Any crash, hang,
sanitizer report, unexpected exception type, silent accept or nameless
message fails this test, with the case number to re-run:

    cd tests && python -m fuzz --start N --cases 1 -v

The long run is `cd tests && python -m fuzz --cases 100000` (make fuzz).
PYDARKNET_LOSS_FUZZ_CASES, _SEED and _TIMEOUT change the bounded run (the
sanitizer job raises the time limit: an ASan build is slower)."""
from __future__ import annotations

import os
import sys

import pytest

from fuzz import cases as C
from fuzz.runner import run

CASES = int(os.environ.get("PYDARKNET_LOSS_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("PYDARKNET_LOSS_FUZZ_SEED", "0"))
TIMEOUT = float(os.environ.get("PYDARKNET_LOSS_FUZZ_TIMEOUT", "20"))

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                                reason="the fuzz harness forks a child per batch of cases")


def test_bounded_fuzz_run_has_no_failures() -> None:
    s = run(CASES, seed=SEED, jobs=2, per_child=100, timeout=TIMEOUT)
    print(s.report())
    assert s.cases == CASES
    assert not s.failures, s.report()
    # Every target of the issue is exercised, with both accepted and refused input.
    for target in ("yolo", "region", "detections", "nms", "tree", "labels", "boxes", "cfg", "golden", "cli",
                   "gaussian_yolo", "hostile", "ab_ctor", "compare_opts", "tensors"):  # the last four: issue 22
        assert s.per_target.get(target, 0) >= min(20, CASES // 100), (target, s.per_target)
    assert s.outcomes.get("ok", 0) > CASES // 5 and s.outcomes.get("error", 0) > CASES // 5


def test_the_harness_catches_a_crash_a_hang_and_a_silent_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle of the harness itself: a segfault, an endless loop and an
    accepted invalid input are each charged to their case, and the run goes on."""
    import ctypes
    import time

    def crash() -> None:
        ctypes.string_at(0)

    def hang() -> None:
        while True:
            time.sleep(0.01)

    planted = {3: C.Case("yolo", "planted crash", crash, "ok"), 5: C.Case("yolo", "planted hang", hang, "ok"),
               7: C.Case("yolo", "planted silent accept", lambda: 1, "error", ("x",)),
               8: C.Case("yolo", "planted IndexError", lambda: [][1], "any")}
    real = C.make_case

    def make(seed: int, number: int, workdir: str) -> C.Case:
        return planted.get(number) or C.Case("yolo", "fine", lambda: None, "ok")
    monkeypatch.setattr(C, "make_case", make)
    s = run(10, seed=0, jobs=1, per_child=10, timeout=1.0)
    kinds = {f.number: f.kind for f in s.failures}
    if kinds.get(3) == "sanitizer":  # under ASan its SEGV handler reports the crash
        kinds[3] = "crash"
    assert kinds == {3: "crash", 5: "hang", 7: "silent-accept", 8: "exception-type"}, s.report()
    assert s.cases == 10 and s.outcomes.get("ok") == 6
    assert real is not make


def test_a_sanitizer_report_is_charged_to_its_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the sanitizer build (PYDARKNET_LOSS_SANITIZE=1), an out-of-bounds
    read in the core is reported by ASan and counted as a failure of its case."""
    import numpy as np

    from pydarknet_loss import _native

    if "address" not in _native.BUILD_SANITIZERS:
        pytest.skip("the core is not built with AddressSanitizer (PYDARKNET_LOSS_SANITIZE=1)")

    def overrun() -> None:
        a = np.zeros((1, 4), np.float32)
        out = np.zeros(1, np.float32)
        p = _native.ffi.cast("float *", _native.ffi.from_buffer(a))
        _native.lib.box_iou_rows(p, p, 64, _native.ffi.cast("float *", _native.ffi.from_buffer(out)))

    monkeypatch.setattr(C, "make_case", lambda seed, number, workdir: C.Case("boxes", "planted overrun", overrun, "ok"))
    s = run(1, seed=0, jobs=1, timeout=20.0)
    assert [f.kind for f in s.failures] == ["sanitizer"], s.report()
    assert "AddressSanitizer" in s.failures[0].detail

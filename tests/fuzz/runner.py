"""Run fuzz cases in forked children, so that a crash or a hang costs one case.

The parent hands each child a range of case numbers.  The child builds every
case itself from (seed, number), so a case is the same whichever child runs
it, and reports each case on a pipe: a ``start`` line before the call and a
result line after it.  When the child dies (a signal, a sanitizer abort, an
exit) or stays silent past the time limit, the case it last started is
charged with a crash or a hang, the child is replaced and the run goes on
with the next case.  Several cases run per child because a fork costs more
than most cases; the start line keeps the attribution exact.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import cases as C

#: A child's stderr is kept to this many bytes for the report (sanitizer output).
STDERR_TAIL = 4000


@dataclass
class Failure:
    number: int
    target: str
    label: str
    kind: str  # crash, hang, sanitizer, exception-type, silent-accept, refused-valid, message, wrong-result
    detail: str

    def line(self) -> str:
        return f"case {self.number} [{self.target}] {self.label}: {self.kind}: {self.detail}"


@dataclass
class Summary:
    cases: int = 0
    seconds: float = 0.0
    outcomes: Dict[str, int] = field(default_factory=dict)  # ok / error (clean refusals)
    per_target: Dict[str, int] = field(default_factory=dict)
    per_target_ok: Dict[str, int] = field(default_factory=dict)  # cases of the target that returned
    failures: List[Failure] = field(default_factory=list)
    known: List[Failure] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for f in self.failures:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out

    def report(self) -> str:
        lines = [f"{self.cases} cases in {self.seconds:.1f} s: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
                 + f"; {len(self.failures)} failures"
                 + (f" ({', '.join(f'{k} {v}' for k, v in sorted(self.counts().items()))})" if self.failures else "")
                 + (f"; {len(self.known)} known open (not this branch's code, see KNOWN_OPEN)" if self.known else ""),
                 "per target (returned/all): " + ", ".join(f"{k} {self.per_target_ok.get(k, 0)}/{v}"
                                                           for k, v in sorted(self.per_target.items()))]
        for f in self.failures[:200]:
            lines.append("  FAIL " + f.line())
        for f in self.known[:50]:
            lines.append("  known " + f.line())
        return "\n".join(lines)


# ---- the child ----------------------------------------------------------------

def _message_ok(case: C.Case, exc: BaseException) -> Optional[str]:
    """Why a refusal's message is not good enough, or None."""
    msg = str(exc)
    if len(msg) < 8:
        return f"{type(exc).__name__} with an empty or bare message {msg!r}"
    if case.names and not any(n in msg for n in case.names):
        return f"the message names none of {list(case.names)}: {type(exc).__name__}: {msg[:300]}"
    missing = [r for r in case.require if r not in msg]
    if missing:
        return f"the message lacks {missing}: {type(exc).__name__}: {msg[:300]}"
    return None


def _run_one(case: C.Case) -> Tuple[str, str, str]:
    """(status, kind, detail): status 'ok' or 'error' (a clean refusal) or 'fail'."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # numpy's own RuntimeWarnings (overflow in a cast, invalid value)
            # would mean a value was changed silently on its way to C.
            warnings.simplefilter("error", RuntimeWarning)
            result = case.run()
    except C.WrongResult as exc:
        return "fail", "wrong-result", str(exc)[:500]
    except BaseException as exc:  # noqa: B902 - everything is judged here
        if isinstance(exc, KeyboardInterrupt):
            raise
        allowed = case.errors
        if type(exc) in allowed or (isinstance(exc, allowed) and type(exc).__module__.startswith("pydarknet_loss")):
            if case.expect == "ok":
                return "fail", "refused-valid", f"{type(exc).__name__}: {str(exc)[:400]}"
            why = _message_ok(case, exc)
            if why:
                return "fail", "message", why
            return "error", type(exc).__name__, str(exc)[:200]
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
        return "fail", "exception-type", f"{type(exc).__module__}.{type(exc).__name__}{where}: {str(exc)[:400]}"
    if case.expect == "error":
        return "fail", "silent-accept", f"expected a refusal naming {list(case.names)}; it returned {type(result).__name__}"
    return "ok", "", ""


def _child(seed: int, first: int, last: int, wfd: int, workdir: str) -> None:
    """Runs cases first..last-1, writing one JSON line per event to wfd."""
    os.chdir(workdir)
    out = os.fdopen(wfd, "w", buffering=1)
    for number in range(first, last):
        case = None
        try:
            case = C.make_case(seed, number, workdir)
        except Exception as exc:  # a bug in the generator: report it, do not hide it
            out.write(json.dumps({"i": number, "t": "harness", "l": "make_case", "s": "fail",
                                  "k": "harness", "d": f"{type(exc).__name__}: {exc}"[:500]}) + "\n")
            continue
        out.write(json.dumps({"start": number, "t": case.target, "l": case.label[:200]}) + "\n")
        status, kind, detail = _run_one(case)
        out.write(json.dumps({"i": number, "t": case.target, "l": case.label[:200], "s": status,
                              "k": kind, "d": detail}) + "\n")
    out.flush()


# ---- the parent -----------------------------------------------------------------

def _is_known(f: Failure) -> bool:
    for target, kind, fragment in C.KNOWN_OPEN:
        if f.target == target and f.kind == kind and fragment in f.detail + " " + f.label:
            return True
    return False


class _Worker:
    def __init__(self, seed: int, first: int, last: int, tmp: str) -> None:
        self.first, self.last = first, last
        self.next = first  # first case not yet reported
        self.current: Optional[Tuple[int, str, str]] = None
        self.deadline = 0.0
        self.buf = b""
        rfd, wfd = os.pipe()
        self.errpath = os.path.join(tmp, f"stderr-{first}-{os.getpid()}-{time.monotonic_ns()}")
        errfd = os.open(self.errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        workdir = tempfile.mkdtemp(prefix=f"case{first}-", dir=tmp)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                os.close(rfd)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(errfd, 1)  # the CLI prints; keep it with stderr
                os.dup2(errfd, 2)
                import faulthandler
                faulthandler.enable(file=sys.stderr)  # a crash's Python traceback goes with the case
                _child(seed, first, last, wfd, workdir)
            except BaseException:
                traceback.print_exc()
                code = 3
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(wfd)
        os.close(errfd)
        self.pid, self.rfd = pid, rfd

    def stderr_tail(self) -> str:
        try:
            with open(self.errpath, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "ERROR: UndefinedBehaviorSanitizer"):
            k = text.find(marker)
            if k >= 0:
                return text[max(0, k - 200):k + STDERR_TAIL]
        return text[-STDERR_TAIL:]

    def close(self) -> None:
        try:
            os.close(self.rfd)
        except OSError:
            pass
        try:
            os.unlink(self.errpath)
        except OSError:
            pass


def run(cases: int, *, seed: int = 0, start: int = 0, jobs: int = 2, per_child: int = 100,
        timeout: float = 10.0, verbose: bool = False, tmp: Optional[str] = None,
        progress: int = 0) -> Summary:
    """Runs case numbers start..start+cases-1 and returns the summary."""
    summary = Summary()
    t0 = time.monotonic()
    own_tmp = tempfile.TemporaryDirectory(prefix="pdl-fuzz-") if tmp is None else None
    tmpdir = own_tmp.name if own_tmp is not None else tmp
    assert tmpdir is not None
    pending: List[Tuple[int, int]] = []
    for a in range(start, start + cases, per_child):
        pending.append((a, min(a + per_child, start + cases)))
    pending.reverse()
    workers: Dict[int, _Worker] = {}

    def record(event: Dict[str, Any]) -> None:
        summary.cases += 1
        if progress and summary.cases % progress == 0:
            print(f"{summary.cases} cases, {len(summary.failures)} failures, {time.monotonic() - t0:.0f} s",
                  file=sys.stderr, flush=True)
        summary.per_target[event["t"]] = summary.per_target.get(event["t"], 0) + 1
        if event["s"] == "fail":
            f = Failure(event["i"], event["t"], event["l"], event["k"], event["d"])
            (summary.known if _is_known(f) else summary.failures).append(f)
            if verbose:
                print("FAIL", f.line(), flush=True)
        else:
            summary.outcomes[event["s"]] = summary.outcomes.get(event["s"], 0) + 1
            if event["s"] == "ok":
                summary.per_target_ok[event["t"]] = summary.per_target_ok.get(event["t"], 0) + 1

    def finish(w: _Worker, *, hang: bool) -> None:
        """The child is gone (or is killed now): charge the case it was on."""
        if hang:
            os.kill(w.pid, signal.SIGKILL)
        _, status = os.waitpid(w.pid, 0)
        if w.current is not None:
            number, target, label = w.current
            if hang:
                kind, detail = "hang", f"no answer within {timeout:g} s"
            else:
                tail = w.stderr_tail()
                sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
                how = (f"killed by signal {sig} ({signal.Signals(sig).name})" if sig
                       else f"exited with status {os.WEXITSTATUS(status)}")
                sanitizer = "Sanitizer" in tail or "runtime error:" in tail
                kind = "sanitizer" if sanitizer else "crash"
                # A sanitizer report's head says what and where; a plain crash's tail does.
                detail = f"{how}; stderr: {tail.strip()[:1500] if sanitizer else tail.strip()[-1500:]}"
            record({"i": number, "t": target, "l": label, "s": "fail", "k": kind, "d": detail})
            resume = number + 1
        else:
            if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
                if w.next < w.last:
                    record({"i": w.next, "t": "harness", "l": "child", "s": "fail", "k": "crash",
                            "d": f"child died between cases: {w.stderr_tail()[-1500:]}"})
                    resume = w.next + 1
                else:
                    resume = w.last
            else:
                resume = w.last if w.next >= w.last else w.next
        w.close()
        if resume < w.last:
            pending.append((resume, w.last))

    try:
        while pending or workers:
            while pending and len(workers) < jobs:
                a, b = pending.pop()
                w = _Worker(seed, a, b, tmpdir)
                w.deadline = time.monotonic() + timeout
                workers[w.rfd] = w
            now = time.monotonic()
            wait = max(0.0, min(w.deadline for w in workers.values()) - now)
            ready, _, _ = select.select(list(workers), [], [], wait)
            for fd in ready:
                w = workers[fd]
                data = os.read(fd, 65536)
                if not data:
                    del workers[fd]
                    finish(w, hang=False)
                    continue
                w.buf += data
                *lines, w.buf = w.buf.split(b"\n")
                for raw in lines:
                    event = json.loads(raw)
                    if "start" in event:
                        w.current = (event["start"], event["t"], event["l"])
                    else:
                        w.current = None
                        w.next = event["i"] + 1
                        record(event)
                    w.deadline = time.monotonic() + timeout
            now = time.monotonic()
            for fd, w in list(workers.items()):
                if fd in workers and now > w.deadline:
                    del workers[fd]
                    if w.current is None:  # stuck between cases: charge the next one
                        w.current = (w.next, "harness", "between cases")
                    finish(w, hang=True)
    finally:
        for w in workers.values():
            try:
                os.kill(w.pid, signal.SIGKILL)
                os.waitpid(w.pid, 0)
            except OSError:
                pass
            w.close()
        if own_tmp is not None:
            own_tmp.cleanup()
    summary.seconds = time.monotonic() - t0
    summary.failures.sort(key=lambda f: f.number)
    return summary

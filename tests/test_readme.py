"""The README's examples, and those of the documentation pages it links
(docs/*.md), run, in order, and print what the pages say.

A fenced block preceded by ``<!-- readme-test: ... -->`` is executed:

* ``run``: a ``python`` block is executed in one namespace shared by every
  block (as a reader pasting them into one session would); an ``sh`` block
  runs in bash, exactly as written, in a fresh temporary folder that holds
  only ``mymodule.py`` (the reader's implementation the CLI examples name),
  with this environment's ``pydarknet-loss`` on PATH; what it writes is then
  copied into the session's folder, for the blocks below it.  ``exit N`` is
  the exit status expected (default 0);
* ``skip (REASON)``: an ``sh`` block that cannot run here (it installs the
  package, or needs a program built outside this repository); the reason is
  required, and every other ``sh`` block runs;
* ``needs torch``: skipped where PyTorch is not installed;
* ``needs example:NAME``: copies the bundled ``pdl.example_cfg(NAME)`` into
  the working folder as ``NAME.cfg``;
* ``needs shared:PATH``: copies ``../shared/golden/PATH`` into the working
  folder first, skipped (with the reason) where ``../shared`` is absent;
* ``pytest DIR``: the block is written as a test module and pytest runs it,
  with the plugin's ``--darknet-golden DIR``.

A ``text`` block right after an executed block, or the next one marked
``<!-- readme-test: output -->``, is its expected standard output: lines compare exactly, except that ``...`` on a line of its own
matches any number of lines and a line ending in ``...`` matches any line
starting with what precedes it.

All blocks run in one temporary folder that holds ``mymodule.py``, the
module the CLI examples import ``my_yolo_delta`` from.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The README and the documentation pages it links, in reading order: their
#: examples run in one session, as a reader would paste them.
PAGES = [README] + [ROOT / "docs" / f for f in ("layers.md", "implied-loss.md", "behaviour.md", "speed-and-gpu.md",
                                               "development.md")]
SHARED = ROOT.parent / "shared" / "golden"

MYMODULE = '''\
import pydarknet_loss as pdl


def my_yolo_delta(x, truth, layer, net_w, net_h):        # the README's stand-in for an implementation
    return pdl.mistakes.YOLO["first_truth_wins"](x, truth, layer, net_w, net_h)
'''


@dataclass
class Block:
    line: int               # 1-based line of the opening fence
    lang: str
    code: str
    directive: str
    expected: Optional[str]  # the text block that follows, if any
    page: str = "README.md"

    @property
    def id(self) -> str:
        stem = "" if self.page == "README.md" else Path(self.page).stem + "-"
        return f"{stem}line{self.line}-{self.lang}"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"


def _blocks() -> List[Block]:
    out: List[Block] = []
    for page in PAGES:
        out += _page_blocks(page)
    return out


def _page_blocks(page: Path) -> List[Block]:
    name = str(page.relative_to(ROOT))
    lines = page.read_text(encoding="utf-8").splitlines()
    fences = []      # (start line index, lang, body, preceding directive)
    i = 0
    directive = None
    while i < len(lines):
        m = re.match(r"<!-- readme-test: (.*) -->$", lines[i])
        if m:
            directive = m.group(1)
            i += 1
            continue
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            fences.append((i, lang, "\n".join(lines[i + 1:j]) + "\n", directive))
            directive = None
            i = j + 1
            continue
        if lines[i].strip():
            directive = None  # a directive belongs to the block right below it
        i += 1
    blocks: List[Block] = []
    for k, (start, lang, body, d) in enumerate(fences):
        if d == "output":
            assert blocks and blocks[-1].expected is None, f"{name} line {start + 1}: output of what?"
            blocks[-1].expected = body
            continue
        if d is None or d.startswith("skip ("):
            continue
        expected = None
        if k + 1 < len(fences) and fences[k + 1][1] == "text" and fences[k + 1][3] in (None, "output"):
            between = lines[_end(lines, start) + 1:fences[k + 1][0]]
            if not any(s.strip() for s in between):
                expected = fences[k + 1][2]
        blocks.append(Block(start + 1, lang, body, d, expected, name))
    return blocks


def _end(lines: List[str], start: int) -> int:
    j = start + 1
    while not lines[j].startswith("```"):
        j += 1
    return j


BLOCKS = _blocks()


def _match(expected: str, actual: str) -> Optional[str]:
    """None if ``actual`` matches ``expected`` (with ``...``), else why not."""
    exp = expected.rstrip("\n").splitlines()
    act = actual.rstrip("\n").splitlines()

    def go(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        e = exp[i]
        if e.strip() == "...":
            return any(go(i + 1, k) for k in range(j, len(act) + 1))
        if j == len(act):
            return False
        a = act[j]
        if e.endswith("...") and len(e) > 3:
            ok = a.startswith(e[:-3])
        else:
            ok = a.rstrip() == e.rstrip()
        return ok and go(i + 1, j + 1)

    if go(0, 0):
        return None
    return ("the README's output:\n" + textwrap.indent(expected, "    | ") + "\nwhat the example printed:\n"
            + textwrap.indent(actual, "    | "))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("readme")
    (folder / "mymodule.py").write_text(MYMODULE)
    old = os.getcwd()
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    namespace: Dict[str, object] = {"__name__": "readme"}
    try:
        yield folder, namespace
    finally:
        os.chdir(old)
        sys.path.remove(str(folder))
        sys.modules.pop("mymodule", None)


def _options(directive: str) -> Dict[str, str]:
    out = {}
    for part in directive.split(","):
        words = part.strip().split(None, 1)
        out[words[0]] = words[1] if len(words) > 1 else ""
    return out


def test_first_screen_commands_are_what_ci_runs() -> None:
    """The README's first screen: install-and-demo and install-and-test, the
    latter verbatim in .ci/run (so CI runs what a new user runs)."""
    text = README.read_text(encoding="utf-8")
    first = text[:text.index("\n## ")]
    block = re.search(r"```sh\n(.*?)```", first, re.S)
    assert block, "the README's first screen has no sh block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["pip install . && pydarknet-loss demo", 'pip install ".[test]" && pytest'], commands
    assert 'pip install ".[test]" && pytest\n' in (ROOT / ".ci" / "run").read_text()


def test_every_python_block_is_executed() -> None:
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        lines = page.read_text(encoding="utf-8").splitlines()
        executed = {b.line for b in BLOCKS if b.page == name}
        unmarked = [i + 1 for i, line in enumerate(lines) if line.strip() == "```python" and i + 1 not in executed]
        assert not unmarked, f"{name}: python blocks without a readme-test directive at lines {unmarked}"


def test_the_readme_has_examples() -> None:
    kinds = [(b.lang, _options(b.directive).keys()) for b in BLOCKS]
    assert len(BLOCKS) >= 12, [b.id for b in BLOCKS]
    assert any(lang == "python" for lang, _ in kinds) and any(lang == "sh" for lang, _ in kinds)


def test_every_sh_block_runs_or_says_why_not() -> None:
    """Issue 19: every shell block of the README runs in its test, except the
    few marked ``skip (reason)``."""
    n_skipped = n_run = 0
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        lines = page.read_text(encoding="utf-8").splitlines()
        run = {b.line for b in BLOCKS if b.lang == "sh" and b.page == name}
        skipped = {i + 2 for i, line in enumerate(lines)
                   if re.match(r"<!-- readme-test: skip \(.{10,}\) -->$", line) and lines[i + 1] == "```sh"}
        sh = [i + 1 for i, line in enumerate(lines) if line.strip() == "```sh"]
        assert [n for n in sh if n not in run | skipped] == [], f"{name}: sh blocks neither run nor skipped"
        n_skipped += len(skipped)
        n_run += len(run)
    assert n_skipped <= 3, f"keep the opt-outs few: {n_skipped}"
    assert n_run >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, session) -> None:  # type: ignore[no-untyped-def]
    folder, namespace = session
    opts = _options(block.directive)
    if "needs" in opts:
        need = opts["needs"]
        if need == "torch":
            pytest.importorskip("torch", reason="the README's PyTorch example needs the [torch] extra")
        elif need.startswith("shared:"):
            source = SHARED / need[len("shared:"):]
            if not source.is_file():
                pytest.skip(f"needs {source} (upstream's file, kept in ../shared)")
            shutil.copy(source, folder / source.name)
        elif need.startswith("example:"):
            import pydarknet_loss as pdl

            name = need[len("example:"):]
            shutil.copy(pdl.example_cfg(name), folder / f"{name}.cfg")
    out = io.StringIO()
    if "pytest" in opts:
        test_file = folder / "test_readme_example.py"
        test_file.write_text(block.code)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file),
                               "--darknet-golden", opts["pytest"]], cwd=folder, capture_output=True, text=True,
                              timeout=300)
        expected_rc = int(opts.get("exit", "0"))
        assert proc.returncode == expected_rc, proc.stdout + proc.stderr
        assert re.search(r"\b\d+ passed\b", proc.stdout), proc.stdout
        assert "skipped" not in proc.stdout.splitlines()[-1], proc.stdout
        out.write(proc.stdout)
    elif "run" not in opts:
        raise AssertionError(f"unknown directive {block.directive!r} at {block.where}")
    elif block.lang == "python":
        with contextlib.redirect_stdout(out):
            exec(compile(block.code, f"{block.page}:{block.line}", "exec"), namespace)
    elif block.lang == "sh":
        expected_rc = int(opts.get("exit", "0"))
        fresh = Path(tempfile.mkdtemp(prefix="readme-sh-", dir=folder.parent))
        (fresh / "mymodule.py").write_text(MYMODULE)
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=fresh, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == expected_rc, (f"the sh block at {block.where} exited {proc.returncode}, "
                                                f"the page says {expected_rc}:\n{proc.stdout}{proc.stderr}")
        out.write(proc.stdout)
        shutil.copytree(fresh, folder, dirs_exist_ok=True)
    else:
        raise AssertionError(f"{block.where}: cannot run a {block.lang!r} block")
    if block.expected is not None:
        why = _match(block.expected, out.getvalue())
        assert why is None, f"{block.where}: {why}"

"""The command line: the README's demo prints what upstream printed."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss import cli


def upstream_demo() -> list:
    lines = (G.HERE / "data" / "demo_seed0_upstream.txt").read_text().splitlines()
    return [ln for ln in lines if not ln.startswith("#")]


def test_demo_prints_upstreams_lines_and_costs(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = upstream_demo()
    region = [ln for ln in out if ln.startswith("Region ")]
    assert region == [ln for ln in expected if ln.startswith("Region ")]
    bits = [ln.split()[-1].rstrip(")") for ln in out if "float32 bits" in ln]
    assert [int(b, 16) for b in bits] == [int(ln.split()[1], 16) for ln in expected if ln.startswith("cost ")]


def test_python_dash_m_runs_info() -> None:
    out = subprocess.run([sys.executable, "-m", "pydarknet_loss", "info"], check=True, capture_output=True,
                         text=True, cwd=G.HERE).stdout
    assert pdl.UPSTREAM_COMMIT in out and "-ffp-contract=off" in out


def test_demo_inputs_are_reproducible() -> None:
    a, heads_a = cli.demo_inputs(3)
    b, heads_b = cli.demo_inputs(3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(np.array_equal(x[2], y[2]) for x, y in zip(heads_a, heads_b))

"""The command line: the README's demo prints what upstream printed."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss.parity import cli


def upstream_demo() -> list:
    lines = (G.HERE / "data" / "demo_seed0_upstream.txt").read_text().splitlines()
    return [ln for ln in lines if not ln.startswith("#")]


def test_demo_prints_upstreams_lines_and_costs(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = upstream_demo()
    assert [ln for ln in out if ln.startswith("Region ")] == [ln for ln in expected if ln.startswith("Region ")]
    # The network cost of each subdivision is upstream's calc_network_cost
    # over its layers' costs ...
    net_costs = [int(ln.split()[4], 16) for ln in expected if " net cost " in ln]
    printed = [int(ln.split()[-1].rstrip(")"), 16) for ln in out if ln.startswith("  *net.cost")]
    assert printed == net_costs
    # ... and train_network's loss is their float sum over subdivisions*batch.
    total = np.float32(0)
    for bits in net_costs:
        total = np.float32(total + np.array(bits, np.uint32).view(np.float32))
    loss = np.float32(total / np.float32(2 * 2))
    line = next(ln for ln in out if ln.startswith("train_network returns"))
    assert f"(float32 bits {int(loss.view(np.uint32)):#010x})" in line


def test_demo_ends_with_the_parity_workflow(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("Parity check of a re-implementation"):]
    assert "parity FAILED" in tail and f"1. {pdl.mistakes.EXPECTED_CAUSE[cli.DEMO_MISTAKE]}:" in tail
    assert "Truncate (floor) instead of rounding" in tail
    assert len(tail.splitlines()) < 20


def test_each_layer_cost_of_the_demo_is_upstreams() -> None:
    net, calls = cli.demo_inputs(0)
    expected = {tuple(map(int, ln.split()[1:4:2])): int(ln.split()[-1], 16)
                for ln in upstream_demo() if ln.startswith("call") and "layer" in ln}
    for k, (xs, boxes, seen) in enumerate(calls):
        res = net.forward(xs, boxes, seen=seen)
        for index, r in res.layers.items():
            assert int(r.cost.view(np.uint32)) == expected[(k, index)]


def test_python_dash_m_runs_info() -> None:
    out = subprocess.run([sys.executable, "-m", "pydarknet_loss", "info"], check=True, capture_output=True,
                         text=True, cwd=G.HERE).stdout
    assert pdl.UPSTREAM_COMMIT in out and "-ffp-contract=off" in out


def test_demo_inputs_are_reproducible() -> None:
    _, a = cli.demo_inputs(3)
    _, b = cli.demo_inputs(3)
    for (xa, ba, sa), (xb, bb, sb) in zip(a, b):
        assert sa == sb and all(np.array_equal(x, y) for x, y in zip(ba, bb))
        assert all(np.array_equal(xa[i], xb[i]) for i in xa)

"""The pytest plugin (through pytester) and the golden export/check command
line, end to end: export, re-verify, check against itself, then against a
perturbed copy."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss.parity import cli, golden


def export(out: Path, cases: int = 6, seed: int = 7, *extra: str) -> None:
    assert cli.main(["golden", "export", "--cfg", str(pdl.example_cfg("tiny-yolov3")), "--cases", str(cases),
                     "--seed", str(seed), "--out", str(out), *extra]) == 0


def test_export_writes_the_shared_format_and_reverifies_bit_for_bit(tmp_path: Path) -> None:
    export(tmp_path / "g")
    manifest = json.loads((tmp_path / "g" / "MANIFEST.json").read_text())
    assert len(manifest["cases"]) == 6 and manifest["upstream_commit"] == pdl.UPSTREAM_COMMIT
    shared_keys = {"kind", "params", "input", "truth", "train", "output", "delta", "cost", "stats", "count",
                   "text", "tags"}
    for entry in manifest["cases"]:
        path = tmp_path / "g" / entry["file"]
        d = G.load(path)
        assert shared_keys <= set(d) and d["kind"] == "yolo"
        prov = json.loads(str(d["provenance"]))
        assert prov["package_version"] == pdl.__version__ and prov["cflags"] == pdl.BUILD_CFLAGS
        assert prov["upstream_commit"] == pdl.UPSTREAM_COMMIT
        # Re-read through the helpers the shared cases use, re-run, compare bits.
        layer = G.yolo_layer(d["params"])
        p = d["params"]
        res = layer.forward(d["input"], d["truth"], net_w=p["net_w"], net_h=p["net_h"], train=bool(d["train"]),
                            index=p["net_index"])
        assert G.bits_equal(res.output, d["output"]) and G.bits_equal(res.delta, d["delta"])
        assert G.bits_equal(np.float32(res.cost), d["cost"])
        if d["train"]:
            assert res.stats.line() + "\n" == d["text"] and G.bits_equal(res.stats.as_array(), d["stats"])
    tags = {t for c in manifest["cases"] for t in c["tags"]}
    assert {"mag_n1", "mag_n4", "mag_n20", "mag_n20x"} & tags


def test_export_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    export(tmp_path / "a", 4, 11)
    export(tmp_path / "b", 4, 11)
    export(tmp_path / "c", 4, 12)
    for f in sorted((tmp_path / "a").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    assert (tmp_path / "a" / "case_0000_yolo.npz").read_bytes() != (tmp_path / "c" / "case_0000_yolo.npz").read_bytes()


def test_export_draws_the_shared_kinds_of_variation(tmp_path: Path) -> None:
    export(tmp_path / "g", 40, 1)
    tags = {t for c in json.loads((tmp_path / "g" / "MANIFEST.json").read_text())["cases"] for t in c["tags"]}
    for t in ("tiny_box", "huge_box", "border_touch", "dup_cell_hit", "x0_terminator_mid", "exp_overflow_mag",
              "fractional_class_id", "train_false"):
        assert t in tags, t


def test_export_from_layer_json_and_the_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "layer.json"
    spec.write_text(json.dumps({"kind": "region", "classes": 3, "num": 2, "anchors": [1, 1.5, 3, 2], "coords": 5,
                                "softmax": 1, "rescore": 1, "w": 4, "h": 3, "batch": 2, "mask_scale": 1.7}))
    assert cli.main(["golden", "export", "--layer-json", str(spec), "--cases", "3", "--seed", "2",
                     "--out", str(tmp_path / "r"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "exporting [" in err and "3/3" in err
    cases = golden.load_cases(tmp_path / "r")
    assert len(cases) == 3 and all(c.kind == "region" and c.input.shape[1] == 2 * (5 + 1 + 3) for c in cases)
    for c in cases:
        res = c.run()
        assert G.bits_equal(res.delta, c.delta) and G.bits_equal(np.float32(res.cost), c.cost)


def test_export_of_a_tree_layer_names_the_tree_relative_to_the_output(tmp_path: Path) -> None:
    spec = tmp_path / "spec" / "layer.json"
    spec.parent.mkdir()
    (spec.parent / "t.tree").write_text((G.HERE / "data" / "small.tree").read_text())
    spec.write_text(json.dumps({"kind": "region", "classes": 14, "num": 1, "anchors": [1, 1], "softmax": 1,
                                "tree": "t.tree", "temperature": 1.0, "w": 1, "h": 1, "batch": 2}))
    out = tmp_path / "elsewhere" / "cases"
    assert cli.main(["golden", "export", "--layer-json", str(spec), "--cases", "2", "--out", str(out)]) == 0
    for case in golden.load_cases(out):
        assert case.params["tree"] == "../spec/t.tree"  # relative to elsewhere/, as for the shared cases/
        res = case.run()
        assert G.bits_equal(res.delta, case.delta)


def test_check_passes_on_itself_and_fails_readably_on_a_perturbed_copy(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    export(tmp_path / "g", 4, 5)
    actual = tmp_path / "actual"
    actual.mkdir()
    for f in (tmp_path / "g").glob("*.npz"):
        d = np.load(f)
        np.savez(actual / f.name, output=d["output"], delta=d["delta"], cost=d["cost"])
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual)]) == 0
    assert "4 of 4 cases match (exact)" in capsys.readouterr().out
    d = np.load(tmp_path / "g" / "case_0001_yolo.npz")
    delta = d["delta"].copy()
    delta[0, 4, 2, 3] = np.nextafter(delta[0, 4, 2, 3], np.float32(1))  # anchor 0, objectness
    np.savez(actual / "case_0001_yolo.npz", output=d["output"], delta=delta, cost=d["cost"])
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual)]) == 1
    out = capsys.readouterr().out
    assert "case_0001_yolo.npz: [yolo] parity FAILED" in out
    assert "delta[image 0, anchor 0 (mask 0), row 2, col 3, objectness]" in out and "3 of 4 cases match" in out
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--max-ulp", "1"]) == 0
    (actual / "case_0002_yolo.npz").unlink()
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--max-ulp", "1"]) == 1
    assert "case_0002_yolo.npz: MISSING" in capsys.readouterr().out


def test_check_against_the_shared_region_cases_from_the_command_line(tmp_path: Path) -> None:
    src = G.REPO_GOLDEN / "cases"
    actual = tmp_path / "a"
    actual.mkdir()
    sub = tmp_path / "g"
    sub.mkdir()
    for p in G.repo_cases("region")[:3]:
        (sub / p.name).write_bytes(p.read_bytes())
        d = np.load(p)
        np.savez(actual / p.name, output=d["output"], delta=d["delta"], cost=d["cost"])
    r = subprocess.run([sys.executable, "-m", "pydarknet_loss", "check", "--golden", str(sub), "--actual",
                        str(actual)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "3 of 3 cases match" in r.stdout, r.stdout + r.stderr
    assert src.is_dir()


PLUGIN_TEST = '''
import numpy as np
import pytest


def test_with_the_oracle(darknet_oracle):
    layer = darknet_oracle.yolo(classes=2, anchors=[10, 13, 16, 30], mask=[0, 1])
    x = np.zeros((1, layer.channels, 2, 2), np.float32)
    truth = [np.array([[0.3, 0.3, 0.05, 0.05, 1]], np.float32)]
    expected = layer.forward(x, truth)
    mine = {"delta": expected.delta.copy(), "cost": expected.cost}
    darknet_oracle.assert_parity(expected, mine, layer)


def test_my_loss_on_golden(darknet_golden_case):
    case = darknet_golden_case
    mine = case.run()                      # stand-in for the implementation under test
    delta = mine.delta.copy()
    if case.name.endswith("0001_yolo"):
        delta.flat[7] += 1                 # a bug in one case
    case.check({"output": mine.output, "delta": delta, "cost": mine.cost}).ok or pytest.fail(
        str(case.check({"output": mine.output, "delta": delta, "cost": mine.cost})))
'''


def test_pytest_plugin_fixture_and_golden_option(pytester: pytest.Pytester, tmp_path: Path) -> None:
    export(tmp_path / "g", 3, 9)
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("--darknet-golden", str(tmp_path / "g"),
                                "-q")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_my_loss_on_golden*case_0001_yolo*", "*parity FAILED*"])


def test_pytest_plugin_skips_golden_tests_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("-rs", "-q")  # the plugin loads through its entry point
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*pass --darknet-golden DIR*"])


def test_plugin_is_registered_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    eps = entry_points(group="pytest11")
    assert any(ep.name == "pydarknet_loss" and ep.value == "pydarknet_loss.parity.plugin" for ep in eps)

"""The pytest plugin (through pytester) and the golden export/check command
line, end to end: export, re-verify, check against itself, then against a
perturbed copy."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest

import goldens as G
import pydarknet_loss as pdl
from pydarknet_loss.parity import cli, golden


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


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
    export(tmp_path / "g", 40, 1, "--profile", "stress")
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
    assert "exporting: 3/3" in err  # not a terminal: lines, not a bar
    bar = golden.Progress("exporting", stream=_Tty())
    bar(1, 2)
    bar(2, 2)
    assert "exporting [" in bar.stream.getvalue() and "2/2" in bar.stream.getvalue()
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


def test_export_profiles_tags_batch_force_and_progress(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    export(tmp_path / "r", 6, 3, "--profile", "realistic", "--batch", "1")
    m = json.loads((tmp_path / "r" / "MANIFEST.json").read_text())
    assert all("realistic" in c["tags"] and c["shape"][0] == 1 and c["train"] for c in m["cases"])
    for quirk in ("dup_cell_hit", "x0_terminator_mid", "fractional_class_id", "extreme_inputs"):
        assert not any(quirk in c["tags"] for c in m["cases"])
    err = capsys.readouterr().err
    assert "writing 6 cases (realistic profile, batch 1)" in err and "before compression" in err
    assert "exporting: 6/6" in err  # a line, not a bar: stderr is not a terminal here
    # Tags: every case carries the asked tag, none an excluded one.
    export(tmp_path / "t", 3, 3, "--profile", "all", "--tags", "dup_cell_hit", "--exclude-tags", "train_false")
    m = json.loads((tmp_path / "t" / "MANIFEST.json").read_text())
    assert all("dup_cell_hit" in c["tags"] and "train_false" not in c["tags"] for c in m["cases"])
    # A non-empty folder is refused without --force; with it, stale cases go.
    stale = tmp_path / "r" / "case_0099_yolo.npz"
    stale.write_bytes((tmp_path / "r" / "case_0000_yolo.npz").read_bytes())
    assert cli.main(["golden", "export", "--cfg", str(pdl.example_cfg("tiny-yolov3")), "--cases", "2",
                     "--out", str(tmp_path / "r")]) == 2
    assert "--force" in capsys.readouterr().err and stale.exists()
    export(tmp_path / "r", 2, 3, "--force")
    assert not stale.exists() and len(list((tmp_path / "r").glob("*.npz"))) == 2
    # Impossible tags end with a clear error, not a hang.
    assert cli.main(["golden", "export", "--cfg", str(pdl.example_cfg("tiny-yolov3")), "--cases", "1",
                     "--tags", "no_such_tag", "--out", str(tmp_path / "n")]) == 2
    assert "no_such_tag" in capsys.readouterr().err


def test_every_option_has_help_text() -> None:
    import argparse

    def walk(p: argparse.ArgumentParser) -> List[argparse.Action]:
        acts = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    acts.extend(walk(sp))
            elif not isinstance(a, argparse._HelpAction):
                acts.append(a)
        return acts
    missing = [a.dest for a in walk(cli.build_parser()) if not a.help]
    assert not missing, missing


def test_check_passes_on_itself_and_fails_readably_on_a_perturbed_copy(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    export(tmp_path / "g", 4, 5, "--profile", "realistic")
    actual = tmp_path / "actual"
    actual.mkdir()
    for f in (tmp_path / "g").glob("*.npz"):
        d = np.load(f)
        np.savez(actual / f.name, output=d["output"], delta=d["delta"], cost=d["cost"])
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--tolerance", "exact"]) == 0
    out = capsys.readouterr().out
    assert f"\nchecking 4 golden cases of {tmp_path / 'g'} against {actual} (tolerance: exact)\n" in out
    assert "4 of 4 cases match (exact)" in out
    d = np.load(tmp_path / "g" / "case_0001_yolo.npz")
    delta = d["delta"].copy()
    delta[0, 4, 2, 3] = np.nextafter(delta[0, 4, 2, 3], np.float32(1))  # anchor 0, objectness
    np.savez(actual / "case_0001_yolo.npz", output=d["output"], delta=delta, cost=d["cost"])
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "-v",
                     "--tolerance", "exact"]) == 1
    out = capsys.readouterr().out
    assert "case_0001_yolo.npz: [yolo] parity FAILED" in out
    assert "delta[image 0, anchor 0 (mask 0), row 2, col 3, objectness]" in out and "3 of 4 cases match" in out
    assert "float_rounding" in out  # one ULP: within darknet's own rounding
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual),
                     "--tolerance", "float32"]) == 0
    assert "4 of 4 cases match (float32 (darknet's own rounding))" in capsys.readouterr().out
    # float32 is the default: a float32 port's rounding passes without asking (issue 19).
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual)]) == 0
    assert capsys.readouterr().out.startswith("checking 4 golden cases")
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--max-ulp", "1",
                     "--tolerance", "exact"]) == 0
    (actual / "case_0002_yolo.npz").unlink()
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--max-ulp", "1"]) == 1
    assert "case_0002_yolo.npz: MISSING" in capsys.readouterr().out


def test_check_explains_bad_files_layouts_dtypes_and_tags(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    export(tmp_path / "g", 4, 5, "--profile", "all")
    actual = tmp_path / "actual"
    actual.mkdir()
    names = sorted(p.name for p in (tmp_path / "g").glob("*.npz"))
    for name in names:
        d = np.load(tmp_path / "g" / name)
        np.savez(actual / name, delta=np.ascontiguousarray(np.transpose(d["delta"], (0, 2, 3, 1))))
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--layout", "nhwc"]) == 0
    capsys.readouterr()
    # A float64 array is explained; a broken file is named and the run goes on.
    d = np.load(tmp_path / "g" / names[0])
    np.savez(actual / names[0], delta=d["delta"].astype(np.float64))
    (actual / names[1]).write_bytes(b"not a zip")
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual), "--layout", "nchw"]) == 1
    out = capsys.readouterr().out
    assert "dtype float64" in out and f"{names[1]}: ERROR" in out and "every case fails (4 of 4)" in out
    assert "cases match" in out.splitlines()[-1]
    # A missing folder is one error.
    assert cli.main(["check", "--golden", str(tmp_path / "nope"), "--actual", str(actual)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err


def test_tag_summary_says_what_the_failures_share() -> None:
    lines = cli.tag_summary([(["a", "x0_terminator_mid"], False), (["a"], True), (["exp_overflow_mag"], False)])
    assert lines[-1] == "fails only on cases tagged exp_overflow_mag or x0_terminator_mid"
    assert any(ln.split()[0] == "a" and "1 passed" in ln for ln in lines)
    assert "the 2 failing cases share no tag" in lines


def test_check_summary_when_every_case_fails_says_what_they_share(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    # Issue 19: a port wrong everywhere; the summary says what the failing
    # cases share and what they do not, instead of a row per tag.
    export(tmp_path / "g", 6, 3, "--profile", "all")
    actual = tmp_path / "actual"
    actual.mkdir()
    for f in (tmp_path / "g").glob("*.npz"):
        d = np.load(f)
        np.savez(actual / f.name, delta=-d["delta"])  # the gradient instead of the delta, in every case
    assert cli.main(["check", "--golden", str(tmp_path / "g"), "--actual", str(actual)]) == 1
    out = capsys.readouterr().out.splitlines()
    tags = [set(c["tags"]) for c in json.loads((tmp_path / "g" / "MANIFEST.json").read_text())["cases"] if c["train"]]
    shared = set.intersection(*tags)
    assert shared and any(ln.startswith(f"every case fails ({len(tags)} of {len(tags)})") for ln in out)
    line = next(ln for ln in out if ln.startswith(f"shared by all {len(tags)} failing cases: "))
    assert set(line.split(": ", 1)[1].split(", ")) == shared
    partial = set.union(*tags) - shared
    if partial:
        line = next(ln for ln in out if ln.startswith("not shared (on some failing cases only): "))
        assert f"{len(partial)} tag" in line
    assert not any("per tag" in ln for ln in out)  # no row per tag
    assert out[-1].startswith(f"0 of {len(tags)} cases match")


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
    export(tmp_path / "g", 4, 9, "--profile", "realistic")
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("--darknet-golden", str(tmp_path / "g"), "-q")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_my_loss_on_golden*case_0001_yolo*", "*parity FAILED*",
                                 "*darknet golden cases*", "3 of 4 golden cases passed", "per tag*"])


def test_pytest_plugin_yields_training_cases_only_unless_asked(pytester: pytest.Pytester, tmp_path: Path) -> None:
    export(tmp_path / "g", 3, 9, "--profile", "realistic")
    export(tmp_path / "i", 2, 9, "--profile", "all", "--tags", "train_false")
    pytester.makepyfile(test_user=PLUGIN_TRAIN_ONLY)
    result = pytester.runpytest("--darknet-golden", str(tmp_path / "g"), "--darknet-golden", str(tmp_path / "i"),
                                "-q")
    result.assert_outcomes(passed=3)
    result = pytester.runpytest("--darknet-golden", str(tmp_path / "i"), "--darknet-golden-inference", "-q")
    result.assert_outcomes(failed=2)  # the test asserts train, and these do not


PLUGIN_TRAIN_ONLY = '''
def test_training(darknet_golden_case):
    assert darknet_golden_case.train and darknet_golden_case.delta.any()
'''


def test_pytest_plugin_fails_golden_tests_without_cases_and_says_how(pytester: pytest.Pytester,
                                                                      tmp_path: Path) -> None:
    # Issue 19: a CI that forgets --darknet-golden must not stay green.
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("-q")  # the plugin loads through its entry point
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_my_loss_on_golden*no golden cases were given: pass --darknet-golden DIR*"])
    # A folder without training cases is no better.
    (tmp_path / "empty").mkdir()
    result = pytester.runpytest("-q", "--darknet-golden", str(tmp_path / "empty"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*holds no training golden case*"])


def test_pytest_plugin_opt_outs_skip_on_purpose(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("-q", "-rs", "--darknet-golden=none")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*skipped on purpose*"])
    pytester.makeini("[pytest]\ndarknet_golden = none\n")
    pytester.runpytest("-q").assert_outcomes(passed=1, skipped=1)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_user=PLUGIN_TEST.replace(
        "def test_my_loss_on_golden", "@pytest.mark.darknet_golden_optional\ndef test_my_loss_on_golden"))
    pytester.runpytest("-q").assert_outcomes(passed=1, skipped=1)


def test_pytest_plugin_reads_the_folders_from_the_ini_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    export(tmp_path / "g", 2, 9, "--profile", "realistic")
    pytester.makepyfile(test_user=PLUGIN_TRAIN_ONLY)
    pytester.makeini(f"[pytest]\ndarknet_golden = {tmp_path / 'g'}\n")
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_plugin_is_registered_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    eps = entry_points(group="pytest11")
    assert any(ep.name == "pydarknet_loss" and ep.value == "pydarknet_loss.parity.plugin" for ep in eps)

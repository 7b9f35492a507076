"""The diagnosis on the gallery of classic mistakes (pydarknet_loss.mistakes):
independent NumPy implementations of darknet's delta, each with exactly one
mistake.  On every upstream-computed training case in the repository and on
seeded generated ones, wherever a mistake changes the delta:

* the report's top cause is the mistake's (``mistakes.EXPECTED_CAUSE``);
* (almost) no element is claimed by another cause (an alternative
  reproducing the same elements is shown with it): at most 0.1 % of the
  failing elements;
* at most 2 % of the failing elements are ``unexplained`` (a cause claims
  only what its model reproduces, never by elimination);
* the correct implementation differs only within darknet's own rounding,
  so it passes under ``tolerance="float32"`` (and fails exactly only with
  ``float_rounding``).

A case can fail to tell two mistakes apart: when another gallery mistake
fails on exactly the same elements with the same values, nothing in the
arrays says which of the two was made, and that mistake's cause is accepted;
so is a top cause that lists the mistake's as an alternative reproducing the
same elements (the test counts how often, and it stays rare)."""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pytest

import gallery_cases as GC
from pydarknet_loss import mistakes as M
from pydarknet_loss.parity.diagnosis import ALIASES, CAUSES

YOLO_CASES = GC.golden_cases("yolo") + list(GC.generated_yolo(120))
REGION_CASES = GC.golden_cases("region")

REQUIRED = ("float_rounding", "saturated_gradient", "x0_terminator", "truth_limit", "ignore_rule", "truth_thresh",
            "anchor_assignment", "cell_assignment", "overwrite_order", "class_short_circuit", "box_scale",
            "wh_target", "chain", "weight", "class_loss", "class_target", "objectness_target", "sign", "scale",
            "layout", "unexplained")


def test_the_vocabulary_holds_every_code_the_issue_names_and_each_is_documented() -> None:
    assert set(REQUIRED) <= set(CAUSES)
    assert all(len(CAUSES[c]) > 20 for c in CAUSES)
    assert list(CAUSES)[-1] == "unexplained"
    assert ALIASES == {"objectness_loss": "chain"}


def _deltas(cases: List[GC.Case], impls: Dict[str, M.Impl]) -> Dict[str, List[np.ndarray]]:
    out: Dict[str, List[np.ndarray]] = {}
    for name, impl in impls.items():
        out[name] = [impl(c.x, c.truth, c.layer, c.net_w, c.net_h, **({"seen": c.seen} if c.layer.kind == "region"
                                                                       else {}))
                     for c in cases]
    return out


@pytest.fixture(scope="module")
def yolo_deltas() -> Dict[str, List[np.ndarray]]:
    return _deltas(YOLO_CASES, M.YOLO)


@pytest.fixture(scope="module")
def region_deltas() -> Dict[str, List[np.ndarray]]:
    return _deltas(REGION_CASES, M.REGION)


def _fails(case: GC.Case, delta: np.ndarray) -> np.ndarray:
    return case.compare(delta, tolerance="float32").cause_map("delta") != ""


def _check_gallery(cases: List[GC.Case], deltas: Dict[str, List[np.ndarray]], correct: str) -> None:
    for k, case in enumerate(cases):
        exact = case.compare(deltas[correct][k])
        assert {c.code for c in exact.causes} <= {"float_rounding"}, (case.name, str(exact))
        assert case.compare(deltas[correct][k], tolerance="float32").ok, case.name
    shown = {name: 0 for name in deltas}
    twins = 0
    failing = unexplained = wrong = 0
    wrong_seen: List[str] = []
    for name, ds in deltas.items():
        if name == correct:
            continue
        want = M.EXPECTED_CAUSE[name]
        for case, d in zip(cases, ds):
            report = case.compare(d, tolerance="float32")
            if report.ok:
                continue
            shown[name] += 1
            failing += report.mismatches
            codes = [c.code for c in report.causes if c.code != "unexplained"]
            unexplained += sum(c.count for c in report.causes if c.code == "unexplained")
            assert codes, f"{name} on {case.name}: nothing named\n{report}"
            # No element is claimed by a wrong cause: every cause named is the
            # mistake's, lists it as an alternative reproducing the same
            # elements, or is another gallery mistake's with the same values.
            fm = report.cause_map("delta") != ""
            for c in report.causes:
                if c.code in ("unexplained", "float_rounding") or c.code == want or want in c.alternatives:
                    if c is report.causes[0] and c.code != want:
                        twins += 1
                    continue
                twin = [o for o, od in deltas.items() if o not in (name, correct) and M.EXPECTED_CAUSE[o] == c.code
                        for od in [od[cases.index(case)]]
                        if np.array_equal(_fails(case, od), fm) and np.allclose(od[fm], d[fm], rtol=1e-5, atol=1e-6)]
                if twin:
                    twins += c is report.causes[0]
                    continue
                wrong += c.count
                wrong_seen.append(f"{name} on {case.name}: {c.code} claims {c.count}, expected {want}\n{report}")
            top = report.causes[0]
            assert top.code != "unexplained" or top.count <= 0.02 * report.mismatches, \
                f"{name} on {case.name}: top cause unexplained\n{report}"
    assert all(shown[n] for n in deltas if n != correct), f"every mistake must show somewhere: {shown}"
    # No element to a wrong cause (measured: 0 of 359,044 failing elements on the [yolo] set and of
    # 89,932 on [region]; 92 before the plain chain was tried beside saturation, odd weights gave way
    # to a simple chain, class_short_circuit claimed only the positives its model predicts, and the
    # moved rows' world replayed the truth_thresh branch and delta_yolo_class's test of the first class
    # entry); 1 unexplained.
    assert wrong == 0, f"{wrong} elements claimed by a wrong cause; first:\n" + "\n".join(wrong_seen[:3])
    assert unexplained <= 0.02 * failing, (unexplained, failing)
    assert twins <= 0.01 * sum(shown.values()), twins


def test_every_yolo_mistake_is_named_and_nothing_is_left_unexplained(yolo_deltas: Dict[str, List[np.ndarray]]
                                                                     ) -> None:
    _check_gallery(YOLO_CASES, yolo_deltas, "correct")


def test_every_region_mistake_is_named_and_nothing_is_left_unexplained(region_deltas: Dict[str, List[np.ndarray]]
                                                                       ) -> None:
    _check_gallery(REGION_CASES, region_deltas, "region_correct")


def _first_failing(name: str, deltas: Dict[str, List[np.ndarray]], cases: List[GC.Case]) -> tuple:
    for case, d in zip(cases, deltas[name]):
        r = case.compare(d, tolerance="float32")
        if not r.ok and r.causes[0].code == M.EXPECTED_CAUSE[name]:
            return case, r
    raise AssertionError(name)


def test_messages_say_where_and_what_to_change(yolo_deltas: Dict[str, List[np.ndarray]]) -> None:
    case, r = _first_failing("no_x0_stop", yolo_deltas, YOLO_CASES)
    c = r.causes[0]
    assert c.truth_rows and c.cells
    assert "x == 0" in c.message and "Stop at the first x == 0" in c.message
    b, t = c.truth_rows[0]
    assert f"image {b} row {t}" in c.message
    case, r = _first_failing("bce_on_probabilities", yolo_deltas, YOLO_CASES)
    assert "BCEWithLogits" in r.causes[0].message and "saturation" in r.causes[0].message
    case, r = _first_failing("ignore_ge", yolo_deltas, YOLO_CASES)
    assert "'>='" in r.causes[0].message
    case, r = _first_failing("best_anchor_in_mask", yolo_deltas, YOLO_CASES)
    assert "mask" in r.causes[0].message
    case, r = _first_failing("grid_anchors", yolo_deltas, YOLO_CASES)
    assert "grid units" in r.causes[0].message
    case, r = _first_failing("batch_mean", yolo_deltas, YOLO_CASES)
    assert "a mean over the batch" in r.causes[0].message
    case, r = _first_failing("nhwc_layout", yolo_deltas, YOLO_CASES)
    assert "nhwc" in r.causes[0].message


def test_cause_map_marks_each_failing_element_with_one_code(yolo_deltas: Dict[str, List[np.ndarray]]) -> None:
    case, r = _first_failing("no_wh_scale", yolo_deltas, YOLO_CASES)
    m = r.cause_map("delta")
    assert m.shape == case.expected.shape and m.dtype.kind == "U"
    assert set(np.unique(m)) <= {"", "box_scale"}
    assert (m != "").sum() == sum(c.count for c in r.causes)
    with pytest.raises(KeyError, match="output"):
        r.cause_map("output")


def test_without_input_and_truth_only_global_causes_are_found(yolo_deltas: Dict[str, List[np.ndarray]]) -> None:
    case, _ = _first_failing("gradient_sign", yolo_deltas, YOLO_CASES)
    d = yolo_deltas["gradient_sign"][YOLO_CASES.index(case)]
    import pydarknet_loss as pdl

    r = pdl.compare({"delta": case.expected}, {"delta": d}, case.layer)
    assert r.causes[0].code == "sign"
    case, _ = _first_failing("no_wh_scale", yolo_deltas, YOLO_CASES)
    r = pdl.compare({"delta": case.expected}, {"delta": yolo_deltas["no_wh_scale"][YOLO_CASES.index(case)]},
                    case.layer)
    assert [c.code for c in r.causes] == ["unexplained"]
    assert "pass input= and truth=" in r.causes[0].message

"""The forged-label guard at its edges: the shortest judged stream, the bound it judges
against, the ``z`` and ``margin`` cut-offs on both sides, and where it locates the run.

Streams are built from exact binary fractions (an accuracy of 0.5 or 0.75, runs of whole
rows) so each figure the guard reports can be computed by hand and compared exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelpilot.policy.guards import label_flip_guard


def _alternating(n: int) -> np.ndarray:
    return np.array([0, 1] * (n // 2) + [0] * (n % 2))


def test_a_stream_of_exactly_min_rows_is_judged_and_one_row_fewer_is_not() -> None:
    pred = _alternating(50)
    judged = label_flip_guard(pred, 1 - pred, validation_accuracy=0.5, min_rows=50)
    assert judged.suspicious is True and judged.numbers["run_rows"] == 50
    short = label_flip_guard(pred[:49], 1 - pred[:49], validation_accuracy=0.5, min_rows=50)
    assert short.suspicious is False and short.reason == "too few rows or more than two classes: not judged"
    assert short.numbers == {"rows": 49, "validation_accuracy": 0.5}


def test_the_figures_of_a_fully_flipped_stream() -> None:
    pred = _alternating(50)
    result = label_flip_guard(pred, 1 - pred, validation_accuracy=0.8, min_rows=50)
    n = result.numbers
    assert n["rows"] == 50 and n["validation_accuracy"] == 0.8 and n["disagreement"] == 1.0
    assert n["run_start"] == 0 and n["run_rows"] == 50 and n["run_disagreement"] == 1.0
    assert n["run_ceiling"] == pytest.approx(0.8)
    # (observed - ceiling) * rows / sqrt(sum of ceiling * (1 - ceiling))
    assert n["z"] == pytest.approx(0.2 * 50 / math.sqrt(50 * 0.8 * 0.2))
    # far beyond the bound, but 3.5 standard deviations are not enough evidence at z = 6
    assert result.suspicious is False
    assert result.reason == ("labels within what a change of concept explains: the worst run of 50 rows "
                             "disagrees 100% against a ceiling of 80%")


def test_the_verdict_needs_z_at_least_its_cut_off() -> None:
    pred = _alternating(200)
    measured = label_flip_guard(pred, 1 - pred, validation_accuracy=0.75).numbers["z"]
    assert label_flip_guard(pred, 1 - pred, validation_accuracy=0.75, z=measured).suspicious is True
    above = label_flip_guard(pred, 1 - pred, validation_accuracy=0.75, z=math.nextafter(measured, math.inf))
    assert above.suspicious is False


@pytest.mark.parametrize("accuracy", [0.5, 0.75])
def test_the_verdict_needs_the_run_at_least_margin_of_the_way_to_every_row(accuracy: float) -> None:
    # every row disagrees: the run reaches exactly margin = 1 of the way from the bound
    pred = _alternating(400)
    at = label_flip_guard(pred, 1 - pred, validation_accuracy=accuracy, margin=1.0)
    assert at.suspicious is True
    assert at.reason.startswith("labels look forged: 400 consecutive labelled rows (from row 0) disagree with "
                                f"the champion 100% of the time, above the {accuracy:.0%} that")
    beyond = label_flip_guard(pred, 1 - pred, validation_accuracy=accuracy, margin=1.01)
    assert beyond.suspicious is False


def test_the_bound_is_the_higher_of_accuracy_and_confidence_row_by_row() -> None:
    pred = _alternating(200)
    low_conf = np.full(200, 0.5)
    assert label_flip_guard(pred, 1 - pred, confidence=low_conf, validation_accuracy=0.75
                            ).numbers["run_ceiling"] == pytest.approx(0.75)
    high_conf = np.full(200, 0.875)
    assert label_flip_guard(pred, 1 - pred, confidence=high_conf, validation_accuracy=0.75
                            ).numbers["run_ceiling"] == pytest.approx(0.875)


def test_a_confidence_above_one_is_clipped_to_certainty() -> None:
    pred = _alternating(200)
    result = label_flip_guard(pred, 1 - pred, confidence=np.full(200, 1.25))
    assert result.numbers["run_ceiling"] == 1.0 and result.numbers["z"] == 0.0 and result.suspicious is False


def test_missing_confidences_count_as_no_bound_not_as_certainty() -> None:
    pred = _alternating(200)
    # unknown confidence on every row: the accuracy alone is the bound, and flipped labels are caught
    unknown = np.full(200, np.nan)
    assert label_flip_guard(pred, 1 - pred, confidence=unknown, validation_accuracy=0.5).suspicious is True
    # and with neither an accuracy nor any confidence there is nothing to judge against
    unjudged = label_flip_guard(pred, 1 - pred, confidence=unknown)
    assert unjudged.suspicious is False
    assert unjudged.reason == "no validation accuracy and no confidence: not judged"


def test_a_non_finite_accuracy_is_no_bound() -> None:
    pred = _alternating(200)
    for accuracy in (math.nan, math.inf):
        result = label_flip_guard(pred, 1 - pred, validation_accuracy=accuracy)
        assert result.suspicious is False
        assert result.reason == "no validation accuracy and no confidence: not judged"
    # with a confidence present, the non-finite accuracy is ignored and the confidence decides
    assert label_flip_guard(pred, 1 - pred, confidence=np.full(200, 0.5), validation_accuracy=math.nan
                            ).numbers["run_ceiling"] == 0.5


@pytest.mark.parametrize("where", ["start", "end"])
def test_a_burst_at_either_end_of_the_stream_is_located_exactly(where: str) -> None:
    n, burst = 300, 60
    pred = _alternating(n)
    lab = pred.copy()
    rows = slice(0, burst) if where == "start" else slice(n - burst, n)
    lab[rows] = 1 - pred[rows]

    result = label_flip_guard(pred, lab, validation_accuracy=0.5)

    assert result.suspicious is True
    assert result.numbers["run_start"] == (0 if where == "start" else n - burst)
    assert result.numbers["run_rows"] == burst and result.numbers["run_disagreement"] == 1.0
    assert result.numbers["disagreement"] == burst / n


def test_a_burst_shorter_than_min_rows_is_judged_within_a_run_of_min_rows() -> None:
    pred = _alternating(300)
    lab = pred.copy()
    lab[100:130] = 1 - pred[100:130]  # 30 flipped rows; runs shorter than 50 are never judged

    result = label_flip_guard(pred, lab, validation_accuracy=0.5, min_rows=50)

    assert result.numbers["run_rows"] == 50 and result.numbers["run_disagreement"] == 30 / 50
    assert 80 <= result.numbers["run_start"] <= 100
    assert result.suspicious is False  # 60 % against a 50 % bound is not far enough


def test_the_defaults_judge_from_fifty_rows_at_six_standard_deviations() -> None:
    # 50 flipped rows against an accuracy of 5/9: z = sqrt(50 * 0.8) = 6.3, just past the default z = 6
    pred = _alternating(50)
    result = label_flip_guard(pred, 1 - pred, validation_accuracy=5 / 9)
    assert result.numbers["z"] == pytest.approx(math.sqrt(40)) and result.suspicious is True
    assert result.reason == (
        "labels look forged: 50 consecutive labelled rows (from row 0) disagree with the champion 100% of the "
        "time, above the 56% that even a full reversal of the concept would give (its validation accuracy and "
        "confidence; z = 6.3); check who sends feedback (serving.require_token_for_feedback, the labeler role) "
        "before retraining on them"
    )
    # at 0.6 the same stream is z = sqrt(50 * 2 / 3) = 5.8: short of the default
    assert label_flip_guard(pred, 1 - pred, validation_accuracy=0.6).suspicious is False


def test_a_near_certain_bound_spreads_by_its_own_binomial_variance() -> None:
    # sum of p(1 - p) over 50 rows at 0.99 is 0.495: the spread is its square root, not a floor of 1
    pred = _alternating(50)
    result = label_flip_guard(pred, 1 - pred, validation_accuracy=0.99)
    assert result.numbers["z"] == pytest.approx(0.01 * 50 / math.sqrt(50 * 0.99 * 0.01))


def test_confidences_logged_as_none_count_as_no_bound_for_their_rows() -> None:
    pred = _alternating(200)
    conf = [None, 0.875] * 100  # JSON nulls from the prediction log
    result = label_flip_guard(pred, 1 - pred, confidence=conf, validation_accuracy=0.5)
    assert result.numbers["run_ceiling"] == pytest.approx((0.5 + 0.875) / 2)
    unjudged = label_flip_guard(pred, 1 - pred, confidence=[None] * 200)
    assert unjudged.numbers == {"rows": 200, "validation_accuracy": None}


"""The forged-label guard: flipped labels are caught, any genuine change of concept is not.

A calibrated binary champion is simulated: each row has the champion's confidence ``c``
in its prediction, and under the old concept the label agrees with probability ``c``.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.policy.guards import label_flip_guard


def _stream(n: int, rng: np.random.Generator, *, reversed_rows: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """``(predictions, labels, confidence)``; rows in ``reversed_rows`` follow the reversed concept."""
    conf = rng.uniform(0.55, 0.99, n)
    pred = rng.integers(0, 2, n)
    agree = rng.random(n) < conf
    if reversed_rows is not None:
        agree[reversed_rows] = ~agree[reversed_rows]
    return pred, np.where(agree, pred, 1 - pred), conf


def _accuracy(n: int = 20_000) -> float:
    pred, lab, _ = _stream(n, np.random.default_rng(999))
    return float((pred == lab).mean())


def test_a_burst_of_flipped_labels_is_suspicious_and_located() -> None:
    rng = np.random.default_rng(0)
    pred, lab, conf = _stream(3000, rng)
    lab[1200:1500] = 1 - pred[1200:1500]  # 300 forged rows in a burst among genuine ones

    result = label_flip_guard(pred, lab, confidence=conf, validation_accuracy=_accuracy())

    assert result.suspicious and "labels look forged" in result.reason
    n = result.numbers
    assert 1180 <= n["run_start"] <= 1220 and 260 <= n["run_rows"] <= 340
    assert n["run_disagreement"] > 0.95 > n["run_ceiling"] and n["z"] >= 6


@pytest.mark.parametrize("seed", range(20))
def test_a_full_reversal_of_the_concept_is_not_suspicious(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    pred, lab, conf = _stream(n, rng, reversed_rows=np.arange(n // 3, n))  # the concept flips at 1/3
    assert (pred != lab)[n // 3 :].mean() > 0.7  # the champion is badly wrong after the flip

    result = label_flip_guard(pred, lab, confidence=conf, validation_accuracy=_accuracy())

    assert not result.suspicious, result.reason
    assert result.numbers["z"] < 6


def test_a_reversal_in_one_region_then_everywhere_is_not_suspicious() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    region = rng.integers(0, 4, n)
    flipped = np.flatnonzero(((np.arange(n) >= 1000) & (region == 0)) | (np.arange(n) >= 2500))
    pred, lab, conf = _stream(n, rng, reversed_rows=flipped)

    assert not label_flip_guard(pred, lab, confidence=conf, validation_accuracy=_accuracy()).suspicious
    # the accuracy alone (no confidence logged) is the bound then: still not suspicious
    assert not label_flip_guard(pred, lab, validation_accuracy=_accuracy()).suspicious


def test_flipped_labels_are_caught_with_the_accuracy_alone_and_with_the_confidence_alone() -> None:
    rng = np.random.default_rng(1)
    pred, lab, conf = _stream(1000, rng)
    forged = 1 - pred
    assert label_flip_guard(pred, forged, validation_accuracy=0.8).suspicious
    assert label_flip_guard(pred, forged, confidence=conf).suspicious
    # without either there is no bound to judge against
    unjudged = label_flip_guard(pred, forged)
    assert not unjudged.suspicious and "not judged" in unjudged.reason


def test_what_is_not_judged() -> None:
    rng = np.random.default_rng(2)
    pred, _, conf = _stream(1000, rng)
    # a few forged labels among many genuine ones stay under the bound (the gate's holdout
    # comparison is the defence there)
    lab = np.where(rng.random(1000) < 0.85, pred, 1 - pred)
    lab[::10] = 1 - pred[::10]
    assert not label_flip_guard(pred, lab, confidence=conf, validation_accuracy=0.85).suspicious
    # three classes: a relabelling is a legitimate concept
    three = rng.integers(0, 3, 1000)
    assert not label_flip_guard(three, (three + 1) % 3, validation_accuracy=0.9).suspicious
    # too few rows
    assert not label_flip_guard(pred[:40], 1 - pred[:40], validation_accuracy=0.9).suspicious
    with pytest.raises(ValueError, match="one label per prediction"):
        label_flip_guard(pred, pred[:10], validation_accuracy=0.9)


def test_labels_are_compared_as_strings_like_the_log_stores_them() -> None:
    pred = np.array([0, 1] * 200)
    as_logged = np.where(pred == 1, "0", "1")
    result = label_flip_guard(pred, as_logged, validation_accuracy=0.8)
    assert result.suspicious and result.numbers["disagreement"] == 1.0

"""The change detector on a labelled error stream: power, false alarms, location, contract."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.errors import ConfigError, DataError
from modelpilot.monitoring.change import (
    CHANGE_DETECTORS,
    ChangeDetector,
    WindowScan,
    get_change_detector,
)

BATCH = 1000


def _bernoulli(rng: np.random.Generator, *parts: tuple[int, float]) -> np.ndarray:
    return np.concatenate([(rng.random(n) < p).astype(float) for n, p in parts])


def _first_alarm(stream: np.ndarray, start: int, detector: ChangeDetector | None = None) -> tuple[int, int | None] | None:
    """Check after every batch from ``start`` on, as the controller does; (batch, located row) of the first alarm."""
    for j, end in enumerate(range(start + BATCH, len(stream) + 1, BATCH)):
        det = detector or WindowScan()
        rep = det.fit(stream[:100]).update(stream[100:end]).report()
        if rep.detected:
            return j, rep.change_at
    return None


@pytest.mark.parametrize(("base", "rise"), [(0.10, 0.10), (0.25, 0.12), (0.03, 0.04), (0.01, 0.02)])
def test_an_abrupt_rise_is_detected_in_the_first_batch_of_labels_and_located(base: float, rise: float) -> None:
    hits = []
    for seed in range(20):
        stream = _bernoulli(np.random.default_rng(seed), (5000, base), (3000, base + rise))
        hits.append(_first_alarm(stream, 5000))
    assert sum(h is not None and h[0] == 0 for h in hits) >= 18, hits
    located = np.array([h[1] for h in hits if h is not None]) - 5000
    assert np.median(np.abs(located)) <= 100, located


def test_a_two_point_rise_at_a_two_percent_error_rate_is_caught_within_two_batches() -> None:
    # 2 -> 4 % is about the least a 1,000-row batch can show at alpha 0.001 (z ~ 3.5 on 1,000 rows)
    found = [_first_alarm(_bernoulli(np.random.default_rng(seed), (5000, 0.02), (3000, 0.04)), 5000)
             for seed in range(40)]
    assert sum(f is not None and f[0] <= 2 for f in found) >= 36, found


def test_stationary_streams_rarely_alarm_whatever_their_level() -> None:
    alarms = 0
    for seed in range(150):
        level = (0.02, 0.1, 0.3)[seed % 3]
        stream = _bernoulli(np.random.default_rng(1000 + seed), (20_000, level))
        alarms += _first_alarm(stream, 0) is not None
    # alpha 0.001 per check; 20 checks per stream share most of their rows
    assert alarms / 150 <= 0.05, alarms


def test_a_fall_of_the_error_rate_is_not_a_change() -> None:
    stream = _bernoulli(np.random.default_rng(3), (5000, 0.3), (3000, 0.1))
    assert _first_alarm(stream, 5000) is None


def test_continuous_losses_use_a_welch_statistic() -> None:
    rng = np.random.default_rng(4)
    calm = np.minimum(rng.chisquare(1, 8000) / 0.455, 10.0)
    worse = np.minimum(1.6 * rng.chisquare(1, 2000) / 0.455, 10.0)
    assert not WindowScan().fit(calm[:100]).update(calm[100:]).drift_detected
    rep = WindowScan().fit(calm[:100]).update(np.r_[calm[100:6000], worse]).report()
    assert rep.detected and rep.change_at is not None and abs(rep.change_at - 5900) <= 300
    assert rep.level_after is not None and rep.level_before is not None and rep.level_after > rep.level_before


def test_the_report_carries_the_statistic_even_when_quiet() -> None:
    stream = _bernoulli(np.random.default_rng(5), (3000, 0.1))
    rep = WindowScan(alpha=0.01).fit(stream[:100]).update(stream[100:]).report()
    assert not rep.detected and rep.statistic is not None and rep.threshold > 2.3
    assert rep.p_value is not None and 0 < rep.p_value <= 1 and rep.n == 3000 and rep.change_at is None
    assert rep.to_dict()["method"] == "scan"


def test_the_change_is_never_located_inside_the_reference() -> None:
    stream = _bernoulli(np.random.default_rng(6), (1000, 0.05), (3000, 0.3))
    rep = WindowScan().fit(stream[:2000]).update(stream[2000:]).report()
    assert rep.detected and rep.change_at is not None and rep.change_at >= 2000
    assert WindowScan().fit(stream[:500]).update(stream[500:]).report().change_at in range(900, 1100)


def test_inputs_are_not_changed_and_the_protocol_holds() -> None:
    stream = _bernoulli(np.random.default_rng(7), (2000, 0.1), (2000, 0.4))
    before = stream.copy()
    for name in CHANGE_DETECTORS:
        if name == "adwin":
            pytest.importorskip("river")
        det = get_change_detector(name, alpha=0.002, min_rows=50)
        assert isinstance(det, ChangeDetector)
        rep = det.fit(stream[:100]).update(stream[100:]).report()
        # ADWIN cuts at the bounds of its exponential buckets: a coarser location
        tolerance = 150 if name == "scan" else 600
        assert rep.detected and rep.change_at is not None and abs(rep.change_at - 2000) <= tolerance, (name, rep)
        np.testing.assert_array_equal(stream, before)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(DataError, match="missing or infinite"):
        WindowScan().fit([0.0, np.nan])
    with pytest.raises(ConfigError, match="alpha must be in"):
        WindowScan(alpha=1.5)
    with pytest.raises(ConfigError, match="triggers.change.method"):
        get_change_detector("cusum")

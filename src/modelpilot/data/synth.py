"""Synthetic data with known truth: the example dataset and labelled drift scenarios.

:func:`customers` is the churn table ``modelpilot init`` and the demo write; its label
comes from a logistic function of the features, so a good model reaches about 0.8–0.85
accuracy, never a trivial 1.0. :func:`scenario` makes labelled streams whose drift
points are known, for backtests of retraining policies.

Everything is generated with vectorised NumPy from one ``numpy.random.Generator``, so
the same seed gives the same frame on every machine (100k rows in well under a second).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import DataError

PLANS = np.array(["basic", "plus", "pro"])
REGIONS = np.array(["north", "south", "east", "west"])
CHANNELS = np.array(["web", "store", "phone"])
SEGMENTS = np.array(["A", "B", "C"])

# churn log-odds per unit of each feature, before and after concept drift: after the
# drift, support calls mean an engaged customer and discounts attract the ones who leave
_BEFORE = {"tenure": -0.06, "calls": 1.0, "discount": -0.11, "spend": 0.014, "age": -0.02}
_AFTER = {"tenure": -0.06, "calls": -1.0, "discount": 0.11, "spend": 0.014, "age": -0.02}
_PLAN_EFFECT = np.array([0.5, 0.0, -0.6])
_CHANNEL_EFFECT = np.array([0.0, -0.4, 0.5])
_REGION_EFFECT = np.array([0.3, 0.0, -0.3, 0.0])
# scales the log-odds: tuned so a good model scores about 0.8-0.85 accuracy
_SHARPNESS = 1.4


def _utc(start: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(start)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def _drift_mask(drift: dict[str, Any], ts: pd.DatetimeIndex, region: np.ndarray) -> np.ndarray:
    unknown = set(drift) - {"at", "segment", "strength"}
    if unknown:
        raise DataError(f"unknown drift option(s) {sorted(unknown)}: use 'at', 'segment', 'strength'")
    at = drift.get("at", 0.5)
    if isinstance(at, datetime):
        mask = np.asarray(ts >= _utc(at))
    elif isinstance(at, int | float) and 0 <= at <= 1:
        mask = np.arange(len(ts)) >= int(at * len(ts))
    else:
        raise DataError(f"drift 'at' must be a fraction in [0, 1] or a datetime, got {at!r}")
    segment = drift.get("segment")
    if segment is not None:
        if segment not in REGIONS:
            raise DataError(f"drift 'segment' {segment!r} is not a region: use one of {list(REGIONS)}")
        mask &= region == segment
    return mask


def customers(
    n: int = 5000,
    seed: int = 0,
    start: datetime = datetime(2026, 1, 1),
    drift: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """A churn table: one row per customer observation, ordered by time.

    Columns: ``ts`` (UTC, increasing, about 5 minutes apart), numeric ``tenure_months``,
    ``monthly_spend``, ``support_calls``, ``age`` (about 3% missing), ``discount_pct``;
    categorical ``plan``, ``region`` (the segment column), ``channel``; target ``churned``
    (0/1, about 30% ones).

    Args:
        n: number of rows.
        seed: random seed; the same seed gives the same frame.
        start: the first timestamp (naive means UTC).
        drift: concept drift, ``{"at": fraction or datetime, "segment": "north" | None,
            "strength": 0..1}``: from ``at`` on (only in ``segment`` when given) the effect
            of support calls and discounts flips; ``strength`` blends old and new (1 = full).

    Returns:
        The frame.

    Raises:
        DataError: a bad drift option.

    Example::

        >>> df = customers(1000, seed=1)
        >>> df.shape, df["churned"].isin([0, 1]).all()
        ((1000, 10), np.True_)
    """
    rng = np.random.default_rng(seed)
    ts = _utc(start) + pd.to_timedelta(np.cumsum(rng.integers(30, 570, n)), unit="s")
    plan = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    region = rng.choice(4, n)
    channel = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    tenure = np.clip(np.round(rng.gamma(2.0, 12.0, n)), 1, 120).astype(np.int64)
    spend = np.round(np.array([30.0, 60.0, 100.0])[plan] * rng.lognormal(0.0, 0.3, n), 2)
    calls = rng.poisson(1.5, n).astype(np.int64)
    age = np.clip(np.round(rng.normal(42, 12, n)), 18, 90)
    discount = np.where(rng.random(n) < 0.5, 0.0, rng.choice([5.0, 10.0, 15.0, 20.0, 25.0], n))

    region_names = REGIONS[region]
    weight = np.zeros(n)
    if drift:
        weight = _drift_mask(drift, pd.DatetimeIndex(ts), region_names) * float(drift.get("strength", 1.0))
    coef = {k: (1 - weight) * _BEFORE[k] + weight * _AFTER[k] for k in _BEFORE}
    logit = _SHARPNESS * (
        -1.5
        + coef["tenure"] * (tenure - 24)
        + coef["calls"] * (calls - 1.5)
        + coef["discount"] * (discount - 10)
        + coef["spend"] * (spend - 60)
        + coef["age"] * (age - 42)
        + _PLAN_EFFECT[plan] + _CHANNEL_EFFECT[channel] + _REGION_EFFECT[region]
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    # like real data, some ages were never recorded (after the label is drawn: missing
    # does not mean anything about churn)
    age[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({
        "ts": ts,
        "tenure_months": tenure,
        "monthly_spend": spend,
        "support_calls": calls,
        "age": age,
        "discount_pct": discount,
        "plan": PLANS[plan],
        "region": region_names,
        "channel": CHANNELS[channel],
        "churned": churned,
    })


# --------------------------------------------------------------------------- scenarios


def _concepts(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three weight vectors over x0..x{k-1}: the label is ``sign(w · x + noise)``.

    B flips the two main effects of A (an old model gets most of B wrong); C swaps which
    features matter. Features from x3 on are noise under every concept.
    """
    a, b, c = np.zeros(k), np.zeros(k), np.zeros(k)
    a[:3] = [1.0, -1.0, 0.5]
    b[:3] = [-1.0, 1.0, 0.5]
    c[:3] = [0.5, 1.0, -1.0]
    return a, b, c


def _blend(n: int, alpha: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """Per-row weights ``(1 - alpha) * w0 + alpha * w1`` as an (n, k) array."""
    weights: np.ndarray = (1 - alpha)[:, None] * w0[None, :] + alpha[:, None] * w1[None, :]
    return weights


_Built = tuple[np.ndarray, np.ndarray | None, list[int], str]
# a scenario gets (n, rng, x, segment codes, concepts, options) and returns the per-row
# weights, optionally replaced inputs, its drift points and a description
_Scenario = Callable[[int, np.random.Generator, np.ndarray, np.ndarray, tuple[np.ndarray, ...], dict[str, Any]], _Built]


def _stationary(n: int, rng: np.random.Generator, x: np.ndarray, seg: np.ndarray,
                w: tuple[np.ndarray, ...], opts: dict[str, Any]) -> _Built:
    return _blend(n, np.zeros(n), w[0], w[0]), None, [], "no drift: one concept and one input distribution"


def _sudden(n: int, rng: np.random.Generator, x: np.ndarray, seg: np.ndarray,
            w: tuple[np.ndarray, ...], opts: dict[str, Any]) -> _Built:
    p1, p2 = n // 3, 2 * n // 3
    idx = np.arange(n)
    weights = np.where((idx < p1)[:, None], w[0], np.where((idx < p2)[:, None], w[1], w[2]))
    return weights, None, [p1, p2], (
        f"sudden concept drift: concept A until row {p1}, B (main effects flipped) until row "
        f"{p2}, then C (other features matter)")


def _gradual(n: int, rng: np.random.Generator, x: np.ndarray, seg: np.ndarray,
             w: tuple[np.ndarray, ...], opts: dict[str, Any]) -> _Built:
    p1, p2 = int(0.3 * n), int(0.8 * n)
    alpha = np.clip((np.arange(n) - p1) / max(p2 - p1, 1), 0, 1)
    return _blend(n, alpha, w[0], w[1]), None, [p1, p2], (
        f"gradual concept drift: concept A moves linearly to B between rows {p1} and {p2}")


def _recurring(n: int, rng: np.random.Generator, x: np.ndarray, seg: np.ndarray,
               w: tuple[np.ndarray, ...], opts: dict[str, Any]) -> _Built:
    period = int(opts.get("period") or max(n // 6, 1))
    alpha = ((np.arange(n) // period) % 2).astype(float)
    return _blend(n, alpha, w[0], w[1]), None, list(range(period, n, period)), (
        f"recurring concepts: A and B alternate every {period} rows")


def _segment(n: int, rng: np.random.Generator, x: np.ndarray, seg: np.ndarray,
             w: tuple[np.ndarray, ...], opts: dict[str, Any]) -> _Built:
    p = n // 2
    alpha = ((np.arange(n) >= p) & (seg == 0)).astype(float)
    return _blend(n, alpha, w[0], w[1]), None, [p], (
        f"segment drift: from row {p} the concept flips to B in segment 'A' only; "
        "segments 'B' and 'C' keep concept A")


def _covariate(n: int, rng: np.random.Generator, x: np.ndarray, seg: np.ndarray,
               w: tuple[np.ndarray, ...], opts: dict[str, Any]) -> _Built:
    p = n // 2
    shifted = x.copy()
    after = np.arange(n) >= p
    # x0 and x1 move together along the decision boundary (x0 - x1 = const keeps every
    # margin's mean) and spread wider (points leave the boundary, so the old model stays
    # right); the noise features shift within the range seen in training
    shifted[after, :2] = shifted[after, :2] * 1.5 + 0.5
    shifted[after, 3:] += 0.8
    return _blend(n, np.zeros(n), w[0], w[0]), shifted, [p], (
        f"covariate shift: from row {p} the inputs x0, x1 (and noise features) shift; the "
        "concept is unchanged, so a model trained before the shift stays right")


SCENARIOS: dict[str, _Scenario] = {
    "stationary": _stationary,
    "sudden": _sudden,
    "gradual": _gradual,
    "recurring": _recurring,
    "segment": _segment,
    "covariate": _covariate,
}


def scenario(
    name: str,
    n_rows: int = 6000,
    seed: int = 0,
    *,
    n_features: int = 5,
    start: datetime = datetime(2026, 1, 1),
    period: int | None = None,
    noise: float = 0.3,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A labelled stream with known drift points, for backtests.

    Columns: numeric ``x0``..``x{n_features-1}`` (standard normal before any shift),
    categorical ``segment`` (``A``/``B``/``C``), ``ts`` (UTC, one row a minute) and binary
    target ``y = 1[w · x + noise > 0]`` with the per-row concept ``w`` of the scenario.

    Args:
        name: one of :data:`SCENARIOS`: ``stationary``, ``sudden`` (flips at 1/3 and
            2/3), ``gradual`` (A→B linearly from 30% to 80% of rows), ``recurring``
            (A/B alternate every ``period`` rows, default n/6), ``segment`` (flip in
            segment A only, at 1/2), ``covariate`` (inputs shift at 1/2, concept kept).
        n_rows: number of rows.
        seed: random seed.
        n_features: number of numeric features, at least 3.
        start: the first timestamp (naive means UTC).
        period: rows per concept for ``recurring``.
        noise: standard deviation of the noise added to the margin (label noise).

    Returns:
        ``(frame, info)`` with ``info = {"drift_points": [row, ...], "description": str}``.

    Raises:
        DataError: an unknown scenario name or fewer than 3 features.

    Example::

        >>> df, info = scenario("sudden", 300, seed=0)
        >>> info["drift_points"], list(df.columns[:2])
        ([100, 200], ['x0', 'x1'])
    """
    if name not in SCENARIOS:
        raise DataError(f"unknown scenario {name!r}: choose one of {', '.join(SCENARIOS)}")
    if n_features < 3:
        raise DataError(f"a scenario needs n_features >= 3, got {n_features}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, n_features))
    seg = rng.choice(3, n_rows, p=[0.4, 0.35, 0.25])
    weights, shifted, points, description = SCENARIOS[name](
        n_rows, rng, x, seg, _concepts(n_features), {"period": period})
    if shifted is not None:
        x = shifted
    margin = (weights * x).sum(axis=1) + noise * rng.standard_normal(n_rows)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(n_features)])
    frame["segment"] = SEGMENTS[seg]
    frame["ts"] = _utc(start) + pd.to_timedelta(np.arange(n_rows), unit="min")
    frame["y"] = (margin > 0).astype(np.int64)
    return frame, {"drift_points": points, "description": description, "name": name}

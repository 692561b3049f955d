"""Conformance kit for drift methods: run it over every registered method (and your own).

    >>> from modelpilot.monitoring import DRIFT_METHODS
    >>> from modelpilot.testing.drift_checks import check_drift_method
    >>> for cls in DRIFT_METHODS.values():
    ...     check_drift_method(cls())

Each check raises ``AssertionError`` naming the method and what broke. The checks:
identical data does not drift; a shifted numeric and a shifted categorical column drift
(while an untouched one does not); ``fit``/``score`` do not modify their inputs; the profile
survives a JSON (orjson) round trip and scores the same afterwards; NaNs are tolerated.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import orjson
import pandas as pd

from modelpilot.monitoring.drift.base import DriftMethod, DriftResult

N_ROWS = 3000


def sample_frame(n: int = N_ROWS, seed: int = 0, *, shift: bool = False) -> pd.DataFrame:
    """Two numeric and two categorical columns; ``shift`` moves ``x`` by 1.5 std and the
    categories of ``c`` by 35 points of share; ``y`` and ``d`` never move."""
    rng = np.random.default_rng(seed)
    p = [0.15, 0.25, 0.6] if shift else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "x": rng.normal(1.5 if shift else 0.0, 1.0, n),
            "y": rng.exponential(2.0, n),
            "c": rng.choice(["a", "b", "c"], size=n, p=p),
            "d": rng.choice(["u", "v"], size=n),
        }
    )


def _fit(method: DriftMethod, frame: pd.DataFrame) -> dict[str, object]:
    return method.fit(frame, numeric=["x", "y"], categorical=["c", "d"])


def _fail(method: DriftMethod, message: str) -> AssertionError:
    return AssertionError(f"{method!r}: {message}")


def _check_result(method: DriftMethod, name: str, res: DriftResult) -> None:
    if not isinstance(res, DriftResult):
        raise _fail(method, f"score() gave {type(res).__name__} for {name}, not DriftResult")
    if not math.isfinite(res.statistic) or (res.p_value is not None and not 0 <= res.p_value <= 1):
        raise _fail(method, f"non-finite statistic or p-value outside [0, 1] for {name}: {res}")


def check_identical_does_not_drift(method: DriftMethod) -> None:
    ref = sample_frame(seed=1)
    for name, res in method.score(_fit(method, ref), ref.copy()).items():
        _check_result(method, name, res)
        if res.drifted:
            raise _fail(method, f"identical data flagged as drifted on {name}: {res}")


def check_shifted_column_drifts(method: DriftMethod) -> None:
    profile = _fit(method, sample_frame(seed=1))
    results = method.score(profile, sample_frame(seed=2, shift=True))
    for name in ("x", "c"):
        if not results[name].drifted:
            raise _fail(method, f"shifted column {name} not flagged: {results[name]}")
    for name in ("y", "d"):
        if results[name].drifted:
            raise _fail(method, f"unshifted column {name} flagged: {results[name]}")


def check_inputs_not_mutated(method: DriftMethod) -> None:
    ref, cur = sample_frame(seed=1), sample_frame(seed=2, shift=True)
    ref_copy, cur_copy = ref.copy(deep=True), cur.copy(deep=True)
    profile = _fit(method, ref)
    profile_copy = copy.deepcopy(profile)
    method.score(profile, cur)
    try:
        pd.testing.assert_frame_equal(ref, ref_copy)
        pd.testing.assert_frame_equal(cur, cur_copy)
    except AssertionError as err:
        raise _fail(method, f"fit/score modified an input frame: {err}") from None
    if orjson.dumps(profile) != orjson.dumps(profile_copy):
        raise _fail(method, "score() modified the profile it was given")


def check_profile_json_round_trip(method: DriftMethod) -> None:
    profile = _fit(method, sample_frame(seed=1))
    try:
        restored = orjson.loads(orjson.dumps(profile))
    except TypeError as err:
        raise _fail(method, f"profile is not JSON-serialisable: {err}") from None
    cur = sample_frame(seed=2, shift=True)
    before, after = method.score(profile, cur), method.score(restored, cur)
    if before != after:
        raise _fail(method, f"scores differ after a JSON round trip: {before} vs {after}")


def check_nan_tolerated(method: DriftMethod) -> None:
    ref, cur = sample_frame(seed=1), sample_frame(seed=2)
    for frame, seed in ((ref, 3), (cur, 4)):
        holes = np.random.default_rng(seed).random(len(frame)) < 0.05
        frame.loc[holes, "x"] = np.nan
        frame.loc[holes, "c"] = None
    profile = _fit(method, ref)
    # orjson silently writes NaN/inf as null, so look for them before serialising
    if _has_non_finite(profile):
        raise _fail(method, "the profile holds NaN or infinity (not representable in JSON)")
    for name, res in method.score(profile, cur).items():
        _check_result(method, name, res)


def _has_non_finite(obj: object) -> bool:
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, dict):
        return any(_has_non_finite(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(_has_non_finite(v) for v in obj)
    return False


DRIFT_CHECKS: tuple[Callable[[DriftMethod], None], ...] = (
    check_identical_does_not_drift,
    check_shifted_column_drifts,
    check_inputs_not_mutated,
    check_profile_json_round_trip,
    check_nan_tolerated,
)


def check_drift_method(method: DriftMethod) -> None:
    """Run every check in :data:`DRIFT_CHECKS` on ``method``.

    Raises:
        AssertionError: the first check that fails, naming the method.
    """
    if not isinstance(method, DriftMethod):
        raise AssertionError(f"{method!r} does not implement the DriftMethod protocol")
    for check in DRIFT_CHECKS:
        check(method)

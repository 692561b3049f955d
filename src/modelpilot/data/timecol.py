"""The time column, read in one place: what its values mean on the loop's clock.

The loop (cooldowns, waits, windows, the replay of a backtest) runs on tz-aware UTC
timestamps. :func:`read_time_column` turns whatever the time column holds into them, by
one rule:

* **dates** (a timestamp dtype, or text / date objects that parse as dates) are used as
  they are. Naive values are UTC; values with different UTC offsets (a log written across
  a daylight-saving change, or by servers in several zones) are converted to UTC. A mix of
  values with and without a zone is refused: the zone-less ones could be any zone.
* **numbers** are an **ordinal clock** by default: one step per unit (a row number, a day
  index), placed on the loop's clock at one second per step from step 0 =
  1970-01-01T00:00:00Z. A duration written as a number of seconds (``cooldown: 3600``) is
  then that many steps. Numbers are never read as nanoseconds since 1970 by accident.
* numbers with ``time_unit`` ``s``, ``ms``, ``us`` or ``ns`` are **epoch** values in that
  unit (``--time-unit`` on ``modelpilot backtest``, ``data.time_unit`` in pilot.yaml).

Example::

    >>> times, clock = read_time_column(pd.Series([0, 1, 2]), "day")
    >>> clock.kind, str(times.iloc[2])
    ('ordinal', '1970-01-01 00:00:02+00:00')
    >>> read_time_column(pd.Series([1_700_000_000]), "ts", "s")[0].iloc[0].year
    2023
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelpilot.errors import DataError

TimeUnit = Literal["ordinal", "s", "ms", "us", "ns"]
TIME_UNITS: tuple[str, ...] = ("ordinal", "s", "ms", "us", "ns")
ORDINAL_STEP_SECONDS = 1.0  # one step of an ordinal clock, in seconds of the loop's clock
# an epoch value in this window (1990-01-01 .. 2100-01-01, in seconds) looks like a date
_PLAUSIBLE_EPOCH_S = (631_152_000.0, 4_102_444_800.0)
_UNIT_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
Kind = Literal["datetime", "ordinal", "epoch", "generated"]


class TimeColumnError(DataError):
    """The time column cannot be read as times (or a time unit does not fit it)."""


@dataclass(frozen=True)
class Clock:
    """How the time column was read; :meth:`to_dict` is what a backtest reports.

    ``first``/``last`` are the column's own values (step numbers of an ordinal clock,
    ISO times otherwise); ``notes`` are warnings worth showing (e.g. numbers that look
    like epoch seconds read as an ordinal clock).
    """

    column: str
    kind: Kind
    unit: str | None = None
    first: Any = None
    last: Any = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def step_seconds(self) -> float | None:
        """Seconds of the loop's clock per step of an ordinal clock (None otherwise)."""
        return ORDINAL_STEP_SECONDS if self.kind == "ordinal" else None

    def describe(self) -> str:
        """One line for the CLI: which column, read how."""
        span = f" from {self.first} to {self.last}" if self.first is not None else ""
        if self.kind == "ordinal":
            return (f"time column '{self.column}' is numeric: read as an ordinal clock{span}, one step per unit "
                    f"= {ORDINAL_STEP_SECONDS:g} s of the loop's clock (a cooldown of 3600 s is 3600 steps); "
                    "pass --time-unit s|ms|us|ns (data.time_unit) if it holds epoch values")
        if self.kind == "epoch":
            return f"time column '{self.column}' read as epoch {self.unit}{span}"
        if self.kind == "generated":
            return f"no time column: rows replayed in file order, one simulated minute apart (column '{self.column}')"
        return f"time column '{self.column}' holds dates{span} (UTC)"

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "unit": self.unit, "step_seconds": self.step_seconds,
                "first": self.first, "last": self.last, "description": self.describe()}


def _fix_hint(fix: str) -> str:
    return f"pass {fix}" if fix.startswith("--") else f"set {fix} in pilot.yaml"


def _column_fix(unit_fix: str) -> str:
    """How to name another time column, in the words of the caller (a flag or pilot.yaml)."""
    return "name a column of times with --time-col" if unit_fix.startswith("--") else \
        "set model.time_column in pilot.yaml to a column of times"


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in values.astype(str).unique()[:3])


def _iso(ts: pd.Timestamp) -> str:
    return str(ts.isoformat())


def _plain(value: Any) -> Any:
    """A JSON-friendly number (an int when it is whole)."""
    v = float(value)
    return int(v) if v.is_integer() else v


def parse_dates(
    values: pd.Series, column: str, *, allow_missing: bool = True, fix: str = "model.time_column", role: str = "column"
) -> pd.Series:
    """Text or date objects → tz-aware UTC timestamps, strictly (naive values are UTC).

    ``role`` names the column in messages (``"time column"``); ``fix`` is the setting that
    names another column.

    Raises:
        TimeColumnError: values that do not parse (quoted), or a mix of values with and
            without a time zone.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        dt = values
        return dt.dt.tz_localize("UTC") if dt.dt.tz is None else dt.dt.tz_convert("UTC")
    present = values.notna()
    try:
        parsed: pd.Series | None = pd.to_datetime(values, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # several zones, or zoned and zone-less values together
        parsed = None
    if parsed is None or (present & parsed.isna()).any():
        _refuse_naive_and_aware(values[present], column, role)
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = present & parsed.isna()
    if bad.any():
        what = "is neither numeric nor dates" if role == "time column" else "should hold dates but"
        raise TimeColumnError(
            f"{role} '{column}' {what}: {int(bad.sum())} values do not parse (e.g. {_examples(values[bad])}); "
            f"fix the data, or {fix if ' ' in fix else _fix_hint(fix)}"
        )
    if not allow_missing and not present.all():
        raise TimeColumnError(f"{int((~present).sum())} rows have no value in the {role} '{column}': "
                              "fill or drop them")
    if not pd.api.types.is_datetime64_any_dtype(parsed):  # all missing: object dtype
        parsed = pd.to_datetime(parsed, utc=True)
    return parsed.dt.tz_localize("UTC") if parsed.dt.tz is None else parsed.dt.tz_convert("UTC")


def unparseable_dates(values: pd.Series) -> pd.Series:
    """A mask of the present values that do not parse as dates (for the types check)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series(False, index=values.index)
    return values.notna() & pd.to_datetime(values, errors="coerce", utc=True, format="mixed").isna()


def _refuse_naive_and_aware(values: pd.Series, column: str, role: str) -> None:
    """Raise when some values carry a time zone and others do not (else return)."""
    naive: list[Any] = []
    aware: list[Any] = []
    for v in pd.unique(values.to_numpy(dtype=object)):
        try:
            ts = pd.Timestamp(v)
        except (ValueError, TypeError):
            continue  # reported as unparseable by the caller
        (naive if ts.tzinfo is None else aware).append(v)
        if naive and aware:
            raise TimeColumnError(
                f"{role} '{column}' mixes times with a time zone (e.g. {str(aware[0])!r}) and times without "
                f"one (e.g. {str(naive[0])!r}): the zone-less ones are ambiguous; give every value a UTC offset, "
                "or none (then all are read as UTC)"
            )


def _as_numbers(values: pd.Series) -> pd.Series | None:
    """The values as floats when the column is numeric (or text that is all numbers)."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64)
    if pd.api.types.is_datetime64_any_dtype(values) or values.notna().sum() == 0:
        return None
    nums = pd.to_numeric(values, errors="coerce")
    return nums.astype(np.float64) if bool((nums.notna() == values.notna()).all()) else None


def _epoch_hint(lo: float, hi: float) -> str | None:
    """The unit under which ``lo``..``hi`` read as plausible dates (1990-2100), if any."""
    for unit, per_s in _UNIT_PER_SECOND.items():
        if _PLAUSIBLE_EPOCH_S[0] <= lo / per_s and hi / per_s <= _PLAUSIBLE_EPOCH_S[1]:
            return unit
    return None


def read_time_column(
    values: pd.Series,
    column: str,
    unit: str | None = None,
    *,
    allow_missing: bool = False,
    fix: str = "--time-unit",
) -> tuple[pd.Series, Clock]:
    """Read a time column as tz-aware UTC timestamps on the loop's clock (see the module).

    Args:
        values: the column as loaded.
        column: its name (for messages and the clock).
        unit: ``None`` or ``"ordinal"`` (dates as they are, numbers as an ordinal clock), or
            an epoch unit ``"s"``, ``"ms"``, ``"us"``, ``"ns"`` (numbers only).
        allow_missing: keep missing values as NaT (training data) instead of refusing them
            (a replay needs every row on the clock).
        fix: the flag or config key that sets the unit, named in messages.

    Returns:
        ``(timestamps, clock)``: ``datetime64[us, UTC]`` (the prediction log's resolution),
        with the index of ``values``.

    Raises:
        TimeColumnError: values that are neither numbers nor dates, zoned and zone-less
            dates mixed, a unit given for a column of dates, an unknown unit, missing values
            (unless ``allow_missing``), or numbers out of range for their unit.
    """
    if unit is not None and unit not in TIME_UNITS:
        raise TimeColumnError(f"unknown time unit {unit!r} for '{column}': use one of {', '.join(TIME_UNITS)}")
    if pd.api.types.is_bool_dtype(values):
        raise TimeColumnError(f"time column '{column}' holds true/false values, not times: "
                              f"{_column_fix(fix)}")
    nums = _as_numbers(values)
    if nums is None:
        if unit not in (None, "ordinal"):
            raise TimeColumnError(
                f"time column '{column}' holds dates, so a time unit ({unit!r}) does not apply: it is only for "
                f"numeric time columns; remove {fix}"
            )
        times = parse_dates(values, column, allow_missing=allow_missing, role="time column", fix=_column_fix(fix))
        present = times.dropna()
        clock = Clock(column, "datetime", first=_iso(present.min()) if len(present) else None,
                      last=_iso(present.max()) if len(present) else None)
        return times.dt.as_unit("us"), clock
    finite = nums[np.isfinite(nums.fillna(0.0))]
    if len(finite) < nums.notna().sum():
        raise TimeColumnError(f"time column '{column}' holds infinite values: fix or drop those rows")
    if not allow_missing and nums.isna().any():
        raise TimeColumnError(f"{int(nums.isna().sum())} rows have no value in the time column '{column}': "
                              "fill or drop them")
    present_nums = nums.dropna()
    lo = float(present_nums.min()) if len(present_nums) else 0.0
    hi = float(present_nums.max()) if len(present_nums) else 0.0
    ordinal = unit in (None, "ordinal")
    scale = "s" if ordinal else str(unit)
    try:
        times = pd.to_datetime(nums, unit=scale, utc=True)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        guess = _epoch_hint(lo, hi)
        how = f"if they are epoch {guess}, pass {fix} {guess}" if guess else f"check {fix}"
        raise TimeColumnError(
            f"time column '{column}' holds numbers up to {hi:.6g}, out of range for "
            f"{'an ordinal clock (one second per step)' if ordinal else f'epoch {unit}'}: {how}"
        ) from exc
    first, last = (_plain(lo), _plain(hi)) if len(present_nums) else (None, None)
    if ordinal:
        guess = _epoch_hint(lo, hi)
        notes: tuple[str, ...] = ()
        if guess:
            start = pd.to_datetime(lo / _UNIT_PER_SECOND[guess], unit="s", utc=True)
            end = pd.to_datetime(hi / _UNIT_PER_SECOND[guess], unit="s", utc=True)
            notes = (f"the numbers in '{column}' look like epoch {guess} ({start:%Y-%m-%d} to {end:%Y-%m-%d}) but are "
                     f"read as an ordinal clock: pass {fix} {guess} to read them as dates",)
        return times.dt.as_unit("us"), Clock(column, "ordinal", "ordinal", first, last, notes)
    return times.dt.as_unit("us"), Clock(column, "epoch", unit, _iso(times.min()), _iso(times.max()))

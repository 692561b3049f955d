"""Data validation: a few checks, each ``fail``, ``warn`` or ``off`` by config.

Each check is a function ``(df, cfg, spec) -> _Finding`` registered in :data:`CHECKS`;
:func:`validate` turns a finding into a :class:`CheckResult` whose status follows the
check's ``action`` in ``data.validation``. Every check works column-wise with pandas and
NumPy; no check loops over rows.

Example::

    >>> from modelpilot.config import PilotConfig
    >>> from modelpilot.data.features import resolve_features
    >>> cfg = PilotConfig.model_validate({"model": {"name": "m", "target": "y"}})
    >>> df = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "y": [0, 1, 0, 1]})
    >>> report = validate(df, cfg, resolve_features(df, cfg))
    >>> report.ok, report.get("missing").status
    (False, 'fail')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelpilot.config import PilotConfig
from modelpilot.data._columns import unknown_column
from modelpilot.data.features import FeatureSpec
from modelpilot.data.snapshot import row_hashes
from modelpilot.data.timecol import unparseable_dates
from modelpilot.errors import ValidationFailed

Status = Literal["pass", "warn", "fail", "off"]
_NUMERIC_TYPES = {"int", "float", "number"}
_BOOL_TEXT = {"true", "false", "0", "1", "yes", "no", "t", "f", "y", "n", "1.0", "0.0"}


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``numbers`` holds the per-column details (JSON-ready)."""

    name: str
    status: Status
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message,
                "numbers": self.numbers, "fix": self.fix}


@dataclass(frozen=True)
class ValidationReport:
    """All check results, in the order they ran."""

    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not self.failed

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warn"]

    def get(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    def raise_if_failed(self) -> None:
        """Raise when a check failed; the message lists each failure and how to relax it.

        Raises:
            ValidationFailed: with ``report`` set to this report.
        """
        if self.ok:
            return
        n = len(self.failed)
        lines = [f"data validation failed ({n} check{'s' if n > 1 else ''}):"]
        lines += [f"  - {c.name}: {c.message}; fix: {c.fix}" for c in self.failed]
        raise ValidationFailed("\n".join(lines), self)


@dataclass
class _Finding:
    problem: bool
    message: str
    numbers: dict[str, Any]
    fix: str = ""
    applicable: bool = True
    force_fail: bool = False  # a problem that no action setting can turn into a warning


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _examples(values: pd.Series) -> list[str]:
    return [str(v) for v in values.astype(str).unique()[:5]]


def _check_missing(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec) -> _Finding:
    limit = cfg.data.validation.missing.max_fraction
    frac = df[[*spec.features, spec.target]].isna().mean()
    if len(df) and frac[spec.target] == 1.0:
        return _Finding(True, f"the target '{spec.target}' has no values (all {len(df)} rows are missing)",
                        {"max_fraction": limit, "columns": {spec.target: 1.0}, "failing": [spec.target]},
                        "check that the labels arrive (feedback) or that data.source / data.query "
                        "selects the target column", force_fail=True)
    bad = frac[frac > limit].sort_values(ascending=False)
    numbers = {"max_fraction": limit, "columns": {str(c): float(v) for c, v in frac[frac > 0].items()},
               "failing": [str(c) for c in bad.index]}
    if bad.empty:
        worst = f" (most: {frac.idxmax()} {_pct(float(frac.max()))})" if frac.max() > 0 else ""
        return _Finding(False, f"no column has more than {_pct(limit)} missing values{worst}", numbers)
    listed = ", ".join(f"{c} {_pct(float(v))}" for c, v in bad.items())
    return _Finding(
        True, f"{len(bad)} column(s) have more than {_pct(limit)} missing values: {listed}", numbers,
        f"impute or drop those columns, raise data.validation.missing.max_fraction (now {limit}), "
        "or set data.validation.missing.action: warn")


def _bad_values(s: pd.Series, declared: str) -> tuple[pd.Series, str]:
    """A mask of values that do not fit ``declared`` and a phrase saying why."""
    present = s.notna()
    if declared in _NUMERIC_TYPES:
        if pd.api.types.is_numeric_dtype(s.dtype):
            nums = s.astype(float)
            bad = present & False
        else:
            nums = pd.to_numeric(s, errors="coerce")
            bad = present & nums.isna()
        if declared == "int" and not bad.any():
            bad = present & (nums % 1 != 0)
            return bad, "are not whole numbers"
        return bad, "do not parse as numbers"
    if declared == "bool":
        if pd.api.types.is_bool_dtype(s.dtype):
            return present & False, ""
        return present & ~s.astype(str).str.strip().str.lower().isin(_BOOL_TEXT), "are not true/false"
    if declared == "datetime":
        return unparseable_dates(s), "do not parse as dates"
    return present & False, ""  # category / string: any value can be a label


def _check_types(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec) -> _Finding:
    declared: dict[str, str] = {c: "float" for c in spec.numeric}
    for col, kind in cfg.data.schema_.items():
        if col not in df.columns:
            raise unknown_column(col, df.columns, "data.schema")
        declared[col] = kind
    details: dict[str, Any] = {}
    problems = []
    for col, declared_type in declared.items():
        bad, why = _bad_values(df[col], declared_type)
        count = int(bad.sum())
        if count:
            examples = _examples(df.loc[bad, col])
            details[col] = {"declared": declared_type, "bad": count, "examples": examples}
            shown = ", ".join(repr(e) for e in examples)
            problems.append(f"column '{col}' is declared {declared_type} but {count} values {why} (e.g. {shown})")
    for col in _numeric_looking(df, cfg, spec, declared):
        bad = df[col].notna() & pd.to_numeric(df[col], errors="coerce").isna()
        count, examples = int(bad.sum()), _examples(df.loc[bad, col])
        details[col] = {"declared": "inferred float", "bad": count, "examples": examples}
        shown = ", ".join(repr(e) for e in examples)
        problems.append(
            f"column '{col}' holds numbers except {count} values that do not parse as numbers (e.g. {shown})")
    numbers = {"columns": details, "checked": list(declared)}
    if not problems:
        return _Finding(False, f"{len(declared)} typed column(s) hold values of their type", numbers)
    return _Finding(
        True, "; ".join(problems), numbers,
        "clean the data or declare the column categorical (data.schema: {col: category} or "
        "model.features.categorical), or set data.validation.types.action: warn")


# an undeclared text column whose values are at least this share numbers is a numeric column
# with stray text in it (a "n/a" in a CSV), not a category with hundreds of numeric labels
_NUMERIC_SHARE = 0.9


def _numeric_looking(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec, declared: dict[str, str]) -> list[str]:
    """Inferred-categorical text columns that are mostly numbers (checked on a sample first)."""
    chosen = set(cfg.model.features.categorical or [])
    found = []
    for col in spec.categorical:
        s = df[col]
        text = pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)
        if col in declared or col in chosen or not text:
            continue
        present = s.dropna()
        sample = present.sample(min(len(present), 1000), random_state=0) if len(present) else present
        if not len(sample) or pd.to_numeric(sample, errors="coerce").notna().mean() < _NUMERIC_SHARE:
            continue
        parsed = pd.to_numeric(present, errors="coerce").notna()
        if parsed.mean() >= _NUMERIC_SHARE and not parsed.all():
            found.append(col)
    return found


def _check_ranges(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec) -> _Finding:
    details: dict[str, Any] = {}
    problems = []
    for col, (low, high) in cfg.data.validation.ranges.columns.items():
        if col not in df.columns:
            raise unknown_column(col, df.columns, "data.validation.ranges.columns")
        values = pd.to_numeric(df[col], errors="coerce")
        below = int((values < low).sum()) if low is not None else 0
        above = int((values > high).sum()) if high is not None else 0
        details[col] = {"low": low, "high": high, "below": below, "above": above,
                        "min": float(values.min()), "max": float(values.max())}
        if below or above:
            problems.append(f"column '{col}' has {below} values below {low} and {above} above "
                            f"{high} (seen {values.min():g}..{values.max():g})")
    numbers = {"columns": details}
    if not problems:
        return _Finding(False, f"{len(details)} column(s) within their ranges", numbers)
    return _Finding(
        True, "; ".join(problems), numbers,
        "fix or filter those rows, widen data.validation.ranges.columns, or set "
        "data.validation.ranges.action: warn")


def _check_outliers(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec) -> _Finding:
    opts = cfg.data.validation.outliers
    cols = [c for c in spec.numeric if pd.api.types.is_numeric_dtype(df[c].dtype)
            and not pd.api.types.is_bool_dtype(df[c].dtype) and df[c].notna().any()]
    arr = df[cols].to_numpy(dtype=float, na_value=np.nan)
    q1, q3 = np.nanpercentile(arr, [25, 75], axis=0) if cols else (np.array([]), np.array([]))
    iqr = q3 - q1
    # a column whose quartiles coincide (mostly one value) would call every other value an outlier
    usable = iqr > 0
    with np.errstate(invalid="ignore"):
        outside = (arr < q1 - opts.factor * iqr) | (arr > q3 + opts.factor * iqr)
    counts = outside.sum(axis=0)
    present = np.maximum((~np.isnan(arr)).sum(axis=0), 1)
    frac = np.where(usable, counts / present, 0.0)
    details = {c: {"outliers": int(counts[i]) if usable[i] else 0, "fraction": float(frac[i]),
                   "low": float(q1[i] - opts.factor * iqr[i]), "high": float(q3[i] + opts.factor * iqr[i])}
               for i, c in enumerate(cols)}
    failing = [c for i, c in enumerate(cols) if frac[i] > opts.max_fraction]
    numbers = {"factor": opts.factor, "max_fraction": opts.max_fraction, "columns": details,
               "failing": failing, "skipped": [c for i, c in enumerate(cols) if not usable[i]]}
    if not failing:
        return _Finding(False, f"no column has more than {_pct(opts.max_fraction)} outliers", numbers)
    listed = ", ".join(f"{c} {_pct(details[c]['fraction'])} ({details[c]['outliers']} values)" for c in failing)
    return _Finding(
        True, f"{len(failing)} column(s) have more than {_pct(opts.max_fraction)} values beyond "
        f"{opts.factor:g} IQR of the quartiles: {listed}", numbers,
        "check those values, raise data.validation.outliers.factor or max_fraction, or set "
        "data.validation.outliers.action: off")


def _check_duplicates(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec) -> _Finding:
    limit = cfg.data.validation.duplicates.max_fraction
    # an id column makes every row unique; the same record under two ids is still a duplicate
    cols = [c for c in df.columns if c != spec.id_column]
    count = int(pd.Series(row_hashes(df[cols])).duplicated().sum())
    frac = count / len(df) if len(df) else 0.0
    numbers = {"duplicates": count, "fraction": frac, "max_fraction": limit}
    if frac <= limit:
        return _Finding(False, f"{count} duplicate rows ({_pct(frac)}, max {_pct(limit)})", numbers)
    return _Finding(
        True, f"{count} of {len(df)} rows ({_pct(frac)}) repeat an earlier row (max {_pct(limit)})",
        numbers, "drop the duplicates (SELECT DISTINCT in data.query), raise "
        "data.validation.duplicates.max_fraction, or set data.validation.duplicates.action: off")


def _check_class_balance(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec) -> _Finding:
    if spec.task != "classification":
        return _Finding(False, "not a classification task", {}, applicable=False)
    limit = cfg.data.validation.class_balance.min_fraction
    shares = df[spec.target].value_counts(normalize=True, dropna=True)
    numbers = {"shares": {str(k): float(v) for k, v in shares.items()}, "min_fraction": limit}
    if len(shares) == 0:
        return _Finding(True, f"the target '{spec.target}' has no values", numbers,
                        "check that the labels arrive (feedback) or data.source / data.query", force_fail=True)
    if len(shares) < 2:
        only = shares.index.tolist()[0]
        return _Finding(True, f"the target '{spec.target}' has a single class ({only!r})", numbers,
                        "a classifier needs two classes: check data.source / data.query",
                        force_fail=True)
    rarest, share = shares.index.tolist()[-1], float(shares.iloc[-1])
    numbers["rarest"] = str(rarest)
    if share >= limit:
        return _Finding(False, f"rarest class {rarest!r} holds {_pct(share)} of rows", numbers)
    return _Finding(
        True, f"rarest class {rarest!r} of '{spec.target}' holds {_pct(share)} of rows "
        f"(min {_pct(limit)})", numbers,
        "collect more rows of that class, lower data.validation.class_balance.min_fraction, "
        "or set data.validation.class_balance.action: warn")


Check = Callable[[pd.DataFrame, PilotConfig, FeatureSpec], _Finding]

# name -> check; the name is also the key of its settings under data.validation
CHECKS: dict[str, Check] = {
    "missing": _check_missing,
    "types": _check_types,
    "ranges": _check_ranges,
    "outliers": _check_outliers,
    "duplicates": _check_duplicates,
    "class_balance": _check_class_balance,
}


def validate(df: pd.DataFrame, cfg: PilotConfig, features: FeatureSpec) -> ValidationReport:
    """Run every check in :data:`CHECKS` with the actions configured in ``data.validation``.

    Args:
        df: the data to check.
        cfg: the config (``data.validation``, ``data.schema``).
        features: the resolved feature roles (from :func:`resolve_features`).

    Returns:
        The report; ``report.ok`` is False when a ``fail`` check found a problem.

    Raises:
        DataError: ``data.schema`` or ``data.validation.ranges.columns`` names a column
            that is not in the data.
    """
    results = []
    for name, check in CHECKS.items():
        action = getattr(cfg.data.validation, name).action
        if action == "off":
            results.append(CheckResult(name, "off", f"disabled by data.validation.{name}.action: off"))
            continue
        found = check(df, cfg, features)
        if not found.applicable:
            status: Status = "off"
        elif not found.problem:
            status = "pass"
        else:
            status = "fail" if found.force_fail else action
        results.append(CheckResult(name, status, found.message, found.numbers, found.fix))
    return ValidationReport(results)


def _reference_spread(profile: dict[str, Any]) -> tuple[float, float] | None:
    """Median and spread (IQR, else std, else range) of a reference column profile."""
    sample, cdf = profile.get("sample"), profile.get("sample_cdf")
    if not sample or not cdf or len(sample) != len(cdf):
        return None
    q25, q50, q75 = np.interp([0.25, 0.5, 0.75], np.asarray(cdf, float), np.asarray(sample, float))
    spread = next((float(v) for v in (q75 - q25, profile.get("std") or 0.0,
                                      (profile.get("max") or 0.0) - (profile.get("min") or 0.0)) if v and v > 0), 0.0)
    return (float(q50), spread) if spread > 0 else None


def _spread(values: np.ndarray) -> tuple[float, float] | None:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    spread = next((float(v) for v in (q75 - q25, values.std(), np.ptp(values)) if v > 0), 0.0)
    return (float(q50), spread) if spread > 0 else None


def _distance(batch: tuple[float, float], ref: tuple[float, float]) -> float:
    """How far a column is from a reference, in factors: spread ratio or median shift in spreads."""
    ratio = batch[1] / ref[1]
    return max(ratio, 1 / ratio, abs(batch[0] - ref[0]) / ref[1])


# fewer non-missing values than this say nothing reliable about a column's scale
_MIN_VALUES = 20


def check_scale(df: pd.DataFrame, cfg: PilotConfig, spec: FeatureSpec, reference: dict[str, Any]) -> CheckResult:
    """Retraining data against the champion's reference profile: no column far off its scale.

    A numeric column whose spread (IQR) grew or shrank, or whose median moved, by more than
    ``data.validation.scale.max_factor`` reference spreads is reported; when two such columns
    each match the *other's* reference, they are reported as swapped.

    Args:
        df: the new labelled rows.
        cfg: the config (``data.validation.scale``).
        spec: the champion's feature roles.
        reference: the champion's reference profile (``monitoring.reference``).

    Returns:
        The ``scale`` check's result (``fail``/``warn`` per its action, ``off`` when disabled).
    """
    opts = cfg.data.validation.scale
    if opts.action == "off":
        return CheckResult("scale", "off", "disabled by data.validation.scale.action: off")
    columns = reference.get("columns") or {}
    stats: dict[str, tuple[float, float]] = {}
    refs: dict[str, tuple[float, float]] = {}
    for col in spec.numeric:
        if col not in df.columns or col not in columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        values = values[np.isfinite(values)]
        ref = _reference_spread(columns[col])
        got = _spread(values) if len(values) >= _MIN_VALUES else None
        if ref is not None and got is not None:
            stats[col], refs[col] = got, ref
    far = {c: _distance(stats[c], refs[c]) for c in stats if _distance(stats[c], refs[c]) > opts.max_factor}
    swapped: list[tuple[str, str]] = []
    for i, a in enumerate(sorted(far)):
        for b in sorted(far)[i + 1:]:
            if max(_distance(stats[a], refs[b]), _distance(stats[b], refs[a])) <= 2.0:
                swapped.append((a, b))
    in_pairs = {c for pair in swapped for c in pair}
    numbers = {"max_factor": opts.max_factor, "columns": {c: {"median": stats[c][0], "spread": stats[c][1],
                                                              "reference_median": refs[c][0],
                                                              "reference_spread": refs[c][1]} for c in stats},
               "failing": sorted(far), "swapped": [list(p) for p in swapped]}
    if not far:
        return CheckResult("scale", "pass", f"{len(stats)} numeric column(s) within {opts.max_factor:g}x of the "
                           "reference scale", numbers)
    problems = [f"columns '{a}' and '{b}' look swapped: each matches the other's reference" for a, b in swapped]
    problems += [
        f"column '{c}' is {far[c]:.1f}x off its reference scale (median {stats[c][0]:g}, spread {stats[c][1]:g}; "
        f"reference median {refs[c][0]:g}, spread {refs[c][1]:g})" for c in sorted(far) if c not in in_pairs]
    return CheckResult("scale", opts.action, "; ".join(problems), numbers,
                       "fix the feed (units, column order) before it reaches the model, raise "
                       "data.validation.scale.max_factor, or set data.validation.scale.action: warn")

"""The home side of a device report: check it, pool it, and measure from its counts.

A report (see :mod:`modelpilot.edge.agent`) holds counts only: per feature the counts over
the reference's bins (numeric) or categories (+ ``other``), each followed by the missing
count; the same for the score and the predicted label; confusion counts or error sums where
labels arrived. The shares a drift method compares are those counts over the rows, exactly
the shares :mod:`modelpilot.monitoring.drift` computes from raw rows — so PSI, Jensen–Shannon
and χ² from a report equal the figures from the rows themselves (tested). KS and Wasserstein
need the values themselves and are not offered here. ``auto`` on counts keeps the rule of
:mod:`modelpilot.monitoring.drift.auto` for categorical columns and applies it to the
numeric bins too: a column drifts when its Jensen–Shannon distance is at least 0.07 AND
its χ² p-value, Benjamini–Hochberg-adjusted over the columns, is below 0.05 — so sampling
noise on a small window (which alone moves a distance over 10 bins past 0.07 at a few
hundred rows) does not flag a device.
Performance from confusion counts gives accuracy and F1 exactly, from error sums RMSE, MAE
and R²; ROC AUC and log loss need per-row scores and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from modelpilot.errors import RequestError
from modelpilot.monitoring.drift import DriftResult, get_drift_method
from modelpilot.monitoring.drift.base import chi2_two_sample, js_distance, psi

REPORT_FORMAT = "modelpilot.edge-report/1"
EDGE_METHODS = ("auto", "psi", "jensenshannon", "chi2")
AUTO_THRESHOLD, AUTO_ALPHA = 0.07, 0.05
_COUNTS = ("numeric", "categorical")


class MalformedReport(RequestError):
    """A device report that is not what the agent sends (HTTP 422)."""


def expected_lengths(profile: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """The length of each count vector a report on this device profile must have."""
    return {
        "numeric": {n: len(e) + 2 for n, e in profile["numeric"].items()},
        "categorical": {n: len(c) + 2 for n, c in profile["categorical"].items()},
    }


def check_report(doc: Any, device: str, profile: Mapping[str, Any]) -> dict[str, Any]:
    """The report, checked against the device and the version's device profile.

    Raises:
        MalformedReport: naming the first problem found.
    """
    def bad(what: str) -> MalformedReport:
        return MalformedReport(f"malformed edge report from {device!r}: {what}; send what the "
                               "modelpilot edge agent writes (format modelpilot.edge-report/1)")

    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        raise bad(f"not a JSON object with format {REPORT_FORMAT!r}")
    if doc.get("device") != device:
        raise bad(f"it names device {doc.get('device')!r} but was sent to /v1/edge/{device}/report")
    for key in ("seq", "version", "rows"):
        if not isinstance(doc.get(key), int) or isinstance(doc.get(key), bool) or doc[key] < (1 if key != "rows" else 0):
            raise bad(f"'{key}' must be a positive integer, got {doc.get(key)!r}")
    rows = doc["rows"]
    for section, lengths in expected_lengths(profile).items():
        got = doc.get(section)
        if not isinstance(got, dict) or set(got) != set(lengths):
            raise bad(f"'{section}' must hold counts for exactly {sorted(lengths)}")
        for name, n in lengths.items():
            _check_counts(got[name], n, rows, f"{section}.{name}", bad)
    for key, spec in (("score", profile.get("score")), ("prediction", profile.get("prediction"))):
        if spec is not None and doc.get(key) is not None:
            _check_counts(doc[key], len(spec) + 2, rows, key, bad)
    if not isinstance(doc.get("errors", {}), dict) or not isinstance(doc.get("labelled", {}), dict):
        raise bad("'errors' and 'labelled' must be objects")
    return doc


def _check_counts(values: Any, n: int, rows: int, where: str, bad: Any) -> None:
    if (not isinstance(values, list) or len(values) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)):
        raise bad(f"'{where}' must be {n} non-negative integer counts")
    if sum(values) != rows:
        raise bad(f"'{where}' counts sum to {sum(values)}, not to the {rows} rows of the report")


# --------------------------------------------------------------------------- pooling


def pool(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The sum of reports on ONE version: counts added, latency histograms added, labelled
    counts merged. None for no reports."""
    out: dict[str, Any] | None = None
    for r in reports:
        if out is None:
            out = {"rows": 0, "errors": {}, "cpu_seconds": 0.0, "numeric": {}, "categorical": {},
                   "score": None, "prediction": None, "labelled": {}, "latency_histogram": [],
                   "devices": set(), "version": r["version"]}
        out["rows"] += r["rows"]
        out["cpu_seconds"] += float(r.get("cpu_seconds") or 0.0)
        out["devices"].add(r.get("device"))
        for k, v in (r.get("errors") or {}).items():
            out["errors"][k] = out["errors"].get(k, 0) + int(v)
        for section in _COUNTS:
            for name, counts in r[section].items():
                out[section][name] = _sum(out[section].get(name), counts)
        for key in ("score", "prediction", "latency_histogram"):
            if r.get(key):
                out[key] = _sum(out[key] or None, r[key])
        for seg, cell in (r.get("labelled") or {}).items():
            out["labelled"][seg] = _merge_labelled(out["labelled"].get(seg), cell)
    if out is not None:
        out["devices"] = sorted(d for d in out["devices"] if d)
    return out


def _sum(a: list[int] | None, b: list[int]) -> list[int]:
    return list(b) if a is None else [x + y for x, y in zip(a, b, strict=True)]


def _merge_labelled(a: Any, b: Any) -> Any:
    if isinstance(b, list) and b and isinstance(b[0], list):  # classification: [[true, pred, n], ...]
        cells: dict[tuple[str, str], int] = {(t, p): n for t, p, n in (a or [])}
        for t, p, n in b:
            cells[(t, p)] = cells.get((t, p), 0) + int(n)
        return [[t, p, n] for (t, p), n in cells.items()]
    return list(b) if a is None else [x + y for x, y in zip(a, b, strict=True)]  # regression sums


# --------------------------------------------------------------------------- drift


def _shares(counts: list[int], rows: int) -> np.ndarray:
    return np.asarray(counts, dtype=np.float64) / max(rows, 1)


def _reference_shares(spec: Mapping[str, Any]) -> np.ndarray:
    # the same vectors monitoring.drift.base builds (numeric_buckets / categorical_buckets)
    if spec["type"] == "numeric":
        miss = spec["missing_fraction"]
        return np.append(np.asarray(spec["proportions"]) * (1.0 - miss), miss)
    return np.asarray([*spec["proportions"], spec["other"], spec["missing_fraction"]], dtype=np.float64)


def column_drift(method: str, threshold: float | None, spec: Mapping[str, Any], counts: list[int],
                 rows: int) -> DriftResult:
    """One column's drift from its counts, with ``method`` (psi, jensenshannon or chi2)."""
    scorer = get_drift_method(method, **({} if threshold is None else {"threshold": threshold}))
    t = scorer.threshold_
    ref, cur = _reference_shares(spec), _shares(counts, rows)
    if method == "chi2":
        stat, p = chi2_two_sample(ref, int(spec["count"]), cur, rows)
        return DriftResult(stat, p, p < t, method, t)
    value = psi(ref, cur) if method == "psi" else js_distance(ref, cur)
    return DriftResult(value, None, value >= t, method, t)


def edge_method(name: str) -> str:
    """The method used on aggregates: the configured one when it works on counts, else auto."""
    return name if name in EDGE_METHODS else "auto"


def _auto(specs: Mapping[str, Any], counts: dict[str, list[int]], rows: int, threshold: float | None,
          adjust: bool = True) -> dict[str, DriftResult]:
    from modelpilot.monitoring.drift import adjust_p_values

    t = AUTO_THRESHOLD if threshold is None else threshold
    names = list(counts)
    dist = [column_drift("jensenshannon", t, specs[n], counts[n], rows).statistic for n in names]
    p = np.asarray([column_drift("chi2", AUTO_ALPHA, specs[n], counts[n], rows).p_value for n in names], dtype=np.float64)
    p_adj = adjust_p_values(p, "bh") if adjust else p
    return {n: DriftResult(d, float(q), bool(d >= t and q < AUTO_ALPHA), "jensenshannon+chi2", t)
            for n, d, q in zip(names, dist, p_adj, strict=True)}


def drift_from_counts(reference: Mapping[str, Any], agg: Mapping[str, Any], method: str = "psi",
                      threshold: float | None = None) -> dict[str, Any]:
    """Drift of pooled counts against the version's reference profile.

    Returns:
        ``columns`` (name → statistic, p_value, drifted, method, threshold), ``n_columns``,
        ``n_drifted``, ``share_drifted``, ``drifted_columns`` and ``prediction_drift`` with
        ``score`` / ``label`` entries, like :func:`modelpilot.monitoring.drift_report`.
    """
    method = edge_method(method)
    rows = int(agg["rows"])
    specs = reference["columns"]
    counts = {n: c for section in _COUNTS for n, c in agg[section].items()}
    results = (_auto(specs, counts, rows, threshold) if method == "auto"
               else {n: column_drift(method, threshold, specs[n], c, rows) for n, c in counts.items()})
    columns = {n: {**r.to_dict(), "type": specs[n]["type"]} for n, r in results.items()}
    drifted = [n for n, c in columns.items() if c["drifted"]]
    pred: dict[str, Any] = {"score": None, "label": None}
    for key, out in (("score", "score"), ("prediction", "label")):
        spec = reference.get(key)
        if spec is not None and agg.get(key):
            res = (_auto({key: spec}, {key: agg[key]}, rows, threshold, adjust=False)[key] if method == "auto"
                   else column_drift(method, threshold, spec, agg[key], rows))
            pred[out] = res.to_dict()
    return {
        "method": method, "n_reference": int(reference.get("rows", 0)), "n_current": rows,
        "columns": columns, "n_columns": len(columns), "n_drifted": len(drifted),
        "share_drifted": len(drifted) / len(columns) if columns else 0.0, "drifted_columns": drifted,
        "prediction_drift": pred,
    }


# --------------------------------------------------------------------------- performance


def performance_from_counts(cell: Any, task: str, classes: list[Any] | None = None) -> dict[str, float]:
    """Metrics of one labelled cell: confusion ``[[true, pred, n], ...]`` or regression sums
    ``[n, Σerr, Σ|err|, Σerr², Σy, Σy²]``."""
    if task == "classification":
        n = sum(int(c[2]) for c in cell)
        if n == 0:
            return {}
        labels = [str(c) for c in classes] if classes else sorted({c[0] for c in cell} | {c[1] for c in cell})

        def f1(label: str) -> float:
            tp = sum(c[2] for c in cell if c[0] == label and c[1] == label)
            fp = sum(c[2] for c in cell if c[0] != label and c[1] == label)
            fn = sum(c[2] for c in cell if c[0] == label and c[1] != label)
            return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0

        correct = sum(int(c[2]) for c in cell if c[0] == c[1])
        f1_value = f1(labels[1]) if len(labels) == 2 else float(np.mean([f1(lab) for lab in labels]))
        return {"accuracy": correct / n, "f1": f1_value, "n": n}
    n, _, s_abs, s_sq, s_y, s_y2 = cell
    if n == 0:
        return {}
    out = {"rmse": float(np.sqrt(s_sq / n)), "mae": float(s_abs / n), "n": int(n)}
    ss_tot = s_y2 - s_y * s_y / n
    if n >= 2 and ss_tot > 0:
        out["r2"] = float(1.0 - s_sq / ss_tot)
    return out


def summarize_counts(agg: Mapping[str, Any], reference: Mapping[str, Any], *, task: str, metric: str,
                     classes: list[Any] | None, method: str, threshold: float | None,
                     min_samples: int, window_end: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A monitoring summary (the dict :class:`~modelpilot.policy.triggers.MonitoringSummary`
    reads) and the drift details, from pooled counts."""
    summary: dict[str, Any] = {
        "metric": metric, "version": agg["version"], "n_predictions": int(agg["rows"]), "n_labelled": 0,
        "drift_share": None, "drifted_features": [], "prediction_drift": None, "performance": None,
        "segment_performance": {}, "estimated_performance": None, "window_end": window_end,
        "devices": agg.get("devices", []), "source": "edge",
    }
    details: dict[str, Any] = {}
    if agg["rows"] >= min_samples:
        report = drift_from_counts(reference, agg, method, threshold)
        details["drift"] = report
        summary.update(drift_share=report["share_drifted"], drifted_features=report["drifted_columns"],
                       feature_drift={n: c["statistic"] for n, c in report["columns"].items()})
        score = report["prediction_drift"]["score"]
        summary["prediction_drift"] = score["statistic"] if score else None
    labelled = agg.get("labelled") or {}
    overall = performance_from_counts(labelled["*"], task, classes) if "*" in labelled else {}
    if overall:
        summary["n_labelled"] = int(overall["n"])
        summary["performance"] = overall.get(metric)
        summary["segment_performance"] = {
            seg: {"value": m[metric], "n": int(m["n"])}
            for seg, cell in labelled.items() if seg != "*"
            for m in [performance_from_counts(cell, task, classes)] if metric in m
        }
    return summary, details

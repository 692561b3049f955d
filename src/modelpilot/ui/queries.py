"""What the pages show, read and aggregated on the server.

The monitoring page must stay fast over a year of hourly reports (~8,760 rows): one SQL
query reads the reports' columns and raw JSON summaries, orjson parses them, and pandas
averages the plotted numbers into at most :data:`MAX_BUCKETS` time buckets
(``benchmarks/bench_ui.py`` measures it). The browser never receives
more than a few hundred points per series. The prediction distribution comes from the
prediction log itself, aggregated per bucket by DuckDB.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
import sqlalchemy as sa

from modelpilot.errors import ModelNotFound
from modelpilot.store import schema as t

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig
    from modelpilot.store import Store

MAX_BUCKETS = 400
# bucket widths we round up to, so the axis reads in whole units
_WIDTHS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400]
# events marked on the monitoring page's time axes
MARKED_KINDS = ("trigger_fired", "retrain_started", "retrain_finished", "promoted", "gate_rejected", "rolled_back")
_KEY_SAMPLE = 50  # recent reports whose summaries name the features and segments plotted
_M = t.monitoring_reports.c
_SCALARS = ("drift_share", "prediction_drift", "performance", "estimated_performance")


@dataclass
class MonitoringSeries:
    """The monitoring reports of one model, bucketed in time.

    ``frame`` is indexed by bucket start (UTC) with columns ``drift_share``,
    ``prediction_drift``, ``performance``, ``estimated_performance``, ``n_predictions``,
    ``n_labelled``, ``version`` (the last served in the bucket), ``drift:<feature>`` and
    ``segment:<col=value>``.
    """

    frame: pd.DataFrame
    features: list[str]
    segments: list[str]
    n_reports: int
    bucket_seconds: int | None  # None: one point per report
    latest: dict[str, Any] = field(default_factory=dict)


def bucket_width(span_seconds: float, n: int, max_buckets: int = MAX_BUCKETS) -> int | None:
    """The bucket width (seconds) that keeps ``n`` points spread over a span under the cap.

    >>> bucket_width(365 * 86400, 8760), bucket_width(3600, 20)
    (86400, None)
    """
    if n <= max_buckets:
        return None
    need = span_seconds / max_buckets
    return next((w for w in _WIDTHS if w >= need), _WIDTHS[-1])


def _recent_keys(store_conn: Any, model: str) -> tuple[list[str], list[str], dict[str, Any]]:
    rows = store_conn.execute(
        sa.select(_M.summary).where(_M.model == model).order_by(_M.created_at.desc(), _M.id.desc()).limit(_KEY_SAMPLE)
    ).scalars().all()
    features: dict[str, None] = {}
    segments: dict[str, None] = {}
    for summary in rows:
        features.update(dict.fromkeys(sorted((summary or {}).get("feature_drift") or {})))
        segments.update(dict.fromkeys(sorted((summary or {}).get("segment_performance") or {})))
    return sorted(features), sorted(segments), (rows[0] if rows else {})


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while parsing thousands of small, acyclic JSON documents.

    Their allocations trigger collections that find nothing to free; measured, they made
    the parse of a year of reports 2-5x slower.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def monitoring_series(store: Store, model: str, since: datetime | None = None) -> MonitoringSeries:
    """One model's monitoring reports as bucketed series (see :class:`MonitoringSeries`)."""
    with store.reader() as conn:
        features, segments, latest = _recent_keys(conn, model)
        query = sa.select(
            sa.func.coalesce(_M.window_end, _M.created_at), _M.version, _M.n_predictions, _M.n_labelled,
            # the raw JSON text: orjson parses it ~10x faster than json.loads, and faster than
            # SQLite's JSON_EXTRACT, which re-parses the document once per extracted field
            sa.type_coerce(_M.summary, sa.Text),
        ).where(_M.model == model)
        if since is not None:
            query = query.where(_M.created_at >= since)
        rows = conn.execute(query.order_by(_M.created_at, _M.id)).all()
    n = len(rows)
    if n == 0:
        return MonitoringSeries(pd.DataFrame(), features, segments, 0, None, latest or {})
    times, versions, n_pred, n_lab, raw = zip(*rows, strict=True)
    with _paused_gc():
        docs = [orjson.loads(d) if isinstance(d, str | bytes) else (d or {}) for d in raw]
    cols: dict[str, Any] = {
        "version": versions, "n_predictions": n_pred, "n_labelled": n_lab,
        **{key: [d.get(key) for d in docs] for key in _SCALARS},
    }
    drift = [d.get("feature_drift") or {} for d in docs]
    cols.update({f"drift:{f}": [x.get(f) for x in drift] for f in features})
    segs = [d.get("segment_performance") or {} for d in docs]
    cols.update({f"segment:{g}": [(x.get(g) or {}).get("value") for x in segs] for g in segments})
    index = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True), name="time")
    frame = pd.DataFrame(cols, index=index).sort_index()
    numeric = frame.drop(columns=["version"]).astype("float64")
    span = (frame.index[-1] - frame.index[0]).total_seconds()
    width = bucket_width(span, n)
    if width is None:
        return MonitoringSeries(numeric.assign(version=frame["version"]), features, segments, n, None, latest or {})
    grouped = numeric.resample(f"{width}s")
    out = grouped.mean()
    out[["n_predictions", "n_labelled"]] = grouped[["n_predictions", "n_labelled"]].sum()
    out["version"] = frame["version"].resample(f"{width}s").last()
    out = out.dropna(how="all", subset=[c for c in numeric.columns if c not in ("n_predictions", "n_labelled")])
    return MonitoringSeries(out, features, segments, n, width, latest or {})


def prediction_distribution(
    artifacts: ArtifactStore, model: str, since: datetime | None, bucket_seconds: int | None
) -> pd.DataFrame:
    """Per time bucket: score quantiles and the share of each predicted label (DuckDB).

    Returns columns ``bucket, n, p10, p25, p50, p75, p90`` plus ``share:<label>`` for the
    five most frequent labels; empty when nothing was logged.
    """
    from modelpilot.serving.logreader import PredictionLogReader

    reader = PredictionLogReader(artifacts, model)
    try:
        files = reader.files("predictions", since)
        if not files:
            return pd.DataFrame()
        width = int(bucket_seconds or 0)
        if not width:
            span = reader._query(f"SELECT min(ts) AS lo, max(ts) AS hi, count(*) AS n FROM {reader._scan(files)}")
            lo, hi = span["lo"].iloc[0], span["hi"].iloc[0]
            seconds = (hi - lo).total_seconds() if pd.notna(lo) else 0.0
            width = next((w for w in (1, 2, 5, 10, 15, 30, *_WIDTHS) if w >= seconds / 60), _WIDTHS[-1])
        where, params = ("WHERE role = 'primary'", [])
        if since is not None:
            where += " AND ts >= ?"
            params.append(since)
        scan = f"(SELECT * FROM {reader._scan(files)} {where})"
        bucket = f"to_timestamp(floor(epoch(ts) / {width}) * {width})"
        stats = reader._query(
            f"SELECT {bucket} AS bucket, count(*) AS n, "
            "quantile_cont(score, [0.1, 0.25, 0.5, 0.75, 0.9]) AS q "
            f"FROM {scan} GROUP BY 1 ORDER BY 1",
            params,
        )
        labels = reader._query(
            f"SELECT {bucket} AS bucket, CAST(prediction AS VARCHAR) AS label, count(*) AS n "
            f"FROM {scan} GROUP BY 1, 2",
            params,
        )
    finally:
        reader.close()
    if stats.empty:
        return stats
    q = pd.DataFrame(stats["q"].tolist(), columns=["p10", "p25", "p50", "p75", "p90"])
    out = pd.concat([stats[["bucket", "n"]], q], axis=1)
    top = labels.groupby("label")["n"].sum().nlargest(5).index
    shares = labels[labels["label"].isin(top)].pivot_table(index="bucket", columns="label", values="n", aggfunc="sum")
    shares = shares.div(stats.set_index("bucket")["n"], axis=0).add_prefix("share:")
    return out.merge(shares.reset_index(), on="bucket", how="left")


def health(cfg: PilotConfig, store: Store, model: str) -> dict[str, Any]:
    """The latest drift and performance of ``model`` against the trigger thresholds.

    Returns ``{"status": "ok"|"watch"|"alert"|"unknown", "drift", "performance",
    "reference", "checks": [{"name", "status", "text"}], "report_time"}``.
    """
    reports = store.monitoring_reports(model, limit=1)
    if not reports:
        return {"status": "unknown", "checks": [], "report_time": None}
    rep = reports[0]
    s = rep.summary
    metric = s.get("metric") or cfg.primary_metric
    trig = cfg.triggers
    checks: list[dict[str, Any]] = []
    share = s.get("drift_share")
    if share is not None:
        bad = share >= trig.feature_drift.threshold
        checks.append({"name": "drift", "status": "watch" if bad else "ok",
                       "text": f"{share:.0%} of features drifted (threshold {trig.feature_drift.threshold:.0%})"})
    reference = _reference(store, model, metric, rep.version)
    perf = s.get("performance")
    if perf is not None and reference is not None:
        from modelpilot.metrics import higher_is_better

        drop = (reference - perf) if higher_is_better(metric) else (perf - reference)
        limit = trig.performance_drop.threshold
        status = "alert" if drop > limit else ("watch" if drop > limit / 2 else "ok")
        checks.append({"name": "performance", "status": status,
                       "text": f"{metric} {perf:.4f} vs reference {reference:.4f} (drop {drop:+.4f}, threshold {limit})"})
    elif perf is None:
        checks.append({"name": "performance", "status": "unknown", "text": "no labels in the latest window"})
    order = {"unknown": 0, "ok": 1, "watch": 2, "alert": 3}
    worst = max((c["status"] for c in checks if c["status"] != "unknown"), key=order.__getitem__, default="unknown")
    return {"status": worst, "drift": share, "performance": perf, "reference": reference, "metric": metric,
            "estimated": s.get("estimated_performance"), "checks": checks, "report_time": rep.created_at}


def _reference(store: Store, model: str, metric: str, version: int | None) -> float | None:
    state = store.get_state("controller", model) or {}
    ref = ((state.get("triggers") or {}).get("reference") or {}).get("value")
    if ref is not None:
        return float(ref)
    if version is None:
        return None
    try:
        value = store.get_version(model, version).metrics.get(metric)
    except ModelNotFound:  # a report of a version that was never registered here
        return None
    return None if value is None else float(value)


def rollout_state(store: Store, model: str, cfg: PilotConfig | None = None) -> dict[str, Any] | None:
    """The rollout in progress (``rollout`` state namespace) or a retrain in progress.

    Returns ``{"kind": "rollout"|"retrain", "strategy", "status", "candidate"?, "champion"?,
    "traffic": {"v<N>": share}, "arms"?, ...}`` or None when nothing is in progress.
    """
    try:
        from modelpilot.rollout.state import describe
    except ImportError:  # an install without progressive rollouts: read the raw state
        rollout = store.get_state("rollout", model)
    else:
        rollout = describe(store, model, cfg)
    if rollout and rollout.get("status", "in_progress") == "in_progress":
        traffic = rollout.get("traffic")
        if not isinstance(traffic, dict):
            share = float(rollout.get("share") or 0.0)
            traffic = {str(rollout.get("champion")): 1.0 - share, str(rollout.get("candidate")): share}
        return {"kind": "rollout", **rollout, "traffic": {f"v{k}": float(v) for k, v in traffic.items()}}
    ctl = store.get_state("controller", model) or {}
    if ctl.get("phase") == "retraining":
        job = ctl.get("retrain") or {}
        return {"kind": "retrain", "strategy": "retrain", "status": "retraining", "reason": job.get("reason"),
                "started_at": job.get("started_at")}
    return None


def parse_time(value: str | None) -> datetime | None:
    """An ISO time from a query string (naive = UTC); None for empty or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30), "365d": timedelta(days=365)}

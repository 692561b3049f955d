"""``/metrics`` series about each champion, read from the store when Prometheus scrapes.

The controller may run in another process (``modelpilot controller``) or another replica,
so these series come from what it stored — the latest monitoring report of the champion
and the newest registered version — not from memory. Reads are cached for ``ttl`` seconds,
so a scrape every few seconds costs at most one store read per model per ``ttl``.

Series (all gauges; ``segment="all"`` is the whole window, others are ``column=value``):

* ``modelpilot_champion_performance{model,version,metric,segment}`` — measured on the
  labelled rows of the last monitoring window;
* ``modelpilot_champion_estimated_performance{model,version,metric,segment}`` — estimated
  without labels (confidence-based, classification);
* ``modelpilot_champion_labelled_rows{model,version,segment}`` — the labelled rows behind
  each measured value (alert only when enough);
* ``modelpilot_monitoring_report_timestamp_seconds{model}`` — when the last report was made;
* ``modelpilot_last_retrain_timestamp_seconds{model}`` and
  ``modelpilot_seconds_since_last_retrain{model}`` — the newest registered version
  (initial training or retrain);
* ``modelpilot_webhook_deliveries{webhook,status}`` — the webhook outbox's rows by status
  (``pending``, ``delivered``, ``failed``; docs/webhooks.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PERFORMANCE = "modelpilot_champion_performance"
ESTIMATED = "modelpilot_champion_estimated_performance"
LABELLED = "modelpilot_champion_labelled_rows"
REPORT_TIME = "modelpilot_monitoring_report_timestamp_seconds"
RETRAIN_TIME = "modelpilot_last_retrain_timestamp_seconds"
SINCE_RETRAIN = "modelpilot_seconds_since_last_retrain"
DELIVERIES = "modelpilot_webhook_deliveries"


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        PERFORMANCE: GaugeMetricFamily(
            PERFORMANCE, "Champion's metric measured on labelled live traffic (last monitoring window)",
            labels=["model", "version", "metric", "segment"]),
        ESTIMATED: GaugeMetricFamily(
            ESTIMATED, "Champion's metric estimated without labels (last monitoring window)",
            labels=["model", "version", "metric", "segment"]),
        LABELLED: GaugeMetricFamily(
            LABELLED, "Labelled rows behind the measured performance", labels=["model", "version", "segment"]),
        REPORT_TIME: GaugeMetricFamily(
            REPORT_TIME, "Unix time of the champion's last monitoring report", labels=["model"]),
        RETRAIN_TIME: GaugeMetricFamily(
            RETRAIN_TIME, "Unix time the newest version was registered (training or retraining)",
            labels=["model"]),
        SINCE_RETRAIN: GaugeMetricFamily(
            SINCE_RETRAIN, "Seconds since the newest version was registered", labels=["model"]),
        DELIVERIES: GaugeMetricFamily(
            DELIVERIES, "Webhook deliveries in the outbox by webhook and status", labels=["webhook", "status"]),
    }


class ChampionCollector(Collector):
    """A Prometheus collector over the store (see the module docstring); thread-safe.

    Args:
        store: the metadata store.
        ttl: seconds a store read is reused between scrapes.
    """

    def __init__(self, store: Any, *, ttl: float = 10.0) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]]] = (-float("inf"), [])
        self._deliveries: dict[tuple[str, str], int] = {}

    def describe(self) -> list[GaugeMetricFamily]:  # registration must not read the store
        return list(_families().values())

    def _read(self) -> list[dict[str, Any]]:
        with self._lock:
            at, rows = self._cached
            if time.monotonic() - at < self.ttl:
                return rows
            rows = []
            for model in self.store.list_models():
                champion = self.store.get_alias(model, "champion")
                if champion is None:
                    continue
                newest = self.store.latest_version(model)
                reports = [r for r in self.store.monitoring_reports(model, limit=20) if r.version == champion][:1]
                rows.append({"model": model, "champion": champion, "report": reports[0] if reports else None,
                             "retrained": newest.created_at if newest is not None else None})
            self._deliveries = self.store.delivery_counts()
            self._cached = (time.monotonic(), rows)
            return rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        now = datetime.now(UTC)
        for row in self._read():
            model, version = row["model"], str(row["champion"])
            if row["retrained"] is not None:
                families[RETRAIN_TIME].add_metric([model], row["retrained"].timestamp())
                families[SINCE_RETRAIN].add_metric([model], (now - row["retrained"]).total_seconds())
            report = row["report"]
            if report is None:
                continue
            families[REPORT_TIME].add_metric([model], report.created_at.timestamp())
            s = report.summary
            metric = str(s.get("metric") or "")
            if s.get("performance") is not None:
                families[PERFORMANCE].add_metric([model, version, metric, "all"], float(s["performance"]))
                families[LABELLED].add_metric([model, version, "all"], float(s.get("n_labelled") or 0))
            for segment, m in (s.get("segment_performance") or {}).items():
                if m.get("value") is not None:
                    families[PERFORMANCE].add_metric([model, version, metric, segment], float(m["value"]))
                    families[LABELLED].add_metric([model, version, segment], float(m.get("n") or 0))
            if s.get("estimated_performance") is not None:
                families[ESTIMATED].add_metric([model, version, metric, "all"], float(s["estimated_performance"]))
            for segment, value in (s.get("segment_estimated_performance") or {}).items():
                if value is not None:
                    families[ESTIMATED].add_metric([model, version, metric, segment], float(value))
        for (webhook, status), n in sorted(self._deliveries.items()):
            families[DELIVERIES].add_metric([webhook, status], float(n))
        yield from families.values()

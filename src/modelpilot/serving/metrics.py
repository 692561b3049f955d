"""Prometheus metrics of one server app, in its own :class:`CollectorRegistry`.

A registry per app (not the process-global default) lets several apps live in one
process — tests, the demo, a UI mounted next to the API — without "duplicated
timeseries" errors, and lets ``/metrics`` show exactly this app's numbers.

The drift and trigger series are written by whoever computes them (the controller or
the monitoring job running in the same process) through :meth:`ServingMetrics.set_drift`
and :meth:`ServingMetrics.trigger_fired`.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

#: what can compute a served model's predictions, fastest first (serving/cache.py)
RUNTIMES = ("onnxruntime", "fastpath", "sklearn")

# model latency in seconds: fine buckets below 10 ms where a tabular model lives
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)


class ServingMetrics:
    """The server's counters, histograms and gauges; thread-safe (prometheus_client is)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "modelpilot_requests", "API requests by model, version, endpoint and HTTP status",
            ["model", "version", "endpoint", "status"], registry=r,
        )
        self.latency = Histogram(
            "modelpilot_predict_latency_seconds",
            "Time inside the predict handler (parse, validate, predict, serialise)",
            ["model", "version"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.errors = Counter(
            "modelpilot_errors", "Failed requests by error type", ["type", "status"], registry=r
        )
        self.logged_rows = Counter(
            "modelpilot_logged_rows", "Rows written to the prediction log", ["model", "kind"],
            registry=r,
        )
        self.log_write_errors = Counter(
            "modelpilot_log_write_errors", "Failed prediction-log segment writes (retried)",
            registry=r,
        )
        self.log_quarantined_rows = Counter(
            "modelpilot_log_quarantined_rows",
            "Rows set aside because the log cannot encode them", ["model", "kind"], registry=r,
        )
        self.feedback_rows = Counter(
            "modelpilot_feedback_rows",
            "Labels for ids not in the log yet: held, then resolved (written) or dropped",
            ["model", "outcome"], registry=r,
        )
        self.log_pending_rows = Gauge(
            "modelpilot_log_pending_rows", "Rows accepted but not yet written to the log",
            registry=r,
        )
        self.model_version = Gauge(
            "modelpilot_model_version", "Version currently served per model", ["model"], registry=r
        )
        self.runtime = Gauge(
            "modelpilot_model_runtime",
            "1 for the runtime computing each served model's predictions (onnxruntime, "
            "fastpath or sklearn), 0 for the others", ["model", "runtime"], registry=r,
        )
        self.swaps = Counter(
            "modelpilot_model_swaps", "Hot swaps of a served model version", ["model"], registry=r
        )
        self.feature_drift = Gauge(
            "modelpilot_feature_drift", "Latest drift statistic per feature", ["model", "feature"],
            registry=r,
        )
        self.trigger_firings = Counter(
            "modelpilot_trigger_firings", "Retraining triggers that fired", ["model", "trigger"],
            registry=r,
        )
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe_predict(self, model: str, version: int, seconds: float) -> None:
        """Count one successful predict and its latency (label lookups cached)."""
        key = (model, str(version))
        pair = self._children.get(key)
        if pair is None:
            pair = (
                self.requests.labels(model, key[1], "predict", "200"),
                self.latency.labels(model, key[1]),
            )
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def set_runtime(self, model: str, runtime: str) -> None:
        """Mark ``runtime`` as the one serving ``model`` (the others drop to 0)."""
        for name in RUNTIMES:
            self.runtime.labels(model, name).set(1.0 if name == runtime else 0.0)

    def count_request(self, model: str, version: str, endpoint: str, status: int) -> None:
        self.requests.labels(model, version, endpoint, str(status)).inc()

    def count_error(self, type_name: str, status: int) -> None:
        self.errors.labels(type_name, str(status)).inc()

    def set_drift(self, model: str, statistics: Mapping[str, float]) -> None:
        """Publish the latest drift statistic of each feature of ``model``."""
        for feature, value in statistics.items():
            self.feature_drift.labels(model, feature).set(float(value))

    def trigger_fired(self, model: str, trigger: str) -> None:
        self.trigger_firings.labels(model, trigger).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return bytes(generate_latest(self.registry))

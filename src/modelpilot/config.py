"""``pilot.yaml`` → :class:`PilotConfig`, the only place defaults live.

Every section is a pydantic model with ``extra="forbid"``, so a typo is an error that
names the key (and the nearest known one) instead of a setting silently ignored.
Durations are written ``"30s"``, ``"5m"``, ``"2h"``, ``"7d"`` or as a number of seconds.
The loop's waits (trigger cooldowns, the budget's period) are counted in labelled rows by
default (``cooldown_rows``, ``period_rows``), so a policy means the same on any clock; the
time-based key (``cooldown``, ``period``) is accepted instead, never both.

Example::

    >>> cfg = PilotConfig.model_validate({"model": {"name": "churn", "target": "y"}})
    >>> cfg.model.name, cfg.split.validation_fraction
    ('churn', 0.2)
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from modelpilot.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``"90s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"1w"`` or a number.

    >>> parse_duration("5m"), parse_duration(30)
    (300.0, 30.0)
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m', '2h' or '7d'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    raise ValueError(f"expected a duration such as '30s', '5m', '2h' or '7d', got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Action = Literal["fail", "warn", "off"]
# the ROI report's period when the budget counts labelled rows (budget.period_rows)
REPORT_PERIOD_SECONDS = 7 * 86400.0


def time_or_rows(data: Any, time_key: str, rows_key: str) -> Any:
    """A wait given in time (``time_key``) or in labelled rows (``rows_key``), never both.

    Giving the time key alone turns the rows default off; giving both is an error.

    >>> time_or_rows({"cooldown": "1h"}, "cooldown", "cooldown_rows")
    {'cooldown': '1h', 'cooldown_rows': None}
    """
    if not isinstance(data, dict):
        return data
    timed, rows = data.get(time_key) is not None, data.get(rows_key) is not None
    if timed and rows:
        raise ValueError(
            f"{time_key} ({data[time_key]!r}) and {rows_key} ({data[rows_key]!r}) are both set: give the wait either "
            f"in time ({time_key}, e.g. '1h') or in labelled rows ({rows_key}, e.g. 1000), and remove the other"
        )
    if timed:
        return {**data, rows_key: None}
    return data


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- model


class FeaturesConfig(_Section):
    """Which columns are features. ``None`` means inferred from the data's dtypes."""

    numeric: list[str] | None = None
    categorical: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)


#: a model name is a path segment of the prediction log and of URLs: a safe identifier
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


class ModelConfig(_Section):
    name: str
    target: str
    task: Literal["auto", "classification", "regression"] = "auto"
    # import path of any scikit-learn compatible estimator; None = HistGradientBoosting per task
    estimator: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    time_column: str | None = None
    id_column: str | None = None
    segments: list[str] = Field(default_factory=list)
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not MODEL_NAME.fullmatch(value):
            raise ValueError(
                f"model name {value!r} is not a safe identifier: use 1-100 letters, digits, "
                "'_', '-' or '.', starting with a letter or digit (e.g. 'churn' or 'churn-v2')"
            )
        return value


# --------------------------------------------------------------------------- data


class CheckConfig(_Section):
    action: Action = "fail"


class MissingCheck(CheckConfig):
    max_fraction: float = Field(0.2, ge=0, le=1)


class TypesCheck(CheckConfig):
    pass


class RangesCheck(CheckConfig):
    action: Action = "warn"
    # column -> [low, high]; either bound may be null
    columns: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)


class OutliersCheck(CheckConfig):
    action: Action = "warn"
    # a value is an outlier beyond `factor` inter-quartile ranges outside the quartiles
    factor: float = Field(3.0, gt=0)
    max_fraction: float = Field(0.01, ge=0, le=1)


class DuplicatesCheck(CheckConfig):
    action: Action = "warn"
    max_fraction: float = Field(0.05, ge=0, le=1)


class ClassBalanceCheck(CheckConfig):
    # the rarest class must hold at least this share of rows; a single class always fails
    min_fraction: float = Field(0.01, ge=0, le=0.5)


class ScaleCheck(CheckConfig):
    # retraining data only: a numeric column whose spread (IQR) changed, or whose median
    # moved, by more than this factor of the champion's reference spread is refused (a unit
    # change, a scaled feed, swapped columns); drift that models can follow stays well below
    max_factor: float = Field(5.0, gt=1)


class ValidationConfig(_Section):
    missing: MissingCheck = Field(default_factory=MissingCheck)
    types: TypesCheck = Field(default_factory=TypesCheck)
    ranges: RangesCheck = Field(default_factory=RangesCheck)
    outliers: OutliersCheck = Field(default_factory=OutliersCheck)
    duplicates: DuplicatesCheck = Field(default_factory=DuplicatesCheck)
    class_balance: ClassBalanceCheck = Field(default_factory=ClassBalanceCheck)
    scale: ScaleCheck = Field(default_factory=ScaleCheck)


ColumnType = Literal["int", "float", "number", "bool", "category", "string", "datetime"]


class DataConfig(_Section):
    """Where training data comes from: a Parquet/CSV path (or glob), or a DuckDB query."""

    source: str | None = None
    query: str | None = None
    # expected schema: column -> type; type mismatches are a validation check
    schema_: dict[str, ColumnType] = Field(default_factory=dict, alias="schema")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    # how a numeric model.time_column is read: "ordinal" = an ordinal clock (one step per
    # unit, a second of the loop's clock per step); "s", "ms", "us", "ns" = epoch values.
    # A column of dates is used as it is (an epoch unit on it is an error).
    time_unit: Literal["ordinal", "s", "ms", "us", "ns"] = "ordinal"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.source and self.query:
            raise ValueError("give either data.source or data.query, not both")
        return self


class SplitConfig(_Section):
    # "auto": by time when model.time_column is set, else stratified random
    method: Literal["auto", "time", "random"] = "auto"
    validation_fraction: float = Field(0.2, gt=0, lt=1)


# --------------------------------------------------------------------------- training


class ParamSpec(_Section):
    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs 'choices: [...]'")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"an {self.type} parameter needs 'low' <= 'high'")
        return self


class TuningConfig(_Section):
    enabled: bool = True
    n_trials: int = Field(12, ge=1)
    timeout: Duration | None = None
    # metric to optimise; None = evaluation.metric
    metric: str | None = None
    # None = a default space for the default estimator, else no search
    space: dict[str, ParamSpec] | None = None
    pruning: bool = True
    # trials run in parallel through the executor, this many at once
    parallel: int = Field(2, ge=1)
    # cross-validation folds inside the training split for each trial (1 = a holdout)
    folds: int = Field(1, ge=1, le=10)
    # where the Optuna study lives (an RDB URL every worker reaches, e.g.
    # postgresql+psycopg://host/db); None = the PostgreSQL store's database (schema
    # <schema>_optuna), or a temporary journal file for a SQLite store (one machine)
    storage: str | None = None


ClassificationMetric = Literal["accuracy", "roc_auc", "f1", "log_loss"]
RegressionMetric = Literal["rmse", "mae", "r2"]


class EvaluationConfig(_Section):
    # primary metric; None = accuracy (classification) or rmse (regression)
    metric: ClassificationMetric | RegressionMetric | None = None
    overfit_max_gap: float = Field(0.1, ge=0)
    segment_min_rows: int = Field(20, ge=1)
    learning_curve: bool = True
    permutation_repeats: int = Field(3, ge=1)
    importance_max_rows: int = Field(5000, ge=100)


class GatesConfig(_Section):
    # metric -> minimum (for error metrics such as rmse: maximum)
    min_metrics: dict[str, float] = Field(default_factory=dict)
    # the challenger must beat the champion by at least this much on the same holdout
    min_improvement: float = Field(0.0, ge=0)
    # after a located change the stale champion need not be beaten: the challenger replaces
    # it unless it is worse by more than this margin (metric units; relative to the
    # champion's value for error metrics such as rmse), tested at alpha on post-change rows
    non_inferiority_margin: float = Field(0.02, ge=0)
    # the holdout after a change is sized for this power of the non-inferiority test
    power: float = Field(0.8, gt=0, lt=1)
    test: Literal["bootstrap", "mcnemar", "none"] = "bootstrap"
    alpha: float = Field(0.05, gt=0, lt=1)
    n_bootstrap: int = Field(1000, ge=100)
    # no configured segment may lose more than this on the holdout
    max_segment_regression: float = Field(0.05, ge=0)
    max_overfit_gap: float | None = Field(None, ge=0)
    human_approval: bool = False
    approval_timeout: Duration | None = None
    on_approval_timeout: Literal["reject", "approve"] = "reject"
    # refuse a candidate when the holdout's labels disagree with the champion beyond what a
    # full reversal of the concept explains (forged feedback; see policy/guards.py)
    label_guard: bool = True

    @field_validator("min_metrics")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        # checked when the file is read: a misspelt metric would otherwise surface only
        # when the first model reaches the gate, after a whole training run
        from modelpilot.metrics import METRIC_DIRECTIONS

        for name in value:
            if name not in METRIC_DIRECTIONS:
                close = difflib.get_close_matches(name, list(METRIC_DIRECTIONS), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ValueError(
                    f"unknown metric {name!r} under gates.min_metrics; {hint}"
                    f"known metrics: {', '.join(sorted(METRIC_DIRECTIONS))}"
                )
        return value


class CounterfactualConfig(_Section):
    # after each promotion the retired champion scores this share of live requests in
    # shadow (role "retired" in the prediction log) ...
    fraction: float = Field(0.1, ge=0, le=1)
    # ... for this long after the promotion
    period: Duration = 7 * 86400.0


class CostsConfig(_Section):
    compute_per_hour: float = Field(0.10, ge=0)
    storage_per_gb_month: float = Field(0.023, ge=0)
    # what a prediction is worth, for the value side of ROI (docs/policy.md, "Cost and ROI"):
    # classification: earned per correct prediction and/or lost per wrong one ...
    value_per_correct_prediction: float | None = Field(None, ge=0)
    cost_per_error: float | None = Field(None, ge=0)
    # ... regression: lost per unit of absolute error (target units)
    cost_per_unit_error: float | None = Field(None, ge=0)
    # below this cost the ratio value/cost says nothing: ROI is not shown (value and cost are)
    roi_min_cost: float = Field(0.01, ge=0)
    # moving data off a device (edge reports, or raw rows shipped to the cloud instead)
    transfer_per_gb: float = Field(0.09, ge=0)
    counterfactual: CounterfactualConfig = Field(default_factory=CounterfactualConfig)
    currency: str = "USD"

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "value_per_metric_point" in raw:
            raise ValueError(
                "costs.value_per_metric_point was replaced by what a prediction is worth: set "
                "costs.value_per_correct_prediction and/or costs.cost_per_error (classification) or "
                "costs.cost_per_unit_error (regression); see docs/policy.md"
            )
        return raw


# --------------------------------------------------------------------------- infrastructure


class StoreConfig(_Section):
    # SQLAlchemy URL; relative sqlite paths are relative to the config file
    url: str = "sqlite:///.modelpilot/store.db"


class ArtifactsConfig(_Section):
    # a local folder (relative to the config file) or s3://bucket/prefix
    url: str = ".modelpilot/artifacts"
    # extra fsspec options, e.g. {"endpoint_url": ...} for an S3-compatible server
    options: dict[str, Any] = Field(default_factory=dict)


class ExecutorConfig(_Section):
    # "local": worker processes on this machine; "ray": tasks on a Ray cluster (modelpilot[ray])
    kind: str = "local"
    # jobs (training runs, trial workers, backtest policies) running at once
    workers: int = Field(2, ge=1)
    # cores (BLAS/OpenMP threads; on Ray, CPUs reserved) each job owns;
    # None = the usable cores shared equally among the workers (local), 1 (ray)
    threads: int | None = Field(None, ge=1)
    # kind ray: the cluster to join, "auto" (the one `ray start` runs on this machine),
    # "host:port" of its head, or "ray://host:10001" (Ray Client); None = "auto"
    address: str | None = None


class ServingConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(2_000_000, ge=1024)
    max_instances: int = Field(10_000, ge=1)
    # predict bodies larger than this run on the batch lane's threads, not the event loop
    offload_bytes: int = Field(32_768, ge=0)
    batch_workers: int = Field(1, ge=1)
    batch_queue: int = Field(16, ge=0)
    # "process": worker processes, started on the first large request, that do not share
    # the server's GIL; "thread": threads of the server process (no extra process)
    batch_lane: Literal["process", "thread"] = "process"
    # a process-lane request of at least this many rows is logged by the lane process, as a
    # segment of its own; smaller ones go to the server's buffered writer (few, large segments)
    lane_log_rows: int = Field(2_000, ge=1)
    # how long a label for an id not in the log yet waits for another replica's segment;
    # None = 2 x log_flush_interval + 30s
    feedback_hold: Duration | None = None
    log_flush_rows: int = Field(5_000, ge=1)
    log_flush_interval: Duration = 5.0
    # how often the server checks the store for moved aliases
    refresh_interval: Duration = 1.0
    # convert each new version to ONNX at register time (when it converts and matches its
    # pipeline) and serve that graph with onnxruntime; needs the edge extra (docs/serving.md)
    onnx: bool = True
    # close every route that reveals project data (predict, model info, /metrics, the docs,
    # the dashboard) to requests without a viewer token; /healthz stays open
    require_token_for_predict: bool = False
    # safety rule: once any active API token exists, /feedback needs a labeler token (or
    # operator/admin); before the first token it is open (see docs/security.md)
    require_token_for_feedback: bool = True
    # wrong tokens: after auth_max_failures from one client within auth_failure_window it
    # is refused (429 + Retry-After) for auth_lockout; one audit row per client and window
    auth_max_failures: int = Field(10, ge=1)
    auth_failure_window: Duration = 60.0
    auth_lockout: Duration = 300.0
    # how long a dashboard login lasts
    session_ttl: Duration = 43200.0
    # origins (scheme://host:port) besides the server's own whose pages may post the
    # dashboard's forms (e.g. behind a proxy that rewrites the Host header)
    allowed_origins: list[str] = Field(default_factory=list)


class MonitoringConfig(_Section):
    # the window monitored: the last N predictions, and/or the last T of time
    window_size: int = Field(2000, ge=10)
    window_time: Duration | None = None
    drift_method: Literal["auto", "psi", "ks", "chi2", "jensenshannon", "wasserstein"] = "auto"
    # a column counts as drifted above this statistic (None = the method's default)
    drift_threshold: float | None = None
    min_samples: int = Field(200, ge=1)
    estimate_performance: bool = True
    # how a classifier's probabilities are calibrated on its validation rows for the
    # label-free estimate ("auto": isotonic from 1000 rows, sigmoid below; "none": as is)
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = "auto"
    # drift of the joint distribution (docs/monitoring.md#joint-drift-all-columns-at-once):
    # "pca" reconstruction error (cheap), "classifier" (a domain classifier: a few seconds per
    # pass, and the reference keeps 2,000 encoded rows), "both", or "none"
    joint_drift: Literal["pca", "classifier", "both", "none"] = "pca"
    # split-conformal miscoverage level: intervals / prediction sets calibrated on the
    # validation rows hold the truth 1 - alpha of the time; coverage is monitored on labels
    conformal_alpha: float = Field(0.1, gt=0, lt=1)


class TriggerRule(_Section):
    enabled: bool = True
    threshold: float
    min_samples: int = Field(200, ge=1)
    # after firing (or reporting a drift watch), the rule stays quiet until this many labelled
    # rows served after the firing have arrived (one typical batch: a reading at least half
    # new against the default 2,000-row window) ...
    cooldown_rows: int | None = Field(1000, ge=0)
    # ... or, instead, for this long on the loop's clock (never both)
    cooldown: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_cooldown(cls, data: Any) -> Any:
        return time_or_rows(data, "cooldown", "cooldown_rows")


class ChangeConfig(_Section):
    """The change detector on the champion's labelled error stream (docs/policy.md)."""

    enabled: bool = True
    # a monitoring.change detector: "scan" (NumPy/SciPy) or "adwin" (needs River)
    method: Literal["scan", "adwin"] = "scan"
    # probability that one check fires on a stationary error stream (false alarms)
    alpha: float = Field(0.001, gt=0, lt=0.5)
    # labelled rows on each side of a split: the shortest new level the test looks at
    min_rows: int = Field(100, ge=10)
    # the champion's latest labelled rows the test reads
    max_rows: int = Field(20_000, ge=100)


def _rule(threshold: float, enabled: bool = True) -> Any:
    return Field(default_factory=lambda: TriggerRule(threshold=threshold, enabled=enabled))


class TriggersConfig(_Section):
    # cron expression for fixed-cadence retraining, e.g. "0 3 * * 0" (Sundays 03:00)
    schedule: str | None = None
    # a sequential test on the champion's labelled errors: locates a change in the concept
    change: ChangeConfig = Field(default_factory=ChangeConfig)
    # share of drifted features, weighted by the champion's feature importance; it acts only
    # with corroboration (drift_requires_performance)
    feature_drift: TriggerRule = _rule(0.5, enabled=False)
    # drift statistic of the score distribution
    prediction_drift: TriggerRule = _rule(0.2, enabled=False)
    # drop of the primary metric against the reference (points; a fraction of it for rmse/mae/log_loss)
    performance_drop: TriggerRule = _rule(0.05)
    # the same drop in any configured segment, against its own reference
    segment_performance_drop: TriggerRule = _rule(0.08)
    # the same drop of the estimated metric while labels are missing
    estimated_performance_drop: TriggerRule = _rule(0.08, enabled=False)
    # the conformal intervals / prediction sets hold the label less often than promised
    # (1 - monitoring.conformal_alpha) by at least this many points, beyond chance
    coverage_drop: TriggerRule = _rule(0.05, enabled=False)
    # a drift alarm (feature or prediction drift) alone is a reason to watch, not to retrain:
    # with this on, drift only fires when labelled performance is unavailable or also
    # degrading; otherwise it writes a "drift_watch" event (docs/policy.md)
    drift_requires_performance: bool = True
    # the performance reference after a promotion: "carried" keeps the best of the new
    # champion's holdout score and the previous reference, so a half-recovered model still
    # triggers; "promotion" resets it to each new model's holdout score (lowers its own bar)
    reference: Literal["carried", "promotion"] = "carried"
    # a carried reference is lowered only after this many consecutive retrains whose holdout
    # score stayed below it by more than performance_drop.threshold (the bar is unreachable
    # now); None = never lowered
    reference_accept_after: int | None = Field(default=3, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _default_thresholds(cls, data: Any) -> Any:
        # a rule written partially (e.g. `feature_drift: {enabled: true}`) keeps its default
        # threshold instead of failing with "threshold: required"; enabled defaults to true
        if isinstance(data, dict):
            data = dict(data)
            for name, field in cls.model_fields.items():
                rule = data.get(name)
                if isinstance(rule, dict) and "threshold" not in rule and field.annotation is TriggerRule:
                    data[name] = {**rule, "threshold": field.default_factory().threshold}  # type: ignore[call-arg,misc]
        return data

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError(
                    "not a cron expression; write five fields such as '0 3 * * 0' (Sundays 03:00)"
                )
        return value


class BudgetConfig(_Section):
    # the rolling period: the retrains whose training rows were followed by fewer than this many
    # labelled rows count (ten retraining windows of retraining.recent_rows: on average at most
    # one retrain per window of new labels) ...
    period_rows: int | None = Field(50_000, ge=1)
    # ... or, instead, the retrains of the last this long on the loop's clock (never both)
    period: Duration | None = None
    max_retrains: int | None = Field(10, ge=0)
    max_cost: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _one_period(cls, data: Any) -> Any:
        return time_or_rows(data, "period", "period_rows")

    @model_validator(mode="after")
    def _some_period(self) -> BudgetConfig:
        if self.period is None and self.period_rows is None and (self.max_retrains is not None or self.max_cost is not None):
            raise ValueError("the budget needs a period: set budget.period_rows (labelled rows, e.g. 50000) "
                             "or budget.period (a time such as '7d')")
        return self

    @property
    def report_seconds(self) -> float:
        """The period of the ROI report: the budget's when it counts time, else a week."""
        return self.period if self.period is not None else REPORT_PERIOD_SECONDS


class RetrainingConfig(_Section):
    # rows of the most recent labelled data
    recent_rows: int = Field(5000, ge=10)
    # share of the training set drawn from older history (0 = recent only)
    history_fraction: float = Field(0.3, ge=0, lt=1)
    # upsample segments performing worse than the rest by this factor
    upsample_segments: bool = True
    upsample_factor: float = Field(2.0, ge=1)
    warm_start: bool = True
    # share of recent labelled data held out for the gate's champion comparison
    holdout_fraction: float = Field(0.25, gt=0, lt=1)
    # after a located change in the champion's labelled errors, train only on rows after
    # it (never on older history, never warm-started from the stale champion), starting
    # once this many have labels
    change_point: bool = True
    min_rows_after_change: int = Field(300, ge=20)
    # then retrain again each time the post-change rows have grown this many times (each
    # refresh gated), until a model has learned from the full recent_rows window
    refresh_factor: float = Field(4.0, ge=1.5)
    # also read data.source when building retraining data
    include_source: bool = True
    tune: bool = False


class ShadowConfig(_Section):
    # at least policy.compare.MIN_HOLDOUT_ROWS: fewer labelled pairs can never be compared
    min_labelled: int = Field(300, ge=30)


class ABConfig(_Section):
    share: float = Field(0.5, gt=0, lt=1)
    min_detectable_effect: float = Field(0.03, gt=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    sequential: bool = False
    max_duration: Duration | None = None
    # what the test compares: the primary metric from labels, or the business reward sent
    # with feedback ({"rewards": [...]})
    decide_on: Literal["metric", "reward"] = "metric"


class CanaryConfig(_Section):
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    hold_requests: int | None = Field(200, ge=1)
    hold_duration: Duration | None = None
    max_error_rate: float = Field(0.02, ge=0, le=1)
    # latency is judged against the champion measured in the same period: the candidate's
    # p99 may exceed the champion's by at most this factor AND this many milliseconds ...
    max_latency_ratio: float = Field(1.5, ge=1)
    latency_slack_ms: float = Field(20.0, ge=0)
    # ... once each arm has this many calls in the period (a p99 of fewer is its maximum)
    min_latency_samples: int = Field(100, ge=20)
    # optional absolute ceiling on the candidate's p99, on the same minimum sample
    max_latency_p99_ms: float | None = Field(None, gt=0)
    max_divergence: float = Field(0.25, ge=0)
    metric_tolerance: float = Field(0.03, ge=0)
    min_labelled: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _valid_steps(self) -> CanaryConfig:
        if not self.steps or any(not 0 < s <= 100 for s in self.steps) or self.steps != sorted(set(self.steps)):
            raise ValueError("rollout.canary.steps must be increasing percentages in (0, 100], e.g. [5, 25, 50, 100]")
        if self.hold_requests is None and self.hold_duration is None:
            raise ValueError("set rollout.canary.hold_requests and/or hold_duration: how long each step is held")
        return self


class RolloutConfig(_Section):
    strategy: Literal["replace", "shadow", "ab", "canary"] = "replace"
    # request field used as the routing key (sticky assignment); None = the request id
    key_field: str | None = None
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
    ab: ABConfig = Field(default_factory=ABConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)


#: the events a webhook receives unless its ``events`` list says otherwise
WEBHOOK_EVENTS = (
    "version_registered", "trigger_fired", "gate_passed", "gate_rejected", "approval_requested",
    "promoted", "rolled_back", "rollout_rejected",
)


class WebhookConfig(_Section):
    """An outbound webhook: events of the audit log POSTed to ``url`` (docs/webhooks.md)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(pattern=r"^https?://")
    # event kinds to send ("*" = every kind); see `modelpilot events` for the kinds
    events: list[str] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1)
    # the environment variable holding the signing secret; None = unsigned requests
    secret_env: str | None = None
    # "json": the event as JSON; "slack": a Slack incoming-webhook message
    format: Literal["json", "slack"] = "json"
    # per request; a slow receiver costs at most this per attempt
    timeout: Duration = Field(5.0, gt=0)
    # attempts before a delivery is marked failed; retries wait backoff, 2x, 4x ... up to max_backoff
    max_attempts: int = Field(8, ge=1, le=100)
    backoff: Duration = 10.0
    max_backoff: Duration = 3600.0


class EdgeConfig(_Section):
    # the Ed25519 private key bundles are signed with ('modelpilot edge keygen' writes it)
    signing_key: str = ".modelpilot/edge/signing.key"
    # drift of device aggregates: a method that works on bin counts (auto = Jensen-Shannon
    # >= 0.07 with an adjusted chi-square guard; psi, jensenshannon, chi2); None =
    # monitoring.drift_method when it is one of them, else auto
    drift_method: Literal["auto", "psi", "jensenshannon", "chi2"] | None = None
    drift_threshold: float | None = None
    # rows a device (or the pool) must have reported since the champion changed before its
    # drift is judged
    min_rows: int = Field(500, ge=10)
    # canary across devices: the share of the fleet that gets a new version first (at least one)
    canary_share: float = Field(0.25, gt=0, le=1)
    # rows the canary devices must score on the new version before it goes to every device
    canary_rows: int = Field(500, ge=10)


class OnlineFeaturesConfig(_Section):
    """Features looked up by entity key: joined point-in-time at training, latest at serving.

    One definition serves both sides (docs/features.md): training rows get, for each
    ``entity`` key, the last table row whose ``timestamp`` is at or before the row's event
    time (DuckDB ``ASOF JOIN``); a predict request that carries only the key gets the last
    row at or before now.
    """

    # a Parquet/CSV file (read whole, kept in memory at serving) or a SQLAlchemy URL
    # (sqlite:///features.db, postgresql+psycopg://host/db) holding `table`
    source: str
    table: str | None = None
    entity: list[str] = Field(min_length=1)
    timestamp: str
    features: list[str] = Field(min_length=1)
    # the training data's event time; default model.time_column
    event_time: str | None = None
    # how often a file snapshot is re-read at serving (a SQL table is queried per request)
    refresh_interval: Duration = 300.0
    # a feature row older than this at the moment counts as missing (Feast's ttl); None = any age
    max_age: Duration | None = None

    @model_validator(mode="after")
    def _table_for_sql(self) -> OnlineFeaturesConfig:
        sql = "://" in self.source and not self.source.startswith(("s3://", "gs://", "file://"))
        if sql and not self.table:
            raise ValueError("online_features.table is required when online_features.source is a database URL")
        clash = sorted(set(self.features) & {*self.entity, self.timestamp})
        if clash:
            raise ValueError(f"online_features.features lists {', '.join(clash)}, the entity or timestamp column")
        return self


class ControllerConfig(_Section):
    interval: Duration = 60.0


class PolicyConfig(_Section):
    """A named retraining policy for backtests: overrides of triggers/retraining."""

    kind: Literal["never", "fixed", "dynamic"] = "dynamic"
    every: int | None = Field(None, ge=1)
    triggers: TriggersConfig | None = None
    retraining: RetrainingConfig | None = None


# --------------------------------------------------------------------------- root


class PilotConfig(_Section):
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    artifacts: ArtifactsConfig = Field(default_factory=ArtifactsConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    triggers: TriggersConfig = Field(default_factory=TriggersConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    retraining: RetrainingConfig = Field(default_factory=RetrainingConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    online_features: OnlineFeaturesConfig | None = None
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)

    @field_validator("webhooks")
    @classmethod
    def _unique_webhooks(cls, value: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [w.name for w in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"webhook name(s) {', '.join(twice)} appear more than once: give each webhook its own name")
        return value

    # the folder relative paths are resolved against (the config file's folder)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    # ------------------------------------------------------------------ derived values

    @property
    def primary_metric(self) -> str:
        """The metric gates, triggers and reports speak of."""
        if self.evaluation.metric:
            return self.evaluation.metric
        return "rmse" if self.model.task == "regression" else "accuracy"

    def resolve_path(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def store_url(self) -> str:
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.resolve_path(url[len(prefix) :]))
        return url

    @property
    def artifacts_url(self) -> str:
        url = self.artifacts.url
        if "://" in url:
            return url
        return str(self.resolve_path(url))

    def config_hash(self) -> str:
        """A stable hash of the settings that shape a model (not of paths or servers)."""
        shaping = self.model_dump(
            mode="json", include={"model", "data", "split", "tuning", "evaluation"}
        )
        blob = json.dumps(shaping, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base_dir: Path | None = None, source: str = "config") -> PilotConfig:
        """Validate a mapping; errors become one :class:`ConfigError` naming every bad key."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
        try:
            cfg = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, source)) from None
        if base_dir is not None:
            cfg.base_dir = base_dir
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> PilotConfig:
        """Read ``pilot.yaml``.

        Raises:
            ConfigError: the file is missing, is not YAML, or has a bad key or value.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                f"no config file at {p}: run 'modelpilot init' to write an example, "
                "or pass one with -c PATH"
            )
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{p} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
        return cls.from_dict(raw, base_dir=p.resolve().parent, source=str(p))


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at ``loc`` (for "did you mean"), walking nested models."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields and not any(f.alias == part for f in fields.values()):
            return []
        field = next(f for n, f in fields.items() if n == part or f.alias == part)
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        current = candidates[0]
    fields = getattr(current, "model_fields", {})
    return [f.alias or n for n, f in fields.items() if n != "base_dir"]


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = _known_keys(PilotConfig, loc)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else (f"; known keys: {', '.join(known)}" if known else "")
            lines.append(f"  {key}: unknown key{hint}")
        elif err["type"] == "missing":
            lines.append(f"  {key}: required but missing")
        else:
            got = err.get("input")
            got_s = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {key}: {msg} (got {got_s})")
    return f"{source} has {len(lines)} problem{'s' if len(lines) > 1 else ''}:\n" + "\n".join(lines)

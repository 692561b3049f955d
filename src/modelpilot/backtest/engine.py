"""The backtest: prepare the history, replay every policy in parallel, compare them.

Cost, value and ROI are the dashboard's, read from each policy's own store by
:func:`modelpilot.controller.counterfactual.roi_report` (definitions in
:mod:`modelpilot.policy.roi`): cost is what the policy's retrains cost, value is each
promotion's predictions served × what a better prediction is worth × the difference realised
against the retired champion on the same rows, net value = value − cost, and ROI = net value
/ cost (a ratio; None below ``costs.roi_min_cost``). The mean metric of each policy is shown
beside it, and ``never`` (always replayed) is the baseline of that comparison.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.backtest.policies import PolicySpec
from modelpilot.backtest.replay import AFTER_RETRAIN, replay_policy
from modelpilot.config import PilotConfig
from modelpilot.data.timecol import Clock, TimeColumnError, read_time_column
from modelpilot.errors import DataError
from modelpilot.executors import Executor
from modelpilot.metrics import higher_is_better, improvement
from modelpilot.policy.roi import summarize

log = logging.getLogger(__name__)
MIN_INITIAL = 50
SYNTH_TIME = "ts"


@dataclass
class BacktestResult:
    """What a backtest found; :meth:`to_dict` is the ``--json`` document."""

    metric: str
    batches: int
    policies: list[dict[str, Any]]
    batch_size: int
    label_delay: int
    initial_rows: int
    rows: int
    skipped_missing_target: int = 0
    warnings: list[str] = field(default_factory=list)
    scenario: dict[str, Any] | None = None
    clock: dict[str, Any] | None = None  # how the time column was read (Clock.to_dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"metric": self.metric, "batches": self.batches, "policies": self.policies,
               "batch_size": self.batch_size, "label_delay": self.label_delay, "initial_rows": self.initial_rows,
               "rows": self.rows, "skipped_missing_target": self.skipped_missing_target, "warnings": self.warnings,
               "clock": self.clock}
        if self.scenario is not None:
            out["scenario"] = self.scenario
        return out

    def policy(self, name: str) -> dict[str, Any]:
        """The result of the policy called ``name`` (KeyError when it was not replayed)."""
        for p in self.policies:
            if p["name"] == name:
                return p
        raise KeyError(name)


def prepare_history(frame: pd.DataFrame, cfg: PilotConfig) -> tuple[pd.DataFrame, PilotConfig, Clock, list[str], int]:
    """Read the time column onto the clock, sort by it, drop rows without a target.

    The time column is read by :func:`modelpilot.data.timecol.read_time_column` with
    ``data.time_unit`` (``--time-unit``): dates as they are, numbers as an ordinal clock
    unless an epoch unit is given. Rows sharing a time keep their file order.

    Returns:
        ``(frame, cfg, clock, warnings, skipped)``: ``cfg`` names the time column (one is
        made, a minute per row, when the data has none) and its ``data.time_unit`` is reset,
        as the column now holds tz-aware UTC timestamps; ``clock`` says how it was read.

    Raises:
        DataError: the target or time column is missing, no row has a target, or the time
            column cannot order the rows (see :class:`~modelpilot.data.timecol.TimeColumnError`).
    """
    target, time_col = cfg.model.target, cfg.model.time_column
    warnings: list[str] = []
    if target not in frame.columns:
        raise DataError(f"the data has no target column {target!r}: pass --target with one of {', '.join(map(str, frame.columns))}")
    if time_col is not None and time_col not in frame.columns:
        raise DataError(f"the data has no time column {time_col!r}: pass --time-col with one of {', '.join(map(str, frame.columns))}")
    frame = frame.copy()
    if time_col is None:
        if cfg.data.time_unit != "ordinal":
            raise TimeColumnError(f"--time-unit {cfg.data.time_unit} needs a time column to apply to: pass --time-col")
        time_col = SYNTH_TIME if SYNTH_TIME not in frame.columns else "_backtest_ts"
        frame[time_col] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)), unit="min")
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"time_column": time_col})})
        clock = Clock(time_col, "generated", first=0, last=len(frame) - 1)
        warnings.append(f"no --time-col: rows are replayed in file order, one simulated minute apart (column {time_col!r})")
    else:
        times, clock = read_time_column(frame[time_col], time_col, cfg.data.time_unit, fix="--time-unit")
        warnings.extend(clock.notes)
        if len(frame) > 1 and times.iloc[0] == times.iloc[-1] and times.nunique() == 1:
            raise TimeColumnError(
                f"every row of the time column {time_col!r} holds the same time, so it cannot order a replay: "
                "pass --time-col with a column that changes, or leave it out to replay in file order"
            )
        frame[time_col] = times
        if not times.is_monotonic_increasing:
            frame = frame.sort_values(time_col, kind="stable").reset_index(drop=True)
            warnings.append(f"the rows were not in time order: sorted by {time_col!r} before replaying "
                            "(rows sharing a time keep their file order)")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"time_unit": "ordinal"})})
    missing = frame[target].isna()
    skipped = int(missing.sum())
    if skipped:
        frame = frame[~missing].reset_index(drop=True)
        warnings.append(f"{skipped} rows without a value of {target!r} were skipped")
    if frame.empty:
        raise DataError(f"no row has a value of the target {target!r}: nothing to replay")
    y = frame[target]
    if skipped and pd.api.types.is_float_dtype(y) and bool((y == np.round(y)).all()):
        frame[target] = y.astype(np.int64)  # float only because of the missing values: class labels
    if cfg.model.task == "auto":  # decide once, so the metric and every retrain agree on the task
        from modelpilot.data import resolve_features

        task = resolve_features(frame, cfg).task
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"task": task})})
    return frame, cfg, clock, warnings, skipped


def run_backtest(
    frame: pd.DataFrame,
    cfg: PilotConfig,
    policies: list[PolicySpec],
    *,
    batch: int = 1000,
    label_delay: int = 1,
    initial: int | None = None,
    executor: Executor | None = None,
    scenario: dict[str, Any] | None = None,
    workdir: Path | None = None,
) -> BacktestResult:
    """Replay ``frame`` under every policy (in parallel through ``executor``) and compare.

    Args:
        frame: the labelled history.
        cfg: the config (model, triggers, retraining, gates, costs...).
        policies: from :func:`~modelpilot.backtest.policies.parse_policies` (one is ``never``).
        batch: rows per batch.
        label_delay: batches before a batch's labels arrive.
        initial: rows the first model trains on (default: a fifth of the data, rounded to
            whole batches, at least one batch).
        executor: runs the policies in parallel; None runs them one after another here.
        scenario: the generator's info (drift points), kept in the result.
        workdir: keep each policy's store and artifacts in ``workdir/<policy name>`` (for
            ``modelpilot ui`` on a replay, or inspection); default: temporary, removed.

    Raises:
        DataError: bad data, or a batch larger than what is left after the initial rows.
    """
    if batch < 1 or label_delay < 0:
        raise DataError("--batch must be at least 1 and --label-delay at least 0")
    frame, cfg, clock, warnings, skipped = prepare_history(frame, cfg)
    n = len(frame)
    if initial is None and 2 * batch > n:
        raise DataError(
            f"--batch {batch} is larger than the {n} usable rows allow: the first model needs at least one "
            "batch of --initial rows and the replay at least one more; lower --batch"
        )
    if initial is None:
        initial = max(batch, (n // 5) // batch * batch)
    if initial < MIN_INITIAL or initial >= n:
        raise DataError(f"--initial {initial} must be at least {MIN_INITIAL} and less than the {n} usable rows")
    if n - initial < batch:
        raise DataError(
            f"--batch {batch} is larger than the {n - initial} rows left after the {initial} --initial rows "
            f"({n} usable rows): lower --batch or --initial"
        )
    n_batches = (n - initial) // batch
    if (n - initial) % batch:
        warnings.append(f"the last {(n - initial) % batch} rows do not fill a batch and are not replayed")
    stalled = _stalled_ticks(frame[cfg.model.time_column], initial, batch, n_batches)
    if stalled:
        warnings.append(
            f"{stalled} of {n_batches} batches end at the same time as the batch before (many rows share a time in "
            f"{cfg.model.time_column!r}): the clock stands still across them, so time-based waits such as cooldowns "
            "do not pass there; rows sharing a time are replayed in file order"
        )
    opts: dict[str, Any] = {"batch": batch, "initial": initial, "label_delay": label_delay}

    def options(spec: PolicySpec) -> dict[str, Any]:
        return {**opts, "workdir": str(workdir / spec.name)} if workdir is not None else opts

    if executor is None:
        raw = [replay_policy(cfg, spec, frame, options(spec)) for spec in policies]
    else:
        futures = [executor.submit(replay_policy, cfg, spec, frame, options(spec)) for spec in policies]
        raw = [f.result() for f in futures]
    for w in warnings:
        log.warning(w)
    metric = cfg.primary_metric
    if scenario is not None:
        scenario = {**scenario, "drift_batches": [(p - initial) // batch for p in scenario.get("drift_points", [])
                                                  if 0 <= p - initial < n_batches * batch]}
    return BacktestResult(metric=metric, batches=n_batches, policies=_compare(raw, cfg), batch_size=batch,
                          label_delay=label_delay, initial_rows=initial, rows=n, skipped_missing_target=skipped,
                          warnings=warnings, scenario=scenario, clock=clock.to_dict())


def _stalled_ticks(times: pd.Series, initial: int, batch: int, n_batches: int) -> int:
    """How many ticks (one per batch, at the batch's last time) find the clock where it was."""
    ends = times.to_numpy()[initial + batch - 1 : initial + n_batches * batch : batch]
    return int((ends[1:] == ends[:-1]).sum())


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _compare(raw: list[dict[str, Any]], cfg: PilotConfig) -> list[dict[str, Any]]:
    """Means, the mean after each retrain, and ROI against ``never``."""
    metric = cfg.primary_metric
    for p in raw:
        p["mean_metric"] = _mean(p["metric_by_batch"])
        p["retrains"] = len(p["retrain_batches"])
        p["mean_after_retrain"] = [_mean(p["metric_by_batch"][b + 1 : b + 1 + AFTER_RETRAIN]) for b in p["retrain_batches"]]
        p["train_cpu_seconds"] = round(p["train_cpu_seconds"], 4)
        p["cost"] = round(p["cost"], 8)
    base = next((p for p in raw if p["kind"] == "never"), None)
    for p in raw:
        report = p.pop("roi", None) or summarize([], cfg.costs, period_seconds=cfg.budget.report_seconds, task="classification")
        total = report["total"]
        p["vs_never"] = (None if base is None or p["mean_metric"] is None or base["mean_metric"] is None
                         else improvement(metric, p["mean_metric"], base["mean_metric"]))
        # one definition with the dashboard's Cost page: the totals of roi_report
        p.update(cost=round(float(total["cost"]), 8), value=total["value"], net_value=total["net_value"],
                 roi=total["roi"], roi_note=total["roi_note"], served=total["served"], paired=total["paired"],
                 unmeasured=total["unmeasured"], roi_report=report)
    order = ["name", "kind", "mean_metric", "vs_never", "metric_by_batch", "retrains", "retrain_batches",
             "retrain_reasons", "retrain_promoted", "retrain_versions", "mean_after_retrain", "train_cpu_seconds",
             "cost", "value", "net_value", "roi", "roi_note", "served", "paired", "unmeasured",
             "roi_report", "initial", "wall_seconds", "batch_seconds"]
    return [{k: p[k] for k in order if k in p} for p in raw]


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` is a better value of ``metric`` than ``b``."""
    return a > b if higher_is_better(metric) else a < b


def make_config(
    cfg: PilotConfig | None,
    *,
    target: str | None = None,
    time_col: str | None = None,
    time_unit: str | None = None,
    metric: str | None = None,
    seed: int | None = None,
    scenario: bool = False,
) -> PilotConfig:
    """The config a backtest runs under: the user's (or a default one) plus the flags.

    With no config, the model is named ``backtest``, the features are every column but the
    target and the time column, the estimator is the default (HistGradientBoosting) and the
    metric is accuracy or RMSE by task. A scenario fixes target ``y``, time ``ts`` and the
    ``segment`` column.

    ``time_unit`` is ``--time-unit``: how a numeric time column is read (``ordinal``, or an
    epoch unit ``s``, ``ms``, ``us``, ``ns``; see :mod:`modelpilot.data.timecol`).

    Raises:
        ConfigError: no target anywhere, a bad ``--metric`` or ``--time-unit``.
    """
    from modelpilot.data.timecol import TIME_UNITS
    from modelpilot.errors import ConfigError

    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ConfigError(f"--time-unit {time_unit!r} is not one of {', '.join(TIME_UNITS)}")

    raw: dict[str, Any] = cfg.model_dump(mode="json", by_alias=True, exclude={"base_dir"}) if cfg else {}
    model = dict(raw.get("model") or {"name": "backtest"})
    if scenario:
        model.update(target="y", time_column="ts", segments=["segment"], id_column=None,
                     features={"numeric": None, "categorical": None, "exclude": []})
    if target:
        model["target"] = target
    if time_col:
        model["time_column"] = time_col
    if seed is not None:
        model["seed"] = seed
    if not model.get("target"):
        raise ConfigError("no target: pass --target COLUMN (or -c pilot.yaml with model.target)")
    raw["model"] = model
    if metric:
        raw["evaluation"] = {**raw.get("evaluation", {}), "metric": metric}
    if time_unit:
        raw["data"] = {**raw.get("data", {}), "time_unit": time_unit}
    return PilotConfig.from_dict(raw, base_dir=cfg.base_dir if cfg else None, source="backtest config")


def backtest(
    cfg: PilotConfig,
    *,
    data: pd.DataFrame | None = None,
    scenario: str | None = None,
    rows: int = 30_000,
    policies: list[str] | None = None,
    batch: int = 1000,
    label_delay: int = 1,
    initial: int | None = None,
    executor: Executor | None = None,
) -> BacktestResult:
    """Backtest ``data`` (default: the config's data source) or a generated ``scenario``.

    Raises:
        ConfigError: an unknown policy; DataError: bad data or sizes.
    """
    from modelpilot.backtest.policies import parse_policies

    specs = parse_policies(policies or [], cfg)
    info = None
    if scenario is not None:
        from modelpilot.data.synth import scenario as make_scenario

        data, info = make_scenario(scenario, rows, seed=cfg.model.seed)
    elif data is None:
        from modelpilot.data import load_source

        data = load_source(cfg)
    return run_backtest(data, cfg, specs, batch=batch, label_delay=label_delay, initial=initial,
                        executor=executor, scenario=info)

"""``modelpilot check``: the product's own checks, run one by one for a CI pipeline.

Each function returns a :class:`CheckReport` of :class:`~modelpilot.data.validation.CheckResult`
values (``pass``, ``warn``, ``fail`` or ``off``), one per check a CI system should show. No
check is new here: they are the checks ``train``, the controller and ``promote`` already run —

* :func:`check_config`: the config loads (every key known and valid), its data source reads
  and names existing columns, its metrics suit the task, its estimator and parameters exist;
* :func:`check_data`: a data file against the config — its columns and feature roles
  (:func:`~modelpilot.data.resolve_features`), every ``data.validation`` check
  (:func:`~modelpilot.data.validate`) and, when a champion exists, the champion's columns and
  the scale of each numeric column against its reference profile (the retraining checks);
* :func:`check_model`: a version loads through the model allowlist, answers a probe
  prediction (``promote``'s check), passes ``gates.min_metrics`` and the overfit gap, and —
  given a labelled holdout — beats the champion on it as the controller's gate demands.

A problem that stops a check (a missing file, an unknown column) is that check's failure,
never an exception: CI then still gets the report saying what failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.data.validation import CheckResult
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    import pandas as pd

    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig
    from modelpilot.data.features import FeatureSpec
    from modelpilot.store import ModelVersionRecord, Store


@dataclass
class CheckReport:
    """The checks of one ``modelpilot check`` command, in the order they ran, with their times."""

    suite: str
    checks: list[CheckResult] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings and skipped checks allowed)."""
        return not any(c.status == "fail" for c in self.checks)

    def add(self, result: CheckResult, seconds: float = 0.0) -> CheckResult:
        self.checks.append(result)
        self.seconds.append(seconds)
        return result

    def run(self, name: str, check: Callable[[], CheckResult | str], fix: str = "") -> CheckResult:
        """Run one check; a :class:`ModelpilotError` it raises is its failure.

        ``check`` returns a result, or a message for a pass.
        """
        start = time.perf_counter()
        try:
            out = check()
            result = out if isinstance(out, CheckResult) else CheckResult(name, "pass", out)
        except ModelpilotError as exc:
            result = CheckResult(name, "fail", str(exc), fix=fix)
        return self.add(result, time.perf_counter() - start)

    def skip(self, name: str, why: str) -> CheckResult:
        return self.add(CheckResult(name, "off", why))

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "ok": self.ok,
                "checks": [{**c.to_dict(), "seconds": round(s, 4)} for c, s in zip(self.checks, self.seconds,
                                                                                      strict=True)]}


# --------------------------------------------------------------------------- config


def check_config(path: Path) -> CheckReport:
    """The config at ``path``: it loads, its data reads, its metrics and estimator exist."""
    from modelpilot.config import PilotConfig
    from modelpilot.data import load_source, resolve_features
    from modelpilot.training.estimators import check_param_names, make_estimator
    from modelpilot.training.pipeline import primary_metric

    report = CheckReport("config")
    loaded: list[PilotConfig] = []

    def load() -> str:
        loaded.append(PilotConfig.load(path))
        return f"{path} is a valid config for model {loaded[0].model.name!r}"

    if report.run("config", load, fix="correct the keys named, see docs/configuration.md").status == "fail":
        for name in ("data", "metrics", "estimator"):
            report.skip(name, "the config does not load")
        return report
    cfg = loaded[0]
    tasks: list[str] = [] if cfg.model.task == "auto" else [cfg.model.task]

    def data() -> CheckResult | str:
        if not cfg.data.source and not cfg.data.query:
            return CheckResult("data", "off", "no data.source or data.query: check data files with "
                               "'modelpilot check data FILE'")
        df = load_source(cfg)
        spec = resolve_features(df, cfg)
        tasks[:] = [spec.task]
        return (f"{len(df):,} rows; target {spec.target!r} ({spec.task}); {len(spec.numeric)} numeric and "
                f"{len(spec.categorical)} categorical features")

    report.run("data", data, fix="point data.source / data.query at the data and model.* at its columns")

    def metrics() -> str:
        candidates = tasks or ["classification", "regression"]
        errors: list[ModelpilotError] = []
        for task in candidates:
            try:
                return f"{primary_metric(cfg, task)} is the primary metric ({task})"
            except ModelpilotError as exc:
                errors.append(exc)
        raise errors[0]

    report.run("metrics", metrics)

    def estimator() -> str:
        task = (tasks or ["classification"])[0]
        est = make_estimator(cfg.model.estimator, task, dict(cfg.model.params), cfg.model.seed)
        if cfg.tuning.space:
            check_param_names(cfg.model.estimator, task, cfg.tuning.space, "tuning.space")
        return f"{type(est).__module__}.{type(est).__name__} takes model.params and tuning.space"

    report.run("estimator", estimator)
    return report


# --------------------------------------------------------------------------- data


def check_data(cfg: PilotConfig, path: Path, store: Store | None, artifacts: ArtifactStore | None) -> CheckReport:
    """A data file against the config and, when ``store`` has a champion, against the champion.

    Args:
        cfg: the config (``model``, ``data.schema``, ``data.validation``).
        path: the file (Parquet or CSV; a glob or folder of them).
        store, artifacts: where the champion is; ``None`` skips the champion's checks.
    """
    from modelpilot.data import load_source, resolve_features, validate

    report = CheckReport("data")
    frames: list[pd.DataFrame] = []
    specs: list[FeatureSpec] = []

    def read() -> str:
        frames.append(load_source(cfg, path))
        return f"read {len(frames[0]):,} rows and {len(frames[0].columns)} columns from {path}"

    report.run("read", read, fix="pass a Parquet or CSV file")

    def columns() -> str:
        specs.append(resolve_features(frames[0], cfg))
        s = specs[0]
        return (f"target {s.target!r} ({s.task}), {len(s.numeric)} numeric and {len(s.categorical)} "
                "categorical features")

    if frames:
        report.run("columns", columns)
    else:
        report.skip("columns", "the file could not be read")
    if not specs:
        from modelpilot.data.validation import CHECKS

        for name in CHECKS:
            report.skip(name, "the columns do not match the config")
    else:
        start = time.perf_counter()
        try:
            results = validate(frames[0], cfg, specs[0]).checks
        except ModelpilotError as exc:  # data.schema names a column the file lacks
            results = [CheckResult("validation", "fail", str(exc), fix="correct data.schema or the file")]
        each = (time.perf_counter() - start) / max(len(results), 1)
        for result in results:
            report.add(result, each)
    _champion_data_checks(report, cfg, frames[0] if frames else None, store, artifacts)
    return report


def _champion_data_checks(report: CheckReport, cfg: PilotConfig, df: pd.DataFrame | None,
                          store: Store | None, artifacts: ArtifactStore | None) -> None:
    from modelpilot.artifacts import get_json
    from modelpilot.controller.checks import champion_features
    from modelpilot.data.validation import check_scale

    champion = store.get_alias(cfg.model.name, "champion") if store is not None else None
    if champion is None or store is None or artifacts is None:
        why = "no champion in the store yet" if store is not None else "no champion to compare with (no store yet, or --no-champion)"
        report.skip("champion_columns", why)
        report.skip("scale", why)
        return
    if df is None:
        report.skip("champion_columns", "the file could not be read")
        report.skip("scale", "the file could not be read")
        return
    version = store.get_version(cfg.model.name, champion)
    spec = champion_features(cfg, version)

    def champion_columns() -> CheckResult | str:
        missing = [c for c in spec.features if c not in df.columns]
        if missing:
            return CheckResult("champion_columns", "fail",
                               f"the champion v{champion} was trained on {', '.join(missing)}, which the file lacks",
                               {"missing": missing}, "add the columns, or retrain the model without them")
        return f"every column the champion v{champion} reads is present ({len(spec.features)})"

    report.run("champion_columns", champion_columns)

    def scale() -> CheckResult:
        reference = get_json(artifacts, version.reference_key) if version.reference_key else {"columns": {}}
        return check_scale(df, cfg, spec, reference)

    report.run("scale", scale)


# --------------------------------------------------------------------------- model


def check_model(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, version: int | None = None,
                holdout: Path | None = None) -> CheckReport:
    """One version: it exists, loads, answers a probe, passes the thresholds and the gate.

    Args:
        cfg: the config (``model.name``, ``gates``).
        store, artifacts: where the version is.
        version: the version (default: the newest one).
        holdout: labelled rows neither model trained on; with it the version is compared with
            the champion exactly as the controller's gate compares a retrained candidate.
    """
    from modelpilot.artifacts import load_model
    from modelpilot.controller.gate import gate_candidate
    from modelpilot.data import load_source
    from modelpilot.errors import ModelNotFound
    from modelpilot.policy.gates import threshold_gate
    from modelpilot.rollout.probe import check_servable

    name = cfg.model.name
    report = CheckReport("model")
    records: list[ModelVersionRecord] = []

    def exists() -> str:
        if version is None:
            latest = store.latest_version(name)
            if latest is None:
                raise ModelNotFound(f"model {name!r} has no version in {store.url}: run 'modelpilot train' first")
            records.append(latest)
        else:
            records.append(store.get_version(name, version))
        r = records[0]
        return f"v{r.version} of {name!r} ({r.status}, {r.task})"

    report.run("exists", exists)
    later = ("loads", "probe", "thresholds", "gate")
    if not records:
        for check in later:
            report.skip(check, "no such version")
        return report
    record = records[0]
    def loads() -> str:
        load_model(artifacts, record.artifact_key)
        return f"{record.artifact_key} passes the model allowlist and loads"

    if report.run("loads", loads).status == "fail":
        for check in later[1:]:
            report.skip(check, "the model does not load")
        return report
    def probe() -> str:
        check_servable(artifacts, record)
        return "answers a probe prediction (ordinary, missing, extreme and unknown values)"

    report.run("probe", probe)
    run_metrics = store.latest_metrics(record.run_id) if record.run_id is not None else {}
    train_metrics = {k.removeprefix("train/"): v for k, v in run_metrics.items() if k.startswith("train/")}
    gate = threshold_gate(record.metrics, train_metrics, cfg)
    if not gate.checks:
        report.skip("thresholds", "no gates.min_metrics and no gates.max_overfit_gap configured")
    for c in gate.checks:
        report.add(CheckResult(f"threshold:{c['metric']}" if c["name"] != "overfit_gap" else "threshold:overfit_gap",
                               "pass" if c["passed"] else "fail", c["message"],
                               {"value": c["value"], "limit": c["limit"]}))
    champion = store.get_alias(name, "champion")
    if holdout is None:
        report.skip("gate", "no --holdout FILE: the comparison with the champion needs labelled rows")
        return report
    if champion is None or champion == record.version:
        report.skip("gate", f"v{record.version} is the champion" if champion == record.version
                    else "no champion to compare with")
        return report
    frames: list[pd.DataFrame] = []
    def read_holdout() -> str:
        frames.append(load_source(cfg, holdout))
        return f"{len(frames[0]):,} labelled rows from {holdout}"

    if report.run("holdout", read_holdout).status == "fail":
        report.skip("gate", "the holdout could not be read")
        return report

    start = time.perf_counter()
    try:
        verdict = gate_candidate(cfg, store, artifacts, record, champion, frames[0])
    except ModelpilotError as exc:
        report.add(CheckResult("gate", "fail", str(exc), fix="the holdout needs the model's feature columns, "
                               "its target and enough labelled rows"), time.perf_counter() - start)
        return report
    compared = [c for c in verdict["checks"] if "detail" in c]  # the threshold checks ran above
    each = (time.perf_counter() - start) / max(len(compared), 1)
    numbers = {k: v for k, v in verdict["numbers"].items() if k != "segments"}
    for c in compared:
        report.add(CheckResult(f"gate:{c['name']}", "pass" if c["passed"] else "fail",
                               f"v{record.version} against the champion v{champion}: {c['detail']}",
                               {**numbers, "value": c["value"], "threshold": c["threshold"]},
                               "" if c["passed"] else "keep the champion: this version is not shown to be better"),
                   each)
    return report

"""Tracking for your own experiments, on the store and metric buffer training uses.

A run is a row of the store's ``runs`` table (``kind="experiment"``) beside the training
runs: its parameters and tags are JSON, its metrics go through the same buffered
``Store.log_metric`` (thousands of points a second, written in batches), its artifacts are
content-addressed files in the artifact store. ``modelpilot runs list|show|compare`` and the
dashboard's run-compare page read them back, training runs and imported MLflow runs alike.

Example::

    from modelpilot import Pilot

    with Pilot.from_config("pilot.yaml") as pilot:
        with pilot.run("lr-sweep") as run:
            run.log_params({"learning_rate": 0.1, "depth": 6})
            for step in range(3):
                run.log_metric("loss", 1.0 / (step + 1), step)
            run.log_artifact("pilot.yaml")
        print(run.id, run.status)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.errors import ConfigError, NotFound, RequestError

if TYPE_CHECKING:
    from types import TracebackType

    from modelpilot.artifacts import ArtifactStore
    from modelpilot.store import RunRecord, Store

#: the kind of a run started with :meth:`modelpilot.Pilot.run`
EXPERIMENT = "experiment"


class Run:
    """One run of an experiment; use it as a context manager (or call :meth:`finish`).

    Leaving the ``with`` block finishes the run: ``finished``, or ``failed`` with the error
    when the block raised. Not thread-safe for :meth:`log_artifact` (metrics and parameters
    are: the store serialises them).
    """

    def __init__(self, store: Store, artifacts: ArtifactStore, record: RunRecord) -> None:
        self.store, self.artifacts = store, artifacts
        self.id: int = record.id
        self.name: str = str(record.tags.get("name") or f"run {record.id}")
        self.model: str = record.model
        self.status: str = record.status

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Merge ``params`` into the run's parameters (a key logged again takes the new value).

        Raises:
            RequestError: a value is not JSON (a number, string, bool, None, list or dict).
        """
        _check_json(params)
        self.store.log_params(self.id, dict(params))

    def log_param(self, key: str, value: Any) -> None:
        """One parameter; see :meth:`log_params`."""
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Merge ``tags`` into the run's tags (``name`` and ``artifacts`` are the run's own)."""
        reserved = sorted({"name", "artifacts"} & set(tags))
        if reserved:
            raise RequestError(f"tags {reserved} are set by the run itself: use other keys")
        _check_json(tags)
        self.store.set_tags(self.id, dict(tags))

    def log_metric(self, name: str, value: float, step: int = 0) -> None:
        """One point of metric ``name`` at ``step`` (buffered; written within about a second).

        Raises:
            RequestError: ``value`` is not a number.
        """
        self.store.log_metric(self.id, name, value, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Several metrics at one step."""
        for name, value in metrics.items():
            self.log_metric(name, value, step)

    def log_artifact(self, path: str | Path, name: str | None = None) -> str:
        """Copy a file into the artifact store and list it on the run under ``name``.

        Args:
            path: a local file.
            name: what the run calls it (default: the file name); logging a name again
                replaces the entry (the older file stays in the content-addressed store).

        Returns:
            The artifact's content key.

        Raises:
            ConfigError: ``path`` is not a file.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"log_artifact: {p} is not a file; pass the path of a file to keep with run {self.id}")
        key = self.artifacts.put_file(p, suffix="".join(p.suffixes)[-16:])
        listed = dict(self.store.get_run(self.id).tags.get("artifacts") or {})
        listed[name or p.name] = {"key": key, "bytes": p.stat().st_size}
        self.store.set_tags(self.id, {"artifacts": listed})
        return key

    def finish(self, status: str = "finished", error: str | None = None) -> None:
        """End the run (its buffered metrics are written first)."""
        self.status = self.store.finish_run(self.id, status=status, error=error).status

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.status != "running":
            return  # finished inside the block
        if exc is None:
            self.finish()
        else:
            self.finish("failed", f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"Run(id={self.id}, name={self.name!r}, model={self.model!r}, status={self.status!r})"


def start_run(store: Store, artifacts: ArtifactStore, name: str, model: str, *,
              params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None) -> Run:
    """Start a run of kind ``experiment`` under ``model`` (created if absent)."""
    if not name or not name.strip():
        raise RequestError("a run needs a name: pilot.run('my-experiment')")
    _check_json(params or {})
    _check_json(tags or {})
    record = store.create_run(model, kind=EXPERIMENT, params=params, tags={**(tags or {}), "name": name})
    return Run(store, artifacts, record)


def _check_json(values: Mapping[str, Any]) -> None:
    import json

    try:
        json.dumps(dict(values), allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise RequestError(f"parameters and tags must be JSON values (numbers, strings, lists, dicts): {exc}") from None


# --------------------------------------------------------------------------- reading runs back


def find_run(store: Store, ref: str | int) -> RunRecord:
    """A run by id (``12``) or by name (the newest run with that name).

    Raises:
        NotFound: no run with that id or name.
    """
    text = str(ref).strip()
    if text.isdigit():
        return store.get_run(int(text))
    for run in store.list_runs(limit=100_000):
        if run.tags.get("name") == text:
            return run
    raise NotFound(f"no run with id or name {text!r}; 'modelpilot runs list' shows them")


def run_name(run: RunRecord) -> str:
    """The run's name, or a description for a training run (``train v3``)."""
    name = run.tags.get("name")
    if name:
        return str(name)
    version = run.tags.get("version")
    return f"{run.kind}" + (f" v{version}" if version is not None else f" #{run.id}")


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters as dotted keys: ``{"model": {"depth": 3}}`` → ``{"model.depth": 3}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out


def run_summary(store: Store, run: RunRecord) -> dict[str, Any]:
    """What ``runs show`` prints: the run, its parameters, last metric values and artifacts."""
    duration = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    tags = {k: v for k, v in run.tags.items() if k not in ("name", "artifacts")}
    return {
        "id": run.id, "name": run_name(run), "model": run.model, "kind": run.kind, "status": run.status,
        "created_at": run.created_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": duration, "params": flatten(run.params), "metrics": store.latest_metrics(run.id),
        "tags": tags, "artifacts": dict(run.tags.get("artifacts") or {}), "cost": run.cost, "error": run.error,
        "datasets": list(run.dataset_hashes),
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def compare_runs(store: Store, a: RunRecord, b: RunRecord, *, history: bool = False) -> dict[str, Any]:
    """Parameters and metrics of two runs side by side.

    Returns:
        ``{"runs": [summary a, summary b], "params": [{"name", "a", "b", "same"}],
        "metrics": [{"name", "a", "b", "delta"}], "history": {metric: {"a": [[step, value]...],
        "b": [...]}}}`` — ``delta`` is b − a where both have the metric; ``history`` only when
        asked (every point of every metric, for plots).
    """
    sa_, sb = run_summary(store, a), run_summary(store, b)
    names = sorted(set(sa_["params"]) | set(sb["params"]))
    params = [{"name": n, "a": sa_["params"].get(n), "b": sb["params"].get(n),
               "same": n in sa_["params"] and n in sb["params"] and _same(sa_["params"][n], sb["params"][n])}
              for n in names]
    metrics = []
    for n in sorted(set(sa_["metrics"]) | set(sb["metrics"])):
        va, vb = sa_["metrics"].get(n), sb["metrics"].get(n)
        metrics.append({"name": n, "a": va, "b": vb, "delta": vb - va if va is not None and vb is not None else None})
    out: dict[str, Any] = {"runs": [sa_, sb], "params": params, "metrics": metrics}
    if history:
        out["history"] = {m["name"]: {side: [[p.step, p.value] for p in store.metric_history(r.id, m["name"])]
                                      for side, r in (("a", a), ("b", b))} for m in metrics}
    return out

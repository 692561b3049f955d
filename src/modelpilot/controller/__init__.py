"""One tick of the loop: monitor → triggers → retrain → gate → roll out.

The controller is the only place that composes training, monitoring, policy and rollout.
Everything it decides is written to the store first (its phase, the retraining data, the
trigger state), so a process killed at any point resumes on the next tick:

* ``idle``: monitor the window, store the report, evaluate the triggers (an event per
  firing, suppression and watch). When a retrain is due, the retraining data and the gate's
  holdout are written to the artifact store and the phase becomes ``retraining`` *before*
  training starts.
* ``retraining``: train under an idempotency key (a version is registered at most once per
  retrain, however often it is resumed), gate the version against the champion on the
  holdout, hand it to the rollout strategy, and go back to ``idle``.

A lease in the state keeps two controllers (``serve --with-controller`` and
``modelpilot controller``) from retraining the same model at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from modelpilot.artifacts import ArtifactStore, get_json, put_json
from modelpilot.config import PilotConfig
from modelpilot.controller.checks import check_retraining_data
from modelpilot.controller.data import (
    WaitForData,
    log_to_frame,
    row_errors,
    select_retraining_data,
)
from modelpilot.controller.gate import check_labels, gate_candidate
from modelpilot.controller.jobs import read_frame, run_training, write_frame
from modelpilot.controller.monitor import summarize, validation_segments, weighted_drift_share
from modelpilot.controller.window import WindowSource
from modelpilot.data.validation import ValidationReport
from modelpilot.errors import Conflict, ModelpilotError, ValidationFailed
from modelpilot.executors import Executor
from modelpilot.metrics import higher_is_better
from modelpilot.monitoring.change import get_change_detector
from modelpilot.policy.change import change_retrained
from modelpilot.policy.compare import noninferiority_rows, paired_accuracy_variance
from modelpilot.policy.triggers import (
    ChangeState,
    MonitoringSummary,
    TriggerState,
    evaluate,
    record_retrain,
    reset_reference,
)
from modelpilot.rollout import get_strategy
from modelpilot.store import Store

log = logging.getLogger(__name__)
NAMESPACE = "controller"
LEASE_SECONDS = 120.0


def _owner_gone(owner: str | None) -> bool:
    """Whether a lease's owner ("host:pid:nonce") was a process on this host that has died.

    A controller killed with SIGKILL cannot give its lease back; without this check the
    next controller on the same machine would wait out the whole lease before resuming.
    Owners on other hosts are trusted until their lease expires.
    """
    import psutil

    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return bool(psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _stop_worker(process: Any, run_created: datetime) -> None:
    """Kill the training process a run recorded (``{"host", "pid"}``) and its children, if alive here.

    Only a process started before the run was created: a pid reused since is left alone.
    """
    import psutil

    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return
    pid = process.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return
    try:
        proc = psutil.Process(pid)
        started = run_created if run_created.tzinfo else run_created.replace(tzinfo=UTC)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.ppid() == os.getpid() or proc.create_time() > started.timestamp():
            return  # gone, one of our own workers, or another process that got the pid since
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return
    log.warning("stopping training process %s left by an interrupted controller", pid)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=10)


def _reason(exc: BaseException) -> str:
    """A failure as a person reads it: our own errors say it all, others need their type."""
    if isinstance(exc, ModelpilotError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class TickResult:
    """What one tick saw and did (also what ``modelpilot controller --json`` prints)."""

    model: str
    time: str
    phase: str
    actions: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    retrain: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    promoted: int | None = None
    error: str | None = None  # why the tick failed (also a ``tick_failed`` event, once per cause)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Controller:
    """Runs ticks for the model of ``cfg`` over one store.

    Args:
        cfg: the configuration.
        store, artifacts, executor: the parts (see :class:`~modelpilot.pilot.Pilot`).
        window: where live traffic is read; default the prediction log.
        clock: the current time (a simulated clock in backtests).
        inline: train in this process instead of the executor (backtests, tests).
        observer: called with each monitoring summary and trigger outcome (the server uses it
            to publish drift gauges and trigger counters on /metrics).
        before_tick: called at the start of every tick (an in-process server flushes its
            prediction log so the tick sees everything served so far).
        after_tick: called at the end of every tick, whatever happened (the webhook
            outbox starts draining in the background); must not block.
    """

    def __init__(
        self,
        cfg: PilotConfig,
        store: Store,
        artifacts: ArtifactStore,
        executor: Executor,
        *,
        window: WindowSource | None = None,
        clock: Callable[[], datetime] | None = None,
        inline: bool = False,
        observer: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None,
        before_tick: Callable[[], object] | None = None,
        after_tick: Callable[[], object] | None = None,
    ) -> None:
        self.cfg, self.store, self.artifacts, self.executor = cfg, store, artifacts, executor
        self.model = cfg.model.name
        if window is None:
            from modelpilot.controller.logwindow import LogWindow

            window = LogWindow(artifacts, self.model, store)
        self.window = window
        self.clock = clock or (lambda: datetime.now(UTC))
        self.inline = inline
        self.observer = observer
        self.before_tick = before_tick
        self.after_tick = after_tick
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._rollout_busy = False  # a progressive rollout is undecided: no new retrain
        self._history: Any = None

    # ------------------------------------------------------------------ state

    def _load(self) -> tuple[dict[str, Any], int]:
        rec = self.store.get_state_record(NAMESPACE, self.model)
        return (dict(rec.value), rec.revision) if rec else ({"phase": "idle"}, 0)

    def _save(self, state: dict[str, Any], revision: int) -> int:
        return self.store.put_state(NAMESPACE, self.model, state, expected_revision=revision)

    # ------------------------------------------------------------------ the tick

    def tick(self, now: datetime | None = None, *, force_retrain_reason: str | None = None) -> TickResult:
        """Run one tick; safe to call again after a crash at any point.

        ``force_retrain_reason`` starts a retrain on this tick whatever the triggers and the
        budget say (a backtest's fixed cadence); data selection, gate and rollout are as usual.

        Raises:
            ModelpilotError: only for problems a user must fix (no champion is not one: the
                tick reports it and does nothing).
        """
        try:
            return self._tick(now, force_retrain_reason)
        finally:
            if self.after_tick is not None:
                try:
                    self.after_tick()
                except Exception:  # a notification must never stop the loop
                    log.exception("the after-tick hook of %s failed", self.model)

    def _tick(self, now: datetime | None, force_retrain_reason: str | None) -> TickResult:
        if self.before_tick is not None:
            self.before_tick()
        now = now or self.clock()
        state, revision = self._load()
        result = TickResult(self.model, now.isoformat(), state.get("phase", "idle"))
        try:
            self._rollout_busy = self._rollout_tick(state, result, now)
        except Conflict:
            result.actions.append("the rollout was changed by another actor first; skipped")
        champion = self.store.get_alias(self.model, "champion")
        if champion is None:
            result.actions.append("no champion yet: run 'modelpilot train'")
            return result
        self._measure_promotions(champion, now)
        try:
            if state.get("phase") == "retraining":
                return self._retrain(state, revision, result, now, resumed=True)
            return self._monitor(state, revision, result, now, champion, force=force_retrain_reason)
        except Conflict:
            result.actions.append("another controller changed the state first; skipped")
            return result
        except Exception as exc:  # bad data must not stop the loop: record why, tick again later
            return self._tick_failed(result, now, exc)

    def _tick_failed(self, result: TickResult, now: datetime, exc: Exception) -> TickResult:
        """One ``tick_failed`` event per cause (not one per tick), kept in the state."""
        reason = _reason(exc)
        log.error("controller tick for %s failed: %s", self.model, reason, exc_info=not isinstance(exc, ModelpilotError))
        result.error = reason
        result.actions.append(f"tick failed: {reason}")
        try:
            state, revision = self._load()
            failing = state.get("failing") or {}
            if failing.get("reason") != reason:
                self.store.add_event("tick_failed", model=self.model, actor="controller",
                                     reason=f"{reason}; the champion keeps serving and the next tick tries again")
                failing = {"reason": reason, "since": now.isoformat(), "ticks": 0}
            state["failing"] = {**failing, "ticks": int(failing.get("ticks", 0)) + 1}
            self._save(state, revision)
        except Exception:  # the store itself is failing: the log line above is all we can do
            log.exception("cannot record the failed tick of %s", self.model)
        return result

    def _measure_promotions(self, champion: int, now: datetime) -> None:
        """Each promotion against the model it retired, on the rows both scored (policy/roi.py)."""
        from modelpilot.controller.counterfactual import measure

        try:
            measure(self.store, self.window, self.model, champion, self.store.get_version(self.model, champion).task, now)
        except ModelpilotError as exc:  # a measurement must never stop the loop
            log.warning("model %s: measuring promotions failed: %s", self.model, exc)

    def _monitor(
        self, state: dict[str, Any], revision: int, result: TickResult, now: datetime, champion: int,
        force: str | None = None,
    ) -> TickResult:
        cfg = self.cfg
        version = self.store.get_version(self.model, champion)
        reference = get_json(self.artifacts, version.reference_key) if version.reference_key else {"columns": {}}
        since = now - timedelta(seconds=cfg.monitoring.window_time) if cfg.monitoring.window_time else None
        window = self.window.window(last_n=cfg.monitoring.window_size, since=since, until=now)
        labelled = self.window.labelled(last_n=cfg.monitoring.window_size, since=since)
        summary, details = summarize(cfg, window, labelled, version, reference)
        triggers = TriggerState.from_dict(state.get("triggers"))
        summary["change"] = self._change_report(champion, version, triggers.change)
        summary["weighted_drift_share"] = weighted_drift_share(self.store, version, summary)
        self.store.add_monitoring_report(
            self.model,
            champion,
            window_start=datetime.fromisoformat(summary["window_start"]) if summary["window_start"] else None,
            window_end=datetime.fromisoformat(summary["window_end"]) if summary["window_end"] else None,
            n_predictions=summary["n_predictions"],
            n_labelled=summary["n_labelled"],
            summary=summary,
            details_key=put_json(self.artifacts, details),
        )
        result.summary = summary
        result.actions.append("monitored")
        state.pop("failing", None)

        if triggers.reference is None or triggers.metric != cfg.primary_metric:
            # references from the champion's own validation, overall and per segment, so a
            # drift that began before the first tick shows against what the model scored
            base = version.metrics.get(cfg.primary_metric)
            if base is not None:
                triggers = reset_reference(
                    triggers, base, f"v{champion} validation", metric=cfg.primary_metric, now=now,
                    triggers=cfg.triggers, segments=validation_segments(
                        self.store, version, cfg.primary_metric, cfg.triggers.segment_performance_drop.min_samples),
                )
        ms = MonitoringSummary.from_dict({**summary, "window_end": summary["window_end"] or now.isoformat()})
        outcome = evaluate(cfg, ms, triggers, now)
        if force and not outcome.retrain:
            outcome = replace(outcome, retrain=True, reason=force)
        for decision in outcome.decisions:
            result.decisions.append(decision.to_dict())
            if decision.kind:
                self.store.add_event(
                    decision.kind,
                    model=self.model,
                    subject=decision.name,
                    actor="controller",
                    reason=decision.reason,
                    numbers={**decision.numbers, "value": decision.value, "threshold": decision.threshold},
                )
        if self.observer is not None:
            self.observer(summary, result.decisions)
        state["triggers"] = outcome.new_state.to_dict()
        waiting = state.get("waiting")
        if waiting and now - datetime.fromisoformat(waiting["since"]) > timedelta(seconds=cfg.triggers.performance_drop.cooldown):
            state.pop("waiting")  # waited a whole cooldown: let the triggers decide afresh
            waiting = None
        if self._rollout_busy and (outcome.retrain or waiting):
            result.actions.append("retrain deferred: a rollout is in progress")
        if (not outcome.retrain and not waiting) or self._rollout_busy:
            self._save(state, revision)
            return result
        reason = outcome.reason if outcome.retrain or not waiting else str(waiting["reason"])

        # a retrain is due: persist its inputs before training starts
        try:
            data = self._retraining_data(champion, summary, now, state)
            # the same checks as `train`, plus the new rows against the champion's reference
            check_retraining_data(cfg, data, version, reference).raise_if_failed()
            frames = {"train_key": write_frame(self.artifacts, data.train),
                      "holdout_key": write_frame(self.artifacts, data.holdout)}
        except WaitForData as exc:
            if not waiting:
                self.store.add_event("retrain_waiting", model=self.model, actor="controller", reason=f"{reason}; {exc}")
                state["waiting"] = {"reason": reason, "since": now.isoformat()}
            result.actions.append(f"retrain waiting: {exc}")
            self._save(state, revision)
            return result
        except Exception as exc:  # the trigger state (its cooldown) is saved: no new firing every tick
            kind = "retrain_skipped" if isinstance(exc, ModelpilotError) else "retrain_failed"
            numbers: dict[str, Any] = {}
            if isinstance(exc, ValidationFailed) and isinstance(exc.report, ValidationReport):
                kind, numbers = "retrain_blocked", {"checks": list(dict.fromkeys(c.name for c in exc.report.failed))}
            self.store.add_event(kind, model=self.model, actor="controller", numbers=numbers,
                                 reason=f"{_reason(exc)}; the champion keeps serving")
            result.actions.append(f"{kind.replace('_', ' ')}: {_reason(exc)}")
            state.pop("waiting", None)
            # the change trigger has no cooldown (it is paced by rows): a retrain on its rows that
            # could not start counts as tried, so it is retried only once refresh_factor × more
            # rows have arrived, not on every tick
            tried = [d.numbers.get("rows_since_change") for d in outcome.decisions
                     if d.name == "change" and d.status == "fired"]
            if tried and tried[0]:
                state["triggers"] = change_retrained(
                    TriggerState.from_dict(state["triggers"]), int(tried[0])).to_dict()
            self._save(state, revision)
            return result
        state.pop("waiting", None)
        if data.info.get("after_change"):  # paces the refreshes on the rows after the change
            state["triggers"] = change_retrained(
                TriggerState.from_dict(state["triggers"]), data.info["recent_rows"] + data.info["holdout_rows"]
            ).to_dict()
        key = f"retrain:{uuid.uuid4().hex}"
        state.update(
            phase="retraining",
            retrain={
                "key": key,
                "reason": reason,
                "champion": champion,
                **frames,
                "info": data.info,
                "started_at": now.isoformat(),
                "owner": self.owner,
                "lease_until": time.time() + LEASE_SECONDS,
            },
        )
        revision = self._save(state, revision)
        self.store.add_event(
            "retrain_started",
            model=self.model,
            subject=key,
            actor="controller",
            reason=reason,
            numbers={**data.info, "champion": champion},
        )
        result.actions.append("retrain started")
        return self._retrain(state, revision, result, now, resumed=False)

    def _change_report(self, champion: int, version: Any, known: ChangeState | None) -> dict[str, Any] | None:
        """The change detector on the champion's labelled errors, in label order (``summary.change``)."""
        c = self.cfg.triggers.change
        rows = self.window.labelled(last_n=c.max_rows)
        if not len(rows):
            return None
        served = rows[rows["model_version"].to_numpy() == champion]
        detector = get_change_detector(c.method, alpha=c.alpha, min_rows=c.min_rows)
        # the champion's first labelled rows are its own post-deployment level
        errors = row_errors(served, version.task) if len(served) else np.empty(0)
        report = detector.fit(errors[: c.min_rows]).update(errors[c.min_rows :]).report()
        out: dict[str, Any] = {**report.to_dict(), "version": champion}
        if report.detected and report.change_at is not None:
            out["since"] = served["ts"].iloc[report.change_at].isoformat()
        if len(served):
            out["champion_since"] = served["ts"].iloc[0].isoformat()
        if known is not None:
            out["rows_since_known"] = int((rows["ts"] >= known.since).sum())
        return out

    def _retraining_data(
        self, champion: int, summary: dict[str, Any], now: datetime, state: dict[str, Any] | None = None
    ) -> Any:
        cfg = self.cfg
        version = self.store.get_version(self.model, champion)
        rows = self.window.labelled(last_n=cfg.retraining.recent_rows * 4)
        labelled = log_to_frame(rows, cfg, version.classes) if len(rows) else rows
        known = TriggerState.from_dict((state or {}).get("triggers")).change
        change_at, needed = None, None
        if cfg.retraining.change_point and known is not None and len(rows):
            # rows before the located change follow the old concept: only rows after it are used
            after = (rows["ts"] >= known.since).to_numpy()
            if after.any():
                change_at = int(np.argmax(after))
                g = cfg.gates
                if cfg.primary_metric == "accuracy" and known.level_after is not None and g.non_inferiority_margin > 0:
                    needed = noninferiority_rows(g.non_inferiority_margin, alpha=g.alpha, power=g.power,
                                                 variance=paired_accuracy_variance(known.level_after))
        history = self._source_history() if cfg.retraining.include_source else None
        data = select_retraining_data(
            cfg, labelled, history=history, bad_segments=self._bad_segments(summary),
            change_at=change_at, holdout_rows_needed=needed,
            # reproducible: the same labelled data and champion give the same sample
            seed=(cfg.model.seed * 1_000_003 + champion * 7_919 + len(rows)) % 2**31,
        )
        if known is not None and change_at is not None:
            stale = champion <= known.version  # the champion learned the concept before the change
            data.info.update(
                stale_champion=stale,
                # the champion predates the change, or a refresh is under way: not worse is enough
                non_inferiority=stale or known.trained_rows < cfg.retraining.recent_rows,
                # the champion learned from rows after the change too, from fewer of them
                refresh=not stale,
                change_since=known.since.isoformat(),
            )
        return data

    def _bad_segments(self, summary: dict[str, Any]) -> list[tuple[str, str]]:
        """Segments doing clearly worse than the whole window (half the segment threshold)."""
        overall = summary.get("performance")
        if overall is None:
            return []
        sign = 1.0 if higher_is_better(self.cfg.primary_metric) else -1.0
        margin = self.cfg.triggers.segment_performance_drop.threshold / 2
        bad = []
        for name, seg in (summary.get("segment_performance") or {}).items():
            if seg.get("value") is not None and sign * (overall - seg["value"]) > margin:
                column, _, value = name.partition("=")
                bad.append((column, value))
        return bad

    def _source_history(self) -> Any:
        if self._history is None and (self.cfg.data.source or self.cfg.data.query):
            from modelpilot.data import load_source

            self._history = load_source(self.cfg)
        return self._history

    def _retrain(
        self, state: dict[str, Any], revision: int, result: TickResult, now: datetime, *, resumed: bool
    ) -> TickResult:
        job = state["retrain"]
        if resumed:
            lease_held = job.get("lease_until", 0) > time.time() and not _owner_gone(job.get("owner"))
            if job.get("owner") != self.owner and lease_held:
                result.actions.append("a retrain is in progress in another controller")
                return result
            job.update(owner=self.owner, lease_until=time.time() + LEASE_SECONDS)
            revision = self._save(state, revision)
            self._fail_interrupted_runs()
            self.store.add_event(
                "retrain_resumed", model=self.model, subject=job["key"], actor="controller",
                reason="the previous controller stopped during this retrain; resuming it",
            )
            result.actions.append("retrain resumed")
        result.phase = "retraining"
        candidate = self.store.find_version_by_key(self.model, job["key"])
        train_result: dict[str, Any] | None = None
        if candidate is None:
            try:
                train_result, revision = self._train(job, state, revision)
            except Exception as exc:  # bad data, a crashed worker...: one event, back to idle
                self.store.add_event(
                    "retrain_failed", model=self.model, subject=job["key"], actor="controller",
                    reason=f"{_reason(exc)}; the champion keeps serving",
                )
                result.actions.append(f"retrain failed: {_reason(exc)}")
                return self._finish(state, revision, result, now, cost=0.0, score=None)
            candidate = self.store.get_version(self.model, train_result["version"])
        result.retrain = {"version": candidate.version, "key": job["key"], "info": job.get("info", {})}
        cost = float((train_result or {}).get("cost", {}).get("total") or candidate.cost or 0.0)
        self.store.add_event(
            "retrain_finished", model=self.model, subject=f"v{candidate.version}", actor="controller",
            reason=job.get("reason", ""), numbers={"version": candidate.version, "cost": cost, **candidate.metrics},
        )
        champion = self.store.get_alias(self.model, "champion")
        if champion == candidate.version:  # promoted before a crash; nothing left to decide
            return self._finish(state, revision, result, now, cost=cost, score=None)
        holdout = read_frame(self.artifacts, job["holdout_key"])
        info = job.get("info", {})
        verdict = gate_candidate(self.cfg, self.store, self.artifacts, candidate, champion, holdout,
                                 after_change=bool(info.get("non_inferiority")), refresh=bool(info.get("refresh")))
        verdict = check_labels(self.cfg, self.store, self.window, champion, candidate.version, verdict)
        result.gate = verdict
        if not verdict["passed"]:
            self.store.set_version_status(
                self.model, candidate.version, "rejected", actor="controller", reason="; ".join(verdict["reasons"])
            )
            self.store.add_event(
                "gate_rejected", model=self.model, subject=f"v{candidate.version}", actor="controller",
                reason="; ".join(verdict["reasons"]) + f"; v{champion} keeps serving", numbers=verdict["numbers"],
            )
            return self._finish(state, revision, result, now, cost=cost, score=verdict["numbers"].get("challenger"))
        self.store.add_event(
            "gate_passed", model=self.model, subject=f"v{candidate.version}", actor="controller",
            reason="; ".join(verdict["reasons"]), numbers=verdict["numbers"],
        )
        if self.cfg.gates.human_approval:  # parked until a person decides (rollout/review.py)
            from modelpilot.rollout.review import request_review

            request_review(self.store, self.model, candidate.version, champion=champion,
                           reason=f"{job.get('reason', 'retrain')}; gate passed", numbers=verdict["numbers"])
            result.actions.append(f"v{candidate.version} awaiting approval")
            return self._finish(state, revision, result, now, cost=cost, score=verdict["numbers"].get("challenger"))
        decision = get_strategy(self.cfg.rollout.strategy, cfg=self.cfg, artifacts=self.artifacts).start(
            self.store, self.model, candidate.version, champion=champion,
            reason=f"{job.get('reason', 'retrain')}; gate passed", numbers=verdict["numbers"], now=now,
        )
        if decision.status == "promoted":
            result.promoted = candidate.version
            triggers = TriggerState.from_dict(state.get("triggers"))
            state["triggers"] = reset_reference(
                triggers, verdict["numbers"]["challenger"], f"v{candidate.version} holdout at promotion",
                metric=self.cfg.primary_metric, now=now, triggers=self.cfg.triggers,
                segments=validation_segments(self.store, candidate, self.cfg.primary_metric,
                                             self.cfg.triggers.segment_performance_drop.min_samples),
            ).to_dict()
        result.actions.append(f"rollout {decision.status}")
        return self._finish(state, revision, result, now, cost=cost, score=verdict["numbers"].get("challenger"))

    def _rollout_tick(self, state: dict[str, Any], result: TickResult, now: datetime) -> bool:
        """Decide timed-out approvals and advance a progressive rollout in progress.

        Returns True while a rollout is still undecided (no retrain starts meanwhile).
        """
        from modelpilot.rollout import review
        from modelpilot.rollout.state import active

        result.actions += review.check_timeouts(self.store, self.cfg, self.model, now=now, artifacts=self.artifacts)
        current = active(self.store, self.model)
        if current is None:
            return False
        strategy = get_strategy(current.strategy, cfg=self.cfg, artifacts=self.artifacts)
        decision = strategy.advance(self.store, self.model, now=now)
        if decision is None:
            return False
        result.actions.append(f"rollout {decision.status}: {decision.reason}")
        if decision.status == "promoted":
            result.promoted = current.candidate
            score = current.numbers.get("challenger")
            if score is not None:
                state["triggers"] = reset_reference(
                    TriggerState.from_dict(state.get("triggers")), score, f"v{current.candidate} holdout at promotion",
                    metric=self.cfg.primary_metric, now=now, triggers=self.cfg.triggers,
                    segments=validation_segments(
                        self.store, self.store.get_version(self.model, current.candidate), self.cfg.primary_metric,
                        self.cfg.triggers.segment_performance_drop.min_samples),
                ).to_dict()
        return decision.status == "in_progress"

    def _finish(
        self, state: dict[str, Any], revision: int, result: TickResult, now: datetime, *, cost: float, score: float | None
    ) -> TickResult:
        triggers = TriggerState.from_dict(state.get("triggers"))
        state["triggers"] = record_retrain(triggers, now, cost, score=score, triggers=self.cfg.triggers).to_dict()
        state["phase"] = "idle"
        state.pop("retrain", None)
        self._save(state, revision)
        result.phase = "idle"
        return result

    def _train(self, job: dict[str, Any], state: dict[str, Any], revision: int) -> tuple[dict[str, Any], int]:
        """Train the candidate (in the executor unless inline), keeping the lease fresh.

        Returns the training result and the state's revision after the lease renewals.
        """
        stop = threading.Event()
        rev = [revision]

        def keep_lease() -> None:
            while not stop.wait(LEASE_SECONDS / 4):
                job["lease_until"] = time.time() + LEASE_SECONDS
                try:
                    rev[0] = self._save(state, rev[0])
                except ModelpilotError:  # lost the lease: the other controller will finish
                    return

        keeper = threading.Thread(target=keep_lease, name="modelpilot-lease", daemon=True)
        keeper.start()
        try:
            cfg = self.cfg
            if cfg.retraining.warm_start and job.get("info", {}).get("after_change"):
                # boosting on from a stale champion fits the new concept badly, and from a model
                # after the change keeps the noise of the few rows it learned from (or an earlier
                # state of a concept still moving): every retrain after a change starts from scratch
                cfg = cfg.model_copy(update={"retraining": cfg.retraining.model_copy(update={"warm_start": False})})
            args = (cfg, job["train_key"], job["key"], job["champion"])
            resampled = int(job.get("info", {}).get("resampled_rows") or 0)
            if self.inline:
                out = run_training(*args, store=self.store, artifacts=self.artifacts, executor=self.executor,
                                   resampled_rows=resampled)
            else:
                out = self.executor.submit(run_training, *args, resampled_rows=resampled).result()
        finally:
            stop.set()
            keeper.join()
        return out, rev[0]

    def _fail_interrupted_runs(self) -> None:
        """Mark the retrain runs the previous controller left running ``failed``.

        A worker of that run still alive on this host (its pool should have taken it down)
        is killed first, so the retrain is never trained twice at once.
        """
        for run in self.store.list_runs(model=self.model, status="running", kind="retrain"):
            _stop_worker(run.tags.get("process"), run.created_at)
            self.store.finish_run(run.id, status="failed", error="interrupted: the controller stopped during training")

    # ------------------------------------------------------------------ the loop

    def run(self, *, interval: float | None = None, stop: threading.Event | None = None, max_ticks: int | None = None) -> None:
        """Tick every ``interval`` seconds (``controller.interval``) until ``stop`` is set."""
        stop = stop or threading.Event()
        interval = self.cfg.controller.interval if interval is None else interval
        ticks = 0
        while not stop.is_set():
            try:
                self.tick()
            except ModelpilotError as exc:
                log.error("controller tick failed: %s", exc)
            except Exception:  # keep the loop alive; the traceback goes to the log
                log.exception("controller tick crashed")
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                return
            stop.wait(interval)

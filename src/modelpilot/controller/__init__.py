"""One tick of the loop: monitor → decide → retrain → gate → roll out.

The controller is the only place that composes training, monitoring, policy and rollout;
each phase of a tick is a module of its own, and :class:`Controller` calls them in order:

* :mod:`~modelpilot.controller.monitor`: read the window, summarise it against the
  champion's reference, run the change detector, store the report;
* :mod:`~modelpilot.controller.decide`: evaluate the triggers (an event per firing,
  suppression and watch) and say whether a retrain is due;
* :mod:`~modelpilot.controller.retrain`: select, check and store the retraining data, then
  train under a lease (:mod:`~modelpilot.controller.jobs` is the job a worker runs);
* :mod:`~modelpilot.controller.gate`: the candidate against the champion on the holdout;
* :mod:`~modelpilot.controller.rollout`: hand a passing candidate to the rollout strategy
  (or park it for approval), and advance a progressive rollout in progress.

Everything it decides is written to the store first (its phase, the retraining data, the
trigger state), so a process killed at any point resumes on the next tick:

* ``idle``: monitor the window, store the report, evaluate the triggers. When a retrain is
  due, the retraining data and the gate's holdout are written to the artifact store and the
  phase becomes ``retraining`` *before* training starts.
* ``retraining``: train under an idempotency key (a version is registered at most once per
  retrain, however often it is resumed), gate the version against the champion on the
  holdout, hand it to the rollout strategy, and go back to ``idle``.

A lease in the state keeps two controllers (``serve --with-controller`` and
``modelpilot controller``) from retraining the same model at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelpilot.artifacts import ArtifactStore
from modelpilot.config import PilotConfig
from modelpilot.controller import retrain, rollout
from modelpilot.controller.decide import decide, retrain_due
from modelpilot.controller.gate import judge
from modelpilot.controller.monitor import monitor
from modelpilot.controller.retrain import LEASE_SECONDS, reason_of
from modelpilot.controller.window import WindowSource
from modelpilot.errors import Conflict, ModelpilotError
from modelpilot.executors import Executor
from modelpilot.policy.triggers import TriggerState, record_retrain
from modelpilot.store import Store

__all__ = ["LEASE_SECONDS", "NAMESPACE", "Controller", "TickResult"]

log = logging.getLogger(__name__)
NAMESPACE = "controller"


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
            result.promoted, self._rollout_busy = rollout.advance(self.cfg, self.store, self.artifacts, state, now,
                                                                  result.actions)
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
        reason = reason_of(exc)
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
        """The idle phase: monitor, decide, and start a retrain when one is due."""
        cfg = self.cfg
        triggers = TriggerState.from_dict(state.get("triggers"))
        summary, version, reference, rows = monitor(cfg, self.store, self.artifacts, self.window, champion, now,
                                                    triggers.change)
        result.summary = summary
        result.actions.append("monitored")
        state.pop("failing", None)

        outcome = decide(cfg, self.store, version, summary, triggers, now, rows=rows, force=force)
        result.decisions += [d.to_dict() for d in outcome.decisions]
        if self.observer is not None:
            self.observer(summary, result.decisions)
        state["triggers"] = outcome.new_state.to_dict()
        reason = retrain_due(cfg, state, outcome, now, rows)
        if reason is not None and self._rollout_busy:
            result.actions.append("retrain deferred: a rollout is in progress")
        if reason is None or self._rollout_busy:
            self._save(state, revision)
            return result

        # a retrain is due: persist its inputs before training starts
        try:
            data, frames = retrain.prepare(cfg, self.artifacts, self.window, version, reference, summary, state,
                                           history=self._source_history)
        except Exception as exc:
            result.actions.append(retrain.not_started(cfg, self.store, state, outcome, reason, exc, now))
            self._save(state, revision)
            return result
        key = retrain.begin(state, data, frames, reason=reason, champion=champion, now=now, owner=self.owner)
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

    def _source_history(self) -> Any:
        """The configured source's rows (read once, kept for later retrains)."""
        if self._history is None and (self.cfg.data.source or self.cfg.data.query):
            from modelpilot.data import load_source

            self._history = load_source(self.cfg)
        return self._history

    def _retrain(
        self, state: dict[str, Any], revision: int, result: TickResult, now: datetime, *, resumed: bool
    ) -> TickResult:
        """The retraining phase: train (or find the version trained), gate, roll out, back to idle."""
        job = state["retrain"]
        if resumed:
            if not retrain.take_over(job, self.owner):
                result.actions.append("a retrain is in progress in another controller")
                return result
            revision = self._save(state, revision)
            retrain.fail_interrupted_runs(self.store, self.model)
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
                train_result, revision = retrain.train_candidate(
                    self.cfg, self.store, self.artifacts, self.executor, job, inline=self.inline,
                    save=lambda rev: self._save(state, rev), revision=revision,
                )
            except retrain.TrainingFailed as failed:  # bad data, a crashed worker...: one event, back to idle
                exc, revision = failed.cause, failed.revision  # the lease renewals moved the revision
                retrain.fail_job_runs(self.store, self.model, job["key"], reason_of(exc))
                self.store.add_event(
                    "retrain_failed", model=self.model, subject=job["key"], actor="controller",
                    reason=f"{reason_of(exc)}; the champion keeps serving",
                )
                result.actions.append(f"retrain failed: {reason_of(exc)}")
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
        verdict = judge(self.cfg, self.store, self.artifacts, self.window, candidate, champion, job)
        result.gate = verdict
        if verdict["passed"]:
            action, promoted = rollout.release(self.cfg, self.store, self.artifacts, state, candidate, champion,
                                               job, verdict, now)
            result.actions.append(action)
            result.promoted = promoted if promoted is not None else result.promoted
        return self._finish(state, revision, result, now, cost=cost, score=verdict["numbers"].get("challenger"))

    def _finish(
        self, state: dict[str, Any], revision: int, result: TickResult, now: datetime, *, cost: float, score: float | None
    ) -> TickResult:
        """Back to idle: the retrain counted against the budget and the cooldowns, the job dropped."""
        triggers = TriggerState.from_dict(state.get("triggers"))
        state["triggers"] = record_retrain(triggers, now, cost, score=score, triggers=self.cfg.triggers).to_dict()
        state["phase"] = "idle"
        state.pop("retrain", None)
        self._save(state, revision)
        result.phase = "idle"
        return result

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

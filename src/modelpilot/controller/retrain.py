"""The retrain phase of a tick: the data chosen, checked and stored, then training under a lease.

A retrain starts in two steps so a process killed at any point resumes it: :func:`prepare`
selects the retraining data (rows after a located change only, the bad segments upsampled,
the configured source mixed in) and checks it as ``train`` would, then writes the training
frame and the gate's holdout to the artifact store; :func:`begin` records the job in the
controller's state, which the controller saves *before* training starts. :func:`train_candidate`
trains it (in the executor unless inline) and keeps the job's lease fresh meanwhile; a
controller that finds a job whose lease has lapsed or whose owner died takes it over
(:func:`take_over`) after failing the runs the previous one left (:func:`fail_interrupted_runs`).

When the data cannot be had, :func:`not_started` records why: the loop waits for rows after
a change (``retrain_waiting``), or skips this retrain with one event and its reason.
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
from datetime import UTC, datetime
from typing import Any

import numpy as np

from modelpilot.artifacts import ArtifactStore
from modelpilot.config import PilotConfig
from modelpilot.controller.checks import check_retraining_data
from modelpilot.controller.data import (
    RetrainData,
    WaitForData,
    log_to_frame,
    select_retraining_data,
)
from modelpilot.controller.jobs import run_training, write_frame
from modelpilot.controller.window import WindowSource
from modelpilot.data.validation import ValidationReport
from modelpilot.errors import ModelpilotError, ValidationFailed
from modelpilot.executors import Executor
from modelpilot.metrics import shortfall
from modelpilot.policy.change import change_retrained
from modelpilot.policy.compare import noninferiority_rows, paired_accuracy_variance
from modelpilot.policy.triggers import TriggerOutcome, TriggerState
from modelpilot.store import ModelVersionRecord, Store

log = logging.getLogger(__name__)
LEASE_SECONDS = 120.0


def reason_of(exc: BaseException) -> str:
    """A failure as a person reads it: our own errors say it all, others need their type."""
    if isinstance(exc, ModelpilotError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# ---------------------------------------------------------------------- the data


def bad_segments(cfg: PilotConfig, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Segments doing clearly worse than the whole window (half the segment threshold)."""
    overall = summary.get("performance")
    if overall is None:
        return []
    margin = cfg.triggers.segment_performance_drop.threshold / 2  # in the trigger's units
    bad = []
    for name, seg in (summary.get("segment_performance") or {}).items():
        if seg.get("value") is not None and shortfall(cfg.primary_metric, seg["value"], overall) > margin:
            column, _, value = name.partition("=")
            bad.append((column, value))
    return bad


def retraining_data(
    cfg: PilotConfig, window: WindowSource, version: ModelVersionRecord, summary: dict[str, Any],
    state: dict[str, Any] | None = None, *, history: Any = None,
) -> RetrainData:
    """The retraining set for the champion ``version`` from the window's labelled rows.

    Rows before the change the trigger state located are left out; when the holdout must
    carry a non-inferiority test its size is the test's (``gates.non_inferiority_margin``).
    ``history``: the configured source's rows, mixed in when ``retraining.include_source``.
    """
    champion = version.version
    rows = window.labelled(last_n=cfg.retraining.recent_rows * 4)
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
    data = select_retraining_data(
        cfg, labelled, history=history, bad_segments=bad_segments(cfg, summary),
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


def prepare(
    cfg: PilotConfig, artifacts: ArtifactStore, window: WindowSource, version: ModelVersionRecord,
    reference: dict[str, Any], summary: dict[str, Any], state: dict[str, Any], *, history: Callable[[], Any],
) -> tuple[RetrainData, dict[str, str]]:
    """Select and check the retraining data, then store it; returns it with its frames' keys.

    ``history`` is called only when the configured source is mixed in.

    Raises:
        WaitForData: too few rows after a located change yet.
        ValidationFailed: the data fails the checks ``train`` runs, or drifted from the
            champion's reference beyond what a retrain may learn.
    """
    data = retraining_data(cfg, window, version, summary, state,
                           history=history() if cfg.retraining.include_source else None)
    # the same checks as `train`, plus the new rows against the champion's reference
    check_retraining_data(cfg, data, version, reference).raise_if_failed()
    frames = {"train_key": write_frame(artifacts, data.train), "holdout_key": write_frame(artifacts, data.holdout)}
    return data, frames


# ---------------------------------------------------------------------- starting


def not_started(cfg: PilotConfig, store: Store, state: dict[str, Any], outcome: TriggerOutcome, reason: str,
                exc: Exception, now: datetime) -> str:
    """Record why a due retrain could not start (one event); returns the tick's action.

    Waiting for rows after a change is remembered in ``state["waiting"]`` (one
    ``retrain_waiting`` event, not one per tick); any other failure is a ``retrain_skipped``
    (a user must fix it), ``retrain_blocked`` (the data checks failed) or ``retrain_failed``
    event. The trigger state (its cooldown) is kept, so the triggers do not fire again on
    every tick.
    """
    model = cfg.model.name
    if isinstance(exc, WaitForData):
        if not state.get("waiting"):
            store.add_event("retrain_waiting", model=model, actor="controller", reason=f"{reason}; {exc}")
            state["waiting"] = {"reason": reason, "since": now.isoformat()}
        return f"retrain waiting: {exc}"
    kind = "retrain_skipped" if isinstance(exc, ModelpilotError) else "retrain_failed"
    numbers: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed) and isinstance(exc.report, ValidationReport):
        kind, numbers = "retrain_blocked", {"checks": list(dict.fromkeys(c.name for c in exc.report.failed))}
    store.add_event(kind, model=model, actor="controller", numbers=numbers,
                    reason=f"{reason_of(exc)}; the champion keeps serving")
    state.pop("waiting", None)
    # the change trigger has no cooldown (it is paced by rows): a retrain on its rows that
    # could not start counts as tried, so it is retried only once refresh_factor × more
    # rows have arrived, not on every tick
    tried = [d.numbers.get("rows_since_change") for d in outcome.decisions if d.name == "change" and d.status == "fired"]
    if tried and tried[0]:
        state["triggers"] = change_retrained(TriggerState.from_dict(state["triggers"]), int(tried[0])).to_dict()
    return f"{kind.replace('_', ' ')}: {reason_of(exc)}"


def begin(state: dict[str, Any], data: RetrainData, frames: dict[str, str], *, reason: str, champion: int,
          now: datetime, owner: str) -> str:
    """Record a new retrain job in ``state`` (phase ``retraining``, owned by ``owner``); returns its key."""
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
            "owner": owner,
            "lease_until": time.time() + LEASE_SECONDS,
        },
    )
    return key


# ---------------------------------------------------------------------- the lease


def owner_gone(owner: str | None) -> bool:
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


def take_over(job: dict[str, Any], owner: str) -> bool:
    """Claim a stored retrain job for ``owner`` unless another live controller holds its lease."""
    lease_held = job.get("lease_until", 0) > time.time() and not owner_gone(job.get("owner"))
    if job.get("owner") != owner and lease_held:
        return False
    job.update(owner=owner, lease_until=time.time() + LEASE_SECONDS)
    return True


def stop_worker(process: Any, run_created: datetime) -> None:
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


def fail_interrupted_runs(store: Store, model: str) -> None:
    """Mark the retrain runs the previous controller left running ``failed``.

    A worker of that run still alive on this host (its pool should have taken it down)
    is killed first, so the retrain is never trained twice at once.
    """
    for run in store.list_runs(model=model, status="running", kind="retrain"):
        stop_worker(run.tags.get("process"), run.created_at)
        store.finish_run(run.id, status="failed", error="interrupted: the controller stopped during training")


def fail_job_runs(store: Store, model: str, key: str, reason: str) -> None:
    """Mark the runs of retrain ``key`` still ``running`` failed: a worker that died (killed,
    out of memory, its node lost) could not record its own end."""
    for run in store.list_runs(model=model, status="running", kind="retrain"):
        if (run.tags.get("process") or {}).get("idempotency_key") == key:
            store.finish_run(run.id, status="failed", error=f"the training worker failed: {reason}")


# ---------------------------------------------------------------------- training


class TrainingFailed(Exception):
    """Training the candidate raised ``cause``; ``revision`` is the state's revision after the
    lease renewals made meanwhile, so the failure can still be saved."""

    def __init__(self, cause: Exception, revision: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.revision = revision


def train_candidate(
    cfg: PilotConfig, store: Store, artifacts: ArtifactStore, executor: Executor, job: dict[str, Any], *,
    inline: bool, save: Callable[[int], int], revision: int,
) -> tuple[dict[str, Any], int]:
    """Train the job's candidate (in the executor unless ``inline``), keeping the lease fresh.

    ``save(revision)`` stores the state holding ``job`` and returns the new revision; it is
    called every quarter lease while training runs.

    Returns:
        The training result and the state's revision after the lease renewals.

    Raises:
        TrainingFailed: training raised (bad data, a worker that died); it carries the cause
            and the revision after the renewals.
    """
    stop = threading.Event()
    rev = [revision]

    def keep_lease() -> None:
        while not stop.wait(LEASE_SECONDS / 4):
            job["lease_until"] = time.time() + LEASE_SECONDS
            try:
                rev[0] = save(rev[0])
            except ModelpilotError:  # lost the lease: the other controller will finish
                return

    keeper = threading.Thread(target=keep_lease, name="modelpilot-lease", daemon=True)
    keeper.start()
    try:
        if cfg.retraining.warm_start and job.get("info", {}).get("after_change"):
            # boosting on from a stale champion fits the new concept badly, and from a model
            # after the change keeps the noise of the few rows it learned from (or an earlier
            # state of a concept still moving): every retrain after a change starts from scratch
            cfg = cfg.model_copy(update={"retraining": cfg.retraining.model_copy(update={"warm_start": False})})
        args = (cfg, job["train_key"], job["key"], job["champion"])
        resampled = int(job.get("info", {}).get("resampled_rows") or 0)
        if inline:
            out = run_training(*args, store=store, artifacts=artifacts, executor=executor, resampled_rows=resampled)
        else:
            out = executor.submit(run_training, *args, resampled_rows=resampled).result()
    except Exception as exc:
        stop.set()
        keeper.join()  # its last renewal is in rev[0]
        raise TrainingFailed(exc, rev[0]) from exc
    finally:
        stop.set()
        keeper.join()
    return out, rev[0]

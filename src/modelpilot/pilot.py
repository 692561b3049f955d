"""``Pilot``: the Python face of modelpilot; what the CLI does, the library does.

Example::

    pilot = Pilot.from_config("pilot.yaml")
    result = pilot.train()
    print(result.version, result.metrics)
    pilot.close()
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.artifacts import ArtifactStore, open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.errors import ConfigError
from modelpilot.executors import Executor, make_executor
from modelpilot.store import Store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import pandas as pd
    from fastapi import FastAPI

    from modelpilot.backtest import BacktestResult
    from modelpilot.controller import Controller
    from modelpilot.integrations.webhooks import WebhookDispatcher
    from modelpilot.tracking import Run
    from modelpilot.training import TrainResult

log = logging.getLogger(__name__)
#: the most seconds closing a Pilot spends sending its commands' webhooks
WEBHOOK_CLOSE_BUDGET = 5.0


class Pilot:
    """Holds one config and the store, artifact store and executor it names.

    The parts are opened lazily, so a command that only reads the store never starts
    worker processes. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, cfg: PilotConfig) -> None:
        self.cfg = cfg

    @classmethod
    def from_config(cls, path: str | Path = "pilot.yaml") -> Pilot:
        """Load ``pilot.yaml``; raises ConfigError naming any bad key."""
        return cls(PilotConfig.load(path))

    @cached_property
    def store(self) -> Store:
        if self.cfg.store_url.startswith("sqlite:///"):
            Path(self.cfg.store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        store = Store.open(self.cfg.store_url)
        if self.cfg.webhooks:
            from modelpilot.integrations.webhooks import start_cursors

            start_cursors(store, [h.name for h in self.cfg.webhooks])
        return store

    @cached_property
    def webhooks(self) -> WebhookDispatcher | None:
        """The outbox sender of ``webhooks:`` (None when none is configured).

        Raises:
            ConfigError: a webhook's ``secret_env`` variable is not set.
        """
        if not self.cfg.webhooks:
            return None
        from modelpilot.integrations.webhooks import WebhookDispatcher

        return WebhookDispatcher(self.cfg.webhooks, self.store)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        return open_artifacts(self.cfg.artifacts_url, self.cfg.artifacts.options)

    @cached_property
    def executor(self) -> Executor:
        return make_executor(self.cfg.executor)

    # ------------------------------------------------------------------ actions

    def train(
        self,
        *,
        data: pd.DataFrame | None = None,
        progress: Callable[[str, int, int | None], None] | None = None,
        **kwargs: Any,
    ) -> TrainResult:
        """Validate, tune, fit, evaluate, profile and register a version (see ``training.train``)."""
        from modelpilot.training import train

        return train(self.cfg, self.store, self.artifacts, self.executor, data=data, progress=progress, **kwargs)

    def controller(self, **kwargs: Any) -> Controller:
        """A :class:`~modelpilot.controller.Controller` over this pilot's parts."""
        from modelpilot.controller import Controller

        if self.webhooks is not None:  # each tick's events go out in the background
            kwargs.setdefault("after_tick", self.webhooks.kick)
        return Controller(self.cfg, self.store, self.artifacts, self.executor, **kwargs)

    def tick(self) -> dict[str, Any]:
        """One controller tick: monitor, evaluate triggers, retrain, gate, roll out."""
        return self.controller().tick().to_dict()

    def serve(
        self, host: str | None = None, port: int | None = None, *, with_controller: bool = False,
        on_event: Callable[[dict[str, Any]], None] | None = None, workers: int = 1,
    ) -> int:
        """Serve the champions over HTTP until SIGTERM/SIGINT (blocking).

        With ``with_controller`` the controller ticks in a background thread of the same
        process; training still runs in the executor's worker processes. ``on_event`` is
        called with each new audit-log event of the model while the server runs (the CLI
        prints them as a timeline).

        ``workers > 1`` runs that many server processes on the port (:mod:`modelpilot.serving.workers`),
        each with its own model cache and prediction-log segments; the controller, if asked
        for, runs in the first one. Returns the exit code (0 after an orderly stop).
        """
        from modelpilot.serving.server import run_server

        if with_controller and self.cfg.executor.kind == "ray":
            raise ConfigError(
                "serve --with-controller: executor.kind is ray, and ray.init would replace the server's "
                "SIGTERM handler (a stop would no longer drain the prediction log); run "
                "'modelpilot controller' as a process of its own next to the servers"
            )
        if workers > 1:
            from modelpilot.serving.workers import serve_workers

            return serve_workers(self.cfg, host or self.cfg.serving.host,
                                 self.cfg.serving.port if port is None else port, workers,
                                 with_controller=with_controller)
        lifespan = controller_lifespan(self, on_event=on_event) if with_controller else None
        run_server(self.cfg, host, port, store=self.store, artifacts=self.artifacts, extra_lifespan=lifespan)
        return 0

    def predict(self, input_path: str | Path, output_path: str | Path, *, explain: bool = False,
                intervals: bool = False) -> dict[str, Any]:
        """Score a Parquet/CSV file with the champion, logging every row like the server;
        ``explain`` adds each feature's contribution (``contribution_<feature>``, ``base_value``),
        ``intervals`` the conformal interval (``interval_low``, ``interval_high``) or prediction
        set (``prediction_set``, a JSON list) of every row."""
        from modelpilot.serving.batch import predict_batch

        return predict_batch(self.cfg, self.store, self.artifacts, input_path, output_path, explain=explain,
                             intervals=intervals)

    def backtest(self, data: pd.DataFrame | None = None, **kwargs: Any) -> BacktestResult:
        """Replay a labelled history (default ``data.source``; or ``scenario=NAME``) under
        several retraining policies, in parallel through the executor.

        Keyword arguments are those of :func:`modelpilot.backtest.engine.backtest`:
        ``scenario``, ``rows``, ``policies`` (e.g. ``["never", "fixed:every=5", "dynamic"]``),
        ``batch``, ``label_delay``, ``initial``. Nothing is written to this pilot's store.
        """
        from modelpilot.backtest.engine import backtest

        return backtest(self.cfg, data=data, executor=self.executor, **kwargs)

    def run(self, name: str, *, model: str | None = None, params: dict[str, Any] | None = None,
            tags: dict[str, Any] | None = None) -> Run:
        """Start a tracked run of your own experiment (``with pilot.run("name") as run: ...``).

        It is stored beside the training runs (``modelpilot runs list``), under ``model``
        (default ``model.name``); see :mod:`modelpilot.tracking`.
        """
        from modelpilot.tracking import start_run

        return start_run(self.store, self.artifacts, name, model or self.cfg.model.name, params=params, tags=tags)

    def status(self) -> dict[str, Any]:
        """Models, their versions and aliases: ``{"models": [{"name", "versions", "aliases", "rollout",
        "pending_approvals", "roi"}]}``; ``roi`` is :func:`modelpilot.controller.counterfactual.roi_report`."""
        models = []
        for name in self.store.list_models():
            versions = [
                {
                    "version": v.version,
                    "status": v.status,
                    "metrics": v.metrics,
                    "created_at": v.created_at.isoformat(),
                    "parent_version": v.lineage.get("parent_version"),
                    "run_id": v.run_id,
                }
                for v in self.store.list_versions(name)
            ]
            from modelpilot.controller.counterfactual import roi_report
            from modelpilot.rollout.state import describe

            models.append({
                "name": name, "versions": versions, "aliases": self.store.aliases(name),
                "rollout": describe(self.store, name, self.cfg),
                "pending_approvals": [a.version for a in self.store.pending_approvals(name)],
                # cost, value and ROI per retrain, per period and in total (the Cost page's numbers)
                "roi": roi_report(self.cfg, self.store, name),
            })
        return {"models": models}

    # ------------------------------------------------------------------ review (rollout/review.py)

    def actor(self, token: str | None, action: str) -> str:
        """Who acts: the token's name when one is given (it must be operator or above).

        Once any token exists, changing commands need one (``--token`` or
        ``MODELPILOT_TOKEN``); before that, the local user acts.

        Raises:
            AuthError: a token is needed and missing or unknown. Forbidden: its role is too low.
        """
        import getpass

        from modelpilot import auth

        if token is None and not auth.tokens_exist(self.store):
            return f"{getpass.getuser()} (local)"
        return auth.require(self.store, token, "operator", action=action, model=self.cfg.model.name).name

    def approve(self, version: int, comment: str | None = None, *, token: str | None = None) -> dict[str, Any]:
        """Approve a candidate awaiting approval; the configured rollout starts."""
        from modelpilot.rollout import review

        actor = self.actor(token, "approve")
        d = review.approve(self.store, self.cfg, self.cfg.model.name, version, actor, comment, artifacts=self.artifacts)
        return {"model": self.cfg.model.name, "version": version, "approved": True, "by": actor,
                "rollout": d.status, "reason": d.reason}

    def reject(self, version: int, comment: str | None = None, *, token: str | None = None) -> dict[str, Any]:
        """Reject a candidate awaiting approval."""
        from modelpilot.rollout import review

        actor = self.actor(token, "reject")
        review.reject(self.store, self.cfg.model.name, version, actor, comment)
        return {"model": self.cfg.model.name, "version": version, "approved": False, "by": actor}

    def promote(self, version: int, reason: str = "", *, token: str | None = None, force: bool = False) -> dict[str, Any]:
        """Make ``version`` the champion now, once it loads and answers a probe prediction.

        ``force`` promotes a version that a gate or a person rejected (recorded with the actor).
        """
        from modelpilot.rollout import review

        return review.promote_manual(self.store, self.cfg.model.name, version, self.actor(token, "promote"), reason,
                                     artifacts=self.artifacts, force=force)

    def rollback(self, reason: str = "", *, token: str | None = None) -> dict[str, Any]:
        """Stop the rollout in progress, or restore the previous champion."""
        from modelpilot.rollout import review

        return review.rollback(self.store, self.cfg.model.name, self.actor(token, "rollback"), reason)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if "store" in self.__dict__ and self.cfg.webhooks:
            self._send_webhooks()
        for name in ("executor", "store"):
            part = self.__dict__.pop(name, None)
            if part is not None:
                part.shutdown() if name == "executor" else part.close()

    def _send_webhooks(self) -> None:
        """Send what this process's commands logged, once and bounded (a dead receiver
        costs at most a request timeout; the outbox keeps the rest for the controller)."""
        try:
            if self.webhooks is not None:
                self.webhooks.join(timeout=WEBHOOK_CLOSE_BUDGET)
                self.webhooks.pump(budget=WEBHOOK_CLOSE_BUDGET)
        except Exception as exc:  # closing never fails because a receiver did
            log.warning("webhooks not sent on close: %s", exc)

    def __enter__(self) -> Pilot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def controller_lifespan(
    pilot: Pilot, on_event: Callable[[dict[str, Any]], None] | None = None
) -> Callable[[FastAPI], Any]:
    """A lifespan that runs the controller loop in a thread while the server runs, and
    hands each decision it records to ``on_event``."""
    import contextlib
    import threading

    from modelpilot._follow import EventFollower

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        metrics = app.state.metrics
        model = pilot.cfg.model.name

        def observe(summary: dict[str, Any], decisions: list[dict[str, Any]]) -> None:
            metrics.set_drift(model, summary.get("feature_drift") or {})
            for decision in decisions:
                if decision["status"] == "fired":
                    metrics.trigger_fired(model, decision["name"])

        # the tick reads what this server has logged so far
        controller = pilot.controller(observer=observe, before_tick=app.state.writer.flush)
        thread = threading.Thread(target=controller.run, kwargs={"stop": stop}, name="modelpilot-controller", daemon=True)
        follower = EventFollower(pilot.store, model, on_event) if on_event is not None else None
        thread.start()
        try:
            if follower is None:
                yield
            else:
                with follower:
                    yield
        finally:
            stop.set()
            thread.join(timeout=60)

    return lifespan

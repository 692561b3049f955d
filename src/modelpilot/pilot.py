"""``Pilot``: the Python face of modelpilot; what the CLI does, the library does.

Example::

    pilot = Pilot.from_config("pilot.yaml")
    result = pilot.train()
    print(result.version, result.metrics)
    pilot.close()
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.artifacts import ArtifactStore, open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.executors import Executor, make_executor
from modelpilot.store import Store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from fastapi import FastAPI

    from modelpilot.controller import Controller

    import pandas as pd

    from modelpilot.training import TrainResult


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
        return Store.open(self.cfg.store_url)

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

        return Controller(self.cfg, self.store, self.artifacts, self.executor, **kwargs)

    def tick(self) -> dict[str, Any]:
        """One controller tick: monitor, evaluate triggers, retrain, gate, roll out."""
        return self.controller().tick().to_dict()

    def serve(self, host: str | None = None, port: int | None = None, *, with_controller: bool = False) -> None:
        """Serve the champions over HTTP until SIGTERM/SIGINT (blocking).

        With ``with_controller`` the controller ticks in a background thread of the same
        process; training still runs in the executor's worker processes.
        """
        from modelpilot.serving.server import run_server

        lifespan = controller_lifespan(self) if with_controller else None
        run_server(self.cfg, host, port, store=self.store, artifacts=self.artifacts, extra_lifespan=lifespan)

    def predict(self, input_path: str | Path, output_path: str | Path) -> dict[str, Any]:
        """Score a Parquet/CSV file with the champion, logging every row like the server."""
        from modelpilot.serving.batch import predict_batch

        return predict_batch(self.cfg, self.store, self.artifacts, input_path, output_path)

    def status(self) -> dict[str, Any]:
        """Models, their versions and aliases: ``{"models": [{"name", "versions", "aliases"}]}``."""
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
            models.append({"name": name, "versions": versions, "aliases": self.store.aliases(name)})
        return {"models": models}

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        for name in ("executor", "store"):
            part = self.__dict__.pop(name, None)
            if part is not None:
                part.shutdown() if name == "executor" else part.close()

    def __enter__(self) -> Pilot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def controller_lifespan(pilot: Pilot) -> Callable[[FastAPI], Any]:
    """A lifespan that runs the controller loop in a thread while the server runs."""
    import contextlib
    import threading

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
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=60)

    return lifespan

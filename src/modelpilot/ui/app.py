"""The dashboard on its own: ``modelpilot ui`` (no model server, no prediction log writer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from modelpilot.auth.http import RequestAuth
from modelpilot.ui.router import PREFIX, ui_router

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig
    from modelpilot.store import Store


def create_ui_app(cfg: PilotConfig, store: Store, artifacts: ArtifactStore) -> FastAPI:
    """A FastAPI app with only the dashboard (``/`` redirects to ``/ui/``)."""
    access = RequestAuth(store, cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:  # the pending audit rows of failed attempts
            await run_in_threadpool(access.close)

    app = FastAPI(title="modelpilot dashboard", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.auth = access
    app.include_router(ui_router(cfg, store, artifacts, access=access))

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    return app


def serve_ui(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, *, host: str = "127.0.0.1",
             port: int = 8050, log_level: str = "warning") -> None:
    """Serve the dashboard with uvicorn until Ctrl-C / SIGTERM (blocking)."""
    import uvicorn

    uvicorn.run(create_ui_app(cfg, store, artifacts), host=host, port=port, log_level=log_level, access_log=False)

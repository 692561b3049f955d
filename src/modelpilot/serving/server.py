"""Running the app: uvicorn in the foreground, or in a background thread.

:func:`run_server` is what ``modelpilot serve`` calls: it opens the store and the
artifact store from the config and runs uvicorn until SIGTERM or SIGINT. uvicorn turns
either signal into a graceful shutdown — stop accepting, finish the requests in flight,
then run the app's lifespan shutdown, where the prediction log writer drains its queue and
writes every logged row. So a SIGTERM loses no prediction.

:func:`start_in_thread` runs an app on a free port in a daemon thread (tests, the demo,
notebooks); the returned handle's :meth:`~ThreadedServer.stop` shuts it down the same
graceful way.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.config import PilotConfig
from modelpilot.serving.app import create_app

__all__ = ["ThreadedServer", "run_server", "start_in_thread"]


def _uvicorn_config(app: FastAPI, host: str, port: int, log_level: str, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on",
        # the app logs every request itself (metrics); uvicorn's access log costs ~10% throughput
        access_log=False, timeout_graceful_shutdown=30, **extra,
    )


@contextmanager
def _quiet_exit() -> Iterator[None]:
    """Let a signal that uvicorn already turned into a graceful shutdown end it quietly.

    After shutting down, uvicorn re-raises the captured signal with the handlers it found
    installed; with the default ones the process would die by SIGTERM (skipping our
    cleanup) or raise KeyboardInterrupt. With these no-op handlers ``run_server`` returns
    normally and the process exits 0 — the shutdown was orderly.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_server(
    cfg: PilotConfig,
    host: str | None = None,
    port: int | None = None,
    *,
    store: Any = None,
    artifacts: Any = None,
    log_level: str = "info",
    replica_id: str | None = None,
    extra_lifespan: Any = None,
    sockets: list[Any] | None = None,
    on_server: Any = None,
) -> None:
    """Serve the champions of ``cfg``'s store until SIGTERM/SIGINT (blocking).

    Args:
        cfg: the config; ``serving.host``/``serving.port`` unless overridden.
        host: interface to bind (default ``cfg.serving.host``).
        port: port to bind (default ``cfg.serving.port``).
        store: an open store (default: ``Store.open(cfg.store_url)``, closed on exit).
        artifacts: an artifact store (default: from ``cfg.artifacts``).
        log_level: uvicorn's log level.
        replica_id: names this replica's prediction-log segments.
        extra_lifespan: entered inside the app's lifespan (``--with-controller`` runs the
            controller loop there).
        sockets: listening sockets to serve on instead of binding ``host:port`` (a worker of
            ``serve --workers``, see :mod:`.workers`).
        on_server: called with the ``uvicorn.Server`` before it runs.

    Raises:
        ConfigError: the store or artifact URL is invalid.
    """
    from modelpilot.artifacts import open_artifacts
    from modelpilot.store import Store

    own_store = store is None
    store = Store.open(cfg.store_url) if store is None else store
    artifacts = artifacts or open_artifacts(cfg.artifacts_url, cfg.artifacts.options)
    # One BLAS/OpenMP thread per predict: a request is a few rows, where thread fan-out
    # costs more than it saves (and on a busy machine much more); the server gets its
    # parallelism from serving requests concurrently. Set once: the context manager form
    # costs milliseconds per call.
    threadpool_limits(limits=1)
    try:
        app = create_app(cfg, store, artifacts, replica_id=replica_id, extra_lifespan=extra_lifespan)
        server = uvicorn.Server(
            _uvicorn_config(
                app, host or cfg.serving.host,
                cfg.serving.port if port is None else port, log_level,
            )
        )
        if on_server is not None:
            on_server(server)
        with _quiet_exit():
            server.run(sockets=sockets)  # SIGTERM/SIGINT → graceful shutdown + lifespan exit (log flushed)
    finally:
        if own_store:
            store.close()


@dataclass
class ThreadedServer:
    """A uvicorn server running in a daemon thread; :meth:`stop` shuts it down gracefully."""

    server: uvicorn.Server
    thread: threading.Thread
    base_url: str

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"the server at {self.base_url} did not stop within {timeout}s")

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
    timeout: float = 30.0,
) -> tuple[ThreadedServer, str]:
    """Start ``app`` with uvicorn in a background thread and wait until it accepts.

    Args:
        app: the ASGI app (its lifespan runs in the thread).
        host: interface to bind.
        port: port to bind; 0 picks a free one.
        log_level: uvicorn's log level.
        timeout: seconds to wait for startup.

    Returns:
        ``(handle, base_url)``, e.g. ``(..., "http://127.0.0.1:54321")``; stop it with
        ``handle.stop()``.

    Raises:
        RuntimeError: the server did not start (e.g. the lifespan startup failed).
    """
    server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
    # uvicorn installs signal handlers only in the main thread, so none are touched here
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the server did not start; see the log for the cause")
        time.sleep(0.01)
    sock = server.servers[0].sockets[0]
    bound_host, bound_port = sock.getsockname()[:2]
    base_url = f"http://{bound_host}:{bound_port}"
    return ThreadedServer(server, thread, base_url), base_url

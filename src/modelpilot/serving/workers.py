"""``modelpilot serve --workers N``: N server processes sharing one port.

Every worker is a whole server — its own model cache (hot swap included: each polls the
store for moved aliases), its own prediction-log writer whose segments carry the worker's
own replica id (``w<index>-<random>``), its own feedback desk. Nothing is shared but the
store and the artifact store, exactly like replicas behind a load balancer, so a label may
reach any worker (feedback.py holds it until the worker that served the prediction has
written it).

The port: each worker binds its own listening socket with ``SO_REUSEPORT``, and the
kernel spreads incoming connections over them by a hash of the connection's addresses
(a shared accept queue would let one worker take a whole burst of connections). The
supervisor (this process) first binds the port itself without listening, which reserves
it (``port: 0`` picks a free one) and keeps it while a worker restarts.

The supervisor passes SIGTERM and SIGINT on to every worker, each drains its prediction
log as a single server does, and it exits 0 once all have. A worker that dies otherwise
(killed, out of memory) is started again with a fresh replica id; a worker notices a
supervisor that died and shuts down gracefully. Workers are started from scratch
(``python -m modelpilot.serving.workers``, the config on stdin), never forked: no thread,
connection or Ray session of the supervisor leaks into them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from modelpilot.config import PilotConfig

log = logging.getLogger(__name__)

#: how often a worker checks that its supervisor is alive, and the supervisor its workers
CHECK_SECONDS = 0.5
#: the least time between two starts of the same worker (a crash loop costs no CPU)
RESTART_BACKOFF = 2.0
#: a worker that exits this many times in a row, each within STARTUP_SECONDS of its start,
#: cannot start at all: the supervisor stops instead of restarting it forever
STARTUP_FAILURES = 3
STARTUP_SECONDS = 60.0


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEPORT`` (not listening yet)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("serve --workers needs SO_REUSEPORT (Linux, the BSDs, macOS); use --workers 1")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _start(cfg: PilotConfig, host: str, port: int, index: int, log_level: str, controller: bool) -> subprocess.Popen[bytes]:
    doc = {"config": cfg.model_dump(mode="json"), "base_dir": str(cfg.base_dir), "host": host, "port": port,
           "index": index, "log_level": log_level, "controller": controller, "parent": os.getpid()}
    proc = subprocess.Popen([sys.executable, "-m", "modelpilot.serving.workers"], stdin=subprocess.PIPE,
                            process_group=0)  # Ctrl-C reaches the supervisor, which passes it on once
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(doc).encode())
    proc.stdin.close()
    return proc


def serve_workers(
    cfg: PilotConfig, host: str, port: int, workers: int, *, log_level: str = "info", with_controller: bool = False,
    ready: Any = None,
) -> int:
    """Run ``workers`` server processes on ``host:port`` until SIGTERM/SIGINT; returns the exit code.

    ``with_controller`` runs the controller loop in worker 0 only. ``ready`` (optional) is
    called with the bound port once the workers are started.
    """
    reserve = reuseport_socket(host, port)
    port = reserve.getsockname()[1]
    stopping = threading.Event()
    procs = [_start(cfg, host, port, i, log_level, with_controller and i == 0) for i in range(workers)]
    started = [time.monotonic()] * workers

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(f"modelpilot: {workers} server workers on http://{host}:{port} (pids "
          f"{', '.join(str(p.pid) for p in procs)})", file=sys.stderr, flush=True)
    if ready is not None:
        ready(port)
    early = [0] * workers  # exits in a row within STARTUP_SECONDS of a start
    try:
        while not stopping.wait(CHECK_SECONDS):
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code is None or time.monotonic() - started[i] < RESTART_BACKOFF:
                    continue
                early[i] = early[i] + 1 if time.monotonic() - started[i] < STARTUP_SECONDS else 0
                if early[i] >= STARTUP_FAILURES:  # it cannot start (bad config, port taken): stop
                    print(f"modelpilot: server worker {i} exited with {code} {early[i]} times right after "
                          "starting; stopping (its log above says why)", file=sys.stderr, flush=True)
                    stopping.set()
                    break
                log.error("server worker %d (pid %d) exited with %s; starting it again", i, proc.pid, code)
                procs[i] = _start(cfg, host, port, i, log_level, with_controller and i == 0)
                started[i] = time.monotonic()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait() for proc in procs]
        if any(early[i] >= STARTUP_FAILURES for i in range(workers)):
            return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        reserve.close()
    return 0 if all(code == 0 for code in codes) else 1


def _watch_parent(parent: int, server: Any) -> None:
    """Shut the worker down gracefully (log drained) once its supervisor is gone."""
    while os.getppid() == parent:
        time.sleep(CHECK_SECONDS)
    server.should_exit = True


def _worker_main() -> None:
    doc = json.loads(sys.stdin.read())
    cfg = PilotConfig.from_dict(doc["config"], base_dir=Path(doc["base_dir"]))
    from modelpilot.serving.server import run_server

    sock = reuseport_socket(doc["host"], doc["port"])
    sock.listen(2048)
    lifespan = None
    if doc["controller"]:
        from modelpilot.pilot import Pilot, controller_lifespan

        lifespan = controller_lifespan(Pilot(cfg))
    run_server(cfg, log_level=doc["log_level"], replica_id=f"w{doc['index']}-{uuid.uuid4().hex[:8]}",
               extra_lifespan=lifespan, sockets=[sock],
               on_server=lambda server: threading.Thread(
                   target=_watch_parent, args=(doc["parent"], server), name="modelpilot-parent-watch",
                   daemon=True).start())


if __name__ == "__main__":
    _worker_main()

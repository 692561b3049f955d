"""A real Ray cluster of several nodes on this machine, for tests and benchmarks.

Example::

    with ray_cluster(nodes=2) as cluster:
        executor = RayExecutor(address=cluster.address, workers=2)

The head is started with ``ray start --head --port=0`` (its Ray Client server on a free port,
``cluster.client_address``) and every other node with
``ray start --address=<head>``, each with a temporary folder of its own (so a node shares
no files with the driver or another node) and one CPU unless told otherwise. The nodes
run with this process's environment (``PYTHONPATH`` included), so they import the same
modelpilot. On exit every process of the cluster is stopped by pid — SIGTERM, then
SIGKILL for those that ignore it (``gcs_server`` may) — never with ``ray stop``, which
would stop every Ray cluster of the machine.

Ray's servers listen on every interface of the machine (Ray has no loopback-only option);
the cluster accepts no job that does not know its port.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

_ADDRESS = re.compile(r"ray start --address='([^']+)'")


@dataclass
class RayCluster:
    address: str  # the head's GCS address, host:port
    client_address: str = ""  # the head's Ray Client server, ray://127.0.0.1:port
    temp_dirs: list[Path] = field(default_factory=list)

    def processes(self) -> list[psutil.Process]:
        """Every live process of the cluster: those naming one of its folders or its head's
        address (the Ray Client servers name only the address), and their children."""
        roots: list[psutil.Process] = []
        marks = [str(d) for d in self.temp_dirs] + ([f"--address={self.address}"] if self.address else [])
        for proc in psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or ())
            if any(mark in cmd for mark in marks):
                roots.append(proc)
        found: dict[int, psutil.Process] = {}
        for root in roots:
            found[root.pid] = root
            try:
                found.update((c.pid, c) for c in root.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        found.pop(os.getpid(), None)  # a driver connected to the cluster is not part of it
        return list(found.values())

    def stop(self, grace: float = 2.0) -> None:
        """Stop every process of the cluster by pid; SIGKILL what is left after ``grace`` s."""
        procs = self.processes()
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(procs, timeout=grace)  # gcs_server may ignore SIGTERM
        killed = alive + self.processes()  # a worker may have been started meanwhile
        for proc in killed:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(killed, timeout=grace)
        left = []
        for proc in self.processes():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(" ".join(proc.cmdline()))
            except psutil.NoSuchProcess:
                continue
        if left:  # e.g. a server that names neither a folder nor the address: it would outlive the test
            raise RuntimeError(f"Ray processes outlived the cluster: {left}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_start(args: list[str], temp_dir: Path, cpus: int, timeout: float) -> str:
    ray = Path(sys.executable).parent / "ray"
    command = [str(ray) if ray.exists() else shutil.which("ray") or "ray", "start", *args,
               f"--num-cpus={cpus}", f"--temp-dir={temp_dir}", "--object-store-memory=100000000",
               "--disable-usage-stats"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "RAY_USAGE_STATS_ENABLED": "0",
           # a Ray Client connection starts a server process for the driver; on a loaded
           # machine that takes longer than Ray's 30 s default wait
           "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": os.environ.get("RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S", "180")}
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout + out.stderr


@contextmanager
def ray_cluster(nodes: int = 2, cpus: int = 1, timeout: float = 120.0) -> Iterator[RayCluster]:
    """Start a head and ``nodes - 1`` more nodes of ``cpus`` CPUs each; stop them all on exit.

    Raises:
        RuntimeError: a node did not start (the message holds ``ray start``'s output).
    """
    # short folder names: Ray's unix sockets live under them, and a socket path has ~107 bytes
    cluster = RayCluster(address="")
    try:
        head = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
        cluster.temp_dirs.append(head)
        client_port = _free_port()
        output = _ray_start(["--head", "--port=0", "--include-dashboard=false",
                             f"--ray-client-server-port={client_port}"], head, cpus, timeout)
        cluster.client_address = f"ray://127.0.0.1:{client_port}"
        found = _ADDRESS.search(output)
        if found is None:
            raise RuntimeError(f"ray start --head printed no address: {output[-2000:]}")
        cluster.address = found.group(1)
        for _ in range(nodes - 1):
            node = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
            cluster.temp_dirs.append(node)
            _ray_start([f"--address={cluster.address}"], node, cpus, timeout)
        yield cluster
    finally:
        cluster.stop()
        for folder in cluster.temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)


def wait_for_nodes(count: int, timeout: float = 60.0) -> list[str]:
    """The ids of the cluster's live nodes once ``count`` are up (needs ``ray.init`` first)."""
    import ray

    nodes: Any = ray.nodes
    deadline = time.monotonic() + timeout
    while True:
        alive = [n["NodeID"] for n in nodes() if n["Alive"]]
        if len(alive) >= count or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)

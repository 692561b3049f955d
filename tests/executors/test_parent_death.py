"""Workers die with the process that owns their pool, however it dies (SIGKILL included)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

# the owner starts a pool whose worker starts its own pool (a tuning run inside a retrain),
# both workers sleep "forever", and the owner prints every pid once all are up
OWNER = textwrap.dedent(
    """
    import os, sys, time
    from modelpilot.executors import LocalExecutor

    def nap(seconds):
        time.sleep(seconds)

    def nested(out):
        inner = LocalExecutor(workers=1)
        inner.submit(nap, 600)
        while len(psutil.Process().children()) == 0:
            time.sleep(0.05)
        with open(out, "w") as f:
            f.write(" ".join(str(p.pid) for p in psutil.Process().children()))
        time.sleep(600)

    import psutil
    if __name__ == "__main__":
        pool = LocalExecutor(workers=1)
        pool.submit(nested, sys.argv[1])
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.05)
        time.sleep(0.2)
        print(os.getpid(), *[p.pid for p in psutil.Process().children()], open(sys.argv[1]).read(), flush=True)
        time.sleep(600)
    """
)


def test_sigkill_of_the_owner_takes_its_workers_and_theirs_down(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "inner.pids")], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    pids: list[int] = []
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) >= 3 and pids[0] == proc.pid, line  # owner, its worker, the worker's worker
        workers = [psutil.Process(pid) for pid in pids[1:]]
        assert all(w.is_running() for w in workers)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs in the owner
        proc.wait(timeout=30)
        # no fixed sleep: wait for them to go, with a bound generous for a loaded machine
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == [], f"orphaned workers survived their owner: {[p.pid for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in pids[1:]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def test_a_worker_keeps_running_while_its_owner_lives(tmp_path: Path) -> None:
    """The watch does not take down a healthy pool (the owner polls it for a while)."""
    from modelpilot.executors import LocalExecutor

    with LocalExecutor(workers=1) as pool:
        first = pool.submit(os.getpid).result(timeout=120)
        time.sleep(1.0)  # several watch periods
        assert pool.submit(os.getpid).result(timeout=120) == first

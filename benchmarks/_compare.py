"""Shared helpers for the benchmarks: side venvs for the comparisons, and the wrk load generator.

The comparisons (MLflow, Evidently) are never dependencies of modelpilot: each gets its own
virtual environment under ``benchmarks/.venvs/<name>`` (git-ignored), created on first use
and reused while its requirement list is unchanged. The scripts that run inside those venvs
live in ``benchmarks/_envs/`` and import nothing from modelpilot.

HTTP load comes from ``wrk`` (C, epoll, one thread): it costs the server far less CPU than
a Python client on the same 2-core machine. Install it with ``apt-get install -y wrk``
(Debian/Ubuntu) or ``brew install wrk``; without it the benchmarks fall back to an httpx
client and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ENVS = HERE / "_envs"
VENVS = HERE / ".venvs"
WRK_INSTALL = "apt-get install -y wrk   (Debian/Ubuntu; macOS: brew install wrk)"


# ---------------------------------------------------------------------------- side venvs


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """The python of ``benchmarks/.venvs/<name>`` with ``requirements`` installed (cached).

    The venv is rebuilt only when the requirement list differs from the one it was built
    with (kept in ``<venv>/bench-requirements.txt``).
    """
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, "_base_executable", sys.executable)
    print(f"creating {venv} with {' '.join(requirements)} (once; reused by later runs) ...",
          flush=True)
    t0 = time.perf_counter()
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *requirements], check=True)
    marker.write_text(wanted)
    print(f"  ready in {time.perf_counter() - t0:.0f} s", flush=True)
    return python


def package_version(python: Path, dist: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
               timeout: float = 120.0) -> None:
    """Poll ``ready()`` until it is true; fail if ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} was not ready after {timeout:.0f} s")
        time.sleep(0.25)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process group started with ``start_new_session=True``; SIGKILL if stuck.

    ``mlflow models serve`` runs the real server as a child process, so the whole group is
    signalled (it is this benchmark's own group, nothing else is in it).
    """
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# ---------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class Load:
    """What one load run measured (latencies in ms)."""

    tool: str
    requests: int
    rps: float
    p50: float
    p99: float
    errors: int  # non-2xx responses + socket errors


_LUA = """
-- POST one of the bodies in BODIES (one JSON document a line), in turn, per connection.
local bodies = {}
for line in io.lines(%(path)s) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> Load:
    """Read wrk's ``--latency`` report."""
    try:
        return _parse_wrk(out)
    except (AttributeError, KeyError, ValueError):
        raise RuntimeError(f"cannot read this wrk report:\n{out}") from None


def _parse_wrk(out: str) -> Load:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    pcts = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, flags=re.M))  # wrk may pad "1.06s "
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return Load("wrk", total, rps, _ms(pcts["50"]), _ms(pcts["99"]), errors)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, bodies: list[bytes], connections: int, seconds: float) -> Load:
    """POST ``bodies`` in turn to ``url`` over ``connections`` keep-alive connections for
    ``seconds``, with ONE wrk thread (leaves the other core to the server)."""
    with tempfile.TemporaryDirectory(prefix="mp-wrk-") as tmp:
        data = Path(tmp) / "bodies.jsonl"
        data.write_bytes(b"\n".join(bodies) + b"\n")
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA % {"path": repr(str(data)).replace("'", '"')})
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", "30s", "-s", str(script), url]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return parse_wrk(out)

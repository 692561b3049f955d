"""After the demo: a dashboard address that answers, or the command that serves it — never a
dead URL. Interactive runs keep the dashboard up until Ctrl-C; CI and pipes end at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
OFFER = "import sys; from pathlib import Path; from modelpilot.cli import offer_dashboard; " \
        "offer_dashboard(Path(sys.argv[1]), keep={keep})"


def _project(tmp_path: Path) -> Path:
    modelpilot = str(Path(sys.executable).with_name("modelpilot"))
    assert subprocess.run([modelpilot, "init"], cwd=tmp_path, env=ENV, capture_output=True, timeout=120).returncode == 0
    return tmp_path / "pilot.yaml"


def test_without_a_terminal_the_command_is_printed_and_it_ends(tmp_path: Path) -> None:
    config = _project(tmp_path)
    # keep=None decides by the terminal: stdin and stdout are pipes here, as in CI
    done = subprocess.run([sys.executable, "-c", OFFER.format(keep=None), str(config)], env=ENV,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert f"dashboard: modelpilot ui -c {config} serves it" in done.stdout


def test_in_a_terminal_the_dashboard_stays_up_until_ctrl_c(tmp_path: Path) -> None:
    config = _project(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", OFFER.format(keep=True), str(config)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/ui/) — Ctrl-C stops it", line)
        assert match, line
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(match.group(1), follow_redirects=True, timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the printed dashboard address never answered"
                time.sleep(0.2)
        assert answer.status_code == 200 and "modelpilot" in answer.text
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0

"""README.md and every docs/*.md page: each ```bash and ```python block runs, as written.

A document's blocks run in order in one folder that ``modelpilot init`` prepared, as a reader
following along would run them; the folder a bash block ends in is where the next block
starts. A python block is saved as a file and run by the interpreter: a plain script, with no
``if __name__ == "__main__":`` guard. Two substitutions keep the run safe on a shared machine:
``modelpilot serve`` runs in the background on a free port (stopped at the end) and
``localhost:8000`` points at it. A block preceded by ``<!-- snippet: skip (why) -->`` is not
run; the reason is required, so a block is never left out silently.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>python|bash)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
SKIP = re.compile(r"<!--\s*snippet:\s*skip\s*\((?P<why>[^)]+)\)\s*-->\s*$")
BLOCK_SECONDS = 900
SERVE = re.compile(r"^(?P<indent>\s*)modelpilot serve\b(?P<args>[^#\n]*)(?:#.*)?$", re.M)

PRELUDE = """set -euo pipefail
mp_wait_http() {
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$MP_PORT/healthz" >/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "the server did not answer on port $MP_PORT" >&2; cat "$MP_STATE/serve.log" >&2; return 1
}
"""


@dataclass
class Block:
    document: Path
    line: int
    lang: str
    body: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks(document: Path) -> list[Block]:
    text = document.read_text()
    found = []
    for m in FENCE.finditer(text):
        before = [ln for ln in text[: m.start()].splitlines() if ln.strip()]
        skip = SKIP.search(before[-1]) if before else None
        found.append(Block(document, text[: m.start()].count("\n") + 1, m.group("lang"), m.group("body"),
                           skip.group("why").strip() if skip else None))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_skipped_block_says_why_and_most_blocks_run() -> None:
    everything = [b for d in DOCUMENTS for b in blocks(d)]
    assert len(everything) >= 8  # the parser finds the blocks (a changed fence would hide them)
    for document in DOCUMENTS:  # a skip marker must sit right above a block it applies to
        markers = document.read_text().count("<!-- snippet:")
        assert markers == sum(b.skip is not None for b in blocks(document)), document
    running = [b for b in everything if b.skip is None]
    assert len(running) > len(everything) / 2, [b.name for b in everything if b.skip]
    assert {b.lang for b in running} == {"bash", "python"}


@pytest.fixture(scope="session")  # not module: then each document can run on any xdist worker
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder after ``modelpilot init`` (its data and config); documents copy from it."""
    folder = tmp_path_factory.mktemp("init")
    modelpilot = str(Path(sys.executable).with_name("modelpilot"))
    done = subprocess.run([modelpilot, "init"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return folder


def _stop(pid_file: Path) -> None:
    if not pid_file.exists():
        return
    for pid in map(int, pid_file.read_text().split()):
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        except psutil.NoSuchProcess:
            continue


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("document", [d for d in DOCUMENTS if any(b.skip is None for b in blocks(d))],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_the_document_runs(document: Path, initialised: Path, tmp_path: Path) -> None:
    work, state = tmp_path / "work", tmp_path / "state"
    shutil.copytree(initialised, work)
    state.mkdir()
    env = {**os.environ, "MP_PORT": str(_free_port()), "MP_STATE": str(state), "COLUMNS": "200",
           "NO_COLOR": "1", "TERM": "dumb",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cwd = work
    try:
        for i, block in enumerate(blocks(document)):
            if block.skip is not None:
                continue
            if block.lang == "python":
                script = state / f"snippet_{i}.py"
                script.write_text(block.body)
                cmd = [sys.executable, str(script)]
            else:
                body = SERVE.sub(lambda m: f'{m["indent"]}modelpilot serve{m["args"].rstrip()} --port "$MP_PORT" '
                                           f'> "$MP_STATE/serve.log" 2>&1 & echo $! >> "$MP_STATE/pids"; mp_wait_http',
                                 block.body)
                body = body.replace("localhost:8000", "127.0.0.1:$MP_PORT")
                script = state / f"snippet_{i}.sh"
                script.write_text(f'{PRELUDE}\n{body}\npwd > "$MP_STATE/cwd"\n')
                cmd = ["bash", str(script)]
            done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_SECONDS,
                                  stdin=subprocess.DEVNULL)
            assert done.returncode == 0, f"{block.name} failed:\n{block.body}\n--- stderr\n{done.stderr[-4000:]}"
            assert "Traceback" not in done.stderr, f"{block.name}:\n{done.stderr[-4000:]}"
            if block.lang == "bash":
                cwd = Path((state / "cwd").read_text().strip())
            if "modelpilot backtest" in block.body and "--report backtests/" in block.body:
                _check_backtest(block, cwd, done.stdout)
    finally:
        _stop(state / "pids")


def _check_backtest(block: Block, cwd: Path, stdout: str) -> None:
    """A documented backtest writes a report the dashboard lists; the README's shows a difference."""
    from modelpilot.config import PilotConfig
    from modelpilot.pilot import Pilot
    from modelpilot.ui import pages

    report = re.findall(r"--report (backtests/\S+)", block.body)[-1]
    assert (cwd / report).is_file(), report
    cfg = PilotConfig.load(cwd / "pilot.yaml")
    with Pilot(cfg) as pilot:
        listed = [r["name"] for r in pages.backtests(cfg, pilot.artifacts)["reports"]]
    assert Path(report).name in listed, listed
    if block.document.name == "README.md":
        means = re.findall(r"^│ (\S+)\s+│ +([\d.]+) │", stdout, re.M)
        assert len(means) == 3 and len({m for _, m in means}) == 3, stdout  # the policies part ways


def test_the_architecture_page_names_every_rollout_strategy() -> None:
    from modelpilot.rollout import STRATEGIES

    line = next(ln for ln in (ROOT / "docs" / "architecture.md").read_text().splitlines() if ln.startswith("| `rollout/`"))
    assert all(f"`{name}`" in line for name in STRATEGIES), line

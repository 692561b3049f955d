"""A mistyped command line: one line saying what is wrong, the usage, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODELPILOT = str(Path(sys.executable).with_name("modelpilot"))
ENV = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}

USAGE_ERRORS = {
    "unknown command": (["trian"], "No such command 'trian'. Did you mean 'train'?",
                        "Usage: modelpilot [OPTIONS] COMMAND"),
    "unknown option": (["train", "--jsn"], "No such option: --jsn", "Usage: modelpilot train [OPTIONS]"),
    "missing argument": (["promote"], "Missing argument", "Usage: modelpilot promote [OPTIONS]"),
    "bad integer argument": (["promote", "abc"], "Invalid value for 'version'", "Usage: modelpilot promote"),
    "bad integer option": (["serve", "--port", "notaport"], "Invalid value for '--port'",
                           "Usage: modelpilot serve [OPTIONS]"),
    "unknown sub-command": (["token", "bogus"], "No such command 'bogus'", "Usage: modelpilot token"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_a_usage_error_is_one_line_and_the_usage(tmp_path: Path, case: str) -> None:
    args, error, usage = USAGE_ERRORS[case]

    done = subprocess.run([MODELPILOT, *args], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=60, check=False)

    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr  # even in an 80-column terminal: no traceback, no wrapping
    assert lines[0].startswith("error: ") and error in lines[0]
    assert lines[1].startswith(usage) and "--help" in lines[1]


def test_help_still_exits_zero(tmp_path: Path) -> None:
    done = subprocess.run([MODELPILOT, "train", "--help"], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "--no-tune" in done.stdout

"""A plain script without ``if __name__ == "__main__":`` can use the local executor."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import math

    from modelpilot.executors import LocalExecutor

    def square(x):
        return x * x

    print("main body ran")
    ex = LocalExecutor(workers=2)
    print(ex.submit(math.factorial, 5).result(), ex.submit(square, 7).result())
    ex.shutdown()
    """
)


def test_a_script_without_a_main_guard_runs_jobs_once(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the workers did not re-run the script: its body printed once, and both jobs answered
    assert done.stdout.split("\n") == ["main body ran", "120 49", ""]
    assert "BrokenProcessPool" not in done.stderr

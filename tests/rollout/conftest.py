"""Fixtures for the rollout tests: real store, real artifact folder, real servers over HTTP."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serving"))

from rollout_helpers import classifiers, renv  # noqa: E402, F401

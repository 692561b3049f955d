"""Fixtures for the edge tests (defined in edge_helpers.py, shared with the tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

from edge_helpers import fleet, signing_key  # noqa: E402, F401

"""Fixtures for the server tests (defined in serving_helpers.py, shared with the tests).

pytest runs with ``--import-mode=importlib``, which does not put test folders on
``sys.path``; this folder is added so the tests can import ``serving_helpers``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving_helpers import classifiers, env, regressor, served  # noqa: E402, F401

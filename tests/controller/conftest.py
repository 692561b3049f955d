"""Real parts for the controller tests: a SQLite store, a local artifact folder, a trained v1.

Traffic is the churn generator's (``modelpilot.data.synth.customers``) scored by the real
champion; a concept drift flips the effect of support calls and discounts, so a model
trained before it loses accuracy after it.

pytest runs with ``--import-mode=importlib``, which does not put test folders on
``sys.path``; this folder is added so the tests can import ``controller_helpers``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from controller_helpers import make_pilot, trained_project  # noqa: E402, F401

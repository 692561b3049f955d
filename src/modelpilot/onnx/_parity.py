"""How close a converted graph is to its scikit-learn pipeline, and the stated tolerances.

The graph computes in ``float32`` (ONNX's tree ensembles, linear models and scalers do);
the pipeline in ``float64``. On the same rows the two differ by rounding only:

* **classification** — every probability within :data:`PROBA_TOLERANCE` (absolute), and
  the same label on every row except *ties*: rows where the pipeline's two highest
  probabilities are themselves within :data:`PROBA_TOLERANCE` of each other, so float32
  rounding may legitimately pick the other class. Ties are counted, not hidden;
* **regression** — ``|graph - pipeline| <= REGRESSION_TOLERANCE * max(1, |pipeline|)``
  on every row (a relative bound for large values, an absolute one near zero).

Measured on the default models: differences around 1e-7 for probabilities, well inside
the bounds, which leave room for deeper ensembles' longer float32 sums.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: max |probability difference| a converted classifier may show against its pipeline
PROBA_TOLERANCE = 1e-4
#: max |difference| / max(1, |prediction|) a converted regressor may show
REGRESSION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Parity:
    """The graph against the pipeline on ``rows`` check rows (JSON-ready via :meth:`to_dict`).

    ``max_abs_diff`` is over probabilities (classification) or predictions (regression);
    ``max_rel_diff`` is ``|d| / max(1, |prediction|)`` (regression only).
    """

    task: str
    rows: int
    max_abs_diff: float
    max_rel_diff: float | None
    label_mismatches: int
    ties: int
    tolerance: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and error messages."""
        if self.task == "classification":
            figures = (f"max |d proba| {self.max_abs_diff:.2g} (tolerance {self.tolerance:g}), "
                       f"{self.label_mismatches} label difference(s), {self.ties} of them ties")
        else:
            figures = (f"max |d| {self.max_abs_diff:.2g}, max relative {self.max_rel_diff or 0.0:.2g} "
                       f"(tolerance {self.tolerance:g})")
        return f"{'within' if self.passed else 'OUTSIDE'} tolerance on {self.rows} rows: {figures}"


def compare(task: str, expected: np.ndarray, got: np.ndarray) -> Parity:
    """Compare the pipeline's output with the graph's on the same rows.

    Args:
        task: ``"classification"`` (``expected``/``got`` are ``(n, n_classes)``
            probabilities) or ``"regression"`` (``(n,)`` predictions).
        expected: the pipeline's output.
        got: the graph's output.
    """
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    rows = int(expected.shape[0])
    if got.shape != expected.shape:
        return Parity(task, rows, float("inf"), None, rows, 0,
                      PROBA_TOLERANCE if task == "classification" else REGRESSION_TOLERANCE, False)
    if task == "classification":
        diff = float(np.abs(got - expected).max()) if rows else 0.0
        mismatch = expected.argmax(axis=1) != got.argmax(axis=1)
        top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((rows, 2))
        tie = (top2[:, 1] - top2[:, 0]) <= PROBA_TOLERANCE
        mismatches, ties = int(mismatch.sum()), int((mismatch & tie).sum())
        ok = bool(np.isfinite(got).all()) and diff <= PROBA_TOLERANCE and mismatches == ties
        return Parity(task, rows, diff, None, mismatches, ties, PROBA_TOLERANCE, ok)
    absolute = np.abs(got - expected)
    relative = absolute / np.maximum(1.0, np.abs(expected))
    diff = float(absolute.max()) if rows else 0.0
    rel = float(relative.max()) if rows else 0.0
    ok = bool(np.isfinite(got).all()) and rel <= REGRESSION_TOLERANCE
    return Parity(task, rows, diff, rel, 0, 0, REGRESSION_TOLERANCE, ok)

"""Guards: refuse to promote on labels no change of the world can explain.

Feedback labels are the one input of the loop that a client writes directly. Someone who
can call ``/predict`` and ``/feedback`` can send a burst of self-made predictions with the
opposite labels (``label = 1 - prediction``); the champion then looks broken, a retrain
learns the flipped labels, and on a holdout made of the same labels the flipped model
"wins". A genuine concept drift looks similar at first sight — the champion is suddenly
wrong — so the guard must tell them apart by something only a forged stream does.

The bound it uses: for a binary classifier, the labels of a row can at most *reverse*
(the new concept says the opposite of the old one). Under a full reversal the champion
disagrees with a row exactly as often as it used to agree with it, i.e. with probability
``max(validation_accuracy, confidence)``: its validation accuracy, or its confidence in the
prediction (its highest class probability), which follows the inputs — the feature drift
seen — row by row. No concept drift makes the champion disagree more often than that;
forged labels disagree on every row. The guard finds the contiguous run of labelled rows
(time order) where the disagreement exceeds that bound the most (a scan over all runs of
at least ``min_rows``), and refuses when that excess is both large (``z`` standard
deviations of the bound's binomial spread) and far (past ``margin`` of the way from the
bound to a disagreement on every row).

A concept that flips in one region and then everywhere stays under the bound (its rows
disagree at most at the reversal rate), so it is not blocked; a stream that only *partly*
disagrees beyond the bound (a few forged rows among many genuine ones) passes too — the
champion comparison on the holdout is the defence there. Only binary classification is
guarded: with three or more classes a relabelling of the classes is a legitimate concept
that makes the old model disagree on (almost) every row, and regression labels have no
such ceiling.

Example::

    >>> import numpy as np
    >>> pred = np.array([0, 1] * 300)
    >>> flipped = label_flip_guard(pred, 1 - pred, validation_accuracy=0.8)
    >>> flipped.suspicious, flipped.numbers["run_rows"]
    (True, 600)
    >>> label_flip_guard(pred, pred, validation_accuracy=0.8).suspicious
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LabelGuardResult:
    """The verdict: ``suspicious`` (refuse to promote), one sentence why, and the figures."""

    suspicious: bool
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _best_run(excess: np.ndarray, min_rows: int) -> tuple[int, int]:
    """``(start, end)`` of the contiguous run of at least ``min_rows`` with the largest sum.

    Vectorised over every end: the best start of the run ending at ``e`` is where the prefix
    sum is lowest among the starts at least ``min_rows`` before ``e``.
    """
    prefix = np.concatenate([[0.0], np.cumsum(excess)])
    starts = prefix[: len(excess) - min_rows + 1]
    lowest = np.minimum.accumulate(starts)
    at = np.maximum.accumulate(np.where(starts == lowest, np.arange(len(starts)), 0))
    ends = np.arange(min_rows, len(excess) + 1)
    best = int(np.argmax(prefix[ends] - lowest))
    return int(at[best]), int(ends[best])


def label_flip_guard(
    predictions: Any,
    labels: Any,
    *,
    confidence: Any = None,
    validation_accuracy: float | None = None,
    min_rows: int = 50,
    z: float = 6.0,
    margin: float = 0.5,
) -> LabelGuardResult:
    """Whether a labelled stream disagrees with the champion beyond what any drift explains.

    Args:
        predictions: the champion's predicted class per labelled row, in time order.
        labels: the labels that arrived for those rows (compared as strings).
        confidence: the champion's probability of its own prediction per row, or None.
        validation_accuracy: the champion's accuracy on its validation data, or None.
        min_rows: the shortest run judged (fewer rows never make a verdict).
        z: how many standard deviations above the bound the run's disagreements must be.
        margin: how far (0..1) from the bound towards "every row disagrees" the run's
            disagreement rate must be.

    Returns:
        :class:`LabelGuardResult`; not suspicious when there is nothing to judge (too few
        rows, no accuracy and no confidence, more than two classes).
    """
    pred = np.asarray(predictions).astype(str)
    lab = np.asarray(labels).astype(str)
    n = len(pred)
    numbers: dict[str, Any] = {"rows": n, "validation_accuracy": validation_accuracy}
    if len(lab) != n:
        raise ValueError(f"{n} predictions but {len(lab)} labels: pass one label per prediction")
    if n < min_rows or len(set(pred.tolist()) | set(lab.tolist())) > 2:
        return LabelGuardResult(False, "too few rows or more than two classes: not judged", numbers)
    bound = np.full(n, 0.0)
    if validation_accuracy is not None and np.isfinite(validation_accuracy):
        bound[:] = float(validation_accuracy)
    if confidence is not None:
        conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
        bound = np.maximum(bound, conf)
    if not bound.any():
        return LabelGuardResult(False, "no validation accuracy and no confidence: not judged", numbers)
    bound = np.clip(bound, 0.0, 1.0)
    disagree = (pred != lab).astype(np.float64)
    start, end = _best_run(disagree - bound, min_rows)
    rows = end - start
    observed = float(disagree[start:end].mean())
    ceiling = float(bound[start:end].mean())
    spread = float(np.sqrt(max(float((bound[start:end] * (1 - bound[start:end])).sum()), 1e-9)))
    z_run = (observed - ceiling) * rows / spread
    numbers.update(
        disagreement=float(disagree.mean()), run_start=start, run_rows=rows, run_disagreement=observed,
        run_ceiling=ceiling, z=z_run,
    )
    far = observed >= ceiling + margin * (1.0 - ceiling)
    if z_run >= z and far:
        return LabelGuardResult(True, (
            f"labels look forged: {rows} consecutive labelled rows (from row {start}) disagree with the "
            f"champion {observed:.0%} of the time, above the {ceiling:.0%} that even a full reversal of "
            f"the concept would give (its validation accuracy and confidence; z = {z_run:.1f}); check who "
            "sends feedback (serving.require_token_for_feedback, the labeler role) before retraining on them"
        ), numbers)
    return LabelGuardResult(False, (
        f"labels within what a change of concept explains: the worst run of {rows} rows disagrees "
        f"{observed:.0%} against a ceiling of {ceiling:.0%}"
    ), numbers)

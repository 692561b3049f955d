"""The champion comparison gate: does the challenger beat the champion, beyond noise?

Both models are scored on the *same* recent labelled holdout, so the comparison is paired:
every resample of the holdout scores both models on the same rows, which cancels the
row-to-row difficulty that an unpaired comparison would count as noise.

A challenger passes when all of these hold (each is one entry of ``checks``):

- ``beats_champion``: the point improvement is larger than ``gates.min_improvement`` (points
  of a bounded score; for error metrics such as rmse a fraction of the champion's value, so
  0.01 asks for an rmse 1 % lower);
- ``significance``: a one-sided test rejects "improvement <= min_improvement" at
  ``gates.alpha`` — a paired bootstrap (``gates.test: bootstrap``, any metric) or the exact
  McNemar test on the discordant pairs (``gates.test: mcnemar``, accuracy only);
  ``gates.test: none`` skips it (point estimate only — noise can then promote);
- ``segment:<col>=<value>``: in every segment with at least :data:`MIN_SEGMENT_ROWS` rows,
  the challenger is not worse than the champion by more than ``gates.max_segment_regression``
  (points of the metric for bounded scores; a fraction of the champion's segment value for
  error metrics such as rmse — :func:`modelpilot.metrics.shortfall`).

Improvements are oriented once, by :func:`higher_is_better`: a positive ``delta`` always
means the challenger is better, whether the metric is accuracy or rmse.

After a located change the champion is known to be stale, so the question is no longer
"is the challenger better?" but "is it not worse?": with ``non_inferiority_margin`` δ the
first check becomes ``not_worse`` (``delta > -δ``) and the test rejects "improvement <= -δ"
(δ in the metric's units, or relative to the champion's value for error metrics). A tie
then goes to the model trained on the new concept. :func:`noninferiority_rows` gives the
holdout that test needs for its power.

A *refresh* (``refresh=True``) replaces a champion that itself learned from rows after the
change, on fewer of them: the same recipe on more rows of the same concept is expected to
be better (the learning curve), so the burden of proof turns round. The check
``not_shown_worse`` refuses it only when the holdout shows it worse than the champion — the
one-sided test of "improvement >= 0" rejects at ``gates.alpha`` — and ``not_worse`` still
asks the point improvement to exceed -δ. A refresh adds post-change rows at most a few
times the champion's, so its holdout (a quarter of them) is far too small to *prove* a
difference of a point or two; demanding proof would keep the model that read fewer rows.

Example::

    >>> import numpy as np
    >>> from modelpilot.config import GatesConfig
    >>> y = np.array([0, 1] * 500)
    >>> champion = np.where(np.arange(1000) % 5 == 0, 1 - y, y)    # 80% right
    >>> challenger = np.where(np.arange(1000) % 20 == 0, 1 - y, y)  # 95% right
    >>> result = compare_to_champion(y, champion, challenger, task="classification",
    ...                              metric="accuracy", cfg=GatesConfig())
    >>> result.passed, round(result.delta, 2)
    (True, 0.15)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelpilot.config import GatesConfig
from modelpilot.errors import ConfigError, DataError
from modelpilot.metrics import format_shortfall, higher_is_better, is_relative, shortfall

# a segment smaller than this says more about noise than about the model
MIN_SEGMENT_ROWS = 30
# below this many holdout rows no comparison is meaningful
MIN_HOLDOUT_ROWS = 30
# bootstrap replicates of metrics computed by sklearn one replicate at a time
_MAX_LOOPED_REPLICATES = 1000
# elements of one bootstrap index chunk (rows x replicates), bounds memory to ~32 MB
_CHUNK_ELEMENTS = 4_000_000
_NEEDS_PROBA = {"roc_auc", "log_loss"}


@dataclass(frozen=True)
class ComparisonResult:
    """The gate's verdict with every number behind it.

    ``delta`` is the improvement of the challenger (positive = better, whatever the metric's
    direction); ``ci_low``/``ci_high`` bound it with confidence 1 - 2·alpha (the interval
    whose lower end is the one-sided test); ``p_value`` is that of "delta <= margin".
    """

    passed: bool
    reasons: list[str]
    checks: list[dict[str, Any]]
    metric: str
    champion_metric: float
    challenger_metric: float
    delta: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str
    n: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line for an event: the verdict and the headline numbers."""
        mode = self.details.get("mode")
        verdict = ("challenger rejected" if not self.passed else "refresh not shown worse than the champion"
                   if mode == "refresh" else "challenger not worse than the stale champion"
                   if mode == "non_inferiority" else "challenger beats champion")
        p = f", p={self.p_value:.3g}" if self.p_value is not None else ""
        head = (
            f"{verdict}: {self.metric} {self.challenger_metric:.4f} vs {self.champion_metric:.4f} "
            f"(improvement {self.delta:+.4f}{p}, n={self.n})"
        )
        return head if self.passed else head + "; " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (for the event's numbers and the version's record)."""
        return asdict(self)


def compare_to_champion(
    y_true: Sequence[Any] | np.ndarray,
    pred_champion: Sequence[Any] | np.ndarray,
    pred_challenger: Sequence[Any] | np.ndarray,
    *,
    task: str,
    metric: str,
    cfg: GatesConfig,
    proba_champion: np.ndarray | None = None,
    proba_challenger: np.ndarray | None = None,
    segments: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
    classes: Sequence[Any] | None = None,
    seed: int = 0,
    non_inferiority_margin: float | None = None,
    refresh: bool = False,
) -> ComparisonResult:
    """Decide whether the challenger may replace the champion.

    Args:
        y_true: labels (or targets) of the shared recent holdout.
        pred_champion, pred_challenger: each model's predictions on those rows.
        task: "classification" or "regression".
        metric: the primary metric (see :data:`METRIC_DIRECTIONS`).
        cfg: ``gates`` settings (min_improvement, test, alpha, n_bootstrap,
            max_segment_regression).
        proba_champion, proba_challenger: predicted probabilities (n, n_classes), needed for
            roc_auc and log_loss.
        segments: segment column name → the holdout's values of that column.
        classes: class labels in probability-column order; default the sorted labels seen.
        seed: seed of the bootstrap resampling.
        non_inferiority_margin: test non-inferiority at this margin instead of superiority
            (after a located change; see the module docstring).
        refresh: with ``non_inferiority_margin``: the champion itself learned from rows after
            the change, on fewer of them than the challenger (a refresh), so the challenger is
            refused only when the holdout shows it worse (see the module docstring).

    Returns:
        The :class:`ComparisonResult`; ``passed`` is False with ``reasons`` otherwise.

    Raises:
        DataError: arrays of different lengths, or a holdout too small to compare on.
        ConfigError: unknown metric, a probability metric without probabilities, or McNemar
            asked for a metric other than accuracy.
    """
    sign = 1.0 if higher_is_better(metric) else -1.0
    y = np.asarray(y_true)
    p_old, p_new = np.asarray(pred_champion), np.asarray(pred_challenger)
    n = len(y)
    if len(p_old) != n or len(p_new) != n:
        raise DataError(
            f"the holdout has {n} labels but {len(p_old)} champion and {len(p_new)} challenger "
            "predictions: score both models on the same rows"
        )
    if n < MIN_HOLDOUT_ROWS:
        raise DataError(
            f"only {n} labelled holdout rows; comparing champion and challenger needs at least "
            f"{MIN_HOLDOUT_ROWS}: raise retraining.holdout_fraction or wait for more feedback labels"
        )
    if cfg.test == "mcnemar" and metric != "accuracy":
        raise ConfigError(
            f"gates.test: mcnemar compares right/wrong answers and needs metric accuracy, not {metric!r}: "
            "set gates.test: bootstrap"
        )
    if task == "regression" and metric not in {"rmse", "mae", "r2"}:
        raise ConfigError(f"metric {metric!r} is not a regression metric: use rmse, mae or r2")
    scorer = _Scorer(metric, y, classes, proba_champion, proba_challenger)
    old_value = float(scorer.rows(p_old, scorer.proba_old, np.arange(n)[None, :])[0])
    new_value = float(scorer.rows(p_new, scorer.proba_new, np.arange(n)[None, :])[0])
    delta = sign * (new_value - old_value)
    # margins are points of a bounded score, or a fraction of the champion's value for an
    # error metric (rmse, mae, log_loss), as every tolerance (modelpilot.metrics.shortfall)
    scale = abs(old_value) if is_relative(metric) else 1.0
    margin = cfg.min_improvement * scale
    first = "beats_champion"
    if non_inferiority_margin is not None:
        margin = -non_inferiority_margin * scale
        first = "not_worse"
    checks: list[dict[str, Any]] = [
        _check(
            first,
            delta > margin,
            delta,
            margin,
            f"{metric} {new_value:.4f} (challenger) vs {old_value:.4f} (champion) on {n} holdout rows: "
            f"improvement {delta:+.4f}, needs more than {margin:.4f}"
            + (" (non-inferiority after a change)" if non_inferiority_margin is not None else ""),
        )
    ]
    ci_low = ci_high = p_value = None
    details: dict[str, Any] = {}
    refresh = refresh and non_inferiority_margin is not None
    if cfg.test == "bootstrap":
        ci_low, ci_high, p_value, details = _bootstrap(scorer, p_old, p_new, sign, margin, cfg, seed, worse=refresh)
    elif cfg.test == "mcnemar":
        ci_low, ci_high, p_value, details = _mcnemar(y, p_old, p_new, margin, cfg.alpha, worse=refresh)
    if p_value is not None and refresh:
        checks.append(
            _check(
                "not_shown_worse",
                p_value >= cfg.alpha,
                p_value,
                cfg.alpha,
                f"{cfg.test} test: p={p_value:.4g} that the refresh is not worse than the champion "
                f"(refused below {cfg.alpha}); {100 * (1 - 2 * cfg.alpha):.0f}% interval of the improvement "
                f"[{ci_low:+.4f}, {ci_high:+.4f}]",
            )
        )
    elif p_value is not None:
        checks.append(
            _check(
                "significance",
                p_value < cfg.alpha,
                p_value,
                cfg.alpha,
                f"{cfg.test} test: p={p_value:.4g} that the improvement is at most {margin:.4f} "
                f"(needs < {cfg.alpha}); {100 * (1 - 2 * cfg.alpha):.0f}% interval of the improvement "
                f"[{ci_low:+.4f}, {ci_high:+.4f}]",
            )
        )
    checks.extend(_segment_checks(scorer, p_old, p_new, segments, cfg.max_segment_regression))
    reasons = [c["detail"] for c in checks if not c["passed"]]
    if non_inferiority_margin is not None:
        details = {**details, "mode": "refresh" if refresh else "non_inferiority", "margin": margin}
    elif is_relative(metric):  # the margin the test used, in the metric's units
        details = {**details, "margin": margin}
    return ComparisonResult(
        passed=not reasons,
        reasons=reasons,
        checks=checks,
        metric=metric,
        champion_metric=old_value,
        challenger_metric=new_value,
        delta=delta,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        test=cfg.test if non_inferiority_margin is None else f"{cfg.test} {'refresh' if refresh else 'non-inferiority'}",
        n=n,
        details=details,
    )


def noninferiority_rows(margin: float, *, alpha: float, power: float, variance: float) -> int:
    """Holdout rows a one-sided non-inferiority test needs for ``power`` at ``margin``.

    When both models are equally good, the test passes with probability ``power`` on
    n = (z(1-alpha) + z(power))² · variance / margin² rows, ``variance`` being that of the
    per-row difference of the two models' scores (see :func:`paired_accuracy_variance`).

    >>> noninferiority_rows(0.02, alpha=0.05, power=0.8, variance=paired_accuracy_variance(0.2))
    4947
    """
    from scipy.stats import norm

    if margin <= 0:
        raise ConfigError("gates.non_inferiority_margin must be above 0 to size a holdout for it")
    z = float(norm.isf(alpha) + norm.ppf(power))
    return int(np.ceil(z * z * variance / (margin * margin)))


def paired_accuracy_variance(error_rate: float) -> float:
    """Planning variance of the per-row accuracy difference of two models at ``error_rate``.

    Two models wrong on independent rows at the same rate e disagree on 2·e·(1-e) of them;
    models that err on the same hard rows disagree less, so this sizes the holdout on the
    safe side.
    """
    e = min(max(float(error_rate), 0.0), 1.0)
    return max(2.0 * e * (1.0 - e), 1e-4)


def _check(name: str, passed: bool, value: float | None, threshold: float, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "value": value, "threshold": threshold, "detail": detail}


def _bootstrap(
    scorer: _Scorer,
    p_old: np.ndarray,
    p_new: np.ndarray,
    sign: float,
    margin: float,
    cfg: GatesConfig,
    seed: int,
    worse: bool = False,
) -> tuple[float, float, float, dict[str, Any]]:
    """Paired bootstrap: both models scored on the same resampled rows, replicate by replicate.

    The p-value is that of "improvement <= margin", or with ``worse`` that of "improvement >= 0"
    (a small value shows the challenger worse than the champion).
    """
    rng = np.random.default_rng(seed)
    n = len(p_old)
    n_rep = cfg.n_bootstrap if scorer.vectorised else min(cfg.n_bootstrap, _MAX_LOOPED_REPLICATES)
    parts = []
    for size in _chunk_sizes(n_rep, n):
        idx = rng.integers(0, n, size=(size, n))
        old = scorer.rows(p_old, scorer.proba_old, idx)
        new = scorer.rows(p_new, scorer.proba_new, idx)
        parts.append(sign * (new - old))
    diffs = np.concatenate(parts)
    diffs = diffs[np.isfinite(diffs)]  # e.g. a resample holding one class has no roc_auc
    if len(diffs) == 0:
        raise DataError("no bootstrap resample of the holdout could be scored: the holdout needs both classes")
    # one-sided p-value of H0 "improvement <= margin"; +1 keeps it an honest upper bound
    hits = np.count_nonzero(diffs >= 0) if worse else np.count_nonzero(diffs <= margin)
    p_value = float((1 + hits) / (len(diffs) + 1))
    low, high = np.quantile(diffs, [cfg.alpha, 1 - cfg.alpha])
    return float(low), float(high), p_value, {"replicates": int(len(diffs))}


def _chunk_sizes(total: int, n: int) -> Iterator[int]:
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, total, step):
        yield min(step, total - start)


def _mcnemar(
    y: np.ndarray, p_old: np.ndarray, p_new: np.ndarray, margin: float, alpha: float, worse: bool = False
) -> tuple[float, float, float, dict[str, Any]]:
    """Exact McNemar on the discordant pairs, shifted by the margin.

    Among d discordant rows, c are won by the challenger and b by the champion; the accuracy
    improvement is (c - b) / n, so "improvement > margin" is "c / d > 1/2 + margin·n / (2d)",
    an exact one-sided binomial test.
    """
    from scipy.stats import binomtest, norm

    n = len(y)
    old_right, new_right = p_old == y, p_new == y
    b = int(np.count_nonzero(old_right & ~new_right))
    c = int(np.count_nonzero(~old_right & new_right))
    d = b + c
    null_share = 0.5 + margin * n / (2 * d) if d else (1.0 if margin >= 0 else 0.0)
    if worse:  # "the champion wins at least half of the discordant rows": small p = challenger worse
        p_value = float(binomtest(b, d, 0.5, alternative="greater").pvalue) if d else 1.0
    elif null_share >= 1.0:
        p_value = 1.0
    elif null_share <= 0.0:  # non-inferiority: even every discordant row won by the champion stays inside the margin
        p_value = 0.0
    else:
        p_value = float(binomtest(c, d, null_share, alternative="greater").pvalue)
    # Wald interval of the paired difference of proportions (for the report only)
    diff = (c - b) / n
    se = float(np.sqrt(max(d - (c - b) ** 2 / n, 0.0))) / n
    z = float(norm.ppf(1 - alpha))
    return diff - z * se, diff + z * se, p_value, {"champion_only_right": b, "challenger_only_right": c}


def _segment_checks(
    scorer: _Scorer,
    p_old: np.ndarray,
    p_new: np.ndarray,
    segments: Mapping[str, Sequence[Any] | np.ndarray] | None,
    tolerance: float,
) -> list[dict[str, Any]]:
    """One check per segment value with enough rows: the challenger may not regress there."""
    checks = []
    for column, raw in (segments or {}).items():
        values = np.asarray(raw)
        if len(values) != len(p_old):
            raise DataError(
                f"segment column {column!r} has {len(values)} values for {len(p_old)} holdout rows"
            )
        labels, codes = np.unique(values.astype(str), return_inverse=True)
        for code, label in enumerate(labels):  # a loop over segments, not rows
            rows = np.flatnonzero(codes == code)
            name = f"segment:{column}={label}"
            if len(rows) < MIN_SEGMENT_ROWS:
                continue
            old = float(scorer.rows(p_old, scorer.proba_old, rows[None, :])[0])
            new = float(scorer.rows(p_new, scorer.proba_new, rows[None, :])[0])
            if not (np.isfinite(old) and np.isfinite(new)):
                continue  # e.g. roc_auc of a segment holding one class
            regression = shortfall(scorer.metric, new, old)
            checks.append(
                _check(
                    name,
                    regression <= tolerance,
                    regression,
                    tolerance,
                    f"segment {column}={label} ({len(rows)} rows): {scorer.metric} {new:.4f} (challenger) "
                    f"vs {old:.4f} (champion), {format_shortfall(scorer.metric, max(regression, 0.0))} worse, "
                    f"allowed {format_shortfall(scorer.metric, tolerance)}",
                )
            )
    return checks


class _Scorer:
    """Computes one metric over many row selections at once (one selection per matrix row)."""

    def __init__(
        self,
        metric: str,
        y: np.ndarray,
        classes: Sequence[Any] | None,
        proba_old: np.ndarray | None,
        proba_new: np.ndarray | None,
    ) -> None:
        self.metric, self.y = metric, y
        self.vectorised = metric != "roc_auc"
        if metric in _NEEDS_PROBA and (proba_old is None or proba_new is None):
            raise ConfigError(
                f"metric {metric} needs predicted probabilities from both models; the model has "
                "no predict_proba: choose evaluation.metric accuracy or f1"
            )
        self.classes = np.asarray(classes) if classes is not None else np.unique(y)
        self.proba_old = self._proba(proba_old)
        self.proba_new = self._proba(proba_new)
        self.y_code: np.ndarray | None = None
        if metric in {"log_loss", "roc_auc", "f1"}:
            import pandas as pd

            self.y_code = pd.Index(self.classes).get_indexer(y)
            if (self.y_code < 0).any():
                raise DataError("the holdout holds labels the models do not know: pass classes=")

    def _proba(self, proba: np.ndarray | None) -> np.ndarray | None:
        if proba is None:
            return None
        p = np.asarray(proba, dtype=float)
        if p.ndim == 1:  # binary: the positive-class probability only
            p = np.column_stack([1 - p, p])
        if p.shape != (len(self.y), len(self.classes)):
            raise DataError(
                f"probabilities of shape {p.shape} do not match {len(self.y)} rows and "
                f"{len(self.classes)} classes: pass classes= in predict_proba column order"
            )
        return p

    def rows(self, pred: np.ndarray, proba: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
        """The metric for each row of the index matrix ``idx`` (shape (k, m)) → shape (k,)."""
        return np.asarray(self._rows(pred, proba, idx), dtype=float)

    def _rows(self, pred: np.ndarray, proba: np.ndarray | None, idx: np.ndarray) -> Any:
        y, m = self.y, self.metric
        if m == "accuracy":
            return (y == pred).astype(float)[idx].mean(axis=1)
        if m in {"rmse", "mae", "r2"}:
            err = y.astype(float) - pred.astype(float)
            if m == "mae":
                return np.abs(err)[idx].mean(axis=1)
            sq = (err**2)[idx]
            if m == "rmse":
                return np.sqrt(sq.mean(axis=1))
            yi = y.astype(float)[idx]
            total = ((yi - yi.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(total > 0, 1 - sq.sum(axis=1) / total, np.nan)
        assert self.y_code is not None  # set in __init__ for the label-coded metrics
        if m == "log_loss":
            assert proba is not None
            picked = np.clip(proba[np.arange(len(y)), self.y_code], 1e-15, 1.0)
            return (-np.log(picked))[idx].mean(axis=1)
        if m == "f1":
            return self._f1(pred, idx)
        return self._roc_auc(proba, idx)

    def _f1(self, pred: np.ndarray, idx: np.ndarray) -> Any:
        """Binary F1 of the last class, or macro F1 over classes, from per-row counts."""
        import pandas as pd

        pred_code = pd.Index(self.classes).get_indexer(pred)
        y_code = self.y_code
        assert y_code is not None
        targets = [len(self.classes) - 1] if len(self.classes) == 2 else range(len(self.classes))
        scores = []
        for k in targets:  # a loop over classes
            tp = ((y_code == k) & (pred_code == k))[idx].sum(axis=1)
            fp = ((y_code != k) & (pred_code == k))[idx].sum(axis=1)
            fn = ((y_code == k) & (pred_code != k))[idx].sum(axis=1)
            denom = 2 * tp + fp + fn
            scores.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
        return np.mean(scores, axis=0)

    def _roc_auc(self, proba: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
        from sklearn.metrics import roc_auc_score

        assert proba is not None and self.y_code is not None
        out = np.full(len(idx), np.nan)
        binary = proba.shape[1] == 2
        for r, rows in enumerate(idx):  # a loop over bootstrap replicates (<= 1000)
            codes = self.y_code[rows]
            if len(np.unique(codes)) < 2:
                continue
            if binary:
                out[r] = roc_auc_score(codes, proba[rows, 1])
            elif len(np.unique(codes)) == proba.shape[1]:
                out[r] = roc_auc_score(codes, proba[rows], multi_class="ovr")
        return out

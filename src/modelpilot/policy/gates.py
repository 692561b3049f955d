"""Gates: the checks a freshly trained version must pass before it may serve.

A gate is a plain function over plain data returning a :class:`GateResult`; gates are
combined with :func:`combine`, so adding one never changes the others. Each check is
recorded as a dict ``{"name", "metric", "value", "limit", "passed", "message"}`` that
the event log, the CLI and the UI show as is.

Gates in this module:

* :func:`threshold_gate` — absolute floors (``gates.min_metrics``; for the error
  metrics ``rmse``, ``mae`` and ``log_loss`` the configured value is a *maximum*) and a
  ceiling on the train/validation gap (``gates.max_overfit_gap``; points of the metric for
  bounded scores, a fraction of the validation error for error metrics — see
  :func:`modelpilot.metrics.overfit_gap`).
* The champion comparison (issue 3) composes with these through :func:`combine`: its
  statistics live in :mod:`modelpilot.policy.compare` (``compare_to_champion`` over
  both versions' predictions on the same holdout: ``gates.min_improvement``,
  ``gates.test`` at ``gates.alpha``, ``gates.max_segment_regression``), and its gate
  function — ``champion_gate(challenger, champion, cfg) -> GateResult`` turning that
  comparison into checks — goes in this module next to :func:`threshold_gate`. Until it
  exists, training promotes a first version only when no champion exists and never
  moves an existing one.

Example::

    >>> from modelpilot.config import PilotConfig
    >>> cfg = PilotConfig.model_validate({"model": {"name": "m", "target": "y"},
    ...                                   "gates": {"min_metrics": {"rmse": 2.0}}})
    >>> threshold_gate({"rmse": 2.5}, {"rmse": 2.4}, cfg).passed
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelpilot.config import PilotConfig
from modelpilot.metrics import format_shortfall, higher_is_better, overfit_gap


@dataclass(frozen=True)
class GateResult:
    """Whether a version passed, why not (one sentence per failed check), and every check."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "checks": list(self.checks)}


def combine(*results: GateResult) -> GateResult:
    """One result from several gates: passed when all passed, reasons and checks concatenated."""
    return GateResult(
        passed=all(r.passed for r in results),
        reasons=[reason for r in results for reason in r.reasons],
        checks=[check for r in results for check in r.checks],
    )


def threshold_gate(
    metrics: dict[str, float],
    train_metrics: dict[str, float],
    cfg: PilotConfig,
    *,
    primary_metric: str | None = None,
) -> GateResult:
    """Check validation metrics against ``gates.min_metrics`` and the overfitting gap.

    Args:
        metrics: the validation metrics of the candidate.
        train_metrics: its training metrics (for the gap of the primary metric).
        cfg: ``gates.min_metrics``, ``gates.max_overfit_gap`` and the primary metric are read.
        primary_metric: the metric of the gap (default ``cfg.primary_metric``); training
            passes the one it resolved for the inferred task.

    Returns:
        The result; a configured metric the candidate lacks fails (it cannot be shown
        to meet the bound), and so does a gap that cannot be measured.

    Raises:
        ConfigError: ``gates.min_metrics`` names a metric modelpilot does not know.
    """
    checks: list[dict[str, Any]] = []
    for name, limit in sorted(cfg.gates.min_metrics.items()):
        value = metrics.get(name)
        is_max = not higher_is_better(name)
        if value is None:
            passed, message = False, (
                f"{name} was not computed for this model, so gates.min_metrics.{name} cannot be "
                f"checked: use one of {', '.join(sorted(metrics))}"
            )
        else:
            passed = value <= limit if is_max else value >= limit
            op = "<=" if is_max else ">="
            message = f"{name} = {value:.4g} must be {op} {limit:g} (gates.min_metrics.{name})"
        checks.append({"name": "max_metric" if is_max else "min_metric", "metric": name, "value": value,
                       "limit": limit, "passed": passed, "message": message})
    bound = cfg.gates.max_overfit_gap
    primary = primary_metric or cfg.primary_metric
    if bound is not None:
        value = overfit_gap(train_metrics, metrics, primary, bound)["gap"]
        passed = value is not None and value <= bound
        message = (
            f"train/validation gap of {primary} = {format_shortfall(primary, value)} must be <= "
            f"{format_shortfall(primary, bound)} (gates.max_overfit_gap)" if value is not None else
            f"no {primary} on train and validation to measure the gap"
        )
        checks.append({"name": "overfit_gap", "metric": primary, "value": value,
                       "limit": bound, "passed": passed, "message": message})
    return GateResult(
        passed=all(c["passed"] for c in checks),
        reasons=[c["message"] for c in checks if not c["passed"]],
        checks=checks,
    )

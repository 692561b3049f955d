"""When to retrain: a fixed cadence, a located change, and five dynamic triggers, under a budget.

Pure functions over plain data. :func:`evaluate` reads one :class:`MonitoringSummary` (the
monitored window of the serving champion) and the :class:`TriggerState` carried from the last
tick, and returns a :class:`TriggerOutcome`: one :class:`TriggerDecision` per trigger, whether
to retrain, and the next state. The controller stores the state (``to_dict``/``from_dict``)
and writes one event per decision whose ``kind`` is not None.

The triggers (``triggers.*`` in pilot.yaml; each has threshold, min_samples, and a cooldown in
labelled rows, ``cooldown_rows``, or in time, ``cooldown``):

- ``schedule``: a cron expression; fires when a cron tick has passed since the last
  scheduled firing (a tick refused by the budget is skipped, not made up later);
- ``change``: the change detector located a rise of the champion's error rate, or a
  refresh on the rows after a known change is due (:mod:`modelpilot.policy.change`);
- ``performance_drop``: labelled primary metric this far below the *reference* (below
  for accuracy, above for rmse; in points of a bounded score, in a fraction of the reference
  for an error metric — :func:`modelpilot.metrics.shortfall`);
- ``segment_performance_drop``: the same, per segment, against each segment's reference (the
  champion's validation metric in that segment, given to :func:`reset_reference`);
- ``estimated_performance_drop``: the label-free estimate this far below its baseline, only
  while labelled performance is unavailable;
- ``feature_drift`` (share of drifted features, weighted by the champion's feature
  importance when it is known) and ``prediction_drift`` (score drift statistic). With
  ``drift_requires_performance`` (default) a drift alarm alone is a reason to *watch*, not to
  retrain: it fires only when labelled performance is unavailable or corroborates it — also
  degrading (at least half of ``performance_drop.threshold`` below the reference), an error
  rate rising (the change statistic past half its critical value), or a label-free estimate
  falling (half of ``estimated_performance_drop.threshold``).

The state classes live in :mod:`modelpilot.policy.trigger_state`. The reference does not lower itself (see :func:`reset_reference`), cooldowns and the budget
(:mod:`modelpilot.policy.budget`) suppress firings with a reason, and every status other than
"quiet" carries the numbers behind it. docs/policy.md tells the whole story.

Example::

    >>> cfg = PilotConfig.model_validate({"model": {"name": "churn", "target": "y"}})
    >>> state = reset_reference(TriggerState(), 0.86, "v1 validation", metric="accuracy")
    >>> now = datetime(2024, 1, 1, tzinfo=UTC)
    >>> window = MonitoringSummary(n_predictions=1000, n_labelled=800, metric="accuracy",
    ...                            window_end=now, performance=0.78)
    >>> out = evaluate(cfg, window, state, now)
    >>> out.retrain, out.fired[0].reason.split(" (")[0]
    (True, 'accuracy 0.7800 on 800 labelled predictions is 0.0800 below the reference 0.8600')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.config import PilotConfig, TriggerRule, TriggersConfig
from modelpilot.errors import ConfigError
from modelpilot.metrics import (
    format_shortfall,
    higher_is_better,
    improvement,
    is_relative,
    shortfall,
)
from modelpilot.policy.budget import check_budget, current
from modelpilot.policy.change import change_signal, moved_on
from modelpilot.policy.trigger_state import (
    EVENT_KINDS,
    ChangeState,
    MonitoringSummary,
    Reference,
    Signal,
    Status,
    TriggerDecision,
    TriggerOutcome,
    TriggerState,
    carry,
    utc,
)

__all__ = [
    "EVENT_KINDS",
    "ChangeState",
    "MonitoringSummary",
    "Reference",
    "TriggerDecision",
    "TriggerOutcome",
    "TriggerState",
    "evaluate",
    "record_retrain",
    "reset_reference",
    "utc",
]

DEGRADING_SHARE = 0.5
#: the rules read from monitoring, in the order they are reported
DYNAMIC_RULES = ("performance_drop", "segment_performance_drop", "estimated_performance_drop", "feature_drift",
                 "prediction_drift", "coverage_drop")
#: a coverage shortfall acts only when a one-sided binomial test rejects "coverage >= target" at this level
COVERAGE_ALPHA = 0.01


def evaluate(cfg: PilotConfig, summary: MonitoringSummary, state: TriggerState, now: datetime) -> TriggerOutcome:
    """Decide whether to retrain now.

    Args:
        cfg: the configuration (``triggers``, ``budget``).
        summary: the monitored window of the serving champion.
        state: the state returned by the previous call (``TriggerState()`` the first time).
        now: the current time (naive times are taken as UTC).

    Returns:
        The :class:`TriggerOutcome`; ``new_state`` must be stored for the next call.

    Raises:
        ConfigError: unknown metric, or a schedule croniter cannot read.
    """
    now = utc(now)
    t = cfg.triggers
    higher_is_better(summary.metric)  # raises ConfigError on an unknown metric
    if state.metric != summary.metric:  # a new primary metric: old references mean nothing
        state = replace(state, metric=summary.metric, reference=None, segment_references={}, estimated_reference=None)
    state = replace(state, retrains=current(cfg.budget, state.retrains, now, summary.rows_since))
    change, known = change_signal(cfg, summary, state, now)
    state = replace(state, change=known)
    signals = [
        _schedule(t, state, now),
        change,
        *_dynamic(t, summary, state, now),
    ]
    # references first seen this tick are set by the readers through Signal.numbers["_set"]
    state = _apply_new_references(state, signals, now)
    decisions: list[TriggerDecision] = []
    pending: list[Signal] = []
    last_fired, last_watch = dict(state.last_fired), dict(state.last_watch)
    for s in signals:
        rule = getattr(t, s.name, None)
        rule = rule if isinstance(rule, TriggerRule) else None
        numbers = {**s.numbers, "value": s.value, "threshold": s.threshold,
                   "cooldown_seconds": rule.cooldown if rule else 0.0,
                   "cooldown_rows": rule.cooldown_rows if rule else None,
                   "window_end": summary.window_end.isoformat()}
        if s.state == "over":
            last = state.last_fired.get(s.name)
            wait = _cooling(rule, last, summary, now)
            if wait is not None:
                decisions.append(_decide(s, "suppressed_cooldown", numbers, f"{s.reason}; suppressed by cooldown: {wait}"))
            else:
                pending.append(s)
                decisions.append(_decide(s, "fired", numbers, s.reason))  # may turn into suppressed_budget
        elif s.state == "watch":
            last = state.last_watch.get(s.name)
            if last is not None and _cooling(rule, last, summary, now) is not None:
                decisions.append(_decide(s, "quiet", numbers, f"{s.reason}; already reported at {last.isoformat()}"))
            else:
                last_watch[s.name] = now
                decisions.append(_decide(s, "watch", numbers, s.reason))
        elif s.state == "insufficient":
            decisions.append(_decide(s, "insufficient_samples", numbers, s.reason))
        else:
            decisions.append(_decide(s, "quiet", numbers, s.reason))
    schedule_anchor = state.schedule_anchor or now
    retrain, reason = False, "no trigger fired"
    if pending:
        budget = check_budget(cfg.budget, state.retrains, now, next_cost=state.last_cost, rows_since=summary.rows_since)
        names = {s.name for s in pending}
        for i, d in enumerate(decisions):
            if d.name in names and d.status == "fired":
                numbers = {**d.numbers, **budget.numbers()}
                if budget.allowed:
                    decisions[i] = replace(d, numbers=numbers)
                    last_fired[d.name] = now
                else:
                    decisions[i] = replace(d, status="suppressed_budget", numbers=numbers,
                                           reason=f"{d.reason}; suppressed by the {budget.reason}")
        if "schedule" in names:
            schedule_anchor = now  # fired or refused, this tick is used up
        retrain = budget.allowed
        reason = ("; ".join(d.reason for d in decisions if d.status == "fired") if retrain
                  else f"retrain refused by the {budget.reason}")
    elif any(d.status == "suppressed_cooldown" for d in decisions):
        reason = "every firing trigger is in its cooldown"
    new_state = replace(state, last_fired=last_fired, last_watch=last_watch, schedule_anchor=schedule_anchor)
    if retrain:
        new_state = moved_on(new_state, summary, [d.name for d in decisions if d.status == "fired"], now)
    return TriggerOutcome(decisions=decisions, retrain=retrain, reason=reason, new_state=new_state)


def record_retrain(
    state: TriggerState, now: datetime, cost: float, *, score: float | None = None, triggers: TriggersConfig | None = None
) -> TriggerState:
    """Count a retrain against the budget (call it for every retrain, promoted or not).

    Args:
        state: the current state.
        now: when the retrain happened.
        cost: what it cost (see :func:`modelpilot.policy.roi.retrain_cost`).
        score: the retrained model's primary metric on its holdout, when known. A score that
            stays more than ``performance_drop.threshold`` short of the carried reference counts
            as a shortfall; after ``reference_accept_after`` consecutive shortfalls the reference
            is lowered to the best of those scores — models trained on current data cannot reach
            the old bar, so chasing it would only burn the budget.
        triggers: the ``triggers`` settings (default: the defaults).

    Returns:
        The new state (the input is not changed).
    """
    now, t = utc(now), triggers or TriggersConfig()
    state = replace(state, retrains=[*state.retrains, (now, float(cost))], last_cost=float(cost))
    ref = state.reference
    if score is None or ref is None or state.metric is None:
        return state
    tol = t.performance_drop.threshold
    gap = shortfall(state.metric, score, ref.value)  # how far the score falls short, in the threshold's units
    if gap <= tol:
        return replace(state, reference=replace(ref, shortfalls=0, best_shortfall=None))
    best = score if ref.best_shortfall is None else (
        score if improvement(state.metric, score, ref.best_shortfall) > 0 else ref.best_shortfall)
    shortfalls = ref.shortfalls + 1
    if t.reference == "carried" and t.reference_accept_after is not None and shortfalls >= t.reference_accept_after:
        how = (f"lowered from {ref.value:.4f}: {shortfalls} consecutive retrains on recent data stayed more "
               f"than {_tol(state.metric, tol)} short of it (best {best:.4f})")
        return replace(state, reference=Reference(best, how, now), segment_references={}, estimated_reference=None)
    return replace(state, reference=replace(ref, shortfalls=shortfalls, best_shortfall=best))


def reset_reference(
    state: TriggerState,
    value: float,
    how: str,
    *,
    metric: str,
    now: datetime | None = None,
    triggers: TriggersConfig | None = None,
    segments: Mapping[str, float] | None = None,
    estimated: float | None = None,
    carry_over: bool = True,
) -> TriggerState:
    """Set the performance reference when a new champion is promoted.

    With ``triggers.reference: carried`` (default) the reference becomes the *better* of
    ``value`` (the new champion's holdout score) and the reference carried so far, so a model
    that recovers only half-way from a drift keeps the trigger firing until a model catches
    up (only :func:`record_retrain` lowers it, after repeated shortfalls). With ``promotion``
    it is simply ``value``. Segment references follow the same rule per segment; the
    label-free baseline is per model (its own confidence) and is re-set from ``estimated``
    or from the next window.

    Args:
        state: the current state.
        value: the new champion's primary metric on the holdout it was promoted on.
        how: how the value was obtained, e.g. "v3 holdout at promotion".
        metric: the primary metric's name (sets the direction).
        now: when (default: now).
        triggers: the ``triggers`` settings (default: the defaults).
        segments: the new champion's holdout metric per segment ("col=value").
        estimated: the new champion's label-free estimate on the holdout.
        carry_over: False after a located change: the level the old concept allowed is no
            bar for the new one, so the references restart from ``value``.

    Returns:
        The new state.

    Raises:
        ConfigError: unknown metric.
    """
    higher_is_better(metric)
    now, t = utc(now or datetime.now(UTC)), triggers or TriggersConfig()
    carried = t.reference == "carried" and state.metric == metric and carry_over
    old = state.reference if carried else None
    seg_old = dict(state.segment_references) if carried else {}
    seg_new = {k: carry(seg_old.get(k), float(v), how, now, metric) for k, v in (segments or {}).items()}
    return replace(
        state,
        metric=metric,
        reference=carry(old, float(value), how, now, metric),
        segment_references={**seg_old, **seg_new},
        estimated_reference=Reference(float(estimated), how, now) if estimated is not None else None,
    )


# --------------------------------------------------------------------------- the readers


def _schedule(t: TriggersConfig, state: TriggerState, now: datetime) -> Signal:
    if not t.schedule:
        return Signal("schedule", "none", "no schedule (triggers.schedule)")
    from croniter import croniter

    anchor = state.schedule_anchor
    if anchor is None:
        return Signal("schedule", "none", f"schedule {t.schedule!r} starts counting now")
    try:
        tick = utc(croniter(t.schedule, anchor).get_next(datetime))
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"triggers.schedule {t.schedule!r} cannot be read ({exc}): write a cron expression such as '0 3 * * 0'") from None
    numbers = {"schedule": t.schedule, "tick": tick.isoformat(), "since": anchor.isoformat()}
    if tick <= now:
        return Signal("schedule", "over", f"scheduled retrain: cron {t.schedule!r} ticked at {tick.isoformat()} "
                       f"(counting since {anchor.isoformat()})", numbers=numbers)
    return Signal("schedule", "under", f"next scheduled tick at {tick.isoformat()}", numbers=numbers)


def _dynamic(t: TriggersConfig, s: MonitoringSummary, state: TriggerState, now: datetime) -> list[Signal]:
    perf = _performance(t.performance_drop, s, state)
    out = [perf, _segments(t.segment_performance_drop, s, state)]
    out.append(_estimated(t, s, state))
    weighted = s.weighted_drift_share is not None
    out.append(_drift("feature_drift", t.feature_drift, s.weighted_drift_share if weighted else s.drift_share, s, t,
                      perf, "importance-weighted share of drifted features" if weighted else "share of drifted features",
                      {"drifted_features": s.drifted_features[:50], "drift_share": s.drift_share}, state))
    out.append(_drift("prediction_drift", t.prediction_drift, s.prediction_drift, s, t, perf,
                      "prediction drift statistic", {}, state))
    out.append(_coverage(t.coverage_drop, s))
    for sig, name in zip(out, DYNAMIC_RULES, strict=True):
        if not getattr(t, name).enabled and sig.state != "none":
            sig.state, sig.reason = "none", f"disabled (triggers.{name}.enabled); {sig.reason}"
    return out


def _performance(rule: TriggerRule, s: MonitoringSummary, state: TriggerState) -> Signal:
    name, m = "performance_drop", s.metric
    if s.performance is None:
        return Signal(name, "none", "no labelled performance in the window")
    base = {"metric": m, "performance": s.performance, "n_labelled": s.n_labelled, "min_samples": rule.min_samples}
    ref = state.reference
    if ref is None:
        if s.n_labelled >= rule.min_samples:
            how = f"first labelled window ({s.n_labelled} predictions)"
            return Signal(name, "none", f"reference set to {m} {s.performance:.4f} from the {how}",
                           numbers={**base, "drop": 0.0, "_set": ("", s.performance, how)})
        return Signal(name, "none", f"no reference yet and only {s.n_labelled} labelled predictions", numbers=base)
    drop = shortfall(m, s.performance, ref.value)
    numbers = {**base, "reference": ref.value, "reference_how": ref.describe, "drop": drop, "relative": is_relative(m)}
    text = (f"{m} {s.performance:.4f} on {s.n_labelled} labelled predictions is {_versus(m, s.performance, ref.value)} "
            f"the reference {ref.value:.4f} ({ref.describe}; threshold {_tol(m, rule.threshold)})")
    return _reading(name, drop, rule, s.n_labelled, text, numbers)


def _segments(rule: TriggerRule, s: MonitoringSummary, state: TriggerState) -> Signal:
    name, m = "segment_performance_drop", s.metric
    if not s.segment_performance:
        return Signal(name, "none", "no segment performance in the window")
    rows: dict[str, dict[str, Any]] = {}
    new_refs = []
    for seg, obs in s.segment_performance.items():  # a loop over segments
        ref = state.segment_references.get(seg)
        if ref is None:
            if obs["n"] >= rule.min_samples:
                new_refs.append((seg, obs["value"], f"first window with {int(obs['n'])} labelled rows"))
            continue
        rows[seg] = {"value": obs["value"], "n": int(obs["n"]), "reference": ref.value,
                     "drop": shortfall(m, obs["value"], ref.value)}
    numbers: dict[str, Any] = {"metric": m, "segments": rows, "min_samples": rule.min_samples}
    if new_refs:
        numbers["_set_segments"] = new_refs
    if not rows:
        return Signal(name, "none", "segment references are being set from this window", numbers=numbers)
    enough = {k: r for k, r in rows.items() if r["n"] >= rule.min_samples}
    over_all = sorted((r["drop"], k) for k, r in rows.items() if r["drop"] >= rule.threshold)
    pool = enough or rows
    worst_drop, worst = max((r["drop"], k) for k, r in pool.items())
    if over_all and not any(k in enough for _, k in over_all):
        worst_drop, worst = over_all[-1]
    r = rows[worst]
    others = [f"{k} {format_shortfall(m, d)}" for d, k in reversed(over_all) if k != worst and k in enough]
    text = (f"{m} in segment {worst} {r['value']:.4f} on {r['n']} labelled predictions is "
            f"{_versus(m, r['value'], r['reference'])} its reference {r['reference']:.4f} "
            f"(threshold {_tol(m, rule.threshold)})"
            + (f"; also over the threshold: {', '.join(others)}" if others else ""))
    return _reading(name, worst_drop, rule, r["n"], text, {**numbers, "segment": worst})


def _estimated(t: TriggersConfig, s: MonitoringSummary, state: TriggerState) -> Signal:
    name, rule, m = "estimated_performance_drop", t.estimated_performance_drop, s.metric
    if s.performance is not None and s.n_labelled >= t.performance_drop.min_samples:
        return Signal(name, "none", f"labelled performance is available ({s.n_labelled} labels); no estimate needed")
    if s.estimated_performance is None:
        return Signal(name, "none", "no performance estimate in the window")
    est, ref = s.estimated_performance, state.estimated_reference
    numbers = {"metric": m, "estimated": est, "n_predictions": s.n_predictions, "min_samples": rule.min_samples}
    if ref is None:
        if s.n_predictions >= rule.min_samples:
            how = f"first estimate ({s.n_predictions} predictions)"
            return Signal(name, "none", f"estimate baseline set to {est:.4f}", numbers={**numbers, "_set_estimated": (est, how)})
        return Signal(name, "none", "no estimate baseline yet", numbers=numbers)
    drop = shortfall(m, est, ref.value)
    text = (f"estimated {m} {est:.4f} on {s.n_predictions} unlabelled predictions is {_versus(m, est, ref.value)} "
            f"its baseline {ref.value:.4f} (threshold {_tol(m, rule.threshold)})")
    return _reading(name, drop, rule, s.n_predictions, text, {**numbers, "reference": ref.value, "drop": drop})


def _coverage(rule: TriggerRule, s: MonitoringSummary) -> Signal:
    """Conformal coverage on labelled rows short of its promise, by ``threshold`` points and
    beyond chance (binomial p below :data:`COVERAGE_ALPHA`): the model's errors no longer look
    like those it was calibrated on."""
    name, c = "coverage_drop", s.coverage
    if c is None:
        return Signal(name, "none", "no conformal coverage in the window (no calibration, or no labels)")
    short, n = c["target"] - c["coverage"], int(c["n"])
    numbers = {"coverage": c["coverage"], "target": c["target"], "p_value": c["p_value"], "shortfall": short,
               "alpha": COVERAGE_ALPHA}
    text = (f"conformal coverage {c['coverage']:.4f} on {n} labelled predictions against the promised "
            f"{c['target']:.4f} (shortfall {short:+.4f}, threshold {rule.threshold}; binomial p={c['p_value']:.2g})")
    sig = _reading(name, short, rule, n, text, numbers)
    if sig.state == "over" and c["p_value"] >= COVERAGE_ALPHA:
        sig.state = "under"
        sig.reason += f"; within chance (p >= {COVERAGE_ALPHA})"
    return sig


def _drift(name: str, rule: TriggerRule, value: float | None, s: MonitoringSummary, t: TriggersConfig,
           perf: Signal, label: str, extra: dict[str, Any], state: TriggerState) -> Signal:
    if value is None:
        return Signal(name, "none", f"no {label} in the window")
    text = f"{label} {value:.4f} on {s.n_predictions} predictions (threshold {rule.threshold})"
    sig = _reading(name, value, rule, s.n_predictions, text, {**extra, "n_predictions": s.n_predictions})
    if sig.state != "over" or not t.drift_requires_performance:
        return sig
    drop = perf.numbers.get("drop")
    bar = DEGRADING_SHARE * t.performance_drop.threshold
    sig.numbers.update(performance_drop=drop, degrading_bar=bar)
    if drop is None or s.n_labelled < t.performance_drop.min_samples:
        sig.reason += f"; labelled performance unavailable ({s.n_labelled} labels), so drift decides"
    elif drop >= bar:
        sig.reason += (f"; labelled {s.metric} is also degrading ({format_shortfall(s.metric, drop)} worse than the "
                       f"reference, >= {format_shortfall(s.metric, bar)})")
    elif (rising := _rising(s)) is not None:
        sig.reason += f"; the champion's error rate is rising ({rising})"
    elif (falling := _estimate_falling(t, s, state)) is not None:
        sig.reason += f"; the label-free estimate is falling ({falling})"
    else:
        sig.state = "watch"
        sig.reason += (f"; watching, not retraining: labelled {s.metric} {s.performance:.4f} holds "
                       f"({drop:+.4f} against the reference, under {bar:.4f}) (triggers.drift_requires_performance)")
    return sig


def _rising(s: MonitoringSummary) -> str | None:
    """The change detector's statistic past half its critical value: a rise not yet proven."""
    rep = s.change or {}
    stat, crit = rep.get("statistic"), rep.get("threshold")
    if stat is None or not crit or stat < DEGRADING_SHARE * crit:
        return None
    return f"change statistic {stat:.2f}, at least {DEGRADING_SHARE} of its critical value {crit:.2f}"


def _estimate_falling(t: TriggersConfig, s: MonitoringSummary, state: TriggerState) -> str | None:
    """The label-free estimate at least half of its own threshold below its baseline."""
    ref, est = state.estimated_reference, s.estimated_performance
    if ref is None or est is None:
        return None
    drop = shortfall(s.metric, est, ref.value)
    bar = DEGRADING_SHARE * t.estimated_performance_drop.threshold
    if drop < bar:
        return None
    return (f"estimated {s.metric} {est:.4f}, {format_shortfall(s.metric, drop)} worse than its baseline, "
            f">= {format_shortfall(s.metric, bar)}")


def _reading(name: str, value: float, rule: TriggerRule, n: int, text: str, numbers: dict[str, Any]) -> Signal:
    numbers = {**numbers, "n": n, "min_samples": rule.min_samples}
    if value < rule.threshold:
        return Signal(name, "under", text, value, rule.threshold, numbers)
    if n < rule.min_samples:
        return Signal(name, "insufficient", f"{text}; not acted on: only {n} samples, "
                       f"min_samples is {rule.min_samples}", value, rule.threshold, numbers)
    return Signal(name, "over", text, value, rule.threshold, numbers)


# --------------------------------------------------------------------------- helpers


def _apply_new_references(state: TriggerState, signals: list[Signal], now: datetime) -> TriggerState:
    """Store the references a reader saw for the first time (and strip the private keys)."""
    for sig in signals:
        if "_set" in sig.numbers:
            _, value, how = sig.numbers.pop("_set")
            state = replace(state, reference=Reference(value, how, now))
        for seg, value, how in sig.numbers.pop("_set_segments", []):
            state = replace(state, segment_references={**state.segment_references, seg: Reference(value, how, now)})
        if "_set_estimated" in sig.numbers:
            value, how = sig.numbers.pop("_set_estimated")
            state = replace(state, estimated_reference=Reference(value, how, now))
    return state


def _cooling(rule: TriggerRule | None, last: datetime | None, s: MonitoringSummary, now: datetime) -> str | None:
    """Why a rule that fired (or watched) at ``last`` is still in its cooldown; None once it is over.

    A cooldown in rows (``cooldown_rows``) lasts until that many labelled rows served after
    ``last`` have arrived; one in time (``cooldown``) until that long has passed.
    """
    if rule is None or last is None:
        return None
    if rule.cooldown is not None:
        if (now - last).total_seconds() >= rule.cooldown:
            return None
        until = last + timedelta(seconds=rule.cooldown)
        return (f"fired {_ago(now - last)} ago, cooldown {_ago(timedelta(seconds=rule.cooldown))}, "
                f"next possible at {until.isoformat()}")
    if rule.cooldown_rows is None:
        return None
    seen = s.rows_since(last)
    if seen >= rule.cooldown_rows:
        return None
    return (f"fired at {last.isoformat()}, {seen} labelled rows since, cooldown {rule.cooldown_rows} labelled rows "
            f"(cooldown_rows), {rule.cooldown_rows - seen} more needed")


def _decide(s: Signal, status: Status, numbers: dict[str, Any], reason: str) -> TriggerDecision:
    return TriggerDecision(s.name, status, s.value, s.threshold, reason, numbers)


def _versus(metric: str, value: float, reference: float) -> str:
    """How far ``value`` is from ``reference``: in points, or for error metrics in % of it."""
    diff = value - reference
    side = "below" if diff < 0 else "above"
    if is_relative(metric) and reference:
        return f"{100 * abs(diff) / abs(reference):.1f} % {side}"
    return f"{abs(diff):.4f} {side}"


def _tol(metric: str, threshold: float) -> str:
    """A threshold as it is read: ``0.05`` (points) or ``0.05 = 5.0 % of the reference`` (error metrics)."""
    return f"{threshold} = {format_shortfall(metric, threshold)} of the reference" if is_relative(metric) else f"{threshold}"


def _ago(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"



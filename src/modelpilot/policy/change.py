"""What a located change means for retraining: the first model after it, then refreshes.

The change detector (:mod:`modelpilot.monitoring.change`) reads the champion's labelled
errors; the controller puts its report in the monitoring summary (``summary.change``).
:func:`change_signal` turns it into the ``change`` trigger's reading and the
:class:`~modelpilot.policy.trigger_state.ChangeState` to remember:

- a change found on the errors of a champion the state does not know a change for is *new*:
  it is remembered (time of its first row, levels, statistic) and fires as soon as
  ``retraining.min_rows_after_change`` labelled rows follow it (until then the reading is
  "insufficient": the loop waits for those rows instead of retraining on the old concept);
- the same champion still showing the change refines where it starts (more rows after a
  change locate it better) and keeps the count of rows already trained on;
- once a model has been trained on the rows after the change, the trigger fires again each
  time those rows have grown ``retraining.refresh_factor`` times (a *refresh*), until a model
  has learned from the full ``retraining.recent_rows`` window; a last step that would not at
  least double the rows is skipped.

A champion trained after the change that degrades in turn (a performance trigger fires, the
change trigger does not) means the concept kept moving — a gradual drift: :func:`moved_on`
moves the change to when that champion took over, so the next models learn from the newer
rows only and the refreshes start again from there.

Each firing is gated like any retrain; :func:`change_retrained` records the rows a retrain
read, whether it was promoted or not, so a rejected model is retried only with more rows.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelpilot.config import PilotConfig
from modelpilot.policy.trigger_state import (
    ChangeState,
    MonitoringSummary,
    Signal,
    TriggerState,
    utc,
)

NAME = "change"


def change_signal(cfg: PilotConfig, s: MonitoringSummary, state: TriggerState, now: datetime) -> tuple[Signal, ChangeState | None]:
    """The ``change`` trigger's reading on this tick and the change to remember.

    Returns:
        ``(signal, change)``: ``signal.state`` is "over" when a retrain on post-change rows is
        due, "insufficient" while a new change waits for rows, else "under" or "none".
    """
    c, known, rep = cfg.triggers.change, state.change, s.change
    signal, known = _read(cfg, rep, known, now)
    if not c.enabled and signal.state != "none":
        # the change is still located (retrains of other triggers learn from rows after it)
        return Signal(NAME, "none", f"disabled (triggers.change.enabled); {signal.reason}"), known
    return signal, known


def _read(cfg: PilotConfig, rep: dict[str, Any] | None, known: ChangeState | None, now: datetime) -> tuple[Signal, ChangeState | None]:
    if rep is None:
        return Signal(NAME, "none", "no labelled errors of the champion to test"), known
    stat, crit = rep.get("statistic"), float(rep.get("threshold") or 0.0)
    numbers: dict[str, Any] = {k: rep.get(k) for k in ("method", "statistic", "threshold", "p_value", "alpha", "n",
                                                          "level_before", "level_after", "rows_after")}
    if rep.get("detected"):
        since, version = utc(datetime.fromisoformat(str(rep["since"]))), int(rep["version"])
        level = (f"the error rate of v{version} rose from {rep['level_before']:.4f} to {rep['level_after']:.4f} "
                 f"at {since.isoformat()} (statistic {stat:.2f} > critical {crit:.2f}, p={rep['p_value']:.2g}, "
                 f"alpha {rep['alpha']} per check, {rep['n']} labelled rows tested)")
        found = dict(level_before=rep["level_before"], level_after=rep["level_after"], statistic=stat, since=since)
        if known is None or known.version != version:
            known = ChangeState(found_at=utc(now), version=version, **found)
            numbers["new"] = True
        else:
            known = replace(known, **found)
        n_post = int(rep["rows_after"])
    elif known is None:
        text = "the champion's error rate holds" + (f" (statistic {stat:.2f} <= critical {crit:.2f})" if stat is not None else "")
        return Signal(NAME, "under", text, stat, crit, numbers), None
    else:
        n_post = int(rep.get("rows_since_known") or 0)
        level = f"change at {known.since.isoformat()} (found on v{known.version})"
    numbers.update(since=known.since.isoformat(), rows_since_change=n_post, trained_rows=known.trained_rows)
    return _pace(cfg, known, n_post, level, stat, crit, numbers), known


def _pace(cfg: PilotConfig, known: ChangeState, n_post: int, level: str, stat: float | None, crit: float,
          numbers: dict[str, Any]) -> Signal:
    rc = cfg.retraining
    trained = known.trained_rows
    if trained == 0:
        need, what = rc.min_rows_after_change, "the first model on rows after it"
    else:
        full = rc.recent_rows
        step = math.ceil(rc.refresh_factor * trained)
        need = min(step, full)
        if trained >= full or (need < step and need < 2 * trained):
            return Signal(NAME, "under", f"{level}; a model has learned from {trained} rows after it, the full "
                          f"window (retraining.recent_rows {full})", stat, crit, numbers)
        what = f"a refresh: the last retrain read {trained} rows after it (retraining.refresh_factor {rc.refresh_factor})"
    numbers["rows_needed"] = need
    text = f"{level}; {n_post} labelled rows after it, {what} needs {need}"
    if n_post >= need:
        return Signal(NAME, "over", text, stat, crit, numbers)
    if trained == 0:
        return Signal(NAME, "insufficient", f"{text}: waiting (retraining.min_rows_after_change)", stat, crit, numbers)
    return Signal(NAME, "under", text, stat, crit, numbers)


def change_retrained(state: TriggerState, rows: int) -> TriggerState:
    """Record that a retrain read ``rows`` labelled rows after the known change."""
    if state.change is None:
        return state
    return replace(state, change=replace(state.change, trained_rows=max(int(rows), state.change.trained_rows)))


PERFORMANCE = ("performance_drop", "segment_performance_drop")


def moved_on(state: TriggerState, s: MonitoringSummary, fired: list[str], now: datetime) -> TriggerState:
    """After a retrain decision: restart the change where a post-change champion took over, if it degrades.

    Args:
        state: the state after the decisions.
        s: the summary (``s.change["version"]`` is the champion, ``["champion_since"]`` the
            time of its first labelled row).
        fired: the names of the triggers that fired.
        now: the current time.
    """
    known, rep = state.change, s.change or {}
    since = rep.get("champion_since")
    if known is None or NAME in fired or not any(f in fired for f in PERFORMANCE) or since is None:
        return state
    version = int(rep.get("version") or 0)
    if version <= known.version:
        return state
    moved = ChangeState(since=utc(datetime.fromisoformat(str(since))), found_at=utc(now), version=version)
    return replace(state, change=moved)

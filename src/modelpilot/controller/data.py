"""Choosing the data a retrain learns from, and the holdout the gate judges on.

Training only on the most recent labelled traffic is a known trap: the model forgets
everything the recent window does not show (rare segments, last season). So the set is
``retraining.recent_rows`` of the latest labelled predictions, mixed with a sample of older
history (older labelled traffic and the configured source) making up
``retraining.history_fraction`` of it, with the rows of segments that currently perform
badly drawn ``upsample_factor`` times. The newest ``holdout_fraction`` of the recent rows
is held out: champion and challenger are compared on exactly those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.config import PilotConfig
from modelpilot.errors import DataError

FEATURE_PREFIX = "f_"


class WaitForData(DataError):
    """A retrain is due but the data after the detected change is still too thin."""


def row_errors(rows: pd.DataFrame, task: str) -> np.ndarray:
    """Per-row loss of logged predictions against their labels (time order kept)."""
    if task == "classification":
        wrong = rows["prediction"].astype(str).to_numpy() != rows["label"].astype(str).to_numpy()
        return np.asarray(wrong, dtype=np.float64)
    pred = pd.to_numeric(rows["prediction"]).to_numpy(np.float64)
    err = (pred - pd.to_numeric(rows["label"]).to_numpy(np.float64)) ** 2
    scale = float(np.median(err)) or 1.0
    return np.asarray(np.minimum(err / scale, 10.0))  # bounded: one wild label must not make a change


@dataclass(frozen=True)
class RetrainData:
    train: pd.DataFrame            # in the source's schema: features, target, time column
    holdout: pd.DataFrame          # the newest labelled rows, same schema
    info: dict[str, Any] = field(default_factory=dict)
    # the new labelled rows the set was built from (training part and holdout), checked on their own
    batch: pd.DataFrame | None = None


def log_to_frame(rows: pd.DataFrame, cfg: PilotConfig, classes: list[Any] | None) -> pd.DataFrame:
    """Turn prediction-log rows (``f_*`` features, ``label``, ``ts``) into the source's schema.

    Labels travel as strings through the log; they are mapped back to the champion's class
    values (``"1"`` → ``1``) so the retrained model predicts the same labels.
    """
    feats = {c[len(FEATURE_PREFIX) :]: rows[c].to_numpy() for c in rows.columns if c.startswith(FEATURE_PREFIX)}
    out = pd.DataFrame(feats, index=rows.index)
    labels = rows["label"]
    if classes is not None:
        lookup = {str(c): c for c in classes}
        mapped = labels.astype(str).map(lookup)
        # a missing label is a missing target value (the checks name it), not an unknown class
        unknown = mapped.isna() & labels.notna() & ~labels.astype(str).str.lower().isin(["", "nan", "none"])
        if unknown.any():
            bad = sorted(set(labels[unknown].astype(str)))[:5]
            raise DataError(
                f"feedback labels {bad} are not classes of the champion ({sorted(lookup)}): "
                "send labels with the same values as the training target"
            )
        out[cfg.model.target] = mapped.to_numpy()
    else:
        out[cfg.model.target] = pd.to_numeric(labels, errors="coerce").to_numpy()
    if cfg.model.time_column:
        out[cfg.model.time_column] = rows["ts"].array  # tz-aware as it is (to_numpy makes Timestamp objects)
    if cfg.model.id_column:  # the request id is the row's identity in the log
        out[cfg.model.id_column] = rows["request_id"].astype(str).to_numpy()
    return out.reset_index(drop=True)


def select_retraining_data(
    cfg: PilotConfig,
    labelled: pd.DataFrame,
    *,
    history: pd.DataFrame | None,
    bad_segments: list[tuple[str, Any]] | None = None,
    change_at: int | None = None,
    holdout_rows_needed: int | None = None,
    seed: int = 0,
) -> RetrainData:
    """Build the retraining set and the gate's holdout.

    Args:
        cfg: the config (``retraining`` section).
        labelled: labelled rows in the source's schema, oldest first (see :func:`log_to_frame`).
        history: older data in the same schema (the configured source), or None.
        bad_segments: ``(column, value)`` pairs of segments to upsample.
        change_at: the row of ``labelled`` where the champion's errors rose (located by the
            change detector); only rows from it on are used, without any older history.
        holdout_rows_needed: after a change, the holdout the gate's non-inferiority test
            needs for its power; the holdout grows from ``holdout_fraction`` towards it into
            the post-change rows older than the training window (``recent_rows``), so the
            training rows are never fewer for it.
        seed: for the history sample and the upsampling.

    Raises:
        WaitForData: a change was found but fewer than ``min_rows_after_change`` labelled
            rows follow it yet.
        DataError: too few labelled rows to hold any out.
    """
    rc = cfg.retraining
    rng = np.random.default_rng(seed)
    if change_at is not None and len(labelled) - change_at < rc.min_rows_after_change:
        raise WaitForData(
            f"the champion's error rate rose {len(labelled) - change_at} labelled rows ago; waiting for "
            f"{rc.min_rows_after_change} rows after the change before retraining "
            "(retraining.min_rows_after_change)"
        )
    pool_rows = labelled.iloc[change_at:] if change_at is not None else labelled
    recent = pool_rows.tail(rc.recent_rows).reset_index(drop=True)
    n_holdout = int(round(len(recent) * rc.holdout_fraction))
    if change_at is not None and holdout_rows_needed and len(pool_rows) > len(recent):
        # the holdout grows towards the test's power into post-change rows the training window
        # does not use (never at the expense of the training rows)
        n_train = len(recent) - n_holdout
        n_holdout = max(n_holdout, min(holdout_rows_needed, len(pool_rows) - n_train))
        recent = pool_rows.tail(n_train + n_holdout).reset_index(drop=True)
    if n_holdout < 10 or len(recent) - n_holdout < 10:
        raise DataError(
            f"only {len(recent)} labelled rows: a retrain needs at least "
            f"{int(np.ceil(20 / min(rc.holdout_fraction, 1 - rc.holdout_fraction)))}; "
            "send more labels to /feedback or lower retraining.holdout_fraction"
        )
    holdout = recent.iloc[-n_holdout:].reset_index(drop=True)
    train = recent.iloc[:-n_holdout]

    # rows before a detected change follow the old concept: they stay out of the pool
    older = [] if change_at is not None else [labelled.iloc[: max(0, len(labelled) - len(recent))]]
    # the configured source is older than the traffic, so it predates a detected change too
    if history is not None and len(history) and change_at is None:
        older.append(history[[c for c in train.columns if c in history.columns]])
    pool = pd.concat([o for o in older if len(o)], ignore_index=True) if any(len(o) for o in older) else None
    n_history = 0
    if pool is not None and rc.history_fraction > 0:
        want = int(round(len(train) * rc.history_fraction / (1 - rc.history_fraction)))
        n_history = min(want, len(pool))
        if n_history:
            picked = rng.choice(len(pool), size=n_history, replace=False)
            train = pd.concat([pool.iloc[np.sort(picked)], train], ignore_index=True)

    upsampled: dict[str, int] = {}
    if rc.upsample_segments and bad_segments:
        extra = []
        for column, value in bad_segments:
            if column not in train.columns:
                continue
            rows = train[train[column].astype(str) == str(value)]
            n_extra = int(round(len(rows) * (rc.upsample_factor - 1)))
            if len(rows) and n_extra:
                extra.append(rows.iloc[rng.integers(0, len(rows), size=n_extra)])
                upsampled[f"{column}={value}"] = n_extra
        if extra:
            train = pd.concat([train, *extra], ignore_index=True)

    info = {
        "change_point_rows_ago": None if change_at is None else int(len(labelled) - change_at),
        "after_change": change_at is not None,
        "holdout_rows_needed": holdout_rows_needed if change_at is not None else None,
        # upsampled copies sit at the end of ``train``: they shape the model, not its reference profile
        "resampled_rows": int(sum(upsampled.values())),
        "recent_rows": int(len(recent) - n_holdout),
        "history_rows": int(n_history),
        "upsampled": upsampled,
        "holdout_rows": int(n_holdout),
        "train_rows": int(len(train)),
    }
    return RetrainData(train=train.reset_index(drop=True), holdout=holdout, info=info, batch=recent)

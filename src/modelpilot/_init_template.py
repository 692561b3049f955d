"""What ``modelpilot init`` writes: a commented config and a small example dataset."""

from __future__ import annotations

from pathlib import Path

from modelpilot.errors import ConfigError

EXAMPLE_CONFIG = """\
# modelpilot configuration. Every key is optional except model.name and model.target;
# a key left out takes its default (all of them: docs/configuration.md in the modelpilot
# documentation). A misspelt key is an error naming the closest valid one.

model:
  name: churn                    # registry name; the HTTP path is /v1/models/churn
  target: churned                # the column to predict
  task: auto                     # auto | classification | regression
  # estimator: sklearn.ensemble.RandomForestClassifier   # a supported estimator (docs/configuration.md)
  # params: {n_estimators: 200}
  time_column: ts                # split by time, profile the time range
  id_column: customer_id         # never used as a feature
  segments: [region, plan]       # metrics are reported per value of these columns

data:
  source: data/customers.parquet # Parquet or CSV (relative to this file), or use `query:`
  # query: "SELECT * FROM 'data/*.parquet' WHERE ts >= '2026-01-01'"   # DuckDB SQL
  schema:                        # expected types; mismatches are a validation check
    tenure_months: float
    monthly_spend: float
    plan: category
  validation:
    missing: {max_fraction: 0.2, action: fail}       # fail | warn | off
    ranges: {columns: {age: [18, 100]}, action: warn}
    outliers: {factor: 3.0, max_fraction: 0.02, action: warn}
    duplicates: {max_fraction: 0.05, action: warn}
    class_balance: {min_fraction: 0.02, action: fail}

split:
  validation_fraction: 0.2       # the most recent 20% (by time_column) is validation

tuning:
  n_trials: 8                    # Optuna trials, run in parallel through the executor
  timeout: 2m
  parallel: 2
  # space:
  #   learning_rate: {type: float, low: 0.02, high: 0.3, log: true}
  #   max_leaf_nodes: {type: int, low: 8, high: 64}

evaluation:
  metric: accuracy               # accuracy | roc_auc | f1 | log_loss | rmse | mae | r2
  overfit_max_gap: 0.1           # train - validation above this is flagged (the default)

gates:
  min_metrics: {accuracy: 0.7}   # a version below this is never promoted
  min_improvement: 0.0           # a challenger must beat the champion by this much (rmse: a fraction)
  test: bootstrap                # bootstrap | mcnemar | none

costs:
  compute_per_hour: 0.40         # price of one CPU hour
  storage_per_gb_month: 0.023
  value_per_correct_prediction: 0.50   # earned per correct prediction (classification)
  cost_per_error: 1.00                 # lost per wrong one; regression: cost_per_unit_error

store:
  url: sqlite:///.modelpilot/store.db   # or postgresql+psycopg://user@host/db
artifacts:
  url: .modelpilot/artifacts            # or s3://bucket/prefix

triggers:
  performance_drop: {threshold: 0.05, min_samples: 200, cooldown: 1h}
  segment_performance_drop: {threshold: 0.08, min_samples: 100, cooldown: 1h}
  feature_drift: {enabled: true, threshold: 0.5, min_samples: 500, cooldown: 6h}
  # schedule: "0 3 * * 0"        # also retrain every Sunday at 03:00

budget:
  period: 7d
  max_retrains: 5
  max_cost: 10.0
"""


def write_example(folder: Path, *, rows: int = 4000, seed: int = 7, force: bool = False) -> list[Path]:
    """Write ``pilot.yaml`` and ``data/customers.parquet`` into ``folder``.

    Raises:
        ConfigError: ``pilot.yaml`` exists and ``force`` is false.
    """
    from modelpilot.data.synth import customers

    config_path = folder / "pilot.yaml"
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} already exists: pass --force to overwrite it")
    data_path = folder / "data" / "customers.parquet"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    frame = customers(rows, seed=seed)
    frame.insert(0, "customer_id", [f"C{i:07d}" for i in range(1, len(frame) + 1)])
    frame.to_parquet(data_path, index=False)
    config_path.write_text(EXAMPLE_CONFIG)
    return [config_path, data_path]

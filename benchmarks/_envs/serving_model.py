"""The serving benchmark's data and model: the same code, seed and scikit-learn version in
modelpilot's venv and in the MLflow venv, so both servers serve the same fitted pipeline.

Only NumPy, pandas and scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

NUMERIC = ["age", "income", "tenure", "calls"]
CATEGORICAL = ["plan", "region"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "churned"
SEED = 0


def make_data(n: int, seed: int = SEED) -> pd.DataFrame:
    """``n`` customers: 4 numeric and 2 categorical features and a binary target."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n).round(1),
            "income": rng.normal(50_000, 15_000, n).round(0),
            "tenure": rng.integers(0, 120, n).astype(float),
            "calls": rng.poisson(3, n).astype(float),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    logit = (df["age"] - 45) / 10 + (df["plan"] == "basic") * 1.5 - df["tenure"] / 60 + df["calls"] / 4
    df[TARGET] = (logit + rng.normal(0, 1, n) > 0).astype(int)
    return df


def train(df: pd.DataFrame) -> Pipeline:
    """modelpilot's standard bundle shape: ColumnTransformer → HistGradientBoosting.

    ``random_state`` is fixed because early stopping (on by default above 10,000 rows)
    draws a validation split: both venvs must fit the identical model.
    """
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(), NUMERIC),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                   encoded_missing_value=-1), CATEGORICAL),
        ]
    )
    model = HistGradientBoostingClassifier(max_iter=100, random_state=SEED)
    pipe = Pipeline([("pre", pre), ("model", model)])
    return pipe.fit(df[FEATURES], df[TARGET])

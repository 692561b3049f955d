"""Feature roles: inference from dtypes, configured lists, task, signature, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.config import PilotConfig
from modelpilot.data import FeatureSpec, infer_task, resolve_features, synth
from modelpilot.errors import DataError

NUMERIC = ["tenure_months", "monthly_spend", "support_calls", "age", "discount_pct"]


def _cfg(**model: Any) -> PilotConfig:
    return PilotConfig.model_validate({"model": {"name": "m", "target": "churned", **model}})


@pytest.fixture
def df() -> pd.DataFrame:
    return synth.customers(300, seed=0)


def test_inferred_from_dtypes(df: pd.DataFrame) -> None:
    spec = resolve_features(df, _cfg(time_column="ts", segments=["region"]))
    assert spec.task == "classification"
    assert spec.numeric == NUMERIC
    assert spec.categorical == ["plan", "region", "channel"]  # the segment is a feature too
    assert "ts" not in spec.features and "churned" not in spec.features
    assert spec.segments == ["region"]
    sig = {s["name"]: s["type"] for s in spec.signature}
    assert sig == {"tenure_months": "int", "monthly_spend": "float", "support_calls": "int",
                   "age": "float", "discount_pct": "float", "plan": "string",
                   "region": "string", "channel": "string"}
    assert [s["name"] for s in spec.signature] == spec.features


def test_datetime_columns_never_features_even_without_time_column(df: pd.DataFrame) -> None:
    assert "ts" not in resolve_features(df, _cfg()).features


def test_exclusions_and_id_column(df: pd.DataFrame) -> None:
    df = df.assign(customer_id=np.arange(len(df)), flag=df["churned"].astype(bool))
    spec = resolve_features(df, _cfg(id_column="customer_id", segments=["region"],
                                     features={"exclude": ["region", "age"]}))
    assert "customer_id" not in spec.features and "region" not in spec.features
    assert "age" not in spec.features and spec.segments == ["region"]
    assert spec.types["flag"] == "bool" and "flag" in spec.numeric


def test_configured_lists(df: pd.DataFrame) -> None:
    only_numeric = resolve_features(df, _cfg(features={"numeric": ["age"], "categorical": []}))
    assert only_numeric.features == ["age"]
    # numeric listed, categorical inferred from the remaining columns
    spec = resolve_features(df, _cfg(features={"numeric": ["age", "support_calls"]}))
    assert spec.numeric == ["age", "support_calls"]
    assert spec.categorical == ["plan", "region", "channel"]
    # an integer column can be declared categorical; the numeric list is then inferred without it
    spec = resolve_features(df, _cfg(features={"categorical": ["support_calls"]}))
    assert spec.categorical == ["support_calls"] and "support_calls" not in spec.numeric


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (pd.Series([0, 1, 2, 1]), "classification"),
        (pd.Series(["yes", "no", "no"]), "classification"),
        (pd.Series([True, False]), "classification"),
        (pd.Series(pd.Categorical(["a", "b"])), "classification"),
        (pd.Series(np.arange(50)), "regression"),
        (pd.Series([0.5, 1.0, 3.2]), "regression"),
    ],
)
def test_infer_task(target: pd.Series, expected: str) -> None:
    assert infer_task(target) == expected


def test_task_auto_and_override() -> None:
    df = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40) * 1.5})
    assert resolve_features(df, _cfg(target="y")).task == "regression"
    df["k"] = np.arange(40) % 30
    assert resolve_features(df, _cfg(target="k")).task == "regression"  # > 20 integer values
    assert resolve_features(df, _cfg(target="k", task="classification")).task == "classification"


def test_unknown_configured_column_suggests(df: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column 'tenure_month' named in model\.features\.numeric is not in the data \(did you mean 'tenure_months'\?\); available columns: ts, tenure_months"):
        resolve_features(df, _cfg(features={"numeric": ["tenure_month"]}))
    with pytest.raises(DataError, match=r"column 'churn' named in model\.target .*did you mean 'churned'"):
        resolve_features(df, _cfg(target="churn"))
    with pytest.raises(DataError, match=r"column 'regoin' named in model\.segments"):
        resolve_features(df, _cfg(segments=["regoin"]))
    with pytest.raises(DataError, match=r"column 'zzz' named in model\.features\.exclude is not in the data; available"):
        resolve_features(df, _cfg(features={"exclude": ["zzz"]}))


def test_empty_single_class_and_conflicts(df: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"the dataset is empty \(0 rows\)"):
        resolve_features(df.iloc[:0], _cfg())
    with pytest.raises(DataError, match=r"target column 'churned' has a single class \(0\) in \d+ rows.*model\.task: regression"):
        resolve_features(df[df["churned"] == 0], _cfg())
    with pytest.raises(DataError, match=r"listed in both model\.features\.numeric and model\.features\.categorical"):
        resolve_features(df, _cfg(features={"numeric": ["age"], "categorical": ["age"]}))
    with pytest.raises(DataError, match=r"model\.features\.numeric lists churned"):
        resolve_features(df, _cfg(features={"numeric": ["churned"]}))
    with pytest.raises(DataError, match=r"holds str values but model\.task is regression"):
        resolve_features(df.assign(churned=df["churned"].map({0: "no", 1: "yes"})), _cfg(task="regression"))
    with pytest.raises(DataError, match=r"no feature columns left"):
        resolve_features(df[["ts", "churned"]], _cfg())


def test_spec_round_trips(df: pd.DataFrame) -> None:
    spec = resolve_features(df, _cfg(time_column="ts", segments=["region"]))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec

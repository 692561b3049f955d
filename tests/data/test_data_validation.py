"""Validation checks fire on crafted bad data, stay quiet on good data, obey actions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.config import PilotConfig
from modelpilot.data import CHECKS, ValidationReport, resolve_features, synth, validate
from modelpilot.errors import DataError, ValidationFailed


def _cfg(validation: dict[str, Any] | None = None, schema: dict[str, str] | None = None,
         **model: Any) -> PilotConfig:
    return PilotConfig.model_validate({
        "model": {"name": "m", "target": "y", **model},
        "data": {"validation": validation or {}, "schema": schema or {}},
    })


def _run(df: pd.DataFrame, cfg: PilotConfig) -> ValidationReport:
    return validate(df, cfg, resolve_features(df, cfg))


@pytest.fixture
def clean() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1000
    return pd.DataFrame({
        "a": rng.normal(0, 1, n),
        "b": rng.integers(0, 100, n),
        "c": rng.choice(["x", "y", "z"], n),
        "y": rng.integers(0, 2, n),
    })


def test_clean_data_passes_every_check(clean: pd.DataFrame) -> None:
    report = _run(clean, _cfg({"ranges": {"columns": {"b": [0, 100]}}}))
    assert report.ok
    assert [c.name for c in report.checks] == list(CHECKS)
    assert {c.status for c in report.checks} == {"pass"}
    report.raise_if_failed()  # does not raise
    json.dumps(report.to_dict())


def test_example_dataset_passes() -> None:
    df = synth.customers(5000, seed=0)
    cfg = PilotConfig.model_validate({"model": {"name": "m", "target": "churned", "time_column": "ts"}})
    report = validate(df, cfg, resolve_features(df, cfg))
    assert {c.name: c.status for c in report.checks if c.status != "pass"} == {}
    assert report.get("missing").numbers["columns"]["age"] == pytest.approx(0.03, abs=0.01)


def test_missing_fail_warn_relax_off(clean: pd.DataFrame) -> None:
    clean.loc[::2, "a"] = np.nan  # 50% missing
    report = _run(clean, _cfg())
    check = report.get("missing")
    assert check.status == "fail" and not report.ok
    assert check.numbers["columns"]["a"] == pytest.approx(0.5)
    assert check.numbers["failing"] == ["a"]
    assert "a 50.0%" in check.message
    assert _run(clean, _cfg({"missing": {"action": "warn"}})).get("missing").status == "warn"
    assert _run(clean, _cfg({"missing": {"action": "warn"}})).ok
    assert _run(clean, _cfg({"missing": {"max_fraction": 0.6}})).get("missing").status == "pass"
    assert _run(clean, _cfg({"missing": {"action": "off"}})).get("missing").status == "off"


def test_text_in_numeric_feature_fails_types(clean: pd.DataFrame) -> None:
    clean["b"] = clean["b"].astype(object)
    clean.loc[[3, 9, 11], "b"] = ["abc", "n/a", "abc"]
    cfg = _cfg(features={"numeric": ["a", "b"]})
    report = _run(clean, cfg)
    check = report.get("types")
    assert check.status == "fail"
    assert check.numbers["columns"]["b"]["bad"] == 3
    assert check.numbers["columns"]["b"]["examples"] == ["abc", "n/a"]
    with pytest.raises(ValidationFailed, match=r"types: column 'b' is declared float but 3 values do not parse as numbers \(e\.g\. 'abc', 'n/a'\); fix: clean the data or declare the column categorical") as info:
        report.raise_if_failed()
    assert info.value.report is report
    # declaring it categorical is the documented fix
    relaxed = _cfg(features={"numeric": ["a"], "categorical": ["b", "c"]})
    assert _run(clean, relaxed).get("types").status == "pass"


def test_schema_types(clean: pd.DataFrame) -> None:
    clean["a"] = clean["a"].round(0)
    clean["d"] = pd.Series(["2026-01-01"] * 999 + ["soon"])
    cfg = _cfg(schema={"a": "int", "b": "category", "d": "datetime"})
    check = _run(clean, cfg).get("types")
    assert check.status == "fail"
    assert set(check.numbers["columns"]) == {"d"}
    assert "column 'd' is declared datetime but 1 values do not parse as dates" in check.message
    clean.loc[5, "a"] = 0.5
    check = _run(clean, _cfg(schema={"a": "int"})).get("types")
    assert "column 'a' is declared int but 1 values are not whole numbers" in check.message
    with pytest.raises(DataError, match=r"column 'bb' named in data\.schema is not in the data \(did you mean 'b'\?\)"):
        _run(clean, _cfg(schema={"bb": "int"}))


def test_ranges(clean: pd.DataFrame) -> None:
    cfg = _cfg({"ranges": {"columns": {"b": [10, None], "a": [None, 1.0]}}})
    check = _run(clean, cfg).get("ranges")
    assert check.status == "warn"  # the default action for ranges
    assert check.numbers["columns"]["b"]["below"] == int((clean["b"] < 10).sum()) > 0
    assert check.numbers["columns"]["a"]["above"] == int((clean["a"] > 1).sum()) > 0
    assert check.numbers["columns"]["b"]["above"] == 0
    cfg = _cfg({"ranges": {"action": "fail", "columns": {"b": [0, 99]}}})
    assert _run(clean, cfg).get("ranges").status == "pass"
    with pytest.raises(DataError, match=r"named in data\.validation\.ranges\.columns"):
        _run(clean, _cfg({"ranges": {"columns": {"zz": [0, 1]}}}))


def test_outliers(clean: pd.DataFrame) -> None:
    clean.loc[:49, "a"] = 1000.0  # 5% far outside 3 IQR
    clean["flat"] = 0.0
    clean.loc[:9, "flat"] = 5.0  # quartiles coincide: skipped, not 1% "outliers"
    check = _run(clean, _cfg()).get("outliers")
    assert check.status == "warn"
    assert check.numbers["failing"] == ["a"]
    assert check.numbers["columns"]["a"]["outliers"] == 50
    assert check.numbers["skipped"] == ["flat"]
    assert _run(clean, _cfg({"outliers": {"max_fraction": 0.1}})).get("outliers").status == "pass"
    assert _run(clean, _cfg({"outliers": {"factor": 2000}})).get("outliers").status == "pass"
    assert _run(clean, _cfg({"outliers": {"action": "fail"}})).get("outliers").status == "fail"


def test_duplicates_ignore_id_column(clean: pd.DataFrame) -> None:
    dup = pd.concat([clean, clean.iloc[:100]], ignore_index=True)
    dup["id"] = np.arange(len(dup))
    check = _run(dup, _cfg(id_column="id")).get("duplicates")
    assert check.status == "warn"
    assert check.numbers["duplicates"] == 100
    assert check.numbers["fraction"] == pytest.approx(100 / 1100)
    assert _run(clean, _cfg()).get("duplicates").numbers["duplicates"] == 0


def test_class_balance(clean: pd.DataFrame) -> None:
    clean["y"] = 0
    clean.loc[:2, "y"] = 1  # 0.3% of rows
    report = _run(clean, _cfg())
    check = report.get("class_balance")
    assert check.status == "fail"
    assert check.numbers["rarest"] == "1"
    assert check.numbers["shares"]["1"] == pytest.approx(0.003)
    assert "rarest class 1 of 'y' holds 0.3% of rows (min 1.0%)" in check.message
    assert _run(clean, _cfg({"class_balance": {"min_fraction": 0.001}})).get("class_balance").status == "pass"
    # a single class fails even when the check only warns
    cfg = _cfg({"class_balance": {"action": "warn"}}, task="classification")
    single = clean.assign(y=0)
    spec = resolve_features(clean, cfg)
    assert validate(single, cfg, spec).get("class_balance").status == "fail"
    # regression: not applicable
    reg = clean.assign(y=np.linspace(0, 1, len(clean)))
    assert _run(reg, _cfg()).get("class_balance").status == "off"


def test_raise_lists_every_failing_check_and_its_setting(clean: pd.DataFrame) -> None:
    clean.loc[::2, "a"] = np.nan
    clean["y"] = 0
    clean.loc[0, "y"] = 1
    report = _run(clean, _cfg())
    assert [c.name for c in report.failed] == ["missing", "class_balance"]
    with pytest.raises(ValidationFailed, match=r"(?s)data validation failed \(2 checks\):\n  - missing: .*set data\.validation\.missing\.action: warn.*\n  - class_balance: .*data\.validation\.class_balance\.min_fraction") as info:
        report.raise_if_failed()
    assert isinstance(info.value, DataError)
    assert info.value.report is report
    body = json.loads(json.dumps(report.to_dict()))
    assert body["ok"] is False and body["checks"][0]["status"] == "fail"

"""The replay's clock: numeric time columns, epoch units, and time columns that cannot order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.backtest import parse_policies, run_backtest
from modelpilot.backtest.engine import make_config
from modelpilot.config import PilotConfig
from modelpilot.data.synth import scenario
from modelpilot.data.timecol import TimeColumnError
from modelpilot.executors import LocalExecutor

BATCH = 500
COOLDOWN_DAYS = 400  # eight batches: 10 rows per day, 500 rows per batch


def test_an_integer_day_column_is_an_ordinal_clock_where_cooldowns_hold(executor: LocalExecutor) -> None:
    """900 days of 10 rows each. Read as nanoseconds they would span 900 ns: the cooldown would
    cover the whole replay and the dynamic policy could fire once. As an ordinal clock it fires
    after the first drift, holds still for its 400-day cooldown through the second drift, and
    fires again as soon as the cooldown is over."""
    frame, info = scenario("sudden", 9000, seed=0)
    frame = frame.drop(columns="ts").assign(day=np.arange(len(frame)) // 10)  # many rows per day
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "day"},
                                 # the change trigger is paced by labelled rows, not by the clock:
                                 # off here, so every retrain comes from a time-based cooldown
                                 "triggers": {"performance_drop": {"cooldown": COOLDOWN_DAYS},
                                              "change": {"enabled": False}}})
    result = run_backtest(frame, cfg, parse_policies(["dynamic"], cfg), batch=BATCH, initial=1500,
                          executor=executor, scenario=info)
    assert result.clock is not None
    assert {k: result.clock[k] for k in ("column", "kind", "step_seconds", "first", "last")} == {
        "column": "day", "kind": "ordinal", "step_seconds": 1.0, "first": 0, "last": 899}
    assert "ordinal clock" in result.to_dict()["clock"]["description"]
    assert not any("same time" in w for w in result.warnings)  # the clock moves 50 days a batch
    assert result.scenario is not None and result.scenario["drift_batches"] == [3, 9]
    batches = result.policy("dynamic")["retrain_batches"]
    assert len(batches) >= 2 and 3 <= batches[0] <= 6, batches  # fired after the first drift, and again
    cooldown_batches = COOLDOWN_DAYS * 10 // BATCH
    assert all(b - a >= cooldown_batches for a, b in zip(batches, batches[1:], strict=False)), batches
    assert batches[1] <= batches[0] + cooldown_batches + 2, batches  # the second drift, once the cooldown is over


def test_a_clock_that_stands_still_across_batches_is_reported(executor: LocalExecutor) -> None:
    frame, _ = scenario("stationary", 4000, seed=0)
    frame = frame.drop(columns="ts").assign(day=np.arange(len(frame)) // 1000)  # 1,000 rows a day
    cfg = PilotConfig.from_dict({"model": {"name": "bt", "target": "y", "time_column": "day"}})
    result = run_backtest(frame, cfg, parse_policies(["never"], cfg), batch=BATCH, initial=2000, executor=None)
    assert ("2 of 4 batches end at the same time as the batch before (many rows share a time in 'day'): the clock "
            "stands still across them") in " ".join(result.warnings)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelpilot.cli", "backtest", "--target", "y", "--policy", "never",
                           "--batch", "500", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def epoch_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = scenario("stationary", 2000, seed=1)
    frame["ts"] = frame["ts"].astype("int64") // 10**6  # epoch seconds, as many logs store them
    path = tmp_path_factory.mktemp("epoch") / "history.csv"
    frame.to_csv(path, index=False)
    return path


def test_epoch_seconds_are_read_with_time_unit_s(epoch_history: Path, tmp_path: Path) -> None:
    first = int(pd.read_csv(epoch_history)["ts"].iloc[0])
    out = _cli("--data", str(epoch_history), "--time-col", "ts", "--time-unit", "s", "--json", "out.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    clock = json.loads((tmp_path / "out.json").read_text())["clock"]
    assert clock["kind"] == "epoch" and clock["unit"] == "s"
    assert clock["first"] == pd.Timestamp(first, unit="s", tz="UTC").isoformat()
    assert clock["first"].startswith("2026-01-01")
    assert "read as epoch s" in out.stdout

    # without the flag the numbers are an ordinal clock, and the run says how to read them as dates
    out = _cli("--data", str(epoch_history), "--time-col", "ts", "--json", "out.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "out.json").read_text())["clock"]["kind"] == "ordinal"
    assert "look like epoch s (2026-01-01 to 2026-01-" in out.stderr and "pass --time-unit s" in out.stderr


def _bad_history(kind: str, path: Path) -> Path:
    frame, _ = scenario("stationary", 2000, seed=2)
    if kind == "unparseable":
        frame["ts"] = frame["ts"].astype(str)
        frame.loc[7, "ts"] = "last tuesday"
    elif kind == "mixed zones":
        text = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S")
        frame["ts"] = text.where(frame.index % 2 == 0, text + "+02:00")
    elif kind == "constant":
        frame["ts"] = 7
    frame.to_csv(path, index=False)
    return path


BAD = {
    "unparseable": ([], "time column 'ts' is neither numeric nor dates: 1 values do not parse (e.g. 'last tuesday'); "
                        "fix the data, or name a column of times with --time-col"),
    "mixed zones": ([], "time column 'ts' mixes times with a time zone (e.g. '2026-01-01T00:"),
    "dates": (["--time-unit", "ms"], "time column 'ts' holds dates, so a time unit ('ms') does not apply: it is only "
                                     "for numeric time columns; remove --time-unit"),
    "constant": ([], "every row of the time column 'ts' holds the same time, so it cannot order a replay: pass "
                     "--time-col with a column that changes"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_time_columns_are_one_clear_error(kind: str, tmp_path: Path) -> None:
    extra, message = BAD[kind]
    frame = pd.read_csv(_bad_history(kind, tmp_path / "history.csv"))
    cfg = make_config(None, target="y", time_col="ts", time_unit=extra[1] if extra else None)
    with pytest.raises(TimeColumnError) as info:
        run_backtest(frame, cfg, parse_policies(["never"], cfg), batch=BATCH)
    assert str(info.value).startswith(message) or message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("kind", "extra"), [("unparseable", []), ("dates", ["--time-unit", "ms"]),
                                             ("dates", ["--time-unit", "hours"])])
def test_the_cli_prints_one_line_and_exits_1(kind: str, extra: list[str], tmp_path: Path) -> None:
    message = BAD[kind][1] if "hours" not in extra else "--time-unit 'hours' is not one of ordinal, s, ms, us, ns"
    out = _cli("--data", str(_bad_history(kind, tmp_path / "history.csv")), "--time-col", "ts", *extra, cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("backtest:")]
    assert lines[0].startswith("error: ")  # one message (Rich wraps it at the terminal's width)
    assert " ".join(message.split()) in " ".join(" ".join(lines).split())

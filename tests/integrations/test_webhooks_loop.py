"""Webhooks from the real loop: a train and a controller tick send their events, signed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from receivers import Receiver

from modelpilot.data.synth import customers
from modelpilot.pilot import Pilot

SECRET = "loop-secret"


def project(folder: Path, hooks: list[dict[str, object]]) -> Path:
    (folder / "data").mkdir(parents=True)
    customers(600, seed=3).to_parquet(folder / "data" / "customers.parquet", index=False)
    cfg = {
        "model": {"name": "churn", "target": "churned", "time_column": "ts"},
        "data": {"source": "data/customers.parquet"},
        "tuning": {"enabled": False},
        "evaluation": {"permutation_repeats": 1, "learning_curve": False},
        "executor": {"workers": 1},
        "webhooks": hooks,
    }
    path = folder / "pilot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow  # trains a model
def test_train_and_tick_send_their_events(tmp_path: Path, receiver: Callable[..., Receiver],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_LOOP_SECRET", SECRET)
    r = receiver(SECRET.encode())
    dead = "http://127.0.0.1:9/unreachable"  # the discard port: nothing listens on loopback
    path = project(tmp_path, [{"name": "ops", "url": r.url, "secret_env": "MP_LOOP_SECRET", "events": ["*"]},
                              {"name": "down", "url": dead, "timeout": "2s"}])
    with Pilot.from_config(path) as pilot:
        assert pilot.train().version == 1
    kinds = [x["body"]["event"]["kind"] for x in r.received]
    assert {"version_registered", "thresholds_passed", "alias_moved"} <= set(kinds)  # sent when the command closed
    assert all(x["headers"]["X-Modelpilot-Signature"] for x in r.received)

    with Pilot.from_config(path) as pilot:
        ctl = pilot.controller()
        pilot.store.add_event("trigger_fired", model="churn", subject="performance_drop", reason="test")
        start = time.monotonic()
        ctl.tick()
        tick_seconds = time.monotonic() - start
        assert pilot.webhooks is not None
        pilot.webhooks.join(timeout=30)
        down = pilot.store.deliveries(webhook="down")
    assert "trigger_fired" in [x["body"]["event"]["kind"] for x in r.received]
    assert down and all(d.status == "pending" and d.attempts >= 1 for d in down)  # kept for a retry
    assert tick_seconds < 60  # the tick never waited for a receiver (background drain)

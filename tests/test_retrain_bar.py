"""The retrain progress bar of ``controller``: opened by the timeline, fed from the store."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from modelpilot.cli import RetrainBar
from modelpilot.config import PilotConfig
from modelpilot.pilot import Pilot


def test_the_bar_follows_a_retrain_from_start_to_finish(tmp_path: Path) -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "churned"},
                                 "tuning": {"n_trials": 6}, "retraining": {"tune": True}}, base_dir=tmp_path)
    with Pilot(cfg) as pilot:
        bars = Progress(console=Console(file=io.StringIO()))
        bar = RetrainBar(bars, pilot)

        bar({"kind": "retrain_started"})
        assert [(t.description, t.total) for t in bars.tasks] == [("retraining (trials)", 6)]

        # the retrain runs elsewhere (a worker process) and logs its trials to the store
        run = pilot.store.create_run("churn", kind="retrain")
        for trial in range(4):
            pilot.store.log_metric(run.id, "trial/accuracy", 0.8, step=trial)
        pilot.store.flush()
        bar.refresh()
        assert bars.tasks[0].completed == 4

        bar({"kind": "retrain_finished"})
        assert bars.tasks == []


def test_without_tuning_the_bar_shows_time_only(tmp_path: Path) -> None:
    cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "churned"}}, base_dir=tmp_path)
    with Pilot(cfg) as pilot:
        bars = Progress(console=Console(file=io.StringIO()))
        bar = RetrainBar(bars, pilot)
        bar({"kind": "retrain_resumed"})
        bar.refresh()
        assert [(t.description, t.total) for t in bars.tasks] == [("retraining", None)]
        bar({"kind": "retrain_failed"})
        assert bars.tasks == []

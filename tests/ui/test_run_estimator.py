"""The run page names the estimator that was trained, also when the config left it to the default."""

from __future__ import annotations

from typing import Any


def test_the_run_page_names_the_default_estimator(ui_client: Any, demo_env: Any) -> None:
    assert demo_env.pilot.cfg.model.estimator is None  # the demo relies on the task's default
    page = ui_client.get("/ui/runs/1")
    assert page.status_code == 200
    assert "<td>estimator</td><td><code>sklearn.ensemble.HistGradientBoostingClassifier</code>" in page.text
    assert "<code>None</code>" not in page.text

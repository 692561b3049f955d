"""Real components for the training tests: SQLite store, local artifacts, 2 worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelpilot.artifacts import ArtifactStore, open_artifacts
from modelpilot.config import PilotConfig
from modelpilot.executors import LocalExecutor
from modelpilot.store import Store


@pytest.fixture(scope="session")
def executor() -> Iterator[LocalExecutor]:
    # one pool for all training tests: spawning workers costs a couple of seconds
    with LocalExecutor(workers=2) as ex:
        yield ex


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return open_artifacts(str(tmp_path / "artifacts"))


MakeCfg = Callable[..., PilotConfig]


@pytest.fixture
def make_cfg(tmp_path: Path) -> MakeCfg:
    """A factory of configs for the churn data; tuning is off unless a test turns it on."""
    return lambda **sections: _make_cfg(tmp_path, **sections)


def _make_cfg(tmp_path: Path, **sections: Any) -> PilotConfig:
    raw: dict[str, Any] = {
        "model": {"name": "churn", "target": "churned", "time_column": "ts", "segments": ["region"]},
        "tuning": {"enabled": False},
        "evaluation": {"permutation_repeats": 1, "importance_max_rows": 200, "segment_min_rows": 20},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return PilotConfig.from_dict(raw, base_dir=tmp_path)

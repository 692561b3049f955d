"""The production window: the prediction log joined with feedback, read with DuckDB."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from modelpilot.artifacts import ArtifactStore
from modelpilot.serving.logreader import PredictionLogReader


class LogWindow:
    """:class:`~modelpilot.controller.window.WindowSource` over a model's prediction log."""

    def __init__(self, artifacts: ArtifactStore, model: str) -> None:
        self.reader = PredictionLogReader(artifacts, model)

    def window(
        self, *, last_n: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        return self.reader.joined(since=since, until=until, last_n=last_n)

    def labelled(self, *, last_n: int | None = None, since: datetime | None = None) -> pd.DataFrame:
        rows = self.reader.joined(since=since)
        rows = rows[rows["label"].notna()]
        return rows.tail(last_n) if last_n else rows

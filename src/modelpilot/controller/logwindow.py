"""The production window: the prediction log joined with feedback, read with DuckDB."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd

from modelpilot.artifacts import ArtifactStore
from modelpilot.serving.labels import LabelDomain
from modelpilot.serving.logreader import PredictionLogReader

log = logging.getLogger(__name__)


class LogWindow:
    """:class:`~modelpilot.controller.window.WindowSource` over a model's prediction log.

    With ``store``, a logged label that the version which served the row cannot use (not
    one of its classes, or not a finite number for a regressor — written before labels
    were checked at the door, or by a writer used directly) is treated as missing: the row
    counts as unlabelled, and the monitoring pass and the retraining set never see it.
    """

    def __init__(self, artifacts: ArtifactStore, model: str, store: Any = None) -> None:
        self.reader = PredictionLogReader(artifacts, model)
        self.store = store
        self._domains: dict[int, LabelDomain | None] = {}
        self.unusable_labels = 0  # rows dropped by the last labelled() call

    def window(
        self, *, last_n: int | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        return self.reader.joined(since=since, until=until, last_n=last_n)

    def labelled(self, *, last_n: int | None = None, since: datetime | None = None) -> pd.DataFrame:
        rows = self.reader.joined(since=since)
        rows = rows[rows["label"].notna()]
        rows = self._usable(rows)
        return rows.tail(last_n) if last_n else rows

    def paired(self, *, champion: int, retired: int, since: datetime | None = None) -> pd.DataFrame:
        return self.reader.paired(champion, retired, since)

    def served(self, version: int, *, since: datetime | None = None, until: datetime | None = None) -> int:
        return self.reader.count_served(version, since, until)

    def _domain(self, version: int) -> LabelDomain | None:
        if version not in self._domains:
            try:
                self._domains[version] = LabelDomain.of(self.store.get_version(self.reader.model, version))
            except Exception:  # a version the store does not know: keep its labels as they are
                self._domains[version] = None
        return self._domains[version]

    def _usable(self, rows: pd.DataFrame) -> pd.DataFrame:
        self.unusable_labels = 0
        if self.store is None or rows.empty:
            return rows
        keep = pd.Series(True, index=rows.index)
        for version, part in rows.groupby("model_version", sort=False):
            domain = self._domain(int(version))
            if domain is not None:
                keep.loc[part.index] = domain.usable(part["label"])
        dropped = int((~keep).sum())
        if dropped:
            self.unusable_labels = dropped
            log.warning("model %s: %d logged labels are not valid for the version that served them; "
                        "treated as unlabelled", self.reader.model, dropped)
        return rows[keep.to_numpy()]

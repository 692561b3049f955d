"""The one sentence every "no such column" error uses, with a "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from modelpilot.errors import DataError


def unknown_column(name: str, columns: Iterable[object], setting: str) -> DataError:
    """A DataError for a configured column the data does not have.

    Args:
        name: the configured column name.
        columns: the data's columns.
        setting: the config key that named it (``model.target``, ``data.schema``...).
    """
    available = [str(c) for c in columns]
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    shown = ", ".join(available[:50]) + (f", ... ({len(available)} in all)" if len(available) > 50 else "")
    return DataError(
        f"column '{name}' named in {setting} is not in the data{hint}; available columns: "
        f"{shown}; fix {setting} in pilot.yaml"
    )

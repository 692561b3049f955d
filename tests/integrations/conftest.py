"""Fixtures of the integration tests; this folder is put on ``sys.path`` for ``receivers``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receivers import Receiver  # noqa: E402


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """``receiver(secret, script=[500, 500], hang=0)``: a started receiver, stopped afterwards."""
    started: list[Receiver] = []

    def make(secret: bytes | None, **kwargs: Any) -> Receiver:
        started.append(Receiver(secret, **kwargs).start())
        return started[-1]

    yield make
    for r in started:
        r.stop()

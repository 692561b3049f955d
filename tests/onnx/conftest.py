"""The ONNX tests need the ``edge`` extra; without it they skip (or fail under
MODELPILOT_REQUIRE_SERVICES=1, as in CI, where the ``test`` extra installs it)."""

from __future__ import annotations

import pytest

from modelpilot.onnx import available
from modelpilot.testing.services import unavailable


@pytest.fixture(autouse=True)
def _edge_extra() -> None:
    if not available():
        unavailable("skl2onnx/onnxruntime are not installed: pip install 'modelpilot[edge]'")

"""The package's public face: ``from modelpilot import Pilot`` (DESIGN's Python contract)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import modelpilot


def test_pilot_and_config_are_importable_from_the_package() -> None:
    from modelpilot import Pilot, PilotConfig
    from modelpilot.pilot import Pilot as PilotClass

    assert Pilot is PilotClass
    cfg = PilotConfig.from_dict({"model": {"name": "churn", "target": "y"}})
    assert Pilot(cfg).cfg.model.name == "churn"


def test_import_stays_light_and_unknown_names_fail() -> None:
    # importing the package must not pull in the store, sklearn or the web stack
    code = "import sys, modelpilot; print(sorted(m for m in ('sqlalchemy', 'sklearn', 'fastapi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'Pilott'"):
        modelpilot.Pilott  # noqa: B018

"""``modelpilot edge``: keygen, device add/list/pin, export, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from edge_helpers import Fleet
from typer.testing import CliRunner

from modelpilot import auth
from modelpilot.cli import app
from modelpilot.edge.agent import open_bundle


@pytest.fixture
def project(fleet: Fleet, tmp_path: Path) -> Path:
    cfg = {"model": {"name": "churn", "target": "churned"}, "store": {"url": "sqlite:///store.db"},
           "artifacts": {"url": "artifacts"}, "edge": {"signing_key": "keys/signing.key"}}
    path = tmp_path / "pilot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_keygen_device_and_export_commands(fleet: Fleet, project: Path, tmp_path: Path) -> None:
    c = str(project)
    keys = _run("edge", "keygen", "-c", c, "--json")
    assert Path(keys["private_key"]) == tmp_path / "keys" / "signing.key"
    added = _run("edge", "device", "add", "pump-7", "-c", c, "--json")
    assert fleet.store.get_device("pump-7").model == "churn"
    assert auth.authenticate(fleet.store, added["token"]).name == "device:pump-7"  # type: ignore[union-attr]
    CliRunner().invoke(app, ["edge", "device", "pin", "pump-7", "1", "-c", c], catch_exceptions=False)
    [row] = _run("edge", "device", "list", "-c", c, "--json")["devices"]
    assert (row["device"], row["pinned_version"], row["reports"]) == ("pump-7", 1, 0)
    out = _run("edge", "export", "-c", c, "--out", str(tmp_path / "out"), "--publish", "--json")
    public = bytes.fromhex(Path(keys["public_key"]).read_text().strip())
    bundle = open_bundle(Path(out["path"]).read_bytes(), public)
    assert bundle.version == 1 and bundle.manifest["target"] == "churned" and out["published"]
    missing = CliRunner().invoke(app, ["edge", "export", "-c", c])
    assert missing.exit_code == 1 and "--out DIR, --publish" in str(missing.exception)

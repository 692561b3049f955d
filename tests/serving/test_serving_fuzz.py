"""Schemathesis over /openapi.json against a real server process: no input is a 5xx.

Bounded and seeded: ``schemathesis run --seed`` with a fixed number of examples per
operation (valid and invalid data), so a run sends a few hundred requests and is the same
every time.
Two passes: the published schema as it is (any model name), and the same schema with the
model name pinned to the served model and an operator token, so that bodies reach the
real model, the label checks and the operator actions.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import instance, make_config, register, server_process
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import open_artifacts
from modelpilot.auth import create_token
from modelpilot.store import Store

EXAMPLES = 10  # per operation and pass, after the coverage phase: ~500 requests in all
SEED = 20261129


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, classifiers: list[Pipeline]) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = make_config(tmp)
    config = tmp / "pilot.yaml"
    config.write_text(
        "model: {name: churn, target: churned}\n"
        "store: {url: 'sqlite:///store.db'}\nartifacts: {url: artifacts}\n"
        "serving: {log_flush_interval: 1s}\n"
    )
    with Store.open(cfg.store_url) as store:
        register(store, open_artifacts(cfg.artifacts_url), "churn", classifiers[0])
        token = create_token(store, "fuzzer", "operator")
    proc, url = server_process(config)
    try:
        with httpx.Client(base_url=url) as client:  # a few known ids for the feedback examples
            r = client.post("/v1/models/churn/predict",
                            json={"instances": [instance(i) for i in range(3)], "ids": ["a", "b", "c"]})
            assert r.status_code == 200
        yield {"url": url, "token": token, "proc": proc, "artifacts": Path(cfg.artifacts_url)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=60) == 0, "the server did not shut down cleanly after the fuzzing"
        finally:
            if proc.poll() is None:
                proc.kill()


def _document(url: str) -> dict[str, Any]:
    doc = httpx.get(url + "/openapi.json").json()
    assert "/v1/models/{name}/predict" in doc["paths"]
    return dict(doc)


def _run(doc: dict[str, Any], url: str, folder: Path, *extra: str) -> str:
    """``schemathesis run`` over ``doc`` (the CLI: its pytest plugin does not run on pytest 9)."""
    schema = folder / "openapi.json"
    schema.write_text(json.dumps(doc))
    cli = Path(sys.executable).with_name("schemathesis")
    cmd = [str(cli), "run", str(schema), "--url", url, "--checks", "not_a_server_error", "--mode", "all",
           "--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES), "--seed", str(SEED),
           "--workers", "1", "--request-timeout", "30", "--no-color", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=folder)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_published_schema_gets_no_server_error(server: dict[str, Any], tmp_path: Path) -> None:
    output = _run(_document(server["url"]), server["url"], tmp_path)
    assert re.search(r"\d{2,} generated, \d+ passed", output), output


def test_the_served_model_gets_no_server_error(server: dict[str, Any], tmp_path: Path) -> None:
    doc = _document(server["url"])
    for path in doc["paths"].values():
        for operation in path.values():
            for param in operation.get("parameters", []):
                if param["name"] == "name" and param["in"] == "path":
                    param["schema"] = {"type": "string", "enum": ["churn"]}
    # valid bodies for the examples phase: the real model predicts, the labels are checked
    for path, body in (("predict", {"instances": [instance(7)], "ids": ["x1"]}),
                       ("feedback", {"ids": ["a", "b"], "labels": [1, 0]})):
        content = doc["paths"][f"/v1/models/{{name}}/{path}"]["post"]["requestBody"]["content"]
        content["application/json"]["example"] = body
    output = _run(doc, server["url"], tmp_path, "-H", f"Authorization: Bearer {server['token']}")
    assert re.search(r"\d{2,} generated, \d+ passed", output), output
    assert "Examples\n     ✅ 2 passed" in output or "✅ Examples" in output, output

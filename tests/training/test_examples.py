"""The examples in the training and gate modules' docstrings run."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from modelpilot.policy import gates
from modelpilot.training import estimators, evaluate, preprocess, profile


@pytest.mark.parametrize("module", [estimators, evaluate, preprocess, profile, gates], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

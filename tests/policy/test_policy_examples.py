"""The examples in the policy modules' docstrings run and say what they show."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from modelpilot.policy import budget, compare, roi, triggers


@pytest.mark.parametrize("module", [triggers, compare, budget, roi], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

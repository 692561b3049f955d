"""Every module's docstring examples run, so a documented example never goes stale.

The modules are found by walking the installed package: a new module's examples are run
without registering it anywhere. A module that cannot be imported fails here too.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import modelpilot

MODULES = sorted(m.name for m in pkgutil.walk_packages(modelpilot.__path__, "modelpilot."))
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def test_the_walk_finds_the_package() -> None:
    assert {"modelpilot.policy.triggers", "modelpilot.rollout.router", "modelpilot.controller.data"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)

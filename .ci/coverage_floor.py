"""Fail when branch coverage of a decision module falls below its floor.

Run after ``pytest --cov`` (``make test`` does both). Reads the ``.coverage`` data file and
prints one line per module group; exits 1 naming every group under its floor.
"""

from __future__ import annotations

import io
import sys

import coverage

# the modules that decide what serves: each group must stay at or above its floor (percent);
# None = reported, no floor yet (docs/testing.md says which floors are set and why)
FLOORS: dict[str, tuple[str, float | None]] = {
    "policy/": ("*/modelpilot/policy/*", 90.0),
    "rollout/": ("*/modelpilot/rollout/*", 90.0),
    "controller/": ("*/modelpilot/controller/*", 90.0),
    "backtest/": ("*/modelpilot/backtest/*", 90.0),
    "auth/": ("*/modelpilot/auth/*", 90.0),
    "modelpilot (all)": ("*/modelpilot/*", 84.0),
}


def main() -> int:
    cov = coverage.Coverage()
    cov.load()
    below = []
    for name, (pattern, floor) in FLOORS.items():
        try:
            total = cov.report(include=[pattern], file=io.StringIO())
        except coverage.exceptions.NoDataError:
            total = 0.0
        if floor is None:
            print(f"branch coverage {name:<18} {total:5.1f} %  (no floor)")
            continue
        mark = "ok" if total >= floor else "BELOW THE FLOOR"
        print(f"branch coverage {name:<18} {total:5.1f} %  (floor {floor:g} %)  {mark}")
        if total < floor:
            below.append(name)
    if below:
        print(f"coverage floor failed for {', '.join(below)}: add tests for the uncovered branches "
              "(see the report above: coverage report -m --include='*/modelpilot/<module>/*')", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

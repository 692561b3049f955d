"""Mutation testing of the decision modules with mutmut: kill rate per module and the survivors.

Each module group is mutated in its own work folder (``.mutation/<group>/``: a copy of
``src``, ``tests`` and ``pyproject.toml`` with a ``[tool.mutmut]`` section naming the
group's files and the tests that judge them), so groups can be run one at a time and
their results kept. mutmut forks one child per mutant from a process that has already
imported the tests, and runs only the tests that executed the mutated function.

The runner is bounded for a shared machine: ``--max-children`` workers, and
``--sample N`` runs N mutants drawn at random (seeded) per group instead of all of them
(the kill rate is then an estimate; its 95 % interval is printed).

Usage::

    python tools/mutation.py                        # every group, every mutant
    python tools/mutation.py --modules auth,policy --max-children 2
    python tools/mutation.py --modules rollout --sample 150
    python tools/mutation.py --modules rollout --report-only   # the last run's figures again

docs/testing.md lists the figures measured and explains the surviving mutants that are
equivalent (no test can tell them from the original).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# group -> (files to mutate, tests that judge them)
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "auth": (["src/modelpilot/auth/*"], ["tests/test_auth.py", "tests/serving/test_auth_http.py",
                                         "tests/serving/test_rollout_http.py"]),
    "policy": (["src/modelpilot/policy/*"], ["tests/policy"]),
    "rollout": (["src/modelpilot/rollout/*"], ["tests/rollout", "tests/serving/test_rollout_http.py"]),
    # in-process tests only: a tick in a subprocess, the CLI, a server process and the Ray
    # cluster run code mutmut cannot trace (nor switch to the mutant), and take minutes each
    "controller": (["src/modelpilot/controller/*"], [
        "tests/controller", "--ignore=tests/controller/test_ray_retrain.py",
        "--ignore=tests/controller/test_serve_with_controller.py", "--ignore=tests/controller/test_timeline.py",
        "--deselect=tests/controller/test_controller.py::test_kill_9_during_a_retrain_then_a_clean_resume",
        "--deselect=tests/controller/test_faults.py::test_kill_9_of_the_controller_leaves_no_orphan_and_trains_once",
    ]),
    # the CLI runs are subprocesses; the replays run in the test's process (ENV below)
    "backtest": (["src/modelpilot/backtest/*"], [
        "tests/backtest", "--ignore=tests/backtest/test_cli.py",
        "--deselect=tests/backtest/test_time.py::test_epoch_seconds_are_read_with_time_unit_s",
        "--deselect=tests/backtest/test_time.py::test_the_cli_prints_one_line_and_exits_1",
    ]),
}
# environment of a group's mutmut run: backtest replays in the test process, where mutmut
# can trace them and switch the mutant on (a worker process would run the original)
ENV: dict[str, dict[str, str]] = {"backtest": {"MODELPILOT_TEST_BACKTEST_INPROCESS": "1"}}
KILLED = {"killed", "timeout", "caught by type check"}
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious",
          36: "timeout", 37: "caught by type check", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", 2: "check was interrupted by user"}


def prepare(group: str, workdir: Path) -> None:
    files, tests = GROUPS[group]
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copytree(ROOT / "src", workdir / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    config = (ROOT / "pyproject.toml").read_text()
    assert "[tool.mutmut]" not in config
    mutmut = {
        "source_paths": ["src/modelpilot"],
        "only_mutate": files,
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "-x"],
        "use_git_change_detection": False,
        # fork each mutant's run from a process that only collected the tests: forked from
        # the process that ran the whole suite (server threads, thread pools), children crash
        "process_isolation": "forkserver",
        # mutmut's time estimate counts only the tests' calls, not their fixtures (a trained
        # model, a server): without slack a loaded machine times out mutants the tests never judged
        "timeout_constant": 10.0,
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in mutmut.items()]
    (workdir / "pyproject.toml").write_text(config + "\n".join(lines) + "\n")
    tomllib.loads((workdir / "pyproject.toml").read_text())  # still valid TOML


def mutmut(workdir: Path, *args: str, log: Path) -> int:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the work folder's copy is imported
    env.update(ENV.get(workdir.name, {}))
    with log.open("a") as out:
        return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=workdir, env=env,
                              stdout=out, stderr=subprocess.STDOUT).returncode


def results(workdir: Path) -> dict[str, str]:
    """Mutant name -> status, from mutmut's per-file records."""
    out: dict[str, str] = {}
    for meta in (workdir / "mutants" / "src").rglob("*.py.meta"):
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            out[key] = "not checked" if code is None else STATUS.get(code, "suspicious")
    return out


def module_of(mutant: str) -> str:
    return mutant.split("__mutmut_")[0].rsplit(".", 1)[0]


def diff_of(workdir: Path, mutant: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=workdir, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    changed = [ln for ln in done.stdout.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    return " | ".join(" ".join(ln.split()) for ln in changed)


def run_group(group: str, args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    workdir = ROOT / ".mutation" / group
    if not args.report_only:
        prepare(group, workdir)
        log = workdir / "mutmut.log"
        children = ["--max-children", str(args.max_children)]
        if args.sample:
            # generate the mutants and the test map without running any mutant, then draw the sample
            mutmut(workdir, "run", *children, "__no_such_mutant__", log=log)
            every = sorted(results(workdir))
            names = sorted(random.Random(args.seed).sample(every, min(args.sample, len(every))))
            (workdir / "sample.json").write_text(json.dumps(names))
        names = json.loads((workdir / "sample.json").read_text()) if args.sample else []
        code = mutmut(workdir, "run", *children, *names, log=log)
        if code != 0:
            print(f"{group}: mutmut exited with {code}; see {log}", file=sys.stderr)
    status = results(workdir)
    sample = workdir / "sample.json"
    if sample.exists():
        chosen = set(json.loads(sample.read_text()))
        status = {k: v for k, v in status.items() if k in chosen}
    per_module: dict[str, list[str]] = defaultdict(list)
    for key, value in status.items():
        if value not in NOT_RUN:
            per_module[module_of(key)].append(value)
    figures = {}
    for module, values in sorted(per_module.items()):
        killed = sum(v in KILLED for v in values)
        figures[module] = (killed, len(values))
        rate = killed / len(values)
        ci = ""
        if sample.exists():
            half = 1.96 * math.sqrt(rate * (1 - rate) / len(values))
            ci = f" (±{100 * half:.0f} points, sampled)"
        print(f"{module:<36} {killed:4d}/{len(values):<4d} killed  {100 * rate:5.1f} %{ci}")
    survivors = sorted(k for k, v in status.items() if v not in KILLED | NOT_RUN)
    if survivors:
        print(f"surviving mutants of {group} ({len(survivors)}):")
        for key in survivors:
            print(f"  {key} [{status[key]}]: {diff_of(workdir, key)}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--sample", type=int, default=0, help="mutants drawn per group (default 0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--report-only", action="store_true", help="print the results of the last run, run nothing")
    args = parser.parse_args()
    groups = [g.strip() for g in args.modules.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown module group(s) {unknown}: choose from {', '.join(GROUPS)}")
    total = [0, 0]
    for group in groups:
        print(f"== {group}: mutating {', '.join(GROUPS[group][0])} against {' '.join(GROUPS[group][1])}", flush=True)
        for killed, n in run_group(group, args).values():
            total[0] += killed
            total[1] += n
    if total[1]:
        print(f"overall: {total[0]}/{total[1]} killed ({100 * total[0] / total[1]:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

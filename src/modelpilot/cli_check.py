"""``modelpilot check config|data|model``: the product's checks as CI steps.

Exit codes: 0 every check passed (warnings and skipped checks allowed), 1 a check failed,
2 a usage error (an unknown option, a missing argument). ``--junit PATH`` writes one JUnit
``<testcase>`` per check (written whether the checks pass or not, so CI shows the failure);
``--json`` prints ``{"suite", "ok", "checks": [...]}``. See docs/ci.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from modelpilot.integrations.checks import CheckReport
    from modelpilot.store import Store

ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="Path of pilot.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML report here (one testcase "
                                                                "per check).")]

check_app = typer.Typer(help="Check the config, a data file or a model version for a CI pipeline "
                             "(exit 0 pass, 1 fail, 2 usage).", no_args_is_help=True)

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "off": "dim"}


def finish(report: CheckReport, junit: Path | None, as_json: bool) -> None:
    """Write the JUnit file, print the report, and exit 1 when a check failed."""
    from rich.markup import escape
    from rich.table import Table

    from modelpilot.cli import console, err_console, print_json
    from modelpilot.integrations.junit import write_junit

    if junit is not None:
        write_junit(report, junit)
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table(title=f"modelpilot check {report.suite}", title_justify="left")
        for col in ("check", "result", "detail"):
            table.add_column(col, overflow="fold")
        for c in report.checks:
            status = "skipped" if c.status == "off" else c.status
            detail = escape(c.message + (f" — fix: {c.fix}" if c.status == "fail" and c.fix else ""))
            table.add_row(c.name, f"[{_STYLE[c.status]}]{status}[/]", detail)
        console.print(table)
        failed = sum(c.status == "fail" for c in report.checks)
        console.print(f"[bold red]{failed} check(s) failed[/]" if failed else "[green]all checks passed[/]")
        if junit is not None:
            err_console.print(f"wrote [bold]{escape(str(junit))}[/]")
    if not report.ok:
        raise SystemExit(1)  # passes through click untouched: exit code 1, no message


def _existing_store(url: str) -> Store | None:
    """The store at ``url``; ``None`` for a SQLite file that does not exist (nothing trained)."""
    from modelpilot.store import Store

    if url.startswith("sqlite:///") and ":memory:" not in url and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return Store.open(url)


@check_app.command("config")
def check_config_cmd(config: ConfigOpt = Path("pilot.yaml"), junit: JunitOpt = None, as_json: JsonOpt = False) -> None:
    """The config loads, its data reads and names existing columns, its metrics and estimator exist."""
    from modelpilot.cli import json_stdout
    from modelpilot.integrations.checks import check_config

    with json_stdout(as_json):
        report = check_config(config)
    finish(report, junit, as_json)


@check_app.command("data")
def check_data_cmd(
    file: Annotated[Path, typer.Argument(help="The data file (Parquet or CSV, a glob or a folder).")],
    config: ConfigOpt = Path("pilot.yaml"), junit: JunitOpt = None, as_json: JsonOpt = False,
    champion: Annotated[bool, typer.Option("--champion/--no-champion", help="Also check the file against the "
                                           "champion's columns and reference scale (when one exists).")] = True,
) -> None:
    """FILE against the config's columns, schema and validation checks (and the champion's)."""
    from modelpilot.artifacts import open_artifacts
    from modelpilot.cli import json_stdout
    from modelpilot.config import PilotConfig
    from modelpilot.integrations.checks import check_data

    cfg = PilotConfig.load(config)
    store = _existing_store(cfg.store_url) if champion else None
    try:
        artifacts = open_artifacts(cfg.artifacts_url, cfg.artifacts.options) if store is not None else None
        with json_stdout(as_json):
            report = check_data(cfg, file, store, artifacts)
    finally:
        if store is not None:
            store.close()
    finish(report, junit, as_json)


@check_app.command("model")
def check_model_cmd(
    version: Annotated[int | None, typer.Option("--version", help="The version (default: the newest).")] = None,
    holdout: Annotated[Path | None, typer.Option("--holdout", help="Labelled rows neither model trained on: "
                                                 "the version must beat the champion on them (the gate).")] = None,
    config: ConfigOpt = Path("pilot.yaml"), junit: JunitOpt = None, as_json: JsonOpt = False,
) -> None:
    """A version loads, answers a probe, passes gates.min_metrics and (with --holdout) beats the champion."""
    from modelpilot.cli import _pilot, json_stdout
    from modelpilot.integrations.checks import check_model

    with _pilot(config) as pilot, json_stdout(as_json):
        report = check_model(pilot.cfg, pilot.store, pilot.artifacts, version, holdout)
    finish(report, junit, as_json)


def register(app: typer.Typer) -> None:
    """Add ``check`` to ``app``."""
    app.add_typer(check_app, name="check")

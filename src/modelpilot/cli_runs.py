"""``modelpilot runs list|show|compare`` and ``modelpilot import mlflow``.

Runs are every run in the store: training and retraining runs, your own experiments
(``pilot.run(name)``, :mod:`modelpilot.tracking`) and runs imported from MLflow. A RUN is
its id or its name (the newest run of that name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="Path of pilot.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
RunArg = Annotated[str, typer.Argument(help="A run id, or a run name (the newest run of that name).")]

runs_app = typer.Typer(help="Tracked runs: training runs, your experiments, imported MLflow runs.",
                       no_args_is_help=True)
import_app = typer.Typer(help="Import history from another tool.", no_args_is_help=True)


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "—" if v is None else str(v)


@runs_app.command("list")
def runs_list(
    config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False,
    model: Annotated[str | None, typer.Option("--model", help="Only runs of this model.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind: train, retrain, experiment, "
                                             "mlflow...")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (the newest).")] = 50,
) -> None:
    """Runs, newest first, with their last metric values."""
    from rich.markup import escape
    from rich.table import Table

    from modelpilot.cli import _pilot, console, print_json
    from modelpilot.tracking import run_summary

    with _pilot(config) as pilot:
        rows = [run_summary(pilot.store, r) for r in pilot.store.list_runs(model=model, kind=kind, limit=limit)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no runs" + (" matching the filters" if model or kind else " yet: run 'modelpilot train' "
                                   "or pilot.run(name) from Python"))
        return
    table = Table(title="Runs", title_justify="left")
    for col in ("id", "name", "model", "kind", "status", "created", "metrics"):
        table.add_column(col, overflow="fold", justify="right" if col == "id" else "left")
    for r in rows:
        shown = [k for k in r["metrics"] if not k.startswith(("trial/", "curve/"))][:4]
        metrics = ", ".join(f"{k}={_value(r['metrics'][k])}" for k in shown)
        table.add_row(str(r["id"]), escape(r["name"]), escape(r["model"]), r["kind"], r["status"],
                      r["created_at"][:19].replace("T", " "), escape(metrics))
    console.print(table)


@runs_app.command("show")
def runs_show(run: RunArg, config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False) -> None:
    """One run: parameters, last metric values, tags, artifacts."""
    from rich.markup import escape
    from rich.table import Table

    from modelpilot.cli import _pilot, console, print_json
    from modelpilot.tracking import find_run, run_summary

    with _pilot(config) as pilot:
        r = run_summary(pilot.store, find_run(pilot.store, run))
    if as_json:
        print_json(r)
        return
    took = f", {r['duration_s']:.1f} s" if r["duration_s"] is not None else ""
    console.print(f"[bold]run {r['id']}[/] {escape(r['name'])} — {escape(r['model'])}, {r['kind']}, "
                  f"{r['status']}{took}", highlight=False)
    if r["error"]:
        console.print(f"[red]error:[/] {escape(r['error'])}", highlight=False)
    for title, values in (("Parameters", r["params"]), ("Metrics (last value)", r["metrics"]),
                          ("Tags", r["tags"])):
        if values:
            table = Table(title=title, title_justify="left")
            table.add_column("name")
            table.add_column("value", overflow="fold")
            for k, v in values.items():
                table.add_row(escape(k), escape(_value(v)))
            console.print(table)
    if r["artifacts"]:
        table = Table(title="Artifacts", title_justify="left")
        for col in ("name", "key", "bytes"):
            table.add_column(col, overflow="fold")
        for k, v in r["artifacts"].items():
            table.add_row(escape(k), escape(str(v.get("key"))), str(v.get("bytes", "")))
        console.print(table)


@runs_app.command("compare")
def runs_compare(a: RunArg, b: RunArg, config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False,
                 all_params: Annotated[bool, typer.Option("--all", help="Show equal parameters too.")] = False) -> None:
    """Two runs side by side: parameters that differ and every metric with its difference (B − A)."""
    from rich.markup import escape
    from rich.table import Table

    from modelpilot.cli import _pilot, console, print_json
    from modelpilot.tracking import compare_runs, find_run

    with _pilot(config) as pilot:
        result = compare_runs(pilot.store, find_run(pilot.store, a), find_run(pilot.store, b))
    if as_json:
        print_json(result)
        return
    ra, rb = result["runs"]
    head_a, head_b = f"A: {ra['id']} {ra['name']}", f"B: {rb['id']} {rb['name']}"
    params = Table(title="Parameters" + ("" if all_params else " that differ"), title_justify="left")
    for col in ("parameter", head_a, head_b):
        params.add_column(escape(col), overflow="fold")
    shown = [p for p in result["params"] if all_params or not p["same"]]
    for p in shown:
        style = "" if p["same"] else "bold"
        params.add_row(escape(p["name"]), escape(_value(p["a"])), escape(_value(p["b"])), style=style)
    console.print(params if shown else "parameters: all equal")
    metrics = Table(title="Metrics (last value)", title_justify="left")
    for col in ("metric", head_a, head_b, "B − A"):
        metrics.add_column(escape(col), justify="left" if col == "metric" else "right")
    for m in result["metrics"]:
        delta = m["delta"]
        cell = "—" if delta is None else (f"[green]{delta:+.6g}[/]" if delta > 0 else
                                          f"[red]{delta:+.6g}[/]" if delta < 0 else "0")
        metrics.add_row(escape(m["name"]), _value(m["a"]), _value(m["b"]), cell)
    console.print(metrics if result["metrics"] else "metrics: neither run logged any")
    console.print(f"plots: the dashboard's /ui/runs/compare?a={ra['id']}&b={rb['id']}", highlight=False)


@import_app.command("mlflow")
def import_mlflow(
    tracking_uri: Annotated[str, typer.Option("--tracking-uri", help="The MLflow tracking URI "
                                              "(sqlite:///mlflow.db, http://host:5000, a folder).")],
    registry_uri: Annotated[str | None, typer.Option("--registry-uri", help="The model registry URI "
                                                     "(default: the tracking URI).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Only this registered model; repeat it.")] = None,
    config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False,
) -> None:
    """Copy MLflow registered models — versions, aliases, metrics, params, safe sklearn models — into the store.

    Re-running it imports only what is new. A model file is imported only when it is a
    scikit-learn model saved in the skops format whose types pass the model allowlist;
    otherwise the version is recorded (archived) with the reason, and its file is never loaded.
    """
    from rich.markup import escape

    from modelpilot.cli import _pilot, console, json_stdout, print_json
    from modelpilot.integrations.mlflow_import import import_mlflow as run_import

    with _pilot(config) as pilot, json_stdout(as_json):
        result = run_import(pilot.store, pilot.artifacts, tracking_uri, registry_uri=registry_uri, models=model)
    if as_json:
        print_json(result)
        return
    for m in result["models"]:
        console.print(f"[bold]{escape(m['name'])}[/]: {m['imported']} version(s) imported, {m['existing']} already "
                      f"there; aliases {escape(str(m['aliases'] or 'none'))}", highlight=False)
        for v in m["versions"]:
            note = f" — [yellow]{escape(v['note'])}[/]" if v.get("note") else ""
            console.print(f"  MLflow v{v['mlflow_version']} → v{v['version']} ({v['status']}){note}", highlight=False)
    if not result["models"]:
        console.print("no registered models found at the tracking URI")


def register(app: typer.Typer) -> None:
    """Add ``runs`` and ``import`` to ``app``."""
    app.add_typer(runs_app, name="runs")
    app.add_typer(import_app, name="import")

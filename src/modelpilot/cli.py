"""The ``modelpilot`` command: thin commands over :class:`~modelpilot.pilot.Pilot`.

One top-level handler prints a :class:`ModelpilotError` without a traceback (``--debug``
shows it) and exits 1; ``--json`` prints the dict the tables are drawn from.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.pilot import Pilot

app = typer.Typer(
    name="modelpilot",
    help="An autopilot for machine-learning models in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="Path of pilot.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
_state: dict[str, bool] = {"debug": False}


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


def _pilot(config: Path) -> Pilot:
    from modelpilot.pilot import Pilot

    return Pilot.from_config(config)


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no Rich markup), so it pipes into jq."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def json_stdout(enabled: bool = True) -> Iterator[None]:
    """While a ``--json`` command works, stdout is stderr: the JSON is all stdout ever gets.

    The switch is made on file descriptor 1, so it also catches what no logging setting
    reaches: a library's ``print``, a C extension's ``printf`` and the worker processes
    started meanwhile (they inherit the descriptor).
    """
    if not enabled:
        yield
        return
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout is not a file (captured in-process)
        from contextlib import redirect_stdout

        with redirect_stdout(sys.stderr):
            yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Callable[[str, int, int | None], None]]:
    """A ``progress(stage, done, total)`` callback drawing one Rich bar per stage."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


# --------------------------------------------------------------------------- commands


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Where to write pilot.yaml and data/.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing pilot.yaml.")] = False,
) -> None:
    """Write a commented example pilot.yaml and a small example dataset."""
    from modelpilot._init_template import write_example

    folder.mkdir(parents=True, exist_ok=True)
    for path in write_example(folder, force=force):
        console.print(f"wrote [bold]{path}[/]")
    console.print("next: [bold]modelpilot train[/]")


@app.command()
def train(
    config: ConfigOpt = Path("pilot.yaml"),
    as_json: JsonOpt = False,
    no_tune: Annotated[bool, typer.Option("--no-tune", help="Skip the hyperparameter search.")] = False,
) -> None:
    """Validate the data, tune, fit, evaluate, profile and register a model version."""
    from modelpilot import _report

    with json_stdout(as_json), _pilot(config) as pilot, progress_bars(enabled=not as_json) as progress:
        result = pilot.train(progress=progress, tune=False if no_tune else None)
    if as_json:
        print_json(result.to_dict())
    else:
        _report.print_train_result(console, result.to_dict())


@app.command()
def status(config: ConfigOpt = Path("pilot.yaml"), as_json: JsonOpt = False) -> None:
    """Models, versions, aliases (and rollout state)."""
    from modelpilot import _report

    with _pilot(config) as pilot:
        result = pilot.status()
    if as_json:
        print_json(result)
    else:
        _report.print_status(console, result)


@app.command()
def serve(
    config: ConfigOpt = Path("pilot.yaml"),
    host: Annotated[str | None, typer.Option(help="Interface (default serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serving.port).")] = None,
    with_controller: Annotated[bool, typer.Option("--with-controller", help="Run the controller loop in-process.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Server processes on the port, each with its own cache and log segments.")] = 1,
) -> None:
    """Serve the champion over HTTP until SIGTERM/SIGINT (the prediction log is flushed)."""
    from modelpilot import _report

    with _pilot(config) as pilot:
        on_event = _report.Timeline(err_console) if with_controller and workers == 1 else None
        code = pilot.serve(host, port, with_controller=with_controller, on_event=on_event, workers=workers)
    if code:
        raise typer.Exit(code)


@app.command()
def predict(
    input: Annotated[Path, typer.Option("--input", "-i", help="Parquet or CSV file to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the scored rows.")],
    config: ConfigOpt = Path("pilot.yaml"),
    as_json: JsonOpt = False,
    explain: Annotated[bool, typer.Option("--explain", help="Add each feature's contribution to every prediction.")] = False,
    intervals: Annotated[bool, typer.Option(
        "--intervals", help="Add the conformal interval (regression) or prediction set (classification) of every row.")] = False,
) -> None:
    """Score a batch file with the champion, logging every row like the server does."""
    with json_stdout(as_json), _pilot(config) as pilot:
        result = pilot.predict(input, output, explain=explain, intervals=intervals)
    if as_json:
        print_json(result)
    else:
        console.print(
            f"scored {result['rows']:,} rows with {result['model']} v{result['version']} → [bold]{result['output']}[/]"
        )


class RetrainBar:
    """A progress bar for each retrain the timeline reports, from ``retrain_started`` (or
    ``resumed``) to ``retrain_finished`` / ``failed``: trials done out of ``tuning.n_trials``
    when retrains tune, else elapsed time, read from the store (the retrain runs in a worker)."""

    def __init__(self, bars: Progress, pilot: Pilot) -> None:
        self.bars, self.pilot = bars, pilot
        self.task: Any = None

    def __call__(self, e: dict[str, Any]) -> None:
        if e["kind"] in ("retrain_started", "retrain_resumed") and self.task is None:
            cfg = self.pilot.cfg
            total = cfg.tuning.n_trials if cfg.retraining.tune and cfg.tuning.enabled else None
            self.task = self.bars.add_task("retraining" + (" (trials)" if total else ""), total=total)
        elif e["kind"] in ("retrain_finished", "retrain_failed") and self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None

    def refresh(self) -> None:
        task = next((t for t in self.bars.tasks if t.id == self.task), None)
        if task is None or task.total is None:
            return
        metric = self.pilot.cfg.tuning.metric or self.pilot.cfg.primary_metric
        runs = self.pilot.store.list_runs(model=self.pilot.cfg.model.name, status="running", kind="retrain")
        if runs:
            done = len(self.pilot.store.metric_history(runs[0].id, f"trial/{metric}"))
            self.bars.update(self.task, completed=min(done, task.total))


@contextmanager
def timeline(pilot: Pilot, *, bars: bool = True) -> Iterator[None]:
    """Print each decision of the loop as a timeline line while the block runs (the demo's
    format), with a progress bar for a retrain."""
    from modelpilot import _report
    from modelpilot._follow import EventFollower

    if not bars:
        with EventFollower(pilot.store, pilot.cfg.model.name, _report.Timeline(err_console)):
            yield
        return
    progress = Progress(SpinnerColumn(), TextColumn("{task.description:<22}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True)
    retrain = RetrainBar(progress, pilot)
    lines = _report.Timeline(err_console)

    def on_event(e: dict[str, Any]) -> None:
        lines(e)
        retrain(e)

    with progress, EventFollower(pilot.store, pilot.cfg.model.name, on_event, on_poll=retrain.refresh):
        yield


@app.command()
def controller(
    config: ConfigOpt = Path("pilot.yaml"),
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    interval: Annotated[float | None, typer.Option(help="Seconds between ticks (default controller.interval).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run controller ticks: monitor, evaluate triggers, retrain, gate, roll out.

    Each decision prints as a timeline line as it is made (``--json``: the tick's result only).
    """
    import signal
    import threading

    from modelpilot import _report

    with _pilot(config) as pilot:
        ctl = pilot.controller()
        if once:
            if as_json:
                with json_stdout():
                    result = ctl.tick().to_dict()
                print_json(result)
                return
            with timeline(pilot):
                result = ctl.tick().to_dict()
            _report.print_tick(console, result)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        err_console.print(f"controller for [bold]{pilot.cfg.model.name}[/] running; Ctrl-C stops it")
        with timeline(pilot):
            ctl.run(interval=interval, stop=stop)


@app.command()
def events(
    config: ConfigOpt = Path("pilot.yaml"),
    since: Annotated[str | None, typer.Option("--since", help="Only events this recent ('2h', '7d') "
                                              "or after this time ('2026-01-31T12:00').")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only this kind (e.g. gate_rejected); repeat it.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (the newest).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit log: every trigger, retrain, gate decision, promotion and manual action."""
    from modelpilot import _report
    from modelpilot._follow import event_dict

    with _pilot(config) as pilot:
        start = _since(since)
        known = pilot.store.event_kinds()
        records = pilot.store.events(model=pilot.cfg.model.name, kind=kind or None, since=start, limit=limit)
        rows = [event_dict(ev) for ev in reversed(records)]
    for k in kind or []:
        if k not in known:  # not an error: a kind may simply not have happened yet; a typo gets a hint
            import difflib

            close = difflib.get_close_matches(k, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            err_console.print(f"note: no event of kind {escape(k)!r} in the log yet; {hint}kinds recorded: "
                              f"{', '.join(sorted(known)) or 'none'}", highlight=False, soft_wrap=True)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no events" + (" matching the filters" if since or kind else " yet: run 'modelpilot train'"))
    for row in rows:
        _report.print_event(console, row)


def _since(value: str | None) -> Any:
    """A ``--since`` value as an aware datetime: a duration back from now, or a time."""
    from datetime import UTC, datetime, timedelta

    from modelpilot.config import parse_duration
    from modelpilot.errors import ConfigError

    if value is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since: {value!r} is neither a duration ('30m', '2h', '7d') nor a time "
                          "('2026-01-31' or '2026-01-31T12:00')") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where the demo writes its config, data and store.")] = Path("."),
    rollout: Annotated[str, typer.Option(help="Rollout strategy to show: replace, shadow, ab or canary.")] = "replace",
    dashboard: Annotated[bool | None, typer.Option(
        "--dashboard/--no-dashboard",
        help="Keep the dashboard up after the run until Ctrl-C (default: when run in a terminal).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The whole loop on a drifting churn scenario: train, serve, drift, retrain, gate, promote."""
    from modelpilot import _report
    from modelpilot.demo import run_demo

    if as_json:
        with json_stdout():
            result = run_demo(folder, rollout=rollout)
        print_json(result)
        return
    console.print("[bold]modelpilot demo[/]: a churn model, live traffic, a concept drift in one region first\n")
    with progress_bars() as progress:
        result = run_demo(folder, rollout=rollout, on_event=_report.Timeline(err_console),
                          on_progress=progress)
    _report.print_demo(console, result)
    offer_dashboard(folder / "pilot.yaml", keep=dashboard)


def offer_dashboard(config: Path, *, keep: bool | None = None) -> None:
    """After the demo: in a terminal, serve its dashboard until Ctrl-C; elsewhere (CI, a pipe,
    ``keep=False``) print the command that serves it, so no address printed is a dead one."""
    import socket

    from modelpilot.ui import serve_ui

    command = f"modelpilot ui -c {config}"
    if keep is None:
        keep = sys.stdin.isatty() and sys.stdout.isatty()
    if not keep:
        console.print(f"dashboard: [bold]{escape(command)}[/] serves it on http://127.0.0.1:8050/ui/",
                      highlight=False, soft_wrap=True)
        return
    with socket.socket() as probe:  # a free loopback port: 8050 may be taken
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with _pilot(config) as pilot:
        console.print(f"dashboard: [bold]http://127.0.0.1:{port}/ui/[/] — Ctrl-C stops it "
                      f"(later: {escape(command)})", highlight=False, soft_wrap=True)
        serve_ui(pilot.cfg, pilot.store, pilot.artifacts, port=port)


@app.command()
def ui(
    config: ConfigOpt = Path("pilot.yaml"),
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8050,
) -> None:
    """Serve the dashboard over the store, without a model server, until Ctrl-C."""
    from modelpilot.ui import serve_ui

    with _pilot(config) as pilot:
        err_console.print(f"dashboard on [bold]http://{host}:{port}/ui/[/] (Ctrl-C stops it)")
        serve_ui(pilot.cfg, pilot.store, pilot.artifacts, host=host, port=port)


from modelpilot.cli_rollout import register as _register_review  # noqa: E402

_register_review(app)  # promote, rollback, approve, reject, token (cli_rollout.py)
from modelpilot.cli_edge import register as _register_edge  # noqa: E402

_register_edge(app)  # edge keygen, export, run, device, tick (cli_edge.py)
from modelpilot.cli_webhooks import register as _register_webhooks  # noqa: E402

_register_webhooks(app)  # webhooks deliveries|send (cli_webhooks.py)
from modelpilot.cli_check import register as _register_check  # noqa: E402

_register_check(app)  # check config|data|model (cli_check.py)
from modelpilot.cli_runs import register as _register_runs  # noqa: E402

_register_runs(app)  # runs list|show|compare, import mlflow (cli_runs.py)


@app.command()
def backtest(
    data: Annotated[Path | None, typer.Option("--data", help="Labelled history (Parquet or CSV).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Target column (default model.target).")] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="Time column the rows are replayed by.")] = None,
    time_unit: Annotated[str | None, typer.Option("--time-unit", help="A numeric time column holds epoch s, ms, us "
                                                 "or ns (default: ordinal, one step per unit).")] = None,
    config: Annotated[Path | None, typer.Option("-c", "--config", help="pilot.yaml (optional).")] = None,
    policy: Annotated[list[str] | None, typer.Option("--policy", help="never, fixed:every=N, dynamic, "
                                                    "at:batches=I,J or a name from 'policies:'; repeat it.")] = None,
    batch: Annotated[int, typer.Option("--batch", help="Rows per batch.")] = 1000,
    label_delay: Annotated[int, typer.Option("--label-delay", help="Batches before labels arrive.")] = 1,
    initial: Annotated[int | None, typer.Option("--initial", help="Rows the first model trains on.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Metric (default accuracy / rmse).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (model and scenario).")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Generate a stream: sudden, gradual, "
                                                "recurring, segment, covariate, stationary.")] = None,
    rows: Annotated[int, typer.Option("--rows", help="Rows of a generated --scenario.")] = 30_000,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON here ('-': stdout).")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here.")] = None,
) -> None:
    """Replay a labelled history through the real loop under several retraining policies."""
    from modelpilot.backtest.engine import make_config
    from modelpilot.backtest.report import print_summary, write_report
    from modelpilot.config import PilotConfig
    from modelpilot.data import load_path
    from modelpilot.errors import ConfigError
    from modelpilot.pilot import Pilot

    if (data is None) == (scenario is None) and not (data is None and config is not None):
        raise ConfigError("give either --data FILE or --scenario NAME (or -c pilot.yaml with data.source)")
    base = PilotConfig.load(config) if config is not None else None
    cfg = make_config(base, target=target, time_col=time_col, time_unit=time_unit, metric=metric, seed=seed,
                      scenario=scenario is not None)
    frame = load_path(data) if data is not None else None
    with json_stdout(json_out is not None and str(json_out) == "-"), Pilot(cfg) as pilot:
        if json_out is None or str(json_out) != "-":
            err_console.print(f"backtest: replaying under {', '.join(policy or ['never', 'dynamic'])} ...")
        result = pilot.backtest(frame, scenario=scenario, rows=rows, policies=policy, batch=batch,
                                label_delay=label_delay, initial=initial).to_dict()
    for warning in result["warnings"]:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if report is not None:
        err_console.print(f"wrote report [bold]{write_report(result, report)}[/]")
    if json_out is not None and str(json_out) == "-":
        print_json(result)
        return
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2, default=str))
        err_console.print(f"wrote [bold]{json_out}[/]")
    print_summary(console, result)


def _click_exceptions() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(ClickException, Exit) classes of click and of the copy of click Typer may bundle.

    Typer 0.2x raises its own bundled click's exceptions, older ones raise click's; a usage
    error is caught whichever one the installed Typer uses.
    """
    errors: list[type[Exception]] = []
    exits: list[type[Exception]] = [typer.Exit]
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            mod = __import__(module, fromlist=["ClickException"])
        except ImportError:
            continue
        errors.append(mod.ClickException)
        if hasattr(mod, "Exit"):
            exits.append(mod.Exit)
    return tuple(errors), tuple(exits)


def _show_usage_error(exc: Any) -> int:
    """One line saying what was wrong, one with the usage and where help is; the exit code."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # `modelpilot` alone: the help is the answer
        exc.show()
        return int(exc.exit_code)
    err_console.print("[bold red]error:[/]", escape(exc.format_message()), highlight=False, soft_wrap=True)
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split())
        err_console.print(f"{escape(usage)}  (try '{escape(ctx.command_path)} --help')", highlight=False, soft_wrap=True)
    return int(getattr(exc, "exit_code", 1))


def main() -> None:
    """Entry point: run the app; user errors print one line (exit 1), usage errors a line and
    the usage (exit 2), never a traceback unless ``--debug``."""
    click_errors, click_exits = _click_exceptions()
    try:
        app(standalone_mode=False)
    except ModelpilotError as exc:
        if _state["debug"]:
            err_console.print_exception()
        err_console.print("[bold red]error:[/]", escape(str(exc)), highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except click_exits as exc:
        sys.exit(int(getattr(exc, "exit_code", 0)))
    except click_errors as exc:
        sys.exit(_show_usage_error(exc))


if __name__ == "__main__":
    main()

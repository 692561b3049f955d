"""Rich renderings of the dicts commands return (the same dicts ``--json`` prints)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _metrics_table(title: str, columns: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    keys = sorted({k for m in columns.values() for k in m})
    for key in keys:
        table.add_row(key, *(_fmt(m.get(key)) for m in columns.values()))
    return table


def print_train_result(console: Console, r: dict[str, Any]) -> None:
    """The summary of one training run: metrics, segments, features, profile, cost."""
    aliases = ", ".join(r.get("aliases") or []) or "no alias"
    gate = r.get("gate") or {}
    verdict = "[green]passed[/]" if gate.get("passed") else "[red]rejected[/]"
    console.print(
        f"\n[bold]{r['model']}[/] version [bold]{r['version']}[/] ({aliases}) — gate {verdict}"
    )
    for reason in gate.get("reasons") or []:
        console.print(f"  • {reason}")
    if not r.get("aliases") and gate.get("passed"):
        console.print(
            f"  v{r['version']} is registered but does not serve: an earlier version is champion. "
            f"[bold]modelpilot promote {r['version']}[/] makes it the champion "
            "(the controller promotes retrains that beat the champion by itself).", highlight=False,
        )
    console.print(_metrics_table("Metrics", {"train": r["train_metrics"], "validation": r["metrics"]}))
    over = r.get("overfitting") or {}
    if over:
        flag = "[red]overfitting[/]" if over.get("flagged") else "ok"
        if over.get("flagged") and gate.get("passed"):
            flag += " (a warning, not a gate: set gates.max_overfit_gap to block such versions)"
        if over.get("relative"):  # error metrics: a share of the validation error
            gap, bound = over.get("gap"), over.get("bound")
            pct = f"{100 * gap:.1f} % of the validation {over.get('metric')}" if gap is not None else "-"
            console.print(f"train–validation gap {pct} (bound {_fmt(None if bound is None else 100 * bound)} %): {flag}",
                          highlight=False)
        else:
            console.print(f"train–validation gap {_fmt(over.get('gap'))} (bound {_fmt(over.get('bound'))}): {flag}",
                          highlight=False)

    if r.get("segments"):
        seg = Table(title="Segments (validation)", title_justify="left")
        metric = r.get("primary_metric", "accuracy")
        for col in ("segment", "value", "rows", metric):
            seg.add_column(col, justify="right" if col in ("rows", metric) else "left")
        for s in r["segments"]:
            seg.add_row(str(s["segment"]), str(s["value"]), str(s["rows"]), _fmt(s.get(metric)))
        console.print(seg)

    if r.get("feature_importance"):
        imp = Table(title="Top features (permutation importance)", title_justify="left")
        imp.add_column("feature")
        imp.add_column("importance", justify="right")
        imp.add_column("± std", justify="right")
        for f in r["feature_importance"][:8]:
            imp.add_row(f["feature"], _fmt(f["importance"]), _fmt(f.get("std")))
        console.print(imp)

    prof = r.get("profile") or {}
    if prof.get("stages"):
        table = Table(title="Profile", title_justify="left")
        for col in ("stage", "wall s", "cpu s"):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for name, st in prof["stages"].items():
            table.add_row(name, _fmt(st.get("wall_s")), _fmt(st.get("cpu_s")))
        table.add_row("[bold]total[/]", _fmt(prof.get("wall_s")), _fmt(prof.get("cpu_s")))
        console.print(table)
        console.print(
            f"peak memory {_fmt(prof.get('peak_memory_mb'))} MB · "
            f"read {prof.get('bytes_read', 0):,} B · written {prof.get('bytes_written', 0):,} B"
        )
    cost = r.get("cost") or {}
    if cost:
        cur = cost.get("currency", "")
        console.print(
            f"cost {cost.get('total', 0):.6f} {cur} "
            f"(compute {cost.get('compute', 0):.6f}, storage {cost.get('storage', 0):.6f})"
        )


def print_status(console: Console, status: dict[str, Any]) -> None:
    """Models with their versions and aliases."""
    if not status["models"]:
        console.print("no models yet: run [bold]modelpilot train[/]")
        return
    for model in status["models"]:
        by_version: dict[int, list[str]] = {}
        for alias, version in model["aliases"].items():
            by_version.setdefault(version, []).append(alias)
        table = Table(title=f"[bold]{model['name']}[/]", title_justify="left")
        for col in ("version", "status", "aliases", "metrics", "created"):
            table.add_column(col)
        for v in model["versions"]:
            metrics = ", ".join(f"{k}={_fmt(val)}" for k, val in sorted(v["metrics"].items())[:4])
            table.add_row(
                str(v["version"]), v["status"], ", ".join(by_version.get(v["version"], [])), metrics, v["created_at"][:19]
            )
        console.print(table)
        rollout = model.get("rollout")
        if rollout:
            console.print(f"rollout: {rollout}")
        report = model.get("roi") or {}
        total = report.get("total") or {}
        if total.get("retrains"):
            cur = report.get("currency", "")
            ratio = _fmt(total.get("roi")) if total.get("roi") is not None else f"— ({total.get('roi_note')})"
            console.print(
                f"retraining: {total['retrains']} retrain(s) cost {_fmt(total['cost'])} {cur}; value "
                f"{_fmt(total.get('value'))} {cur} over {total['served']} predictions served "
                f"(measured on {total['paired']} rows both models scored); net value {_fmt(total.get('net_value'))} "
                f"{cur}; ROI {ratio}"
            )


_EVENT_STYLE = {
    "trigger_fired": "bold yellow", "trigger_suppressed": "yellow", "drift_watch": "cyan",
    "retrain_started": "bold", "retrain_finished": "bold", "gate_passed": "green", "gate_rejected": "red",
    "promoted": "bold green", "retrain_failed": "bold red", "tick_failed": "bold red", "retrain_blocked": "bold red", "alias_moved": "green",
}


def print_event(console: Console, e: dict[str, Any]) -> None:
    """One line of the timeline: time, kind, reason."""
    style = _EVENT_STYLE.get(e["kind"], "dim")
    when = f"{e['t']:>6.1f}s" if "t" in e else f"{e['time'][:10]} {e['time'][11:19]}"
    console.print(f"{when}  [{style}]{e['kind']:<22}[/] {e.get('reason') or ''}", highlight=False)


class Timeline:
    """Prints events as they happen, folding repeats: a trigger suppressed on every tick of
    its cooldown shows once per firing (the store keeps every one)."""

    QUIET = frozenset({"version_registered", "version_status", "alias_moved", "thresholds_passed", "trigger_insufficient_samples"})

    def __init__(self, console: Console) -> None:
        self.console = console
        self._suppressed: set[str] = set()

    def __call__(self, e: dict[str, Any]) -> None:
        if e["kind"] in self.QUIET:
            return
        if e["kind"] == "trigger_fired":
            self._suppressed.discard(e.get("subject") or "")
        if e["kind"] in ("trigger_suppressed", "drift_watch"):
            key = f"{e['kind']}:{e.get('subject')}"
            if key in self._suppressed:
                return
            self._suppressed.add(key)
        print_event(self.console, e)


def tick_outcome(r: dict[str, Any]) -> list[str]:
    """What a tick did, in words that hold after it ended: a retrain that started *and*
    finished in this tick is reported with its gate verdict, not as 'started'."""
    actions = list(r.get("actions") or [])
    retrain, gate = r.get("retrain"), r.get("gate")
    if retrain and retrain.get("version") is not None:
        actions = [a for a in actions if a not in ("retrain started", "retrain resumed")]
        what = f"retrained v{retrain['version']}"
        if gate is not None:
            verdict = "passed" if gate.get("passed") else "rejected"
            reasons = "; ".join(gate.get("reasons") or [])
            what += f", gate {verdict}" + (f" ({reasons})" if reasons else "")
        actions.insert(min(1, len(actions)), what)
    return actions


def print_tick(console: Console, r: dict[str, Any]) -> None:
    console.print(f"[bold]{r['model']}[/] tick at {r['time'][:19]}: {', '.join(tick_outcome(r)) or 'nothing to do'}",
                  highlight=False)
    for d in r.get("decisions") or []:
        if d["status"] != "quiet":
            console.print(f"  {d['name']:<28} {d['status']:<22} {d['reason']}", highlight=False)
    if r.get("promoted"):
        console.print(f"  [green]promoted v{r['promoted']}[/]")


def print_demo(console: Console, r: dict[str, Any]) -> None:
    """The demo's final table: the metric before, during and after the drift."""
    table = Table(title=f"{r['metric']} of served predictions", title_justify="left")
    for col in ("phase", r["metric"]):
        table.add_column(col, justify="left" if col == "phase" else "right")
    labels = {"before": "before drift", "drift": "during drift", "recovered": "after recovery"}
    for key, label in labels.items():
        table.add_row(label, _fmt(r["phases"].get(key)))
    console.print()
    console.print(table)
    console.print(
        f"retrains {r['retrains']} · promotions {r['promotions']} · retraining cost {r['cost']:.6f} USD · "
        f"{r['batches']} batches of {r['batch_size']} requests in {r['seconds']} s"
    )

"""The backtest's HTML page: a summary table and two Plotly charts, fully offline.

Plotly's JavaScript is embedded in the page (no CDN), so the file opens anywhere, including
air-gapped machines and CI artifacts.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} p.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:6px 12px;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5} .warn{color:#a15c00}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def metric_chart(result: dict[str, Any]) -> go.Figure:
    """The metric per batch for every policy, retrains as markers, true drifts as lines."""
    fig = go.Figure()
    colors = qualitative.Plotly
    for i, p in enumerate(result["policies"]):
        color = colors[i % len(colors)]
        batches = list(range(len(p["metric_by_batch"])))
        fig.add_trace(go.Scatter(x=batches, y=p["metric_by_batch"], mode="lines", name=p["name"],
                                 line={"color": color, "width": 2}, legendgroup=p["name"]))
        if p["retrain_batches"]:
            promoted = p.get("retrain_promoted") or [True] * len(p["retrain_batches"])
            fig.add_trace(go.Scatter(
                x=p["retrain_batches"], y=[p["metric_by_batch"][b] for b in p["retrain_batches"]], mode="markers",
                name=f"{p['name']} retrains", legendgroup=p["name"], showlegend=False,
                marker={"color": color, "size": 11, "symbol": ["triangle-up" if ok else "x" for ok in promoted],
                        "line": {"color": "white", "width": 1}},
                text=[f"retrain at batch {b} ({'promoted' if ok else 'rejected by the gate'}): {html.escape(r[:160])}"
                      for b, ok, r in zip(p["retrain_batches"], promoted, p["retrain_reasons"], strict=True)],
                hovertemplate="%{text}<extra></extra>",
            ))
    for b in (result.get("scenario") or {}).get("drift_batches", []):
        fig.add_vline(x=b, line={"color": "#999", "dash": "dot"}, annotation_text="drift", annotation_position="top")
    fig.update_layout(title=f"{result['metric']} per batch (▲ retrain promoted, ✕ rejected)", xaxis_title="batch",
                      yaxis_title=result["metric"], template="plotly_white", height=460,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50}, legend={"orientation": "h", "y": -0.18})
    return fig


def cost_chart(result: dict[str, Any]) -> go.Figure:
    """Retraining cost against mean metric, one point per policy."""
    policies = result["policies"]
    colors = qualitative.Plotly
    fig = go.Figure(go.Scatter(
        x=[p["cost"] for p in policies], y=[p["mean_metric"] for p in policies], mode="markers+text",
        text=[p["name"] for p in policies], textposition="top center",
        marker={"size": 14, "color": [colors[i % len(colors)] for i in range(len(policies))]},
        customdata=[[p["retrains"], p["train_cpu_seconds"], _fmt(p.get("value"), 2), _fmt(p.get("roi"), 2)]
                    for p in policies],
        hovertemplate="%{text}<br>cost %{x:.6f}<br>mean %{y:.4f}<br>retrains %{customdata[0]}"
                      "<br>CPU s %{customdata[1]:.2f}<br>value %{customdata[2]}<br>ROI %{customdata[3]}<extra></extra>",
    ))
    fig.update_layout(title=f"retraining cost against mean {result['metric']}", xaxis_title="retraining cost",
                      yaxis_title=f"mean {result['metric']}", template="plotly_white", height=420,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def render_report(result: dict[str, Any]) -> str:
    """The whole page as a string (see :func:`write_report`)."""
    rows = "".join(
        f"<tr><td>{html.escape(p['name'])}</td><td>{_fmt(p['mean_metric'])}</td><td>{_fmt(p.get('vs_never'))}</td>"
        f"<td>{p['retrains']}</td><td>{html.escape(', '.join(map(str, p['retrain_batches'])) or '–')}</td>"
        f"<td>{_fmt(p['train_cpu_seconds'], 2)}</td><td>{_fmt(p['cost'], 6)}</td><td>{_fmt(p.get('value'), 2)}</td>"
        f"<td>{_fmt(p.get('net_value'), 2)}</td><td title='{html.escape(p.get('roi_note') or '')}'>{_fmt(p.get('roi'), 2)}</td>"
        f"<td>{p.get('served', 0)} / {p.get('paired', 0)}</td></tr>"
        for p in result["policies"]
    )
    warnings = "".join(f"<p class='warn'>{html.escape(w)}</p>" for w in result.get("warnings", []))
    scen = result.get("scenario")
    sub = (f"{result['batches']} batches of {result['batch_size']} rows after {result['initial_rows']} initial rows; "
           f"labels arrive {result['label_delay']} batch(es) late")
    if scen:
        sub += f" — scenario {html.escape(str(scen.get('name')))}: {html.escape(str(scen.get('description', '')))}"
    if result.get("clock"):
        sub += f"<br>{html.escape(result['clock']['description'])}"
    chart1 = metric_chart(result).to_html(full_html=False, include_plotlyjs=True, div_id="metric-chart")
    chart2 = cost_chart(result).to_html(full_html=False, include_plotlyjs=False, div_id="cost-chart")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>modelpilot backtest</title>"
        f"<style>{_STYLE}</style></head><body><h1>modelpilot backtest — {html.escape(result['metric'])}</h1>"
        f"<p class='sub'>{sub}</p>{warnings}"
        "<table><tr><th>policy</th><th>mean</th><th>vs never</th><th>retrains</th><th>at batches</th>"
        "<th>train CPU s</th><th>cost</th><th>value</th><th>net value</th><th>ROI</th>"
        f"<th>predictions served / paired</th></tr>{rows}</table>"
        "<p class='sub'>value = predictions served x value per better prediction x the difference realised "
        "against the retired champion on the same rows; net value = value - cost; ROI = net value / cost "
        "(— below costs.roi_min_cost or without a value)</p>"
        f"{chart1}{chart2}</body></html>"
    )


def write_report(result: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML report of a backtest (``BacktestResult.to_dict()``) to ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(result), encoding="utf-8")
    return out


def print_summary(console: Any, result: dict[str, Any]) -> None:
    """One Rich table row per policy (what the CLI prints without ``--json -``)."""
    from rich.table import Table

    scen = result.get("scenario")
    title = f"backtest: {result['batches']} batches of {result['batch_size']} rows, {result['metric']}"
    if scen:
        title += f" — scenario {scen.get('name')} (drifts at batches {scen.get('drift_batches')})"
    clock = result.get("clock")
    table = Table(title=title, caption=clock["description"] if clock else None)
    for col in ("policy", "mean", "vs never", "retrains", "at batches", "train CPU s", "cost", "value",
                "net value", "ROI", "served / paired"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for p in result["policies"]:
        table.add_row(p["name"], _fmt(p["mean_metric"]), _fmt(p.get("vs_never")), str(p["retrains"]),
                      ", ".join(map(str, p["retrain_batches"])) or "–", _fmt(p["train_cpu_seconds"], 2),
                      _fmt(p["cost"], 6), _fmt(p.get("value"), 2), _fmt(p.get("net_value"), 2),
                      _fmt(p.get("roi"), 2), f"{p.get('served', 0)} / {p.get('paired', 0)}")
    console.print(table)
    notes = {p["roi_note"] for p in result["policies"] if p.get("roi_note") and p.get("retrains")}
    for note in sorted(notes):
        console.print(f"ROI —: {note}")

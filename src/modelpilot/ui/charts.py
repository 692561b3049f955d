"""Plotly figures built on the server; the pages embed them without Plotly's JS.

Each builder takes plain data and returns the HTML of one ``<div>`` (Plotly's JS is
loaded once per page from ``/ui/static/plotly.min.js``). Times are sent as ISO UTC; Plotly
draws them as given, so axes read in UTC (the tables convert to the viewer's zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from modelpilot.store import EventRecord

_CONFIG = {"displaylogo": False, "responsive": True}
# the template as plain data, added to each figure unvalidated (validating it per figure
# cost ~10 ms each)
_TEMPLATE = pio.templates["plotly_white"].to_plotly_json()
_LAYOUT: dict[str, Any] = {
    "height": 320, "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "legend": {"orientation": "h", "y": -0.2}, "font": {"size": 12},
}
EVENT_COLORS = {
    "trigger_fired": "#d62728", "retrain_started": "#9467bd", "retrain_finished": "#8c564b",
    "promoted": "#2ca02c", "gate_rejected": "#7f7f7f", "rolled_back": "#ff7f0e",
}
_MAX_MARKS = 300
_LEGEND_ON_TOP = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}


def html(fig: go.Figure, *, height: int | None = None, shapes: Sequence[dict[str, Any]] = (),
         annotations: Sequence[dict[str, Any]] = (), layout: dict[str, Any] | None = None) -> str:
    """The figure as an embeddable ``<div>`` (no Plotly JS inside).

    ``layout`` overrides the shared layout for this figure. Event lines and thresholds are
    added to the figure's dict unvalidated: validating shapes one by one
    (``fig.add_shape``) costs milliseconds each, the page's largest cost.
    """
    fig.update_layout(**_LAYOUT)
    if height:
        fig.update_layout(height=height)
    if layout:
        fig.update_layout(**layout)
    spec = fig.to_dict()
    spec["layout"]["template"] = _TEMPLATE
    spec["layout"].setdefault("shapes", []).extend(shapes)
    spec["layout"].setdefault("annotations", []).extend(annotations)
    out: str = pio.to_html(spec, full_html=False, include_plotlyjs=False, config=_CONFIG, validate=False)
    return out


def hline(y: float, text: str, color: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dashed horizontal line across the plot with its label (shape, annotation)."""
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
             "line": {"color": color, "dash": "dash", "width": 1.5}}
    note = {"xref": "paper", "x": 0, "y": y, "text": text, "showarrow": False, "xanchor": "left",
            "yanchor": "bottom", "font": {"color": color, "size": 11}}
    return shape, note


def _iso(index: Any) -> list[str]:
    return [pd.Timestamp(t).isoformat() for t in index]


# a pause longer than this many typical intervals between reports is a gap: the line breaks
GAP_FACTOR = 3.0


def break_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (indexed by time) with an empty row in every gap much longer than the usual
    interval between its rows, so a line is not drawn across a period without data."""
    if len(frame) < 3:
        return frame
    times = pd.DatetimeIndex(frame.index)
    steps = times.to_series().diff().dropna()
    typical = steps.median()
    if pd.isna(typical) or typical <= pd.Timedelta(0):
        return frame
    gaps = steps[steps > typical * GAP_FACTOR]
    if gaps.empty:
        return frame
    fillers = pd.DataFrame(index=pd.DatetimeIndex([t - gap / 2 for t, gap in gaps.items()], name=frame.index.name),
                           columns=frame.columns, dtype=float)
    return pd.concat([frame, fillers]).sort_index()


def mark_events(fig: go.Figure, events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """Hoverable markers on top of the plot (one legend entry per kind); returns the lines."""
    events = list(events)[:_MAX_MARKS]
    if not events:
        return []
    fig.update_layout(yaxis9={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True})
    kinds: dict[str, list[EventRecord]] = {}
    for ev in events:
        kinds.setdefault(ev.kind, []).append(ev)
    for kind, evs in kinds.items():
        fig.add_trace(go.Scatter(
            x=[e.time.isoformat() for e in evs], y=[0.97] * len(evs), yaxis="y9", mode="markers", name=kind,
            marker={"symbol": "triangle-down", "size": 10, "color": EVENT_COLORS.get(kind, "#999")},
            hovertext=[f"{e.kind} {e.subject or ''}<br>{e.reason[:160]}" for e in evs], hoverinfo="text+x",
        ))
    return event_lines(events)


def event_lines(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """A dotted vertical line per event, coloured by kind."""
    return [{"type": "line", "xref": "x", "yref": "paper", "x0": e.time.isoformat(), "x1": e.time.isoformat(),
             "y0": 0, "y1": 1, "layer": "below",
             "line": {"color": EVENT_COLORS.get(e.kind, "#999"), "width": 1, "dash": "dot"}}
            for e in list(events)[:_MAX_MARKS]]


def drift_heatmap(frame: pd.DataFrame, features: list[str], threshold: float | None) -> str:
    """Per-feature drift statistic over time (features × time)."""
    z = frame[[f"drift:{f}" for f in features]].T.to_numpy()
    fig = go.Figure(go.Heatmap(
        z=z, x=_iso(frame.index), y=features, colorscale="YlOrRd", zmin=0,
        zmax=max(float(pd.DataFrame(z).max().max() or 0.0), threshold or 0.0) or None,
        colorbar={"title": "statistic"}, hoverongaps=False,
        hovertemplate="%{y}<br>%{x}<br>statistic %{z:.3f}<extra></extra>",
    ))
    title = "Feature drift over time" + (f" (column drifts above {threshold})" if threshold else "")
    fig.update_layout(title=title)
    return html(fig, height=max(260, 60 + 28 * len(features)))


def drift_lines(frame: pd.DataFrame, events: Sequence[EventRecord], share_threshold: float) -> str:
    """Share of drifted features and the score (prediction) drift statistic."""
    fig = go.Figure()
    x = _iso(frame.index)
    fig.add_trace(go.Scatter(x=x, y=frame["drift_share"], name="share of drifted features", mode="lines+markers"))
    fig.add_trace(go.Scatter(x=x, y=frame["prediction_drift"], name="prediction (score) drift", mode="lines"))
    shape, note = hline(share_threshold, "feature drift trigger", "#d62728")
    lines = mark_events(fig, events)
    fig.update_layout(title="Drift share and prediction drift", yaxis={"rangemode": "tozero"})
    return html(fig, shapes=[shape, *lines], annotations=[note])


def performance_lines(
    frame: pd.DataFrame, events: Sequence[EventRecord], metric: str, reference: float | None, drop: float
) -> str:
    """Measured (labelled) and estimated (label-free) performance with the trigger line."""
    fig = go.Figure()
    frame = break_gaps(frame)
    x = _iso(frame.index)
    fig.add_trace(go.Scatter(x=x, y=frame["performance"], name=f"{metric} (measured)", mode="lines+markers",
                             connectgaps=False))
    fig.add_trace(go.Scatter(x=x, y=frame["estimated_performance"], name=f"{metric} (estimated, no labels)",
                             mode="lines", line={"dash": "dot"}))
    shapes, notes = [], []
    if reference is not None:
        for y, text, color in ((reference, "reference", "#2ca02c"), (reference - drop, "performance-drop trigger", "#d62728")):
            shape, note = hline(y, text, color)
            shapes.append(shape)
            notes.append(note)
    shapes += mark_events(fig, events)
    fig.update_layout(title=f"Performance over time ({metric})")
    return html(fig, shapes=shapes, annotations=notes)


def segment_lines(frame: pd.DataFrame, segments: list[str], events: Sequence[EventRecord], metric: str) -> str:
    """The measured metric per segment over time.

    Markers as well as lines: a segment measured in one window between windows without
    enough labels is a lone point, which a line alone does not draw. Lines break where a
    segment has no value and across long periods without reports.
    """
    fig = go.Figure()
    frame = break_gaps(frame)
    x = _iso(frame.index)
    for seg in segments:
        fig.add_trace(go.Scatter(x=x, y=frame[f"segment:{seg}"], name=seg, mode="lines+markers",
                                 connectgaps=False, marker={"size": 5}))
    lines = mark_events(fig, events)
    fig.update_layout(title=f"Performance per segment ({metric}, measured)")
    return html(fig, shapes=lines)


def prediction_distribution(dist: pd.DataFrame, events: Sequence[EventRecord]) -> str:
    """Score quantiles (band) and the share of each predicted label over time."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = _iso(dist["bucket"])
    fig.add_trace(go.Scatter(x=x, y=dist["p90"], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=dist["p10"], mode="lines", fill="tonexty", line={"width": 0}, name="score p10–p90",
                             fillcolor="rgba(31,119,180,0.2)"))
    fig.add_trace(go.Scatter(x=x, y=dist["p50"], name="score median", line={"color": "#1f77b4"}))
    for col in [c for c in dist.columns if c.startswith("share:")]:
        fig.add_trace(go.Scatter(x=x, y=dist[col], name=f"predicted {col[6:]}", mode="lines", line={"dash": "dash"}),
                      secondary_y=True)
    fig.update_yaxes(title_text="score", secondary_y=False)
    fig.update_yaxes(title_text="share", range=[0, 1], secondary_y=True)
    fig.update_layout(title="Prediction distribution over time (from the prediction log)")
    return html(fig, shapes=event_lines(events))


def version_metrics(versions: Sequence[Any], metric: str) -> str:
    """The primary validation metric of each version, coloured by status."""
    colors = {"registered": "#1f77b4", "rejected": "#bbbbbb", "awaiting_approval": "#ff7f0e", "archived": "#999"}
    fig = go.Figure(go.Bar(
        x=[f"v{v.version}" for v in versions], y=[v.metrics.get(metric) for v in versions],
        marker={"color": [colors.get(v.status, "#1f77b4") for v in versions]},
        hovertext=[v.status for v in versions],
    ))
    fig.update_layout(title=f"Validation {metric} per version", height=260)
    return html(fig, height=260)


def learning_curve(train: Sequence[Any], validation: Sequence[Any], metric: str) -> str:
    """Train and validation metric per boosting stage.

    The legend sits above the plot: below it, it collided with the axis title and was cut
    off by the figure's bottom edge.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[p.step for p in train], y=[p.value for p in train], name="train"))
    fig.add_trace(go.Scatter(x=[p.step for p in validation], y=[p.value for p in validation], name="validation"))
    fig.update_layout(title=f"Learning curve ({metric} per boosting stage)", xaxis_title="stage")
    return html(fig, layout={"legend": _LEGEND_ON_TOP, "margin": {"t": 70, "b": 50}})


def trials(points: Sequence[Any], trial_params: dict[str, Any], metric: str) -> str:
    """Each tuned parameter against the trial's score (one panel per parameter)."""
    values = {p.step: p.value for p in points}
    names = sorted({k for t in trial_params.values() for k in (t.get("params") or {})})[:6]
    if not names:
        fig = go.Figure(go.Scatter(x=list(values), y=list(values.values()), mode="markers"))
        fig.update_layout(title=f"HPO trials ({metric})", xaxis_title="trial")
        return html(fig)
    # at most three panels a row: six side by side left each title ~100 px, and they overlapped
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.06, vertical_spacing=0.3 if rows > 1 else 0.0)
    for i, name in enumerate(names, start=1):
        xs, ys, text = [], [], []
        for number, t in trial_params.items():
            if int(number) in values and name in (t.get("params") or {}):
                xs.append(t["params"][name])
                ys.append(values[int(number)])
                text.append(f"trial {number}")
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, text=text, showlegend=False,
                                 marker={"size": 9}), row=(i - 1) // cols + 1, col=(i - 1) % cols + 1)
    for row in range(1, rows + 1):
        fig.update_yaxes(title_text=metric, row=row, col=1)
    fig.update_annotations(font_size=11)  # the subplot titles
    fig.update_layout(title=f"HPO trials: parameter vs {metric}")
    return html(fig, height=120 + 220 * rows, layout={"margin": {"t": 80}})


def importance(rows: Sequence[dict[str, Any]]) -> str:
    rows = list(rows)[:15][::-1]
    fig = go.Figure(go.Bar(
        x=[r["importance"] for r in rows], y=[r["feature"] for r in rows], orientation="h",
        error_x={"type": "data", "array": [r.get("std") or 0 for r in rows]},
    ))
    fig.update_layout(title="Permutation feature importance (validation)")
    return html(fig, height=max(260, 60 + 26 * len(rows)))


def profile_stages(stages: dict[str, dict[str, Any]]) -> str:
    names = list(stages)
    fig = go.Figure([
        go.Bar(x=names, y=[stages[n].get("wall_s") for n in names], name="wall s"),
        go.Bar(x=names, y=[stages[n].get("cpu_s") for n in names], name="CPU s"),
    ])
    fig.update_layout(title="Profile per stage (seconds)", barmode="group")
    return html(fig)


def cost_over_time(rows: list[dict[str, Any]], currency: str) -> str:
    """Cost per run (bars by outcome), cumulative cost, and the measured value of each promotion."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colors = {"promoted": "#2ca02c", "rejected": "#bbbbbb", "failed": "#d62728", "initial": "#1f77b4",
              "waiting": "#ff7f0e", "in_rollout": "#9467bd"}
    for outcome in ("initial", "promoted", "waiting", "in_rollout", "rejected", "failed"):
        sel = [r for r in rows if r["outcome"] == outcome]
        if sel:
            fig.add_trace(go.Bar(x=[r["time"] for r in sel], y=[r["cost"] for r in sel], name=f"cost ({outcome})",
                                 marker={"color": colors[outcome]}, hovertext=[r["label"] for r in sel]))
    cumulative, total = [], 0.0
    for r in rows:
        total += r["cost"] or 0.0
        cumulative.append(total)
    fig.add_trace(go.Scatter(x=[r["time"] for r in rows], y=cumulative, name="cumulative cost", mode="lines",
                             line={"shape": "hv", "color": "#444"}))
    val = [r for r in rows if r.get("value") is not None and r["outcome"] == "promoted"]
    if val:
        fig.add_trace(go.Scatter(x=[r["time"] for r in val], y=[r["value"] for r in val], mode="markers",
                                 name="measured value of the promotion", hovertext=[r["label"] for r in val],
                                 marker={"size": 12, "symbol": "star", "color": "#2ca02c"}),
                      secondary_y=True)
    fig.update_yaxes(title_text=f"cost ({currency})", secondary_y=False)
    fig.update_yaxes(title_text=f"value ({currency})", secondary_y=True)
    fig.update_layout(title="Retraining cost and measured value over time", barmode="stack")
    return html(fig)


def run_histories(history: dict[str, dict[str, list[list[float]]]], labels: tuple[str, str]) -> str:
    """Each metric logged at more than one step: run A's and run B's values per step, one panel each."""
    names = [n for n, h in history.items() if max(len(h.get("a") or []), len(h.get("b") or [])) > 1][:12]
    if not names:
        return ""
    cols = 2 if len(names) > 1 else 1
    rows = (len(names) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, vertical_spacing=0.12 if rows < 4 else 0.06)
    for i, name in enumerate(names):
        for side, label, color in (("a", labels[0], "#1f77b4"), ("b", labels[1], "#ff7f0e")):
            points = history[name].get(side) or []
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=label,
                                     legendgroup=side, showlegend=i == 0, mode="lines+markers",
                                     line={"color": color}), row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(title="Metrics per step")
    return html(fig, height=260 * rows + 80, layout={"legend": _LEGEND_ON_TOP, "margin": {"t": 90, "b": 40}})


def run_last_values(metrics: Sequence[dict[str, Any]], labels: tuple[str, str]) -> str:
    """The last value of every metric both runs logged, side by side (one bar pair per metric)."""
    shared = [m for m in metrics if m["a"] is not None and m["b"] is not None][:30]
    fig = go.Figure()
    for side, label, color in (("a", labels[0], "#1f77b4"), ("b", labels[1], "#ff7f0e")):
        fig.add_trace(go.Bar(x=[m["name"] for m in shared], y=[m[side] for m in shared], name=label,
                             marker={"color": color}))
    fig.update_layout(title="Last value of each metric", barmode="group")
    return html(fig, layout={"legend": _LEGEND_ON_TOP, "margin": {"t": 70, "b": 60}})

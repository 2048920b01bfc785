"""Figures of members' snapshots over training (rows from grokcore.snapshots.snapshot_views): each takes a
DataFrame and returns a figure; the caller decides to show or save."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def spectrum_over_snapshots(spectrum: pd.DataFrame, run_id: str, label: str | None = None) -> go.Figure:
    """The embedding's Fourier spectrum at each snapshot epoch: a heatmap of epoch x frequency (norms
    scaled to each epoch's largest, so the key frequencies stand out as they form)."""
    rows = spectrum[spectrum["run_id"] == run_id]
    table = rows.pivot(index="frequency", columns="epoch", values="norm").sort_index()
    scaled = table / table.max(axis=0)
    fig = go.Figure(
        go.Heatmap(
            x=[str(e) for e in scaled.columns],
            y=scaled.index,
            z=scaled.values,
            colorscale="Viridis",
            colorbar=dict(title="norm / max"),
        )
    )
    fig.update_layout(
        title=dict(text=f"embedding Fourier spectrum at its snapshots: {label or run_id}"),
        xaxis_title="snapshot epoch",
        yaxis_title="frequency k",
        xaxis_type="category",
    )
    return fig


def attention_over_snapshots(attention: pd.DataFrame, run_id: str, label: str | None = None) -> go.Figure:
    """Where the last position attends (first layer, mean over test examples) at each snapshot epoch:
    one line per head and key position."""
    rows = attention[attention["run_id"] == run_id].sort_values("epoch")
    fig = go.Figure()
    for (head, key), line in rows.groupby(["head", "key_pos"]):
        fig.add_trace(
            go.Scatter(x=line["epoch"], y=line["attention"], mode="lines+markers", name=f"head {head} → position {key}")
        )
    fig.update_layout(
        title=dict(text=f"attention of the last position at its snapshots: {label or run_id}"),
        xaxis_title="snapshot epoch",
        yaxis_title="mean attention",
        yaxis_range=[0, 1],
    )
    return fig

"""PNG writing shared by the reproductions' figures.py scripts."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

WIDTH, HEIGHT = 800, 500
ATTEMPTS = 3


def save_png(fig: go.Figure, path: Path, width: int = WIDTH, height: int = HEIGHT) -> None:
    """Write `fig` with kaleido, retrying: on a loaded machine kaleido's Chromium page is sometimes not
    ready when the figure arrives (JavaScript 'kaleido_scopes is not defined'), and a second try works."""
    for attempt in range(ATTEMPTS):
        try:
            pio.write_image(fig, path, width=width, height=height)
            return
        except Exception:
            if attempt == ATTEMPTS - 1:
                raise


def save_figure(fig: go.Figure, folder: Path, name: str, margin: dict, legend_below: bool = False) -> Path:
    """`folder`/figures/`name`.png at the shared size with a 13-pt title; `legend_below` for long legend
    labels, which beside the plot took a third of its width."""
    path = folder / "figures" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    fig.update_layout(width=WIDTH, height=HEIGHT, title_font_size=13, margin=margin)
    if legend_below:
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    save_png(fig, path)
    return path

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

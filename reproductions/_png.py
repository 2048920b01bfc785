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


CENSORED_END = "censored: not generalised by its last epoch ('> E')"


def add_censored_end(
    fig: go.Figure, last: dict, colour: str, size: int, showlegend: bool, row: int, col: int, y: str = "test/acc"
) -> None:
    """The checklist's censored marker on a member's curve: an open triangle at its last evaluation `last`
    (epoch and `y`), one legend entry for all of them."""
    fig.add_scatter(
        x=[last["epoch"]],
        y=[last[y]],
        mode="markers",
        marker={"symbol": "triangle-right-open", "size": size, "color": colour},
        name=CENSORED_END,
        legendgroup="censored",
        showlegend=showlegend,
        row=row,
        col=col,
    )


def print_written(paths: list[Path], root: Path) -> None:
    for path in paths:
        print(f"wrote {path.relative_to(root)} ({path.stat().st_size // 1024} KB)")


def _axes_in_use(fig: go.Figure) -> list[tuple[str, object]]:
    """(layout name, axis) of every axis a trace is drawn on ('x2' -> layout.xaxis2)."""
    refs: set[str] = set()
    for trace in fig.data:
        for key in ("xaxis", "yaxis"):
            ref = getattr(trace, key, None)
            if ref is not None or key in trace:
                refs.add(key[0] + "axis" + (ref or key[0])[1:])
    return [(name, fig.layout[name]) for name in sorted(refs)]


def checklist_problems(fig: go.Figure, caption: tuple[str, ...] = ("p = ", "budget", "seed")) -> list[str]:
    """What the cheap items of reproductions/README.md's figure checklist find wrong in `fig`: an axis
    without a title, a log axis whose title does not say so, x tick labels turned steeper than 45
    degrees, a title that lacks one of `caption` (p, budget, seeds). The rest of the list (units,
    hidden markers, censored members drawn as such) needs eyes on the PNG."""
    problems = []
    for name, axis in _axes_in_use(fig):
        title = (axis.title.text or "") if axis.title else ""
        if not title.strip():
            problems.append(f"{name} has no title")
        elif axis.type == "log" and "log" not in title.lower():
            problems.append(f"{name} is logarithmic but its title '{title}' does not say so")
        if name.startswith("x") and axis.tickangle is not None and abs(axis.tickangle) > 45:
            problems.append(f"{name}'s tick labels are turned {axis.tickangle} degrees")
    text = fig.layout.title.text or ""
    problems += [f"the title does not give '{word}'" for word in caption if word.lower() not in text.lower()]
    return problems


def check_figure(fig: go.Figure, caption: tuple[str, ...] = ("p = ", "budget", "seed")) -> None:
    problems = checklist_problems(fig, caption)
    if problems:
        raise ValueError("figure fails the checklist (reproductions/README.md): " + "; ".join(problems))


def caption(spec: dict, times) -> str:
    """The checklist's caption line: p, the budget (adaptive or fixed), the seeds and the held rule,
    from the spec as run and the members' times (their thresholds in `attrs`)."""
    base = spec.get("base", {})
    budget = spec.get("budget")
    spent = (
        f"adaptive budget {budget['epochs']:,} → {budget['max_epochs']:,} epochs"
        if budget
        else f"budget {base.get('epochs', 0):,} epochs"
    )
    th = times.attrs["thresholds"]
    seeds = spec.get("replicates", 1)
    return (
        f"p = {base.get('p')}, {spent}, {seeds} seed{'s' if seeds != 1 else ''} a point; generalised: test "
        f"accuracy ≥ {th.test_acc:g} held {th.hold} evaluations"
    )


def add_caption(fig: go.Figure, spec: dict, times) -> go.Figure:
    fig.update_layout(title_text=f"{fig.layout.title.text or ''}<br><sup>{caption(spec, times)}</sup>")
    return fig


def label_axes(fig: go.Figure, x: str, y: str) -> go.Figure:
    """Axis titles (with their units), each marked "log scale" where the figure drew that axis on one."""
    for axis, title in ((fig.layout.xaxis, x), (fig.layout.yaxis, y)):
        axis.title = title + (" (log scale)" if axis.type == "log" else "")
    return fig

"""Plotly figures of a sweep: phase diagrams, one-axis curves with fits, training curves.

Each function takes DataFrames and returns a `go.Figure`; none shows, saves or
prints, so a notebook, the report and the tests use the same figure. What a
figure shows can be read back from the figure object: the heatmap's x, y and z,
the phase of each cell in `customdata[...][0]` (and as the cell's text), and a
`layout.meta` dict naming the axes, the value and any fit.

Every marked epoch (memorisation, generalisation) and every fitted number comes
from analysis.derive, never typed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from analysis.axes import (
    axis_scale,
    axis_title,
    format_value,
    label_log_axes,
    log_ticks,
    replicate_axes,
    require_axes,
    swept_axes,
    value_ticks,
)
from analysis.derive import (
    CELL_PHASES,
    FRACTION_COLUMNS,
    MIN_FIT_POINTS,
    MIXED,
    PHASES,
    TIME_COLUMNS,
    Thresholds,
    aggregate,
    critical_train_fraction,
    member_times,
    power_law_fit,
    view_named,
)
from analysis.errors import AnalysisError

PHASE_COLORS = {  # ColorBrewer Set2 and greys: distinct categories, light enough for black cell text
    "comprehension": "#66c2a5",
    "grokking": "#8da0cb",
    "memorisation": "#fc8d62",
    "confusion": "#e78ac3",
    "unstable": "#ffd92f",
    "test_only": "#a6d854",
    "diverged": "#b3b3b3",
    "undecided": "#e5e5e5",
    MIXED: "#e5c494",
}
VALUE_TITLES = {
    "gen_epoch": "generalisation epoch (censored median over replicates)",
    "mem_epoch": "memorisation epoch (censored median over replicates)",
    "delay": "delay, generalisation − memorisation epoch (censored median over replicates)",
    "fraction_generalised": "fraction of replicates that generalised",
    "fraction_grokked": "fraction of replicates that grokked",
    "phase": "phase of the replicates",
}
REACHED_WORD = {"gen_epoch": "generalised", "mem_epoch": "memorised", "delay": "generalised"}
DIAGRAM_VALUES = (*TIME_COLUMNS, *FRACTION_COLUMNS, "phase")
FITS = ("power", "critical")
MEMBER_COLORS = qualitative.Plotly
LINE_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
MARKER_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")


# ---- phase diagrams -------------------------------------------------------------------------


def empty_figure(reason: str, kind: str, **meta) -> go.Figure:
    """A figure with nothing to draw says why in one sentence, instead of empty axes (the report shows the
    sentence alone); `layout.meta["empty"]` holds the sentence."""
    fig = go.Figure()
    fig.add_annotation(text=reason, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=15))
    fig.update_layout(
        xaxis=dict(visible=False), yaxis=dict(visible=False), height=200, meta=dict(kind=kind, empty=reason, **meta)
    )
    return fig


def _time_text(row: dict, value: str) -> str:
    """A time cell: its censored median (or '> epoch' when too many replicates never reached it) and how many
    of the replicates reached it, e.g. '1200<br>2/3 generalised'."""
    median, censored_at = _num(row.get(f"{value}_median")), _num(row.get(f"{value}_censored_at"))
    shown = (
        format_value(median)
        if median is not None
        else f"> {format_value(censored_at)}"
        if censored_at is not None
        else "—"
    )
    reached = row["n_generalised"] if value != "mem_epoch" else row["mem_epoch_n"]
    return f"{shown}<br>{int(reached)}/{int(row['n_members'])} {REACHED_WORD[value]}"


def _phase_text(row: dict) -> str:
    """A phase cell: the phase and its count among the replicates ('grokking 2/3'); a tie lists the tied."""
    n = int(row["n_members"])
    if row["phase"] == MIXED:
        top = int(row["phase_count"])
        tied = [p for p in PHASES if int(row[f"count/{p}"]) == top and p != "undecided"]
        return "mixed<br>" + "<br>".join(f"{p} {top}/{n}" for p in tied)
    return f"{row['phase']} {int(row['phase_count'])}/{n}"


CENSORED_MARK = "hourglass"
"""Marks a phase-map cell whose phase rests on censored members: plotly's hourglass marker, named in
words in titles and legends because the PNG renderer's fonts have no hourglass glyph (it drew a box)."""
CENSORED_LEGEND = (
    f"an {CENSORED_MARK} marks a censored cell: its phase rests on members that spent their epoch budget "
    "without generalising; it says what happened within that budget, not what more training would do"
)


def _censored_text(row: dict) -> str:
    """'3/3 censored at 3,000' (or 'at 3,000-12,000'); '' for a cell without censored members."""
    k = int(row.get("n_censored") or 0)
    if not k:
        return ""
    lo, hi = row["censored_at_min"], row["censored_at_max"]
    at = f"{lo:,.0f}" if lo == hi else f"{lo:,.0f}-{hi:,.0f}"
    return f"{k}/{int(row['n_members'])} censored at {at}"


def _rests_on_censored(row: dict) -> bool:
    return int(row.get("phase_censored") or 0) > 0


def _cell_corner(values: list, j: int, scale: str) -> object:
    """A position inside cell j of a heatmap axis, toward its upper end (where the censored mark goes, clear of
    the centred text); a category axis has no positions between values, so the centre."""
    if scale == "category":
        return str(values[j])
    t = [math.log10(v) if scale == "log" else float(v) for v in (_key(u) for u in values)]
    step = (t[j + 1] - t[j]) if j + 1 < len(t) else (t[j] - t[j - 1]) if j > 0 else 1.0
    pos = t[j] + 0.36 * step
    return 10**pos if scale == "log" else pos


def phase_diagram(
    times: pd.DataFrame,
    x: str,
    y: str,
    value: str = "phase",
    view: str = "",
    where: Mapping[str, object] | None = None,
    title: str | None = None,
) -> go.Figure:
    """A heatmap over two swept axes; every cell's text says what its colour shows, with counts, so the PNG
    holds the same words as the page.

    `times` is analysis.derive.member_times(...). Replicates (seeds) of a cell are aggregated; other swept
    axes are pooled unless fixed with `where` ({axis: value}), and the subtitle says which were pooled.
    `value`:
    - phase: categorical colours with a legend; text 'grokking 2/3' (the phase more replicates fall in than
      any other, and how many of the cell's members), 'mixed' with the tied phases on a tie;
    - gen_epoch, mem_epoch, delay: the censored (Kaplan-Meier) median over replicates (colour on a log scale
      when the medians span a factor of 10 or more); text: the median, or '> E' when half or more never
      reached it by their last evaluation E, and how many reached it ('2/3 generalised');
    - fraction_generalised, fraction_grokked: the fraction, with text 'k/n'.
    Phase and fraction cells also say how many of their members are censored (spent their budget without
    generalising) and at what budget ('3/3 censored at 3,000'); on the phase map a cell whose phase rests on
    censored members gets a visible mark (CENSORED_MARK, a trace with `meta.role == "censored_mark"`) that
    the legend explains.
    Every swept value is labelled on its axis; axes are log when their values are log-spaced. The cells'
    text can be read back from the text trace (`meta.role == "cell_text"`); each cell's numbers from
    `layout.meta["cells"]`.
    """
    if value not in DIAGRAM_VALUES:
        raise AnalysisError(f"phase_diagram value must be one of {', '.join(DIAGRAM_VALUES)}, got '{value}'")
    if x == y:
        raise AnalysisError(f"phase_diagram needs two different axes, got x = y = '{x}'")
    data = select(times, where)
    require_axes(data, [x, y])
    agg = aggregate(data, by=[x, y], view=view)
    pooled = [a for a in replicate_axes(data) if a not in (x, y)]
    meta = dict(x=x, y=y, value=value, view=view, pooled_over=pooled, where=dict(where or {}))
    if not len(agg):
        return empty_figure(
            f"No member of this sweep has a phase yet, so there is nothing to draw over "
            f"{axis_title(x)} and {axis_title(y)}.",
            "phase_diagram",
            **meta,
        )
    if value in ("gen_epoch", "delay") and not (agg["n_generalised"] > 0).any():
        budgets = sorted({format_value(v) for v in agg["gen_epoch_censored_at"].dropna()})
        return empty_figure(
            f"No member generalised (test accuracy held at its threshold) within its budget"
            f"{' of ' + ', '.join(budgets) + ' epochs' if budgets else ''}: there is no generalisation epoch to "
            f"draw; the phase diagram shows what the {int(agg['n_members'].sum())} members did instead.",
            "phase_diagram",
            **meta,
        )
    xs, ys = _sorted_values(agg[x]), _sorted_values(agg[y])
    x_scale, y_scale = axis_scale(xs), axis_scale(ys)
    cells = {(_key(a), _key(b)): row for a, b, row in zip(agg[x], agg[y], agg.to_dict("records"), strict=True)}

    present = [p for p in CELL_PHASES if (agg["phase"] == p).any()]
    raw = np.full((len(ys), len(xs)), np.nan)
    text_x, text_y, texts, cell_meta = [], [], [], []
    custom = [[["", 0, "", ""] for _ in xs] for _ in ys]
    marks_x, marks_y, marks_text = [], [], []
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            row = cells.get((_key(xv), _key(yv)))
            if row is None:
                continue
            censored = _censored_text(row)
            if value == "phase":
                raw[i, j] = present.index(row["phase"])
                text = _phase_text(row)
                if _rests_on_censored(row):
                    marks_x.append(_cell_corner(xs, j, x_scale))
                    marks_y.append(_cell_corner(ys, i, y_scale))
                    marks_text.append(f"{row['phase']}, {censored}")
            elif value in TIME_COLUMNS:
                raw[i, j] = _num(row[f"{value}_median"]) if _num(row[f"{value}_median"]) is not None else np.nan
                text = _time_text(row, value)
            else:
                raw[i, j] = _num(row[value]) if _num(row[value]) is not None else np.nan
                count = row["n_generalised"] if value == "fraction_generalised" else row["count/grokking"]
                text = f"{int(count)}/{int(row['n_decided'])}"
            if censored and value not in TIME_COLUMNS:  # a time cell says '> E' for them already
                text += f"<br>{censored}"
            custom[i][j] = [
                row["phase"],
                int(row["n_members"]),
                row["phase_counts"],
                f"<br>{censored}" if censored else "",
            ]
            text_x.append(_key(xv))
            text_y.append(_key(yv))
            texts.append(text)
            cell_meta.append(
                _jsonable(
                    {
                        "x": xv,
                        "y": yv,
                        "text": text,
                        "phase": row["phase"],
                        "n_members": row["n_members"],
                        "phase_counts": row["phase_counts"],
                        "median": row.get(f"{value}_median") if value in TIME_COLUMNS else None,
                        "value": row.get(value) if value in FRACTION_COLUMNS else None,
                        "n_censored": row.get("n_censored"),
                        "censored": censored,
                        "phase_rests_on_censored": _rests_on_censored(row),
                    }
                )
            )

    heatmap = dict(
        x=_plot_values(xs, x_scale),
        y=_plot_values(ys, y_scale),
        customdata=custom,
        hoverongaps=False,
        xgap=2,
        ygap=2,
        hovertemplate=(
            f"{x}=%{{x}}<br>{y}=%{{y}}<br>%{{customdata[2]}} of %{{customdata[1]}} members"
            "%{customdata[3]}<extra></extra>"
        ),
    )
    color_scale = "linear"
    dark = np.zeros(raw.shape, dtype=bool)  # cells dark enough to need white text
    if value == "phase":
        n = len(present)
        colorscale = [[edge, PHASE_COLORS[p]] for k, p in enumerate(present) for edge in (k / n, (k + 1) / n)]
        heatmap.update(z=_nan_to_none(raw), zmin=-0.5, zmax=n - 0.5, colorscale=colorscale, showscale=False)
    elif value in FRACTION_COLUMNS:
        heatmap.update(
            z=_nan_to_none(raw),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar=dict(title=dict(text=value.replace("_", " "))),
        )
        dark = np.nan_to_num(raw, nan=1.0) < 0.45  # Viridis is dark at its low end
    else:
        finite = raw[np.isfinite(raw)]
        lo, hi = (finite.min(), finite.max()) if len(finite) else (1.0, 1.0)
        if len(finite) and lo > 0 and hi / lo >= 10:
            color_scale = "log"
            z = np.log10(raw)
            ticks = log_ticks(lo, hi)
            heatmap.update(
                z=_nan_to_none(z),
                colorscale="Viridis_r",
                colorbar=dict(
                    title=dict(text=f"{value} (log)"),
                    tickvals=list(np.log10(ticks["tickvals"])),
                    ticktext=ticks["ticktext"],
                ),
            )
            position = (z - np.log10(lo)) / max(np.log10(hi / lo), 1e-12)
        else:
            heatmap.update(z=_nan_to_none(raw), colorscale="Viridis_r", colorbar=dict(title=dict(text=value)))
            position = (raw - lo) / (hi - lo) if hi > lo else np.zeros(raw.shape)
        dark = np.nan_to_num(position, nan=0.0) > 0.55  # Viridis_r is dark at its high end

    fig = go.Figure(go.Heatmap(**heatmap))
    on_dark = [bool(dark[ys.index(b), xs.index(a)]) for a, b in zip(text_x, text_y, strict=True)]
    # One text trace per text colour (white on dark cells): an array of colours is not drawn by every renderer.
    for color, wanted in (("black", False), ("white", True)):
        keep = [k for k, d in enumerate(on_dark) if d == wanted]
        if keep or not wanted:
            fig.add_trace(
                go.Scatter(
                    x=_plot_values([text_x[k] for k in keep], x_scale),
                    y=_plot_values([text_y[k] for k in keep], y_scale),
                    text=[texts[k] for k in keep],
                    mode="text",
                    textfont=dict(size=11, color=color),
                    hoverinfo="skip",
                    showlegend=False,
                    meta=dict(role="cell_text"),
                )
            )
    if marks_x:
        fig.add_trace(
            go.Scatter(
                x=_plot_values(marks_x, x_scale) if x_scale == "category" else marks_x,
                y=_plot_values(marks_y, y_scale) if y_scale == "category" else marks_y,
                mode="markers",
                marker=dict(symbol=CENSORED_MARK, size=12, color="black"),
                hovertext=marks_text,
                hoverinfo="text",
                name="censored at the budget",
                showlegend=True,
                meta=dict(role="censored_mark", cells=marks_text),
            )
        )
    if value == "phase":
        for phase in present:  # a legend of the categories drawn (the heatmap itself has only a colour bar)
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    name=phase,
                    marker=dict(symbol="square", size=14, color=PHASE_COLORS[phase], line=dict(width=1, color="#555")),
                    meta=dict(role="legend", phase=phase),
                )
            )
    view_note = f" — view: {view} ({view_named(view).description})" if view else ""
    what = {
        "phase": "cell: the phase more replicates fall in than any other (mixed on a tie), members in it / members",
        "fraction_generalised": "cell: members that generalised / decided members",
        "fraction_grokked": "cell: members that grokked / decided members",
    }.get(value, "cell: censored median (> E: half or more had not by their last evaluation E) and how many reached it")
    subtitle = (f"pooled over {', '.join(pooled)}; " if pooled else "") + what
    if marks_x:
        subtitle += f"; {CENSORED_MARK}: the phase rests on members censored at their budget"
    fig.update_layout(
        title=dict(text=f"{title or VALUE_TITLES[value]}{view_note}<br><sup>{subtitle}</sup>"),
        xaxis=dict(
            title=dict(text=axis_title(x)), type=x_scale, showgrid=False, **value_ticks(xs, x_scale, decade_grid=False)
        ),
        yaxis=dict(
            title=dict(text=axis_title(y)), type=y_scale, showgrid=False, **value_ticks(ys, y_scale, decade_grid=False)
        ),
        height=520,
        legend=dict(title=dict(text="phase")),
        plot_bgcolor="white",
        meta=dict(kind="phase_diagram", color_scale=color_scale, phases=present, cells=cell_meta, **meta),
    )
    return fig


def phase_scatter(
    times: pd.DataFrame,
    x: str,
    y: str,
    view: str = "",
    where: Mapping[str, object] | None = None,
    title: str | None = None,
) -> go.Figure:
    """The phase diagram of a sweep whose axes are not a grid (random axes, an Optuna search): every member a
    point at its (x, y), coloured by its phase, one trace per phase; hover shows its times and run_id.

    A heatmap needs cells that replicates share; sampled values are all distinct, so here each member stands
    alone. The points of each phase can be read back from the traces (`name` = phase, `customdata` =
    [run_id, gen_epoch, mem_epoch]).
    """
    if x == y:
        raise AnalysisError(f"phase_scatter needs two different axes, got x = y = '{x}'")
    data = select(times, where)
    require_axes(data, [x, y])
    vw = view_named(view)
    phase_col, grok_col, mem_col = vw.column("phase"), vw.column("gen_epoch"), vw.column("mem_epoch")
    data = data[data[phase_col].notna()] if phase_col in data.columns else data.iloc[:0]
    fig = go.Figure()
    for phase in PHASES:
        part = data[data[phase_col] == phase]
        if not len(part):
            continue
        custom = [[r, _num(g), _num(m)] for r, g, m in zip(part["run_id"], part[grok_col], part[mem_col], strict=True)]
        fig.add_trace(
            go.Scatter(
                x=[_key(v) for v in part[x]],
                y=[_key(v) for v in part[y]],
                mode="markers",
                name=phase,
                marker=dict(color=PHASE_COLORS[phase], size=9, line=dict(width=0.5, color="#333")),
                customdata=custom,
                hovertemplate=(
                    f"{x}=%{{x}}<br>{y}=%{{y}}<br>{phase}<br>generalised at epoch %{{customdata[1]}}, memorised "
                    "%{customdata[2]}<br>%{customdata[0]}<extra></extra>"
                ),
            )
        )
    view_note = f" — view: {view} ({vw.description})" if view else ""
    fig.update_layout(
        title=dict(
            text=f"{title or 'phase of each member'}{view_note}<br><sup>{len(data)} members, one point "
            "each (sampled axes: no grid cells to aggregate)</sup>"
        ),
        xaxis=dict(title=dict(text=axis_title(x)), type=_sample_scale(data[x])),
        yaxis=dict(title=dict(text=axis_title(y)), type=_sample_scale(data[y])),
        height=480,
        legend=dict(title="phase"),
        meta=dict(kind="phase_scatter", x=x, y=y, view=view, members=len(data), where=dict(where or {})),
    )
    label_log_axes(fig)
    return fig


def _sample_scale(values: pd.Series) -> str:
    """Sampled values are not log-spaced steps, but a log-uniform draw spans decades: log from a factor of 100."""
    scale = axis_scale(values)
    if scale == "linear":
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        if len(numbers) and numbers.min() > 0 and numbers.max() / numbers.min() >= 100:
            return "log"
    return scale


# ---- one axis -------------------------------------------------------------------------------


def axis_curve(
    times: pd.DataFrame,
    x: str,
    value: str = "gen_epoch",
    fit: str | None = None,
    view: str = "",
    color: str | None = None,
    where: Mapping[str, object] | None = None,
    fit_result: pd.DataFrame | None = None,
) -> go.Figure:
    """`value` against one swept axis, one line per value of `color` (another axis) if given, else pooled over
    the other axes (the subtitle says so):

    - a time (gen_epoch, mem_epoch, delay): the censored (Kaplan-Meier) median over replicates with q25–q75
      bars, each point labelled with how many replicates reached it ('2/3'); where half or more never did,
      an open triangle at the last epoch they were seen ('> E'); every member that reached it as a faint dot;
    - a fraction: the fraction per point, labelled 'k/n'.

    Lines differ in colour, dash, marker and width (widest first), so a line lying exactly on another stays
    visible. Fits (drawn only from MIN_FIT_POINTS points, labelled with their n, 95% bootstrap interval and
    scope, and equal to analysis.derive's tables for the same grouping):
    - fit="power": log-log least squares of the median (Omnigrok: time ∝ weight_decay^-1), per `color` group;
    - fit="critical": the axis value where fraction_generalised crosses 0.5, per `color` group.
    When nothing can be drawn, the figure is one sentence saying why (`layout.meta["empty"]`).
    `fit_result`: the fit's own rows (power_law_fit / critical_train_fraction of these members, by `color`,
    this view and value), when the caller computed them already (the report, for its tables).
    """
    if value not in (*TIME_COLUMNS, *FRACTION_COLUMNS):
        raise AnalysisError(
            f"axis_curve value must be one of {', '.join((*TIME_COLUMNS, *FRACTION_COLUMNS))}, got '{value}'"
        )
    if fit is not None and fit not in FITS:
        raise AnalysisError(f"axis_curve fit must be one of {', '.join(FITS)} or None, got '{fit}'")
    if fit == "power" and value not in TIME_COLUMNS:
        raise AnalysisError(f"a power-law fit needs a time value ({', '.join(TIME_COLUMNS)}), got '{value}'")
    data = select(times, where)
    require_axes(data, [x] + ([color] if color else []))
    if axis_scale(data[x]) == "category" and fit is not None:
        raise AnalysisError(f"axis '{x}' is not numeric; fits need a numeric axis")
    groups = [color] if color else []
    agg = aggregate(data, by=[*groups, x], view=view)
    pooled = [a for a in replicate_axes(data) if a not in (x, color)]
    meta = dict(x=x, value=value, view=view, fit=fit, color=color, pooled_over=pooled)
    if not len(agg):
        return empty_figure(
            f"No member of this sweep has a phase yet: nothing to draw against {axis_title(x)}.",
            "axis_curve",
            fit_result=[],
            **meta,
        )
    if value in ("gen_epoch", "delay") and not (agg["n_generalised"] > 0).any():
        budgets = sorted({format_value(v) for v in agg["gen_epoch_censored_at"].dropna()})
        return empty_figure(
            f"No member generalised within its budget{' of ' + ', '.join(budgets) + ' epochs' if budgets else ''}"
            f": there is no generalisation epoch to draw against {axis_title(x)}.",
            "axis_curve",
            fit_result=[],
            **meta,
        )
    x_scale = axis_scale(agg[x])
    vw = view_named(view)

    fig = go.Figure()
    y_values: list[float] = []
    n_lines = agg.groupby(groups).ngroups if groups else 1
    for k, (key, part) in enumerate(_split(agg, groups)):
        part = part.sort_values(x)
        name = f"{color}={format_value(key)}" if color else "pooled" if pooled else "all members"
        style = dict(
            color=MEMBER_COLORS[k % len(MEMBER_COLORS)],
            dash=LINE_DASHES[k % len(LINE_DASHES)],
            width=1.5 + min(n_lines - 1 - k, 5),
        )  # the first drawn is the widest: never hidden
        symbol = MARKER_SYMBOLS[k % len(MARKER_SYMBOLS)]
        xs = _plot_values(list(part[x]), x_scale)
        if value in TIME_COLUMNS:
            median = part[f"{value}_median"].to_numpy(dtype="float64")
            reached = (part["n_generalised"] if value != "mem_epoch" else part["mem_epoch_n"]).to_numpy()
            counts = [f"{int(r)}/{int(n)}" for r, n in zip(reached, part["n_members"], strict=True)]
            err_hi = part[f"{value}_q75"].to_numpy(dtype="float64") - median
            err_lo = median - part[f"{value}_q25"].to_numpy(dtype="float64")
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=_nan_to_none(median),
                    mode="lines+markers+text",
                    name=name,
                    line=style,
                    marker=dict(symbol=symbol, size=9, color=style["color"]),
                    text=counts,
                    textposition="top center",
                    textfont=dict(size=10, color=style["color"]),
                    error_y=dict(
                        type="data", array=_nan_to_none(err_hi), arrayminus=_nan_to_none(err_lo), color=style["color"]
                    ),
                    customdata=np.stack([counts, part[f"{value}_censored"]], axis=-1),
                    hovertemplate=f"{x}=%{{x}}<br>median {value} %{{y}}<br>{REACHED_WORD[value]}: %{{customdata[0]}}"
                    " (the rest censored)<extra></extra>",
                    meta=dict(role="median", group=_jsonable(key), reached=counts),
                )
            )
            y_values.extend(median[np.isfinite(median)])
            unknown = ~np.isfinite(median) & part[f"{value}_censored_at"].notna().to_numpy()
            if unknown.any():
                at = part[f"{value}_censored_at"].to_numpy(dtype="float64")[unknown]
                # Lines censored at the same budget would stack their triangles exactly: dodge them sideways
                # (a few percent on a log axis, of the smallest step on a linear one); hover keeps the value.
                true_x = [v for v, u in zip(xs, unknown, strict=True) if u]
                offset = k - (n_lines - 1) / 2
                # The budget is the marker's height; the text holds only the count, so the labels of
                # dodged triangles sit side by side instead of printing "> budget" over each other.
                if x_scale == "log":
                    shown_x = [v * 10 ** (0.06 * offset) for v in true_x]
                elif x_scale == "linear" and len(xs) > 1:
                    step = float(np.min(np.diff(sorted(float(v) for v in xs))))
                    shown_x = [v + 0.12 * step * offset for v in true_x]
                else:
                    shown_x = true_x
                shown_counts = np.asarray(counts)[unknown]
                fig.add_trace(
                    go.Scatter(
                        x=shown_x,
                        y=at.tolist(),
                        mode="markers+text",
                        hovertext=[
                            f"{x}={v}: median > {format_value(b)} ({c})"
                            for v, b, c in zip(true_x, at, shown_counts, strict=True)
                        ],
                        name=f"{name}: median beyond the budget (triangle at the budget)",
                        text=[str(c) for c in shown_counts],
                        textposition="bottom center",
                        textfont=dict(size=10, color=style["color"]),
                        marker=dict(symbol="triangle-up-open", size=11, color=style["color"]),
                        meta=dict(role="censored", group=_jsonable(key)),
                    )
                )
                y_values.extend(at)
            members = data if not color else data[data[color].map(_key) == _key(key)]
            member_values = members[vw.column(value)].where(
                members[vw.column("generalised")] if value != "mem_epoch" else True
            )
            fig.add_trace(
                go.Scatter(
                    x=_whole(_plot_values(list(members[x][member_values.notna()]), x_scale)),
                    y=member_values.dropna().to_numpy(),
                    mode="markers",
                    showlegend=False,
                    opacity=0.35,
                    marker=dict(size=5, color=style["color"], symbol=symbol),
                    name=f"members {name}",
                    hovertext=_whole(list(members["run_id"][member_values.notna()])),
                    meta=dict(role="members"),
                )
            )
        else:
            fraction = part[value].to_numpy(dtype="float64")
            count = part["n_generalised"] if value == "fraction_generalised" else part["count/grokking"]
            counts = [f"{int(c)}/{int(n)}" for c, n in zip(count, part["n_decided"], strict=True)]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=_nan_to_none(fraction),
                    mode="lines+markers+text",
                    name=name,
                    line=style,
                    marker=dict(symbol=symbol, size=9, color=style["color"]),
                    text=counts,
                    textposition="top center",
                    textfont=dict(size=10, color=style["color"]),
                    hovertemplate=f"{x}=%{{x}}<br>{value} %{{y:.2f}} (%{{text}} decided members)<extra></extra>",
                    meta=dict(role="median", group=_jsonable(key), counts=counts),
                )
            )

    fit_rows: list[dict] = []
    n_drawn = 0
    if fit == "power":
        result = fit_result if fit_result is not None else power_law_fit(data, x=x, value=value, by=groups, view=view)
        for k, row in enumerate(result.to_dict("records")):
            fit_rows.append(_jsonable(row))
            if not np.isfinite(row["exponent"]):
                continue
            n_drawn += 1
            grid = np.geomspace(row["x_min"], row["x_max"], 50)
            interval = (
                f" [{row['exponent_lo']:.2f}, {row['exponent_hi']:.2f}]"
                if np.isfinite(row["exponent_lo"])
                else " (no interval)"
            )
            label = (
                f"{color}={format_value(row[color])}: " if color else f"{row['scope']}: "
            ) + f"∝ {x}^{row['exponent']:.2f}{interval}, n={row['n_points']}"
            fig.add_trace(
                go.Scatter(
                    x=grid,
                    y=row["prefactor"] * grid ** row["exponent"],
                    mode="lines",
                    name=label,
                    line=dict(dash="dash", width=1.5, color=MEMBER_COLORS[k % len(MEMBER_COLORS)]),
                    meta=dict(
                        role="fit",
                        exponent=row["exponent"],
                        exponent_lo=_num(row["exponent_lo"]),
                        exponent_hi=_num(row["exponent_hi"]),
                        prefactor=row["prefactor"],
                        r2=row["r2"],
                        n_points=row["n_points"],
                        scope=row["scope"],
                    ),
                )
            )
    elif fit == "critical":
        result = fit_result if fit_result is not None else critical_train_fraction(data, axis=x, by=groups, view=view)
        for k, row in enumerate(result.to_dict("records")):
            fit_rows.append(_jsonable(row))
            if not np.isfinite(row["critical"]):
                continue
            n_drawn += 1
            interval = (
                f" [{row['critical_lo']:.3g}, {row['critical_hi']:.3g}]" if np.isfinite(row["critical_lo"]) else ""
            )
            label = (
                f"{color}={format_value(row[color])}: " if color else f"{row['scope']}: "
            ) + f"critical {x} ≈ {row['critical']:.3g}{interval}, n={row['n_points']}"
            span = [0, 1] if value in FRACTION_COLUMNS else [min(y_values, default=1), max(y_values, default=1)]
            line_color = MEMBER_COLORS[k % len(MEMBER_COLORS)]
            fig.add_trace(
                go.Scatter(
                    x=[row["critical"], row["critical"]],
                    y=span,
                    mode="lines",
                    name=label,
                    line=dict(dash="dash", width=1.5, color=line_color),
                    meta=dict(
                        role="fit",
                        critical=row["critical"],
                        critical_lo=_num(row["critical_lo"]),
                        critical_hi=_num(row["critical_hi"]),
                        lower=row["lower"],
                        upper=row["upper"],
                        n_points=row["n_points"],
                        scope=row["scope"],
                    ),
                )
            )
            if np.isfinite(row["critical_lo"]):
                level = row["level"] if value in FRACTION_COLUMNS else float(np.mean(span))
                fig.add_trace(
                    go.Scatter(
                        x=[row["critical_lo"], row["critical_hi"]],
                        y=[level, level],
                        mode="lines+markers",
                        showlegend=False,
                        line=dict(width=3, color=line_color),
                        marker=dict(symbol="line-ns-open"),
                        meta=dict(role="fit_interval"),
                    )
                )

    positive = [v for v in y_values if v > 0]
    y_scale = "log" if value in TIME_COLUMNS and positive and max(positive) / min(positive) >= 10 else "linear"
    view_note = f" — view: {view}" if view else ""
    subtitle = [f"pooled over {', '.join(pooled)}" if pooled else ""]
    if fit is not None:
        subtitle.append(
            f"{fit} fit drawn for {n_drawn} of {len(fit_rows)} group(s)"
            if n_drawn
            else f"no {fit} fit drawn: fewer than {MIN_FIT_POINTS} usable points in every group (the fits "
            "table says why)"
            if fit == "power"
            else f"no {fit} fit drawn (the fits table says why)"
        )
    subtitle_text = "; ".join(t for t in subtitle if t)
    fig.update_layout(
        title=dict(
            text=f"{VALUE_TITLES[value]} against {axis_title(x)}{view_note}"
            + (f"<br><sup>{subtitle_text}</sup>" if subtitle_text else "")
        ),
        xaxis=dict(title=dict(text=axis_title(x)), type=x_scale, **value_ticks(_sorted_values(agg[x]), x_scale)),
        yaxis=dict(
            title=dict(text=VALUE_TITLES[value]),
            type=y_scale,
            **({"range": [-0.05, 1.12]} if value in FRACTION_COLUMNS else {}),
        ),
        height=460,
        meta=dict(kind="axis_curve", fit_result=fit_rows, fits_drawn=n_drawn, **meta),
    )
    label_log_axes(fig)
    return fig


# ---- members over epochs --------------------------------------------------------------------


def training_curves(
    metrics: pd.DataFrame,
    runs: pd.DataFrame,
    run_ids: Sequence[str],
    thresholds: Thresholds | None = None,
    view: str = "",
) -> go.Figure:
    """Train and test loss (log-log) and accuracy (log epochs) of chosen members, with each member's
    memorisation and generalisation epochs drawn as dotted vertical lines. The epochs come from
    analysis.derive.member_times with `thresholds`, so the marks always agree with the phase diagrams.
    Epoch 0 is not drawn (a log axis has no 0)."""
    th = thresholds or Thresholds()
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        raise AnalysisError("training_curves needs at least one run_id")
    chosen = metrics[metrics["run_id"].isin(run_ids)]
    found = set(chosen["run_id"].unique().tolist())  # not every run_id's: a report calls this per phase
    unknown = [r for r in run_ids if r not in found]
    if unknown:
        known = set(metrics["run_id"].unique().tolist())
        raise AnalysisError(
            f"run_id(s) {', '.join(unknown[:5])} have no metrics rows; "
            f"known run_ids include {', '.join(sorted(known)[:5])}"
        )
    times = member_times(chosen, runs[runs["run_id"].isin(run_ids)], th).set_index("run_id")
    vw = view_named(view)
    labels = member_labels(runs, run_ids)

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.1)
    marks: dict[str, dict] = {}
    loss_range = [np.inf, -np.inf]
    for k, run_id in enumerate(run_ids):
        color = MEMBER_COLORS[k % len(MEMBER_COLORS)]
        rows = chosen[(chosen["run_id"] == run_id) & (chosen["epoch"] > 0)].sort_values("epoch")
        label = labels[run_id]
        for split, dash in (("train", "dash"), ("test", "solid")):
            acc_col = vw.train_col if split == "train" else vw.test_col
            for col, metric in ((1, acc_col.replace("/acc", "/loss")), (2, acc_col)):
                if metric not in rows.columns or rows[metric].isna().all():
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=rows["epoch"],
                        y=rows[metric],
                        mode="lines",
                        name=f"{label} {metric}",
                        legendgroup=run_id,
                        line=dict(color=color, dash=dash, width=1.5 + 1.5 * (len(run_ids) - 1 - k)),
                        meta=dict(run_id=run_id, metric=metric),
                    ),
                    row=1,
                    col=col,
                )
                if col == 1:
                    positive = rows[metric][rows[metric] > 0]
                    if len(positive):
                        loss_range = [min(loss_range[0], positive.min()), max(loss_range[1], positive.max())]
        mem, grok = times.at[run_id, vw.column("mem_epoch")], times.at[run_id, vw.column("gen_epoch")]
        marks[run_id] = {"mem_epoch": _num(mem), "gen_epoch": _num(grok), "phase": times.at[run_id, vw.column("phase")]}
    for k, run_id in enumerate(run_ids):
        color = MEMBER_COLORS[k % len(MEMBER_COLORS)]
        for which, word in (("mem_epoch", "memorised"), ("gen_epoch", "generalised")):
            epoch = marks[run_id][which]
            if epoch is None or epoch <= 0:
                continue
            for col, span in ((1, loss_range), (2, [0, 1])):
                if not np.all(np.isfinite(span)):
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=[epoch, epoch],
                        y=span,
                        mode="lines",
                        name=f"{labels[run_id]} {word} @ {epoch:g}",
                        legendgroup=run_id,
                        showlegend=col == 2,
                        line=dict(color=color, dash="dot", width=1),
                        hovertemplate=f"{word} at epoch {epoch:g}<extra></extra>",
                        meta=dict(run_id=run_id, mark=which, epoch=epoch),
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(type="log", title=dict(text="epoch (log; epoch 0 not drawn)"))
    fig.update_yaxes(type="log", title="loss", row=1, col=1)
    fig.update_yaxes(title="accuracy", range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(
        title=dict(text="training curves (dashed: train, solid: test, dotted: memorised / generalised epoch)"),
        height=460,
        legend=dict(font=dict(size=10)),
        meta=dict(
            kind="training_curves",
            run_ids=run_ids,
            marks=marks,
            view=view,
            thresholds=dict(train_acc=th.train_acc, test_acc=th.test_acc),
        ),
    )
    label_log_axes(fig)
    return fig


def progress_curves(
    progress: pd.DataFrame, metrics: pd.DataFrame, run_ids: Sequence[str], columns: Sequence[str] | None = None
) -> go.Figure:
    """Progress measures (any `progress/...`-style column: fourier/restricted_loss, llc/mean, ...) over epochs,
    under the train and test loss of the same members, so hidden progress can be read against the loss."""
    run_ids = list(dict.fromkeys(run_ids))
    measure_columns = [c for c in progress.columns if c not in ("run_id", "epoch")]
    columns = list(columns) if columns is not None else measure_columns
    missing = [c for c in columns if c not in measure_columns]
    if missing:
        raise AnalysisError(
            f"progress column(s) {', '.join(missing)} not in the progress table; "
            f"it has: {', '.join(measure_columns) or 'none'}"
        )
    if not columns:
        raise AnalysisError("the progress table has no measure columns to draw")
    fig = make_subplots(
        rows=1 + len(columns),
        cols=1,
        shared_xaxes=True,
        subplot_titles=("train / test loss", *columns),
        vertical_spacing=0.06,
    )
    for k, run_id in enumerate(run_ids):
        color = MEMBER_COLORS[k % len(MEMBER_COLORS)]
        m = metrics[(metrics["run_id"] == run_id) & (metrics["epoch"] > 0)].sort_values("epoch")
        for metric, dash in (("train/loss", "dash"), ("test/loss", "solid")):
            fig.add_trace(
                go.Scatter(
                    x=m["epoch"],
                    y=m[metric],
                    mode="lines",
                    name=f"{run_id} {metric}",
                    legendgroup=run_id,
                    line=dict(color=color, dash=dash),
                ),
                row=1,
                col=1,
            )
        p = progress[(progress["run_id"] == run_id) & (progress["epoch"] > 0)].sort_values("epoch")
        for row, column in enumerate(columns, start=2):
            fig.add_trace(
                go.Scatter(
                    x=p["epoch"],
                    y=p[column],
                    mode="lines",
                    name=f"{run_id} {column}",
                    legendgroup=run_id,
                    showlegend=False,
                    line=dict(color=color),
                ),
                row=row,
                col=1,
            )
    fig.update_xaxes(type="log")
    fig.update_xaxes(title="epoch (log)", row=1 + len(columns), col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(
        title="progress measures",
        height=260 * (1 + len(columns)),
        meta=dict(kind="progress_curves", run_ids=run_ids, columns=columns),
    )
    label_log_axes(fig)
    return fig


# ---- helpers --------------------------------------------------------------------------------


def select(times: pd.DataFrame, where: Mapping[str, object] | None) -> pd.DataFrame:
    """The members whose `axis` equals `value` for every item of `where`, with clear errors otherwise."""
    if not where:
        return times
    data = times
    for axis, wanted in where.items():
        if axis not in data.columns:
            raise AnalysisError(
                f"where: '{axis}' is not a column; swept axes: "
                f"{', '.join(swept_axes(times, include_seed=True)) or 'none'}"
            )
        match = data[axis].map(_key) == _key(wanted)
        if not match.any():
            values = ", ".join(repr(v) for v in _sorted_values(data[axis].dropna()))
            raise AnalysisError(f"where: no member has {axis} = {wanted!r}; its values are {values}")
        data = data[match]
    return data


def member_labels(runs: pd.DataFrame, run_ids: Sequence[str]) -> dict[str, str]:
    """Short labels for members: the values of the swept axes (and the seed), else the run_id."""
    axes = swept_axes(runs, include_seed=True)
    indexed = runs[runs["run_id"].isin(run_ids)].drop_duplicates("run_id").set_index("run_id")  # the first row of each
    labels = {}
    for run_id in run_ids:
        if run_id in indexed.index and axes:
            labels[run_id] = " ".join(f"{_short(a)}={indexed.at[run_id, a]}" for a in axes)
        else:
            labels[run_id] = run_id
    return labels


def _short(axis: str) -> str:
    return {"train_fraction": "tf", "weight_decay": "wd", "addition_fraction": "add_frac"}.get(axis, axis)


def _split(agg: pd.DataFrame, groups: list[str]):
    if not groups:
        yield None, agg
        return
    for key, part in agg.groupby(groups, dropna=False, sort=True):
        yield (key[0] if isinstance(key, tuple) else key), part


def _key(value):
    """A hashable, comparable stand-in for an axis value (None and NaN alike; tuples stay tuples)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, list):
        return tuple(value)
    return value


def _sorted_values(values) -> list:
    distinct = list(dict.fromkeys(_key(v) for v in values))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct if v is not None)
    if numeric:
        return sorted(distinct, key=lambda v: (v is None, v if v is not None else 0))
    return sorted(distinct, key=lambda v: (v is None, str(v)))


def _plot_values(values: list, scale: str) -> list:
    return [str(v) for v in values] if scale == "category" else [_key(v) for v in values]


def _whole(values: list) -> np.ndarray:
    """The values as an object array, which plotly takes whole where it checks a list value by value (a
    second per 100k-member trace, most of a live rebuild's figures); the page's JSON is the same."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _num(value) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _nan_to_none(array) -> list:
    array = np.asarray(array, dtype="float64")
    return np.where(np.isfinite(array), array, np.array(None)).tolist()


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

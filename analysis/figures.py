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

from analysis.axes import axis_scale, axis_title, replicate_axes, require_axes, swept_axes
from analysis.derive import (
    FRACTION_COLUMNS,
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

PHASE_COLORS = {
    "comprehension": "#2ca02c",
    "grokking": "#1f77b4",
    "memorisation": "#ff7f0e",
    "confusion": "#d62728",
    "test_only": "#9467bd",
    "diverged": "#7f7f7f",
    "undecided": "#d9d9d9",
}
PHASE_LABELS = {
    "comprehension": "comp",
    "grokking": "grok",
    "memorisation": "mem",
    "confusion": "conf",
    "test_only": "test only",
    "diverged": "div",
    "undecided": "?",
}
VALUE_TITLES = {
    "gen_epoch": "generalisation (grokking) epoch",
    "mem_epoch": "memorisation epoch",
    "delay": "delay (grok − mem epochs)",
    "fraction_generalised": "fraction of replicates that generalised",
    "fraction_grokked": "fraction of replicates in the grokking phase",
    "phase": "phase of most replicates",
}
DIAGRAM_VALUES = (*TIME_COLUMNS, *FRACTION_COLUMNS, "phase")
FITS = ("power", "critical")
MEMBER_COLORS = qualitative.Plotly


# ---- phase diagrams -------------------------------------------------------------------------


def phase_diagram(times: pd.DataFrame, x: str, y: str, value: str = "gen_epoch", view: str = "",
                  where: Mapping[str, object] | None = None, title: str | None = None) -> go.Figure:
    """A heatmap over two swept axes of `value` per cell, with each cell's majority phase written in it.

    `times` is analysis.derive.member_times(...). Replicates (seeds) of a cell are aggregated; other swept
    axes are pooled unless fixed with `where` ({axis: value}), and the title says which were pooled.
    `value`: gen_epoch, mem_epoch or delay (the replicate median; colour on a log scale when the medians are
    positive and span a factor of 10 or more), fraction_generalised, fraction_grokked, or phase (colour = phase).
    Axes are log when their values are log-spaced (analysis.axes.axis_scale).
    """
    if value not in DIAGRAM_VALUES:
        raise AnalysisError(f"phase_diagram value must be one of {', '.join(DIAGRAM_VALUES)}, got '{value}'")
    if x == y:
        raise AnalysisError(f"phase_diagram needs two different axes, got x = y = '{x}'")
    data = select(times, where)
    require_axes(data, [x, y])
    agg = aggregate(data, by=[x, y], view=view)
    xs, ys = _sorted_values(agg[x]), _sorted_values(agg[y])
    x_scale, y_scale = axis_scale(xs), axis_scale(ys)
    cells = {(_key(a), _key(b)): row for a, b, row in zip(agg[x], agg[y], agg.itertuples(index=False))}
    columns = list(agg.columns)

    raw = np.full((len(ys), len(xs)), np.nan)
    text = [["" for _ in xs] for _ in ys]
    custom = [[["", 0, 0, "", None, None, None, None, None] for _ in xs] for _ in ys]
    resolution = _cell_resolution(data, x, y)
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            row = cells.get((_key(xv), _key(yv)))
            if row is None:
                continue
            get = dict(zip(columns, row)).get
            phase = get("phase")
            base = value if value in TIME_COLUMNS else "gen_epoch"
            median, q25, q75 = (_num(get(f"{base}_{s}")) for s in ("median", "q25", "q75"))
            text[i][j] = PHASE_LABELS[phase]
            custom[i][j] = [phase, int(get("n_members")), int(get("n_decided")), get("phase_counts"),
                            median, q25, q75, _num(get("fraction_generalised")),
                            resolution.get((_key(xv), _key(yv)))]
            if value in TIME_COLUMNS:
                raw[i, j] = median if median is not None else np.nan
            elif value == "phase":
                raw[i, j] = PHASES.index(phase)
            else:
                raw[i, j] = _num(get(value)) if _num(get(value)) is not None else np.nan

    heatmap = dict(x=_plot_values(xs, x_scale), y=_plot_values(ys, y_scale), text=text, texttemplate="%{text}",
                   customdata=custom, hoverongaps=False, xgap=1, ygap=1)
    color_scale = "linear"
    if value == "phase":
        n = len(PHASES)
        colorscale = [[edge, PHASE_COLORS[p]] for k, p in enumerate(PHASES) for edge in (k / n, (k + 1) / n)]
        heatmap.update(z=_nan_to_none(raw), zmin=-0.5, zmax=n - 0.5, colorscale=colorscale,
                       colorbar=dict(title="phase", tickvals=list(range(n)), ticktext=list(PHASES)))
    elif value in FRACTION_COLUMNS:
        heatmap.update(z=_nan_to_none(raw), zmin=0, zmax=1, colorscale="Viridis",
                       colorbar=dict(title=value.replace("_", " ")))
    else:
        finite = raw[np.isfinite(raw)]
        if len(finite) and finite.min() > 0 and finite.max() / finite.min() >= 10:
            color_scale = "log"
            z = np.log10(raw)
            lo, hi = math.floor(np.nanmin(z)), math.ceil(np.nanmax(z))
            ticks = list(range(lo, hi + 1))
            heatmap.update(z=_nan_to_none(z), colorscale="Viridis_r",
                           colorbar=dict(title=f"{value} (log)", tickvals=ticks,
                                         ticktext=[f"{10 ** t:g}" for t in ticks]))
        else:
            heatmap.update(z=_nan_to_none(raw), colorscale="Viridis_r", colorbar=dict(title=value))
    heatmap["hovertemplate"] = (
        f"{x}=%{{x}}<br>{y}=%{{y}}<br>phase: %{{customdata[0]}} (%{{customdata[3]}})"
        "<br>members: %{customdata[1]}, decided: %{customdata[2]}"
        f"<br>{'gen_epoch' if value not in TIME_COLUMNS else value} median %{{customdata[4]}}"
        " [q25 %{customdata[5]}, q75 %{customdata[6]}], ± eval interval %{customdata[8]}"
        "<br>fraction generalised: %{customdata[7]:.2f}<extra></extra>"
    )

    pooled = [a for a in replicate_axes(data) if a not in (x, y)]
    fig = go.Figure(go.Heatmap(**heatmap))
    view_note = f" — view: {view} ({view_named(view).description})" if view else ""
    subtitle = (f"pooled over {', '.join(pooled)}; " if pooled else "") + "cell text: phase of most replicates"
    fig.update_layout(
        title=dict(text=f"{title or VALUE_TITLES[value]}{view_note}<br><sup>{subtitle}</sup>"),
        xaxis=dict(title=axis_title(x), type=x_scale),
        yaxis=dict(title=axis_title(y), type=y_scale),
        height=480,
        meta=dict(kind="phase_diagram", x=x, y=y, value=value, view=view, color_scale=color_scale,
                  pooled_over=pooled, where=dict(where or {})),
    )
    return fig


def phase_scatter(times: pd.DataFrame, x: str, y: str, view: str = "",
                  where: Mapping[str, object] | None = None, title: str | None = None) -> go.Figure:
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
        custom = [[r, _num(g), _num(m)] for r, g, m in zip(part["run_id"], part[grok_col], part[mem_col])]
        fig.add_trace(go.Scatter(
            x=[_key(v) for v in part[x]], y=[_key(v) for v in part[y]], mode="markers", name=phase,
            marker=dict(color=PHASE_COLORS[phase], size=9, line=dict(width=0.5, color="#333")), customdata=custom,
            hovertemplate=(f"{x}=%{{x}}<br>{y}=%{{y}}<br>{phase}<br>grok epoch %{{customdata[1]}}, memorised "
                           "%{customdata[2]}<br>%{customdata[0]}<extra></extra>")))
    view_note = f" — view: {view} ({vw.description})" if view else ""
    fig.update_layout(
        title=dict(text=f"{title or 'phase of each member'}{view_note}<br><sup>{len(data)} members, one point "
                        "each (sampled axes: no grid cells to aggregate)</sup>"),
        xaxis=dict(title=axis_title(x), type=_sample_scale(data[x])),
        yaxis=dict(title=axis_title(y), type=_sample_scale(data[y])),
        height=480, legend=dict(title="phase"),
        meta=dict(kind="phase_scatter", x=x, y=y, view=view, members=len(data), where=dict(where or {})),
    )
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


def axis_curve(times: pd.DataFrame, x: str, value: str = "gen_epoch", fit: str | None = None, view: str = "",
               color: str | None = None, where: Mapping[str, object] | None = None) -> go.Figure:
    """`value` against one swept axis: replicate median with q25–q75 error bars (times) or the fraction, one
    line per value of `color` (another axis) if given, every member as a faint dot, and optionally a fit:

    - fit="power": log-log least squares of the median (Omnigrok: grokking time ∝ weight_decay^-1);
    - fit="critical": the axis value where fraction_generalised crosses 0.5 (critical train fraction).
    """
    if value not in (*TIME_COLUMNS, *FRACTION_COLUMNS):
        raise AnalysisError(f"axis_curve value must be one of {', '.join((*TIME_COLUMNS, *FRACTION_COLUMNS))}, "
                            f"got '{value}'")
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
    x_scale = axis_scale(agg[x])
    vw = view_named(view)

    fig = go.Figure()
    y_values: list[float] = []
    for k, (key, part) in enumerate(_split(agg, groups)):
        part = part.sort_values(x)
        name = f"{color}={key}" if color else "median of replicates" if value in TIME_COLUMNS else value
        line_color = MEMBER_COLORS[k % len(MEMBER_COLORS)]
        xs = _plot_values(list(part[x]), x_scale)
        if value in TIME_COLUMNS:
            median = part[f"{value}_median"].to_numpy(dtype="float64")
            err_hi = part[f"{value}_q75"].to_numpy(dtype="float64") - median
            err_lo = median - part[f"{value}_q25"].to_numpy(dtype="float64")
            fig.add_trace(go.Scatter(
                x=xs, y=_nan_to_none(median), mode="lines+markers", name=name, line=dict(color=line_color),
                error_y=dict(type="data", array=_nan_to_none(err_hi), arrayminus=_nan_to_none(err_lo)),
                customdata=np.stack([part[f"{value}_n"], part["n_members"]], axis=-1),
                hovertemplate=f"{x}=%{{x}}<br>median {value} %{{y}}<br>reached by %{{customdata[0]}} of "
                              "%{customdata[1]}<extra></extra>",
                meta=dict(role="median", group=_jsonable(key)),
            ))
            y_values.extend(median[np.isfinite(median)])
            members = data if not color else data[data[color].map(_key) == _key(key)]
            member_values = members[vw.column(value)]
            fig.add_trace(go.Scatter(
                x=_plot_values(list(members[x][member_values.notna()]), x_scale),
                y=member_values.dropna().to_numpy(), mode="markers", showlegend=False, opacity=0.35,
                marker=dict(size=5, color=line_color), name=f"members {name}",
                hovertext=list(members["run_id"][member_values.notna()]), meta=dict(role="members"),
            ))
        else:
            fraction = part[value].to_numpy(dtype="float64")
            fig.add_trace(go.Scatter(
                x=xs, y=_nan_to_none(fraction), mode="lines+markers", name=name, line=dict(color=line_color),
                customdata=np.stack([part["n_decided"], part["n_members"]], axis=-1),
                hovertemplate=f"{x}=%{{x}}<br>{value} %{{y:.2f}}<br>of %{{customdata[0]}} decided, "
                              "%{customdata[1]} members<extra></extra>",
                meta=dict(role="median", group=_jsonable(key)),
            ))

    fit_rows: list[dict] = []
    if fit == "power":
        result = power_law_fit(data, x=x, value=value, by=groups, view=view)
        for k, row in enumerate(result.to_dict("records")):
            fit_rows.append(_jsonable(row))
            if not np.isfinite(row["exponent"]):
                continue
            grid = (np.geomspace(row["x_min"], row["x_max"], 50) if row["x_min"] > 0
                    else np.linspace(row["x_min"], row["x_max"], 50))
            label = (f"{color}={row[color]}: " if color else "") + f"fit ∝ {x}^{row['exponent']:.3g}"
            fig.add_trace(go.Scatter(
                x=grid, y=row["prefactor"] * grid ** row["exponent"], mode="lines", name=label,
                line=dict(dash="dash", color=MEMBER_COLORS[k % len(MEMBER_COLORS)]),
                meta=dict(role="fit", exponent=row["exponent"], prefactor=row["prefactor"], r2=row["r2"]),
            ))
    elif fit == "critical":
        result = critical_train_fraction(data, axis=x, by=groups, view=view)
        for k, row in enumerate(result.to_dict("records")):
            fit_rows.append(_jsonable(row))
            if not np.isfinite(row["critical"]):
                continue
            label = (f"{color}={row[color]}: " if color else "") + f"critical {x} ≈ {row['critical']:.3g}"
            span = [0, 1] if value in FRACTION_COLUMNS else [min(y_values, default=1), max(y_values, default=1)]
            fig.add_trace(go.Scatter(
                x=[row["critical"], row["critical"]], y=span, mode="lines", name=label,
                line=dict(dash="dash", color=MEMBER_COLORS[k % len(MEMBER_COLORS)]),
                meta=dict(role="fit", critical=row["critical"], lower=row["lower"], upper=row["upper"]),
            ))

    positive = [v for v in y_values if v > 0]
    y_scale = "log" if value in TIME_COLUMNS and positive and max(positive) / min(positive) >= 10 else "linear"
    pooled = [a for a in replicate_axes(data) if a not in (x, color)]
    view_note = f" — view: {view}" if view else ""
    fig.update_layout(
        title=dict(text=f"{VALUE_TITLES[value]} against {axis_title(x)}{view_note}"
                        + (f"<br><sup>pooled over {', '.join(pooled)}</sup>" if pooled else "")),
        xaxis=dict(title=axis_title(x), type=x_scale),
        yaxis=dict(title=VALUE_TITLES[value], type=y_scale,
                   **({"range": [-0.05, 1.05]} if value in FRACTION_COLUMNS else {})),
        height=440,
        meta=dict(kind="axis_curve", x=x, value=value, view=view, fit=fit, fit_result=fit_rows, color=color,
                  pooled_over=pooled),
    )
    return fig


# ---- members over epochs --------------------------------------------------------------------


def training_curves(metrics: pd.DataFrame, runs: pd.DataFrame, run_ids: Sequence[str],
                    thresholds: Thresholds | None = None, view: str = "") -> go.Figure:
    """Train and test loss (log-log) and accuracy (log epochs) of chosen members, with each member's
    memorisation and generalisation epochs drawn as dotted vertical lines. The epochs come from
    analysis.derive.member_times with `thresholds`, so the marks always agree with the phase diagrams.
    Epoch 0 is not drawn (a log axis has no 0)."""
    th = thresholds or Thresholds()
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        raise AnalysisError("training_curves needs at least one run_id")
    known = set(metrics["run_id"])
    unknown = [r for r in run_ids if r not in known]
    if unknown:
        raise AnalysisError(f"run_id(s) {', '.join(unknown[:5])} have no metrics rows; "
                            f"known run_ids include {', '.join(sorted(known)[:5])}")
    chosen = metrics[metrics["run_id"].isin(run_ids)]
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
                fig.add_trace(go.Scatter(
                    x=rows["epoch"], y=rows[metric], mode="lines", name=f"{label} {metric}",
                    legendgroup=run_id, line=dict(color=color, dash=dash), meta=dict(run_id=run_id, metric=metric),
                ), row=1, col=col)
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
                fig.add_trace(go.Scatter(
                    x=[epoch, epoch], y=span, mode="lines", name=f"{labels[run_id]} {word} @ {epoch:g}",
                    legendgroup=run_id, showlegend=col == 2, line=dict(color=color, dash="dot", width=1),
                    hovertemplate=f"{word} at epoch {epoch:g}<extra></extra>",
                    meta=dict(run_id=run_id, mark=which, epoch=epoch),
                ), row=1, col=col)
    fig.update_xaxes(type="log", title="epoch (log; epoch 0 not drawn)")
    fig.update_yaxes(type="log", title="loss", row=1, col=1)
    fig.update_yaxes(title="accuracy", range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(
        title=dict(text="training curves (dashed: train, solid: test, dotted: memorised / generalised epoch)"),
        height=460, legend=dict(font=dict(size=10)),
        meta=dict(kind="training_curves", run_ids=run_ids, marks=marks, view=view,
                  thresholds=dict(train_acc=th.train_acc, test_acc=th.test_acc)),
    )
    return fig


def progress_curves(progress: pd.DataFrame, metrics: pd.DataFrame, run_ids: Sequence[str],
                    columns: Sequence[str] | None = None) -> go.Figure:
    """Progress measures (any `progress/...`-style column: fourier/restricted_loss, llc/mean, ...) over epochs,
    under the train and test loss of the same members, so hidden progress can be read against the loss."""
    run_ids = list(dict.fromkeys(run_ids))
    measure_columns = [c for c in progress.columns if c not in ("run_id", "epoch")]
    columns = list(columns) if columns is not None else measure_columns
    missing = [c for c in columns if c not in measure_columns]
    if missing:
        raise AnalysisError(f"progress column(s) {', '.join(missing)} not in the progress table; "
                            f"it has: {', '.join(measure_columns) or 'none'}")
    if not columns:
        raise AnalysisError("the progress table has no measure columns to draw")
    fig = make_subplots(rows=1 + len(columns), cols=1, shared_xaxes=True,
                        subplot_titles=("train / test loss", *columns), vertical_spacing=0.06)
    for k, run_id in enumerate(run_ids):
        color = MEMBER_COLORS[k % len(MEMBER_COLORS)]
        m = metrics[(metrics["run_id"] == run_id) & (metrics["epoch"] > 0)].sort_values("epoch")
        for metric, dash in (("train/loss", "dash"), ("test/loss", "solid")):
            fig.add_trace(go.Scatter(x=m["epoch"], y=m[metric], mode="lines", name=f"{run_id} {metric}",
                                     legendgroup=run_id, line=dict(color=color, dash=dash)), row=1, col=1)
        p = progress[(progress["run_id"] == run_id) & (progress["epoch"] > 0)].sort_values("epoch")
        for row, column in enumerate(columns, start=2):
            fig.add_trace(go.Scatter(x=p["epoch"], y=p[column], mode="lines", name=f"{run_id} {column}",
                                     legendgroup=run_id, showlegend=False, line=dict(color=color)), row=row, col=1)
    fig.update_xaxes(type="log")
    fig.update_xaxes(title="epoch (log)", row=1 + len(columns), col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(title="progress measures", height=260 * (1 + len(columns)),
                      meta=dict(kind="progress_curves", run_ids=run_ids, columns=columns))
    return fig


# ---- helpers --------------------------------------------------------------------------------


def select(times: pd.DataFrame, where: Mapping[str, object] | None) -> pd.DataFrame:
    """The members whose `axis` equals `value` for every item of `where`, with clear errors otherwise."""
    if not where:
        return times
    data = times
    for axis, wanted in where.items():
        if axis not in data.columns:
            raise AnalysisError(f"where: '{axis}' is not a column; swept axes: "
                                f"{', '.join(swept_axes(times, include_seed=True)) or 'none'}")
        match = data[axis].map(_key) == _key(wanted)
        if not match.any():
            values = ", ".join(repr(v) for v in _sorted_values(data[axis].dropna()))
            raise AnalysisError(f"where: no member has {axis} = {wanted!r}; its values are {values}")
        data = data[match]
    return data


def member_labels(runs: pd.DataFrame, run_ids: Sequence[str]) -> dict[str, str]:
    """Short labels for members: the values of the swept axes (and the seed), else the run_id."""
    axes = swept_axes(runs, include_seed=True)
    indexed = runs.drop_duplicates("run_id").set_index("run_id")
    labels = {}
    for run_id in run_ids:
        if run_id in indexed.index and axes:
            labels[run_id] = " ".join(f"{_short(a)}={indexed.at[run_id, a]}" for a in axes)
        else:
            labels[run_id] = run_id
    return labels


def _short(axis: str) -> str:
    return {"train_fraction": "tf", "weight_decay": "wd", "addition_fraction": "add_frac"}.get(axis, axis)


def _cell_resolution(data: pd.DataFrame, x: str, y: str) -> dict:
    if "resolution" not in data.columns:
        return {}
    res = data.groupby([data[x].map(_key), data[y].map(_key)], dropna=False)["resolution"].max()
    return {key: _num(v) for key, v in res.items()}


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
    return np.where(np.isfinite(array), array, None).tolist()


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

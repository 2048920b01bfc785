"""Figures of the progress measures (the `progress/` table; columns documented in grokcore.progress).

Each function takes DataFrames (a sweep's `progress`, `metrics`, `runs`) and returns a `go.Figure`;
none shows, saves or prints. What a figure shows can be read back from it: `layout.meta` names the
kind, the members and every derived number (crossing epochs, the frequency a circle is ordered by,
the cells of a diagram).

- `loss_and_progress`: train, test, restricted and excluded loss of members on one log axis, with the
  epoch each first falls below a threshold marked: restricted loss falls before test loss.
- `llc_curves`: the LLC (mean over chains, band of one std) over epochs under train and test loss
  (rows without an LLC estimate are skipped).
- `frequency_spectrum`: the embedding's Fourier norms per frequency over epochs (heatmap), with each
  epoch's key frequencies marked; `frequency_bars`: the spectrum at one epoch for several members.
- `embedding_circle`: the operand embeddings on their first two principal components at a few
  epochs, joined in the order t * k mod p of the strongest key frequency k: the circle.
- `progress_phase_diagram`: a heatmap over two swept axes of any progress column (its value at an
  epoch, or the first epoch it falls below a threshold), the median over the members of each cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from analysis.axes import axis_scale, axis_title, label_log_axes
from analysis.derive import survival_quantiles
from analysis.errors import AnalysisError
from grokcore.progress import columns as col

COLORS = qualitative.Plotly
LOSS_STYLES = (  # (table, column, dash, label)
    ("metrics", "train/loss", "dash", "train"),
    ("metrics", "test/loss", "solid", "test"),
    ("progress", col.RESTRICTED_LOSS, "dot", "restricted"),
    ("progress", col.EXCLUDED_LOSS, "dashdot", "excluded"),
)


# ---- helpers ----------------------------------------------------------------------------------------


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        have = ", ".join(c for c in table.columns if c not in ("run_id", "epoch"))
        raise AnalysisError(f"{what} has no column(s) {', '.join(missing)}; it has: {have or 'none'}")


def _members(table: pd.DataFrame, run_ids: Sequence[str], what: str) -> list[str]:
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        raise AnalysisError(f"{what} needs at least one run_id")
    known = set(table["run_id"].unique().tolist()) if "run_id" in table.columns else set()
    unknown = [r for r in run_ids if r not in known]
    if unknown:
        raise AnalysisError(
            f"run_id(s) {', '.join(unknown[:5])} have no progress rows; "
            f"members with progress rows include {', '.join(sorted(known)[:5]) or 'none'}"
        )
    return run_ids


def _rows(table: pd.DataFrame, run_id: str) -> pd.DataFrame:
    return table[(table["run_id"] == run_id) & (table["epoch"] > 0)].sort_values("epoch")


def first_epoch_below(rows: pd.DataFrame, column: str, threshold: float) -> float | None:
    """The first epoch (rows sorted by epoch) at which `column` is at or below `threshold`; None if never."""
    hit = rows[rows[column] <= threshold]
    return float(hit["epoch"].iloc[0]) if len(hit) else None


def _num(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _slots(row: pd.Series, prefix: str) -> list[int]:
    out = []
    for i in range(col.MAX_KEY_FREQS):
        v = _num(row.get(f"{prefix}{i}"))
        if v is not None:
            out.append(int(v))
    return out


# ---- losses and LLC over epochs -------------------------------------------------------------------------


def loss_and_progress(
    progress: pd.DataFrame,
    metrics: pd.DataFrame,
    run_ids: Sequence[str],
    threshold: float = 0.1,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Train (dashed), test (solid), restricted (dotted) and excluded (dash-dot) loss of each member on one
    log-log plot, as Nanda et al. draw them, with a marker where each first falls to `threshold` or below.
    `layout.meta["crossings"][run_id]` holds those epochs and `restricted_lead`: test epoch minus
    restricted epoch (positive when restricted loss falls first)."""
    run_ids = _members(progress, run_ids, "loss_and_progress")
    _require(progress, [col.RESTRICTED_LOSS, col.EXCLUDED_LOSS], "the progress table")
    _require(metrics, ["train/loss", "test/loss"], "the metrics table")
    tables = {"metrics": metrics, "progress": progress}
    fig = go.Figure()
    crossings: dict[str, dict] = {}
    for k, run_id in enumerate(run_ids):
        color = COLORS[k % len(COLORS)]
        label = (labels or {}).get(run_id, run_id)
        crossings[run_id] = {}
        for table, column, dash, word in LOSS_STYLES:
            rows = _rows(tables[table], run_id)
            if rows.empty or rows[column].isna().all():
                crossings[run_id][word] = None
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"],
                    y=rows[column],
                    mode="lines",
                    name=f"{label} {word}",
                    legendgroup=run_id,
                    line=dict(color=color, dash=dash),
                    meta=dict(run_id=run_id, column=column),
                )
            )
            epoch = first_epoch_below(rows, column, threshold)
            crossings[run_id][word] = epoch
            if epoch is not None:
                y = float(rows.loc[rows["epoch"] == epoch, column].iloc[0])
                fig.add_trace(
                    go.Scatter(
                        x=[epoch],
                        y=[max(y, 1e-12)],
                        mode="markers",
                        showlegend=False,
                        legendgroup=run_id,
                        marker=dict(color=color, size=9, symbol="circle-open"),
                        hovertemplate=f"{word} loss <= {threshold:g} at epoch {epoch:g}<extra></extra>",
                        meta=dict(run_id=run_id, column=column, crossing=epoch),
                    )
                )
        test, restricted = crossings[run_id].get("test"), crossings[run_id].get("restricted")
        crossings[run_id]["restricted_lead"] = (
            (test - restricted) if test is not None and restricted is not None else None
        )
    fig.update_xaxes(type="log", title="epoch (log)")
    fig.update_yaxes(type="log", title="cross-entropy loss (log)")
    fig.update_layout(
        title=f"train (dashed), test (solid), restricted (dotted), excluded (dash-dot) loss; "
        f"circles: first epoch at or below {threshold:g}",
        height=480,
        meta=dict(kind="loss_and_progress", run_ids=run_ids, threshold=threshold, crossings=crossings),
    )
    label_log_axes(fig)
    return fig


def llc_curves(
    progress: pd.DataFrame, metrics: pd.DataFrame, run_ids: Sequence[str], labels: Mapping[str, str] | None = None
) -> go.Figure:
    """The LLC estimate (mean over chains, a band of +- one std) over epochs, under the train (dashed) and
    test (solid) loss of the same members."""
    run_ids = _members(progress, run_ids, "llc_curves")
    _require(progress, [col.LLC_MEAN, col.LLC_STD], "the progress table")
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("train / test loss", "local learning coefficient (mean ± std over chains)"),
    )
    for k, run_id in enumerate(run_ids):
        color = COLORS[k % len(COLORS)]
        label = (labels or {}).get(run_id, run_id)
        m = _rows(metrics, run_id)
        for column, dash in (("train/loss", "dash"), ("test/loss", "solid")):
            if column in m.columns:
                fig.add_trace(
                    go.Scatter(
                        x=m["epoch"],
                        y=m[column],
                        mode="lines",
                        name=f"{label} {column}",
                        legendgroup=run_id,
                        line=dict(color=color, dash=dash),
                    ),
                    row=1,
                    col=1,
                )
        p = _rows(progress, run_id)
        p = p[p[col.LLC_MEAN].notna()]  # the LLC is estimated at every llc_every-th progress epoch only
        mean, std = p[col.LLC_MEAN].to_numpy(float), p[col.LLC_STD].fillna(0).to_numpy(float)
        epochs = p["epoch"].to_numpy(float)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([epochs, epochs[::-1]]),
                y=np.concatenate([mean + std, (mean - std)[::-1]]),
                fill="toself",
                fillcolor=color,
                opacity=0.2,
                line=dict(width=0),
                showlegend=False,
                legendgroup=run_id,
                hoverinfo="skip",
                meta=dict(run_id=run_id, band=True),
            ),
            row=2,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=mean,
                mode="lines+markers",
                name=f"{label} llc",
                legendgroup=run_id,
                line=dict(color=color),
                meta=dict(run_id=run_id, column=col.LLC_MEAN),
            ),
            row=2,
            col=1,
        )
    fig.update_xaxes(type="log")
    fig.update_xaxes(title="epoch (log)", row=2, col=1)
    fig.update_yaxes(type="log", title="loss", row=1, col=1)
    fig.update_yaxes(title="LLC", row=2, col=1)
    fig.update_layout(
        title="local learning coefficient over training", height=640, meta=dict(kind="llc_curves", run_ids=run_ids)
    )
    label_log_axes(fig)
    return fig


# ---- Fourier spectra ---------------------------------------------------------------------------------


def _norm_columns(progress: pd.DataFrame) -> list[tuple[int, str]]:
    found = sorted(
        (int(c[len(col.EMBED_NORM_PREFIX) :]), c)
        for c in progress.columns
        if c.startswith(col.EMBED_NORM_PREFIX) and c[len(col.EMBED_NORM_PREFIX) :].isdigit()
    )
    if not found:
        raise AnalysisError(
            f"the progress table has no {col.EMBED_NORM_PREFIX}<k> columns (Fourier measures are "
            "recorded for modular tasks only)"
        )
    return found


def frequency_spectrum(progress: pd.DataFrame, run_id: str, label: str | None = None) -> go.Figure:
    """Heatmap of the embedding's Fourier norm per frequency (y) and epoch (x) of one member, each epoch
    normalised by its largest norm; that epoch's key frequencies are marked."""
    (run_id,) = _members(progress, [run_id], "frequency_spectrum")
    norm_cols = _norm_columns(progress)
    rows = _rows(progress, run_id)
    rows = rows[rows[[c for _, c in norm_cols]].notna().any(axis=1)]
    if rows.empty:
        raise AnalysisError(f"{run_id}: no Fourier norms recorded")
    freqs = [k for k, _ in norm_cols]
    z = rows[[c for _, c in norm_cols]].to_numpy(float)  # (epoch, freq)
    z = z / np.nanmax(z, axis=1, keepdims=True)
    epochs = rows["epoch"].tolist()
    key_x, key_y = [], []
    keys_by_epoch = {}
    for epoch, (_, row) in zip(epochs, rows.iterrows(), strict=True):
        keys = _slots(row, col.KEY_FREQ_PREFIX)
        keys_by_epoch[int(epoch)] = keys
        key_x += [str(int(epoch))] * len(keys)
        key_y += keys
    fig = go.Figure(
        go.Heatmap(
            x=[str(int(e)) for e in epochs],
            y=freqs,
            z=z.T,
            colorscale="Viridis",
            colorbar=dict(title="norm / max"),
            hovertemplate="epoch %{x}, k=%{y}: %{z:.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=key_x,
            y=key_y,
            mode="markers",
            name="key frequency",
            marker=dict(symbol="x", size=7, color="white", line=dict(width=1, color="black")),
        )
    )
    fig.update_xaxes(title="epoch", type="category")
    fig.update_yaxes(title="frequency k")
    fig.update_layout(
        title=f"embedding Fourier spectrum of {label or run_id} (x: key frequencies)",
        height=520,
        meta=dict(
            kind="frequency_spectrum", run_id=run_id, epochs=[int(e) for e in epochs], key_frequencies=keys_by_epoch
        ),
    )
    label_log_axes(fig)
    return fig


def frequency_bars(
    progress: pd.DataFrame, run_ids: Sequence[str], epoch: int | None = None, labels: Mapping[str, str] | None = None
) -> go.Figure:
    """The embedding's Fourier norm per frequency of each member at `epoch` (None: each member's last
    progress epoch), key frequencies outlined."""
    run_ids = _members(progress, run_ids, "frequency_bars")
    norm_cols = _norm_columns(progress)
    fig = go.Figure()
    shown: dict[str, dict] = {}
    for k, run_id in enumerate(run_ids):
        rows = _rows(progress, run_id)
        if epoch is not None:
            rows = rows[rows["epoch"] <= epoch]
        if rows.empty:
            raise AnalysisError(f"{run_id}: no progress row at or before epoch {epoch}")
        row = rows.iloc[-1]
        keys = _slots(row, col.KEY_FREQ_PREFIX)
        norms = [_num(row[c]) for _, c in norm_cols]
        freqs = [f for f, _ in norm_cols]
        color = COLORS[k % len(COLORS)]
        fig.add_trace(
            go.Bar(
                x=freqs,
                y=norms,
                name=f"{(labels or {}).get(run_id, run_id)} @ {int(row['epoch'])}",
                marker=dict(color=color, line=dict(width=[2.5 if f in keys else 0 for f in freqs], color="black")),
                meta=dict(run_id=run_id, epoch=int(row["epoch"]), key_frequencies=keys),
            )
        )
        shown[run_id] = {"epoch": int(row["epoch"]), "key_frequencies": keys}
    fig.update_xaxes(title="frequency k", dtick=max(1, len(norm_cols) // 20))
    fig.update_yaxes(title="norm of the embedding's (cos k, sin k) part")
    fig.update_layout(
        title="key-frequency spectra of the embedding (outlined: key frequencies)",
        barmode="group",
        height=420,
        meta=dict(kind="frequency_bars", run_ids=run_ids, shown=shown),
    )
    label_log_axes(fig)
    return fig


# ---- the embedding circle ----------------------------------------------------------------------------


def _coord_tokens(progress: pd.DataFrame) -> list[int]:
    prefix = col.PC_PREFIXES[0]
    tokens = sorted(
        int(c[len(prefix) :]) for c in progress.columns if c.startswith(prefix) and c[len(prefix) :].isdigit()
    )
    if not tokens:
        raise AnalysisError(
            "the progress table has no embed/pc0_<t> columns (ProgressSettings.embed_coords was off, "
            "or operand_range exceeds the stored maximum)"
        )
    return tokens


def embedding_circle(
    progress: pd.DataFrame,
    run_id: str,
    epochs: Sequence[int] | None = None,
    p: int | None = None,
    label: str | None = None,
) -> go.Figure:
    """Each operand token t on the embedding's first two principal components, one panel per epoch
    (default: up to four epochs spread over the recorded ones, the last included). Tokens are coloured
    by t; when the member has a key frequency k, they are joined in the order of t * k mod p (p: the
    modulus; default the number of tokens), which traces the circle of a grokked adder."""
    (run_id,) = _members(progress, [run_id], "embedding_circle")
    tokens = _coord_tokens(progress)
    rows = _rows(progress, run_id)
    if rows.empty:
        raise AnalysisError(f"{run_id}: no progress rows after epoch 0")
    available = rows["epoch"].astype(int).tolist()
    if epochs is None:
        picks = np.unique(np.linspace(0, len(available) - 1, min(4, len(available))).round().astype(int))
        epochs = [available[i] for i in picks]
    missing = [e for e in epochs if e not in available]
    if missing:
        raise AnalysisError(f"{run_id}: no progress row at epoch(s) {missing}; recorded: {available}")
    modulus = p or len(tokens)
    fig = make_subplots(
        rows=1, cols=len(epochs), subplot_titles=[f"epoch {e}" for e in epochs], horizontal_spacing=0.04
    )
    order_by: dict[int, int | None] = {}
    for i, epoch in enumerate(epochs, start=1):
        row = rows[rows["epoch"] == epoch].iloc[-1]
        x = np.array([_num(row.get(col.pc_coord(0, t))) or 0.0 for t in tokens])
        y = np.array([_num(row.get(col.pc_coord(1, t))) or 0.0 for t in tokens])
        keys = _slots(row, col.KEY_FREQ_PREFIX)
        k = keys[0] if keys else None
        order_by[int(epoch)] = k
        if k is not None:
            order = sorted(range(len(tokens)), key=lambda j: (tokens[j] * k) % modulus)
            order.append(order[0])
            fig.add_trace(
                go.Scatter(
                    x=x[order],
                    y=y[order],
                    mode="lines",
                    line=dict(color="lightgray", width=1),
                    showlegend=False,
                    hoverinfo="skip",
                    meta=dict(epoch=int(epoch), order_freq=k),
                ),
                row=1,
                col=i,
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                showlegend=False,
                text=[str(t) for t in tokens],
                marker=dict(
                    color=tokens, colorscale="HSV", size=7, showscale=i == len(epochs), colorbar=dict(title="token")
                ),
                hovertemplate="token %{text}: (%{x:.3f}, %{y:.3f})<extra></extra>",
                meta=dict(epoch=int(epoch), pca_var=[_num(row.get(col.pca_var(j))) for j in range(col.N_PCA)]),
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(title="PC 1", row=1, col=i)
        fig.update_yaxes(title="PC 2" if i == 1 else None, scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_layout(
        title=f"embedding on its first two principal components: {label or run_id}<br>"
        "<sup>joined in the order t·k mod p of the strongest key frequency k</sup>",
        height=420,
        width=max(500, 360 * len(epochs)),
        meta=dict(
            kind="embedding_circle",
            run_id=run_id,
            epochs=[int(e) for e in epochs],
            order_freq=order_by,
            modulus=modulus,
        ),
    )
    label_log_axes(fig)
    return fig


# ---- phase diagrams of progress measures ------------------------------------------------------------


def member_progress_values(
    progress: pd.DataFrame, column: str, epoch: int | None = None, below: float | None = None
) -> pd.Series:
    """One value per run_id: `column` in the member's last progress row at or before `epoch` (None: its last
    row), or, with `below`, the first epoch at which `column` is at or below that value (NaN: never)."""
    _require(progress, [column], "the progress table")
    rows = progress[progress["epoch"] > 0].sort_values(["run_id", "epoch"])
    if below is not None:
        hit = rows[rows[column] <= below]
        first = hit.groupby("run_id")["epoch"].first().astype(float)
        return first.reindex(rows["run_id"].unique()).rename(f"first epoch {column} <= {below:g}")
    if epoch is not None:
        rows = rows[rows["epoch"] <= epoch]
    return rows.groupby("run_id")[column].last().rename(column)


def progress_phase_diagram(
    progress: pd.DataFrame,
    runs: pd.DataFrame,
    x: str,
    y: str,
    column: str,
    epoch: int | None = None,
    below: float | None = None,
    where: Mapping[str, object] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Heatmap over two swept config axes of a progress measure: per member its value at `epoch` (None: at
    its last progress row) or, with `below`, the first epoch it falls to that value; each cell shows the
    median over its members (seeds and any axis not fixed by `where`), with the member count as text."""
    values = member_progress_values(progress, column, epoch, below)
    for axis in (x, y, *(where or {})):
        if axis not in runs.columns:
            raise AnalysisError(f"'{axis}' is not a column of the runs table")
    table = runs.drop_duplicates("run_id").set_index("run_id")
    joined = table.join(values, how="inner")
    for axis, wanted in (where or {}).items():
        joined = joined[joined[axis] == wanted]
    if joined.empty:
        raise AnalysisError(
            f"no member has both a runs row and progress column {column}" + (f" with {dict(where)}" if where else "")
        )
    value_name = values.name
    if below is not None:
        # A first epoch is a time: members that never fell below are censored at their last progress row, not
        # dropped (analysis.derive.survival_quantiles), and the text says how many got there.
        last = progress[progress["epoch"] > 0].groupby("run_id")["epoch"].max()
        joined["__reached"] = joined[value_name].notna()
        joined["__duration"] = joined[value_name].fillna(joined.index.to_series().map(last))

        def censored(group: pd.DataFrame) -> pd.Series:
            median = survival_quantiles(
                group["__duration"].to_numpy(), group["__reached"].to_numpy(), quantiles=(0.5,)
            )[0]
            return pd.Series(
                {
                    "median": median,
                    "count": len(group),
                    "reached": int(group["__reached"].sum()),
                    "censored_at": group.loc[~group["__reached"], "__duration"].max(),
                }
            )

        cells = joined.groupby([x, y], dropna=False)[["__duration", "__reached"]].apply(censored).reset_index()
    else:
        cells = joined.groupby([x, y], dropna=False)[value_name].agg(["median", "count"]).reset_index()
    xs = sorted(cells[x].unique(), key=_sort_key)
    ys = sorted(cells[y].unique(), key=_sort_key)
    z = np.full((len(ys), len(xs)), np.nan)
    counts = np.zeros((len(ys), len(xs)), dtype=int)
    text = [["" for _ in xs] for _ in ys]
    for _, cell in cells.iterrows():
        i, j = ys.index(cell[y]), xs.index(cell[x])
        z[i, j], counts[i, j] = cell["median"], cell["count"]
        shown_value = "" if not np.isfinite(z[i, j]) else f"{z[i, j]:.3g}"
        if below is None:
            text[i][j] = shown_value + f" (n={counts[i, j]})"
        else:
            if not shown_value and pd.notna(cell["censored_at"]):
                shown_value = f"> {cell['censored_at']:g}"
            text[i][j] = f"{shown_value} ({int(cell['reached'])}/{counts[i, j]} reached)"
    log_color = (
        below is not None
        and np.nanmin(z, initial=np.inf) > 0
        and np.nanmax(z, initial=0) >= 10 * np.nanmin(z, initial=np.inf)
    )
    shown = np.log10(z) if log_color else z
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            z=shown,
            text=text,
            texttemplate="%{text}",
            customdata=z,
            colorscale="Viridis",
            colorbar=dict(title=("log10 " if log_color else "") + "median"),
            hovertemplate=f"{x}=%{{x}}, {y}=%{{y}}: %{{customdata:.4g}}<extra></extra>",
        )
    )
    pooled = list(_swept(table, exclude=(x, y, "seed", *(where or {}))))
    what = (
        f"{value_name} (censored median: members that never got there count)"
        if below is not None
        else f"{column} at " + (f"epoch <= {epoch}" if epoch is not None else "the last epoch")
    )
    fig.update_xaxes(title=axis_title(x), type="category")
    fig.update_yaxes(title=axis_title(y), type="category")
    fig.update_layout(
        title=title or f"{what}: median per cell" + (f" (pooled over {', '.join(pooled)})" if pooled else ""),
        height=480,
        meta=dict(
            kind="progress_phase_diagram",
            x=x,
            y=y,
            column=column,
            epoch=epoch,
            below=below,
            x_values=[_plain(v) for v in xs],
            y_values=[_plain(v) for v in ys],
            x_scale=axis_scale(xs),
            y_scale=axis_scale(ys),
            pooled=pooled,
            log_color=bool(log_color),
        ),
    )
    label_log_axes(fig)
    return fig


def _swept(table: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    """Config columns with more than one value among these members (lists compared as tuples)."""
    from analysis.columns import CONFIG_COLUMNS, NON_AXIS_COLUMNS

    out = []
    for name in CONFIG_COLUMNS:
        if name in table.columns and name not in NON_AXIS_COLUMNS and name not in exclude:
            values = table[name].map(lambda v: tuple(v) if isinstance(v, (list, np.ndarray)) else v)
            if values.nunique(dropna=False) > 1:
                out.append(name)
    return out


def _sort_key(value):
    number = _num(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value))


def _plain(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value

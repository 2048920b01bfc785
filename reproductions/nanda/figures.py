"""Figures and numbers of the Nanda et al. (2023) reproduction, read from a finished sweep.

    python reproductions/nanda/figures.py results/repro-nanda     # a results folder, with its weight snapshots
    python reproductions/nanda/figures.py --from-table            # the committed reproductions/nanda/data/

Per seed, the three phases of Nanda et al., each read from a recorded measure (definitions in
README.md): memorisation (train accuracy held >= 0.99), circuit formation (restricted loss first
<= 0.1), clean-up (test loss first <= 0.1; test accuracy held >= 0.99), with the key frequencies and
the weight norm at those epochs; the restricted and excluded losses both on the key frequencies
re-chosen at each evaluation (the online progress rows) and on the member's final key frequencies held
fixed (Nanda et al.'s definition, fixed_keys.py). Writes figures/*.png next to this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.progress_figures import first_epoch_below, frequency_bars, frequency_spectrum, loss_and_progress
from grokcore.progress import columns as col

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import add_caption, check_figure, save_figure  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402
from fixed_keys import EXCLUDED_FIXED, FINAL_KEYS, RESTRICTED_FIXED, progress_table, read_progress  # noqa: E402

NAME = "nanda"

LOSS_LEVEL = 0.1  # the level Nanda et al.'s restricted / test loss curves are read at


def key_freqs(row: pd.Series) -> list[int]:
    return [
        int(row[f"{col.KEY_FREQ_PREFIX}{i}"])
        for i in range(col.MAX_KEY_FREQS)
        if pd.notna(row.get(f"{col.KEY_FREQ_PREFIX}{i}"))
    ]


def value_at(rows: pd.DataFrame, column: str, epoch: float | None) -> float:
    """`column` at the last evaluation at or before `epoch` (NaN when there is none)."""
    if epoch is None or not np.isfinite(epoch):
        return np.nan
    before = rows[rows["epoch"] <= epoch]
    return float(before[column].iloc[-1]) if len(before) else np.nan


def phase_table(times: pd.DataFrame, metrics: pd.DataFrame, progress: pd.DataFrame) -> pd.DataFrame:
    """One row per seed: the phase boundaries, key frequencies, weight norm and excluded loss, the
    restricted and excluded losses on both key-frequency sets."""
    times = times.set_index("run_id")
    rows = []
    for run_id in sorted(times.index, key=lambda r: times.loc[r, "seed"]):
        m = metrics[metrics["run_id"] == run_id].sort_values("epoch")
        pr = progress[(progress["run_id"] == run_id) & (progress["epoch"] > 0)].sort_values("epoch")
        mem, gen = times.loc[run_id, "mem_epoch"], times.loc[run_id, "gen_epoch"]
        circuit = first_epoch_below(pr, col.RESTRICTED_LOSS, LOSS_LEVEL)
        circuit_fixed = first_epoch_below(pr, RESTRICTED_FIXED, LOSS_LEVEL)
        test_low = first_epoch_below(m[m["epoch"] > 0], "test/loss", LOSS_LEVEL)
        first, last = pr.iloc[0], pr.iloc[-1]
        peak_norm = m["weight_norm"].max()
        rows.append(
            {
                "seed": int(times.loc[run_id, "seed"]),
                "memorised": mem,
                "circuit (restricted <= 0.1)": circuit,
                "test loss <= 0.1": test_low,
                "generalised (test acc held 0.99)": gen,
                "restricted lead": (test_low - circuit) if test_low is not None and circuit is not None else np.nan,
                "circuit, final keys fixed": circuit_fixed,
                "restricted lead, final keys fixed": (
                    (test_low - circuit_fixed) if test_low is not None and circuit_fixed is not None else np.nan
                ),
                "n_key first": int(first[col.N_KEY]),
                "n_key last": int(last[col.N_KEY]),
                "key freqs last": key_freqs(last),
                "weight norm peak": peak_norm,
                "peak epoch": float(m.loc[m["weight_norm"].idxmax(), "epoch"]),
                "weight norm at circuit": value_at(m, "weight_norm", circuit),
                "weight norm last": float(m["weight_norm"].iloc[-1]),
                "excluded loss at mem": value_at(pr, col.EXCLUDED_LOSS, mem),
                "excluded loss at circuit": value_at(pr, col.EXCLUDED_LOSS, circuit),
                "excluded fixed at mem": value_at(pr, EXCLUDED_FIXED, mem),
                "excluded fixed at circuit": value_at(pr, EXCLUDED_FIXED, circuit_fixed),
                "excluded fixed peak": float(pr[EXCLUDED_FIXED].max()),
                "excluded fixed peak epoch": (
                    float(pr.loc[pr[EXCLUDED_FIXED].idxmax(), "epoch"]) if pr[EXCLUDED_FIXED].notna().any() else np.nan
                ),
                "final keys (fixed set)": str(pr[FINAL_KEYS].iloc[-1]),
                "last epoch": float(m["epoch"].iloc[-1]),
                "run_id": run_id,
            }
        )
    return pd.DataFrame(rows)


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def norm_and_keys(
    metrics: pd.DataFrame, progress: pd.DataFrame, run_ids: list[str], labels: dict[str, str]
) -> go.Figure:
    """Weight norm (top) and number of key frequencies (bottom) over epochs, one colour per seed."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    colors = COLORS
    for k, run_id in enumerate(run_ids):
        m = metrics[(metrics["run_id"] == run_id) & (metrics["epoch"] > 0)].sort_values("epoch")
        pr = progress[(progress["run_id"] == run_id) & (progress["epoch"] > 0)].sort_values("epoch")
        c = colors[k % len(colors)]
        fig.add_trace(go.Scatter(x=m["epoch"], y=m["weight_norm"], name=labels[run_id], line=dict(color=c)), 1, 1)
        fig.add_trace(
            go.Scatter(x=pr["epoch"], y=pr[col.N_KEY], showlegend=False, line=dict(color=c, shape="hv")), 2, 1
        )
    fig.update_yaxes(title="weight norm", row=1, col=1)
    # plotly's own log ticks label 20-60 as "2 ... 6" beside "10": name them in full
    fig.update_yaxes(title="key frequencies (log)", type="log", tickvals=[1, 2, 3, 5, 10, 20, 30, 50], row=2, col=1)
    fig.update_xaxes(title="epoch")  # both rows: the checklist wants every axis titled
    fig.update_layout(title="weight norm and number of key frequencies (norm >= 1/4 of the largest)")
    return fig


def fixed_and_each(progress: pd.DataFrame, run_ids: list[str], labels: dict[str, str]) -> go.Figure:
    """Restricted (top) and excluded (bottom) loss of each seed on the key frequencies re-chosen at every
    evaluation (thin, dotted) and on its final key frequencies held fixed (thick, solid)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for k, run_id in enumerate(run_ids):
        pr = progress[(progress["run_id"] == run_id) & (progress["epoch"] > 0)].sort_values("epoch")
        c = COLORS[k % len(COLORS)]
        keys = pr[FINAL_KEYS].iloc[-1]
        for row, (each, fixed) in enumerate(
            ((col.RESTRICTED_LOSS, RESTRICTED_FIXED), (col.EXCLUDED_LOSS, EXCLUDED_FIXED)), 1
        ):
            for column, words, line in (
                (fixed, f"final keys {keys} fixed", dict(color=c, width=3)),
                (each, "keys of each evaluation", dict(color=c, width=1.5, dash="dot")),
            ):
                trace = go.Scatter(
                    x=pr["epoch"], y=pr[column], name=f"{labels[run_id]}, {words}", showlegend=row == 1, line=line
                )
                fig.add_trace(trace, row, 1)
    fig.update_yaxes(title="restricted loss (log)", type="log", row=1, col=1)
    fig.update_yaxes(title="excluded loss", row=2, col=1)
    fig.update_xaxes(title="epoch")  # both rows: the checklist wants every axis titled
    fig.update_layout(title="restricted and excluded loss: final key frequencies fixed (thick) or re-chosen (dotted)")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    parser.add_argument("--prefix", default="", help="put before each figure's file name, e.g. p113_")
    parser.add_argument("--name", default=NAME, help="with --from-table: the tables' folder (nanda/p113 for p = 113)")
    args = parser.parse_args(argv)
    source = load_source(args, args.name)
    if args.from_table:
        progress = read_progress(args.name)
    else:
        from analysis import load_sweep

        recorded = load_sweep(args.sweep).progress
        if recorded is None or not len(recorded):
            print(f"{args.sweep}: no progress rows; the spec must set progress_every", file=sys.stderr)
            return 2
        progress = progress_table(args.sweep, recorded)
    metrics = source.evaluations
    table = phase_table(source.times, metrics, progress)
    pd.set_option("display.width", 200, "display.max_columns", 30)
    print(table.drop(columns=["run_id"]).T.to_string(header=[f"seed {s}" for s in table["seed"]]))
    numeric = table.drop(columns=["run_id", "key freqs last", "final keys (fixed set)", "seed"]).astype(float)
    print("\nmean / min / max over seeds:")
    print(numeric.agg(["mean", "min", "max"]).T.to_string(float_format=lambda v: f"{v:.4g}"))

    def save_as(fig, name: str, legend_below: bool = False) -> Path:
        add_caption(fig, source.spec, source.times)
        check_figure(fig)
        return save_figure(
            fig, HERE, args.prefix + name, margin=dict(l=60, r=20, t=70, b=50), legend_below=legend_below
        )

    run_ids = list(table["run_id"])
    labels = {r: f"seed {s}" for r, s in zip(table["run_id"], table["seed"], strict=True)}
    by_gen = table.sort_values("generalised (test acc held 0.99)", na_position="last")
    middle, slowest = by_gen["run_id"].iloc[len(table) // 2], by_gen["run_id"].iloc[-1]
    # one member per figure: four curves each, and the slowest seed shows the phases furthest apart
    written = [
        save_as(
            loss_and_progress(progress, metrics, [run_id], LOSS_LEVEL, labels=labels),
            f"losses_{labels[run_id].replace(' ', '')}",
        )
        for run_id in dict.fromkeys([middle, slowest])
    ]
    written += [
        save_as(norm_and_keys(metrics, progress, run_ids, labels), "weight_norm_keys"),
        save_as(frequency_bars(progress, run_ids, labels=labels), "key_frequencies"),
    ]
    if progress[RESTRICTED_FIXED].notna().any():
        written.append(save_as(fixed_and_each(progress, run_ids, labels), "fixed_keys", legend_below=True))
    spectrum = frequency_spectrum(progress, middle, label=labels[middle])
    every = max(1, len(spectrum.data[0].x) // 12)  # a category axis of 75 epochs is unreadable at 800 px
    spectrum.update_xaxes(tickvals=list(spectrum.data[0].x[::every]), tickangle=-45)
    written.append(save_as(spectrum, "spectrum"))
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

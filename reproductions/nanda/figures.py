"""Figures and numbers of the Nanda et al. (2023) reproduction, read from a finished sweep.

    python reproductions/nanda/figures.py results/repro-nanda

Per seed, the three phases of Nanda et al., each read from a recorded measure (definitions in
README.md): memorisation (train accuracy held >= 0.99), circuit formation (restricted loss first
<= 0.1), clean-up (test loss first <= 0.1; test accuracy held >= 0.99), with the key frequencies and
the weight norm at those epochs. Writes figures/*.png next to this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis import load_sweep
from analysis.progress_figures import first_epoch_below, frequency_bars, frequency_spectrum, loss_and_progress
from grokcore.progress import columns as col

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import save_figure  # noqa: E402

LOSS_LEVEL = 0.1  # the level Nanda et al.'s restricted / test loss curves are read at


def save(fig: go.Figure, name: str) -> Path:
    return save_figure(fig, HERE, name, margin=dict(l=60, r=20, t=60, b=50))


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


def phase_table(sweep) -> pd.DataFrame:
    times = sweep.member_times().set_index("run_id")
    rows = []
    for run_id in sorted(times.index, key=lambda r: times.loc[r, "seed"]):
        m = sweep.metrics[sweep.metrics["run_id"] == run_id].sort_values("epoch")
        pr = sweep.progress[(sweep.progress["run_id"] == run_id) & (sweep.progress["epoch"] > 0)].sort_values("epoch")
        mem, gen = times.loc[run_id, "mem_epoch"], times.loc[run_id, "gen_epoch"]
        circuit = first_epoch_below(pr, col.RESTRICTED_LOSS, LOSS_LEVEL)
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
                "n_key first": int(first[col.N_KEY]),
                "n_key last": int(last[col.N_KEY]),
                "key freqs last": key_freqs(last),
                "weight norm peak": peak_norm,
                "peak epoch": float(m.loc[m["weight_norm"].idxmax(), "epoch"]),
                "weight norm at circuit": value_at(m, "weight_norm", circuit),
                "weight norm last": float(m["weight_norm"].iloc[-1]),
                "excluded loss at mem": value_at(pr, col.EXCLUDED_LOSS, mem),
                "excluded loss at circuit": value_at(pr, col.EXCLUDED_LOSS, circuit),
                "last epoch": float(m["epoch"].iloc[-1]),
                "run_id": run_id,
            }
        )
    return pd.DataFrame(rows)


def norm_and_keys(sweep, run_ids: list[str], labels: dict[str, str]) -> go.Figure:
    """Weight norm (top) and number of key frequencies (bottom) over epochs, one colour per seed."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for k, run_id in enumerate(run_ids):
        m = sweep.metrics[(sweep.metrics["run_id"] == run_id) & (sweep.metrics["epoch"] > 0)].sort_values("epoch")
        pr = sweep.progress[(sweep.progress["run_id"] == run_id) & (sweep.progress["epoch"] > 0)].sort_values("epoch")
        c = colors[k % len(colors)]
        fig.add_trace(go.Scatter(x=m["epoch"], y=m["weight_norm"], name=labels[run_id], line=dict(color=c)), 1, 1)
        fig.add_trace(
            go.Scatter(x=pr["epoch"], y=pr[col.N_KEY], showlegend=False, line=dict(color=c, shape="hv")), 2, 1
        )
    fig.update_yaxes(title="weight norm", row=1, col=1)
    # plotly's own log ticks label 20-60 as "2 ... 6" beside "10": name them in full
    fig.update_yaxes(title="key frequencies", type="log", tickvals=[1, 2, 3, 5, 10, 20, 30, 50], row=2, col=1)
    fig.update_xaxes(title="epoch", row=2, col=1)
    fig.update_layout(title="weight norm and number of key frequencies (norm >= 1/4 of the largest)")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="the sweep folder, e.g. results/repro-nanda")
    parser.add_argument("--prefix", default="", help="put before each figure's file name, e.g. p113_")
    args = parser.parse_args(argv)
    sweep = load_sweep(args.sweep)
    if sweep.progress is None or not len(sweep.progress):
        print(f"{args.sweep}: no progress rows; the spec must set progress_every", file=sys.stderr)
        return 2
    table = phase_table(sweep)
    pd.set_option("display.width", 200, "display.max_columns", 30)
    print(table.drop(columns=["run_id"]).T.to_string(header=[f"seed {s}" for s in table["seed"]]))
    numeric = table.drop(columns=["run_id", "key freqs last", "seed"]).astype(float)
    print("\nmean / min / max over seeds:")
    print(numeric.agg(["mean", "min", "max"]).T.to_string(float_format=lambda v: f"{v:.4g}"))

    def save_as(fig, name: str) -> Path:
        return save(fig, args.prefix + name)

    run_ids = list(table["run_id"])
    labels = {r: f"seed {s}" for r, s in zip(table["run_id"], table["seed"], strict=True)}
    by_gen = table.sort_values("generalised (test acc held 0.99)", na_position="last")
    middle, slowest = by_gen["run_id"].iloc[len(table) // 2], by_gen["run_id"].iloc[-1]
    # one member per figure: four curves each, and the slowest seed shows the phases furthest apart
    written = [
        save_as(
            loss_and_progress(sweep.progress, sweep.metrics, [run_id], LOSS_LEVEL, labels=labels),
            f"losses_{labels[run_id].replace(' ', '')}",
        )
        for run_id in dict.fromkeys([middle, slowest])
    ]
    written += [
        save_as(norm_and_keys(sweep, run_ids, labels), "weight_norm_keys"),
        save_as(frequency_bars(sweep.progress, run_ids, labels=labels), "key_frequencies"),
    ]
    spectrum = frequency_spectrum(sweep.progress, middle, label=labels[middle])
    every = max(1, len(spectrum.data[0].x) // 40)  # a category axis of 75 epochs is unreadable at 800 px
    spectrum.update_xaxes(tickvals=list(spectrum.data[0].x[::every]))
    written.append(save_as(spectrum, "spectrum"))
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The grokking MLP under its Kaiming initialisation against the project's default (tl), side by side.

Usage (from the repository root): python reproductions/grokking_mlp/figures.py results/repro-grokking_mlp

Times come from analysis.derive (memorised / generalised: accuracy >= 0.99 held for 3 evaluations;
members that never generalised are censored, Kaplan-Meier medians). Writes figures/gen_epoch.png
(each member's generalisation epoch per weight decay x lr, coloured by init; censored members drawn
at their last epoch as open markers) and figures/curves.png (test accuracy over epochs, mean of the
seeds, both inits), and prints the numbers the README quotes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis import load_sweep
from analysis.derive import aggregate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts

from _png import HEIGHT, WIDTH, save_png  # noqa: E402

COLOURS = {"kaiming": "#d62728", "tl": "#1f77b4"}


def cell_label(wd: float, lr: float) -> str:
    return f"wd {wd:g}, lr {lr:g}"


def gen_figure(times: pd.DataFrame) -> go.Figure:
    p = int(times["p"].iloc[0])
    fig = go.Figure()
    cells = sorted({(r.weight_decay, r.lr) for r in times.itertuples()})
    order = [cell_label(*c) for c in cells]
    for init, group in times.groupby("init"):
        x = [cell_label(w, lr) for w, lr in zip(group["weight_decay"], group["lr"], strict=True)]
        reached = group["gen_epoch"].notna().to_numpy()
        y = np.where(reached, group["gen_epoch"], group["last_epoch"])
        for mask, symbol, suffix in ((reached, "circle", ""), (~reached, "circle-open", " (never: last epoch)")):
            if mask.any():
                fig.add_scatter(
                    x=np.array(x)[mask],
                    y=y[mask],
                    mode="markers",
                    name=f"init {init}{suffix}",
                    marker={"color": COLOURS.get(init), "symbol": symbol, "size": 10},
                    offsetgroup=init,
                )
    fig.update_layout(
        title=f"Grokking MLP (p = {p}): epoch test accuracy reaches 0.99 (held 3 evaluations)",
        xaxis={"title": "weight decay, learning rate", "categoryorder": "array", "categoryarray": order},
        yaxis={"title": "generalisation epoch (each seed a marker)", "type": "log"},
        scattermode="group",
        width=WIDTH,
        height=HEIGHT,
        legend={"x": 0.3, "y": 0.99},
    )
    return fig


def curves_figure(metrics: pd.DataFrame, runs: pd.DataFrame) -> go.Figure:
    m = metrics.merge(runs[["run_id", "init", "weight_decay", "lr"]], on="run_id")
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot"]
    for i, ((wd, lr), cell) in enumerate(m.groupby(["weight_decay", "lr"])):
        for init, group in cell.groupby("init"):
            # Members stopped by the stop rule have no rows after they ended; carry their last value on.
            wide = group.pivot_table(index="epoch", columns="run_id", values="test/acc").ffill()
            fig.add_scatter(
                x=wide.index,
                y=wide.mean(axis=1),
                mode="lines",
                name=f"{init}, {cell_label(wd, lr)}",
                line={"color": COLOURS.get(init), "dash": dashes[i % len(dashes)]},
            )
    fig.update_layout(
        title=f"Test accuracy, mean of {runs['seed'].nunique()} seeds: Kaiming (red) against tl (blue)",
        xaxis={"title": "epoch", "type": "log"},
        yaxis_title="test accuracy",
        width=WIDTH,
        height=HEIGHT,
        legend={"font": {"size": 10}},
    )
    return fig


def main(sweep_dir: str) -> None:
    sweep = load_sweep(sweep_dir)
    times = sweep.member_times()
    times = times[times["status"] != "running"]
    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    save_png(gen_figure(times), out / "gen_epoch.png")
    save_png(curves_figure(sweep.metrics, sweep.runs), out / "curves.png")

    # Only swept axes can group (analysis refuses a constant one); the CPU spec fixes weight decay.
    cell = [a for a in ("weight_decay", "lr") if times[a].nunique() > 1]
    agg = aggregate(times, by=["init", *cell])
    for a in ("weight_decay", "lr"):
        if a not in agg:
            agg[a] = times[a].iloc[0]
    cols = [
        "init",
        "weight_decay",
        "lr",
        "n_members",
        "mem_epoch_median",
        "gen_epoch_median",
        "gen_epoch_q25",
        "gen_epoch_q75",
        "n_generalised",
        "gen_epoch_censored_at",
    ]
    print("per init x weight decay x lr (Kaplan-Meier medians over seeds; n_generalised of n_members):")
    print(agg[cols].to_string(index=False))
    per_member = times.sort_values(["weight_decay", "lr", "init", "seed"])[
        ["init", "weight_decay", "lr", "seed", "mem_epoch", "gen_epoch", "last_epoch", "final/test/acc"]
    ]
    print("\nper member:\n" + per_member.to_string(index=False))
    wide = agg.pivot_table(index=["weight_decay", "lr"], columns="init", values="gen_epoch_median")
    if {"kaiming", "tl"} <= set(wide.columns):
        wide["kaiming / tl"] = wide["kaiming"] / wide["tl"]
        print("\nmedian generalisation epoch, kaiming against tl (NaN: half or more never generalised):")
        print(wide.round(2).to_string())
    pooled = aggregate(times, by=["init"])  # over whatever cells the spec swept
    print("\npooled over weight decay and lr:")
    print(
        pooled[["init", "n_members", "n_generalised", "gen_epoch_median", "gen_epoch_q25", "gen_epoch_q75"]].to_string(
            index=False
        )
    )
    print(f"\nwall seconds of the pack: {sweep.runs['wall_seconds'].max():.0f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python reproductions/grokking_mlp/figures.py results/repro-grokking_mlp")
    main(sys.argv[1])

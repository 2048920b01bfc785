"""The add/mul mixture: each task's test loss and accuracy against the share of addition in training.

Usage (from the repository root): python reproductions/add_mul/figures.py results/repro-add_mul

test_add/* and test_mul/* are the metrics on the addition and the multiplication test pairs (the two
test sets are equal in size). Writes figures/test_loss_vs_fraction.png (final per-task test loss, log
axis, mean and min-max over seeds), figures/test_acc_vs_fraction.png and figures/curves.png (per-task
test loss over epochs), and prints the numbers the README quotes.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis import load_sweep

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts

from _png import HEIGHT, WIDTH, save_png  # noqa: E402

TASKS = {"add": "#1f77b4", "mul": "#d62728"}


def final_rows(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    last = metrics.sort_values("epoch").groupby("run_id").last().reset_index()
    return last.merge(runs[["run_id", "addition_fraction", "seed", "p"]], on="run_id")


def per_task_figure(final: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure()
    for task, colour in TASKS.items():
        col = f"test_{task}/{metric}"
        stats = final.groupby("addition_fraction")[col].agg(["mean", "min", "max"]).reset_index()
        fig.add_scatter(
            x=stats["addition_fraction"],
            y=stats["mean"],
            mode="lines+markers",
            name=f"{'addition' if task == 'add' else 'multiplication'} test pairs",
            line={"color": colour},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": stats["max"] - stats["mean"],
                "arrayminus": stats["mean"] - stats["min"],
            },
        )
    fig.add_scatter(
        x=final["addition_fraction"],
        y=final["train/" + metric],
        mode="markers",
        name="train (both)",
        marker={"color": "grey", "symbol": "x", "size": 6},
    )
    log = metric == "loss"
    p = int(final["p"].iloc[0])
    chance = math.log(p) if log else 1 / p
    # A trace, not add_hline: an hline's annotation on a log axis is placed at 10**y and stretches the range.
    xs = sorted(final["addition_fraction"].unique())
    fig.add_scatter(
        x=[xs[0], xs[-1]],
        y=[chance, chance],
        mode="lines",
        line={"dash": "dot", "color": "grey"},
        name=f"uniform guess: {'ln p' if log else '1/p'} = {chance:.3g}",
    )
    seeds = final["seed"].nunique()
    fig.update_layout(
        title=f"Add/mul mixture, p = {p}: final test {metric} per task (mean, min-max over {seeds} seeds)",
        xaxis={
            "title": "addition fraction of the training set",
            "tickvals": sorted(final["addition_fraction"].unique()),
        },
        yaxis={"title": f"test {metric} at the last epoch", "type": "log" if log else "linear"},
        width=WIDTH,
        height=HEIGHT,
        legend={"x": 0.3, "y": 0.45 if log else 0.9},
    )
    return fig


def curves_figure(metrics: pd.DataFrame, runs: pd.DataFrame) -> go.Figure:
    m = metrics.merge(runs[["run_id", "addition_fraction"]], on="run_id")
    fig = go.Figure()
    dashes = ["dot", "dash", "solid", "dashdot", "longdash"]
    for i, (f, group) in enumerate(m.groupby("addition_fraction")):
        mean = group.groupby("epoch")[["test_add/loss", "test_mul/loss"]].mean()
        for task, colour in TASKS.items():
            fig.add_scatter(
                x=mean.index,
                y=mean[f"test_{task}/loss"],
                mode="lines",
                name=f"{task}, fraction {f:g}",
                line={"color": colour, "dash": dashes[i % len(dashes)]},
            )
    fig.update_layout(
        title="Per-task test loss over training, mean of seeds (blue: add, red: mul)",
        xaxis={"title": "epoch", "type": "log"},
        yaxis={"title": "test loss", "type": "log"},
        width=WIDTH,
        height=HEIGHT,
        legend={"font": {"size": 9}},
    )
    return fig


def main(sweep_dir: str) -> None:
    sweep = load_sweep(sweep_dir)
    final = final_rows(sweep.metrics, sweep.runs)
    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    save_png(per_task_figure(final, "loss"), out / "test_loss_vs_fraction.png")
    save_png(per_task_figure(final, "acc"), out / "test_acc_vs_fraction.png")
    save_png(curves_figure(sweep.metrics, sweep.runs), out / "curves.png")

    cols = ["train/acc", "test_add/loss", "test_mul/loss", "test_add/acc", "test_mul/acc"]
    g = final.groupby("addition_fraction")[cols]
    print("final values per addition fraction: mean [min, max] over seeds")
    print(
        (
            g.mean().map(lambda v: f"{v:.3g}")
            + " ["
            + g.min().map(lambda v: f"{v:.3g}")
            + ", "
            + g.max().map(lambda v: f"{v:.3g}")
            + "]"
        ).to_string()
    )
    times = sweep.member_times()
    tcols = ["addition_fraction", "seed", "mem_epoch", "add/gen_epoch", "mul/gen_epoch", "gen_epoch"]
    print("\ntimes per member (generalised on the addition / multiplication test pairs: acc >= 0.99 held 3 evals):")
    print(times.sort_values(["addition_fraction", "seed"])[[c for c in tcols if c in times]].to_string(index=False))
    print(f"\nwall seconds of the pack: {sweep.runs['wall_seconds'].max():.0f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python reproductions/add_mul/figures.py results/repro-add_mul")
    main(sys.argv[1])

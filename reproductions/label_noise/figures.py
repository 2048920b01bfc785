"""Label noise: accuracy on the noisy labels trained on against the clean labels, over the noise n.

Usage (from the repository root):
    python reproductions/label_noise/figures.py results/repro-label_noise [results/repro-label_noise-gen]
    python reproductions/label_noise/figures.py --from-table   # the rerun generalising recipe, from data/
Each sweep folder (one recipe each: spec.yaml, spec_generalising.yaml) gets its own figures, named
with the sweep name's suffix after repro-label_noise (accuracy_vs_noise.png, accuracy_vs_noise_gen.png).

train/acc is against the noisy training labels, train_clean/acc against the clean labels of the same
inputs, test/acc against the clean labels of held-out inputs. The share of training labels the noise
left unchanged (counted from grokcore.data.member_data) is what train/acc is when a model computes
the clean rule exactly, and what train_clean/acc is, roughly, when it memorises the noisy labels.
Writes figures/accuracy_vs_noise.png and figures/curves.png; prints the numbers the README quotes.
"""

from __future__ import annotations

import argparse
import sys
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis import load_sweep
from grokcore.config import RunConfig
from grokcore.data import member_data

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts

from _png import HEIGHT, WIDTH, add_caption, check_figure, save_png  # noqa: E402
from _table import read_evaluations, read_members, read_spec  # noqa: E402

NAME = "label_noise"
GEN_SUFFIX = "_gen"  # the generalising recipe's figures; its table is the one committed (data/)

SERIES = {"train/acc": "train, noisy labels", "train_clean/acc": "train, clean labels", "test/acc": "test (clean)"}


RUN_FIELDS = ("task", "p", "train_fraction", "noise", "noise_n", "seed", "lr", "weight_decay")


def unchanged_share(run) -> float:
    cfg = RunConfig.from_dict({k: getattr(run, k) for k in RUN_FIELDS[:6]})
    data = member_data(cfg)
    return float((data.train_labels == data.train_clean_labels).float().mean())


def final_rows(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    last = metrics.sort_values("epoch").groupby("run_id").last().reset_index()
    return last.merge(runs[["run_id", "noise_n", "seed", "unchanged"]], on="run_id")


def recipe(runs: pd.DataFrame) -> str:
    r = runs.iloc[0]
    return f"p = {r.p}, lr {r.lr:g}, weight decay {r.weight_decay:g}"


def accuracy_figure(final: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure()
    for col, name in SERIES.items():
        stats = final.groupby("noise_n")[col].agg(["mean", "min", "max"]).reset_index()
        fig.add_scatter(
            x=stats["noise_n"],
            y=stats["mean"],
            mode="lines+markers",
            name=name,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": stats["max"] - stats["mean"],
                "arrayminus": stats["mean"] - stats["min"],
            },
        )
    n = np.array(sorted(final["noise_n"].unique()))
    fig.add_scatter(
        x=n,
        y=[comb(int(k), int(k) // 2) / 2 ** int(k) for k in n],
        mode="lines",
        line={"dash": "dot", "color": "grey"},
        name="P(noise = 0) = C(n, n/2) / 2^n",
    )
    fig.update_layout(
        title=f"Label noise, MLP, {title}: final accuracy (mean, min-max over seeds)",
        xaxis={"title": "noise n (Binomial(n, 1/2) - n/2 added to train labels)", "tickvals": list(n)},
        yaxis={"title": "accuracy at the last epoch", "range": [0, 1.05]},
        width=WIDTH,
        height=HEIGHT,
        legend={"x": 0.55, "y": 0.6},
    )
    return fig


def curves_figure(metrics: pd.DataFrame, runs: pd.DataFrame, title: str) -> go.Figure:
    m = metrics.merge(runs[["run_id", "noise_n"]], on="run_id")
    fig = go.Figure()
    dashes = {"train/acc": "dot", "train_clean/acc": "dash", "test/acc": "solid"}
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for i, (n, group) in enumerate(m.groupby("noise_n")):
        mean = group.groupby("epoch")[list(SERIES)].mean()
        for col, label in SERIES.items():
            fig.add_scatter(
                x=mean.index,
                y=mean[col],
                mode="lines",
                name=f"n {n}: {label}",
                line={"dash": dashes[col], "color": colours[i % len(colours)]},
                showlegend=col == "test/acc" or i == 0,
            )
    fig.update_layout(
        title=f"{title}, mean of seeds (dotted: noisy train, dashed: clean train, solid: test)",
        xaxis={"title": "epoch (log)", "type": "log"},
        yaxis_title="accuracy",
        width=WIDTH,
        height=HEIGHT,
        legend={"font": {"size": 9}},
    )
    return fig


def still_rising(metrics: pd.DataFrame, runs: pd.DataFrame, window: int = 1000) -> pd.DataFrame:
    """Each member's test accuracy at its last epoch and `window` epochs before: whether it was still
    rising when the budget ended it."""
    rows = []
    for run_id, m in metrics.sort_values("epoch").groupby("run_id"):
        last = m.iloc[-1]
        before = m[m["epoch"] <= last["epoch"] - window]
        earlier = float(before["test/acc"].iloc[-1]) if len(before) else np.nan
        rows.append(
            {"run_id": run_id, "last_epoch": last["epoch"], "test_acc": last["test/acc"], "test_acc_before": earlier}
        )
    out = pd.DataFrame(rows).merge(runs[["run_id", "noise_n", "seed"]], on="run_id")
    out["change"] = out["test_acc"] - out["test_acc_before"]
    return out.sort_values(["noise_n", "seed"])


def draw(runs: pd.DataFrame, metrics: pd.DataFrame, times: pd.DataFrame, name: str, spec: dict | None = None) -> None:
    """Figures and printed numbers of one recipe; `spec` (the spec as run) adds the checklist's caption."""
    runs = runs.copy()
    runs["unchanged"] = [unchanged_share(r) for r in runs.itertuples()]
    final = final_rows(metrics, runs)
    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    suffix = name.removeprefix("repro-label_noise").replace("-", "_")
    title = recipe(runs)
    print(f"== {name}: {title}")
    figures = {
        f"accuracy_vs_noise{suffix}.png": accuracy_figure(final, title),
        f"curves{suffix}.png": curves_figure(metrics, runs, title),
    }
    for file, fig in figures.items():
        if spec is not None:
            add_caption(fig, spec, times)
            check_figure(fig)
            fig.update_layout(margin={"t": 80})
        save_png(fig, out / file)

    cols = ["train/acc", "train_clean/acc", "test/acc", "unchanged"]
    print(
        "final accuracies per noise n (mean [min, max] over seeds); unchanged: share of train labels the "
        "noise left alone:"
    )
    g = final.groupby("noise_n")[cols]
    table = (
        g.mean().round(3).astype(str) + " [" + g.min().round(3).astype(str) + ", " + g.max().round(3).astype(str) + "]"
    )
    table["P(noise=0)"] = [round(comb(int(k), int(k) // 2) / 2 ** int(k), 3) for k in table.index]
    print(table.to_string())
    print("\nper member:")
    print(final.sort_values(["noise_n", "seed"])[["noise_n", "seed", "epoch", *cols]].round(4).to_string(index=False))
    tcols = [c for c in ("noise_n", "seed", "mem_epoch", "gen_epoch", "phase", "censored", "censored_at") if c in times]
    print("\ntimes (memorised: train/acc held >= 0.99; generalised: test/acc held >= 0.99):")
    print(times.sort_values(["noise_n", "seed"])[tcols].to_string(index=False))
    print("\ntest accuracy at the last epoch against 1,000 epochs before (still rising at the budget?):")
    print(still_rising(metrics, runs).round(4).to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", help="sweep folders, e.g. results/repro-label_noise")
    parser.add_argument("--from-table", action="store_true", help=f"the rerun recipe from reproductions/{NAME}/data/")
    args = parser.parse_args(argv)
    if args.from_table == bool(args.sweeps):
        parser.error("give sweep folders or --from-table, not both or neither")
    if args.from_table:
        spec, times = read_spec(NAME), read_members(NAME)
        runs = times[["run_id", "noise_n", "seed"]].assign(
            **{k: spec["base"][k] for k in RUN_FIELDS if k not in ("noise_n", "seed")}
        )
        draw(runs, read_evaluations(NAME), times, spec["name"], spec)
        return 0
    for folder in args.sweeps:
        sweep = load_sweep(folder)
        # the rerun recipe's spec has an adaptive budget: its figures get the checklist's caption
        spec = sweep.spec if sweep.spec.get("budget") else None
        draw(sweep.runs, sweep.metrics, sweep.member_times(), sweep.name, spec)
        print(f"\nwall seconds of the pack: {sweep.runs['wall_seconds'].max():.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

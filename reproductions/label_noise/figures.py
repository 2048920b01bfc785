"""Label noise: accuracy on the noisy labels trained on against the clean labels, over the noise n.

Usage (from the repository root):
    python reproductions/label_noise/figures.py results/repro-label_noise [results/repro-label_noise-gen]
    python reproductions/label_noise/figures.py --from-table   # both recipes, from their committed tables
Each sweep folder (one recipe each: spec.yaml, spec_generalising.yaml) gets its own figures, named
with the sweep name's suffix after repro-label_noise (accuracy_vs_noise.png, accuracy_vs_noise_gen.png).
The tables: data/ holds the generalising recipe's (spec_generalising.yaml, what the README's claim rests
on), seed_recipe/data/ the seed's recipe's (spec.yaml).

train/acc is against the noisy training labels, train_clean/acc against the clean labels of the same
inputs, test/acc against the clean labels of held-out inputs. The share of training labels the noise
left unchanged (counted from grokcore.data.member_data) is what train/acc is when a model computes
the clean rule exactly, and what train_clean/acc is, roughly, when it memorises the noisy labels.
That equality is an identity once every noisy label is fitted, not a finding; what the data could
have contradicted is the test accuracy: flat or rising at the budget, with noise and without.
Writes figures/accuracy_vs_noise*.png and figures/curves*.png; prints the numbers the README quotes.
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

from _png import add_caption, check_figure, label_axes, save_figure  # noqa: E402
from _table import MEMBERS_FILE, read_evaluations, read_members, read_spec, table_dir  # noqa: E402

NAME = "label_noise"
# The committed tables, one per recipe: data/ the generalising one (the tests' and the claim's), and the
# seed's recipe beside it.
TABLES = (NAME, f"{NAME}/seed_recipe")
WINDOW = 1000  # "flat or still rising at the budget?": the change over a member's last WINDOW epochs

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


# Curves that can coincide differ in width, dash and marker (the checklist's item 5): the clean-label train
# accuracy lies on the unchanged share by construction, and at n = 0 all three accuracies are near 1.
STYLE = {
    "train/acc": {"line": {"width": 5, "color": "#9ecae1"}, "marker": {"size": 14, "symbol": "circle"}},
    "train_clean/acc": {"line": {"width": 2.5, "color": "#e6550d"}, "marker": {"size": 9, "symbol": "diamond"}},
    "test/acc": {"line": {"width": 2, "color": "#31a354"}, "marker": {"size": 7, "symbol": "square"}},
}


def accuracy_figure(final: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure()
    for col, name in SERIES.items():
        stats = final.groupby("noise_n")[col].agg(["mean", "min", "max"]).reset_index()
        fig.add_scatter(
            x=stats["noise_n"],
            y=stats["mean"],
            mode="lines+markers",
            name=name,
            **STYLE[col],
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
        line={"dash": "dot", "color": "black", "width": 1.5},
        name="P(noise = 0) = C(n, n/2) / 2^n (expected unchanged share)",
    )
    fig.update_layout(
        title=f"Label noise, MLP, {title}: accuracy at the last epoch (mean, min-max over seeds)",
        xaxis={"tickvals": list(n)},
        yaxis={"range": [0, 1.08]},
    )
    return label_axes(
        fig,
        "noise n (Binomial(n, 1/2) − n/2 added to each train label)",
        "accuracy at the last epoch (share of pairs)",
    )


def log_ticks(last: int) -> list[int]:
    """1-2-5 ticks up to the last epoch, and the last epoch itself: plotly's own log ticks label the minor
    ones with a single digit, which reads as the wrong epoch."""
    ticks = [v * 10**k for k in range(1, 6) for v in (1, 2, 5) if v * 10**k < last * 0.8]
    return [*ticks, last]


def curves_figure(metrics: pd.DataFrame, runs: pd.DataFrame, title: str) -> go.Figure:
    m = metrics.merge(runs[["run_id", "noise_n"]], on="run_id")
    m = m[m["epoch"] > 0]  # epoch 0 has no place on a log axis
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
                line={
                    "dash": dashes[col],
                    "color": colours[i % len(colours)],
                    "width": 3 if col == "test/acc" else 1.5,
                },
                showlegend=col == "test/acc" or i == 0,
            )
    fig.update_layout(
        title=f"{title}, mean of seeds (dotted: noisy train, dashed: clean train, solid: test)",
        xaxis={"type": "log", "tickvals": log_ticks(int(m["epoch"].max())), "tickformat": ","},
        legend={"font": {"size": 9}},
    )
    return label_axes(fig, "epoch", "accuracy (share of pairs)")


def still_rising(metrics: pd.DataFrame, runs: pd.DataFrame, window: int = WINDOW) -> pd.DataFrame:
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


def at_epoch(metrics: pd.DataFrame, epoch: int) -> pd.Series:
    """Each member's test accuracy at `epoch`, or at its last evaluation before (a member that generalised
    in the first round ended there)."""
    rows = metrics[metrics["epoch"] <= epoch].sort_values(["run_id", "epoch"]).groupby("run_id").last()
    return rows["test/acc"]


def spread(values: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """mean [min, max] over seeds per noise n, three decimals, as the README's tables write them."""
    g = values.groupby("noise_n")[columns]

    def fmt(v):
        return f"{v:.3f}"

    return g.mean().map(fmt) + " [" + g.min().map(fmt) + ", " + g.max().map(fmt) + "]"


def draw(runs: pd.DataFrame, metrics: pd.DataFrame, times: pd.DataFrame, name: str, spec: dict) -> None:
    """Figures and printed numbers of one recipe, captioned from `spec` (the spec as run)."""
    runs = runs.copy()
    runs["unchanged"] = [unchanged_share(r) for r in runs.itertuples()]
    final = final_rows(metrics, runs)
    suffix = name.removeprefix("repro-label_noise").replace("-", "_")
    title = recipe(runs)
    print(f"== {name}: {title}")
    figures = {
        f"accuracy_vs_noise{suffix}": accuracy_figure(final, title),
        f"curves{suffix}": curves_figure(metrics, runs, title),
    }
    for file, fig in figures.items():
        add_caption(fig, spec, times)
        check_figure(fig)
        path = save_figure(fig, HERE, file, margin=dict(l=70, r=20, t=80, b=140), legend_below=True)
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")

    cols = ["train/acc", "train_clean/acc", "unchanged"]
    print(
        "\nper noise n, mean [min, max] over seeds: train accuracy on the noisy and the clean labels at the last "
        "epoch (unchanged: share of train labels the noise left alone, which the clean-label accuracy equals "
        "by construction once every noisy label is fitted); test accuracy (clean) at the first round's end and "
        f"at the last epoch; the largest change of a member's test accuracy over its last {WINDOW:,} epochs:"
    )
    table = spread(final, cols)
    first_round = int(spec["budget"]["epochs"]) if spec.get("budget") else int(spec["base"]["epochs"])
    tests = runs[["run_id", "noise_n"]].assign(
        **{f"test at {first_round}": runs["run_id"].map(at_epoch(metrics, first_round))},
        **{"test at last": runs["run_id"].map(final.set_index("run_id")["test/acc"])},
    )
    table = table.join(spread(tests, [f"test at {first_round}", "test at last"]))
    rising = still_rising(metrics, runs)
    largest = rising.loc[rising.groupby("noise_n")["change"].apply(lambda c: c.abs().idxmax()), ["noise_n", "change"]]
    table[f"largest change, last {WINDOW}"] = largest.set_index("noise_n")["change"].map(lambda v: f"{v:+.3f}")
    table["P(noise=0)"] = [f"{comb(int(k), int(k) // 2) / 2 ** int(k):.3f}" for k in table.index]
    print(table.to_string())
    print(f"\nlast epochs reached: {final['epoch'].value_counts().sort_index().to_dict()}")
    print("\nper member:")
    print(
        final.sort_values(["noise_n", "seed"])[["noise_n", "seed", "epoch", *cols, "test/acc"]]
        .round(4)
        .to_string(index=False)
    )
    tcols = [c for c in ("noise_n", "seed", "mem_epoch", "gen_epoch", "phase", "censored", "censored_at") if c in times]
    print("\ntimes (memorised: train/acc held >= 0.99; generalised: test/acc held >= 0.99):")
    print(times.sort_values(["noise_n", "seed"])[tcols].to_string(index=False))
    print(f"\ntest accuracy at the last epoch against {WINDOW:,} epochs before (still rising at the budget?):")
    print(rising.round(4).to_string(index=False))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", help="sweep folders, e.g. results/repro-label_noise")
    parser.add_argument(
        "--from-table", action="store_true", help=f"both recipes from their tables ({', '.join(TABLES)})"
    )
    args = parser.parse_args(argv)
    if args.from_table == bool(args.sweeps):
        parser.error("give sweep folders or --from-table, not both or neither")
    if args.from_table:
        for table in TABLES:
            if not (table_dir(table) / MEMBERS_FILE).exists():
                print(f"no table at reproductions/{table}/data/: skipped", file=sys.stderr)
                continue
            spec, times = read_spec(table), read_members(table)
            runs = times[["run_id", "noise_n", "seed"]].assign(
                **{k: spec["base"][k] for k in RUN_FIELDS if k not in ("noise_n", "seed")}
            )
            draw(runs, read_evaluations(table), times, spec["name"], spec)
        return 0
    for folder in args.sweeps:
        sweep = load_sweep(folder)
        times = sweep.member_times()
        ended = times["status"] != "running"
        draw(
            sweep.runs,
            sweep.metrics[sweep.metrics["run_id"].isin(times.loc[ended, "run_id"])],
            times[ended],
            sweep.name,
            sweep.spec,
        )
        print(f"\nwall seconds of the pack: {sweep.runs['wall_seconds'].max():.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

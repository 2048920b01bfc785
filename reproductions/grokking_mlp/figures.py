"""The grokking MLP under its Kaiming initialisation against the project's default (tl), side by side.

    python reproductions/grokking_mlp/figures.py results/repro-grokking_mlp
    python reproductions/grokking_mlp/figures.py --from-table     # the committed data/

Times by the held rule (analysis.member_times: memorised / generalised = accuracy >= 0.99 held for 3
evaluations; members that never generalised are censored at their last epoch, Kaplan-Meier medians).
Writes figures/gen_epoch.png (each member's generalisation epoch per lr, by init; censored members as
open triangles at their last epoch, "> E") and figures/curves.png (each member's test accuracy, one
panel per lr), and prints the numbers the README quotes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.derive import aggregate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import add_caption, add_censored_end, check_figure, label_axes, save_figure  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402

NAME = HERE.name
COLOURS = {"kaiming": "#d62728", "tl": "#1f77b4"}
DASHES = {"kaiming": "solid", "tl": "dash"}  # a tl curve lying on a Kaiming one stays visible


def gen_figure(times: pd.DataFrame, first: int) -> go.Figure:
    """Members side by side (a small step a seed), so equal epochs do not hide each other; censored members
    of a cell at the same last epoch are one triangle labelled with their count."""
    lrs = sorted(times["lr"].unique())
    inits = sorted(times["init"].unique())
    fig = go.Figure()
    for k, (init, group) in enumerate(times.groupby("init")):
        offset = (k - (len(inits) - 1) / 2) * 0.3
        where = group["lr"].map(lrs.index) + offset
        reached = group[group["generalised"]]
        fig.add_scatter(
            x=where[reached.index] + (reached["seed"] - reached["seed"].mean()) * 0.03,
            y=reached["gen_epoch"],
            mode="markers",
            name=f"init {init}: generalised (one marker a seed)",
            marker={"color": COLOURS.get(init), "symbol": "circle", "size": 9},
        )
        # right of the seeds' markers, so the triangle and its label cover none of them
        censored = group[~group["generalised"]].assign(x=where + 0.1).groupby(["x", "last_epoch"]).size().reset_index()
        if len(censored):
            fig.add_scatter(
                x=censored["x"],
                y=censored["last_epoch"],
                mode="markers+text",
                text=[f"{n} × > {e:,.0f}" for n, e in zip(censored[0], censored["last_epoch"], strict=True)],
                textposition="middle right",
                textfont={"size": 10, "color": COLOURS.get(init)},
                name=f"init {init}: censored, not generalised by its last epoch ('> E')",
                marker={"color": COLOURS.get(init), "symbol": "triangle-right-open", "size": 11, "line": {"width": 2}},
            )
    # the first round's budget was the first run's whole budget: what lies above it, that run never saw
    fig.add_hline(y=first, line={"dash": "dot", "color": "grey"})
    # by hand: add_hline's own annotation lands at y = 3,000 decades on a log axis
    fig.add_annotation(
        x=1,
        xref="paper",
        y=np.log10(first),
        text=f"first round: {first:,} epochs",
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
    )
    fig.update_layout(
        title="Grokking MLP: epoch each member's test accuracy reaches 0.99 (held 3 evaluations)",
        xaxis={
            "tickvals": list(range(len(lrs))),
            "ticktext": [f"lr {lr:g}" for lr in lrs],
            "range": [-0.6, len(lrs) - 0.4],
        },
        yaxis={"type": "log"},
    )
    return label_axes(fig, "learning rate (AdamW, weight decay 1)", "generalisation epoch (epochs)")


def curves_figure(evaluations: pd.DataFrame, times: pd.DataFrame) -> go.Figure:
    """One panel per lr, one line per member: means over seeds hide when each member jumps."""
    lrs = sorted(times["lr"].unique())
    fig = make_subplots(rows=1, cols=len(lrs), shared_yaxes=True, horizontal_spacing=0.08)
    m = evaluations[evaluations["epoch"] > 0].merge(times[["run_id", "init", "lr", "seed", "censored"]], on="run_id")
    shown = set()
    for col, lr in enumerate(lrs, start=1):
        for (init, _seed), group in m[m["lr"] == lr].groupby(["init", "seed"]):
            group = group.sort_values("epoch")
            fig.add_scatter(
                x=group["epoch"],
                y=group["test/acc"],
                mode="lines",
                line={"color": COLOURS.get(init), "dash": DASHES.get(init), "width": 1.3},
                opacity=0.8,
                name=f"init {init} (one line a seed)",
                legendgroup=init,
                showlegend=init not in shown,
                row=1,
                col=col,
            )
            shown.add(init)
            if group["censored"].iloc[0]:
                add_censored_end(fig, group.iloc[-1], COLOURS.get(init), 10, "censored" not in shown, row=1, col=col)
                shown.add("censored")
        fig.update_xaxes(title=f"epoch (log scale), lr {lr:g}", row=1, col=col)
        fig.update_yaxes(title="test accuracy (share of test pairs)" if col == 1 else "test accuracy", row=1, col=col)
    right = np.log10(m["epoch"].max() * 1.4)  # room for the censored triangles at the last epoch
    fig.update_xaxes(type="log", range=[np.log10(40), right])
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(title="Grokking MLP: each member's test accuracy, Kaiming (red, solid) against tl (blue, dashed)")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    times = source.times.sort_values(["lr", "init", "seed"]).reset_index(drop=True)
    pd.set_option("display.width", 200)

    agg = aggregate(times, by=["lr", "init"])
    print("per lr x init (Kaplan-Meier medians and quartiles over seeds; NaN: half or more censored):")
    print(
        agg[
            [
                "lr",
                "init",
                "n_members",
                "n_generalised",
                "mem_epoch_median",
                "gen_epoch_median",
                "gen_epoch_q25",
                "gen_epoch_q75",
                "n_censored",
                "censored_at_max",
                "phase_counts",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )
    last = source.evaluations.sort_values(["run_id", "epoch"]).groupby("run_id")[["train/acc", "test/acc"]].last()
    # from the evaluations, not the table's final_ columns: a results folder's member_times lacks them
    last = last.rename(columns=lambda c: "final_" + c)
    members = times.drop(columns=[c for c in last.columns if c in times])
    members = members.merge(last, left_on="run_id", right_index=True)
    print("\nper member:")
    cols = ["lr", "init", "seed", "budget", "last_epoch", "mem_epoch", "gen_epoch", "delay", "phase", "censored"]
    print(
        members[[*cols, "final_train/acc", "final_test/acc"]].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )
    print(f"member-epochs trained: {int(members['last_epoch'].sum()):,}")
    # Where the first run's whole budget left each cell (a member stopped before it: its last evaluation).
    first = int(source.spec["budget"]["epochs"])
    at_first = source.evaluations[source.evaluations["epoch"] <= first].sort_values("epoch").groupby("run_id").last()
    at_first = times.merge(at_first[["test/acc"]], left_on="run_id", right_index=True)
    print(f"\ntest accuracy at {first:,} epochs (the first round's budget):")
    print(at_first.groupby(["lr", "init"])["test/acc"].agg(["mean", "min", "max"]).round(3).to_string())

    wide = agg.pivot_table(index="lr", columns="init", values="gen_epoch_median")
    if {"kaiming", "tl"} <= set(wide.columns):
        wide["kaiming / tl"] = wide["kaiming"] / wide["tl"]
        print("\nmedian generalisation epoch, kaiming against tl (NaN: half or more never generalised):")
        print(wide.round(2).to_string())
    # Same seed = same split and the same draw of everything but the init's scheme: the paired comparison.
    paired = times.pivot_table(index=["lr", "seed"], columns="init", values="gen_epoch")
    paired["kaiming - tl"] = paired["kaiming"] - paired["tl"]
    print("\nper seed, generalisation epoch (NaN: censored):")
    print(paired.to_string(float_format=lambda v: f"{v:.0f}"))
    both = paired.dropna()
    if len(both):
        ratio = both["kaiming"] / both["tl"]
        print(
            f"  seeds where both generalised: {len(both)}; Kaiming later in {int((both['kaiming - tl'] > 0).sum())}, "
            f"earlier in {int((both['kaiming - tl'] < 0).sum())}; kaiming / tl {ratio.min():.2f}-{ratio.max():.2f}"
        )
    cens = members[members["censored"]]
    if len(cens):
        print("censored:")
        for _, r in cens.iterrows():
            print(
                f"  lr {r['lr']:g} {r['init']} seed {r['seed']} at {r['censored_at']:.0f}: {r['phase']}, "
                f"test acc {r['final_test/acc']:.3f}"
            )

    written = []
    for fig, name in (
        (gen_figure(times, int(source.spec["budget"]["epochs"])), "gen_epoch"),
        (curves_figure(source.evaluations, times), "curves"),
    ):
        add_caption(fig, source.spec, times)
        check_figure(fig)
        written.append(save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=80, b=110), legend_below=True))
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Max of two at the seed's 3,000 epochs: where the test accuracy stops, and which pairs are wrong.

Usage (from the repository root): python reproductions/max_of_two/figures.py results/repro-max_of_two

Reads the sweep with analysis.load_sweep, each member's final weights from its snapshot
(grokcore.snapshots.load_snapshot) and its data from grokcore.data.member_data, then scores every
one of the 64 x 64 test pairs. Writes figures/curves.png (test accuracy over epochs per weight
decay) and figures/errors_by_gap.png (final accuracy against |a - b|, the trained gaps marked),
and prints the numbers the README quotes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from analysis import load_sweep
from grokcore.data import member_data
from grokcore.export import MemberModule
from grokcore.progress.attention import qk_ov_summaries
from grokcore.snapshots import load_snapshot

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts

from _png import HEIGHT, WIDTH, save_png  # noqa: E402


def pair_table(sweep_dir: str, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (member, test pair) at the member's last snapshot: a, b, label, prediction."""
    rows = []
    for run in runs.itertuples():
        cfg, weights = load_snapshot(sweep_dir, run.run_id)
        data = member_data(cfg)
        with torch.no_grad():
            pred = MemberModule(cfg, weights)(data.test_tokens).argmax(-1)
        a, b = data.test_tokens[:, 0].numpy(), data.test_tokens[:, 1].numpy()
        # The notebook's reading of the mechanism: QK should rank the larger operand first, OV copy it.
        circuit = qk_ov_summaries({k: v.unsqueeze(0) for k, v in weights.items()}, cfg)
        rows.append(
            pd.DataFrame(
                {
                    "run_id": run.run_id,
                    "weight_decay": run.weight_decay,
                    "seed": run.seed,
                    "a": a,
                    "b": b,
                    "label": data.test_labels.numpy(),
                    "pred": pred.numpy(),
                    **{k: float(v[0]) for k, v in circuit.items()},
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table["gap"] = (table["a"] - table["b"]).abs()
    table["correct"] = table["pred"] == table["label"]
    table["pred_min"] = table["pred"] == np.minimum(table["a"], table["b"])
    return table


def curves_figure(metrics: pd.DataFrame, runs: pd.DataFrame) -> go.Figure:
    p, seeds = int(runs["p"].iloc[0]), runs["seed"].nunique()
    m = metrics.merge(runs[["run_id", "weight_decay"]], on="run_id")
    fig = go.Figure()
    for wd, group in m.groupby("weight_decay"):
        stats = group.groupby("epoch")["test/acc"].agg(["mean", "min", "max"]).reset_index()
        fig.add_scatter(x=stats["epoch"], y=stats["mean"], mode="lines", name=f"wd {wd:g} (mean of seeds)")
        fig.add_scatter(
            x=np.r_[stats["epoch"], stats["epoch"][::-1]],
            y=np.r_[stats["max"], stats["min"][::-1]],
            fill="toself",
            opacity=0.15,
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
        )
    fig.update_layout(
        title=f"Max of two (p = {p}, attention only): test accuracy, all {p * p:,} pairs",
        xaxis_title="epoch",
        yaxis_title=f"test accuracy (band: min-max over {seeds} seeds)",
        yaxis_range=[0.5, 1.0],
        width=WIDTH,
        height=HEIGHT,
        legend={"x": 0.6, "y": 0.1},
    )
    return fig


def gap_figure(pairs: pd.DataFrame, trained_gaps: list[int], epoch: int) -> go.Figure:
    by_gap = pairs.groupby(["weight_decay", "gap"])["correct"].mean().reset_index()
    fig = go.Figure()
    for wd, group in by_gap.groupby("weight_decay"):
        fig.add_scatter(x=group["gap"], y=group["correct"], mode="lines+markers", marker={"size": 4}, name=f"wd {wd:g}")
    for g in trained_gaps:
        fig.add_vline(x=g, line={"dash": "dot", "color": "grey"})
    fig.update_layout(
        title=f"Final accuracy by |a - b| (dotted: the trained gaps {trained_gaps})",
        xaxis_title="|a - b|",
        yaxis_title=f"accuracy at epoch {epoch} ({pairs['seed'].nunique()} seeds pooled)",
        width=WIDTH,
        height=HEIGHT,
        legend={"x": 0.8, "y": 0.1},
    )
    return fig


def error_map_figure(pairs: pd.DataFrame, n: int, epoch: int) -> go.Figure:
    rate = (
        (~pairs["correct"]).groupby([pairs["b"], pairs["a"]]).mean().unstack().reindex(index=range(n), columns=range(n))
    )
    fig = go.Figure(
        go.Heatmap(
            z=rate.to_numpy(),
            x=list(range(n)),
            y=list(range(n)),
            colorscale="Reds",
            zmin=0,
            zmax=1,
            colorbar={"title": "error rate"},
        )
    )
    fig.update_layout(
        title=f"Share of the {pairs['run_id'].nunique()} members wrong on (a, b) at epoch {epoch}",
        xaxis={"title": "a", "range": [-0.5, n - 0.5]},
        yaxis={"title": "b", "range": [-0.5, n - 0.5]},
        width=WIDTH,
        height=HEIGHT,
    )
    return fig


def main(sweep_dir: str) -> None:
    sweep = load_sweep(sweep_dir)
    runs = sweep.runs.sort_values(["weight_decay", "seed"])
    trained_gaps = sorted(int(g) for g in runs["force_adjacent"].iloc[0])
    pairs = pair_table(sweep_dir, runs)
    epoch = int(runs["epochs_trained"].max())  # the snapshot the pairs are scored at: the last

    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    save_png(curves_figure(sweep.metrics, runs), out / "curves.png")
    save_png(gap_figure(pairs, trained_gaps, epoch), out / "errors_by_gap.png")
    save_png(error_map_figure(pairs, int(runs["p"].iloc[0]), epoch), out / "error_map.png")

    print("final test accuracy per member (weight decay, seed: acc):")
    final = runs.set_index(["weight_decay", "seed"])["final/test/acc"].unstack()
    print(final.round(4).to_string())
    per_wd = runs.groupby("weight_decay")["final/test/acc"].agg(["mean", "min", "max"])
    print("\nper weight decay, over seeds:\n" + per_wd.round(4).to_string())
    # Evaluated every eval_every epochs: where the curve was at 1000 and 2000, to tell plateau from climb.
    m = sweep.metrics.merge(runs[["run_id", "weight_decay"]], on="run_id")
    at = m[m["epoch"].isin([500, 1000, 2000, 3000])].groupby(["weight_decay", "epoch"])["test/acc"].mean()
    print("\nmean test accuracy at epochs 500/1000/2000/3000:\n" + at.unstack().round(4).to_string())

    wrong = pairs[~pairs["correct"]]
    print(f"\nwrong pairs: {len(wrong)} of {len(pairs)} member-pairs ({len(wrong) / len(pairs):.4f})")
    print(f"  trained gaps {trained_gaps}: {int(wrong['gap'].isin(trained_gaps).sum())} wrong")
    print(f"  ties (a == b): {int((wrong['gap'] == 0).sum())} wrong")
    print(f"  predicted min(a, b) instead of max: {wrong['pred_min'].mean():.3f} of the wrong pairs")
    off = (wrong["pred"] - wrong["label"]).abs()
    print(f"  |prediction - max|: median {off.median():.0f}, share <= 2: {(off <= 2).mean():.3f}")
    between = wrong["gap"].between(3, 16)
    print(
        f"  gap 3-16 (between the trained gaps 2 and 17): {between.mean():.3f} of the wrong pairs; "
        f"gap >= 18: {(wrong['gap'] >= 18).mean():.3f}"
    )
    print(
        f"  larger operand < 32: {(np.maximum(wrong['a'], wrong['b']) < 32).mean():.3f} of the wrong pairs "
        f"(such pairs are {(np.maximum(pairs['a'], pairs['b']) < 32).mean():.3f} of all)"
    )
    per_member = pairs.groupby("run_id")["correct"].agg(lambda c: int((~c).sum()))
    print(f"  wrong pairs per member: {sorted(per_member.tolist())}")
    members_3_16 = (pairs[pairs["gap"].between(3, 16)].groupby("run_id")["correct"].mean() < 0.99).sum()
    print(f"  members below 0.99 on gaps 3-16: {members_3_16} of {pairs['run_id'].nunique()}")
    circuit = pairs.groupby("run_id").agg(
        weight_decay=("weight_decay", "first"),
        seed=("seed", "first"),
        wrong=("correct", lambda c: int((~c).sum())),
        qk_monotonic=("max/qk_monotonic_frac", "first"),
        qk_min_gap=("max/qk_min_gap", "first"),
        ov_copy=("max/ov_copy_frac", "first"),
    )
    print(f"\nper member: wrong pairs and the QK / OV summaries (grokcore.progress.attention) at epoch {epoch}:")
    print(circuit.sort_values("wrong").round(4).to_string(index=False))
    print(
        f"  Spearman correlation of wrong pairs with qk_monotonic: "
        f"{circuit['wrong'].corr(circuit['qk_monotonic'], method='spearman'):.2f}"
    )
    bands = pd.cut(pairs["gap"], [-1, 2, 16, 17, 63], labels=["0-2", "3-16", "17", "18-63"])
    print("\naccuracy by gap band (all weight decays pooled):")
    print(pairs.groupby(bands, observed=True)["correct"].agg(["mean", "size"]).round(4).to_string())
    print("\naccuracy by gap band and weight decay:")
    print(pairs.groupby(["weight_decay", bands], observed=True)["correct"].mean().unstack().round(4).to_string())
    hi = np.maximum(pairs["a"], pairs["b"])
    lo = np.minimum(pairs["a"], pairs["b"])
    print("\nwrong pairs by the larger operand (max) in bands of 16:")
    print((~pairs["correct"]).groupby(pd.cut(hi, [-1, 15, 31, 47, 63])).mean().round(4).to_string())
    print("\nwrong pairs by the smaller operand (min) in bands of 16:")
    print((~pairs["correct"]).groupby(pd.cut(lo, [-1, 15, 31, 47, 63])).mean().round(4).to_string())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python reproductions/max_of_two/figures.py results/repro-max_of_two")
    main(sys.argv[1])

"""Max of two: where the test accuracy stands at the seed's 3,000 epochs, which pairs are wrong there, and
what the adaptive budget (to 24,000 epochs) decides.

    python reproductions/max_of_two/figures.py results/repro-max_of_two   # also writes data/pairs.parquet
    python reproductions/max_of_two/figures.py --from-table              # the committed data/

From a results folder it scores every one of the 64 x 64 test pairs with each member's weights at each
snapshot (grokcore.snapshots: the spec keeps epoch 3,000, each budget round's end and the member's end),
with the notebook's QK / OV summaries of the same weights (grokcore.progress.attention.qk_ov_summaries),
and writes them to data/pairs.parquet and data/circuits.csv, which the table lacks; `--from-table` reads
them back. "At 3,000 epochs" is the snapshot at 3,000, or a member's last one where it stopped earlier
(it had generalised: the stop rule needs test accuracy held at 0.99).

Writes figures/gen_epoch.png (each member's generalisation epoch against weight decay, censored members
as "> E"), figures/curves.png (each member's test accuracy, one panel per weight decay),
figures/errors_by_gap.png and figures/error_map.png (the pairs wrong at 3,000 epochs), and prints the
numbers the README quotes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis import aggregate, axis_curve

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import WIDTH, add_caption, add_censored_end, check_figure, label_axes, print_written, save_figure, save_png  # noqa: E402
from _table import add_source_arguments, load_source, table_dir  # noqa: E402

NAME = HERE.name
CURVES_HEIGHT = 760
SEED_EPOCHS = 3000  # the seed notebook's budget: the README's first question is what it shows
PAIRS_FILE = "pairs.parquet"
CIRCUITS_FILE = "circuits.csv"
CIRCUIT_COLUMNS = {
    "max/qk_monotonic_frac": "qk_monotonic",
    "max/qk_min_gap": "qk_min_gap",
    "max/ov_copy_frac": "ov_copy",
}
GAP_BANDS = ([-1, 2, 16, 17, 63], ["0-2", "3-16", "17", "18-63"])


def score_snapshots(sweep_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every member's prediction on every test pair at every snapshot, and the QK / OV summaries there."""
    import torch

    from grokcore.data import member_data
    from grokcore.export import MemberModule
    from grokcore.progress.attention import qk_ov_summaries
    from grokcore.snapshots import SnapshotFiles

    files = SnapshotFiles(sweep_dir)
    pairs, circuits = [], []
    for entry in files.list():
        cfg, weights = files.load(entry["run_id"], entry["epoch"])
        data = member_data(cfg)
        a, b = data.test_tokens[:, 0].numpy(), data.test_tokens[:, 1].numpy()
        # The table keeps no labels: they are max(a, b), which this checks once per member.
        if not (data.test_labels.numpy() == np.maximum(a, b)).all():
            raise SystemExit(f"{entry['run_id']}: test labels are not max(a, b)")
        with torch.no_grad():
            pred = MemberModule(cfg, weights)(data.test_tokens).argmax(-1).numpy()
        pairs.append(
            pd.DataFrame({"run_id": entry["run_id"], "epoch": entry["epoch"], "a": a, "b": b, "pred": pred}).astype(
                {"a": "int8", "b": "int8", "pred": "int8"}
            )
        )
        summary = qk_ov_summaries({k: v.unsqueeze(0) for k, v in weights.items()}, cfg)
        circuits.append(
            {"run_id": entry["run_id"], "epoch": entry["epoch"], **{k: float(v[0]) for k, v in summary.items()}}
        )
    pairs = pd.concat(pairs, ignore_index=True).drop_duplicates(["run_id", "epoch", "a", "b"])
    circuits = pd.DataFrame(circuits).drop_duplicates(["run_id", "epoch"])
    return pairs, circuits


def write_pair_tables(pairs: pd.DataFrame, circuits: pd.DataFrame) -> None:
    out = table_dir(NAME)
    out.mkdir(parents=True, exist_ok=True)
    pairs.to_parquet(out / PAIRS_FILE, index=False, compression="zstd")
    circuits.to_csv(out / CIRCUITS_FILE, index=False)


def read_pair_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(table_dir(NAME) / PAIRS_FILE), pd.read_csv(table_dir(NAME) / CIRCUITS_FILE)


def snapshot_at(pairs: pd.DataFrame, times: pd.DataFrame, which: str) -> pd.Series:
    """Per member, the snapshot epoch that stands for `which`: 'seed' (3,000, or its end if it stopped
    earlier) or 'end' (its last)."""
    epochs = pairs.groupby("run_id")["epoch"].unique()
    if which == "end":
        return epochs.map(max)
    return epochs.map(lambda e: SEED_EPOCHS if SEED_EPOCHS in e else max(e))


def scored(pairs: pd.DataFrame, circuits: pd.DataFrame, times: pd.DataFrame, which: str) -> pd.DataFrame:
    """One row per (member, test pair) at `which`, with the member's axes, correctness and circuit summary."""
    at = snapshot_at(pairs, times, which).rename("epoch").reset_index()
    table = pairs.merge(at, on=["run_id", "epoch"])
    table = table.merge(times[["run_id", "weight_decay", "seed"]], on="run_id")
    table = table.merge(circuits.rename(columns=CIRCUIT_COLUMNS), on=["run_id", "epoch"])
    a, b = table["a"].astype(int), table["b"].astype(int)
    table["label"] = np.maximum(a, b)
    table["gap"] = (a - b).abs()
    table["correct"] = table["pred"] == table["label"]
    table["pred_min"] = table["pred"] == np.minimum(a, b)
    return table


def acc_at(evaluations: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """Each member's train and test accuracy at `epoch`, or at its last evaluation where it stopped before."""
    rows = evaluations[evaluations["epoch"] <= epoch].sort_values(["run_id", "epoch"])
    return (
        rows.groupby("run_id")[["train/acc", "test/acc"]].last().rename(columns=lambda c: c.split("/")[0] + "_acc_3000")
    )


def gen_figure(times: pd.DataFrame) -> go.Figure:
    fig = axis_curve(times, "weight_decay", "gen_epoch")
    fig.add_hline(
        y=SEED_EPOCHS,
        line={"dash": "dot", "color": "grey"},
        annotation_text="the seed's 3,000 epochs",
        annotation_position="top left",
    )
    fig.update_layout(title=f"Max of two: epoch of generalisation per weight decay ({len(times)} members)")
    return label_axes(fig, "weight decay", "generalisation epoch (epochs)")


def curves_figure(evaluations: pd.DataFrame, times: pd.DataFrame) -> go.Figure:
    """One panel per weight decay, one line per seed: means over seeds mislead once members stop at
    different epochs, and one panel kept wd 0 hidden under wd 0.1 before."""
    decays = sorted(times["weight_decay"].unique())
    fig = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes="all",
        shared_yaxes=True,
        vertical_spacing=0.13,
        horizontal_spacing=0.08,
    )
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    censored_in_legend = False
    m = evaluations[evaluations["epoch"] > 0].merge(times[["run_id", "weight_decay", "seed", "censored"]], on="run_id")
    for i, wd in enumerate(decays):
        row, col = i // 2 + 1, i % 2 + 1
        for seed, group in m[m["weight_decay"] == wd].groupby("seed"):
            group = group.sort_values("epoch")
            fig.add_scatter(
                x=group["epoch"],
                y=group["test/acc"],
                mode="lines",
                line={"width": 1.2, "color": colours[int(seed) % len(colours)]},
                name=f"seed {seed}",
                legendgroup=f"seed {seed}",
                showlegend=i == 0,
                row=row,
                col=col,
            )
            if group["censored"].iloc[0]:
                colour = colours[int(seed) % len(colours)]
                add_censored_end(fig, group.iloc[-1], colour, 8, not censored_in_legend, row=row, col=col)
                censored_in_legend = True
        fig.add_vline(x=SEED_EPOCHS, line={"dash": "dot", "color": "grey"}, row=row, col=col)
    # the panel's weight decay in its y title: subplot titles collided with the top row's x titles
    # range past the last epoch, so the censored members' triangles at 24,000 are not cut in half
    right = np.log10(m["epoch"].max() * 1.4)
    fig.update_xaxes(
        type="log",
        range=[np.log10(40), right],
        title={"text": "epoch (log scale)", "font": {"size": 11}},
        showticklabels=True,
    )
    fig.update_yaxes(range=[0.7, 1.005])
    for i, wd in enumerate(decays):
        fig.update_yaxes(title=f"test accuracy, wd {wd:g}", row=i // 2 + 1, col=i % 2 + 1)
    fig.update_layout(
        title="Max of two: each member's test accuracy on all 4,096 pairs (dotted: the seed's 3,000 epochs)"
    )
    return fig


def gap_figure(pairs: pd.DataFrame, trained_gaps: list[int], epoch: int) -> go.Figure:
    by_gap = pairs.groupby(["weight_decay", "gap"])["correct"].mean().reset_index()
    fig = go.Figure()
    styles = [("solid", 3.5), ("dash", 2.5), ("dot", 2), ("dashdot", 1.5)]
    for (wd, group), (dash, width) in zip(by_gap.groupby("weight_decay"), styles * 3, strict=False):
        fig.add_scatter(
            x=group["gap"],
            y=group["correct"],
            mode="lines+markers",
            marker={"size": 4},
            line={"dash": dash, "width": width},
            name=f"wd {wd:g}",
        )
    for g in trained_gaps:
        fig.add_vline(x=g, line={"dash": "dot", "color": "grey"})
    fig.update_layout(
        title=f"Accuracy by |a - b| at epoch {epoch:,} or an earlier stop (dotted: the trained gaps {trained_gaps})"
    )
    return label_axes(
        fig,
        "|a - b| (gap between the operands, in tokens)",
        f"share right at epoch {epoch:,} ({pairs['seed'].nunique()} seeds pooled)",
    )


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
            colorbar={"title": "share wrong"},
        )
    )
    fig.update_layout(
        title=f"Share of the {pairs['run_id'].nunique()} members wrong on (a, b) at epoch {epoch:,} or an earlier stop",
        xaxis={"range": [-0.5, n - 0.5]},
        yaxis={"range": [-0.5, n - 0.5]},
    )
    return label_axes(fig, "a (first operand, token 0-63)", "b (second operand, token 0-63)")


def error_analysis(pairs: pd.DataFrame, trained_gaps: list[int], label: str) -> None:
    wrong = pairs[~pairs["correct"]]
    print(f"\n== wrong pairs {label} ==")
    print(f"wrong pairs: {len(wrong)} of {len(pairs)} member-pairs ({len(wrong) / len(pairs):.4f})")
    if wrong.empty:
        return
    trained = wrong[wrong["gap"].isin(trained_gaps)]
    print(
        f"  trained gaps {trained_gaps} (the training pairs): {len(trained)} wrong, in {trained['run_id'].nunique()} "
        f"members; predicted the smaller operand in {trained['pred_min'].mean():.3f} of them"
    )
    print(f"  predicted min(a, b) instead of max: {wrong['pred_min'].mean():.3f} of the wrong pairs")
    off = (wrong["pred"].astype(int) - wrong["label"]).abs()
    print(f"  |prediction - max|: median {off.median():.0f}")
    print(
        f"  gap 3-16 (between the trained gaps 2 and 17): {wrong['gap'].between(3, 16).mean():.3f} of the wrong "
        f"pairs; gap >= 18: {(wrong['gap'] >= 18).mean():.3f}"
    )
    print(
        f"  larger operand < 32: {(wrong['label'] < 32).mean():.3f} of the wrong pairs "
        f"(such pairs are {(pairs['label'] < 32).mean():.3f} of all)"
    )
    bands = pd.cut(pairs["gap"], GAP_BANDS[0], labels=GAP_BANDS[1])
    print("  accuracy by gap band:")
    print(pairs.groupby(bands, observed=True)["correct"].mean().round(4).to_string())
    print("  error rate by the larger operand, bands of 16:")
    print((~pairs["correct"]).groupby(pd.cut(pairs["label"], [-1, 15, 31, 47, 63])).mean().round(4).to_string())


def circuit_table(pairs: pd.DataFrame) -> pd.DataFrame:
    return (
        pairs.groupby("run_id")
        .agg(
            weight_decay=("weight_decay", "first"),
            seed=("seed", "first"),
            epoch=("epoch", "first"),
            wrong=("correct", lambda c: int((~c).sum())),
            qk_monotonic=("qk_monotonic", "first"),
            qk_min_gap=("qk_min_gap", "first"),
            ov_copy=("ov_copy", "first"),
        )
        .sort_values(["wrong", "weight_decay", "seed"])
    )


def print_circuits(circuit: pd.DataFrame, label: str) -> None:
    print(f"\nper member {label}: wrong pairs and the QK / OV summaries:")
    print(circuit.round(4).to_string(index=False))
    clean, erring = circuit[circuit["wrong"] == 0], circuit[circuit["wrong"] > 0]
    print(
        f"  no error: {len(clean)} members, qk_monotonic {clean['qk_monotonic'].min():.2f}-"
        f"{clean['qk_monotonic'].max():.2f}, qk_min_gap > 0 in {int((clean['qk_min_gap'] > 0).sum())}"
    )
    if len(erring):
        print(
            f"  with errors: {len(erring)} members, qk_monotonic {erring['qk_monotonic'].min():.2f}-"
            f"{erring['qk_monotonic'].max():.2f}, qk_min_gap < 0 in {int((erring['qk_min_gap'] < 0).sum())}; "
            f"ov_copy {circuit['ov_copy'].min():.2f}-{circuit['ov_copy'].max():.2f} over all"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    times = source.times.sort_values(["weight_decay", "seed"]).reset_index(drop=True)
    if args.from_table:
        pairs, circuits = read_pair_tables()
    else:
        pairs, circuits = score_snapshots(args.sweep)
        write_pair_tables(pairs, circuits)
    base = source.spec["base"]
    trained_gaps = sorted(int(g) for g in base["force_adjacent"])
    pd.set_option("display.width", 200)

    acc3000 = acc_at(source.evaluations, SEED_EPOCHS)
    # from the evaluations, not the table's final_ columns: a results folder's member_times lacks them
    last = source.evaluations.sort_values(["run_id", "epoch"]).groupby("run_id")[["train/acc", "test/acc"]].last()
    last = last.rename(columns=lambda c: "final_" + c)
    members = times.drop(columns=[c for c in last.columns if c in times]).merge(
        acc3000, left_on="run_id", right_index=True
    )
    members = members.merge(last, left_on="run_id", right_index=True)
    print("per member (times by the held rule; test accuracy at 3,000 or at the stop before it, and at its end):")
    cols = ["weight_decay", "seed", "status", "budget", "last_epoch", "mem_epoch", "gen_epoch", "delay", "phase"]
    print(
        members[[*cols, "censored", "train_acc_3000", "test_acc_3000", "final_train/acc", "final_test/acc"]].to_string(
            index=False, float_format=lambda v: f"{v:.4g}"
        )
    )

    print(f"\n== the seed's {SEED_EPOCHS:,} epochs ==")
    by_3000 = members["gen_epoch"] <= SEED_EPOCHS
    print(f"generalised by {SEED_EPOCHS:,}: {int(by_3000.sum())} of {len(members)}")
    below = members["test_acc_3000"] < 0.99
    print(
        f"test accuracy at {SEED_EPOCHS:,}: {members['test_acc_3000'].min():.3f}-{members['test_acc_3000'].max():.3f}; "
        f"{int(below.sum())} members below 0.99, {int(members['test_acc_3000'].between(0.92, 0.94).sum())} in 0.92-0.94"
    )
    print(members.pivot(index="weight_decay", columns="seed", values="test_acc_3000").round(3).to_string())
    # The training set is every pair at the trained gaps, so a member below 0.99 there is not memorised.
    unfitted = members[below & ~(members["mem_epoch"] <= SEED_EPOCHS)]
    print(
        f"of the {int(below.sum())} below 0.99: {len(unfitted)} had not fitted the training set by {SEED_EPOCHS:,} "
        f"(train accuracy {unfitted['train_acc_3000'].min():.3f}-{unfitted['train_acc_3000'].max():.3f}), "
        f"{int(below.sum()) - len(unfitted)} had (memorised at "
        f"{members.loc[below & (members['mem_epoch'] <= SEED_EPOCHS), 'mem_epoch'].min():.0f}-"
        f"{members.loc[below & (members['mem_epoch'] <= SEED_EPOCHS), 'mem_epoch'].max():.0f})"
    )

    print("\n== the adaptive budget ==")
    gen = members[members["generalised"]]
    print(
        f"generalised: {len(gen)} of {len(members)}, at epochs "
        f"{gen['gen_epoch'].min():.0f}-{gen['gen_epoch'].max():.0f}; "
        f"after {SEED_EPOCHS:,}: {int((gen['gen_epoch'] > SEED_EPOCHS).sum())}"
    )
    cens = members[members["censored"]]
    print("censored (not generalised by their last epoch):")
    for _, r in cens.iterrows():
        print(
            f"  wd {r['weight_decay']:g} seed {r['seed']} at {r['censored_at']:.0f}: {r['phase']}, final train acc "
            f"{r['final_train/acc']:.3f}, test acc {r['final_test/acc']:.3f}"
        )
    print(f"member-epochs trained: {int(members['last_epoch'].sum()):,}")
    cells = aggregate(times, by=["weight_decay"])
    print("\nper weight decay (Kaplan-Meier median over seeds; NaN: half or more censored):")
    print(
        cells[
            ["weight_decay", "n_members", "n_generalised", "gen_epoch_median", "n_censored", "phase_counts"]
        ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )
    print("phases: " + ", ".join(f"{k} {v}" for k, v in members["phase"].value_counts().sort_index().items()))

    at_seed = scored(pairs, circuits, times, "seed")
    at_end = scored(pairs, circuits, times, "end")
    error_analysis(at_seed, trained_gaps, f"at {SEED_EPOCHS:,} epochs (or the member's earlier stop)")
    print_circuits(circuit_table(at_seed), f"at {SEED_EPOCHS:,} epochs")
    censored_ids = set(cens["run_id"])
    error_analysis(at_end[at_end["run_id"].isin(censored_ids)], trained_gaps, "of the censored members at their end")
    print_circuits(circuit_table(at_end), "at each member's end")
    # The QK inversion is free on the training set (no trained pair compares tokens 3-16 apart); what
    # happens to it between 3,000 and a member's end says whether leaving the plateau is removing it.
    inversion = pd.DataFrame(
        {
            "largest_inversion_3000": -circuit_table(at_seed)["qk_min_gap"].clip(upper=0),
            "largest_inversion_end": -circuit_table(at_end)["qk_min_gap"].clip(upper=0),
        }
    ).join(times.set_index("run_id")[["weight_decay", "seed", "gen_epoch", "censored"]])
    late = inversion[inversion["gen_epoch"] > SEED_EPOCHS]
    print(
        f"\nlargest QK inversion (minus the smallest rise of the attention score), at 3,000 -> at the end:\n"
        f"  the {len(late)} members generalised after 3,000: {late['largest_inversion_3000'].min():.2f}-"
        f"{late['largest_inversion_3000'].max():.2f} -> {late['largest_inversion_end'].min():.2f}-"
        f"{late['largest_inversion_end'].max():.2f}"
    )
    for _, r in inversion[inversion["censored"]].sort_values("seed").iterrows():
        print(
            f"  censored wd {r['weight_decay']:g} seed {r['seed']}: {r['largest_inversion_3000']:.2f} -> "
            f"{r['largest_inversion_end']:.2f}"
        )
    per_round = pairs[pairs["run_id"].isin(censored_ids)].merge(times[["run_id", "seed"]], on="run_id")
    per_round = per_round.assign(wrong=per_round["pred"].astype(int) != np.maximum(per_round["a"], per_round["b"]))
    print("\ncensored members' wrong pairs at each snapshot:")
    print(per_round.groupby(["seed", "epoch"])["wrong"].sum().unstack().to_string())

    p = int(base["p"])
    figures = [
        (gen_figure(times), "gen_epoch", True),
        (curves_figure(source.evaluations, times), "curves", True),
        (gap_figure(at_seed, trained_gaps, SEED_EPOCHS), "errors_by_gap", True),
        (error_map_figure(at_seed, p, SEED_EPOCHS), "error_map", False),
    ]
    written = []
    for fig, name, legend_below in figures:
        add_caption(fig, source.spec, times)
        check_figure(fig)
        path = save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=80, b=110), legend_below=legend_below)
        if name == "curves":
            # taller than the shared size: at 500 px the censored members' end points (test accuracy
            # 0.959 and 0.969) fell on one another
            fig.update_layout(legend_y=-0.12)
            save_png(fig, path, width=WIDTH, height=CURVES_HEIGHT)
        written.append(path)
    print_written(written, HERE.parent.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())

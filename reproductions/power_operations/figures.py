"""Figure and numbers of the Power et al. (2022) operation table: per binary operation, the smallest train
fraction at which it generalises within the budget, from the two sweeps (modular operations, S4 operations).

    python reproductions/power_operations/figures.py results/repro-power_operations \
        results/repro-power_operations-groups
    python reproductions/power_operations/figures.py --from-table     # the committed data/ and groups/data/

A fraction generalises for an operation when at least half of its seeds (2 of 3) generalised by the held
rule (grokcore/verdict.py) within the budget (analysis.tasks_figure); an operation with no such fraction is
drawn as "none within the budget", its members censored at their last epoch. Writes figures/*.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis.tasks_figure import FINAL_TEST_ACC, min_fraction_figure, smallest_generalising_fraction

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py and _table.py, shared by the scripts
from _png import WIDTH, caption, check_figure, print_written, save_figure, save_png  # noqa: E402
from _table import REPRO_PREFIX, Source, load_source  # noqa: E402

NAME = HERE.name
GROUPS = f"{NAME}/groups"  # the S4 sweep's tables: reproductions/power_operations/groups/data/
MIN_SHARE = 0.5
# The paper's notation (Power et al. 2022, their list of binary operations), by the project's task names.
NOTATION = {
    "add": "x + y",
    "sub": "x − y",
    "mul": "x · y",
    "div": "x / y",
    "div_or_sub": "x / y if y odd, else x − y",
    "sq_sum": "x² + y²",
    "quad": "x² + xy + y²",
    "quad_x": "x² + xy + y² + x",
    "cube_xy": "x³ + xy",
    "cube_xy2_y": "x³ + xy² + y",
    "add_or_sub": "x + y if x even, else x − y (code)",
    "add_or_mul": "x + y if x even, else x · y (code)",
    "perm": "x · y (S{p})",
    "perm_conj": "x · y · x⁻¹ (S{p})",
    "perm_xyx": "x · y · x (S{p})",
}
BEST_TEST_ACC = "best_test_acc"  # the paper's Figure 2 (right) plots the best validation accuracy in the budget


def notation(task: str, p: int) -> str:
    return NOTATION.get(task, task).format(p=p)


def load(args: argparse.Namespace) -> tuple[pd.DataFrame, list[dict]]:
    """Every member of both sweeps (task, p, train_fraction, seed, gen_epoch, censored, final test accuracy)
    and the two specs as run."""
    sources: list[Source] = []
    if args.from_table:
        for name in (NAME, GROUPS):
            sources.append(load_source(argparse.Namespace(from_table=True, sweep=None), name))
    else:
        if len(args.sweeps) != 2:
            raise SystemExit(
                f"give the two sweep folders (results/{REPRO_PREFIX}{NAME} and results/{REPRO_PREFIX}{NAME}-groups)"
                " or --from-table"
            )
        for sweep in args.sweeps:
            sources.append(load_source(argparse.Namespace(from_table=False, sweep=sweep), NAME))
    frames = []
    for source in sources:
        times = source.times.copy()
        times["p"] = int(source.spec["base"]["p"])
        final = "final_test/acc" if "final_test/acc" in times else None
        if final is None:  # a results folder: the last evaluation's test accuracy
            last = source.evaluations.sort_values(["run_id", "epoch"]).groupby("run_id")["test/acc"].last()
            times[FINAL_TEST_ACC] = times["run_id"].map(last)
        else:
            times[FINAL_TEST_ACC] = times[final]
        best = source.evaluations.groupby("run_id")["test/acc"].max()
        times[BEST_TEST_ACC] = times["run_id"].map(best)
        times["operation"] = [notation(t, p) for t, p in zip(times["task"], times["p"], strict=True)]
        frames.append(times)
    members = pd.concat(frames, ignore_index=True)
    members.attrs["thresholds"] = sources[0].times.attrs["thresholds"]
    return members, [s.spec for s in sources]


def operation_table(members: pd.DataFrame) -> pd.DataFrame:
    """analysis.tasks_figure's table (hardest first) with the paper's notation and, per operation, how many
    seeds generalised at each fraction and the median generalisation epoch at its smallest fraction."""
    runs = members.assign(epoch_generalised=members["gen_epoch"])
    table = smallest_generalising_fraction(runs, MIN_SHARE)
    table.insert(0, "notation", [notation(t, p) for t, p in zip(table["task"], table["p"], strict=True)])
    counts = (
        members.groupby(["task", "train_fraction"])["generalised"]
        .agg(lambda g: f"{int(g.sum())}/{len(g)}")
        .unstack("train_fraction")
    )
    table["seeds generalised per fraction"] = table["task"].map(lambda t: " ".join(counts.loc[t]))
    at_min = members.merge(table[["task", "min_train_fraction"]], on="task")
    at_min = at_min[at_min["train_fraction"] == at_min["min_train_fraction"]]
    table["median gen epoch at that fraction"] = table["task"].map(
        at_min[at_min["generalised"]].groupby("task")["gen_epoch"].median()
    )
    return table


def figure(members: pd.DataFrame, specs: list[dict]) -> go.Figure:
    runs = members.assign(epoch_generalised=members["gen_epoch"], task=members["operation"])
    fig = min_fraction_figure(runs, MIN_SHARE)
    fig.for_each_trace(lambda t: t.update(y=[y.split(" (p=")[0] for y in t.y]))
    order = [y.split(" (p=")[0] for y in fig.layout.yaxis.categoryarray]
    budget = specs[0].get("budget", {}).get("max_epochs")
    fig.update_traces(
        selector=dict(name="none within budget (up to the largest fraction tried)"),
        name=f"none within the budget (every member censored at ≤ {budget:,} epochs)",
    )
    fig.update_layout(
        title_text=(
            "Power et al. (2022): smallest train fraction at which an operation generalises "
            f"(≥ {MIN_SHARE:.0%} of seeds)<br><sup>{caption(specs[0], members)}; S4 (24 elements) likewise</sup>"
        ),
        xaxis_title="train fraction (share of all operand pairs)",
        yaxis=dict(title="operation (hardest on top)", categoryarray=order),
    )
    return fig


def accuracy_figure(members: pd.DataFrame, specs: list[dict], order: list[str]) -> go.Figure:
    """The paper's Figure 2 (right): per operation, the best test accuracy reached within the budget against
    the train fraction, the mean over seeds (each seed a faint marker); the hardest operations drawn last."""
    fig = go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot")
    for k, operation in enumerate(order):
        rows = members[members["operation"] == operation]
        mean = rows.groupby("train_fraction")[BEST_TEST_ACC].mean()
        colour = pio_colour(k)
        for fitted, symbol in ((True, "circle"), (False, "circle-open")):
            seeds = rows[rows["mem_epoch"].notna() == fitted]
            fig.add_trace(
                go.Scatter(
                    x=seeds["train_fraction"],
                    y=seeds[BEST_TEST_ACC],
                    mode="markers",
                    marker=dict(color=colour, size=6, opacity=0.5, symbol=symbol),
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=list(mean.index),
                y=list(mean.values),
                mode="lines+markers",
                name=operation,
                line=dict(color=colour, dash=dashes[k % len(dashes)], width=2),
                marker=dict(size=6),
            )
        )
    fig.update_layout(
        title_text=(
            "Power et al. (2022), Figure 2 (right): best test accuracy within the budget, per operation"
            f"<br><sup>{caption(specs[0], members)}</sup><br><sup>lines: mean of seeds; dots: each seed, open where it "
            "never fitted its training set (confusion); S4 has 24 elements, 576 pairs</sup>"
        ),
        xaxis=dict(title="train fraction (share of all operand pairs)", range=[0.25, 0.95]),
        yaxis=dict(title="best test accuracy within the budget (fraction of held-out pairs)", range=[0, 1.03]),
        template="plotly_white",
        legend=dict(orientation="h", yanchor="top", y=-0.15, x=0, font_size=11),
    )
    return fig


def pio_colour(k: int) -> str:
    palette = (
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
        "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
    )  # fmt: skip
    return palette[k % len(palette)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweeps", nargs="*", help=f"results/{REPRO_PREFIX}{NAME} and results/{REPRO_PREFIX}{NAME}-groups"
    )
    parser.add_argument("--from-table", action="store_true", help="draw from the committed tables instead")
    args = parser.parse_args(argv)
    if args.from_table == bool(args.sweeps):
        raise SystemExit("give the two results folders or --from-table, not both or neither")
    members, specs = load(args)
    table = operation_table(members)
    pd.set_option("display.width", 250)
    print("per operation, hardest first (fractions 0.3 ... 0.9; a fraction counts when >= half the seeds generalised):")
    print(
        table[
            [
                "notation",
                "p",
                "min_train_fraction",
                "seeds generalised per fraction",
                "median gen epoch at that fraction",
                "best_final_test_acc",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.3g}")
    )
    best = members.groupby(["operation", "train_fraction"])[BEST_TEST_ACC].mean().unstack("train_fraction")
    print("\nbest test accuracy within the budget, mean of seeds (the paper's Figure 2, right):")
    print(best.loc[list(table["notation"])].to_string(float_format=lambda v: f"{v:.2f}"))
    phases = members.assign(cell=members["phase"].str[:4]).groupby(["operation", "train_fraction"])["cell"]
    print("\nphases per fraction (comp(rehension), grok(king), memo(risation), conf(usion), members per cell):")
    cells = phases.agg(lambda c: " ".join(f"{k}{n}" for k, n in c.value_counts().sort_index().items()))
    print(cells.unstack("train_fraction").loc[list(table["notation"])].to_string())
    fig = figure(members, specs)
    check_figure(fig)
    written = [save_figure(fig, HERE, "min_fraction", margin=dict(l=230, r=40, t=90, b=120), legend_below=True)]
    # the easiest operations first in the legend, as the hardest are on top of the bar chart
    order = list(table["notation"])[::-1]
    accuracy = accuracy_figure(members, specs, order)
    check_figure(accuracy)
    accuracy.update_layout(title_font_size=13, margin=dict(l=80, r=30, t=110, b=60))
    path = HERE / "figures" / "accuracy_vs_fraction.png"
    save_png(accuracy, path, width=WIDTH, height=720)
    written.append(path)
    print_written(written, HERE.parent.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())

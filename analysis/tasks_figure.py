"""Which operations need the most data: Power et al.'s figure of the smallest training fraction
that generalises within the budget, per operation, from a sweep over task x train_fraction.

    table = smallest_generalising_fraction(runs)     # one row per operation
    fig = min_fraction_figure(runs)                  # horizontal bars, hardest operation on top

A member generalised when its row has `epoch_generalised` (the one rule, grokcore/verdict.py: test
accuracy reached and held; the runs rows carry it, and the report passes its own `gen_epoch`). A fraction
generalises for an operation when at least `min_share` of its members there did. Operations are
told apart by task and p (S4 and S5 are both `perm`).
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from analysis.errors import AnalysisError
from grokcore.records import ACC_THRESHOLD

REQUIRED = ("task", "p", "train_fraction", "epoch_generalised")
FINAL_TEST_ACC = "final/test/acc"
OPERATION_COLUMNS = (
    "operation",
    "task",
    "p",
    "min_train_fraction",
    "fractions_tried",
    "largest_fraction",
    "members",
    "generalised",
    "best_final_test_acc",
)


def smallest_generalising_fraction(runs: pd.DataFrame, min_share: float = 0.5) -> pd.DataFrame:
    """Per operation (task, p): the smallest train_fraction at which at least `min_share` of the
    members generalised within their budget (NaN when no fraction did), how many fractions and
    members were tried, and how many members generalised. `best_final_test_acc` (the best final
    test accuracy of any member, NaN without that column) tells apart operations that never
    generalised. Sorted from the most data needed to the least: first the operations that
    generalised at no fraction, the least accurate first, then by their smallest fraction."""
    missing = [c for c in REQUIRED if c not in runs.columns]
    if missing:
        raise AnalysisError(f"the runs table lacks {missing}; smallest_generalising_fraction needs {list(REQUIRED)}")
    if not 0 < min_share <= 1:
        raise AnalysisError(f"min_share must be in (0, 1], got {min_share}")
    data = runs.loc[:, list(REQUIRED)].copy()
    data["generalised"] = data["epoch_generalised"].notna()
    data["final_acc"] = runs[FINAL_TEST_ACC].astype(float) if FINAL_TEST_ACC in runs.columns else math.nan
    cells = (
        data.groupby(["task", "p", "train_fraction"], sort=True)
        .agg(
            share=("generalised", "mean"),
            members=("generalised", "size"),
            generalised=("generalised", "sum"),
            best_acc=("final_acc", "max"),
        )
        .reset_index()
    )
    rows = []
    for (task, p), group in cells.groupby(["task", "p"], sort=True):
        ok = group.loc[group["share"] >= min_share, "train_fraction"]
        rows.append(
            {
                "operation": f"{task} (p={p})",
                "task": task,
                "p": int(p),
                "min_train_fraction": float(ok.min()) if len(ok) else math.nan,
                "fractions_tried": len(group),
                "largest_fraction": float(group["train_fraction"].max()),
                "members": int(group["members"].sum()),
                "generalised": int(group["generalised"].sum()),
                "best_final_test_acc": float(group["best_acc"].max()),
            }
        )
    table = pd.DataFrame(rows, columns=list(OPERATION_COLUMNS))
    # hardest first: no fraction generalised, the least accurate of those first; then by the fraction
    hardness = table["min_train_fraction"].fillna(math.inf)
    return (
        table.assign(_h=hardness)
        .sort_values(["_h", "best_final_test_acc", "operation"], ascending=[False, True, True], na_position="first")
        .drop(columns="_h")
        .reset_index(drop=True)
    )


def min_fraction_figure(runs: pd.DataFrame, min_share: float = 0.5, title: str | None = None) -> go.Figure:
    """Horizontal bars of smallest_generalising_fraction, the hardest operation on top. An operation
    that generalised at no fraction tried gets a hatched bar to its largest fraction, marked
    'none within budget'."""
    table = smallest_generalising_fraction(runs, min_share)
    if table.empty:
        raise AnalysisError("no members in the runs table")
    found = table["min_train_fraction"].notna()
    ops = list(table["operation"])[::-1]  # plotly draws the first category at the bottom
    order = table.iloc[::-1]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            name="smallest fraction that generalises",
            y=list(order.loc[found[::-1], "operation"]),
            x=list(order.loc[found[::-1], "min_train_fraction"]),
            orientation="h",
            marker_color="#1f77b4",
            text=[f"{v:.2f}" for v in order.loc[found[::-1], "min_train_fraction"]],
            textposition="outside",
            customdata=order.loc[found[::-1], ["generalised", "members"]].to_numpy(),
            hovertemplate="%{y}: %{x:.2f} (%{customdata[0]} of %{customdata[1]} members generalised)<extra></extra>",
        )
    )
    none = order.loc[~found[::-1]]
    if len(none):
        fig.add_trace(
            go.Bar(
                name="none within budget (up to the largest fraction tried)",
                y=list(none["operation"]),
                x=list(none["largest_fraction"]),
                orientation="h",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color="#d62728", width=1.5), pattern_shape="/"),
                text=["none"] * len(none),
                textposition="outside",
                hovertemplate="%{y}: no fraction up to %{x:.2f} generalised<extra></extra>",
            )
        )
    fig.update_layout(
        title=title
        or f"Smallest training fraction that generalises (test accuracy {ACC_THRESHOLD:g}) within the budget; "
        f"at least {min_share:.0%} of members",
        xaxis=dict(title="train fraction", range=[0, 1.05]),
        yaxis=dict(title="operation", categoryorder="array", categoryarray=ops),
        barmode="overlay",
        template="plotly_white",
        height=max(300, 40 * len(ops) + 120),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    """`python -m analysis.tasks_figure RESULTS... [--min-share S] [--html FILE]`: print the table of
    the sweeps under RESULTS (a sweep folder or a results folder), optionally write the figure."""
    import argparse

    from analysis.load import load_sweep

    parser = argparse.ArgumentParser(prog="python -m analysis.tasks_figure", description=main.__doc__)
    parser.add_argument("results", nargs="+", help="sweep folders, or results folders holding sweeps")
    parser.add_argument("--min-share", type=float, default=0.5, help="share of members that must generalise")
    parser.add_argument("--html", help="also write the figure here")
    args = parser.parse_args(argv)
    runs = load_sweep(args.results).runs
    table = smallest_generalising_fraction(runs, args.min_share)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["task", "p"]).to_string(index=False))
    if args.html:
        min_fraction_figure(runs, args.min_share).write_html(args.html, include_plotlyjs="cdn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

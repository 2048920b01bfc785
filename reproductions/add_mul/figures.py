"""The add/mul mixture: each task's test loss and accuracy against the share of addition in training.

Usage (from the repository root):
    python reproductions/add_mul/figures.py results/repro-add_mul
    python reproductions/add_mul/figures.py --from-table    # the committed data/ (with data/tasks.parquet)

test_add/* and test_mul/* are the metrics on the addition and the multiplication test pairs (the two
test sets are equal in size); test/acc is over both together, which is what the stop rule and the
adaptive budget read, so a member trained on one task only is never stopped early. Writes
figures/test_loss_vs_fraction.png and figures/test_acc_vs_fraction.png (each task's value at the last
epoch, mean and min-max over seeds), figures/gen_epochs.png (each member's generalisation epoch per
task by the held rule, censored members at the epoch they were last seen) and figures/curves.png (per-task
test accuracy over epochs), and prints the numbers the README quotes.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts

from _png import add_caption, check_figure, label_axes, save_figure  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402
from tasks import task_times, with_tasks  # noqa: E402

NAME = HERE.name
TASKS = {"add": ("addition", "#1f77b4"), "mul": ("multiplication", "#d62728")}
# Each task's points sit a little left or right of their fraction, so equal values do not hide each other.
OFFSET = {"add": -0.025, "mul": 0.025, "": 0.0}
WINDOW = 1000  # "still moving at the budget?": the change over a member's last WINDOW epochs


def final_rows(metrics: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    last = metrics.sort_values(["run_id", "epoch"]).groupby("run_id").last().reset_index()
    return last.merge(times[["run_id", "addition_fraction", "seed"]], on="run_id")


def at_epoch(metrics: pd.DataFrame, times: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """Each member's evaluation at `epoch` (or its last one before, for a member stopped earlier)."""
    rows = metrics[metrics["epoch"] <= epoch].sort_values(["run_id", "epoch"]).groupby("run_id").last().reset_index()
    return rows.merge(times[["run_id", "addition_fraction", "seed"]], on="run_id")


def spread(frame: pd.DataFrame, columns: list[str], digits: int = 3) -> pd.DataFrame:
    """mean [min, max] over seeds per addition fraction, as the README writes them."""
    g = frame.groupby("addition_fraction")[columns]

    def fmt(v):
        return f"{v:.{digits}f}"

    return g.mean().map(fmt) + " [" + g.min().map(fmt) + ", " + g.max().map(fmt) + "]"


def per_task_figure(final: pd.DataFrame, metric: str, p: int) -> go.Figure:
    fig = go.Figure()
    xs = sorted(final["addition_fraction"].unique())
    log = metric == "loss"
    chance = math.log(p) if log else 1 / p
    # A trace, not add_hline: an hline's annotation on a log axis is placed at 10**y and stretches the range.
    fig.add_scatter(
        x=[xs[0] - 0.03, xs[-1] + 0.03],
        y=[chance, chance],
        mode="lines",
        line={"dash": "dot", "color": "grey", "width": 1},
        name=f"uniform guess: {'ln p' if log else '1/p'} = {chance:.3g}",
    )
    fig.add_scatter(
        x=final["addition_fraction"],
        y=final["train/" + metric],
        mode="markers",
        name="train, both tasks (each member)",
        marker={"color": "grey", "symbol": "x-thin-open", "size": 9, "line": {"width": 1.5}},
    )
    for task, (label, colour) in TASKS.items():
        col = f"test_{task}/{metric}"
        stats = final.groupby("addition_fraction")[col].agg(["mean", "min", "max"]).reset_index()
        fig.add_scatter(
            x=stats["addition_fraction"] + OFFSET[task],
            y=stats["mean"],
            mode="lines+markers",
            name=f"{label} test pairs (mean, min-max over seeds)",
            line={"color": colour, "width": 3 if task == "add" else 1.5},
            marker={"symbol": "circle" if task == "add" else "diamond", "size": 8},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": stats["max"] - stats["mean"],
                "arrayminus": stats["mean"] - stats["min"],
            },
        )
    fig.update_layout(
        title=f"Add/mul mixture: each task's test {'loss' if log else 'accuracy'} at the last epoch",
        xaxis={"tickvals": xs},
        # decades only: plotly's minor log labels ("2", "5") crowd the axis
        yaxis={"type": "log", "dtick": 1} if log else {"type": "linear"},
    )
    return label_axes(
        fig,
        "addition fraction (share of the training pairs that are addition)",
        f"test {'loss (cross-entropy, nats)' if log else 'accuracy (share of test pairs)'} at the last epoch",
    )


def gen_epochs_figure(times: pd.DataFrame) -> go.Figure:
    """Each member's generalisation epoch per task; a censored member (never held 0.99 on that task's
    test pairs within its budget) is an open triangle at the epoch it was last seen, '> E'."""
    fig = go.Figure()
    seeds = sorted(times["seed"].unique())
    # seeds side by side within a task's group, groups side by side within a fraction: no marker on another
    jitter = {s: (i - (len(seeds) - 1) / 2) * 0.016 for i, s in enumerate(seeds)}
    groups = {**TASKS, "": ("both tasks together (test/acc)", "#555555")}
    for view, (label, colour) in groups.items():
        prefix = f"{view}/" if view else ""
        x = times["addition_fraction"] + OFFSET[view] * 2.4 + times["seed"].map(jitter)
        gen = times[prefix + "gen_epoch"]
        reached = gen.notna()
        fig.add_scatter(
            x=x[reached],
            y=gen[reached],
            mode="markers",
            name=f"{label}: generalised",
            marker={"color": colour, "symbol": "circle", "size": 9},
        )
        censored = times[prefix + "censored"].astype(bool)
        at = times.loc[censored, prefix + "censored_at"]
        fig.add_scatter(
            x=x[censored],
            y=at,
            mode="markers",
            name=f"{label}: censored, > E (not within the E epochs it reached)",
            marker={"color": colour, "symbol": "triangle-up-open", "size": 11, "line": {"width": 2}},
        )
    budget = times["censored_at"].max()
    fig.update_layout(
        title=f"Add/mul mixture: generalisation epoch per member and task (open triangles: > {budget:,.0f})",
        xaxis={"tickvals": sorted(times["addition_fraction"].unique())},
        yaxis={"rangemode": "tozero"},
    )
    return label_axes(
        fig,
        "addition fraction (share of the training pairs that are addition)",
        "generalisation epoch (epochs; test accuracy held ≥ 0.99)",
    )


FRACTION_COLOURS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#e8a700"]
FRACTION_DASHES = ["solid", "dash", "dot", "dashdot", "longdash"]


def curves_figure(metrics: pd.DataFrame, times: pd.DataFrame) -> go.Figure:
    """Each task's test accuracy over training, one panel per task, one line per addition fraction (mean of
    seeds). Accuracy on a linear epoch axis: the losses of the mixed fractions lay on top of each other
    on log axes, and the second round (3,000 -> 6,000) is where the question is."""
    m = metrics.merge(times[["run_id", "addition_fraction"]], on="run_id")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.1)
    for col, (task, (label, _)) in enumerate(TASKS.items(), start=1):
        for i, (f, group) in enumerate(m.groupby("addition_fraction")):
            mean = group.groupby("epoch")[f"test_{task}/acc"].mean()
            fig.add_scatter(
                x=mean.index,
                y=mean,
                mode="lines",
                name=f"addition fraction {f:g}",
                legendgroup=str(f),
                showlegend=col == 1,
                line={"color": FRACTION_COLOURS[i % 5], "dash": FRACTION_DASHES[i % 5], "width": 3 - 0.25 * i},
                row=1,
                col=col,
            )
        fig.update_xaxes(title=f"epoch ({label} test pairs)", row=1, col=col)
    fig.update_yaxes(title="test accuracy (share of pairs)", row=1, col=1)
    fig.update_yaxes(title="test accuracy", row=1, col=2)
    fig.update_layout(title="Add/mul mixture: each task's test accuracy over training, mean of seeds")
    return fig


def moved(metrics: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """Per member, each task's test accuracy at its last epoch minus WINDOW epochs before."""
    last = final_rows(metrics, times).set_index("run_id")
    end = last["epoch"]
    rows = []
    for run_id, m in metrics.sort_values("epoch").groupby("run_id"):
        before = m[m["epoch"] <= end[run_id] - WINDOW].iloc[-1]
        change = {f"Δ {t}": last.loc[run_id, f"test_{t}/acc"] - before[f"test_{t}/acc"] for t in TASKS}
        rows.append({"run_id": run_id, **change})
    return pd.DataFrame(rows).merge(times[["run_id", "addition_fraction", "seed"]], on="run_id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    if args.from_table:
        metrics = with_tasks(source.evaluations)
        times = task_times(source.times, metrics)
    else:
        metrics, times = source.evaluations, source.times
    spec = source.spec
    p = int(spec["base"]["p"])
    first_round = int(spec["budget"]["epochs"]) if spec.get("budget") else None
    final = final_rows(metrics, times)
    pd.set_option("display.width", 200, "display.max_columns", 30)

    cols = ["test_add/loss", "test_mul/loss", "test_add/acc", "test_mul/acc"]
    print("at the last epoch, per addition fraction: mean [min, max] over seeds")
    print(spread(final, ["train/acc", *cols]).to_string())
    if first_round:
        print(f"\nat epoch {first_round:,} (the first round), the same:")
        print(spread(at_epoch(metrics, times, first_round), cols).to_string())
    print(f"\nlast epochs reached: {final['epoch'].value_counts().sort_index().to_dict()}")
    tcols = [
        "addition_fraction",
        "seed",
        "last_epoch",
        "mem_epoch",
        "add/gen_epoch",
        "mul/gen_epoch",
        "gen_epoch",
        "add/censored_at",
        "mul/censored_at",
        "censored_at",
    ]
    print(
        "\ntimes per member (memorised: train acc held >= 0.99; generalised on the addition / multiplication "
        "test pairs / both together: test acc held >= 0.99 for 3 evaluations; censored_at: not within that budget):"
    )
    print(times.sort_values(["addition_fraction", "seed"])[[c for c in tcols if c in times]].to_string(index=False))
    print(f"\neach task's test accuracy at the last epoch minus {WINDOW:,} epochs before (still moving?):")
    print(moved(metrics, times).sort_values(["addition_fraction", "seed"]).round(3).to_string(index=False))

    figures = {
        "test_loss_vs_fraction": per_task_figure(final, "loss", p),
        "test_acc_vs_fraction": per_task_figure(final, "acc", p),
        "gen_epochs": gen_epochs_figure(times),
        "curves": curves_figure(metrics, times),
    }
    for name, fig in figures.items():
        add_caption(fig, spec, times)
        check_figure(fig)
        path = save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=80, b=150), legend_below=True)
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

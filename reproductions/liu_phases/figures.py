"""Figures and numbers of the Liu et al. (2022) phase-diagram reproduction, read from a finished sweep or its table.

    python reproductions/liu_phases/figures.py results/repro-liu_phases
    python reproductions/liu_phases/figures.py --from-table        # the committed data/

The phase of every cell (weight decay x train fraction) by the project's rule (analysis.derive:
memorised / generalised = train / test accuracy >= 0.99 held 3 evaluations; grokking = generalised
1000 or more epochs after memorising, comprehension sooner), the median generalisation epoch, and
per weight decay the phases seen. Writes figures/*.png next to this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis import aggregate, phase_diagram

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import add_caption, check_figure, label_axes, save_figure  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402

NAME = HERE.name


def save(fig: go.Figure, name: str) -> Path:
    return save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=70, b=50))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    times = source.times
    cells = aggregate(times, by=["weight_decay", "train_fraction"])
    pd.set_option("display.width", 200)
    text = cells.assign(
        cell=cells["phase"] + " " + cells["phase_count"].astype(str) + "/" + cells["n_members"].astype(str)
    )
    print("phase per cell (rows: weight decay, columns: train fraction):")
    print(
        text.pivot(index="weight_decay", columns="train_fraction", values="cell")
        .sort_index(ascending=False)
        .to_string()
    )
    print("\nmedian generalisation epoch (Kaplan-Meier; NaN: half or more never generalised):")
    print(
        cells.pivot(index="weight_decay", columns="train_fraction", values="gen_epoch_median")
        .sort_index(ascending=False)
        .to_string(float_format=lambda v: f"{v:.0f}")
    )
    print("\nmedian memorisation epoch:")
    print(
        cells.pivot(index="weight_decay", columns="train_fraction", values="mem_epoch_median")
        .sort_index(ascending=False)
        .to_string(float_format=lambda v: f"{v:.0f}")
    )
    counts = times.groupby("phase").size()
    print("\nmembers per phase:", ", ".join(f"{p} {n}" for p, n in counts.items()))
    present = set(cells["phase"])
    missing = {"comprehension", "grokking", "memorisation", "confusion"} - present
    print("all four phases lead a cell" if not missing else f"phases leading no cell: {', '.join(sorted(missing))}")
    resting = cells[cells["phase_censored"] > 0]
    print("\ncells whose phase rests on members censored at their budget:")
    print(
        resting[
            ["weight_decay", "train_fraction", "phase", "phase_count", "phase_censored", "censored_at_max"]
        ].to_string(index=False)
        if len(resting)
        else "none"
    )

    written = []
    for value, name in ((None, "phase_diagram"), ("gen_epoch", "gen_epoch")):
        fig = phase_diagram(times, "train_fraction", "weight_decay", **({"value": value} if value else {}))
        label_axes(fig, "train fraction (share of all p² pairs)", "AdamW weight decay")
        if value:
            fig.update_traces(colorbar_title_text="median epoch", selector={"type": "heatmap"})
        add_caption(fig, source.spec, times)
        check_figure(fig)
        written.append(save(fig, name))
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

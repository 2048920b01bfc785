"""Figures and numbers of the Liu et al. (2022) phase-diagram reproduction, read from a finished sweep.

    python reproductions/liu_phases/figures.py results/repro-liu_phases

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

from analysis import aggregate, load_sweep, phase_diagram

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import save_figure  # noqa: E402


def save(fig: go.Figure, name: str) -> Path:
    return save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=70, b=50))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="the sweep folder, e.g. results/repro-liu_phases")
    args = parser.parse_args(argv)
    sweep = load_sweep(args.sweep)
    times = sweep.member_times()
    cells = aggregate(times, by=["weight_decay", "train_fraction"])
    pd.set_option("display.width", 200)
    text = cells.assign(cell=cells["phase"] + " " + cells["phase_count"].astype(str) + "/"
                        + cells["n_members"].astype(str))
    print("phase per cell (rows: weight decay, columns: train fraction):")
    print(text.pivot(index="weight_decay", columns="train_fraction", values="cell").sort_index(ascending=False)
          .to_string())
    print("\nmedian generalisation epoch (Kaplan-Meier; NaN: half or more never generalised):")
    print(cells.pivot(index="weight_decay", columns="train_fraction", values="gen_epoch_median")
          .sort_index(ascending=False).to_string(float_format=lambda v: f"{v:.0f}"))
    print("\nmedian memorisation epoch:")
    print(cells.pivot(index="weight_decay", columns="train_fraction", values="mem_epoch_median")
          .sort_index(ascending=False).to_string(float_format=lambda v: f"{v:.0f}"))
    counts = times.groupby("phase").size()
    print("\nmembers per phase:", ", ".join(f"{p} {n}" for p, n in counts.items()))
    present = set(cells["phase"])
    missing = {"comprehension", "grokking", "memorisation", "confusion"} - present
    print("all four phases lead a cell" if not missing else f"phases leading no cell: {', '.join(sorted(missing))}")

    written = [
        save(phase_diagram(times, "train_fraction", "weight_decay"), "phase_diagram"),
        save(phase_diagram(times, "train_fraction", "weight_decay", value="gen_epoch"), "gen_epoch"),
    ]
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Figures and numbers of the Power et al. (2022) train-fraction reproduction, read from a finished sweep.

    python reproductions/power_fraction/figures.py results/repro-power_fraction
    python reproductions/power_fraction/figures.py --from-table     # the committed data/members.csv

Per train fraction: the censored (Kaplan-Meier) median generalisation and memorisation epochs over
seeds and how many seeds generalised; the critical fraction where the share that generalised crosses
one half (analysis.derive.critical_train_fraction, 95% bootstrap interval over seeds). Writes
figures/*.png next to this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis import aggregate, axis_curve, critical_train_fraction

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import add_caption, check_figure, label_axes, save_figure  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402

NAME = HERE.name


def save(fig: go.Figure, name: str) -> Path:
    return save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=80, b=110), legend_below=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    times = source.times
    points = aggregate(times, by=["train_fraction"])
    pd.set_option("display.width", 200)
    print(
        "per train fraction (epochs: Kaplan-Meier medians and quartiles over seeds; NaN: unknown, half or "
        "more censored):"
    )
    print(
        points[
            [
                "train_fraction",
                "n_members",
                "n_generalised",
                "fraction_generalised",
                "mem_epoch_median",
                "gen_epoch_median",
                "gen_epoch_q25",
                "gen_epoch_q75",
                "gen_epoch_censored_at",
                "phase_counts",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )
    per_seed = times.pivot(index="train_fraction", columns="seed", values="gen_epoch")
    print("\ngeneralisation epoch per seed (NaN: not within the budget):")
    print(per_seed.to_string(float_format=lambda v: f"{v:.0f}"))
    critical = critical_train_fraction(times, by=[])
    print("\ncritical train fraction (share generalised crosses 0.5):")
    print(
        critical[
            ["critical", "critical_lo", "critical_hi", "lower", "upper", "n_points", "n_members", "note"]
        ].to_string(index=False, float_format=lambda v: f"{v:.3g}")
    )

    gen = axis_curve(times, "train_fraction", "gen_epoch")
    # the default titles are longer than the plot and have no units
    label_axes(gen, "train fraction (share of all p² pairs)", "generalisation epoch (epochs, median of seeds)")
    share = axis_curve(times, "train_fraction", "fraction_generalised", fit="critical")
    label_axes(share, "train fraction (share of all p² pairs)", "share of seeds that generalised")
    written = []
    for fig, name in ((gen, "gen_epoch_vs_fraction"), (share, "critical_fraction")):
        add_caption(fig, source.spec, times)
        check_figure(fig)
        written.append(save(fig, name))
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

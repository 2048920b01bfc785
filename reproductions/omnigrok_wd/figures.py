"""Figures and numbers of the Omnigrok weight-decay reproduction, read from a finished sweep or its table.

    python reproductions/omnigrok_wd/figures.py results/repro-omnigrok_wd [--theory-max 0.6]
    python reproductions/omnigrok_wd/figures.py --from-table       # the committed data/

Fits time = c * wd^exponent (analysis.derive.power_law_fit: least squares on the censored medians over
seeds, 95% bootstrap interval over seeds) to the raw generalisation epoch and to the delay after
memorisation (generalised epoch - memorised epoch), over the whole weight-decay range and over the
range where the delay dominates (wd <= --theory-max). Prints per-member times and the weight norm at
memorisation and generalisation. Writes figures/*.png next to this file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis import axis_curve, power_law_fit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts
from _png import add_caption, check_figure, label_axes, save_figure  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402

NAME = HERE.name


def save(fig: go.Figure, name: str) -> Path:
    return save_figure(fig, HERE, name, margin=dict(l=70, r=20, t=80, b=110), legend_below=True)


def norm_at(metrics: pd.DataFrame, run_id: str, epoch: float) -> float:
    if not np.isfinite(epoch):
        return np.nan
    rows = metrics[(metrics["run_id"] == run_id) & (metrics["epoch"] <= epoch)]
    return float(rows.sort_values("epoch")["weight_norm"].iloc[-1]) if len(rows) else np.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    parser.add_argument(
        "--theory-max", type=float, default=0.6, help="largest weight decay of the delay-dominated range (default 0.6)"
    )
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    times, metrics = source.times.copy(), source.evaluations
    times["norm_at_mem"] = [norm_at(metrics, r, e) for r, e in zip(times["run_id"], times["mem_epoch"], strict=True)]
    times["norm_at_gen"] = [norm_at(metrics, r, e) for r, e in zip(times["run_id"], times["gen_epoch"], strict=True)]
    pd.set_option("display.width", 200)
    print("per member:")
    print(
        times.sort_values(["weight_decay", "seed"])[
            [
                "weight_decay",
                "seed",
                "phase",
                "mem_epoch",
                "gen_epoch",
                "delay",
                "norm_at_mem",
                "norm_at_gen",
                "last_epoch",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )

    theory = times[times["weight_decay"] <= args.theory_max]
    fits = []
    for label, subset in (("all wd", times), (f"wd <= {args.theory_max:g}", theory)):
        for value in ("gen_epoch", "delay"):
            fit = power_law_fit(subset, "weight_decay", value=value, by=[])
            fits.append(fit.assign(range=label, value=value))
    table = pd.concat(fits, ignore_index=True)
    per_seed = pd.concat(
        [
            power_law_fit(times, "weight_decay", value=v, by=["seed"], n_boot=0).assign(value=v)
            for v in ("gen_epoch", "delay")
        ],
        ignore_index=True,
    )
    print("\nper seed, all weight decays:")
    print(
        per_seed[["value", "seed", "exponent", "r2", "n_points"]].to_string(
            index=False, float_format=lambda v: f"{v:.3g}"
        )
    )
    print("\npower-law fits, time = prefactor * wd^exponent (95% bootstrap interval over seeds):")
    print(
        table[
            [
                "range",
                "value",
                "exponent",
                "exponent_lo",
                "exponent_hi",
                "r2",
                "n_points",
                "n_censored_points",
                "x_min",
                "x_max",
                "note",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.3g}")
    )
    swept = sorted(times["weight_decay"].unique())
    fitted = times.loc[times["generalised"].astype(bool), "weight_decay"]
    print(
        f"\nweight decay swept over {np.log10(swept[-1] / swept[0]):.2f} decades ({swept[0]:g} to {swept[-1]:g}); "
        f"medians known over {np.log10(fitted.max() / fitted.min()):.2f} ({fitted.min():g} to {fitted.max():g}); "
        f"delay-dominated range (wd <= {args.theory_max:g}) {np.log10(args.theory_max / fitted.min()):.2f}"
    )

    gen = axis_curve(times, "weight_decay", "gen_epoch", fit="power")
    delay_theory = axis_curve(theory, "weight_decay", "delay", fit="power")
    delay_all = axis_curve(times, "weight_decay", "delay", fit="power")
    written = []
    for fig, what, name in (
        (gen, "generalisation epoch", "gen_epoch_vs_wd"),
        (delay_theory, "delay after memorising", "delay_vs_wd_theory_range"),
        (delay_all, "delay after memorising", "delay_vs_wd"),
    ):
        # the default titles are longer than the plot and have no units
        label_axes(fig, "AdamW weight decay", f"{what} (epochs, median of seeds)")
        add_caption(fig, source.spec, times)
        check_figure(fig)
        written.append(save(fig, name))
    for path in written:
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

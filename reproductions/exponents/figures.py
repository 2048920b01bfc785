"""(a^m + b^n) mod p over the exponent grid, at a p where the odd exponents are one-to-one.

Usage (from the repository root):
    python reproductions/exponents/figures.py results/repro-exponents   # a results folder
    python reproductions/exponents/figures.py --from-table              # the committed data/

Prints first the count of distinct x^m mod p for m = 1..9 at this sweep's p and at the seed's 113
(x -> x^m is a bijection mod p iff gcd(m, p - 1) = 1), then, per cell, how many test pairs have a
training pair with the same (a^m, b^n) (such a pair can be answered by looking the twin up, without
the rule), then the grid's times. Writes figures/gen_epoch.png (median generalisation epoch per
cell, analysis.figures.phase_diagram) and figures/final_test_acc.png.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.derive import aggregate
from analysis.figures import phase_diagram
from grokcore.config import RunConfig
from grokcore.data import member_data

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_png.py, shared by the scripts

from _png import HEIGHT, WIDTH, add_caption, check_figure, label_axes, save_png  # noqa: E402
from _table import add_source_arguments, load_source  # noqa: E402

NAME = "exponents"
SEED_P = 113


def distinct_powers(p: int, m: int) -> int:
    return len({pow(x, m, p) for x in range(p)})


def bijection_table(ps: list[int], exponents=range(1, 10)) -> pd.DataFrame:
    rows = []
    for p in ps:
        for m in exponents:
            n = distinct_powers(p, m)
            rows.append({"p": p, "m": m, "gcd(m, p-1)": math.gcd(m, p - 1), "distinct x^m": n, "one-to-one": n == p})
            # The number theory the README states: distinct values = 1 + (p - 1) / gcd(m, p - 1).
            assert n == 1 + (p - 1) // math.gcd(m, p - 1), (p, m, n)
    return pd.DataFrame(rows)


def twin_share(cfg: RunConfig) -> float:
    """Share of the member's test pairs whose (a^m mod p, b^n mod p) also occurs among its training pairs."""
    data = member_data(cfg)
    p, m, n = cfg.p, cfg.exp_m, cfg.exp_n

    def keys(tokens) -> set | np.ndarray:
        a, b = tokens[:, 0].numpy(), tokens[:, 1].numpy()
        return np.array([pow(int(x), m, p) * p + pow(int(y), n, p) for x, y in zip(a, b, strict=True)])

    seen = set(keys(data.train_tokens).tolist())
    test = keys(data.test_tokens)
    return float(np.mean([k in seen for k in test]))


def final_acc_figure(agg: pd.DataFrame, p: int) -> go.Figure:
    ms, ns = sorted(agg["exp_m"].unique()), sorted(agg["exp_n"].unique())
    z = agg.pivot_table(index="exp_n", columns="exp_m", values="final_test_acc").reindex(index=ns, columns=ms)
    fig = go.Figure(
        go.Heatmap(
            x=[str(m) for m in ms],
            y=[str(n) for n in ns],
            z=z.to_numpy(),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            text=np.vectorize(lambda v: f"{v:.3f}")(z.to_numpy()),
            texttemplate="%{text}",
            colorbar={"title": "test acc"},
        )
    )
    fig.update_layout(
        title=f"Final test accuracy, mean of seeds (m even: x^m not one-to-one mod {p})",
        xaxis_title="m (exponent of a)",
        yaxis_title="n (exponent of b)",
        width=WIDTH,
        height=HEIGHT,
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_source_arguments(parser, NAME)
    args = parser.parse_args(argv)
    source = load_source(args, NAME)
    base = source.spec["base"]
    p = int(base["p"])
    table = bijection_table([p, SEED_P])
    print("distinct values of x^m mod p (one-to-one iff gcd(m, p - 1) = 1):")
    print(table.pivot_table(index="m", columns="p", values="distinct x^m").to_string())

    times = source.times.copy()
    times["twin_share"] = [
        twin_share(RunConfig.from_dict({**{k: base[k] for k in ("task", "p", "train_fraction")}, **r}))
        for r in times[["exp_m", "exp_n", "seed"]].to_dict("records")
    ]
    last = source.evaluations.sort_values("epoch").groupby("run_id")["test/acc"].last()
    times["final_test_acc"] = times["run_id"].map(last)
    agg = aggregate(times, by=["exp_m", "exp_n"])
    extra = times.groupby(["exp_m", "exp_n"])[["final_test_acc", "twin_share"]].mean().reset_index()
    agg = agg.merge(extra, on=["exp_m", "exp_n"])
    agg["one_to_one"] = [
        distinct_powers(p, m) == p and distinct_powers(p, n) == p
        for m, n in zip(agg["exp_m"], agg["exp_n"], strict=True)
    ]

    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    figures = {
        "gen_epoch.png": phase_diagram(
            times, "exp_m", "exp_n", value="gen_epoch", title=f"(a^m + b^n) mod {p}: median generalisation epoch"
        ),
        "final_test_acc.png": final_acc_figure(agg, p),
    }
    label_axes(figures["gen_epoch.png"], "m (exponent of a)", "n (exponent of b)")  # phase_diagram may log an axis
    for file, fig in figures.items():
        add_caption(fig, source.spec, times)
        check_figure(fig)
        save_png(fig, out / file)

    cols = [
        "exp_m",
        "exp_n",
        "one_to_one",
        "n_members",
        "mem_epoch_median",
        "gen_epoch_median",
        "n_generalised",
        "final_test_acc",
        "twin_share",
        "phase_counts",
    ]
    print("\nper cell (Kaplan-Meier medians over seeds; twin_share: test pairs with a same-(a^m, b^n) train pair):")
    print(agg[cols].round(3).to_string(index=False))
    for flag, group in agg.groupby("one_to_one"):
        name = "one-to-one" if flag else "colliding (m even)"
        print(
            f"\n{name}: {len(group)} cells, members generalised {int(group['n_generalised'].sum())} of "
            f"{int(group['n_members'].sum())}, mean final test acc {group['final_test_acc'].mean():.3f}, "
            f"mean cell median gen epoch {group['gen_epoch_median'].mean():.0f}, "
            f"mean twin share {group['twin_share'].mean():.3f}"
        )
    censored = times[times["censored"]]
    print(f"\ncensored members: {len(censored)}, at {sorted(censored['censored_at'].unique())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

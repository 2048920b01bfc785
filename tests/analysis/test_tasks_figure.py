"""The smallest train fraction that generalises, per operation: known answers from a hand-made runs
table, the share rule, and the figure read back from its traces."""

import math

import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.tasks_figure import min_fraction_figure, smallest_generalising_fraction

NAN = math.nan


def runs_table(cells: dict) -> pd.DataFrame:
    """cells: (task, p, fraction) -> list of epoch_generalised per member (None: never generalised)."""
    rows = [
        {
            "task": t,
            "p": p,
            "train_fraction": f,
            "epoch_generalised": e,
            "status": "done",
            "final/test/acc": 1.0 if e is not None else f / 2,
        }  # those that never generalised: half the fraction
        for (t, p, f), epochs in cells.items()
        for e in epochs
    ]
    return pd.DataFrame(rows).astype({"epoch_generalised": "Int64"})


CELLS = {
    # add generalises from 0.3 on
    ("add", 23, 0.1): [None, None],
    ("add", 23, 0.3): [900, 1200],
    ("add", 23, 0.5): [400, 500],
    # quad only at 0.5, by one of two members
    ("quad", 23, 0.1): [None, None],
    ("quad", 23, 0.3): [None, None],
    ("quad", 23, 0.5): [2000, None],
    # perm in S4 never; in S3 from 0.3
    ("perm", 4, 0.3): [None],
    ("perm", 4, 0.5): [None],
    ("perm", 3, 0.3): [300],
    ("perm", 3, 0.5): [200],
}


def test_known_answers_and_order():
    table = smallest_generalising_fraction(runs_table(CELLS))
    got = {row.operation: row.min_train_fraction for row in table.itertuples()}
    assert got["add (p=23)"] == 0.3 and got["quad (p=23)"] == 0.5 and got["perm (p=3)"] == 0.3
    assert math.isnan(got["perm (p=4)"])
    # hardest first: none within budget, then 0.5, then the 0.3s by name
    assert list(table.operation) == ["perm (p=4)", "quad (p=23)", "add (p=23)", "perm (p=3)"]
    quad = table.set_index("operation").loc["quad (p=23)"]
    assert (quad.members, quad.generalised, quad.fractions_tried) == (6, 1, 3)
    assert table.set_index("operation").loc["perm (p=4)", "best_final_test_acc"] == 0.25


def test_share_rule():
    strict = smallest_generalising_fraction(runs_table(CELLS), min_share=1.0).set_index("operation")
    assert math.isnan(strict.loc["quad (p=23)", "min_train_fraction"])  # one of two is not all
    assert strict.loc["add (p=23)", "min_train_fraction"] == 0.3
    with pytest.raises(AnalysisError, match="min_share"):
        smallest_generalising_fraction(runs_table(CELLS), min_share=0)


def test_figure_reads_back():
    fig = min_fraction_figure(runs_table(CELLS))
    found, none = fig.data
    assert dict(zip(found.y, found.x, strict=True)) == {"quad (p=23)": 0.5, "add (p=23)": 0.3, "perm (p=3)": 0.3}
    assert list(none.y) == ["perm (p=4)"] and list(none.x) == [0.5]
    assert list(fig.layout.yaxis.categoryarray)[-1] == "perm (p=4)"  # the hardest on top


def test_missing_columns_are_named():
    with pytest.raises(AnalysisError, match="epoch_generalised"):
        smallest_generalising_fraction(pd.DataFrame({"task": ["add"], "p": [7], "train_fraction": [0.5]}))


def test_the_report_draws_the_operations_figure_by_its_own_rule(tmp_path):
    """A sweep over task x train_fraction: the report gets Power et al.'s per-operation figure and table,
    counted with the report's held threshold, and a sweep of one task does not."""
    import analysis_synthetic as synthetic

    from analysis.derive import Thresholds
    from analysis.load import load_sweep
    from analysis.report import build_report

    needs = {"add": 0.5, "sub": 0.7, "quad": None}  # the smallest fraction that generalises; None: never
    members = [
        synthetic.Member(
            config={**synthetic.SMALL, "task": task, "train_fraction": tf, "seed": seed},
            mem_epoch=100,
            gen_epoch=2000 if need is not None and tf >= need else None,
        )
        for task, need in needs.items()
        for tf in (0.3, 0.5, 0.7)
        for seed in (0, 1)
    ]
    sweep = synthetic.write_sweep(
        tmp_path, "ops", members, axes={"task": list(needs), "train_fraction": [0.3, 0.5, 0.7]}
    )
    report = build_report(load_sweep(sweep), Thresholds())
    table = report.tables["Smallest train fraction that generalises, per operation"]
    found = dict(zip(table["task"], table["min_train_fraction"], strict=True))
    assert found["add"] == 0.5 and found["sub"] == 0.7 and found["quad"] != found["quad"]  # NaN: never
    assert list(table["task"]) == ["quad", "sub", "add"]  # hardest first
    figure = next(f for f in report.figures if f.slug == "operations__min_train_fraction")
    assert "the hardest here: quad (p=13)" in figure.caption

    one_task = synthetic.write_sweep(tmp_path, "one", [m for m in members if m.config["task"] == "add"])
    assert not any(f.slug.startswith("operations") for f in build_report(load_sweep(one_task), Thresholds()).figures)

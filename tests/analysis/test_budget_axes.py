"""A member continued to a larger budget keeps its point of the sweep: in an adaptive-budget sweep the
runs rows' `epochs` and `extended_from` differ between members (3,000 for those decided in the first
round, 12,000 for those continued), yet neither is a swept axis; an epochs axis of the spec still is."""

import pandas as pd

from analysis.axes import replicate_axes, swept_axes


def runs(epochs, extended_from, fraction=(0.3, 0.3, 0.6, 0.6)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": list("abcd"),
            "status": "done",
            "train_fraction": list(fraction),
            "seed": [0, 1, 0, 1],
            "epochs": epochs,
            "extended_from": extended_from,
        }
    )


def test_continued_members_do_not_make_the_budget_an_axis():
    table = runs([12000, 6000, 3000, 3000], [3000, 3000, None, None])
    assert replicate_axes(table) == ["train_fraction"]
    assert swept_axes(table, include_seed=True) == ["train_fraction", "seed"]


def test_an_epochs_axis_stays_an_axis():
    table = runs([3000, 3000, 6000, 6000], [None] * 4, fraction=(0.3,) * 4)
    assert replicate_axes(table) == ["epochs"]
    extended = runs([12000, 3000, 12000, 6000], [6000, None, 6000, None], fraction=(0.3,) * 4)
    assert replicate_axes(extended) == ["epochs"]  # first budgets 6000, 3000, 6000, 6000

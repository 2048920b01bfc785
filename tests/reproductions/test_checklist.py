"""The cheap items of the figure checklist (reproductions/README.md) in code: reproductions/_png.py's
check_figure refuses a figure with an untitled axis, a log axis that does not say so, steep x ticks, or a
title without p, budget and seeds; and a figure that has them passes."""

import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "reproductions"))

from _png import check_figure, checklist_problems

TITLE = "time against weight decay<br><sup>p = 31, budget 3,000 epochs, 5 seeds a point</sup>"


def good() -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0.1, 1], y=[1000, 100]))
    fig.update_layout(title_text=TITLE)
    fig.update_xaxes(type="log", title="weight decay (log)")
    fig.update_yaxes(type="log", title="epochs (log)")
    return fig


def test_a_figure_with_every_item_passes():
    assert checklist_problems(good()) == []
    check_figure(good())


@pytest.mark.parametrize(
    "spoil, found",
    [
        (lambda f: f.update_yaxes(title=""), "yaxis has no title"),
        (lambda f: f.update_xaxes(title="weight decay"), "xaxis is logarithmic"),
        (lambda f: f.update_xaxes(tickangle=-90), "turned -90 degrees"),
        (
            lambda f: f.update_layout(title_text="time against weight decay<br><sup>p = 31, 5 seeds</sup>"),
            "does not give 'budget'",
        ),
    ],
)
def test_each_missing_item_is_named(spoil, found):
    fig = good()
    spoil(fig)
    with pytest.raises(ValueError, match=found):
        check_figure(fig)


def test_a_second_axis_is_checked_too():
    fig = good()
    fig.add_trace(go.Scatter(x=[1, 2], y=[3, 4], xaxis="x2", yaxis="y2"))
    fig.update_layout(xaxis2={"title": "train fraction"}, yaxis2={"title": ""})
    assert checklist_problems(fig) == ["yaxis2 has no title"]

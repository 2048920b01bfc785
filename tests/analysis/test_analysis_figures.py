"""Figures read back from the figure objects: axes, values, cell phases, fits and marked epochs."""

import math

import analysis_synthetic as synthetic
import numpy as np
import pytest
from analysis_synthetic import Member

from analysis.axes import axis_scale
from analysis.errors import AnalysisError
from analysis.figures import PHASE_COLORS, axis_curve, phase_diagram, progress_curves, training_curves
from analysis.load import load_sweep


def cell(fig, x, y):
    """(z, text, customdata) of the heatmap cell at axis values x, y; the text is the one drawn on the cell."""
    trace = fig.data[0]
    j, i = list(trace.x).index(x), list(trace.y).index(y)
    drawn = [
        (tx, ty, t)
        for trace in fig.data
        if trace.meta and trace.meta.get("role") == "cell_text"
        for tx, ty, t in zip(trace.x, trace.y, trace.text, strict=True)
    ]
    text = next((t for tx, ty, t in drawn if (tx, ty) == (x, y)), None)
    return trace.z[i][j], text, trace.customdata[i][j]


@pytest.mark.parametrize(
    "values, scale",
    [
        ([1e-4, 3e-4, 1e-3, 3e-3], "log"),
        ([0.1, 0.3, 1.0, 3.0], "log"),
        ([0.1, 0.2, 0.5, 1, 2, 5], "log"),
        ([1e-3, 1e-2], "log"),
        ([0.1, 0.2, 0.3, 0.4, 0.5], "linear"),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9], "linear"),
        ([0, 0.1, 1, 10], "linear"),  # a zero cannot go on a log axis
        ([0.3, 0.5], "linear"),
        (["relu", "gelu"], "category"),
        ([True, False], "category"),
    ],
)
def test_axis_scale(values, scale):
    assert axis_scale(values) == scale


def test_phase_diagram_axes_values_and_phases(grid_times):
    fig = phase_diagram(grid_times, "train_fraction", "weight_decay", value="gen_epoch")
    trace = fig.data[0]
    assert fig.layout.xaxis.type == "linear" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == "train fraction" and fig.layout.yaxis.title.text == "weight decay"
    assert list(trace.x) == list(synthetic.TRAIN_FRACTIONS) and list(trace.y) == list(synthetic.WEIGHT_DECAYS)
    assert fig.layout.meta["color_scale"] == "log"  # grok epochs 500 ... 15000 span more than 10x
    for tf in synthetic.TRAIN_FRACTIONS:
        for wd in synthetic.WEIGHT_DECAYS:
            z, text, custom = cell(fig, tf, wd)
            phase, n_members = custom[0], custom[1]
            assert n_members == 3
            if tf <= 0.2:  # nobody generalised within 20000 epochs: no colour, and the text says so
                assert z is None and phase == "memorisation" and text == "> 20000<br>0/3 generalised"
            else:
                assert z == pytest.approx(math.log10(synthetic.GROK_CONSTANT / wd))
                gen = synthetic.GROK_CONSTANT / wd
                assert text == f"{gen:g}<br>{2 if tf == 0.3 else 3}/3 generalised"
                assert phase == ("comprehension" if wd == 3.0 else "grokking")
    assert cell(fig, 0.3, 1.0)[2][2] == "grokking 2, memorisation 1"


def test_phase_diagram_of_fraction_and_of_phase(grid_times):
    fractions = phase_diagram(grid_times, "train_fraction", "weight_decay", value="fraction_generalised")
    assert [cell(fractions, tf, 1.0)[0] for tf in synthetic.TRAIN_FRACTIONS] == pytest.approx([0, 0, 2 / 3, 1, 1])
    censored = "<br>3/3 censored at 20,000"  # members that never generalised in their 20,000 epochs
    assert [cell(fractions, tf, 1.0)[1] for tf in synthetic.TRAIN_FRACTIONS] == [
        f"0/3{censored}",
        f"0/3{censored}",
        "2/3<br>1/3 censored at 20,000",
        "3/3",
        "3/3",
    ]
    assert (fractions.data[0].zmin, fractions.data[0].zmax) == (0, 1)
    phases = phase_diagram(grid_times, "train_fraction", "weight_decay")  # the default: the phase map
    assert phases.layout.meta["value"] == "phase"
    present = phases.layout.meta["phases"]
    assert present == ["comprehension", "grokking", "memorisation"]
    assert cell(phases, 0.1, 0.1)[:2] == (present.index("memorisation"), f"memorisation 3/3{censored}")
    assert cell(phases, 0.5, 3.0)[:2] == (present.index("comprehension"), "comprehension 3/3")
    assert cell(phases, 0.3, 1.0)[1] == "grokking 2/3<br>1/3 censored at 20,000"
    # Categorical colours with a legend: one legend entry per phase drawn, in its colour.
    legend = {t.name: t.marker.color for t in phases.data if t.meta and t.meta.get("role") == "legend"}
    assert legend == {p: PHASE_COLORS[p] for p in present}
    assert phases.data[0].showscale is False


def test_phase_map_shows_ties_as_mixed(tmp_path):
    # One cell of two replicates: one grokking, one memorising. Nothing breaks the tie toward either.
    members = [
        Member(
            config={**synthetic.SMALL, "train_fraction": tf, "weight_decay": wd, "seed": s},
            mem_epoch=100,
            gen_epoch=(2000 if s == 0 or tf == 0.5 else None),
        )
        for tf in (0.3, 0.5)
        for wd in (0.1, 1.0)
        for s in (0, 1)
    ]
    times = load_sweep(synthetic.write_sweep(tmp_path, "tie", members)).member_times()
    fig = phase_diagram(times, "train_fraction", "weight_decay")
    z, text, _ = cell(fig, 0.3, 0.1)
    assert text == "mixed<br>grokking 1/2<br>memorisation 1/2<br>1/2 censored at 5,000"
    assert fig.layout.meta["phases"][int(z)] == "mixed"
    assert cell(fig, 0.5, 0.1)[1] == "grokking 2/2"
    assert PHASE_COLORS["mixed"] in {t.marker.color for t in fig.data if t.meta and t.meta.get("role") == "legend"}


def test_every_swept_value_is_labelled_on_its_axis(tmp_path):
    # Weight decays 0.03 ... 3: plotly's own log ticks would label 0.3 as "3" and leave 0.03 between ticks.
    members = [
        Member(config={**synthetic.SMALL, "train_fraction": tf, "weight_decay": wd}, mem_epoch=100, gen_epoch=1000)
        for tf in (0.3, 0.5, 0.7)
        for wd in (0.03, 0.1, 0.3, 1.0, 3.0)
    ]
    times = load_sweep(synthetic.write_sweep(tmp_path, "ticks", members)).member_times()
    fig = phase_diagram(times, "train_fraction", "weight_decay")
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.tickvals) == [0.03, 0.1, 0.3, 1.0, 3.0]
    assert list(fig.layout.yaxis.ticktext) == ["0.03", "0.1", "0.3", "1", "3"]
    assert list(fig.layout.xaxis.ticktext) == ["0.3", "0.5", "0.7"]
    curve = axis_curve(times, "weight_decay", value="fraction_generalised")
    assert list(curve.layout.xaxis.ticktext) == ["0.03", "0.1", "0.3", "1", "3"]
    assert list(curve.layout.xaxis.minor.tickvals) == [0.01, 0.1, 1.0, 10.0]  # decades: unlabelled grid lines


def test_cell_text_is_white_on_dark_cells(grid_times):
    fig = phase_diagram(grid_times, "train_fraction", "weight_decay", value="gen_epoch")
    white = next(t for t in fig.data if t.meta and t.meta.get("role") == "cell_text" and t.textfont.color == "white")
    # Viridis_r is darkest at the longest times: 5000 and 15000 epochs (weight decay 0.3 and 0.1).
    assert set(white.y) == {0.1, 0.3} and len(white.x) == 6


def test_phase_diagram_pools_other_axes_and_says_so(grid_times):
    fig = phase_diagram(grid_times, "train_fraction", "seed")
    assert fig.layout.meta["pooled_over"] == ["weight_decay"]
    assert "pooled over weight_decay" in fig.layout.title.text
    fixed = phase_diagram(grid_times, "train_fraction", "seed", where={"weight_decay": 3.0})
    assert fixed.layout.meta["pooled_over"] == []
    assert cell(fixed, 0.3, 2)[1] == "memorisation 1/1<br>1/1 censored at 20,000"
    assert cell(fixed, 0.3, 1)[1] == "comprehension 1/1"


def test_exponent_grid(tmp_path):
    times = load_sweep(synthetic.write_sweep(tmp_path, "pow", synthetic.pow_members())).member_times()
    fig = phase_diagram(times, "exp_m", "exp_n", value="gen_epoch")
    assert fig.layout.xaxis.type == "linear" and fig.layout.yaxis.type == "linear"
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [1, 2, 3]
    assert fig.layout.meta["color_scale"] == "linear"  # 2000 ... 5000: less than 10x
    for m in (1, 2, 3):
        for n in (1, 2, 3):
            z, _, custom = cell(fig, m, n)
            if m == n == 3:
                assert z is None and custom[0] == "memorisation"
            else:
                assert z == 1000 * (m + n) and custom[0] == "grokking"


def test_addition_fraction_by_train_fraction(tmp_path):
    times = load_sweep(synthetic.write_sweep(tmp_path, "am", synthetic.add_mul_members())).member_times()
    mul = phase_diagram(times, "train_fraction", "addition_fraction", value="gen_epoch", view="mul")
    add = phase_diagram(times, "train_fraction", "addition_fraction", value="gen_epoch", view="add")
    assert list(mul.data[0].y) == [0.0, 0.5, 1.0] and mul.layout.meta["view"] == "mul"
    for i, tf in enumerate((0.2, 0.4, 0.6)):
        assert cell(mul, tf, 1.0)[2][0] == "memorisation"  # no multiplication trained on
        assert cell(mul, tf, 0.5)[0] == 800 * (1 + i)
        assert cell(add, tf, 0.0)[2][0] == "memorisation"  # no addition trained on
        assert cell(add, tf, 0.5)[0] == 500 and cell(add, tf, 0.5)[2][0] == "comprehension"


def test_noise_by_train_fraction(tmp_path):
    times = load_sweep(synthetic.write_sweep(tmp_path, "noise", synthetic.noise_members())).member_times()
    main = phase_diagram(times, "train_fraction", "noise_n", value="phase")
    clean = phase_diagram(times, "train_fraction", "noise_n", value="phase", view="clean")
    for tf in (0.3, 0.5):
        assert cell(main, tf, 0)[2][0] == "comprehension"
        assert cell(main, tf, 4)[2][0] == "test_only"  # never fits the noisy labels
        assert cell(clean, tf, 4)[2][0] == "grokking"  # fits the clean ones at 300, test at 3000
        assert (
            cell(phase_diagram(times, "train_fraction", "noise_n", value="gen_epoch", view="clean"), tf, 4)[1]
            == "3000<br>1/1 generalised"
        )


def test_phase_diagram_bad_input(grid_times):
    with pytest.raises(
        AnalysisError,
        match=r"axis 'lr' was not swept: it takes only the value\(s\) 0\.001; "
        r"swept axes: train_fraction, weight_decay, seed",
    ):
        phase_diagram(grid_times, "train_fraction", "lr")
    with pytest.raises(AnalysisError, match=r"'wd' is not a column"):
        phase_diagram(grid_times, "wd", "train_fraction")
    with pytest.raises(AnalysisError, match="two different axes"):
        phase_diagram(grid_times, "train_fraction", "train_fraction")
    with pytest.raises(AnalysisError, match="value must be one of"):
        phase_diagram(grid_times, "train_fraction", "weight_decay", value="speed")
    with pytest.raises(AnalysisError, match=r"no member has weight_decay = 7"):
        phase_diagram(grid_times, "train_fraction", "seed", where={"weight_decay": 7})


def test_axis_curve_with_the_power_fit(grid_times):
    fig = axis_curve(grid_times, "weight_decay", fit="power", where={"train_fraction": 0.5})
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    median = next(t for t in fig.data if t.meta["role"] == "median")
    assert list(median.x) == list(synthetic.WEIGHT_DECAYS)
    assert list(median.y) == pytest.approx([synthetic.GROK_CONSTANT / wd for wd in synthetic.WEIGHT_DECAYS])
    fit = next(t for t in fig.data if t.meta["role"] == "fit")
    assert fit.meta["exponent"] == pytest.approx(-1.0)
    assert np.asarray(fit.y) == pytest.approx(synthetic.GROK_CONSTANT / np.asarray(fit.x))
    assert "^-1.00 [-1.00, -1.00], n=4" in fit.name and fit.meta["n_points"] == 4
    assert list(median.text) == ["3/3"] * 4  # the generalised fraction beside every median
    members = next(t for t in fig.data if t.meta["role"] == "members")
    assert len(members.x) == 12  # every member of the 4 weight decays x 3 seeds generalised


def test_axis_curve_with_the_critical_fraction(grid_times):
    fig = axis_curve(grid_times, "train_fraction", value="fraction_generalised", fit="critical")
    assert fig.layout.xaxis.type == "linear"
    median = next(t for t in fig.data if t.meta["role"] == "median")
    assert list(median.y) == pytest.approx([0, 0, 2 / 3, 1, 1])
    fit = next(t for t in fig.data if t.meta["role"] == "fit")
    assert list(fit.x) == pytest.approx([0.275, 0.275]) and fit.meta["lower"] == 0.2 and fit.meta["upper"] == 0.3
    assert fig.layout.meta["fit_result"][0]["critical"] == pytest.approx(0.275)
    # Pooled over weight decay, and the figure says so in the legend, the subtitle and its meta.
    assert fit.name.startswith("pooled over weight_decay: critical train_fraction ≈ 0.275")
    assert fit.meta["scope"] == "pooled over weight_decay" and "pooled over weight_decay" in fig.layout.title.text


def test_axis_curve_fit_below_three_points_is_not_drawn_and_says_why(grid_times):
    two = grid_times[grid_times["weight_decay"].isin([1.0, 3.0])]
    fig = axis_curve(two, "weight_decay", fit="power", where={"train_fraction": 0.5})
    assert not [t for t in fig.data if t.meta["role"] == "fit"] and fig.layout.meta["fits_drawn"] == 0
    assert "no power fit drawn: fewer than 3 usable points" in fig.layout.title.text
    assert "needs medians at 3 or more positive weight_decay values; has 2" in fig.layout.meta["fit_result"][0]["note"]


def test_nothing_generalised_gives_a_sentence_not_blank_axes(grid_times):
    never = grid_times[grid_times["train_fraction"] <= 0.2]
    curve = axis_curve(never, "weight_decay", fit="power")
    assert curve.layout.meta["empty"].startswith("No member generalised within its budget of 20000 epochs")
    assert not curve.data and curve.layout.annotations[0].text == curve.layout.meta["empty"]
    diagram = phase_diagram(never, "train_fraction", "weight_decay", value="gen_epoch")
    assert "No member generalised" in diagram.layout.meta["empty"]
    # The phase map still has something to say: every cell memorised.
    assert (
        cell(phase_diagram(never, "train_fraction", "weight_decay"), 0.1, 0.1)[1]
        == "memorisation 3/3<br>3/3 censored at 20,000"
    )


def test_a_line_lying_on_another_stays_visible(tmp_path):
    # Identical outcomes at both train fractions: the two lines coincide exactly.
    members = [
        Member(
            config={**synthetic.SMALL, "train_fraction": tf, "weight_decay": wd},
            mem_epoch=100,
            gen_epoch=int(1000 / wd),
        )
        for tf in (0.3, 0.5)
        for wd in (0.5, 1.0, 2.0)
    ]
    times = load_sweep(synthetic.write_sweep(tmp_path, "same", members)).member_times()
    fig = axis_curve(times, "weight_decay", color="train_fraction")
    lines = [t for t in fig.data if t.meta["role"] == "median"]
    assert list(lines[0].y) == list(lines[1].y)
    assert lines[0].line.width > lines[1].line.width  # the first drawn shows around the second
    assert lines[0].line.dash != lines[1].line.dash and lines[0].marker.symbol != lines[1].marker.symbol


def test_axis_curve_one_line_per_colour(grid_times):
    fig = axis_curve(grid_times, "train_fraction", value="fraction_generalised", color="weight_decay")
    lines = [t for t in fig.data if t.meta["role"] == "median"]
    assert [t.meta["group"] for t in lines] == list(synthetic.WEIGHT_DECAYS)
    with pytest.raises(AnalysisError, match="fit must be one of"):
        axis_curve(grid_times, "train_fraction", fit="spline")
    with pytest.raises(AnalysisError, match="was not swept"):
        axis_curve(grid_times, "lr")


def test_training_curves_mark_the_derived_epochs(grid_sweep, grid_times):
    chosen = grid_times[(grid_times["train_fraction"] == 0.4) & (grid_times["weight_decay"] == 1.0)]
    run_ids = list(chosen["run_id"][:2])
    fig = training_curves(grid_sweep.metrics, grid_sweep.runs, run_ids)
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log" and fig.layout.yaxis.type == "log"
    marks = [t for t in fig.data if t.meta and "mark" in t.meta]
    for run_id in run_ids:
        expected = chosen.set_index("run_id").loc[run_id]
        got = {t.meta["mark"]: t.meta["epoch"] for t in marks if t.meta["run_id"] == run_id}
        assert got == {"mem_epoch": expected["mem_epoch"], "gen_epoch": expected["gen_epoch"]}
        assert fig.layout.meta["marks"][run_id]["phase"] == "grokking"
    curves = {(t.meta["run_id"], t.meta["metric"]) for t in fig.data if t.meta and "metric" in t.meta}
    assert curves == {(r, m) for r in run_ids for m in ("train/loss", "train/acc", "test/loss", "test/acc")}
    assert min(min(t.x) for t in fig.data if t.meta and "metric" in t.meta) > 0  # epoch 0 left off the log axis
    with pytest.raises(AnalysisError, match="have no metrics rows"):
        training_curves(grid_sweep.metrics, grid_sweep.runs, ["no-such-run"])


def test_progress_curves(grid_sweep):
    run_ids = sorted(set(grid_sweep.progress["run_id"]))[:2]
    fig = progress_curves(grid_sweep.progress, grid_sweep.metrics, run_ids)
    assert fig.layout.meta["columns"] == ["fourier/restricted_loss", "fourier/excluded_loss"]
    assert len(fig.data) == 2 * (2 + 2)
    with pytest.raises(AnalysisError, match=r"llc/mean not in the progress table"):
        progress_curves(grid_sweep.progress, grid_sweep.metrics, run_ids, columns=["llc/mean"])


def test_phase_scatter_places_every_sampled_member_by_phase(tmp_path):
    from analysis.figures import phase_scatter

    members = synthetic.sampled_members()
    times = load_sweep(synthetic.write_sweep(tmp_path, "sampled", members)).member_times()
    fig = phase_scatter(times, "train_fraction", "weight_decay")
    assert fig.layout.meta["kind"] == "phase_scatter" and fig.layout.meta["members"] == len(members)
    assert fig.layout.yaxis.type == "log"  # log-uniform draws over three decades
    placed = {}
    for trace in fig.data:
        for x, y, custom in zip(trace.x, trace.y, trace.customdata, strict=True):
            placed[custom[0]] = (trace.name, x, y, custom[1])
    assert len(placed) == len(members)
    for m in members:
        phase, x, y, grok = placed[m.run_id]
        assert (x, y) == (m.config["train_fraction"], m.config["weight_decay"])
        if m.config["train_fraction"] < 0.4:
            assert phase == "memorisation" and grok is None
        else:
            assert phase in ("grokking", "comprehension") and grok == m.gen_epoch
    with pytest.raises(AnalysisError, match=r"not swept|not a column"):
        phase_scatter(times, "train_fraction", "lr")


# ---- censoring on the phase map -------------------------------------------------------------


def censoring_sweep(tmp_path):
    """A 2 x 2 grid, 3 seeds a cell, budget 3,000 (one cell's budget 6,000): at train fraction 0.3 nobody
    generalises within the budget (memorisation, every member censored); at 0.6 all grok at 2,000 except one
    seed at weight decay 1, censored (grokking 2/3, 1 censored: the phase does not rest on it)."""
    members = []
    for tf in (0.3, 0.6):
        for wd in (0.3, 1.0):
            for seed in range(3):
                budget = 6000 if (tf, wd) == (0.3, 1.0) else 3000
                late = tf == 0.3 or (wd == 1.0 and seed == 2)
                members.append(
                    Member(
                        config={
                            **synthetic.SMALL,
                            "train_fraction": tf,
                            "weight_decay": wd,
                            "seed": seed,
                            "epochs": budget,
                        },
                        mem_epoch=200,
                        gen_epoch=None if late else 2000,
                    )
                )
    return load_sweep(synthetic.write_sweep(tmp_path, "censoring", members)).member_times()


def test_phase_map_cells_say_how_many_are_censored_and_mark_phases_that_rest_on_them(tmp_path):
    times = censoring_sweep(tmp_path)
    assert times["censored"].sum() == 7 and set(times.loc[times["censored"], "censored_at"]) == {3000, 6000}
    fig = phase_diagram(times, "train_fraction", "weight_decay")
    cells = {(c["x"], c["y"]): c for c in fig.layout.meta["cells"]}
    assert cells[(0.3, 0.3)]["text"] == "memorisation 3/3<br>3/3 censored at 3,000"
    assert cells[(0.3, 1.0)]["text"] == "memorisation 3/3<br>3/3 censored at 6,000"
    assert cells[(0.6, 1.0)]["text"] == "grokking 2/3<br>1/3 censored at 3,000"
    assert cells[(0.6, 0.3)]["text"] == "grokking 3/3" and cells[(0.6, 0.3)]["n_censored"] == 0
    assert [c["phase_rests_on_censored"] for c in fig.layout.meta["cells"]].count(True) == 2
    # the text the figure draws is the cells' text
    drawn = [t for tr in fig.data if (tr.meta or {}).get("role") == "cell_text" for t in tr.text]
    assert "memorisation 3/3<br>3/3 censored at 6,000" in drawn
    # the visible mark: one hourglass per memorisation cell, inside its cell (above and right of the centre),
    # its hover the wording, and a legend entry
    (mark,) = [tr for tr in fig.data if (tr.meta or {}).get("role") == "censored_mark"]
    assert mark.marker.symbol == "hourglass" and mark.showlegend and "censored" in mark.name
    assert sorted(mark.hovertext) == ["memorisation, 3/3 censored at 3,000", "memorisation, 3/3 censored at 6,000"]
    assert all(0.3 < x < 0.6 for x in mark.x)
    assert "the phase rests on members censored at their budget" in fig.layout.title.text
    # hover of every cell carries its censored line
    heatmap = fig.data[0]
    assert "%{customdata[3]}" in heatmap.hovertemplate
    assert heatmap.customdata[1][0][3] == "<br>3/3 censored at 6,000"  # (wd 1.0, tf 0.3)


def test_a_map_without_censored_phases_has_no_mark(tmp_path):
    members = [
        Member(config={**synthetic.SMALL, "train_fraction": tf, "weight_decay": wd}, mem_epoch=200, gen_epoch=2000)
        for tf in (0.3, 0.6)
        for wd in (0.3, 1.0)
    ]
    fig = phase_diagram(
        load_sweep(synthetic.write_sweep(tmp_path, "none", members)).member_times(), "train_fraction", "weight_decay"
    )
    assert not [tr for tr in fig.data if (tr.meta or {}).get("role") == "censored_mark"]
    assert all("censored" not in c["text"] for c in fig.layout.meta["cells"])

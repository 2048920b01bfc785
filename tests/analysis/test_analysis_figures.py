"""Figures read back from the figure objects: axes, values, cell phases, fits and marked epochs."""

import math

import numpy as np
import pytest

import analysis_synthetic as synthetic
from analysis.axes import axis_scale
from analysis.derive import PHASES
from analysis.errors import AnalysisError
from analysis.figures import axis_curve, phase_diagram, progress_curves, training_curves
from analysis.load import load_sweep


def cell(fig, x, y):
    """(z, text, customdata) of the heatmap cell at axis values x, y."""
    trace = fig.data[0]
    j, i = list(trace.x).index(x), list(trace.y).index(y)
    return trace.z[i][j], trace.text[i][j], trace.customdata[i][j]


@pytest.mark.parametrize("values, scale", [
    ([1e-4, 3e-4, 1e-3, 3e-3], "log"),
    ([0.1, 0.3, 1.0, 3.0], "log"),
    ([0.1, 0.2, 0.5, 1, 2, 5], "log"),
    ([1e-3, 1e-2], "log"),
    ([0.1, 0.2, 0.3, 0.4, 0.5], "linear"),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9], "linear"),
    ([0, 0.1, 1, 10], "linear"),          # a zero cannot go on a log axis
    ([0.3, 0.5], "linear"),
    (["relu", "gelu"], "category"),
    ([True, False], "category"),
])
def test_axis_scale(values, scale):
    assert axis_scale(values) == scale


def test_phase_diagram_axes_values_and_phases(grid_times):
    fig = phase_diagram(grid_times, "train_fraction", "weight_decay")
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
            if tf <= 0.2:
                assert z is None and phase == "memorisation" and text == "mem"
            else:
                assert z == pytest.approx(math.log10(synthetic.GROK_CONSTANT / wd))
                assert custom[4] == pytest.approx(synthetic.GROK_CONSTANT / wd)    # the median in epochs
                assert phase == ("comprehension" if wd == 3.0 else "grokking")
            assert custom[8] == synthetic.EVAL_EVERY                                # resolution in the hover
    assert cell(fig, 0.3, 1.0)[2][3] == "grokking 2, memorisation 1"


def test_phase_diagram_of_fraction_and_of_phase(grid_times):
    fractions = phase_diagram(grid_times, "train_fraction", "weight_decay", value="fraction_generalised")
    assert [cell(fractions, tf, 1.0)[0] for tf in synthetic.TRAIN_FRACTIONS] == pytest.approx([0, 0, 2 / 3, 1, 1])
    assert (fractions.data[0].zmin, fractions.data[0].zmax) == (0, 1)
    phases = phase_diagram(grid_times, "train_fraction", "weight_decay", value="phase")
    assert cell(phases, 0.1, 0.1)[0] == PHASES.index("memorisation")
    assert cell(phases, 0.5, 3.0)[0] == PHASES.index("comprehension")
    assert list(phases.data[0].colorbar.ticktext) == list(PHASES)


def test_phase_diagram_pools_other_axes_and_says_so(grid_times):
    fig = phase_diagram(grid_times, "train_fraction", "seed")
    assert fig.layout.meta["pooled_over"] == ["weight_decay"]
    assert "pooled over weight_decay" in fig.layout.title.text
    fixed = phase_diagram(grid_times, "train_fraction", "seed", where={"weight_decay": 3.0})
    assert fixed.layout.meta["pooled_over"] == []
    assert cell(fixed, 0.3, 2)[2][0] == "memorisation" and cell(fixed, 0.3, 1)[2][0] == "comprehension"


def test_exponent_grid(tmp_path):
    times = load_sweep(synthetic.write_sweep(tmp_path, "pow", synthetic.pow_members())).member_times()
    fig = phase_diagram(times, "exp_m", "exp_n")
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
    mul = phase_diagram(times, "train_fraction", "addition_fraction", view="mul")
    add = phase_diagram(times, "train_fraction", "addition_fraction", view="add")
    assert list(mul.data[0].y) == [0.0, 0.5, 1.0] and mul.layout.meta["view"] == "mul"
    for i, tf in enumerate((0.2, 0.4, 0.6)):
        assert cell(mul, tf, 1.0)[2][0] == "memorisation"      # no multiplication trained on
        assert cell(mul, tf, 0.5)[0] == 800 * (1 + i)
        assert cell(add, tf, 0.0)[2][0] == "memorisation"      # no addition trained on
        assert cell(add, tf, 0.5)[0] == 500 and cell(add, tf, 0.5)[2][0] == "comprehension"


def test_noise_by_train_fraction(tmp_path):
    times = load_sweep(synthetic.write_sweep(tmp_path, "noise", synthetic.noise_members())).member_times()
    main = phase_diagram(times, "train_fraction", "noise_n", value="phase")
    clean = phase_diagram(times, "train_fraction", "noise_n", value="phase", view="clean")
    for tf in (0.3, 0.5):
        assert cell(main, tf, 0)[2][0] == "comprehension"
        assert cell(main, tf, 4)[2][0] == "test_only"          # never fits the noisy labels
        assert cell(clean, tf, 4)[2][0] == "grokking"          # fits the clean ones at 300, test at 3000
        assert cell(clean, tf, 4)[2][4] == 3000


def test_phase_diagram_bad_input(grid_times):
    with pytest.raises(AnalysisError, match=r"axis 'lr' was not swept: it takes only the value\(s\) 0\.001; "
                                            r"swept axes: train_fraction, weight_decay, seed"):
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
    assert "^-1" in fit.name
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
        for x, y, custom in zip(trace.x, trace.y, trace.customdata):
            placed[custom[0]] = (trace.name, x, y, custom[1])
    assert len(placed) == len(members)
    for m in members:
        phase, x, y, grok = placed[m.run_id]
        assert (x, y) == (m.config["train_fraction"], m.config["weight_decay"])
        if m.config["train_fraction"] < 0.4:
            assert phase == "memorisation" and grok is None
        else:
            assert phase in ("grokking", "comprehension") and grok == m.gen_epoch
    with pytest.raises(AnalysisError, match="not swept|not a column"):
        phase_scatter(times, "train_fraction", "lr")

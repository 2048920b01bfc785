"""Times, delays, phases, aggregates and fits on synthetic sweeps whose answers are known by construction."""

import math

import analysis_synthetic as synthetic
import numpy as np
import pandas as pd
import pytest
from analysis_synthetic import Member

from analysis.derive import (
    Thresholds,
    aggregate,
    critical_train_fraction,
    first_epoch_reaching,
    member_times,
    power_law_fit,
    representative_members,
    weight_decay_exponent,
)
from analysis.errors import AnalysisError
from analysis.load import load_sweep

SMALL = synthetic.SMALL


def times_of(tmp_path, members, thresholds=None, name="s"):
    sweep = load_sweep(synthetic.write_sweep(tmp_path, name, members))
    return member_times(sweep.metrics, sweep.runs, thresholds).set_index("run_id")


def nan_or(value):
    return math.nan if value is None else float(value)


# Numbers pinned from another commit or machine match to this relative tolerance, not to the last bit:
# least squares and sums go through BLAS kernels chosen by the CPU (OpenBLAS Haswell against SkylakeX
# moves the bootstrap's lower bound by 2 ulp, 2e-16), while a different resample or rule moves these
# intervals by 1e-3 or more.
CROSS_MACHINE = dict(rel=1e-12, abs=0.0)


# ---- times and phases -----------------------------------------------------------------------


def test_every_grid_member_has_its_constructed_times_and_phase(grid_times):
    assert len(grid_times) == 60
    for row in grid_times.itertuples():
        mem = synthetic.constructed_mem_epoch(row.train_fraction, row.weight_decay, row.seed)
        grok = synthetic.constructed_gen_epoch(row.train_fraction, row.weight_decay, row.seed)
        assert row.mem_epoch == mem
        assert (math.isnan(row.gen_epoch) and grok is None) or row.gen_epoch == grok
        if grok is None:
            assert row.phase == "memorisation" and math.isnan(row.delay)
        else:
            assert row.delay == grok - mem
            assert row.phase == ("grokking" if grok - mem >= 1000 else "comprehension")
        assert row.resolution == synthetic.EVAL_EVERY and row.finished


def test_phase_counts_of_the_grid(grid_times):
    counts = grid_times["phase"].value_counts().to_dict()
    # tf 0.1, 0.2: 2 x 4 x 3 = 24 memorise only, plus seed 2 at tf 0.3 for each of 4 wd = 28.
    # wd 3 (grok 500, delay 300/200/100): comprehension at tf 0.3 (seeds 0, 1) and 0.4, 0.5 (3 seeds) = 8.
    assert counts == {"memorisation": 28, "grokking": 24, "comprehension": 8}


def test_threshold_is_at_or_above_not_above(tmp_path):
    # The crossing evaluation holds exactly 0.99: with ">" the times would come one evaluation later.
    member = Member(config=SMALL, mem_epoch=300, gen_epoch=1200)
    times = times_of(tmp_path, [member])
    assert times.loc[member.run_id, ["mem_epoch", "gen_epoch", "delay"]].tolist() == [300, 1200, 900]
    stricter = times_of(tmp_path, [member], Thresholds(train_acc=0.995, test_acc=0.995), name="strict")
    assert stricter.loc[member.run_id, ["mem_epoch", "gen_epoch"]].tolist() == [400, 1300]


def test_grok_delay_boundary_is_grokking(tmp_path):
    members = [
        Member(config={**SMALL, "seed": s}, mem_epoch=200, gen_epoch=200 + d) for s, d in enumerate((900, 1000, 1100))
    ]
    times = times_of(tmp_path, members)
    assert [times.loc[m.run_id, "phase"] for m in members] == ["comprehension", "grokking", "grokking"]
    wider = times_of(tmp_path, members, Thresholds(grok_delay=1100), name="wider")
    assert [wider.loc[m.run_id, "phase"] for m in members] == ["comprehension", "comprehension", "grokking"]


def test_hold_requires_the_accuracy_to_stay(tmp_path):
    # Test accuracy reaches 0.99 at 500, drops at 600, is back from 700 on.
    member = Member(config=SMALL, mem_epoch=200, gen_epoch=500, test_dips=(600,))
    assert Thresholds().hold == 3  # the default: a lone evaluation does not count
    default = times_of(tmp_path, [member]).loc[member.run_id]
    assert (default["gen_epoch"], default["gen_epoch_first"]) == (700, 500)
    assert times_of(tmp_path, [member], Thresholds(hold=1), "h1").loc[member.run_id, "gen_epoch"] == 500
    assert times_of(tmp_path, [member], Thresholds(hold=2), "h2").loc[member.run_id, "gen_epoch"] == 700
    assert times_of(tmp_path, [member], Thresholds(hold=0), "h0").loc[member.run_id, "gen_epoch"] == 700
    # A dip at the last evaluation: it never holds to the end, so it never generalised.
    late_dip = Member(config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=500, test_dips=(5000,))
    held = times_of(tmp_path, [late_dip], Thresholds(hold=0), "h0late").loc[late_dip.run_id]
    assert math.isnan(held["gen_epoch"]) and held["phase"] == "memorisation"


def test_first_epoch_reaching_on_a_hand_table():
    metrics = pd.DataFrame(
        {
            "run_id": ["a"] * 5 + ["b"] * 3,
            "epoch": [0, 10, 20, 30, 40, 0, 10, 20],
            "test/acc": [0.1, 0.99, 0.5, 0.995, 1.0, 0.2, np.nan, 0.3],
        }
    )
    assert first_epoch_reaching(metrics, "test/acc", 0.99).to_dict() == {"a": 10.0}
    assert first_epoch_reaching(metrics, "test/acc", 0.99, hold=2).to_dict() == {"a": 30.0}
    # A streak cut short by the last evaluation holds as far as anyone can see: it counts.
    assert first_epoch_reaching(metrics, "test/acc", 0.99, hold=3).to_dict() == {"a": 30.0}
    assert first_epoch_reaching(metrics.iloc[:4], "test/acc", 0.99, hold=3).to_dict() == {"a": 30.0}
    assert first_epoch_reaching(metrics.iloc[[0, 1, 2, 5, 6, 7]], "test/acc", 0.99, hold=2).to_dict() == {}
    assert first_epoch_reaching(metrics, "test/acc", 0.99, hold=0).to_dict() == {"a": 30.0}
    assert first_epoch_reaching(metrics, "test/acc", 0.2).to_dict() == {"a": 10.0, "b": 0.0}


def test_budget_judges_members_within_fewer_epochs(tmp_path):
    early = Member(config={**SMALL, "seed": 0}, mem_epoch=200, gen_epoch=800)
    late = Member(config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=3000)
    times = times_of(tmp_path, [early, late], Thresholds(budget=1000))
    assert times.loc[early.run_id, ["gen_epoch", "phase"]].tolist() == [800, "comprehension"]
    assert math.isnan(times.loc[late.run_id, "gen_epoch"])
    assert times.loc[late.run_id, "phase"] == "memorisation"
    assert times.loc[late.run_id, "budget"] == 1000 and times.loc[late.run_id, "last_epoch"] == 1000


def test_outcomes_outside_liu_phases(tmp_path):
    cases = {
        "confusion": Member(config={**SMALL, "seed": 0}, mem_epoch=None, gen_epoch=None),
        "diverged": Member(
            config={**SMALL, "seed": 1}, mem_epoch=300, gen_epoch=None, status="diverged", epochs_trained=1000
        ),
        "undecided_stopped": Member(
            config={**SMALL, "seed": 2}, mem_epoch=300, gen_epoch=None, status="stopped", epochs_trained=2000
        ),
        "undecided_pruned": Member(
            config={**SMALL, "seed": 3}, mem_epoch=None, gen_epoch=None, status="pruned", epochs_trained=500
        ),
        "undecided_failed": Member(
            config={**SMALL, "seed": 4}, mem_epoch=300, gen_epoch=None, status="failed", epochs_trained=400
        ),
        # Both times before the pack failed: the phase is known whatever happened later.
        "grokking_then_failed": Member(
            config={**SMALL, "seed": 5}, mem_epoch=100, gen_epoch=1500, status="failed", epochs_trained=1600
        ),
        "running_memorised": Member(
            config={**SMALL, "seed": 6}, mem_epoch=300, gen_epoch=None, epochs_trained=1000, write_runs_row=False
        ),
        "running_generalised": Member(
            config={**SMALL, "seed": 7}, mem_epoch=300, gen_epoch=600, epochs_trained=1000, write_runs_row=False
        ),
    }
    times = times_of(tmp_path, list(cases.values()))
    phases = {case: times.loc[m.run_id, "phase"] for case, m in cases.items()}
    assert phases == {
        "confusion": "confusion",
        "diverged": "diverged",
        "undecided_stopped": "undecided",
        "undecided_pruned": "undecided",
        "undecided_failed": "undecided",
        "grokking_then_failed": "grokking",
        "running_memorised": "undecided",
        "running_generalised": "comprehension",
    }
    assert times.loc[cases["running_memorised"].run_id, "status"] == "running"
    assert times.loc[cases["running_memorised"].run_id, "resolution"] == 100  # inferred from the epochs


def test_subtask_views_of_add_mul(tmp_path):
    members = synthetic.add_mul_members()
    times = times_of(tmp_path, members)
    for m in members:
        row = times.loc[m.run_id]
        assert row["add/gen_epoch"] == nan_or(m.add_epoch) or (m.add_epoch is None and math.isnan(row["add/gen_epoch"]))
        assert row["mul/gen_epoch"] == nan_or(m.mul_epoch) or (m.mul_epoch is None and math.isnan(row["mul/gen_epoch"]))
        assert row["add/mem_epoch"] == 200 and row["mem_epoch"] == 200
        expected_add = "memorisation" if m.add_epoch is None else "comprehension"  # 500 - 200 < 1000
        delay_mul = None if m.mul_epoch is None else m.mul_epoch - 200
        expected_mul = "memorisation" if delay_mul is None else "grokking" if delay_mul >= 1000 else "comprehension"
        assert (row["add/phase"], row["mul/phase"]) == (expected_add, expected_mul)
    assert "clean/phase" not in times.columns  # no label noise: the clean view equals the main one


def test_clean_label_view_under_noise(tmp_path):
    members = synthetic.noise_members()
    times = times_of(tmp_path, members)
    for m in members:
        row = times.loc[m.run_id]
        n = m.config["noise_n"]
        assert row["gen_epoch"] == 1000 + 500 * n
        if n == 0:  # memorised at 200, generalised at 1000: a delay of 800 is comprehension
            assert row["phase"] == "comprehension" and row["clean/phase"] == "comprehension" and row["delay"] == 800
        else:  # never fits the noisy labels, fits the clean ones at 300
            assert row["phase"] == "test_only" and math.isnan(row["mem_epoch"])
            assert row["clean/mem_epoch"] == 300 and row["clean/delay"] == 700 + 500 * n
            assert row["clean/phase"] == "grokking"


# ---- aggregation ----------------------------------------------------------------------------


def test_aggregate_over_seeds(grid_times):
    agg = aggregate(grid_times)
    assert agg.attrs["by"] == ["train_fraction", "weight_decay"]
    assert len(agg) == 20 and (agg["n_members"] == 3).all() and (agg["n_decided"] == 3).all()
    cell = agg.set_index(["train_fraction", "weight_decay"])
    # Memorisation at 200, 300, 400 in every cell: median 300; the quartiles are the first epochs by which a
    # quarter / three quarters had memorised (Kaplan-Meier, no interpolation): 200 and 400.
    assert (cell["mem_epoch_median"] == 300).all()
    assert (cell["mem_epoch_q25"] == 200).all() and (cell["mem_epoch_q75"] == 400).all()
    assert (cell["mem_epoch_n"] == 3).all() and (cell["mem_epoch_censored"] == 0).all()
    for wd in synthetic.WEIGHT_DECAYS:
        grok = 1500 / wd
        assert cell.loc[(0.5, wd), "gen_epoch_median"] == pytest.approx(grok)
        assert cell.loc[(0.5, wd), "delay_median"] == pytest.approx(grok - 300)
        assert cell.loc[(0.5, wd), "fraction_generalised"] == 1.0
        assert cell.loc[(0.3, wd), "fraction_generalised"] == pytest.approx(2 / 3)
        assert cell.loc[(0.3, wd), "gen_epoch_n"] == 2 and cell.loc[(0.3, wd), "gen_epoch_censored"] == 1
        # Two of three generalised at the same epoch: the censored median is that epoch, q75 unknown.
        assert cell.loc[(0.3, wd), "gen_epoch_median"] == pytest.approx(grok)
        assert math.isnan(cell.loc[(0.3, wd), "gen_epoch_q75"])
        assert cell.loc[(0.1, wd), "fraction_generalised"] == 0.0
        assert math.isnan(cell.loc[(0.1, wd), "gen_epoch_median"])
        assert cell.loc[(0.1, wd), "gen_epoch_censored"] == 3
        assert cell.loc[(0.1, wd), "gen_epoch_censored_at"] == synthetic.EPOCHS
        assert cell.loc[(0.1, wd), "phase"] == "memorisation"
    assert cell.loc[(0.3, 1.0), "phase"] == "grokking"  # 2 grokking, 1 memorisation
    assert cell.loc[(0.3, 1.0), "phase_count"] == 2
    assert cell.loc[(0.3, 1.0), "phase_counts"] == "grokking 2, memorisation 1"
    assert cell.loc[(0.3, 1.0), "fraction_grokked"] == pytest.approx(2 / 3)
    assert cell.loc[(0.4, 3.0), "phase"] == "comprehension"
    assert cell.loc[(0.4, 3.0), "fraction_grokked"] == 0.0


def test_aggregate_majority_tie_and_undecided(tmp_path):
    members = [
        Member(config={**SMALL, "seed": 0}, mem_epoch=200, gen_epoch=None),  # memorisation
        Member(config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=2000),  # grokking
        Member(config={**SMALL, "seed": 2}, mem_epoch=200, gen_epoch=None, status="pruned", epochs_trained=600),
    ]
    sweep = load_sweep(synthetic.write_sweep(tmp_path, "tie", members))
    agg = aggregate(member_times(sweep.metrics, sweep.runs), by=[])
    row = agg.iloc[0]
    # One grokking, one memorisation: a tie is shown as mixed, never broken; undecided members do not vote.
    assert row["phase"] == "mixed" and row["phase_count"] == 1
    assert (row["n_members"], row["n_decided"], row["n_undecided"]) == (3, 2, 1)
    assert row["fraction_generalised"] == 0.5
    # The pruned member is censored at its last evaluation (600), not dropped: it leaves the risk set before
    # 2000, so of the two still at risk then one generalised (Kaplan-Meier: half by 2000).
    assert (row["gen_epoch_n"], row["gen_epoch_censored"]) == (1, 2) and row["gen_epoch_median"] == 2000
    # A majority breaks no tie: drop the memoriser and grokking leads alone.
    alone = aggregate(member_times(sweep.metrics, sweep.runs[sweep.runs["run_id"] != members[0].run_id]), by=[])
    assert alone.iloc[0]["phase"] == "grokking"


def test_aggregate_rejects_an_axis_that_was_not_swept(grid_times):
    with pytest.raises(AnalysisError, match=r"'lr' was not swept.*swept axes: train_fraction, weight_decay, seed"):
        aggregate(grid_times, by=["lr"])
    with pytest.raises(AnalysisError, match=r"'nonsense' is not a column"):
        aggregate(grid_times, by=["nonsense"])


def test_representative_members_are_the_middle_of_each_phase(grid_times):
    reps = representative_members(grid_times)
    assert list(reps["phase"]) == ["comprehension", "grokking", "memorisation"]
    grokking = grid_times[grid_times["phase"] == "grokking"].sort_values(["gen_epoch", "mem_epoch", "run_id"])
    assert reps.iloc[1]["run_id"] == grokking.iloc[len(grokking) // 2]["run_id"]


# ---- fits -----------------------------------------------------------------------------------


def test_critical_train_fraction_is_where_generalisation_starts(grid_times):
    per_wd = critical_train_fraction(grid_times)
    assert list(per_wd["weight_decay"]) == list(synthetic.WEIGHT_DECAYS)
    # fraction generalised: 0, 0, 2/3, 1, 1 at train fractions 0.1 ... 0.5; crossing 0.5 between 0.2 and 0.3
    # on the line from (0.2, 0) to (0.3, 2/3): 0.2 + 0.5 / (2/3) * 0.1 = 0.275.
    assert per_wd["critical"].tolist() == pytest.approx([0.275] * 4)
    assert per_wd["lower"].tolist() == [0.2] * 4 and per_wd["upper"].tolist() == [0.3] * 4
    pooled = critical_train_fraction(grid_times, by=[])
    assert pooled["critical"].tolist() == pytest.approx([0.275])
    at_level = critical_train_fraction(grid_times, by=[], level=0.9)  # crosses between 0.3 (2/3) and 0.4 (1)
    assert at_level["critical"].item() == pytest.approx(0.3 + (0.9 - 2 / 3) / (1 / 3) * 0.1)


def test_critical_train_fraction_outside_the_swept_range(grid_times):
    all_grok = critical_train_fraction(grid_times[grid_times["train_fraction"] >= 0.3], by=[])
    assert math.isnan(all_grok["critical"].item()) and all_grok["upper"].item() == 0.3
    assert "below the smallest" in all_grok["note"].item()
    none_grok = critical_train_fraction(grid_times[grid_times["train_fraction"] <= 0.3], by=[], level=0.9)
    assert math.isnan(none_grok["critical"].item()) and "above the largest" in none_grok["note"].item()
    # Two train fractions: an interpolation through two points is not a fit; none is reported.
    two = critical_train_fraction(grid_times[grid_times["train_fraction"].isin([0.2, 0.3])], by=[])
    assert math.isnan(two["critical"].item()) and two["n_points"].item() == 2
    assert "3 or more train_fraction values; has 2" in two["note"].item()


def test_grokking_time_against_weight_decay_has_exponent_minus_one(grid_times):
    fit = weight_decay_exponent(grid_times).set_index("train_fraction")
    assert (fit["scope"] == "per train_fraction").all()
    for tf in (0.3, 0.4, 0.5):
        assert fit.loc[tf, "exponent"] == pytest.approx(-1.0, abs=1e-9)
        assert fit.loc[tf, "prefactor"] == pytest.approx(synthetic.GROK_CONSTANT)
        assert fit.loc[tf, "r2"] == pytest.approx(1.0) and fit.loc[tf, "n_points"] == 4
        # Replicates agree exactly at every point, so every resample gives the same exponent.
        assert fit.loc[tf, "exponent_lo"] == pytest.approx(-1.0) and fit.loc[tf, "exponent_hi"] == pytest.approx(-1.0)
    for tf in (0.1, 0.2):  # nothing generalised: no fit, and the reason is given
        assert math.isnan(fit.loc[tf, "exponent"]) and "3 or more" in fit.loc[tf, "note"]
        assert fit.loc[tf, "n_censored_points"] == 4
    pooled = weight_decay_exponent(grid_times, by=[])
    assert pooled["scope"].item() == "pooled over train_fraction"


def test_power_law_fit_recovers_a_constructed_exponent(tmp_path):
    # grok epoch = 100 * m^2 on exponents m = 1..4 (pow task, n fixed): exponent 2.
    members = [
        Member(config={**SMALL, "task": "pow", "exp_m": m, "epochs": 3000}, mem_epoch=100, gen_epoch=100 * m * m)
        for m in (1, 2, 3, 4)
    ]
    sweep = load_sweep(synthetic.write_sweep(tmp_path, "pow2", members))
    fit = power_law_fit(sweep.member_times(), x="exp_m", value="gen_epoch")
    assert fit["exponent"].item() == pytest.approx(2.0) and fit["prefactor"].item() == pytest.approx(100.0)


def test_thresholds_are_validated():
    # Thresholds moved to grokcore.verdict (tested there); derive re-exports the same class
    from grokcore.verdict import Thresholds as OneRule
    from grokcore.verdict import ThresholdsError

    assert Thresholds is OneRule
    with pytest.raises(ThresholdsError, match="train_acc must be in"):
        Thresholds(train_acc=1.5)


def test_member_times_names_a_missing_column(grid_sweep):
    with pytest.raises(AnalysisError, match=r"metrics table: missing column\(s\) 'test/acc'"):
        member_times(grid_sweep.metrics.drop(columns=["test/acc"]), grid_sweep.runs)
    with pytest.raises(AnalysisError, match=r"runs table: missing column\(s\) 'epochs'"):
        member_times(grid_sweep.metrics, grid_sweep.runs.drop(columns=["epochs"]))


def test_derived_times_are_checked_against_the_trainers_own(tmp_path, grid_times):
    from analysis.derive import trainer_disagreements

    assert len(trainer_disagreements(grid_times)) == 0  # the synthetic runs rows agree with the metrics
    honest = Member(config={**SMALL, "seed": 0}, mem_epoch=200, gen_epoch=800)
    wrong = Member(config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=800, extra_runs_columns={"epoch_test_99": 700})
    sweep = load_sweep(synthetic.write_sweep(tmp_path, "disagree", [honest, wrong]))
    bad = trainer_disagreements(sweep.member_times())
    assert list(bad["run_id"]) == [wrong.run_id] and bad["gen_epoch_first"].item() == 800
    assert trainer_disagreements(sweep.member_times(Thresholds(test_acc=0.9))) is None  # other definitions


# ---- the rules a referee checks: censoring, unstable members, fits below 3 points, relative delay ----


@pytest.mark.parametrize(
    "durations, observed, expected",
    [
        ([200, 300, 400], [1, 1, 1], [200, 300, 400]),  # nothing censored: empirical quantiles
        ([1000, 2000, 5000], [1, 1, 0], [1000, 2000, math.nan]),  # one never reached it: q75 unknown
        ([1000, 5000, 5000], [1, 0, 0], [1000, math.nan, math.nan]),  # two of three never: median unknown
        # Censored early (a pruned member at 600) leaves the risk set: the later event carries its weight.
        ([600, 1000, 2000, 3000], [0, 1, 1, 1], [1000, 2000, 3000]),
    ],
)
def test_survival_quantiles_known_answers(durations, observed, expected):
    from analysis.derive import survival_quantiles

    got = survival_quantiles(np.array(durations, float), np.array(observed, bool))
    assert got == pytest.approx(expected, nan_ok=True)


def test_members_that_never_generalised_are_censored_not_dropped(tmp_path):
    # Generalised at 1000 and 2000; the third never did within 5000 epochs. Over survivors only the median
    # would be 1500 (biased early); censored at 5000 it is 2000, and the cell says 2 of 3 generalised.
    members = [
        Member(config={**SMALL, "seed": s}, mem_epoch=100, gen_epoch=g) for s, g in enumerate((1000, 2000, None))
    ]
    sweep = load_sweep(synthetic.write_sweep(tmp_path, "censored", members))
    row = aggregate(member_times(sweep.metrics, sweep.runs), by=[]).iloc[0]
    assert row["gen_epoch_median"] == 2000 and row["gen_epoch_q25"] == 1000 and math.isnan(row["gen_epoch_q75"])
    assert (row["gen_epoch_n"], row["gen_epoch_censored"], row["gen_epoch_censored_at"]) == (2, 1, 5000)
    assert row["fraction_generalised"] == pytest.approx(2 / 3) and row["n_generalised"] == 2
    assert row["delay_median"] == 1900 and row["delay_censored"] == 1


def test_a_member_whose_accuracy_falls_back_is_flagged_unstable(tmp_path):
    # Twins: both memorise at 200 and generalise at 500; one's train accuracy is below 0.99 from 3000 to the
    # end (the trainer's first-crossing epochs would call it comprehension), the other's stays.
    stays = Member(config={**SMALL, "seed": 0}, mem_epoch=200, gen_epoch=500)
    falls = Member(config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=500, train_dips=tuple(range(3000, 5001, 100)))
    test_falls = Member(config={**SMALL, "seed": 2}, mem_epoch=200, gen_epoch=None, test_reached_then=(700, 1500))
    times = times_of(tmp_path, [stays, falls, test_falls])
    assert times.loc[stays.run_id, "phase"] == "comprehension"
    unstable = times.loc[falls.run_id]
    assert unstable["phase"] == "unstable" and unstable["train_fell_back"] and not unstable["test_fell_back"]
    # the one rule: an accuracy that fell back was not reached (grokcore.verdict); its test accuracy stayed
    assert math.isnan(unstable["mem_epoch"]) and unstable["gen_epoch"] == 500 and unstable["generalised"]
    other = times.loc[test_falls.run_id]
    assert other["phase"] == "unstable" and other["test_fell_back"] and not other["generalised"]
    assert math.isnan(other["gen_epoch"]) and other["mem_epoch"] == 200
    # hold 0 demands the accuracy to the end: then nothing falls back, and the twin simply never memorised.
    strict = times_of(tmp_path, [falls], Thresholds(hold=0), "strict").loc[falls.run_id]
    assert strict["phase"] == "test_only" and not strict["train_fell_back"]


def test_a_fit_through_two_points_is_not_scored(tmp_path):
    members = [
        Member(config={**SMALL, "weight_decay": wd, "seed": s}, mem_epoch=100, gen_epoch=int(1000 / wd))
        for wd in (0.5, 1.0)
        for s in (0, 1)
    ]
    fit = weight_decay_exponent(load_sweep(synthetic.write_sweep(tmp_path, "two", members)).member_times())
    assert math.isnan(fit["exponent"].item()) and math.isnan(fit["r2"].item())
    assert fit["n_points"].item() == 2 and "3 or more positive weight_decay values; has 2" in fit["note"].item()


def test_power_fit_interval_covers_the_constructed_exponent(tmp_path):
    # gen epoch = 2000 / wd times a replicate factor of 0.8, 1, 1.25: exponent -1, with spread between seeds.
    members = [
        Member(
            config={**SMALL, "epochs": 20000, "weight_decay": wd, "seed": s},
            mem_epoch=100,
            gen_epoch=round(2000 / wd * f / 100) * 100,
        )
        for wd in (0.25, 0.5, 1.0, 2.0)
        for s, f in enumerate((0.8, 1.0, 1.25))
    ]
    fit = weight_decay_exponent(load_sweep(synthetic.write_sweep(tmp_path, "ci", members)).member_times()).iloc[0]
    assert fit["exponent"] == pytest.approx(-1.0, abs=0.02)
    assert fit["exponent_lo"] < fit["exponent"] < fit["exponent_hi"]
    assert fit["exponent_lo"] < -1.0 < fit["exponent_hi"] and fit["exponent_hi"] - fit["exponent_lo"] < 0.5


def test_relative_delay_and_the_ratio_rule(tmp_path):
    # Both wait 1200 epochs after memorising; one memorised at 100 (12x), the other at 2400 (0.5x).
    quick = Member(config={**SMALL, "epochs": 8000, "seed": 0}, mem_epoch=100, gen_epoch=1300)
    slow = Member(config={**SMALL, "epochs": 8000, "seed": 1}, mem_epoch=2400, gen_epoch=3600)
    times = times_of(tmp_path, [quick, slow])
    assert times.loc[quick.run_id, "relative_delay"] == 12 and times.loc[slow.run_id, "relative_delay"] == 0.5
    assert times.loc[[quick.run_id, slow.run_id], "phase"].tolist() == ["grokking", "grokking"]
    ratio = times_of(tmp_path, [quick, slow], Thresholds(grok_ratio=1.0), "ratio")
    assert ratio.loc[[quick.run_id, slow.run_id], "phase"].tolist() == ["grokking", "comprehension"]
    assert "at least 1× its memorisation epoch later" in Thresholds(grok_ratio=1.0).describe()


def test_vectorised_bootstrap_gives_the_intervals_of_one_resample_at_a_time(tmp_path):
    """The power-law bootstrap computes every resample's Kaplan-Meier medians at once (issue 17); its
    interval is the one main's code at 888fdeb (one survival_quantiles call per resample and point)
    gave for these censored members (to CROSS_MACHINE: the pin was computed on another CPU), and each
    resample's quantile equals the scalar one bit for bit (both computed here)."""
    from analysis.derive import _resampled_survival_quantile, survival_quantiles

    members = [
        Member(
            config={**SMALL, "epochs": 4000, "weight_decay": wd, "seed": s},
            mem_epoch=100,
            gen_epoch=(None if (s * 7 + int(wd * 4)) % 5 == 0 else round(1000 / wd * (0.7 + 0.1 * s) / 100) * 100),
        )
        for wd in (0.5, 1.0, 2.0, 4.0)
        for s in range(7)
    ]
    times = load_sweep(synthetic.write_sweep(tmp_path, "ci", members)).member_times()
    fit = weight_decay_exponent(times, n_boot=200).iloc[0]
    assert (fit["exponent"], fit["exponent_lo"], fit["exponent_hi"]) == pytest.approx(
        (-0.9085365900414766, -1.2084145943575664, -0.8104973932341637), **CROSS_MACHINE
    )
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        durations = rng.choice([50.0, 100.0, 150.0, 400.0, np.nan, 1000.0], size=n)
        observed = rng.random(n) < rng.random()
        draws = rng.integers(0, n, (9, n))
        for q in (0.25, 0.5):
            one_by_one = [survival_quantiles(durations[d], observed[d], (q,))[0] for d in draws]
            assert np.array_equal(
                _resampled_survival_quantile(durations, observed, draws, q), one_by_one, equal_nan=True
            )


def test_vectorised_critical_fraction_bootstrap_gives_the_interval_of_one_resample_at_a_time(tmp_path):
    """critical_train_fraction's bootstrap counts each resample's decided and generalised members per point
    with one matrix product (issue 17); its interval is the one main's code at 888fdeb gave here (to
    CROSS_MACHINE)."""
    from analysis.derive import critical_train_fraction

    members = [
        Member(
            config={**SMALL, "epochs": 2000, "train_fraction": tf, "seed": s},
            mem_epoch=100,
            gen_epoch=(500 if (s * 3 + int(tf * 10)) % 7 < int(tf * 12) else None),
        )
        for tf in (0.2, 0.3, 0.4, 0.5, 0.6)
        for s in range(6)
    ]
    times = load_sweep(synthetic.write_sweep(tmp_path, "crit", members)).member_times()
    row = critical_train_fraction(times, n_boot=200).iloc[0]
    assert (row["critical"], row["critical_lo"], row["critical_hi"]) == pytest.approx(
        (0.4, 0.25775000000000003, 0.5), **CROSS_MACHINE
    )

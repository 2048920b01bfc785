"""The one rule (grokcore/verdict.py): known answers for each clause, and the vectorised form equal to the
per-member one on random histories."""

import math
import subprocess
import sys

import numpy as np
import pytest

from grokcore.verdict import Thresholds, ThresholdsError, Verdict, decide, decide_many

EPOCHS = list(range(100, 1100, 100))  # 10 evaluations


def history(train_from: int | None, test_from: int | None, dips: dict[int, str] | None = None):
    """Accuracies at EPOCHS: 1.0 from the given epoch on (None: never), 0.5 before, and 0.5 at the epochs of
    `dips` for the named accuracy."""

    def acc(start, name):
        return [0.5 if start is None or e < start or (dips or {}).get(e) in (name, "both") else 1.0 for e in EPOCHS]

    return EPOCHS, acc(train_from, "train"), acc(test_from, "test")


def test_memorised_generalised_grokked_known_answers():
    v = decide(*history(200, 900))
    assert v == Verdict(200, 900, False)  # 700 epochs later: under grok_delay 1000
    assert v.memorised and v.generalised
    assert decide(*history(200, 900), Thresholds(grok_delay=700)).grokked
    assert not decide(*history(200, 900), Thresholds(grok_delay=701)).grokked
    assert decide(*history(None, 300)) == Verdict(None, 300, False)  # generalised without memorising: not grokked
    never = decide(*history(None, None))
    assert not never.memorised and not never.generalised and not never.grokked


def test_grok_ratio_also_required_when_set():
    # memorised at 200, generalised at 900: delay 700 = 3.5 × 200
    assert decide(*history(200, 900), Thresholds(grok_delay=0, grok_ratio=3.5)).grokked
    assert not decide(*history(200, 900), Thresholds(grok_delay=0, grok_ratio=3.6)).grokked


def test_hold_counts_from_the_first_of_a_held_streak():
    # test at 1.0 from 500, but 0.5 at 600: a lone evaluation at 500 does not count under hold 2 or 3
    h = history(100, 500, {600: "test"})
    assert decide(*h, Thresholds(hold=1)).generalised_epoch == 500
    assert decide(*h, Thresholds(hold=2)).generalised_epoch == 700
    assert decide(*h).generalised_epoch == 700
    assert decide(*h, Thresholds(hold=0)).generalised_epoch == 700
    # a streak cut short by the end of training counts: reached at the last two evaluations
    assert decide(*history(100, 900)).generalised_epoch == 900
    assert decide(*history(100, 1000), Thresholds(hold=5)).generalised_epoch == 1000


def test_falling_back_is_neither_memorised_nor_generalised():
    # train reached at 200 and held, below again at the last evaluation (1000)
    v = decide(*history(200, 300, {1000: "train"}))
    assert v == Verdict(None, 300, False, train_fell_back=True, test_fell_back=False)
    v = decide(*history(200, 300, {1000: "test"}))
    assert not v.generalised and v.test_fell_back and v.memorised_epoch == 200
    # hold 0 demands the accuracy to the end: a dip at the end means never reached, nothing fell back
    assert decide(*history(200, 300, {1000: "train"}), Thresholds(hold=0)) == Verdict(None, 300, False)


def test_budget_ignores_later_evaluations():
    assert decide(*history(200, 900), Thresholds(budget=800)) == Verdict(200, None, False)
    # the dip at 1000 is beyond the budget: nothing fell back within it
    assert decide(*history(200, 300, {1000: "test"}), Thresholds(budget=900)).generalised_epoch == 300


def test_missing_accuracies_count_as_below():
    # test at 1.0 once, then missing: not held under hold 3; under hold 1 reached and fell back
    assert decide([100, 200, 300], [None, 1.0, 1.0], [math.nan, 1.0, math.nan]) == Verdict(200, None, False)
    assert decide([100, 200, 300], [None, 1.0, 1.0], [math.nan, 1.0, math.nan], Thresholds(hold=1)) == Verdict(
        200, None, False, test_fell_back=True
    )


@pytest.mark.parametrize(
    "kwargs, field, text",
    [
        ({"train_acc": 1.5}, "train_acc", "train_acc must be in"),
        ({"test_acc": 0}, "test_acc", "test_acc must be in"),
        ({"hold": -1}, "hold", "hold must be an integer >= 0"),
        ({"hold": 1.5}, "hold", "hold must be an integer"),
        ({"budget": 0}, "budget", "budget must be a positive"),
        ({"grok_delay": -1}, "grok_delay", "grok_delay must be"),
        ({"grok_ratio": "x"}, "grok_ratio", "grok_ratio must be"),
    ],
)
def test_thresholds_errors_name_the_field(kwargs, field, text):
    with pytest.raises(ThresholdsError, match=text) as e:
        Thresholds(**kwargs)
    assert e.value.field_name == field and isinstance(e.value, ValueError)


def test_thresholds_from_a_spec_block():
    assert Thresholds.from_mapping(None) == Thresholds()
    assert Thresholds.from_mapping({"hold": 1, "test_acc": 0.95}) == Thresholds(test_acc=0.95, hold=1)
    with pytest.raises(
        ThresholdsError,
        match="unknown field 'holds'; allowed: train_acc, test_acc, grok_delay, grok_ratio, hold, budget",
    ):
        Thresholds.from_mapping({"holds": 1})
    with pytest.raises(ThresholdsError, match="must be a mapping"):
        Thresholds.from_mapping([0.9])


@pytest.mark.parametrize(
    "th",
    [
        Thresholds(),
        Thresholds(hold=1),
        Thresholds(hold=0),
        Thresholds(hold=5),
        Thresholds(train_acc=0.9, test_acc=0.8, grok_delay=300, grok_ratio=1.5),
        Thresholds(budget=1500, grok_delay=200),
    ],
)
def test_vectorised_form_equals_the_per_member_one(th):
    rng = np.random.default_rng(0)
    members, epochs, train, test, n_rows = [], [], [], [], []
    for code in range(300):
        n = int(rng.integers(0, 25))  # some members have no rows at all
        e = np.sort(rng.choice(np.arange(50, 3000, 50), size=n, replace=False))
        # above/below as a sticky chain (flips with probability 0.25), so streaks start, break and fall back
        tr = np.where(np.cumsum(rng.random(n) < 0.25) % 2 == 0, 1.0, 0.5)
        te = np.where(np.cumsum(rng.random(n) < 0.25) % 2 == 1, 0.995, 0.6)
        te[rng.random(n) < 0.05] = np.nan
        members += [code] * n
        epochs += e.tolist()
        train += tr.tolist()
        test += te.tolist()
        n_rows.append((e, tr, te))
    many = decide_many(np.array(members), np.array(epochs), np.array(train), np.array(test), th, n_members=300)
    singles = [decide(e.tolist(), tr.tolist(), te.tolist(), th) for e, tr, te in n_rows]
    assert [many[i] for i in range(300)] == singles
    # the case split is exercised, not vacuous
    assert {v.generalised for v in singles} == {True, False}
    assert th.hold == 0 or any(v.test_fell_back for v in singles)  # hold 0: nothing can fall back
    assert np.array_equal(many.generalised, [v.generalised for v in singles])


def test_decide_many_refuses_rows_out_of_order():
    with pytest.raises(ValueError, match="contiguous and in increasing epoch order"):
        decide_many(np.array([0, 1, 0]), np.array([1, 1, 2]), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="contiguous and in increasing epoch order"):
        decide_many(np.array([0, 0]), np.array([2, 1]), np.ones(2), np.ones(2))


def test_importable_with_numpy_only():
    code = (
        "import sys, grokcore.verdict; bad = {'torch', 'pandas', 'ray', 'optuna'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runs_row_columns():
    assert decide(*history(200, 900)).columns() == {"epoch_memorised": 200, "epoch_generalised": 900, "grokked": False}

"""The bisection source: a search kind none of the others provides, added as one source class.
Without Ray, a stand-in trainer whose members generalise above a known train fraction checks that
every line's bracket closes on that boundary, that a line with no crossing stops after its two
ends, and that a rerun replays the rounds from the rows on disk; with a real local Ray, the whole
driver path runs a small bisection and its brackets agree with its own runs table."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from sweeps_testing import assert_bad_spec

from analysis import aggregate, load_sweep
from grokcore.train import MemberOutcome
from sweeps.bisection_source import BisectionSource
from sweeps.launch import run_sweep
from sweeps.parquet import SweepStore, runs_schema
from sweeps.spec import parse_spec

SPEC = """\
name: bis
base: {task: add, p: 11, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 100, eval_every: 20}
axes:
  weight_decay: [0.5, 1.0, 3.0]
  train_fraction: {uniform: [0.1, 0.9]}
search: {kind: bisection, target: 0.5, seeds: 4, steps: 4}
"""
# the stand-in's boundary per weight decay; seed k generalises from boundary + OFFSETS[k], so a
# probe's fraction reaches 0.5 (2 of 4) from boundary - 0.01 on; 3.0's lies below the range
BOUNDARY = {0.5: 0.37, 1.0: 0.6, 3.0: 0.05}
OFFSETS = (-0.03, -0.01, 0.01, 0.03)


def generalises(member) -> bool:
    return member.train_fraction >= BOUNDARY[member.weight_decay] + OFFSETS[member.seed]


def stand_in_train(store: SweepStore, pack) -> None:
    """A pack's committed rows as run_pack would leave them, without training."""
    rows = [
        {
            **MemberOutcome(
                config=m,
                status="done",
                epochs_trained=m.epochs,
                epoch_train_99=20,
                epoch_test_99=60 if generalises(m) else None,
                final={},
                wall_seconds=0.0,
                device="cpu",
            ).to_row(),
            "pack_id": pack.pack_id,
            "trial_id": "stand-in",
            "optuna_trial": None,
            "epoch_memorised": 20,
            "epoch_generalised": 60 if generalises(m) else None,
            "grokked": False,
        }
        for m in pack.members
    ]
    store.write_part("runs", pack.pack_id, 0, rows, runs_schema())
    store.write_record(
        pack.pack_id, {"pack_id": pack.pack_id, "members": pack.run_ids, "seq": 1, "done": True, "trainer": None}
    )


def drive(source: BisectionSource, store: SweepStore, packs: int | None = None) -> int:
    """Hand out and 'train' packs as the driver would (all, or the first `packs`); returns how many."""
    n = 0
    while packs is None or n < packs:
        pack = source.next_pack()
        if pack is None:
            break
        stand_in_train(store, pack)
        source.pack_finished(pack.pack_id)
        n += 1
    return n


def check_brackets(lines) -> None:
    by_wd = {line.point["weight_decay"]: line for line in lines}
    for wd in (0.5, 1.0):
        line = by_wd[wd]
        crossing = BOUNDARY[wd] - 0.01
        assert line.state == "found" and line.low < crossing <= line.high, (wd, line)
        assert line.high - line.low == pytest.approx(0.8 / 2**4)
        assert len(line.probes) == 2 + 4
    assert by_wd[3.0].state == "none" and sorted(by_wd[3.0].probes) == [0.1, 0.9]


def test_bisection_closes_on_a_known_boundary(tmp_path):
    spec = parse_spec(SPEC)
    assert spec.n_members() == 3 * (2 + 4) * 4
    store = SweepStore(str(tmp_path), spec.name)
    source = BisectionSource(spec, store, {})
    drive(source, store)
    check_brackets(source.lines)
    runs = pq.read_table(tmp_path / "bis" / "runs").to_pandas()
    assert not runs.run_id.duplicated().any()
    assert len(runs) == 2 * (2 + 4) * 4 + 2 * 4  # the line without a crossing stops after its ends
    saved = json.loads((tmp_path / "bis" / "bisection.json").read_text())
    assert [(x["state"], x["low"], x["high"]) for x in saved["lines"]] == [
        (line.state, line.low if line.state == "found" else None, line.high if line.state == "found" else None)
        for line in source.lines
    ]
    assert "nothing to run" in BisectionSource(spec, store, {}).nothing_to_run()


def test_a_rerun_replays_the_rounds_from_the_rows(tmp_path):
    """Interrupted after three packs (one of them trained but never told, as when a driver dies
    between a trial's end and its report): a new source replays the rows, hands out only what is
    missing, and reaches the same brackets with every member trained once."""
    spec = parse_spec(SPEC)
    store = SweepStore(str(tmp_path), spec.name)
    first = BisectionSource(spec, store, {})
    assert drive(first, store, packs=2) == 2
    untold = first.next_pack()
    stand_in_train(store, untold)
    again = BisectionSource(spec, store, {})
    assert untold.pack_id not in {p.pack_id for p in again.queue}
    drive(again, store)
    check_brackets(again.lines)
    runs = pq.read_table(tmp_path / "bis" / "runs").to_pandas()
    assert not runs.run_id.duplicated().any() and len(runs) == 2 * (2 + 4) * 4 + 2 * 4


BASE = "name: b\nbase: {task: add, p: 23, epochs: 1000, eval_every: 10}\n"
BAD = {
    "no_range": (
        BASE + "axes:\n  train_fraction: [0.3, 0.6]\nsearch: {kind: bisection}\n",
        "search.axis: a bisection needs one axis with a range",
        None,
    ),
    "two_ranges": (
        BASE + "axes:\n  train_fraction: {uniform: [0.2, 0.8]}\n  weight_decay: {uniform: [0.1, 1]}\n"
        "search: {kind: bisection}\n",
        "search.axis: required: name the axis to bisect",
        None,
    ),
    "random_line": (
        BASE + "axes:\n  train_fraction: {uniform: [0.2, 0.8]}\n  weight_decay: {uniform: [0.1, 1]}\n"
        "search: {kind: bisection, axis: train_fraction}\n",
        "axes.weight_decay: a bisection's other axes are its lines",
        None,
    ),
    "target": (
        BASE + "axes:\n  train_fraction: {uniform: [0.2, 0.8]}\nsearch: {kind: bisection, target: 1}\n",
        "search.target: must be a fraction strictly between 0 and 1",
        None,
    ),
    "unknown_key": (
        BASE + "axes:\n  train_fraction: {uniform: [0.2, 0.8]}\nsearch: {kind: bisection, step: 3}\n",
        "search.step: unknown search key; did you mean 'steps'?",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bisection_spec_message(tmp_path, case):
    assert_bad_spec(tmp_path, *BAD[case], expand=False)


def test_bisection_through_the_driver(ray_session, tmp_path, capsys):
    """One line, two seeds, two steps on a real local Ray: every probe's members trained once, the
    bracket the source reports agrees with the generalised fractions in the runs table, and a rerun
    has nothing to do."""
    # quick.yaml's setting at weight decay 3: train fraction 0.3 memorises, 0.6 generalises
    text = """\
name: bisect
base: {task: add, p: 31, d_model: 32, n_heads: 4, d_mlp: 128, lr: 3.0e-3, weight_decay: 3.0, epochs: 1200,
       eval_every: 50, stop_acc: 0.99, stop_patience: 2}
axes:
  train_fraction: {uniform: [0.3, 0.6]}
search: {kind: bisection, target: 0.5, seeds: 2, steps: 2}
thresholds: {hold: 2}
checkpoint_every_s: 0.5
report_every_s: 0.5
max_failures: 0
"""
    spec = parse_spec(text)
    results = tmp_path / "results"
    result = run_sweep(spec, results=str(results), verbose=1)
    assert result.ok, (result.failed_packs, result.unfinished_packs)
    out = capsys.readouterr().out
    runs = pq.read_table(results / "bisect" / "runs").to_pandas()
    assert not runs.run_id.duplicated().any() and set(runs.status) <= {"done", "stopped"}
    fractions = runs.groupby("train_fraction").epoch_generalised.apply(lambda s: s.notna().mean()).to_dict()
    assert all(n == 2 for n in runs.groupby("train_fraction").size())  # two seeds per probe
    (line,) = json.loads((results / "bisect" / "bisection.json").read_text())["lines"]
    assert sorted(fractions) == [v for v, _ in line["probes"]]
    assert fractions[0.3] < 0.5 <= fractions[0.6]  # the ends straddle the boundary ...
    assert line["state"] == "found" and len(fractions) == 4  # ... so two halvings follow
    low, high = fractions[line["low"]], fractions[line["high"]]
    assert low < 0.5 <= high and line["high"] - line["low"] == pytest.approx(0.3 / 2**2)
    assert f"train_fraction crosses 0.5 in [{line['low']:g}, {line['high']:g}]" in out
    # the report of the same sweep counts each probe's generalised share by the same rule and thresholds
    sweep = load_sweep(results / "bisect")
    points = aggregate(sweep.member_times(), by=["train_fraction"]).set_index("train_fraction")
    assert (points["n_decided"] == 2).all()  # every member decided: the shares have the same denominator
    assert points["fraction_generalised"].to_dict() == dict(line["probes"])
    assert sweep.thresholds() == spec.thresholds  # what the report judges by unless told otherwise
    again = run_sweep(spec, results=str(results), verbose=0)
    assert again.ran_packs == 0 and again.ok

"""Budget extension in a sweep: a larger budget continues the members that ended undecided from their
end states (no retraining), with one runs row per member and no gap or duplicate in its history; the
result equals the sweep trained with the larger budget from the start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import pyarrow.parquet as pq
import pytest
from sweeps_testing import write_spec
from test_object_store import pytestmark as needs_moto
from test_object_store import s3_env  # noqa: F401  (a fixture)

from grokcore.snapshots import INDEX_KEY, header_metadata
from sweeps import budget
from sweeps.grid_source import describe, prepare
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import SpecError, load_spec
from sweeps.status import format_status, sweep_status

# Continuing members are regrouped into new packs, and the sweep trained long from the start packs them
# differently again: mixed packs (train sizes, label noise) hold the comparison exact because a member's
# numbers do not depend on its pack (grokcore/train.py's fixed-length chunks, tests/grokcore/test_equivalence.py).
PACK_SIZE = 4
SPEC = """\
name: ext
base: {task: add, p: 11, d_model: 16, n_heads: 2, d_mlp: 32, lr: 0.01, epochs: 60, eval_every: 20,
       noise: uniform, noise_fraction: 0.1}
axes:
  weight_decay: [0.1, 1.0]
  train_fraction: [0.5, 0.6]
  batch_size: [null]
replicates: 2
pack_size: PACKS
checkpoint_every_s: 1000
thresholds: {test_acc: 0.12, hold: 1}  # a low bar, so that some members count as generalised at 60 epochs
snapshots: {every: 40, events: [end], dtype: float32}
"""
METRIC_KEYS = ("train/loss", "train/acc", "test/loss", "test/acc", "weight_norm")


def run_all(spec, results) -> budget.Extension | None:
    """What `grok sweep` does, without Ray: plan, then train every pack to run, then tell the source."""
    from sweeps.grid_source import GridSource

    settings = PackSettings.from_spec(spec, str(results))
    source = GridSource(spec, None, settings.to_dict())
    while (pack := source.next_pack()) is not None:
        run_pack(pack, settings)
        source.pack_finished(pack.pack_id)
    return source.prep.extension


def table(results, name, kind):
    return pq.ParquetDataset(str(results / name / kind)).read().to_pylist()


def by_lineage(rows, runs):
    lin = {r["run_id"]: budget.lineage(budget._config(r, set(budget.config_fields()))) for r in runs}
    return {(lin[r["run_id"]], r["epoch"]): r for r in rows}


def test_larger_budget_continues_undecided_members_and_equals_training_long_from_the_start(tmp_path):
    path = write_spec(tmp_path, SPEC.replace("PACKS", str(PACK_SIZE)))
    results = tmp_path / "results"
    run_all(load_spec(path), results)
    short_runs = table(results, "ext", "runs")
    assert len(short_runs) == 8 and all(r["status"] == "done" and r["epochs_trained"] == 60 for r in short_runs)
    generalised_at_60 = {r["run_id"] for r in short_runs if r["epoch_generalised"] is not None}

    longer = load_spec(path, overrides=["base.epochs=200"])
    dry = prepare(longer, str(results), write=False)
    to_go_on = set(dry.extension.starts)
    assert generalised_at_60 and to_go_on == {r["run_id"] for r in short_runs} - generalised_at_60 and to_go_on
    text = describe(dry)
    assert f"{len(to_go_on)} member(s) 60 -> 200 epochs from their end states" in text
    assert f"model-epochs {len(to_go_on) * 140:,} to run" in text  # the new epochs only

    run_all(longer, results)
    runs = table(results, "ext", "runs")
    assert sorted(r["run_id"] for r in runs) == sorted(r["run_id"] for r in short_runs)  # one row each, same ids
    newest = {r["run_id"]: r for r in runs}
    for rid in to_go_on:
        assert newest[rid]["epochs_trained"] == 200 and newest[rid]["continued_from"] == 60
        assert newest[rid]["epochs"] == 200 and newest[rid]["extended_from"] == 60
    for rid in generalised_at_60:
        assert newest[rid]["epochs_trained"] == 60 and newest[rid]["continued_from"] is None

    metrics = table(results, "ext", "metrics")
    keys = [(r["run_id"], r["epoch"]) for r in metrics]
    assert len(keys) == len(set(keys))  # no duplicate
    for rid in to_go_on:  # no gap
        assert sorted(e for r, e in keys if r == rid) == list(range(20, 201, 20))
    # snapshots go on after the old ones (the old budget's end snapshot stays)
    snaps = budget.SweepStore(str(results), "ext")
    index = [
        e
        for part in snaps.parts("snapshots")
        for e in json.loads(header_metadata(snaps.read_bytes(part.path))[INDEX_KEY])
    ]
    for rid in to_go_on:
        assert sorted(e["epoch"] for e in index if e["run_id"] == rid) == [40, 60, 80, 120, 160, 200]
    # old end states are gone (superseded), the new ones are kept
    store = budget.SweepStore(str(results), "ext")
    held = budget.end_states_held(store, {r["pack_id"] for r in runs} | {r["pack_id"] for r in short_runs})
    assert {rid for rid, _ in held} == {r["run_id"] for r in runs if r["status"] == "done"}
    assert all(epoch == newest[rid]["epochs_trained"] for rid, epoch in held)

    # the same members trained with 200 epochs from epoch 0, in another sweep
    write_spec(
        tmp_path,
        SPEC.replace("PACKS", str(PACK_SIZE)).replace("name: ext", "name: long").replace("epochs: 60", "epochs: 200"),
        "long.yaml",
    )
    run_all(load_spec(tmp_path / "long.yaml"), results)
    long_runs = table(results, "long", "runs")
    long_metrics = by_lineage(table(results, "long", "metrics"), long_runs)
    ext_metrics = by_lineage(metrics, runs)
    went_on = {budget.lineage(budget._config(newest[r], set(budget.config_fields()))) for r in to_go_on}
    for key, row in ext_metrics.items():
        if key[0] in went_on:
            assert all(row[k] == long_metrics[key][k] for k in METRIC_KEYS), key
    # the runs rows' verdicts are decided over the whole history, across the old budget
    long_by_lineage = {budget.lineage(budget._config(r, set(budget.config_fields()))): r for r in long_runs}
    for rid in to_go_on:
        other = long_by_lineage[budget.lineage(budget._config(newest[rid], set(budget.config_fields())))]
        for column in ("epoch_memorised", "epoch_generalised", "grokked", "epoch_train_99", "final/test/loss"):
            assert newest[rid][column] == other[column], column

    # a rerun of the extended spec has nothing left to do
    again = prepare(longer, str(results), write=False)
    assert not again.plan.to_run and not again.extension.starts


def test_a_sweep_without_end_states_refuses_to_extend_and_says_why(tmp_path):
    path = write_spec(tmp_path, SPEC.replace("PACKS", "4") + "end_states: false\n")
    results = tmp_path / "results"
    run_all(load_spec(path), results)
    assert not (results / "ext" / "endstates").exists()
    with pytest.raises(
        SpecError,
        match=r"base\.epochs: .* ended undecided at 60 epochs .* no end state .*"
        r"end_states: false",
    ):
        prepare(load_spec(path, overrides=["base.epochs=200"]), str(results), write=False)


def test_members_a_stop_rule_ended_are_not_touched(tmp_path):
    stop = (
        SPEC.replace("PACKS", "4")
        .replace("  batch_size: [null]", "  stop_acc: [null, 0.05]")
        .replace("thresholds: {test_acc: 0.12, hold: 1}", "thresholds: {test_acc: 0.9}")
    )
    path = write_spec(tmp_path, stop)
    results = tmp_path / "results"
    run_all(load_spec(path), results)
    before = {r["run_id"]: r for r in table(results, "ext", "runs")}
    stopped = {rid for rid, r in before.items() if r["status"] == "stopped"}
    assert stopped and all(before[r]["epochs_trained"] <= 60 for r in stopped)
    ext = prepare(load_spec(path, overrides=["base.epochs=100"]), str(results), write=False).extension
    assert set(ext.starts) == set(before) - stopped
    run_all(load_spec(path, overrides=["base.epochs=100"]), results)
    after = {r["run_id"]: r for r in table(results, "ext", "runs")}
    assert after.keys() == before.keys()
    assert all(after[r] == before[r] for r in stopped)  # the same row, untouched
    assert all(after[r]["epochs_trained"] == 100 for r in set(before) - stopped)


ADAPTIVE = """\
name: adaptive
base: {task: add, p: 11, d_model: 16, n_heads: 2, d_mlp: 32, train_fraction: 0.6, lr: 0.01, eval_every: 20}
axes:
  weight_decay: [0.1, 1.0]
replicates: 2
pack_size: 4
checkpoint_every_s: 1000
budget: {epochs: 40, max_epochs: 120}
thresholds: {test_acc: 0.3, hold: 1}
"""


def test_adaptive_budget_extends_undecided_members_in_rounds_up_to_max_epochs(tmp_path):
    spec = load_spec(write_spec(tmp_path, ADAPTIVE))
    assert [m.epochs for m in spec.members()] == [40] * 4
    results = tmp_path / "results"
    text = describe(prepare(spec, str(results), write=False))
    assert "adaptive: 40 -> 120 epochs, x2 a round (3 rounds: 40, 80, 120)" in text
    assert "at most 480 model-epochs if every member stays undecided" in text
    run_all(spec, results)
    runs = {r["run_id"]: r for r in table(results, "adaptive", "runs")}
    assert sorted(runs) == sorted(m.run_id for m in spec.members())
    metrics = table(results, "adaptive", "metrics")
    for rid, row in runs.items():
        epochs = sorted(r["epoch"] for r in metrics if r["run_id"] == rid)
        assert epochs == list(range(20, row["epochs_trained"] + 1, 20))  # no gap, no duplicate
        assert row["epochs_trained"] in (40, 80, 120)
        # a member stopped short of max_epochs only because it generalised, by the spec's rule
        assert (row["epoch_generalised"] is not None) or row["epochs_trained"] == 120
        if row["epochs_trained"] > 40:
            assert row["continued_from"] == {80: 40, 120: 80}[row["epochs_trained"]]
    assert any(r["epochs_trained"] > 40 for r in runs.values())
    # nothing left: every member is decided or at max_epochs
    assert not prepare(spec, str(results), write=False).plan.to_run
    st = sweep_status(str(results / "adaptive"))
    assert st.budgets == dict(sorted(Counter(r["epochs_trained"] for r in runs.values()).items()))
    extended = sum(r["continued_from"] is not None for r in runs.values())
    assert "went on from a smaller budget" in format_status(st) and st.extended == extended


def test_adaptive_budget_is_refused_with_a_search_and_beside_epochs(tmp_path):
    from sweeps_testing import assert_bad_spec

    assert_bad_spec(
        tmp_path,
        ADAPTIVE.replace("eval_every: 20}", "eval_every: 20, epochs: 40}"),
        "base.epochs",
        "set epochs in one place",
    )
    assert_bad_spec(
        tmp_path,
        ADAPTIVE.replace("max_epochs: 120", "max_epochs: 30"),
        "budget.max_epochs",
        "must be above budget.epochs=40",
    )
    assert_bad_spec(
        tmp_path,
        ADAPTIVE.replace("eval_every: 20}", "eval_every: 20, extended_from: 10}"),
        "base.extended_from",
        "raise epochs instead",
    )
    bisection = (
        ADAPTIVE.replace("replicates: 2\npack_size: 4\n", "")
        .replace("weight_decay: [0.1, 1.0]", "train_fraction: {uniform: [0.3, 0.9]}")
        .replace("train_fraction: 0.6, ", "")
    )
    assert_bad_spec(
        tmp_path,
        bisection + "search: {kind: bisection, seeds: 2, steps: 1}\n",
        "budget",
        "adaptive budgets work with a grid; a search (bisection)",
    )


# (a + b) mod 17, undecided for a long while at this weight decay: rounds of 200, 400, ..., 3200 epochs
KILLED = """\
name: killed
base: {task: add, p: 17, d_model: 16, n_heads: 2, d_mlp: 32, train_fraction: 0.5, weight_decay: 0.1, eval_every: 20}
axes:
  lr: [0.001, 0.002]
replicates: 2
pack_size: 2
checkpoint_every_s: 0.5
report_every_s: 1
budget: {epochs: 200, max_epochs: 3200}
"""


@pytest.mark.slow
def test_a_driver_killed_mid_round_resumes_with_nothing_lost_or_duplicated(ray_session, tmp_path):
    from sweeps_testing import records
    from test_resume import kill_once_packs_committed

    from sweeps.launch import run_sweep

    spec_path = write_spec(tmp_path, KILLED)
    results = tmp_path / "results"
    sweep = results / "killed"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(spec_path), "--results", str(results), "-q"],
        start_new_session=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # killed once a pack of the fourth round (800 -> 1600 epochs) has committed work, well before its end
        kill_once_packs_committed(
            proc,
            lambda: [r for r in records(sweep) if not r["done"] and 800 < r["epoch"] <= 1400][:1],
            timeout_s=300,
            packs=1,
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    assert "going on to a larger budget" in format_status(sweep_status(str(sweep)))
    spec = load_spec(spec_path)
    assert run_sweep(spec, results=str(results), verbose=0).ok
    runs = table(results, "killed", "runs")
    assert sorted(r["run_id"] for r in runs) == sorted(m.run_id for m in spec.members())  # one row each
    metrics = table(results, "killed", "metrics")
    for row in runs:
        epochs = sorted(r["epoch"] for r in metrics if r["run_id"] == row["run_id"])
        assert epochs == list(range(20, row["epochs_trained"] + 1, 20)), row["run_id"]  # no gap, no duplicate
        assert row["epochs_trained"] == 3200 or row["epoch_generalised"] is not None
    assert max(r["epochs_trained"] for r in runs) > 800


def test_a_sweep_written_by_main_before_budgets_loads_resumes_reports_and_refuses_to_extend(tmp_path):
    """tests/sweeps/data/legacy_main: written by main at eaa02f3, one pack done and one interrupted."""
    import shutil
    from pathlib import Path

    from analysis.load import load_sweep
    from analysis.report import write_report

    data = Path(__file__).parent / "data" / "legacy_main"
    results = tmp_path / "results"
    shutil.copytree(data / "legacy", results / "legacy")
    spec_path = shutil.copy(data / "spec.yaml", tmp_path / "spec.yaml")
    spec = load_spec(spec_path)
    assert len(load_sweep(results / "legacy").runs) == 2  # loads as written

    longer = load_spec(spec_path, overrides=["base.epochs=200"])
    with pytest.raises(
        SpecError,
        match=r"2 member\(s\) ended undecided at 60 epochs .* no end state to continue "
        r"from \(written before end states were kept",
    ):
        prepare(longer, str(results), write=False)

    run_all(spec, results)  # resumes: the interrupted pack goes on from main's checkpoint
    runs = table(results, "legacy", "runs")
    assert sorted(r["run_id"] for r in runs) == sorted(m.run_id for m in spec.members())
    metrics = table(results, "legacy", "metrics")
    keys = sorted((r["run_id"], r["epoch"]) for r in metrics)
    assert keys == sorted((m.run_id, e) for m in spec.members() for e in (20, 40, 60))
    index = write_report(results / "legacy", tmp_path / "report", png=False)
    assert "legacy" in index.read_text()
    with pytest.raises(SpecError, match="no end state"):  # still: two of its members have none
        prepare(longer, str(results), write=False)


@needs_moto
def test_end_states_live_and_extend_on_an_object_store(s3_env, tmp_path):  # noqa: F811 - the fixture
    """The same extension with results on moto's S3 server: end states written, read, purged there."""
    import pyarrow.dataset as ds

    from grokcore.location import filesystem as resolve

    path = write_spec(tmp_path, SPEC.replace("PACKS", "2"))
    results = "s3://grok/budget"
    run_all(load_spec(path), results)
    store = budget.SweepStore(results, "ext")
    first = budget.latest_rows(store)
    assert len(budget.end_states_held(store, {r["pack_id"] for r in first})) == 8  # every member ended at its budget
    ext = run_all(load_spec(path, overrides=["base.epochs=100"]), results)
    assert ext is not None and ext.starts
    fs, root = resolve(f"{results}/ext/runs")
    runs = ds.dataset(root, filesystem=fs).to_table().to_pylist()
    assert sorted(r["run_id"] for r in runs) == sorted(r["run_id"] for r in first)
    assert {r["run_id"] for r in runs if r["continued_from"] == 60} == set(ext.starts)
    held = budget.end_states_held(store, {r["pack_id"] for r in runs} | {r["pack_id"] for r in first})
    assert held == {(r["run_id"], r["epochs_trained"]) for r in runs}

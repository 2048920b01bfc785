"""Loading the results layout: one sweep, several, a running one, and bad input with clear messages."""

import json

import analysis_synthetic as synthetic
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from analysis_synthetic import Member

from analysis.errors import AnalysisError
from analysis.load import load_sweep

SMALL = synthetic.SMALL


def test_load_one_sweep(grid_sweep, grid_sweep_dir):
    assert grid_sweep.name == "grid"
    assert grid_sweep.spec["axes"]["weight_decay"] == list(synthetic.WEIGHT_DECAYS)
    assert len(grid_sweep.runs) == 60 and grid_sweep.runs["run_id"].is_unique
    assert len(grid_sweep.metrics) == 60 * (synthetic.EPOCHS // synthetic.EVAL_EVERY + 1)
    assert set(grid_sweep.progress.columns) == {"run_id", "epoch", "fourier/restricted_loss", "fourier/excluded_loss"}
    assert grid_sweep.swept_axes() == ["train_fraction", "weight_decay"]
    assert grid_sweep.swept_axes(include_seed=True) == ["train_fraction", "weight_decay", "seed"]
    assert grid_sweep.running_run_ids == [] and grid_sweep.notes == []
    # list columns come back as tuples so that they can be grouped on
    assert grid_sweep.runs["force_adjacent"].iloc[0] == (0, 1, 2, 17)


def test_load_a_results_directory_with_two_sweeps(tmp_path):
    shared = Member(config={**SMALL, "seed": 9}, mem_epoch=200, gen_epoch=900)
    synthetic.write_sweep(
        tmp_path, "first", [Member(config={**SMALL, "lr": 1e-3}, mem_epoch=200, gen_epoch=800), shared]
    )
    synthetic.write_sweep(
        tmp_path, "second", [Member(config={**SMALL, "lr": 3e-3}, mem_epoch=100, gen_epoch=400), shared]
    )
    sweep = load_sweep(tmp_path)
    assert sweep.name == "first+second" and set(sweep.specs) == {"first", "second"}
    # The member both sweeps ran (same config, same run_id) is kept once.
    assert len(sweep.runs) == 3 and sweep.runs["run_id"].is_unique
    assert "duplicate runs row" in " ".join(sweep.notes)
    assert sweep.metrics.duplicated(["run_id", "epoch"]).sum() == 0
    assert "sweep" in sweep.swept_axes() and "lr" in sweep.swept_axes()
    # A list of sweep directories gives the same tables.
    listed = load_sweep([tmp_path / "first", tmp_path / "second"])
    assert sorted(listed.runs["run_id"]) == sorted(sweep.runs["run_id"])


def test_load_through_a_filesystem_uri(grid_sweep_dir):
    sweep = load_sweep(grid_sweep_dir.resolve().as_uri())
    assert len(sweep.runs) == 60 and sweep.name == "grid"


def test_a_sweep_still_running(tmp_path):
    done = Member(config={**SMALL, "seed": 0}, mem_epoch=200, gen_epoch=800)
    running = Member(
        config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=None, epochs_trained=700, write_runs_row=False
    )
    sweep = load_sweep(synthetic.write_sweep(tmp_path, "live", [done, running]))
    assert sweep.running_run_ids == [running.run_id]
    assert "still running" in " ".join(sweep.notes)
    times = sweep.member_times().set_index("run_id")
    assert times.loc[running.run_id, "status"] == "running" and times.loc[running.run_id, "phase"] == "undecided"
    assert times.loc[done.run_id, "phase"] == "comprehension"


def test_a_sweep_with_metrics_only(tmp_path):
    running = Member(config=SMALL, mem_epoch=200, gen_epoch=None, epochs_trained=300, write_runs_row=False)
    sweep = load_sweep(synthetic.write_sweep(tmp_path, "started", [running]))
    assert len(sweep.runs) == 0 and sweep.running_run_ids == [running.run_id]


def test_a_directory_with_no_sweep(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match=r"empty: no sweep found\. A sweep directory holds sweep\.yaml"):
        load_sweep(tmp_path / "empty")
    with pytest.raises(AnalysisError, match=r"nowhere: no such directory"):
        load_sweep(tmp_path / "nowhere")


def test_a_sweep_with_no_results_yet(tmp_path):
    synthetic.write_sweep(tmp_path, "fresh", [])
    with pytest.raises(AnalysisError, match=r"fresh: the sweep has no results yet: no runs/part-\*\.parquet"):
        load_sweep(tmp_path / "fresh")


def test_a_table_with_a_missing_column(tmp_path):
    sweep_dir = synthetic.write_sweep(
        tmp_path, "broken", [Member(config=SMALL, mem_epoch=200, gen_epoch=800)], n_parts=1
    )
    part = sweep_dir / "metrics" / "part-00000.parquet"
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["test/acc"]), part)
    with pytest.raises(AnalysisError) as caught:
        load_sweep(sweep_dir)
    message = str(caught.value)
    assert "broken/metrics/part-00000.parquet" in message
    assert "missing column(s) 'test/acc'" in message
    assert "a metrics table needs run_id, epoch, train/acc, test/acc" in message


def test_a_newer_schema_version_is_refused(tmp_path):
    sweep_dir = synthetic.write_sweep(
        tmp_path, "future", [Member(config=SMALL, mem_epoch=200, gen_epoch=800)], n_parts=1
    )
    part = sweep_dir / "runs" / "part-00000.parquet"
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata({"grok.schema_version": "2"}), part)
    with pytest.raises(
        AnalysisError,
        match=r"runs/part-00000\.parquet: written with schema version 2; "
        r"this analysis reads version 1",
    ):
        load_sweep(sweep_dir)


def test_a_part_that_is_not_parquet(tmp_path):
    sweep_dir = synthetic.write_sweep(tmp_path, "garbled", [Member(config=SMALL, mem_epoch=200, gen_epoch=800)])
    (sweep_dir / "runs" / "part-99999.parquet").write_bytes(b"not parquet")
    with pytest.raises(AnalysisError, match=r"part-99999\.parquet: damaged \(not a readable Parquet file"):
        load_sweep(sweep_dir)


def test_half_written_files_are_not_read(tmp_path):
    # Writers write elsewhere, then rename: a temporary file beside the parts is not a part.
    sweep_dir = synthetic.write_sweep(tmp_path, "tmpfile", [Member(config=SMALL, mem_epoch=200, gen_epoch=800)])
    (sweep_dir / "runs" / ".part-00002.parquet.tmp").write_bytes(b"half")
    assert len(load_sweep(sweep_dir).runs) == 1


def test_bad_spec_yaml(tmp_path):
    sweep_dir = synthetic.write_sweep(tmp_path, "badspec", [Member(config=SMALL, mem_epoch=200, gen_epoch=800)])
    (sweep_dir / "sweep.yaml").write_text("name: [unclosed\n")
    with pytest.raises(AnalysisError, match=r"badspec/sweep\.yaml: not valid YAML"):
        load_sweep(sweep_dir)


def test_parts_with_different_columns_are_combined(tmp_path):
    # A progress measure added by a later trainer version appears in some parts only.
    sweep_dir = synthetic.write_sweep(tmp_path, "mixed", [Member(config=SMALL, mem_epoch=200, gen_epoch=800)])
    extra = pa.table({"run_id": ["x"], "epoch": [0], "llc/mean": [1.5]})
    extra = extra.replace_schema_metadata({"grok.schema_version": "1"})
    (sweep_dir / "progress").mkdir()
    pq.write_table(extra, sweep_dir / "progress" / "part-00000.parquet")
    pq.write_table(
        pa.table({"run_id": ["y"], "epoch": [0], "fourier/restricted_loss": [0.5]}),
        sweep_dir / "progress" / "part-00001.parquet",
    )
    progress = load_sweep(sweep_dir).progress
    assert set(progress.columns) == {"run_id", "epoch", "llc/mean", "fourier/restricted_loss"}
    assert len(progress) == 2


def test_a_retried_member_keeps_its_successful_row(tmp_path):
    # The driver wrote a failed row for the member; the retry then finished it: the done row counts.
    member = Member(config=SMALL, mem_epoch=200, gen_epoch=800)
    sweep_dir = synthetic.write_sweep(tmp_path, "retried", [member], n_parts=1)
    failed = {**synthetic.runs_row(member, 0), "status": "failed", "error": "boom", "epochs_trained": 300}
    synthetic.write_parts(sweep_dir / "runs-failed", [failed], 1)
    (sweep_dir / "runs-failed" / "part-00000.parquet").rename(sweep_dir / "runs" / "part-zz-failed.parquet")
    sweep = load_sweep(sweep_dir)
    assert len(sweep.runs) == 1 and sweep.runs["status"].item() == "done"
    assert sweep.member_times()["phase"].item() == "comprehension"


def test_plan_json_counts_members_not_started(tmp_path):
    ended = Member(config={**SMALL, "seed": 0}, mem_epoch=200, gen_epoch=800)
    running = Member(
        config={**SMALL, "seed": 1}, mem_epoch=200, gen_epoch=None, epochs_trained=300, write_runs_row=False
    )
    waiting = Member(config={**SMALL, "seed": 2}, mem_epoch=200, gen_epoch=None)
    sweep_dir = synthetic.write_sweep(tmp_path, "planned", [ended, running])
    (sweep_dir / "plan.json").write_text(
        json.dumps({"name": "planned", "members": [ended.run_id, running.run_id, waiting.run_id]})
    )
    notes = " ".join(load_sweep(sweep_dir).notes)
    assert "3 member(s) planned: 1 ended, 1 not started yet" in notes
    assert "1 member(s) have metrics but no runs row yet" in notes


def test_tables_written_by_the_sweeps_writer(tmp_path):
    """The contract end to end: parts written by sweeps.parquet (its schemas, names and metadata) load here."""
    parquet = pytest.importorskip("sweeps.parquet", reason="sweeps (and its torch-importing grokcore) not importable")
    members = synthetic.grid_members()[::7]
    store = parquet.SweepStore(str(tmp_path), "written")
    runs = [synthetic.runs_row(m, i) for i, m in enumerate(members)]
    store.write_part("runs", "pack-a", 0, runs, parquet.runs_schema())
    store.write_part(
        "metrics", "pack-a", 0, [r for m in members for r in synthetic.metrics_rows(m)], parquet.metrics_schema()
    )
    store.write_part(
        "progress",
        "pack-a",
        0,
        synthetic.progress_rows(members[0]),
        parquet.progress_schema(["fourier/restricted_loss", "fourier/excluded_loss"]),
    )
    sweep = load_sweep(tmp_path / "written")
    assert sorted(sweep.runs["run_id"]) == sorted(m.run_id for m in members)
    times = sweep.member_times().set_index("run_id")
    for m in members:
        assert times.loc[m.run_id, "mem_epoch"] == m.mem_epoch
        assert times.loc[m.run_id, "gen_epoch"] == m.gen_epoch or (
            m.gen_epoch is None and np.isnan(times.loc[m.run_id, "gen_epoch"])
        )
    assert len(sweep.progress) == len(synthetic.progress_rows(members[0]))

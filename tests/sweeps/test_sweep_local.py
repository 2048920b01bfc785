"""End to end on a real local Ray: one runs row per member, one metrics row per (member,
evaluation), typed columns; packs that fail for good are recorded and retried on the next run;
a dying worker is retried from its checkpoint."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sweeps_testing import TINY, TINY_EVALS, TINY_MEMBERS, TINY_PACKS

from grokcore.config import config_fields
from grokcore.records import METRIC_COLUMNS, OUTCOME_COLUMNS, RUN_KEYS
from grokcore.verdict import VERDICT_COLUMNS
from sweeps.cli import main
from sweeps.launch import run_sweep
from sweeps.packing import cut_packs
from sweeps.spec import load_spec
from sweeps.status import sweep_status


def read(results, name, table):
    return pq.read_table(results / name / table)


def assert_complete(results, spec, n_members=TINY_MEMBERS, evals=TINY_EVALS):
    runs = read(results, spec.name, "runs").to_pandas()
    metrics = read(results, spec.name, "metrics").to_pandas()
    assert sorted(runs.run_id) == sorted(m.run_id for m in spec.members())
    assert len(runs) == n_members and not runs.run_id.duplicated().any()
    assert len(metrics) == n_members * evals
    assert not metrics.duplicated(["run_id", "epoch"]).any()
    assert set(runs.status) == {"done"}
    return runs, metrics


def test_local_sweep_end_to_end(ray_session, tiny_spec, tmp_path, capsys):
    results = tmp_path / "results"
    spec = load_spec(tiny_spec)
    result = run_sweep(spec, results=str(results))
    assert result.ok and len(result.done_packs) == TINY_PACKS
    runs, metrics = assert_complete(results, spec)

    schema = read(results, spec.name, "runs").schema
    assert schema.names == [*RUN_KEYS, *config_fields(), *OUTCOME_COLUMNS, *VERDICT_COLUMNS]
    assert schema.field("epochs_trained").type == pa.int64() and schema.field("lr").type == pa.float64()
    assert schema.metadata[b"grok.schema_version"] == b"1"
    mschema = read(results, spec.name, "metrics").schema
    assert mschema.names == ["run_id", "epoch", *METRIC_COLUMNS]
    assert all(mschema.field(c).type == pa.float64() for c in METRIC_COLUMNS)
    assert runs.trial_id.notna().all() and runs.pack_id.nunique() == TINY_PACKS
    assert (runs.epochs_trained == 200).all()
    assert sorted(metrics.epoch.unique()) == list(range(20, 201, 20))
    assert (results / spec.name / "sweep.yaml").read_text() == tiny_spec.read_text()

    out = capsys.readouterr().out
    assert "members_live" not in out and "live" in out and "generalised" in out  # the progress table
    assert f"{TINY_MEMBERS} of {TINY_MEMBERS} ended" in out and "100% of the epoch budget done" in out

    status = sweep_status(str(results / spec.name))
    assert status.planned == TINY_MEMBERS and status.by_status == {"done": TINY_MEMBERS}
    assert status.training == status.waiting == 0 and status.metric_rows == TINY_MEMBERS * TINY_EVALS
    assert main(["status", str(results)]) == 0
    assert f"{TINY_MEMBERS} planned; {TINY_MEMBERS} ended" in capsys.readouterr().out

    # running it again finds nothing to do and writes nothing new
    again = run_sweep(spec, results=str(results))
    assert again.ran_packs == 0
    assert_complete(results, spec)


def test_failed_pack_is_recorded_then_retried(ray_session, tiny_spec, tmp_path):
    results = tmp_path / "results"
    spec = load_spec(tiny_spec)  # max_failures: 0
    first_pack = cut_packs(spec.members(), spec.pack_size)[0].pack_id
    result = run_sweep(
        spec, results=str(results), verbose=0, fault={"epoch": 100, "times": 1, "kind": "raise", "packs": [first_pack]}
    )
    assert list(result.failed_packs) == [first_pack] and len(result.done_packs) == 1
    runs = read(results, spec.name, "runs").to_pandas()
    assert len(runs) == TINY_MEMBERS and not runs.run_id.duplicated().any()
    failed = runs[runs.status == "failed"]
    assert len(failed) == TINY_MEMBERS // TINY_PACKS and (failed.pack_id == first_pack).all()
    assert failed.error.str.contains("injected fault").all()
    assert (runs[runs.status == "done"].error == "").all()
    assert sweep_status(str(results / spec.name)).by_status == {"done": 4, "failed": 4}

    # the next run retries the failed members (from the pack's last checkpoint) and completes
    result = run_sweep(spec, results=str(results), verbose=0)
    assert result.ok and result.ran_packs == 1
    assert_complete(results, spec)


def test_dead_worker_is_retried_from_its_checkpoint(ray_session, tiny_spec, tmp_path):
    results = tmp_path / "results"
    spec = dataclasses.replace(load_spec(tiny_spec), max_failures=2)
    result = run_sweep(spec, results=str(results), verbose=0, fault={"epoch": 120, "times": 1, "kind": "exit"})
    assert result.ok, result.failed_packs
    runs, _ = assert_complete(results, spec)
    assert runs.pack_id.nunique() == TINY_PACKS


@pytest.mark.parametrize("pack_size", [8])
def test_rerun_with_another_pack_size_keeps_rows_unique(ray_session, tiny_spec, tmp_path, pack_size):
    """A failed pack, then a rerun that cuts packs differently: the old pack's unfinished members
    are trained in the new packs and their old rows go; nothing duplicates."""
    results = tmp_path / "results"
    spec = load_spec(tiny_spec)
    run_sweep(spec, results=str(results), verbose=0, fault={"epoch": 100, "times": 1, "kind": "raise"})
    wider = dataclasses.replace(spec, pack_size=pack_size)
    result = run_sweep(wider, results=str(results), verbose=0)
    assert result.ok
    assert_complete(results, spec)


@pytest.mark.parametrize(
    "how", ["--results results", "spec default", "--results ./out/../results", "--results file://{cwd}/results"]
)
def test_relative_results_land_where_the_user_asked(ray_session, tmp_path, monkeypatch, how):
    """From the user's working directory, with the results location as a user types it: every row
    lands in <cwd>/results/<name>, not inside Tune's trial directories (a trial must never resolve
    a relative location itself)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(TINY)
    args = ["sweep", "spec.yaml", "-q"]
    if how != "spec default":
        args += how.format(cwd=tmp_path).split()
    assert main(args) == 0
    spec = load_spec(tmp_path / "spec.yaml")
    assert_complete(tmp_path / "results", spec)
    assert main(["status", "results/tiny"]) == 0


def test_rerun_retrains_packs_whose_rows_never_arrived(ray_session, tiny_spec, tmp_path):
    """An earlier attempt whose trials ended without committing rows (lost, or written elsewhere)
    is trained again by the next run, which must never loop on 'unfinished' forever."""
    import shutil

    results = tmp_path / "results"
    spec = load_spec(tiny_spec)
    assert run_sweep(spec, results=str(results), verbose=0).ok
    for folder in ("runs", "metrics", "checkpoints"):
        shutil.rmtree(results / spec.name / folder)
    again = run_sweep(spec, results=str(results), verbose=0)
    assert again.ok and again.ran_packs == TINY_PACKS
    assert_complete(results, spec)

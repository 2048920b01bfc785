"""The Parquet store: configured columns and types, the schema version, whole files only."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from grokcore.config import RunConfig, config_fields
from grokcore.records import METRIC_COLUMNS, OUTCOME_COLUMNS, RUN_KEYS, SCHEMA_METADATA_KEY, SCHEMA_VERSION
from grokcore.verdict import VERDICT_COLUMNS
from sweeps.parquet import SweepStore, metrics_schema, runs_schema


def test_runs_schema_has_every_column_with_its_type():
    schema = runs_schema()
    assert schema.names == [*RUN_KEYS, *config_fields(), *OUTCOME_COLUMNS, *VERDICT_COLUMNS]
    assert [schema.field(c).type for c in VERDICT_COLUMNS] == [pa.int64(), pa.int64(), pa.bool_()]
    assert schema.field("p").type == pa.int64()
    assert schema.field("train_fraction").type == pa.float64()
    assert schema.field("max_num").type == pa.int64() and schema.field("max_num").nullable
    assert schema.field("force_adjacent").type == pa.list_(pa.int64())
    assert schema.field("attn_only").type == pa.bool_()
    assert schema.field("task").type == pa.string()
    assert schema.field("epoch_test_99").type == pa.int64()
    assert schema.field("final/test/acc").type == pa.float64()
    assert schema.metadata[SCHEMA_METADATA_KEY.encode()] == str(SCHEMA_VERSION).encode()


def test_parts_are_whole_typed_and_versioned(tmp_path):
    store = SweepStore(str(tmp_path), "s")
    cfg = RunConfig(p=11)
    row = {
        "run_id": cfg.run_id,
        "pack_id": "pack-x",
        "trial_id": "t",
        **cfg.to_dict(),
        "status": "done",
        "epoch_test_99": None,
        "final/test/acc": 0.5,
        "extra/new": 1.5,
    }
    store.write_part("runs", "pack-x", 0, [row], runs_schema())
    store.write_part("metrics", "pack-x", 0, [{"run_id": cfg.run_id, "epoch": 10, "test/acc": 0.25}], metrics_schema())
    files = sorted(p.name for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert files == ["part-pack-x-000000.parquet", "part-pack-x-000000.parquet"]  # no temporary leftovers
    runs = pq.read_table(tmp_path / "s" / "runs")
    assert runs.schema.metadata[SCHEMA_METADATA_KEY.encode()] == b"1"
    assert runs.column("force_adjacent").to_pylist() == [[0, 1, 2, 17]]
    assert runs.column("extra/new").to_pylist() == [1.5]  # nothing a newer trainer adds is dropped
    metrics = store.read_table("metrics")
    assert metrics.column_names == ["run_id", "epoch", *METRIC_COLUMNS]
    assert metrics.column("epoch").type == pa.int64()


def test_purge_rows_rewrites_or_removes_a_part(tmp_path):
    store = SweepStore(str(tmp_path), "s")
    rows = [{"run_id": r, "epoch": e} for r in ("a", "b") for e in (10, 20)]
    store.write_part("metrics", "pack-x", 0, rows, metrics_schema())
    (part,) = store.parts("metrics")
    assert store.purge_rows(part, {"a"}) == 2
    assert store.read_table("metrics").column("run_id").to_pylist() == ["b", "b"]
    assert store.purge_rows(part, {"b"}) == 2
    assert store.parts("metrics") == [] and store.read_table("metrics") is None


def test_uri_locations(tmp_path):
    store = SweepStore(f"file://{tmp_path}", "s")
    store.write_json("x.json", {"a": 1})
    assert (tmp_path / "s" / "x.json").exists() and store.read_json("x.json") == {"a": 1}


def test_a_resumed_sweep_removes_what_a_killed_writer_left_half_written(tmp_path):
    """A driver or trial killed mid-write leaves hidden temporaries; the next run removes them all
    (and only them), and a dry run touches nothing."""
    from sweeps_testing import TINY, write_spec

    from sweeps.grid_source import prepare
    from sweeps.spec import load_spec

    spec = load_spec(write_spec(tmp_path, TINY))
    store = SweepStore(str(tmp_path / "r"), spec.name)
    cfg = RunConfig(p=11)
    kept = store.write_part("metrics", "pack-x", 0, [{"run_id": cfg.run_id, "epoch": 1}], metrics_schema())
    store.write_record("pack-x", {"seq": 1, "members": [cfg.run_id]})
    leftovers = [f"{t}/.part-pack-x-000001.parquet.tmp-0123abcd" for t in ("runs", "metrics")]
    leftovers += [
        ".plan.json.tmp-89abcdef",
        "checkpoints/packs/pack-x/.state.json.tmp-00ff00ff",
        "checkpoints/packs/pack-x/.trainer-000002.k3j4/state.json",
    ]
    sweep = tmp_path / "r" / spec.name

    def leave_leftovers() -> None:
        for rel in leftovers:
            (sweep / rel).parent.mkdir(parents=True, exist_ok=True)
            (sweep / rel).write_bytes(b"PAR1 half")

    leave_leftovers()
    assert store.delete_crash_leftovers() == {"uncommitted parts": 0, "half-written files": len(leftovers)}
    assert not any((sweep / rel).exists() for rel in leftovers)
    assert (sweep / "metrics" / kept.rsplit("/", 1)[-1]).exists() and store.read_record("pack-x")["seq"] == 1

    leave_leftovers()
    prepare(spec, str(tmp_path / "r"), write=False)
    assert all((sweep / rel).exists() for rel in leftovers)
    assert prepare(spec, str(tmp_path / "r")).cleaned["half-written files"] == len(leftovers)
    assert not any((sweep / rel).exists() for rel in leftovers)


def _three_commits(store: SweepStore, pack_id: str = "pack-x") -> None:
    """A finished pack as the runner leaves it: a batch of parts per commit, then its done record."""
    for seq in range(3):
        store.write_part(
            "metrics", pack_id, seq, [{"run_id": r, "epoch": 10 * (seq + 1)} for r in ("a", "b")], metrics_schema()
        )
        store.write_part(
            "runs", pack_id, seq, [{"run_id": "ab"[seq] if seq < 2 else "c", "status": "done"}], runs_schema()
        )
    store.write_record(pack_id, {"pack_id": pack_id, "seq": 3, "done": True})


def _rows(store: SweepStore, table: str) -> list[tuple]:
    data = store.read_table(table, columns=["run_id", "epoch"] if table == "metrics" else ["run_id"])
    return sorted(zip(*(data.column(c).to_pylist() for c in data.column_names), strict=True))


def test_compaction_leaves_one_part_per_table_with_the_same_rows(tmp_path):
    store = SweepStore(str(tmp_path), "s")
    _three_commits(store)
    before = {t: _rows(store, t) for t in ("runs", "metrics")}
    assert store.compact_pack("pack-x") == 6
    assert [p.name for p in store.parts("metrics")] == ["part-pack-x-000003.parquet"]
    assert [p.name for p in store.parts("runs")] == ["part-pack-x-000003.parquet"]
    assert {t: _rows(store, t) for t in ("runs", "metrics")} == before
    assert len(before["metrics"]) == 6 and store.count_rows("metrics") == 6
    record = store.read_record("pack-x")
    assert record["seq"] == 4 and record["compacted"] == 3
    assert store.compact_pack("pack-x") == 0  # done once: nothing left to merge
    assert store.delete_crash_leftovers() == {"uncommitted parts": 0, "half-written files": 0}


def test_compaction_killed_at_either_step_loses_and_duplicates_nothing(tmp_path):
    # killed after writing the merged parts, before the record: they are uncommitted leftovers
    store = SweepStore(str(tmp_path), "early")
    _three_commits(store)
    before = _rows(store, "metrics")
    merged = store.read_table("metrics")
    store.write_part("metrics", "pack-x", 3, merged.to_pylist(), metrics_schema())
    assert len(_rows(store, "metrics")) == 12  # what a reader sees in between: twice each row
    assert store.delete_crash_leftovers()["uncommitted parts"] == 1
    assert _rows(store, "metrics") == before and len(store.parts("metrics")) == 3

    # killed after the record, before deleting the merged-away parts: those are the leftovers
    store = SweepStore(str(tmp_path), "late")
    _three_commits(store)
    store.write_part("metrics", "pack-x", 3, store.read_table("metrics").to_pylist(), metrics_schema())
    store.write_part("runs", "pack-x", 3, store.read_table("runs").to_pylist(), runs_schema())
    store.write_record("pack-x", {"pack_id": "pack-x", "seq": 4, "done": True, "compacted": 3})
    assert store.delete_crash_leftovers()["uncommitted parts"] == 6
    assert _rows(store, "metrics") == before and [p.seq for p in store.parts("metrics")] == [3]

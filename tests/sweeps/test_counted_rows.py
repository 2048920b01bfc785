"""Which runs row counts for a member: one rule (grokcore.layout.counted_rows), the same answer through
every reader that asks, on one table holding each way a member gets several rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sweeps_testing import TINY, write_spec

from grokcore.layout import counted_rows
from grokcore.verdict import Thresholds
from sweeps import budget
from sweeps.bisection_source import BisectionSource
from sweeps.grid_source import prepare
from sweeps.optuna_source import OptunaSource
from sweeps.parquet import SweepStore, runs_schema
from sweeps.spec import load_spec
from sweeps.status import one_row_per_member

# (pack, seq or None for the driver's failed part) -> (member index, status, epochs_trained, wall_seconds)
PARTS = {
    ("pa", 0): [(0, "done", 200, 1.0), (1, "pruned", 40, 1.0), (3, "done", 200, 1.0)],
    ("pa", 1): [
        (0, "done", 200, 2.0),  # resumed: the same member's row committed again
        (5, "done", 200, 1.0),
    ],
    ("pa", None): [(2, "failed", None, None), (4, "failed", None, 1.0)],
    ("pb", 0): [
        (1, "done", 200, 3.0),  # pruned, then retried to its budget
        (2, "done", 200, 3.0),  # failed, then done
        (3, "done", 400, 3.0),
    ],  # continued to a larger budget: its old row stays until purged
    ("pb", None): [(4, "failed", None, 2.0)],  # failed twice
}
# member -> (pack, status, epochs_trained, wall_seconds) of the row that counts
EXPECTED = {
    0: ("pa", "done", 200, 1.0),
    1: ("pb", "done", 200, 3.0),
    2: ("pb", "done", 200, 3.0),
    3: ("pb", "done", 400, 3.0),
    4: ("pb", "failed", None, 2.0),
    5: ("pa", "done", 200, 1.0),
}


@pytest.fixture
def duplicated(tmp_path):
    spec = load_spec(write_spec(tmp_path, TINY))
    members = spec.members()
    store = SweepStore(str(tmp_path / "res"), spec.name)
    for (pack, seq), rows in PARTS.items():
        store.write_part(
            "runs",
            pack,
            seq,
            [
                {
                    "run_id": members[m].run_id,
                    **members[m].to_dict(),
                    "pack_id": pack,
                    "status": status,
                    "epochs_trained": epochs,
                    "wall_seconds": wall,
                }
                for m, status, epochs, wall in rows
            ],
            runs_schema(),
        )
    expected = {members[m].run_id: row for m, row in EXPECTED.items()}
    return spec, store, str(tmp_path / "res"), expected


def chosen(rows) -> dict[str, tuple]:
    """run_id -> the columns that tell its rows apart (pandas' NaN read as the null it stands for)."""

    def plain(v):
        return None if v is None or v != v else v  # noqa: PLR0124 - NaN is the one value unequal to itself

    return {
        r["run_id"]: tuple(plain(r[c]) for c in ("pack_id", "status", "epochs_trained", "wall_seconds")) for r in rows
    }


def test_the_rule_on_plain_columns():
    """The first real row among the longest; a member with failed rows only keeps its last."""
    ids = ["a", "a", "b", "b", "c", "c", "a"]
    status = ["failed", "done", "failed", "failed", "done", "done", "done"]
    assert counted_rows(ids, status).tolist() == [1, 3, 4]
    assert counted_rows(ids, status, [None, 10, None, None, 5, 7, 20]).tolist() == [3, 5, 6]
    assert counted_rows([], []).tolist() == []


def test_every_reader_counts_the_same_row(duplicated):
    spec, store, results, expected = duplicated
    table = store.read_table("runs")
    assert table.num_rows == 11 and table.column("run_id").to_pylist().count(spec.members()[0].run_id) == 2
    not_failed = {rid: row for rid, row in expected.items() if row[1] != "failed"}

    # grok status
    assert chosen(one_row_per_member(table).to_dict("records")) == expected
    # the report's loader
    from analysis.load import load_sweep

    sweep = load_sweep(store.root)
    assert chosen(sweep.runs.to_dict("records")) == expected
    assert "5 duplicate runs row(s) dropped" in " ".join(sweep.notes)
    # the budget's planner: failed members left out (they train again)
    assert chosen(budget.latest_rows(store, columns=["wall_seconds"])) == not_failed
    # the grid's plan: finished members by the pack of their counted row; failed ones retried, or kept failed
    finished = prepare(spec, results, write=False).finished
    assert finished == {rid: row[0] for rid, row in not_failed.items()}
    kept_failed = prepare(spec, results, write=False, retry_failed=False).finished
    assert kept_failed == {rid: row[0] if row[1] != "failed" else "failed" for rid, row in expected.items()}
    # the searches' views of what is on disk (their real methods over the real store; the rest of a search
    # needs a study or a search block, which this rule does not read)
    reader = SimpleNamespace(store=store, spec=SimpleNamespace(thresholds=Thresholds()), retry_failed=True)
    assert chosen(OptunaSource._finished_rows(reader).values()) == expected  # failed ones too: the study hears of them
    rows = BisectionSource._rows(reader)
    assert {rid: r["status"] for rid, r in rows.items()} == {rid: row[1] for rid, row in not_failed.items()}
    reader.retry_failed = False
    rows = BisectionSource._rows(reader)
    assert {rid: r["status"] for rid, r in rows.items()} == {rid: row[1] for rid, row in expected.items()}

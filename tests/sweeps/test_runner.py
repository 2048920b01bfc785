"""run_pack (a trial's body, no Ray): every row written once, and a crash at any point followed
by a rerun gives exactly the rows of an uninterrupted run."""

from __future__ import annotations

import pandas as pd
import pytest

from grokcore.config import RunConfig
from grokcore.records import METRIC_COLUMNS
from grokcore.verdict import Thresholds, decide
from sweeps.packing import Pack
from sweeps.parquet import SweepStore
from sweeps.runner import PackSettings, run_pack


def tiny_pack() -> Pack:
    # different budgets, so members end (and get runs rows) at different times
    return Pack.of(
        RunConfig(p=11, train_fraction=tf, d_model=16, n_heads=2, d_mlp=32, epochs=epochs, eval_every=20, seed=seed)
        for tf, epochs in ((0.5, 100), (0.7, 200))
        for seed in (0, 1)
    )


def settings(tmp_path, name, **kw) -> PackSettings:
    return PackSettings(results=str(tmp_path), name=name, checkpoint_every_s=0.0, report_every_s=0.0, **kw)


def tables(tmp_path, name) -> tuple[pd.DataFrame, pd.DataFrame]:
    store = SweepStore(str(tmp_path), name)
    runs = store.read_table("runs").to_pandas().sort_values("run_id").reset_index(drop=True)
    metrics = store.read_table("metrics").to_pandas().sort_values(["run_id", "epoch"]).reset_index(drop=True)
    return runs, metrics


# loose enough that the tiny members reach them at different epochs, or never (train/acc tops 0.22-0.5)
LOOSE = Thresholds(train_acc=0.3, test_acc=0.04, hold=2, grok_delay=40)


def check_verdicts(runs: pd.DataFrame, metrics: pd.DataFrame, th: Thresholds) -> list:
    """Each runs row's verdict columns are the one rule over the member's metrics rows; returns the verdicts."""
    verdicts = []
    for rid, rows in metrics.groupby("run_id"):
        v = decide(rows["epoch"].tolist(), rows["train/acc"].tolist(), rows["test/acc"].tolist(), th)
        row = runs.set_index("run_id").loc[rid]
        written = [None if pd.isna(row[c]) else int(row[c]) for c in ("epoch_memorised", "epoch_generalised")]
        assert written == [v.memorised_epoch, v.generalised_epoch] and bool(row["grokked"]) == v.grokked
        verdicts.append(v)
    return verdicts


def check_complete(pack: Pack, runs: pd.DataFrame, metrics: pd.DataFrame) -> None:
    assert sorted(runs.run_id) == sorted(pack.run_ids)
    expected = sum(m.epochs // m.eval_every for m in pack.members)
    assert len(metrics) == expected
    assert not metrics.duplicated(["run_id", "epoch"]).any()
    assert list(metrics.columns) == ["run_id", "epoch", *METRIC_COLUMNS]
    assert (runs.pack_id == pack.pack_id).all() and set(runs.status) == {"done"}


def test_run_pack_writes_every_row_once(tmp_path):
    pack = tiny_pack()
    seen = []
    final = run_pack(pack, settings(tmp_path, "a"), report=seen.append)
    runs, metrics = tables(tmp_path, "a")
    check_complete(pack, runs, metrics)
    assert final["members_finished"] == 4 and final["members_live"] == 0 and final["pack_done"]
    assert seen and seen[0]["members_live"] == 4
    assert SweepStore(str(tmp_path), "a").read_record(pack.pack_id)["done"]
    # running a finished pack again is a no-op
    run_pack(pack, settings(tmp_path, "a"))
    assert tables(tmp_path, "a")[1].shape == metrics.shape


class Crash(Exception):
    """A worker dying at a chosen moment."""


def crash_pack(pack, pack_settings: PackSettings, where: str, monkeypatch) -> None:
    """Train the pack and let it die: "after-commit" right after its 7th evaluation's commit (epoch
    140), "before-commit" between writing its 7th batch of parts and committing them."""
    calls = {"n": 0}

    def count_to(limit: int) -> None:
        calls["n"] += 1
        if calls["n"] == limit:
            raise Crash

    if where == "after-commit":
        with pytest.raises(Crash):
            run_pack(pack, pack_settings, report=lambda metrics: count_to(8))
        return
    original = SweepStore.write_record

    def write_record(self, pack_id, record):
        count_to(7)
        return original(self, pack_id, record)

    monkeypatch.setattr(SweepStore, "write_record", write_record)
    try:
        with pytest.raises(Crash):
            run_pack(pack, pack_settings)
    finally:
        monkeypatch.setattr(SweepStore, "write_record", original)


@pytest.mark.parametrize("checkpoints", [True, False], ids=["checkpoints", "no-checkpoints"])
@pytest.mark.parametrize("where", ["after-commit", "before-commit"])
def test_crash_then_rerun_equals_uninterrupted(tmp_path, monkeypatch, checkpoints, where):
    pack = tiny_pack()
    final = run_pack(pack, settings(tmp_path, "ref", checkpoints=checkpoints, thresholds=LOOSE))
    ref_runs, ref_metrics = tables(tmp_path, "ref")
    verdicts = check_verdicts(ref_runs, ref_metrics, LOOSE)
    assert {v.memorised for v in verdicts} == {True, False} and any(v.generalised for v in verdicts)
    assert final["members_generalised"] == sum(v.generalised for v in verdicts)  # what Tune's table shows

    crash_pack(pack, settings(tmp_path, "x", checkpoints=checkpoints, thresholds=LOOSE), where, monkeypatch)
    if where == "before-commit":
        store = SweepStore(str(tmp_path), "x")
        record = store.read_record(pack.pack_id)
        assert any(p.seq >= record["seq"] for p in store.parts("metrics"))  # an uncommitted part is on disk

    partial_runs, _ = tables(tmp_path, "x")
    assert 0 < len(partial_runs) < 4  # the short members ended before the crash
    again = run_pack(pack, settings(tmp_path, "x", checkpoints=checkpoints, thresholds=LOOSE))
    assert again["members_generalised"] == final["members_generalised"]  # those that ended before the crash too
    runs, metrics = tables(tmp_path, "x")
    check_complete(pack, runs, metrics)
    # bit-identical numbers: a checkpoint continues exactly; without one a member restarts from scratch
    pd.testing.assert_frame_equal(metrics, ref_metrics)
    same = [c for c in runs.columns if c not in ("wall_seconds", "trial_id")]
    pd.testing.assert_frame_equal(runs[same], ref_runs[same])

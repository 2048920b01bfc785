"""Snapshots in a sweep's results: written under the commit invariant, so a crash at any point and
a rerun keep exactly the snapshots of an uninterrupted run, readable without Ray."""

from __future__ import annotations

import pytest
import torch
from test_runner import crash_pack, settings, tiny_pack

import grokcore.snapshots as gsnap
from grokcore.snapshots import list_snapshots, load_snapshot
from sweeps.parquet import SNAPSHOT_DIR, SweepStore
from sweeps.runner import run_pack

# every 20: each commit (one per evaluation here) has snapshots; 5 and 133 fall between evaluations
SCHEDULE = {
    "every": 20,
    "epochs": [5, 133],
    "log_points": 0,
    "events": ["train_99", "test_99", "end"],
    "dtype": "float32",
}


def kept(tmp_path, name):
    """{(run_id, epoch): event} of a sweep folder, failing on a duplicate."""
    entries = list_snapshots(tmp_path / name)
    out = {(e["run_id"], e["epoch"]): e["event"] for e in entries}
    assert len(out) == len(entries), "a snapshot is stored twice"
    return out


def test_folder_name_agrees_with_grokcore():
    assert gsnap.SNAPSHOT_DIR == SNAPSHOT_DIR


@pytest.mark.parametrize("checkpoints", [True, False], ids=["checkpoints", "no-checkpoints"])
@pytest.mark.parametrize("where", ["after-commit", "before-commit"])
def test_crash_then_rerun_keeps_every_snapshot_once(tmp_path, monkeypatch, checkpoints, where):
    pack = tiny_pack()
    run_pack(pack, settings(tmp_path, "ref", checkpoints=checkpoints, snapshots=SCHEDULE))
    ref = kept(tmp_path, "ref")
    for m in pack.members:  # the schedule's epochs and the end are all there
        epochs = {e for (r, e) in ref if r == m.run_id}
        assert {5, *range(20, m.epochs + 1, 20)} | ({133} if m.epochs >= 133 else set()) <= epochs
        assert "end" in ref[m.run_id, m.epochs]

    crash_pack(pack, settings(tmp_path, "x", checkpoints=checkpoints, snapshots=SCHEDULE), where, monkeypatch)
    if where == "before-commit":
        store = SweepStore(str(tmp_path), "x")
        record = store.read_record(pack.pack_id)
        assert any(p.seq >= record["seq"] for p in store.parts(SNAPSHOT_DIR))  # an uncommitted file is on disk
    assert 0 < len(kept(tmp_path, "x")) < len(ref) or where == "before-commit"

    run_pack(pack, settings(tmp_path, "x", checkpoints=checkpoints, snapshots=SCHEDULE))
    assert kept(tmp_path, "x") == ref  # none lost, none duplicated, same events
    for run_id, epoch in ref:  # the same weights: bit for bit from a checkpoint; without one, the
        # members that restart from epoch 0 train in a smaller pack, whose batched matmuls may round
        # differently on some CPUs (seen here: 6e-8 at epoch 5, 6e-6 by epoch 160)
        cfg, w = load_snapshot(tmp_path / "x", run_id, epoch)
        _, w_ref = load_snapshot(tmp_path / "ref", run_id, epoch)
        assert cfg.run_id == run_id
        for k in w_ref:
            if checkpoints:
                assert torch.equal(w[k], w_ref[k]), (run_id, epoch, k)
            else:
                torch.testing.assert_close(w[k], w_ref[k], rtol=1e-4, atol=1e-4, msg=f"{run_id} {epoch} {k}")


def test_load_snapshot_names_what_exists(tmp_path):
    pack = tiny_pack()
    schedule = {**SCHEDULE, "dtype": "bfloat16", "events": []}
    run_pack(pack, settings(tmp_path, "s", snapshots=schedule))
    run_id = pack.run_ids[0]
    cfg, weights = load_snapshot(tmp_path / "s", run_id, 40, dtype=None)
    assert weights["embed.W_E"].dtype == torch.bfloat16 and cfg == pack.members[0]
    with pytest.raises(KeyError, match="it has \\[5, 20, 40, 60, 80, 100\\]"):
        load_snapshot(tmp_path / "s", run_id, 31)
    # no snapshots without the setting
    run_pack(pack, settings(tmp_path, "none"))
    assert list_snapshots(tmp_path / "none") == []


def test_spec_snapshots_setting_and_dry_run_estimate(tmp_path):
    from sweeps.launch import dry_run
    from sweeps.spec import SpecError, load_spec

    text = (
        "name: snap\nbase: {p: 11, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 100}\n"
        "axes: {seed: [0, 1]}\nsnapshots: {every: 50, events: [end], dtype: float16}\n"
    )
    (tmp_path / "s.yaml").write_text(text)
    spec = load_spec(tmp_path / "s.yaml")
    assert spec.snapshots == {"every": 50, "epochs": [], "log_points": 0, "events": ["end"], "dtype": "float16"}
    members = spec.members()
    assert len({m.run_id for m in members}) == 2
    # the setting does not change run_ids
    (tmp_path / "plain.yaml").write_text(text.replace("snapshots: {every: 50, events: [end], dtype: float16}\n", ""))
    assert [m.run_id for m in load_spec(tmp_path / "plain.yaml").members()] == [m.run_id for m in members]
    # 2 members x (2 scheduled + 1 event) x params x 2 bytes
    n = gsnap.SnapshotSchedule().bytes_per_snapshot(members[0]) // 4
    assert f"at most 6 (3 per member, float16), {6 * n * 2 / 1000:.1f} KB" in dry_run(spec, str(tmp_path / "r"))
    (tmp_path / "bad.yaml").write_text(text.replace("[end]", "[grokked]"))
    with pytest.raises(SpecError, match=r"snapshots.*grokked"):
        load_spec(tmp_path / "bad.yaml")


def test_grok_train_keeps_snapshots_and_grok_export_writes_one(tmp_path, capsys, monkeypatch):
    from grokcore import RunConfig
    from grokcore.data import member_data
    from grokcore.export import MemberModule, load_member
    from sweeps.cli import main

    monkeypatch.chdir(tmp_path)
    fields = ["--p", "11", "--d_model", "16", "--n_heads", "2", "--d_mlp", "32", "--epochs", "60", "--eval_every", "20"]
    assert main(["train", *fields, "--results", "res", "--snapshots", "{epochs: [7], events: [end]}"]) == 0
    cfg = RunConfig(p=11, d_model=16, n_heads=2, d_mlp=32, epochs=60, eval_every=20)
    assert [(e["epoch"], e["event"]) for e in list_snapshots(tmp_path / "res" / "train")] == [(7, "epoch"), (60, "end")]
    assert main(["export", "res/train", cfg.run_id, "--epoch", "7"]) == 0
    exported_cfg, weights = load_member(tmp_path / f"export-{cfg.run_id}-7")
    _, snap = load_snapshot(tmp_path / "res" / "train", cfg.run_id, 7)
    assert exported_cfg == cfg and all(torch.equal(weights[k], snap[k]) for k in snap)
    tokens = member_data(cfg).test_tokens
    assert torch.equal(MemberModule(cfg, weights)(tokens), MemberModule(cfg, snap)(tokens))
    assert main(["export", "res/train", cfg.run_id, "--epoch", "8"]) == 1
    assert "it has [7, 60]" in capsys.readouterr().err
    assert main(["train", *fields, "--snapshots", "every 100"]) == 2


def test_compaction_keeps_snapshot_files_committed(tmp_path):
    # a finished pack's tables are merged at a new seq; its snapshot files keep their seqs, and the
    # driver's leftover sweep before a rerun must not take them for merged-away parts
    pack = tiny_pack()
    run_pack(pack, settings(tmp_path, "s", snapshots=SCHEDULE))
    store = SweepStore(str(tmp_path), "s")
    record = store.read_record(pack.pack_id)
    before = kept(tmp_path, "s")
    assert record["compacted"] > min(p.seq for p in store.parts(SNAPSHOT_DIR))  # files below the merged seq
    assert store.delete_crash_leftovers() == {"uncommitted parts": 0, "half-written files": 0}
    run_pack(pack, settings(tmp_path, "s", snapshots=SCHEDULE))
    assert kept(tmp_path, "s") == before


@pytest.mark.parametrize("search", ["optuna", "bisection"])
def test_search_dry_runs_print_the_snapshot_storage_of_their_budget(tmp_path, capsys, search):
    from grokcore import RunConfig
    from sweeps.cli import main

    base = "base: {p: 11, n_heads: 2, d_mlp: 32, eval_every: 20}\n"
    if search == "optuna":  # the costliest point: d_model 32 with epochs 200 (4 scheduled + the end)
        text = (
            f"name: s\n{base}axes: {{d_model: [16, 32], epochs: {{integers: [100, 200]}}, "
            "lr: {loguniform: [0.001, 0.01]}}\n"
            "search: {kind: optuna, objective: {metric: final/test/loss}, direction: minimize, members: 6, batch: 3}\n"
        )
        budget, worst = 6, RunConfig(p=11, d_model=32, n_heads=2, d_mlp=32, epochs=200)
    else:  # lines over epochs: 2 lines x (2 ends + 1 step) x 2 seeds, the longest 200 epochs
        text = (
            f"name: s\n{base[:-2]}, d_model: 16}}\naxes: {{epochs: [100, 200], "
            "train_fraction: {uniform: [0.2, 0.8]}}\n"
            "search: {kind: bisection, seeds: 2, steps: 1}\n"
        )
        budget, worst = 12, RunConfig(p=11, d_model=16, n_heads=2, d_mlp=32, epochs=200)
    text += "snapshots: {every: 50, events: [end], dtype: bfloat16}\n"
    (tmp_path / "s.yaml").write_text(text)
    assert main(["sweep", str(tmp_path / "s.yaml"), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    size = budget * 5 * gsnap.SnapshotSchedule().bytes_per_snapshot(worst) // 2
    assert (
        f"at most {budget * 5} (5 per member at most, bfloat16), {size / 1000:.1f} KB under snapshots/ "
        f"for {budget} members"
    ) in out, out
    assert not (tmp_path / "r").exists()


class PruneAt:
    """An on_eval hook (a search's pruner) that ends one member at one evaluation."""

    def __init__(self, run_id: str, epoch: int):
        self.run_id, self.epoch = run_id, epoch

    def __call__(self, epoch, rows):
        return [self.run_id] if epoch == self.epoch else []

    def history(self, rows):
        pass


class Crash(Exception):
    pass


@pytest.mark.parametrize("how", ["pruned", "stopped"])
def test_a_member_that_leaves_early_keeps_its_end_snapshot_through_a_crash(tmp_path, how):
    import dataclasses

    from sweeps.packing import Pack

    pack = tiny_pack()
    leaver = pack.members[0]
    schedule = {**SCHEDULE, "events": ["end"]}
    hook = PruneAt(leaver.run_id, 60) if how == "pruned" else None
    if how == "stopped":  # test accuracy reaches 0.01 at once: it stops at its first evaluation + 10 epochs
        leaver = dataclasses.replace(leaver, stop_acc=0.01, stop_patience=1, stop_extra_epochs=10)
        pack = Pack.of([leaver, *pack.members[1:]])
    end = 60 if how == "pruned" else 30
    run_pack(pack, settings(tmp_path, "ref", snapshots=schedule), on_eval=hook)
    ref = kept(tmp_path, "ref")
    assert max(e for (r, e) in ref if r == leaver.run_id) == end and "end" in ref[leaver.run_id, end]

    def die_after_it_left(metrics):  # the report after the commit that follows the member's leaving
        if metrics["epoch"] == (60 if how == "pruned" else 40):
            raise Crash

    with pytest.raises(Crash):
        run_pack(pack, settings(tmp_path, "x", snapshots=schedule), on_eval=hook, report=die_after_it_left)
    run_pack(pack, settings(tmp_path, "x", snapshots=schedule), on_eval=hook)
    assert kept(tmp_path, "x") == ref
    runs = SweepStore(str(tmp_path), "x").read_table("runs").to_pandas().set_index("run_id")
    assert runs.loc[leaver.run_id, "status"] == how and len(runs) == len(pack.members)

"""The loop: grokking shows up, checkpoints continue exactly, stop rules and pruning."""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig, train_pack
from grokcore.verdict import decide

GROKS = RunConfig(
    p=31, d_model=64, n_heads=4, d_mlp=128, train_fraction=0.5, lr=3e-3, weight_decay=3.0, epochs=700, eval_every=25
)


def test_small_config_visibly_groks():
    metrics, (outcome,) = train_pack([GROKS])
    by_epoch = {m["epoch"]: m for m in metrics}
    memorised, generalised = outcome.epoch_train_99, outcome.epoch_test_99
    assert memorised is not None and generalised is not None
    assert generalised - memorised >= 300, (memorised, generalised)  # a long plateau, then generalisation
    assert by_epoch[memorised]["test/acc"] < 0.3  # memorised while test accuracy is still low
    assert by_epoch[700]["test/acc"] >= 0.99 and by_epoch[700]["train/acc"] == 1.0
    # weight decay shrinks the weights during the clean-up
    assert by_epoch[700]["weight_norm"] < max(m["weight_norm"] for m in metrics)


def collect(reports):
    metrics, finished = [], []
    for r in reports:
        metrics += r.metrics
        finished += r.finished
    return metrics, finished


@pytest.mark.parametrize("batch_size", [None, 64])
def test_save_restore_continue_equals_uninterrupted(tmp_path, batch_size):
    base = RunConfig(
        p=17, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=60, eval_every=10, batch_size=batch_size
    )
    members = [dataclasses.replace(base, seed=s, lr=1e-3 * (1 + s), epochs=60 - 20 * (s == 2)) for s in range(3)]
    full_metrics, full_finished = collect(PackTrainer(members).run())

    trainer = PackTrainer(members)
    run = trainer.run()
    first = [next(run) for _ in range(3)]  # epochs 10, 20, 30
    trainer.save(tmp_path / "ckpt")
    run.close()
    del trainer
    restored = PackTrainer.load(tmp_path / "ckpt")
    assert restored.epoch == 30
    rest_metrics, rest_finished = collect(restored.run())
    metrics = [m for r in first for m in r.metrics] + rest_metrics
    assert [(m["run_id"], m["epoch"]) for m in metrics] == [(m["run_id"], m["epoch"]) for m in full_metrics]
    for a, b in zip(metrics, full_metrics, strict=True):
        assert a["train/loss"] == b["train/loss"] and a["test/acc"] == b["test/acc"]  # bit for bit
    assert [o.run_id for r in first for o in r.finished] + [o.run_id for o in rest_finished] == [
        o.run_id for o in full_finished
    ]


def test_stop_rule_with_extra_epochs():
    stop = dataclasses.replace(GROKS, stop_acc=0.99, stop_patience=2, stop_extra_epochs=50)
    metrics, (outcome,) = train_pack([stop])
    assert outcome.status == "stopped"
    streak_end = outcome.epoch_test_99 + 25  # second evaluation at or above 0.99
    assert all(m["test/acc"] >= 0.99 for m in metrics if outcome.epoch_test_99 <= m["epoch"] <= streak_end)
    assert outcome.epochs_trained == streak_end + 50
    assert metrics[-1]["epoch"] == outcome.epochs_trained


def test_stop_rule_ends_on_an_evaluation_that_meets_it():
    """A loss spike at the end of the extra epochs does not stop the member there: it trains on until test
    accuracy is back at stop_acc (or to its budget), so the held rule of grokcore/verdict.py, reading the
    same history, calls it generalised instead of fallen back (exponents' (1, 1) seed 1 was stopped on a
    spike before this). The spike is made by hand: noise on every weight just before the last evaluation
    of the extra epochs."""
    stop = dataclasses.replace(GROKS, stop_acc=0.99, stop_patience=2, stop_extra_epochs=50, epochs=2000)
    trainer = PackTrainer([stop])
    metrics, finished, planned_end = [], [], None
    for report in trainer.run():
        metrics += report.metrics
        finished += report.finished
        if trainer.trackers and trainer.trackers[0].stop_fired and planned_end is None:
            planned_end = trainer.trackers[0].end_epoch
        if planned_end is not None and report.epoch == planned_end - stop.eval_every:
            weights = trainer.flat.data
            noise = torch.randn(weights.shape, generator=torch.Generator().manual_seed(0), dtype=weights.dtype)
            weights.add_(noise * weights.std() * 2)
    (outcome,) = finished
    by_epoch = {m["epoch"]: m["test/acc"] for m in metrics}
    assert planned_end is not None and by_epoch[planned_end] < 0.99  # the spike was seen at the planned end
    assert outcome.status == "stopped" and outcome.epochs_trained > planned_end  # and training went on
    assert metrics[-1]["epoch"] == outcome.epochs_trained
    assert by_epoch[outcome.epochs_trained] >= 0.99 or outcome.epochs_trained == stop.epochs
    # every evaluation between the planned end and the last one is below stop_acc: it ends at the first back
    assert all(by_epoch[e] < 0.99 for e in by_epoch if planned_end <= e < outcome.epochs_trained)
    verdict = decide([m["epoch"] for m in metrics], [m["train/acc"] for m in metrics], [m["test/acc"] for m in metrics])
    assert verdict.generalised_epoch is not None and verdict.generalised_epoch < planned_end


def test_drop_marks_pruned_and_stops_rows():
    base = RunConfig(p=11, d_model=16, n_heads=2, d_mlp=32, epochs=50, eval_every=10)
    members = [dataclasses.replace(base, seed=s) for s in range(3)]
    trainer = PackTrainer(members)
    run = trainer.run()
    next(run)
    trainer.drop([members[1].run_id])
    assert trainer.live == 2
    metrics, finished = collect(run)
    assert {m["run_id"] for m in metrics} == {members[0].run_id, members[2].run_id}
    statuses = {o.run_id: o.status for o in finished}
    assert statuses == {members[0].run_id: "done", members[1].run_id: "pruned", members[2].run_id: "done"}
    pruned = next(o for o in finished if o.status == "pruned")
    assert pruned.epochs_trained == 10


def test_pack_rejects_mixed_shapes():
    with pytest.raises(ValueError, match="shape_key"):
        PackTrainer([RunConfig(p=11), RunConfig(p=13)])


def test_outcome_row_has_config_and_outcome_columns():
    base = RunConfig(p=11, d_model=16, n_heads=2, d_mlp=32, epochs=20, eval_every=10)
    _, (outcome,) = train_pack([base])
    row = outcome.to_row()
    assert row["run_id"] == base.run_id and row["p"] == 11 and row["epochs_trained"] == 20
    assert row["status"] == "done" and 0 <= row["final/test/acc"] <= 1 and row["device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    base = RunConfig(p=17, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=20, eval_every=10)
    cpu, _ = train_pack([base])
    gpu, _ = train_pack([base], device="cuda")
    for a, b in zip(cpu, gpu, strict=True):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("batch_size", [None, 64])
def test_training_steps_never_sync_with_the_device(batch_size):
    cfg = RunConfig(p=17, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=20, batch_size=batch_size)
    trainer = PackTrainer([dataclasses.replace(cfg, seed=s) for s in range(3)], device="cuda")
    trainer._train_epoch()  # warm-up allocations
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            trainer._train_epoch()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _compiles_on(device: str) -> bool:
    """Inductor on a CPU needs a C++ toolchain and Python's headers; a machine without them skips."""
    try:
        torch.compile(lambda x: torch.relu(x) * 2)(torch.ones(3, device=device))
        return True
    except Exception:  # noqa: BLE001  (Inductor reports a missing toolchain in several ways)
        return False


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_torch_compile_matches_eager_while_the_pack_shrinks(device):
    """The compiled loss and optimizer follow the eager step to float rounding, also after members
    leave (the member dimension changes shape, so the compiled step must cope with a smaller pack)."""
    if not _compiles_on(device):
        pytest.skip(f"torch.compile cannot build kernels on {device} here")
    base = RunConfig(p=17, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=60, eval_every=10)
    members = [
        dataclasses.replace(
            base, seed=s, lr=1e-3 * (1 + s), weight_decay=0.5 * s, epochs=60 - 20 * (s == 1) - 30 * (s == 2)
        )
        for s in range(4)
    ]
    eager, eager_out = train_pack(members, device=device)
    torch._dynamo.utils.counters.clear()
    compiled, compiled_out = train_pack(members, device=device, torch_compile=True)
    assert [(m["run_id"], m["epoch"]) for m in compiled] == [(m["run_id"], m["epoch"]) for m in eager]
    assert [o.status for o in compiled_out] == [o.status for o in eager_out]
    for a, b in zip(compiled, eager, strict=True):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4, abs=1e-6)
        assert a["test/loss"] == pytest.approx(b["test/loss"], rel=1e-4, abs=1e-6)
    # the training run really went through Inductor, not an eager fallback
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # the loss and the AdamW update


def test_a_member_that_left_the_batch_keeps_its_final_weights(tmp_path):
    """Once a member ends, its final weights stay reachable (host memory, checkpointed): equal to the
    same member's weights at that epoch while it was still training, in a pack where it outlives."""
    base = RunConfig(p=17, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=60, eval_every=10)
    short, long_ = dataclasses.replace(base, epochs=30), dataclasses.replace(base, seed=1)
    twin = dataclasses.replace(short, epochs=60)  # same numbers as `short` up to epoch 30

    trainer = PackTrainer([short, long_])
    run = trainer.run()
    reports = [next(run) for _ in range(3)]
    assert [o.run_id for o in reports[-1].finished] == [short.run_id] and trainer.live == 1
    left = trainer.member_weights(short.run_id)
    assert all(t.device.type == "cpu" for t in left.values())

    alive = PackTrainer([twin, long_])
    it = alive.run()
    for _ in range(3):
        next(it)
    expected = alive.member_weights(twin.run_id)
    assert left.keys() == expected.keys()
    assert all(torch.equal(left[k], expected[k]) for k in left)
    assert not torch.equal(left["embed.W_E"], trainer.member_weights(long_.run_id)["embed.W_E"])

    trainer.save(tmp_path / "ckpt")
    restored = PackTrainer.load(tmp_path / "ckpt")
    assert all(torch.equal(restored.member_weights(short.run_id)[k], left[k]) for k in left)
    with pytest.raises(KeyError, match="not a member of this pack"):
        trainer.member_weights("add-nope")


def test_run_with_cache_names_the_member_count_it_needs():
    trainer = PackTrainer([GROKS, dataclasses.replace(GROKS, seed=1)])
    tokens = trainer.data["test_tokens"][:1, :5]  # one member's tokens for a pack of two
    with pytest.raises(ValueError, match=r"member = 2 .*got shape \(1, 5, 3\)"):
        trainer.model.run_with_cache(tokens)
    logits, cache = trainer.model.run_with_cache(tokens.expand(2, -1, -1))
    assert logits.shape[:2] == (2, 5) and "blocks.0.attn.hook_pattern" in cache


def test_long_training_shows_progress_where_asked(capsys):
    """A bar with the epoch, members live/finished/generalised, model-epochs/s and an ETA when asked
    (or in a terminal / notebook); nothing at all when not (a Ray worker's logs stay clean)."""
    members = [dataclasses.replace(GROKS, epochs=100, eval_every=50, seed=s) for s in range(2)]
    train_pack(members, progress=True)
    err = capsys.readouterr().err
    assert "2 members: 100%" in err and "100/100" in err
    assert "live=0" in err and "finished=2" in err and "test_99=" in err and "model_epochs_s=" in err
    assert "<00:00" in err  # tqdm's ETA field
    train_pack(members, progress=None)  # pytest's captured stderr is no terminal
    assert capsys.readouterr().err == ""

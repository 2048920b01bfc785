"""Snapshots: the schedule's epochs, weights equal to the live model's, training numbers untouched."""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig
from grokcore.data import member_data
from grokcore.export import MemberModule
from grokcore.snapshots import SnapshotSchedule, hooked_member

BASE = RunConfig(
    p=17, d_model=32, n_heads=2, d_mlp=128, train_fraction=0.6, lr=1e-2, weight_decay=1.0, epochs=120, eval_every=10
)
# Three members, one with a shorter budget; a learning rate that memorises within the budget.
MEMBERS = [dataclasses.replace(BASE, seed=s, epochs=120 - 40 * (s == 2)) for s in range(3)]
# Epoch 7 and 33 are not evaluation epochs: the trainer must stop inside an evaluation interval.
SCHEDULE = SnapshotSchedule(epochs=(7, 33), every=50, events=("train_99", "test_99", "end"))


def run_all(trainer):
    metrics, finished, snapshots = [], [], []
    for r in trainer.run():
        metrics += r.metrics
        finished += r.finished
        snapshots += r.snapshots
    return metrics, finished, snapshots


def test_schedule_epochs_known_answers():
    assert SnapshotSchedule(every=100).scheduled_epochs(350) == {100, 200, 300}
    assert SnapshotSchedule(epochs=(5, 400, 5)).scheduled_epochs(350) == {5}
    assert SnapshotSchedule(log_points=4).scheduled_epochs(1000) == {1, 10, 100, 1000}
    assert SnapshotSchedule(log_points=1).scheduled_epochs(70) == {70}
    with pytest.raises(ValueError, match=r"snapshots.events"):
        SnapshotSchedule.from_dict({"events": ["grokked"]})


def test_bytes_per_snapshot_counts_parameters():
    cfg = RunConfig(p=113, d_model=128, n_heads=4, d_mlp=512)  # Nanda's transformer
    n = 116 * 128 + 3 * 128 + 4 * 128 * 32 * 4 + 128 * 512 * 2 + 128 * 113
    assert SnapshotSchedule().bytes_per_snapshot(cfg) == 4 * n
    assert SnapshotSchedule(dtype="bfloat16").bytes_per_snapshot(cfg) == 2 * n


def test_snapshots_leave_training_numbers_bit_identical_and_equal_live_weights():
    plain_metrics, plain_finished, none = run_all(PackTrainer(MEMBERS))
    assert none == []
    metrics, finished, snapshots = run_all(PackTrainer(MEMBERS, snapshots=SCHEDULE))
    assert repr(metrics) == repr(plain_metrics)  # every metric bit for bit (repr: NaN columns compare equal)
    assert repr([o.to_row() | {"wall_seconds": 0} for o in finished]) == repr(
        [o.to_row() | {"wall_seconds": 0} for o in plain_finished]
    )

    by_key = {(s.run_id, s.epoch): s for s in snapshots}
    assert len(by_key) == len(snapshots)  # one snapshot per member and epoch, events merged
    for cfg, outcome in zip(MEMBERS, sorted(finished, key=lambda o: MEMBERS.index(o.config)), strict=True):
        kept = {s.epoch: s.event for s in snapshots if s.run_id == cfg.run_id}
        expected = {7, 33, *range(50, cfg.epochs + 1, 50), cfg.epochs}
        events = {"end": cfg.epochs}
        assert outcome.epoch_train_99 is not None  # the test needs a memorisation event
        events["train_99"] = outcome.epoch_train_99
        if outcome.epoch_test_99 is not None:
            events["test_99"] = outcome.epoch_test_99
        assert set(kept) == expected | set(events.values())
        for event, epoch in events.items():
            assert event in kept[epoch].split("+")
        assert kept[7] == "epoch"

    # the live model's weights at those epochs: a trainer evaluating at every epoch (other run_ids,
    # same numbers), read between reports
    twins = [dataclasses.replace(m, eval_every=1) for m in MEMBERS]
    twin_of = {t.run_id: m.run_id for t, m in zip(twins, MEMBERS, strict=True)}
    live = {}
    trainer = PackTrainer(twins)
    for r in trainer.run():
        for rid in [c.run_id for c in trainer.configs] + [o.run_id for o in r.finished]:
            if (twin_of[rid], r.epoch) in by_key:
                live[twin_of[rid], r.epoch] = trainer.member_weights(rid)
    assert set(live) == set(by_key)
    for key, snap in by_key.items():
        cfg = next(c for c in MEMBERS if c.run_id == key[0])
        tokens = member_data(cfg).test_tokens
        with torch.no_grad():
            expected = MemberModule(cfg, live[key])(tokens)
            got = MemberModule(cfg, snap.weights)(tokens)
        assert torch.equal(got, expected), key  # bit for bit
    # a different epoch's weights differ: the comparison can fail
    assert not torch.equal(
        by_key[MEMBERS[0].run_id, 7].weights["embed.W_E"], by_key[MEMBERS[0].run_id, 33].weights["embed.W_E"]
    )


def test_hooked_member_runs_with_cache_and_matches_trainer_logits():
    trainer = PackTrainer(MEMBERS[:1], snapshots=SnapshotSchedule(epochs=(20,)))
    snap = next(s for r in trainer.run() for s in r.snapshots)
    model = hooked_member(MEMBERS[0], snap.weights)
    tokens = member_data(MEMBERS[0]).test_tokens
    logits, cache = model.run_with_cache(tokens.unsqueeze(0))
    assert cache["blocks.0.attn.hook_pattern"].shape[:3] == (1, len(tokens), 2)
    # the full forward vs the trainer's last-position path: the same math in other matmul shapes
    torch.testing.assert_close(logits[0, :, -1], MemberModule(MEMBERS[0], snap.weights)(tokens), rtol=1e-5, atol=1e-5)


def test_half_precision_snapshots_are_the_weights_rounded():
    def snapshot(dtype):
        trainer = PackTrainer(MEMBERS[:1], snapshots=SnapshotSchedule(epochs=(20,), dtype=dtype))
        return next(s for r in trainer.run() for s in r.snapshots).weights

    full, half = snapshot("float32"), snapshot("bfloat16")
    for name, w in full.items():
        assert half[name].dtype == torch.bfloat16 and torch.equal(half[name], w.to(torch.bfloat16)), name

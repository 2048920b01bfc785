"""A pack trains each member exactly as if it were trained alone, and as the seed notebooks did."""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig, train_pack
from grokcore.export import reference_state_dict
from grokcore.packed import init_member
from grokcore.reference import ReferenceTransformer, make_optimizer, reference_loss
from grokcore.tasks import build_pool, make_split

BASE = RunConfig(task="pow", p=11, d_model=16, n_heads=2, d_mlp=32, epochs=30, eval_every=10)
MEMBERS = [
    dataclasses.replace(BASE, exp_m=1, exp_n=1, seed=0),
    dataclasses.replace(BASE, exp_m=3, exp_n=2, lr=3e-3, seed=1),
    dataclasses.replace(BASE, exp_m=5, exp_n=7, weight_decay=0.1, train_fraction=0.5, seed=2),
    dataclasses.replace(BASE, exp_m=2, exp_n=9, noise="binomial", noise_n=2, beta2=0.99, train_fraction=0.6, seed=3),
    dataclasses.replace(BASE, exp_m=4, exp_n=4, noise="uniform", noise_fraction=0.2, epochs=20, seed=4),
]


def losses_by_member(metrics):
    out = {}
    for row in metrics:
        out.setdefault(row["run_id"], {})[row["epoch"]] = row["train/loss"]
    return out


def reference_losses(cfg: RunConfig) -> dict[int, float]:
    """The member trained the seed-notebook way: nn.Module + torch.optim.AdamW, full batch."""
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    model = ReferenceTransformer(cfg, reference_state_dict(cfg, init_member(cfg)))
    opt = make_optimizer(model, cfg)
    tokens, labels = pool.inputs[split.train_idx], split.train_labels
    out = {}
    for epoch in range(1, cfg.epochs + 1):
        opt.zero_grad()
        reference_loss(model, tokens, labels).backward()
        opt.step()
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            with torch.no_grad():
                out[epoch] = reference_loss(model, tokens, labels).item()
    return out


def test_pack_equals_members_alone_and_reference_loop():
    pack = losses_by_member(train_pack(MEMBERS)[0])
    for cfg in MEMBERS:
        alone = losses_by_member(train_pack([cfg])[0])[cfg.run_id]
        reference = reference_losses(cfg)
        assert sorted(pack[cfg.run_id]) == sorted(alone) == sorted(reference)
        for epoch, loss in reference.items():
            assert pack[cfg.run_id][epoch] == pytest.approx(alone[epoch], rel=1e-5, abs=1e-6)
            assert pack[cfg.run_id][epoch] == pytest.approx(loss, rel=2e-4, abs=1e-5)
    # the members really differ, so equality above is not vacuous
    finals = [pack[c.run_id][20] for c in MEMBERS]
    assert len({round(f, 4) for f in finals}) == len(finals)


@pytest.mark.parametrize("extra", [
    dict(normalization="ln", act="gelu", n_layers=2, bias=True),
    dict(attn_only=True, n_heads=1, n_layers=1),
])
def test_architectures_match_reference(extra):
    cfg = dataclasses.replace(BASE, task="add", epochs=20, **extra)
    members = [dataclasses.replace(cfg, seed=s, lr=1e-3 * (s + 1)) for s in range(2)]
    pack = losses_by_member(train_pack(members)[0])
    for m in members:
        for epoch, loss in reference_losses(m).items():
            assert pack[m.run_id][epoch] == pytest.approx(loss, rel=2e-4, abs=1e-5)


def test_mlp_matches_reference():
    cfg = RunConfig(task="add", p=13, model="mlp", layout="a op b =", d_model=8, d_mlp=24, epochs=20,
                    eval_every=5, train_fraction=0.5)
    members = [dataclasses.replace(cfg, seed=s, weight_decay=0.3 * s) for s in range(3)]
    pack = losses_by_member(train_pack(members)[0])
    for m in members:
        for epoch, loss in reference_losses(m).items():
            assert pack[m.run_id][epoch] == pytest.approx(loss, rel=2e-4, abs=1e-5)


def test_minibatch_pack_equals_alone():
    cfg = RunConfig(task="add", p=13, model="mlp", layout="a op b =", d_model=8, d_mlp=24, epochs=6,
                    eval_every=2, train_fraction=0.5, batch_size=32)
    members = [dataclasses.replace(cfg, seed=s, lr=2e-3 * (s + 1)) for s in range(3)]
    pack = losses_by_member(train_pack(members)[0])
    for m in members:
        alone = losses_by_member(train_pack([m])[0])[m.run_id]
        assert pack[m.run_id] == pytest.approx(alone, rel=1e-5)
    assert len({round(pack[m.run_id][6], 5) for m in members}) == 3


def test_finished_members_leave_the_batch():
    short = dataclasses.replace(BASE, epochs=10, seed=7)
    trainer = PackTrainer([MEMBERS[0], short])
    lives = [(r.epoch, r.live, [o.run_id for o in r.finished]) for r in trainer.run()]
    assert lives[0] == (10, 1, [short.run_id])
    assert trainer.flat.data.shape[0] == 0 or lives[-1][1] == 0
    assert lives[-1] == (30, 0, [MEMBERS[0].run_id])


def test_divergence_is_isolated():
    good = dataclasses.replace(BASE, seed=0)
    bad = dataclasses.replace(BASE, seed=1, lr=1e6, eps=1e-30, weight_decay=0.0)
    trainer = PackTrainer([good, bad])
    # poison the bad member's weights directly: NaN must not leak into the good one
    with torch.no_grad():
        trainer.flat.data[1, :5] = float("nan")
    reports = list(trainer.run())
    outcomes = {o.run_id: o for r in reports for o in r.finished}
    assert outcomes[bad.run_id].status == "diverged"
    assert outcomes[bad.run_id].epochs_trained == 10
    assert outcomes[good.run_id].status == "done"
    alone = losses_by_member(train_pack([good])[0])[good.run_id]
    together = losses_by_member([m for r in reports for m in r.metrics])[good.run_id]
    assert together == pytest.approx(alone, rel=1e-5)

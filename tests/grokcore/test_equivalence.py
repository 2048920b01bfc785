"""A pack trains each member exactly as if it were trained alone, and as the seed notebooks did.

Alone, in any pack, and continued in a new pack, a member's weights and metrics are bit-identical at
every evaluation (torch.equal, ==: both sides come from the same code on the same machine); against
the seed notebooks' loop (another code path) they agree to float rounding.
"""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig, train_pack
from grokcore.export import reference_state_dict
from grokcore.packed import init_member
from grokcore.reference import ReferenceTransformer, make_optimizer, reference_loss
from grokcore.splits import build_pool, make_split

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
        assert pack[cfg.run_id] == alone
        for epoch, loss in reference.items():
            assert pack[cfg.run_id][epoch] == pytest.approx(loss, rel=2e-4, abs=1e-5)
    # the members really differ, so equality above is not vacuous
    finals = [pack[c.run_id][20] for c in MEMBERS]
    assert len({round(f, 4) for f in finals}) == len(finals)


@pytest.mark.parametrize(
    "extra",
    [
        dict(normalization="ln", act="gelu", n_layers=2, bias=True),
        dict(attn_only=True, n_heads=1, n_layers=1),
    ],
)
def test_architectures_match_reference(extra):
    cfg = dataclasses.replace(BASE, task="add", epochs=20, **extra)
    members = [dataclasses.replace(cfg, seed=s, lr=1e-3 * (s + 1)) for s in range(2)]
    pack = losses_by_member(train_pack(members)[0])
    for m in members:
        for epoch, loss in reference_losses(m).items():
            assert pack[m.run_id][epoch] == pytest.approx(loss, rel=2e-4, abs=1e-5)


def test_mlp_matches_reference():
    cfg = RunConfig(
        task="add",
        p=13,
        model="mlp",
        layout="a op b =",
        d_model=8,
        d_mlp=24,
        epochs=20,
        eval_every=5,
        train_fraction=0.5,
    )
    members = [dataclasses.replace(cfg, seed=s, weight_decay=0.3 * s) for s in range(3)]
    pack = losses_by_member(train_pack(members)[0])
    for m in members:
        for epoch, loss in reference_losses(m).items():
            assert pack[m.run_id][epoch] == pytest.approx(loss, rel=2e-4, abs=1e-5)


def test_minibatch_pack_equals_alone():
    cfg = RunConfig(
        task="add",
        p=13,
        model="mlp",
        layout="a op b =",
        d_model=8,
        d_mlp=24,
        epochs=6,
        eval_every=2,
        train_fraction=0.5,
        batch_size=32,
    )
    members = [dataclasses.replace(cfg, seed=s, lr=2e-3 * (s + 1)) for s in range(3)]
    pack = losses_by_member(train_pack(members)[0])
    for m in members:
        assert pack[m.run_id] == losses_by_member(train_pack([m])[0])[m.run_id]
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
    assert together == alone


# ---- a member's numbers do not depend on its pack, over training as long as users run it --------
# Mixed packs: different train sizes (so members are padded to their mates' counts), tasks of one
# shape (pow with different exponents), label noise, members that leave early, minibatches, a
# transformer with LayerNorm and biases (their gradients reduce over examples too) and an MLP.
TINY = RunConfig(task="pow", p=11, d_model=16, n_heads=2, d_mlp=32, eval_every=20)
PACKS = {
    "transformer": [
        dataclasses.replace(TINY, exp_m=1, exp_n=1, train_fraction=0.3, seed=0),
        # the longest leaves at half the budget: its mates then drop the chunks that only padded them
        dataclasses.replace(TINY, exp_m=3, exp_n=2, train_fraction=0.8, lr=3e-3, seed=1, epochs=1),
        dataclasses.replace(TINY, exp_m=2, exp_n=9, train_fraction=0.5, noise="binomial", noise_n=2, seed=2),
        dataclasses.replace(
            TINY, exp_m=4, exp_n=4, train_fraction=0.45, noise="uniform", noise_fraction=0.2, weight_decay=0.1, seed=3
        ),
    ],
    "transformer_ln_bias": [
        dataclasses.replace(
            TINY, task="add_mul", n_layers=2, normalization="ln", bias=True, act="gelu", train_fraction=f, seed=s
        )
        for s, f in enumerate((0.35, 0.7))
    ],
    "mlp": [
        RunConfig(
            task="add",
            p=13,
            model="mlp",
            layout="a op b =",
            d_model=8,
            d_mlp=24,
            eval_every=20,
            train_fraction=f,
            weight_decay=wd,
            seed=s,
        )
        for s, (f, wd) in enumerate(((0.3, 1.0), (0.75, 0.3), (0.5, 3.0)))
    ],
    "minibatch": [
        RunConfig(
            task="pow",
            exp_m=m,
            exp_n=n,
            p=13,
            model="mlp",
            layout="a op b =",
            d_model=8,
            d_mlp=24,
            eval_every=20,
            train_fraction=0.5,
            batch_size=24,
            noise=noise,
            noise_fraction=q,
            seed=s,
        )
        for s, (m, n, noise, q) in enumerate(((1, 1, "none", 0.0), (2, 3, "uniform", 0.1), (5, 1, "none", 0.0)))
    ],
}


def member_history(configs: list[RunConfig], device: str = "cpu") -> tuple[dict[str, list], dict[str, list]]:
    """Every member's metrics rows and weights at each of its evaluations, trained as one pack."""
    trainer = PackTrainer(configs, device=device)
    metrics: dict[str, list[dict]] = {}
    weights: dict[str, list[dict]] = {}
    for report in trainer.run(progress=False):
        for row in report.metrics:
            metrics.setdefault(row["run_id"], []).append(row)
            weights.setdefault(row["run_id"], []).append(trainer.member_weights(row["run_id"]))
    return metrics, weights


def assert_identical(a: tuple[dict, dict], b: tuple[dict, dict], run_id: str) -> None:
    (metrics_a, weights_a), (metrics_b, weights_b) = a, b
    rows_a, rows_b = metrics_a[run_id], metrics_b[run_id]
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_b]
    # NaN columns (a task without subtasks) compare equal as NaN: NaN is the one value unequal to itself
    for x, y in zip(rows_a, rows_b, strict=True):
        assert {k: v for k, v in x.items() if v == v} == {k: v for k, v in y.items() if v == v}, x["epoch"]  # noqa: PLR0124
        assert [k for k, v in x.items() if v != v] == [k for k, v in y.items() if v != v]  # noqa: PLR0124
    for epoch, (wa, wb) in zip(
        (r["epoch"] for r in rows_a), zip(weights_a[run_id], weights_b[run_id], strict=True), strict=True
    ):
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), (run_id, epoch)


def with_epochs(configs: list[RunConfig], epochs: int) -> list[RunConfig]:
    """The budget for every member, half of it for those marked epochs=1 in PACKS."""
    return [dataclasses.replace(c, epochs=epochs // 2 if c.epochs == 1 else epochs) for c in configs]


# On a GPU this checks what cuBLAS decides: that a member's matmuls give it the same result whatever
# the pack's member count (its kernel choice depends on the batch count).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("epochs", [60, pytest.param(600, marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", list(PACKS))
def test_member_is_bit_identical_alone_and_in_any_pack(kind, epochs, device):
    members = with_epochs(PACKS[kind], epochs)
    pack = member_history(members, device)
    other = member_history([*members[::-1][:-1], dataclasses.replace(members[0], seed=99)], device)  # other mates
    for m in members:
        alone = member_history([m], device)
        assert_identical(pack, alone, m.run_id)
        if m.run_id in other[0]:
            assert_identical(other, alone, m.run_id)
    # not vacuous: the members' numbers differ, and their mates pad them (train sizes differ)
    finals = {rows[-1]["train/loss"] for rows in pack[0].values()}
    assert len(finals) == len(members)
    if kind != "minibatch":
        assert len({c.train_size for c in members}) > 1


def state_at(configs: list[RunConfig], epoch: int) -> dict:
    """A pack's trainer state after the evaluation at `epoch`."""
    trainer = PackTrainer(configs)
    for report in trainer.run(progress=False):
        if report.epoch == epoch:
            return trainer.state_dict()
    raise AssertionError(f"no evaluation at epoch {epoch}")


def test_member_continued_in_a_new_pack_is_bit_identical():
    """Members stopped in two packs, regrouped into a third at the same epoch, continue exactly as
    alone: what budget extension does with members that share an epoch."""
    m, n, o = [dataclasses.replace(c, epochs=100) for c in PACKS["transformer"][:3]]
    first, second = state_at([m, o], 40), state_at([n], 40)
    rows = {c["seed"]: (state, k) for state in (first, second) for k, c in enumerate(state["configs"])}
    regrouped = [n, m]  # another order, another mate, another padded length than either pack
    picked = [rows[c.seed] for c in regrouped]
    state = {
        **first,
        "configs": [c.to_dict() for c in regrouped],
        "departed": [],
        "trackers": [s["trackers"][k] for s, k in picked],
        "tensors": {
            name: torch.stack([s["tensors"][name][k] for s, k in picked])
            for name in ("params", "exp_avg", "exp_avg_sq")
        },
    }
    assert first["step"] == second["step"]
    trainer = PackTrainer(regrouped)
    trainer.load_state_dict(state)
    continued: tuple[dict, dict] = ({}, {})
    for report in trainer.run(progress=False):
        for row in report.metrics:
            continued[0].setdefault(row["run_id"], []).append(row)
            continued[1].setdefault(row["run_id"], []).append(trainer.member_weights(row["run_id"]))
    for member in regrouped:
        metrics, weights = member_history([member])
        after = [i for i, r in enumerate(metrics[member.run_id]) if r["epoch"] > 40]
        alone = (
            {member.run_id: [metrics[member.run_id][i] for i in after]},
            {member.run_id: [weights[member.run_id][i] for i in after]},
        )
        assert_identical(continued, alone, member.run_id)

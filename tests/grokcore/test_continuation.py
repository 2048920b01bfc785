"""A member continued from its end state equals the same member trained with the larger budget from
the start, bit for bit (same code, same machine): weights, metrics rows, outcome."""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig
from grokcore.continuation import EndStateKeeper, continue_pack, from_bytes, to_bytes

TRANSFORMER = RunConfig(
    task="add", p=11, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, eval_every=20, lr=3e-3, weight_decay=0.5
)
MLP = dataclasses.replace(TRANSFORMER, model="mlp", init="kaiming", layout="a op b =", d_model=16, d_mlp=32)
CASES = {
    "transformer-full": TRANSFORMER,
    "transformer-minibatch-noise": dataclasses.replace(TRANSFORMER, batch_size=16, noise="uniform", noise_fraction=0.2),
    "mlp-full-noise": dataclasses.replace(MLP, noise="binomial", noise_n=2),
    "mlp-minibatch": dataclasses.replace(MLP, batch_size=16),
}


def members(base: RunConfig, epochs: int) -> list[RunConfig]:
    # pack mates of equal train size (a member's numbers do not depend on such mates)
    return [dataclasses.replace(base, epochs=epochs, seed=s, weight_decay=base.weight_decay * (1 + s)) for s in (0, 1)]


def train(trainer: PackTrainer, keeper: EndStateKeeper | None = None):
    metrics, outcomes, states = [], {}, []
    for rep in trainer.run(progress=False):
        metrics += rep.metrics
        outcomes.update({o.run_id: o for o in rep.finished})
        if keeper is not None:
            states += keeper.take()
    return metrics, outcomes, states


def same_values(a: dict, b: dict) -> bool:
    """Equal in every column but run_id; NaN (a subtask column this task lacks) equals NaN."""
    keys = (a.keys() | b.keys()) - {"run_id"}
    return all(a.get(k) == b.get(k) or (a.get(k) != a.get(k) and b.get(k) != b.get(k)) for k in keys)


def by_key(rows):
    return {(r["run_id"], r["epoch"]): r for r in rows}


@pytest.mark.parametrize("short", [60, 50], ids=["on-grid", "off-grid"])
@pytest.mark.parametrize("case", list(CASES))
def test_continued_member_equals_long_run_from_start(case, short):
    long = 140
    torch.manual_seed(0)  # nothing may depend on the global generator; set so a failure is reproducible
    full_members = members(CASES[case], long)
    full = PackTrainer(full_members)
    full_metrics, full_out, _ = train(full)

    first = PackTrainer(members(CASES[case], short))
    keeper = EndStateKeeper(first)
    short_metrics, _, states = train(first, keeper)
    assert {s.run_id for s in states} == {m.run_id for m in members(CASES[case], short)}
    assert all(s.epoch == short for s in states)
    states = from_bytes(to_bytes(states))  # through the file format a sweep keeps them in

    continued_members = [dataclasses.replace(m, extended_from=short) for m in full_members]
    assert [m.run_id for m in continued_members] == [m.run_id for m in members(CASES[case], short)]
    cont = continue_pack(continued_members, states)
    cont_metrics, cont_out, _ = train(cont)

    assert min(r["epoch"] for r in cont_metrics) > short
    joined = by_key(short_metrics) | by_key(cont_metrics)
    expected = by_key(full_metrics)
    if short % CASES[case].eval_every:  # the old budget's own evaluation: kept, and a true measurement
        extra = {k for k in joined if k[1] == short}
        assert len(extra) == 2 and not extra & set(expected)
        joined = {k: v for k, v in joined.items() if k not in extra}
    # the short run's ids are the extended members' ids: the two histories line up under one run_id
    expected = {
        (cont_id, e): r
        for (rid, e), r in expected.items()
        for cont_id, full_id in zip(
            [m.run_id for m in continued_members], [m.run_id for m in full_members], strict=True
        )
        if rid == full_id
    }
    assert joined.keys() == expected.keys()
    for key, row in expected.items():
        assert same_values(joined[key], row), key
    for cm, fm in zip(continued_members, full_members, strict=True):
        a, b = cont.member_weights(cm.run_id), full.member_weights(fm.run_id)
        assert all(torch.equal(a[n], b[n]) for n in b)
        oa, ob = cont_out[cm.run_id].to_row(), full_out[fm.run_id].to_row()
        for k in ("status", "epochs_trained", "epoch_train_99", "epoch_test_99", "final/train/loss", "final/test/acc"):
            assert oa[k] == ob[k], k


def test_continue_pack_refuses_mixed_starts_and_short_budgets():
    ms = members(TRANSFORMER, 40)
    first = PackTrainer([ms[0], dataclasses.replace(ms[1], epochs=20)])
    keeper = EndStateKeeper(first)
    _, _, states = train(first, keeper)
    states = sorted(states, key=lambda st: -st.epoch)  # ms[0]'s first
    longer = [
        dataclasses.replace(ms[0], epochs=80, extended_from=40),
        dataclasses.replace(ms[1], epochs=80, extended_from=20),
    ]
    with pytest.raises(ValueError, match="one epoch and step"):
        continue_pack(longer, states)
    with pytest.raises(ValueError, match="not past"):
        continue_pack([ms[0]], states[:1])


def test_only_members_that_end_at_their_budget_leave_an_end_state():
    stopper = dataclasses.replace(TRANSFORMER, epochs=400, stop_acc=0.0001, stop_patience=1, seed=5)
    trainer = PackTrainer([stopper, dataclasses.replace(TRANSFORMER, epochs=40, seed=6)])
    keeper = EndStateKeeper(trainer)
    _, outcomes, states = train(trainer, keeper)
    assert outcomes[stopper.run_id].status == "stopped"
    assert [s.run_id for s in states] == [dataclasses.replace(TRANSFORMER, epochs=40, seed=6).run_id]

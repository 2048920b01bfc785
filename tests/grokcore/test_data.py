"""member_data: a member's tokens and labels exactly as PackTrainer trains and evaluates on them."""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig
from grokcore.data import member_data
from grokcore.packed import build_packed
from grokcore.splits import ADD, MUL

SMALL = dict(d_model=16, n_heads=2, d_mlp=32, epochs=20, eval_every=10)

PACKS = {
    # members of one pack differ in split, fraction and noise, so the trainer pads them
    "add with noise": [
        RunConfig(p=13, train_fraction=0.5, **SMALL),
        RunConfig(p=13, train_fraction=0.3, seed=1, noise="binomial", noise_n=4, **SMALL),
        RunConfig(p=13, train_fraction=0.6, seed=2, noise="uniform", noise_fraction=0.4, **SMALL),
    ],
    "add_mul": [
        RunConfig(task="add_mul", p=11, max_num=14, addition_fraction=0.7, **SMALL),
        RunConfig(task="add_mul", p=11, max_num=14, addition_fraction=0.2, seed=3, **SMALL),
    ],
    "pow": [
        RunConfig(task="pow", p=11, exp_m=2, exp_n=3, **SMALL),
        RunConfig(task="pow", p=11, exp_m=5, exp_n=1, seed=1, **SMALL),
    ],
    "max, mlp": [RunConfig(task="max", p=20, model="mlp", **SMALL)],
}


@pytest.mark.parametrize("name", list(PACKS))
def test_member_data_is_what_the_trainer_holds(name):
    configs = PACKS[name]
    trainer = PackTrainer(configs)
    d = trainer.data
    for k, cfg in enumerate(configs):
        data = member_data(cfg)
        n_train = int(d["train_count"][k])
        n_test = int((d["test_weight"][k] > 0).sum())
        assert data.train_tokens.shape == (n_train, cfg.n_ctx) and data.test_tokens.shape == (n_test, cfg.n_ctx)
        assert torch.equal(data.train_tokens, d["train_tokens"][k, :n_train])
        assert torch.equal(data.train_labels, d["train_labels"][k, :n_train])
        assert torch.equal(data.train_clean_labels, d["train_clean_labels"][k, :n_train])
        assert torch.equal(data.test_tokens, d["test_tokens"][k, :n_test])
        assert torch.equal(data.test_labels, d["test_labels"][k, :n_test])
        if cfg.task == "add_mul":
            assert torch.equal(data.test_subtask == ADD, d["test_add_weight"][k, :n_test] > 0)
            assert torch.equal(data.test_subtask == MUL, d["test_mul_weight"][k, :n_test] > 0)
        # the pack really padded: a member shorter than the longest has zero-weight rows after its own
        assert bool((d["train_weight"][k, n_train:] == 0).all())
    if name == "add with noise":  # noise changed some training labels of the noisy members only
        noisy = [int((member_data(c).train_labels != member_data(c).train_clean_labels).sum()) for c in configs]
        assert noisy[0] == 0 and noisy[1] > 0 and noisy[2] > 0


def test_losses_on_member_data_are_the_trainers_metrics():
    """End to end: the member's weights on member_data's examples give the train (noisy), train_clean and
    test losses the trainer reports for it, so outside tools measure on the same data."""
    cfg = dataclasses.replace(PACKS["add with noise"][1], epochs=30, lr=3e-3)
    trainer = PackTrainer([PACKS["add with noise"][0], cfg])
    report = next(r for r in trainer.run() if r.epoch == 20)
    (metrics,) = [m for m in report.metrics if m["run_id"] == cfg.run_id]
    data = member_data(cfg)
    model = build_packed(cfg, [trainer.member_weights(cfg.run_id)])

    def loss(tokens, labels):
        with torch.no_grad():
            logits = model.train_logits(tokens.unsqueeze(0))[0].double()
        return torch.nn.functional.cross_entropy(logits, labels).item()

    assert loss(data.train_tokens, data.train_labels) == pytest.approx(metrics["train/loss"], rel=1e-6)
    assert loss(data.train_tokens, data.train_clean_labels) == pytest.approx(metrics["train_clean/loss"], rel=1e-6)
    assert loss(data.test_tokens, data.test_labels) == pytest.approx(metrics["test/loss"], rel=1e-6)
    assert metrics["train/loss"] != pytest.approx(metrics["train_clean/loss"], rel=1e-3)


def test_token_ids_and_vocabulary():
    """Operands are tokens 0..operand_range-1, then '=', '+', '*': d_vocab = operand_range + 3 (116 at p 113)."""
    cfg = RunConfig(p=113)
    assert (cfg.d_vocab, cfg.eq_token, cfg.op_token("add"), cfg.op_token("mul")) == (116, 113, 114, 115)
    data = member_data(RunConfig(p=13, layout="a op b ="))
    assert set(data.train_tokens[:, 1].tolist()) == {14} and set(data.train_tokens[:, 3].tolist()) == {13}
    a, b = data.test_tokens[:, 0], data.test_tokens[:, 2]
    assert torch.equal(data.test_labels, (a + b) % 13)


def test_vocabulary_of_one_op_tasks_is_operand_range_plus_two():
    """The Power and group tasks have one op token (grokcore/data.py's docstring gives these numbers)."""
    sub, s5 = RunConfig(task="sub", p=97), RunConfig(task="perm", p=5, train_fraction=0.5)
    assert (sub.operand_range, sub.d_vocab) == (97, 99)
    assert (s5.operand_range, s5.d_vocab) == (120, 122)

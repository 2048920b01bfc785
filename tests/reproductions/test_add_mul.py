"""Add/mul mixture, miniature of reproductions/add_mul: its CPU recipe at p = 31, 1,000 epochs.
The claims measured there: trained on one task only, the model's test loss on that task falls
below a uniform guess (ln p) while the untrained task's rises above it; at an even mixture, with
each task's share of the data halved, neither task's test loss gets below ln p within the budget."""

import dataclasses
import math

import pytest

from grokcore import RunConfig, train_pack

MIXTURE = RunConfig(
    task="add_mul",
    p=31,
    max_num=36,
    layout="a op b",
    model="transformer",
    n_layers=1,
    n_heads=4,
    d_model=64,
    d_mlp=256,
    normalization="ln",
    train_fraction=0.4,
    lr=3e-3,
    weight_decay=1.0,
    epochs=1000,
    eval_every=100,
)


@pytest.mark.slow
def test_per_task_test_loss_follows_the_addition_fraction():
    configs = [dataclasses.replace(MIXTURE, addition_fraction=f) for f in (0.0, 0.5, 1.0)]
    _, outcomes = train_pack(configs, progress=False)
    final = {o.config.addition_fraction: o.final for o in outcomes}
    uniform = math.log(31)
    assert final[0.0]["test_mul/loss"] < uniform < final[0.0]["test_add/loss"] - 1
    assert final[1.0]["test_add/loss"] < uniform < final[1.0]["test_mul/loss"] - 1
    assert final[0.5]["test_add/loss"] > uniform and final[0.5]["test_mul/loss"] > uniform
    assert all(f["train/acc"] >= 0.99 for f in final.values())

"""Add/mul mixture, miniature of reproductions/add_mul: its CPU recipe at p = 31, 1,000 epochs.
The claims measured there: trained on one task only, the model's test loss on that task falls
below a uniform guess (ln p) while the untrained task's rises above it; at an even mixture, with
each task's share of the data halved, neither task's test loss gets below ln p within the budget.
The rerun (issue 26, seed 0, as here) at epoch 1,000: fraction 0 multiplication 2.85 against addition 6.41,
fraction 1 addition 2.32 against multiplication 6.61, fraction 0.5 5.30 and 4.94 (ln 31 = 3.43). A single
evaluation can land on a loss spike (seed 1 at fraction 1 had train accuracy 0.18 at epoch 1,000), so a
failure here is worth a second look at the curve before it is read as a changed result."""

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

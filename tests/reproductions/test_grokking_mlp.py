"""Grokking MLP, miniature of reproductions/grokking_mlp: the seed's MLP (four token embeddings
concatenated, one hidden layer, minibatches of 512) at the spec's p = 41 and lr 3e-3, 2 seeds,
2,000 epochs (at p = 31 none generalised within 2,500). The claim measured there: the seed's
Kaiming initialisation does not make the model generalise many times later than the project's
default (tl); on the same seeds and splits both generalise, within a factor of 2 of each other."""

import dataclasses

import pytest

from grokcore import RunConfig, train_pack

SEED_MLP = RunConfig(
    task="add",
    p=41,
    layout="a op b =",
    model="mlp",
    d_model=64,
    d_mlp=256,
    batch_size=512,
    train_fraction=0.5,
    lr=3e-3,
    weight_decay=1.0,
    epochs=2000,
    eval_every=50,
    stop_acc=0.99,
    stop_patience=3,
    stop_extra_epochs=0,
)


@pytest.mark.slow
def test_kaiming_and_tl_generalise_within_a_factor_of_two():
    configs = [dataclasses.replace(SEED_MLP, init=init, seed=seed) for init in ("kaiming", "tl") for seed in (0, 1)]
    _, outcomes = train_pack(configs, progress=False)
    epochs = {(o.config.init, o.config.seed): o.epoch_test_99 for o in outcomes}
    assert all(e is not None for e in epochs.values()), epochs
    for seed in (0, 1):
        ratio = epochs[("kaiming", seed)] / epochs[("tl", seed)]
        assert 0.5 <= ratio <= 2.0, epochs

"""Run inside the TransformerLens 3.x environment (tests/interop/test_transformer_lens3.py builds it and runs
`python -m pytest tests/interop/check_tl3.py` there; the default test run does not collect this file).

An exported member loaded into TransformerLens 3.x's HookedTransformer gives grokcore's logits, and
exporting it leaves every global random generator as it was."""

import random
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from grokcore import PackTrainer, RunConfig
from grokcore.data import member_data
from grokcore.export import (
    MemberModule,
    hooked_transformer,
    hooked_transformer_config,
    hooked_transformer_state_dict,
    load_member,
    save_member,
)
from grokcore.model import build_model

SMALL = dict(d_model=16, n_heads=2, d_mlp=32, epochs=40, eval_every=20, lr=1e-2)
CONFIGS = {
    "nanda: 1 layer, no LN, relu, a b =": RunConfig(p=13, **SMALL),
    "LN, gelu, biases, 2 layers, d_head 8": RunConfig(
        p=13, **(SMALL | dict(n_heads=4, d_head=8)), n_layers=2, normalization="ln", act="gelu", bias=True
    ),
    "add_mul, a op b, max_num > p": RunConfig(task="add_mul", p=7, max_num=9, **SMALL),
    "attention only, 3 layers, a op b =": RunConfig(
        task="add_mul", p=7, max_num=9, layout="a op b =", n_layers=3, attn_only=True, **SMALL
    ),
    "max of two, 1 head": RunConfig(
        task="max", p=16, force_adjacent=(0, 1, 5), attn_only=True, **(SMALL | dict(n_heads=1, d_model=32))
    ),
    "pow, a b, LN": RunConfig(task="pow", p=11, exp_m=2, exp_n=3, layout="a b", normalization="ln", **SMALL),
}


def test_this_is_transformer_lens_3_and_this_checkout():
    assert version("transformer_lens").startswith("3."), version("transformer_lens")
    import grokcore

    assert Path(grokcore.__file__).resolve().parents[1] == Path(__file__).resolve().parents[2], grokcore.__file__


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each configuration trained for 20 epochs (and its metrics then), exported with save_member and read back."""
    out = {}
    for name, cfg in CONFIGS.items():
        trainer = PackTrainer([cfg])
        report = next(r for r in trainer.run() if r.epoch >= 20)
        directory = save_member(tmp_path_factory.mktemp("member"), cfg, trainer.member_weights(cfg.run_id))
        out[name] = (*load_member(directory), report.metrics[0])
    return out


def assert_same_forward(theirs_model: HookedTransformer, ours_model, tokens: torch.Tensor) -> torch.Tensor:
    """Every activation both models name is equal bit for bit; the logits to float32 rounding: the unembedding
    is one matmul in each, but TransformerLens' einsum and our bmm may take different BLAS kernels for the same
    product (bit-equal on the machine this check was first run on, up to 9.5e-7 apart on an AMD EPYC with every input
    of the unembedding equal). Returns their logits."""
    with torch.no_grad():
        theirs, their_cache = theirs_model.run_with_cache(tokens)
        ours, our_cache = ours_model.run_with_cache(tokens.unsqueeze(0))
    their_names, our_names = their_cache.keys(), set(our_cache.keys())  # ActivationCache: keys() is its API
    shared = [name for name in their_names if name in our_names]
    assert len(shared) >= 6, shared
    for name in shared:
        assert torch.equal(their_cache[name], our_cache[name][0]), (
            name,
            (their_cache[name] - our_cache[name][0]).abs().max(),
        )
    torch.testing.assert_close(theirs, ours[0], rtol=1e-6, atol=1e-5)
    return theirs


@pytest.mark.parametrize("name", list(CONFIGS))
def test_hooked_transformer_gives_grokcore_logits(exported, name):
    """On every example of the member (train and test): every position equals grokcore's instrumented
    forward (every hooked activation bit for bit, the logits to float rounding), and the last position
    (the trained one) its training path to float rounding."""
    cfg, weights, metrics = exported[name]
    data = member_data(cfg)
    tokens = torch.cat([data.train_tokens, data.test_tokens])
    model = hooked_transformer(cfg, weights)
    assert model.cfg.d_vocab == cfg.operand_range + 3 and model.cfg.d_vocab_out == cfg.p
    theirs = assert_same_forward(model, build_model(cfg, [weights]), tokens)
    with torch.no_grad():
        trained = MemberModule(cfg, weights)(tokens)
    assert theirs.shape == (len(tokens), cfg.n_ctx, cfg.p)
    torch.testing.assert_close(theirs[:, -1], trained, rtol=1e-5, atol=1e-5)
    # the HookedTransformer's train and test accuracy are the ones the trainer reported for the member
    n_train = len(data.train_tokens)
    predicted = theirs[:, -1].argmax(-1)
    assert (predicted[:n_train] == data.train_labels).double().mean().item() == pytest.approx(metrics["train/acc"])
    assert (predicted[n_train:] == data.test_labels).double().mean().item() == pytest.approx(metrics["test/acc"])


@pytest.mark.parametrize("name", list(CONFIGS)[:2])
def test_export_leaves_global_random_state_alone(exported, name):
    cfg, weights, _ = exported[name]
    torch.manual_seed(1234)
    random.seed(99)
    np.random.seed(7)
    before = (torch.initial_seed(), torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    HookedTransformerConfig(**hooked_transformer_config(cfg))
    model = HookedTransformer(HookedTransformerConfig(**hooked_transformer_config(cfg)))
    model.load_state_dict(hooked_transformer_state_dict(cfg, weights))
    hooked_transformer(cfg, weights)
    assert torch.initial_seed() == before[0] == 1234
    assert torch.equal(torch.get_rng_state(), before[1])
    assert random.getstate() == before[2]
    assert np.array_equal(np.random.get_state()[1], before[3])
    draws = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(1234)
    random.seed(99)
    np.random.seed(7)
    assert torch.equal(draws[0], torch.rand(3)) and draws[1] == random.random() and draws[2] == np.random.rand()


def test_a_seeded_config_would_reset_the_generators():
    """Why the export passes seed=None: TransformerLens seeds torch, random and numpy from `seed`."""
    cfg = CONFIGS["nanda: 1 layer, no LN, relu, a b ="]
    torch.manual_seed(1234)
    HookedTransformerConfig(**(hooked_transformer_config(cfg) | {"seed": cfg.seed}))
    assert torch.initial_seed() == cfg.seed != 1234


def test_a_stored_snapshot_loads_into_hooked_transformer_with_the_live_models_logits(tmp_path):
    """A snapshot at a non-evaluation epoch, stored as a sweep stores it and read back with load_snapshot,
    gives in HookedTransformer the live model's activations at that epoch bit for bit (the logits to float
    rounding, as above)."""
    import dataclasses

    from grokcore.snapshots import SnapshotSchedule, load_snapshot
    from sweeps.parquet import SweepStore
    from sweeps.snapshots import write_snapshots

    cfg = CONFIGS["LN, gelu, biases, 2 layers, d_head 8"]
    snaps = [s for r in PackTrainer([cfg], snapshots=SnapshotSchedule(epochs=(13,))).run() for s in r.snapshots]
    write_snapshots(SweepStore(str(tmp_path), "s"), "pack", 0, snaps, {cfg.run_id: cfg})
    loaded_cfg, weights = load_snapshot(tmp_path / "s", cfg.run_id, 13)
    twin = dataclasses.replace(cfg, eval_every=1)  # evaluates (so can be read) at every epoch; same numbers
    trainer = PackTrainer([twin])
    live = next(trainer.member_weights(twin.run_id) for r in trainer.run() if r.epoch == 13)
    tokens = torch.cat([member_data(cfg).train_tokens, member_data(cfg).test_tokens])
    assert loaded_cfg == cfg
    assert_same_forward(hooked_transformer(loaded_cfg, weights), build_model(cfg, [live]), tokens)

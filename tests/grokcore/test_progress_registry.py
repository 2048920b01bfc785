"""The progress-measure table (grokcore/progress/registry.py): measure_pack writes exactly the columns
its rows declare, the switches do what they say, and the worked example (the embedding's Fourier
entropy) has its known answers."""

import dataclasses
import importlib
import math

import pytest
import torch

from grokcore import PackTrainer, RunConfig
from grokcore.progress import ProgressSettings, measure_pack
from grokcore.progress import columns as col
from grokcore.progress.entropy import fourier_entropy
from grokcore.progress.fourier import frequency_norms
from grokcore.progress.registry import BY_KEY, PROGRESS_MEASURES, SWITCHABLE, SWITCHED_ON, progress_columns

SMALL = dict(d_model=16, n_heads=2, d_mlp=32, epochs=10, eval_every=10)
PACKS = {
    "add": RunConfig(task="add", p=11, **SMALL),
    "sub": RunConfig(task="sub", p=7, train_fraction=0.5, **SMALL),
    "max": RunConfig(task="max", p=9, force_adjacent=(0, 1), **SMALL),
    "mlp max": RunConfig(task="max", p=9, force_adjacent=(0, 1), model="mlp", **SMALL),
    "perm": RunConfig(task="perm", p=3, train_fraction=0.5, **SMALL),
    "mlp add": RunConfig(task="add", p=11, model="mlp", **SMALL),
}


@pytest.mark.parametrize("name", list(PACKS))
@pytest.mark.parametrize("keys", [SWITCHED_ON, ("fourier", "fourier_entropy"), ()])
def test_measure_pack_writes_the_declared_columns_in_table_order(name, keys):
    cfg = PACKS[name]
    settings = ProgressSettings.choosing([k for k in keys if k != "llc"])  # the LLC's columns: its own test
    (row,) = measure_pack(PackTrainer([cfg]), settings)
    assert list(row) == progress_columns(cfg, settings.is_on)
    assert ("fourier/embed_norm_1" in row) == (cfg.task_def.modulus is not None and "fourier" in keys)


def test_llc_columns_are_written_where_due_and_nan_between():
    cfg = dataclasses.replace(PACKS["add"], progress_every=10)
    trainer = PackTrainer([cfg])
    settings = ProgressSettings(llc_every=2, sgld=dataclasses.replace(ProgressSettings().sgld, draws=2, burnin=1))
    for epoch, due in ((10, False), (20, True)):
        trainer.epoch = epoch
        (row,) = measure_pack(trainer, settings)
        assert list(row) == progress_columns(cfg, settings.is_on)
        assert math.isfinite(row[col.LLC_MEAN]) == due


def test_the_table_names_its_switches_and_functions():
    assert SWITCHABLE == ("embed_coords", "fourier", "fourier_entropy", "llc")
    assert SWITCHED_ON == ("embed_coords", "fourier", "llc")
    fields = {f.name for f in dataclasses.fields(ProgressSettings)}
    for m in PROGRESS_MEASURES:
        module, name = m.function.split(":")
        assert callable(getattr(importlib.import_module(module), name)), m.function
        if m.switchable and m.default:
            assert m.key in fields  # the field that switches it off
    with pytest.raises(ValueError, match="unknown \\['chain'\\]"):
        ProgressSettings.choosing(["chain"])
    with pytest.raises(ValueError, match="measures off by default: fourier_entropy"):
        ProgressSettings(extra=("llc",))


def test_choosing_switches_exactly_the_named_measures():
    s = ProgressSettings.choosing(["llc", "fourier_entropy"])
    assert (s.fourier, s.embed_coords, s.llc, s.extra) == (False, False, True, ("fourier_entropy",))
    assert [m.key for m in PROGRESS_MEASURES if s.is_on(m)] == ["embed", "max", "fourier_entropy", "llc"]
    assert ProgressSettings.choosing(SWITCHED_ON) == ProgressSettings()


# ---- the worked example: the embedding's Fourier entropy -----------------------------------------


def _embedding_with(p: int, norm_by_freq: dict[int, float], d: int = 6) -> torch.Tensor:
    """(1, p, d): column j holds frequency k's cosine, cos(2 pi k x / p), scaled to norm w (a unit
    cosine over Z_p has norm sqrt(p / 2)), so the frequency's embedding norm is w exactly."""
    x = torch.arange(p, dtype=torch.float64)
    embed = torch.zeros(p, d, dtype=torch.float64)
    for j, (k, w) in enumerate(norm_by_freq.items()):
        embed[:, j] = w * torch.cos(2 * math.pi * k * x / p) / math.sqrt(p / 2)
    return embed.unsqueeze(0)


def test_fourier_entropy_known_answers():
    p = 13  # frequencies 1 .. 6
    one = frequency_norms(_embedding_with(p, {3: 2.0}))
    assert one[0].tolist() == pytest.approx([0, 0, 2.0, 0, 0, 0], abs=1e-12)  # the construction is right
    assert fourier_entropy(one).item() == pytest.approx(0.0, abs=1e-12)
    uniform = frequency_norms(_embedding_with(p, dict.fromkeys(range(1, 7), 0.7)))
    assert fourier_entropy(uniform).item() == pytest.approx(math.log(6), rel=1e-12)
    two = frequency_norms(_embedding_with(p, {1: 1.0, 5: 3.0}))  # norms 1 and 3: q = (1/4, 3/4)
    assert fourier_entropy(two).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), rel=1e-12)
    assert math.isnan(fourier_entropy(torch.zeros(1, 6)).item())


def test_fourier_entropy_column_from_a_trainer_is_the_function_of_its_embedding():
    cfg = PACKS["add"]
    trainer = PackTrainer([cfg, dataclasses.replace(cfg, seed=1)])
    rows = measure_pack(trainer, ProgressSettings(llc=False, extra=("fourier_entropy",)))
    embed = trainer.net.named_member_params()["embed.W_E"].detach()[:, :11].double()
    expected = fourier_entropy(frequency_norms(embed)).tolist()
    assert [r[col.EMBED_ENTROPY] for r in rows] == pytest.approx(expected, rel=1e-12)
    assert all(0 < v < math.log(5) for v in expected)  # a random embedding: spread, not uniform
    assert BY_KEY["fourier_entropy"].marker == col.EMBED_ENTROPY

"""Nanda et al. (2023), miniature of reproductions/nanda: the reproduction's own spec shrunk to p = 31
(train fraction 0.5, d_model 64, lr 3e-3, weight decay 3: memorises by ~100 and groks by ~600 epochs),
trained through the real path and read back with the reproduction's own phase table. The claims: the
three phases come in order (memorisation, then circuit formation = restricted loss <= 0.1, then
clean-up = test loss <= 0.1), also with the restricted loss on the final key frequencies held fixed
(recomputed from the weight snapshots, reproductions/nanda/fixed_keys.py), the key frequencies thin
out, and the weight norm falls from its peak."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lit_miniature import REPRODUCTIONS, figures_module, run_miniature

MINIATURE = [
    "base.p=31",
    "base.train_fraction=0.5",
    "base.d_model=64",
    "base.d_mlp=128",
    "base.lr=3e-3",
    "base.weight_decay=3.0",
    "budget=null",  # the spec's adaptive budget off: one fixed round
    "base.epochs=800",
    "base.eval_every=25",
    "base.progress_every=50",
    "base.stop_extra_epochs=200",
    "replicates=1",
]


def fixed_keys_module():
    sys.path.insert(0, str(REPRODUCTIONS / "nanda"))
    import fixed_keys

    return fixed_keys


@pytest.mark.slow
def test_memorisation_then_circuit_then_clean_up(tmp_path):
    sweep = run_miniature("nanda", MINIATURE, tmp_path)
    progress = fixed_keys_module().progress_table(tmp_path / sweep.name, sweep.progress)
    table = figures_module("nanda").phase_table(sweep.member_times(), sweep.metrics, progress)
    assert len(table) == 1
    row = table.iloc[0]
    memorised, circuit = row["memorised"], row["circuit (restricted <= 0.1)"]
    test_low, generalised = row["test loss <= 0.1"], row["generalised (test acc held 0.99)"]
    assert memorised < circuit < test_low, (memorised, circuit, test_low)
    assert memorised < row["circuit, final keys fixed"] < test_low, row["circuit, final keys fixed"]
    assert row["restricted lead"] >= 100
    assert generalised <= test_low + 100  # test accuracy is there by the time test loss is low
    assert row["n_key last"] <= 6 < row["n_key first"]
    assert row["weight norm last"] < 0.9 * row["weight norm peak"]
    assert row["excluded loss at circuit"] > row["excluded loss at mem"]

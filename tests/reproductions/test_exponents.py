"""Exponents, miniature of reproductions/exponents: (a^m + b^n) mod 47 with the CPU recipe there.

Claims: x -> x^m is one-to-one mod p exactly when gcd(m, p - 1) = 1 (counted); and of two
one-to-one exponent pairs, m = n generalises within a few hundred epochs while m != n, on the same
seed and budget, stays below chance on the test set (it memorises: one token embedding serves both
operands, which fits x^m for both only when m = n)."""

import dataclasses
import math

import pytest

from grokcore import RunConfig, train_pack

POW = RunConfig(
    task="pow",
    p=47,
    train_fraction=0.5,
    n_layers=1,
    n_heads=4,
    d_model=64,
    d_mlp=128,
    lr=3e-3,
    weight_decay=3.0,
    epochs=600,
    eval_every=50,
)


@pytest.mark.parametrize("p", [47, 107, 113])
def test_power_map_is_one_to_one_iff_coprime(p):
    for m in range(1, 10):
        distinct = len({pow(x, m, p) for x in range(p)})
        assert distinct == 1 + (p - 1) // math.gcd(m, p - 1)
        assert (distinct == p) == (math.gcd(m, p - 1) == 1)
    # The seed's p = 113 has p - 1 = 16 * 7: exponent 7 collides there but not at 47 or 107.
    assert len({pow(x, 7, p) for x in range(p)}) == (17 if p == 113 else p)


@pytest.mark.slow
def test_equal_exponents_generalise_and_unequal_ones_memorise():
    same, mixed = dataclasses.replace(POW, exp_m=5, exp_n=5), dataclasses.replace(POW, exp_m=3, exp_n=5)
    _, outcomes = train_pack([same, mixed], progress=False)
    final = {o.config.run_id: o.final for o in outcomes}
    assert final[same.run_id]["test/acc"] >= 0.99
    assert final[mixed.run_id]["train/acc"] >= 0.99
    assert final[mixed.run_id]["test/acc"] < 1 / 47

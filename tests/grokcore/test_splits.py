"""Labels against brute-force Python arithmetic; split sizes and compositions."""

import pytest
import torch

from grokcore import ConfigError, RunConfig
from grokcore.splits import ADD, MUL, build_pool, make_split
from grokcore.task import pow_mod


def decode(cfg, tokens):
    layout = cfg.token_layout.split()
    a, b = int(tokens[layout.index("a")]), int(tokens[layout.index("b")])
    op = "add"
    if "op" in layout:
        op = "mul" if int(tokens[layout.index("op")]) == cfg.op_token("mul") else "add"
    return a, b, op


def brute(cfg, a, b, op):
    if cfg.task == "max":
        return max(a, b)
    if cfg.task == "pow":
        return (a**cfg.exp_m + b**cfg.exp_n) % cfg.p  # Python ints never overflow
    if cfg.task == "mul" or op == "mul":
        return (a * b) % cfg.p
    return (a + b) % cfg.p


@pytest.mark.parametrize(
    "cfg",
    [
        RunConfig(task="add", p=13),
        RunConfig(task="add", p=13, layout="a op b ="),
        RunConfig(task="add", p=13, layout="a b"),
        RunConfig(task="mul", p=11, max_num=15),
        RunConfig(task="add_mul", p=11, max_num=14, layout="a op b ="),
        RunConfig(task="pow", p=13, exp_m=13, exp_n=9),
        RunConfig(task="pow", p=113, exp_m=37, exp_n=64),
        RunConfig(task="max", p=20),
    ],
)
def test_labels_match_brute_force(cfg):
    pool = build_pool(cfg)
    n = cfg.operand_range
    assert pool.inputs.shape == ((2 if cfg.task == "add_mul" else 1) * n * n, cfg.n_ctx)
    seen = set()
    for tokens, label, sub in zip(pool.inputs.tolist(), pool.labels.tolist(), pool.subtask.tolist(), strict=True):
        a, b, op = decode(cfg, tokens)
        assert label == brute(cfg, a, b, op), (tokens, label)
        assert sub == (MUL if op == "mul" else ADD) or cfg.task == "mul"
        seen.add((a, b, op))
    assert len(seen) == len(pool.inputs)  # every pair once per operation


def test_pow_mod_no_overflow_for_large_exponents():
    base = torch.arange(113)
    for e in (1, 9, 10, 50, 112, 1000):
        assert pow_mod(base, e, 113).tolist() == [pow(int(x), e, 113) for x in base]


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.77])
def test_split_sizes_and_disjointness(fraction):
    cfg = RunConfig(p=31, train_fraction=fraction)
    split = make_split(cfg, build_pool(cfg))
    assert len(split.train_idx) == round(fraction * 31 * 31)
    assert len(split.test_idx) == 31 * 31 - len(split.train_idx)
    assert not set(split.train_idx.tolist()) & set(split.test_idx.tolist())


def test_split_is_reproducible_and_seeded():
    cfg = RunConfig(p=23, train_fraction=0.4, seed=3)
    pool = build_pool(cfg)
    a, b = make_split(cfg, pool), make_split(RunConfig(p=23, train_fraction=0.4, seed=3, lr=0.1), pool)
    assert torch.equal(a.train_idx, b.train_idx)  # lr is not a split axis
    c = make_split(RunConfig(p=23, train_fraction=0.4, seed=4), pool)
    assert not torch.equal(a.train_idx, c.train_idx)


def test_add_mul_composition():
    cfg = RunConfig(task="add_mul", p=11, max_num=20, train_fraction=0.5, addition_fraction=0.8)
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    n_train = round(0.5 * 400)
    assert len(split.train_idx) == n_train
    assert int((pool.subtask[split.train_idx] == ADD).sum()) == round(0.8 * n_train)
    test_sub = pool.subtask[split.test_idx]
    assert int((test_sub == ADD).sum()) == int((test_sub == MUL).sum()) == 400 - round(0.8 * n_train)
    assert not set(split.train_idx.tolist()) & set(split.test_idx.tolist())


def test_max_train_set_is_adjacent_pairs():
    cfg = RunConfig(task="max", p=64, force_adjacent=(0, 1, 2, 17))
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    pairs = {tuple(pool.inputs[i, :2].tolist()) for i in split.train_idx}
    expected = {(a, b) for a in range(64) for b in range(64) if abs(a - b) in (0, 1, 2, 17)}
    assert pairs == expected
    assert len(split.test_idx) == 64 * 64


def test_binomial_noise_statistics_and_clean_labels():
    cfg = RunConfig(p=97, train_fraction=0.5, noise="binomial", noise_n=4)
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    clean = pool.labels[split.train_idx]
    delta = ((split.train_labels - clean + 2) % 97) - 2  # noise in [-2, 2]
    assert delta.abs().max() <= 2
    counts = torch.bincount(delta + 2, minlength=5).double() / len(delta)
    expected = torch.tensor([1, 4, 6, 4, 1], dtype=torch.double) / 16
    assert torch.allclose(counts, expected, atol=0.02)


def test_uniform_noise_replaces_fraction():
    cfg = RunConfig(p=97, train_fraction=0.5, noise="uniform", noise_fraction=0.3)
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    changed = (split.train_labels != pool.labels[split.train_idx]).double().mean().item()
    assert abs(changed - 0.3 * 96 / 97) < 0.02  # a replaced label keeps its value 1/97 of the time


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(p=1), "p"),
        (dict(train_fraction=0.0), "train_fraction"),
        (dict(train_fraction=1.5), "train_fraction"),
        (dict(train_fraction=1.0), "train_fraction"),  # empty test set
        (dict(p=3, train_fraction=0.01), "train_fraction"),  # empty train set
        (dict(task="pow", exp_m=0), "exp_m"),
        (dict(task="pow", exp_n=-2), "exp_n"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(task="divide"), "task"),
        (dict(task="no_such_module_xyz:factory"), "task"),
        (dict(task="perm", p=7), "p"),
        (dict(task="div", p=12), "p"),
        (dict(act="tanh"), "act"),
        (dict(noise="binomial", noise_n=3), "noise_n"),
        (dict(noise="binomial", noise_n=400, p=97), "noise_n"),
        (dict(noise="uniform", noise_fraction=1.5), "noise_fraction"),
        (dict(noise_n=2), "noise_n"),
        (dict(p="113"), "p"),
        (dict(task="add_mul", layout="a b ="), "layout"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        RunConfig(**kwargs)
    assert err.value.field_name == field
    assert str(err.value).startswith(f"{field}: ")


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"act: must be one of \['relu', 'gelu'\], got 'tanh'"):
        RunConfig(act="tanh")


def test_run_id_ignores_name_only():
    base = RunConfig(p=23)
    assert base.run_id == RunConfig(p=23, name="hello").run_id
    assert base.run_id != RunConfig(p=23, seed=1).run_id
    assert RunConfig.from_dict(base.to_dict()) == base

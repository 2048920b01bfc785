"""The task catalogue: every built-in task's labels against brute-force Python, group products
against permutations composed by hand, user tasks (loading, canonical names, run_ids, clear
errors), the init option, and new tasks training and measured in a real pack."""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import textwrap

import pytest
import torch

from grokcore import ConfigError, RunConfig, train_pack
from grokcore.packed import init_member, param_shapes
from grokcore.splits import build_pool, make_split
from grokcore.task import BUILTIN, FOURIER, check_task, load_user_task

MODULAR = {
    # name: (brute-force label of (x, y) mod p, subtask of (x, y))
    "sub": lambda x, y, p: (x - y) % p,
    "div": lambda x, y, p: (x * pow(y, -1, p)) % p,  # Python's modular inverse
    "sq_sum": lambda x, y, p: (x**2 + y**2) % p,
    "quad": lambda x, y, p: (x**2 + x * y + y**2) % p,
    "quad_x": lambda x, y, p: (x**2 + x * y + y**2 + x) % p,
    "cube_xy": lambda x, y, p: (x**3 + x * y) % p,
    "cube_xy2_y": lambda x, y, p: (x**3 + x * y**2 + y) % p,
    "add_or_sub": lambda x, y, p: (x + y) % p if x % 2 == 0 else (x - y) % p,
    "add_or_mul": lambda x, y, p: (x + y) % p if x % 2 == 0 else (x * y) % p,
    "div_or_sub": lambda x, y, p: (x * pow(y, -1, p)) % p if y % 2 == 1 else (x - y) % p,
}


def pairs_and_labels(cfg: RunConfig) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    pool = build_pool(cfg)
    layout = cfg.token_layout.split()
    ia, ib = layout.index("a"), layout.index("b")
    pairs = [(int(t[ia]), int(t[ib])) for t in pool.inputs]
    return pairs, pool.labels.tolist(), pool.subtask.tolist()


@pytest.mark.parametrize("p", [7, 31])
@pytest.mark.parametrize("name", sorted(MODULAR))
def test_modular_labels_match_brute_force(name, p):
    cfg = RunConfig(task=name, p=p)
    pairs, labels, subtasks = pairs_and_labels(cfg)
    ys = range(1, p) if name == "div" else range(p)  # Power et al. build x/y over y != 0
    assert sorted(pairs) == [(x, y) for x in range(p) for y in ys]
    assert labels == [MODULAR[name](x, y, p) for x, y in pairs]
    if name in ("add_or_sub", "add_or_mul"):
        assert cfg.task_def.subtasks == ("add", name.split("_")[-1])
        assert subtasks == [x % 2 for x, _ in pairs]  # even x: the first operation
    elif name == "div_or_sub":
        assert cfg.task_def.subtasks == ("div", "sub")
        assert subtasks == [1 - y % 2 for _, y in pairs]  # odd y: division
    else:
        assert set(subtasks) == {0}
    n = cfg.task_def.n_examples
    assert len(pairs) == n and cfg.train_size == round(0.3 * n)


def test_brute_force_can_fail():
    """Negative control: a subtly wrong formula (x^2 + y^2 without the xy term) is caught."""
    cfg = RunConfig(task="quad", p=7)
    pairs, labels, _ = pairs_and_labels(cfg)
    assert labels != [MODULAR["sq_sum"](x, y, 7) for x, y in pairs]


@pytest.mark.parametrize("name", ["div", "div_or_sub"])
def test_division_needs_a_prime_modulus(name):
    with pytest.raises(ConfigError, match=rf"^p: {name} needs a prime p"):
        RunConfig(task=name, p=12)


def perm_compose(f: tuple[int, ...], g: tuple[int, ...]) -> tuple[int, ...]:
    """(f·g)(v) = f(g(v))."""
    return tuple(f[g[v]] for v in range(len(g)))


def perm_inverse(f: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(f)
    for v, fv in enumerate(f):
        inv[fv] = v
    return tuple(inv)


WORDS = {
    "perm": perm_compose,
    "perm_conj": lambda x, y: perm_compose(perm_compose(x, y), perm_inverse(x)),
    "perm_xyx": lambda x, y: perm_compose(perm_compose(x, y), x),
}


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("name", sorted(WORDS))
def test_symmetric_group_words_match_brute_force(name, n):
    cfg = RunConfig(task=name, p=n)
    elements = list(itertools.permutations(range(n)))  # token g is the g-th permutation in lexicographic order
    index = {e: i for i, e in enumerate(elements)}
    assert cfg.operand_range == cfg.n_classes == math.factorial(n)
    pairs, labels, _ = pairs_and_labels(cfg)
    assert len(pairs) == math.factorial(n) ** 2  # S5: 120 elements, 14,400 pairs
    assert labels == [index[WORDS[name](elements[x], elements[y])] for x, y in pairs]


@pytest.mark.parametrize("n", [3, 4, 7])
def test_dihedral_group_matches_brute_force(n):
    cfg = RunConfig(task="dihedral", p=n)
    # element s * n + k is v -> k + (-1)^s v (mod n): k rotations, s reflections
    elements = [tuple((k + (-1) ** s * v) % n for v in range(n)) for s in (0, 1) for k in range(n)]
    assert len(set(elements)) == 2 * n == cfg.n_classes
    index = {e: i for i, e in enumerate(elements)}
    pairs, labels, _ = pairs_and_labels(cfg)
    assert labels == [index[perm_compose(elements[x], elements[y])] for x, y in pairs]
    # non-abelian for n >= 3: the catalogue did not compute y·x
    assert labels != [index[perm_compose(elements[y], elements[x])] for x, y in pairs]


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_task_passes_the_user_task_checks(name):
    p = {"perm": 4, "perm_conj": 4, "perm_xyx": 4, "dihedral": 5, "max": 20}.get(name, 11)
    cfg = RunConfig(task=name, p=p)
    check_task(cfg.task_def, name)
    assert (FOURIER in cfg.task_def.measures) == (cfg.task_def.modulus is not None)
    assert cfg.d_vocab == cfg.operand_range + 1 + len(cfg.task_def.ops)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(task="perm", p=7), "p"),
        (dict(task="dihedral", p=2), "p"),
        (dict(task="divide"), "task"),
    ],
)
def test_bad_task_configs_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        RunConfig(**kwargs)
    assert err.value.field_name == field


# ---- user tasks ----------------------------------------------------------------------------------

USER_MODULE = """
from grokcore.task import BinaryTask, FOURIER


def affine(k, p):
    '''(k x + y) mod p; gets p from the config.'''
    return BinaryTask(name=f"affine{k}", n_operands=p, n_classes=p, label=lambda x, y: (k * x + y) % p,
                      modulus=p, measures=frozenset({FOURIER}))


def xor(bits=3):
    n = 2 ** bits
    return BinaryTask(name="xor", n_operands=n, n_classes=n, label=lambda x, y: x ^ y, default_layout="a b =")


def out_of_range(p):
    return BinaryTask(name="bad", n_operands=p, n_classes=p, label=lambda x, y: x + y)  # no mod p


def not_a_task():
    return {"n_classes": 3}


def raises(p):
    raise RuntimeError("no such thing")
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = "grok_user_tasks_for_tests"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_user_task.cache_clear()
    yield name
    sys.modules.pop(name, None)
    load_user_task.cache_clear()


def test_user_task_labels_run_id_and_canonical_name(user_module):
    cfg = RunConfig(task=f"{user_module}:affine( k = 3 )", p=11, train_fraction=0.5)
    assert cfg.task == f"{user_module}:affine(k=3)"  # one spelling, so one run_id
    assert cfg.run_id.startswith(f"{user_module}-affine-k-3-p11-")
    assert cfg.run_id != RunConfig(task=f"{user_module}:affine(k=4)", p=11, train_fraction=0.5).run_id
    pairs, labels, _ = pairs_and_labels(cfg)
    assert labels == [(3 * x + y) % 11 for x, y in pairs]
    assert cfg.token_layout == "a op b =" and cfg.d_vocab == 11 + 2
    xor = RunConfig(task=f"{user_module}:xor", train_fraction=0.5)
    pairs, labels, _ = pairs_and_labels(xor)
    assert labels == [x ^ y for x, y in pairs] and xor.n_classes == 8


@pytest.mark.parametrize(
    "factory, message",
    [
        ("out_of_range", r"examples\(\).labels must lie in \[0, 11\)"),
        ("not_a_task", "must return a grokcore.task.Task"),
        ("raises", "the factory raised RuntimeError: no such thing"),
        ("missing", "has no callable 'missing'"),
        ("affine(3)", r"give the factory's arguments by name"),
        ("affine(k=len)", "must be a literal"),
    ],
)
def test_bad_user_tasks_say_why(user_module, factory, message):
    with pytest.raises(ConfigError, match=message) as err:
        RunConfig(task=f"{user_module}:{factory}", p=11)
    assert err.value.field_name == "task"


def test_unimportable_user_task():
    with pytest.raises(ConfigError, match=r"^task: cannot import 'no_such_package_xyz.tasks'"):
        RunConfig(task="no_such_package_xyz.tasks:f")


def test_user_task_trains_in_a_pack_and_configs_pickle(user_module):
    import pickle

    base = RunConfig(
        task=f"{user_module}:affine(k=2)",
        p=7,
        train_fraction=0.6,
        d_model=16,
        n_heads=2,
        d_mlp=32,
        epochs=20,
        eval_every=10,
    )
    members = [base, dataclasses.replace(base, seed=1)]
    assert pickle.loads(pickle.dumps(base)) == base  # the cached Task (a lambda) is not pickled
    metrics, outcomes = train_pack(members)
    assert [o.status for o in outcomes] == ["done", "done"]
    assert all(math.isfinite(m["test/loss"]) for m in metrics)


# ---- new tasks in the trainer and the progress measures --------------------------------------------


def test_mixture_reports_its_add_and_mul_subtasks():
    cfg = RunConfig(
        task="add_or_mul", p=11, train_fraction=0.5, d_model=16, n_heads=2, d_mlp=32, epochs=10, eval_every=10
    )
    metrics, _ = train_pack([cfg])
    row = metrics[-1]
    assert math.isfinite(row["test_add/acc"]) and math.isfinite(row["test_mul/acc"])
    split = make_split(cfg, pool := build_pool(cfg))
    test_sub = pool.subtask[split.test_idx]
    # the two halves weigh the test set as their sizes say
    w_add = float((test_sub == 0).double().mean())
    expected = w_add * row["test_add/loss"] + (1 - w_add) * row["test_mul/loss"]
    assert row["test/loss"] == pytest.approx(expected, rel=1e-9)


def test_group_task_progress_has_no_fourier_columns():
    from grokcore import PackTrainer
    from grokcore.progress import ProgressSettings, measure_pack

    cfg = RunConfig(task="perm", p=3, train_fraction=0.5, d_model=16, n_heads=2, d_mlp=32, epochs=10, eval_every=10)
    trainer = PackTrainer([cfg])
    rows = measure_pack(trainer, ProgressSettings(llc=False))
    assert not any(k.startswith("fourier/") for k in rows[0]) and "embed/pca_var_0" in rows[0]
    sub = RunConfig(task="sub", p=7, train_fraction=0.5, d_model=16, n_heads=2, d_mlp=32, epochs=10, eval_every=10)
    rows = measure_pack(PackTrainer([sub]), ProgressSettings(llc=False))
    assert "fourier/embed_norm_3" in rows[0] and math.isnan(rows[0]["fourier/restricted_loss"])


# ---- init ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_kaiming_init_has_the_kaiming_scale(model):
    cfg = RunConfig(task="add", p=97, model=model, layout="a op b =", d_model=128, d_mlp=512, init="kaiming")
    weights = init_member(cfg)
    fan_in = {
        "embed.W_E": 128,
        "pos_embed.W_pos": 128,
        "blocks.0.attn.W_Q": 128,
        "blocks.0.attn.W_O": 128,
        "blocks.0.mlp.W_in": 128,
        "blocks.0.mlp.W_out": 512,
        "unembed.W_U": 512 if model == "mlp" else 128,
        "mlp.W_in": cfg.n_ctx * 128,
    }  # the MLP reads the concatenated embeddings
    for name in param_shapes(cfg):
        if name in fan_in:
            w = weights[name]
            tolerance = 4 / math.sqrt(2 * w.numel())  # four standard errors of a sample std
            assert w.std().item() == pytest.approx(math.sqrt(2 / fan_in[name]), rel=tolerance), name
    tl = init_member(dataclasses.replace(cfg, init="tl"))
    # the same draws at another scale: the direction of each weight is unchanged
    assert torch.allclose(weights["embed.W_E"] / weights["embed.W_E"].norm(), tl["embed.W_E"] / tl["embed.W_E"].norm())
    assert not torch.allclose(weights["embed.W_E"], tl["embed.W_E"])


def test_init_default_keeps_run_ids_and_kaiming_changes_them():
    cfg = RunConfig(p=23)
    assert "init" in cfg.to_dict()
    assert RunConfig(p=23, init="tl").run_id == cfg.run_id == "add-p23-" + cfg.run_id.rsplit("-", 1)[1]
    assert RunConfig(p=23, init="kaiming").run_id != cfg.run_id


def test_readme_user_task_example_works(tmp_path, monkeypatch):
    """The user-task example of docs/howto/add-a-task.md, as written there, loads and labels as it says."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "docs" / "howto" / "add-a-task.md").read_text()
    start = readme.index("# mytasks.py")
    (tmp_path / "mytasks.py").write_text(readme[start : readme.index("```", start)])
    monkeypatch.syspath_prepend(str(tmp_path))
    load_user_task.cache_clear()
    try:
        cfg = RunConfig(task="mytasks:affine(k=3)", p=31, train_fraction=0.5)
        assert cfg.run_id.startswith("mytasks-affine-k-3-p31-")
        pairs, labels, _ = pairs_and_labels(cfg)
        assert labels == [(3 * x + y) % 31 for x, y in pairs]
        assert FOURIER in cfg.task_def.measures
    finally:
        sys.modules.pop("mytasks", None)
        load_user_task.cache_clear()

"""The task catalogue: one Task object per task, and the only place that knows what a task is.

A Task says what its operands and classes are, builds every example and its label at once
(vectorised: no Python loop over pairs), says how a member's examples split into train and test,
names its subtasks (for mixtures), its default token layout, and which progress measures apply.
RunConfig (vocabulary, classes, validation, split sizes), grokcore.splits (pools and splits), the
packed models, the progress measures and sweeps' spec validation all read it through
`cfg.task_def`; nothing outside this module branches on a task's name.

    task = RunConfig(task="sub", p=23).task_def
    ex = task.examples()                 # ex.x, ex.y, ex.labels, ex.op, ex.subtask: (N,) int64

Tokens: operand tokens are 0 .. n_operands-1, then '=', then one token per entry of `ops`. A task
with the seed experiments' vocabulary (add, mul, add_mul, pow, max) keeps ops ('add', 'mul'), so
their vocabularies, and with them every initial weight, are what they were before this catalogue.

Built-in tasks are listed in BUILTIN (name -> description). A user task is named
`package.module:factory` or `package.module:factory(arg=value, ...)` with literal keyword
arguments; the factory returns a Task (usually a BinaryTask), and is also passed the config's `p`
when it has a parameter of that name, so `p` can be a sweep axis. See docs/tasks.md and docs/howto/add-a-task.md.

This module imports only the standard library at import time (grokcore.config must stay
importable without torch); torch is imported where examples are built.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grokcore.errors import ConfigError

# torch is imported inside the functions that build tensors, not here: grokcore.config imports this
# module and stays importable without torch (analysis and the CLI read configs without it).
if TYPE_CHECKING:  # annotations only: grokcore.config imports this module
    from torch import Tensor

    from grokcore.config import RunConfig

# The task-specific progress measures a task can declare in Task.measures (embedding PCA and the LLC
# apply to every task); grokcore.progress.registry says what each computes.
FOURIER = "fourier"  # the embedding's Fourier spectrum over Z_modulus and its key frequencies
ADDITION = "addition"  # restricted / excluded loss and the logit and neuron measures of (a + b) mod p
MAX_CIRCUIT = "max"  # QK / OV summaries of max of two
TASK_MEASURES = (FOURIER, ADDITION, MAX_CIRCUIT)

LAYOUTS = ("a b =", "a op b", "a op b =", "a b")
MAX_EXAMPLES = 1 << 22  # every example is built at once; beyond ~4M pairs a pack would not fit anyway


class TaskError(ValueError):
    """A task that cannot be used; the message says why (RunConfig reports it under `task`)."""


@dataclass(frozen=True)
class Examples:
    """Every example of a task: operand tokens, clean label, the op token shown, the subtask; (N,) int64."""

    x: Tensor
    y: Tensor
    labels: Tensor
    op: Tensor  # index into Task.ops
    subtask: Tensor  # index into Task.subtasks


class Task:
    """One task. Subclasses set the attributes below and implement `examples`; most user tasks
    are a BinaryTask. Tasks are frozen dataclasses, so two equal tasks share one example pool."""

    name: str
    """Shown in messages; a user task's run_id prefix is built from its `task` string instead."""
    n_operands: int
    """Operand tokens x, y run over 0 .. n_operands-1."""
    n_classes: int
    """Labels lie in 0 .. n_classes-1."""
    n_examples: int
    """How many examples `examples()` returns (known without building them, to validate splits)."""
    ops: tuple[str, ...] = ("op",)
    """The op tokens of the vocabulary, in order after '='."""
    example_op: int = 0
    """The op token (index into ops) every example shows, for tasks with one operation."""
    subtasks: tuple[str, ...] = ("all",)
    """Names of the parts of a mixture (Examples.subtask indexes them); one name for a plain task.
    Subtasks named 'add' and 'mul' get the test_add/* and test_mul/* metric columns."""
    default_layout: str = "a op b ="
    needs_op_token: bool = False
    """Examples differ only in their op token (add_mul), so layouts without 'op' are refused."""
    modulus: int | None = None
    """p when operands are residues mod p (Fourier measures are taken over Z_p); else None."""
    measures: frozenset[str] = frozenset()
    """Which of TASK_MEASURES apply."""
    uses_train_fraction: bool = True

    def examples(self) -> Examples:
        raise NotImplementedError

    def check(self, cfg: RunConfig) -> None:
        """Task-specific checks of the config; raise grokcore.config.ConfigError naming the field."""

    def split_sizes(self, cfg: RunConfig) -> tuple[int, int]:
        """(n_train, n_test) without building anything: a train_fraction of all examples."""
        n_train = round(cfg.train_fraction * self.n_examples)
        return n_train, self.n_examples - n_train

    def split(self, cfg: RunConfig, generator: Any) -> tuple[Tensor, Tensor]:
        """Indices of the member's train and test examples: a random permutation from `generator`
        (seeded by the member's split sub-seed), cut at n_train."""
        import torch

        n_train, _ = self.split_sizes(cfg)
        perm = torch.randperm(self.n_examples, generator=generator)
        return perm[:n_train], perm[n_train:]


def all_pairs(n: int) -> tuple[Tensor, Tensor]:
    """x, y over every pair of 0 .. n-1, row x * n + y."""
    import torch

    return torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)


def pow_mod(base: Tensor, exponent: int, modulus: int) -> Tensor:
    """base**exponent mod modulus by square-and-multiply; every intermediate stays below modulus**2,
    so it never overflows int64 (the seed notebook computed a**m directly and overflowed for m > 9)."""
    result = base * 0 + 1
    base = base % modulus
    while exponent > 0:
        if exponent & 1:
            result = (result * base) % modulus
        base = (base * base) % modulus
        exponent >>= 1
    return result


# ---- modular arithmetic ----------------------------------------------------------------------------
# Label formulas: vectorised over int64 tensors of residues x, y < p, reduced after every product so
# nothing overflows for any p a pack could hold. Module-level functions, so equal tasks compare equal.


def _add(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x + y) % p


def _sub(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x - y) % p  # torch's % takes the sign of the divisor, as Python's


def _mul(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x * y) % p


def _div(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x * pow_mod(y, p - 2, p)) % p  # Fermat: y^(p-2) is y's inverse for prime p, y != 0


def _sq_sum(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x * x + y * y) % p


def _quad(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x * x + x * y + y * y) % p


def _quad_x(x: Tensor, y: Tensor, p: int) -> Tensor:
    return (x * x + x * y + y * y + x) % p


def _cube_xy(x: Tensor, y: Tensor, p: int) -> Tensor:
    return ((x * x % p) * x + x * y) % p


def _cube_xy2_y(x: Tensor, y: Tensor, p: int) -> Tensor:
    return ((x * x % p) * x + x * (y * y % p) + y) % p


def _add_or_sub(x: Tensor, y: Tensor, p: int) -> Tensor:
    return ((x + y) % p).where(x % 2 == 0, (x - y) % p)


def _add_or_mul(x: Tensor, y: Tensor, p: int) -> Tensor:
    return ((x + y) % p).where(x % 2 == 0, (x * y) % p)


def _div_or_sub(x: Tensor, y: Tensor, p: int) -> Tensor:
    # y = 0 is even, so the inverse is only ever taken of a nonzero y: every pair is an example
    return (x * pow_mod(y, p - 2, p) % p).where(y % 2 == 1, (x - y) % p)


def _y_parity(x: Tensor, y: Tensor) -> Tensor:
    """Subtask of 'x / y if y odd': 0 (division) for odd y, 1 (subtraction) for even y."""
    return 1 - y % 2


def _parity(x: Tensor, y: Tensor) -> Tensor:
    """Subtask of the 'if x even' mixtures: 0 (the first operation) for even x, 1 for odd."""
    return x % 2


def _need(cond: bool, field_name: str, message: str) -> None:
    if not cond:
        raise ConfigError(field_name, message)


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


@dataclass(frozen=True)
class ModularTask(Task):
    """formula(x, y) mod p for residues x, y (y != 0 with nonzero_y, as Power et al. build x/y)."""

    name: str
    p: int
    formula: Callable[[Tensor, Tensor, int], Tensor]
    operand_range: int | None = None  # None: p (mul and add_mul may take operands up to max_num)
    ops: tuple[str, ...] = ("op",)
    example_op: int = 0
    subtasks: tuple[str, ...] = ("all",)
    subtask_of: Callable[[Tensor, Tensor], Tensor] | None = None  # mixtures: which part each example is
    nonzero_y: bool = False
    prime_modulus: bool = False
    default_layout: str = "a op b ="
    measures: frozenset[str] = frozenset({FOURIER})

    @property
    def n_operands(self) -> int:  # type: ignore[override]
        return self.operand_range if self.operand_range is not None else self.p

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return self.p

    @property
    def modulus(self) -> int:  # type: ignore[override]
        return self.p

    @property
    def n_examples(self) -> int:  # type: ignore[override]
        n = self.n_operands
        return n * (n - 1) if self.nonzero_y else n * n

    def labels(self, x: Tensor, y: Tensor) -> Tensor:
        return self.formula(x, y, self.p)

    def examples(self) -> Examples:
        x, y = all_pairs(self.n_operands)
        if self.nonzero_y:
            keep = y != 0
            x, y = x[keep], y[keep]
        subtask = self.subtask_of(x, y) if self.subtask_of is not None else x * 0
        return Examples(x=x, y=y, labels=self.labels(x, y), op=x * 0 + self.example_op, subtask=subtask)

    def check(self, cfg: RunConfig) -> None:
        if self.operand_range is not None:
            _need(self.operand_range >= 2, "max_num", f"must be >= 2 or null, got {self.operand_range}")
        if self.prime_modulus:
            _need(is_prime(self.p), "p", f"{self.name} needs a prime p (y has an inverse mod p), got {self.p}")


@dataclass(frozen=True)
class PowTask(ModularTask):
    """(x^m + y^n) mod p by square-and-multiply (no overflow for any m, n)."""

    exp_m: int = 1
    exp_n: int = 1

    def labels(self, x: Tensor, y: Tensor) -> Tensor:
        return (pow_mod(x, self.exp_m, self.p) + pow_mod(y, self.exp_n, self.p)) % self.p

    def check(self, cfg: RunConfig) -> None:
        _need(self.exp_m >= 1, "exp_m", f"must be an integer >= 1, got {self.exp_m}")
        _need(self.exp_n >= 1, "exp_n", f"must be an integer >= 1, got {self.exp_n}")


@dataclass(frozen=True)
class AddMulTask(ModularTask):
    """Every pair twice, first with '+' then with '*' (op token and subtask alike); the train set
    holds addition_fraction addition, the test sets of both operations are equal in size."""

    needs_op_token = True  # a class attribute, not a field: every add_mul shows its op

    def examples(self) -> Examples:
        import torch

        x, y = all_pairs(self.n_operands)
        parts = [(_add(x, y, self.p), 0), (_mul(x, y, self.p), 1)]
        labels = torch.cat([lab for lab, _ in parts])
        which = torch.cat([x * 0 + i for _, i in parts])
        return Examples(x=x.repeat(2), y=y.repeat(2), labels=labels, op=which, subtask=which)

    @property
    def n_examples(self) -> int:  # type: ignore[override]
        return 2 * self.n_operands**2

    def check(self, cfg: RunConfig) -> None:
        super().check(cfg)
        _need(0 <= cfg.addition_fraction <= 1, "addition_fraction", f"must be in [0, 1], got {cfg.addition_fraction}")

    def split_sizes(self, cfg: RunConfig) -> tuple[int, int]:
        n_pairs = self.n_operands**2
        n_train = round(cfg.train_fraction * n_pairs)
        n_add = round(cfg.addition_fraction * n_train)
        return n_train, 2 * (n_pairs - max(n_add, n_train - n_add))

    def split(self, cfg: RunConfig, generator: Any) -> tuple[Tensor, Tensor]:
        import torch

        n_pairs = self.n_operands**2
        n_train, n_test = self.split_sizes(cfg)
        n_add = round(cfg.addition_fraction * n_train)
        add_perm = torch.randperm(n_pairs, generator=generator)
        mul_perm = torch.randperm(n_pairs, generator=generator) + n_pairs
        n_test_each = n_test // 2
        train_idx = torch.cat([add_perm[:n_add], mul_perm[: n_train - n_add]])
        test_idx = torch.cat([add_perm[n_add:][:n_test_each], mul_perm[n_train - n_add :][:n_test_each]])
        return train_idx, test_idx


@dataclass(frozen=True)
class MaxTask(Task):
    """max(x, y) for x, y < n; the train set is every pair (a, a +- i) for i in force_adjacent, the
    test set all pairs (the max-of-two notebook)."""

    n: int
    force_adjacent: tuple[int, ...]
    name: str = "max"
    ops: tuple[str, ...] = ("add", "mul")  # the seed vocabulary: '=' then two op tokens
    default_layout: str = "a b ="
    measures: frozenset[str] = frozenset({MAX_CIRCUIT})
    uses_train_fraction: bool = False

    @property
    def n_operands(self) -> int:  # type: ignore[override]
        return self.n

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return self.n

    @property
    def n_examples(self) -> int:  # type: ignore[override]
        return self.n * self.n

    def examples(self) -> Examples:
        import torch

        x, y = all_pairs(self.n)
        return Examples(x=x, y=y, labels=torch.maximum(x, y), op=x * 0, subtask=x * 0)

    def adjacent_pairs(self) -> list[tuple[int, int]]:
        n = self.n
        pairs = {(a, a + s * i) for a in range(n) for i in self.force_adjacent for s in (1, -1) if 0 <= a + s * i < n}
        pairs |= {(b, a) for a, b in pairs}
        return sorted(pairs)

    def check(self, cfg: RunConfig) -> None:
        _need(len(self.force_adjacent) > 0, "force_adjacent", "must name at least one offset")
        _need(
            all(0 <= i < self.n for i in self.force_adjacent),
            "force_adjacent",
            f"offsets must lie in [0, p={self.n}), got {list(self.force_adjacent)}",
        )

    def split_sizes(self, cfg: RunConfig) -> tuple[int, int]:
        return len(self.adjacent_pairs()), self.n_examples

    def split(self, cfg: RunConfig, generator: Any) -> tuple[Tensor, Tensor]:
        import torch

        pairs = torch.tensor(self.adjacent_pairs())
        return pairs[:, 0] * self.n + pairs[:, 1], torch.arange(self.n_examples)


# ---- finite groups ---------------------------------------------------------------------------------
GROUP_WORDS = {"xy": "x·y", "xyx^-1": "x·y·x⁻¹", "xyx": "x·y·x"}


@dataclass(frozen=True)
class GroupTask(Task):
    """A word in two elements of a finite permutation group, elements as tokens (Chughtai et al.;
    Power et al.'s S5 operations). `kind` 'symmetric': S_n, elements the permutations of
    0 .. n-1 in lexicographic order; 'dihedral': D_n, the symmetries of an n-gon, element
    s * n + k the map v -> k + (-1)^s v (mod n) (k rotations, s reflections). Products compose
    maps right to left: (x·y)(v) = x(y(v))."""

    name: str
    kind: str  # symmetric | dihedral
    n: int
    word: str  # a key of GROUP_WORDS

    @property
    def order(self) -> int:
        return math.factorial(self.n) if self.kind == "symmetric" else 2 * self.n

    @property
    def n_operands(self) -> int:  # type: ignore[override]
        return self.order

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return self.order

    @property
    def n_examples(self) -> int:  # type: ignore[override]
        return self.order**2

    @property
    def ops(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.name,)

    def elements(self) -> Tensor:
        """(order, n): row g is the permutation of 0 .. n-1 that element g is."""
        import torch

        if self.kind == "symmetric":
            return torch.tensor(list(itertools.permutations(range(self.n))))
        k = torch.arange(self.n).repeat(2)  # rotation part of s * n + k
        sign = 1 - 2 * torch.arange(2).repeat_interleave(self.n)  # +1 for rotations, -1 for reflections
        return (k[:, None] + sign[:, None] * torch.arange(self.n)) % self.n

    def examples(self) -> Examples:
        import torch

        perms = self.elements()
        # An element is identified by its images of the first `key_len` points: all of them in S_n,
        # two in D_n (the image of 0 gives the rotation, the image of 1 the reflection).
        key_len = self.n if self.kind == "symmetric" else 2
        weights = self.n ** torch.arange(key_len - 1, -1, -1)
        codes = (perms[:, :key_len] * weights).sum(1)
        order = codes.argsort()

        def index_of(maps: Tensor) -> Tensor:
            code = (maps[:, :key_len] * weights).sum(1)
            return order[torch.searchsorted(codes[order], code)]

        def compose(f: Tensor, g: Tensor) -> Tensor:  # (f·g)(v) = f(g(v)), rows of maps
            return f.gather(1, g)

        x, y = all_pairs(self.order)
        px, py = perms[x], perms[y]
        if self.word == "xy":
            result = compose(px, py)
        elif self.word == "xyx^-1":
            result = compose(compose(px, py), px.argsort(1))  # argsort of a permutation is its inverse
        else:
            result = compose(compose(px, py), px)
        return Examples(x=x, y=y, labels=index_of(result), op=x * 0, subtask=x * 0)

    def check(self, cfg: RunConfig) -> None:
        if self.kind == "symmetric":
            _need(
                2 <= self.n <= 6,
                "p",
                f"{self.name} is S_p: p must be in 2..6 (6! = 720 elements, 518,400 pairs), got {self.n}",
            )
        else:
            _need(3 <= self.n <= 1000, "p", f"{self.name} is D_p: p must be in 3..1000, got {self.n}")


# ---- tasks users bring -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BinaryTask(Task):
    """label(x, y) over every pair of operand tokens: the quickest way to bring a task.
    `label` takes int64 tensors x, y (all n_operands**2 pairs at once) and returns labels in
    0 .. n_classes-1. Set `modulus` (and measures={FOURIER}) when operands are residues mod p."""

    name: str
    n_operands: int
    n_classes: int
    label: Callable[[Tensor, Tensor], Tensor]
    default_layout: str = "a op b ="
    modulus: int | None = None
    measures: frozenset[str] = frozenset()

    @property
    def n_examples(self) -> int:  # type: ignore[override]
        return self.n_operands**2

    def examples(self) -> Examples:
        x, y = all_pairs(self.n_operands)
        return Examples(x=x, y=y, labels=self.label(x, y), op=x * 0, subtask=x * 0)


# ---- the catalogue ---------------------------------------------------------------------------------
def _modular(name: str, formula: Callable, **kwargs: Any) -> Callable[[RunConfig], Task]:
    return lambda cfg: ModularTask(name=name, p=cfg.p, formula=formula, ops=(name,), **kwargs)


def _group(name: str, kind: str, word: str) -> Callable[[RunConfig], Task]:
    return lambda cfg: GroupTask(name=name, kind=kind, n=cfg.p, word=word)


SEED_OPS = ("add", "mul")  # the seed tasks' op tokens: '=' then '+' then '*'

# name -> (what it is, factory from a config). `p` is the modulus of the modular tasks, the operand
# range of max, and n of S_n / D_n.
BUILTIN: dict[str, tuple[str, Callable[[RunConfig], Task]]] = {
    # the seed experiments (their vocabulary and splits are pinned by tests/grokcore/test_task_compat.py)
    "add": (
        "(x + y) mod p",
        lambda cfg: ModularTask(
            name="add",
            p=cfg.p,
            formula=_add,
            ops=SEED_OPS,
            default_layout="a b =",
            measures=frozenset({FOURIER, ADDITION}),
        ),
    ),
    "mul": (
        "(x * y) mod p, operands up to max_num",
        lambda cfg: ModularTask(
            name="mul",
            p=cfg.p,
            formula=_mul,
            operand_range=cfg.max_num,
            ops=SEED_OPS,
            example_op=1,
            default_layout="a op b",
        ),
    ),
    "add_mul": (
        "(x + y) or (x * y) mod p marked by the op token, addition_fraction of the train set addition",
        lambda cfg: AddMulTask(
            name="add_mul",
            p=cfg.p,
            formula=_add,
            operand_range=cfg.max_num,
            ops=SEED_OPS,
            subtasks=SEED_OPS,
            default_layout="a op b",
            measures=frozenset({FOURIER, ADDITION}),
        ),
    ),
    "pow": (
        "(x^exp_m + y^exp_n) mod p",
        lambda cfg: PowTask(
            name="pow",
            p=cfg.p,
            formula=_add,
            ops=SEED_OPS,
            default_layout="a b =",
            exp_m=cfg.exp_m,
            exp_n=cfg.exp_n,
            measures=frozenset({FOURIER, ADDITION}) if (cfg.exp_m, cfg.exp_n) == (1, 1) else frozenset({FOURIER}),
        ),
    ),
    "max": (
        "max(x, y) for x, y < p, trained on pairs (a, a +- i), i in force_adjacent",
        lambda cfg: MaxTask(n=cfg.p, force_adjacent=tuple(cfg.force_adjacent)),
    ),
    # Power et al. (2022)
    "sub": ("(x - y) mod p", _modular("sub", _sub)),
    "div": ("x / y mod p over y != 0 (p prime)", _modular("div", _div, nonzero_y=True, prime_modulus=True)),
    "sq_sum": ("(x^2 + y^2) mod p", _modular("sq_sum", _sq_sum)),
    "quad": ("(x^2 + xy + y^2) mod p", _modular("quad", _quad)),
    "quad_x": ("(x^2 + xy + y^2 + x) mod p", _modular("quad_x", _quad_x)),
    "cube_xy": ("(x^3 + xy) mod p", _modular("cube_xy", _cube_xy)),
    "cube_xy2_y": ("(x^3 + xy^2 + y) mod p", _modular("cube_xy2_y", _cube_xy2_y)),
    "add_or_sub": (
        "x + y if x is even, else x - y (mod p); subtasks add, sub",
        _modular("add_or_sub", _add_or_sub, subtasks=("add", "sub"), subtask_of=_parity),
    ),
    "add_or_mul": (
        "x + y if x is even, else x * y (mod p); subtasks add, mul",
        _modular("add_or_mul", _add_or_mul, subtasks=("add", "mul"), subtask_of=_parity),
    ),
    # Power et al.'s "x/y if y is odd, else x - y"; their reference code (openai/grok, data.py) builds it
    # over all p^2 residue pairs, y = 0 included, and divides by the modular inverse
    "div_or_sub": (
        "x / y if y is odd, else x - y (mod p, p prime); subtasks div, sub",
        _modular("div_or_sub", _div_or_sub, subtasks=("div", "sub"), subtask_of=_y_parity, prime_modulus=True),
    ),
    # finite groups (Power et al.'s S5 operations; Chughtai et al.)
    "perm": ("x·y in S_p (composition; p! elements as tokens)", _group("perm", "symmetric", "xy")),
    "perm_conj": ("x·y·x⁻¹ in S_p", _group("perm_conj", "symmetric", "xyx^-1")),
    "perm_xyx": ("x·y·x in S_p", _group("perm_xyx", "symmetric", "xyx")),
    "dihedral": ("x·y in D_p, the dihedral group of order 2p", _group("dihedral", "dihedral", "xy")),
}

USER_TASK_FORM = "'package.module:factory' or 'package.module:factory(arg=value, ...)'"
_USER_RE = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<factory>[A-Za-z_]\w*)(?:\((?P<args>.*)\))?$", re.DOTALL
)


def is_user_task(name: str) -> bool:
    return ":" in name


def parse_user_task(text: str) -> tuple[str, str, dict[str, Any]]:
    """(module, factory, keyword arguments) of a user task string; literal keyword arguments only."""
    m = _USER_RE.match(text.strip())
    if m is None:
        raise TaskError(f"a user task is {USER_TASK_FORM}, got {text!r}")
    args: dict[str, Any] = {}
    if m["args"] is not None and m["args"].strip():
        try:
            call = ast.parse(f"f({m['args']})", mode="eval").body
        except SyntaxError:
            raise TaskError(f"cannot read the arguments of {text!r}: write them as arg=value, ...") from None
        assert isinstance(call, ast.Call)
        if call.args or any(k.arg is None for k in call.keywords):
            raise TaskError(f"{text!r}: give the factory's arguments by name (arg=value), so the run_id is stable")
        for keyword in call.keywords:
            try:
                args[keyword.arg] = ast.literal_eval(keyword.value)  # type: ignore[index]
            except ValueError:
                raise TaskError(
                    f"{text!r}: argument {keyword.arg} must be a literal (number, string, list, ...)"
                ) from None
    return m["module"], m["factory"], args


def canonical_task(name: str) -> str:
    """The task string as stored and hashed: built-in names as they are, a user task with its
    arguments sorted by name and written as Python literals, so equal tasks get equal run_ids."""
    if not is_user_task(name):
        return name
    module, factory, args = parse_user_task(name)
    if not args:
        return f"{module}:{factory}"
    return f"{module}:{factory}(" + ", ".join(f"{k}={args[k]!r}" for k in sorted(args)) + ")"


def run_id_prefix(name: str) -> str:
    """The readable part of a run_id: the task string with everything but [A-Za-z0-9._-] made '-'."""
    return re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9._-]", "-", name)).strip("-")


def task_for(cfg: RunConfig) -> Task:
    """The Task of a config; TaskError if the name is unknown or a user task is unusable."""
    if not is_user_task(cfg.task):
        if cfg.task not in BUILTIN:
            raise TaskError(f"must be one of {list(BUILTIN)} or a user task {USER_TASK_FORM}, got {cfg.task!r}")
        return BUILTIN[cfg.task][1](cfg)
    return load_user_task(cfg.task, cfg.p)


@functools.lru_cache(maxsize=256)
def load_user_task(name: str, p: int) -> Task:
    """Import the factory, call it, and check what it returns (built once per task string and p)."""
    module_name, factory_name, args = parse_user_task(name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise TaskError(f"cannot import {module_name!r} for the user task {name!r}: {e}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise TaskError(f"{module_name} has no callable {factory_name!r} (user task {name!r})")
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    if "p" in params and "p" not in args:
        args = {**args, "p": p}
    try:
        task = factory(**args)
    except Exception as e:  # noqa: BLE001 - the user's code: report whatever it raised, under `task`
        raise TaskError(f"{name}: the factory raised {type(e).__name__}: {e}") from None
    check_task(task, name)
    return task


def check_task(task: Any, name: str) -> None:
    """A user task's shapes and values: what the trainer relies on, checked once, with the reason."""
    import torch

    if not isinstance(task, Task):
        raise TaskError(
            f"{name}: the factory must return a grokcore.task.Task (e.g. a BinaryTask), got {type(task).__name__}"
        )

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise TaskError(f"{name}: {what}")

    for attr in ("n_operands", "n_classes", "n_examples"):
        value = getattr(task, attr, None)
        need(
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            f"{attr} must be an integer >= 1, got {value!r}",
        )
    need(task.n_classes >= 2, f"n_classes must be >= 2, got {task.n_classes}")
    need(task.n_examples <= MAX_EXAMPLES, f"{task.n_examples:,} examples is more than {MAX_EXAMPLES:,}")
    need(task.default_layout in LAYOUTS, f"default_layout must be one of {list(LAYOUTS)}, got {task.default_layout!r}")
    need(isinstance(task.ops, tuple) and len(task.ops) >= 1, f"ops must be a non-empty tuple, got {task.ops!r}")
    need(
        set(task.measures) <= set(TASK_MEASURES),
        f"measures must be a subset of {list(TASK_MEASURES)}, got {set(task.measures)}",
    )
    need(
        FOURIER not in task.measures or isinstance(task.modulus, int),
        f"the {FOURIER} measures need the task's modulus (operands are residues mod it)",
    )
    need(
        ADDITION not in task.measures or (isinstance(task.modulus, int) and "add" in task.ops),
        f"the {ADDITION} measures score the (x + y) mod p grid: they need a modulus and an op named 'add'",
    )
    try:
        hash(task)  # the trainer keys example pools by task
    except TypeError:
        raise TaskError(f"{name}: a Task must be hashable (make it a frozen dataclass)") from None
    ex = task.examples()
    n = task.n_examples
    for part in ("x", "y", "labels", "op", "subtask"):
        t = getattr(ex, part)
        need(
            isinstance(t, torch.Tensor) and t.dtype == torch.int64 and t.shape == (n,),
            f"examples().{part} must be an int64 tensor of shape ({n},) (n_examples), got "
            f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}",
        )
    for part, high in (
        ("x", task.n_operands),
        ("y", task.n_operands),
        ("labels", task.n_classes),
        ("op", len(task.ops)),
        ("subtask", len(task.subtasks)),
    ):
        t = getattr(ex, part)
        need(
            bool(((t >= 0) & (t < high)).all()),
            f"examples().{part} must lie in [0, {high}), got values in [{int(t.min())}, {int(t.max())}]",
        )

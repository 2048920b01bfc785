"""One member's configuration: a flat, frozen, validated dataclass.

Flat on purpose: every field is a sweep axis and a column of the runs table
under the same name (`train_fraction`, `weight_decay`, ...), so a YAML spec, a
Parquet column and a Python attribute never need translating.

Derived values (`d_head`, `n_ctx`, `d_vocab`, ...) are properties, never
stored, so a `dataclasses.replace` can never leave them stale.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

from grokcore import task as _task
from grokcore.errors import ConfigError  # re-exported: grokcore.config.ConfigError is the name users catch

if TYPE_CHECKING:
    from grokcore.task import Task

Layout = Literal["a b =", "a op b", "a op b =", "a b"]
NoiseKind = Literal["none", "binomial", "uniform"]
ModelKind = Literal["transformer", "mlp"]
Activation = Literal["relu", "gelu"]
Init = Literal["tl", "kaiming"]
Normalization = Literal["none", "ln"]
LossDtype = Literal["float64", "float32"]


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run ("member")."""

    # ---- task -------------------------------------------------------------
    task: str = "add"
    """A built-in task (grokcore.task.BUILTIN): add, mul, add_mul, pow, max (the seed experiments);
    sub, div, sq_sum, quad, quad_x, cube_xy, cube_xy2_y, add_or_sub, add_or_mul, div_or_sub (mod p,
    Power et al.);
    perm, perm_conj, perm_xyx (S_p), dihedral (D_p); or a user task 'package.module:factory(arg=value, ...)'."""
    p: int = 113
    """Modulus (modular tasks), the operand range (max), or n of the group S_n / D_n (perm*, dihedral)."""
    train_fraction: float = 0.3
    """Fraction of all examples used for training, in (0, 1]. Not used by max (see force_adjacent)."""
    max_num: int | None = None
    """mul / add_mul: operands run over 0..max_num-1 (may exceed p); None means p."""
    addition_fraction: float = 0.5
    """add_mul: fraction of the training set that is addition; the rest is multiplication."""
    exp_m: int = 1
    """pow: exponent of a."""
    exp_n: int = 1
    """pow: exponent of b."""
    force_adjacent: tuple[int, ...] = (0, 1, 2, 17)
    """max: the training set is every pair (a, a +- i) for i in this set; the test set is all pairs."""
    layout: Layout | None = None
    """Token layout; None picks the task's default ('a b =' for add, pow, max; 'a op b' for mul, add_mul;
    'a op b =' for the others, as Power et al.)."""

    # ---- label noise ------------------------------------------------------
    noise: NoiseKind = "none"
    """binomial: add Binomial(noise_n, 1/2) - noise_n/2 to each training label (mod p);
    uniform: replace a noise_fraction of training labels by uniform random labels."""
    noise_n: int = 0
    """binomial noise: number of coin flips n (0 means no noise); must be even."""
    noise_fraction: float = 0.0
    """uniform noise: fraction of training labels replaced, in [0, 1]."""

    # ---- model ------------------------------------------------------------
    model: ModelKind = "transformer"
    """transformer (TransformerLens layout) or mlp (concatenated embeddings, one hidden layer)."""
    n_layers: int = 1
    n_heads: int = 4
    d_model: int = 128
    """Residual width (transformer) or per-token embedding width (mlp)."""
    d_head: int | None = None
    """None means d_model // n_heads."""
    d_mlp: int = 512
    """MLP hidden width (both model kinds)."""
    act: Activation = "relu"
    normalization: Normalization = "none"
    """none, or ln: LayerNorm before attention, MLP and unembedding (pre-LN, as TransformerLens)."""
    attn_only: bool = False
    bias: bool = False
    """Train biases; the seed transformers froze them at zero."""
    init: Init = "tl"
    """tl: TransformerLens' initialisation (transformer: N(0, 0.8/sqrt(d_model)) for every W_*; mlp: W_in and
    W_U N(0, 1/sqrt(fan_in))); kaiming: Kaiming-normal, N(0, 2/fan_in) for every W_*, as the grokking-MLP
    seed. Biases start at zero either way."""

    # ---- optimiser --------------------------------------------------------
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    batch_size: int | None = None
    """None: full batch. Otherwise shuffled minibatches of this size, each epoch a pass."""
    loss_dtype: LossDtype = "float64"
    """Cross-entropy precision; float32 log-softmax underflows on confident logits."""

    # ---- budget and stopping ----------------------------------------------
    epochs: int = 10_000
    """Epoch budget."""
    eval_every: int = 100
    """Evaluate (and report) every this many epochs, and at the last epoch."""
    progress_every: int = 0
    """Compute progress measures (Fourier, restricted/excluded loss, LLC) every this many epochs
    (a multiple of eval_every); 0 turns them off. They never change the training trajectory."""
    stop_acc: float | None = None
    """Stop once test accuracy is at or above this for stop_patience evaluations (None: never)."""
    stop_patience: int = 1
    stop_extra_epochs: int = 0
    """Epochs to keep training after the stop rule fires (to watch the clean-up phase). A member whose test
    accuracy is below stop_acc at the end of them (a loss spike) trains on, an evaluation at a time, until it
    is back or the budget ends, so a stopped member's last evaluation always meets the rule that stopped it."""
    extended_from: int | None = None
    """Set by a sweep that extends a member's budget (sweeps/budget.py), not by hand: the budget the member
    was first trained with. Its run_id hashes that budget in place of `epochs`, so a member keeps one
    identity (one runs row, one metrics history) however often its budget grows."""

    # ---- identity ---------------------------------------------------------
    seed: int = 0
    """Master seed; the split, initialisation, noise and batch order get named sub-seeds."""
    name: str = field(default="", compare=False)
    """A label for people; not part of the run id."""

    # ------------------------------------------------------------------------
    def __post_init__(self) -> None:
        _check_types(self)
        if isinstance(self.force_adjacent, list):
            object.__setattr__(self, "force_adjacent", tuple(self.force_adjacent))
        try:  # one spelling per user task, so equal tasks get equal run_ids
            object.__setattr__(self, "task", _task.canonical_task(self.task))
        except _task.TaskError as e:
            raise ConfigError("task", str(e)) from None
        self.validate()

    def validate(self) -> None:
        def need(cond: bool, field_name: str, message: str) -> None:
            if not cond:
                raise ConfigError(field_name, message)

        need(self.p >= 2, "p", f"must be an integer >= 2, got {self.p}")
        task = self.task_def  # raises ConfigError('task', ...) for unknown or unusable tasks
        if task.uses_train_fraction:
            need(0 < self.train_fraction <= 1, "train_fraction", f"must be in (0, 1], got {self.train_fraction}")
        task.check(self)
        if task.needs_op_token:
            need(
                "op" in self.token_layout,
                "layout",
                f"{self.task} needs an op token: one of 'a op b', 'a op b ='; got '{self.token_layout}'",
            )
        if self.noise == "binomial":
            need(
                self.noise_n >= 0 and self.noise_n % 2 == 0,
                "noise_n",
                f"must be an even integer >= 0 (noise = Binomial(n, 1/2) - n/2), got {self.noise_n}",
            )
            need(
                self.noise_n // 2 < self.n_classes,
                "noise_n",
                f"noise_n/2 must be below the number of classes {self.n_classes}, got {self.noise_n}",
            )
        if self.noise == "uniform":
            need(0 <= self.noise_fraction <= 1, "noise_fraction", f"must be in [0, 1], got {self.noise_fraction}")
        if self.noise != "binomial":
            need(self.noise_n == 0, "noise_n", "only used with noise: binomial")
        if self.noise != "uniform":
            need(self.noise_fraction == 0, "noise_fraction", "only used with noise: uniform")
        for name in ("n_layers", "n_heads", "d_model", "d_mlp"):
            need(getattr(self, name) >= 1, name, f"must be an integer >= 1, got {getattr(self, name)}")
        if self.d_head is None:
            need(
                self.d_model % self.n_heads == 0,
                "d_head",
                f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}; set d_head",
            )
        else:
            need(self.d_head >= 1, "d_head", f"must be >= 1 or null, got {self.d_head}")
        need(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        need(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        need(0 <= self.beta1 < 1, "beta1", f"must be in [0, 1), got {self.beta1}")
        need(0 <= self.beta2 < 1, "beta2", f"must be in [0, 1), got {self.beta2}")
        need(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        need(
            self.batch_size is None or self.batch_size >= 1,
            "batch_size",
            f"must be >= 1 or null (full batch), got {self.batch_size}",
        )
        need(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        need(
            self.extended_from is None or 1 <= self.extended_from < self.epochs,
            "extended_from",
            f"must be null or in [1, epochs={self.epochs}), got {self.extended_from}",
        )
        need(self.eval_every >= 1, "eval_every", f"must be >= 1, got {self.eval_every}")
        need(
            self.progress_every >= 0 and self.progress_every % self.eval_every == 0,
            "progress_every",
            f"must be 0 (off) or a multiple of eval_every={self.eval_every}, got {self.progress_every}",
        )
        need(
            self.stop_acc is None or 0 < self.stop_acc <= 1,
            "stop_acc",
            f"must be in (0, 1] or null, got {self.stop_acc}",
        )
        need(self.stop_patience >= 1, "stop_patience", f"must be >= 1, got {self.stop_patience}")
        need(self.stop_extra_epochs >= 0, "stop_extra_epochs", f"must be >= 0, got {self.stop_extra_epochs}")
        need(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        check_split(self)  # an empty train or test set is a config error too

    # ---- derived ----------------------------------------------------------
    @cached_property
    def task_def(self) -> Task:
        """The Task object (grokcore.task): vocabulary, examples, split, subtasks, progress measures.
        Cached per config instance; configs are frozen, and dataclasses.replace builds a new one."""
        try:
            return _task.task_for(self)
        except _task.TaskError as e:
            raise ConfigError("task", str(e)) from None

    def __getstate__(self) -> dict[str, Any]:
        # A user task may hold a lambda; send the fields, the receiver resolves the task again
        # (and recomputes the cached run_id rather than trusting one from elsewhere).
        return {k: v for k, v in self.__dict__.items() if k not in _CACHED}

    @property
    def token_layout(self) -> str:
        return self.layout if self.layout is not None else self.task_def.default_layout

    @property
    def n_ctx(self) -> int:
        return len(self.token_layout.split())

    @property
    def operand_range(self) -> int:
        """Operands a, b run over range(operand_range)."""
        return self.task_def.n_operands

    @property
    def n_classes(self) -> int:
        """Output classes (labels lie in range(n_classes))."""
        return self.task_def.n_classes

    @property
    def d_vocab(self) -> int:
        """Operand tokens, then '=', then the task's op tokens (the seed tasks: '+' then '*')."""
        return self.operand_range + 1 + len(self.task_def.ops)

    @property
    def eq_token(self) -> int:
        return self.operand_range

    def op_token(self, op: str) -> int:
        """The token of the task's op `op` (one of task_def.ops)."""
        return self.operand_range + 1 + self.task_def.ops.index(op)

    @property
    def d_head_(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    def shape_key(self) -> tuple:
        """Members with equal shape keys can share one pack (same tensor shapes and model code)."""
        return (
            self.model,
            self.task,
            self.token_layout,
            self.operand_range,
            self.p,
            self.n_layers,
            self.n_heads,
            self.d_model,
            self.d_head_,
            self.d_mlp,
            self.act,
            self.normalization,
            self.attn_only,
            self.bias,
            self.batch_size,
            self.loss_dtype,
            self.eval_every,
            self.progress_every,
            # minibatch members step together, so they need equal train sets
            self.train_size if self.batch_size is not None else None,
        )

    @property
    def train_size(self) -> int:
        return split_sizes(self)[0]

    # ---- identity ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        # Every field holds a scalar or a tuple of ints, so a shallow read equals dataclasses.asdict
        # (which deep-copies field by field and was most of planning's time at 100k members).
        d = {name: getattr(self, name) for name in _FIELD_NAMES}
        d["force_adjacent"] = list(self.force_adjacent)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        unknown = sorted(set(data) - set(config_fields()))
        if unknown:
            raise ConfigError(unknown[0], f"unknown config field; allowed: {', '.join(config_fields())}")
        return cls(**data)

    @cached_property
    def run_id(self) -> str:
        """Readable prefix plus a stable hash of every field that changes the numbers. Cached: the
        config is frozen, and a sweep asks for each member's id many times (planning, packing,
        skipping finished members); hashing anew each time dominated planning 100k members."""
        digest = hashlib.sha256(json.dumps(self._id_fields(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{_task.run_id_prefix(self.task)}-p{self.p}-{digest}"

    def reseeded(self, seed: int) -> RunConfig:
        """This config with another seed: a sweep's replicates. Only the seed's own check runs again,
        since no other check reads the seed; the run_id is this config's hashed JSON with the seed's
        digits put in (`_id_json_around_seed`), the same text `run_id` would hash. Expanding a
        100k-member sweep with replicates spends a tenth of the time of building each one anew."""
        if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
            raise ConfigError("seed", f"must be an integer >= 0, got {seed!r}")
        new = object.__new__(RunConfig)
        state = new.__dict__  # frozen: fields go in as dataclasses' own __init__ puts them
        state.update(self.__dict__)
        state["seed"] = seed
        prefix, before, after = self._id_json_around_seed
        state["run_id"] = prefix + hashlib.sha256(f"{before}{seed}{after}".encode()).hexdigest()[:12]
        return new

    @cached_property
    def _id_json_around_seed(self) -> tuple[str, str, str]:
        """run_id's readable prefix, and its JSON text split where the seed's value goes (json
        writes an int as str(int))."""
        marker = "\x00seed\x00"
        text = json.dumps({**self._id_fields(), "seed": marker}, sort_keys=True)
        before, after = text.split(json.dumps(marker))
        return f"{_task.run_id_prefix(self.task)}-p{self.p}-", before, after

    def _id_fields(self) -> dict[str, Any]:
        fields = {
            k: v
            for k, v in self.to_dict().items()
            if k not in ID_EXCLUDED_FIELDS and not (k in ID_NEW_FIELDS and v == ID_NEW_FIELDS[k])
        }
        if self.extended_from is not None:  # an extended member keeps the id of its first budget
            fields["epochs"] = fields.pop("extended_from")
        return fields

    def sub_seed(self, purpose: Literal["split", "init", "noise", "batch", "progress"]) -> int:
        """A named sub-seed, so that changing one axis does not reshuffle another."""
        digest = hashlib.sha256(f"{self.seed}/{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def split_sizes(cfg: RunConfig) -> tuple[int, int]:
    """(n_train, n_test) without building anything, so bad configs fail before any training."""
    return cfg.task_def.split_sizes(cfg)


def check_split(cfg: RunConfig) -> None:
    n_train, n_test = split_sizes(cfg)
    if n_train == 0:
        raise ConfigError(
            "train_fraction", f"{cfg.train_fraction} of {cfg.task_def.n_examples} examples is an empty train set"
        )
    if n_test == 0:
        raise ConfigError("train_fraction", f"{cfg.train_fraction} leaves an empty test set; use a fraction below 1")


# Fields that never change a run's numbers.
ID_EXCLUDED_FIELDS = frozenset({"name"})
# Fields added after run_ids were first handed out, with their defaults: left out of the hash while
# at the default, so configs that existed before them keep their run_ids (and old sweeps resume).
ID_NEW_FIELDS: dict[str, Any] = {"init": "tl", "extended_from": None}


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


_FIELD_NAMES = tuple(config_fields())
_CACHED = ("task_def", "run_id", "_id_json_around_seed")  # derived on demand, never pickled


def field_docs(cls: type | None = None) -> dict[str, str]:
    """Per-field docstrings (the string literal under each field) of RunConfig, or of another
    dataclass written the same way (`cls`), for --help and error messages."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls or RunConfig))
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


@functools.cache
def config_hints() -> dict[str, Any]:
    """RunConfig's field annotations, resolved once: `get_type_hints` evaluates every string
    annotation anew on each call, and every RunConfig checks its types with them."""
    return get_type_hints(RunConfig)


def allowed_values(field_name: str) -> tuple | None:
    """The closed set of values of a Literal field, else None."""
    hint = config_hints()[field_name]
    for candidate in (hint, *get_args(hint)):
        if get_origin(candidate) is Literal:
            return get_args(candidate)
    return None


def _check_types(cfg: RunConfig) -> None:
    for name, matches in _type_checkers():
        value = getattr(cfg, name)
        if not matches(value):
            hint = config_hints()[name]
            allowed = allowed_values(name)
            what = f"one of {list(allowed)}" if allowed else _describe(hint)
            raise ConfigError(name, f"must be {what}, got {value!r}")


@functools.cache
def _type_checkers() -> tuple[tuple[str, Callable[[Any], bool]], ...]:
    """(field, value -> bool) per field, built once: reading the hints anew for every config was
    most of the time of expanding a 100k-member sweep."""
    hints = config_hints()
    return tuple((f.name, _checker(hints[f.name])) for f in dataclasses.fields(RunConfig))


def _checker(hint: Any) -> Callable[[Any], bool]:
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        return lambda value: value in allowed
    if origin is not None and str(origin) in ("typing.Union", "<class 'types.UnionType'>"):
        options = tuple(_checker(h) for h in get_args(hint))
        return lambda value: any(check(value) for check in options)
    if hint is type(None):
        return lambda value: value is None
    if origin is tuple:
        return lambda value: (
            isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
    if hint is bool:
        return lambda value: isinstance(value, bool)
    if hint is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return lambda value: isinstance(value, str)
    return lambda value: True


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is not None and str(origin) in ("typing.Union", "<class 'types.UnionType'>"):
        return " or ".join(_describe(h) for h in get_args(hint))
    if hint is type(None):
        return "null"
    if origin is tuple:
        return "a list of integers"
    return {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}.get(hint, str(hint))

"""Sweep specs: one YAML file that names every member of a sweep and how to run it.

    name: wd-vs-fraction            # the sweep's folder under the results location
    base:                           # RunConfig fields shared by every member
      task: add
      p: 23
      epochs: 3000
    axes:                           # one axis per RunConfig field
      train_fraction: [0.3, 0.5, 0.7]          # a grid (a list of values)
      weight_decay: {loguniform: [0.01, 3]}    # random: uniform, loguniform, integers, choice
    samples: 4                      # random draws, each crossed with the whole grid
    replicates: 2                   # seeds base.seed, base.seed + 1, ...
    pack_size: auto                 # or an integer
    resources: {cpus: 1, gpus: 0}   # per trial (= per pack); gpus may be a fraction
    results: results                # a local path, a shared mount or a URI (s3://...)
    checkpoints: true

A spec with a `search:` block (see SearchSpec) asks Optuna for its members instead: the axes are
the search space, and `samples`, `replicates` and `pack_size` give way to the search's budget.

Everything is checked before anything runs: structure here, values by RunConfig itself
(its ConfigError names the field), then every expanded member. A problem raises one
SpecError whose message reads `<spec file>: <where>: <what is wrong and what is allowed>`.

Expansion is deterministic: the same spec always gives the same members in the same order
(random axes draw from named sub-seeds `sample_seed/sample/field`, so adding a grid value or
another axis never changes the draws of the others), which is what lets a rerun find the
members, packs and checkpoints of an earlier run.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import random
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from grokcore.config import ConfigError, RunConfig, allowed_values, config_fields

MAX_MEMBERS = 1_000_000
RANDOM_KINDS = ("uniform", "loguniform", "integers", "choice")

# Top-level keys of a spec, each with its default (None: required or no default).
SPEC_DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "base": {},
    "axes": {},
    "samples": 1,
    "sample_seed": 0,
    "replicates": 1,
    "pack_size": "auto",
    "resources": {"cpus": 1, "gpus": 0},
    "device": "auto",
    "tf32": False,
    "torch_compile": False,
    "results": "results",
    "checkpoints": True,
    "checkpoint_every_s": 60.0,
    "report_every_s": 5.0,
    "max_failures": 2,
    "search": None,
}

SPEC_DOCS: dict[str, str] = {
    "name": "the sweep's name: its folder under the results location ([A-Za-z0-9._-])",
    "description": "free text for people",
    "base": "RunConfig fields shared by every member",
    "axes": "field: [grid values] or {uniform|loguniform|integers: [low, high]} or {choice: [values]}",
    "samples": "random draws of the random axes, each crossed with the whole grid (integer >= 1)",
    "sample_seed": "seed of the random draws (integer >= 0)",
    "replicates": "members per point, with seeds base.seed, base.seed + 1, ... (integer >= 1)",
    "pack_size": "members trained together as one batched model: auto, or an integer >= 1",
    "resources": "per trial: {cpus: number > 0, gpus: number >= 0 (a fraction shares a GPU)}",
    "device": "auto (cuda when the trial has a GPU), cpu or cuda",
    "tf32": "allow TF32 matmuls on CUDA (true/false)",
    "torch_compile": "compile the training step with torch.compile: faster large packs on a GPU after a "
                     "compile on the first epoch (true/false)",
    "results": "where the tables go: a local path, a shared mount or a pyarrow URI (s3://, gs://)",
    "checkpoints": "save each pack's trainer state so resumes and retries continue (true/false)",
    "checkpoint_every_s": "write rows and checkpoint each pack at most this often, in seconds (> 0)",
    "report_every_s": "report progress to Tune at most this often, in seconds (> 0)",
    "max_failures": "retries of a pack whose worker or node dies (integer >= 0)",
    "search": "optional: {kind: optuna | tune-optuna, objective, direction, members, ...}: Optuna picks the "
              "members, the axes are its search space (see SearchSpec)",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpecError(ValueError):
    """A sweep spec that cannot run. The message names the spec file and the field."""

    def __init__(self, source: str, where: str, message: str):
        self.source, self.where, self.message = source, where, message
        super().__init__(f"{source}: {where}: {message}" if where else f"{source}: {message}")


# ---- axes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One axis of a sweep: a field and either grid values or a random distribution."""

    field: str
    kind: str  # "grid" or one of RANDOM_KINDS
    values: tuple  # grid / choice values, or (low, high)

    @property
    def is_random(self) -> bool:
        return self.kind != "grid"

    def draw(self, rng: random.Random) -> Any:
        """One value; only random.random() is used, whose stream is stable across Python versions."""
        u = rng.random()
        if self.kind == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        low, high = self.values
        if self.kind == "integers":
            return min(int(low + math.floor(u * (high - low + 1))), high)
        if self.kind == "uniform":
            return _round(low + u * (high - low))
        return _round(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))  # loguniform

    def describe(self) -> str:
        if self.kind == "grid":
            return f"{len(self.values)} values"
        if self.kind == "choice":
            return f"choice of {len(self.values)}"
        return f"{self.kind} [{self.values[0]}, {self.values[1]}]"


def _round(x: float) -> float:
    """Six significant digits: readable in tables, and exactly reproducible."""
    return float(f"{x:.6g}")



# ---- search (Optuna) ----------------------------------------------------------------------------
SEARCH_KINDS = ("optuna", "tune-optuna")
SAMPLERS = {"tpe": "TPESampler", "gp": "GPSampler", "cmaes": "CmaEsSampler", "random": "RandomSampler",
            "grid": "GridSampler"}
SAMPLER_PACKAGES = {"gp": ("scipy", "torch"), "cmaes": ("cmaes",)}  # imported by Optuna when sampling
PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner"}
SCHEDULERS = ("asha",)
DIRECTIONS = ("minimize", "maximize")
REQUIREMENTS = {"generalised": "epoch_test_99", "memorised": "epoch_train_99",
                "grokked": "epoch_test_99"}  # `grokked`: the older word for generalised, kept so old specs read
# Outcomes of a runs row an objective can use; grok_delay = epoch_test_99 - epoch_train_99.
OUTCOME_METRICS = ("epoch_test_99", "epoch_train_99", "grok_delay", "epochs_trained", "final/test/loss",
                   "final/test/acc", "final/train/loss", "final/train/acc", "wall_seconds")
NULLABLE_METRICS = ("epoch_test_99", "epoch_train_99", "grok_delay")  # null when never reached in the budget
# Metrics of an evaluation that pruning and schedulers can watch (the metrics table's columns).
WATCHED_METRICS = ("test/loss", "test/acc", "train/loss", "train/acc", "train_clean/loss", "train_clean/acc",
                   "test_add/loss", "test_add/acc", "test_mul/loss", "test_mul/acc")

SEARCH_DEFAULTS: dict[str, Any] = {
    "kind": None, "objective": None, "direction": None, "members": None, "batch": None, "sampler": "tpe",
    "seed": 0, "pruning": None, "scheduler": None, "storage": None, "study": None,
}
SEARCH_DOCS: dict[str, str] = {
    "kind": "optuna (packs: each Tune trial asks Optuna for `batch` members) or tune-optuna (Ray's OptunaSearch, "
            "one member per trial, optional Tune scheduler)",
    "objective": "{metric: an outcome or numeric config field, penalty: value of members without it, "
                 "require: generalised | memorised}",
    "direction": "minimize or maximize",
    "members": "members to try in all (the budget; integer >= 1)",
    "batch": "members asked at once and trained as one pack (kind optuna; default 8)",
    "sampler": "tpe (default), gp, cmaes, random or grid; or {kind: tpe, <sampler option>: value, ...}",
    "seed": "the sampler's seed (integer >= 0, or null for a random one)",
    "pruning": "kind optuna: {metric: test/loss, grace_epochs: N, pruner: median | percentile, ...}",
    "scheduler": "kind tune-optuna: {kind: asha, metric: test/loss, grace_epochs: N, reduction_factor: 3}",
    "storage": "an Optuna RDB URL (postgresql://..., sqlite:///path.db); default sqlite:///<results>/<name>/optuna.db",
    "study": "the Optuna study name (default: the sweep's name)",
}


def metric_direction(metric: str) -> str:
    """Accuracies are maximised; losses (and everything else) minimised."""
    return "maximize" if metric.endswith("/acc") else "minimize"


@dataclass(frozen=True)
class Objective:
    """What one member scores, from its runs row.

    `metric` is an outcome (OUTCOME_METRICS) or a numeric config field. A member whose metric is
    null or not finite (never grokked, diverged), or that misses `require`, scores `penalty`;
    without a penalty such a member counts as failed for the search."""

    metric: str
    penalty: float | None = None
    require: str | None = None  # generalised | memorised (grokked: an alias of generalised)

    def value(self, row: dict[str, Any]) -> float | None:
        if self.require is not None and row.get(REQUIREMENTS[self.require]) is None:
            return self.penalty
        if self.metric == "grok_delay":
            test, train = row.get("epoch_test_99"), row.get("epoch_train_99")
            value = None if test is None or train is None else test - train
        else:
            value = row.get(self.metric)
        if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
            return self.penalty
        return float(value)

    def describe(self) -> str:
        text = self.metric
        if self.require:
            text += f" of {self.require} members"
        if self.penalty is not None:
            text += f" (else {self.penalty:g})"
        return text


@dataclass(frozen=True)
class Pruning:
    """Optuna pruning of members on `metric` at their evaluations; never before grace_epochs."""

    metric: str
    grace_epochs: int
    pruner: str = "median"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def direction(self) -> str:
        return metric_direction(self.metric)


@dataclass(frozen=True)
class Scheduler:
    """A Tune trial scheduler for kind tune-optuna (ASHA on `metric`, time in epochs)."""

    kind: str
    metric: str
    grace_epochs: int
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class SearchSpec:
    kind: str
    objective: Objective
    direction: str
    members: int
    batch: int = 8
    sampler: str = "tpe"
    sampler_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = 0
    pruning: Pruning | None = None
    scheduler: Scheduler | None = None
    storage: str | None = None
    study: str | None = None

    def storage_url(self, sweep_uri: str) -> str:
        """The study's RDB URL: the spec's, else an SQLite file in the sweep's folder (local only)."""
        if self.storage:
            return self.storage
        if "://" in sweep_uri:
            raise ValueError(f"results {sweep_uri} is not a local path, so the default SQLite study cannot live "
                             "there; set search.storage (postgresql://... or sqlite:////a/local/file.db)")
        return f"sqlite:///{sweep_uri}/optuna.db"

# ---- the spec -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSpec:
    name: str
    source: str  # the file it came from (for messages)
    text: str  # the spec exactly as written
    base: dict[str, Any]
    axes: tuple[Axis, ...]
    description: str = ""
    samples: int = 1
    sample_seed: int = 0
    replicates: int = 1
    pack_size: int | None = None  # None: auto
    cpus: float = 1.0
    gpus: float = 0.0
    device: str = "auto"
    tf32: bool = False
    torch_compile: bool = False
    results: str = "results"
    checkpoints: bool = True
    checkpoint_every_s: float = 60.0
    report_every_s: float = 5.0
    max_failures: int = 2
    search: SearchSpec | None = None

    @property
    def grid_axes(self) -> list[Axis]:
        return [a for a in self.axes if not a.is_random]

    @property
    def random_axes(self) -> list[Axis]:
        return [a for a in self.axes if a.is_random]

    def n_members(self) -> int:
        if self.search is not None:
            return self.search.members
        return math.prod(len(a.values) for a in self.grid_axes) * self.samples * self.replicates

    def points(self) -> Iterator[dict[str, Any]]:
        """Field overrides of every member in order: samples, then the grid, then replicates."""
        grid = self.grid_axes
        for s in range(self.samples):
            drawn = {a.field: a.draw(random.Random(f"{self.sample_seed}/{s}/{a.field}")) for a in self.random_axes}
            for values in itertools.product(*(a.values for a in grid)):
                point = {**drawn, **{a.field: v for a, v in zip(grid, values)}}
                for r in range(self.replicates):
                    if self.replicates > 1:
                        yield {**point, "seed": self.base.get("seed", 0) + r}
                    else:
                        yield point

    def members(self) -> list[RunConfig]:
        """Every member's RunConfig, validated; raises SpecError naming the spec and the field.
        A search spec has no fixed members (the search asks for them; see `member`)."""
        if self.search is not None:
            raise TypeError(f"{self.source}: a search spec has no fixed members; its search picks them "
                            "(sweeps.optuna_search)")
        members: list[RunConfig] = []
        seen: dict[str, dict[str, Any]] = {}
        axis_fields = {a.field for a in self.axes}
        for point in self.points():
            try:
                cfg = RunConfig(**{**self.base, **point})
            except ConfigError as e:
                where = _where(e.field_name, axis_fields, self.base, self.replicates)
                at = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise SpecError(self.source, where, f"{_bare(e)} (at {at})" if at else _bare(e)) from None
            if cfg.run_id in seen:
                raise SpecError(self.source, "axes", f"two members are the same run ({seen[cfg.run_id]} and {point}): "
                                                     "an axis repeats a value or varies a field that has no effect")
            seen[cfg.run_id] = point
            members.append(cfg)
        return members

    def member(self, params: dict[str, Any]) -> RunConfig:
        """The member at these axis values (a point of the search space), on top of base."""
        try:
            return RunConfig(**{**self.base, **{k: _coerce(k, v) for k, v in params.items()}})
        except ConfigError as e:
            at = ", ".join(f"{k}={v!r}" for k, v in params.items())
            where = f"axes.{e.field_name}" if e.field_name in params else f"base.{e.field_name}"
            raise SpecError(self.source, where, f"{_bare(e)} (at {at})") from None

    def with_base(self, overrides: dict[str, Any]) -> SweepSpec:
        """The spec with these base fields set (an axis over one of them is dropped)."""
        axes = tuple(a for a in self.axes if a.field not in overrides)
        base = {**self.base, **{k: _coerce(k, v) for k, v in overrides.items()}}
        spec = dataclasses.replace(self, base=base, axes=axes)
        _check_values(spec)
        return spec


def _where(field: str, axis_fields: set[str], base: dict[str, Any], replicates: int) -> str:
    if field in axis_fields:
        return f"axes.{field}"
    if field == "seed" and replicates > 1:
        return "replicates"
    return f"base.{field}"


def _bare(e: ConfigError) -> str:
    """ConfigError's message without its leading 'field: '."""
    text = str(e)
    prefix = f"{e.field_name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


# ---- loading ------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader that reads 1e-3 as a float (YAML 1.1 wants 1.0e-3, a classic trap)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), "", f"cannot read: {e.strerror or e}") from None
    return parse_spec(text, source=str(path))


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    """Parse and validate spec text; every problem is a SpecError naming `source`."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_duplicate_keys(node, source, [])
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise SpecError(source, where, f"not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise SpecError(source, "", f"must be a mapping with at least 'name' and 'base'; got {type(data).__name__}")
    return _build(data, text, source)


def _check_duplicate_keys(node: yaml.Node, source: str, path: list[str]) -> None:
    """PyYAML silently keeps the last of two equal keys; a repeated axis must be an error."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in seen:
                where = ".".join([*path, str(key)])
                if path == ["axes"]:
                    what = f"two axes over one field (lines {seen[key]} and {line}); give one axis with all its values"
                else:
                    what = f"set twice (lines {seen[key]} and {line}); keep one"
                raise SpecError(source, where, what)
            if key is not None:
                seen[key] = line
            _check_duplicate_keys(value_node, source, [*path, str(key)])
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, source, path)


def _unknown(source: str, where: str, key: str, allowed: list[str], what: str) -> SpecError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return SpecError(source, where, f"unknown {what}; {hint}allowed: {', '.join(allowed)}")


def _build(data: dict[str, Any], text: str, source: str) -> SweepSpec:
    for key in data:
        if key not in SPEC_DEFAULTS:
            raise _unknown(source, str(key), str(key), list(SPEC_DEFAULTS), "key")
    get = {k: (data[k] if k in data and data[k] is not None else v) for k, v in SPEC_DEFAULTS.items()}

    def bad(key: str, what: str) -> SpecError:
        return SpecError(source, key, f"must be {what}, got {data.get(key)!r}")

    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecError(source, "name", f"required: a name of letters, digits, '.', '_' or '-', got {name!r}")
    if not isinstance(get["description"], str):
        raise bad("description", "a string")
    ints = {"samples": 1, "sample_seed": 0, "replicates": 1, "max_failures": 0}
    for key, low in ints.items():
        if not _is_int(get[key]) or get[key] < low:
            raise bad(key, f"an integer >= {low}")
    for key in ("checkpoint_every_s", "report_every_s"):
        if not _is_number(get[key]) or get[key] <= 0:
            raise bad(key, "a number > 0 (seconds)")
    for key in ("tf32", "torch_compile", "checkpoints"):
        if not isinstance(get[key], bool):
            raise bad(key, "true or false")
    if not isinstance(get["results"], str) or not get["results"]:
        raise bad("results", "a path or a URI")
    if get["device"] not in ("auto", "cpu", "cuda"):
        raise bad("device", "one of auto, cpu, cuda")
    pack_size = get["pack_size"]
    if pack_size == "auto":
        pack_size = None
    elif not _is_int(pack_size) or pack_size < 1:
        raise bad("pack_size", "auto or an integer >= 1")

    resources = get["resources"]
    if not isinstance(resources, dict):
        raise bad("resources", "a mapping {cpus: N, gpus: N}")
    for key in resources:
        if key not in ("cpus", "gpus"):
            raise _unknown(source, f"resources.{key}", str(key), ["cpus", "gpus"], "resource")
    cpus, gpus = resources.get("cpus", 1), resources.get("gpus", 0)
    if not _is_number(cpus) or cpus <= 0:
        raise SpecError(source, "resources.cpus", f"must be a number > 0, got {cpus!r}")
    if not _is_number(gpus) or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise SpecError(source, "resources.gpus", f"must be a fraction in [0, 1] or a whole number, got {gpus!r}")
    if get["device"] == "cuda" and gpus == 0:
        raise SpecError(source, "device", "cuda needs resources.gpus > 0")

    fields = config_fields()
    base = get["base"]
    if not isinstance(base, dict):
        raise bad("base", "a mapping of RunConfig fields")
    for key in base:
        if key not in fields:
            raise _unknown(source, f"base.{key}", str(key), fields, "config field")
    base = {k: _coerce(k, v) for k, v in base.items()}
    try:
        RunConfig(**base)
    except ConfigError as e:
        raise SpecError(source, f"base.{e.field_name}", _bare(e)) from None

    raw_axes = get["axes"]
    if not isinstance(raw_axes, dict):
        raise bad("axes", "a mapping of field: values")
    axes = tuple(_parse_axis(source, str(k), v, fields) for k, v in raw_axes.items())
    for axis in axes:
        if axis.field in base:
            raise SpecError(source, f"axes.{axis.field}", "also set in base; set a field in one place")
    if any(a.field == "seed" for a in axes) and get["replicates"] > 1:
        raise SpecError(source, "replicates", "a seed axis and replicates > 1 both set seeds; use one of them")
    search = None
    if get["search"] is not None:
        search = _parse_search(source, get["search"], base, axes, get["results"])
        for key, why in (("samples", "search.members is the budget"), ("replicates", "each member is one point"),
                         ("pack_size", "search.batch sets the members per pack")):
            if key in data and data[key] is not None and data[key] != SPEC_DEFAULTS[key]:
                raise SpecError(source, key, f"not used with a search ({why}); remove it")
    elif get["samples"] > 1 and not any(a.is_random for a in axes):
        raise SpecError(source, "samples", "draws of random axes, but no axis is random; use replicates for seeds")

    spec = SweepSpec(
        name=name, source=source, text=text, base=dict(base), axes=axes, description=get["description"],
        samples=get["samples"], sample_seed=get["sample_seed"], replicates=get["replicates"], pack_size=pack_size,
        cpus=float(cpus), gpus=float(gpus), device=get["device"], tf32=get["tf32"],
        torch_compile=get["torch_compile"], results=get["results"],
        checkpoints=get["checkpoints"], checkpoint_every_s=float(get["checkpoint_every_s"]),
        report_every_s=float(get["report_every_s"]), max_failures=get["max_failures"], search=search,
    )
    if search is not None:
        spec = dataclasses.replace(spec, pack_size=search.batch)
    _check_values(spec)
    return spec


# ---- the search block ---------------------------------------------------------------------------
_STORAGE_RE = re.compile(r"^(sqlite|postgresql|postgres|mysql)(\+[A-Za-z0-9_]+)?://")


def _parse_search(source: str, raw: Any, base: dict[str, Any], axes: tuple[Axis, ...], results: str) -> SearchSpec:
    """The `search:` block, checked against base and the axes (its search space)."""
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise SpecError(source, "search", f"must be a mapping {{kind: optuna, objective: ..., direction: ..., "
                                          f"members: N, ...}}, got {raw!r}")
    for key in raw:
        if key not in SEARCH_DEFAULTS:
            raise _unknown(source, f"search.{key}", str(key), list(SEARCH_DEFAULTS), "search key")
    get = {k: (raw[k] if raw.get(k) is not None else v) for k, v in SEARCH_DEFAULTS.items()}
    kind = get["kind"]
    if kind not in SEARCH_KINDS:
        if kind is None:
            raise SpecError(source, "search.kind", f"required: one of {', '.join(SEARCH_KINDS)}")
        raise _unknown(source, "search.kind", str(kind), list(SEARCH_KINDS), f"search kind '{kind}'")
    fields = config_fields()
    numeric_fields = [f for f in fields if _field_kind(f) in ("int", "float")]

    # the objective
    obj = get["objective"]
    if isinstance(obj, str):
        obj = {"metric": obj}
    if not isinstance(obj, dict) or "metric" not in obj:
        raise SpecError(source, "search.objective", "required: {metric: ..., penalty: ..., require: ...}, "
                                                    f"got {obj!r}")
    for key in obj:
        if key not in ("metric", "penalty", "require"):
            raise _unknown(source, f"search.objective.{key}", str(key), ["metric", "penalty", "require"], "key")
    metric = obj["metric"]
    allowed = [*OUTCOME_METRICS, *numeric_fields]
    if metric not in allowed:
        raise _unknown(source, "search.objective.metric", str(metric), allowed,
                       f"metric '{metric}': an objective is an outcome of the runs table or a numeric config field")
    require = obj.get("require")
    if require is not None and require not in REQUIREMENTS:
        raise _unknown(source, "search.objective.require", str(require), list(REQUIREMENTS), f"requirement '{require}'")
    penalty = obj.get("penalty")
    if penalty is not None and not _is_number(penalty):
        raise SpecError(source, "search.objective.penalty", f"must be a finite number, got {penalty!r}")
    if penalty is None and (metric in NULLABLE_METRICS or require is not None):
        why = (f"require: {require} fails for some members" if require is not None
               else f"{metric} is null for members that never reach it")
        raise SpecError(source, "search.objective.penalty", f"required: {why}; give the value they score "
                                                            "(worse than any real value)")
    direction = get["direction"]
    if direction not in DIRECTIONS:
        if direction is None:
            raise SpecError(source, "search.direction", "required: minimize or maximize")
        raise _unknown(source, "search.direction", str(direction), list(DIRECTIONS), f"direction '{direction}'")
    max_epochs = max([base.get("epochs", RunConfig.epochs)]
                     + [v for a in axes if a.field == "epochs" for v in a.values if _is_int(v)])
    if metric in NULLABLE_METRICS and direction == "minimize" and penalty is not None and penalty <= max_epochs:
        raise SpecError(source, "search.objective.penalty", f"{penalty:g} would score members that never reach "
                        f"{metric} better than some that do: use more than the epoch budget {max_epochs}")

    # budget and packs
    members = get["members"]
    if not _is_int(members) or members < 1:
        raise SpecError(source, "search.members", f"required: the number of members to try (integer >= 1), "
                                                  f"got {members!r}")
    batch = get["batch"]
    if kind == "tune-optuna":
        if batch not in (None, 1):
            raise SpecError(source, "search.batch", "tune-optuna trains one member per trial; use kind: optuna "
                                                    "for packs")
        batch = 1
    elif batch is None:
        batch = min(8, members)
    elif not _is_int(batch) or batch < 1:
        raise SpecError(source, "search.batch", f"must be an integer >= 1, got {batch!r}")
    seed = get["seed"]
    if "seed" in raw and raw["seed"] is None:
        seed = None
    elif not _is_int(seed) or seed < 0:
        raise SpecError(source, "search.seed", f"must be an integer >= 0 or null, got {seed!r}")

    # the search space
    if not axes:
        raise SpecError(source, "axes", "a search needs a search space: give at least one axis")
    sampler, options = _parse_sampler(source, get["sampler"], axes)
    if sampler == "grid":
        points = math.prod(a.values[1] - a.values[0] + 1 if a.kind == "integers" else len(a.values) for a in axes)
        if members > points:
            raise SpecError(source, "search.members", f"{members} is more than the grid's {points} points; "
                                                      f"use members: {points} or widen the axes")

    # pruning (optuna) or a Tune scheduler (tune-optuna)
    pruning = scheduler = None
    if get["pruning"] is not None:
        if kind != "optuna":
            raise SpecError(source, "search.pruning", "kind tune-optuna stops trials with a Tune scheduler; "
                                                      "use search.scheduler")
        pruning = _parse_pruning(source, get["pruning"], max_epochs)
    if get["scheduler"] is not None:
        if kind != "tune-optuna":
            raise SpecError(source, "search.scheduler", "a Tune scheduler needs kind: tune-optuna (one member per "
                                                        "trial); kind optuna prunes members with search.pruning")
        scheduler = _parse_scheduler(source, get["scheduler"], max_epochs)

    storage = get["storage"]
    if storage is not None and (not isinstance(storage, str) or not _STORAGE_RE.match(storage)):
        raise SpecError(source, "search.storage", "must be an Optuna RDB URL: postgresql://user@host/db, "
                                                  f"mysql://..., or sqlite:///path.db; got {storage!r}")
    if storage is None and "://" in results:
        raise SpecError(source, "search.storage", f"required when results is a URI ({results}): the default SQLite "
                                                  "file needs a local disk; give postgresql://... ")
    study = get["study"]
    if study is not None and (not isinstance(study, str) or not study):
        raise SpecError(source, "search.study", f"must be a study name, got {study!r}")
    return SearchSpec(kind=kind, objective=Objective(metric, None if penalty is None else float(penalty), require),
                      direction=direction, members=members, batch=batch, sampler=sampler, sampler_options=options,
                      seed=seed, pruning=pruning, scheduler=scheduler, storage=storage, study=study)


def _parse_sampler(source: str, raw: Any, axes: tuple[Axis, ...]) -> tuple[str, dict[str, Any]]:
    where = "search.sampler"
    if isinstance(raw, dict):
        options = dict(raw)
        name = options.pop("kind", None)
    else:
        name, options = raw, {}
    if name not in SAMPLERS:
        raise _unknown(source, where, str(name), list(SAMPLERS), f"sampler '{name}'")
    if name == "grid":
        continuous = [a.field for a in axes if a.kind in ("uniform", "loguniform")]
        if continuous:
            raise SpecError(source, where, f"grid needs every axis to be a list of values (or choice, integers); "
                                           f"axes.{continuous[0]} is continuous")
    import importlib.util

    for package in SAMPLER_PACKAGES.get(name, ()):
        if importlib.util.find_spec(package) is None:
            raise SpecError(source, where, f"{name} needs the package '{package}' (pip install {package})")
    if options:
        import inspect

        import optuna

        cls = getattr(optuna.samplers, SAMPLERS[name])
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "seed", "search_space")]
        for key in options:
            if key not in params:
                raise _unknown(source, f"{where}.{key}", str(key), params, f"option of {cls.__name__}")
    return name, options


def _parse_pruning(source: str, raw: Any, max_epochs: int) -> Pruning:
    where = "search.pruning"
    if not isinstance(raw, dict):
        raise SpecError(source, where, f"must be {{metric: test/loss, grace_epochs: N, pruner: median}}, got {raw!r}")
    options = dict(raw)
    metric = options.pop("metric", "test/loss")
    grace = options.pop("grace_epochs", None)
    pruner = options.pop("pruner", "median")
    if metric not in WATCHED_METRICS:
        raise _unknown(source, f"{where}.metric", str(metric), list(WATCHED_METRICS), f"metric '{metric}'")
    _check_grace(source, f"{where}.grace_epochs", grace, metric, max_epochs)
    if pruner not in PRUNERS:
        raise _unknown(source, f"{where}.pruner", str(pruner), list(PRUNERS), f"pruner '{pruner}'")
    import inspect

    import optuna

    cls = getattr(optuna.pruners, PRUNERS[pruner])
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_warmup_steps")]
    for key in options:
        if key not in params:
            raise _unknown(source, f"{where}.{key}", str(key), ["metric", "grace_epochs", "pruner", *params],
                           f"option of {cls.__name__}")
    try:
        cls(**options)
    except (TypeError, ValueError) as e:
        raise SpecError(source, where, f"{cls.__name__}: {e}") from None
    return Pruning(metric=metric, grace_epochs=grace, pruner=pruner, options=options)


def _parse_scheduler(source: str, raw: Any, max_epochs: int) -> Scheduler:
    where = "search.scheduler"
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise SpecError(source, where, f"must be {{kind: asha, metric: test/loss, grace_epochs: N}}, got {raw!r}")
    keys = ["kind", "metric", "grace_epochs", "reduction_factor"]
    for key in raw:
        if key not in keys:
            raise _unknown(source, f"{where}.{key}", str(key), keys, "scheduler key")
    kind = raw.get("kind", "asha")
    if kind not in SCHEDULERS:
        raise _unknown(source, f"{where}.kind", str(kind), list(SCHEDULERS), f"scheduler '{kind}'")
    metric = raw.get("metric", "test/loss")
    if metric not in WATCHED_METRICS:
        raise _unknown(source, f"{where}.metric", str(metric), list(WATCHED_METRICS), f"metric '{metric}'")
    grace = raw.get("grace_epochs")
    _check_grace(source, f"{where}.grace_epochs", grace, metric, max_epochs)
    factor = raw.get("reduction_factor", 3)
    if not _is_number(factor) or factor <= 1:
        raise SpecError(source, f"{where}.reduction_factor", f"must be a number > 1, got {factor!r}")
    return Scheduler(kind=kind, metric=metric, grace_epochs=grace, reduction_factor=float(factor))


def _check_grace(source: str, where: str, grace: Any, metric: str, max_epochs: int) -> None:
    """Grokking runs sit at chance on test until late: stopping on test metrics needs a grace period."""
    if grace is None:
        raise SpecError(source, where, "required: epochs before anything is pruned (grokking runs sit at chance "
                                       "on test until late, so give them time)")
    if not _is_int(grace) or grace < 0:
        raise SpecError(source, where, f"must be an integer >= 0 (epochs), got {grace!r}")
    if grace == 0 and metric.startswith("test"):
        raise SpecError(source, where, f"must be > 0 for {metric}: grokking runs sit at chance on test until late")
    if grace >= max_epochs:
        raise SpecError(source, where, f"{grace} is not below the epoch budget {max_epochs}: nothing would ever be "
                                       "pruned; lower it or remove pruning")


def _check_values(spec: SweepSpec) -> None:
    """Each axis value alone against base (so a bad value is named by its axis), then the size."""
    for axis in spec.axes:
        values = axis.values
        for value in values:
            try:
                RunConfig(**{**spec.base, axis.field: value})
            except ConfigError as e:
                msg = _bare(e) if e.field_name == axis.field else f"{value!r} is not allowed here: {e}"
                raise SpecError(spec.source, f"axes.{axis.field}", msg) from None
    n = spec.n_members()
    if n > MAX_MEMBERS:
        raise SpecError(spec.source, "axes", f"expands to {n:,} members; at most {MAX_MEMBERS:,} are allowed")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _field_kind(field: str) -> str:
    """int, float, bool, str, list or other, from RunConfig's annotation."""
    hint = get_type_hints(RunConfig)[field]
    union = get_origin(hint) in (Union, types.UnionType)
    options = [h for h in (get_args(hint) if union else (hint,)) if h is not type(None)]
    if allowed_values(field) is not None:
        return "literal"
    for h in options:
        if h is bool:
            return "bool"
        if h is int:
            return "int"
        if h is float:
            return "float"
        if get_origin(h) is tuple:
            return "list"
        if h is str:
            return "str"
    return "other"


_KIND_WORDS = {"int": "an integer", "float": "a real-valued", "bool": "a true/false", "str": "a text",
               "literal": "a closed-choice", "list": "a list", "other": "a"}


def _parse_axis(source: str, field: str, raw: Any, fields: list[str]) -> Axis:
    where = f"axes.{field}"
    if field not in fields:
        raise _unknown(source, where, field, fields, "config field: an axis must be over a RunConfig field")
    kind = _field_kind(field)
    if isinstance(raw, list):
        raw = {"grid": raw}
    forms = "a list of values, or one of {grid: [...]}, {choice: [...]}, {uniform|loguniform|integers: [low, high]}"
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SpecError(source, where, f"must be {forms}; got {raw!r}")
    (dist, args), = raw.items()
    if dist not in ("grid", *RANDOM_KINDS):
        raise _unknown(source, where, str(dist), ["grid", *RANDOM_KINDS], f"axis kind '{dist}'")
    if dist in ("grid", "choice"):
        if not isinstance(args, list) or not args:
            raise SpecError(source, where, f"{dist} needs a non-empty list of values, got {args!r}")
        values = tuple(_coerce(field, tuple(v) if isinstance(v, list) else v) for v in args)
        for i, v in enumerate(values):
            if v in values[:i]:
                raise SpecError(source, where, f"the value {v!r} appears twice")
        return Axis(field, dist, values)
    if not (isinstance(args, list) and len(args) == 2 and all(_is_number(x) for x in args)):
        raise SpecError(source, where, f"{dist} needs [low, high] (two numbers), got {args!r}")
    low, high = args
    if dist == "integers":
        if kind != "int":
            raise SpecError(source, where, f"integers draws integers, but {field} is {_KIND_WORDS[kind]} field")
        if not (_is_int(low) and _is_int(high)) or low > high:
            raise SpecError(source, where, f"integers needs integers low <= high, got {args!r}")
    else:
        if kind != "float":
            use = "integers or choice" if kind == "int" else "choice or a grid"
            raise SpecError(source, where, f"{dist} draws real numbers, but {field} is {_KIND_WORDS[kind]} field; use {use}")
        if not low < high:
            raise SpecError(source, where, f"{dist} needs low < high, got {args!r}")
        if dist == "loguniform" and low <= 0:
            raise SpecError(source, where, f"loguniform needs 0 < low < high, got {args!r}")
    return Axis(field, dist, (_coerce(field, low), _coerce(field, high)))


def _coerce(field: str, value: Any) -> Any:
    """1 and 1.0 of a float field are the same run; make them the same value (and run_id)."""
    if _is_int(value) and _field_kind(field) == "float":
        return float(value)
    return value

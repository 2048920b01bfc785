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

A spec with a `search:` block asks a search for its members instead (Optuna, or a bisection; the
block is read by its kind's parser, listed in sweeps/sources.py): the axes are the search space,
and `samples`, `replicates` and `pack_size` give way to the search's budget.

Everything is checked before anything runs: structure here, values by RunConfig itself
(its ConfigError names the field), then every expanded member. A problem raises one
SpecError whose message reads `<spec file>: <where>: <what is wrong and what is allowed>`.

Expansion is deterministic: the same spec always gives the same members in the same order
(random axes draw from named sub-seeds `sample_seed/sample/field`, so adding a grid value or
another axis never changes the draws of the others), which is what lets a rerun find the
members, packs and checkpoints of an earlier run.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grokcore.config import ConfigError, RunConfig, config_fields, field_docs
from grokcore.layout import SPEC_FILE
from grokcore.verdict import FIELDS as THRESHOLD_FIELDS
from grokcore.verdict import Thresholds, ThresholdsError
from sweeps import sources
from sweeps.validation import SpecError, bare, coerce, field_kind, is_int, is_number, unknown

MAX_MEMBERS = 1_000_000
RANDOM_KINDS = ("uniform", "loguniform", "integers", "choice")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


# ---- the spec -----------------------------------------------------------------------------------
def _setting(default: Any, check: Any, must: str, **metadata: Any) -> Any:
    """A SweepSpec field whose spec value `check` accepts; otherwise `<key>: must be <must>, got ...`."""
    return field(default=default, metadata={"check": check, "must": must, **metadata})


def _int_at_least(default: int, low: int) -> Any:
    return _setting(default, lambda v: is_int(v) and v >= low, f"an integer >= {low}")


def _seconds(default: float) -> Any:
    return _setting(default, lambda v: is_number(v) and v > 0, "a number > 0 (seconds)")


def _flag(default: bool) -> Any:
    return _setting(default, lambda v: isinstance(v, bool), "true or false")


@dataclass(frozen=True)
class SweepSpec:
    """A validated spec. Its fields are the one list of spec settings: the docstring under each is
    what `grok sweep --help` shows, SPEC_DEFAULTS and SPEC_DOCS are read from them, and PackSettings
    takes the trial's settings from them by name. `key` in a field's metadata is its spec key where
    that differs from the field's name; `spec_default` how the default reads in YAML; `check` and
    `must` the plain settings' validation (the rest, which depend on each other, in _build)."""

    name: str
    """the sweep's name: its folder under the results location ([A-Za-z0-9._-])"""
    source: str = field(metadata={"internal": True})  # the file it came from (for messages)
    text: str = field(metadata={"internal": True})  # the spec exactly as run
    base: dict[str, Any] = field(metadata={"spec_default": {}})
    """RunConfig fields shared by every member"""
    axes: tuple[Axis, ...] = field(metadata={"spec_default": {}})
    """field: [grid values] or {uniform|loguniform|integers: [low, high]} or {choice: [values]}"""
    description: str = _setting("", lambda v: isinstance(v, str), "a string")
    """free text for people"""
    samples: int = _int_at_least(1, 1)
    """random draws of the random axes, each crossed with the whole grid (integer >= 1)"""
    sample_seed: int = _int_at_least(0, 0)
    """seed of the random draws (integer >= 0)"""
    replicates: int = _int_at_least(1, 1)
    """members per point, with seeds base.seed, base.seed + 1, ... (integer >= 1)"""
    pack_size: int | None = field(default=None, metadata={"spec_default": "auto"})
    """members trained together as one batched model: auto, or an integer >= 1"""
    cpus: float = field(default=1.0, metadata={"key": "resources.cpus", "spec_default": 1})
    """CPU cores per trial (= per pack), a number > 0"""
    gpus: float = field(default=0.0, metadata={"key": "resources.gpus", "spec_default": 0})
    """GPUs per trial, a number >= 0 (a fraction shares a GPU; Ray's fractions do not split its memory)"""
    device: str = _setting("auto", lambda v: v in ("auto", "cpu", "cuda"), "one of auto, cpu, cuda")
    """auto (cuda when the trial has a GPU), cpu or cuda"""
    tf32: bool = _flag(False)
    """allow TF32 matmuls on CUDA (true/false)"""
    torch_compile: bool = _flag(False)
    """compile the training step with torch.compile: faster large packs on a GPU after a compile on the
    first epoch (true/false)"""
    results: str = _setting("results", lambda v: isinstance(v, str) and bool(v), "a path or a URI")
    """where the tables go: a local path, a shared mount or a pyarrow URI (s3://, gs://)"""
    checkpoints: bool = _flag(True)
    """save each pack's trainer state so resumes and retries continue (true/false)"""
    checkpoint_every_s: float = _seconds(60.0)
    """write rows and checkpoint each pack at most this often, in seconds (> 0)"""
    report_every_s: float = _seconds(5.0)
    """report progress to Tune at most this often, in seconds (> 0)"""
    max_failures: int = _int_at_least(2, 0)
    """retries of a pack whose worker or node dies (integer >= 0)"""
    snapshots: dict[str, Any] | None = None
    """optional: members' weights to keep, {every: N, epochs: [..], log_points: N, events: [train_99,
    test_99, end], dtype: float32 | float16 | bfloat16}; stored under snapshots/ (grokcore/snapshots.py)"""
    thresholds: Thresholds = field(default=Thresholds(), metadata={"spec_default": None})
    """optional: what counts as memorised, generalised and grokked, {train_acc, test_acc, hold, grok_delay,
    grok_ratio, budget} (grokcore/verdict.py); the runs rows, grok status, searches and the report use it"""
    trackers: dict[str, Any] | None = None
    """optional: log every member as its own run while the sweep runs, {mlflow: TRACKING_URI | null, wandb: DIR |
    null, tensorboard: LOGDIR, every_s: 30}; pushed from the committed rows (sweeps/trackers.py, grok push)"""
    budget: Any = None  # sweeps.budget.Budget, or None
    """optional: an adaptive budget {epochs: E, max_epochs: M, factor: 2}: members start with E epochs, and
    those that end undecided (not generalised, not diverged) go on from their end states in rounds, their
    budget times factor each round, up to M, within the same grok sweep (sweeps/budget.py)"""
    end_states: bool = _flag(True)
    """keep each member's end state (weights and Adam moments) when it ends at its budget, so that a larger
    budget continues it instead of retraining it (true/false; about 3x a member's float32 weights each)"""
    search: Any = None  # the search block its kind's parser read (sweeps/sources.py), or None
    """optional: {kind: optuna | tune-optuna | bisection, ...}: a search picks the members, the axes are its
    search space (sweeps/optuna_spec.py, sweeps/bisection_source.py)"""

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
                point = {**drawn, **{a.field: v for a, v in zip(grid, values, strict=True)}}
                for r in range(self.replicates):
                    if self.replicates > 1:
                        yield {**point, "seed": self.base.get("seed", 0) + r}
                    else:
                        yield point

    def members(self) -> list[RunConfig]:
        """Every member's RunConfig, validated; raises SpecError naming the spec and the field.
        A search spec has no fixed members (the search asks for them; see `member`)."""
        if self.search is not None:
            raise TypeError(
                f"{self.source}: a search spec has no fixed members; its search picks them (sweeps/sources.py)"
            )
        cached = self.__dict__.get("_members")
        if cached is not None:  # `grok sweep` checks the members, then plans them: expand once
            return list(cached)
        members: list[RunConfig] = []
        seen: dict[str, dict[str, Any]] = {}
        axis_fields = {a.field for a in self.axes}
        # replicates differ only in their seed: one config per point is checked in full, its replicates
        # are copies with another seed (RunConfig.reseeded), 100x fewer checks at 100 replicates
        first: RunConfig | None = None
        for i, point in enumerate(self.points()):
            try:
                if self.replicates > 1 and i % self.replicates:  # points() yields replicates innermost
                    cfg = first.reseeded(point["seed"])  # type: ignore[union-attr]
                else:
                    cfg = first = RunConfig(**{**self.base, **point})
            except ConfigError as e:
                where = _where(e.field_name, axis_fields, self.base, self.replicates)
                at = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise SpecError(self.source, where, f"{bare(e)} (at {at})" if at else bare(e)) from None
            if cfg.run_id in seen:
                raise SpecError(
                    self.source,
                    "axes",
                    f"two members are the same run ({seen[cfg.run_id]} and {point}): "
                    "an axis repeats a value or varies a field that has no effect",
                )
            seen[cfg.run_id] = point
            members.append(cfg)
        object.__setattr__(self, "_members", tuple(members))  # frozen; a replace() starts without it
        return members

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_members"}

    def member(self, params: dict[str, Any]) -> RunConfig:
        """The member at these axis values (a point of the search space), on top of base."""
        try:
            return RunConfig(**{**self.base, **{k: coerce(k, v) for k, v in params.items()}})
        except ConfigError as e:
            at = ", ".join(f"{k}={v!r}" for k, v in params.items())
            where = f"axes.{e.field_name}" if e.field_name in params else f"base.{e.field_name}"
            raise SpecError(self.source, where, f"{bare(e)} (at {at})") from None

    def with_base(self, overrides: dict[str, Any]) -> SweepSpec:
        """The spec with these base fields set (an axis over one of them is dropped)."""
        axes = tuple(a for a in self.axes if a.field not in overrides)
        base = {**self.base, **{k: coerce(k, v) for k, v in overrides.items()}}
        spec = dataclasses.replace(self, base=base, axes=axes)
        _check_values(spec)
        return spec


def setting_docs() -> dict[str, str]:
    """Spec key -> the docstring under its SweepSpec field (dotted for nested keys: resources.cpus)."""
    keys = {f.name: f.metadata.get("key", f.name) for f in dataclasses.fields(SweepSpec)}
    return {keys[name]: doc for name, doc in field_docs(SweepSpec).items()}


def _spec_defaults() -> dict[str, Any]:
    """Top-level spec key -> its default as YAML reads (None: required or no default), in field order."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(SweepSpec):
        if f.metadata.get("internal"):
            continue
        default = f.metadata.get("spec_default", None if f.default is dataclasses.MISSING else f.default)
        key, _, sub = f.metadata.get("key", f.name).partition(".")
        if sub:
            out.setdefault(key, {})[sub] = default
        else:
            out[key] = default
    return out


SPEC_DEFAULTS: dict[str, Any] = _spec_defaults()
SPEC_DOCS: dict[str, str] = setting_docs()


def _where(field: str, axis_fields: set[str], base: dict[str, Any], replicates: int) -> str:
    if field in axis_fields:
        return f"axes.{field}"
    if field == "seed" and replicates > 1:
        return "replicates"
    return f"base.{field}"


# ---- loading ------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader that reads 1e-3 as a float (YAML 1.1 wants 1.0e-3, a classic trap)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read and validate a spec file; `overrides` ("base.lr=3e-3", `grok sweep --set`) change it
    first and are checked exactly as if the file said so."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), "", f"cannot read: {e.strerror or e}") from None
    return parse_spec(text, source=str(path), overrides=overrides)


def spec_thresholds(text: str | None, source: str = SPEC_FILE) -> Thresholds:
    """The thresholds of a spec as run (a sweep's sweep.yaml; None or no block: the defaults), read without
    the rest of the spec, so that readers of a finished sweep (`grok status`) need nothing else from it."""
    if text is None:
        return Thresholds()
    try:
        data = yaml.load(text, Loader=_Loader)
        return Thresholds.from_mapping(data.get("thresholds") if isinstance(data, dict) else None)
    except (yaml.YAMLError, ThresholdsError, TypeError) as e:
        raise SpecError(source, "thresholds", str(e)) from None


def parse_spec(text: str, source: str = "<spec>", overrides: Sequence[str] = ()) -> SweepSpec:
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
    if overrides:
        data = apply_overrides(data, overrides, source)
        # sweep.yaml keeps the spec as run: the file with the overrides applied, and which they were
        text = (
            f"# {source} with "
            + " ".join(f"--set {o}" for o in overrides)
            + "\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        )
    return _build(data, text, source)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """`KEY.PATH=VALUE` items set into a copy of the spec's mapping; VALUE is read as YAML (3e-3,
    true, [0.3, 0.5], {cpus: 2}). Whatever they set is validated afterwards, like the file."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise SpecError(
                source,
                f"--set {item}",
                "expected KEY=VALUE with a dotted key, e.g. --set base.lr=3e-3 or --set resources.cpus=2",
            )
        try:
            value = yaml.load(raw, Loader=_Loader) if raw.strip() else None
        except yaml.YAMLError as e:
            raise SpecError(source, f"--set {key}", f"not a YAML value: {getattr(e, 'problem', None) or e}") from None
        node = data
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise SpecError(source, where, f"is {child!r}, not a mapping, so --set {key} cannot set inside it")
            node = child
        node[path[-1]] = value
    return data


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


def _build(data: dict[str, Any], text: str, source: str) -> SweepSpec:
    for key in data:
        if key not in SPEC_DEFAULTS:
            raise unknown(source, str(key), str(key), list(SPEC_DEFAULTS), "key")
    get = {k: (data[k] if k in data and data[k] is not None else v) for k, v in SPEC_DEFAULTS.items()}

    def bad(key: str, what: str) -> SpecError:
        return SpecError(source, key, f"must be {what}, got {data.get(key)!r}")

    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecError(source, "name", f"required: a name of letters, digits, '.', '_' or '-', got {name!r}")
    for f in dataclasses.fields(SweepSpec):  # the plain settings check themselves (their field's `check`)
        if "check" in f.metadata and not f.metadata["check"](get[f.name]):
            raise bad(f.name, f.metadata["must"])
    pack_size = get["pack_size"]
    if pack_size == "auto":
        pack_size = None
    elif not is_int(pack_size) or pack_size < 1:
        raise bad("pack_size", "auto or an integer >= 1")

    resources = get["resources"]
    if not isinstance(resources, dict):
        raise bad("resources", "a mapping {cpus: N, gpus: N}")
    for key in resources:
        if key not in ("cpus", "gpus"):
            raise unknown(source, f"resources.{key}", str(key), ["cpus", "gpus"], "resource")
    cpus, gpus = resources.get("cpus", 1), resources.get("gpus", 0)
    if not is_number(cpus) or cpus <= 0:
        raise SpecError(source, "resources.cpus", f"must be a number > 0, got {cpus!r}")
    if not is_number(gpus) or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise SpecError(source, "resources.gpus", f"must be a fraction in [0, 1] or a whole number, got {gpus!r}")
    if get["device"] == "cuda" and gpus == 0:
        raise SpecError(source, "device", "cuda needs resources.gpus > 0")

    fields = config_fields()
    base = get["base"]
    if not isinstance(base, dict):
        raise bad("base", "a mapping of RunConfig fields")
    for key in base:
        if key not in fields:
            raise unknown(source, f"base.{key}", str(key), fields, "config field")
    base = {k: coerce(k, v) for k, v in base.items()}
    try:
        RunConfig(**base)
    except ConfigError as e:
        raise SpecError(source, f"base.{e.field_name}", bare(e)) from None

    raw_axes = get["axes"]
    if not isinstance(raw_axes, dict):
        raise bad("axes", "a mapping of field: values")
    axes = tuple(_parse_axis(source, str(k), v, fields) for k, v in raw_axes.items())
    for where in [f"base.{k}" for k in base] + [f"axes.{a.field}" for a in axes]:
        if where.endswith(".extended_from"):  # its value is a member's history, not a choice
            raise SpecError(source, where, "is set by a sweep that extends a member's budget; raise epochs instead")
    for axis in axes:
        if axis.field in base:
            raise SpecError(source, f"axes.{axis.field}", "also set in base; set a field in one place")
    if any(a.field == "seed" for a in axes) and get["replicates"] > 1:
        raise SpecError(source, "replicates", "a seed axis and replicates > 1 both set seeds; use one of them")
    search = None
    if get["search"] is not None:
        search = sources.parse_search(source, get["search"], base, axes, get["results"])
        for key, why in (
            ("samples", "search.members is the budget"),
            ("replicates", "each member is one point"),
            ("pack_size", "search.batch sets the members per pack"),
        ):
            if key in data and data[key] is not None and data[key] != SPEC_DEFAULTS[key]:
                raise SpecError(source, key, f"not used with a search ({why}); remove it")
    elif get["samples"] > 1 and not any(a.is_random for a in axes):
        raise SpecError(source, "samples", "draws of random axes, but no axis is random; use replicates for seeds")

    snapshots = None
    if get["snapshots"] is not None:  # checked by the schedule itself, then kept as plain values for Tune
        from grokcore.snapshots import SnapshotSchedule

        if not isinstance(get["snapshots"], dict):
            raise bad("snapshots", "a mapping {every, epochs, log_points, events, dtype}")
        try:
            snapshots = SnapshotSchedule.from_dict(get["snapshots"]).to_dict()
        except (ValueError, TypeError) as e:
            raise SpecError(source, "snapshots", str(e).removeprefix("snapshots")) from None

    if isinstance(get["thresholds"], dict):
        for key in get["thresholds"]:
            if key not in THRESHOLD_FIELDS:
                raise unknown(source, f"thresholds.{key}", str(key), list(THRESHOLD_FIELDS), "threshold")
    try:
        thresholds = Thresholds.from_mapping(get["thresholds"])
    except (ThresholdsError, TypeError) as e:
        field_name = getattr(e, "field_name", "")
        where = f"thresholds.{field_name}" if field_name else "thresholds"
        raise SpecError(source, where, str(e)) from None

    from sweeps.trackers import TrackerError, parse_trackers

    try:
        trackers = parse_trackers(get["trackers"])
    except TrackerError as e:
        raise SpecError(source, "trackers", str(e)) from None

    budget = None
    if get["budget"] is not None:
        from sweeps.budget import parse_budget

        budget = parse_budget(source, get["budget"], base, axes, search)
        base = {**base, "epochs": budget.epochs}

    spec = SweepSpec(
        name=name,
        source=source,
        text=text,
        base=dict(base),
        axes=axes,
        description=get["description"],
        samples=get["samples"],
        sample_seed=get["sample_seed"],
        replicates=get["replicates"],
        pack_size=pack_size,
        cpus=float(cpus),
        gpus=float(gpus),
        device=get["device"],
        tf32=get["tf32"],
        torch_compile=get["torch_compile"],
        results=get["results"],
        checkpoints=get["checkpoints"],
        checkpoint_every_s=float(get["checkpoint_every_s"]),
        report_every_s=float(get["report_every_s"]),
        max_failures=get["max_failures"],
        search=search,
        snapshots=snapshots,
        thresholds=thresholds,
        trackers=trackers,
        budget=budget,
        end_states=get["end_states"],
    )
    if search is not None:
        spec = dataclasses.replace(spec, pack_size=search.batch)
    _check_values(spec)
    return spec


def _check_values(spec: SweepSpec) -> None:
    """Each axis value alone against base (so a bad value is named by its axis), then the size."""
    for axis in spec.axes:
        values = axis.values
        for value in values:
            try:
                RunConfig(**{**spec.base, axis.field: value})
            except ConfigError as e:
                msg = bare(e) if e.field_name == axis.field else f"{value!r} is not allowed here: {e}"
                raise SpecError(spec.source, f"axes.{axis.field}", msg) from None
    n = spec.n_members()
    if n > MAX_MEMBERS:
        raise SpecError(spec.source, "axes", f"expands to {n:,} members; at most {MAX_MEMBERS:,} are allowed")


_KIND_WORDS = {
    "int": "an integer",
    "float": "a real-valued",
    "bool": "a true/false",
    "str": "a text",
    "literal": "a closed-choice",
    "list": "a list",
    "other": "a",
}


def _parse_axis(source: str, field: str, raw: Any, fields: list[str]) -> Axis:
    where = f"axes.{field}"
    if field not in fields:
        raise unknown(source, where, field, fields, "config field: an axis must be over a RunConfig field")
    kind = field_kind(field)
    if isinstance(raw, list):
        raw = {"grid": raw}
    forms = "a list of values, or one of {grid: [...]}, {choice: [...]}, {uniform|loguniform|integers: [low, high]}"
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SpecError(source, where, f"must be {forms}; got {raw!r}")
    ((dist, args),) = raw.items()
    if dist not in ("grid", *RANDOM_KINDS):
        raise unknown(source, where, str(dist), ["grid", *RANDOM_KINDS], f"axis kind '{dist}'")
    if dist in ("grid", "choice"):
        if not isinstance(args, list) or not args:
            raise SpecError(source, where, f"{dist} needs a non-empty list of values, got {args!r}")
        values = tuple(coerce(field, tuple(v) if isinstance(v, list) else v) for v in args)
        for i, v in enumerate(values):
            if v in values[:i]:
                raise SpecError(source, where, f"the value {v!r} appears twice")
        return Axis(field, dist, values)
    if not (isinstance(args, list) and len(args) == 2 and all(is_number(x) for x in args)):
        raise SpecError(source, where, f"{dist} needs [low, high] (two numbers), got {args!r}")
    low, high = args
    if dist == "integers":
        if kind != "int":
            raise SpecError(source, where, f"integers draws integers, but {field} is {_KIND_WORDS[kind]} field")
        if not (is_int(low) and is_int(high)) or low > high:
            raise SpecError(source, where, f"integers needs integers low <= high, got {args!r}")
    else:
        if kind != "float":
            use = "integers or choice" if kind == "int" else "choice or a grid"
            raise SpecError(
                source, where, f"{dist} draws real numbers, but {field} is {_KIND_WORDS[kind]} field; use {use}"
            )
        if not low < high:
            raise SpecError(source, where, f"{dist} needs low < high, got {args!r}")
        if dist == "loguniform" and low <= 0:
            raise SpecError(source, where, f"loguniform needs 0 < low < high, got {args!r}")
    return Axis(field, dist, (coerce(field, low), coerce(field, high)))

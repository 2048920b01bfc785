"""The `search:` block of an Optuna search (kinds optuna and tune-optuna): what it may say, and the
checks that run when the spec is loaded, before anything starts. Lives beside the Optuna source
(sweeps/optuna_source.py); optuna itself is imported only to check sampler and pruner options a
spec names, so loading a spec never imports it otherwise (and a grid spec never reaches here).

    search:
      kind: optuna                 # or tune-optuna: batch 1 and a scheduler turned into in-trial stopping
      objective: {metric: epoch_generalised, penalty: 5000}
      direction: minimize
      members: 64                  # the budget
      batch: 8                     # members asked at once = one pack = one Tune trial
      sampler: tpe                 # gp, cmaes, random, grid; or {kind: tpe, n_startup_trials: 8}
      pruning: {metric: test/loss, grace_epochs: 2000, pruner: median}
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from grokcore.config import config_fields
from grokcore.layout import OPTUNA_DB
from sweeps.validation import SpecError, epoch_budget, field_kind, is_int, is_number, unknown

KINDS = ("optuna", "tune-optuna")  # the search kinds this module parses (sweeps/sources.py lists all)
SAMPLERS = {
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "random": "RandomSampler",
    "grid": "GridSampler",
}
SAMPLER_PACKAGES = {"gp": ("scipy", "torch"), "cmaes": ("cmaes",)}  # imported by Optuna when sampling
PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner"}
SCHEDULERS = ("asha",)
DIRECTIONS = ("minimize", "maximize")
# `require:` words and the runs-row column of the one rule's verdict (grokcore/verdict.py) each checks:
# a member meets it when the column is set (an epoch) or true (grokked). Each word means what the report
# means by it: `grokked` is generalised at least grok_delay after memorising, not merely generalised.
REQUIREMENTS = {"generalised": "epoch_generalised", "memorised": "epoch_memorised", "grokked": "grokked"}
# Outcomes of a runs row an objective can use; grok_delay = epoch_generalised - epoch_memorised (the rule's
# times). epoch_test_99 / epoch_train_99 are the trainer's first crossings of 0.99, what its stop rules use.
OUTCOME_METRICS = (
    "epoch_generalised",
    "epoch_memorised",
    "grok_delay",
    "epoch_test_99",
    "epoch_train_99",
    "epochs_trained",
    "final/test/loss",
    "final/test/acc",
    "final/train/loss",
    "final/train/acc",
    "wall_seconds",
)
NULLABLE_METRICS = (
    "epoch_generalised",
    "epoch_memorised",
    "grok_delay",
    "epoch_test_99",
    "epoch_train_99",
)  # null when never reached in the budget
# Metrics of an evaluation that pruning and schedulers can watch (the metrics table's columns).
WATCHED_METRICS = (
    "test/loss",
    "test/acc",
    "train/loss",
    "train/acc",
    "train_clean/loss",
    "train_clean/acc",
    "test_add/loss",
    "test_add/acc",
    "test_mul/loss",
    "test_mul/acc",
)

SEARCH_DEFAULTS: dict[str, Any] = {
    "kind": None,
    "objective": None,
    "direction": None,
    "members": None,
    "batch": None,
    "sampler": "tpe",
    "seed": 0,
    "pruning": None,
    "scheduler": None,
    "storage": None,
    "study": None,
}
SEARCH_DOCS: dict[str, str] = {
    "kind": "optuna (packs: each Tune trial asks Optuna for `batch` members) or tune-optuna (Ray's OptunaSearch, "
    "one member per trial, optional Tune scheduler)",
    "objective": "{metric: an outcome or numeric config field, penalty: value of members without it, "
    "require: generalised | memorised | grokked} (grokcore/verdict.py's rule, the spec's thresholds:)",
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


def metric_direction(metric: str) -> Literal["minimize", "maximize"]:
    """Accuracies are maximised; losses (and everything else) minimised."""
    return "maximize" if metric.endswith("/acc") else "minimize"


@dataclass(frozen=True)
class Objective:
    """What one member scores, from its runs row.

    `metric` is an outcome (OUTCOME_METRICS) or a numeric config field. A member whose metric is
    null or not finite (never generalised, diverged), or that misses `require`, scores `penalty`;
    without a penalty such a member counts as failed for the search."""

    metric: str
    penalty: float | None = None
    require: str | None = None  # generalised | memorised | grokked (REQUIREMENTS)

    def value(self, row: dict[str, Any]) -> float | None:
        if self.require is not None and row.get(REQUIREMENTS[self.require]) in (None, False):
            return self.penalty
        if self.metric == "grok_delay":
            test, train = row.get("epoch_generalised"), row.get("epoch_memorised")
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
            raise ValueError(
                f"results {sweep_uri} is not a local path, so the default SQLite study cannot live "
                "there; set search.storage (postgresql://... or sqlite:////a/local/file.db)"
            )
        return f"sqlite:///{sweep_uri}/{OPTUNA_DB}"


# ---- the search block ---------------------------------------------------------------------------
_STORAGE_RE = re.compile(r"^(sqlite|postgresql|postgres|mysql)(\+[A-Za-z0-9_]+)?://")


def parse_search(source: str, raw: dict[str, Any], base: dict[str, Any], axes: tuple, results: str) -> SearchSpec:
    """The `search:` block (a mapping whose kind is one of KINDS; sweeps.sources checked that), checked
    against base and the axes (its search space)."""
    for key in raw:
        if key not in SEARCH_DEFAULTS:
            raise unknown(source, f"search.{key}", str(key), list(SEARCH_DEFAULTS), "search key")
    get = {k: (raw[k] if raw.get(k) is not None else v) for k, v in SEARCH_DEFAULTS.items()}
    kind = get["kind"]
    fields = config_fields()
    numeric_fields = [f for f in fields if field_kind(f) in ("int", "float")]

    # the objective
    obj = get["objective"]
    if isinstance(obj, str):
        obj = {"metric": obj}
    if not isinstance(obj, dict) or "metric" not in obj:
        raise SpecError(
            source, "search.objective", f"required: {{metric: ..., penalty: ..., require: ...}}, got {obj!r}"
        )
    for key in obj:
        if key not in ("metric", "penalty", "require"):
            raise unknown(source, f"search.objective.{key}", str(key), ["metric", "penalty", "require"], "key")
    metric = obj["metric"]
    allowed = [*OUTCOME_METRICS, *numeric_fields]
    if metric not in allowed:
        raise unknown(
            source,
            "search.objective.metric",
            str(metric),
            allowed,
            f"metric '{metric}': an objective is an outcome of the runs table or a numeric config field",
        )
    require = obj.get("require")
    if require is not None and require not in REQUIREMENTS:
        raise unknown(source, "search.objective.require", str(require), list(REQUIREMENTS), f"requirement '{require}'")
    penalty = obj.get("penalty")
    if penalty is not None and not is_number(penalty):
        raise SpecError(source, "search.objective.penalty", f"must be a finite number, got {penalty!r}")
    if penalty is None and (metric in NULLABLE_METRICS or require is not None):
        why = (
            f"require: {require} fails for some members"
            if require is not None
            else f"{metric} is null for members that never reach it"
        )
        raise SpecError(
            source,
            "search.objective.penalty",
            f"required: {why}; give the value they score (worse than any real value)",
        )
    direction = get["direction"]
    if direction not in DIRECTIONS:
        if direction is None:
            raise SpecError(source, "search.direction", "required: minimize or maximize")
        raise unknown(source, "search.direction", str(direction), list(DIRECTIONS), f"direction '{direction}'")
    max_epochs = epoch_budget(base, axes)
    if metric in NULLABLE_METRICS and direction == "minimize" and penalty is not None and penalty <= max_epochs:
        raise SpecError(
            source,
            "search.objective.penalty",
            f"{penalty:g} would score members that never reach "
            f"{metric} better than some that do: use more than the epoch budget {max_epochs}",
        )

    # budget and packs
    members = get["members"]
    if not is_int(members) or members < 1:
        raise SpecError(
            source, "search.members", f"required: the number of members to try (integer >= 1), got {members!r}"
        )
    batch = get["batch"]
    if kind == "tune-optuna":
        if batch not in (None, 1):
            raise SpecError(
                source, "search.batch", "tune-optuna trains one member per trial; use kind: optuna for packs"
            )
        batch = 1
    elif batch is None:
        batch = min(8, members)
    elif not is_int(batch) or batch < 1:
        raise SpecError(source, "search.batch", f"must be an integer >= 1, got {batch!r}")
    seed = get["seed"]
    if "seed" in raw and raw["seed"] is None:
        seed = None
    elif not is_int(seed) or seed < 0:
        raise SpecError(source, "search.seed", f"must be an integer >= 0 or null, got {seed!r}")

    # the search space
    if not axes:
        raise SpecError(source, "axes", "a search needs a search space: give at least one axis")
    sampler, options = _parse_sampler(source, get["sampler"], axes)
    if sampler == "grid":
        points = math.prod(a.values[1] - a.values[0] + 1 if a.kind == "integers" else len(a.values) for a in axes)
        if members > points:
            raise SpecError(
                source,
                "search.members",
                f"{members} is more than the grid's {points} points; use members: {points} or widen the axes",
            )

    # pruning (optuna) or a Tune scheduler (tune-optuna)
    pruning = scheduler = None
    if get["pruning"] is not None:
        if kind != "optuna":
            raise SpecError(
                source, "search.pruning", "kind tune-optuna stops trials with a Tune scheduler; use search.scheduler"
            )
        pruning = _parse_pruning(source, get["pruning"], max_epochs)
    if get["scheduler"] is not None:
        if kind != "tune-optuna":
            raise SpecError(
                source,
                "search.scheduler",
                "a Tune scheduler needs kind: tune-optuna (one member per "
                "trial); kind optuna prunes members with search.pruning",
            )
        scheduler = _parse_scheduler(source, get["scheduler"], max_epochs)

    storage = get["storage"]
    if storage is not None and (not isinstance(storage, str) or not _STORAGE_RE.match(storage)):
        raise SpecError(
            source,
            "search.storage",
            f"must be an Optuna RDB URL: postgresql://user@host/db, mysql://..., or sqlite:///path.db; got {storage!r}",
        )
    if storage is None and "://" in results:
        raise SpecError(
            source,
            "search.storage",
            f"required when results is a URI ({results}): the default SQLite "
            "file needs a local disk; give postgresql://... ",
        )
    study = get["study"]
    if study is not None and (not isinstance(study, str) or not study):
        raise SpecError(source, "search.study", f"must be a study name, got {study!r}")
    return SearchSpec(
        kind=kind,
        objective=Objective(metric, None if penalty is None else float(penalty), require),
        direction=direction,
        members=members,
        batch=batch,
        sampler=sampler,
        sampler_options=options,
        seed=seed,
        pruning=pruning,
        scheduler=scheduler,
        storage=storage,
        study=study,
    )


def _parse_sampler(source: str, raw: Any, axes: tuple) -> tuple[str, dict[str, Any]]:
    where = "search.sampler"
    if isinstance(raw, dict):
        options = dict(raw)
        name = options.pop("kind", None)
    else:
        name, options = raw, {}
    if name not in SAMPLERS:
        raise unknown(source, where, str(name), list(SAMPLERS), f"sampler '{name}'")
    if name == "grid":
        continuous = [a.field for a in axes if a.kind in ("uniform", "loguniform")]
        if continuous:
            raise SpecError(
                source,
                where,
                f"grid needs every axis to be a list of values (or choice, integers); "
                f"axes.{continuous[0]} is continuous",
            )
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
                raise unknown(source, f"{where}.{key}", str(key), params, f"option of {cls.__name__}")
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
        raise unknown(source, f"{where}.metric", str(metric), list(WATCHED_METRICS), f"metric '{metric}'")
    grace = _check_grace(source, f"{where}.grace_epochs", grace, metric, max_epochs)
    if pruner not in PRUNERS:
        raise unknown(source, f"{where}.pruner", str(pruner), list(PRUNERS), f"pruner '{pruner}'")
    import inspect

    import optuna

    cls = getattr(optuna.pruners, PRUNERS[pruner])
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_warmup_steps")]
    for key in options:
        if key not in params:
            raise unknown(
                source,
                f"{where}.{key}",
                str(key),
                ["metric", "grace_epochs", "pruner", *params],
                f"option of {cls.__name__}",
            )
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
            raise unknown(source, f"{where}.{key}", str(key), keys, "scheduler key")
    kind = raw.get("kind", "asha")
    if kind not in SCHEDULERS:
        raise unknown(source, f"{where}.kind", str(kind), list(SCHEDULERS), f"scheduler '{kind}'")
    metric = raw.get("metric", "test/loss")
    if metric not in WATCHED_METRICS:
        raise unknown(source, f"{where}.metric", str(metric), list(WATCHED_METRICS), f"metric '{metric}'")
    grace = _check_grace(source, f"{where}.grace_epochs", raw.get("grace_epochs"), metric, max_epochs)
    factor = raw.get("reduction_factor", 3)
    if not is_number(factor) or factor <= 1:
        raise SpecError(source, f"{where}.reduction_factor", f"must be a number > 1, got {factor!r}")
    return Scheduler(kind=kind, metric=metric, grace_epochs=grace, reduction_factor=float(factor))


def _check_grace(source: str, where: str, grace: Any, metric: str, max_epochs: int) -> int:
    """`grace`, checked: grokking runs sit at chance on test until late, so stopping on test metrics needs a
    grace period."""
    if grace is None:
        raise SpecError(
            source,
            where,
            "required: epochs before anything is pruned (grokking runs sit at chance "
            "on test until late, so give them time)",
        )
    if not is_int(grace) or grace < 0:
        raise SpecError(source, where, f"must be an integer >= 0 (epochs), got {grace!r}")
    if grace == 0 and metric.startswith("test"):
        raise SpecError(source, where, f"must be > 0 for {metric}: grokking runs sit at chance on test until late")
    if grace >= max_epochs:
        raise SpecError(
            source,
            where,
            f"{grace} is not below the epoch budget {max_epochs}: nothing would ever be "
            "pruned; lower it or remove pruning",
        )
    return grace

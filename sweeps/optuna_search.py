"""Optuna-guided search through Ray Tune, with packs (`search:` in a spec; see sweeps/spec.py).

    search:
      kind: optuna                 # or tune-optuna (Ray's OptunaSearch, one member per trial)
      objective: {metric: epoch_test_99, penalty: 5000}
      direction: minimize
      members: 64                  # the budget
      batch: 8                     # members asked at once = one pack = one Tune trial
      sampler: tpe                 # gp, cmaes, random, grid; or {kind: tpe, n_startup_trials: 8}
      pruning: {metric: test/loss, grace_epochs: 2000, pruner: median}

How it runs (kind optuna):

- The driver owns the study. `StudyDriver` asks Optuna for `batch` members at a time, cuts them
  into packs (members of one shape), and tells every member's outcome back once its pack ends,
  read from the pack's runs and metrics rows (the same rows analysis reads). The only writer of
  the study's storage is the driver process, which is what SQLite needs (DESIGN.md).
- Ray Tune sees one trial per pack: `PackSearcher` is a Tune `Searcher` whose `suggest()` hands
  out the next pack and whose `on_trial_complete()` tells its members' results, so every pack
  asked later is guided by every pack finished before it.
- Pruning runs inside the trial, where the per-member decision is needed at each evaluation,
  with Optuna's own pruner (`MemberPruner`). It compares a member's intermediate values with
  those of the study's completed trials, which the driver writes as a read-only snapshot
  (optuna/pruning/<pack>.json in the results) when it hands the pack out. Median and percentile
  pruners only look at completed trials, so the snapshot holds everything they use; the trial
  never opens the storage. Nothing is pruned before `grace_epochs` (grokking runs sit at chance
  on test until late). A pruned member leaves its pack's batch (PackTrainer.drop), gets a runs
  row with status pruned, writes no metrics after that epoch, and is told to Optuna as PRUNED
  with its intermediate values; the rest of the pack trains on.
- Every member's Optuna trial number is in the runs table (`optuna_trial`); the Optuna trials
  carry run_id and pack_id as user attributes.
- Resume: the study lives in an RDB storage (default sqlite:///<results>/<name>/optuna.db) and is
  loaded again by name. Trials still RUNNING there are members of packs an interrupted driver
  handed out: those with a runs row are told now, the rest are handed out again as the same
  packs, which continue from their checkpoints. Members asked before count against the budget,
  failed ones (the pack failed for good) do not, so a rerun replaces them.

kind tune-optuna is Ray's OptunaSearch with one member per trial and an optional Tune scheduler
(ASHA on an evaluation metric, time in epochs), for users who want exactly Tune's way; members
the scheduler stops get status pruned.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grokcore.config import RunConfig
from sweeps.packing import Pack
from sweeps.parquet import TABLES, SweepStore, runs_schema
from sweeps.runner import PackSettings
from sweeps.spec import PRUNERS, SAMPLERS, SearchSpec, SpecError, SweepSpec, _coerce, metric_direction

log = logging.getLogger("sweeps")

SNAPSHOT_DIR = "optuna/pruning"
# intermediate values stored in the study: the pruning metric, else test accuracy (for the dashboard)
DEFAULT_INTERMEDIATE = "test/acc"


# ---- Optuna objects from the spec ---------------------------------------------------------------
def study_name(spec: SweepSpec) -> str:
    return spec.search.study or spec.name


def distributions(spec: SweepSpec) -> dict[str, Any]:
    """The axes as Optuna distributions: lists and choice -> categorical, uniform/loguniform ->
    float, integers -> int."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for axis in spec.axes:
        if axis.kind in ("grid", "choice"):
            out[axis.field] = d.CategoricalDistribution([_plain(v) for v in axis.values])
        elif axis.kind == "integers":
            out[axis.field] = d.IntDistribution(*axis.values)
        else:
            out[axis.field] = d.FloatDistribution(*axis.values, log=axis.kind == "loguniform")
    return out


def _plain(value: Any) -> Any:
    """Categorical choices must be None, bool, int, float or str (force_adjacent is a tuple)."""
    return json.dumps(list(value)) if isinstance(value, tuple) else value


def _unplain(field_name: str, value: Any) -> Any:
    if field_name == "force_adjacent" and isinstance(value, str):
        return tuple(json.loads(value))
    return _coerce(field_name, value)


def make_sampler(spec: SweepSpec, n_trials: int = 0) -> Any:
    """The spec's sampler. Resuming a study of n_trials, its seed moves on by n_trials: the same
    seed again would replay the first run's random start-up draws (members already tried)."""
    import optuna

    search = spec.search
    seed = None if search.seed is None else search.seed + n_trials
    cls = getattr(optuna.samplers, SAMPLERS[search.sampler])
    if search.sampler == "grid":
        space = {a.field: ([_plain(v) for v in a.values] if a.kind != "integers"
                           else list(range(a.values[0], a.values[1] + 1))) for a in spec.axes}

        class GridSampler(cls):
            """Optuna's GridSampler stops the study when the grid is done, which only works inside
            study.optimize; here the budget (search.members, at most the grid's size) ends it."""

            def after_trial(self, study, trial, state, values) -> None:
                pass

        return GridSampler(space, seed=seed)
    return cls(seed=seed, **search.sampler_options)


def open_study(spec: SweepSpec, store: SweepStore) -> Any:
    """Create or load the sweep's study; a loaded study must optimise in the same direction."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = spec.search.storage_url(store.uri)
    if url.startswith("sqlite:///") and store.local:
        os.makedirs(store.root, exist_ok=True)
    storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    name = study_name(spec)
    study = optuna.create_study(storage=storage, study_name=name, sampler=make_sampler(spec),
                                direction=spec.search.direction, load_if_exists=True)
    n_trials = len(study.get_trials(deepcopy=False))
    if n_trials:
        study.sampler = make_sampler(spec, n_trials)
    if study.direction.name.lower() != spec.search.direction:
        raise SpecError(spec.source, "search.direction", f"the study '{name}' in {url} was created to "
                        f"{study.direction.name.lower()}; use another search.study or storage")
    attrs = study.user_attrs
    objective = spec.search.objective.describe()
    if attrs.get("objective") not in (None, objective):
        log.warning("study %s was run with objective %s, now %s", name, attrs["objective"], objective)
    if attrs.get("objective") != objective:
        study.set_user_attr("objective", objective)
        study.set_user_attr("sweep", spec.name)
    return study


def _engine_kwargs(url: str) -> dict[str, Any]:
    # one writer, but a dashboard may read meanwhile: wait for its locks rather than fail
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


# ---- inside a trial: pruning --------------------------------------------------------------------
class MemberPruner:
    """Optuna's pruner deciding, at each evaluation, which members of a pack to prune.

    Runs in the trial's process against an in-memory study holding a read-only snapshot of the
    real study's completed trials (their intermediate values), plus one trial per member. Median
    and percentile pruners compare a member's value at an epoch with completed trials' values at
    that epoch, so they decide exactly as they would against the real storage as of the moment the
    pack was handed out. Nothing is pruned before grace_epochs."""

    def __init__(self, pruning: dict[str, Any], completed: Sequence[dict[str, float]], run_ids: Sequence[str]):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.metric = pruning["metric"]
        self.grace = int(pruning["grace_epochs"])
        pruner = getattr(optuna.pruners, PRUNERS[pruning["pruner"]])(n_warmup_steps=self.grace,
                                                                      **pruning.get("options", {}))
        self.study = optuna.create_study(direction=metric_direction(self.metric), pruner=pruner,
                                         sampler=optuna.samplers.RandomSampler(seed=0))
        for values in completed:
            steps = {int(k): float(v) for k, v in values.items()}
            if steps:
                last = steps[max(steps)]
                self.study.add_trial(optuna.trial.create_trial(
                    state=optuna.trial.TrialState.COMPLETE, value=last if math.isfinite(last) else 0.0,
                    intermediate_values=steps))
        self.trials = {rid: self.study.ask() for rid in run_ids}
        self.reported: set[tuple[str, int]] = set()

    def _report(self, row: dict[str, Any], epoch: int) -> Any:
        trial = self.trials.get(row["run_id"])
        if trial is not None and (row["run_id"], epoch) not in self.reported:
            self.reported.add((row["run_id"], epoch))
            trial.report(float(row[self.metric]), epoch)
        return trial

    def history(self, rows: list[dict[str, Any]]) -> None:
        """The members' evaluations before a checkpoint the pack continues from."""
        for row in sorted(rows, key=lambda r: r["epoch"]):
            self._report(row, int(row["epoch"]))

    def __call__(self, epoch: int, rows: list[dict[str, Any]]) -> list[str]:
        pruned = []
        for row in rows:
            trial = self._report(row, epoch)
            if trial is None:
                continue
            if epoch >= self.grace and trial.should_prune():
                pruned.append(row["run_id"])
                del self.trials[row["run_id"]]
        return pruned


def trial_hooks(optuna_cfg: dict[str, Any], pack: Pack, settings: PackSettings) -> dict[str, Any]:
    """run_pack's keyword arguments for a pack of an Optuna search: trial numbers for the runs
    rows, and the pruner (reading the driver's snapshot from the results)."""
    numbers = optuna_cfg.get("numbers", {})
    hooks: dict[str, Any] = {"member_extra": {rid: {"optuna_trial": n} for rid, n in numbers.items()}}
    pruning = optuna_cfg.get("pruning")
    if pruning:
        store = SweepStore(settings.results, settings.name)
        snapshot = store.read_json(optuna_cfg["snapshot"]) or {}
        hooks["on_eval"] = MemberPruner(pruning, snapshot.get("completed", []), pack.run_ids)
    return hooks


# ---- the driver: ask, hand out packs, tell ------------------------------------------------------
@dataclass
class _Handed:
    pack: Pack
    numbers: dict[str, int]  # run_id -> the Optuna trial number it trains for
    told: set[str] = field(default_factory=set)


class StudyDriver:
    """Owns the study for one run of a search (see the module docstring)."""

    def __init__(self, spec: SweepSpec, store: SweepStore, settings: dict[str, Any], retry_failed: bool = True):
        import optuna

        self.optuna = optuna
        self.spec, self.search, self.store, self.settings = spec, spec.search, store, settings
        self.study = open_study(spec, store)
        self.dists = distributions(spec)
        self.intermediate = self.search.pruning.metric if self.search.pruning else DEFAULT_INTERMEDIATE
        self.queue: list[_Handed] = []
        self.handed: dict[str, _Handed] = {}  # pack_id -> pack handed out in this run
        self.twins: dict[str, list[int]] = defaultdict(list)  # run_id -> other trials asking for it
        self.asked = 0  # members asked in this run
        self.told = {"complete": 0, "pruned": 0, "failed": 0}
        self.rows = self._finished_rows()
        self.retry_failed = retry_failed
        self.resumed = self._resume()
        # failed members (a pack that failed for good) are replaced, unless asked to keep them failed
        counts = ("COMPLETE", "PRUNED", "RUNNING", "WAITING") + (() if retry_failed else ("FAIL",))
        counted = sum(1 for t in self.study.get_trials(deepcopy=False) if t.state.name in counts)
        self.before = counted
        self.left = max(0, self.search.members - counted)

    # ---- what is on disk ---------------------------------------------------------------------
    def _finished_rows(self) -> dict[str, dict[str, Any]]:
        """run_id -> runs row of every member that ended (a real row wins over a failed one)."""
        table = self.store.read_table("runs")
        rows: dict[str, dict[str, Any]] = {}
        if table is not None:
            for row in table.to_pylist():
                if row["run_id"] not in rows or rows[row["run_id"]]["status"] == "failed":
                    rows[row["run_id"]] = row
        return rows

    def _pack_rows(self, pack: Pack) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[int, float]]]]:
        """The pack's runs rows and each member's (epoch, intermediate value) series."""
        runs = self.store.read_table("runs", parts=self.store.parts("runs", pack.pack_id))
        rows = {} if runs is None else {r["run_id"]: r for r in runs.to_pylist()}
        parts = [p for p in self.store.parts("metrics", pack.pack_id) if p.seq is not None]
        metrics = self.store.read_table("metrics", columns=["run_id", "epoch", self.intermediate], parts=parts)
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        if metrics is not None:
            for rid, epoch, value in zip(*(metrics.column(c).to_pylist() for c in ("run_id", "epoch", self.intermediate))):
                series[rid].append((epoch, value))
        return rows, series

    def _resume(self) -> int:
        """Trials an interrupted driver left RUNNING: tell those whose member ended, hand the rest
        out again as their original packs (same id, so they continue from their checkpoints).
        Returns the number of packs handed out again."""
        running = self.optuna.trial.TrialState.RUNNING
        trials = self.study.get_trials(deepcopy=False)
        trained: dict[str, list[Any]] = defaultdict(list)  # pack_id -> its members' trials (not twins)
        for t in trials:
            a = t.user_attrs
            if a.get("pack_id") and a.get("run_id") and a.get("twin_of") is None:
                trained[a["pack_id"]].append(t)
        ended, pending = set(), set()
        for t in trials:
            if t.state != running:
                continue
            rid, pid = t.user_attrs.get("run_id"), t.user_attrs.get("pack_id")
            if rid is None:  # asked, never placed in a pack
                self._tell_state(t.number, "FAIL", {"error": "interrupted before it was placed in a pack"})
            elif t.user_attrs.get("twin_of") is not None:
                if rid in self.rows:
                    self._tell_twin(t.number, rid)
                else:
                    self.twins[rid].append(t.number)
            elif pid is None:
                self._tell_state(t.number, "FAIL", {"error": "interrupted before it was placed in a pack"})
            else:
                (ended if rid in self.rows else pending).add(pid)
        for pid in ended:  # members that ended while no driver listened
            self._tell_pack(_Handed(Pack(pid, ()), {t.user_attrs["run_id"]: t.number for t in trained[pid]}))
        for pid in sorted(pending, reverse=True):
            ts = trained[pid]
            try:
                members = [self.spec.member(self._params(t)) for t in ts]
            except SpecError:
                members = []
            if [m.run_id for m in members] != [t.user_attrs["run_id"] for t in ts]:
                for t in ts:  # the spec's base changed since: these members cannot continue
                    self._tell_state(t.number, "FAIL", {"error": "the spec changed; the member is no longer the same"})
                continue
            self._hand_out(_Handed(Pack(pid, tuple(members)), {t.user_attrs["run_id"]: t.number for t in ts}),
                           front=True)
        return len(self.queue)

    def _params(self, t: Any) -> dict[str, Any]:
        return {k: _unplain(k, v) for k, v in t.params.items()}

    # ---- asking ------------------------------------------------------------------------------
    def next_pack(self) -> _Handed | None:
        while not self.queue and self.left > 0:
            self._ask_batch()
        return self.queue.pop(0) if self.queue else None

    def _ask_batch(self) -> None:
        n = min(self.search.batch, self.left)
        fresh: dict[str, tuple[RunConfig, Any]] = {}
        in_flight = {rid for h in [*self.handed.values(), *self.queue] for rid in h.numbers}
        for _ in range(n):
            trial = self.study.ask(self.dists)
            self.left -= 1
            self.asked += 1
            try:
                cfg = self.spec.member(self._params(trial))
            except SpecError as e:  # a combination RunConfig rejects: the search learns it fails
                trial.set_user_attr("error", e.message)
                self._tell_state(trial.number, "FAIL")
                continue
            rid = cfg.run_id
            trial.set_user_attr("run_id", rid)
            if rid in fresh or rid in in_flight or (rid in self.rows and self.rows[rid]["status"] != "failed"):
                # the sampler repeated a member: it is trained once, and every trial asking for it gets its result
                original = fresh[rid][1].number if rid in fresh else self.rows.get(rid, {}).get("optuna_trial")
                trial.set_user_attr("twin_of", original if original is not None else -1)
                if rid in self.rows and self.rows[rid]["status"] != "failed":
                    self._tell_twin(trial.number, rid)
                else:
                    self.twins[rid].append(trial.number)
                continue
            fresh[rid] = (cfg, trial)
        groups: dict[tuple, list[tuple[RunConfig, Any]]] = defaultdict(list)
        for cfg, trial in fresh.values():
            groups[cfg.shape_key()].append((cfg, trial))
        for group in groups.values():
            pack = Pack.of(cfg for cfg, _ in group)
            for cfg, trial in group:
                trial.set_user_attr("pack_id", pack.pack_id)
            self._purge_failed_rows({cfg.run_id for cfg, _ in group})
            self._hand_out(_Handed(pack, {cfg.run_id: trial.number for cfg, trial in group}))
        self._write_plan()

    def _purge_failed_rows(self, run_ids: set[str]) -> None:
        """A member asked again after its pack failed for good trains again; its failed row goes."""
        if not run_ids & {r for r, row in self.rows.items() if row["status"] == "failed"}:
            return
        for part in self.store.parts("runs"):
            if part.seq is None:
                self.store.purge_rows(part, run_ids)

    def _hand_out(self, handed: _Handed, front: bool = False) -> None:
        if front:
            self.queue.insert(0, handed)
        else:
            self.queue.append(handed)

    def trial_config(self, handed: _Handed) -> dict[str, Any]:
        """The Tune trial's config; writes the pruning snapshot the trial reads."""
        self.handed[handed.pack.pack_id] = handed
        pruning = self.search.pruning
        optuna_cfg: dict[str, Any] = {"numbers": handed.numbers, "pruning": None}
        if pruning is not None:
            rel = f"{SNAPSHOT_DIR}/{handed.pack.pack_id}.json"
            self.store.write_json(rel, {"completed": self._completed_series(), "written": time.time()})
            optuna_cfg.update(snapshot=rel, pruning={"metric": pruning.metric, "grace_epochs": pruning.grace_epochs,
                                                     "pruner": pruning.pruner, "options": pruning.options})
        return {"pack": {"pack_id": handed.pack.pack_id, "size": len(handed.pack.members), **handed.pack.to_dict()},
                "settings": self.settings, "optuna": optuna_cfg}

    def _completed_series(self) -> list[dict[str, float]]:
        grace = self.search.pruning.grace_epochs
        completed = self.study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.COMPLETE,))
        return [{str(k): v for k, v in t.intermediate_values.items() if k >= grace} for t in completed]

    def _write_plan(self) -> None:
        members = [t.user_attrs["run_id"] for t in self.study.get_trials(deepcopy=False)
                   if t.state.name != "FAIL" and t.user_attrs.get("run_id") and t.user_attrs.get("twin_of") is None]
        packs = {pid: list(h.numbers) for pid, h in self.handed.items()}
        packs.update({h.pack.pack_id: list(h.numbers) for h in self.queue})
        self.store.write_json("plan.json", {"name": self.spec.name, "search": self.search.kind,
                                            "study": study_name(self.spec), "budget": self.search.members,
                                            "members": list(dict.fromkeys(members)), "packs": packs,
                                            "updated": time.time()})

    # ---- telling -----------------------------------------------------------------------------
    def finish(self, pack_id: str) -> None:
        """Tell every member of a handed-out pack that has a runs row (idempotent); members without
        one (an interrupted trial) stay RUNNING for the next run."""
        handed = self.handed.get(pack_id)
        if handed is not None:
            self.rows.update(self._tell_pack(handed))

    def _tell_pack(self, handed: _Handed) -> dict[str, dict[str, Any]]:
        rows, series = self._pack_rows(handed.pack)
        for rid, number in handed.numbers.items():
            row = rows.get(rid)
            if row is None or rid in handed.told:
                continue
            handed.told.add(rid)
            self._tell_row(number, row, series.get(rid, []))
            self.rows[rid] = row
            for twin in self.twins.pop(rid, []):
                self._tell_twin(twin, rid)
        return {rid: rows[rid] for rid in handed.numbers if rid in rows}

    def _frozen(self, number: int) -> Any:
        storage = self.study._storage
        return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number))

    def _tell_row(self, number: int, row: dict[str, Any], series: list[tuple[int, float]]) -> None:
        frozen = self._frozen(number)
        if frozen.state.name != "RUNNING":
            return
        trial = self.optuna.trial.Trial(self.study, frozen._trial_id)
        for epoch, value in sorted(series):
            if value is not None and math.isfinite(value) and epoch not in frozen.intermediate_values:
                trial.report(float(value), int(epoch))
        attrs = {k: row.get(k) for k in ("status", "epochs_trained", "epoch_train_99", "epoch_test_99")}
        status = row.get("status")
        if status == "failed":
            self._tell_state(number, "FAIL", {**attrs, "error": (row.get("error") or "")[-500:]})
        elif status == "pruned":
            self._tell_state(number, "PRUNED", attrs)
        else:
            value = self.search.objective.value(row)
            if value is None:
                self._tell_state(number, "FAIL", {**attrs, "error": f"no {self.search.objective.metric} and no penalty"})
            else:
                for k, v in attrs.items():
                    trial.set_user_attr(k, v)
                self.study.tell(number, value)
                self.told["complete"] += 1

    def _tell_twin(self, number: int, rid: str) -> None:
        row = self.rows[rid]
        self._tell_row(number, row, [])

    def _tell_state(self, number: int, state: str, attrs: dict[str, Any] | None = None) -> None:
        frozen = self._frozen(number)
        if frozen.state.name != "RUNNING":
            return
        for k, v in (attrs or {}).items():
            self.study._storage.set_trial_user_attr(frozen._trial_id, k, v)
        self.study.tell(number, state=getattr(self.optuna.trial.TrialState, state))
        self.told["pruned" if state == "PRUNED" else "failed"] += 1

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for t in self.study.get_trials(deepcopy=False):
            out[t.state.name.lower()] += 1
        return dict(out)


def _searcher_class() -> type:
    from ray.tune.search import Searcher

    class PackSearcher(Searcher):
        """Tune's view of a StudyDriver: one suggestion = one pack of Optuna-asked members."""

        def __init__(self, driver: StudyDriver, max_in_flight: int):
            super().__init__(metric=None, mode=None)
            self.driver = driver
            self.max_in_flight = max_in_flight
            self.packs: dict[str, str] = {}  # Tune trial id -> pack id of trials not yet complete

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            # Tune keeps a trial pending besides those running; asking for it only once a slot is
            # free lets it learn from every pack that ended meanwhile
            if len(self.packs) >= self.max_in_flight and (self.driver.queue or self.driver.left):
                return None
            handed = self.driver.next_pack()
            if handed is None:
                return Searcher.FINISHED
            self.packs[trial_id] = handed.pack.pack_id
            return self.driver.trial_config(handed)

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            pass

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            pid = self.packs.pop(trial_id, None)
            if pid is not None and not error:  # a failed pack is told after fit, with its error text
                self.driver.finish(pid)

        def save(self, checkpoint_path: str) -> None:  # the study is the state; nothing to save here
            with open(checkpoint_path, "w") as f:
                f.write("{}")

        def restore(self, checkpoint_path: str) -> None:
            pass

    return PackSearcher


# ---- running a search ---------------------------------------------------------------------------
def run_search(spec: SweepSpec, results: str | None = None, address: str | None = None, *, verbose: int = 1,
               num_cpus: int | None = None, retry_failed: bool = True, out=None,
               fault: dict[str, Any] | None = None) -> Any:
    """Run (or continue) a search spec to its budget; returns a sweeps.launch.SweepResult."""
    from sweeps import launch

    out = out or sys.stdout
    start = time.monotonic()
    if launch.on_local_ray(address):
        launch.check_local_resources(spec, num_cpus)
    store = SweepStore(results or spec.results, spec.name)
    try:
        spec.search.storage_url(store.uri)
    except ValueError as e:
        raise RuntimeError(f"{spec.source}: search.storage: {e}") from None
    _tidy(store)
    launch._write_spec(store, spec)
    settings = {**PackSettings.from_spec(spec, results).to_dict(), "fault": fault}
    if spec.search.kind == "tune-optuna":
        return _run_tune_optuna(spec, store, settings, address, verbose, num_cpus, out, start)

    driver = StudyDriver(spec, store, settings, retry_failed=retry_failed)
    if verbose:
        print(describe_search(spec, store, driver), file=out)
    if driver.left == 0 and not driver.queue:
        if verbose:
            print(f"nothing to run: the study has its {spec.search.members} members", file=out)
        return launch.SweepResult(spec.name, store.uri, spec.search.members, 0, [], {}, [],
                                  time.monotonic() - start, 0.0, 0.0)
    errors: dict[str, str] = {}
    with launch.sweep_session(spec, store, address, num_cpus):
        from ray import tune

        searcher = _searcher_class()(driver, _slots(spec))
        launch.quiet_tune_logs()
        t0 = time.monotonic()
        tuner = tune.Tuner(
            tune.with_resources(launch.trainable, {"cpu": spec.cpus, "gpu": spec.gpus}),
            param_space={},
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, reuse_actors=True,
                                        trial_name_creator=lambda t: t.config["pack"]["pack_id"],
                                        trial_dirname_creator=lambda t: t.config["pack"]["pack_id"]),
            run_config=tune.RunConfig(
                name=f"optuna-{study_name(spec)}", storage_path=store.uri.rstrip("/") + "/tune", callbacks=[],
                verbose=verbose, progress_reporter=launch._progress_reporter(spec.search.members, spec.report_every_s),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        grid = tuner.fit()
        tune_seconds = time.monotonic() - t0
        for r in grid:
            pid = (r.config or {}).get("pack", {}).get("pack_id")
            if r.error is not None and pid is not None:
                errors[pid] = launch._error_text(r.error)

    done, failed, unfinished, train_seconds = [], {}, [], 0.0
    for pid, handed in driver.handed.items():
        record = store.read_record(pid) or {}
        train_seconds += float(record.get("train_seconds", 0.0))
        if record.get("done"):
            done.append(pid)
        elif pid in errors:
            failed[pid] = errors[pid]
            launch.write_failed_rows(store, handed.pack, errors[pid], record,
                                     member_extra={r: {"optuna_trial": n} for r, n in handed.numbers.items()})
        else:
            unfinished.append(pid)
        driver.finish(pid)
    result = launch.SweepResult(spec.name, store.uri, spec.search.members, len(driver.handed), done, failed,
                                unfinished, time.monotonic() - start, train_seconds, tune_seconds)
    if verbose:
        c = driver.counts()
        print(f"\n{spec.name}: {len(done)} of {len(driver.handed)} packs finished in {result.wall_seconds:.0f} s; "
              f"study {study_name(spec)}: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
              f"{c.get('fail', 0)} failed, {c.get('running', 0)} running -> {store.uri}", file=out)
        _print_best(driver, out)
        launch.print_unfinished(failed, unfinished, out)
    return result


def _slots(spec: SweepSpec) -> int:
    """Trials the cluster can run at once (as it is now)."""
    import ray

    total = ray.cluster_resources()
    slots = [int(total.get("CPU", 1) // spec.cpus)] + ([int(total.get("GPU", 0) // spec.gpus)] if spec.gpus else [])
    return max(1, min(slots))


def _tidy(store: SweepStore) -> None:
    """Crash leftovers go before a search (re)starts its packs, as in sweeps.launch.prepare."""
    store.delete_crash_leftovers()


def _print_best(driver: StudyDriver, out) -> None:
    try:
        best = driver.study.best_trial
    except ValueError:
        return
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    print(f"  best: trial {best.number} {driver.search.objective.metric} = {best.value:g}  ({params}; "
          f"{best.user_attrs.get('run_id')})", file=out)


def describe_search(spec: SweepSpec, store: SweepStore, driver: StudyDriver | None = None) -> str:
    """The dry-run text of a search spec (reads the study only if a driver has it open)."""
    s = spec.search
    try:
        url = s.storage_url(store.uri)
    except ValueError as e:
        url = f"(error: {e})"
    lines = [
        f"sweep {spec.name}  ({spec.source})",
        f"  results      {store.uri}",
        f"  search       {s.kind}: {s.direction} {s.objective.describe()} with {s.sampler}"
        + (f" {s.sampler_options}" if s.sampler_options else "") + f", seed {s.seed}",
        f"  space        " + "; ".join(f"{a.field}: {a.describe()}" for a in spec.axes),
        f"  members      {s.members}" + (f" in packs of {s.batch}" if s.kind == "optuna" else ", one per trial"),
        f"  study        {study_name(spec)} in {url}",
    ]
    if s.pruning:
        p = s.pruning
        lines.append(f"  pruning      {p.pruner} on {p.metric} after {p.grace_epochs} epochs"
                     + (f" {p.options}" if p.options else ""))
    if s.scheduler:
        c = s.scheduler
        lines.append(f"  scheduler    {c.kind} on {c.metric}, grace {c.grace_epochs} epochs, "
                     f"reduction factor {c.reduction_factor:g}")
    if driver is not None:
        c = driver.counts()
        lines.append(f"  so far       {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
                     f"{c.get('fail', 0)} failed; {driver.resumed} pack(s) to continue; {driver.left} to ask")
    lines.append(f"  trials       each with {spec.cpus:g} CPU{'s' if spec.cpus != 1 else ''}"
                 + (f" and {spec.gpus:g} GPU" if spec.gpus else ""))
    return "\n".join(lines)


# ---- kind tune-optuna: Ray's OptunaSearch, one member per trial ---------------------------------
def member_trainable(config: dict[str, Any]) -> None:
    """One Tune trial = one member (kind tune-optuna). Reports the objective as it would be if the
    member ended now, so OptunaSearch and the scheduler see it at every report."""
    import ray
    from ray import tune

    from sweeps.runner import run_pack
    from sweeps.spec import Objective

    search = config["search"]
    params = {k: _unplain(k, config[k]) for k in search["fields"]}
    cfg = RunConfig(**{**search["base"], **params})
    pack = Pack.of([cfg])
    settings = PackSettings(**config["settings"])
    # commit with every report, so the rows behind what the scheduler saw are on disk if it stops us
    settings = dataclasses.replace(settings, checkpoint_every_s=min(settings.checkpoint_every_s,
                                                                    settings.report_every_s))
    objective = Objective(**search["objective"])
    watched = search.get("metric")
    state: dict[str, Any] = {"row": None, "epoch_train_99": None, "epoch_test_99": None}

    class Watch:
        def history(self, rows):
            for row in sorted(rows, key=lambda r: r["epoch"]):
                self(row["epoch"], [row])

        def __call__(self, epoch, rows):
            for row in rows:
                state["row"] = row
                if state["epoch_train_99"] is None and row["train/acc"] >= 0.99:
                    state["epoch_train_99"] = epoch
                if state["epoch_test_99"] is None and row["test/acc"] >= 0.99:
                    state["epoch_test_99"] = epoch
            return []

    def now(metrics: dict[str, Any], row: dict[str, Any] | None = None) -> dict[str, Any]:
        last = state["row"] or {}
        if row is None:
            row = {**cfg.to_dict(), "epochs_trained": metrics.get("epoch"), "epoch_train_99": state["epoch_train_99"],
                   "epoch_test_99": state["epoch_test_99"], **{f"final/{k}": last.get(k) for k in
                                                                ("train/loss", "train/acc", "test/loss", "test/acc")}}
        value = objective.value(row)
        out = {**metrics, "objective": math.nan if value is None else value}
        if watched:  # Tune checks that every result has the scheduler's metric; NaN before the first evaluation
            out[watched] = last.get(watched, math.nan)
        return out

    trial_id = tune.get_context().get_trial_id() or "unknown"
    node = ray.get_runtime_context().get_node_id()
    final = run_pack(pack, settings, trial_id=trial_id, report=lambda m: tune.report(now(m)), node=node,
                     member_extra={cfg.run_id: {"optuna_trial": config.get("optuna_trial")}}, on_eval=Watch())
    store = SweepStore(settings.results, settings.name)
    runs = store.read_table("runs", parts=store.parts("runs", pack.pack_id))
    rows = [r for r in (runs.to_pylist() if runs is not None else []) if r["run_id"] == cfg.run_id]
    tune.report(now(final, rows[-1] if rows else None))


def _run_tune_optuna(spec: SweepSpec, store: SweepStore, settings: dict[str, Any], address: str | None,
                     verbose: int, num_cpus: int | None, out, start: float) -> Any:
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from sweeps import launch

    search = spec.search
    study = open_study(spec, store)
    # members an interrupted driver left RUNNING: failed, and asked again first (same params)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=True)
    counted = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED"))
    left = max(0, search.members - counted)
    if verbose:
        print(describe_search(spec, store) + f"\n  so far       {counted} told; {left} to ask", file=out)
    if left == 0:
        return launch.SweepResult(spec.name, store.uri, search.members, 0, [], {}, [], time.monotonic() - start,
                                  0.0, 0.0)

    class NumberedOptunaSearch(OptunaSearch):
        """Ray's OptunaSearch, passing each trial's Optuna number to the trial (for the runs table)
        and telling members a scheduler stopped as PRUNED."""

        def suggest(self, trial_id):
            params = super().suggest(trial_id)
            if isinstance(params, dict):
                params = {**params, "optuna_trial": self._ot_trials[trial_id].number}
            return params

        def on_trial_complete(self, trial_id, result=None, error=False):
            if not error and result and not result.get("pack_done"):
                ot_trial = self._ot_trials[trial_id]
                self.stopped[trial_id] = (ot_trial.number, dict(result))
                self._ot_study.tell(ot_trial, state=optuna.trial.TrialState.PRUNED)
                self._completed_trials.add(trial_id)
                return
            if result is not None and not (isinstance(result.get("objective"), float)
                                           and math.isfinite(result["objective"])):
                result = {k: v for k, v in result.items() if k != "objective"}
                error = True  # no value and no penalty: failed for the search
            super().on_trial_complete(trial_id, result, error)

    searcher = NumberedOptunaSearch(space=distributions(spec), metric="objective",
                                    mode="min" if search.direction == "minimize" else "max",
                                    sampler=study.sampler, study_name=study_name(spec), storage=study._storage)
    searcher.stopped = {}
    scheduler = None
    sched = search.scheduler
    if sched is not None:
        from ray.tune.schedulers import ASHAScheduler

        max_epochs = max([spec.base.get("epochs", RunConfig.epochs)]
                         + [v for a in spec.axes if a.field == "epochs" for v in a.values])
        scheduler = ASHAScheduler(time_attr="epoch", metric=sched.metric, mode=metric_direction(sched.metric)[:3],
                                  max_t=max_epochs, grace_period=sched.grace_epochs,
                                  reduction_factor=sched.reduction_factor, stop_last_trials=False)
    param_space = {"settings": settings, "search": {
        "base": spec.base, "fields": [a.field for a in spec.axes], "metric": sched.metric if sched else None,
        "objective": {"metric": search.objective.metric, "penalty": search.objective.penalty,
                      "require": search.objective.require}}}
    with launch.sweep_session(spec, store, address, num_cpus):
        t0 = time.monotonic()
        tuner = tune.Tuner(
            tune.with_resources(member_trainable, {"cpu": spec.cpus, "gpu": spec.gpus}),
            param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=left,
                                        reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"tune-optuna-{study_name(spec)}", storage_path=store.uri.rstrip("/") + "/tune", callbacks=[],
                verbose=verbose, progress_reporter=launch._progress_reporter(left, spec.report_every_s),
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        grid = tuner.fit()
        tune_seconds = time.monotonic() - t0

    done, failed, unfinished, train_seconds = [], {}, [], 0.0
    stopped = searcher.stopped
    for r in grid:
        c = r.config or {}
        if "search" not in c:
            continue
        cfg = RunConfig(**{**spec.base, **{k: _unplain(k, c[k]) for k in c["search"]["fields"]}})
        pack = Pack.of([cfg])
        record = store.read_record(pack.pack_id) or {}
        train_seconds += float(record.get("train_seconds", 0.0))
        if r.error is not None:
            failed[pack.pack_id] = launch._error_text(r.error)
            launch.write_failed_rows(store, pack, failed[pack.pack_id], record)
        elif not record.get("done"):
            number = c.get("optuna_trial")
            last = (r.metrics or {})
            if any(n == number for n, _ in stopped.values()) and last:
                write_pruned_rows(store, pack, int(last.get("epoch") or 0), record,
                                  {cfg.run_id: {"optuna_trial": number, "trial_id": last.get("trial_id")}})
                done.append(pack.pack_id)
            else:
                unfinished.append(pack.pack_id)
        else:
            done.append(pack.pack_id)
    result = launch.SweepResult(spec.name, store.uri, search.members, len(done) + len(failed) + len(unfinished),
                                done, failed, unfinished, time.monotonic() - start, train_seconds, tune_seconds)
    if verbose:
        print(f"\n{spec.name}: {len(done)} trials ended ({len(stopped)} stopped by {sched.kind if sched else '-'}), "
              f"{len(failed)} failed in {result.wall_seconds:.0f} s -> {store.uri}", file=out)
    return result


def write_pruned_rows(store: SweepStore, pack: Pack, epoch: int, record: dict[str, Any],
                      extra: dict[str, dict[str, Any]]) -> None:
    """End a pack whose trial a scheduler stopped at `epoch`: its members get runs rows with status
    pruned and keep no metrics after that epoch; the pack is committed as done."""
    seq = int(record.get("seq", 0))
    for table in TABLES:  # uncommitted leftovers of the stopped trial
        store.delete_parts(p for p in store.parts(table, pack.pack_id) if p.seq is not None and p.seq >= seq)
    parts = [p for p in store.parts("metrics", pack.pack_id) if p.seq is not None]
    metrics = store.read_table("metrics", parts=parts)
    rows = [] if metrics is None else metrics.to_pylist()
    epoch = min(epoch, max((r["epoch"] for r in rows), default=0))
    ids = set(pack.run_ids)
    for part in parts:  # rows after the stop epoch go
        table = store.read_part(part)
        if table is not None and any(r["epoch"] > epoch for r in table.to_pylist()):
            keep = [r for r in table.to_pylist() if r["epoch"] <= epoch or r["run_id"] not in ids]
            store.delete_parts([part])
            if keep:
                store.write_part("metrics", pack.pack_id, part.seq, keep, table.schema)
    out = []
    for m in pack.members:
        mine = sorted((r for r in rows if r["run_id"] == m.run_id and r["epoch"] <= epoch), key=lambda r: r["epoch"])
        last = mine[-1] if mine else {}
        first = lambda key: next((r["epoch"] for r in mine if r[key] >= 0.99), None)  # noqa: E731
        out.append({"run_id": m.run_id, "pack_id": pack.pack_id, **m.to_dict(), "status": "pruned", "error": "",
                    "epochs_trained": epoch, "epoch_train_99": first("train/acc"), "epoch_test_99": first("test/acc"),
                    **{f"final/{k}": last.get(k, math.nan) for k in ("train/loss", "train/acc", "test/loss", "test/acc")},
                    "wall_seconds": record.get("train_seconds"), "device": None, **extra.get(m.run_id, {})})
    store.write_part("runs", pack.pack_id, seq, out, runs_schema())
    store.delete_trainers(pack.pack_id)
    store.write_record(pack.pack_id, {**record, "pack_id": pack.pack_id, "members": pack.run_ids, "seq": seq + 1,
                                      "trainer": None, "done": True, "epoch": epoch, "updated": time.time()})


__all__ = ["MemberPruner", "StudyDriver", "describe_search", "distributions", "make_sampler", "open_study",
           "run_search", "study_name", "trial_hooks", "write_pruned_rows"]

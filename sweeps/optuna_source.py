"""The Optuna source: Optuna picks a search's members, `batch` at a time, and each batch is cut
into packs (members of one shape) that the driver (sweeps/launch.py) runs as Tune trials. The
`search:` block it reads is parsed by sweeps/optuna_spec.py.

- The source owns the study. It asks Optuna for `batch` members when the driver wants a pack (only
  once a trial slot is free, so every pack asked is guided by every pack finished before it) and
  tells every member's outcome back once its pack ends, read from the pack's runs and metrics rows
  (the same rows analysis reads). The only writer of the study's storage is the driver process,
  which is what SQLite needs (DESIGN.md).
- Pruning runs inside the trial, where the per-member decision is needed at each evaluation, with
  Optuna's own pruner (`MemberPruner`, run_pack's evaluation hook). It compares a member's
  intermediate values with those of the study's completed trials, which the source writes as a
  read-only snapshot (optuna/pruning/<pack>.json in the results) when it hands the pack out.
  Median and percentile pruners only look at completed trials, so the snapshot holds everything
  they use; the trial never opens the storage. Nothing is pruned before `grace_epochs` (grokking
  runs sit at chance on test until late). A pruned member leaves its pack's batch
  (PackTrainer.drop), gets a runs row with status pruned, writes no metrics after that epoch, and
  is told to Optuna as PRUNED with its intermediate values; the rest of the pack trains on.
- kind tune-optuna is this source with batch 1 (one member per trial), its `scheduler:` (ASHA's
  settings) turned into the same in-trial stopping: a percentile pruner that keeps the best
  1/reduction_factor of the completed members at each evaluation after `grace_epochs`. Ray's own
  OptunaSearch and ASHAScheduler are no longer used: keeping them needed private APIs of Ray and
  Optuna and a hand-written rewrite of Parquet parts for members the scheduler stopped.
- Every member's Optuna trial number is in the runs table (`optuna_trial`); the Optuna trials
  carry run_id and pack_id as user attributes.
- Resume: the study lives in an RDB storage (default sqlite:///<results>/<name>/optuna.db) and is
  loaded again by name. Trials still RUNNING there are members of packs an interrupted driver
  handed out: those with a runs row are told now, the rest are handed out again as the same
  packs, which continue from their checkpoints. Members asked before count against the budget,
  failed ones (the pack failed for good) do not, so a rerun replaces them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grokcore.config import RunConfig
from grokcore.layout import PRUNING_DIR
from grokcore.verdict import VERDICT_COLUMNS
from sweeps.check import clean_for_restart
from sweeps.optuna_spec import PRUNERS, SAMPLERS, Pruning, metric_direction
from sweeps.packing import Pack
from sweeps.parquet import SweepStore, counted_runs
from sweeps.runner import PackSettings
from sweeps.snapshots import describe_search_storage
from sweeps.validation import SpecError, coerce
from sweeps.verdicts import with_verdicts

if TYPE_CHECKING:
    from optuna.study import Study

    from sweeps.spec import SweepSpec

log = logging.getLogger("sweeps")

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
            low, high = axis.values
            out[axis.field] = d.FloatDistribution(low, high, log=axis.kind == "loguniform")
    return out


def _plain(value: Any) -> Any:
    """Categorical choices must be None, bool, int, float or str (force_adjacent is a tuple)."""
    return json.dumps(list(value)) if isinstance(value, tuple) else value


def _unplain(field_name: str, value: Any) -> Any:
    if field_name == "force_adjacent" and isinstance(value, str):
        return tuple(json.loads(value))
    return coerce(field_name, value)


def make_sampler(spec: SweepSpec, n_trials: int = 0) -> Any:
    """The spec's sampler. Resuming a study of n_trials, its seed moves on by n_trials: the same
    seed again would replay the first run's random start-up draws (members already tried)."""
    import optuna

    search = spec.search
    seed = None if search.seed is None else search.seed + n_trials
    cls = getattr(optuna.samplers, SAMPLERS[search.sampler])
    if search.sampler == "grid":
        space = {
            a.field: (
                [_plain(v) for v in a.values] if a.kind != "integers" else list(range(a.values[0], a.values[1] + 1))
            )
            for a in spec.axes
        }

        class GridSampler(optuna.samplers.GridSampler):
            """Optuna's GridSampler stops the study when the grid is done, which only works inside
            study.optimize; here the budget (search.members, at most the grid's size) ends it."""

            def after_trial(self, study, trial, state, values) -> None:
                pass

        return GridSampler(space, seed=seed)
    return cls(seed=seed, **search.sampler_options)


def open_study(spec: SweepSpec, store: SweepStore) -> Any:
    """Create or load the sweep's study; a loaded study must optimise in the same direction."""
    return open_storage_and_study(spec, store)[1]


def open_storage_and_study(spec: SweepSpec, store: SweepStore) -> tuple[Any, Any]:
    """The study and the RDB storage object it lives in. The source keeps the storage: telling a
    member asked by an earlier driver needs its trial id, which only the storage's (public) API
    gives from a trial number."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = spec.search.storage_url(store.uri)
    if url.startswith("sqlite:///") and store.local:
        os.makedirs(store.root, exist_ok=True)
    storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    name = study_name(spec)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=make_sampler(spec),
        direction=spec.search.direction,
        load_if_exists=True,
    )
    n_trials = len(study.get_trials(deepcopy=False))
    if n_trials:
        study.sampler = make_sampler(spec, n_trials)
    if study.direction.name.lower() != spec.search.direction:
        raise SpecError(
            spec.source,
            "search.direction",
            f"the study '{name}' in {url} was created to "
            f"{study.direction.name.lower()}; use another search.study or storage",
        )
    attrs = study.user_attrs
    objective = spec.search.objective.describe()
    if attrs.get("objective") not in (None, objective):
        log.warning("study %s was run with objective %s, now %s", name, attrs["objective"], objective)
    if attrs.get("objective") != objective:
        study.set_user_attr("objective", objective)
        study.set_user_attr("sweep", spec.name)
    return storage, study


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
        pruner = getattr(optuna.pruners, PRUNERS[pruning["pruner"]])(
            n_warmup_steps=self.grace, **pruning.get("options", {})
        )
        self.study = optuna.create_study(
            direction=metric_direction(self.metric), pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0)
        )
        for values in completed:
            steps = {int(k): float(v) for k, v in values.items()}
            if steps:
                last = steps[max(steps)]
                self.study.add_trial(
                    optuna.trial.create_trial(
                        state=optuna.trial.TrialState.COMPLETE,
                        value=last if math.isfinite(last) else 0.0,
                        intermediate_values=steps,
                    )
                )
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
    """Inside a trial (via sweeps.sources.trial_hooks): run_pack's keyword arguments for a pack of an
    Optuna search: trial numbers for the runs rows, and the pruner (reading the driver's snapshot)."""
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


class OptunaSource:
    """A PackSource (sweeps/sources.py) whose members Optuna asks for; owns the study for one run
    of a search (see the module docstring). write=False (a dry run) opens nothing."""

    learns = True  # a pack is asked only when a slot is free, so it learns from every pack before it

    def __init__(
        self,
        spec: SweepSpec,
        store: SweepStore,
        settings: dict[str, Any],
        retry_failed: bool = True,
        write: bool = True,
    ):
        self.spec, self.search, self.store, self.settings = spec, spec.search, store, settings
        self.pruning = self.search.pruning or scheduler_pruning(self.search.scheduler)
        self.name = f"optuna-{study_name(spec)}"
        self.members_to_run = self.n_members = self.search.members
        self.study: Study | None = None  # None in a dry run (write=False), which opens nothing
        if not write:
            return
        try:
            self.search.storage_url(store.uri)
        except ValueError as e:
            raise RuntimeError(f"{spec.source}: search.storage: {e}") from None
        clean_for_restart(store)
        store.write_spec(spec.text)
        import optuna

        self.optuna = optuna
        self.storage, self.study = open_storage_and_study(spec, store)
        self.study_id = self.storage.get_study_id_from_name(study_name(spec))
        self.dists = distributions(spec)
        self.intermediate = self.pruning.metric if self.pruning else DEFAULT_INTERMEDIATE
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
        counted = sum(1 for t in self.opened.get_trials(deepcopy=False) if t.state.name in counts)
        self.before = counted
        self.left = max(0, self.search.members - counted)

    # ---- the driver's view ------------------------------------------------------------------
    def describe(self) -> str:
        return describe_search(self.spec, self.store, self if self.study is not None else None)

    def nothing_to_run(self) -> str | None:
        if self.left == 0 and not self.queue:
            return f"nothing to run: the study has its {self.search.members} members"
        return None

    def handed_out(self) -> list[Pack]:
        return [h.pack for h in self.handed.values()]

    def member_extra(self, pack: Pack) -> dict[str, dict[str, Any]]:
        """The Optuna trial number of each member, for its runs row."""
        return {rid: {"optuna_trial": n} for rid, n in self.handed[pack.pack_id].numbers.items()}

    @property
    def opened(self) -> Study:
        """The study; a dry run opened none."""
        if self.study is None:
            raise RuntimeError("the dry run of an Optuna search opened no study")
        return self.study

    def summary(self) -> list[str]:
        c = self.counts()
        lines = [
            (
                f"  study {study_name(self.spec)}: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
                f"{c.get('fail', 0)} failed, {c.get('running', 0)} running"
            )
        ]
        try:
            best = self.opened.best_trial
        except ValueError:
            return lines
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        lines.append(
            f"  best: trial {best.number} {self.search.objective.metric} = {best.value:g}  ({params}; "
            f"{best.user_attrs.get('run_id')})"
        )
        return lines

    # ---- what is on disk ---------------------------------------------------------------------
    def _finished_rows(self) -> dict[str, dict[str, Any]]:
        """run_id -> the runs row that counts of every member that ended (failed ones included: the
        search tells the study of them; pruned rows count as any other)."""
        table = counted_runs(with_verdicts(self.store, self.store.read_table("runs"), self.spec.thresholds))
        return {} if table is None else {row["run_id"]: row for row in table.to_pylist()}

    def _pack_rows(self, pack: Pack) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[int, float]]]]:
        """The pack's runs rows and each member's (epoch, intermediate value) series."""
        parts = self.store.pack_parts("metrics", pack.pack_id)
        runs = self.store.read_table("runs", parts=self.store.parts("runs", pack.pack_id))
        runs = counted_runs(with_verdicts(self.store, runs, self.spec.thresholds, parts))
        rows = {} if runs is None else {r["run_id"]: r for r in runs.to_pylist()}
        metrics = self.store.read_table("metrics", columns=["run_id", "epoch", self.intermediate], parts=parts)
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        if metrics is not None:
            for rid, epoch, value in zip(
                *(metrics.column(c).to_pylist() for c in ("run_id", "epoch", self.intermediate)), strict=True
            ):
                series[rid].append((epoch, value))
        return rows, series

    def _resume(self) -> int:
        """Trials an interrupted driver left RUNNING: tell those whose member ended, hand the rest
        out again as their original packs (same id, so they continue from their checkpoints).
        Returns the number of packs handed out again."""
        running = self.optuna.trial.TrialState.RUNNING
        trials = self.opened.get_trials(deepcopy=False)
        trained: dict[str, list[Any]] = defaultdict(list)  # pack_id -> its members' trials (not twins)
        for t in trials:
            a = t.user_attrs
            if a.get("pack_id") and a.get("run_id") and a.get("twin_of") is None:
                trained[a["pack_id"]].append(t)
        ended: set[str] = set()
        pending: set[str] = set()
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
            self._hand_out(
                _Handed(Pack(pid, tuple(members)), {t.user_attrs["run_id"]: t.number for t in ts}), front=True
            )
        return len(self.queue)

    def _params(self, t: Any) -> dict[str, Any]:
        return {k: _unplain(k, v) for k, v in t.params.items()}

    # ---- asking ------------------------------------------------------------------------------
    def next_pack(self) -> Pack | None:
        while not self.queue and self.left > 0:
            self._ask_batch()
        if not self.queue:
            return None
        handed = self.queue.pop(0)
        self.handed[handed.pack.pack_id] = handed
        return handed.pack

    def _ask_batch(self) -> None:
        n = min(self.search.batch, self.left)
        fresh: dict[str, tuple[RunConfig, Any]] = {}
        in_flight = {rid for h in [*self.handed.values(), *self.queue] for rid in h.numbers}
        for _ in range(n):
            trial = self.opened.ask(self.dists)
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
            for _, trial in group:
                trial.set_user_attr("pack_id", pack.pack_id)
            self._purge_failed_rows({cfg.run_id for cfg, _ in group})
            self._hand_out(_Handed(pack, {cfg.run_id: trial.number for cfg, trial in group}))
        self._write_plan()

    def _purge_failed_rows(self, run_ids: set[str]) -> None:
        """A member asked again after its pack failed for good trains again; its failed row goes."""
        if run_ids & {r for r, row in self.rows.items() if row["status"] == "failed"}:
            self.store.purge_failed_rows(run_ids)

    def _hand_out(self, handed: _Handed, front: bool = False) -> None:
        if front:
            self.queue.insert(0, handed)
        else:
            self.queue.append(handed)

    def trial_hooks(self, pack: Pack) -> dict[str, Any]:
        """What the trial needs for its hooks (see `trial_hooks` above); writes the pruning snapshot
        the trial reads."""
        handed = self.handed[pack.pack_id]
        optuna_cfg: dict[str, Any] = {"kind": self.search.kind, "numbers": handed.numbers, "pruning": None}
        if self.pruning is not None:
            rel = f"{PRUNING_DIR}/{pack.pack_id}.json"
            self.store.write_json(
                rel, {"completed": self._completed_series(self.pruning.grace_epochs), "written": time.time()}
            )
            optuna_cfg.update(
                snapshot=rel,
                pruning={
                    "metric": self.pruning.metric,
                    "grace_epochs": self.pruning.grace_epochs,
                    "pruner": self.pruning.pruner,
                    "options": self.pruning.options,
                },
            )
        return optuna_cfg

    def _completed_series(self, grace: int) -> list[dict[str, float]]:
        completed = self.opened.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.COMPLETE,))
        return [{str(k): v for k, v in t.intermediate_values.items() if k >= grace} for t in completed]

    def _write_plan(self) -> None:
        members = [
            t.user_attrs["run_id"]
            for t in self.opened.get_trials(deepcopy=False)
            if t.state.name != "FAIL" and t.user_attrs.get("run_id") and t.user_attrs.get("twin_of") is None
        ]
        packs = {pid: list(h.numbers) for pid, h in self.handed.items()}
        packs.update({h.pack.pack_id: list(h.numbers) for h in self.queue})
        self.store.write_plan(
            self.spec.name,
            dict.fromkeys(members),
            packs,
            search=self.search.kind,
            study=study_name(self.spec),
            budget=self.search.members,
        )

    # ---- telling -----------------------------------------------------------------------------
    def pack_finished(self, pack_id: str) -> None:
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

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _frozen(self, number: int) -> Any:
        return self.storage.get_trial(self._trial_id(number))

    def _tell_row(self, number: int, row: dict[str, Any], series: list[tuple[int, float]]) -> None:
        frozen = self._frozen(number)
        if frozen.state.name != "RUNNING":
            return
        trial_id = self._trial_id(number)
        for epoch, value in sorted(series):
            if value is not None and math.isfinite(value) and epoch not in frozen.intermediate_values:
                self.storage.set_trial_intermediate_value(trial_id, int(epoch), float(value))
        attrs = {
            k: row.get(k) for k in ("status", "epochs_trained", *VERDICT_COLUMNS, "epoch_train_99", "epoch_test_99")
        }
        status = row.get("status")
        if status == "failed":
            self._tell_state(number, "FAIL", {**attrs, "error": (row.get("error") or "")[-500:]})
        elif status == "pruned":
            self._tell_state(number, "PRUNED", attrs)
        else:
            value = self.search.objective.value(row)
            if value is None:
                self._tell_state(
                    number, "FAIL", {**attrs, "error": f"no {self.search.objective.metric} and no penalty"}
                )
            else:
                for k, v in attrs.items():
                    self.storage.set_trial_user_attr(trial_id, k, v)
                self.opened.tell(number, value)
                self.told["complete"] += 1

    def _tell_twin(self, number: int, rid: str) -> None:
        row = self.rows[rid]
        self._tell_row(number, row, [])

    def _tell_state(self, number: int, state: str, attrs: dict[str, Any] | None = None) -> None:
        frozen = self._frozen(number)
        if frozen.state.name != "RUNNING":
            return
        for k, v in (attrs or {}).items():
            self.storage.set_trial_user_attr(self._trial_id(number), k, v)
        self.opened.tell(number, state=getattr(self.optuna.trial.TrialState, state))
        self.told["pruned" if state == "PRUNED" else "failed"] += 1

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for t in self.opened.get_trials(deepcopy=False):
            out[t.state.name.lower()] += 1
        return dict(out)


def describe_search(spec: SweepSpec, store: SweepStore, driver: OptunaSource | None = None) -> str:
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
        + (f" {s.sampler_options}" if s.sampler_options else "")
        + f", seed {s.seed}",
        "  space        " + "; ".join(f"{a.field}: {a.describe()}" for a in spec.axes),
        f"  members      {s.members}" + (f" in packs of {s.batch}" if s.kind == "optuna" else ", one per trial"),
        f"  study        {study_name(spec)} in {url}",
    ]
    if s.pruning:
        p = s.pruning
        lines.append(
            f"  pruning      {p.pruner} on {p.metric} after {p.grace_epochs} epochs"
            + (f" {p.options}" if p.options else "")
        )
    if s.scheduler:
        c = s.scheduler
        lines.append(
            f"  scheduler    {c.kind} on {c.metric}, grace {c.grace_epochs} epochs, "
            f"reduction factor {c.reduction_factor:g}"
        )
    if driver is not None:
        c = driver.counts()
        lines.append(
            f"  so far       {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
            f"{c.get('fail', 0)} failed; {driver.resumed} pack(s) to continue; {driver.left} to ask"
        )
    lines.append(
        f"  trials       each with {spec.cpus:g} CPU{'s' if spec.cpus != 1 else ''}"
        + (f" and {spec.gpus:g} GPU" if spec.gpus else "")
    )
    storage = describe_search_storage(spec.snapshots, spec, s.members)
    return "\n".join(lines + ([storage] if storage else []))


def scheduler_pruning(scheduler: Any) -> Pruning | None:
    """kind tune-optuna's `scheduler:` (ASHA's settings) as in-trial stopping: keep the best
    1/reduction_factor of the completed members at each evaluation after grace_epochs, once
    reduction_factor members have completed (ASHA promotes nothing from a rung with fewer)."""
    if scheduler is None:
        return None
    return Pruning(
        metric=scheduler.metric,
        grace_epochs=scheduler.grace_epochs,
        pruner="percentile",
        options={
            "percentile": 100.0 / scheduler.reduction_factor,
            "n_startup_trials": math.ceil(scheduler.reduction_factor),
        },
    )


__all__ = [
    "MemberPruner",
    "OptunaSource",
    "describe_search",
    "distributions",
    "make_sampler",
    "open_study",
    "scheduler_pruning",
    "study_name",
    "trial_hooks",
]

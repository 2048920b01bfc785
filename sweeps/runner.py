"""Train one pack and write its rows: the body of a Tune trial, with no Ray in it.

`run_pack` is what each trial calls (sweeps/launch.py wraps it in a dozen lines), and what
`grok train` calls directly. It continues from the pack's commit record if there is one, writes
metrics and runs rows as the pack trains, and checkpoints at a modest cadence; see
sweeps/parquet.py for the invariant that keeps rows from duplicating.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from grokcore.layout import FAULTS_DIR, TABLES, trainer_name
from grokcore.records import METRIC_COLUMNS
from grokcore.verdict import Thresholds, decide
from sweeps import budget
from sweeps.packing import Pack
from sweeps.parquet import SweepStore, metrics_schema, progress_schema, results_location, runs_schema
from sweeps.snapshots import purge_snapshots, write_snapshots


@dataclass(frozen=True)
class PackSettings:
    """What a trial needs besides its members (plain values, so Tune can carry them)."""

    results: str
    name: str
    checkpoints: bool = True
    checkpoint_every_s: float = 60.0
    report_every_s: float = 5.0
    device: str = "auto"
    tf32: bool = False
    torch_compile: bool = False
    cpus: float = 1.0
    gpus: float = 0.0
    snapshots: dict[str, Any] | None = None
    """The spec's snapshot schedule (grokcore.snapshots.SnapshotSchedule.to_dict), or None: keep no weights."""
    thresholds: Thresholds | dict[str, Any] | None = None
    """The spec's thresholds (its fields as a dict once Tune carried them; None: the defaults): the one rule
    behind each runs row's epoch_memorised, epoch_generalised and grokked (grokcore/verdict.py)."""
    end_states: bool = True
    """Keep the end states of members that end at their budget (sweeps/budget.py), so a larger budget continues them."""
    fault: dict[str, Any] | None = None
    """For resilience tests only: {"epoch": N, "times": k, "kind": "raise" | "exit", "packs": [ids] (all if
    absent)} makes the first k attempts of a pack fail once they reach epoch N (counted with marker files)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # thresholds become a dict of their fields

    def rule(self) -> Thresholds:
        if isinstance(self.thresholds, dict):
            return Thresholds(**self.thresholds)
        return self.thresholds or Thresholds()

    def trainer_options(self) -> dict[str, Any]:
        """PackTrainer's keyword arguments beyond the members and the device."""
        from grokcore.snapshots import SnapshotSchedule

        schedule = SnapshotSchedule.from_dict(self.snapshots) if self.snapshots else None
        return {"tf32": self.tf32, "torch_compile": self.torch_compile, "snapshots": schedule}

    @classmethod
    def from_spec(cls, spec: Any, results: str | None = None) -> PackSettings:
        """The trial's settings, taken by name from the spec's (SweepSpec is their one list); the
        results location is resolved here, on the driver: see results_location."""
        shared = {f.name: getattr(spec, f.name) for f in fields(cls) if f.name not in ("results", "name", "fault")}
        return cls(results=results_location(results or spec.results), name=spec.name, **shared)


def pick_device(setting: str, gpus: float) -> str:
    import torch

    if setting == "auto":
        return "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"
    return setting


class EvalHook(Protocol):
    """Called by run_pack at each evaluation with the metrics rows of the members still live after
    it; returns the run_ids to end now with status "pruned" (they write no rows after this epoch).
    `history` receives the committed metrics rows of the pack when it continues from a checkpoint."""

    def __call__(self, epoch: int, rows: list[dict[str, Any]]) -> list[str]: ...

    def history(self, rows: list[dict[str, Any]]) -> None: ...


class _Progress:
    """What the trial tells Tune (and `grok train` prints): members live, finished, generalised (ended members
    generalised by the one rule, their runs rows' epoch_generalised: held accuracy is known only at the end)."""

    def __init__(self, pack: Pack):
        self.size = len(pack.members)
        self.epochs_budget = max(m.epochs for m in pack.members)
        self.epochs_from = 0  # the epoch members continued to a larger budget went on from (its round)
        self.generalised: set[str] = set()
        self.finished: set[str] = set()
        self.pruned: set[str] = set()
        self.live = 0
        self.epoch = 0
        self.test_acc = math.nan
        self.train_acc = math.nan
        self.test_loss = math.nan
        self.train_seconds = 0.0
        self.started = time.monotonic()

    def see_metrics(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.test_acc = sum(r["test/acc"] for r in rows) / len(rows)
        self.test_loss = sum(r["test/loss"] for r in rows) / len(rows)
        self.train_acc = sum(r["train/acc"] for r in rows) / len(rows)

    def see_finished(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.finished.add(r["run_id"])
            if r.get("status") == "pruned":
                self.pruned.add(r["run_id"])
            if r.get("epoch_generalised") is not None:
                self.generalised.add(r["run_id"])

    def metrics(self, done: bool = False) -> dict[str, Any]:
        return {
            "members": self.size,
            "members_live": 0 if done else self.live,
            "members_finished": len(self.finished),
            "members_generalised": len(self.generalised),
            "members_pruned": len(self.pruned),
            "test_acc_latest": None if math.isnan(self.test_acc) else round(self.test_acc, 4),
            "train_acc_latest": None if math.isnan(self.train_acc) else round(self.train_acc, 4),
            "test_loss_latest": None if math.isnan(self.test_loss) else round(self.test_loss, 6),
            "epoch": self.epoch,
            "epochs_budget": self.epochs_budget,
            "epochs_from": self.epochs_from,
            "train_seconds": round(self.train_seconds, 3),
            "pack_done": done,
        }


def run_pack(
    pack: Pack,
    settings: PackSettings,
    trial_id: str = "local",
    report: Callable[[dict[str, Any]], None] | None = None,
    extra_row: dict[str, Any] | None = None,
    node: str = "",
    member_extra: dict[str, dict[str, Any]] | None = None,
    on_eval: EvalHook | None = None,
    progress_bar: bool = False,
) -> dict[str, Any]:
    """Train the pack to the end (or continue it), writing its rows; returns the final progress.
        `node` names where it runs (the Ray node id), for the pack's record. `extra_row` adds columns
        to every runs row, `member_extra` (run_id -> columns) to one member's; `on_eval` may end
        members at an evaluation (a search's pruning; see EvalHook). `progress_bar` draws the trainer's
    bar (grok train in a terminal; never in a trial, which reports to Tune).

        Exceptions propagate (Tune retries the trial); nothing is committed for work after the last
        checkpoint, so a retry redoes exactly that work.
    """
    store = SweepStore(settings.results, settings.name)
    pid = pack.pack_id
    progress = _Progress(pack)
    record = store.read_record(pid)
    if record is not None and record.get("done"):
        with store.disk_full_is_fatal(f"the compaction of pack {pid}"):
            store.compact_pack(pid)  # a crash may have come between its commit and its compaction
        progress.finished.update(pack.run_ids)
        _generalised_from_runs(store, pid, progress, settings.rule())
        return progress.metrics(done=True)

    trainer = _resume(store, pack, record, progress, settings)
    extra = {"pack_id": pid, "trial_id": trial_id, "optuna_trial": None, **(extra_row or {})}
    batch = _Batch(store, pack, settings, record, progress, trainer, trial_id, node, extra, member_extra or {})
    if trainer is not None:
        batch.read_history(on_eval)
        _train(trainer, batch, progress, settings, report, on_eval, progress_bar)
    with store.disk_full_is_fatal(f"the last commit of pack {pid}"):
        batch.commit(final=True)
        store.compact_pack(pid)  # one file per table for a finished pack, not one per commit
    return progress.metrics(done=True)


def _resume(
    store: SweepStore, pack: Pack, record: dict[str, Any] | None, progress: _Progress, settings: PackSettings
) -> Any:
    """Where an unfinished pack stands: its crash leftovers removed, then a trainer from its checkpoint,
    or a new one for the members without a committed runs row (their earlier rows purged); None when
    every member has one. Members that ended go into `progress`."""
    pid = pack.pack_id
    seq = int(record["seq"]) if record else 0
    # parts at or above the committed seq come from a crash before their commit: redo that work
    store.delete_uncommitted(pid, record)
    device = pick_device(settings.device, settings.gpus)
    if device == "cpu":
        import torch

        torch.set_num_threads(max(1, int(settings.cpus)))

    if record is not None and record.get("trainer") and not record.get("abandoned") and settings.checkpoints:
        trainer = store.load_trainer(pid, record["trainer"], device, **settings.trainer_options())
        live = {c.run_id for c in trainer.configs}
        progress.finished.update(r for r in pack.run_ids if r not in live)
        _generalised_from_runs(store, pid, progress, settings.rule())
        return trainer
    # no checkpoint: members already committed here stay; the rest start over, so their
    # committed metrics rows from an earlier attempt go first
    committed = _generalised_from_runs(store, pid, progress, settings.rule())
    progress.finished.update(committed)
    to_train = [m for m in pack.members if m.run_id not in committed]
    if seq > 0 and to_train:
        ids = {m.run_id for m in to_train}
        for table in ("metrics", "progress"):
            for part in store.pack_parts(table, pid):
                store.purge_rows(part, ids)
        purge_snapshots(store, pid, ids)
    if to_train:
        return budget.new_trainer(store, to_train, device, **settings.trainer_options())
    return None


class _Batch:
    """What the pack reported since its last commit, and the commit that writes it under the commit
    invariant (sweeps/parquet.py): parts, snapshots and end states at one seq, the checkpoint, then
    the record. Also each live member's evaluations, which its verdict reads when it ends."""

    def __init__(
        self,
        store: SweepStore,
        pack: Pack,
        settings: PackSettings,
        record: dict[str, Any] | None,
        progress: _Progress,
        trainer: Any,
        trial_id: str,
        node: str,
        extra: dict[str, Any],
        member_extra: dict[str, dict[str, Any]],
    ):
        self.store, self.pack, self.settings, self.progress, self.trainer = store, pack, settings, progress, trainer
        self.trial_id, self.node, self.extra, self.member_extra = trial_id, node, extra, member_extra
        self.seq = int(record["seq"]) if record else 0
        self.committed = record  # the pack's record as last written: what a failed commit falls back to
        self.rule = settings.rule()
        self.buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        # grokcore.snapshots.Snapshot since the last commit, by (run_id, epoch): a member pruned at an
        # evaluation gets its end snapshot after that evaluation's report gave its scheduled one
        self.snapshots: dict[tuple[str, int], Any] = {}
        self.end_states: list = []  # grokcore.continuation.EndState since the last commit
        # each live member's evaluations so far, (epoch, train/acc, test/acc): its verdict at its end reads them all
        self.histories: dict[str, list[tuple[int, float | None, float | None]]] = {}
        self.training_started: float | None = (
            None  # wall clock at this attempt's first epoch (the record keeps it for benchmarks)
        )
        # members continued to a larger budget: where they went on from; their verdicts read the history before
        starts = budget.starts_of(store, trainer.configs) if trainer is not None else {}
        self.continued_from = {rid: epoch for rid, (_, epoch) in starts.items()}
        progress.epochs_from = min(self.continued_from.values(), default=0)
        self.remember(budget.history_before(store, pack.pack_id, starts))
        self.keeper = None
        if trainer is not None and settings.end_states:
            from grokcore.continuation import EndStateKeeper

            self.keeper = EndStateKeeper(trainer)

    def read_history(self, on_eval: EvalHook | None) -> None:
        """Continuing: the live members' verdicts and the hook need what they reported before (committed rows)."""
        if self.seq == 0:
            return
        live = {c.run_id for c in self.trainer.configs}
        table = self.store.read_table("metrics", parts=self.store.pack_parts("metrics", self.pack.pack_id))
        before = (
            []
            if table is None
            else sorted((r for r in table.to_pylist() if r["run_id"] in live), key=lambda r: r["epoch"])
        )
        self.remember(before)
        if on_eval is not None and table is not None:
            on_eval.history(before)

    def remember(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.histories.setdefault(r["run_id"], []).append((r["epoch"], r.get("train/acc"), r.get("test/acc")))

    def _verdict_columns(self, run_id: str) -> dict[str, Any]:
        history = self.histories.pop(run_id, [])
        return decide([h[0] for h in history], [h[1] for h in history], [h[2] for h in history], self.rule).columns()

    def add_report(self, rep: Any) -> None:
        """One evaluation's report: its metrics, progress rows, snapshots, end states and ended members."""
        for row in rep.metrics:
            self.buffers["metrics"].append({k: row.get(k) for k in ("run_id", "epoch", *METRIC_COLUMNS)})
        self.remember(rep.metrics)
        self.buffers["progress"].extend(getattr(rep, "progress", None) or [])
        self.keep_snapshots(rep.snapshots)
        if self.keeper is not None:
            self.end_states.extend(self.keeper.take())
        self.finished_rows(rep.finished)

    def keep_snapshots(self, taken: list) -> None:
        for snap in taken:
            key = (snap.run_id, snap.epoch)
            if key in self.snapshots:  # one snapshot, both labels
                merged = self.snapshots[key]
                for label in snap.event.split("+"):
                    merged = merged.with_event(label)
                snap = merged
            self.snapshots[key] = snap

    def finished_rows(self, outcomes: list) -> None:
        rows = [
            {
                **o.to_row(),
                **self.extra,
                **self.member_extra.get(o.run_id, {}),
                **self._verdict_columns(o.run_id),
                "continued_from": self.continued_from.get(o.run_id),
            }
            for o in outcomes
        ]
        self.buffers["runs"].extend(rows)
        self.progress.see_finished(rows)

    def commit(self, final: bool) -> None:
        try:
            self._write(final)
        except OSError:  # a full disk, say: the batch's files go now, so the pack is as at its last commit
            self.store.delete_uncommitted(self.pack.pack_id, self.committed)
            self.store.delete_trainers(self.pack.pack_id, keep=(self.committed or {}).get("trainer"))
            raise

    def _write(self, final: bool) -> None:
        store, pid, seq, buffers = self.store, self.pack.pack_id, self.seq, self.buffers
        if buffers["runs"]:
            store.write_part("runs", pid, seq, buffers["runs"], runs_schema())
        if buffers["metrics"]:
            store.write_part("metrics", pid, seq, buffers["metrics"], metrics_schema())
        if buffers["progress"]:
            columns = {k for r in buffers["progress"] for k in r} - {"run_id", "epoch"}
            store.write_part("progress", pid, seq, buffers["progress"], progress_schema(columns))
        if self.snapshots:  # under the same seq as the parts: committed, or removed as a leftover, together
            write_snapshots(store, pid, seq, list(self.snapshots.values()), {c.run_id: c for c in self.pack.members})
            self.snapshots.clear()
        if self.end_states:  # likewise
            budget.write_end_states(store, pid, seq, self.end_states)
            self.end_states.clear()
        name = None
        if self.settings.checkpoints and not final and self.trainer is not None:
            name = trainer_name(seq)
            store.save_trainer(self.trainer, pid, name)
        progress = self.progress
        written = {
            "pack_id": pid,
            "members": self.pack.run_ids,
            "seq": seq + 1,
            "trainer": name,
            "done": final,
            "epoch": progress.epoch,
            "trial_id": self.trial_id,
            "train_seconds": progress.train_seconds,
            "updated": time.time(),
            "node": self.node or socket.gethostname(),
            "training_started": self.training_started,
        }
        store.write_record(pid, written)
        self.committed = written
        store.delete_trainers(pid, keep=name)
        self.seq += 1
        for rows in buffers.values():
            rows.clear()


def _train(
    trainer: Any,
    batch: _Batch,
    progress: _Progress,
    settings: PackSettings,
    report: Callable[[dict[str, Any]], None] | None,
    on_eval: EvalHook | None,
    progress_bar: bool,
) -> None:
    """Run the trainer to its end: each evaluation into the batch, the hook's pruning, a commit every
    `checkpoint_every_s`, a report to Tune every `report_every_s`, and the spec's injected faults."""
    store, pid = batch.store, batch.pack.pack_id
    last_commit = last_report = time.monotonic()
    batch.training_started = time.time()
    progress.live = trainer.live
    progress.epoch = trainer.epoch
    if report is not None:
        report(progress.metrics())
    for rep in trainer.run(progress=progress_bar):
        batch.add_report(rep)
        progress.see_metrics(rep.metrics)
        if on_eval is not None and rep.live > 0:
            _prune(trainer, batch, progress, on_eval, rep)
        progress.live, progress.epoch, progress.train_seconds = rep.live, rep.epoch, rep.train_seconds
        if settings.fault:
            _maybe_fault(store, pid, rep.epoch, settings.fault)
        now = time.monotonic()
        if trainer.live > 0 and now - last_commit >= settings.checkpoint_every_s:
            with store.disk_full_is_fatal(f"a commit of pack {pid}"):
                batch.commit(final=False)
            last_commit = time.monotonic()
        if report is not None and now - last_report >= settings.report_every_s:
            report(progress.metrics())
            last_report = now


def _prune(trainer: Any, batch: _Batch, progress: _Progress, on_eval: EvalHook, rep: Any) -> None:
    """End the members the hook names at this evaluation (status pruned): no metrics after this epoch; their
    runs rows and end snapshots go with the next commit, beside the checkpoint without them."""
    live = {c.run_id for c in trainer.configs}
    drop = [r for r in on_eval(rep.epoch, [m for m in rep.metrics if m["run_id"] in live]) if r in live]
    if drop:
        trainer.drop(drop, "pruned")
        outcomes, taken = trainer.departures()
        batch.finished_rows(outcomes)
        batch.keep_snapshots(taken)
        progress.live = trainer.live


def _maybe_fault(store: SweepStore, pack_id: str, epoch: int, fault: dict[str, Any]) -> None:
    if epoch < fault.get("epoch", 0) or pack_id not in fault.get("packs", [pack_id]):
        return
    marker = f"{FAULTS_DIR}/{pack_id}.json"
    count = store.read_json(marker) or 0
    if count >= fault.get("times", 1):
        return
    store.write_json(marker, count + 1)
    if fault.get("kind", "raise") == "exit":
        import os

        os._exit(17)  # the worker process dies, as if its node went away
    raise RuntimeError(f"injected fault in {pack_id} at epoch {epoch}")


def _generalised_from_runs(store: SweepStore, pack_id: str, progress: _Progress, rule: Thresholds) -> set[str]:
    """run_ids with a committed runs row in this pack's parts; adds those that generalised."""
    from sweeps.verdicts import with_verdicts

    table = with_verdicts(
        store,
        store.read_table("runs", parts=store.pack_parts("runs", pack_id)),
        rule,
        store.pack_parts("metrics", pack_id),
    )
    if table is None:
        return set()
    ids = table.column("run_id").to_pylist()
    for rid, epoch in zip(ids, table.column("epoch_generalised").to_pylist(), strict=True):
        if epoch is not None:
            progress.generalised.add(rid)
    return set(ids)


__all__ = ["EvalHook", "PackSettings", "pick_device", "run_pack"]

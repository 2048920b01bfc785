"""The grid source: every member of a spec (its grid, random draws and replicates), planned
against what is on disk and cut into packs up front; the driver hands them out as Tune trials.

    prep = prepare(spec, results)        # tidy an interrupted run, write sweep.yaml and plan.json
    print(describe(prep))                # the dry-run text (prepare(..., write=False) only reads)

A rerun of the same spec plans again: members with a runs row are skipped, packs continue from
their checkpoints, and packs that this plan no longer continues give up their unfinished rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grokcore.config import RunConfig
from sweeps import budget
from sweeps.check import clean_for_restart
from sweeps.packing import Pack, Plan, describe_auto, plan
from sweeps.parquet import SweepStore, counted_runs
from sweeps.snapshots import describe_storage, purge_snapshots


@dataclass
class Prepared:
    spec: Any  # SweepSpec
    store: SweepStore
    members: list[RunConfig]
    plan: Plan
    finished: dict[str, str]  # run_id -> pack_id of every member with a final runs row
    cleaned: dict[str, int] = field(default_factory=dict)  # what the clean-up removed, for the log
    extension: budget.Extension | None = None  # members continued to a larger budget (sweeps/budget.py)


def prepare(
    spec: Any,
    results: str | None = None,
    members: Sequence[RunConfig] | None = None,
    write: bool = True,
    retry_failed: bool = True,
) -> Prepared:
    """Plan the sweep; with write=True also tidy what an interrupted run left and write sweep.yaml
    and plan.json. Call with write=False for a dry run (reads only)."""
    members = list(members) if members is not None else spec.members()
    store = SweepStore(results or spec.results, spec.name)
    records = store.records()
    cleaned = {"uncommitted parts": 0, "half-written files": 0, "failed rows retried": 0, "orphan rows": 0}

    # 1. crash leftovers: uncommitted parts and half-written files
    if write:
        cleaned.update(clean_for_restart(store, records))
        cleaned["superseded runs rows"] = budget.purge_superseded(store)

    # 2. members with a runs row are finished (failed ones are retried unless asked not to)
    finished: dict[str, str] = {}
    failed_ids: set[str] = set()
    runs = counted_runs(store.read_table("runs", columns=["run_id", "pack_id", "status", "epochs_trained"]))
    if runs is not None:
        for rid, pid, status in zip(
            *(runs.column(c).to_pylist() for c in ("run_id", "pack_id", "status")), strict=True
        ):
            if status == "failed":
                failed_ids.add(rid)
            else:
                finished[rid] = pid
    expanded = {m.run_id for m in members}
    retry = (failed_ids & expanded) if retry_failed else set()
    if not retry_failed:
        finished.update(dict.fromkeys(failed_ids, "failed"))
    if write and retry:
        cleaned["failed rows retried"] += store.purge_failed_rows(retry)

    # 3. members at another budget: continued from their end states, or finished there (sweeps/budget.py)
    ext = budget.plan_extension(spec, store, members, finished)
    on_disk = dict(finished)  # where each member's runs row is (a continuing member's: where it ended before)
    if ext is not None:
        budget.refuse_unextendable(spec, ext)
        finished = {r: p for r, p in finished.items() if r not in ext.starts}

    # 4. cut packs; packs not continued by this plan give up their unfinished members' rows
    the_plan = plan(ext.main if ext else members, spec.pack_size, spec.gpus, finished=finished, records=records)
    if ext is not None:
        the_plan, members = budget.merge(the_plan, ext), ext.members
    if write:
        for pid in the_plan.orphans:
            record = records[pid]
            unfinished = {r for r in record.get("members", []) if on_disk.get(r) != pid}
            for table in ("metrics", "progress"):
                for part in store.parts(table, pid):
                    cleaned["orphan rows"] += store.purge_rows(part, unfinished)
            purge_snapshots(store, pid, unfinished)  # they train again in another pack
            store.delete_trainers(pid)
            store.write_record(pid, {**record, "trainer": None, "abandoned": True})
        store.write_spec(spec.text)
        store.write_plan(
            spec.name,
            [m.run_id for m in members],
            {p.pack_id: p.run_ids for p in the_plan.packs},
            to_run=[p.pack_id for p in the_plan.to_run],
        )
    return Prepared(spec, store, members, the_plan, finished, cleaned, ext)


def describe(prep: Prepared) -> str:
    """The dry-run text: members, packs, trials and estimated model-epochs."""
    spec, p = prep.spec, prep.plan
    n_done = sum(1 for m in prep.members if m.run_id in prep.finished)
    sizes = sorted({len(x.members) for x in p.packs})
    run_epochs = sum(x.model_epochs for x in p.to_run)
    if prep.extension is not None:  # continuing members train from where they ended, not from 0
        run_epochs -= prep.extension.epochs_before(p.to_run)
    shapes = len({m.shape_key() for m in prep.members})
    lines = [
        f"sweep {spec.name}  ({spec.source})",
        f"  results      {prep.store.uri}",
        "  axes         " + ("; ".join(f"{a.field}: {a.describe()}" for a in spec.axes) or "none"),
        (
            f"  members      {len(prep.members)}  (samples {spec.samples} x grid "
            f"{len(prep.members) // (spec.samples * spec.replicates)} x replicates {spec.replicates})"
        ),
        f"  packs        {len(p.packs)} in {shapes} shape group(s); pack size "
        f"{'auto' if spec.pack_size is None else spec.pack_size} -> {sizes[0]}"
        + (f"..{sizes[-1]}" if len(sizes) > 1 else ""),
        *([f"  auto         {describe_auto(prep.members, spec.gpus)}"] if spec.pack_size is None else []),
        f"  already done {n_done} members, {len(p.done)} packs",
        f"  trials       {len(p.to_run)} to run, {p.members_to_run} members, each with "
        f"{spec.cpus:g} CPU{'s' if spec.cpus != 1 else ''}" + (f" and {spec.gpus:g} GPU" if spec.gpus else ""),
        (
            f"  model-epochs {run_epochs:,} to run (at most; stop rules end members early), "
            f"{sum(x.model_epochs for x in p.packs):,} in the whole sweep"
        ),
    ]
    storage = describe_storage(spec.snapshots, prep.members)
    return "\n".join(lines + budget.describe(spec, prep.extension, prep.members) + ([storage] if storage else []))


class GridSource:
    """A PackSource (sweeps/sources.py) handing out the plan's packs still to run, in plan order."""

    def __init__(
        self, spec: Any, store: SweepStore, settings: dict[str, Any], retry_failed: bool = True, write: bool = True
    ):
        self.prep = prepare(spec, settings["results"], write=write, retry_failed=retry_failed)
        self.waiting = list(self.prep.plan.to_run)
        # Every pack is known up front (Tune may queue them all), except under an adaptive budget: a
        # round's undecided members go on in new packs once every pack of the round has ended.
        self.learns = spec.budget is not None
        self.spec, self.results, self.retry_failed, self.write = spec, settings["results"], retry_failed, write
        self.in_flight: set[str] = set()
        self.handed: list[Pack] = []
        self.rounds = 1
        self.members_to_run = self.prep.plan.members_to_run
        self.n_members = len(self.prep.members)
        # named by the full pack list: one experiment folder per sweep plan, reused by its reruns
        packs = " ".join(sorted(p.pack_id for p in self.prep.plan.packs))
        self.name = "tune-" + hashlib.sha256(packs.encode()).hexdigest()[:12]

    def describe(self) -> str:
        text = describe(self.prep)
        if any(self.prep.cleaned.values()):
            text += "\n  resumed: removed " + ", ".join(f"{v} {k}" for k, v in self.prep.cleaned.items() if v)
        return text

    def nothing_to_run(self) -> str | None:
        if self.prep.plan.to_run:
            return None
        return f"nothing to run: all {len(self.prep.members)} members have a runs row"

    def next_pack(self) -> Pack | None:
        if not self.waiting and self.learns and self.write and not self.in_flight:
            self._next_round()
        if not self.waiting:
            return None
        pack = self.waiting.pop(0)
        self.in_flight.add(pack.pack_id)
        self.handed.append(pack)
        return pack

    def _next_round(self) -> None:
        """Plan again from what is on disk (no pack of this sweep runs now): the undecided members of the
        round that ended go on, regrouped into packs by shape and budget."""
        handed = {p.pack_id for p in self.handed}
        prep = prepare(self.spec, self.results, write=True, retry_failed=self.retry_failed)
        fresh = [p for p in prep.plan.to_run if p.pack_id not in handed]
        if fresh:
            self.prep, self.waiting = prep, fresh
            self.members_to_run += sum(len(p.members) for p in fresh)
            self.rounds += 1

    def handed_out(self) -> list[Pack]:
        return list(self.handed) if self.learns else list(self.prep.plan.to_run)

    def pack_finished(self, pack_id: str) -> None:
        """A continued member's newer runs row is committed: its older row and end state go (on the
        driver, one writer of the packs' files they lie in)."""
        self.in_flight.discard(pack_id)
        pack = next((p for p in self.handed if p.pack_id == pack_id), None)
        if pack is not None and self.write and any(m.extended_from is not None for m in pack.members):
            budget.purge_superseded(self.prep.store, set(pack.run_ids))

    def trial_hooks(self, pack: Pack) -> dict[str, Any] | None:
        return None

    def member_extra(self, pack: Pack) -> dict[str, dict[str, Any]]:
        return {}

    def summary(self) -> list[str]:
        return [f"  adaptive budget: {self.rounds} round(s) planned in this run"] if self.learns else []

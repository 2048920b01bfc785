"""The grid source: every member of a spec (its grid, random draws and replicates), planned
against what is on disk and cut into packs up front; the driver hands them out as Tune trials.

    prep = prepare(spec, results)        # tidy an interrupted run, write sweep.yaml and plan.json
    print(describe(prep))                # the dry-run text (prepare(..., write=False) only reads)

A rerun of the same spec plans again: members with a runs row are skipped, packs continue from
their checkpoints, and packs that this plan no longer continues give up their unfinished rows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grokcore.config import RunConfig
from sweeps.check import clean_for_restart
from sweeps.packing import Pack, Plan, describe_auto, plan
from sweeps.parquet import SweepStore
from sweeps.snapshots import describe_storage, purge_snapshots


@dataclass
class Prepared:
    spec: Any  # SweepSpec
    store: SweepStore
    members: list[RunConfig]
    plan: Plan
    finished: dict[str, str]  # run_id -> pack_id of every member with a final runs row
    cleaned: dict[str, int] = field(default_factory=dict)  # what the clean-up removed, for the log


def prepare(spec: Any, results: str | None = None, members: Sequence[RunConfig] | None = None,
            write: bool = True, retry_failed: bool = True) -> Prepared:
    """Plan the sweep; with write=True also tidy what an interrupted run left and write sweep.yaml
    and plan.json. Call with write=False for a dry run (reads only)."""
    members = list(members) if members is not None else spec.members()
    store = SweepStore(results or spec.results, spec.name)
    records = store.records()
    cleaned = {"uncommitted parts": 0, "half-written files": 0, "failed rows retried": 0, "orphan rows": 0}

    # 1. crash leftovers: uncommitted parts and half-written files
    if write:
        cleaned.update(clean_for_restart(store, records))

    # 2. members with a runs row are finished (failed ones are retried unless asked not to)
    finished: dict[str, str] = {}
    failed_ids: set[str] = set()
    runs = store.read_table("runs", columns=["run_id", "pack_id", "status"])
    if runs is not None:
        for rid, pid, status in zip(*(runs.column(c).to_pylist() for c in ("run_id", "pack_id", "status"))):
            if status == "failed":
                failed_ids.add(rid)
            else:
                finished[rid] = pid
    expanded = {m.run_id for m in members}
    retry = (failed_ids & expanded) if retry_failed else set()
    if not retry_failed:
        finished.update({rid: "failed" for rid in failed_ids})
    if write and retry:
        cleaned["failed rows retried"] += store.purge_failed_rows(retry)

    # 3. cut packs; packs not continued by this plan give up their unfinished members' rows
    the_plan = plan(members, spec.pack_size, spec.gpus, finished=finished, records=records)
    if write:
        for pid in the_plan.orphans:
            record = records[pid]
            unfinished = {r for r in record.get("members", []) if r not in finished}
            for table in ("metrics", "progress"):
                for part in store.parts(table, pid):
                    cleaned["orphan rows"] += store.purge_rows(part, unfinished)
            purge_snapshots(store, pid, unfinished)  # they train again in another pack
            store.delete_trainers(pid)
            store.write_record(pid, {**record, "trainer": None, "abandoned": True})
        store.write_spec(spec.text)
        store.write_json("plan.json", {
            "name": spec.name, "members": [m.run_id for m in members],
            "packs": {p.pack_id: p.run_ids for p in the_plan.packs},
            "to_run": [p.pack_id for p in the_plan.to_run], "updated": time.time(),
        })
    return Prepared(spec, store, members, the_plan, finished, cleaned)


def describe(prep: Prepared) -> str:
    """The dry-run text: members, packs, trials and estimated model-epochs."""
    spec, p = prep.spec, prep.plan
    n_done = sum(1 for m in prep.members if m.run_id in prep.finished)
    sizes = sorted({len(x.members) for x in p.packs})
    run_epochs = sum(x.model_epochs for x in p.to_run)
    shapes = len({m.shape_key() for m in prep.members})
    lines = [
        f"sweep {spec.name}  ({spec.source})",
        f"  results      {prep.store.uri}",
        "  axes         " + ("; ".join(f"{a.field}: {a.describe()}" for a in spec.axes) or "none"),
        f"  members      {len(prep.members)}  (samples {spec.samples} x grid "
        f"{len(prep.members) // (spec.samples * spec.replicates)} x replicates {spec.replicates})",
        f"  packs        {len(p.packs)} in {shapes} shape group(s); pack size "
        f"{'auto' if spec.pack_size is None else spec.pack_size} -> {sizes[0]}"
        + (f"..{sizes[-1]}" if len(sizes) > 1 else ""),
        *([f"  auto         {describe_auto(prep.members, spec.gpus)}"] if spec.pack_size is None else []),
        f"  already done {n_done} members, {len(p.done)} packs",
        f"  trials       {len(p.to_run)} to run, {p.members_to_run} members, each with "
        f"{spec.cpus:g} CPU{'s' if spec.cpus != 1 else ''}"
        + (f" and {spec.gpus:g} GPU" if spec.gpus else ""),
        f"  model-epochs {run_epochs:,} to run (at most; stop rules end members early), "
        f"{sum(x.model_epochs for x in p.packs):,} in the whole sweep",
    ]
    storage = describe_storage(spec.snapshots, prep.members)
    return "\n".join(lines + ([storage] if storage else []))


class GridSource:
    """A PackSource (sweeps/sources.py) handing out the plan's packs still to run, in plan order."""

    learns = False  # every pack is known up front: Tune may queue them all

    def __init__(self, spec: Any, store: SweepStore, settings: dict[str, Any], retry_failed: bool = True,
                 write: bool = True):
        self.prep = prepare(spec, settings["results"], write=write, retry_failed=retry_failed)
        self.waiting = list(self.prep.plan.to_run)
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
        return self.waiting.pop(0) if self.waiting else None

    def handed_out(self) -> list[Pack]:
        return list(self.prep.plan.to_run)

    def pack_finished(self, pack_id: str) -> None:
        pass  # nothing learns from a grid

    def trial_hooks(self, pack: Pack) -> dict[str, Any] | None:
        return None

    def member_extra(self, pack: Pack) -> dict[str, dict[str, Any]]:
        return {}

    def summary(self) -> list[str]:
        return []

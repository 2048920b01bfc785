"""`grok measure DIR`: progress measures recomputed offline from a sweep's snapshots.

A measure added after a sweep ran (or the LLC where the sweep measured none, or a finer one) is
applied to its snapshots: the members of one pack at one snapshot epoch are loaded as a pack
(grokcore.snapshots.pack_at) and measured by grokcore.progress.measure_pack, the function the
trainer calls online, so the rows have the progress table's columns and, for the same pack at the
same epoch, the online values.

The rows are merged into the pack's own progress rows, one row per (run_id, epoch): a snapshot
epoch with no row gains one; a row that lacks a measure's columns (absent or NaN) gains them; with
`replace`, the measured columns are overwritten (e.g. a finer LLC at epochs measured online).
Values of columns not measured are kept. The merged rows are written by SweepStore.compact_pack's
`rewrite`, under the commit invariant compaction already follows (merged parts at the next seq,
then the pack's record, then the old parts go): a crash leaves the pack's rows as before or as
after, and its leftovers are removed by the next measure or sweep. Only finished packs are
measured (a running pack still commits its own parts). A rerun computes nothing that is there
already and writes nothing when nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pyarrow as pa

from grokcore.layout import PACKS_DIR
from grokcore.location import split_location
from grokcore.progress.registry import BY_KEY, SWITCHABLE, SWITCHED_ON
from sweeps.check import refuse_damaged
from sweeps.lease import hold
from sweeps.parquet import SNAPSHOT_DIR, SweepStore, progress_schema, rows_to_table

MEASURE_CHOICES = SWITCHABLE
"""What `grok measure --measures` can compute: the switchable rows of grokcore.progress.registry."""


@dataclass
class MeasureResult:
    rows_added: int = 0
    """(run_id, epoch) rows that had no progress row"""
    rows_changed: int = 0
    """existing rows whose measured columns gained or changed values"""
    packs_rewritten: int = 0
    skipped_unfinished: dict[str, int] = field(default_factory=dict)
    """pack -> snapshots left out because the pack has not finished"""


def measure_snapshots(
    sweep_dir: str,
    measures: Sequence[str] = SWITCHED_ON,
    epochs: Sequence[int] | None = None,
    device: str = "cpu",
    replace_values: bool = False,
    llc_every: int | None = None,
    sgld: dict[str, Any] | None = None,
    force: bool = False,
) -> MeasureResult:
    """Measure the snapshots of `sweep_dir` (a local path, mount or object-store URI) at `epochs`
    (all if None) and merge the rows into the progress table (module docstring). `llc_every`,
    `sgld`: ProgressSettings.llc_every and SGLDSettings fields (the trainer's defaults if None).
    Holds the sweep's lease (sweeps/lease.py: LeaseHeld while another writer has it; `force` takes
    it); DiskFull when a rewrite found no space (the pack's rows stay as before)."""
    from grokcore.progress import ProgressSettings, SGLDSettings

    unknown = set(measures) - set(MEASURE_CHOICES)
    if unknown or not measures:
        raise ValueError(f"--measures: unknown {sorted(unknown)}; known: {', '.join(MEASURE_CHOICES)}")
    settings = ProgressSettings.choosing(measures)
    if llc_every is not None:
        settings = replace(settings, llc_every=llc_every)  # checked by ProgressSettings
    if sgld:
        known = {f.name for f in fields(SGLDSettings)}
        bad = sorted(set(sgld) - known)
        if bad:
            raise ValueError(f"--sgld: unknown {bad}; known: {', '.join(sorted(known))}")
        settings = replace(settings, sgld=SGLDSettings(**sgld))

    store = _store(sweep_dir)
    with hold(store, "grok measure", force=force):
        return _measure_held(store, measures, epochs, settings, device, replace_values)


def _measure_held(
    store: SweepStore,
    measures: Sequence[str],
    epochs: Sequence[int] | None,
    settings: Any,
    device: str,
    replace_values: bool,
) -> MeasureResult:
    from grokcore.snapshots import SnapshotFiles

    files = SnapshotFiles(store.uri)
    records = store.records()
    refuse_damaged(store, records)  # a damaged file is named here, not by a safetensors traceback
    result = MeasureResult()
    pack_of = {p.name: p.pack_id for p in store.parts(SNAPSHOT_DIR)}
    leftover = {p.name for p in store.uncommitted(SNAPSHOT_DIR, records)}
    by_pack: dict[str, list[dict[str, Any]]] = {}
    for entry in files.list():
        name = entry["file"].rsplit("/", 1)[-1]
        if name in pack_of and name not in leftover and (epochs is None or entry["epoch"] in epochs):
            by_pack.setdefault(pack_of[name], []).append(entry)
    for pack_id, entries in sorted(by_pack.items()):
        record = records[pack_id]
        if not record.get("done"):
            result.skipped_unfinished[pack_id] = len(entries)
            continue
        store.delete_uncommitted(pack_id, record)  # an earlier measure's or compaction's crash leftovers
        parts = store.pack_parts("progress", pack_id)
        old = store.read_table("progress", parts=parts) if parts else None
        old_rows = {(r["run_id"], r["epoch"]): r for r in (old.to_pylist() if old is not None else [])}
        todo = (
            entries
            if replace_values
            else [e for e in entries if not _has_all(old_rows.get((e["run_id"], e["epoch"])), measures)]
        )
        new_rows = _measure(files, todo, settings, device)
        merged, added, changed = _merge(old_rows, new_rows, replace_values)
        if not added and not changed:
            continue
        columns = {k for r in merged for k in r} - {"run_id", "epoch"}
        table = rows_to_table(merged, progress_schema(columns))
        with store.disk_full_is_fatal(f"the progress rows of pack {pack_id}"):
            store.compact_pack(pack_id, rewrite={"progress": _constant(table)})
        result.rows_added += added
        result.rows_changed += changed
        result.packs_rewritten += 1
    return result


def _store(sweep_dir: str) -> SweepStore:
    parent, name = split_location(sweep_dir)
    if not name:
        raise ValueError(f"{sweep_dir}: give the sweep's folder, <results>/<name>")
    store = SweepStore(parent, name)
    if not store.exists() or not (store.exists(SNAPSHOT_DIR) or store.exists(PACKS_DIR)):
        raise ValueError(f"{sweep_dir}: no sweep here (no snapshots/ or checkpoints/)")
    return store


def _has_all(row: dict[str, Any] | None, measures: Sequence[str]) -> bool:
    """A row has a measure when a column under its marker holds a number (a mul member's restricted
    loss is NaN by design, its embedding norms are not; the LLC's NaN rows between online estimates
    count as missing, so they can be filled offline)."""
    if row is None:
        return False
    return all(any(c.startswith(BY_KEY[m].marker) and _number(v) for c, v in row.items()) for m in measures)


def _number(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _measure(files: Any, entries: list[dict[str, Any]], settings: Any, device: str) -> list[dict[str, Any]]:
    """Progress rows of these snapshots (one pack's), measured a snapshot epoch at a time."""
    from grokcore.progress import measure_pack
    from grokcore.snapshots import pack_at

    rows: list[dict[str, Any]] = []
    for epoch in sorted({e["epoch"] for e in entries}):
        members = [files.load(e["run_id"], epoch, entries=[e]) for e in entries if e["epoch"] == epoch]
        trainer = pack_at([c for c, _ in members], [w for _, w in members], epoch, device)
        rows += [
            {"run_id": c.run_id, "epoch": epoch, **row}
            for (c, _), row in zip(members, measure_pack(trainer, settings), strict=True)
        ]
    return rows


def _merge(
    old: dict[tuple, dict[str, Any]], new: list[dict[str, Any]], replace_values: bool
) -> tuple[list[dict[str, Any]], int, int]:
    """(rows, added, changed): the old rows with the new ones merged in, by (run_id, epoch). A new
    value fills a column the old row lacks (absent or NaN), or overwrites it with `replace_values`."""
    merged = {k: dict(r) for k, r in old.items()}
    added = changed = 0
    for row in new:
        key = (row["run_id"], row["epoch"])
        if key not in merged:
            merged[key] = dict(row)
            added += 1
            continue
        target, before = merged[key], dict(merged[key])
        for column, value in row.items():
            if replace_values or not _number(target.get(column)):
                target[column] = value
        changed += not _same(before, target)
    return [merged[k] for k in sorted(merged, key=lambda k: (k[1], k[0]))], added, changed


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or not (_number(a[k]) or _number(b[k])) for k in a)


def _constant(table: pa.Table) -> Callable[[pa.Table | None], pa.Table]:
    return lambda _old: table

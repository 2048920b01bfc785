"""The results of one sweep on any pyarrow filesystem: Parquet parts, pack records, checkpoints.

Layout under `<results>/<name>/` (see grokcore/records.py for the columns):

    sweep.yaml, plan.json                the spec as run, and its members and packs
    runs/part-<pack>-<seq>.parquet       runs rows of members that ended
    runs/part-<pack>-failed.parquet      members of a pack that failed for good (written by the driver)
    metrics/part-<pack>-<seq>.parquet    one row per (run_id, epoch) evaluated
    progress/part-<pack>-<seq>.parquet   progress measures, when the trainer reports any
    snapshots/part-<pack>-<seq>.safetensors   members' weights, when the spec asks (sweeps/snapshots.py)
    endstates/part-<pack>-<seq>.safetensors   end states of members that ended at their budget (sweeps/budget.py)
    checkpoints/packs/<pack>/state.json  the pack's commit record
    checkpoints/packs/<pack>/trainer-<seq>/   its trainer checkpoint (when checkpoints are on)

Invariant that keeps rows from duplicating across crashes, retries and resumes: a pack writes its
parts (snapshot and end-state files included) with consecutive sequence numbers, and after each
batch of parts (same seq in each table) it saves its trainer checkpoint and then rewrites its commit
record with `seq + 1`. Parts with seq below the record's `seq` are committed and describe exactly
the work up to the checkpoint the record names; parts at or above it (at most one batch, from a
crash between writing parts and committing) are deleted before the pack runs again, which then
redoes that work. When a pack is done its parts are merged into one per table
(`SweepStore.compact_pack`): the merged part takes the next seq, and the record's `compacted` says
the table parts below it are superseded (snapshot and end-state files are not merged and keep their
seqs). `grok measure` changes a finished pack's progress rows the same way (compact_pack's
`rewrite`). Every file (part, record, checkpoint) is written under a temporary hidden name and moved
into place, so readers see whole files or none; pyarrow and pandas skip hidden names.

A full disk is one more crash under this invariant: the write that fails leaves no file (its
temporary is removed), the record still names the last commit, and the parts written before it in
the same batch are leftovers (a pack's commit removes them at once, sweeps/runner.py).
`SweepStore.disk_full_is_fatal` turns it into DiskFull, which ends the writer with one message
instead of a retry that would fail the same way.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from grokcore.config import config_fields, config_hints
from grokcore.damage import DamagedFile, damaged, first_problem
from grokcore.layout import (
    ENDSTATE_DIR,
    FAILED,
    PACKS_DIR,
    PART_RE,
    PLAN_FILE,
    SNAPSHOT_DIR,
    SPEC_FILE,
    SPEC_HISTORY_DIR,
    TABLES,
    TRAINER_PREFIX,
    counted_rows,
    pack_dir,
    part_name,
    record_path,
)
from grokcore.location import filesystem, sweep_uri

# re-exported: sweeps' callers name them here; grokcore.location is their one home
from grokcore.location import results_location as results_location
from grokcore.location import split_location as split_location
from grokcore.records import METRIC_COLUMNS, OUTCOME_COLUMNS, RUN_KEYS, SCHEMA_METADATA_KEY, SCHEMA_VERSION
from grokcore.verdict import VERDICT_COLUMNS

# Folders whose parts follow the commit invariant: the tables, member snapshots and end states
# (part-<pack>-<seq>.safetensors, written with the same seq as the parts).
COMMITTED_DIRS = (*TABLES, SNAPSHOT_DIR, ENDSTATE_DIR)

_OUTCOME_TYPES: dict[str, pa.DataType] = {
    "status": pa.string(),
    "error": pa.string(),
    "epochs_trained": pa.int64(),
    "continued_from": pa.int64(),
    "epoch_train_99": pa.int64(),
    "epoch_test_99": pa.int64(),
    "wall_seconds": pa.float64(),
    "device": pa.string(),
    "optuna_trial": pa.int64(),
    "epoch_memorised": pa.int64(),
    "epoch_generalised": pa.int64(),
    "grokked": pa.bool_(),
}


# ---- schemas ------------------------------------------------------------------------------------
def _arrow_type(hint: Any) -> pa.DataType:
    origin = get_origin(hint)
    if origin is not None and (origin is Union or "UnionType" in str(origin)):
        (inner,) = [h for h in get_args(hint) if h is not type(None)]
        return _arrow_type(inner)
    if hint is bool:
        return pa.bool_()
    if hint is int:
        return pa.int64()
    if hint is float:
        return pa.float64()
    if origin is tuple:
        return pa.list_(pa.int64())
    return pa.string()  # str and Literal[...] of strings


def runs_schema() -> pa.Schema:
    """RUN_KEYS, every RunConfig field under its own name, OUTCOME_COLUMNS, then VERDICT_COLUMNS."""
    hints = config_hints()
    fields = [pa.field(k, pa.string()) for k in RUN_KEYS]
    fields += [pa.field(name, _arrow_type(hints[name])) for name in config_fields()]
    # final/* are floats; any outcome column this module does not know yet is stored as float64
    fields += [pa.field(c, _OUTCOME_TYPES.get(c, pa.float64())) for c in OUTCOME_COLUMNS]
    fields += [pa.field(c, _OUTCOME_TYPES[c]) for c in VERDICT_COLUMNS]  # written by sweeps/runner.py
    return _with_version(pa.schema(fields))


def metrics_schema() -> pa.Schema:
    return _with_version(
        pa.schema(
            [
                pa.field("run_id", pa.string()),
                pa.field("epoch", pa.int64()),
                *(pa.field(c, pa.float64()) for c in METRIC_COLUMNS),
            ]
        )
    )


def progress_schema(columns: Iterable[str]) -> pa.Schema:
    return _with_version(
        pa.schema(
            [
                pa.field("run_id", pa.string()),
                pa.field("epoch", pa.int64()),
                *(pa.field(c, pa.float64()) for c in sorted(columns)),
            ]
        )
    )


def _with_version(schema: pa.Schema) -> pa.Schema:
    return schema.with_metadata({SCHEMA_METADATA_KEY: str(SCHEMA_VERSION)})


def rows_to_table(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows in the schema's column order and types; keys the schema lacks become extra columns
    (type inferred) so that nothing a newer trainer reports is dropped silently."""
    arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema]
    names = list(schema.names)
    extra = sorted({k for r in rows for k in r} - set(names))
    for k in extra:
        arrays.append(pa.array([r.get(k) for r in rows]))
        names.append(k)
    fields = list(schema) + [pa.field(k, a.type) for k, a in zip(extra, arrays[len(schema) :], strict=True)]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


def counted_runs(runs: pa.Table | None, failed: bool = True) -> pa.Table | None:
    """The runs rows that count, one per member, by the one rule (`grokcore.layout.counted_rows`);
    failed=False also leaves out the members whose counted row failed (a reader for which they train
    again). `runs` needs run_id and status, and epochs_trained where a member may have rows at two budgets."""
    if runs is None:
        return None
    ids = runs.column("run_id").to_numpy(zero_copy_only=False)
    statuses = runs.column("status").to_numpy(zero_copy_only=False)
    trained = (
        runs.column("epochs_trained").to_numpy(zero_copy_only=False).astype(float)
        if "epochs_trained" in runs.column_names
        else None
    )
    chosen = counted_rows(ids, statuses, trained)
    if not failed:
        chosen = chosen[statuses[chosen] != FAILED]
    return runs.take(chosen)


def _committed(seq: int | None, record: dict[str, Any], folder: str = "") -> bool:
    """A part of this seq in this folder holds committed rows under its pack's record (module
    docstring). Compaction merges the tables only, so `compacted` does not apply to snapshot and
    end-state files: they keep their seqs (merging them would hold a pack's weights in memory at once)."""
    lower = 0 if folder in (SNAPSHOT_DIR, ENDSTATE_DIR) else int(record.get("compacted", 0))
    return seq is not None and lower <= seq < int(record.get("seq", 0))  # the driver's failed parts have no seq


# ---- filesystems ---------------------------------------------------------------------------------
class DiskFull(RuntimeError):
    """A write to the results location found no space left; what was committed before it stays."""


def is_disk_full(error: BaseException) -> bool:
    # pyarrow's OSError carries the errno only in its text ("... [errno 28] No space left on device")
    return isinstance(error, OSError) and (error.errno == errno.ENOSPC or "No space left on device" in str(error))


@dataclass(frozen=True)
class Part:
    table: str
    path: str
    pack_id: str
    seq: int | None  # None: the driver's failed part
    size: int | None = field(default=None, compare=False)  # bytes, from the listing (saves a request per file)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def failed(self) -> bool:
        """The driver's part of a pack that failed for good (part-<pack>-failed), not one the pack wrote."""
        return self.seq is None


class SweepStore:
    """Reads and writes `<results>/<name>/`; safe to construct on any node."""

    def __init__(self, results: str, name: str):
        self.uri = sweep_uri(results, name)
        self.fs, self.root = filesystem(self.uri)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def __repr__(self) -> str:
        return f"SweepStore({self.uri!r})"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def damaged(self, path: str, reason: str) -> DamagedFile:
        """The error naming a damaged file of this sweep, its pack and members (grokcore.damage)."""
        return damaged(self.fs, self.root, self.uri, path, reason)

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    @contextmanager
    def disk_full_is_fatal(self, what: str) -> Iterator[None]:
        """A full disk inside this block raises DiskFull naming `what` was being written."""
        try:
            yield
        except OSError as e:
            if not is_disk_full(e):
                raise
            raise DiskFull(
                f"{self.uri}: no space left on the device while writing {what}; the sweep is as it was "
                "after its last commit (nothing committed is lost): free space, then run the same "
                "command again to continue"
            ) from e

    # ---- whole files, atomically ----------------------------------------------------------------
    def _atomic(self, path: str, write) -> None:
        parent, name = path.rsplit("/", 1)
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            write(tmp)
            self.fs.move(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError, OSError):
                self.fs.delete_file(tmp)
            raise

    def write_text(self, rel: str, text: str) -> None:
        def write(tmp: str) -> None:
            with self.fs.open_output_stream(tmp) as f:
                f.write(text.encode())

        self._atomic(self.path(rel), write)

    def write_bytes(self, rel: str, data: bytes) -> None:
        def write(tmp: str) -> None:
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)

        self._atomic(self.path(rel), write)

    def read_bytes(self, path: str) -> bytes | None:
        """A file by its full path (a Part's), or None if it is gone."""
        try:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read_text(self, rel: str) -> str | None:
        try:
            with self.fs.open_input_stream(self.path(rel)) as f:
                return f.read().decode()
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, FileNotFoundError) or not self.exists(rel):
                return None
            raise

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_text(rel, json.dumps(obj, indent=1, sort_keys=True))

    def read_json(self, rel: str) -> Any:
        text = self.read_text(rel)
        return None if text is None else json.loads(text)

    def uncommitted(
        self, table: str, records: dict[str, dict[str, Any]] | None = None, pack_id: str | None = None
    ) -> list[Part]:
        """Parts at or above their pack's committed seq, or of packs never committed: the leftovers
        of a crash between writing parts and committing (see the module docstring); and parts a
        compaction merged (below the record's `compacted`) that a crash left behind. The one home of
        that rule: the driver before a (re)start, a pack before it continues, failed rows."""
        records = self.records() if records is None else records
        return [
            p
            for p in self.pack_parts(table, pack_id)
            if p.pack_id not in records or not _committed(p.seq, records[p.pack_id], table)
        ]

    def delete_uncommitted(self, pack_id: str, record: dict[str, Any] | None) -> int:
        """Remove one pack's crash leftovers (its record as read now; None: never committed)."""
        records = {} if record is None else {pack_id: record}
        return sum(self.delete_parts(self.uncommitted(t, records, pack_id)) for t in COMMITTED_DIRS)

    def delete_crash_leftovers(self, records: dict[str, dict[str, Any]] | None = None) -> dict[str, int]:
        """Before a sweep (re)starts its packs: remove uncommitted parts and half-written files.
        Planners call it through sweeps.check.clean_for_restart, which first refuses a damaged
        committed file (DamagedFile), before anything is deleted."""
        records = self.records() if records is None else records
        return {
            "uncommitted parts": sum(self.delete_parts(self.uncommitted(t, records)) for t in COMMITTED_DIRS),
            "half-written files": self.delete_temporaries(),
        }

    def purge_failed_rows(self, run_ids: set[str]) -> int:
        """Members about to train again after their pack failed for good lose their failed rows."""
        return sum(self.purge_rows(part, run_ids) for part in self.parts("runs") if part.failed)

    def write_plan(self, name: str, members: Iterable[str], packs: Mapping[str, Iterable[str]], **more: Any) -> None:
        """plan.json, the current plan: its members' and each pack's run_ids (`grok status`, the report's
        progress and a damaged file's message read them), and what a pack source adds in `more`."""
        self.write_json(
            PLAN_FILE,
            {
                "name": name,
                "members": list(members),
                "packs": {pid: list(ids) for pid, ids in packs.items()},
                **more,
                "updated": time.time(),
            },
        )

    def write_spec(self, text: str) -> None:
        """sweep.yaml is the spec as run; an earlier, different spec is kept as specs/sweep-<hash>.yaml."""
        old = self.read_text(SPEC_FILE)
        if old is not None and old != text:
            digest = hashlib.sha256(old.encode()).hexdigest()[:12]
            self.write_text(f"{SPEC_HISTORY_DIR}/sweep-{digest}.yaml", old)
        if old != text:
            self.write_text(SPEC_FILE, text)

    def delete_temporaries(self) -> int:
        """Remove the hidden temporaries (`.<name>.tmp-*`, `.trainer-*`) that a process killed
        mid-write leaves behind. Only while no pack of the sweep is running (the driver, before
        it starts trials, holding the sweep's lease: sweeps/lease.py): a live writer's temporary
        would go too."""
        dirs = [self.root, *(self.path(t) for t in COMMITTED_DIRS), self.path(SPEC_HISTORY_DIR)]
        packs = pafs.FileSelector(self.path(PACKS_DIR), allow_not_found=True)
        dirs += [i.path for i in self.fs.get_file_info(packs) if i.type == pafs.FileType.Directory]
        removed = 0
        for directory in dirs:
            for info in self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True)):
                name = info.base_name
                if not name.startswith(".") or not (".tmp-" in name or name.startswith(f".{TRAINER_PREFIX}")):
                    continue
                if info.type == pafs.FileType.Directory:
                    self._delete_dir(info.path)
                else:
                    try:
                        self.fs.delete_file(info.path)
                    except FileNotFoundError:
                        continue
                removed += 1
        return removed

    # ---- parts ---------------------------------------------------------------------------------------
    @staticmethod
    def part_name(pack_id: str, seq: int | None) -> str:
        return part_name(pack_id, seq)

    def write_part(
        self, table: str, pack_id: str, seq: int | None, rows: Sequence[dict[str, Any]], schema: pa.Schema
    ) -> str:
        data = rows_to_table(rows, schema)
        path = self.path(table, self.part_name(pack_id, seq))
        self._atomic(path, lambda tmp: pq.write_table(data, tmp, filesystem=self.fs))
        return path

    def pack_parts(self, table: str, pack_id: str | None = None) -> list[Part]:
        """The parts packs wrote themselves (numbered; the driver's failed parts left out). Once the
        pack's crash leftovers are gone (`delete_uncommitted`, which a pack runs before it continues)
        these are its committed parts, and the parts it wrote since in a pack that is running."""
        return [p for p in self.parts(table, pack_id) if not p.failed]

    def committed_parts(self, folder: str, pack_id: str, record: dict[str, Any] | None) -> list[Part]:
        """The pack's parts in this folder that its commit record (as read now) covers."""
        return [p for p in self.pack_parts(folder, pack_id) if record is not None and _committed(p.seq, record, folder)]

    def parts(self, table: str, pack_id: str | None = None) -> list[Part]:
        selector = pafs.FileSelector(self.path(table), allow_not_found=True)
        out = []
        for info in self.fs.get_file_info(selector):
            m = PART_RE.match(info.base_name)
            if info.type != pafs.FileType.File or m is None:
                continue
            if pack_id is not None and m["pack"] != pack_id:
                continue
            seq = None if m["seq"] == "failed" else int(m["seq"])
            out.append(Part(table, info.path, m["pack"], seq, info.size))
        return sorted(out, key=lambda p: (p.pack_id, -1 if p.seq is None else p.seq))

    def delete_parts(self, parts: Iterable[Part]) -> int:
        n = 0
        for part in parts:
            try:
                self.fs.delete_file(part.path)
                n += 1
            except FileNotFoundError:
                pass
        return n

    def read_part(self, part: Part, columns: Sequence[str] | None = None) -> pa.Table | None:
        try:
            return pq.read_table(part.path, filesystem=self.fs, columns=list(columns) if columns else None)
        except FileNotFoundError:
            return None  # deleted meanwhile (an uncommitted part being cleaned up)

    def dataset(self, parts: Sequence[Part]) -> ds.Dataset:
        """Parts as one pyarrow dataset. Its schema unites every part's columns (a table's parts may
        differ: progress measures, columns a newer trainer adds); reading through it projects
        columns and reads the files concurrently, which matters with thousands of parts or an
        object store, where each file costs a round trip."""
        from grokcore.parquet_files import parquet_dataset  # one reader of part files for sweeps and analysis

        return parquet_dataset(self.fs, [(p.path, p.size) for p in parts])

    def _through_dataset(self, table: str, parts: Sequence[Part] | None, read):
        """read(dataset) over the table's parts (or these parts); a part deleted between listing and
        reading (an uncommitted one being cleaned up, or merged by compaction) means: list again."""
        for _ in range(5):
            chosen = (
                self.parts(table)
                if parts is None
                else [p for p in parts if self.fs.get_file_info(p.path).type == pafs.FileType.File]
            )
            if not chosen:
                return None
            try:
                return read(self.dataset(chosen))
            except FileNotFoundError:
                continue
            except (pa.ArrowException, OSError) as e:
                found = first_problem(self.fs, [(p.path, p.size) for p in chosen])
                if found is None:
                    raise
                raise self.damaged(*found) from e
        raise OSError(f"{self.path(table)}: parts keep changing while being read")

    def read_table(
        self, table: str, columns: Sequence[str] | None = None, parts: Sequence[Part] | None = None
    ) -> pa.Table | None:
        """All parts of a table concatenated (None if there are none). Readable while a sweep runs;
        right after a crash it may briefly include an uncommitted part that the resume removes.
        Requested columns that no part has are left out."""

        def read(dataset: ds.Dataset) -> pa.Table | None:
            names = None if columns is None else [c for c in columns if c in dataset.schema.names]
            data = dataset.to_table(columns=names)
            return data if data.num_rows else None

        return self._through_dataset(table, parts, read)

    def count_rows(self, table: str) -> int:
        """Rows in a table's parts, from their footers (no column is read)."""
        return self._through_dataset(table, None, lambda dataset: dataset.count_rows()) or 0

    def purge_rows(self, part: Part, run_ids: set[str]) -> int:
        """Rewrite a part without the rows of these members (atomically); returns rows removed."""
        data = self.read_part(part)
        if data is None:
            return 0
        keep = [r not in run_ids for r in data.column("run_id").to_pylist()]
        removed = keep.count(False)
        if removed == 0:
            return 0
        if removed == data.num_rows:
            self.delete_parts([part])
            return removed
        kept = data.filter(pa.array(keep))
        self._atomic(part.path, lambda tmp: pq.write_table(kept, tmp, filesystem=self.fs))
        return removed

    def compact_pack(
        self, pack_id: str, rewrite: dict[str, Callable[[pa.Table | None], pa.Table | None]] | None = None
    ) -> int:
        """Merge a finished pack's committed parts into one part per table; returns parts removed.
        `rewrite` (table -> function of its merged rows, None where it has none) changes a table's
        rows in the same step, so a finished pack's rows are changed under this one rule (how
        `grok measure` replaces or adds progress columns); with it, a pack already compacted is
        merged again.

        A pack commits a batch of parts every few minutes, so a long sweep leaves thousands of
        small files, and on an object store every file costs a round trip to list and read.
        Under the commit invariant: the merged parts are written at the next seq S (uncommitted,
        so a crash now leaves only leftovers that the resume deletes), then the record moves to
        seq S + 1 with `compacted: S` (parts below S are merged; they become leftovers, see
        `uncommitted`), then they are deleted. A reader between the last two steps may see a
        member's rows twice; analysis and `grok status` keep one row per run_id (and epoch)."""
        record = self.read_record(pack_id)
        if record is None or not record.get("done"):
            return 0
        by_table = {t: self.committed_parts(t, pack_id, record) for t in TABLES}
        if not rewrite and all(len(parts) <= 1 for parts in by_table.values()):
            return 0  # already one file per table
        merged_seq = int(record["seq"])
        for table, parts in by_table.items():
            data = self.read_table(table, parts=parts) if parts else None
            if rewrite and table in rewrite:
                data = rewrite[table](data)
            if data is None:
                continue
            path = self.path(table, self.part_name(pack_id, merged_seq))
            self._atomic(path, lambda tmp, data=data: pq.write_table(data, tmp, filesystem=self.fs))
        self.write_record(pack_id, {**record, "seq": merged_seq + 1, "compacted": merged_seq})
        return self.delete_parts(p for parts in by_table.values() for p in parts)

    # ---- pack records and checkpoints ----------------------------------------------------------------
    @staticmethod
    def pack_dir(pack_id: str) -> str:
        return pack_dir(pack_id)

    def read_record(self, pack_id: str) -> dict[str, Any] | None:
        """The pack's commit record, None if it has none; DamagedFile if it cannot be read, never
        None then: a pack without a record has only uncommitted parts, which the driver deletes."""
        rel = record_path(pack_id)
        try:
            record = self.read_json(rel)
        except (ValueError, UnicodeDecodeError) as e:
            raise self.damaged(self.path(rel), f"not a JSON commit record: {e}") from e
        if record is not None and not (isinstance(record, dict) and isinstance(record.get("seq"), int)):
            raise self.damaged(self.path(rel), "a commit record without an integer seq")
        return record

    def write_record(self, pack_id: str, record: dict[str, Any]) -> None:
        self.write_json(record_path(pack_id), record)

    def records(self, collect: list[DamagedFile] | None = None) -> dict[str, dict[str, Any]]:
        """Every pack's commit record. A damaged one raises DamagedFile, or, given a list, is added
        to it and left out (`grok check`, `--repair`: they report it, never act on its parts)."""
        selector = pafs.FileSelector(self.path(PACKS_DIR), allow_not_found=True)
        out = {}
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.Directory and not info.base_name.startswith("."):
                try:
                    record = self.read_record(info.base_name)
                except DamagedFile as e:
                    if collect is None:
                        raise
                    collect.append(e)
                    continue
                if record is not None:
                    out[info.base_name] = record
        return out

    def save_trainer(self, trainer: Any, pack_id: str, name: str) -> None:
        """trainer.save() writes a directory atomically. Off the local disk we save to a temporary
        directory and upload its files straight to their place: an object store cannot rename a
        directory (S3 moves single objects only), and none is needed, since nothing reads a
        trainer folder until the pack's record names it, which is written after the upload; a
        folder a crash left half-uploaded is never named and goes with the next delete_trainers."""
        target = self.path(self.pack_dir(pack_id), name)
        if self.local:
            trainer.save(target)
            return
        with tempfile.TemporaryDirectory() as tmp:
            trainer.save(Path(tmp) / name)
            pafs.copy_files(
                str(Path(tmp) / name), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs
            )

    def load_trainer(self, pack_id: str, name: str, device: Any, **trainer_options: Any) -> Any:
        from grokcore import PackTrainer

        source = self.path(self.pack_dir(pack_id), name)
        if self.local:
            return PackTrainer.load(source, device=device, **trainer_options)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / name).mkdir()  # copying onto the local disk does not create the folder
            pafs.copy_files(
                source, str(Path(tmp) / name), source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem()
            )
            return PackTrainer.load(Path(tmp) / name, device=device, **trainer_options)

    def delete_trainers(self, pack_id: str, keep: str | None = None) -> None:
        selector = pafs.FileSelector(self.path(self.pack_dir(pack_id)), allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if (
                info.type == pafs.FileType.Directory
                and info.base_name != keep
                and (info.base_name.startswith(TRAINER_PREFIX) or info.base_name.startswith(f".{TRAINER_PREFIX}"))
            ):
                self._delete_dir(info.path)

    def _delete_dir(self, path: str) -> None:
        if self.local:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(FileNotFoundError, OSError):
                self.fs.delete_dir(path)

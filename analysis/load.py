"""Read one or several sweeps from the results layout into DataFrames.

The layout (the contract with sweeps/, see grokcore/records.py):

    <results>/<sweep name>/sweep.yaml
    <results>/<sweep name>/runs/part-*.parquet       one row per member when it ends
    <results>/<sweep name>/metrics/part-*.parquet    one row per (run_id, epoch) evaluation
    <results>/<sweep name>/progress/part-*.parquet   optional progress measures

A sweep may still be running: members then have metrics rows but no runs row
yet. Loading keeps them (their status reads "running") instead of failing, so a
report can be made while the sweep goes on.

Locations may be local paths or pyarrow filesystem URIs (file://, s3://, gs://),
because a cluster writes its results to shared storage.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import yaml

from analysis.columns import (
    REQUIRED_METRICS_COLUMNS,
    REQUIRED_PROGRESS_COLUMNS,
    REQUIRED_RUNS_COLUMNS,
    SCHEMA_METADATA_KEY,
    SCHEMA_VERSION,
    SWEEP_COLUMN,
)
from analysis.errors import AnalysisError
from grokcore.damage import damaged, first_problem
from grokcore.layout import PLAN_FILE, SPEC_FILE, TABLES, counted_rows
from grokcore.location import filesystem, is_uri
from grokcore.parquet_files import parquet_dataset
from grokcore.verdict import Thresholds, ThresholdsError

PART_PATTERN = "part-*.parquet"
# The tables are read into the system allocator's memory, not pyarrow's default pool (mimalloc): that
# one keeps what a read has freed; loading benchmarks/scale.py's 100k-member sweep peaked at 1.48 GB
# with it and 1.31 GB with this (measured side by side; the goal is 1.5 GB).
READ_POOL = pa.system_memory_pool()
REQUIRED_COLUMNS = {
    "runs": REQUIRED_RUNS_COLUMNS,
    "metrics": REQUIRED_METRICS_COLUMNS,
    "progress": REQUIRED_PROGRESS_COLUMNS,
}


@dataclass
class Sweep:
    """The tables of one sweep, or of several loaded together (then runs has a `sweep` column that can be an axis)."""

    name: str
    """The spec's name, or the names of several sweeps joined by '+'."""
    locations: tuple[str, ...]
    """Where each sweep directory was read from."""
    specs: dict[str, dict]
    """sweep name -> its spec as run (sweep.yaml); {} for a sweep without one."""
    runs: pd.DataFrame
    metrics: pd.DataFrame
    progress: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    """What loading noticed and tolerated (members still running, duplicate rows dropped), for the report."""
    planned: int = 0
    """Members in the sweeps' plan.json files (0: no plan), for how far a running sweep has got."""

    @property
    def spec(self) -> dict:
        """The spec of a single sweep; for several, {'sweeps': {name: spec}}."""
        if len(self.specs) == 1:
            return next(iter(self.specs.values()))
        return {"sweeps": self.specs}

    @property
    def running_run_ids(self) -> list[str]:
        """Members that have metrics but no runs row yet: still training (or their pack died before writing it)."""
        ended = set(self.runs["run_id"].unique().tolist())
        return sorted(set(self.metrics["run_id"].unique().tolist()) - ended)

    def swept_axes(self, include_seed: bool = False) -> list[str]:
        from analysis.axes import swept_axes

        return swept_axes(self.runs, include_seed=include_seed)

    def thresholds(self) -> Thresholds:
        """The thresholds the spec(s) set (`thresholds:`, grokcore/verdict.py; the defaults where absent): what
        the runs rows' verdicts, `grok status` and the searches judged by. Several sweeps must agree."""
        found: dict[Thresholds, list[str]] = {}
        for name, spec in self.specs.items():
            try:
                th = Thresholds.from_mapping(spec.get("thresholds"))
            except ThresholdsError as exc:
                raise AnalysisError(f"{name}/sweep.yaml: thresholds: {exc}") from None
            found.setdefault(th, []).append(name)
        if len(found) > 1:
            raise AnalysisError(
                "the sweeps set different thresholds ("
                + "; ".join(f"{', '.join(n)}: {th}" for th, n in found.items())
                + "); give the ones to judge all by (grok report --hold, --threshold, ...)"
            )
        return next(iter(found), Thresholds())

    def member_times(self, thresholds: Thresholds | None = None) -> pd.DataFrame:
        """Shortcut for analysis.derive.member_times(self.metrics, self.runs, thresholds); by default with the
        spec's thresholds (self.thresholds())."""
        from analysis.derive import member_times

        return member_times(self.metrics, self.runs, thresholds or self.thresholds())


def load_sweep(locations: str | Path | Iterable[str | Path], parts: PartReader | None = None) -> Sweep:
    """Load a sweep directory, a results directory holding several sweeps, or a list of either.
    `parts`: what reads a table's part files (default: all of them, now); the live report passes one
    that keeps what it read and reads only the parts that are new (analysis/watch.py).

    Several sweeps are concatenated: runs gains a `sweep` column (the sweep's
    name), and a member that appears in more than one (same config, hence same
    run_id) is kept once (a row that did not fail, then the one that trained longest).
    """
    if isinstance(locations, (str, Path)):
        locations = [locations]
    locations = list(locations)
    if not locations:
        raise AnalysisError("no sweep directory given")

    sweep_dirs: list[tuple[pafs.FileSystem, str, str]] = []
    for location in locations:
        sweep_dirs.extend(_find_sweep_dirs(location))

    loaded = []
    notes: list[str] = []
    for fs, path, shown in sweep_dirs:
        one = _read_sweep_dir(fs, path, shown, parts or read_parts)
        if one is None:
            notes.append(f"{shown}: no results yet (no runs or metrics parts); left out")
            continue
        loaded.append(one)
    if not loaded:
        shown = ", ".join(s for _, _, s in sweep_dirs)
        raise AnalysisError(
            f"{shown}: the sweep has no results yet: no runs/{PART_PATTERN} or metrics/{PART_PATTERN} files"
        )

    names = [one["name"] for one in loaded]
    if len(set(names)) != len(names):
        # Two directories with the same spec name: tell them apart by their location.
        names = [f"{one['name']} ({one['location']})" for one in loaded]
    for one, name in zip(loaded, names, strict=True):
        one["runs"][SWEEP_COLUMN] = name
        notes.extend(one["notes"])

    runs = _concat([one["runs"] for one in loaded])
    metrics = _concat([one["metrics"] for one in loaded])
    progress = _concat([one["progress"] for one in loaded])

    runs, dropped = _dedupe_runs(runs)
    if dropped:
        notes.append(
            f"{dropped} duplicate runs row(s) dropped (same run_id; kept a row that did not fail, "
            "then the one that trained longest)"
        )
    metrics, dropped = _dedupe(metrics, ["run_id", "epoch"])
    if dropped:
        notes.append(f"{dropped} duplicate metrics row(s) dropped (same run_id and epoch)")
    if len(progress):
        progress, dropped = _dedupe(progress, ["run_id", "epoch"])
        if dropped:
            notes.append(f"{dropped} duplicate progress row(s) dropped (same run_id and epoch)")

    metrics = metrics.sort_values(["run_id", "epoch"], kind="stable").reset_index(drop=True)
    if len(progress):
        progress = progress.sort_values(["run_id", "epoch"], kind="stable").reset_index(drop=True)

    sweep = Sweep(
        name="+".join(names),
        locations=tuple(one["location"] for one in loaded),
        specs={name: one["spec"] for name, one in zip(names, loaded, strict=True)},
        runs=runs.reset_index(drop=True),
        metrics=metrics,
        progress=progress,
        notes=notes,
    )
    planned = {r for one in loaded for r in one["planned"]}
    sweep.planned = len(planned)
    if planned:
        started = set(runs["run_id"].unique().tolist()) | set(metrics["run_id"].unique().tolist())
        sweep.notes.append(
            f"{len(planned)} member(s) planned: {len(planned & set(runs['run_id'].unique().tolist()))} ended, "
            f"{len(planned - started)} not started yet"
        )
    running = sweep.running_run_ids
    if running:
        sweep.notes.append(
            f"{len(running)} member(s) have metrics but no runs row yet (still running, or their pack died): "
            "their config is unknown, so they are counted but not placed on any axis"
        )
    return sweep


# ---- finding sweeps -------------------------------------------------------------------------


def _open(location: str | Path) -> tuple[pafs.FileSystem, str, str]:
    text = str(location)
    if is_uri(text):
        try:
            fs, path = filesystem(text)
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise AnalysisError(f"{text}: not a path or a filesystem URI that pyarrow can open ({exc})") from exc
        return fs, path or "/", text.rstrip("/")
    fs, path = filesystem(text)
    return fs, path, text.rstrip("/") if "://" in text else text  # as written (a file:// URI too)


def _list(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    return fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))


def _is_sweep_dir(fs: pafs.FileSystem, path: str) -> bool:
    names = {info.base_name for info in _list(fs, path)}
    return bool(names & {SPEC_FILE, PLAN_FILE, "runs", "metrics"})


def _find_sweep_dirs(location: str | Path) -> list[tuple[pafs.FileSystem, str, str]]:
    fs, path, shown = _open(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise AnalysisError(f"{shown}: no such directory")
    if info.type != pafs.FileType.Directory:
        raise AnalysisError(
            f"{shown}: not a directory; give a sweep directory (with {SPEC_FILE}) or a results directory"
        )
    if _is_sweep_dir(fs, path):
        return [(fs, path, shown)]
    subdirs = sorted(
        (i for i in _list(fs, path) if i.type == pafs.FileType.Directory and _is_sweep_dir(fs, i.path)),
        key=lambda i: i.base_name,
    )
    if not subdirs:
        raise AnalysisError(
            f"{shown}: no sweep found. A sweep directory holds {SPEC_FILE} and runs/{PART_PATTERN}, "
            f"metrics/{PART_PATTERN}; a results directory holds such sweep directories. Neither is here."
        )
    return [(fs, i.path, f"{shown.rstrip('/')}/{i.base_name}") for i in subdirs]


# ---- reading one sweep ----------------------------------------------------------------------


def _read_sweep_dir(fs: pafs.FileSystem, path: str, shown: str, parts: PartReader) -> dict | None:
    spec = _read_spec(fs, path, shown)
    tables = {table: _read_table(fs, path, shown, table, parts) for table in TABLES}
    if tables["runs"] is None and tables["metrics"] is None:
        return None
    if tables["metrics"] is None:
        metrics = pd.DataFrame({c: pd.Series(dtype="float64") for c in REQUIRED_METRICS_COLUMNS})
        metrics["run_id"] = metrics["run_id"].astype(object)
        tables["metrics"] = metrics
    if tables["runs"] is None:
        tables["runs"] = pd.DataFrame(
            {"run_id": pd.Series(dtype=object), "status": pd.Series(dtype=object), "epochs": pd.Series(dtype="float64")}
        )
    if tables["progress"] is None:
        tables["progress"] = pd.DataFrame()
    name = (
        spec.get("name") if isinstance(spec.get("name"), str) and spec.get("name") else path.rstrip("/").split("/")[-1]
    )
    return {"name": name, "location": shown, "spec": spec, "notes": [], "planned": _read_plan(fs, path), **tables}


def _read_plan(fs: pafs.FileSystem, path: str) -> list[str]:
    """The planned members' run_ids from plan.json; [] when there is none or it cannot be read (it is optional)."""
    try:
        with fs.open_input_stream(f"{path}/{PLAN_FILE}") as stream:
            plan = json.loads(stream.read().decode("utf-8"))
    except (FileNotFoundError, OSError, ValueError):
        return []
    members = plan.get("members") if isinstance(plan, dict) else None
    return [m for m in members if isinstance(m, str)] if isinstance(members, list) else []


def _read_spec(fs: pafs.FileSystem, path: str, shown: str) -> dict:
    spec_path = f"{path}/{SPEC_FILE}"
    if fs.get_file_info(spec_path).type != pafs.FileType.File:
        return {}
    with fs.open_input_stream(spec_path) as stream:
        text = stream.read().decode("utf-8", errors="replace")
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnalysisError(f"{shown}/{SPEC_FILE}: not valid YAML ({exc})") from exc
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise AnalysisError(
            f"{shown}/{SPEC_FILE}: must be a mapping (name, base, axes, ...), got {type(spec).__name__}"
        )
    return spec


def _read_table(fs: pafs.FileSystem, path: str, shown: str, table: str, read: PartReader) -> pd.DataFrame | None:
    """All part files of one table, checked against the schema version and the required columns.

    Read as one pyarrow dataset: its schema unites the parts' columns (a newer trainer may add
    some), and pyarrow reads the files concurrently, which is what matters when a sweep holds
    thousands of parts or lives on an object store where each file costs a round trip."""
    for _ in range(3):
        parts = sorted(
            (
                i
                for i in _list(fs, f"{path}/{table}")
                if i.type == pafs.FileType.File and fnmatch.fnmatch(i.base_name, PART_PATTERN)
            ),
            key=lambda i: i.base_name,
        )
        if not parts:
            return None
        try:
            return read(fs, parts, shown, table)
        except FileNotFoundError:
            continue  # a part replaced between listing and reading (written whole, then renamed): list again
    raise AnalysisError(f"{shown}/{table}: part files keep changing while being read; try again")


def read_parts(fs: pafs.FileSystem, parts: list[pafs.FileInfo], shown: str, table: str) -> pd.DataFrame:
    """One table's part files (as listed) read together into one DataFrame."""
    return to_frame(read_parts_arrow(fs, parts, shown, table))


def read_parts_arrow(fs: pafs.FileSystem, parts: list[pafs.FileInfo], shown: str, table: str) -> pa.Table:
    """The same as an Arrow table (schema united across the parts), before `to_frame`."""
    return _read_parts(fs, [(p.path, p.size) for p in parts], shown, table)


PartReader = Callable[[pafs.FileSystem, list[pafs.FileInfo], str, str], pd.DataFrame]
"""(filesystem, a table's part files as listed, the sweep as shown, table) -> the table."""


def _read_parts(fs: pafs.FileSystem, files: list[tuple[str, int]], shown: str, table: str) -> pa.Table:
    root = files[0][0].rsplit("/", 2)[0]  # <sweep>/<table>/part-...: where damaged() finds the pack's record
    try:
        dataset = parquet_dataset(fs, files)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError, TypeError) as exc:
        found = first_problem(fs, files)  # name the file at fault, if one alone is
        if found is not None:
            raise damaged(fs, root, shown, *found) from exc
        raise AnalysisError(f"{shown}/{table}: part files have incompatible column types ({exc})") from exc
    for fragment in dataset.get_fragments():  # footers only: each file's version and columns
        where = f"{shown.rstrip('/')}/{table}/{fragment.path.rsplit('/', 1)[-1]}"
        _check_schema_version(fragment.physical_schema, where)
        names = fragment.physical_schema.names
        missing = [c for c in REQUIRED_COLUMNS[table] if c not in names]
        if missing:
            raise AnalysisError(
                f"{where}: missing column(s) {', '.join(repr(c) for c in missing)}; a {table} table needs "
                f"{', '.join(REQUIRED_COLUMNS[table])}. Columns found: {', '.join(names)}"
            )
    try:
        combined = dataset.to_table(memory_pool=READ_POOL)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        found = first_problem(fs, files)  # a damaged data page behind a whole footer
        if found is not None:
            raise damaged(fs, root, shown, *found) from exc
        raise AnalysisError(f"{shown}/{table}: part files could not be read ({exc})") from exc
    return combined.replace_schema_metadata(None)


def _check_schema_version(schema: pa.Schema, where: str) -> None:
    metadata = schema.metadata or {}
    raw = metadata.get(SCHEMA_METADATA_KEY.encode())
    if raw is None:
        return  # written by another tool: read it by its column names
    try:
        version = int(raw.decode())
    except ValueError as exc:
        raise AnalysisError(f"{where}: metadata {SCHEMA_METADATA_KEY}={raw!r} is not an integer") from exc
    if version != SCHEMA_VERSION:
        raise AnalysisError(
            f"{where}: written with schema version {version}; this analysis reads version {SCHEMA_VERSION}"
        )


def to_frame(arrow_table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas, with list columns (force_adjacent) as tuples so they can be grouped on."""
    list_columns = [f.name for f in arrow_table.schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]
    frame = arrow_table.drop_columns(list_columns).to_pandas(memory_pool=READ_POOL)
    for name in list_columns:
        frame[name] = pd.Series(
            [tuple(v) if v is not None else None for v in arrow_table.column(name).to_pylist()],
            dtype=object,
            index=frame.index,
        )
    return frame[arrow_table.column_names]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    nonempty = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(nonempty, ignore_index=True, sort=False)


def _dedupe(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, int]:
    """Rows of the same (run_id, epoch) describe the same evaluation (a redone or shared member): keep the first."""
    if not len(frame) or not frame.duplicated(keys).any():
        return frame, 0
    kept = frame.drop_duplicates(keys, keep="first")
    return kept, len(frame) - len(kept)


def _dedupe_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One runs row per member, by the one rule (`grokcore.layout.counted_rows`). Several appear when a
    failed pack's members were retried (the driver's failed row stays beside the new one) or two sweeps
    share a member."""
    if not len(runs) or not runs["run_id"].duplicated().any():
        return runs, 0
    trained = (
        pd.to_numeric(runs["epochs_trained"], errors="coerce").to_numpy(dtype=float)
        if "epochs_trained" in runs.columns
        else None
    )
    kept = runs.iloc[counted_rows(runs["run_id"].to_numpy(), runs["status"].astype(object).to_numpy(), trained)]
    return kept, len(runs) - len(kept)

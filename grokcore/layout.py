"""The results layout under `<results>/<sweep name>/`: its file and folder names, and the rules its
readers share. `sweeps/` writes the layout and `analysis/` reads it; both import these names from here
and type none of them (docs/design.md, Results layout, describes each).

Here and not in sweeps or analysis because grokcore is the one package both import (docs/design.md,
Package boundaries). Standard library and numpy only: no pyarrow, no pandas, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

TABLES = ("runs", "metrics", "progress")  # Parquet tables: <table>/part-<pack>-<seq>.parquet
SNAPSHOT_DIR = "snapshots"  # members' weights (grokcore.snapshots reads, sweeps/snapshots.py writes)
ENDSTATE_DIR = "endstates"  # end states of members that ended at their budget (sweeps/budget.py)
SPEC_FILE = "sweep.yaml"  # the spec as run
SPEC_HISTORY_DIR = "specs"  # earlier, different specs: specs/sweep-<hash>.yaml
PLAN_FILE = "plan.json"  # the current plan's members and packs
LEASE_FILE = "driver.json"  # the sweep's lease (sweeps/lease.py)
LOCK_FILE = ".driver.lock"  # the POSIX lock the lease's swaps run under, on disks and mounts
JOBS_FILE = "slurm.json"  # the jobs `grok slurm` submitted, newest last
SLURM_DIR = "slurm"  # the batch scripts `grok slurm` wrote, and SLURM's output files
PACKS_DIR = "checkpoints/packs"  # one folder per pack: its commit record and trainer checkpoints
RECORD_FILE = "state.json"  # a pack's commit record, in its folder
TRAINER_PREFIX = "trainer-"  # a pack's trainer checkpoints, in its folder: trainer-<seq>/ (hidden while written)
TUNE_DIR = "tune"  # Ray Tune's experiment folders
OPTUNA_DB = "optuna.db"  # a search's default SQLite study
PRUNING_DIR = "optuna/pruning"  # <pack>.json: the completed members' values an Optuna pack's pruner compares with
BISECTION_FILE = "bisection.json"  # a bisection's lines
REPORT_DIR = "report"  # what `grok report` writes by default (index.html, png/)
REPAIR_DIR = "repair"  # `grok sweep --repair`: a damaged pack's files set aside, same relative paths
FAULTS_DIR = "faults"  # <pack>.json: how often the spec's injected fault fired (tests only)

# part-<pack>-<seq>.parquet / .safetensors (seq: six digits, or `failed` for the driver's failed rows)
PART_RE = re.compile(r"^part-(?P<pack>.+)-(?P<seq>\d{6}|failed)\.(?:parquet|safetensors)$")
RECORD_RE = re.compile(rf"(?:^|/){PACKS_DIR}/(?P<pack>[^/]+)/{re.escape(RECORD_FILE)}$")
FAILED = "failed"  # a runs row's status when the pack failed for good (the driver writes it)


def part_name(pack_id: str, seq: int | None, suffix: str = ".parquet") -> str:
    """A part's file name; seq None: the driver's failed part (runs only)."""
    return f"part-{pack_id}-{'failed' if seq is None else f'{seq:06d}'}{suffix}"


def pack_dir(pack_id: str) -> str:
    return f"{PACKS_DIR}/{pack_id}"


def trainer_name(seq: int) -> str:
    """The trainer checkpoint a pack saves with the parts of this seq."""
    return f"{TRAINER_PREFIX}{seq:06d}"


def record_path(pack_id: str) -> str:
    """A pack's commit record, relative to the sweep's folder."""
    return f"{pack_dir(pack_id)}/{RECORD_FILE}"


def counted_rows(
    run_ids: Sequence[str], statuses: Sequence[str | None], epochs_trained: Sequence[float | None] | None = None
) -> np.ndarray:
    """Which runs rows count, one per member: the positions (ascending) of the chosen rows.

    A member can have several rows: its failed row beside a retried one's (the driver removes the
    failed row when it retries, but a reader may catch the moment in between), its row at a smaller
    budget beside the continuing pack's (kept until `sweeps.budget.purge_superseded`), or one row per
    sweep when two sweeps ran it. The rule: a row that did not fail, then the one that trained
    longest (the newest outcome of a member continued to a larger budget; null counts as least),
    then the first such row (equal rows from two sweeps: the first sweep's); a member with failed
    rows only keeps its last one.

    Every reader that asks "which row counts" asks here: `grok status`, the report's loader, the
    grid's plan, the Optuna search, the bisection and the budget's planner. Readers that leave
    failed members out (the grid, the bisection and the budget's planner, for which a failed member
    trains again) drop the chosen failed rows afterwards; Optuna keeps them (it tells the study of
    failed trials). So a member whose real row exists counts by that row everywhere."""
    n = len(run_ids)
    if len(set(run_ids)) == n:  # one row each, the usual case: `grok status` at 100k members asks every time
        return np.arange(n)
    codes: dict[str, int] = {}  # a dict, not np.unique: sorting 100k Python strings takes ten times as long
    member = np.fromiter((codes.setdefault(r, len(codes)) for r in run_ids), dtype=np.intp, count=n)
    not_failed = np.asarray(statuses, dtype=object) != FAILED
    trained = np.zeros(n) if epochs_trained is None else np.asarray(epochs_trained, dtype=float)  # None: NaN
    trained = np.where(np.isnan(trained), -1.0, trained)
    position = np.arange(n)
    tie = np.where(not_failed, -position, position)  # the first real row, the last failed one
    order = np.lexsort((tie, trained, not_failed, member))  # each member's best row last
    last = np.r_[member[order][1:] != member[order][:-1], True]
    return np.sort(order[last])

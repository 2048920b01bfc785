"""The add/mul mixture's per-task test metrics as a committed table beside reproductions/_table.py's,
which keeps the metrics every reproduction has (test/acc here is over both tasks' held-out pairs
together) but not a mixture's per-task columns, and the README's claims are per task.

    python reproductions/_table.py results/repro-add_mul    # data/members.csv, evaluations.parquet, sweep.yaml
    python reproductions/add_mul/tasks.py results/repro-add_mul   # data/tasks.parquet

tasks.parquet: run_id, epoch and test_add/*, test_mul/* (loss and accuracy on each task's test pairs) for
every evaluation. `with_tasks` joins it to the evaluations, and `task_times` recomputes each member's
per-task times (add/gen_epoch, mul/gen_epoch, ...) from them by the held rule, as analysis does for a
results folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from analysis import load_sweep, member_times

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _table import read_evaluations, read_members, table_dir  # noqa: E402

NAME = HERE.name
TASKS_FILE = "tasks.parquet"
TASK_COLUMNS = ["test_add/loss", "test_add/acc", "test_mul/loss", "test_mul/acc"]
RUNS_COLUMNS = ["run_id", "status", "epochs", "extended_from"]


def write_tasks(sweep_dir: str | Path) -> Path:
    metrics = load_sweep(sweep_dir).metrics
    rows = metrics[["run_id", "epoch", *TASK_COLUMNS]].sort_values(["run_id", "epoch"])
    # accuracies stay float64: the held rule compares them with 0.99 (as in _table.py)
    rows = rows.astype({"test_add/loss": "float32", "test_mul/loss": "float32"})
    path = table_dir(NAME) / TASKS_FILE
    rows.to_parquet(path, index=False, compression="zstd")
    return path


def with_tasks(evaluations: pd.DataFrame | None = None) -> pd.DataFrame:
    """The committed evaluations with their per-task columns."""
    evaluations = read_evaluations(NAME) if evaluations is None else evaluations
    tasks = pd.read_parquet(table_dir(NAME) / TASKS_FILE)
    return evaluations.merge(tasks, on=["run_id", "epoch"], how="left", validate="one_to_one")


def task_times(members: pd.DataFrame | None = None, evaluations: pd.DataFrame | None = None) -> pd.DataFrame:
    """members.csv's rows with the per-task views' times added (analysis.member_times on the joined table)."""
    members = read_members(NAME) if members is None else members
    evaluations = with_tasks() if evaluations is None else evaluations
    times = member_times(evaluations, members[RUNS_COLUMNS], members.attrs["thresholds"])
    views = [c for c in times.columns if c.startswith(("add/", "mul/"))]
    out = members.merge(times[["run_id", *views]], on="run_id", how="left", validate="one_to_one")
    out.attrs = members.attrs
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python reproductions/add_mul/tasks.py results/repro-add_mul", file=sys.stderr)
        return 2
    path = write_tasks(args[0])
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

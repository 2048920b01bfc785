"""A reproduction's raw results as small committed tables, so that every number in its README can be
recomputed from the repository (issue 26), without the results folder the sweep wrote.

    python reproductions/_table.py results/repro-NAME     # writes reproductions/NAME/data/

    data/members.csv          one row per member: run_id, the swept axes and seed, status, the budget it
                              reached (`budget`, `last_epoch`), its times and phase by the held rule
                              (grokcore/verdict.py, through analysis.member_times: `mem_epoch`,
                              `gen_epoch`, `delay`, `phase`), whether it is censored and where, and its
                              final train/test loss and accuracy
    data/evaluations.parquet  every evaluation's train/test accuracy and loss (what training curves draw,
                              and what the members' times are recomputed from in the tests)
    data/sweep.yaml           the spec as run: thresholds, budget and every fixed setting

A figures.py takes either source (`add_source_arguments`, `load_source`): a results folder, or
`--from-table` for these files; both give the frame analysis.Sweep.member_times() gives, so the
figures and printed numbers are the same.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis import load_sweep
from analysis.columns import RUNNING_STATUS
from grokcore.verdict import Thresholds

HERE = Path(__file__).resolve().parent
DATA_DIR = "data"
MEMBERS_FILE = "members.csv"
EVALUATIONS_FILE = "evaluations.parquet"
SPEC_FILE = "sweep.yaml"
REPRO_PREFIX = "repro-"  # a reproduction NAME's sweep is named repro-NAME (its spec.yaml's `name`)

# The main view's derived columns of analysis.member_times that the aggregates and fits read.
TIME_COLUMNS = [
    "status",
    "epochs",
    "extended_from",
    "last_epoch",
    "budget",
    "finished",
    "resolution",
    "mem_epoch",
    "gen_epoch",
    "delay",
    "phase",
    "generalised",
    "train_fell_back",
    "test_fell_back",
    "censored",
    "censored_at",
]
EVALUATION_COLUMNS = ["train/loss", "test/loss", "train/acc", "test/acc", "weight_norm"]
# Kept as well where they differ from train/acc somewhere (without label noise they equal it): a
# noisy-label member's accuracy on the clean labels of its training inputs (label_noise draws it).
OPTIONAL_EVALUATION_COLUMNS = ["train_clean/acc"]
FINAL_PREFIX = "final_"  # final_train/acc: the member's last evaluation


def table_dir(name: str) -> Path:
    return HERE / name / DATA_DIR


def evaluation_columns(metrics: pd.DataFrame) -> list[str]:
    differ = [c for c in OPTIONAL_EVALUATION_COLUMNS if c in metrics and (metrics[c] != metrics["train/acc"]).any()]
    return EVALUATION_COLUMNS + differ


def members_frame(sweep) -> pd.DataFrame:
    """One row per ended member of a loaded sweep (analysis.Sweep): the columns of members.csv."""
    times = sweep.member_times()
    running = times["status"] == RUNNING_STATUS
    if running.any():
        raise SystemExit(
            f"{sweep.name}: {int(running.sum())} members are still running; tables are written from a finished sweep"
        )
    axes = sweep.swept_axes(include_seed=True)
    last = (
        sweep.metrics.sort_values(["run_id", "epoch"], kind="stable")
        .groupby("run_id")
        .last()[evaluation_columns(sweep.metrics)]
        .rename(columns=lambda c: FINAL_PREFIX + c)
    )
    out = times[["run_id", *axes, *TIME_COLUMNS]].merge(last, left_on="run_id", right_index=True, how="left")
    return out.sort_values([*axes, "run_id"], kind="stable").reset_index(drop=True)


def write_tables(sweep_dir: str | Path, name: str | None = None) -> list[Path]:
    """Write reproductions/NAME/data/ from a finished sweep folder; NAME from the sweep's name by default."""
    sweep = load_sweep(sweep_dir)
    name = name or sweep.name.removeprefix(REPRO_PREFIX)
    out = table_dir(name)
    out.mkdir(parents=True, exist_ok=True)
    members = members_frame(sweep)
    members.to_csv(out / MEMBERS_FILE, index=False)
    evaluations = sweep.metrics[["run_id", "epoch", *evaluation_columns(sweep.metrics)]].sort_values(
        ["run_id", "epoch"]
    )
    # Losses in float32 halve the file; accuracies stay float64, since the held rule compares them with
    # the threshold and a rounded 0.99 could change a member's time.
    evaluations = evaluations.astype({"train/loss": "float32", "test/loss": "float32", "weight_norm": "float32"})
    evaluations.to_parquet(out / EVALUATIONS_FILE, index=False, compression="zstd")
    (out / SPEC_FILE).write_text(yaml.safe_dump(sweep.spec, sort_keys=False))
    return [out / MEMBERS_FILE, out / EVALUATIONS_FILE, out / SPEC_FILE]


def read_spec(name: str) -> dict:
    return yaml.safe_load((table_dir(name) / SPEC_FILE).read_text())


def read_members(name: str) -> pd.DataFrame:
    """members.csv as the frame analysis.member_times gives (with its thresholds in `attrs`)."""
    members = pd.read_csv(table_dir(name) / MEMBERS_FILE)
    for column in ("finished", "generalised", "train_fell_back", "test_fell_back", "censored"):
        members[column] = members[column].astype(bool)
    members["phase"] = members["phase"].astype(object)
    members.attrs["thresholds"] = Thresholds.from_mapping(read_spec(name).get("thresholds"))
    members.attrs["views"] = [""]
    return members


def read_evaluations(name: str) -> pd.DataFrame:
    return pd.read_parquet(table_dir(name) / EVALUATIONS_FILE)


def add_source_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """The two sources a reproduction's figures.py draws from."""
    parser.add_argument("sweep", nargs="?", help=f"the sweep folder, e.g. results/{REPRO_PREFIX}{name}")
    parser.add_argument(
        "--from-table",
        action="store_true",
        help=f"draw from the committed reproductions/{name}/{DATA_DIR}/ instead of a results folder",
    )


@dataclass(frozen=True)
class Source:
    times: pd.DataFrame
    """One row per ended member: what analysis.Sweep.member_times() gives."""
    spec: dict
    """The spec as run."""
    evaluations: pd.DataFrame
    """The metrics rows (run_id, epoch, EVALUATION_COLUMNS at least)."""


def load_source(args: argparse.Namespace, name: str) -> Source:
    """The members' times, the spec and the evaluations from the source `add_source_arguments` parsed."""
    if args.from_table == bool(args.sweep):
        raise SystemExit(f"give a results folder (results/{REPRO_PREFIX}{name}) or --from-table, not both or neither")
    if args.from_table:
        return Source(read_members(name), read_spec(name), read_evaluations(name))
    sweep = load_sweep(args.sweep)
    times = sweep.member_times()
    return Source(times[times["status"] != RUNNING_STATUS], sweep.spec, sweep.metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="a finished reproduction sweep, e.g. results/repro-power_fraction")
    parser.add_argument("--name", help="the reproduction's folder (default: the sweep's name without 'repro-')")
    args = parser.parse_args(argv)
    for path in write_tables(args.sweep, args.name):
        print(f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

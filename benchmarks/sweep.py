"""Orchestration overhead of a sweep: Ray Tune, trial start-up, Parquet writes and checkpoints,
measured against the training the trials do, for several pack sizes in one run.

    python benchmarks/sweep.py                                  # the quick spec, packs of 3, 9, 18, 36
    python benchmarks/sweep.py --pack-sizes 6,36 --epochs 1000  # shorter
    python benchmarks/sweep.py --spec sweeps/examples/label_noise.yaml --num-cpus 4

Each pack size runs the whole spec from scratch on a fresh local Ray into a temporary results
directory (the spec's own results are never touched). Per run it prints

  wall      seconds from the call to run_sweep to its return (planning, starting Ray, Tune,
            every trial, the final bookkeeping): what the user waits for
  train     the in-trial training time summed over packs (grokcore's own clock, evaluations
            included; Parquet writes, checkpoints and reports to Tune excluded)
  slots     trials that can run at once: min(packs, num_cpus // cpus per trial)
  overhead  1 - train / (wall * slots): the share of the machine's trial time not spent training
  startup   wall - the time inside Tune: planning, starting the local Ray, final bookkeeping (fixed)
  in-Tune   1 - train / (tune * slots): trial start-up, Parquet writes, checkpoints, reports and idle
            slots at the tail; this is what packs amortise
  packs' train s  the fastest and slowest pack's training time: with as many packs as slots, their
            difference is a slot left idle at the tail (concurrent trials share the machine unevenly)
  1st epoch s  seconds from the call to the first epoch of the first pack: starting Ray and Tune,
            the first trial's process and its imports

and last one JSON line with every figure. With `--repeat N` each pack size runs N times (the
sizes interleaved, so a slow spell of a shared machine does not land on one size alone) and a
last table gives each size's median and worst overhead. The goal (issue 3): overhead below 10%
for the quick spec on a 2-core CPU, falling as packs grow (fewer trials, the same training).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweeps.launch import run_sweep
from sweeps.parquet import SweepStore
from sweeps.spec import load_spec

QUICK = Path(__file__).resolve().parents[1] / "sweeps" / "examples" / "quick.yaml"


def measure(spec, pack_size: int, num_cpus: int) -> dict:
    spec = dataclasses.replace(spec, pack_size=pack_size)
    members = spec.members()
    with tempfile.TemporaryDirectory(prefix="grok-bench-") as results:
        called = time.time()
        result = run_sweep(spec, results=results, verbose=0, num_cpus=num_cpus)
        store = SweepStore(results, spec.name)
        records = [store.read_record(p) or {} for p in result.done_packs]
        pack_train = sorted(float(r.get("train_seconds", 0.0)) for r in records)
        started = [r["training_started"] for r in records if r.get("training_started")]
    if not result.ok:
        raise SystemExit(
            f"pack size {pack_size}: the sweep did not finish: failed {result.failed_packs}, "
            f"unfinished {result.unfinished_packs}"
        )
    packs = result.ran_packs
    slots = max(1, min(packs, int(num_cpus // max(spec.cpus, 1e-9))))
    return {
        "pack_size": pack_size,
        "members": len(members),
        "packs": packs,
        "slots": slots,
        "wall_s": result.wall_seconds,
        "tune_s": result.tune_seconds,
        "train_s": result.train_seconds,
        "overhead": 1.0 - result.train_seconds / (result.wall_seconds * slots),
        "startup_s": result.wall_seconds - result.tune_seconds,
        "in_tune_overhead": 1.0 - result.train_seconds / (result.tune_seconds * slots),
        "model_epochs": sum(m.epochs for m in members),
        "pack_train_s": pack_train,
        "first_epoch_s": min(started) - called if started else None,
    }


def _spread(values: list[float]) -> str:
    return f"{values[0]:.1f}-{values[-1]:.1f}" if values else "-"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default=str(QUICK), help="sweep spec (default: sweeps/examples/quick.yaml)")
    parser.add_argument("--pack-sizes", default="3,9,18,36", help="comma-separated pack sizes to compare")
    parser.add_argument("--epochs", type=int, default=None, help="override the spec's epoch budget")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each pack size (median and worst shown)")
    args = parser.parse_args(argv)

    spec = load_spec(args.spec)
    if args.epochs:
        spec = spec.with_base({"epochs": args.epochs})
    sizes = [int(s) for s in args.pack_sizes.split(",") if s.strip()]
    print(
        f"sweep {spec.name}: {spec.n_members()} members, {args.num_cpus} CPUs for the local Ray, "
        f"{spec.cpus:g} CPU(s) per trial"
    )
    print(
        f"{'pack size':>9} {'packs':>5} {'slots':>5} {'wall s':>8} {'train s':>8} {'overhead':>9} "
        f"{'startup s':>9} {'in-Tune':>8}"
    )
    rows = []
    for _ in range(max(1, args.repeat)):
        for size in sizes:
            row = measure(spec, size, args.num_cpus)
            rows.append(row)
            print(
                f"{row['pack_size']:>9} {row['packs']:>5} {row['slots']:>5} {row['wall_s']:>8.1f} "
                f"{row['train_s']:>8.1f} {100 * row['overhead']:>8.1f}% {row['startup_s']:>9.1f} "
                f"{100 * row['in_tune_overhead']:>7.1f}%   packs' train s {_spread(row['pack_train_s'])}"
                f"   1st epoch s {_seconds(row['first_epoch_s'])}",
                flush=True,
            )
    if args.repeat > 1:
        print(f"\n{'pack size':>9} {'runs':>5} {'median overhead':>16} {'worst':>7}")
        for size in sizes:
            overheads = [r["overhead"] for r in rows if r["pack_size"] == size]
            print(
                f"{size:>9} {len(overheads):>5} {100 * statistics.median(overheads):>15.1f}% "
                f"{100 * max(overheads):>6.1f}%"
            )
    print(
        json.dumps(
            {"benchmark": "sweep", "spec": spec.name, "num_cpus": args.num_cpus, "goal_overhead": 0.10, "runs": rows}
        )
    )
    return rows


if __name__ == "__main__":
    main()

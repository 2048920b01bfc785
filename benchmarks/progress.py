"""Slowdown of training with progress measures on versus off.

    python benchmarks/progress.py --repeats 3   # the Nanda model (p 113), progress_every 500
    python benchmarks/progress.py --quick       # a small model (p 31), same cadence, seconds

Trains the same pack with measures off (progress_every 0) and on, `--repeats` times each in
alternating order, and prints model-epochs/s for each, the share of the on-run spent in
measure_pack, and three slowdown ratios:

- wall: best on-run wall time / best off-run wall time (best of the repeats, as
  benchmarks/trainer.py keeps each row's best round: the machines are shared, and load only ever
  adds time);
- cpu: the same with the process's CPU time, which other processes' load moves much less;
- in-run: an on-run's wall time / its wall time outside measure_pack, which no load between runs
  can move (median over the on-runs).

The last line is one JSON object with every number. The cadence is DEFAULT_PROGRESS_EVERY (5
evaluations at the default eval_every of 100) with the default ProgressSettings; the goal is a
slowdown below 1.2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grokcore import PackTrainer, RunConfig

DEFAULT_PROGRESS_EVERY = 500

FULL = RunConfig(p=113, train_fraction=0.3, epochs=1000, eval_every=100)
"""The Nanda et al. model: 1 layer, d_model 128, 4 heads, d_mlp 512, p 113, 30% of pairs."""
QUICK = RunConfig(p=31, d_model=64, n_heads=4, d_mlp=128, train_fraction=0.5, epochs=1000, eval_every=100)


def timed_run(members: list[RunConfig], device: str) -> dict[str, float]:
    """Wall and process-CPU seconds of the whole run, seconds inside measure_pack, progress rows."""
    trainer = PackTrainer(members, device=device)
    start, cpu_start = time.perf_counter(), time.process_time()
    progress_seconds, rows = 0.0, 0
    for report in trainer.run():
        progress_seconds += report.progress_seconds
        rows += len(report.progress)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {
        "wall": time.perf_counter() - start,
        "cpu": time.process_time() - cpu_start,
        "measure": progress_seconds,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small model (p 31) for a run of seconds")
    parser.add_argument("--members", type=int, default=2, help="members in the pack")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default 1000: two progress evaluations, one with the LLC)",
    )
    parser.add_argument(
        "--progress-every",
        type=int,
        default=DEFAULT_PROGRESS_EVERY,
        help=f"cadence (default {DEFAULT_PROGRESS_EVERY}; a multiple of eval_every)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="off/on pairs, alternating which runs first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    base = QUICK if args.quick else FULL
    every = args.progress_every
    epochs = args.epochs or base.epochs
    base = dataclasses.replace(base, epochs=epochs)
    off = [dataclasses.replace(base, seed=s) for s in range(args.members)]
    on = [dataclasses.replace(c, progress_every=every) for c in off]

    # warm-up, measures included (first calls pay for imports and allocator growth)
    timed_run([dataclasses.replace(on[0], epochs=every)], args.device)
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for repeat in range(args.repeats):
        order = ("off", "on") if repeat % 2 == 0 else ("on", "off")
        for which in order:
            runs[which].append(timed_run(off if which == "off" else on, args.device))
    model_epochs = args.members * epochs
    best = {w: {k: min(r[k] for r in runs[w]) for k in ("wall", "cpu")} for w in runs}
    measure_s = statistics.median(r["measure"] for r in runs["on"])
    in_run = statistics.median(r["wall"] / (r["wall"] - r["measure"]) for r in runs["on"])
    result = {
        "benchmark": "progress",
        "model": "quick p31" if args.quick else "nanda p113",
        "members": args.members,
        "epochs": epochs,
        "progress_every": every,
        "progress_rows": runs["on"][0]["rows"],
        "device": args.device,
        "threads": args.threads,
        "repeats": args.repeats,
        "off_model_epochs_per_s": model_epochs / best["off"]["wall"],
        "on_model_epochs_per_s": model_epochs / best["on"]["wall"],
        "measure_seconds": measure_s,
        "measure_share": measure_s / statistics.median(r["wall"] for r in runs["on"]),
        "slowdown": best["on"]["wall"] / best["off"]["wall"],
        "slowdown_cpu": best["on"]["cpu"] / best["off"]["cpu"],
        "slowdown_in_run": in_run,
        "goal": 1.2,
        "off_wall_s": [r["wall"] for r in runs["off"]],
        "on_wall_s": [r["wall"] for r in runs["on"]],
        "off_cpu_s": [r["cpu"] for r in runs["off"]],
        "on_cpu_s": [r["cpu"] for r in runs["on"]],
    }
    print(
        f"model {result['model']}, {args.members} members x {epochs} epochs, progress every {every} "
        f"({result['progress_rows']} rows), {args.threads} thread(s) on {args.device}, best of {args.repeats}"
    )
    print(
        f"off: {result['off_model_epochs_per_s']:.2f} model-epochs/s ({best['off']['wall']:.1f} s wall, "
        f"{best['off']['cpu']:.1f} s cpu)"
    )
    print(
        f"on:  {result['on_model_epochs_per_s']:.2f} model-epochs/s ({best['on']['wall']:.1f} s wall, "
        f"{best['on']['cpu']:.1f} s cpu; measure_pack {measure_s:.2f} s = {100 * result['measure_share']:.1f}%)"
    )
    print(
        f"slowdown on/off (goal < 1.2): wall {result['slowdown']:.3f}, cpu {result['slowdown_cpu']:.3f}, "
        f"in-run (training + measures) / training {result['slowdown_in_run']:.3f}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

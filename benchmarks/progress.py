"""Slowdown of training with progress measures on versus off.

    python benchmarks/progress.py            # the Nanda model (p 113), progress_every 500
    python benchmarks/progress.py --quick    # a small model, seconds

Trains the same pack twice per repeat, measures off (progress_every 0) then on, and prints
model-epochs/s for each, the share of the on-run spent in measure_pack, and the slowdown ratio
(on wall time / off wall time), with the in-run ratio (on wall time / its time outside measure_pack),
which the load of a shared machine does not move; the last line is one JSON object with the same
numbers. Repeats alternate off/on and the median of each is reported. The
default cadence is DEFAULT_PROGRESS_EVERY (5 evaluations at the default eval_every of 100) with the
default ProgressSettings; the goal is a slowdown below 1.2.
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

from grokcore import PackTrainer, RunConfig  # noqa: E402

DEFAULT_PROGRESS_EVERY = 500

FULL = RunConfig(p=113, train_fraction=0.3, epochs=500, eval_every=100)
"""The Nanda et al. model: 1 layer, d_model 128, 4 heads, d_mlp 512, p 113, 30% of pairs."""
QUICK = RunConfig(p=31, d_model=64, n_heads=4, d_mlp=128, train_fraction=0.5, epochs=200, eval_every=25)


def timed_run(members: list[RunConfig], device: str) -> tuple[float, float, int]:
    """(wall seconds of the whole run, seconds inside measure_pack, progress rows)."""
    trainer = PackTrainer(members, device=device)
    start = time.perf_counter()
    progress_seconds, rows = 0.0, 0
    for report in trainer.run():
        progress_seconds += report.progress_seconds
        rows += len(report.progress)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, progress_seconds, rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small model (p 31) for a run of seconds")
    parser.add_argument("--members", type=int, default=2, help="members in the pack")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: 500 full, 200 quick)")
    parser.add_argument("--progress-every", type=int, default=None,
                        help=f"cadence (default: {DEFAULT_PROGRESS_EVERY} full, 100 quick; a multiple of eval_every)")
    parser.add_argument("--repeats", type=int, default=1, help="off/on pairs; medians are reported")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    base = QUICK if args.quick else FULL
    every = args.progress_every or (100 if args.quick else DEFAULT_PROGRESS_EVERY)
    epochs = args.epochs or base.epochs
    base = dataclasses.replace(base, epochs=epochs)
    off = [dataclasses.replace(base, seed=s) for s in range(args.members)]
    on = [dataclasses.replace(c, progress_every=every) for c in off]

    # warm-up, measures included (first calls pay for imports and allocator growth)
    timed_run([dataclasses.replace(on[0], epochs=every)], args.device)
    walls: dict[str, list[float]] = {"off": [], "on": []}
    measure: list[float] = []
    rows = 0
    for _ in range(args.repeats):
        walls["off"].append(timed_run(off, args.device)[0])
        wall, seconds, rows = timed_run(on, args.device)
        walls["on"].append(wall)
        measure.append(seconds)
    model_epochs = args.members * epochs
    off_s, on_s, measure_s = statistics.median(walls["off"]), statistics.median(walls["on"]), statistics.median(measure)
    result = {
        "benchmark": "progress", "model": "quick p31" if args.quick else "nanda p113", "members": args.members,
        "epochs": epochs, "progress_every": every, "progress_rows": rows, "device": args.device,
        "threads": args.threads, "repeats": args.repeats,
        "off_model_epochs_per_s": model_epochs / off_s, "on_model_epochs_per_s": model_epochs / on_s,
        "measure_seconds": measure_s, "measure_share": measure_s / on_s, "slowdown": on_s / off_s,
        "slowdown_in_run": on_s / (on_s - measure_s), "goal": 1.2,
    }
    print(f"model {result['model']}, {args.members} members x {epochs} epochs, progress every {every} "
          f"({rows} rows), {args.threads} thread(s) on {args.device}, median of {args.repeats}")
    print(f"off: {result['off_model_epochs_per_s']:.2f} model-epochs/s ({off_s:.1f} s)")
    print(f"on:  {result['on_model_epochs_per_s']:.2f} model-epochs/s ({on_s:.1f} s, of which measure_pack "
          f"{measure_s:.1f} s = {100 * result['measure_share']:.1f}%)")
    print(f"slowdown on/off: {result['slowdown']:.3f} (goal < 1.2); within the on-run, (training + measures) / "
          f"training = {result['slowdown_in_run']:.3f}, which a loaded machine's noise does not move")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

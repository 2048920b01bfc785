"""Extending a budget against retraining: the Liu-style grid of reproductions/liu_phases trained at a short
budget, then extended to 4x that budget (members that ended undecided go on from their end states), side
by side with the same grid trained with the long budget from epoch 0.

    python benchmarks/budget.py                 # a reduced grid (8 members, 500 -> 2,000 epochs), minutes
    python benchmarks/budget.py --full          # the reproduction's grid (32 members, 3,000 -> 12,000 epochs)
    python benchmarks/budget.py --short 250     # another short budget (the long one is 4x)

Each path runs what `grok sweep` runs for it (sweeps.grid_source plans, sweeps.runner.run_pack trains
every pack, the source is told as each pack ends) in this process, without Ray, so that its CPU seconds
are this process's own (one torch thread). Per path it prints

  model-epochs  epochs trained summed over members (stop rules end generalised members early)
  wall s, CPU s  this process's wall clock and CPU time for the path
  phase map      each (weight decay, train fraction) cell's phase by the report's rule (analysis)

and checks the extension against the long run: it should spend the long run's epochs past the short
budget and no more (within a few percent), and give the same phase map. Last one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import aggregate, load_sweep
from sweeps.grid_source import GridSource
from sweeps.parquet import SweepStore
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import load_spec

LIU = Path(__file__).resolve().parents[1] / "reproductions" / "liu_phases" / "spec.yaml"
REDUCED = ["axes.train_fraction=[0.3, 0.6]", "axes.weight_decay=[1.0, 3.0]"]
CELL = ["weight_decay", "train_fraction"]


def run(spec, results: str) -> dict:
    """Plan and train what the spec leaves to do, as grok sweep would; returns wall and CPU seconds."""
    wall, cpu = time.monotonic(), time.process_time()
    settings = PackSettings.from_spec(spec, results)
    source = GridSource(spec, None, settings.to_dict())
    while (pack := source.next_pack()) is not None:
        run_pack(pack, settings)
        source.pack_finished(pack.pack_id)
    return {"wall_s": time.monotonic() - wall, "cpu_s": time.process_time() - cpu}


def model_epochs(results: str, name: str, continued: bool = False) -> int:
    """Epochs trained by the members' newest outcomes, each from where it went on from (`continued`:
    those that went on from a smaller budget only)."""
    table = SweepStore(results, name).read_table("runs", columns=["epochs_trained", "continued_from"])
    rows = table.to_pylist() if table is not None else []
    return sum(
        r["epochs_trained"] - (r.get("continued_from") or 0)
        for r in rows
        if not continued or r.get("continued_from") is not None
    )


def phase_map(results: str, name: str) -> dict[str, str]:
    cells = aggregate(load_sweep(Path(results) / name).member_times(), by=CELL)
    return {
        f"wd={r.weight_decay:g} tf={r.train_fraction:g}": f"{r.phase} {r.phase_count}/{r.n_members}"
        for r in cells.itertuples()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the reproduction's whole grid and budget")
    parser.add_argument("--short", type=int, default=None, help="the short budget (default 500; --full: 3000)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    short = args.short or (3000 if args.full else 500)
    long = 4 * short
    grid = [] if args.full else [*REDUCED, "replicates=2"]
    with tempfile.TemporaryDirectory(prefix="grok-budget-") as results:
        spec = load_spec(LIU, [*grid, f"base.epochs={short}", "results=" + results])
        n = len(spec.members())
        print(f"{spec.name}: {n} members, {short:,} epochs extended to {long:,}, against {long:,} from epoch 0")
        first = run(spec, results)
        short_epochs = model_epochs(results, spec.name)
        extend = run(load_spec(LIU, [*grid, f"base.epochs={long}", "results=" + results]), results)
        extend_epochs = model_epochs(results, spec.name, continued=True)
        extended_map = phase_map(results, spec.name)

        long_spec = load_spec(LIU, [*grid, f"base.epochs={long}", "results=" + results, "name=long"])
        scratch = run(long_spec, results)
        long_epochs = model_epochs(results, "long")
        long_map = phase_map(results, "long")

    new_epochs = long_epochs - short_epochs  # what the long run trains past the short budget
    rows = [
        (
            "short, then extended",
            short_epochs + extend_epochs,
            first["wall_s"] + extend["wall_s"],
            first["cpu_s"] + extend["cpu_s"],
        ),
        ("  of which the extension", extend_epochs, extend["wall_s"], extend["cpu_s"]),
        ("long from epoch 0", long_epochs, scratch["wall_s"], scratch["cpu_s"]),
    ]
    print(f"{'path':<24} {'model-epochs':>12} {'wall s':>8} {'CPU s':>8}")
    for name, epochs, wall, cpu in rows:
        print(f"{name:<24} {epochs:>12,} {wall:>8.1f} {cpu:>8.1f}")
    ratio = extend_epochs / new_epochs if new_epochs else float("nan")
    same = extended_map == long_map
    print(f"extension / new epochs of the long run: {ratio:.3f} (goal: <= 1.0 plus a few percent)")
    print(f"phase maps equal: {same}")
    for cell in sorted(long_map):
        print(f"  {cell:<18} extended: {extended_map.get(cell, '-'):<22} long: {long_map[cell]}")
    print(
        json.dumps(
            {
                "members": n,
                "short": short,
                "long": long,
                "short_model_epochs": short_epochs,
                "extension_model_epochs": extend_epochs,
                "long_model_epochs": long_epochs,
                "new_epochs": new_epochs,
                "extension_ratio": ratio,
                "short_wall_s": first["wall_s"],
                "extension_wall_s": extend["wall_s"],
                "long_wall_s": scratch["wall_s"],
                "short_cpu_s": first["cpu_s"],
                "extension_cpu_s": extend["cpu_s"],
                "long_cpu_s": scratch["cpu_s"],
                "phase_maps_equal": same,
            }
        )
    )
    return 0 if same and ratio <= 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())

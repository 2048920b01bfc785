"""What a sweep of the Nanda configuration costs on paper: GPU-hours, nodes and wall time for
1,000, 10,000 and 100,000 members, from measured throughputs and overheads (each figure below says
where it was measured) or, where no device was measured, estimates from FLOPs and bandwidth.

    python benchmarks/cost.py                                   # the table of docs/budgets.md
    python benchmarks/cost.py --members 1000 --nodes 2 --gpus-per-node 8 --device a100

The members are sweeps/examples/nanda_addition.yaml with `replicates: N` (p = 113, 25,000 epochs
each: the budget, an upper bound since stop rules may end members sooner), packed by the project's
own planner (`pack_size: auto`, one GPU per trial). A pack's time is members × epochs / the
device's model-epochs/s at that pack size, plus the trial's start-up; packs are scheduled longest
first on the job's GPUs; the driver's Tune time per trial and the job's start-up are added in
full (they overlap training in part, so the wall time is an upper bound). Progress measures and
snapshots are not counted (the trainer benchmark measures training and evaluation only).
"""

from __future__ import annotations

import argparse
import heapq
from dataclasses import dataclass

from sweeps.packing import TUNE_SECONDS_PER_TRIAL, cut_packs
from sweeps.spec import load_spec

SPEC = "sweeps/examples/nanda_addition.yaml"
GFLOP_PER_MODEL_EPOCH = 3.79  # as executed, counted by torch.utils.flop_counter (docs/benchmarks.md, Trainer)


@dataclass(frozen=True)
class Device:
    name: str
    rates: dict[int, float]  # pack size -> model-epochs/s on one device
    trial_start_s: float  # from a trial's start to its first epoch (fresh process; compile included)
    source: str


# H100 80GB HBM3, torch 2.11.0+cu130, benchmarks/trainer.py, 2026-11-23 (docs/benchmarks.md, Trainer)
H100_F32 = {1: 234, 8: 1980, 64: 5078, 256: 5482}
H100_TF32_COMPILE = {1: 357, 8: 3232, 64: 11765, 256: 12612}
# A100 80GB SXM (no A100 was measured): float32 scaled from the H100 by the float32 peak rates
# (the step is matmul-bound there: the profile in docs/benchmarks.md), 19.5 / 67 TFLOP/s; TF32 + compile by the
# memory bandwidths (memory-bound there), 2.04 / 3.35 TB/s.
A100_F32 = {k: v * 19.5 / 67.0 for k, v in H100_F32.items()}
A100_TF32_COMPILE = {k: v * 2.04 / 3.35 for k, v in H100_TF32_COMPILE.items()}
# This project's 2-core CPU, torch 2.13.0+cpu, benchmarks/trainer.py, 2026-11-23 (docs/benchmarks.md, Trainer):
# one machine counts as one "GPU" in the table.
CPU_2CORE = {1: 28.66, 8: 21.82, 64: 16.09}
# Trial start-up: 3.8 s from Tuner.fit to the first epoch on this project's 2-core CPU (docs/benchmarks.md,
# Benchmarks: Sweeps); torch.compile adds ~17 s at the first epoch on the H100 (docs/benchmarks.md, Trainer).
START_S, COMPILE_S = 3.8, 17.0
DEVICES = {
    "h100": Device("H100, float32", H100_F32, START_S, "measured (H100 80GB HBM3, 2026-11-23)"),
    "h100-fast": Device(
        "H100, TF32 + compile", H100_TF32_COMPILE, START_S + COMPILE_S, "measured (H100 80GB HBM3, 2026-11-23)"
    ),
    "cpu": Device("2-core CPU machine", CPU_2CORE, START_S, "measured (this project's 2-core CPU, 2026-11-23)"),
    "a100": Device("A100, float32", A100_F32, START_S, "estimate: H100 figures × float32 peak ratio"),
    "a100-fast": Device(
        "A100, TF32 + compile", A100_TF32_COMPILE, START_S + COMPILE_S, "estimate: H100 figures × bandwidth ratio"
    ),
}
# A run's fixed cost: ray.init to the first epoch and ray.shutdown, 7.5 s (docs/benchmarks.md, Sweeps), plus,
# under SLURM, Ray started on the job's nodes before the driver: 24-39 s measured by
# tests/sweeps/test_slurm.py's jobs on this 2-core machine at load average ~28 (60 s taken).
RUN_START_S = 7.5 + 60.0


def rate_at(device: Device, size: int) -> float:
    """model-epochs/s at a pack size: the measured size at or below it (packs between two measured
    sizes run at least as fast as the smaller one on a GPU)."""
    return device.rates[max(k for k in device.rates if k <= size)]


@dataclass
class Cost:
    members: int
    packs: int
    pack_sizes: str
    gpus: int
    nodes: int
    wall_h: float
    gpu_h_billed: float  # the allocation: every GPU of the job for the whole wall time
    gpu_h_busy: float  # the packs' own time


def cost(members: int, device: Device, nodes: int, gpus_per_node: int, spec_path: str = SPEC) -> Cost:
    spec = load_spec(spec_path, [f"replicates={members}"])
    packs = cut_packs(spec.members(), spec.pack_size, spec.gpus)
    gpus = nodes * gpus_per_node
    slots = [0.0] * gpus  # a min-heap of each GPU's busy-until time
    busy = 0.0
    for pack in sorted(packs, key=lambda p: -len(p.members)):  # longest first
        epochs = sum(m.epochs for m in pack.members)
        seconds = epochs / rate_at(device, len(pack.members)) + device.trial_start_s
        busy += seconds
        heapq.heapreplace(slots, slots[0] + seconds)
    wall = max(slots) + RUN_START_S + TUNE_SECONDS_PER_TRIAL * len(packs)
    sizes = sorted({len(p.members) for p in packs})
    return Cost(
        members,
        len(packs),
        "-".join(map(str, (sizes[0], sizes[-1]))) if len(sizes) > 1 else str(sizes[0]),
        gpus,
        nodes,
        wall / 3600,
        gpus * wall / 3600,
        busy / 3600,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="1000,10000,100000")
    parser.add_argument("--nodes", default="1,4,16", help="nodes per sweep size (comma-separated, one per --members)")
    parser.add_argument("--gpus-per-node", type=int, default=4)
    parser.add_argument("--device", default="h100,h100-fast,a100,a100-fast", help=", ".join(DEVICES))
    args = parser.parse_args()
    members = [int(m) for m in args.members.split(",")]
    nodes = [int(n) for n in args.nodes.split(",")]
    if len(nodes) == 1:
        nodes *= len(members)
    print("| device | pack of 64 | pack of 256 | figures |\n| --- | --- | --- | --- |")
    for key in args.device.split(","):
        d = DEVICES[key]
        print(
            f"| {d.name} | {d.rates[64]:,.0f} | "
            + (f"{d.rates[256]:,.0f}" if 256 in d.rates else "")
            + f" | {d.source} |"
        )
    print()
    print(
        "| device | members | packs (size) | nodes × GPUs | wall time | GPU-hours billed | GPU-hours training | "
        "figures |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key in args.device.split(","):
        device = DEVICES[key]
        for n, nd in zip(members, nodes, strict=True):
            c = cost(n, device, nd, args.gpus_per_node)
            print(
                f"| {device.name} | {n:,} | {c.packs:,} ({c.pack_sizes}) | {nd} × {args.gpus_per_node} | "
                f"{_hours(c.wall_h)} | {c.gpu_h_billed:,.1f} | {c.gpu_h_busy:,.1f} | {device.source} |"
            )


def _hours(h: float) -> str:
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h"


if __name__ == "__main__":
    main()

"""Where a pack's training epoch spends its device time, and what torch.compile changes.

    python benchmarks/profile_pack.py --device cuda --members 256 [--tf32]

Prints the top kernels of one eager epoch (torch.profiler), then the seconds per epoch of the
eager step and of the step with the loss compiled by torch.compile (Inductor), side by side,
with the compiled loss checked against the eager one.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from grokcore import PackTrainer, RunConfig

NANDA = RunConfig(task="add", p=113, train_fraction=0.3, n_layers=1, d_model=128, n_heads=4, d_mlp=512, eval_every=100)


def seconds_per_call(fn, device, reps: int = 20) -> float:
    fn()
    fn()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    return (time.perf_counter() - start) / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--members", type=int, default=256)
    parser.add_argument("--tf32", action="store_true")
    parser.add_argument("--modes", default="default", help="torch.compile modes to try, comma-separated")
    args = parser.parse_args()
    device = torch.device(args.device)
    trainer = PackTrainer(
        [dataclasses.replace(NANDA, seed=s) for s in range(args.members)], device=device, tf32=args.tf32
    )
    eager = seconds_per_call(trainer._train_epoch, device)
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        trainer._train_epoch()
        torch.cuda.synchronize(device) if device.type == "cuda" else None
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=70))
    print(f"eager: {eager * 1e3:.2f} ms/epoch, {args.members / eager:.0f} model-epochs/s")
    d = trainer.data
    ref = trainer._loss(d["train_tokens"], d["train_labels"], d["train_weight"]).detach()
    plain_loss = trainer._loss
    for mode in [m for m in args.modes.split(",") if m]:
        torch._dynamo.reset()
        compiled = torch.compile(plain_loss, mode=mode, dynamic=False)
        trainer._loss = compiled
        start = time.perf_counter()
        got = compiled(d["train_tokens"], d["train_labels"], d["train_weight"]).detach()
        trainer._train_epoch()
        torch.cuda.synchronize(device) if device.type == "cuda" else None
        compile_s = time.perf_counter() - start
        err = ((got - ref).abs().max() / ref.abs().max()).item()
        t = seconds_per_call(trainer._train_epoch, device)
        print(
            f"compile {mode}: {t * 1e3:.2f} ms/epoch, {args.members / t:.0f} model-epochs/s, "
            f"{eager / t:.2f}x eager, compile {compile_s:.1f} s, max rel loss diff {err:.2e}"
        )
        if mode == args.modes.split(",")[0]:
            with profile(activities=acts) as prof:
                trainer._train_epoch()
                torch.cuda.synchronize(device) if device.type == "cuda" else None
            print(prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=70))
    trainer._loss = plain_loss


if __name__ == "__main__":
    main()

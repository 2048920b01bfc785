"""Trainer throughput on the Nanda configuration, measured side by side in one run.

    python benchmarks/trainer.py                 # CPU: naive loop, 1 member, packs of 8 and 64
    python benchmarks/trainer.py --device cuda --packs 1,8,64,256
    python benchmarks/trainer.py --device cuda --tf32 --compile   # the fast opt-ins of PackTrainer
    git worktree add /tmp/main main && python benchmarks/trainer.py --baseline /tmp/main   # before/after

Rows:
  naive      the seed notebooks' loop: one nn.Module + torch.optim.AdamW, all positions,
             `.item()` every step and a test-set evaluation every epoch
  grokcore   PackTrainer with K members; per-epoch time measured over steady-state epochs,
             plus one evaluation amortised over eval_every epochs (so the figure includes it)
  matmul     a plain square matmul on the same device: the roofline for "achieved GFLOP/s"
  baseline   with --baseline DIR: PackTrainer of the grokcore in DIR (another commit), the same
             pack sizes, timed in the same rounds as this checkout's rows

"model-epochs/s" counts one member trained one epoch as one model-epoch. "GFLOP/s" is the
FLOPs the code actually executes (counted by torch.utils.flop_counter on one epoch) per second.
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from grokcore import PackTrainer, RunConfig
from grokcore.export import reference_state_dict
from grokcore.packed import init_member
from grokcore.reference import ReferenceTransformer, make_optimizer, reference_loss
from grokcore.splits import build_pool, make_split

NANDA = RunConfig(task="add", p=113, train_fraction=0.3, n_layers=1, d_model=128, n_heads=4, d_mlp=512, eval_every=100)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, min_seconds: float, min_reps: int) -> float:
    """Seconds per call of fn, after one warm-up call, over at least min_reps calls and min_seconds."""
    fn()
    sync(device)
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < min_seconds:
        fn()
        reps += 1
    sync(device)
    return (time.perf_counter() - start) / reps


def naive_epoch(device: torch.device):
    """One epoch of the seed notebooks' loop, as a closure."""
    cfg = NANDA
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    model = ReferenceTransformer(cfg, reference_state_dict(cfg, init_member(cfg))).to(device)
    opt = make_optimizer(model, cfg)
    train_x, train_y = pool.inputs[split.train_idx].to(device), split.train_labels.to(device)
    test_x, test_y = pool.inputs[split.test_idx].to(device), pool.labels[split.test_idx].to(device)
    log = []

    def epoch() -> None:
        opt.zero_grad()
        loss = reference_loss(model, train_x, train_y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            test_logits = model(test_x)[:, -1]
            test_loss = F.cross_entropy(test_logits.double(), test_y)
            test_acc = (test_logits.argmax(-1) == test_y).float().mean()
        log.append((loss.item(), test_loss.item(), test_acc.item()))

    return epoch


def baseline_trainer(directory: str) -> tuple[type, type]:
    """(PackTrainer, RunConfig) of the grokcore package in `directory`, imported beside this
    checkout's: its modules are moved to other names in sys.modules once imported, so each
    version's functions keep their own module globals. Imports that grokcore defers to a call
    (progress measures, hooks) would resolve to this checkout; the timed epoch makes none."""
    ours = {name: mod for name, mod in sys.modules.items() if name == "grokcore" or name.startswith("grokcore.")}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, directory)
    try:
        import grokcore as base

        trainer, config = base.PackTrainer, base.RunConfig
    finally:
        sys.path.remove(directory)
        for name in [n for n in sys.modules if n == "grokcore" or n.startswith("grokcore.")]:
            sys.modules[f"baseline_{name}"] = sys.modules.pop(name)
        sys.modules.update(ours)
    return trainer, config


def pack_epoch(
    k: int,
    device: torch.device,
    tf32: bool,
    torch_compile: bool,
    trainer_class: type = PackTrainer,
    config_class: type = RunConfig,
):
    """A closure training one epoch of a K-member pack, the executed FLOPs per member-epoch, and
    the evaluation's share of an epoch (one evaluation every eval_every epochs)."""
    members = [config_class(**{**dataclasses.asdict(NANDA), "seed": s}) for s in range(k)]
    trainer = trainer_class(members, device=device, tf32=tf32)
    with FlopCounterMode(display=False) as counter:
        trainer._train_epoch()
    if torch_compile:  # count the eager step's FLOPs (the same work), then time the compiled one
        trainer = trainer_class(members, device=device, tf32=tf32, torch_compile=True)
        trainer._train_epoch()  # compiles
    evaluate_seconds = timed(trainer._metrics, device, 0.0, min_reps=2)
    return trainer._train_epoch, counter.get_total_flops() / k, evaluate_seconds / NANDA.eval_every


def matmul_gflops(device: torch.device, min_seconds: float) -> float:
    n = 4096 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / timed(lambda: a @ b, device, min_seconds, min_reps=3) / 1e9


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--packs", default=None, help="comma-separated pack sizes (default: 1,8,64 on CPU, 1,8,64,256 on CUDA)"
    )
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time each row at least this long")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each row keeps its best")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (the matmul row too)")
    parser.add_argument("--compile", action="store_true", help="grokcore rows with torch_compile=True")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time the grokcore in DIR (a checkout of another "
        "commit) at the same pack sizes, interleaved with this checkout's rows",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    packs = [int(k) for k in (args.packs or ("1,8,64,256" if device.type == "cuda" else "1,8,64")).split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"

    # Shared machines are noisy: interleave the rows in rounds and keep each row's best round,
    # so a burst of load elsewhere cannot favour one row over another.
    runners = {"naive": (naive_epoch(device), None, 0.0, 1)}
    base = baseline_trainer(args.baseline) if args.baseline else None
    for k in packs:  # each baseline row right after its counterpart, so both see the same load
        fn, flops, eval_share = pack_epoch(k, device, args.tf32, args.compile)
        runners[f"grokcore_k{k}"] = (fn, flops, eval_share, k)
        if base is not None:
            fn, flops, eval_share = pack_epoch(k, device, args.tf32, args.compile, *base)
            runners[f"baseline_k{k}"] = (fn, flops, eval_share, k)
    best = {key: float("inf") for key in runners}
    best_matmul = 0.0
    for _ in range(args.rounds):
        best_matmul = max(best_matmul, matmul_gflops(device, args.min_seconds / 2))
        for key, (fn, _, eval_share, _) in runners.items():
            best[key] = min(best[key], timed(fn, device, args.min_seconds, min_reps=2) + eval_share)
    roofline = best_matmul
    naive = 1 / best["naive"]
    rows = {"naive": {"model_epochs_per_s": naive}}
    for key, (_, flops, _, k) in runners.items():
        if key == "naive":
            continue
        rate = k / best[key]
        rows[key] = {
            "model_epochs_per_s": rate,
            "gflops": rate * flops / 1e9,
            "flops_per_model_epoch": flops,
            "vs_naive": rate / naive,
        }

    mode = ", ".join(m for m, on in (("tf32", args.tf32), ("torch.compile", args.compile)) if on) or "float32, eager"
    print(f"device: {name}   torch {torch.__version__}   Nanda config p=113 frac=0.3 d_model=128 d_mlp=512   {mode}")
    print(f"{'run':<16}{'model-epochs/s':>16}{'x naive':>10}{'GFLOP/s':>10}{'% matmul':>10}")
    print(f"{'naive':<16}{naive:>16.2f}{1.0:>10.1f}{'':>10}{'':>10}")
    for key, row in rows.items():
        if key == "naive":
            continue
        print(
            f"{key:<16}{row['model_epochs_per_s']:>16.2f}{row['vs_naive']:>10.1f}{row['gflops']:>10.1f}"
            f"{100 * row['gflops'] / roofline:>9.0f}%"
        )
    print(f"{'matmul':<16}{'':>16}{'':>10}{roofline:>10.1f}{100:>9.0f}%")
    if base is not None:
        for k in packs:
            ratio = rows[f"grokcore_k{k}"]["model_epochs_per_s"] / rows[f"baseline_k{k}"]["model_epochs_per_s"]
            rows[f"grokcore_k{k}"]["vs_baseline"] = ratio
            print(f"K={k}: this checkout / baseline ({args.baseline}) = {ratio:.3f} model-epochs/s")
    result = {
        "device": name,
        "torch": torch.__version__,
        "tf32": args.tf32,
        "compile": args.compile,
        "matmul_gflops": roofline,
        **rows,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

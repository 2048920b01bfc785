"""Synthetic sweeps with exactly known grokking epochs, written in the results layout.

Each member's accuracies are step functions: below the threshold before the
constructed epoch, exactly 0.99 at it (so "at or above" is what is tested),
1.0 after. The tests then know every time, delay and phase in advance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from analysis.columns import METRIC_COLUMNS, SCHEMA_METADATA_KEY, SCHEMA_VERSION
from grokcore.config import RunConfig

# RunConfig without importing grokcore/__init__ (which imports torch): the same file, the same run ids.

THRESHOLD = 0.99


@dataclass
class Member:
    """One synthetic member. Epochs given here must be evaluation epochs (multiples of eval_every)."""

    config: dict
    """RunConfig overrides (task, p, train_fraction, weight_decay, seed, epochs, eval_every, ...)."""
    mem_epoch: int | None
    """First evaluation with train/acc >= 0.99; None: never."""
    gen_epoch: int | None
    """First evaluation with test/acc >= 0.99; None: never."""
    status: str = "done"
    epochs_trained: int | None = None
    """Last epoch trained; default: the budget (config epochs)."""
    add_epoch: int | None = None
    """add_mul: first evaluation with test_add/acc >= 0.99."""
    mul_epoch: int | None = None
    clean_epoch: int | None = -1
    """First evaluation with train_clean/acc >= 0.99; -1: same as mem_epoch (no label noise)."""
    test_dips: tuple[int, ...] = ()
    """Evaluation epochs at which test accuracy drops back to 0.5 (to test `hold`)."""
    train_dips: tuple[int, ...] = ()
    """Evaluation epochs at which train accuracy drops back to 0.93 (a member that falls back)."""
    test_reached_then: tuple[int, int] | None = None
    """(reached, lost): test accuracy is 0.995 from `reached` until before `lost`, then 0.6 to the end."""
    write_runs_row: bool = True
    """False: the member is still running (metrics only)."""
    progress: bool = False
    extra_runs_columns: dict = field(default_factory=dict)

    @cached_property
    def run_config(self) -> RunConfig:
        return RunConfig(**self.config)

    @cached_property
    def run_id(self) -> str:
        return self.run_config.run_id


def accuracy(epoch: int, reached_at: int | None) -> float:
    """Below the threshold before `reached_at` (a sudden rise, as in grokking), exactly 0.99 at it, 1 after."""
    if reached_at is None:
        return 0.3
    if epoch < reached_at:
        return 0.01 + 0.97 * (epoch / reached_at) ** 4
    return THRESHOLD if epoch == reached_at else 1.0


def metrics_rows(member: Member) -> list[dict]:
    cfg = member.run_config
    last = member.epochs_trained if member.epochs_trained is not None else cfg.epochs
    epochs = list(range(0, last + 1, cfg.eval_every))
    if epochs[-1] != last:
        epochs.append(last)
    clean_epoch = member.mem_epoch if member.clean_epoch == -1 else member.clean_epoch
    rows = []
    for epoch in epochs:
        train = 0.93 if epoch in member.train_dips else accuracy(epoch, member.mem_epoch)
        test = 0.5 if epoch in member.test_dips else accuracy(epoch, member.gen_epoch)
        if member.test_reached_then is not None:
            reached, lost = member.test_reached_then
            test = 0.995 if reached <= epoch < lost else 0.6 if epoch >= lost else 0.3
        clean = accuracy(epoch, clean_epoch)
        row = dict.fromkeys(METRIC_COLUMNS, math.nan)
        row.update(
            {
                "run_id": member.run_id,
                "epoch": epoch,
                "train/acc": train,
                "train/loss": 5.0 * (1 - train) + 1e-3,
                "train_clean/acc": clean,
                "train_clean/loss": 5.0 * (1 - clean) + 1e-3,
                "test/acc": test,
                "test/loss": 5.0 * (1 - test) + 1e-3,
                "weight_norm": 30.0 - epoch / max(last, 1),
            }
        )
        if cfg.task == "add_mul":
            for op, reached in (("add", member.add_epoch), ("mul", member.mul_epoch)):
                acc = accuracy(epoch, reached)
                row[f"test_{op}/acc"], row[f"test_{op}/loss"] = acc, 5.0 * (1 - acc) + 1e-3
        rows.append({"run_id": row.pop("run_id"), "epoch": row.pop("epoch"), **row})
    return rows


def runs_row(member: Member, index: int) -> dict:
    cfg = member.run_config
    rows = metrics_rows(member)
    last = rows[-1]
    row = {"run_id": member.run_id, "pack_id": f"pack-{index // 4}", "trial_id": f"trial-{index // 4}"}
    row.update(cfg.to_dict())
    row.update(
        {
            "status": member.status,
            "error": "" if member.status != "failed" else "synthetic failure",
            "epochs_trained": last["epoch"],
            "epoch_train_99": member.mem_epoch,
            "epoch_test_99": member.gen_epoch,
            "final/train/loss": last["train/loss"],
            "final/train/acc": last["train/acc"],
            "final/test/loss": last["test/loss"],
            "final/test/acc": last["test/acc"],
            "wall_seconds": 1.5,
            "device": "cpu",
            "optuna_trial": None,
        }
    )
    row.update(member.extra_runs_columns)
    return row


def progress_rows(member: Member) -> list[dict]:
    return [
        {
            "run_id": r["run_id"],
            "epoch": r["epoch"],
            "fourier/restricted_loss": r["test/loss"] * 0.5,
            "fourier/excluded_loss": 5.0 - r["test/loss"],
        }
        for r in metrics_rows(member)
    ]


def write_parts(directory: Path, rows: list[dict], n_parts: int, version: int | None = SCHEMA_VERSION) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not rows:
        return
    size = math.ceil(len(rows) / n_parts)
    for i in range(n_parts):
        chunk = rows[i * size : (i + 1) * size]
        if not chunk:
            continue
        table = pa.Table.from_pylist(chunk)
        if version is not None:
            table = table.replace_schema_metadata({SCHEMA_METADATA_KEY: str(version)})
        pq.write_table(table, directory / f"part-{i:05d}.parquet")


def write_sweep(
    root: Path,
    name: str,
    members: list[Member],
    axes: dict | None = None,
    base: dict | None = None,
    n_parts: int = 2,
    write_spec: bool = True,
) -> Path:
    """Write `members` as sweep `name` under `root`; returns the sweep directory."""
    sweep_dir = Path(root) / name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if write_spec:
        spec = {"name": name, "base": base or {}, "axes": axes or {}}
        (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    runs = [runs_row(m, i) for i, m in enumerate(members) if m.write_runs_row]
    metrics = [row for m in members for row in metrics_rows(m)]
    progress = [row for m in members if m.progress for row in progress_rows(m)]
    write_parts(sweep_dir / "runs", runs, n_parts)
    write_parts(sweep_dir / "metrics", metrics, n_parts)
    if progress:
        write_parts(sweep_dir / "progress", progress, 1)
    return sweep_dir


# ---- the canonical sweep the tests share ------------------------------------------------------

TRAIN_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)
WEIGHT_DECAYS = (0.1, 0.3, 1.0, 3.0)
SEEDS = (0, 1, 2)
EPOCHS = 20_000
EVAL_EVERY = 100
GROK_CONSTANT = 1500.0
"""Grokking epoch = GROK_CONSTANT / weight_decay, rounded to the evaluation interval (Omnigrok's 1/wd)."""


def constructed_gen_epoch(train_fraction: float, weight_decay: float, seed: int) -> int | None:
    """Known answer: no member with train fraction <= 0.2 generalises; the others at C/wd, except that at
    train fraction 0.3 only seeds 0 and 1 do (fraction grokked 2/3)."""
    if train_fraction <= 0.2 or (train_fraction == 0.3 and seed == 2):
        return None
    return round(GROK_CONSTANT / weight_decay / EVAL_EVERY) * EVAL_EVERY


def constructed_mem_epoch(train_fraction: float, weight_decay: float, seed: int) -> int:
    return 200 + 100 * seed


def grid_members() -> list[Member]:
    members = []
    for tf in TRAIN_FRACTIONS:
        for wd in WEIGHT_DECAYS:
            for seed in SEEDS:
                members.append(
                    Member(
                        config={
                            "task": "add",
                            "p": 13,
                            "train_fraction": tf,
                            "weight_decay": wd,
                            "seed": seed,
                            "epochs": EPOCHS,
                            "eval_every": EVAL_EVERY,
                            "d_model": 8,
                            "n_heads": 2,
                            "d_mlp": 16,
                        },
                        mem_epoch=constructed_mem_epoch(tf, wd, seed),
                        gen_epoch=constructed_gen_epoch(tf, wd, seed),
                        progress=(tf == 0.5 and seed == 0),
                    )
                )
    return members


def write_grid_sweep(root: Path, name: str = "grid") -> Path:
    return write_sweep(
        root,
        name,
        grid_members(),
        axes={"train_fraction": list(TRAIN_FRACTIONS), "weight_decay": list(WEIGHT_DECAYS), "seed": list(SEEDS)},
        base={"task": "add", "p": 13, "epochs": EPOCHS, "eval_every": EVAL_EVERY},
    )


# ---- the three named phase diagrams of the seed experiments -------------------------------------

SMALL = {"p": 13, "d_model": 8, "n_heads": 2, "d_mlp": 16, "epochs": 5000, "eval_every": 100}


def pow_members() -> list[Member]:
    """(a^m + b^n) mod p on a 3 x 3 exponent grid: grok epoch 1000 (m + n), memorised at 100; m = n = 3 never
    generalises (memorisation)."""
    members = []
    for m in (1, 2, 3):
        for n in (1, 2, 3):
            grok = None if m == n == 3 else 1000 * (m + n)
            members.append(
                Member(config={**SMALL, "task": "pow", "exp_m": m, "exp_n": n}, mem_epoch=100, gen_epoch=grok)
            )
    return members


def add_mul_members() -> list[Member]:
    """add_mul: addition test pairs generalise at 500 unless no addition is trained on (addition_fraction 0);
    multiplication ones at 800 * (1 + train-fraction index) unless addition_fraction is 1. The whole test set
    generalises when both parts do, at the later of the two."""
    members = []
    for i, tf in enumerate((0.2, 0.4, 0.6)):
        for af in (0.0, 0.5, 1.0):
            add = 500 if af > 0 else None
            mul = 800 * (1 + i) if af < 1 else None
            both = max(add, mul) if add is not None and mul is not None else None
            members.append(
                Member(
                    config={**SMALL, "task": "add_mul", "train_fraction": tf, "addition_fraction": af},
                    mem_epoch=200,
                    gen_epoch=both,
                    add_epoch=add,
                    mul_epoch=mul,
                )
            )
    return members


def noise_members() -> list[Member]:
    """Binomial label noise n in {0, 2, 4} x train fraction {0.3, 0.5}: without noise the model memorises at 200;
    with noise it never fits the noisy labels (train/acc < 0.99) but fits the clean ones at 300; test generalises
    at 1000 + 500 n."""
    members = []
    for tf in (0.3, 0.5):
        for n in (0, 2, 4):
            members.append(
                Member(
                    config={**SMALL, "task": "add", "train_fraction": tf, "noise": "binomial", "noise_n": n},
                    mem_epoch=200 if n == 0 else None,
                    clean_epoch=200 if n == 0 else 300,
                    gen_epoch=1000 + 500 * n,
                )
            )
    return members


# ---- a sampled (random / Optuna) sweep: no two members share a point --------------------------


def sampled_members(n: int = 24) -> list[Member]:
    """Log-uniform weight decay in [0.01, 10] and uniform train fraction in [0.1, 0.9], drawn with a fixed
    seed. Known answer: members with train fraction >= 0.4 grok (at C/wd), the others only memorise."""
    import random

    rng = random.Random(7)
    members = []
    for i in range(n):
        tf = round(rng.uniform(0.1, 0.9), 4)
        wd = round(10 ** rng.uniform(-2, 1), 5)
        grok = None if tf < 0.4 else max(EVAL_EVERY, round(GROK_CONSTANT / wd / EVAL_EVERY) * EVAL_EVERY)
        members.append(
            Member(
                config={
                    "task": "add",
                    "p": 13,
                    "train_fraction": tf,
                    "weight_decay": wd,
                    "seed": i,
                    "epochs": 200_000,
                    "eval_every": EVAL_EVERY,
                    "d_model": 8,
                    "n_heads": 2,
                    "d_mlp": 16,
                },
                mem_epoch=min(200, grok or 200),
                gen_epoch=grok,
            )
        )
    return members

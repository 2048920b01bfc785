"""Example pools and member splits: every example of a member's task, tokenised, and each member's split.

What a task is (operands, labels, split, subtasks) lives in grokcore.task; this module turns a
Task's examples into tokens of the member's layout and adds label noise.

A pack shares one example pool (all tokenised examples of the task); each member
owns only index tensors into it (its train and test split) and its training labels
(which differ from the clean labels under label noise). That keeps per-member data
small and lets members with different splits train in one batched step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from grokcore.config import RunConfig, check_split

ADD, MUL = 0, 1  # subtask ids of add_mul (its Task.subtasks are ('add', 'mul'))


@dataclass(frozen=True)
class ExamplePool:
    """All examples of a task, shared by every member of a pack."""

    inputs: Tensor  # (N, n_ctx) int64 tokens
    labels: Tensor  # (N,) int64 clean labels
    subtask: Tensor  # (N,) int64: index into the task's subtasks (0 for single-operation tasks)


@dataclass(frozen=True)
class MemberSplit:
    """One member's view of the pool."""

    train_idx: Tensor  # (n_train,) int64 indices into the pool
    test_idx: Tensor  # (n_test,)
    train_labels: Tensor  # (n_train,) the labels trained on (noisy under label noise)


def build_pool(cfg: RunConfig) -> ExamplePool:
    """Every example of the member's task, in the task's order, laid out as cfg.token_layout."""
    ex = cfg.task_def.examples()
    columns = {
        "a": ex.x,
        "b": ex.y,
        "=": torch.full_like(ex.x, cfg.eq_token),
        "op": cfg.eq_token + 1 + ex.op,
    }
    inputs = torch.stack([columns[t] for t in cfg.token_layout.split()], dim=1)
    return ExamplePool(inputs=inputs, labels=ex.labels, subtask=ex.subtask)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_split(cfg: RunConfig, pool: ExamplePool) -> MemberSplit:
    """The member's split, reproducible from (seed, task, p, fractions)."""
    check_split(cfg)
    train_idx, test_idx = cfg.task_def.split(cfg, _generator(cfg.sub_seed("split")))
    clean = pool.labels[train_idx]
    return MemberSplit(train_idx=train_idx, test_idx=test_idx, train_labels=add_label_noise(cfg, clean))


def add_label_noise(cfg: RunConfig, clean: Tensor) -> Tensor:
    g = _generator(cfg.sub_seed("noise"))
    if cfg.noise == "binomial" and cfg.noise_n > 0:
        flips = torch.randint(0, 2, (clean.numel(), cfg.noise_n), generator=g).sum(1)
        return (clean + flips - cfg.noise_n // 2) % cfg.n_classes
    if cfg.noise == "uniform" and cfg.noise_fraction > 0:
        n_noisy = round(cfg.noise_fraction * clean.numel())
        which = torch.randperm(clean.numel(), generator=g)[:n_noisy]
        noisy = clean.clone()
        noisy[which] = torch.randint(0, cfg.n_classes, (n_noisy,), generator=g)
        return noisy
    return clean.clone()

"""A member's data as plain tensors, for code outside the trainer (devinterp, TransformerLens, notebooks).

    from grokcore.data import member_data
    data = member_data(cfg)       # cfg: a RunConfig, e.g. from grokcore.export.load_member
    data.train_tokens, data.train_labels          # exactly what the trainer fits (noisy labels under noise)

The trainer builds the same tensors from the same functions (grokcore.splits), padded with
zero-weight rows to whole chunks (grokcore.train.example_chunk) as many as a pack's longest member
needs; a test checks that member_data equals what PackTrainer trains and evaluates on.

Token ids: operand values a, b are tokens 0 .. operand_range - 1; then '=' (operand_range), then one
token per op of the task (Task.ops), so d_vocab = operand_range + 1 + len(ops) whatever the layout
(RunConfig.d_vocab). The seed tasks (add, mul, add_mul, pow, max) keep the ops '+' and '*': operand_range
+ 3, 116 at p = 113, where the seed notebooks used 114 (they had only '='); the other tasks have one op:
operand_range + 2 (sub at p = 97: 99; S5, perm at p = 5, with 120 operands: 122). Labels are class ids
0 .. n_classes - 1 (the answer), read off the logits at the last position.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Int
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.splits import build_pool, make_split


@dataclass(frozen=True)
class MemberData:
    """One member's train and test examples, in the order the trainer holds them (int64, CPU)."""

    train_tokens: Int[Tensor, "n_train pos"]
    train_labels: Int[Tensor, " n_train"]
    """The labels the member is trained on and its train accuracy is measured against (noisy under
    label noise)."""
    train_clean_labels: Int[Tensor, " n_train"]
    """The true answers of the training examples (`train_clean/*` metrics); equal to train_labels
    without label noise."""
    test_tokens: Int[Tensor, "n_test pos"]
    test_labels: Int[Tensor, " n_test"]
    """Test labels are always clean: noise is added to training labels only."""
    test_subtask: Int[Tensor, " n_test"]
    """grokcore.splits.ADD or MUL per test example (add_mul's per-task test metrics); ADD otherwise."""


def member_data(cfg: RunConfig) -> MemberData:
    """The member's split and labels, reproducible from its config (the `split` and `noise` sub-seeds)."""
    pool = build_pool(cfg)
    split = make_split(cfg, pool)
    return MemberData(
        train_tokens=pool.inputs[split.train_idx],
        train_labels=split.train_labels,
        train_clean_labels=pool.labels[split.train_idx],
        test_tokens=pool.inputs[split.test_idx],
        test_labels=pool.labels[split.test_idx],
        test_subtask=pool.subtask[split.test_idx],
    )

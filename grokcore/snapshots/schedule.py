"""Which epochs keep a member's weights (SnapshotSchedule), and a kept copy (Snapshot).

The trainer reads the schedule and hands out Snapshots; taking one reads the weights and never
changes them, so a pack trains to the same numbers with or without a schedule (a test keeps it
so). The schedule is not part of a RunConfig, so it never changes a run_id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.packed import param_shapes

EVENTS = ("train_99", "test_99", "end")
"""train_99 / test_99: the evaluation where train / test accuracy first reaches 0.99 (the trainer's
epoch_train_99 / epoch_test_99, known as it happens; whether the accuracy then holds, memorised or
generalised by grokcore/verdict.py's rule, is known only later); end: the member's last epoch."""
RENAMED_EVENTS = {"memorised": "train_99", "generalised": "test_99"}
"""Event names of earlier specs: "memorised" and "generalised" are the held rule's words now."""
SCHEDULED = "epoch"  # the event label of a snapshot taken because its epoch was scheduled
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class SnapshotSchedule:
    """When to keep a member's weights. Epochs are per member: `log_points` and `every` run up to
    its own epoch budget."""

    every: int | None = None
    """every N epochs (N, 2N, ...), or None"""
    epochs: tuple[int, ...] = ()
    """these epochs (those past a member's budget are never reached)"""
    log_points: int = 0
    """this many log-spaced epochs between 1 and the member's budget (fewer where they round together)"""
    events: tuple[str, ...] = ()
    """any of train_99, test_99, end"""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """storage precision; float32 keeps the trained weights bit for bit"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "epochs", tuple(sorted({int(e) for e in self.epochs})))
        object.__setattr__(self, "events", tuple(e for e in EVENTS if e in set(self.events)))
        if self.every is not None and self.every < 1:
            raise ValueError(f"snapshots.every: must be an integer >= 1, got {self.every}")
        if any(e < 1 for e in self.epochs):
            raise ValueError(f"snapshots.epochs: must be epochs >= 1, got {list(self.epochs)}")
        if self.log_points < 0:
            raise ValueError(f"snapshots.log_points: must be an integer >= 0, got {self.log_points}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotSchedule:
        unknown = set(data) - {"every", "epochs", "log_points", "events", "dtype"}
        if unknown:
            raise ValueError(f"snapshots: unknown keys {sorted(unknown)}")
        events = data.get("events", ())
        renamed = [e for e in events if e in RENAMED_EVENTS]
        if renamed:
            raise ValueError(
                "snapshots.events: "
                + "; ".join(
                    f"{e!r} is now {RENAMED_EVENTS[e]!r} (the first evaluation at accuracy 0.99; {e!r} means the held "
                    f"rule of grokcore/verdict.py, which is known only later)"
                    for e in renamed
                )
            )
        bad = set(events) - set(EVENTS)
        if bad:
            raise ValueError(f"snapshots.events: unknown {sorted(bad)}; allowed: {', '.join(EVENTS)}")
        if data.get("dtype", "float32") not in DTYPES:
            raise ValueError(f"snapshots.dtype: one of {', '.join(DTYPES)}, got {data['dtype']!r}")
        return cls(
            every=data.get("every"),
            epochs=tuple(data.get("epochs", ())),
            log_points=int(data.get("log_points", 0)),
            events=tuple(events),
            dtype=data.get("dtype", "float32"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "epochs": list(self.epochs),
            "log_points": self.log_points,
            "events": list(self.events),
            "dtype": self.dtype,
        }

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def scheduled_epochs(self, budget: int) -> frozenset[int]:
        """The epochs in 1..budget this schedule keeps (events aside)."""
        out = {e for e in self.epochs if e <= budget}
        if self.every:
            out.update(range(self.every, budget + 1, self.every))
        if self.log_points == 1:
            out.add(budget)
        elif self.log_points > 1:
            step = math.log(budget) / (self.log_points - 1)
            out.update(min(budget, max(1, round(math.exp(i * step)))) for i in range(self.log_points))
        return frozenset(out)

    def max_snapshots(self, cfg: RunConfig) -> int:
        """An upper bound on one member's snapshots: its scheduled epochs plus one per event (an
        event on a scheduled epoch shares its snapshot)."""
        return len(self.scheduled_epochs(cfg.epochs)) + len(self.events)

    def bytes_per_snapshot(self, cfg: RunConfig) -> int:
        """The weights of one member at one epoch, as stored (the file's index adds a few hundred bytes)."""
        n = sum(math.prod(shape) for shape in param_shapes(cfg).values())
        return n * torch.empty((), dtype=self.torch_dtype).element_size()


@dataclass
class Snapshot:
    run_id: str
    epoch: int
    event: str
    """'+'-joined labels: 'epoch' for a scheduled epoch, and any of EVENTS (e.g. 'end+epoch')"""
    weights: dict[str, Tensor] = field(repr=False)
    """TransformerLens names, no member axis, on the host, in the schedule's dtype"""

    def with_event(self, event: str) -> Snapshot:
        labels = sorted(set(self.event.split("+")) | {event})
        return Snapshot(self.run_id, self.epoch, "+".join(labels), self.weights)

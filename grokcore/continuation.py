"""Continuing members past the budget they ended at: end states kept, and trainers started from them.

Training is prefix-consistent: no learning-rate schedule or other rule reads the budget, so a member
trained for 12,000 epochs passes through exactly the states of the same member trained for 3,000.
A member that ends at its budget leaves an `EndState` (weights, both Adam moments, the optimizer's
step count, its evaluation bookkeeping); a trainer built from end states (`continue_pack`) goes on
from there and computes, bit for bit on one machine, what a trainer given the larger budget from
epoch 0 computes. Nothing random needs restoring: minibatch orders are drawn per (seed, epoch) and
label noise is fixed by the split's sub-seed.

    keeper = EndStateKeeper(trainer)          # before trainer.run(): collects members ending "done"
    ... keeper.take() after each report -> [EndState]
    trainer = continue_pack([replace(cfg, epochs=12_000, extended_from=3_000)], [state])

One caveat of the evaluation grid: the trainer evaluates every `eval_every` epochs and at the last
epoch, so an old budget that is no multiple of `eval_every` leaves one evaluation (at that budget)
that the member trained long from the start lacks. A continued member keeps it: it is a true
measurement of the same state, and every other row is the same.

Pure torch and safetensors: no Ray, no pandas (a notebook can continue a pack by itself).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.records import BUDGET_END
from grokcore.snapshots.file_format import header_metadata
from grokcore.train import PackTrainer, _Tracker

INDEX_KEY = "grok.end_states"
TENSORS = ("params", "exp_avg", "exp_avg_sq")


@dataclass
class EndState:
    """One member at the epoch it ended: flat rows of its weights and Adam moments (the trainer's
    FlatParams layout), the optimizer's step count and the trainer's tracker for it."""

    run_id: str
    epoch: int
    step: int
    tracker: dict[str, Any]
    params: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor


class EndStateKeeper:
    """Keeps the end state of every member of `trainer` that ends at its budget (status "done"), taken
    before the member leaves the batch (its moments go with it)."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self._taken: list[EndState] = []
        trainer.on_leave = self._leaving

    def _leaving(self, members: Sequence[int], status: str) -> None:
        if status != BUDGET_END or not members:
            return
        t = self.trainer
        index = torch.tensor(list(members), device=t.device)
        rows = {
            name: x[index].detach().cpu()
            for name, x in (
                ("params", t.flat.data),
                ("exp_avg", t.optimizer.exp_avg),
                ("exp_avg_sq", t.optimizer.exp_avg_sq),
            )
        }
        for i, k in enumerate(members):
            self._taken.append(
                EndState(
                    t.configs[k].run_id,
                    t.epoch,
                    t.optimizer.step_count,
                    asdict(t.trackers[k]),
                    *(rows[name][i].clone() for name in TENSORS),
                )
            )

    def take(self) -> list[EndState]:
        taken, self._taken = self._taken, []
        return taken


def continue_pack(
    configs: Sequence[RunConfig], states: Sequence[EndState], device: str | torch.device = "cpu", **trainer_options: Any
) -> Any:
    """A PackTrainer over these members (their larger budgets in `epochs`) positioned at their end
    states. Every state must be at the same epoch and step (a pack shares its epoch counter and its
    optimizer's bias correction); the planner groups continuing members that way."""
    if len(configs) != len(states):
        raise ValueError(f"{len(configs)} members but {len(states)} end states")
    for cfg, st in zip(configs, states, strict=True):
        if cfg.run_id != st.run_id:
            raise ValueError(f"end state of {st.run_id} given for member {cfg.run_id}")
        if cfg.epochs <= st.epoch:
            raise ValueError(f"{cfg.run_id}: epochs={cfg.epochs} is not past its end state's epoch {st.epoch}")
    starts = {(st.epoch, st.step) for st in states}
    if len(starts) != 1:
        raise ValueError(f"a continued pack needs members at one epoch and step; got {sorted(starts)}")
    ((epoch, step),) = starts
    trainer = PackTrainer(configs, device=device, **trainer_options)
    if trainer.flat.data.shape[1] != states[0].params.numel():
        raise ValueError(
            f"end states hold {states[0].params.numel()} parameters a member, the model {trainer.flat.data.shape[1]}"
        )
    with torch.no_grad():
        for name, target in (
            ("params", trainer.flat.data),
            ("exp_avg", trainer.optimizer.exp_avg),
            ("exp_avg_sq", trainer.optimizer.exp_avg_sq),
        ):
            target.copy_(torch.stack([getattr(st, name) for st in states]).to(target.device, target.dtype))
    trainer.epoch, trainer.optimizer.step_count = epoch, step
    trainer.trackers = [
        replace(_Tracker(**st.tracker), end_epoch=cfg.epochs, stop_fired=False)
        for cfg, st in zip(configs, states, strict=True)
    ]
    return trainer


# ---- one file of end states: safetensors, the index in its metadata ---------------------------------
def to_bytes(states: Sequence[EndState]) -> bytes:
    from safetensors.torch import save

    tensors = {f"{st.run_id}/{name}": getattr(st, name).contiguous() for st in states for name in TENSORS}
    index = [{"run_id": st.run_id, "epoch": st.epoch, "step": st.step, "tracker": st.tracker} for st in states]
    return save(tensors, metadata={INDEX_KEY: json.dumps(index)})


def index_of(data: bytes) -> list[dict[str, Any]]:
    """The index (run_id, epoch, step, tracker per state) from the header alone."""
    return json.loads(header_metadata(data)[INDEX_KEY])


def from_bytes(data: bytes, run_ids: set[str] | None = None) -> list[EndState]:
    from safetensors.torch import load

    tensors = load(data)
    return [
        EndState(
            e["run_id"], e["epoch"], e["step"], e["tracker"], *(tensors[f"{e['run_id']}/{name}"] for name in TENSORS)
        )
        for e in index_of(data)
        if run_ids is None or e["run_id"] in run_ids
    ]


def without(data: bytes, run_ids: set[str]) -> bytes | None:
    """The file without these members' states (None: nothing left)."""
    kept = [st for st in from_bytes(data) if st.run_id not in run_ids]
    return to_bytes(kept) if kept else None


__all__ = ["EndState", "EndStateKeeper", "continue_pack", "from_bytes", "index_of", "to_bytes", "without"]

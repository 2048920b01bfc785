"""A pack or one member rebuilt from snapshot weights, for measures and hooks computed offline."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.train import PackTrainer


def pack_at(
    configs: Sequence[RunConfig], weights: Sequence[dict[str, Tensor]], epoch: int, device: torch.device | str = "cpu"
):
    """A PackTrainer of these members (one shape) holding these weights at `epoch`: what the trainer
    held then, for measures recomputed offline (grokcore.progress.measure_pack(pack_at(...)) at a
    snapshot's epoch equals the online measure of the same pack at that epoch)."""
    trainer = PackTrainer(configs, device=device)
    flat = trainer.flat
    rows = torch.stack([torch.cat([w[name].reshape(-1).to(flat.data.dtype) for name in flat.offsets]) for w in weights])
    flat.data.copy_(rows.to(flat.data.device))  # the parameters are views of flat.data
    trainer.epoch = epoch
    return trainer


def hooked_member(cfg: RunConfig, weights: dict[str, Tensor]):
    """One member as the project's hooked model (`run_with_cache` with TransformerLens names); it is
    a pack of one, so tokens are (1, batch, pos) and cached activations have a leading member axis."""
    from grokcore.model import build_model  # here: importing transformer_lens costs seconds (grokcore/packed.py)

    return build_model(cfg, [weights])

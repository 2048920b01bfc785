"""The embedding's Fourier entropy: how spread the embedding is over frequencies, in one number.

The per-frequency norms of the operand embedding (grokcore.progress.fourier.frequency_norms), made a
distribution over the p // 2 frequencies, and its entropy in nats: 0 when one frequency holds all
the norm (a grokked adder's embedding is concentrated on a few key frequencies), log(p // 2) when
every frequency holds the same (a random embedding is close to it). It falls as the circuit forms,
without the key-fraction threshold that `fourier/n_key` depends on.

Off by default (ProgressSettings(extra=("fourier_entropy",)), `grok measure --measures
fourier_entropy`); the worked example of docs/howto/progress-measure.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from grokcore.progress import columns as col
from grokcore.progress.fourier import frequency_norms

if TYPE_CHECKING:  # annotations only
    from grokcore.progress.pack import ProgressSettings
    from grokcore.train import PackTrainer


def fourier_entropy(norms: Float[Tensor, "member freq"]) -> Float[Tensor, " member"]:
    """Entropy (nats) of each member's norms normalised to sum 1; 0 log 0 counts as 0. NaN for an
    all-zero embedding, whose spectrum is no distribution."""
    q = norms / norms.sum(-1, keepdim=True)
    return -torch.where(q > 0, q * q.log(), torch.zeros_like(q)).sum(-1).where(norms.sum(-1) > 0, torch.nan)


def fourier_entropy_columns(trainer: PackTrainer, weights: dict[str, Tensor], settings: ProgressSettings
                            ) -> dict[str, Tensor]:
    """The registry's function: `fourier/embed_entropy` of every member, over tokens 0 .. p-1."""
    p = trainer.arch.task_def.modulus
    return {col.EMBED_ENTROPY: fourier_entropy(frequency_norms(weights["embed.W_E"][:, :p].to(torch.float64)))}

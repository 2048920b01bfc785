"""Fourier progress measures of modular addition (Nanda et al. 2023, "Progress measures for grokking via
mechanistic interpretability"), every function batched over a leading member axis.

Conventions: `p` is the modulus; the inputs (a, b) run over the full p x p grid in the order
index = a * p + b; frequencies are k = 1 .. p // 2 (angle 2*pi*k*x/p). Everything is computed in
the dtype it is given (callers pass float64 for the measures); nothing here prints or touches files.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

# ---- the basis ------------------------------------------------------------------------------------


def fourier_basis(
    p: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> tuple[Float[Tensor, "p p"], Int[Tensor, " p"]]:
    """The orthonormal real Fourier basis of functions on Z_p, one basis vector per row, and the
    frequency of each row.

    Rows: the constant 1/sqrt(p) (frequency 0), then cos(2 pi k x / p) and sin(2 pi k x / p) for
    k = 1 .. (p - 1) // 2, each scaled to unit norm; for even p a last row cos(pi x) (frequency p / 2,
    whose sine vanishes on the integers).
    """
    x = torch.arange(p, dtype=dtype, device=device)
    rows, freqs = [torch.full((p,), 1 / math.sqrt(p), dtype=dtype, device=device)], [0]
    for k in range(1, p // 2 + 1):
        angle = 2 * math.pi * k * x / p
        if 2 * k == p:
            rows.append(torch.cos(angle) / math.sqrt(p))
            freqs.append(k)
        else:
            rows += [torch.cos(angle) * math.sqrt(2 / p), torch.sin(angle) * math.sqrt(2 / p)]
            freqs += [k, k]
    return torch.stack(rows), torch.tensor(freqs, device=device)


# ---- the embedding ---------------------------------------------------------------------------------


def frequency_norms(embed: Float[Tensor, "member p d"]) -> Float[Tensor, "member freq"]:
    """The L2 norm of each frequency's part of the embedding: for frequency k (column k - 1), the
    norm of the (cos k, sin k) rows of F @ W_E, where F is the Fourier basis and W_E the embedding
    of the p operand tokens."""
    p = embed.shape[1]
    basis, freqs = fourier_basis(p, embed.dtype, embed.device)
    energy = torch.einsum("fx,mxd->mfd", basis, embed).pow(2).sum(-1)  # (member, row)
    grouped = torch.zeros(embed.shape[0], p // 2 + 1, dtype=embed.dtype, device=embed.device)
    grouped.index_add_(1, freqs, energy)
    return grouped[:, 1:].sqrt()


def key_frequencies(
    norms: Float[Tensor, "member freq"], fraction: float = 0.25, max_keys: int = 8
) -> tuple[Int[Tensor, "member key"], Int[Tensor, " member"]]:
    """The key frequencies: every frequency whose norm is at least `fraction` of the member's largest
    norm, strongest first, at most `max_keys` of them (padded with -1).

    Returns (keys, n_above) where n_above counts all frequencies above the threshold, which may
    exceed max_keys (a random embedding has all of them above a quarter of its largest norm; a
    grokked one a handful).
    """
    top = norms.max(-1, keepdim=True).values
    above = (norms >= fraction * top) & (norms > 0)
    n_above = above.sum(-1)
    order = torch.where(above, norms, torch.full_like(norms, -1.0)).argsort(dim=-1, descending=True, stable=True)
    k = min(max_keys, norms.shape[-1])
    keys = order[:, :k] + 1
    if k < max_keys:  # fewer frequencies than slots (small p)
        keys = torch.cat([keys, keys.new_full((keys.shape[0], max_keys - k), -1)], dim=-1)
    slot = torch.arange(max_keys, device=norms.device)
    return torch.where(slot < n_above.unsqueeze(-1), keys, torch.full_like(keys, -1)), n_above


def key_energy_fraction(
    norms: Float[Tensor, "member freq"], keys: Int[Tensor, "member key"]
) -> Float[Tensor, " member"]:
    """Fraction of the embedding's non-constant Fourier energy (squared norm) in the key frequencies."""
    energy = norms.pow(2)
    picked = energy.gather(-1, keys.clamp(min=1) - 1) * (keys > 0)
    return picked.sum(-1) / energy.sum(-1)


# ---- logits over the input grid --------------------------------------------------------------------


def sum_directions(
    p: int, keys: Int[Tensor, "member key"], dtype: torch.dtype = torch.float64
) -> Float[Tensor, "member pair dir"]:
    """Unit vectors over the p x p input grid along cos(w (a + b)) and sin(w (a + b)) for each key
    frequency w (two columns per key slot; zero columns for padding and for the vanishing sine of
    w = p / 2). They are mutually orthogonal and orthogonal to the constant."""
    device = keys.device
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    s = ((a + b) % p).to(dtype)  # (pair,)
    w = keys.clamp(min=0).to(dtype)  # (member, key)
    angle = 2 * math.pi * w.unsqueeze(1) * s.view(1, -1, 1) / p  # (member, pair, key)
    dirs = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1).flatten(-2)  # (member, pair, 2 key)
    live = (keys > 0).repeat_interleave(2, dim=-1).unsqueeze(1)
    dirs = dirs * live
    norm = dirs.norm(dim=1, keepdim=True)
    return torch.where(norm > 1e-9 * p, dirs / norm.clamp(min=1e-30), torch.zeros_like(dirs))


def key_terms(
    logits: Float[Tensor, "member pair cls"], keys: Int[Tensor, "member key"]
) -> Float[Tensor, "member pair cls"]:
    """The part of the logits along the key directions cos(w (a + b)), sin(w (a + b)) of the input grid,
    each output logit c projected separately (so it holds the cos(w (a + b - c)) and sin(w (a + b - c))
    terms the algorithm uses). As `get_component_cos_xpy` / `_sin_xpy` in the paper's code."""
    p = math.isqrt(logits.shape[1])
    dirs = sum_directions(p, keys, logits.dtype)
    return torch.bmm(dirs, torch.bmm(dirs.transpose(1, 2), logits))


def cross_entropy(
    logits: Float[Tensor, "member n cls"],
    labels: Int[Tensor, "member n"],
    weight: Float[Tensor, "member n"] | None = None,
) -> Float[Tensor, " member"]:
    """Per-member (weighted) mean cross-entropy; weight rows sum to one (None: the plain mean)."""
    nll = -logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    if weight is None:
        return nll.mean(-1)
    return (nll * weight).sum(-1)


def restricted_loss(
    logits: Float[Tensor, "member pair cls"], labels: Int[Tensor, "member pair"], keys: Int[Tensor, "member key"]
) -> Float[Tensor, " member"]:
    """Restricted loss: only the key-frequency terms of the logits kept, plus the bias correction (the
    mean over all inputs of the logits the projection removed, per output: the input-independent
    term), evaluated on the whole p x p grid."""
    kept = key_terms(logits, keys)
    corrected = kept + (logits - kept).mean(1, keepdim=True)
    return cross_entropy(corrected, labels)


def excluded_loss(
    logits: Float[Tensor, "member pair cls"],
    keys: Int[Tensor, "member key"],
    index: Int[Tensor, "member n"],
    labels: Int[Tensor, "member n"],
    weight: Float[Tensor, "member n"],
) -> Float[Tensor, " member"]:
    """Excluded loss: the key-frequency terms removed from the logits, evaluated on the training pairs
    (`index` into the grid, their labels and mean weights; zero weight on padding)."""
    removed = logits - key_terms(logits, keys)
    picked = removed.gather(1, index.unsqueeze(-1).expand(-1, -1, removed.shape[-1]))
    return cross_entropy(picked, labels, weight)


def logit_cos_coefficients(
    logits: Float[Tensor, "member pair cls"], keys: Int[Tensor, "member key"]
) -> tuple[Float[Tensor, "member key"], Float[Tensor, " member"]]:
    """Least-squares coefficients alpha_w of the logits on cos(w (a + b - c)) over the p x p x p grid
    for each key frequency (NaN on padded slots), and the fraction of the logits' variance they explain.

    The logits are centred per input first (softmax ignores a per-input constant); the cos terms of
    distinct frequencies are orthogonal, so the fraction explained is the sum over keys of
    alpha_w^2 |cos_w|^2 over the centred logits' squared norm."""
    member, pairs, classes = logits.shape
    p = math.isqrt(pairs)
    dtype, device = logits.dtype, logits.device
    centred = logits - logits.mean(-1, keepdim=True)
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    s = (a + b) % p
    by_sum = torch.zeros(member, p, classes, dtype=dtype, device=device).index_add_(1, s, centred)  # (member, s, c)
    w = keys.clamp(min=0).to(dtype)
    diff = (torch.arange(p, device=device).view(-1, 1) - torch.arange(classes, device=device).view(1, -1)).to(dtype)
    cos = torch.cos(2 * math.pi * w.view(member, -1, 1, 1) * diff / p)  # (member, key, s, c)
    dot = torch.einsum("msc,mksc->mk", by_sum, cos)
    sq_norm = p * cos.pow(2).sum((-1, -2))  # p pairs (a, b) share each sum s
    live = keys > 0
    alpha = torch.where(live, dot / sq_norm, torch.full_like(dot, math.nan))
    explained = torch.where(live, alpha.nan_to_num().pow(2) * sq_norm, torch.zeros_like(dot)).sum(-1)
    return alpha, explained / centred.pow(2).sum((1, 2))


# ---- neurons ---------------------------------------------------------------------------------------


def neuron_frequency_fve(acts: Float[Tensor, "member pair neuron"]) -> Float[Tensor, "member neuron freq"]:
    """For each neuron and frequency k, the fraction of the neuron's variance over the p x p input
    grid explained by frequency k alone: the terms of the 2D Fourier expansion that are linear
    (cos/sin k of a or of b) or quadratic (products of cos/sin k of a and of b) in frequency k.
    Dead neurons (no variance) get NaN."""
    member, pairs, neurons = acts.shape
    p = math.isqrt(pairs)
    basis, freqs = fourier_basis(p, acts.dtype, acts.device)
    grid = acts.view(member, p, p, neurons)
    grid = grid - grid.mean((1, 2), keepdim=True)
    # the 2D transform as two plain matmuls (a 3-operand einsum may form a p^4 intermediate)
    over_a = (basis @ grid.reshape(member, p, p * neurons)).view(member * p, p, neurons)  # (member*row_a, b, n)
    coeff = (basis @ over_a).view(member, p, p, neurons).pow(2)  # (member, row_a, row_b, neuron)
    nf = p // 2 + 1
    rows = torch.zeros(member, nf, p, neurons, dtype=acts.dtype, device=acts.device).index_add_(1, freqs, coeff)
    blocks = torch.zeros(member, nf, nf, neurons, dtype=acts.dtype, device=acts.device).index_add_(2, freqs, rows)
    k = torch.arange(1, nf, device=acts.device)
    explained = blocks[:, k, 0] + blocks[:, 0, k] + blocks[:, k, k]  # (member, freq, neuron)
    total = coeff.sum((1, 2))  # (member, neuron)
    fve = explained / total.unsqueeze(1)
    dead = total <= 1e-12 * total.amax(-1, keepdim=True)  # zero variance up to rounding (or all dead)
    return torch.where(dead.unsqueeze(1), torch.full_like(fve, math.nan), fve).transpose(1, 2)

"""The local learning coefficient (LLC) by SGLD, batched over members and chains.

The estimator is devinterp's (Lau et al. 2023; devinterp 1.3 `estimate_learning_coeff_with_summary`,
2.x `slt.llc`): around the point w* whose LLC is wanted, run SGLD chains on the localised, tempered
posterior

    w <- w - (eps / 2) * (nbeta * grad L_batch(w) + gamma * (w - w*)) + sqrt(eps) * sigma * N(0, I)

(eps the step size, gamma the localisation, nbeta = n * beta the inverse temperature times the
number of training examples, sigma = 1 the noise level; see SGLDSettings for the defaults), record
the batch loss at every step after the burn-in (a "draw", taken before that step's update, as
devinterp records it) and estimate

    llc = nbeta * (mean loss over the draws - L(w*))

per chain, L(w*) the loss over the whole training set; `llc/mean` and `llc/std` are the mean and the
standard deviation (ddof 0) over chains.

Where devinterp differs (docs/interop.md has the recipes both ways): its default nbeta
is batch_size / log(batch_size), ours n / log n; its step size and localisation are absolute, ours by
default scale with nbeta; 1.3's init loss is the mean over the first `num_chains` minibatches (pass
`init_loss` to use ours) and its `llc/std` has ddof 1 (torch.std); 2.x averages over every step
including its burn-in (with burnin = 0 the two are the same estimator), by default feeds every chain
the same minibatch sequence, and returns the stored result at `output_path` when called again with
the same settings. The estimator agrees with devinterp 1.3.2's on a trained member with matched
settings (tests/grokcore/test_progress.py).

Like devinterp, this module knows nothing of the task: the caller passes the loss of a batch of
parameter rows. Every member has its own torch.Generator (noise and batches), so a member's
estimate does not depend on which pack it is in, and the global RNG is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class SGLDSettings:
    """SGLD hyperparameters of the LLC estimate.

    Step size and localisation are absolute when given (devinterp's `lr` and `localization`). By
    default they scale with each member's nbeta: eps = step_scale / nbeta keeps the drift step
    eps * nbeta * (curvature) the same for every model, and gamma = localization_scale * nbeta makes
    the localised posterior exp(-nbeta (L(w) + localization_scale / 2 |w - w*|^2)), so the estimate
    counts the directions whose curvature exceeds about localization_scale, whatever n is. Then the
    chain relaxes in about 2 / (step_scale * localization_scale) = 20 steps for any model, which is
    what lets a short chain work.

    The defaults buy a cheap, consistent trend over training (the cost budget of online measures),
    not a converged absolute LLC: for a careful single estimate use more chains and draws and check
    the loss traces (LLCResult.trace) for a plateau.
    """

    lr: float | None = None
    """Step size epsilon; None: step_scale / nbeta."""
    step_scale: float = 0.05
    localization: float | None = None
    """gamma, the pull back to w*; None: localization_scale * nbeta."""
    localization_scale: float = 2.0
    inverse_temperature: float | None = None
    """beta; nbeta = beta * n with n the member's number of training examples. None: 1 / log(n)
    (Watanabe's WBIC temperature, so nbeta = n / log n)."""
    fixed_nbeta: float | None = None
    """nbeta itself, whatever n is (devinterp's `nbeta` / `n_beta` argument; its default is
    batch_size / log(batch_size)); overrides inverse_temperature. For reproducing a devinterp number."""
    chains: int = 2
    draws: int = 30
    """Recorded steps per chain (after the burn-in)."""
    burnin: int = 20
    """Steps per chain before the first draw."""
    batch_size: int | None = 512
    """Examples per SGLD step, drawn without replacement each step; None, or at least the member's
    training set: the full batch (then every step sees the exact training loss)."""
    noise_level: float = 1.0
    """sigma; anything but 1 breaks the posterior-sampling guarantee (kept for tests)."""

    def __post_init__(self) -> None:
        for name in ("step_scale", "localization_scale", "noise_level"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0 or None, got {self.lr}")
        if self.localization is not None and self.localization < 0:
            raise ValueError(f"localization must be >= 0 or None, got {self.localization}")
        if self.inverse_temperature is not None and not self.inverse_temperature > 0:
            raise ValueError(f"inverse_temperature must be > 0 or None, got {self.inverse_temperature}")
        if self.fixed_nbeta is not None and not self.fixed_nbeta > 0:
            raise ValueError(f"fixed_nbeta must be > 0 or None, got {self.fixed_nbeta}")
        if self.chains < 1 or self.draws < 1 or self.burnin < 0:
            raise ValueError("chains and draws must be >= 1 and burnin >= 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")

    def nbeta(self, n: int) -> float:
        """n * beta for a training set of n examples."""
        if self.fixed_nbeta is not None:
            return self.fixed_nbeta
        if self.inverse_temperature is not None:
            return self.inverse_temperature * n
        return n / math.log(n) if n > 1 else 1.0

    def step_size(self, nbeta: float) -> float:
        return self.lr if self.lr is not None else self.step_scale / nbeta

    def gamma(self, nbeta: float) -> float:
        return self.localization if self.localization is not None else self.localization_scale * nbeta


@dataclass
class LLCResult:
    """Per member (leading axis) and chain."""

    llc: Float[Tensor, "member chain"]
    """nbeta * (mean draw loss - init loss); NaN for a chain whose loss became non-finite."""
    trace: Float[Tensor, "member chain draw"]
    init_loss: Float[Tensor, " member"]
    nbeta: Float[Tensor, " member"]

    @property
    def mean(self) -> Float[Tensor, " member"]:
        return self.llc.nanmean(-1)

    @property
    def std(self) -> Float[Tensor, " member"]:
        """Over the finite chains, ddof 0 (devinterp's)."""
        ok = self.llc.isfinite()
        centred = torch.where(ok, self.llc - self.mean.unsqueeze(-1), torch.zeros_like(self.llc))
        return (centred.pow(2).sum(-1) / ok.sum(-1).clamp(min=1)).sqrt().where(ok.any(-1), torch.nan)

    @property
    def failed_chains(self) -> Float[Tensor, " member"]:
        return (~self.llc.isfinite()).sum(-1).to(self.llc.dtype)


RowLoss = Callable[[Tensor, int], Tensor]
"""loss(theta (member * chain, n_params), step) -> (member * chain,) batch losses; row m * chains + c
is chain c of member m. It may draw its batch from the members' generators (before the noise)."""


def sgld_llc(
    loss: RowLoss,
    theta0: Float[Tensor, "member n_params"],
    init_loss: Float[Tensor, " member"],
    nbeta: Float[Tensor, " member"],
    settings: SGLDSettings,
    generators: Sequence[torch.Generator],
) -> LLCResult:
    """Run `settings.chains` SGLD chains per member around theta0 (all members and chains as one
    batch of parameter rows) and return the LLC estimate of each chain. theta0 is never modified.

    Only the SGLD gradients are taken with autograd (torch.autograd.grad, so no .grad of any
    module parameter is touched); the update itself runs under no_grad.
    """
    members, n_params = theta0.shape
    if len(generators) != members:
        raise ValueError(f"one generator per member: {members} members, {len(generators)} generators")
    C = settings.chains
    center = theta0.detach().repeat_interleave(C, 0)
    theta = center.clone()

    def column(values: list[float]) -> Tensor:  # per member -> (member * chain, 1)
        return torch.tensor(values, dtype=theta.dtype, device=theta.device).repeat_interleave(C).unsqueeze(-1)

    nbetas = nbeta.tolist()
    nb = column(nbetas)
    eps = column([settings.step_size(b) for b in nbetas])
    gamma = column([settings.gamma(b) for b in nbetas])
    noise_scale = eps.sqrt() * settings.noise_level
    trace: list[Tensor] = []
    for step in range(settings.burnin + settings.draws):
        theta.requires_grad_(True)
        with torch.enable_grad():
            row_loss = loss(theta, step)
            (grad,) = torch.autograd.grad(row_loss.sum(), theta)
        with torch.no_grad():
            theta = theta.detach()
            if step >= settings.burnin:
                trace.append(row_loss.detach())
            drift = nb * grad + gamma * (theta - center)
            noise = torch.cat(
                [torch.randn(C, n_params, generator=g, dtype=theta.dtype, device=theta.device) for g in generators]
            )
            theta = theta - (eps / 2) * drift + noise_scale * noise
    draws = torch.stack(trace, dim=-1).view(members, C, settings.draws)
    init = init_loss.to(draws.dtype)
    llc = nbeta.to(draws.dtype).unsqueeze(-1) * (draws.mean(-1) - init.unsqueeze(-1))
    llc = torch.where(draws.isfinite().all(-1), llc, torch.full_like(llc, math.nan))
    return LLCResult(llc=llc, trace=draws, init_loss=init, nbeta=nbeta.to(draws.dtype))


def member_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A member's progress generator at an epoch: from its `progress` sub-seed and the epoch, as the
    trainer derives its per-epoch batch orders, so a measure is reproducible alone or in any pack."""
    return torch.Generator(device=device).manual_seed((seed + epoch * 0x9E3779B97F4A7C15) % (1 << 63))

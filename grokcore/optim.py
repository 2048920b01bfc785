"""A batched AdamW over one flat (member, n_params) buffer.

Every parameter of the packed model is rebound to a view into one flat buffer, and
every gradient to a view into a flat gradient buffer, so the whole optimizer step is
a handful of element-wise ops on (member, n_params) tensors with (member, 1)
hyperparameters, whatever the number of parameters or members.

Numerically it follows torch.optim.AdamW (decoupled weight decay, bias-corrected
moments), step for step, for each member alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

# Gradients are deliberately strided views into one flat buffer (rows of a (member, n_params)
# matrix); autograd warns that this is not the layout it would pick, but accumulates in place.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


class FlatParams:
    """Binds a module's parameters (each (member, *shape)) to views of flat buffers."""

    def __init__(self, params: dict[str, nn.Parameter]):
        self.params = params
        self.shapes = {name: tuple(p.shape[1:]) for name, p in params.items()}
        self.offsets: dict[str, tuple[int, int]] = {}
        offset = 0
        for name, shape in self.shapes.items():
            numel = int(torch.Size(shape).numel())
            self.offsets[name] = (offset, offset + numel)
            offset += numel
        self.n_params = offset
        self.data = torch.cat([p.detach().reshape(p.shape[0], -1) for p in params.values()], dim=1)
        self.grad = torch.zeros_like(self.data)
        self.bind()

    def bind(self) -> None:
        """Point every parameter and its .grad at its slice of the flat buffers. Autograd then
        accumulates straight into the flat gradient (in place, since .grad is defined)."""
        K = self.data.shape[0]
        for name, p in self.params.items():
            start, end = self.offsets[name]
            p.data = self.data[:, start:end].view(K, *self.shapes[name])
            p.grad = self.grad[:, start:end].view(K, *self.shapes[name])

    def select(self, keep: Tensor) -> None:
        """Keep only the members at `keep`, as new Parameter objects (the owner installs them, see
        PackedModel.set_member_params): a graph still alive from a forward before the change (a
        user's look at the model between reports) holds the old parameters' gradient
        accumulators, which expect the old member count and would fail the next backward."""
        self.data = self.data[keep]
        self.grad = torch.zeros_like(self.data)
        self.params = {name: nn.Parameter(torch.empty(0, device=self.data.device)) for name in self.params}
        self.bind()

    def member_tensors(self, member: int) -> dict[str, Tensor]:
        return self.unflatten(self.data[member])

    def unflatten(self, row: Tensor) -> dict[str, Tensor]:
        """One member's flat row (n_params,) -> its tensors by name (copies)."""
        return {name: row[s:e].view(self.shapes[name]).clone() for name, (s, e) in self.offsets.items()}


class BatchedAdamW:
    """AdamW with per-member lr, weight decay, betas and eps, all members sharing the step count."""

    def __init__(
        self,
        flat: FlatParams,
        lr: Sequence[float],
        weight_decay: Sequence[float],
        beta1: Sequence[float],
        beta2: Sequence[float],
        eps: Sequence[float],
        torch_compile: bool = False,
    ):
        self.flat = flat
        device = flat.data.device

        def column(values: Sequence[float]) -> Tensor:
            # float64 so per-member scalars round like the Python floats torch.optim uses
            return torch.tensor(list(values), dtype=torch.float64, device=device).view(-1, 1)

        self.lr, self.weight_decay = column(lr), column(weight_decay)
        self.beta1, self.beta2, self.eps = column(beta1), column(beta2), column(eps)
        self.exp_avg = torch.zeros_like(flat.data)
        self.exp_avg_sq = torch.zeros_like(flat.data)
        self.step_count = 0
        # Compiled, the update is one fused pass over (params, grads, moments) instead of about
        # a dozen element-wise kernels; the step count enters as tensors, so nothing recompiles.
        self._update = torch.compile(_adamw_update, dynamic=None) if torch_compile else _adamw_update

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        dtype = self.flat.data.dtype
        bias_correction1 = 1 - self.beta1**self.step_count
        bias_correction2 = 1 - self.beta2**self.step_count
        self._update(
            self.flat.data,
            self.flat.grad,
            self.exp_avg,
            self.exp_avg_sq,
            (1 - self.lr * self.weight_decay).to(dtype),
            (1 - self.beta1).to(dtype),
            self.beta2.to(dtype),
            (1 - self.beta2).to(dtype),
            (self.lr / bias_correction1).to(dtype),
            bias_correction2.sqrt().to(dtype),
            self.eps.to(dtype),
        )

    def zero_grad(self) -> None:
        self.flat.grad.zero_()

    def select(self, keep: Tensor) -> None:
        """Keep only the members at `keep` (their moments and hyperparameters)."""
        self.flat.select(keep)
        for name in ("lr", "weight_decay", "beta1", "beta2", "eps", "exp_avg", "exp_avg_sq"):
            setattr(self, name, getattr(self, name)[keep])


def _adamw_update(
    p: Tensor,
    g: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    decay: Tensor,
    one_minus_beta1: Tensor,
    beta2: Tensor,
    one_minus_beta2: Tensor,
    step_size: Tensor,
    sqrt_bias_correction2: Tensor,
    eps: Tensor,
) -> None:
    """torch.optim.AdamW's update in place, with (member, 1) hyperparameters in p's dtype."""
    p.mul_(decay)
    exp_avg.lerp_(g, one_minus_beta1)
    exp_avg_sq.mul_(beta2).add_(g * g * one_minus_beta2)
    denom = (exp_avg_sq.sqrt() / sqrt_bias_correction2).add_(eps)
    p.sub_(step_size * exp_avg / denom)

"""measure_pack: every progress measure of a live pack, read from a PackTrainer without changing it.

The trainer's weights are only read: grid forwards and SGLD run through
torch.func.functional_call on detached copies, gradients come from torch.autograd.grad (no module
.grad is written), and all randomness comes from per-member generators. So training with progress
measures on follows exactly the trajectory it follows with them off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from grokcore.config import RunConfig
from grokcore.data import member_data
from grokcore.packed import build_packed, param_shapes
from grokcore.progress import columns as col
from grokcore.progress.attention import qk_ov_summaries
from grokcore.progress.fourier import (
    cross_entropy,
    excluded_loss,
    frequency_norms,
    key_energy_fraction,
    key_frequencies,
    logit_cos_coefficients,
    neuron_frequency_fve,
    restricted_loss,
)
from grokcore.progress.llc import LLCResult, SGLDSettings, member_generator, sgld_llc
from grokcore.progress.registry import PROGRESS_MEASURES, SWITCHABLE, ProgressMeasure, modulus
from grokcore.task import ADDITION

if TYPE_CHECKING:
    from grokcore.packed import PackedModel
    from grokcore.train import PackTrainer

# Upper bound on (member x example x widest activation) floats of one grid forward.
GRID_CHUNK_ELEMENTS = 1 << 25


@dataclass(frozen=True)
class ProgressSettings:
    """What measure_pack computes. The trainer uses the defaults unless the trainer object carries a
    `progress_settings` attribute (set it after constructing a PackTrainer)."""

    fourier: bool = True
    """Fourier measures (tasks with a modulus; restricted/excluded loss and the logit and neuron
    measures only for addition: add, add_mul's addition, pow with m = n = 1)."""
    embed_coords: bool = True
    """Store each operand token's coordinates on the embedding's first two principal components
    (2 x operand_range columns, for drawing the circle; at most MAX_COORD_TOKENS tokens)."""
    llc: bool = True
    llc_every: int = 2
    """The LLC only at every llc_every-th progress evaluation: at epochs that are multiples of
    llc_every * progress_every (its columns are NaN in the other rows). It costs most of a measurement
    (2 chains x 50 SGLD steps of up to 512 examples: ~100 training epochs of a model with fewer than
    512 training examples), the other measures a few epochs. measure_pack called at an epoch that is
    not a multiple of progress_every (or with progress_every 0) always includes it."""
    key_fraction: float = 0.25
    """A frequency is key when its embedding norm is at least this fraction of the largest."""
    neuron_threshold: float = 0.85
    """A neuron is clustered on a frequency when that frequency explains at least this fraction of
    its variance."""
    sgld: SGLDSettings = field(default_factory=SGLDSettings)
    extra: tuple[str, ...] = ()
    """Measures of grokcore.progress.registry that are off by default, switched on by key (e.g.
    "fourier_entropy")."""

    def __post_init__(self) -> None:
        if self.llc_every < 1:
            raise ValueError(f"llc_every must be >= 1 (llc=False turns the LLC off), got {self.llc_every}")
        object.__setattr__(self, "extra", tuple(self.extra))
        off_by_default = [m.key for m in PROGRESS_MEASURES if m.switchable and not m.default]
        unknown = sorted(set(self.extra) - set(off_by_default))
        if unknown:
            raise ValueError(f"extra: unknown {unknown}; measures off by default: {', '.join(off_by_default)}")

    @classmethod
    def choosing(cls, keys: Sequence[str], **fields: Any) -> ProgressSettings:
        """Settings that compute exactly the switchable measures named (the others that apply always)."""
        unknown = sorted(set(keys) - set(SWITCHABLE))
        if unknown:
            raise ValueError(f"unknown {unknown}; known: {', '.join(SWITCHABLE)}")
        switches: dict[str, Any] = {m.key: m.key in keys for m in PROGRESS_MEASURES if m.switchable and m.default}
        extra = tuple(m.key for m in PROGRESS_MEASURES if m.switchable and not m.default and m.key in keys)
        return cls(**switches, extra=extra, **fields)

    def is_on(self, measure: ProgressMeasure) -> bool:
        if not measure.switchable:
            return True
        return getattr(self, measure.key) if measure.default else measure.key in self.extra

    def llc_due(self, epoch: int, progress_every: int) -> bool:
        """Whether measure_pack estimates the LLC at `epoch` of a pack measured every `progress_every`."""
        if not self.llc:
            return False
        if progress_every <= 0 or epoch % progress_every:
            return True  # called by hand, off the trainer's cadence
        return epoch % (progress_every * self.llc_every) == 0


def measure_pack(trainer: PackTrainer, settings: ProgressSettings | None = None) -> list[dict[str, float]]:
    """One flat dict of progress measures per live member, in `trainer.configs` order (column names
    in grokcore.progress). Leaves the trainer's weights, optimizer, gradients and RNG untouched."""
    if settings is None:
        settings = getattr(trainer, "progress_settings", None) or ProgressSettings()
    arch: RunConfig = trainer.arch
    columns: dict[str, Tensor] = {}
    with torch.no_grad():
        weights = {name: p.detach() for name, p in trainer.net.named_member_params().items()}
        for measure in PROGRESS_MEASURES:
            if settings.is_on(measure) and measure.applies(arch):
                columns |= measure.compute(trainer, weights, settings)
    names = list(columns)
    table = torch.stack([columns[n].detach().to("cpu", torch.float64) for n in names], dim=1)
    return [dict(zip(names, row, strict=True)) for row in table.tolist()]


def _nan(trainer: PackTrainer) -> Tensor:
    return torch.full((len(trainer.configs),), math.nan, dtype=torch.float64)


# ---- the registry's functions (grokcore.progress.registry): (trainer, weights, settings) -> columns --


def embedding_pca(trainer: PackTrainer, weights: dict[str, Tensor], settings: ProgressSettings) -> dict[str, Tensor]:
    return embedding_geometry(weights["embed.W_E"][:, : trainer.arch.operand_range], coords=False)


def embedding_coords(trainer: PackTrainer, weights: dict[str, Tensor], settings: ProgressSettings) -> dict[str, Tensor]:
    out = embedding_geometry(weights["embed.W_E"][:, : trainer.arch.operand_range], coords=True)
    return {name: value for name, value in out.items() if name.startswith(col.PC_PREFIXES)}


def max_circuit(trainer: PackTrainer, weights: dict[str, Tensor], settings: ProgressSettings) -> dict[str, Tensor]:
    if trainer.arch.model == "transformer":
        return qk_ov_summaries(weights, trainer.arch)
    return {name: _nan(trainer) for name in col.MAX_COLUMNS}


def llc_measure(trainer: PackTrainer, weights: dict[str, Tensor], settings: ProgressSettings) -> dict[str, Tensor]:
    """The LLC where it is due, NaN columns between: the same columns in every row of a pack that
    measures the LLC at all."""
    if not settings.llc_due(trainer.epoch, trainer.arch.progress_every):
        return {name: _nan(trainer) for name in col.LLC_COLUMNS}
    return llc_columns(estimate_llc(trainer, settings.sgld))  # sgld_llc takes its gradients under enable_grad


# ---- embedding geometry ----------------------------------------------------------------------------


def embedding_geometry(embed: Tensor, coords: bool = True) -> dict[str, Tensor]:
    """Principal components of the operand embeddings (member, token, d_model), centred over tokens:
    the fraction of variance of the first N_PCA, and each token's coordinates on the first two
    (sign fixed so that the largest coordinate is positive)."""
    x = embed.to(torch.float64)
    x = x - x.mean(1, keepdim=True)
    U, S, _ = torch.linalg.svd(x, full_matrices=False)  # U (member, token, r)
    var = S.pow(2)
    ratio = var / var.sum(-1, keepdim=True).clamp(min=1e-300)
    out = {
        col.pca_var(i): ratio[:, i] if i < ratio.shape[1] else torch.zeros_like(ratio[:, 0]) for i in range(col.N_PCA)
    }
    n_tokens = x.shape[1]
    if coords and n_tokens <= col.MAX_COORD_TOKENS:
        pcs = U[:, :, :2] * S[:, None, :2]  # (member, token, 2)
        if pcs.shape[-1] < 2:
            pcs = torch.cat([pcs, torch.zeros_like(pcs)], -1)[..., :2]
        sign = torch.sign(pcs.gather(1, pcs.abs().argmax(1, keepdim=True)))  # (member, 1, 2)
        pcs = pcs * torch.where(sign == 0, torch.ones_like(sign), sign)
        for c in (0, 1):
            for t in range(n_tokens):
                out[col.pc_coord(c, t)] = pcs[:, t, c]
    return out


# ---- Fourier measures ------------------------------------------------------------------------------


def is_addition(cfg: RunConfig) -> bool:
    """Members whose task includes (a + b) mod p, so the Nanda et al. measures apply (add, add_mul's
    addition, pow with m = n = 1: the task says so)."""
    return ADDITION in cfg.task_def.measures


def grid_tokens(cfg: RunConfig, device: torch.device | str = "cpu") -> Tensor:
    """All p x p addition inputs (a, b < p) in the member's layout, row a * p + b: (p * p, n_ctx)."""
    p = modulus(cfg)
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    fill = {"a": a, "b": b, "=": torch.full_like(a, cfg.eq_token), "op": torch.full_like(a, cfg.op_token("add"))}
    return torch.stack([fill[t] for t in cfg.token_layout.split()], dim=1)


def train_grid_index(cfg: RunConfig, tokens: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Each training example's row in the addition grid and its mean weight over the examples that
    lie in the grid (addition, both operands below p); (member, n) each."""
    layout = cfg.token_layout.split()
    a, b = tokens[..., layout.index("a")], tokens[..., layout.index("b")]
    ok = (a < cfg.p) & (b < cfg.p) & (weight > 0)
    if "op" in layout:
        ok &= tokens[..., layout.index("op")] == cfg.op_token("add")
    index = torch.where(ok, a * cfg.p + b, torch.zeros_like(a))
    w = ok.to(torch.float64)
    return index, w / w.sum(-1, keepdim=True).clamp(min=1)


def fourier_measures(trainer: PackTrainer, weights: dict[str, Tensor], settings: ProgressSettings) -> dict[str, Tensor]:
    arch = trainer.arch
    p, K = modulus(arch), len(trainer.configs)
    device = trainer.device
    f64 = torch.float64
    norms = frequency_norms(weights["embed.W_E"][:, :p].to(f64))  # (member, freq)
    keys, n_above = key_frequencies(norms, settings.key_fraction, col.MAX_KEY_FREQS)
    out: dict[str, Tensor] = {col.embed_norm(k): norms[:, k - 1] for k in range(1, p // 2 + 1)}
    out[col.N_KEY] = n_above.to(f64)
    out[col.EMBED_KEY_FRAC] = key_energy_fraction(norms, keys)
    slots = keys.to(f64).where(keys > 0, math.nan)
    for i in range(col.MAX_KEY_FREQS):
        out[col.key_freq(i)] = slots[:, i]

    addition = torch.tensor([is_addition(c) for c in trainer.configs], device=device)
    grid_names = (
        [col.NEURON_FVE_MEAN, col.NEURON_FRAC_CLUSTERED, col.NEURON_FRAC_KEY]
        + [col.neuron_frac_key_slot(i) for i in range(col.MAX_KEY_FREQS)]
        + [col.logit_cos_coef(i) for i in range(col.MAX_KEY_FREQS)]
        + [col.LOGIT_COS_FVE, col.GRID_LOSS, col.RESTRICTED_LOSS, col.EXCLUDED_LOSS]
    )
    if not addition.any():
        return out | {n: torch.full((K,), math.nan, dtype=f64, device=device) for n in grid_names}

    tokens = grid_tokens(arch, device)
    labels = (tokens[:, arch.token_layout.split().index("a")] + tokens[:, arch.token_layout.split().index("b")]) % p
    index, weight = train_grid_index(arch, trainer.data["train_tokens"], trainer.data["train_weight"])
    train_labels = trainer.data["train_labels"]
    width = max(arch.d_mlp, arch.d_model, arch.n_classes) * arch.n_ctx
    chunk = max(1, GRID_CHUNK_ELEMENTS // (p * p * width))
    parts: dict[str, list[Tensor]] = {n: [] for n in grid_names}
    for start in range(0, K, chunk):
        sl = slice(start, min(K, start + chunk))
        logits, acts = grid_outputs(trainer.model, {n: w[sl] for n, w in weights.items()}, tokens)
        logits = logits.to(f64)
        k_keys = keys[sl]
        lab = labels.expand(logits.shape[0], -1)
        parts[col.GRID_LOSS].append(cross_entropy(logits, lab))
        parts[col.RESTRICTED_LOSS].append(restricted_loss(logits, lab, k_keys))
        parts[col.EXCLUDED_LOSS].append(excluded_loss(logits, k_keys, index[sl], train_labels[sl], weight[sl]))
        alpha, fve = logit_cos_coefficients(logits, k_keys)
        parts[col.LOGIT_COS_FVE].append(fve)
        for i in range(col.MAX_KEY_FREQS):
            parts[col.logit_cos_coef(i)].append(alpha[:, i])
        for name, value in neuron_summaries(acts, k_keys, settings.neuron_threshold, logits.shape[0]).items():
            parts[name].append(value)
    for name, values in parts.items():
        value = torch.cat(values)
        out[name] = value.where(addition, math.nan)
    return out


def neuron_summaries(acts: Tensor | None, keys: Tensor, threshold: float, members: int) -> dict[str, Tensor]:
    names = [col.NEURON_FVE_MEAN, col.NEURON_FRAC_CLUSTERED, col.NEURON_FRAC_KEY] + [
        col.neuron_frac_key_slot(i) for i in range(col.MAX_KEY_FREQS)
    ]
    if acts is None:
        return {n: torch.full((members,), math.nan, dtype=torch.float64, device=keys.device) for n in names}
    fve = neuron_frequency_fve(acts.to(torch.float64))  # (member, neuron, freq)
    live = fve[..., 0].isfinite()
    n_live = live.sum(-1).clamp(min=1).to(torch.float64)
    best, best_freq = fve.nan_to_num(-1.0).max(-1)
    best_freq = best_freq + 1
    clustered = live & (best >= threshold)
    on_slot = clustered.unsqueeze(-1) & (best_freq.unsqueeze(-1) == keys.unsqueeze(1))  # (member, neuron, key)
    out = {
        col.NEURON_FVE_MEAN: torch.where(live, best, torch.zeros_like(best)).sum(-1) / n_live,
        col.NEURON_FRAC_CLUSTERED: clustered.sum(-1) / n_live,
        col.NEURON_FRAC_KEY: on_slot.any(-1).sum(-1) / n_live,
    }
    for i in range(col.MAX_KEY_FREQS):
        out[col.neuron_frac_key_slot(i)] = (on_slot[..., i].sum(-1) / n_live).where(keys[:, i] > 0, math.nan)
    none_live = ~live.any(-1)
    return {n: v.where(~none_live, math.nan) for n, v in out.items()}


class _Hooked(nn.Module):
    """Runs the instrumented forward of `model` (so functional_call can swap in a slice of members)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor) -> Tensor:
        return self.model(tokens)


def grid_outputs(model: PackedModel, weights: dict[str, Tensor], tokens: Tensor) -> tuple[Tensor, Tensor | None]:
    """Logits at the last position (member, example, class) and the last MLP layer's activations
    there (member, example, d_mlp; None without an MLP) of `model` run with `weights` (TransformerLens
    names, a slice of the members) on `tokens` (example, pos), shared by every member."""
    cfg = model.cfg
    members = next(iter(weights.values())).shape[0]
    if cfg.model == "mlp":
        hook_name = "mlp.hook_post"
    elif not cfg.attn_only:
        hook_name = f"blocks.{cfg.n_layers - 1}.mlp.hook_post"
    else:
        hook_name = None
    captured: list[Tensor] = []
    handle = None
    if hook_name is not None:
        last = cfg.model == "transformer"
        handle = model.get_submodule(hook_name).register_forward_hook(
            lambda _m, _i, out: captured.append(out[:, :, -1] if last else out)
        )
    try:
        params = {f"model.params.{name.replace('.', '__')}": w for name, w in weights.items()}
        out = functional_call(_Hooked(model), params, (tokens.expand(members, -1, -1),))
    finally:
        if handle is not None:
            handle.remove()
    logits = out[:, :, -1] if cfg.model == "transformer" else out
    return logits, (captured[0] if captured else None)


# ---- LLC -------------------------------------------------------------------------------------------


class _TrainPath(nn.Module):
    def __init__(self, model: PackedModel):
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor) -> Tensor:
        return self.model.train_logits(tokens)


def estimate_llc(trainer: PackTrainer, settings: SGLDSettings | None = None) -> LLCResult:
    """The LLC of every live member at its current weights (see grokcore.progress.llc), on the
    member's training set and labels (what it is trained on), the loss in the trainer's loss dtype.
    The batch of each step and the noise come from the member's generator at this epoch.
    `estimate_member_llc` gives the same numbers from a member's config and weights alone."""
    data = trainer.data
    return _sgld_llc_of_pack(
        trainer.net,
        trainer.flat.data,
        trainer.configs,
        data["train_tokens"],
        data["train_labels"],
        data["train_weight"],
        data["train_count"].tolist(),
        trainer.epoch,
        settings or SGLDSettings(),
        trainer.loss_dtype,
    )


def estimate_member_llc(
    cfg: RunConfig,
    weights: dict[str, Tensor],
    settings: SGLDSettings | None = None,
    *,
    data: tuple[Tensor, Tensor] | None = None,
    epoch: int = 0,
    device: torch.device | str = "cpu",
) -> LLCResult:
    """The LLC of one member from its config and weights (TransformerLens names, no member axis): what
    `PackTrainer.member_weights`, `grokcore.export.load_member` (and checkpoints of single members)
    give, so no live trainer is needed. Results have a member axis of length 1.

    `data` is (tokens (n, pos), labels (n,)); None: the member's training set and the labels it was
    trained on, `grokcore.data.member_data(cfg).train_tokens / .train_labels` (noisy under label
    noise; pass `.train_clean_labels` to measure against the clean ones). `epoch` seeds the SGLD
    noise and batches as the trainer's measure at that epoch does, so with the trainer's data and
    epoch this reproduces `estimate_llc(trainer)` for the member (to float rounding: the pack
    batches its members' matmuls together)."""
    expected = param_shapes(cfg)
    wrong = sorted(
        name for name, shape in expected.items() if name not in weights or tuple(weights[name].shape) != shape
    )
    if wrong or set(weights) - set(expected):
        raise ValueError(
            f"weights do not match the config's parameters (name or shape): "
            f"{wrong + sorted(set(weights) - set(expected))}"
        )
    if data is None:
        split = member_data(cfg)
        data = (split.train_tokens, split.train_labels)
    tokens, labels = (t.to(device) for t in data)
    if tokens.ndim != 2 or labels.shape != tokens.shape[:1]:
        raise ValueError(f"data: tokens (n, pos) and labels (n,), got {tuple(tokens.shape)} and {tuple(labels.shape)}")
    net = build_packed(cfg, [{name: w.detach().to(device) for name, w in weights.items()}])
    theta0 = torch.cat([p.detach().reshape(1, -1) for p in net.named_member_params().values()], dim=1)
    n = tokens.shape[0]
    weight = torch.full((1, n), 1.0 / n, dtype=torch.float64, device=tokens.device)
    loss_dtype = torch.float64 if cfg.loss_dtype == "float64" else torch.float32
    return _sgld_llc_of_pack(
        net,
        theta0,
        [cfg],
        tokens.unsqueeze(0),
        labels.unsqueeze(0),
        weight,
        [n],
        epoch,
        settings or SGLDSettings(),
        loss_dtype,
    )


def _sgld_llc_of_pack(
    net: PackedModel,
    theta0: Tensor,
    configs: list[RunConfig],
    tokens_all: Tensor,
    labels_all: Tensor,
    weight_all: Tensor,
    counts: list[int],
    epoch: int,
    settings: SGLDSettings,
    loss_dtype: torch.dtype,
) -> LLCResult:
    """SGLD around the rows of theta0 (member, n_params; laid out as net.named_member_params()), on each
    member's examples (member, n, ...; padded rows have zero weight, `counts` real ones)."""
    K, C = len(configs), settings.chains
    device = theta0.device
    generators = [member_generator(c.sub_seed("progress"), epoch, device) for c in configs]
    nbeta = torch.tensor([settings.nbeta(n) for n in counts], dtype=torch.float64, device=device)
    theta0 = theta0.detach().clone()
    path = _TrainPath(net)
    shapes = {name: tuple(p.shape[1:]) for name, p in net.named_member_params().items()}
    offsets, start = {}, 0
    for name, shape in shapes.items():
        offsets[name] = (start, start + math.prod(shape))
        start += math.prod(shape)

    def logits_of(theta: Tensor, tokens: Tensor) -> Tensor:
        rows = theta.shape[0]
        params = {
            f"model.params.{name.replace('.', '__')}": theta[:, s:e].view(rows, *shapes[name])
            for name, (s, e) in offsets.items()
        }
        return functional_call(path, params, (tokens,))

    def batch_loss(theta: Tensor, tokens: Tensor, labels: Tensor, weight: Tensor) -> Tensor:
        lp = logits_of(theta, tokens).to(loss_dtype).log_softmax(-1)
        return -(lp.gather(-1, labels.unsqueeze(-1)).squeeze(-1) * weight).sum(-1)

    with torch.no_grad():
        init_loss = batch_loss(theta0, tokens_all, labels_all, weight_all)
    B = settings.batch_size
    if B is None or max(counts) <= B:
        rep = lambda x: x.repeat_interleave(C, 0)  # noqa: E731
        full = (rep(tokens_all), rep(labels_all), rep(weight_all.to(loss_dtype)))

        def loss(theta: Tensor, step: int) -> Tensor:
            return batch_loss(theta, *full)
    else:
        member_of_row = torch.arange(K, device=device).repeat_interleave(C).unsqueeze(-1)

        def loss(theta: Tensor, step: int) -> Tensor:
            index = torch.zeros(K * C, B, dtype=torch.long, device=device)
            weight = torch.zeros(K * C, B, dtype=loss_dtype, device=device)
            for k, (g, n) in enumerate(zip(generators, counts, strict=True)):
                if n > B:
                    pick = torch.rand(C, n, generator=g, device=device).argsort(-1)[:, :B]
                    index[k * C : (k + 1) * C] = pick
                    weight[k * C : (k + 1) * C] = 1.0 / B
                else:  # the whole (small) training set of this member
                    index[k * C : (k + 1) * C, :n] = torch.arange(n, device=device)
                    weight[k * C : (k + 1) * C, :n] = 1.0 / n
            return batch_loss(theta, tokens_all[member_of_row, index], labels_all[member_of_row, index], weight)

    return sgld_llc(loss, theta0, init_loss, nbeta, settings, generators)


def llc_columns(result: LLCResult) -> dict[str, Tensor]:
    return {
        col.LLC_MEAN: result.mean,
        col.LLC_STD: result.std,
        col.LLC_INIT_LOSS: result.init_loss,
        col.LLC_NBETA: result.nbeta,
        col.LLC_FAILED_CHAINS: result.failed_chains,
    }

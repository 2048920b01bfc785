"""Getting one member out of a pack: safetensors + JSON, and HookedTransformer's format.

Files are never pickled: weights go through safetensors, the config through JSON, so
loading a file from elsewhere cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from grokcore.config import RunConfig
from grokcore.packed import PackedModel, build_packed, param_shapes

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"


def save_member(directory: str | os.PathLike, cfg: RunConfig, weights: dict[str, Tensor]) -> Path:
    """Write one member's weights (TransformerLens names, no member axis) and its config."""
    from safetensors.torch import save_file

    expected = param_shapes(cfg)
    if set(weights) != set(expected):
        raise ValueError(f"weights do not match the config's parameters: {sorted(set(weights) ^ set(expected))}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in weights.items()},
        directory / WEIGHTS_FILE,
        metadata={"run_id": cfg.run_id},
    )
    (directory / CONFIG_FILE).write_text(json.dumps({"run_id": cfg.run_id, "config": cfg.to_dict()}, indent=1))
    return directory


def load_member(directory: str | os.PathLike) -> tuple[RunConfig, dict[str, Tensor]]:
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg = RunConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text())["config"])
    weights = load_file(directory / WEIGHTS_FILE)
    expected = param_shapes(cfg)
    for name, shape in expected.items():
        if name not in weights or tuple(weights[name].shape) != shape:
            raise ValueError(f"{directory / WEIGHTS_FILE}: {name} missing or not of shape {shape}")
    return cfg, weights


class MemberModule(nn.Module):
    """One member as a plain torch module: the function the trainer fits, for tools that take an
    nn.Module (devinterp's samplers, a hand-written loop). Parameters are `pack.params.<name>` with a
    leading member axis of 1; no hooks, so transformer_lens is not imported."""

    def __init__(self, cfg: RunConfig, weights: dict[str, Tensor]):
        super().__init__()
        self.pack: PackedModel = build_packed(cfg, [{k: v.detach().clone() for k, v in weights.items()}])

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch n_classes"]:
        """Logits at the last position (the only ones trained), as the trainer computes them."""
        return self.pack.train_logits(tokens.unsqueeze(0))[0]


def hooked_transformer_config(cfg: RunConfig) -> dict[str, Any]:
    """Arguments of TransformerLens 2.x/3.x `HookedTransformerConfig` for this member.

    `seed` is None and `init_weights` False on purpose: HookedTransformerConfig with a seed calls
    torch.manual_seed, random.seed and np.random.seed (resetting the caller's global generators), and
    HookedTransformer initialises weights from the global torch generator; the weights come from
    `hooked_transformer_state_dict` anyway, so building the model draws nothing and leaves all global
    random state as it was.

    The vocabulary is grokcore's: d_vocab = operand range + 3 (operands, then '=', '+', '*'), 116 at
    p = 113 where the seed notebooks had 114; d_vocab_out = p. Token ids are those of
    `grokcore.data.member_data`."""
    if cfg.model != "transformer":
        raise ValueError("only transformer members have a HookedTransformer equivalent")
    return {
        "n_layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "d_head": cfg.d_head_,
        "n_heads": cfg.n_heads,
        "d_mlp": None if cfg.attn_only else cfg.d_mlp,
        "d_vocab": cfg.d_vocab,
        "d_vocab_out": cfg.n_classes,
        "n_ctx": cfg.n_ctx,
        "act_fn": cfg.act,
        "normalization_type": "LN" if cfg.normalization == "ln" else None,
        "attn_only": cfg.attn_only,
        "positional_embedding_type": "standard",
        "default_prepend_bos": False,
        "seed": None,
        "init_weights": False,
    }


def hooked_transformer(cfg: RunConfig, weights: dict[str, Tensor], device: torch.device | str = "cpu") -> nn.Module:
    """The member as a TransformerLens 2.x/3.x `HookedTransformer` (TransformerLens 4 has none: install
    3.x in its own environment, e.g. tests/interop/requirements-tl3.txt), weights loaded strictly. Its
    logits on a member's tokens are grokcore's (tests/interop); global random state is left alone."""
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError as error:
        from importlib.metadata import version

        raise ImportError(
            f"transformer_lens {version('transformer_lens')} has no HookedTransformer (removed in "
            "4.0); use TransformerLens 2.x or 3.x"
        ) from error
    model = HookedTransformer(HookedTransformerConfig(**hooked_transformer_config(cfg), device=str(device)))
    model.load_state_dict(hooked_transformer_state_dict(cfg, weights), strict=True)  # copies onto its device
    return model


def hooked_transformer_state_dict(cfg: RunConfig, weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """The exact keys and shapes of a TransformerLens 2.x/3.x HookedTransformer's state dict:
    untrained biases are present as zeros, and each attention layer's `mask` and `IGNORE`
    buffers are included, so `HookedTransformer(HookedTransformerConfig(**hooked_transformer_config(cfg)))
    .load_state_dict(sd)` loads strictly and gives the same logits."""
    if cfg.model != "transformer":
        raise ValueError("only transformer members have a HookedTransformer equivalent")
    d, H, dh, dm, T = cfg.d_model, cfg.n_heads, cfg.d_head_, cfg.d_mlp, cfg.n_ctx
    sd: dict[str, Tensor] = {"embed.W_E": weights["embed.W_E"], "pos_embed.W_pos": weights["pos_embed.W_pos"]}
    zeros = torch.zeros
    for layer in range(cfg.n_layers):
        blk = f"blocks.{layer}"
        if cfg.normalization == "ln":
            sd[f"{blk}.ln1.w"], sd[f"{blk}.ln1.b"] = weights[f"{blk}.ln1.w"], weights[f"{blk}.ln1.b"]
        for m in ("Q", "K", "V"):
            sd[f"{blk}.attn.W_{m}"] = weights[f"{blk}.attn.W_{m}"]
        sd[f"{blk}.attn.W_O"] = weights[f"{blk}.attn.W_O"]
        for m in ("Q", "K", "V"):
            sd[f"{blk}.attn.b_{m}"] = weights.get(f"{blk}.attn.b_{m}", zeros(H, dh))
        sd[f"{blk}.attn.b_O"] = weights.get(f"{blk}.attn.b_O", zeros(d))
        sd[f"{blk}.attn.mask"] = torch.tril(torch.ones(T, T)).bool()
        sd[f"{blk}.attn.IGNORE"] = torch.tensor(-torch.inf)
        if not cfg.attn_only:
            if cfg.normalization == "ln":
                sd[f"{blk}.ln2.w"], sd[f"{blk}.ln2.b"] = weights[f"{blk}.ln2.w"], weights[f"{blk}.ln2.b"]
            sd[f"{blk}.mlp.W_in"] = weights[f"{blk}.mlp.W_in"]
            sd[f"{blk}.mlp.b_in"] = weights.get(f"{blk}.mlp.b_in", zeros(dm))
            sd[f"{blk}.mlp.W_out"] = weights[f"{blk}.mlp.W_out"]
            sd[f"{blk}.mlp.b_out"] = weights.get(f"{blk}.mlp.b_out", zeros(d))
    if cfg.normalization == "ln":
        sd["ln_final.w"], sd["ln_final.b"] = weights["ln_final.w"], weights["ln_final.b"]
    sd["unembed.W_U"] = weights["unembed.W_U"]
    sd["unembed.b_U"] = weights.get("unembed.b_U", zeros(cfg.n_classes))
    return {k: v.detach().clone() for k, v in sd.items()}


def reference_state_dict(cfg: RunConfig, weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Weights with every bias present (zeros where untrained): what ReferenceTransformer takes."""
    if cfg.model == "transformer":
        return hooked_transformer_state_dict(cfg, weights)
    out = dict(weights)
    out.setdefault("mlp.b_in", torch.zeros(cfg.d_mlp))
    out.setdefault("unembed.b_U", torch.zeros(cfg.n_classes))
    return out

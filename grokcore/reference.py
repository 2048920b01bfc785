"""The seed notebooks' way, kept as a yardstick: one model, one nn.Module, torch.optim.AdamW.

`ReferenceTransformer` computes exactly what TransformerLens' HookedTransformer computes
for the state dict that `grokcore.export.hooked_transformer_state_dict` writes (same keys,
same shapes, biases, LayerNorm, causal attention with 1/sqrt(d_head) scaling), on every
position. Tests train it side by side with a pack; the trainer benchmark times its
training loop as the naive baseline (evaluation every epoch, `.item()` every step).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grokcore.config import RunConfig


class ReferenceTransformer(nn.Module):
    """A single HookedTransformer-shaped model written out plainly."""

    def __init__(self, cfg: RunConfig, state_dict: dict[str, Tensor]):
        super().__init__()
        self.cfg = cfg
        self.weights = nn.ParameterDict(
            {
                k.replace(".", "__"): nn.Parameter(v.clone().float())
                for k, v in state_dict.items()
                if v.is_floating_point()
            }
        )
        # The seeds froze biases at zero: only train what the config trains.
        for key, param in self.weights.items():
            leaf = key.rsplit("__", 1)[1]
            if (leaf.startswith("b_") and not cfg.bias) or key.endswith("IGNORE"):
                param.requires_grad_(False)

    def p(self, name: str) -> Tensor:
        return self.weights[name.replace(".", "__")]

    def ln(self, x: Tensor, prefix: str) -> Tensor:
        if self.cfg.normalization == "none":
            return x
        x = x - x.mean(-1, keepdim=True)
        scale = (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()
        return x / scale * self.p(f"{prefix}.w") + self.p(f"{prefix}.b")

    def forward(self, tokens: Tensor) -> Tensor:
        cfg = self.cfg
        if cfg.model == "mlp":
            x = self.p("embed.W_E")[tokens].flatten(-2)
            hidden = self.act(x @ self.p("mlp.W_in") + self.p("mlp.b_in"))
            return hidden @ self.p("unembed.W_U") + self.p("unembed.b_U")
        T = tokens.shape[1]
        resid = self.p("embed.W_E")[tokens] + self.p("pos_embed.W_pos")[:T]
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=tokens.device))
        for layer in range(cfg.n_layers):
            blk = f"blocks.{layer}"
            x = self.ln(resid, f"{blk}.ln1")
            q = torch.einsum("bpd,hde->bphe", x, self.p(f"{blk}.attn.W_Q")) + self.p(f"{blk}.attn.b_Q")
            k = torch.einsum("bpd,hde->bphe", x, self.p(f"{blk}.attn.W_K")) + self.p(f"{blk}.attn.b_K")
            v = torch.einsum("bpd,hde->bphe", x, self.p(f"{blk}.attn.W_V")) + self.p(f"{blk}.attn.b_V")
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(cfg.d_head_)
            pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
            resid = resid + torch.einsum("bqhe,hed->bqd", z, self.p(f"{blk}.attn.W_O")) + self.p(f"{blk}.attn.b_O")
            if not cfg.attn_only:
                x = self.ln(resid, f"{blk}.ln2")
                hidden = self.act(x @ self.p(f"{blk}.mlp.W_in") + self.p(f"{blk}.mlp.b_in"))
                resid = resid + hidden @ self.p(f"{blk}.mlp.W_out") + self.p(f"{blk}.mlp.b_out")
        return self.ln(resid, "ln_final") @ self.p("unembed.W_U") + self.p("unembed.b_U")

    def act(self, x: Tensor) -> Tensor:
        return F.relu(x) if self.cfg.act == "relu" else F.gelu(x)


def reference_loss(model: ReferenceTransformer, tokens: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the last position's logits, in float64 as the seeds did."""
    logits = model(tokens)
    if logits.dim() == 3:
        logits = logits[:, -1]
    return F.cross_entropy(logits.double(), labels)


def make_optimizer(model: ReferenceTransformer, cfg: RunConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
    )

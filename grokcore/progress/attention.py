"""QK and OV summaries of the first attention layer, for max of two (as the max-of-two notebook read
the mechanism): the query at the last position should attend most to the larger operand (the QK
score rising with the key token), and attending to a token should make the model output that token
(the OV circuit copying). Batched over the leading member axis; weights under TransformerLens names.

Scores use the first layer's LayerNorm when the model has one; the OV path ignores ln_final and
the biases b_O / b_U (they shift every row alike), so it is the circuit, not the exact logits.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from grokcore.config import RunConfig
from grokcore.packed import layer_norm


def qk_ov_summaries(weights: dict[str, Tensor], cfg: RunConfig) -> dict[str, Float[Tensor, " member"]]:
    """`max/...` columns (see grokcore.progress) from a transformer's weights, each (member,).

    The query is the last position's token, which must be a fixed token ('=' or the op token);
    with the layout 'a b' (query = the operand b) the QK columns are NaN. Key positions are those
    of a and b; scores are averaged over the two. Of several heads, the one whose scores are most
    often increasing is summarised (`max/qk_head`).
    """
    layout = cfg.token_layout.split()
    W_E, W_pos = weights["embed.W_E"], weights["pos_embed.W_pos"]
    K, n = W_E.shape[0], cfg.operand_range
    dtype = torch.float64
    nan = torch.full((K,), math.nan, dtype=dtype, device=W_E.device)
    key_pos = [layout.index("a"), layout.index("b")]
    keys = W_E[:, None, :n] + W_pos[:, key_pos, None]  # (member, key_pos, token, d_model)
    ln = cfg.normalization == "ln"
    if ln:
        keys = layer_norm(keys, weights["blocks.0.ln1.w"], weights["blocks.0.ln1.b"])
    keys = keys.to(dtype)
    W = {k: weights[f"blocks.0.attn.{k}"].to(dtype) for k in ("W_Q", "W_K", "W_V", "W_O")}
    b = {k: weights.get(f"blocks.0.attn.{k}") for k in ("b_Q", "b_K", "b_V")}
    b = {k: (v.to(dtype) if v is not None else None) for k, v in b.items()}

    def proj(x: Tensor, which: str) -> Tensor:  # (member, ..., d_model) -> (member, head, ..., d_head)
        out = torch.einsum("m...d,mhde->mh...e", x, W[f"W_{which}"])
        bias = b[f"b_{which}"]
        if bias is not None:
            out = out + bias.view(bias.shape[0], bias.shape[1], *([1] * (out.dim() - 3)), bias.shape[2])
        return out

    out: dict[str, Tensor] = {}
    last = layout[-1]
    if last in ("=", "op"):
        task = cfg.task_def
        token = cfg.eq_token if last == "=" else cfg.op_token(task.ops[task.example_op])
        query = (W_E[:, token] + W_pos[:, len(layout) - 1]).unsqueeze(1)  # (member, 1, d_model)
        if ln:
            query = layer_norm(query, weights["blocks.0.ln1.w"], weights["blocks.0.ln1.b"])
        q = proj(query.to(dtype), "Q")[:, :, 0]  # (member, head, d_head)
        k = proj(keys, "K")  # (member, head, key_pos, token, d_head)
        scores = torch.einsum("mhe,mhjte->mhjt", q, k).mean(2) / math.sqrt(cfg.d_head_)  # (member, head, token)
        gaps = scores.diff(dim=-1)  # (member, head, token - 1)
        monotonic = (gaps > 0).to(dtype).mean(-1)
        head = monotonic.argmax(-1)  # first of equals
        pick = head.view(K, 1)
        out["max/qk_monotonic_frac"] = monotonic.gather(1, pick).squeeze(1)
        out["max/qk_min_gap"] = gaps.amin(-1).gather(1, pick).squeeze(1)
        out["max/qk_head"] = head.to(dtype)
    else:
        out |= {"max/qk_monotonic_frac": nan, "max/qk_min_gap": nan, "max/qk_head": nan}

    v = proj(keys, "V")  # (member, head, key_pos, token, d_head)
    ov = torch.einsum("mhjte,mhed->mjtd", v, W["W_O"]).mean(1)  # summed over heads, averaged over key positions
    evou = torch.einsum("mtd,mdc->mtc", ov, weights["unembed.W_U"].to(dtype))  # (member, token, class)
    classes = evou.shape[-1]
    tokens = torch.arange(min(n, classes), device=W_E.device)
    evou = evou[:, : len(tokens)]
    own = evou[:, tokens, tokens]  # (member, token)
    others = evou.clone()
    others[:, tokens, tokens] = -math.inf
    out["max/ov_copy_frac"] = (evou.argmax(-1) == tokens).to(dtype).mean(-1)
    out["max/ov_copy_margin"] = (own - others.amax(-1)).mean(-1)
    return out

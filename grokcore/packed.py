"""Packed models: K members' weights stacked on a leading member dimension, in plain torch.

Per member, parameter names, shapes and initialisation follow TransformerLens'
HookedTransformer (`embed.W_E [d_vocab, d_model]`, `blocks.0.attn.W_Q [n_heads, d_model,
d_head]`, ...); the pack's tensors are those with a leading `member` axis.

Two forward paths compute the same function:

- `forward(tokens)` — the instrumented path: every position, every hook point with
  TransformerLens names. Activations carry the member axis first: `hook_embed` is
  (member, batch, pos, d_model).
- `train_logits(tokens)` — the training path: logits at the last position only, which is
  all the loss uses. In a causal model the last layer then needs queries, attention
  output, MLP and unembedding at that position alone. Layer 0 sees only
  embed(token) + pos_embed(position), a function of (position, token), so its per-token
  work (LayerNorm, Q/K/V projections; the whole first layer of the MLP model) is done once
  on a (pos, vocab) table and gathered, not once per example: exact up to float rounding,
  and it removes most of the FLOPs of a 1-layer model. When the layout ends in '=' and the
  model has one layer, the query is the same for every example, so attention scores too are
  computed per (position, token) and gathered. The training path therefore assumes tokens
  laid out as `cfg.token_layout` says, as every example of grokcore.splits is.

The hook points here are identities (`nn.Identity` by default). grokcore.model makes the
same models with TransformerLens' HookPoint and HookedRootModule, so `run_with_cache` works;
training needs no hooks, and importing transformer_lens costs a new process about two seconds
(as much as torch), which every Ray trial and every `grok` command would otherwise pay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from grokcore.config import RunConfig

LN_EPS = 1e-5


# ---------------------------------------------------------------------------------------------
# parameter shapes and initialisation (one member)


def param_shapes(cfg: RunConfig) -> dict[str, tuple[int, ...]]:
    """Per-member parameter names and shapes, in a fixed order."""
    d, V, C, T = cfg.d_model, cfg.d_vocab, cfg.n_classes, cfg.n_ctx
    if cfg.model == "mlp":
        shapes: dict[str, tuple[int, ...]] = {
            "embed.W_E": (V, d),
            "mlp.W_in": (T * d, cfg.d_mlp),
            "unembed.W_U": (cfg.d_mlp, C),
        }
        if cfg.bias:
            shapes |= {"mlp.b_in": (cfg.d_mlp,), "unembed.b_U": (C,)}
        return shapes
    H, dh, dm = cfg.n_heads, cfg.d_head_, cfg.d_mlp
    shapes = {"embed.W_E": (V, d), "pos_embed.W_pos": (T, d)}
    ln = cfg.normalization == "ln"
    for layer in range(cfg.n_layers):
        blk = f"blocks.{layer}"
        if ln:
            shapes |= {f"{blk}.ln1.w": (d,), f"{blk}.ln1.b": (d,)}
        shapes |= {
            f"{blk}.attn.W_Q": (H, d, dh),
            f"{blk}.attn.W_K": (H, d, dh),
            f"{blk}.attn.W_V": (H, d, dh),
            f"{blk}.attn.W_O": (H, dh, d),
        }
        if cfg.bias:
            shapes |= {
                f"{blk}.attn.b_Q": (H, dh),
                f"{blk}.attn.b_K": (H, dh),
                f"{blk}.attn.b_V": (H, dh),
                f"{blk}.attn.b_O": (d,),
            }
        if not cfg.attn_only:
            if ln:
                shapes |= {f"{blk}.ln2.w": (d,), f"{blk}.ln2.b": (d,)}
            shapes |= {f"{blk}.mlp.W_in": (d, dm), f"{blk}.mlp.W_out": (dm, d)}
            if cfg.bias:
                shapes |= {f"{blk}.mlp.b_in": (dm,), f"{blk}.mlp.b_out": (d,)}
    if ln:
        shapes |= {"ln_final.w": (d,), "ln_final.b": (d,)}
    shapes["unembed.W_U"] = (d, C)
    if cfg.bias:
        shapes["unembed.b_U"] = (C,)
    return shapes


def init_member(cfg: RunConfig) -> dict[str, Tensor]:
    """One member's initial weights (float32, CPU), from its own `init` sub-seed, so a member
    starts identically whether it trains alone or in any pack.

    `init: tl` (the default): HookedTransformer's default (GPT-2 style) initialisation for the
    transformer, N(0, 0.8/sqrt(d_model)) for every W_*; the MLP: W_E as the transformer, W_in and
    W_U N(0, 1/sqrt(fan_in)). `init: kaiming`: every W_* Kaiming-normal, N(0, 2/fan_in), with fan_in
    as torch.nn.init.kaiming_normal_ computes it on the matching nn.Embedding / nn.Linear weight
    (see kaiming_fan_in), as the grokking-MLP seed initialised. Either way zero biases and unit
    LayerNorm weights, and the same random draws (only their scale differs).
    """
    g = torch.Generator().manual_seed(cfg.sub_seed("init"))
    std = 0.8 / math.sqrt(cfg.d_model)
    params: dict[str, Tensor] = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if leaf.startswith("W_"):
            if cfg.init == "kaiming":
                s = math.sqrt(2.0 / kaiming_fan_in(leaf, shape))
            else:
                s = std if cfg.model == "transformer" or leaf == "W_E" else 1 / math.sqrt(shape[0])
            params[name] = torch.randn(shape, generator=g) * s
        elif leaf == "w":
            params[name] = torch.ones(shape)
        else:
            params[name] = torch.zeros(shape)
    return params


def kaiming_fan_in(leaf: str, shape: tuple[int, ...]) -> int:
    """fan_in of a weight as torch's kaiming_normal_ sees the layer it stands for: an embedding
    table (W_E, W_pos; nn.Embedding.weight is (num, dim)) has fan_in = dim; W_Q/W_K/W_V (head,
    d_model, d_head) read d_model; W_O (head, d_head, d_model) reads head * d_head; W_in, W_out,
    W_U are stored (in, out), so fan_in = in."""
    if leaf in ("W_E", "W_pos"):
        return shape[-1]
    if leaf in ("W_Q", "W_K", "W_V"):
        return shape[1]
    if leaf == "W_O":
        return shape[0] * shape[1]
    return shape[0]


# ---------------------------------------------------------------------------------------------
# batched building blocks (leading member axis everywhere)


def layer_norm(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """LayerNorm with per-member weights: w, b are (member, d); x is (member, ..., d)."""
    x = x - x.mean(-1, keepdim=True)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + LN_EPS)
    shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[-1],)
    return x * w.view(shape) + b.view(shape)


def bmm(x: Tensor, w: Tensor) -> Tensor:
    """(member, ..., a) @ (member, a, b) -> (member, ..., b), one batched matmul."""
    lead = x.shape[1:-1]
    out = torch.bmm(x.reshape(x.shape[0], -1, x.shape[-1]), w)
    return out.view(x.shape[0], *lead, w.shape[-1])


def add_bias(x: Tensor, b: Tensor | None) -> Tensor:
    if b is None:
        return x
    return x + b.view((b.shape[0],) + (1,) * (x.dim() - b.dim()) + b.shape[1:])


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """table (member, R, ...) indexed per member by index (member, *idx) with values in [0, R)
    -> (member, *idx, ...). An embedding lookup over the flattened member axis: its backward
    is an efficient index-add, unlike advanced indexing with broadcast member indices."""
    K, R = table.shape[:2]
    offset = torch.arange(K, device=index.device).view((K,) + (1,) * (index.dim() - 1)) * R
    flat = F.embedding(index + offset, table.reshape(K * R, -1))
    return flat.view(*index.shape, *table.shape[2:])


HookPointClass = type[nn.Module]  # called with no arguments; an identity on the forward pass


class PackedModel(nn.Module):
    """K members of one architecture as one module. Parameters live as `params[name]`
    (member, *shape); `w(name)` returns them. Subclasses implement both paths.

    Built from the members' weights, or around an existing `params` (shared, not copied: a hooked
    twin of a trainer's model sees every update and every change of the member set)."""

    def __init__(
        self,
        cfg: RunConfig,
        member_params: Sequence[dict[str, Tensor]] | None = None,
        *,
        params: nn.ParameterDict | None = None,
    ):
        super().__init__()
        if (member_params is None) == (params is None):
            raise TypeError("give either member_params or params")
        self.cfg = cfg  # architecture only: per-member hyperparameters live in the trainer
        if params is None:
            assert member_params is not None  # exactly one of the two, checked above
            params = nn.ParameterDict(
                {
                    name.replace(".", "__"): nn.Parameter(torch.stack([m[name] for m in member_params]))
                    for name in param_shapes(cfg)
                }
            )
        self.params = params

    @property
    def n_members(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def check_tokens(self, tokens: Tensor) -> None:
        """The instrumented path's input check: a wrong member count would otherwise surface deep
        inside as an opaque reshape error."""
        n_ctx = self.cfg.n_ctx
        if tokens.dim() != 3 or tokens.shape[0] != self.n_members or tokens.shape[-1] > n_ctx:
            raise ValueError(
                f"tokens must be (member, batch, pos) with member = {self.n_members} (the pack's live members, "
                f"in trainer.configs order) and pos <= {n_ctx}; got shape {tuple(tokens.shape)}. For one "
                "member's inputs x (batch, pos), pass x.expand(n_members, -1, -1) and read that member's row"
            )
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}")

    def w(self, name: str) -> Tensor:
        """The parameter `name` (TransformerLens name), (member, *shape)."""
        return self.params[name.replace(".", "__")]

    def bias(self, name: str) -> Tensor | None:
        """The bias `name`, or None where the config has no biases (cfg.bias False)."""
        return self.params.get(name.replace(".", "__"))

    def named_member_params(self) -> dict[str, nn.Parameter]:
        """Parameters under their TransformerLens names, each (member, *shape)."""
        return {k.replace("__", "."): v for k, v in self.params.items()}

    def set_member_params(self, params: dict[str, nn.Parameter]) -> None:
        """Install these parameters (TransformerLens names) in place of the current ones, in the
        shared ParameterDict, so a hooked twin sees them too."""
        for name, p in params.items():
            self.params[name.replace(".", "__")] = p

    def act(self, x: Tensor) -> Tensor:
        return F.relu(x) if self.cfg.act == "relu" else F.gelu(x)

    # ---- the training path, which each architecture implements ----------------------------------
    def train_tables(self, n_pos: int) -> dict[str, Tensor]:
        """The part of train_logits that is the same for every example, per (position, token)."""
        raise NotImplementedError

    def train_logits(
        self, tokens: Int[Tensor, "member batch pos"], tables: dict[str, Tensor] | None = None
    ) -> Float[Tensor, "member batch d_vocab_out"]:
        """Logits at the last position; `tables` from train_tables(pos), computed here if not given."""
        raise NotImplementedError


class PackedTransformer(PackedModel):
    def __init__(
        self,
        cfg: RunConfig,
        member_params: Sequence[dict[str, Tensor]] | None = None,
        *,
        params: nn.ParameterDict | None = None,
        hook_point: HookPointClass = nn.Identity,
    ):
        super().__init__(cfg, member_params, params=params)
        self.hook_embed = hook_point()
        self.hook_pos_embed = hook_point()
        self.blocks = nn.ModuleList([_block_hooks(hook_point) for _ in range(cfg.n_layers)])
        self.ln_final = _HookGroup(hook_point, LN_HOOKS)
        self.hook_logits = hook_point()
        # Every example of grokcore.splits ends in '=' in layouts that end in '=' (train_logits relies on it).
        self.fixed_last_token = cfg.eq_token if cfg.token_layout.split()[-1] == "=" else None

    def block_hooks(self, layer: int) -> _HookGroup:
        # nn.ModuleList holds plain Modules to a type checker; each item here is a block's _HookGroup.
        return cast("_HookGroup", self.blocks[layer])

    # ---- instrumented path --------------------------------------------------------------------
    def forward(self, tokens: Int[Tensor, "member batch pos"]) -> Float[Tensor, "member batch pos d_vocab_out"]:
        self.check_tokens(tokens)
        cfg = self.cfg
        T = tokens.shape[-1]
        embed = self.hook_embed(gather_rows(self.w("embed.W_E"), tokens))
        pos = self.hook_pos_embed(self.w("pos_embed.W_pos")[:, None, :T, :].expand_as(embed))
        resid = embed + pos
        for layer in range(cfg.n_layers):
            blk, hooks = f"blocks.{layer}", self.block_hooks(layer)
            resid = hooks.hook_resid_pre(resid)
            x = self._ln(resid, f"{blk}.ln1", hooks.ln1)
            q = hooks.attn.hook_q(self._proj(x, f"{blk}.attn", "Q"))  # (member, batch, pos, head, d_head)
            k = hooks.attn.hook_k(self._proj(x, f"{blk}.attn", "K"))
            v = hooks.attn.hook_v(self._proj(x, f"{blk}.attn", "V"))
            scores = torch.einsum("mbqhd,mbkhd->mbhqk", q, k) / math.sqrt(cfg.d_head_)
            causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
            scores = hooks.attn.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
            pattern = hooks.attn.hook_pattern(scores.softmax(-1))
            z = hooks.attn.hook_z(torch.einsum("mbhqk,mbkhd->mbqhd", pattern, v))
            attn_out = self._attn_out(z, blk)
            resid = hooks.hook_resid_mid(resid + hooks.hook_attn_out(attn_out))
            if not cfg.attn_only:
                x = self._ln(resid, f"{blk}.ln2", hooks.ln2)
                pre = hooks.mlp.hook_pre(add_bias(bmm(x, self.w(f"{blk}.mlp.W_in")), self.bias(f"{blk}.mlp.b_in")))
                post = hooks.mlp.hook_post(self.act(pre))
                mlp_out = add_bias(bmm(post, self.w(f"{blk}.mlp.W_out")), self.bias(f"{blk}.mlp.b_out"))
                resid = resid + hooks.hook_mlp_out(mlp_out)
            resid = hooks.hook_resid_post(resid)
        x = self._ln(resid, "ln_final", self.ln_final)
        return self.hook_logits(add_bias(bmm(x, self.w("unembed.W_U")), self.bias("unembed.b_U")))

    def _ln(self, x: Tensor, prefix: str, hooks: _HookGroup) -> Tensor:
        if self.cfg.normalization == "none":
            return x
        centred = x - x.mean(-1, keepdim=True)
        scale = hooks.hook_scale(torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + LN_EPS))
        w, b = self.w(f"{prefix}.w"), self.w(f"{prefix}.b")
        shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[-1],)
        return hooks.hook_normalized(centred / scale) * w.view(shape) + b.view(shape)

    def _proj(self, x: Tensor, prefix: str, which: str) -> Tensor:
        """x (member, ..., d_model) -> (member, ..., head, d_head)."""
        W = self.w(f"{prefix}.W_{which}")  # (member, head, d_model, d_head)
        K, H, d, dh = W.shape
        out = bmm(x, W.permute(0, 2, 1, 3).reshape(K, d, H * dh)).unflatten(-1, (H, dh))
        return add_bias(out, self.bias(f"{prefix}.b_{which}"))

    def _attn_out(self, z: Tensor, blk: str) -> Tensor:
        """z (member, ..., head, d_head) -> (member, ..., d_model)."""
        W_O = self.w(f"{blk}.attn.W_O")  # (member, head, d_head, d_model)
        out = bmm(z.flatten(-2), W_O.reshape(W_O.shape[0], -1, W_O.shape[-1]))
        return add_bias(out, self.bias(f"{blk}.attn.b_O"))

    # ---- training path ------------------------------------------------------------------------
    def train_tables(self, n_pos: int) -> dict[str, Tensor]:
        """Layer 0's quantities per (position, token), row t*V + v of each (member, pos*vocab, ...)
        table: the part of train_logits that is the same for every example. A caller that runs
        train_logits over several chunks of examples computes them once (and backpropagates
        through them once) and passes them in."""
        cfg, V = self.cfg, self.cfg.d_vocab
        resid_table = (self.w("embed.W_E")[:, None] + self.w("pos_embed.W_pos")[:, :n_pos, None]).flatten(1, 2)
        x_table = self._ln(resid_table, "blocks.0.ln1", self.block_hooks(0).ln1)  # (member, pos*vocab, d_model)
        tables = {"v": self._proj(x_table, "blocks.0.attn", "V")}
        if cfg.n_layers == 1 and self.fixed_last_token is not None:
            # One layer and a last token that never varies ('='): the query is one vector per
            # member, so each key's score depends on (position, token) alone. Score it once on
            # the table and gather scalars, instead of gathering keys and queries per example.
            row = (n_pos - 1) * V + self.fixed_last_token
            q = self._proj(x_table[:, row : row + 1], "blocks.0.attn", "Q")  # (member, 1, head, d_head)
            tables["score"] = (self._proj(x_table, "blocks.0.attn", "K") * q).sum(-1) / math.sqrt(cfg.d_head_)
            tables["resid"] = resid_table[:, row : row + 1]  # the last position's, the same in every example
        else:
            tables |= {
                "resid": resid_table,
                "k": self._proj(x_table, "blocks.0.attn", "K"),
                "q": self._proj(x_table, "blocks.0.attn", "Q"),
            }
        return tables

    def train_logits(
        self, tokens: Int[Tensor, "member batch pos"], tables: dict[str, Tensor] | None = None
    ) -> Float[Tensor, "member batch d_vocab_out"]:
        cfg = self.cfg
        _K, _B, T = tokens.shape
        V = cfg.d_vocab
        if tables is None:
            tables = self.train_tables(T)
        # Row t*V + v of each table is the layer-0 quantity of token v at position t.
        table_index = tokens + torch.arange(T, device=tokens.device) * V  # (member, batch, pos)
        last = cfg.n_layers == 1
        v = gather_rows(tables["v"], table_index)  # (member, batch, pos, head, d_head)
        if "score" in tables:
            scores = gather_rows(tables["score"], table_index)  # (member, batch, pos, head)
            z = (scores.softmax(2).unsqueeze(-1) * v).sum(2)  # (member, batch, head, d_head)
            resid = tables["resid"] + self._attn_out(z, "blocks.0")  # (member, batch, d_model)
            resid = self._mlp(0, resid)
            x = self._ln(resid, "ln_final", self.ln_final)
            return add_bias(bmm(x, self.w("unembed.W_U")), self.bias("unembed.b_U"))
        k = gather_rows(tables["k"], table_index)
        if last:
            q_index = table_index[..., -1:]
            resid = gather_rows(tables["resid"], table_index[..., -1])  # (member, batch, d_model)
        else:
            q_index = table_index
            resid = gather_rows(tables["resid"], table_index)  # (member, batch, pos, d_model)
        q = gather_rows(tables["q"], q_index)
        resid = self._train_block(0, resid, q, k, v, last)
        for layer in range(1, cfg.n_layers):
            last = layer == cfg.n_layers - 1
            blk = f"blocks.{layer}"
            x = self._ln(resid, f"{blk}.ln1", self.block_hooks(layer).ln1)
            x_q = x[:, :, -1:] if last else x
            resid_q = resid[:, :, -1] if last else resid
            q = self._proj(x_q, f"{blk}.attn", "Q")
            resid = self._train_block(
                layer, resid_q, q, self._proj(x, f"{blk}.attn", "K"), self._proj(x, f"{blk}.attn", "V"), last
            )
        x = self._ln(resid, "ln_final", self.ln_final)
        return add_bias(bmm(x, self.w("unembed.W_U")), self.bias("unembed.b_U"))

    def _train_block(self, layer: int, resid: Tensor, q: Tensor, k: Tensor, v: Tensor, last: bool) -> Tensor:
        """One block given Q (member, batch, q_pos, head, d_head) and K, V over all positions.
        With `last`, q_pos is 1 (the last position, which sees every key) and resid is
        (member, batch, d_model); otherwise all positions with the causal mask."""
        cfg, blk = self.cfg, f"blocks.{layer}"
        if last:
            # One query against a handful of keys: broadcast multiply-and-sum beats einsum's
            # batched matmuls of (1 x d_head) @ (d_head x pos) by ~3x on CPU.
            scores = (q * k).sum(-1) / math.sqrt(cfg.d_head_)  # (member, batch, key_pos, head)
            z = (scores.softmax(2).unsqueeze(-1) * v).sum(2)  # (member, batch, head, d_head)
        else:
            scores = torch.einsum("mbqhd,mbkhd->mbhqk", q, k) / math.sqrt(cfg.d_head_)
            T = k.shape[2]
            causal = torch.ones(T, T, dtype=torch.bool, device=k.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
            z = torch.einsum("mbhqk,mbkhd->mbqhd", scores.softmax(-1), v)
        return self._mlp(layer, resid + self._attn_out(z, blk))

    def _mlp(self, layer: int, resid: Tensor) -> Tensor:
        """resid + the block's MLP output (resid itself for attention-only models)."""
        if self.cfg.attn_only:
            return resid
        blk = f"blocks.{layer}"
        x = self._ln(resid, f"{blk}.ln2", self.block_hooks(layer).ln2)
        pre = add_bias(bmm(x, self.w(f"{blk}.mlp.W_in")), self.bias(f"{blk}.mlp.b_in"))
        return resid + add_bias(bmm(self.act(pre), self.w(f"{blk}.mlp.W_out")), self.bias(f"{blk}.mlp.b_out"))


class PackedMLP(PackedModel):
    """Embeddings of the tokens concatenated, one hidden layer, unembedding."""

    def __init__(
        self,
        cfg: RunConfig,
        member_params: Sequence[dict[str, Tensor]] | None = None,
        *,
        params: nn.ParameterDict | None = None,
        hook_point: HookPointClass = nn.Identity,
    ):
        super().__init__(cfg, member_params, params=params)
        self.hook_embed = hook_point()
        self.mlp = _HookGroup(hook_point, MLP_HOOKS)
        self.hook_logits = hook_point()

    def forward(self, tokens: Int[Tensor, "member batch pos"]) -> Float[Tensor, "member batch d_vocab_out"]:
        self.check_tokens(tokens)
        embed = self.hook_embed(gather_rows(self.w("embed.W_E"), tokens))  # (member, batch, pos, d_model)
        pre = self.mlp.hook_pre(add_bias(bmm(embed.flatten(-2), self.w("mlp.W_in")), self.bias("mlp.b_in")))
        post = self.mlp.hook_post(self.act(pre))
        return self.hook_logits(add_bias(bmm(post, self.w("unembed.W_U")), self.bias("unembed.b_U")))

    def train_tables(self, n_pos: int) -> dict[str, Tensor]:
        """The hidden pre-activation each (position, token) contributes, row t*V + v: the part of
        train_logits that is the same for every example (see PackedTransformer.train_tables)."""
        W_in = self.w("mlp.W_in")
        W_in = W_in.view(W_in.shape[0], n_pos, self.cfg.d_model, -1)  # the block of W_in that sees position t
        # table[t*V + v] = W_E[v] @ W_in[t]
        return {"pre": torch.einsum("mvd,mtdh->mtvh", self.w("embed.W_E"), W_in).flatten(1, 2)}

    def train_logits(
        self, tokens: Int[Tensor, "member batch pos"], tables: dict[str, Tensor] | None = None
    ) -> Float[Tensor, "member batch d_vocab_out"]:
        _K, _B, T = tokens.shape
        V = self.cfg.d_vocab
        if tables is None:
            tables = self.train_tables(T)
        pre = gather_rows(tables["pre"], tokens + torch.arange(T, device=tokens.device) * V).sum(2)
        pre = add_bias(pre, self.bias("mlp.b_in"))
        return add_bias(bmm(self.act(pre), self.w("unembed.W_U")), self.bias("unembed.b_U"))


LN_HOOKS = ("hook_scale", "hook_normalized")
ATTN_HOOKS = ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z")
MLP_HOOKS = ("hook_pre", "hook_post")
BLOCK_HOOKS = ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post")


class _HookGroup(nn.Module):
    """Hook points under these names, with these sub-groups: TransformerLens' module layout
    (`blocks.0.ln1.hook_scale`, `blocks.0.attn.hook_q`, ...)."""

    def __init__(self, hook_point: HookPointClass, names: Sequence[str], **groups: nn.Module) -> None:
        super().__init__()
        for name, group in groups.items():  # sub-groups first: the registration order the model had
            setattr(self, name, group)
        for name in names:
            setattr(self, name, hook_point())

    if TYPE_CHECKING:  # the hook points and sub-groups are set by name above; nn.Module's own answer is Tensor | Module

        def __getattr__(self, name: str) -> Any: ...


def _block_hooks(hook_point: HookPointClass) -> _HookGroup:
    return _HookGroup(
        hook_point,
        BLOCK_HOOKS,
        ln1=_HookGroup(hook_point, LN_HOOKS),
        attn=_HookGroup(hook_point, ATTN_HOOKS),
        ln2=_HookGroup(hook_point, LN_HOOKS),
        mlp=_HookGroup(hook_point, MLP_HOOKS),
    )


def build_packed(cfg: RunConfig, member_params: Sequence[dict[str, Tensor]]) -> PackedModel:
    """The pack for training: plain torch, identity hook points (grokcore.model.build_model hooks them)."""
    cls = PackedTransformer if cfg.model == "transformer" else PackedMLP
    return cls(cfg, member_params)

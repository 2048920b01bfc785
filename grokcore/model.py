"""The packed models of grokcore.packed with TransformerLens hook points.

    model = build_model(cfg, [init_member(c) for c in configs])
    logits, cache = model.run_with_cache(tokens)      # tokens (member, batch, pos)
    cache["blocks.0.attn.hook_pattern"]               # (member, batch, head, q_pos, k_pos)

The math is grokcore.packed's; these classes only put TransformerLens' HookPoint at every hook
point and HookedRootModule at the root (run_with_cache, run_with_hooks, hook_dict). The trainer
trains the plain model and builds a hooked twin on demand (`PackTrainer.model`, or `hooked`
here), which shares its parameters, so importing transformer_lens is paid only by code that
uses hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from grokcore.config import RunConfig
from grokcore.packed import PackedMLP, PackedModel, PackedTransformer


class HookedPackedTransformer(PackedTransformer, HookedRootModule):
    def __init__(
        self,
        cfg: RunConfig,
        member_params: Sequence[dict[str, Tensor]] | None = None,
        *,
        params: nn.ParameterDict | None = None,
    ):
        super().__init__(cfg, member_params, params=params, hook_point=HookPoint)
        self.setup()


class HookedPackedMLP(PackedMLP, HookedRootModule):
    def __init__(
        self,
        cfg: RunConfig,
        member_params: Sequence[dict[str, Tensor]] | None = None,
        *,
        params: nn.ParameterDict | None = None,
    ):
        super().__init__(cfg, member_params, params=params, hook_point=HookPoint)
        self.setup()


def _hooked_class(cfg: RunConfig) -> type[PackedModel]:
    return HookedPackedTransformer if cfg.model == "transformer" else HookedPackedMLP


def build_model(cfg: RunConfig, member_params: Sequence[dict[str, Tensor]]) -> PackedModel:
    """A hooked pack of these members' weights (their own copy)."""
    return _hooked_class(cfg)(cfg, member_params)


def hooked(model: PackedModel) -> PackedModel:
    """`model` with TransformerLens hook points, sharing its parameters (no copy); `model` itself
    if it has them already."""
    if isinstance(model, HookedRootModule):
        return model
    return _hooked_class(model.cfg)(model.cfg, params=model.params)

"""The progress-measure table: one row per measure, read by everything that lists or computes them.

`measure_pack` (online in the trainer, offline in `grok measure`) computes the rows that are on and
apply to the pack, in table order; `grok measure --measures` offers the switchable rows by key; a
row's `columns` say which progress columns it writes (a test holds measure_pack to them). A new
measure is one module with its function plus one row here (docs/howto/progress-measure.md).

Standard library only at import time (analysis and the CLI read the table without torch): a row
names its function as "module:function", imported when a pack is first measured.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grokcore.progress import columns as col
from grokcore.task import FOURIER, MAX_CIRCUIT

if TYPE_CHECKING:  # annotations only
    from grokcore.config import RunConfig


def modulus(cfg: RunConfig) -> int:
    """p of a task whose operands are residues mod p (the Fourier measures' tasks)."""
    p = cfg.task_def.modulus
    if p is None:
        raise ValueError(f"task {cfg.task!r} has no modulus: the Fourier measures do not apply")
    return p


@dataclass(frozen=True)
class ProgressMeasure:
    key: str
    """Its name: `grok measure --measures KEY`, and the ProgressSettings switch (below)."""
    applies: Callable[[RunConfig], bool]
    """Whether it applies to a pack, from the pack's config (its task's declared measures, its model).
    A pack it does not apply to gets none of its columns."""
    columns: Callable[[RunConfig], list[str]]
    """The columns it writes for such a pack, in order (NaN for members it does not fit)."""
    function: str
    """"module:function"; function(trainer, weights, settings) -> {column: (member,) float tensor},
    `weights` the pack's parameters (TransformerLens names, leading member axis), read only."""
    marker: str
    """A column prefix: a progress row holds this measure when such a column holds a number (how
    `grok measure` tells what is missing)."""
    switchable: bool = True
    """False: computed whenever it applies."""
    default: bool = True
    """Switchable rows only. On by default: the ProgressSettings field named `key` switches it off.
    Off by default: ProgressSettings.extra names it to switch it on (progress tables written before
    the measure existed keep their columns)."""

    def compute(self, trainer: Any, weights: dict[str, Any], settings: Any) -> dict[str, Any]:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)(trainer, weights, settings)


def _always(cfg: RunConfig) -> bool:
    return True


def _declares(measure: str) -> Callable[[RunConfig], bool]:
    return lambda cfg: measure in cfg.task_def.measures


def _coord_columns(cfg: RunConfig) -> list[str]:
    return col.embed_columns(cfg.operand_range)[col.N_PCA :]


PROGRESS_MEASURES: tuple[ProgressMeasure, ...] = (
    ProgressMeasure(
        "embed",
        _always,
        lambda cfg: col.embed_columns(cfg.operand_range, coords=False),
        "grokcore.progress.pack:embedding_pca",
        marker="embed/pca_var_",
        switchable=False,
    ),
    ProgressMeasure(
        "embed_coords", _always, _coord_columns, "grokcore.progress.pack:embedding_coords", marker="embed/pc0_"
    ),
    ProgressMeasure(
        "max",
        _declares(MAX_CIRCUIT),
        lambda cfg: list(col.MAX_COLUMNS),
        "grokcore.progress.pack:max_circuit",
        marker="max/",
        switchable=False,
    ),
    ProgressMeasure(
        "fourier",
        _declares(FOURIER),
        lambda cfg: col.fourier_columns(modulus(cfg)),
        "grokcore.progress.pack:fourier_measures",
        marker=col.EMBED_NORM_PREFIX,
    ),
    ProgressMeasure(
        "fourier_entropy",
        _declares(FOURIER),
        lambda cfg: [col.EMBED_ENTROPY],
        "grokcore.progress.entropy:fourier_entropy_columns",
        marker=col.EMBED_ENTROPY,
        default=False,
    ),
    ProgressMeasure(
        "llc", _always, lambda cfg: list(col.LLC_COLUMNS), "grokcore.progress.pack:llc_measure", marker=col.LLC_MEAN
    ),
)
"""In column order: measure_pack writes the rows' columns in this order."""

BY_KEY = {m.key: m for m in PROGRESS_MEASURES}
SWITCHABLE = tuple(m.key for m in PROGRESS_MEASURES if m.switchable)
"""What `grok measure --measures` can choose."""
SWITCHED_ON = tuple(m.key for m in PROGRESS_MEASURES if m.switchable and m.default)
"""`grok measure`'s default choice: the switchable measures the trainer computes by default."""


def progress_columns(cfg: RunConfig, on: Callable[[ProgressMeasure], bool]) -> list[str]:
    """The columns measure_pack writes for a pack of `cfg`'s shape with the measures `on` says."""
    return [c for m in PROGRESS_MEASURES if on(m) and m.applies(cfg) for c in m.columns(cfg)]

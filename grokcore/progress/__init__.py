"""Progress measures: what a member has learnt inside, not just its accuracy, computed online for
every member of a pack (the trainer calls `measure_pack(trainer)` every `progress_every` epochs and
puts the rows in `Report.progress`; sweeps writes them to `progress/` Parquet).

    rows = measure_pack(trainer)               # one flat {column: float} per live member
    rows = measure_pack(trainer, ProgressSettings(llc=False))
    result = estimate_member_llc(cfg, weights)  # one member's LLC from its config and weights, no trainer

Nothing here changes training: weights are read (functional_call on copies), no .grad is written,
randomness comes from per-member generators seeded by the member's `progress` sub-seed and the epoch.

Columns (all float64; NaN where a measure does not apply to the member)
-----------------------------------------------------------------------

Which measures exist, which packs they apply to and which columns each writes is one table,
grokcore.progress.registry (a new measure: docs/howto/progress-measure.md).

Embedding geometry, every task (operand tokens 0 .. operand_range-1, centred over tokens):

- `embed/pca_var_{0,1,2}`: fraction of the embedding variance along principal component i.
- `embed/pc0_{t}`, `embed/pc1_{t}` for every operand token t (operand_range <= 256 only, and
  ProgressSettings.embed_coords): token t's coordinates on the first two principal components, each
  component's sign fixed so that its largest coordinate is positive. The circle of a grokked adder.

Fourier (tasks whose Task declares the `fourier` measure: every modular task, whose operands are
residues mod p; not max, not the groups). The basis is the real Fourier basis of Z_p; frequency k
means angle 2 pi k x / p, k = 1 .. p // 2.

- `fourier/embed_norm_{k}` for k = 1 .. p // 2: norm of the (cos k, sin k) part of the embedding of
  tokens 0 .. p-1 in the Fourier basis.
- `fourier/n_key`: number of key frequencies. Rule: a frequency is key when its embedding norm is at
  least ProgressSettings.key_fraction (1/4) of the member's largest norm. A random embedding has
  nearly all frequencies key; a grokked one a handful.
- `fourier/key_freq_{i}`, i = 0 .. 7: the key frequencies, strongest first, at most 8 (NaN when
  fewer). All key-frequency measures below use these (the strongest 8 when n_key > 8).
- `fourier/embed_key_frac`: fraction of the embedding's non-constant Fourier energy in them.
- `fourier/embed_entropy` (off by default: ProgressSettings(extra=("fourier_entropy",))): entropy in
  nats of the embedding norms per frequency, normalised to sum 1; 0 when one frequency holds all the
  norm, log(p // 2) when they are uniform (grokcore.progress.entropy).

Addition members only (the `addition` measure: add; add_mul on its addition inputs; pow with
m = n = 1), over the p x p grid
of inputs (a, b < p, op '+'), logits at the last position:

- `fourier/grid_loss`: cross-entropy of the unmodified logits over the whole grid (clean labels).
- `fourier/restricted_loss`: Nanda et al.'s restricted loss. Each output logit, as a function of the
  input (a, b), is projected onto cos(w(a+b)) and sin(w(a+b)) for the key frequencies w (this keeps
  the cos(w(a+b-c)) and sin(w(a+b-c)) terms), plus the bias correction (the input-independent mean of
  the removed part); cross-entropy over the whole grid. Falls before the test loss does.
- `fourier/excluded_loss`: those key-frequency terms removed (no correction), cross-entropy on the
  member's training pairs with the labels it trains on. Rises as the circuit forms.
- `fourier/logit_cos_coef_{i}`: least-squares coefficient of the logits (centred per input) on
  cos(w_i(a+b-c)) over the p x p x p grid, for key slot i; `fourier/logit_cos_fve`: fraction of the
  centred logits' variance those terms explain.
- `fourier/neuron_fve_mean`: mean over live neurons of the last MLP layer (last position) of the
  largest fraction of a neuron's variance over the grid explained by a single frequency (its linear
  and quadratic terms in cos/sin of w a and w b); `fourier/neuron_frac_clustered`: fraction of live
  neurons with that fraction >= ProgressSettings.neuron_threshold (0.85); `fourier/neuron_frac_key`:
  fraction of live neurons so clustered on one of the key frequencies; `fourier/neuron_frac_key_{i}`:
  on key slot i. (Per-neuron values are not stored.) NaN for attention-only models.

Other modular tasks (mul, pow with m or n > 1, sub, div, ...) get the embedding columns above and NaN
here; groups get no fourier/ columns at all.

Max of two (transformer; see grokcore.progress.attention):

- `max/qk_monotonic_frac`: fraction of consecutive key tokens t, t+1 whose attention score from the
  query at the last position rises (1: attention prefers the larger operand); `max/qk_min_gap`: the
  smallest such rise in score units (negative when not monotonic); `max/qk_head`: the head summarised.
- `max/ov_copy_frac`: fraction of tokens t whose OV circuit (attending fully to t) gives t the
  largest logit; `max/ov_copy_margin`: mean over t of its logit minus the largest other.

LLC, every task (grokcore.progress.llc; devinterp's estimator), at every ProgressSettings.llc_every-th
(2nd) progress evaluation, i.e. at epochs that are multiples of llc_every * progress_every; NaN in the
rows between:

- `llc/mean`, `llc/std`: over chains; `llc/init_loss`: the training loss at the weights;
  `llc/nbeta`: n * beta used; `llc/failed_chains`: chains whose loss went non-finite (excluded).

Default cost: SGLDSettings() is 2 chains x (20 burn-in + 30 draws) steps of up to 512 examples:
100 x min(512, n) / n training epochs of the pack for a training set of n examples (~13 for the
Nanda model, p 113 and 3830 training pairs; 100 below 512 pairs); the other measures cost a few
epochs (~6 for the Nanda model, most of it the forward over the p x p grid). At `progress_every: 500`
with the LLC every 1000 epochs that is ~2% for the Nanda model and ~11% for a model with fewer than
512 training examples; benchmarks/progress.py measures it.
"""

# Lazy exports: `grokcore.progress.columns` (the column names analysis reads) must stay importable
# without loading the torch code of this package.
_EXPORTS = {
    "fourier": (
        "excluded_loss",
        "fourier_basis",
        "frequency_norms",
        "key_frequencies",
        "logit_cos_coefficients",
        "neuron_frequency_fve",
        "restricted_loss",
    ),
    "llc": ("LLCResult", "SGLDSettings", "sgld_llc"),
    "pack": (
        "ProgressSettings",
        "embedding_geometry",
        "estimate_llc",
        "estimate_member_llc",
        "grid_outputs",
        "grid_tokens",
        "measure_pack",
    ),
    "attention": ("qk_ov_summaries",),
    "entropy": ("fourier_entropy",),
    "registry": ("PROGRESS_MEASURES", "ProgressMeasure"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"grokcore.progress.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'grokcore.progress' has no attribute '{name}'")

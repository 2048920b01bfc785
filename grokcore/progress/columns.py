"""Names of the progress columns (the contract with sweeps/ and analysis/); plain strings, no torch.

See grokcore.progress for what each column means.
"""

MAX_KEY_FREQS = 8
"""Key-frequency slots: `fourier/key_freq_0 .. 7` and the columns aligned with them."""
MAX_COORD_TOKENS = 256
"""Embedding PCA coordinates are stored for at most this many operand tokens."""
N_PCA = 3
"""`embed/pca_var_0 .. 2`."""

RESTRICTED_LOSS = "fourier/restricted_loss"
EXCLUDED_LOSS = "fourier/excluded_loss"
GRID_LOSS = "fourier/grid_loss"
N_KEY = "fourier/n_key"
EMBED_KEY_FRAC = "fourier/embed_key_frac"
EMBED_ENTROPY = "fourier/embed_entropy"
LOGIT_COS_FVE = "fourier/logit_cos_fve"
NEURON_FVE_MEAN = "fourier/neuron_fve_mean"
NEURON_FRAC_CLUSTERED = "fourier/neuron_frac_clustered"
NEURON_FRAC_KEY = "fourier/neuron_frac_key"
LLC_MEAN = "llc/mean"
LLC_STD = "llc/std"
LLC_INIT_LOSS = "llc/init_loss"
LLC_NBETA = "llc/nbeta"
LLC_FAILED_CHAINS = "llc/failed_chains"
QK_MONOTONIC_FRAC = "max/qk_monotonic_frac"
QK_MIN_GAP = "max/qk_min_gap"
QK_HEAD = "max/qk_head"
OV_COPY_FRAC = "max/ov_copy_frac"
OV_COPY_MARGIN = "max/ov_copy_margin"


def key_freq(slot: int) -> str:
    return f"fourier/key_freq_{slot}"


def logit_cos_coef(slot: int) -> str:
    return f"fourier/logit_cos_coef_{slot}"


def neuron_frac_key_slot(slot: int) -> str:
    return f"fourier/neuron_frac_key_{slot}"


def embed_norm(k: int) -> str:
    return f"fourier/embed_norm_{k}"


def pca_var(i: int) -> str:
    return f"embed/pca_var_{i}"


def pc_coord(component: int, token: int) -> str:
    return f"embed/pc{component}_{token}"


EMBED_NORM_PREFIX = "fourier/embed_norm_"
KEY_FREQ_PREFIX = "fourier/key_freq_"
PC_PREFIXES = ("embed/pc0_", "embed/pc1_")


def fourier_columns(p: int) -> list[str]:
    """Every `fourier/` column of a modular task with modulus p, in the order measure_pack writes them."""
    return (
        [embed_norm(k) for k in range(1, p // 2 + 1)]
        + [N_KEY, EMBED_KEY_FRAC]
        + [key_freq(i) for i in range(MAX_KEY_FREQS)]
        + [NEURON_FVE_MEAN, NEURON_FRAC_CLUSTERED, NEURON_FRAC_KEY]
        + [neuron_frac_key_slot(i) for i in range(MAX_KEY_FREQS)]
        + [logit_cos_coef(i) for i in range(MAX_KEY_FREQS)]
        + [LOGIT_COS_FVE]
        + [GRID_LOSS, RESTRICTED_LOSS, EXCLUDED_LOSS]
    )


def embed_columns(n_tokens: int, coords: bool = True) -> list[str]:
    cols = [pca_var(i) for i in range(N_PCA)]
    if coords and n_tokens <= MAX_COORD_TOKENS:
        cols += [pc_coord(c, t) for c in (0, 1) for t in range(n_tokens)]
    return cols


MAX_COLUMNS = [QK_MONOTONIC_FRAC, QK_MIN_GAP, QK_HEAD, OV_COPY_FRAC, OV_COPY_MARGIN]
LLC_COLUMNS = [LLC_MEAN, LLC_STD, LLC_INIT_LOSS, LLC_NBETA, LLC_FAILED_CHAINS]

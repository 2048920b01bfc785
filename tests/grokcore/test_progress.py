"""Progress measures: known answers for the Fourier measures, restricted and excluded loss, the max-of-two
summaries and the LLC estimator, and proof that measuring never changes training."""

import dataclasses
import math
import os

import pytest
import torch

from grokcore import PackTrainer, RunConfig, train_pack
from grokcore.progress import (
    ProgressSettings,
    SGLDSettings,
    estimate_llc,
    excluded_loss,
    fourier_basis,
    key_frequencies,
    logit_cos_coefficients,
    measure_pack,
    neuron_frequency_fve,
    restricted_loss,
    sgld_llc,
)
from grokcore.progress import columns as col
from grokcore.progress.fourier import cross_entropy
from grokcore.progress.llc import member_generator
from grokcore.records import METRIC_COLUMNS

NO_LLC = ProgressSettings(llc=False)
FAST_LLC = ProgressSettings(llc_every=1, sgld=SGLDSettings(chains=2, burnin=2, draws=3))
TINY = RunConfig(p=13, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=40, eval_every=10)


def grid(p):
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def set_weight(trainer, name, member, value):
    start, end = trainer.flat.offsets[name]
    trainer.flat.data[member, start:end] = value.reshape(-1)


# ---- the basis and the embedding ------------------------------------------------------------------


@pytest.mark.parametrize("p", [13, 16])
def test_fourier_basis_is_orthonormal_with_frequencies(p):
    basis, freqs = fourier_basis(p)
    torch.testing.assert_close(basis @ basis.T, torch.eye(p, dtype=torch.float64))
    assert freqs.tolist()[:3] == [0, 1, 1] and freqs.max().item() == p // 2
    x = torch.arange(p, dtype=torch.float64)
    assert torch.allclose(
        basis[2 * 3 - 1] / basis[2 * 3 - 1].norm(), torch.cos(2 * math.pi * 3 * x / p) / math.sqrt(p / 2)
    )


def test_exact_fourier_embedding_yields_exactly_its_key_frequencies():
    """Embeddings that are exact Fourier modes at chosen frequencies (one member each) give exactly those
    key frequencies, strongest first; a mode below a quarter of the largest is not key."""
    p = 23
    cfg = RunConfig(p=p, d_model=24, n_heads=2, d_mlp=32, epochs=10, eval_every=10)
    chosen = [{3: 1.0, 7: 0.8, 10: 0.5, 2: 0.2}, {11: 1.0, 1: 0.3}]
    trainer = PackTrainer([dataclasses.replace(cfg, seed=s) for s in range(len(chosen))])
    x = torch.arange(p, dtype=torch.float32)
    for m, modes in enumerate(chosen):
        W_E = trainer.flat.member_tensors(m)["embed.W_E"]
        W_E[:p] = 0
        for j, (k, amp) in enumerate(modes.items()):
            W_E[:p, 2 * j] = amp * torch.cos(2 * math.pi * k * x / p)
            W_E[:p, 2 * j + 1] = amp * torch.sin(2 * math.pi * k * x / p + 0.3)
        set_weight(trainer, "embed.W_E", m, W_E)
    rows = measure_pack(trainer, NO_LLC)
    for row, modes in zip(rows, chosen, strict=True):
        expected = [k for k, amp in sorted(modes.items(), key=lambda kv: -kv[1]) if amp >= 0.25]
        got = [row[col.key_freq(i)] for i in range(col.MAX_KEY_FREQS)]
        assert got[: len(expected)] == expected and all(math.isnan(v) for v in got[len(expected) :])
        assert row[col.N_KEY] == len(expected)
        for k in range(1, p // 2 + 1):
            norm = row[col.embed_norm(k)]
            if k in modes:
                assert norm == pytest.approx(modes[k] * math.sqrt(p), rel=1e-4)  # |cos|^2 + |sin|^2 over x = p
            else:
                assert norm < 1e-4
        energy = sum(a * a for k, a in modes.items() if k in expected) / sum(a * a for a in modes.values())
        assert row[col.EMBED_KEY_FRAC] == pytest.approx(energy, rel=1e-4)


def test_key_frequency_rule_caps_and_pads():
    norms = torch.tensor([[1.0, 0.2, 0.3, 0.9], [0.5, 0.5, 0.5, 0.5]], dtype=torch.float64)
    keys, n_above = key_frequencies(norms, fraction=0.25, max_keys=3)
    assert keys.tolist() == [[1, 4, 3], [1, 2, 3]]
    assert n_above.tolist() == [3, 4]  # the count is not capped; the slots are
    keys, _ = key_frequencies(norms[:1], fraction=0.5, max_keys=3)
    assert keys.tolist() == [[1, 4, -1]]


# ---- restricted / excluded loss -------------------------------------------------------------------


def trig_logits(p, terms, bias):
    """logits[(a, b), c] = sum of amp * cos/sin(w (a + b - c) + phase) + bias[c], as (1, p*p, p)."""
    a, b = grid(p)
    c = torch.arange(p)
    s = ((a + b).view(-1, 1) - c.view(1, -1)).to(torch.float64)
    out = bias.to(torch.float64).view(1, -1).expand(p * p, p).clone()
    for w, amp, phase in terms:
        out += amp * torch.cos(2 * math.pi * w * s / p + phase)
    return out.to(torch.float64).unsqueeze(0)


def test_restricted_and_excluded_loss_known_answers():
    p = 17
    a, b = grid(p)
    labels = ((a + b) % p).unsqueeze(0)
    bias = torch.linspace(-1, 1, p, dtype=torch.float64)
    key_terms = [(3, 4.0, 0.0), (5, 2.5, 0.7)]  # phase 0.7 puts a sin(w(a+b-c)) part in too
    other = [(8, 1.5, 0.2)]
    keys = torch.tensor([[3, 5, -1]])
    train = torch.randperm(p * p, generator=torch.Generator().manual_seed(0))[: p * p // 3].unsqueeze(0)
    weight = torch.full(train.shape, 1 / train.shape[1], dtype=torch.float64)

    pure = trig_logits(p, key_terms, bias)
    # only key-frequency terms (and the per-output bias): restricted loss is the full loss
    assert restricted_loss(pure, labels, keys).item() == pytest.approx(cross_entropy(pure, labels).item(), rel=1e-10)
    # excluded loss removes them: what is left is the bias alone
    bias_only = bias.view(1, 1, -1).expand(1, train.shape[1], p)
    assert excluded_loss(pure, keys, train, labels[:, train[0]], weight).item() == pytest.approx(
        cross_entropy(bias_only, labels[:, train[0]]).item(), rel=1e-10
    )

    # with a non-key term: restricted drops it, excluded keeps only it (and the bias)
    mixed = trig_logits(p, key_terms + other, bias)
    assert restricted_loss(mixed, labels, keys).item() == pytest.approx(cross_entropy(pure, labels).item(), rel=1e-10)
    rest = trig_logits(p, other, bias)[:, train[0]]
    assert excluded_loss(mixed, keys, train, labels[:, train[0]], weight).item() == pytest.approx(
        cross_entropy(rest, labels[:, train[0]]).item(), rel=1e-10
    )
    # a constant added to every logit of an input changes nothing
    shifted = mixed + torch.randn(1, p * p, 1, dtype=torch.float64)
    assert restricted_loss(shifted, labels, keys).item() == pytest.approx(
        restricted_loss(mixed, labels, keys).item(), rel=1e-10
    )


def test_logit_cos_coefficients_recover_amplitudes():
    p = 17
    logits = trig_logits(p, [(3, 4.0, 0.0), (5, 2.5, 0.0), (8, 1.0, math.pi / 2)], torch.zeros(p))
    alpha, fve = logit_cos_coefficients(logits, torch.tensor([[3, 5, -1]]))
    assert alpha[0, :2].tolist() == pytest.approx([4.0, 2.5], rel=1e-10) and math.isnan(alpha[0, 2])
    # frequency 8 is a pure sine, orthogonal to the cos terms: fve = (16 + 6.25) / (16 + 6.25 + 1)
    assert fve.item() == pytest.approx(22.25 / 23.25, rel=1e-10)


def test_neuron_fve_single_frequency_and_mixtures():
    p = 13
    a, b = grid(p)
    ang = lambda k, x: 2 * math.pi * k * x.to(torch.float64) / p  # noqa: E731
    pure = torch.cos(ang(4, a)) + 0.5 * torch.sin(ang(4, b)) + 2 * torch.cos(ang(4, a)) * torch.sin(ang(4, b))
    mix = math.sqrt(3) * torch.cos(ang(2, a)) + torch.sin(ang(5, b))  # energies 3 : 1
    dead = torch.full_like(pure, 0.7)
    acts = torch.stack([pure, mix, dead], dim=-1).unsqueeze(0)  # (member, pair, neuron)
    fve = neuron_frequency_fve(acts)[0]  # (neuron, freq)
    assert fve[0, 3].item() == pytest.approx(1.0, abs=1e-12) and fve[0].sum().item() == pytest.approx(1.0, abs=1e-12)
    assert fve[1, 1].item() == pytest.approx(0.75, abs=1e-12) and fve[1, 4].item() == pytest.approx(0.25, abs=1e-12)
    assert fve[2].isnan().all()


def test_restricted_loss_falls_before_test_loss_on_a_real_grokking_run():
    """The README's small adder (memorises by ~100, groks by ~575): restricted loss reaches 0.1 well before test
    loss does, excluded loss rises after memorisation as the circuit forms, and the key frequencies thin out."""
    cfg = RunConfig(
        p=31,
        train_fraction=0.5,
        d_model=64,
        d_mlp=128,
        lr=3e-3,
        weight_decay=3.0,
        epochs=700,
        eval_every=25,
        progress_every=25,
    )
    trainer = PackTrainer([cfg])
    trainer.progress_settings = NO_LLC
    test, rows = {}, {}
    for report in trainer.run():
        test |= {m["epoch"]: m["test/loss"] for m in report.metrics}
        rows |= {r["epoch"]: r for r in report.progress}
    restricted_at = min(e for e, r in rows.items() if r[col.RESTRICTED_LOSS] <= 0.1)
    test_at = min(e for e, v in test.items() if v <= 0.1)
    assert restricted_at + 150 <= test_at, (restricted_at, test_at)
    assert rows[400][col.EXCLUDED_LOSS] > rows[100][col.EXCLUDED_LOSS] + 1
    assert rows[700][col.N_KEY] <= 5 < rows[100][col.N_KEY]
    assert rows[700][col.LOGIT_COS_FVE] > 0.8
    assert rows[100][col.LOGIT_COS_FVE] < 0.1


# ---- max of two --------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_max_qk_ov_summaries_on_a_built_circuit(direction):
    """Attention-only, one head: the query '=' scores key token t as direction * t and the OV circuit is the
    identity, so attention prefers the larger (direction 1) or the smaller (-1) operand, and OV copies."""
    n = 8
    cfg = RunConfig(
        task="max",
        p=n,
        force_adjacent=(0, 1),
        model="transformer",
        attn_only=True,
        n_heads=1,
        d_model=n + 3,
        d_head=n,
        epochs=10,
        eval_every=10,
    )
    trainer = PackTrainer([cfg])
    V, d = cfg.d_vocab, cfg.d_model
    W_Q, W_K = torch.zeros(1, d, n), torch.zeros(1, d, n)
    W_Q[0, cfg.eq_token, 0] = 1.0
    W_K[0, :n, 0] = direction * torch.arange(n, dtype=torch.float32)
    W_V = torch.zeros(1, d, n)
    W_V[0, :n, :n] = torch.eye(n)
    W_O = torch.zeros(1, n, d)
    W_O[0, :n, :n] = torch.eye(n)
    W_U = torch.zeros(d, n)
    W_U[:n, :n] = torch.eye(n)
    for name, value in {
        "embed.W_E": torch.eye(V, d),
        "pos_embed.W_pos": torch.zeros(3, d),
        "blocks.0.attn.W_Q": W_Q,
        "blocks.0.attn.W_K": W_K,
        "blocks.0.attn.W_V": W_V,
        "blocks.0.attn.W_O": W_O,
        "unembed.W_U": W_U,
    }.items():
        set_weight(trainer, name, 0, value)
    (row,) = measure_pack(trainer, NO_LLC)
    assert row[col.QK_MONOTONIC_FRAC] == (1.0 if direction > 0 else 0.0)
    assert row[col.QK_MIN_GAP] == pytest.approx(direction / math.sqrt(n))
    assert row[col.OV_COPY_FRAC] == 1.0 and row[col.OV_COPY_MARGIN] == pytest.approx(1.0)
    assert not any(k.startswith("fourier/") for k in row)


# ---- LLC ----------------------------------------------------------------------------------------------


def test_llc_of_a_regular_quadratic_model_is_half_its_identifiable_dimension():
    """L(w) = sum_i lam_i (w_i - w*_i)^2 / 2 is regular: LLC = d/2 with d the identifiable (lam > 0)
    parameters. SGLD on it is a discrete Ornstein-Uhlenbeck process whose stationary variance is exact,
    1 / (a (1 - eps a / 4)) with a = nbeta lam + gamma, so the estimate has an exact expectation too."""
    d, lams = 10, [torch.ones(10), torch.cat([torch.ones(4), torch.zeros(6)]), torch.linspace(0.5, 2.0, 10)]
    lam = torch.stack(lams).double()
    nbeta = torch.full((3,), 1000.0, dtype=torch.float64)
    settings = SGLDSettings(lr=5e-5, localization=0.01, chains=8, burnin=200, draws=3000)
    center = torch.randn(3, d, dtype=torch.float64)

    def loss(theta, step):
        return 0.5 * (lam.repeat_interleave(8, 0) * (theta - center.repeat_interleave(8, 0)).pow(2)).sum(-1)

    gens = [member_generator(seed, 0) for seed in (1, 2, 3)]
    result = sgld_llc(loss, center, torch.zeros(3, dtype=torch.float64), nbeta, settings, gens)
    a = nbeta.view(-1, 1) * lam + settings.localization
    exact = 0.5 * (nbeta.view(-1, 1) * lam / (a * (1 - settings.lr * a / 4))).sum(-1)
    identifiable = (lam > 0).sum(-1) / 2
    spread = result.llc.std(-1) / math.sqrt(8)
    for m in range(3):
        assert abs(result.mean[m] - exact[m]) < 4 * spread[m] + 1e-3, (result.mean, exact, spread)
        assert result.mean[m].item() == pytest.approx(identifiable[m].item(), rel=0.06)
    assert result.failed_chains.tolist() == [0, 0, 0]


def devinterp_estimator():
    """devinterp's `estimate_learning_coeff_with_summary`, from the version the `[devinterp]` extra installs
    (>=1.3.2,<2: 2.x removed it). Skipped where devinterp is not installed, except in CI (CI=true), which
    installs the extra and must run the comparison, not skip it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import devinterp  # noqa: F401  (CI: a missing devinterp is a failure)
    else:
        pytest.importorskip("devinterp", reason="devinterp not installed: pip install -e '.[devinterp]'")
    from importlib.metadata import version

    installed = version("devinterp")
    assert (1, 3) <= tuple(int(x) for x in installed.split(".")[:2]) < (2, 0), (
        f"devinterp {installed} installed; the [devinterp] extra pins >=1.3.2,<2, whose "
        "estimate_learning_coeff_with_summary this test compares with"
    )
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary

    return estimate_learning_coeff_with_summary


def test_llc_matches_devinterp_on_the_same_member():
    """Our estimator and devinterp 1.3's on one trained member with matched settings (nbeta, step size,
    localisation, minibatch size, burn-in, draws, init loss): 8 chains each, means within 4 standard errors.
    And the comparison can tell settings apart: our estimate at 4x the localisation lies far outside it."""
    from torch.utils.data import DataLoader, TensorDataset

    from grokcore.data import member_data
    from grokcore.export import MemberModule
    from grokcore.progress import estimate_member_llc

    estimate_learning_coeff_with_summary = devinterp_estimator()
    cfg = dataclasses.replace(TINY, epochs=10_000, lr=3e-3)
    trainer = PackTrainer([cfg])
    next(r for r in trainer.run() if r.epoch >= 150)
    weights, data = trainer.member_weights(cfg.run_id), member_data(cfg)
    chains, batch = 8, 42  # two minibatches per pass over the 84 training pairs
    settings = SGLDSettings(lr=1e-3, localization=100.0, chains=chains, burnin=20, draws=80, batch_size=batch)
    ours = estimate_member_llc(cfg, weights, settings, epoch=trainer.epoch)
    nbeta = ours.nbeta.item()  # n / log n, n = 84; devinterp's default would be 42 / log 42

    def evaluate(model, batch_):
        tokens, labels = batch_
        return torch.nn.functional.cross_entropy(model(tokens).double(), labels)

    loader = DataLoader(TensorDataset(data.train_tokens, data.train_labels), batch_size=batch, shuffle=True)
    import warnings

    with torch.random.fork_rng(), warnings.catch_warnings():  # devinterp seeds the global RNG per chain
        warnings.simplefilter("ignore")
        theirs = estimate_learning_coeff_with_summary(
            MemberModule(cfg, weights),
            loader,
            evaluate=evaluate,
            optimizer_kwargs=dict(lr=settings.lr, localization=settings.localization, nbeta=nbeta),
            num_chains=chains,
            num_draws=settings.draws,
            num_burnin_steps=settings.burnin,
            init_loss=ours.init_loss.item(),
            seed=0,
            verbose=False,
        )
    their_chains = torch.tensor([theirs[f"llc-chain/{c}"] for c in range(chains)], dtype=torch.float64)
    assert theirs["llc/mean"] == pytest.approx(their_chains.mean().item(), rel=1e-5)

    def z_score(our_chains):
        spread = math.sqrt((our_chains.var() + their_chains.var()).item() / chains)
        return abs(our_chains.mean().item() - their_chains.mean().item()) / spread

    assert z_score(ours.llc[0]) < 4, (ours.llc[0], their_chains)
    assert their_chains.mean() > 0 and ours.mean[0] > 0
    tighter = estimate_member_llc(cfg, weights, dataclasses.replace(settings, localization=400.0), epoch=trainer.epoch)
    assert z_score(tighter.llc[0]) > 8, (tighter.llc[0], their_chains)


# ---- online, with no effect on training ---------------------------------------------------------------


def same(a: dict, b: dict) -> bool:
    """Equal bit for bit, NaN equal to NaN (metrics that do not apply are NaN)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


@pytest.mark.parametrize("batch_size", [None, 32])
def test_progress_on_equals_off_bit_for_bit_and_leaves_the_rng_alone(batch_size):
    base = dataclasses.replace(TINY, epochs=40, batch_size=batch_size)
    members = [dataclasses.replace(base, seed=s, lr=1e-3 * (1 + s)) for s in range(2)]
    off_metrics, _ = train_pack(members)
    on = [dataclasses.replace(m, progress_every=20) for m in members]
    trainer = PackTrainer(on)
    trainer.progress_settings = FAST_LLC
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    on_metrics, progress = [], []
    for report in trainer.run():
        on_metrics += report.metrics
        progress += report.progress
    assert torch.equal(torch.get_rng_state(), rng_before)  # measuring drew nothing from the global RNG
    assert [(p["epoch"]) for p in progress] == [20, 20, 40, 40]
    assert len(on_metrics) == len(off_metrics)
    for a, b in zip(on_metrics, off_metrics, strict=True):
        assert same({k: v for k, v in a.items() if k != "run_id"}, {k: v for k, v in b.items() if k != "run_id"})
    assert all(math.isfinite(p[col.RESTRICTED_LOSS]) and math.isfinite(p[col.LLC_MEAN]) for p in progress)


def test_llc_every_thins_the_llc_to_its_own_cadence():
    """Default llc_every 2: the LLC at multiples of 2 x progress_every, NaN (same columns) in between;
    the other measures at every progress epoch. Called by hand off the cadence, it always runs."""
    trainer = PackTrainer([dataclasses.replace(TINY, epochs=60, progress_every=10)])
    trainer.progress_settings = dataclasses.replace(FAST_LLC, llc_every=2)
    rows = [row for report in trainer.run() for row in report.progress]
    assert [r["epoch"] for r in rows] == [10, 20, 30, 40, 50, 60]
    assert [math.isfinite(r[col.LLC_MEAN]) for r in rows] == [False, True, False, True, False, True]
    assert all(set(col.LLC_COLUMNS) <= set(r) and math.isfinite(r[col.RESTRICTED_LOSS]) for r in rows)
    assert ProgressSettings().llc_every == 2
    assert ProgressSettings().llc_due(1000, 500) and not ProgressSettings().llc_due(1500, 500)
    assert ProgressSettings().llc_due(1234, 500) and ProgressSettings().llc_due(700, 0)
    assert not ProgressSettings(llc=False).llc_due(1000, 500)
    with pytest.raises(ValueError, match="llc_every"):
        ProgressSettings(llc_every=0)


def test_measure_pack_leaves_weights_grads_and_optimizer_untouched():
    trainer = PackTrainer([dataclasses.replace(TINY, seed=s) for s in range(2)])
    run = trainer.run()
    next(run)
    state = {k: v.clone() for k, v in trainer.state_dict()["tensors"].items()}
    trainer.flat.grad.fill_(0.25)
    rows = measure_pack(trainer, FAST_LLC)
    assert len(rows) == 2
    for k, v in trainer.state_dict()["tensors"].items():
        assert torch.equal(v, state[k]), k
    assert bool((trainer.flat.grad == 0.25).all())


def test_columns_are_stable_and_apply_per_member():
    """A pow pack mixing an addition member (m = n = 1) with m = 2: same columns for both, the addition
    measures NaN only where they do not apply; names as documented in grokcore.progress.columns."""
    base = RunConfig(task="pow", p=11, d_model=16, n_heads=2, d_mlp=32, epochs=10, eval_every=10)
    trainer = PackTrainer([base, dataclasses.replace(base, exp_m=2, seed=1)])
    add_row, pow_row = measure_pack(trainer, FAST_LLC)
    expected = col.embed_columns(11) + col.fourier_columns(11) + col.LLC_COLUMNS
    assert list(add_row) == list(pow_row) == expected
    assert all(math.isfinite(add_row[c]) for c in (col.RESTRICTED_LOSS, col.EXCLUDED_LOSS, col.GRID_LOSS))
    assert all(math.isnan(pow_row[c]) for c in (col.RESTRICTED_LOSS, col.EXCLUDED_LOSS, col.LOGIT_COS_FVE))
    assert math.isfinite(pow_row[col.embed_norm(1)]) and math.isfinite(pow_row[col.LLC_MEAN])
    # the grid loss is the loss over every pair: the clean train and test losses weighted by their sizes
    values = dict(zip(METRIC_COLUMNS, trainer._metrics()[0].tolist(), strict=True))
    n_train = int(trainer.data["train_count"][0])
    expected_grid = (n_train * values["train_clean/loss"] + (121 - n_train) * values["test/loss"]) / 121
    assert add_row[col.GRID_LOSS] == pytest.approx(expected_grid, rel=1e-5)


def test_a_member_measures_the_same_alone_or_in_a_pack():
    members = [dataclasses.replace(TINY, seed=s, lr=2e-3) for s in range(3)]
    alone = PackTrainer(members[1:2])
    pack = PackTrainer(members)
    (row_alone,) = measure_pack(alone, FAST_LLC)
    row_pack = measure_pack(pack, FAST_LLC)[1]
    for k, v in row_alone.items():
        assert row_pack[k] == pytest.approx(v, rel=1e-4, abs=1e-6, nan_ok=True), k


# ---- the LLC of a member's weights, without a live trainer ----------------------------------------


@pytest.mark.parametrize("batch_size", [None, 16])
def test_member_llc_from_weights_equals_the_live_pack(tmp_path, batch_size):
    """estimate_member_llc on a member's weights (from the live pack, and read back with load_member) at the
    pack's epoch gives the pack's estimate for that member: bit for bit for a pack of one, to float rounding
    for a member of a larger pack (its matmuls are batched with the others')."""
    from grokcore.export import load_member, save_member
    from grokcore.progress import estimate_member_llc

    settings = SGLDSettings(chains=3, burnin=3, draws=5, batch_size=batch_size)
    members = [dataclasses.replace(TINY, seed=s, lr=3e-3) for s in range(2)]
    pack, alone = PackTrainer(members), PackTrainer(members[1:])
    for trainer in (pack, alone):
        next(trainer.run())  # epoch 10
    live_pack, live_alone = estimate_llc(pack, settings), estimate_llc(alone, settings)
    cfg, weights = load_member(save_member(tmp_path / "m1", members[1], pack.member_weights(members[1].run_id)))
    assert cfg == members[1]
    from_file = estimate_member_llc(cfg, weights, settings, epoch=10)
    from_trainer = estimate_member_llc(members[1], pack.member_weights(members[1].run_id), settings, epoch=10)
    for field in ("llc", "trace", "init_loss", "nbeta"):
        assert torch.equal(getattr(from_file, field), getattr(live_alone, field)), field
        assert torch.equal(getattr(from_trainer, field), getattr(from_file, field)), field
        torch.testing.assert_close(getattr(from_file, field)[0], getattr(live_pack, field)[1], rtol=1e-5, atol=1e-7)
    assert not torch.equal(live_pack.llc[0], live_pack.llc[1])  # the two members' estimates differ
    # another epoch seeds other noise: the estimate is not a constant of the weights
    assert not torch.equal(estimate_member_llc(cfg, weights, settings, epoch=20).llc, from_file.llc)


def test_member_llc_on_other_data_and_bad_weights():
    """data=(tokens, labels) measures on other labels: init_loss is the loss on them (the clean labels of a
    noisy member give its train_clean/loss); weights that do not fit the config are refused by name."""
    from grokcore.data import member_data
    from grokcore.progress import estimate_member_llc

    cfg = dataclasses.replace(TINY, noise="uniform", noise_fraction=0.5, lr=3e-3)
    trainer = PackTrainer([cfg])
    report = next(trainer.run())
    data = member_data(cfg)
    weights = trainer.member_weights(cfg.run_id)
    settings = SGLDSettings(chains=1, burnin=0, draws=2)
    noisy = estimate_member_llc(cfg, weights, settings)
    clean = estimate_member_llc(cfg, weights, settings, data=(data.train_tokens, data.train_clean_labels))
    assert noisy.init_loss.item() == pytest.approx(report.metrics[0]["train/loss"], rel=1e-6)
    assert clean.init_loss.item() == pytest.approx(report.metrics[0]["train_clean/loss"], rel=1e-6)
    assert noisy.nbeta.item() == pytest.approx(len(data.train_labels) / math.log(len(data.train_labels)))
    with pytest.raises(ValueError, match=r"embed.W_E"):
        estimate_member_llc(cfg, weights | {"embed.W_E": torch.zeros(3, 3)}, settings)
    with pytest.raises(ValueError, match=r"unembed.W_U"):
        estimate_member_llc(cfg, {k: v for k, v in weights.items() if k != "unembed.W_U"}, settings)

"""A synthetic sweep with every progress column measure_pack writes, with known answers, for the report tests.

(a + b) mod 13; train fraction {0.3, 0.5} x weight decay {0.5, 1.0} x seeds {0, 1}, 5000 epochs, evaluated
and measured every 100 epochs. Known answers:

- grokking epoch G = 1000 / weight_decay at train fraction 0.5 and twice that at 0.3; tf 0.3 / wd 0.5 never
  generalises within the budget (4000 would be within it: it is made to fail, a memorisation member);
- restricted loss is the test loss G / 2 epochs ahead, so it first reaches 0.1 at G / 2 (test loss at G);
  never for the member that does not generalise;
- from G / 2 on, the only key frequency is 2 + seed and the embedding is the circle of that frequency;
- the LLC is estimated at multiples of 200 epochs only (llc_every 2) and ends at 100 tf / wd + seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import analysis_synthetic as synthetic

from grokcore.progress import columns as col

P = 13
EPOCHS = 5000
EVERY = 100
LLC_EVERY = 200
TRAIN_FRACTIONS = (0.3, 0.5)
WEIGHT_DECAYS = (0.5, 1.0)
SEEDS = (0, 1)
LOSS = 0.1


def gen_epoch(tf: float, wd: float) -> int | None:
    if tf == 0.3 and wd == 0.5:
        return None
    return int(1000 / wd * (1 if tf == 0.5 else 2))


def key_frequency(seed: int) -> int:
    return 2 + seed


def final_llc(tf: float, wd: float, seed: int) -> float:
    return 100 * tf / wd + seed


def members() -> list[synthetic.Member]:
    out = []
    for tf in TRAIN_FRACTIONS:
        for wd in WEIGHT_DECAYS:
            for seed in SEEDS:
                out.append(
                    synthetic.Member(
                        config={
                            "task": "add",
                            "p": P,
                            "train_fraction": tf,
                            "weight_decay": wd,
                            "seed": seed,
                            "epochs": EPOCHS,
                            "eval_every": EVERY,
                            "progress_every": EVERY,
                            "d_model": 8,
                            "n_heads": 2,
                            "d_mlp": 16,
                        },
                        mem_epoch=200,
                        gen_epoch=gen_epoch(tf, wd),
                    )
                )
    return out


def test_loss(epoch: int, grok: int | None) -> float:
    return 5.0 * (1 - synthetic.accuracy(epoch, grok)) + 1e-3  # as analysis_synthetic.metrics_rows


def progress_rows(member: synthetic.Member) -> list[dict]:
    cfg = member.run_config
    grok = member.gen_epoch
    k_key = key_frequency(cfg.seed)
    rows = []
    for epoch in range(EVERY, cfg.epochs + 1, EVERY):
        formed = grok is not None and epoch >= grok // 2
        row = {
            "run_id": member.run_id,
            "epoch": epoch,
            col.RESTRICTED_LOSS: test_loss(epoch + grok // 2, grok) if grok is not None else 2.0,
            col.EXCLUDED_LOSS: 1.0 + epoch / cfg.epochs,
            col.GRID_LOSS: test_loss(epoch, grok),
        }
        keys = [k_key] if formed else list(range(1, P // 2 + 1))
        for k in range(1, P // 2 + 1):
            row[col.embed_norm(k)] = 10.0 if formed and k == k_key else 1.0
        for i in range(col.MAX_KEY_FREQS):
            row[col.key_freq(i)] = float(keys[i]) if i < len(keys) else math.nan
        row[col.N_KEY] = float(len(keys))
        row[col.EMBED_KEY_FRAC] = 100 / (100 + P // 2 - 1) if formed else 1.0
        for t in range(P):
            angle = 2 * math.pi * k_key * t / P
            x, y = (math.cos(angle), math.sin(angle)) if formed else (t / P, (t * t % P) / P)
            row[col.pc_coord(0, t)], row[col.pc_coord(1, t)] = x, y
        for i in range(col.N_PCA):
            row[col.pca_var(i)] = [0.5, 0.5, 0.0][i] if formed else 1 / 3
        llc = final_llc(cfg.train_fraction, cfg.weight_decay, cfg.seed) * epoch / cfg.epochs
        due = epoch % LLC_EVERY == 0
        row[col.LLC_MEAN] = llc if due else math.nan
        row[col.LLC_STD] = 1.0 if due else math.nan
        rows.append(row)
    return rows


def write_progress_sweep(root: Path, name: str = "progress") -> Path:
    ms = members()
    sweep_dir = synthetic.write_sweep(
        root,
        name,
        ms,
        axes={"train_fraction": list(TRAIN_FRACTIONS), "weight_decay": list(WEIGHT_DECAYS), "seed": list(SEEDS)},
        base={"task": "add", "p": P, "epochs": EPOCHS, "progress_every": EVERY},
    )
    synthetic.write_parts(sweep_dir / "progress", [r for m in ms for r in progress_rows(m)], 2)
    return sweep_dir

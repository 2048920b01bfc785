"""Nanda et al.'s restricted and excluded losses on the key frequencies of a member's last checkpoint,
held fixed for every checkpoint (the paper's definition), next to the key frequencies re-chosen at each
evaluation (what the online progress rows use); recomputed from the sweep's weight snapshots, no
retraining. Writes the progress table the README's numbers and figures are read from:

    python reproductions/nanda/fixed_keys.py results/repro-nanda   # -> reproductions/nanda/data/progress.parquet

The per-evaluation losses recomputed here from the snapshots are compared with the recorded online
ones (they must agree to float precision), so the fixed-set losses come from the same computation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from grokcore.progress import columns as col
from grokcore.progress.fourier import excluded_loss, frequency_norms, key_frequencies, restricted_loss
from grokcore.progress.pack import ProgressSettings, grid_outputs, grid_tokens, train_grid_index
from grokcore.progress.registry import modulus
from grokcore.snapshots import SnapshotFiles, pack_at

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reproductions/_table.py, shared by the scripts
from _table import table_dir  # noqa: E402

NAME = "nanda"
PROGRESS_FILE = "progress.parquet"
RESTRICTED_FIXED = "restricted_loss_fixed"
EXCLUDED_FIXED = "excluded_loss_fixed"
RESTRICTED_EACH = "restricted_loss_each"  # recomputed from the snapshot with that evaluation's key frequencies
EXCLUDED_EACH = "excluded_loss_each"
FINAL_KEYS = "final_keys"  # the fixed set, as "6 8 7"
AGREEMENT = 1e-6  # largest relative gap allowed between the recomputed and the online per-evaluation losses


def padded(keys: list[int]) -> torch.Tensor:
    """One member's key frequencies in key_frequencies' layout: (1, MAX_KEY_FREQS), 0 on empty slots."""
    return torch.tensor([keys + [0] * (col.MAX_KEY_FREQS - len(keys))])


def member_losses(files: SnapshotFiles, run_id: str, entries: list[dict]) -> pd.DataFrame:
    """Restricted and excluded loss at every snapshot of one member, on its final key frequencies and
    on each snapshot's own."""
    cfg, last = files.load(run_id, entries=entries)
    trainer = pack_at([cfg], [last], entries[-1]["epoch"])  # the member's training pairs and model
    p = modulus(cfg)
    tokens = grid_tokens(cfg)
    layout = cfg.token_layout.split()
    labels = ((tokens[:, layout.index("a")] + tokens[:, layout.index("b")]) % p).unsqueeze(0)
    index, weight = train_grid_index(cfg, trainer.data["train_tokens"], trainer.data["train_weight"])
    train_labels = trainer.data["train_labels"]
    fraction = ProgressSettings().key_fraction

    def keys_of(weights: dict[str, torch.Tensor]) -> torch.Tensor:
        norms = frequency_norms(weights["embed.W_E"][:, :p].to(torch.float64))
        return key_frequencies(norms, fraction, col.MAX_KEY_FREQS)[0]

    final = keys_of({k: v.unsqueeze(0) for k, v in last.items()})
    rows = []
    with torch.no_grad():
        for entry in entries:
            _, w = files.load(run_id, entry["epoch"], entries=entries)
            weights = {k: v.unsqueeze(0) for k, v in w.items()}
            logits = grid_outputs(trainer.model, weights, tokens)[0].to(torch.float64)
            row = {"run_id": run_id, "epoch": int(entry["epoch"])}
            for keys, restricted, excluded in (
                (final, RESTRICTED_FIXED, EXCLUDED_FIXED),
                (keys_of(weights), RESTRICTED_EACH, EXCLUDED_EACH),
            ):
                row[restricted] = float(restricted_loss(logits, labels, keys)[0])
                row[excluded] = float(excluded_loss(logits, keys, index, train_labels, weight)[0])
            row[FINAL_KEYS] = " ".join(str(int(k)) for k in final[0] if k > 0)
            rows.append(row)
    return pd.DataFrame(rows).drop_duplicates("epoch", keep="last")  # an event on a scheduled epoch


def progress_table(sweep_dir: str | Path, progress: pd.DataFrame) -> pd.DataFrame:
    """The online progress rows the figures draw (key frequencies, embedding norms, losses), joined with
    the losses recomputed from the snapshots; raises when the recomputed per-evaluation losses differ
    from the online ones."""
    files = SnapshotFiles(sweep_dir)
    entries = files.list()
    if not entries:  # spec_p113.yaml ran without snapshots: only the re-chosen key frequencies
        print(f"{sweep_dir}: no weight snapshots, so no losses on the fixed final key frequencies", file=sys.stderr)
        out = progress.loc[progress["epoch"] > 0].copy()
        return out.assign(**{RESTRICTED_FIXED: np.nan, EXCLUDED_FIXED: np.nan, FINAL_KEYS: ""})
    by_member: dict[str, list[dict]] = {}
    for e in entries:
        by_member.setdefault(e["run_id"], []).append(e)
    recomputed = pd.concat([member_losses(files, r, es) for r, es in sorted(by_member.items())], ignore_index=True)
    kept = [
        col.N_KEY,
        col.EMBED_KEY_FRAC,
        col.GRID_LOSS,
        col.RESTRICTED_LOSS,
        col.EXCLUDED_LOSS,
        *[col.key_freq(i) for i in range(col.MAX_KEY_FREQS)],
        *[c for c in progress.columns if c.startswith(col.EMBED_NORM_PREFIX)],
    ]
    online = progress.loc[progress["epoch"] > 0, ["run_id", "epoch", *kept]]
    out = online.merge(recomputed, on=["run_id", "epoch"], how="left", validate="one_to_one")
    for recorded, again in ((col.RESTRICTED_LOSS, RESTRICTED_EACH), (col.EXCLUDED_LOSS, EXCLUDED_EACH)):
        gap = np.abs(out[again] - out[recorded]) / np.maximum(np.abs(out[recorded]), 1e-12)
        if not (gap <= AGREEMENT).all():
            raise SystemExit(
                f"{recorded}: recomputed from the snapshots differs from the online value by {gap.max():.3g}"
            )
    return out.drop(columns=[RESTRICTED_EACH, EXCLUDED_EACH]).sort_values(["run_id", "epoch"]).reset_index(drop=True)


def read_progress(name: str = NAME) -> pd.DataFrame:
    return pd.read_parquet(table_dir(name) / PROGRESS_FILE)


def main(argv: list[str] | None = None) -> int:
    from analysis import load_sweep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="the finished sweep, with snapshots: results/repro-nanda")
    parser.add_argument("--name", default=NAME, help="the tables' folder under reproductions/ (nanda/p113 for p = 113)")
    args = parser.parse_args(argv)
    table = progress_table(args.sweep, load_sweep(args.sweep).progress)
    path = table_dir(args.name) / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False, compression="zstd")
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size / 1024:.0f} KB, {len(table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

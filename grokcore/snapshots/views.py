"""What the report draws of members' snapshots, as plain rows (analysis/snapshot_figures.py draws them)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from grokcore.data import member_data
from grokcore.progress.fourier import frequency_norms
from grokcore.snapshots.files import SnapshotFiles
from grokcore.snapshots.rebuild import hooked_member
from grokcore.task import FOURIER


def snapshot_views(
    sweep_dir: str | os.PathLike, run_ids: Sequence[str], max_examples: int = 512
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a report draws of these members' snapshots over training, as plain rows (pure compute):

    - spectrum: {run_id, epoch, frequency, norm}: the embedding's Fourier spectrum (grokcore.progress
      frequency_norms of W_E's operand rows), for tasks with the fourier measure;
    - attention: {run_id, epoch, head, key_pos, attention}: the first layer's attention from the last
      position to each position, averaged over the member's first `max_examples` test examples
      (transformers only)."""
    spectrum: list[dict[str, Any]] = []
    attention: list[dict[str, Any]] = []
    files = SnapshotFiles(sweep_dir)
    listed = files.list()
    for run_id in run_ids:
        entries = [e for e in listed if e["run_id"] == run_id]
        for entry in entries:
            cfg, weights = files.load(run_id, entry["epoch"], entries=entries)
            epoch = entry["epoch"]
            if FOURIER in cfg.task_def.measures:
                p = cfg.task_def.modulus
                norms = frequency_norms(weights["embed.W_E"][:p].double().unsqueeze(0))[0]
                spectrum += [
                    {"run_id": run_id, "epoch": epoch, "frequency": k + 1, "norm": float(v)}
                    for k, v in enumerate(norms.tolist())
                ]
            if cfg.model == "transformer":
                tokens = member_data(cfg).test_tokens[:max_examples]
                with torch.no_grad():
                    _, cache = hooked_member(cfg, weights).run_with_cache(
                        tokens.unsqueeze(0), names_filter="blocks.0.attn.hook_pattern"
                    )
                pattern = cache["blocks.0.attn.hook_pattern"][0, :, :, -1].mean(0)  # (head, key_pos)
                attention += [
                    {"run_id": run_id, "epoch": epoch, "head": h, "key_pos": k, "attention": float(a)}
                    for h, row in enumerate(pattern.tolist())
                    for k, a in enumerate(row)
                ]
    return spectrum, attention

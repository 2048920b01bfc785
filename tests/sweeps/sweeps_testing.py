"""Shared by the sweeps tests (imported by name: conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
from pathlib import Path

# A tiny sweep: 8 members of (a + b) mod 11 in two packs; each pack trains in about a second.
TINY = """\
name: tiny
base: {task: add, p: 11, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 200, eval_every: 20}
axes:
  train_fraction: [0.4, 0.7]
  weight_decay: [0.5, 1.0]
replicates: 2
pack_size: 4
checkpoint_every_s: 0.2
report_every_s: 0.5
max_failures: 0
"""
TINY_MEMBERS, TINY_PACKS, TINY_EVALS = 8, 2, 10


def assert_bad_spec(directory: Path, text: str, fragment: str, allowed: str | None, expand: bool = True) -> None:
    """The spec fails with one line `<file>: <field>: ...` holding `fragment` (and `allowed`, if given);
    `expand` also expands its members, where grid errors are found."""
    import pytest

    from sweeps.spec import SpecError, load_spec

    path = write_spec(directory, text, "bad.yaml")
    with pytest.raises(SpecError) as info:  # noqa: PT012 - loading or expanding: either may raise
        spec = load_spec(path)
        if expand:
            spec.members()
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message, message
    if allowed:
        assert allowed in message, message
    assert "\n" not in message


def write_spec(directory: Path, text: str, name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


# Slower: 8 members of (a + b) mod 17 for 1500 epochs in two packs (several seconds each), so a
# test can interrupt them midway.
SLOW = """\
name: resumable
base: {task: add, p: 17, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 1500, eval_every: 20}
axes:
  train_fraction: [0.4, 0.7]
  weight_decay: [0.5, 1.0]
replicates: 2
pack_size: 4
checkpoint_every_s: 0.5
report_every_s: 1
"""
SLOW_MEMBERS, SLOW_EVALS = 8, 75


def records(sweep: Path) -> list[dict]:
    """The pack commit records of a sweep folder, as they are right now."""
    import json

    out = []
    for path in sweep.glob("checkpoints/packs/*/state.json"):
        with contextlib.suppress(OSError, json.JSONDecodeError):
            out.append(json.loads(path.read_text()))
    return out


def assert_rows_once(sweep: Path, run_ids: list[str], evals: int) -> None:
    """Exactly one runs row per member and one metrics row per (member, evaluation)."""
    import pyarrow.parquet as pq

    runs = pq.read_table(sweep / "runs").to_pandas()
    metrics = pq.read_table(sweep / "metrics").to_pandas()
    assert sorted(runs.run_id) == sorted(run_ids)
    assert not metrics.duplicated(["run_id", "epoch"]).any()
    assert len(metrics) == len(run_ids) * evals
    assert set(metrics.run_id) == set(run_ids)

"""Member snapshots: copies of a member's weights at chosen epochs, one module per job.

    schedule = SnapshotSchedule(every=100, events=("train_99", "test_99", "end"))
    trainer = PackTrainer(configs, snapshots=schedule)
    for report in trainer.run():
        report.snapshots              # Snapshot(run_id, epoch, event, weights) taken since the last report

- `schedule`: which epochs keep a member's weights (SnapshotSchedule) and a kept copy (Snapshot);
  the trainer imports it.
- `file_format`: the safetensors file that holds a batch of snapshots (written by sweeps/snapshots.py).
- `files`: reading a sweep's snapshot files, local or on an object store (SnapshotFiles,
  list_snapshots, load_snapshot), without Ray or a GPU.
- `rebuild`: a pack (pack_at) or one hooked member (hooked_member) from snapshot weights.
- `views`: what the report draws of them (snapshot_views), as plain rows.

Names load lazily from their modules, so `from grokcore.snapshots import SnapshotSchedule` inside
the trainer does not import the trainer again through `rebuild`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "schedule": ("EVENTS", "RENAMED_EVENTS", "SCHEDULED", "DTYPES", "SnapshotSchedule", "Snapshot"),
    "file_format": ("INDEX_KEY", "CONFIGS_KEY", "SNAPSHOT_DIR", "snapshot_tensors", "header_metadata"),
    "files": ("SnapshotFiles", "list_snapshots", "load_snapshot"),
    "rebuild": ("pack_at", "hooked_member"),
    "views": ("snapshot_views",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"grokcore.snapshots.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'grokcore.snapshots' has no attribute {name!r}")

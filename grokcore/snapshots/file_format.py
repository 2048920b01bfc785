"""The snapshot file format: one safetensors file per batch of snapshots.

Tensors are named `<run_id>/<epoch>/<param>`; the metadata holds an index (`grok.snapshots`:
[{run_id, epoch, event}]) and each member's config (`grok.configs`), so a file is readable with
safetensors alone, without Ray or a GPU. sweeps/snapshots.py writes these files under the sweep's
commit invariant; grokcore.snapshots.files reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from torch import Tensor

from grokcore.config import RunConfig
from grokcore.layout import SNAPSHOT_DIR as SNAPSHOT_DIR  # re-exported: grokcore.snapshots names it
from grokcore.snapshots.schedule import Snapshot

INDEX_KEY = "grok.snapshots"
CONFIGS_KEY = "grok.configs"


def snapshot_tensors(
    snapshots: Sequence[Snapshot], configs: dict[str, RunConfig]
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(tensors, metadata) of a snapshot file holding these snapshots; `configs` by run_id."""
    tensors: dict[str, Tensor] = {}
    for s in snapshots:
        for name, t in s.weights.items():
            tensors[f"{s.run_id}/{s.epoch}/{name}"] = t.detach().contiguous().cpu()
    index = [{"run_id": s.run_id, "epoch": s.epoch, "event": s.event} for s in snapshots]
    ids = sorted({s.run_id for s in snapshots})
    metadata = {INDEX_KEY: json.dumps(index), CONFIGS_KEY: json.dumps({r: configs[r].to_dict() for r in ids})}
    return tensors, metadata


def header_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file's bytes (the format: an 8-byte little-endian header
    length, then the JSON header), without decoding its tensors."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]).get("__metadata__", {})

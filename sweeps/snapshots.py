"""Member snapshots in a sweep's results: one safetensors file per commit of a pack.

    snapshots/part-<pack>-<seq>.safetensors     tensors <run_id>/<epoch>/<param>, index + configs in the metadata

run_pack's commit() writes the snapshots taken since its previous commit under the same seq as
that commit's Parquet parts, before the commit record; so the commit invariant of
sweeps/parquet.py (one home: SweepStore.uncommitted, over COMMITTED_DIRS) covers them: a crash
before the record leaves a file that the resume deletes with the other parts, and the redone
epochs write it again, so snapshots are never lost or duplicated. The format is
grokcore.snapshots' (readable with safetensors alone, grokcore.snapshots.load_snapshot).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from grokcore.config import RunConfig
from grokcore.layout import SNAPSHOT_DIR, part_name
from sweeps.parquet import SweepStore


def part_path(pack_id: str, seq: int) -> str:
    return f"{SNAPSHOT_DIR}/{part_name(pack_id, seq, '.safetensors')}"


def write_snapshots(
    store: SweepStore, pack_id: str, seq: int, snapshots: Sequence[Any], configs: dict[str, RunConfig]
) -> str:
    """One file of these snapshots (grokcore.snapshots.Snapshot), whole or not at all."""
    from safetensors.torch import save

    from grokcore.snapshots import snapshot_tensors

    tensors, metadata = snapshot_tensors(snapshots, configs)
    rel = part_path(pack_id, seq)
    store.write_bytes(rel, save(tensors, metadata=metadata))
    return rel


def purge_snapshots(store: SweepStore, pack_id: str, run_ids: set[str]) -> int:
    """Rewrite a pack's committed snapshot files without these members (they train again from
    epoch 0, as their metrics rows are purged); returns the snapshots removed."""
    from safetensors.torch import load, save

    from grokcore.snapshots import CONFIGS_KEY, INDEX_KEY, header_metadata

    removed = 0
    for part in store.pack_parts(SNAPSHOT_DIR, pack_id):
        data = store.read_bytes(part.path)
        if data is None:
            continue
        meta = header_metadata(data)
        index = json.loads(meta[INDEX_KEY])
        keep = [e for e in index if e["run_id"] not in run_ids]
        if len(keep) == len(index):
            continue
        removed += len(index) - len(keep)
        if not keep:
            store.delete_parts([part])
            continue
        tensors = {k: v for k, v in load(data).items() if k.split("/", 1)[0] not in run_ids}
        configs = {r: c for r, c in json.loads(meta[CONFIGS_KEY]).items() if r not in run_ids}
        store.write_bytes(
            part.path.removeprefix(store.root + "/"),
            save(tensors, metadata={INDEX_KEY: json.dumps(keep), CONFIGS_KEY: json.dumps(configs)}),
        )
    return removed


def storage_estimate(schedule: dict[str, Any] | None, members: Sequence[RunConfig]) -> tuple[int, int]:
    """(snapshots, bytes) at most for these members under a spec's `snapshots:` setting."""
    if not schedule:
        return 0, 0
    from grokcore.snapshots import SnapshotSchedule

    s = SnapshotSchedule.from_dict(schedule)
    counts = [s.max_snapshots(m) for m in members]
    return sum(counts), sum(n * s.bytes_per_snapshot(m) for n, m in zip(counts, members, strict=True))


def describe_storage(schedule: dict[str, Any] | None, members: Sequence[RunConfig]) -> str | None:
    """The dry run's line on snapshot storage, or None without snapshots."""
    if not schedule:
        return None
    n, size = storage_estimate(schedule, members)
    return (
        f"  snapshots    at most {n:,} ({n / max(len(members), 1):.0f} per member, {schedule['dtype']}), "
        f"{_bytes(size)} under snapshots/"
    )


def search_storage(schedule: dict[str, Any] | None, spec: Any, budget: int) -> tuple[int, int]:
    """(snapshots, bytes) at most for a search of `budget` members over the spec's axes: each member
    costs at most what the costliest point of the space costs. A member's cost depends only on its
    shape and epoch budget, which grow with their fields, so the points tried are every combination
    of each axis's values (a range: its two ends) over the axes that change the cost at all; points
    that are no valid config are left out."""
    if not schedule:
        return 0, 0
    from grokcore.snapshots import SnapshotSchedule

    s = SnapshotSchedule.from_dict(schedule)

    def cost(params: dict[str, Any]) -> tuple[int, int] | None:
        try:
            m = spec.member(params)
        except ValueError:  # SpecError, ConfigError: not a valid member
            return None
        n = s.max_snapshots(m)
        return n, n * s.bytes_per_snapshot(m)

    def candidates(axis: Any) -> list[Any]:
        if axis.kind in ("grid", "choice"):
            return list(axis.values)
        return list(axis.values[:2])  # (low, high)

    base = cost({})
    varying = [a for a in spec.axes if any(cost({a.field: v}) not in (base, None) for v in candidates(a))]
    worst = (0, 0)  # base alone is no point of the space: its axes' fields may be unset there
    for values in itertools.islice(itertools.product(*(candidates(a) for a in varying)), 4096):
        c = cost({a.field: v for a, v in zip(varying, values, strict=True)})
        if c is not None:
            worst = max(worst, c, key=lambda t: t[1])
    return budget * worst[0], budget * worst[1]


def describe_search_storage(schedule: dict[str, Any] | None, spec: Any, budget: int) -> str | None:
    """A search's dry-run line on snapshot storage (its budget of members), or None without snapshots."""
    if not schedule:
        return None
    n, size = search_storage(schedule, spec, budget)
    return (
        f"  snapshots    at most {n:,} ({n / max(budget, 1):.0f} per member at most, {schedule['dtype']}), "
        f"{_bytes(size)} under snapshots/ for {budget} members"
    )


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n} TB"

"""`grok measure DIR`: progress measures recomputed offline from a sweep's snapshots.

A measure added after a sweep ran (or the LLC where the sweep measured none) is applied to its
snapshots: members of one shape at one snapshot epoch are loaded as a pack
(grokcore.snapshots.pack_at) and measured by grokcore.progress.measure_pack, the function the
trainer calls online, so the rows have the progress table's columns and, for the same pack at the
same epoch, the online values.

Rows land in progress/ as parts of a pseudo-pack `measure`, under the same commit invariant as a
pack's (a part with its seq, then the record with seq + 1; an uncommitted part is removed first).
A (run_id, epoch) that already has a progress row is skipped, so the table never holds two rows
for one member and epoch; replacing existing rows (e.g. with a finer LLC) is not done here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweeps.parquet import SweepStore, progress_schema

MEASURE_PACK = "measure"
MEASURES = ("fourier", "llc", "embed_coords")


def measure_snapshots(sweep_dir: str | Path, measures: Sequence[str] = MEASURES, epochs: Sequence[int] | None = None,
                      device: str = "cpu") -> int:
    """Measure every snapshot (at `epochs`, if given) that has no progress row yet; returns rows written."""
    from grokcore.progress import ProgressSettings, measure_pack
    from grokcore.snapshots import list_snapshots, load_snapshot, pack_at

    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}; known: {', '.join(MEASURES)}")
    sweep_dir = Path(sweep_dir)
    store = SweepStore(str(sweep_dir.parent), sweep_dir.name)
    record = store.read_record(MEASURE_PACK)
    store.delete_uncommitted(MEASURE_PACK, record)
    existing = store.read_table("progress", columns=["run_id", "epoch"])
    done = set() if existing is None else set(zip(existing.column("run_id").to_pylist(),
                                                  existing.column("epoch").to_pylist()))
    todo = [e for e in list_snapshots(sweep_dir) if (e["run_id"], e["epoch"]) not in done
            and (epochs is None or e["epoch"] in epochs)]
    groups: dict[tuple, list[tuple[Any, Any]]] = {}
    for entry in todo:
        cfg, weights = load_snapshot(sweep_dir, entry["run_id"], entry["epoch"])
        groups.setdefault((cfg.shape_key(), entry["epoch"]), []).append((cfg, weights))
    settings = ProgressSettings(fourier="fourier" in measures, llc="llc" in measures,
                                embed_coords="embed_coords" in measures)
    rows: list[dict[str, Any]] = []
    for (_, epoch), members in sorted(groups.items(), key=lambda kv: kv[0][1]):
        trainer = pack_at([c for c, _ in members], [w for _, w in members], epoch, device)
        rows += [{"run_id": c.run_id, "epoch": epoch, **row}
                 for (c, _), row in zip(members, measure_pack(trainer, settings))]
    if not rows:
        return 0
    seq = int(record["seq"]) if record else 0
    columns = {k for r in rows for k in r} - {"run_id", "epoch"}
    store.write_part("progress", MEASURE_PACK, seq, rows, progress_schema(columns))
    store.write_record(MEASURE_PACK, {"pack_id": MEASURE_PACK, "members": [], "seq": seq + 1, "trainer": None,
                                      "done": True, "updated": time.time()})
    return len(rows)

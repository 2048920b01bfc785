"""`grok sweep SPEC --repair`: train again the packs whose committed files are damaged or missing.

Training is deterministic on one machine, so a pack trained again from epoch 0 writes the rows it
wrote before; what survived of its old rows is the check. Around an ordinary run of the sweep:

1. `set_aside`: the packs `grok check` names (sweeps/check.py) lose their files to
   `repair/<pack>/` (same relative paths): commit record first, then every part and snapshot file,
   damaged ones included, then its checkpoints. With no record and no rows the planner hands the
   pack out again under its own id and members (plan() cuts packs from the full expansion). A
   crash in between is finished by the next --repair (a pack already under repair/ moves what is
   left of it); a plain `grok sweep` then finds parts without a record, crash leftovers, and trains
   the pack again all the same.
2. The sweep runs as usual; no other pack's file is touched.
3. `verify`: for each pack set aside whose new record is done, the surviving rows (runs, metrics,
   progress; the snapshot tensors) of its members must equal the new ones, then repair/<pack>/ goes;
   a difference keeps it and is reported (RuntimeError).

Grid sweeps only: a search's members come from its study or bisection state, not from the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

from grokcore.damage import all_problems
from grokcore.layout import REPAIR_DIR, SNAPSHOT_DIR, TABLES, record_path
from sweeps.check import check_sweep
from sweeps.parquet import COMMITTED_DIRS, Part, SweepStore

# runs columns that differ between two trainings of the same member by design (when and where)
NOT_COMPARED = ("trial_id", "wall_seconds", "device")


@dataclass
class RepairResult:
    set_aside: list[str] = field(default_factory=list)  # packs whose files moved to repair/ in this call
    verified: dict[str, int] = field(default_factory=dict)  # pack -> surviving values found equal
    waiting: list[str] = field(default_factory=list)  # packs under repair/ whose new training has not finished


def refuse_search(spec: Any) -> None:
    """--repair re-plans a grid's packs; a search's members are its study's (module docstring)."""
    if spec.search is not None:
        from sweeps.validation import SpecError

        raise SpecError(
            spec.source,
            "search",
            f"--repair trains a grid sweep's packs again; this spec searches "
            f"({spec.search.kind}): grok check DIR names its damaged files",
        )


def describe(result: RepairResult) -> str:
    lines = []
    if result.set_aside:
        lines.append(
            f"repair: {len(result.set_aside)} pack(s) with damaged or missing files set aside under "
            f"{REPAIR_DIR}/ and trained again: {', '.join(result.set_aside)}"
        )
    for pack, n in result.verified.items():
        lines.append(f"repair: pack {pack} trained again; its {n} surviving values are equal to the new ones")
    if result.waiting:
        lines.append(f"repair: pack(s) {', '.join(result.waiting)} not finished yet; run the same command again")
    return "\n".join(lines)


def before_run(spec: Any, store: SweepStore) -> str:
    """run_sweep's hook before planning: steps 1 (module docstring); what to print."""
    refuse_search(spec)
    return describe(set_aside(store)) or "repair: nothing damaged or missing"


def after_run(store: SweepStore) -> str:
    """run_sweep's hook after the run: step 3; what to print (RuntimeError on a difference)."""
    return describe(verify(store)) or "repair: nothing set aside to check"


def set_aside(store: SweepStore) -> RepairResult:
    """Step 1 (module docstring): move the damaged packs' files to repair/<pack>/."""
    result = RepairResult()
    report = check_sweep(store)
    packs = sorted(set(report.packs) | set(_under_repair(store)))
    for pack in packs:
        rel = record_path(pack)
        if store.exists(rel):
            _move(store, pack, rel)
        for folder in COMMITTED_DIRS:
            for part in store.parts(folder, pack):
                _move(store, pack, f"{folder}/{part.name}")
        store.delete_trainers(pack)
        if pack in report.packs:
            result.set_aside.append(pack)
    return result


def verify(store: SweepStore) -> RepairResult:
    """Step 3: compare each retrained pack's rows with its survivors; remove repair/<pack>/ when equal."""
    result = RepairResult()
    differences = []
    for pack in _under_repair(store):
        record = store.read_record(pack)
        if record is None or not record.get("done"):
            result.waiting.append(pack)
            continue
        compared, diff = _compare(store, pack)
        if diff:
            differences.append(f"pack {pack}: {diff}")
            continue
        result.verified[pack] = compared
        store._delete_dir(store.path(REPAIR_DIR, pack))
    if not _under_repair(store):
        store._delete_dir(store.path(REPAIR_DIR))
    if differences:
        raise RuntimeError(
            "repaired rows differ from the surviving ones (kept under "
            f"{store.path(REPAIR_DIR)}): " + "; ".join(differences)
        )
    return result


def _under_repair(store: SweepStore) -> list[str]:
    infos = store.fs.get_file_info(pafs.FileSelector(store.path(REPAIR_DIR), allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def _move(store: SweepStore, pack: str, rel: str) -> None:
    target = store.path(REPAIR_DIR, pack, rel)
    store.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    store.fs.move(store.path(rel), target)


def _survivors(store: SweepStore, pack: str, folder: str) -> list[Part]:
    """The readable files set aside for this pack in one folder."""
    root = store.path(REPAIR_DIR, pack, folder)
    infos = store.fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    parts = [Part(folder, i.path, pack, 0, i.size) for i in infos if i.type == pafs.FileType.File]
    bad = {path for path, _ in all_problems(store.fs, [(p.path, p.size) for p in parts])}
    return [p for p in parts if p.path not in bad]


def _compare(store: SweepStore, pack: str) -> tuple[int, str | None]:
    """(values compared, the first difference or None) between the survivors and the new rows."""
    compared = 0
    for table in TABLES:
        keys = ["run_id"] if table == "runs" else ["run_id", "epoch"]
        old = _rows(store, table, _survivors(store, pack, table), keys)
        new = _rows(store, table, store.parts(table, pack), keys)
        for key, row in old.items():
            if key not in new:
                return compared, f"{table} row {key} survived but was not written again"
            for column, value in row.items():
                if column in NOT_COMPARED:
                    continue
                if not _same(value, new[key].get(column)):
                    return compared, f"{table} {key} {column}: {value!r} before, {new[key].get(column)!r} now"
                compared += 1
    n, diff = _compare_snapshots(store, pack)
    return compared + n, diff


def _rows(store: SweepStore, table: str, parts: list[Part], keys: list[str]) -> dict[tuple, dict[str, Any]]:
    data = store.read_table(table, parts=parts) if parts else None
    rows = data.to_pylist() if data is not None else []
    return {tuple(r[k] for k in keys): r for r in rows if table != "runs" or r.get("status") != "failed"}


def _same(a: Any, b: Any) -> bool:
    """Equal to the bit, NaN equal to NaN (same code, same machine: exact is right here)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _compare_snapshots(store: SweepStore, pack: str) -> tuple[int, str | None]:
    old = _tensors(store, _survivors(store, pack, SNAPSHOT_DIR))
    if not old:
        return 0, None
    new = _tensors(store, store.pack_parts(SNAPSHOT_DIR, pack))
    import torch

    for name, tensor in old.items():
        if name not in new:
            return 0, f"snapshot {name} survived but was not written again"
        if not torch.equal(tensor, new[name]):
            return 0, f"snapshot {name} differs"
    return len(old), None


def _tensors(store: SweepStore, parts: list[Part]) -> dict[str, Any]:
    from safetensors.torch import load

    out: dict[str, Any] = {}
    for part in parts:
        data = store.read_bytes(part.path)
        if data is not None:
            out.update(load(data))
    return out

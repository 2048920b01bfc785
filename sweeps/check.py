"""`grok check DIR`: is every committed file of a sweep whole, and does it hold each row once?

    report = check_sweep(store)      # CheckReport: problems by pack, what was checked
    print(format_check(report))      # exit non-zero when report.problems

What it verifies, from the files alone (no Ray, no training):
- every commit record reads (JSON with an integer seq);
- the key columns (run_id, epoch, the runs outcome) of every table's parts read, page by page;
- every committed part's Parquet footer reads, every committed snapshot file's safetensors header
  reads and the file holds every byte that header promises (grokcore.damage);
- one runs row per member (a member whose pack is done and has none is missing);
- one metrics row per (member, evaluation) and none missing: a member that ended after E epochs
  with eval_every k was evaluated at k, 2k, ... and at E (grokcore's PackTrainer.run), so its
  rows are exactly those epochs; one progress row per (member, epoch).
Uncommitted parts (a crash's leftovers, or a running pack's next batch) are counted, not faulted:
the next `grok sweep` removes them under the commit invariant (sweeps/parquet.py).

`refuse_damaged` is the check every planner runs before touching a sweep (SweepStore's
`delete_crash_leftovers`): a damaged file stops the run with its name, before anything is deleted
or trained; `grok sweep SPEC --repair` (sweeps/repair.py) trains its pack again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from grokcore.damage import DamagedFile, all_problems
from grokcore.layout import SNAPSHOT_DIR, TABLES
from sweeps.parquet import COMMITTED_DIRS, Part, SweepStore, _committed


@dataclass
class Problem:
    kind: str  # damaged | missing | duplicate | unexpected
    text: str
    pack: str | None  # the pack whose files hold it (None: no pack could be named)


@dataclass
class CheckReport:
    uri: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # what was read: records, parts, rows
    leftovers: int = 0  # uncommitted parts (removed by the next grok sweep)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def packs(self) -> list[str]:
        """Packs to train again (`--repair`): every pack a problem names."""
        return sorted({p.pack for p in self.problems if p.pack is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "ok": self.ok,
            "checked": self.checked,
            "leftovers": self.leftovers,
            "packs": self.packs,
            "problems": [vars(p) for p in self.problems],
        }


def committed_files(
    store: SweepStore, records: dict[str, dict[str, Any]], unknown: frozenset[str] = frozenset()
) -> tuple[list[Part], int]:
    """(the committed parts of every folder, failed parts included; the count of uncommitted ones).
    Packs in `unknown` (their record is damaged) are in neither: nothing says which parts count."""
    keep, leftovers = [], 0
    for folder in COMMITTED_DIRS:
        for part in store.parts(folder):
            if part.pack_id in unknown:
                continue
            if part.failed or (part.pack_id in records and _committed(part.seq, records[part.pack_id], folder)):
                keep.append(part)
            else:
                leftovers += 1
    return keep, leftovers


def damaged_files(store: SweepStore, parts: list[Part]) -> dict[str, DamagedFile]:
    """Path -> DamagedFile of each of these parts that cannot be read (footers and headers, concurrently)."""
    return {
        path: store.damaged(path, reason) for path, reason in all_problems(store.fs, [(p.path, p.size) for p in parts])
    }


def refuse_damaged(store: SweepStore, records: dict[str, dict[str, Any]]) -> None:
    """Raise DamagedFile for the first damaged committed file; a planner calls it before it deletes
    or trains anything (a damaged record raised already, in store.records())."""
    found = damaged_files(store, committed_files(store, records)[0])
    if found:
        raise next(iter(found.values()))


def clean_for_restart(store: SweepStore, records: dict[str, dict[str, Any]] | None = None) -> dict[str, int]:
    """What every planner does before its packs (re)start: stop on a damaged committed file, then
    remove crash leftovers (SweepStore.delete_crash_leftovers). Here, not in the store, so that the
    writer (sweeps.parquet) does not import its checker."""
    records = store.records() if records is None else records
    refuse_damaged(store, records)
    return store.delete_crash_leftovers(records)


def check_sweep(store: SweepStore) -> CheckReport:
    report = CheckReport(store.uri)
    bad_records: list[DamagedFile] = []
    records = store.records(collect=bad_records)
    parts, report.leftovers = committed_files(
        store, records, frozenset(e.pack for e in bad_records if e.pack is not None)
    )
    bad_files = damaged_files(store, parts)
    for e in bad_records + list(bad_files.values()):
        report.problems.append(Problem("damaged", e.describe(), e.pack))
    readable = [p for p in parts if p.path not in bad_files]
    by_table = {t: [p for p in readable if p.table == t] for t in TABLES}
    report.checked = {
        "records": len(records) + len(bad_records),
        **{f"{t} parts": len(by_table[t]) for t in TABLES},
        "snapshot files": sum(p.table == SNAPSHOT_DIR for p in readable),
    }

    runs = _frame(store, report, by_table["runs"], ["run_id", "pack_id", "status", "epochs_trained", "eval_every"])
    report.checked["runs rows"] = len(runs)
    real = runs[runs["status"] != "failed"] if len(runs) else runs
    for rid, n in real["run_id"].value_counts().items() if len(real) else ():
        if n > 1:
            pack = real.loc[real["run_id"] == rid, "pack_id"].iloc[0]
            report.problems.append(Problem("duplicate", f"member {rid}: {n} runs rows (one expected)", pack))
    with_row = set(runs["run_id"]) if len(runs) else set()
    for pid, rec in sorted(records.items()):
        missing = [r for r in rec.get("members", []) if r not in with_row]
        if rec.get("done") and not rec.get("abandoned") and missing:
            report.problems.append(
                Problem(
                    "missing",
                    f"pack {pid} is done but {len(missing)} member(s) have no runs row: {', '.join(missing[:4])}",
                    pid,
                )
            )

    metrics = _frame(store, report, by_table["metrics"], ["run_id", "epoch"])
    report.checked["metrics rows"] = len(metrics)
    pack_of = dict(zip(real["run_id"], real["pack_id"], strict=True)) if len(real) else {}
    _check_evaluations(report, metrics, real.drop_duplicates("run_id") if len(real) else real, pack_of)
    progress = _frame(store, report, by_table["progress"], ["run_id", "epoch"])
    report.checked["progress rows"] = len(progress)
    _duplicates(report, progress, "progress", pack_of)
    # rows missing because their file is damaged follow from that damage: one line says it
    hurt = {p.pack for p in report.problems if p.kind == "damaged"}
    report.problems = [p for p in report.problems if p.kind == "damaged" or p.pack not in hurt]
    return report


def _frame(store: SweepStore, report: CheckReport, parts: list[Part], columns: list[str]) -> pd.DataFrame:
    """The columns of these parts; a part whose footer read but whose pages do not is reported and left out."""
    while parts:
        try:
            table = store.read_table(parts[0].table, columns=columns, parts=parts)
        except DamagedFile as e:
            report.problems.append(Problem("damaged", e.describe(), e.pack))
            parts = [p for p in parts if p.name != e.path.rsplit("/", 1)[-1]]
            continue
        if table is not None:
            return table.to_pandas()
        break
    return pd.DataFrame({c: [] for c in columns})


def _duplicates(report: CheckReport, rows: pd.DataFrame, table: str, pack_of: dict[str, str]) -> None:
    twice = rows[rows.duplicated(["run_id", "epoch"], keep="first")]
    for rid, group in twice.groupby("run_id"):
        epochs = sorted(group["epoch"].unique().tolist())
        report.problems.append(
            Problem(
                "duplicate",
                f"member {rid}: {len(group)} {table} row(s) twice, at epoch(s) {_epochs(epochs)}",
                pack_of.get(rid),
            )
        )


def _check_evaluations(report: CheckReport, metrics: pd.DataFrame, runs: pd.DataFrame, pack_of: dict[str, str]) -> None:
    """Against each ended member's own epochs: rows at k, 2k, ... and E exactly (module docstring)."""
    _duplicates(report, metrics, "metrics", pack_of)
    ended = runs.dropna(subset=["epochs_trained"])
    if not len(ended):
        return
    seen = metrics.drop_duplicates(["run_id", "epoch"]).groupby("run_id")["epoch"].apply(set).to_dict()
    for rid, last, every in zip(
        ended["run_id"], ended["epochs_trained"].astype(int), ended["eval_every"].astype(int), strict=True
    ):
        expected = set(range(every, last + 1, every)) | ({last} if last > 0 else set())
        have = seen.get(rid, set())
        if have - expected:
            report.problems.append(
                Problem(
                    "unexpected",
                    f"member {rid}: metrics rows at epoch(s) "
                    f"{_epochs(sorted(have - expected))}, which it never evaluated "
                    f"(it ended at {last}, eval_every {every})",
                    pack_of.get(rid),
                )
            )
        if expected - have:
            report.problems.append(
                Problem(
                    "missing",
                    f"member {rid}: no metrics row at {len(expected - have)} of its "
                    f"{len(expected)} evaluations (epoch(s) "
                    f"{_epochs(sorted(expected - have))})",
                    pack_of.get(rid),
                )
            )


def _epochs(epochs: list[int], shown: int = 6) -> str:
    text = ", ".join(map(str, epochs[:shown]))
    return text + (f" and {len(epochs) - shown} more" if len(epochs) > shown else "")


def format_check(report: CheckReport) -> str:
    checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    lines = [report.uri, f"  checked   {checked}"]
    if report.leftovers:
        lines.append(
            f"  note      {report.leftovers} uncommitted part(s): a running pack's next batch or a crash's "
            "leftovers (the next grok sweep removes them)"
        )
    if report.ok:
        lines.append("  ok        every committed file reads; one runs row per member; every evaluation once")
        return "\n".join(lines)
    by_kind: dict[str, int] = defaultdict(int)
    for p in report.problems:
        by_kind[p.kind] += 1
    lines.append(
        f"  problems  {len(report.problems)} ("
        + ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
        + f") in {len(report.packs)} pack(s)"
    )
    lines += [f"  {p.kind:<9} {p.text}" for p in report.problems]
    lines.append(
        f"  repair    grok sweep SPEC --repair trains pack(s) {', '.join(report.packs)} again "
        "(nothing else is rewritten)"
    )
    return "\n".join(lines)

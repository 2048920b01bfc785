"""`grok status`: how far a sweep has got, read from its Parquet tables and pack records only."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from grokcore.layout import PLAN_FILE, SPEC_FILE, counted_rows
from grokcore.location import filesystem, split_location
from grokcore.verdict import VERDICT_COLUMNS
from sweeps.parquet import SweepStore
from sweeps.slurm_jobs import latest_job
from sweeps.spec import spec_thresholds
from sweeps.verdicts import with_verdicts


@dataclass
class SweepStatus:
    name: str
    uri: str
    planned: int | None  # members in plan.json (None: no plan written yet)
    with_row: int  # members with a runs row
    by_status: dict[str, int] = field(default_factory=dict)
    # by the one rule (grokcore/verdict.py) with the sweep's thresholds, over ended members
    memorised: int = 0
    generalised: int = 0
    grokked: int = 0  # generalised at least grok_delay after memorising
    memorised_only: int = 0  # memorised, not generalised
    thresholds: str = ""  # the rule's thresholds, as the spec set them
    training: int = 0  # members of started, unfinished packs while a driver runs (or none is known)
    interrupted: int = 0  # members of started, unfinished packs whose driver has ended or died
    driver: str | None = None  # running | ended | dead (the sweep's lease, driver.json; None: never taken)
    waiting: int = 0  # planned, no row, pack not started
    packs_done: int = 0
    packs_started: int = 0
    packs_planned: int | None = None
    metric_rows: int = 0
    last_update_s: float | None = None  # seconds since a pack last committed
    slurm_job: dict[str, Any] | None = None  # the newest `grok slurm` job: job_id, state, jobs (sweeps/slurm.py)
    budgets: dict[int, int] = field(default_factory=dict)  # members by the epoch budget they ended at (rounds)
    continuing: int = 0  # ended members going on to a larger budget in a started pack (sweeps/budget.py)
    extended: int = 0  # ended members that went on from a smaller budget (their rows' continued_from)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_sweeps(location: str) -> list[str]:
    """The sweep folders at or directly under location (a sweep folder has plan.json or runs/)."""
    fs, root = filesystem(location)

    def is_sweep(path: str) -> bool:
        return any(fs.get_file_info(f"{path}/{x}").type != pafs.FileType.NotFound for x in (PLAN_FILE, "runs"))

    if is_sweep(root):
        return [location.rstrip("/")]
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return [
        f"{location.rstrip('/')}/{i.base_name}"
        for i in sorted(infos, key=lambda i: i.base_name)
        if i.type == pafs.FileType.Directory and is_sweep(i.path)
    ]


def sweep_status(location: str) -> SweepStatus:
    results, name = split_location(location)
    store = SweepStore(results, name)
    plan = store.read_json(PLAN_FILE) or {}
    planned = plan.get("members")
    thresholds = spec_thresholds(store.read_text(SPEC_FILE), f"{store.uri}/{SPEC_FILE}")
    runs = store.read_table(
        "runs", columns=["run_id", "pack_id", "status", "epochs_trained", "continued_from", *VERDICT_COLUMNS]
    )
    kept = one_row_per_member(with_verdicts(store, runs, thresholds))
    rows = set(kept["run_id"].array.tolist()) if kept is not None else set()
    st = SweepStatus(
        name=name, uri=store.uri, planned=len(planned) if planned is not None else None, with_row=len(rows)
    )
    if kept is not None:
        st.by_status = {str(k): int(v) for k, v in kept["status"].value_counts(sort=False).items()}
        memorised, generalised = kept["epoch_memorised"].notna(), kept["epoch_generalised"].notna()
        st.memorised, st.generalised = int(memorised.sum()), int(generalised.sum())
        st.grokked = int(kept["grokked"].fillna(False).astype(bool).sum())
        st.memorised_only = int((memorised & ~generalised).sum())
        ended = kept[kept["status"] != "failed"]["epochs_trained"].dropna()
        st.budgets = {int(k): int(v) for k, v in ended.value_counts().sort_index().items()}
        st.extended = int(kept["continued_from"].notna().sum()) if "continued_from" in kept.columns else 0
    st.thresholds = (
        f"train acc {thresholds.train_acc:g} / test acc {thresholds.test_acc:g} held "
        f"{thresholds.hold} evaluation(s); grokked: {thresholds.grok_rule()}"
    )
    records = store.records()
    packs = plan.get("packs", {})
    st.packs_planned = len(packs) if packs else None
    started: set[str] = set()
    now = time.time()
    for pid, rec in records.items():
        if rec.get("updated"):
            age = now - float(rec["updated"])
            st.last_update_s = age if st.last_update_s is None else min(st.last_update_s, age)
        if pid not in packs and packs:
            continue
        if rec.get("done"):
            st.packs_done += 1
        elif not rec.get("abandoned"):
            st.packs_started += 1
            started.update(r for r in rec.get("members", []) if r not in rows)
            if kept is not None:  # members with a row in another pack go on there to a larger budget
                going_on = kept["run_id"].isin(rec.get("members", [])) & (kept["pack_id"] != pid)
                st.continuing += int(going_on.sum())
    st.driver = driver_state(store)
    st.slurm_job = latest_job(store)
    if st.driver in ("ended", "dead"):
        st.interrupted = len(started)
    else:
        st.training = len(started)
    if st.driver in ("ended", "dead"):
        st.interrupted += st.continuing
    else:
        st.training += st.continuing
    if planned is not None:
        st.waiting = len([r for r in planned if r not in rows and r not in started])
    st.metric_rows = store.count_rows("metrics")
    return st


def one_row_per_member(runs: pa.Table | None) -> pd.DataFrame | None:
    """The runs rows that count, one per member, by the one rule (`grokcore.layout.counted_rows`)."""
    if runs is None:
        return None
    frame = runs.to_pandas()
    trained = frame["epochs_trained"].to_numpy(dtype=float, na_value=np.nan) if "epochs_trained" in frame else None
    return frame.iloc[counted_rows(frame["run_id"].to_numpy(), frame["status"].to_numpy(), trained)]


def driver_state(store: SweepStore) -> str | None:
    """running, ended, or dead (a writer that holds the sweep's lease no longer, by the lease's rule:
    a killed driver); None where no writer ever took the lease."""
    from sweeps.lease import LEASE_FILE, holder_state

    return holder_state(store.read_json(LEASE_FILE))


def format_status(st: SweepStatus) -> str:
    total = st.planned if st.planned is not None else st.with_row
    ended = ", ".join(f"{n} {s}" for s, n in sorted(st.by_status.items())) or "none"
    lines = [
        f"{st.name}  ({st.uri})",
        f"  members   {total} planned; {st.with_row} ended ({ended})",
        (
            f"  outcome   memorised {st.memorised}, generalised {st.generalised}, grokked {st.grokked}, "
            f"memorised only {st.memorised_only}  ({st.thresholds})"
        ),
        f"  failed    {st.by_status.get('failed', 0)}",
        (
            f"  running   {st.training} in {st.packs_started} started pack(s); {st.waiting} waiting"
            if not st.interrupted
            else f"  stopped   {st.interrupted} in {st.packs_started} unfinished pack(s), no driver running "
            f"(grok sweep again continues them); {st.waiting} waiting"
        ),
        f"  packs     {st.packs_done} done" + (f" of {st.packs_planned}" if st.packs_planned else ""),
        f"  metrics   {st.metric_rows} rows",
    ]
    if len(st.budgets) > 1 or st.continuing or st.extended:
        lines.append(
            "  budgets   ended at "
            + ", ".join(f"{e:,} epochs: {n}" for e, n in st.budgets.items())
            + (f"; {st.extended} went on from a smaller budget" if st.extended else "")
            + (f"; {st.continuing} going on to a larger budget" if st.continuing else "")
        )
    if st.last_update_s is not None:
        lines.append(f"  last commit {st.last_update_s:.0f} s ago")
    if st.slurm_job:
        job = st.slurm_job
        lines.append(
            f"  slurm     job {job['job_id']} {job['state']}"
            + (f" (the newest of {job['jobs']} submitted)" if job["jobs"] > 1 else "")
        )
    return "\n".join(lines)

"""Every member of a sweep as its own run in the trackers researchers use: MLflow, W&B, TensorBoard.

    grok push DIR --to mlflow [TRACKING_URI]     incremental: run it again (or beside the driver)
    grok push DIR --to wandb [WANDB_DIR]         offline runs (`wandb sync` uploads them)
    grok push DIR --to tensorboard LOGDIR        event files, one run folder per member

A Ray Tune trial here is a pack of up to hundreds of members, so Tune's own tracker callbacks
would log one meaningless curve per pack. Pushing reads the committed Parquet rows instead
(`committed_rows`: the parts under each pack's commit record, never a crash leftover), so the
store stays the source of truth: a push can be killed at any point and run again, and it neither
loses nor duplicates a point, because what a tracker already holds is read back from the tracker:

- MLflow (live, incremental): a member's run is found by its `grok.run_id` tag. Its points go in
  `log_batch` calls of whole evaluations, each with the `grok/epoch` sentinel; a batch is one
  transaction on the tracking server, so the sentinel's last step says which evaluations are in.
  Timestamps are the epoch itself (not the wall clock), so even a batch logged twice would be the
  same rows of MLflow's metric table. When the member's runs row is committed its config (params),
  outcome (tags) and status (FINISHED, or FAILED for a failed or diverged member) follow.
- W&B (offline) and TensorBoard: a member is written whole once it has ended (its runs row is
  committed). W&B: a run whose offline folder lacks our done-marker (a push killed mid-member)
  is deleted and written again. TensorBoard: written under a hidden name and renamed.

Each tracker is an optional extra (`pip install 'grokking-sweeps[mlflow]'`, `[wandb]`,
`[tensorboard]`); without it the project installs and runs as before, and asking for it says which
extra to install before anything is read.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from grokcore.layout import SPEC_FILE, TABLES
from grokcore.records import OUTCOME_COLUMNS, RUN_KEYS
from sweeps.parquet import SweepStore, split_location

TRACKERS = ("mlflow", "wandb", "tensorboard")
EXTRAS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb"), "tensorboard": ("tensorboard", "tensorboard")}
"""tracker -> (module it imports, the extra that installs it)."""
SENTINEL = "grok/epoch"
"""Logged last with every evaluation: its last step is the last evaluation a tracker holds."""
MAX_BATCH = 1000
"""MLflow's limit of metrics per log_batch call."""
TAG_PREFIX = "grok."
FAILED_STATUSES = ("failed", "diverged")
WANDB_MARKER = "grok-pushed.json"
"""Written into a W&B offline run folder after its run finished: the run is whole."""


class TrackerError(ValueError):
    """A tracker that cannot be used as asked; the message names the option and what is allowed."""


def require(tracker: str, where: str = "--to") -> None:
    """Fail before anything is read when the tracker is unknown or its package is not installed;
    `where` names the option in the message ("" where the caller names it)."""
    import importlib.util

    prefix = f"{where}: " if where else ""
    if tracker not in TRACKERS:
        raise TrackerError(f"{prefix}{tracker!r} is not a tracker; one of {', '.join(TRACKERS)}")
    module, extra = EXTRAS[tracker]
    if importlib.util.find_spec(module) is None:
        raise TrackerError(
            f"{where + ' ' if where else ''}{tracker}: the {module} package is not installed; "
            f"pip install 'grokking-sweeps[{extra}]'"
        )


# ---- what the store holds ---------------------------------------------------------------------------
@dataclass
class Member:
    """One member's committed rows: its runs row once it ended, its evaluations (metrics and progress
    measures merged per epoch) so far, and the pack whose parts hold them."""

    run_id: str
    pack_id: str
    row: dict[str, Any] | None = None
    evaluations: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.row is not None

    def config(self) -> dict[str, Any]:
        skip = set(RUN_KEYS) | set(OUTCOME_COLUMNS)
        return {k: v for k, v in (self.row or {}).items() if k not in skip}

    def outcome(self) -> dict[str, Any]:
        return {k: (self.row or {}).get(k) for k in OUTCOME_COLUMNS}

    def cell(self, axes: Iterable[str]) -> str:
        """The spec's axis values of this member, seed left out: replicates share a cell."""
        config = self.config()
        return ",".join(f"{a}={config.get(a)}" for a in axes if a != "seed" and a in config) or "-"


def committed_rows(store: SweepStore, kept: dict[str, tuple[int | None, pa.Table]] | None = None) -> dict[str, Member]:
    """run_id -> Member from the committed parts only (crash leftovers and merged-away parts left out,
    by the store's own rule); the failed part (written whole by the driver) counts as committed.
    `kept` (path -> (size, rows)), carried from one push to the next beside a driver, saves reading a
    part again: a committed part never changes under its name (compaction and `grok measure` write
    new seqs), and the failed part, rewritten in place when members are retried, changes size."""
    records = store.records()
    members: dict[str, Member] = {}
    kept = {} if kept is None else kept
    for table in TABLES:
        leftovers = {p.path for p in store.uncommitted(table, records)}
        parts = [p for p in store.parts(table) if p.path not in leftovers]
        listed, folder = {p.path for p in parts}, f"{store.path(table)}/"
        for gone in [k for k in kept if k.startswith(folder) and k not in listed]:
            del kept[gone]  # merged by a compaction, or a leftover
        for part in parts:
            if part.path in kept and kept[part.path][0] == part.size:
                data = kept[part.path][1]
            else:
                data = store.read_part(part)
                if data is None:
                    continue
                kept[part.path] = (part.size, data)
            if table == "runs":
                for row in data.to_pylist():
                    member = members.setdefault(row["run_id"], Member(row["run_id"], part.pack_id))
                    if member.row is None or member.row.get("status") == "failed":  # a retried member's new row wins
                        member.row = row
                continue
            _add_evaluations(members, data, part.pack_id)
    return members


def _add_evaluations(members: dict[str, Member], data: pa.Table, pack_id: str) -> None:
    names = [n for n in data.column_names if n not in ("run_id", "epoch")]
    columns = {n: data.column(n).to_pylist() for n in names}
    for i, (run_id, epoch) in enumerate(
        zip(data.column("run_id").to_pylist(), data.column("epoch").to_pylist(), strict=True)
    ):
        member = members.setdefault(run_id, Member(run_id, pack_id))
        point = member.evaluations.setdefault(int(epoch), {})
        for n in names:
            value = columns[n][i]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                point[n] = float(value)  # NaN: the metric does not apply to the task; nothing to plot


def sweep_axes(store: SweepStore) -> list[str]:
    """The swept fields of the spec as run (sweep.yaml: its `axes` keys are field names), for the cell tag;
    [] without one. Read as plain YAML: sweeps.spec imports this module to check a trackers: block."""
    import yaml

    text = store.read_text(SPEC_FILE)
    try:
        axes = (yaml.safe_load(text) or {}).get("axes") if text is not None else None
    except (yaml.YAMLError, AttributeError):
        return []
    return [str(k) for k in axes] if isinstance(axes, dict) else []


def sweep_name(store: SweepStore) -> str:
    return store.uri.rstrip("/").rsplit("/", 1)[-1]


def tags(member: Member, sweep: str, axes: list[str]) -> dict[str, str]:
    """The tags that name where a member belongs: sweep, pack, cell (and run_id, by which it is found)."""
    out = {f"{TAG_PREFIX}run_id": member.run_id, f"{TAG_PREFIX}sweep": sweep, f"{TAG_PREFIX}pack": member.pack_id}
    if member.ended:
        out[f"{TAG_PREFIX}cell"] = member.cell(axes)
    return out


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)


# ---- pushing ------------------------------------------------------------------------------------------
@dataclass
class Pushed:
    """What one push did: members touched, points logged, members closed (ended and complete)."""

    members: int = 0
    points: int = 0
    closed: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"{self.members} member(s) pushed: {self.points} new point(s), {self.closed} finished; "
            f"{self.skipped} already complete"
        )


def push(
    location: str,
    tracker: str,
    target: str | None = None,
    progress: Callable[[str], None] | None = None,
    kept: dict | None = None,
) -> Pushed:
    """Push the committed rows of the sweep at `location` (`<results>/<name>`, path or URI) to a tracker.
    target: MLflow's tracking URI (default: MLFLOW_TRACKING_URI or MLflow's own default), W&B's
    directory (default: the working directory), TensorBoard's log directory (required). `kept`: see
    committed_rows."""
    require(tracker)
    if tracker == "tensorboard" and not target:
        raise TrackerError("--to tensorboard needs a LOGDIR (grok push DIR --to tensorboard LOGDIR)")

    results, name = split_location(location)
    store = SweepStore(results, name)
    members = committed_rows(store, kept)
    axes, sweep = sweep_axes(store), sweep_name(store)
    writer = {"mlflow": _push_mlflow, "wandb": _push_wandb, "tensorboard": _push_tensorboard}[tracker]
    return writer(members, sweep, axes, target, progress or (lambda _: None))


def _chunks(member: Member, after: int) -> Iterator[list[tuple[int, dict[str, float]]]]:
    """Evaluations after epoch `after`, in epoch order, grouped so a group fits one MLflow batch."""
    group: list[tuple[int, dict[str, float]]] = []
    size = 0
    for epoch in sorted(e for e in member.evaluations if e > after):
        values = member.evaluations[epoch]
        n = len(values) + 1
        if group and size + n > MAX_BATCH:
            yield group
            group, size = [], 0
        group.append((epoch, values))
        size += n
    if group:
        yield group


def _push_mlflow(
    members: dict[str, Member], sweep: str, axes: list[str], target: str | None, progress: Callable[[str], None]
) -> Pushed:
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # two lines per member otherwise
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=target)
    experiment = client.get_experiment_by_name(sweep)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(sweep)
    known = {}
    token = None
    while True:  # every run of the experiment once: which members it holds, and which are closed
        page = client.search_runs([experiment_id], max_results=10_000, page_token=token)
        for found in page:
            run_id = found.data.tags.get(f"{TAG_PREFIX}run_id")
            if run_id is not None:
                known[run_id] = found
        token = page.token
        if not token:
            break
    done = Pushed()
    for i, member in enumerate(members[k] for k in sorted(members)):
        run = known.get(member.run_id)
        # closed with the outcome it has now; a member retried after its pack failed for good gets a new
        # runs row, and its run goes on from its last evaluation
        if (
            run is not None
            and run.info.status != "RUNNING"
            and member.ended
            and run.data.tags.get(f"{TAG_PREFIX}status") == member.outcome().get("status")
        ):
            done.skipped += 1
            continue
        if run is None:
            run = client.create_run(experiment_id, run_name=member.run_id, tags=tags(member, sweep, axes))
        run_uuid = run.info.run_id
        history = client.get_metric_history(run_uuid, SENTINEL)
        after = max((m.step for m in history), default=-1)
        points = done.points
        for group in _chunks(member, after):
            metrics = []
            for epoch, values in group:
                metrics += [Metric(k, v, epoch, epoch) for k, v in values.items()]
                metrics.append(Metric(SENTINEL, float(epoch), epoch, epoch))
            client.log_batch(run_uuid, metrics=metrics)
            done.points += len(metrics)
        if member.ended:
            params = [Param(k, _text(v)[:6000]) for k, v in sorted(member.config().items())]
            outcome = [RunTag(f"{TAG_PREFIX}{k}", _text(v)) for k, v in member.outcome().items() if v is not None]
            for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                client.log_batch(run_uuid, params=params[start : start + 100])
            client.log_batch(run_uuid, tags=[RunTag(k, v) for k, v in tags(member, sweep, axes).items()] + outcome)
            failed = member.outcome().get("status") in FAILED_STATUSES
            client.set_terminated(run_uuid, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED))
            done.closed += 1
        done.members += member.ended or done.points > points  # a running member without new rows: untouched
        if (i + 1) % 100 == 0:
            progress(f"{i + 1}/{len(members)} members")
    return done


def _push_wandb(
    members: dict[str, Member], sweep: str, axes: list[str], target: str | None, progress: Callable[[str], None]
) -> Pushed:
    import wandb

    root = Path(target or ".").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    done = Pushed()
    for i, member in enumerate(members[k] for k in sorted(members) if members[k].ended):
        whole = []
        for folder in wandb_runs(root, member.run_id):
            if (folder / WANDB_MARKER).exists():
                whole.append(folder)
            else:  # a push killed while writing this member: that run is not whole
                shutil.rmtree(folder, ignore_errors=True)
        if whole:
            done.skipped += 1
            continue
        member_tags = tags(member, sweep, axes)
        run = wandb.init(
            mode="offline",
            dir=str(root),
            project=sweep,
            id=wandb_id(member.run_id),
            name=member.run_id,
            group=member_tags.get(f"{TAG_PREFIX}cell"),
            job_type=member.pack_id,
            config={
                **{k: _text(v) if isinstance(v, (list, tuple)) else v for k, v in member.config().items()},
                **member_tags,
            },
            tags=[f"sweep:{sweep}", f"pack:{member.pack_id}", f"cell:{member_tags[f'{TAG_PREFIX}cell']}"],
            settings=wandb.Settings(
                silent=True, console="off", x_disable_stats=True, x_disable_meta=True, save_code=False
            ),
            reinit="create_new",
        )
        for epoch in sorted(member.evaluations):
            run.log({**member.evaluations[epoch], SENTINEL: epoch}, step=epoch)
            done.points += len(member.evaluations[epoch]) + 1
        run.summary.update({f"outcome/{k}": v for k, v in member.outcome().items() if v is not None})
        failed = member.outcome().get("status") in FAILED_STATUSES
        folder = Path(run.dir).parent
        run.finish(exit_code=1 if failed else 0)
        (folder / WANDB_MARKER).write_text(
            json.dumps({"run_id": member.run_id, "evaluations": len(member.evaluations)})
        )
        done.members += 1
        done.closed += 1
        if (i + 1) % 20 == 0:
            progress(f"{i + 1} members")
    return done


def wandb_id(run_id: str) -> str:
    """W&B run ids may not hold / \\ # ? % : and are at most 128 characters; ours hold none of those."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)[:128]


def wandb_runs(root: Path, run_id: str) -> list[Path]:
    """The offline run folders of this member under a W&B directory (`<root>/wandb/offline-run-<time>-<id>`)."""
    return sorted((root / "wandb").glob(f"offline-run-*-{wandb_id(run_id)}"))


def _push_tensorboard(
    members: dict[str, Member], sweep: str, axes: list[str], target: str | None, progress: Callable[[str], None]
) -> Pushed:
    from torch.utils.tensorboard import SummaryWriter

    logdir = Path(target).expanduser().resolve()  # type: ignore[arg-type]
    logdir.mkdir(parents=True, exist_ok=True)
    done = Pushed()
    for member in (members[k] for k in sorted(members) if members[k].ended):
        final = logdir / member.run_id
        if final.exists():
            done.skipped += 1
            continue
        tmp = logdir / f".{member.run_id}.tmp-{uuid.uuid4().hex[:8]}"
        writer = SummaryWriter(log_dir=str(tmp))
        try:
            writer.add_text("grok/tags", json.dumps(tags(member, sweep, axes)), 0)
            writer.add_text("grok/config", json.dumps(member.config(), default=str), 0)
            for epoch in sorted(member.evaluations):
                for key, value in member.evaluations[epoch].items():
                    writer.add_scalar(key, value, epoch)
                done.points += len(member.evaluations[epoch])
            writer.add_text("grok/outcome", json.dumps(member.outcome(), default=str), 0)
        finally:
            writer.close()
        os.replace(tmp, final)  # whole or not at all: a killed push leaves only a hidden temporary
        done.members += 1
        done.closed += 1
    for leftover in logdir.glob(".*.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return done


# ---- beside the driver: the spec's trackers: block -------------------------------------------------
DEFAULT_EVERY_S = 30.0


def parse_trackers(raw: Any) -> dict[str, Any] | None:
    """The spec's `trackers:` block, checked (TrackerError names the key and what is allowed) and kept as
    plain values: {mlflow: TRACKING_URI or null, wandb: DIR or null, tensorboard: LOGDIR, every_s: N}."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise TrackerError(f"must be a mapping of tracker: target ({', '.join(TRACKERS)}) and every_s, got {raw!r}")
    out: dict[str, Any] = {"every_s": DEFAULT_EVERY_S}
    for key, value in raw.items():
        if key == "every_s":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise TrackerError(f"every_s: seconds between pushes, a number > 0, got {value!r}")
            out["every_s"] = float(value)
            continue
        require(str(key), "")  # SpecError puts "trackers: " before the message
        if value is not None and not (isinstance(value, str) and value):
            raise TrackerError(f"{key}: its target (a tracking URI, a directory) or null, got {value!r}")
        if key == "tensorboard" and not value:
            raise TrackerError("tensorboard: the log directory to write, e.g. tensorboard: tb-logs")
        out[key] = value
    return out


def push_all(trackers: dict[str, Any], location: str, out=None, kept: dict | None = None) -> None:
    """One push to each tracker of a `trackers:` block. A tracker that fails (a server down) is named
    on `out` and tried again at the next push: it never stops the sweep, and nothing is lost, since
    the next push sends what the tracker lacks."""
    import sys

    for tracker, target in trackers.items():
        if tracker == "every_s":
            continue
        try:
            pushed = push(location, tracker, target, kept=kept)
        except Exception as e:  # noqa: BLE001 - any tracker failure; the rows stay in the store
            print(f"trackers: {tracker}: push failed ({type(e).__name__}: {e}); will try again", file=out or sys.stderr)
            continue
        if pushed.members:
            print(f"trackers: {tracker}: {pushed}", file=out or sys.stderr)


class Pushing:
    """`with Pushing(trackers, location):` around a driver: pushes every `every_s` seconds in a thread, and
    once more after the block, so the last committed rows go too. Stopping it leaves nothing running."""

    def __init__(self, trackers: dict[str, Any] | None, location: str, out=None):
        import threading

        self.trackers, self.location, self.out = trackers or {}, location, out
        self.kept: dict = {}  # the parts read so far (committed_rows), so each push reads only new ones
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="grok-trackers", daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.trackers["every_s"]):
            push_all(self.trackers, self.location, self.out, self.kept)

    def __enter__(self) -> Pushing:
        if self.trackers:
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.trackers:
            return
        self.stop.set()
        self.thread.join()
        push_all(self.trackers, self.location, self.out, self.kept)

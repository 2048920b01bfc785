"""The driver: plan a sweep against what is on disk, fan its packs out as Ray Tune trials, and
record packs that failed for good.

    result = run_sweep(load_spec("sweeps/examples/quick.yaml"))             # a local Ray
    result = run_sweep(spec, address="ray://head:10001")                    # a running cluster

Running the same spec on the same results again continues the sweep (members with a runs row
are skipped, unfinished packs continue from their checkpoints). One driver per sweep at a time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from grokcore.config import RunConfig
from sweeps.packing import Pack, Plan, plan
from sweeps.parquet import TABLES, SweepStore, runs_schema
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import SpecError, SweepSpec

log = logging.getLogger("sweeps")

# Tune's progress columns: reported by every trial (sweeps/runner.py, _Progress.metrics)
PROGRESS_COLUMNS = {
    "members_live": "live",
    "members_finished": "finished",
    "members_generalised": "generalised",
    "test_acc_latest": "test acc",
    "epoch": "epoch",
}
FINAL_STATUSES = ("done", "stopped", "diverged", "pruned")


# ---- the trainable ------------------------------------------------------------------------------
def trainable(config: dict[str, Any]) -> None:
    """One Tune trial = one pack. Thin on purpose: the work is sweeps.runner.run_pack."""
    import ray
    from ray import tune

    pack = Pack.from_dict(config["pack"])
    settings = PackSettings(**config["settings"])
    trial_id = tune.get_context().get_trial_id() or "unknown"
    node = ray.get_runtime_context().get_node_id()
    hooks = {}
    if config.get("optuna"):  # a pack of an Optuna search: trial numbers and pruning
        from sweeps.optuna_search import trial_hooks

        hooks = trial_hooks(config["optuna"], pack, settings)
    final = run_pack(pack, settings, trial_id=trial_id, report=tune.report, node=node, **hooks)
    tune.report(final)


# ---- planning against what is on disk ---------------------------------------------------------------
@dataclass
class Prepared:
    spec: SweepSpec
    store: SweepStore
    members: list[RunConfig]
    plan: Plan
    finished: dict[str, str]  # run_id -> pack_id of every member with a final runs row
    cleaned: dict[str, int] = field(default_factory=dict)  # what the clean-up removed, for the log


def prepare(spec: SweepSpec, results: str | None = None, members: Sequence[RunConfig] | None = None,
            write: bool = True, retry_failed: bool = True) -> Prepared:
    """Plan the sweep; with write=True also tidy what an interrupted run left and write sweep.yaml
    and plan.json. Call with write=False for a dry run (reads only)."""
    members = list(members) if members is not None else spec.members()
    store = SweepStore(results or spec.results, spec.name)
    records = store.records()
    cleaned = {"uncommitted parts": 0, "half-written files": 0, "failed rows retried": 0, "orphan rows": 0}

    # 1. crash leftovers: uncommitted parts and half-written files
    if write:
        cleaned.update(store.delete_crash_leftovers(records))

    # 2. members with a runs row are finished (failed ones are retried unless asked not to)
    finished: dict[str, str] = {}
    failed_ids: set[str] = set()
    runs = store.read_table("runs", columns=["run_id", "pack_id", "status"])
    if runs is not None:
        for rid, pid, status in zip(*(runs.column(c).to_pylist() for c in ("run_id", "pack_id", "status"))):
            if status == "failed":
                failed_ids.add(rid)
            else:
                finished[rid] = pid
    expanded = {m.run_id for m in members}
    retry = (failed_ids & expanded) if retry_failed else set()
    if not retry_failed:
        finished.update({rid: "failed" for rid in failed_ids})
    if write and retry:
        for part in store.parts("runs"):
            if part.seq is None:
                cleaned["failed rows retried"] += store.purge_rows(part, retry)

    # 3. cut packs; packs not continued by this plan give up their unfinished members' rows
    the_plan = plan(members, spec.pack_size, spec.gpus, finished=finished, records=records)
    if write:
        for pid in the_plan.orphans:
            record = records[pid]
            unfinished = {r for r in record.get("members", []) if r not in finished}
            for table in ("metrics", "progress"):
                for part in store.parts(table, pid):
                    cleaned["orphan rows"] += store.purge_rows(part, unfinished)
            store.delete_trainers(pid)
            store.write_record(pid, {**record, "trainer": None, "abandoned": True})
        _write_spec(store, spec)
        store.write_json("plan.json", {
            "name": spec.name, "members": [m.run_id for m in members],
            "packs": {p.pack_id: p.run_ids for p in the_plan.packs},
            "to_run": [p.pack_id for p in the_plan.to_run], "updated": time.time(),
        })
    return Prepared(spec, store, members, the_plan, finished, cleaned)


def _write_spec(store: SweepStore, spec: SweepSpec) -> None:
    """sweep.yaml is the spec as run; an earlier, different spec is kept as specs/sweep-<hash>.yaml."""
    old = store.read_text("sweep.yaml")
    if old is not None and old != spec.text:
        digest = hashlib.sha256(old.encode()).hexdigest()[:12]
        store.write_text(f"specs/sweep-{digest}.yaml", old)
    if old != spec.text:
        store.write_text("sweep.yaml", spec.text)


def describe(prep: Prepared) -> str:
    """The dry-run text: members, packs, trials and estimated model-epochs."""
    spec, p = prep.spec, prep.plan
    n_done = sum(1 for m in prep.members if m.run_id in prep.finished)
    sizes = sorted({len(x.members) for x in p.packs})
    run_epochs = sum(x.model_epochs for x in p.to_run)
    shapes = len({m.shape_key() for m in prep.members})
    lines = [
        f"sweep {spec.name}  ({spec.source})",
        f"  results      {prep.store.uri}",
        f"  axes         " + ("; ".join(f"{a.field}: {a.describe()}" for a in spec.axes) or "none"),
        f"  members      {len(prep.members)}  (samples {spec.samples} x grid "
        f"{len(prep.members) // (spec.samples * spec.replicates)} x replicates {spec.replicates})",
        f"  packs        {len(p.packs)} in {shapes} shape group(s); pack size "
        f"{'auto' if spec.pack_size is None else spec.pack_size} -> {sizes[0]}"
        + (f"..{sizes[-1]}" if len(sizes) > 1 else ""),
        f"  already done {n_done} members, {len(p.done)} packs",
        f"  trials       {len(p.to_run)} to run, {p.members_to_run} members, each with "
        f"{spec.cpus:g} CPU{'s' if spec.cpus != 1 else ''}"
        + (f" and {spec.gpus:g} GPU" if spec.gpus else ""),
        f"  model-epochs {run_epochs:,} to run (at most; stop rules end members early), "
        f"{sum(x.model_epochs for x in p.packs):,} in the whole sweep",
    ]
    return "\n".join(lines)


# ---- Ray --------------------------------------------------------------------------------------------
def connect_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to a cluster (address) or start a local Ray; returns True if this call started or
    connected it (and so should shut it down). A Ray already initialised in this process is reused.

    Local Ray 2.59+ turns token authentication on and writes ~/.ray/auth_token; nothing else is
    needed. The dashboard stays off (or on 127.0.0.1). For a cluster started with tokens, set
    RAY_AUTH_MODE=token and the token (RAY_AUTH_TOKEN or ~/.ray/auth_token) before connecting.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address or os.environ.get("RAY_ADDRESS"):  # RAY_ADDRESS: set under `ray job submit`
            ray.init(address=address, **kwargs)
        else:
            # A local Ray, without the workers Ray would start ahead for tasks: Tune's trial actors
            # never use them (they carry a runtime_env of their own, so each gets a fresh process),
            # and on a small machine their start-up competes with the trials' (~1 CPU-second each).
            ray.init(include_dashboard=False, dashboard_host="127.0.0.1", num_cpus=num_cpus,
                     _system_config={"prestart_worker_first_driver": False}, **kwargs)
    except Exception as e:
        if type(e).__name__ == "AuthenticationError" or "authentication" in str(e).lower():
            raise RuntimeError(
                f"{e}\nThe cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                "(or copy the head's ~/.ray/auth_token; `ray get-auth-token` prints it).") from e
        raise
    return True


def on_local_ray(address: str | None) -> bool:
    """True when `grok sweep` would start its own Ray on this machine (no address, no RAY_ADDRESS)."""
    return not (address or os.environ.get("RAY_ADDRESS"))


def check_local_resources(spec: SweepSpec, num_cpus: int | None = None) -> None:
    """On a local Ray, a trial can use only this machine: refuse a spec that asks more of one
    trial than the machine has, as a spec error, before anything is started or written.
    (Against a cluster, check_resources warns instead: an autoscaler may still add nodes.)"""
    cpus = num_cpus or os.cpu_count() or 1
    if spec.cpus > cpus:
        raise SpecError(spec.source, "resources.cpus",
                        f"{spec.cpus:g} CPUs per trial, but this machine's local Ray has {cpus}; lower it, "
                        "or run against a cluster that has them (--address)")
    if spec.gpus > 0:
        gpus = local_gpu_count()
        if spec.gpus > gpus:
            raise SpecError(spec.source, "resources.gpus",
                            f"{spec.gpus:g} GPU{'s' if spec.gpus != 1 else ''} per trial, but this machine has "
                            f"{gpus}; set resources.gpus: 0 to train on the CPU, or run against a cluster "
                            "that has GPUs (--address)")


def local_gpu_count() -> int:
    """The GPUs a local Ray would see (CUDA_VISIBLE_DEVICES honoured, as Ray does)."""
    import torch

    return torch.cuda.device_count()


def check_shared_storage(store: SweepStore) -> None:
    """Every node writes rows straight to the results location, so a local path must be a mount
    that every node sees. Checked with a marker file and one tiny task pinned to each node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1 or not store.local:
        return
    marker = f".storage-check-{os.getpid()}-{int(time.time())}"
    store.write_text(marker, "ok")

    @ray.remote(num_cpus=0)
    def sees(path: str) -> bool:
        return os.path.exists(path)

    try:
        checks = {n["NodeManagerAddress"] + " " + n["NodeID"][:8]: sees.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(store.path(marker))
            for n in nodes}
        missing = [name for name, ref in checks.items() if not ray.get(ref, timeout=60)]
    finally:
        try:
            store.fs.delete_file(store.path(marker))
        except FileNotFoundError:
            pass
    if missing:
        raise RuntimeError(f"results location {store.uri} is not visible on node(s) {', '.join(missing)}; "
                           "use a shared mount present on every node, or an object store URI (s3://...)")


def check_resources(spec: SweepSpec, autoscaling: bool) -> None:
    """A trial asking for more than the cluster has would wait forever: fail early on a local Ray,
    warn on a cluster (an autoscaler may still add nodes)."""
    import ray

    total = ray.cluster_resources()
    short = [f"{need:g} {what} per trial, the cluster has {total.get(key, 0):g}"
             for need, what, key in ((spec.cpus, "CPUs", "CPU"), (spec.gpus, "GPUs", "GPU"))
             if need > total.get(key, 0)]
    if not short:
        return
    message = (f"{spec.source}: resources: {'; '.join(short)}. Lower resources in the spec, or run against a "
               "cluster that has them (--address)")
    if not autoscaling:
        raise RuntimeError(message)
    log.warning("%s; trials will wait until nodes with these resources join", message)


DRIVER_FILE = "driver.json"


@contextmanager
def sweep_session(spec: SweepSpec, store: SweepStore, address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Ray for one run of a sweep: connect (or start a local Ray), check the cluster, mark the
    sweep's driver as running (`grok status` tells running packs from interrupted ones by it), and
    on the way out, Ctrl-C and errors included, mark it ended and shut down what it started."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TensorBoard per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new output ignores our CLIReporter columns
    started = connect_ray(address, num_cpus=num_cpus)
    store.write_json(DRIVER_FILE, {"state": "running", "pid": os.getpid(), "host": socket.gethostname(),
                                   "started": time.time()})
    try:
        check_resources(spec, autoscaling=not on_local_ray(address))
        check_shared_storage(store)
        yield
    finally:
        try:
            store.write_json(DRIVER_FILE, {**(store.read_json(DRIVER_FILE) or {}), "state": "ended",
                                           "ended": time.time()})
        finally:
            if started:
                import ray

                ray.shutdown()


def _progress_reporter(total_members: int, report_every_s: float) -> Any:
    from ray import tune

    class SweepReporter(tune.CLIReporter):
        """Tune's table of trials plus one line for the whole sweep: members ended, generalised,
        training and waiting, the share of the epoch budget done and an ETA from its pace."""

        started = time.monotonic()

        def report(self, trials: list, done: bool, *sys_info: str) -> None:
            live = fin = gen = 0
            budget_done = 0.0  # in members: a finished member counts 1, a live one its epochs / budget
            for t in trials:
                r = t.last_result or {}
                n_live, n_fin = r.get("members_live", 0) or 0, r.get("members_finished", 0) or 0
                live, fin = live + n_live, fin + n_fin
                gen += r.get("members_generalised", r.get("members_grokked", 0)) or 0  # older trials' key
                if r.get("epochs_budget"):
                    budget_done += n_fin + n_live * min(1.0, (r.get("epoch") or 0) / r["epochs_budget"])
            share = budget_done / total_members if total_members else 1.0
            elapsed = time.monotonic() - self.started
            eta = f", ETA {_duration(elapsed * (1 - share) / share)}" if 0.02 < share < 1 else ""
            line = (f"Members (this run): {fin} of {total_members} ended ({gen} generalised), {live} training, "
                    f"{max(total_members - fin - live, 0)} waiting; {share:.0%} of the epoch budget done{eta} "
                    "(stop rules may end sooner)")
            super().report(trials, done, line, *sys_info)

    return SweepReporter(metric_columns=PROGRESS_COLUMNS, parameter_columns={"pack/size": "members"},
                         max_report_frequency=max(int(report_every_s), 1), print_intermediate_tables=True,
                         max_progress_rows=20, max_column_length=24)


def quiet_tune_logs() -> None:
    """Tune's own advice on an interrupted run ("Resume experiment with: Tuner.restore(...)") is
    wrong for a grok sweep, which resumes by running the same command; keep it from our users."""
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    tune_log = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, _DropRestoreHint) for f in tune_log.filters):
        tune_log.addFilter(_DropRestoreHint())


class _DropRestoreHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore" not in record.getMessage()


# ---- running ---------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    name: str
    uri: str
    members: int
    ran_packs: int
    done_packs: list[str]
    failed_packs: dict[str, str]  # pack_id -> error
    unfinished_packs: list[str]
    wall_seconds: float
    train_seconds: float  # summed in-trial training time of this run
    tune_seconds: float  # time inside tuner.fit()

    @property
    def ok(self) -> bool:
        return not self.failed_packs and not self.unfinished_packs


def run_sweep(spec: SweepSpec, results: str | None = None, address: str | None = None, *,
              verbose: int = 1, num_cpus: int | None = None, retry_failed: bool = True,
              out=None, fault: dict[str, Any] | None = None) -> SweepResult:
    """Run (or continue) a sweep to the end; see the module docstring. `fault` is for resilience
    tests only (see PackSettings.fault). A spec with a search runs sweeps.optuna_search.run_search."""
    if spec.search is not None:
        from sweeps.optuna_search import run_search

        return run_search(spec, results, address, verbose=verbose, num_cpus=num_cpus, retry_failed=retry_failed,
                          out=out, fault=fault)
    out = out or sys.stdout
    start = time.monotonic()
    if on_local_ray(address):
        check_local_resources(spec, num_cpus)
    prep = prepare(spec, results, retry_failed=retry_failed)
    store, the_plan = prep.store, prep.plan
    if verbose:
        print(describe(prep), file=out)
        if any(prep.cleaned.values()):
            print("  resumed: removed " + ", ".join(f"{v} {k}" for k, v in prep.cleaned.items() if v), file=out)
    if not the_plan.to_run:
        if verbose:
            print(f"nothing to run: all {len(prep.members)} members have a runs row", file=out)
        return SweepResult(spec.name, store.uri, len(prep.members), 0, [], {}, [], time.monotonic() - start, 0.0, 0.0)

    with sweep_session(spec, store, address, num_cpus):
        t0 = time.monotonic()
        grid = _tune(prep, results or spec.results, verbose, fault)
        tune_seconds = time.monotonic() - t0
        errors = {}
        for r in grid:
            pid = (r.config or {}).get("pack", {}).get("pack_id")
            if r.error is not None and pid is not None:
                errors[pid] = _error_text(r.error)

    # packs whose trial failed for good: their members without a runs row get a failed row
    done, failed, unfinished, train_seconds = [], {}, [], 0.0
    for pack in the_plan.to_run:
        record = store.read_record(pack.pack_id) or {}
        train_seconds += float(record.get("train_seconds", 0.0))
        if record.get("done"):
            done.append(pack.pack_id)
        elif pack.pack_id in errors:
            failed[pack.pack_id] = errors[pack.pack_id]
            write_failed_rows(store, pack, errors[pack.pack_id], record)
        else:
            unfinished.append(pack.pack_id)
    result = SweepResult(spec.name, store.uri, len(prep.members), len(the_plan.to_run), done, failed, unfinished,
                         time.monotonic() - start, train_seconds, tune_seconds)
    if verbose:
        print(f"\n{spec.name}: {len(done)} of {len(the_plan.to_run)} packs finished in {result.wall_seconds:.0f} s"
              f" -> {store.uri}", file=out)
        print_unfinished(failed, unfinished, out)
    return result


def print_unfinished(failed: dict[str, str], unfinished: list[str], out) -> None:
    """The end of a sweep's summary: each failed pack's last error line, and how to continue."""
    for pid, err in failed.items():
        print(f"  FAILED {pid}: {err.strip().splitlines()[-1] if err.strip() else err}", file=out)
    if unfinished:
        print(f"  {len(unfinished)} pack(s) unfinished (interrupted?): run the same command again to continue",
              file=out)


def write_failed_rows(store: SweepStore, pack: Pack, error: str, record: dict[str, Any] | None = None,
                      member_extra: dict[str, dict[str, Any]] | None = None) -> int:
    """Runs rows with status failed for the pack's members that have no committed runs row
    (`member_extra`: run_id -> more columns, such as the Optuna trial number)."""
    committed_seq = int((record or {}).get("seq", 0))
    for table in TABLES:  # uncommitted leftovers of the failed attempt
        store.delete_parts(p for p in store.parts(table, pack.pack_id) if p.seq is not None and p.seq >= committed_seq)
    parts = [p for p in store.parts("runs", pack.pack_id) if p.seq is not None]
    have = store.read_table("runs", columns=["run_id"], parts=parts)
    have_ids = set(have.column("run_id").to_pylist()) if have is not None else set()
    rows = [{"run_id": m.run_id, "pack_id": pack.pack_id, "trial_id": (record or {}).get("trial_id"),
             **m.to_dict(), "status": "failed", "error": error, "epochs_trained": (record or {}).get("epoch"),
             "device": None, "optuna_trial": None, **(member_extra or {}).get(m.run_id, {})}
            for m in pack.members if m.run_id not in have_ids]
    if rows:
        store.write_part("runs", pack.pack_id, None, rows, runs_schema())
    return len(rows)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _error_text(error: BaseException, limit: int = 4000) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip() or repr(error)
    return text if len(text) <= limit else "..." + text[-limit:]


def _tune(prep: Prepared, results: str, verbose: int, fault: dict[str, Any] | None = None) -> Any:
    """Build a Tune experiment of exactly the packs still to run, and run it.

    A rerun never restores the previous Tune experiment: its trials may all have ended (say,
    their rows never arrived) and a restored experiment would then run nothing, every time.
    Nothing is lost by starting afresh, since every pack continues from its own commit record
    and checkpoint."""
    from ray import tune

    spec, store, the_plan = prep.spec, prep.store, prep.plan
    settings = {**PackSettings.from_spec(spec, results).to_dict(), "fault": fault}
    resources = {"cpu": spec.cpus, "gpu": spec.gpus}
    runnable = tune.with_resources(trainable, resources)
    # named by the full pack list: one experiment folder per sweep plan, reused by its reruns
    exp_name = "tune-" + hashlib.sha256(" ".join(sorted(p.pack_id for p in the_plan.packs)).encode()).hexdigest()[:12]
    storage = store.uri.rstrip("/") + "/tune"
    reporter = _progress_reporter(the_plan.members_to_run, spec.report_every_s)
    quiet_tune_logs()

    trials = [{"pack_id": p.pack_id, "size": len(p.members), **p.to_dict()} for p in the_plan.to_run]
    tuner = tune.Tuner(
        runnable,
        param_space={"pack": tune.grid_search(trials), "settings": settings},
        tune_config=tune.TuneConfig(
            reuse_actors=True,
            trial_name_creator=lambda t: t.config["pack"]["pack_id"],
            trial_dirname_creator=lambda t: t.config["pack"]["pack_id"],
        ),
        run_config=tune.RunConfig(
            name=exp_name, storage_path=storage, callbacks=[], verbose=verbose, progress_reporter=reporter,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    return tuner.fit()

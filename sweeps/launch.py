"""The driver: every sweep, grid or search, runs here the same way.

    result = run_sweep(load_spec("sweeps/examples/quick.yaml"))             # a local Ray
    result = run_sweep(spec, address="ray://head:10001")                    # a running cluster

run_sweep opens the spec's pack source (sweeps/sources.py: the grid, an Optuna search, a
bisection), connects to Ray and checks the cluster (`sweep_session`), runs one Tuner whose one
searcher asks the source for the next pack when a trial slot is free and tells it when a pack
ended, shuts Ray down, then sorts the packs handed out into done, failed and unfinished, writes
failed rows for packs that failed for good, and prints the summary.

Running the same spec on the same results again continues the sweep (members with a runs row
are skipped, unfinished packs continue from their checkpoints). One driver per sweep at a time:
run_sweep takes the sweep's lease (sweeps/lease.py) before it reads or deletes anything, and a
second driver refuses. A full disk during a commit ends the sweep with DiskFull (what was committed
stays; the same command continues it once there is space).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from grokcore.layout import TUNE_DIR
from sweeps import sources
from sweeps.lease import LeaseHeld, SweepLease, describe_holder, hold
from sweeps.packing import Pack
from sweeps.parquet import DiskFull, SweepStore, results_location, runs_schema
from sweeps.runner import PackSettings, run_pack
from sweeps.sources import PackSource
from sweeps.spec import SpecError, SweepSpec

log = logging.getLogger("sweeps")

# Tune's progress columns: reported by every trial (sweeps/runner.py, _Progress.metrics)
PROGRESS_COLUMNS = {
    "members_live": "live",
    "members_finished": "finished",
    "members_generalised": "generalised",
    "test_acc_latest": "test acc",
    "epoch": "epoch",
    "epochs_from": "from",  # a budget round: members continued from this epoch (0: from the start)
    "epochs_budget": "budget",
}
FINAL_STATUSES = ("done", "stopped", "diverged", "pruned")
DISK_FULL = "disk_full"  # a trial's last result when a commit found the disk full (its message)


# ---- the trainable ------------------------------------------------------------------------------
def trainable(config: dict[str, Any]) -> None:
    """One Tune trial = one pack. Thin on purpose: the work is sweeps.runner.run_pack; a search's
    source may add hooks (trial numbers for the runs rows, pruning at each evaluation)."""
    import ray
    from ray import tune

    pack = Pack.from_dict(config["pack"])
    settings = PackSettings(**config["settings"])
    trial_id = tune.get_context().get_trial_id() or "unknown"
    node = ray.get_runtime_context().get_node_id()
    hooks = sources.trial_hooks(config.get("hooks"), pack, settings)
    try:
        final = run_pack(pack, settings, trial_id=trial_id, report=tune.report, node=node, **hooks)
    except DiskFull as e:  # not a failure of the pack: no retry, no failed rows; the driver stops
        final = {DISK_FULL: str(e)}
    tune.report(final)


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
            ray.init(
                include_dashboard=False,
                dashboard_host="127.0.0.1",
                num_cpus=num_cpus,
                _system_config={"prestart_worker_first_driver": False},
                **kwargs,
            )
    except Exception as e:
        if type(e).__name__ == "AuthenticationError" or "authentication" in str(e).lower():
            raise RuntimeError(
                f"{e}\nThe cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                "(or copy the head's ~/.ray/auth_token; `ray get-auth-token` prints it)."
            ) from e
        raise
    return True


def on_local_ray(address: str | None) -> bool:
    """True when `grok sweep` would start its own Ray on this machine (no address, no RAY_ADDRESS)."""
    return not (address or os.environ.get("RAY_ADDRESS"))


def check_local_resources(spec: SweepSpec, num_cpus: int | None = None) -> None:
    """On a local Ray, a trial can use only this machine: refuse a spec that asks more of one
    trial than the machine has, as a spec error, before anything is started or written.
    (Against a cluster, check_resources warns instead: an autoscaler may still add nodes.)"""
    check_trial_fits(
        spec,
        num_cpus or os.cpu_count() or 1,
        local_gpu_count() if spec.gpus > 0 else 0,
        cpus_at="this machine's local Ray has",
        gpus_at="this machine has",
        elsewhere="run against a cluster that has {them} (--address)",
    )


def check_trial_fits(spec: SweepSpec, cpus: float, gpus: float, *, cpus_at: str, gpus_at: str, elsewhere: str) -> None:
    """A trial runs on one node: refuse, as a spec error, a spec whose trial asks for more CPUs or
    GPUs than one node has (`grok sweep` on this machine, `grok slurm` per node of the job).
    `elsewhere` says where it would fit ({them}: "them" or "GPUs")."""
    if spec.cpus > cpus:
        raise SpecError(
            spec.source,
            "resources.cpus",
            f"{spec.cpus:g} CPUs per trial, but {cpus_at} {cpus:g}; lower it, or {elsewhere.format(them='them')}",
        )
    if spec.gpus > gpus:
        raise SpecError(
            spec.source,
            "resources.gpus",
            f"{spec.gpus:g} GPU{'s' if spec.gpus != 1 else ''} per trial, but {gpus_at} "
            f"{gpus:g}; set resources.gpus: 0 to train on the CPU, or {elsewhere.format(them='GPUs')}",
        )


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
        checks = {
            n["NodeManagerAddress"] + " " + n["NodeID"][:8]: sees.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(store.path(marker))
            for n in nodes
        }
        missing = [name for name, ref in checks.items() if not ray.get(ref, timeout=60)]
    finally:
        with suppress(FileNotFoundError):
            store.fs.delete_file(store.path(marker))
    if missing:
        raise RuntimeError(
            f"results location {store.uri} is not visible on node(s) {', '.join(missing)}; "
            "use a shared mount present on every node, or an object store URI (s3://...)"
        )


def check_resources(spec: SweepSpec, autoscaling: bool) -> None:
    """A trial asking for more than the cluster has would wait forever: fail early on a local Ray,
    warn on a cluster (an autoscaler may still add nodes)."""
    import ray

    total = ray.cluster_resources()
    short = [
        f"{need:g} {what} per trial, the cluster has {total.get(key, 0):g}"
        for need, what, key in ((spec.cpus, "CPUs", "CPU"), (spec.gpus, "GPUs", "GPU"))
        if need > total.get(key, 0)
    ]
    if not short:
        return
    message = (
        f"{spec.source}: resources: {'; '.join(short)}. Lower resources in the spec, or run against a "
        "cluster that has them (--address)"
    )
    if not autoscaling:
        raise RuntimeError(message)
    log.warning("%s; trials will wait until nodes with these resources join", message)


@contextmanager
def sweep_session(spec: SweepSpec, store: SweepStore, address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Ray for one run of a sweep: connect (or start a local Ray), check the cluster, and on the way
    out, Ctrl-C and errors included, shut down what it started. (The sweep's lease, which `grok
    status` reads to tell running packs from interrupted ones, is held around it by run_sweep.)"""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV/JSON/TensorBoard per trial
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new output ignores our CLIReporter columns
    started = connect_ray(address, num_cpus=num_cpus)
    try:
        check_resources(spec, autoscaling=not on_local_ray(address))
        check_shared_storage(store)
        yield
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
            line = (
                f"Members (this run): {fin} of {total_members} ended ({gen} generalised), {live} training, "
                f"{max(total_members - fin - live, 0)} waiting; {share:.0%} of the epoch budget done{eta} "
                "(stop rules may end sooner)"
            )
            super().report(trials, done, line, *sys_info)

    return SweepReporter(
        metric_columns=PROGRESS_COLUMNS,
        parameter_columns={"pack/size": "members"},
        max_report_frequency=max(int(report_every_s), 1),
        print_intermediate_tables=True,
        max_progress_rows=20,
        max_column_length=24,
    )


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


def _tune_storage(store: SweepStore) -> dict[str, Any]:
    """Tune's experiment folder under the sweep's; off the local disk through the store's own
    filesystem, opened as the store opens it (grokcore.location.filesystem), not as Tune would."""
    if store.local:
        return {"storage_path": store.path(TUNE_DIR)}
    return {"storage_path": store.path(TUNE_DIR), "storage_filesystem": store.fs}


def dry_run(spec: SweepSpec, results: str | None = None) -> str:
    """What `grok sweep --dry-run` prints: the source's description, from what is on disk (reads only)."""
    location = results_location(results or spec.results)
    settings = PackSettings.from_spec(spec, location).to_dict()
    return sources.open_source(spec, SweepStore(location, spec.name), settings, write=False).describe()


def run_sweep(
    spec: SweepSpec,
    results: str | None = None,
    address: str | None = None,
    *,
    verbose: int = 1,
    num_cpus: int | None = None,
    retry_failed: bool = True,
    out=None,
    fault: dict[str, Any] | None = None,
    force: bool = False,
    repair: bool = False,
) -> SweepResult:
    """Run (or continue) a sweep to the end; see the module docstring. LeaseHeld when another writer
    holds the sweep (`force` takes its lease), DiskFull when a commit found no space. `repair`: train
    again the packs whose files are damaged or missing, and check their rows against the survivors
    (sweeps/repair.py). `fault` is for resilience tests only (see PackSettings.fault)."""
    start = time.monotonic()
    if on_local_ray(address):
        check_local_resources(spec, num_cpus)
    if repair:  # a bad request is refused before the lease (or anything else) is written
        from sweeps.repair import refuse_search

        refuse_search(spec)
    # resolved once, here: every trial receives the absolute location (see results_location)
    location = results_location(results or spec.results)
    store = SweepStore(location, spec.name)
    with hold(store, "grok sweep", force=force) as lease:
        return _run_held(
            spec,
            store,
            lease,
            location,
            address,
            verbose,
            num_cpus,
            retry_failed,
            out or sys.stdout,
            fault,
            start,
            repair,
        )


def _run_held(
    spec: SweepSpec,
    store: SweepStore,
    lease: SweepLease,
    location: str,
    address: str | None,
    verbose: int,
    num_cpus: int | None,
    retry_failed: bool,
    out,
    fault: dict[str, Any] | None,
    start: float,
    repair: bool,
) -> SweepResult:
    """run_sweep once it holds the sweep's lease."""
    settings = {**PackSettings.from_spec(spec, location).to_dict(), "fault": fault}
    if repair:  # under the lease: it moves the damaged packs' files aside
        from sweeps import repair as mend

        print(mend.before_run(spec, store), file=out)
    with store.disk_full_is_fatal("the sweep's plan"):
        source = sources.open_source(spec, store, settings, retry_failed=retry_failed)
    if verbose:
        print(source.describe(), file=out)
    nothing = source.nothing_to_run()
    if nothing is not None:
        if verbose:
            print(nothing, file=out)
        if repair:
            print(mend.after_run(store), file=out)
        return SweepResult(spec.name, store.uri, source.n_members, 0, [], {}, [], time.monotonic() - start, 0.0, 0.0)

    with sweep_session(spec, store, address, num_cpus):
        t0 = time.monotonic()
        errors, disk_full = _tune(spec, store, source, settings, verbose, lease)
        tune_seconds = time.monotonic() - t0
    if disk_full:  # the packs in flight were stopped; each kept what it had committed
        raise DiskFull(disk_full)
    if lease.lost is not None:
        raise LeaseHeld(
            f"{store.uri}: {describe_holder(lease.lost)} took the sweep's lease (--force); this driver "
            "stopped its trials (what they committed is kept)"
        )

    # every pack handed out is done, failed for good (its members get failed rows), or unfinished
    done, failed, unfinished, train_seconds = [], {}, [], 0.0
    handed = source.handed_out()
    for pack in handed:
        record = store.read_record(pack.pack_id) or {}
        train_seconds += float(record.get("train_seconds", 0.0))
        if record.get("done"):
            done.append(pack.pack_id)
        elif pack.pack_id in errors:
            failed[pack.pack_id] = errors[pack.pack_id]
            with store.disk_full_is_fatal(f"the failed rows of pack {pack.pack_id}"):
                write_failed_rows(store, pack, errors[pack.pack_id], record, source.member_extra(pack))
        else:
            unfinished.append(pack.pack_id)
        source.pack_finished(pack.pack_id)  # idempotent: tells what the searcher has not told yet
    result = SweepResult(
        spec.name,
        store.uri,
        source.n_members,
        len(handed),
        done,
        failed,
        unfinished,
        time.monotonic() - start,
        train_seconds,
        tune_seconds,
    )
    if verbose:
        print(
            f"\n{spec.name}: {len(done)} of {len(handed)} packs finished in {result.wall_seconds:.0f} s -> {store.uri}",
            file=out,
        )
        for line in source.summary():
            print(line, file=out)
        print_unfinished(failed, unfinished, out)
    if repair:
        print(mend.after_run(store), file=out)
    return result


def print_unfinished(failed: dict[str, str], unfinished: list[str], out) -> None:
    """The end of a sweep's summary: each failed pack's last error line, and how to continue."""
    for pid, err in failed.items():
        print(f"  FAILED {pid}: {err.strip().splitlines()[-1] if err.strip() else err}", file=out)
    if unfinished:
        print(
            f"  {len(unfinished)} pack(s) unfinished (interrupted?): run the same command again to continue", file=out
        )


def write_failed_rows(
    store: SweepStore,
    pack: Pack,
    error: str,
    record: dict[str, Any] | None = None,
    member_extra: dict[str, dict[str, Any]] | None = None,
) -> int:
    """Runs rows with status failed for the pack's members that have no committed runs row
    (`member_extra`: run_id -> more columns, such as the Optuna trial number)."""
    from grokcore.train import MemberOutcome  # here: torch's import would cost every dry run seconds

    store.delete_uncommitted(pack.pack_id, record)  # leftovers of the failed attempt
    have = store.read_table("runs", columns=["run_id"], parts=store.pack_parts("runs", pack.pack_id))
    have_ids = set(have.column("run_id").to_pylist()) if have is not None else set()
    record = record or {}
    rows = [
        {
            **MemberOutcome.failed(m, error, record.get("epoch")).to_row(),
            "pack_id": pack.pack_id,
            "trial_id": record.get("trial_id"),
            "optuna_trial": None,
            **(member_extra or {}).get(m.run_id, {}),
        }
        for m in pack.members
        if m.run_id not in have_ids
    ]
    if rows:
        store.write_part("runs", pack.pack_id, None, rows, runs_schema())
    return len(rows)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _error_text(error: BaseException, limit: int = 4000) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip() or repr(error)
    return text if len(text) <= limit else "..." + text[-limit:]


def _slots(spec: SweepSpec) -> int:
    """Trials the cluster can run at once (as it is now)."""
    import ray

    total = ray.cluster_resources()
    slots = [int(total.get("CPU", 1) // spec.cpus)] + ([int(total.get("GPU", 0) // spec.gpus)] if spec.gpus else [])
    return max(1, min(slots))


def _searcher(source: PackSource, settings: dict[str, Any], max_in_flight: int | None) -> Any:
    """Tune's view of a pack source: one suggestion = one pack. A source that learns is asked only
    once a slot is free (Tune keeps a trial pending besides those running), so the pack it hands out
    is guided by every pack that ended meanwhile."""
    from ray.tune.search import Searcher

    class PackSearcher(Searcher):
        def __init__(self):
            super().__init__(metric=None, mode=None)
            self.in_flight: dict[str, str] = {}  # Tune trial id -> pack id, until the trial completes

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True

        # Searcher.FINISHED (a str) ends the search, as Ray documents, though its annotation says dict | None
        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
            if max_in_flight is not None and len(self.in_flight) >= max_in_flight:
                return None
            pack = source.next_pack()
            if pack is None:  # nothing now: wait for the packs in flight, or end when there are none
                return None if self.in_flight else Searcher.FINISHED
            self.in_flight[trial_id] = pack.pack_id
            return {
                "pack": {"pack_id": pack.pack_id, "size": len(pack.members), **pack.to_dict()},
                "settings": settings,
                "hooks": source.trial_hooks(pack),
            }

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            pass

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            pid = self.in_flight.pop(trial_id, None)
            if pid is not None and not error:  # a failed pack is told after fit, once its failed rows exist
                source.pack_finished(pid)

        def save(self, checkpoint_path: str) -> None:  # the source's state is on disk; nothing to save here
            with open(checkpoint_path, "w") as f:
                f.write("{}")

        def restore(self, checkpoint_path: str) -> None:
            pass

    return PackSearcher()


def _tune(
    spec: SweepSpec, store: SweepStore, source: PackSource, settings: dict[str, Any], verbose: int, lease: SweepLease
) -> tuple[dict[str, str], str | None]:
    """One Tuner with one searcher over the source's packs; returns the error text of every pack
    whose trial failed for good, and the message of a full disk if a trial met one (then every
    trial was stopped: on a full disk each further commit would fail too). Every trial stops too
    when another writer took the sweep's lease.

    A rerun never restores the previous Tune experiment: its trials may all have ended (say,
    their rows never arrived) and a restored experiment would then run nothing, every time.
    Nothing is lost by starting afresh, since every pack continues from its own commit record
    and checkpoint, and a search's source keeps its state in the study or on disk."""
    from ray import tune

    class StopAll(tune.Stopper):
        full: str | None = None

        def __call__(self, trial_id: str, result: dict) -> bool:
            self.full = self.full or result.get(DISK_FULL)
            return bool(result.get(DISK_FULL))

        def stop_all(self) -> bool:
            return self.full is not None or lease.lost is not None

        def __reduce__(self):  # Tune pickles its run config (never restored: see above); the lease,
            from ray.tune.stopper.noop import NoopStopper  # an S3 client say, cannot be pickled

            return NoopStopper, ()

    quiet_tune_logs()
    stopper = StopAll()
    searcher = _searcher(source, settings, _slots(spec) if source.learns else None)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": spec.cpus, "gpu": spec.gpus}),
        param_space={},
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            reuse_actors=True,
            trial_name_creator=lambda t: t.config["pack"]["pack_id"],
            trial_dirname_creator=lambda t: t.config["pack"]["pack_id"],
        ),
        run_config=tune.RunConfig(
            name=source.name,
            callbacks=[],
            verbose=verbose,
            **_tune_storage(store),
            progress_reporter=_progress_reporter(source.members_to_run, spec.report_every_s),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            stop=stopper,
        ),
    )
    errors = {}
    results = tuner.fit()
    for r in (results[i] for i in range(len(results))):  # ResultGrid indexes; its annotations say nothing of iteration
        pid = (r.config or {}).get("pack", {}).get("pack_id")
        if r.error is not None and pid is not None:
            errors[pid] = _error_text(r.error)
    return errors, stopper.full

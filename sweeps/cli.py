"""`grok`: run sweeps, look at them, train a pack without Ray.

    grok sweep SPEC [--results DIR] [--address ADDR] [--dry-run] [--repair] [--force]
    grok slurm SPEC --results DIR --nodes N --gpus-per-node G --time HH:MM:SS (sweeps/slurm.py)
    grok status DIR
    grok check DIR
    grok train [SPEC] [--FIELD VALUE ...] [--seeds N]
    grok report DIR
    grok export DIR RUN_ID [--epoch E] [--out FOLDER]
    grok measure DIR [--measures embed_coords,fourier,fourier_entropy,llc] [--epochs E,...] [--replace] [--llc-every N]
    grok push DIR --to mlflow|wandb|tensorboard [TARGET]

Imports stay inside the subcommands so that `grok --help` is instant (no torch, ray, optuna).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from grokcore.progress.registry import SWITCHABLE, SWITCHED_ON

EXIT_OK, EXIT_FAILED, EXIT_SPEC, EXIT_UNFINISHED = 0, 1, 2, 3
FORCE_HELP = (
    "take the sweep's lease from a writer that still looks alive (one you know is gone); without it a "
    "second writer refuses, and a lease not renewed for 2 min is taken over anyway"
)
CHECK_DOC = (
    "Read every commit record, Parquet footer and snapshot header of a sweep and its rows: one runs row per "
    "member, each member's evaluations once each, none missing (sweeps/check.py). Exit 0 when all is well, "
    "1 with a summary when not; grok sweep SPEC --repair mends what it finds."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grok", description="Grokking sweeps: packs of small models on Ray Tune, results in Parquet."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "sweep",
        help="run (or continue) a sweep from a YAML spec",
        description="Run every member of a sweep spec as packs on Ray Tune. Running it again on "
        "the same results continues: finished members are skipped, unfinished packs "
        "continue from their checkpoints.",
        epilog=_spec_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", help="the sweep spec (YAML); see sweeps/examples/")
    p.add_argument("--results", help="results location (path, shared mount or s3:// URI); overrides the spec's")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="change a spec setting, checked like the file (repeatable): --set base.lr=3e-3 "
        "--set resources.cpus=2 --set axes.weight_decay=[0.3,1]",
    )
    p.add_argument(
        "--address",
        help="a running Ray cluster (e.g. ray://head:10001 or head:6379); "
        "default: RAY_ADDRESS if set, else a local Ray started here",
    )
    p.add_argument("--dry-run", action="store_true", help="print members, packs, trials and model-epochs, then exit")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--no-retry-failed", action="store_true", help="keep members that failed before as failed")
    p.add_argument(
        "--repair",
        action="store_true",
        help="train again the packs whose committed files are damaged or missing (grok check DIR lists "
        "them) and check their new rows equal the surviving ones; nothing else is rewritten",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress table")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument(
        "--watch",
        nargs="?",
        const="default",
        metavar="PORT",
        help="serve the live report beside the driver on 127.0.0.1:PORT (default: grok report DIR --watch's port)",
    )

    p = sub.add_parser(
        "check",
        help="verify a sweep's committed files and rows; non-zero exit when anything is wrong",
        description=CHECK_DOC,
    )
    p.add_argument("dir", help="<results>/<name> of a sweep (a path, mount or s3:// URI)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    from sweeps import slurm  # light: its heavy imports are inside its functions

    slurm.add_parser(sub)

    p = sub.add_parser("status", help="members done, generalised, failed and running, from the Parquet tables")
    p.add_argument("dir", help="<results>/<name> of a sweep (or <results> for every sweep in it)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser(
        "train",
        help="train one pack without Ray, for quick looks (grok train --help)",
        add_help=False,
        prefix_chars="\0",
    ).add_argument("args", nargs=argparse.REMAINDER)

    p = sub.add_parser(
        "export",
        help="write one member's snapshot as grokcore's export (safetensors + config.json)",
        description="Write a member's weights at a snapshot epoch to a folder that "
        "grokcore.export.load_member reads (and hooked_transformer turns into a "
        "TransformerLens 2.x/3.x HookedTransformer). Needs the sweep's snapshots: setting.",
    )
    p.add_argument("dir", help="<results>/<name> of a sweep (a path, mount or s3:// URI)")
    p.add_argument("run_id", help="the member (see grok status or the runs table)")
    p.add_argument("--epoch", type=int, help="the snapshot's epoch (default: the member's last snapshot)")
    p.add_argument("--out", help="the folder to write (default: export-<run_id>-<epoch> here)")

    p = sub.add_parser(
        "measure",
        help="recompute progress measures offline from a sweep's snapshots",
        description="Measure the snapshots of a sweep's finished packs (sweeps/measure.py) and merge "
        "the rows into the progress table, one row per member and epoch: epochs with no "
        "row gain one, rows lacking a measure gain its columns; --replace overwrites "
        "the measured columns (e.g. a finer LLC). A rerun writes nothing twice.",
    )
    p.add_argument("dir", help="<results>/<name> of a sweep with snapshots (a path, mount or s3:// URI)")
    p.add_argument(
        "--measures",
        default=",".join(SWITCHED_ON),
        help=f"comma-separated: {', '.join(SWITCHABLE)} (grokcore.progress.registry; the embedding's "
        f"geometry is always measured; default: {','.join(SWITCHED_ON)})",
    )
    p.add_argument("--epochs", help="comma-separated snapshot epochs (default: all)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the measured columns of rows that have them (default: only fill what is missing)",
    )
    p.add_argument(
        "--llc-every",
        type=int,
        metavar="N",
        help="the LLC at every N-th progress epoch, as online (default 2); 1: at every snapshot epoch",
    )
    p.add_argument(
        "--sgld",
        metavar="KEY=VALUE,...",
        help="SGLD settings of the LLC (grokcore.progress.SGLDSettings), e.g. chains=8,draws=100",
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")

    p = sub.add_parser(
        "push",
        help="log every member as its own run in MLflow, W&B or TensorBoard (sweeps/trackers.py)",
        description="Push the committed rows of a sweep to a tracker, one run per member with its "
        "config, per-evaluation metrics and progress measures, outcome and sweep/pack/cell "
        "tags. Run it again (also while the sweep runs): only what the tracker lacks goes.",
    )
    p.add_argument("dir", help="<results>/<name> of a sweep (a path, mount or s3:// URI)")
    p.add_argument(
        "--to",
        required=True,
        nargs="+",
        metavar=("TRACKER", "TARGET"),
        help="mlflow, wandb (offline runs) or tensorboard, then where: MLflow's tracking URI (default: "
        "MLFLOW_TRACKING_URI), W&B's directory for its wandb/ folder (default: here), TensorBoard's "
        "log directory (required)",
    )

    p = sub.add_parser("report", help="write the analysis report of a sweep (analysis.report)", prefix_chars="\0")
    p.add_argument("args", nargs=argparse.REMAINDER, help="DIR [options of analysis.report]")
    return parser


def _spec_settings_help() -> str:
    """The spec's settings with their defaults, from SweepSpec's field docstrings (one list)."""
    import textwrap

    from sweeps.spec import SPEC_DEFAULTS, SPEC_DOCS

    lines = ["spec settings (YAML keys; --set KEY=VALUE changes one):"]
    for key, doc in SPEC_DOCS.items():
        top, _, sub = key.partition(".")
        default = SPEC_DEFAULTS[top] if not sub else SPEC_DEFAULTS[top][sub]
        shown = "required" if default is None and key == "name" else f"default {default!r}"
        lines += textwrap.wrap(f"{key} ({shown}): {doc}", width=100, initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from analysis.errors import AnalysisError  # light: no pyarrow

    args = build_parser().parse_args(argv)
    command = {
        "sweep": _sweep,
        "status": _status,
        "check": _check,
        "train": _train,
        "report": _report,
        "export": _export,
        "measure": _measure,
        "slurm": _slurm,
        "push": _push,
    }[args.command]
    try:
        code = command(args)
        sys.stdout.flush()  # inside the try: a reader that left (`| head`) shows up here, not at exit
        return code
    except KeyboardInterrupt:
        print(f"\ninterrupted; {_after_interrupt(args)}", file=sys.stderr)
        return 130
    except AnalysisError as e:  # a damaged file of the sweep (grokcore.damage.DamagedFile), found by any command
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `grok status DIR | head`: the reader left; that is not an error
        _silence_stdout()
        return EXIT_OK


def _after_interrupt(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves, per command: only sweeps and `grok train --results` can continue."""
    if args.command == "sweep":
        return "run the same command again to continue (committed work is kept)"
    if args.command == "train":
        if any(a == "--results" or a.startswith("--results=") for a in args.args):
            return "run the same command again to continue from the last checkpoint"
        return (
            "nothing was kept: without --results, grok train keeps no rows or checkpoints (add --results DIR "
            "to keep them and continue by running the same command again)"
        )
    return "nothing to continue"


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at devnull so the interpreter's final flush is quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _sweep(args: argparse.Namespace) -> int:
    from sweeps.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec, args.overrides)
        if spec.search is None:
            spec.members()  # a grid's members are checked before anything starts (a search's as it asks)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    from sweeps.launch import check_local_resources, dry_run, on_local_ray, run_sweep

    if on_local_ray(args.address):
        try:
            check_local_resources(spec, args.num_cpus)
        except SpecError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_SPEC
    try:
        if args.dry_run:
            print(dry_run(spec, args.results))
            return EXIT_OK
    except RuntimeError as e:  # a damaged committed file, storage that cannot be read
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    import contextlib

    from sweeps.parquet import sweep_uri
    from sweeps.trackers import Pushing

    location = sweep_uri(args.results or spec.results, spec.name)
    from analysis.errors import AnalysisError

    try:
        watching = _watching(args.watch, location) or contextlib.nullcontext()
    except AnalysisError as e:  # the port is taken
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    try:
        with Pushing(spec.trackers, location), watching:
            result = run_sweep(
                spec,
                results=args.results,
                address=args.address,
                verbose=0 if args.quiet else 1,
                num_cpus=args.num_cpus,
                retry_failed=not args.no_retry_failed,
                force=args.force,
                repair=args.repair,
            )
    except RuntimeError as e:  # resources the cluster lacks, storage the nodes cannot see, another writer, a full disk
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except SpecError as e:  # found only when running: a study of this name that optimises the other way
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    if result.failed_packs:
        return EXIT_FAILED
    return EXIT_OK if result.ok else EXIT_UNFINISHED


def _slurm(args: argparse.Namespace) -> int:
    """`grok slurm`: exit 0 submitted (or written), 2 a bad spec or option, 1 sbatch refused."""
    from sweeps.slurm import SlurmError, SlurmJob, prepare_and_submit
    from sweeps.spec import SpecError

    job = SlurmJob(
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpus_per_node=args.cpus_per_node,
        time=args.time,
        partition=args.partition,
        account=args.account,
        mem=args.mem,
        requeue=args.requeue,
        sbatch_args=tuple(args.sbatch_args),
    )
    try:
        done = prepare_and_submit(args.spec, args.overrides, args.results, job, submit=not args.no_submit)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    except SlurmError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED if str(e).startswith("sbatch refused") else EXIT_SPEC
    print(f"script: {done.script}")
    if done.job_id is None:
        print(f"not submitted (--no-submit); submit it with: sbatch {done.script}")
        return EXIT_OK
    print(f"submitted job {done.job_id}; its log: {done.output}")
    print(
        "follow it with `grok status` on the sweep's folder; stop it with "
        f"`scancel {done.job_id}`; run this command again to continue after a time limit"
    )
    return EXIT_OK


def _watching(port: int | str | None, location: str):
    """`grok sweep --watch`: the live report of this sweep (analysis/watch.py) while the driver runs."""
    if port is None:
        return None
    from analysis.errors import AnalysisError
    from analysis.watch import DEFAULT_PORT, Watching

    if port != "default" and not str(port).isdigit():
        raise AnalysisError(f"--watch: a port number (or nothing, for {DEFAULT_PORT}), got {port!r}")
    watching = Watching([location], None, port=DEFAULT_PORT if port == "default" else int(port))
    print(f"live report at {watching.url}", file=sys.stderr, flush=True)
    return watching


def _status(args: argparse.Namespace) -> int:
    from sweeps.status import find_sweeps, format_status, sweep_status

    sweeps = find_sweeps(args.dir)
    if not sweeps:
        print(f"error: no sweep results at {args.dir}", file=sys.stderr)
        return EXIT_FAILED
    states = [sweep_status(s) for s in sweeps]
    if args.json:
        print(json.dumps([s.to_dict() for s in states], indent=1))
    else:
        print("\n\n".join(format_status(s) for s in states))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from sweeps.check import check_sweep, format_check
    from sweeps.parquet import SweepStore, split_location
    from sweeps.status import find_sweeps

    sweeps = find_sweeps(args.dir)
    if not sweeps:
        print(f"error: no sweep results at {args.dir}", file=sys.stderr)
        return EXIT_FAILED
    reports = [check_sweep(SweepStore(*split_location(s))) for s in sweeps]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
    else:
        print("\n\n".join(format_check(r) for r in reports))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED


def _train_parser() -> argparse.ArgumentParser:
    from grokcore.config import allowed_values, config_fields, field_docs

    p = argparse.ArgumentParser(
        prog="grok train",
        description="Train members as one pack in this process (no Ray) and print how each "
        "ended. Members: a spec's expansion (first pack, or all with --all), or one config from the defaults "
        "and the --FIELD options below, with --seeds replicates.",
    )
    p.add_argument("spec", nargs="?", help="a sweep spec (optional); --FIELD options override its base")
    p.add_argument("--seeds", type=int, default=1, help="replicates (seed, seed+1, ...) when no spec is given")
    p.add_argument("--all", action="store_true", help="train every pack of the spec, one after another")
    p.add_argument("--limit", type=int, help="train at most this many members")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--results", help="also write the Parquet tables here (under the spec's name, or 'train')")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--every", type=int, default=1, help="print every N-th evaluation")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (or the spec's tf32: true)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile the training step with torch.compile (or the spec's torch_compile: true)",
    )
    p.add_argument(
        "--snapshots",
        metavar="YAML",
        help="keep members' weights under --results (or the spec's "
        "snapshots:), e.g. '{every: 100, events: [train_99, test_99, end], dtype: bfloat16}'",
    )
    docs = field_docs()
    group = p.add_argument_group("RunConfig fields (YAML values: 0.3, 1e-3, null, [0, 1, 2])")
    for name in config_fields():
        allowed = allowed_values(name)
        extra = f" One of {', '.join(map(str, allowed))}." if allowed else ""
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        group.add_argument(
            *flags, dest=f"field_{name}", metavar="V", help=(docs.get(name, "") + extra).replace("%", "%%")
        )
    return p


def _train(args: argparse.Namespace) -> int:
    import contextlib
    import time

    import yaml

    from grokcore import RunConfig
    from grokcore.config import ConfigError
    from grokcore.train import interactive
    from sweeps.lease import hold
    from sweeps.packing import cut_packs
    from sweeps.parquet import SweepStore, results_location
    from sweeps.runner import PackSettings, pick_device, run_pack
    from sweeps.spec import SpecError, _Loader, load_spec

    parser = _train_parser()
    targs, unknown = parser.parse_known_args(args.args)
    if unknown:
        print(f"error: {_unknown_options(parser, unknown)}", file=sys.stderr)
        return EXIT_SPEC
    overrides = {}
    for key, value in vars(targs).items():
        if key.startswith("field_") and value is not None:
            overrides[key[6:]] = yaml.load(value, Loader=_Loader)
    try:
        if targs.spec:
            spec = load_spec(targs.spec)
            if overrides:
                spec = spec.with_base(overrides)
            if spec.search is not None:
                raise SpecError(
                    spec.source,
                    "search",
                    "grok train trains fixed members; a search picks its members as it goes: run it with grok sweep",
                )
            members = spec.members()
            name, pack_size, gpus = spec.name, spec.pack_size, 0.0
            options: dict[str, bool] = {
                "tf32": spec.tf32 or targs.tf32,
                "torch_compile": spec.torch_compile or targs.compile,
            }
            snapshots, thresholds = spec.snapshots, spec.thresholds
        else:
            members = [RunConfig(**{**overrides, "seed": overrides.get("seed", 0) + r}) for r in range(targs.seeds)]
            name, pack_size, gpus = "train", None, 0.0
            options = {"tf32": targs.tf32, "torch_compile": targs.compile}
            snapshots, thresholds = None, None
        if targs.snapshots:
            from grokcore.snapshots import SnapshotSchedule

            given = yaml.load(targs.snapshots, Loader=_Loader)
            if not isinstance(given, dict):
                raise ValueError(
                    f"--snapshots: a mapping like '{{every: 100, events: [end]}}', got {targs.snapshots!r}"
                )
            snapshots = SnapshotSchedule.from_dict(given).to_dict()
    except (SpecError, ConfigError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    if snapshots and not targs.results:
        print("note: snapshots are kept only with --results DIR", file=sys.stderr)
    if targs.limit:
        members = members[: targs.limit]
    device = pick_device("auto", 1.0) if targs.device == "auto" else targs.device
    packs = cut_packs(members, pack_size, 1.0 if device.startswith("cuda") else gpus)
    if not targs.all:
        packs = packs[:1]
    from sweeps.parquet import sweep_uri
    from sweeps.trackers import Pushing

    held = contextlib.ExitStack()
    try:
        if targs.results:  # the sweep's lease, as `grok sweep` takes it: one writer at a time
            held.enter_context(hold(SweepStore(results_location(targs.results), name), "grok train", targs.force))
        if targs.spec and targs.results:  # the spec's trackers: get the rows as they commit
            held.enter_context(Pushing(spec.trackers, sweep_uri(targs.results, name)))
        with held:
            for pack in packs:
                print(
                    f"{pack.pack_id}: {len(pack.members)} members, {pack.members[0].task} p={pack.members[0].p}, "
                    f"{max(m.epochs for m in pack.members)} epochs at most, on {device}",
                    flush=True,
                )
                start = time.monotonic()
                if targs.results:
                    # checkpointed, so that running the same command again continues the pack
                    settings = PackSettings(
                        results=results_location(targs.results),
                        name=name,
                        device=device,
                        checkpoints=True,
                        checkpoint_every_s=30.0,
                        report_every_s=2.0,
                        snapshots=snapshots,
                        thresholds=thresholds,
                        tf32=options["tf32"],
                        torch_compile=options["torch_compile"],
                    )
                    bar = interactive()
                    final = run_pack(
                        pack,
                        settings,
                        progress_bar=bar,
                        report=None if bar else lambda m: print(_progress_line(m), flush=True),
                    )
                    print(_progress_line(final))
                    print(f"rows written under {settings.results}/{name}")
                else:
                    _train_in_memory(pack, device, targs.every, options)
                print(f"{time.monotonic() - start:.1f} s")
    except RuntimeError as e:  # another writer holds the sweep, a full disk
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _unknown_options(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """`--weight_decy 1` -> "unknown option --weight_decy (did you mean --weight_decay?)"."""
    import difflib
    import re

    known = sorted(set(re.findall(r"--[A-Za-z0-9_-]+", parser.format_help())))
    flags = [u.split("=", 1)[0] for u in unknown if u.startswith("-")]
    if not flags:
        return f"unexpected argument(s) {' '.join(unknown)}; grok train takes one spec and --FIELD VALUE options"
    parts = []
    for flag in flags:
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.7)
        parts.append(f"unknown option {flag}" + (f" (did you mean {close[0]}?)" if close else ""))
    return "; ".join(parts) + " (grok train --help lists them)"


def _progress_line(m: dict) -> str:
    acc = m.get("test_acc_latest")
    return (
        f"  epoch {m['epoch']:>6}  live {m['members_live']:>4}  finished {m['members_finished']:>4}  "
        f"generalised {m['members_generalised']:>4}  test acc {'-' if acc is None else f'{acc:.3f}'}"
    )


def _train_in_memory(pack, device: str, every: int, options: dict[str, bool]) -> None:
    from grokcore import PackTrainer
    from grokcore.train import interactive

    trainer = PackTrainer(list(pack.members), device=device, **options)
    outcomes = []
    bar = interactive()  # a terminal gets the trainer's progress bar, a log gets a line per evaluation
    for i, rep in enumerate(trainer.run(progress=bar)):
        outcomes.extend(rep.finished)
        if not bar and rep.metrics and (i % max(every, 1) == 0 or rep.live == 0):
            n = len(rep.metrics)
            tr = sum(r["train/acc"] for r in rep.metrics) / n
            te = sum(r["test/acc"] for r in rep.metrics) / n
            print(
                f"  epoch {rep.epoch:>6}  live {rep.live:>4}  train acc {tr:.3f}  test acc {te:.3f}  "
                f"({rep.train_seconds:.1f} s)",
                flush=True,
            )
    print(f"  {'run_id':<24} {'status':<9} {'train99':>8} {'test99':>8} {'test acc':>9}")
    for o in outcomes:
        row = o.to_row()
        print(
            f"  {o.run_id:<24} {o.status:<9} {_epoch(row['epoch_train_99']):>8} {_epoch(row['epoch_test_99']):>8} "
            f"{row['final/test/acc']:>9.3f}"
        )


def _epoch(e) -> str:
    return "-" if e is None else str(e)


def _export(args: argparse.Namespace) -> int:
    from grokcore.export import save_member
    from grokcore.snapshots import load_snapshot

    try:
        cfg, weights = load_snapshot(args.dir, args.run_id, args.epoch)
    except (KeyError, FileNotFoundError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:  # safetensors' own errors: name the damaged file if that is what it was
        from analysis.load import _open
        from grokcore.damage import check_snapshot_files

        check_snapshot_files(*_open(args.dir))
        raise
    if args.epoch is None:  # the last snapshot's epoch, for the folder's name
        from grokcore.snapshots import list_snapshots

        args.epoch = list_snapshots(args.dir, args.run_id)[-1]["epoch"]
    out = save_member(args.out or f"export-{args.run_id}-{args.epoch}", cfg, weights)
    print(f"{args.run_id} at epoch {args.epoch} -> {out} (grokcore.export.load_member)")
    return EXIT_OK


def _measure(args: argparse.Namespace) -> int:
    from grokcore.damage import DamagedFile
    from sweeps.measure import measure_snapshots

    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    try:
        epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else None
        sgld = dict(_sgld_setting(kv) for kv in args.sgld.split(",") if kv.strip()) if args.sgld else None
        result = measure_snapshots(
            args.dir,
            measures,
            epochs,
            device=args.device,
            replace_values=args.replace,
            llc_every=args.llc_every,
            sgld=sgld,
            force=args.force,
        )
    except DamagedFile as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    except RuntimeError as e:  # another writer holds the sweep, a full disk
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"{result.rows_added} progress rows added, {result.rows_changed} changed, in {result.packs_rewritten} "
        f"pack(s), under {args.dir}/progress"
    )
    if result.skipped_unfinished:
        print(
            f"left out: {sum(result.skipped_unfinished.values())} snapshots of {len(result.skipped_unfinished)} "
            "unfinished pack(s); measure them once the sweep has finished them",
            file=sys.stderr,
        )
    return EXIT_OK


def _sgld_setting(text: str) -> tuple[str, float | int | None]:
    """'chains=8' -> ('chains', 8): numbers, or none for a setting left to its rule."""
    key, sep, value = text.strip().partition("=")
    if not sep:
        raise ValueError(f"--sgld: KEY=VALUE pairs separated by commas, got {text!r}")
    value = value.strip()
    if value.lower() in ("none", "null"):
        return key.strip(), None
    try:
        return key.strip(), int(value)
    except ValueError:
        try:
            return key.strip(), float(value)
        except ValueError:
            raise ValueError(f"--sgld {key.strip()}: a number or none, got {value!r}") from None


def _push(args: argparse.Namespace) -> int:
    from sweeps.trackers import TrackerError, push, require

    if len(args.to) > 2:
        print(f"error: --to: a tracker and at most one target, got {' '.join(args.to)}", file=sys.stderr)
        return EXIT_SPEC
    tracker, target = args.to[0], (args.to[1] if len(args.to) > 1 else None)
    try:
        require(tracker)
        pushed = push(args.dir, tracker, target, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except TrackerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_SPEC
    print(f"{args.dir} -> {' '.join(args.to)}: {pushed}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    if not args.args:
        print("usage: grok report DIR [options]", file=sys.stderr)
        return EXIT_SPEC
    from analysis import report  # lazily: plotting stacks are heavy

    if hasattr(report, "main"):
        return int(report.main(list(args.args)) or 0)
    report.write_report(args.args[0])
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

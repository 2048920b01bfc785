"""Cost of planning, `grok status`, `load_sweep` and `grok report` as a sweep grows (issue 17).

    python benchmarks/scale.py                       # 1k and 10k members
    python benchmarks/scale.py --members 1000,10000,100000
    python benchmarks/scale.py --keep /tmp/scale     # keep the synthetic sweeps (rebuilt only if absent)

Each size is a synthetic sweep in the project's own layout, written with its own writers
(SweepStore.write_part with runs_schema / metrics_schema, commit records, plan.json from the
grid source's prepare): a 10 x 10 grid of train fraction x weight decay with N / 100 replicates,
packs of `--pack-size` members, each pack committed in `--commits` batches of parts (what a pack
that checkpoints every few minutes leaves, then compacted as a finished pack is; `--no-compact`
keeps them), `--evals` metric rows per member. No training runs.

Every step runs in a fresh process, as a user would run it, and is timed from outside (imports
included); its peak memory is that process's max RSS. Printed per size:

  plan s     `grok sweep SPEC --dry-run` against the finished sweep (expand, run_ids, pack, read runs)
  status s   `grok status DIR`
  load s/GB  `analysis.load_sweep(DIR)`
  report s/GB `grok report DIR --no-png`; html MB: the size of report/index.html
  watch s    `grok report DIR --watch` (analysis/watch.py): its first build, then the rebuild after one
             pack's commit (the pack's parts held back, then moved in) side by side with the full report

then one JSON line with every figure. Goals on a 2-core machine at 100k members (issue 17): plan
< 10 s, status < 5 s, load_sweep < 15 s and 1.5 GB, report < 30 s and 1.5 GB, HTML < 10 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = 10  # train fractions x weight decays: GRID * GRID cells, replicates make up the rest


def spec_text(n_members: int, pack_size: int) -> str:
    replicates = max(1, n_members // (GRID * GRID))
    fractions = [round(0.2 + 0.06 * i, 2) for i in range(GRID)]
    decays = [round(0.1 * 1.5**i, 4) for i in range(GRID)]
    return (
        f"name: scale{n_members}\n"
        "base: {task: add, p: 31, model: transformer, n_layers: 1, n_heads: 4, d_model: 32, d_mlp: 128,\n"
        "       lr: 3.0e-3, epochs: 3000, eval_every: 50}\n"
        f"axes:\n  train_fraction: {fractions}\n  weight_decay: {decays}\n"
        f"replicates: {replicates}\npack_size: {pack_size}\nresources: {{cpus: 1, gpus: 0}}\n"
    )


def build(spec_path: Path, results: Path, commits: int, evals: int, compact: bool = True) -> None:
    """Write the finished sweep: every pack's parts in `commits` batches, its records, plan.json."""
    import random

    from grokcore.records import METRIC_COLUMNS
    from sweeps.grid_source import prepare
    from sweeps.parquet import metrics_schema, runs_schema
    from sweeps.spec import load_spec

    spec = load_spec(spec_path)
    prep = prepare(spec, str(results), write=True)  # writes sweep.yaml and plan.json, as the driver does
    store, rng = prep.store, random.Random(0)
    r_schema, m_schema = runs_schema(), metrics_schema()
    for pack in prep.plan.packs:
        members = pack.members
        per_commit = -(-len(members) // commits)
        for seq in range(commits):
            batch = members[seq * per_commit : (seq + 1) * per_commit]
            runs, metrics = [], []
            for cfg in batch:
                rid = cfg.run_id
                memorised = rng.randrange(1, evals) * cfg.eval_every
                generalised = memorised + rng.randrange(0, evals) * cfg.eval_every
                generalised = generalised if generalised < evals * cfg.eval_every else None
                runs.append(
                    {
                        "run_id": rid,
                        "pack_id": pack.pack_id,
                        "trial_id": "t0",
                        **cfg.to_dict(),
                        "status": "done",
                        "error": None,
                        "epochs_trained": evals * cfg.eval_every,
                        "epoch_train_99": memorised,
                        "epoch_test_99": generalised,
                        "final/train/loss": 0.01,
                        "final/train/acc": 1.0,
                        "final/test/loss": 0.5,
                        "final/test/acc": 1.0 if generalised else 0.3,
                        "wall_seconds": 60.0,
                        "device": "cpu",
                        "optuna_trial": None,
                    }
                )
                for k in range(1, evals + 1):
                    epoch = k * cfg.eval_every
                    train_acc = 1.0 if epoch >= memorised else epoch / memorised
                    test_acc = 1.0 if generalised and epoch >= generalised else 0.1 + 0.2 * rng.random()
                    row = dict.fromkeys(METRIC_COLUMNS)
                    row.update(
                        {
                            "run_id": rid,
                            "epoch": epoch,
                            "train/loss": 1 - train_acc + 1e-3,
                            "train/acc": train_acc,
                            "test/loss": 1 - test_acc + 1e-3,
                            "test/acc": test_acc,
                            "weight_norm": 30.0 - epoch / 1000,
                        }
                    )
                    metrics.append(row)
            if runs:
                store.write_part("runs", pack.pack_id, seq, runs, r_schema)
                store.write_part("metrics", pack.pack_id, seq, metrics, m_schema)
        store.write_record(
            pack.pack_id,
            {
                "pack_id": pack.pack_id,
                "members": pack.run_ids,
                "seq": commits,
                "trainer": None,
                "done": True,
                "epoch": evals * 50,
                "trial_id": "t0",
                "train_seconds": 60.0,
                "updated": time.time(),
                "node": "bench",
            },
        )
        if compact:
            store.compact_pack(pack.pack_id)  # as run_pack does when a pack finishes
    store.write_json("driver.json", {"state": "ended"})


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak GB of one fresh process (peak read from the child's own rusage via a wrapper)."""
    wrapper = (
        "import resource, runpy, sys; sys.argv = sys.argv[1:]\n"
        "try:\n    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "finally:\n    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    rss_kb = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS")][-1]
    return seconds, rss_kb / 1e6


def measure(n: int, work: Path, args: argparse.Namespace) -> dict:
    spec_path = work / f"scale{n}.yaml"
    results = work / "results"
    sweep = results / f"scale{n}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    built = 0.0
    if not (sweep / "plan.json").exists():
        spec_path.write_text(spec_text(n, args.pack_size))
        start = time.perf_counter()
        build(spec_path, results, args.commits, args.evals, compact=not args.no_compact)
        built = time.perf_counter() - start
    plan_s, _ = timed(["sweeps.cli", "sweep", str(spec_path), "--results", str(results), "--dry-run"], env)
    status_s, _ = timed(["sweeps.cli", "status", str(sweep)], env)
    load_s, load_gb = timed(["benchmarks.scale", "--load", str(sweep)], env)
    report_s, report_gb = timed(["sweeps.cli", "report", str(sweep), "--no-png"], env)
    watch_first_s, watch_commit_s = json.loads(
        subprocess.run(
            [sys.executable, "-m", "benchmarks.scale", "--watch-step", str(sweep)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()[-1]
    )
    html = sweep / "report" / "index.html"
    parts = sum(1 for _ in (sweep / "metrics").glob("part-*.parquet"))
    return {
        "members": n,
        "metric_parts": parts,
        "build_s": round(built, 1),
        "plan_s": round(plan_s, 1),
        "status_s": round(status_s, 1),
        "load_s": round(load_s, 1),
        "load_gb": round(load_gb, 2),
        "report_s": round(report_s, 1),
        "report_gb": round(report_gb, 2),
        "watch_first_s": round(watch_first_s, 1),
        "watch_commit_s": round(watch_commit_s, 1),
        "html_mb": round(html.stat().st_size / 1e6, 1),
    }


def watch_step(sweep: Path) -> tuple[float, float]:
    """The live report's first build, then its rebuild after one pack commits: the last pack's parts are
    moved aside before the first build and back before the rebuild (a commit moves whole files in)."""
    from analysis.derive import Thresholds
    from analysis.watch import LiveReport

    held = sweep.parent / f".held-{sweep.name}"
    held.mkdir(exist_ok=True)
    pack = max(p.name for p in (sweep / "runs").glob("part-*.parquet")).rsplit("-", 1)[0]
    moved = [
        (part, held / f"{part.parent.name}-{part.name}")
        for table in ("runs", "metrics")
        for part in (sweep / table).glob(f"{pack}-*.parquet")
    ]
    for part, aside in moved:
        os.replace(part, aside)
    try:
        live = LiveReport([str(sweep)], Thresholds())
        start = time.perf_counter()
        live.rebuild()
        first = time.perf_counter() - start
    finally:
        for part, aside in moved:
            os.replace(aside, part)
        held.rmdir()
    start = time.perf_counter()
    assert live.rebuild() and live.snapshot.parts_read == len(moved), live.snapshot
    commit = time.perf_counter() - start
    print(f"rebuild after one pack's commit, per step (s): {live.snapshot.steps}", file=sys.stderr)
    return first, commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="1000,10000", help="comma-separated sweep sizes")
    parser.add_argument("--pack-size", type=int, default=64, help="members per pack")
    parser.add_argument("--commits", type=int, default=4, help="batches of parts each pack writes")
    parser.add_argument("--evals", type=int, default=20, help="metric rows per member")
    parser.add_argument(
        "--no-compact",
        action="store_true",
        help="leave every commit's parts, as sweeps did before compaction (issue 17)",
    )
    parser.add_argument("--keep", help="build the sweeps here and keep them (default: a temporary directory)")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the load_sweep step, in its own process
    parser.add_argument("--watch-step", help=argparse.SUPPRESS)  # the live report's steps, in its own process
    args = parser.parse_args()
    if args.watch_step:
        print(json.dumps(watch_step(Path(args.watch_step))))
        return
    if args.load:
        from analysis import load_sweep

        sweep = load_sweep(args.load)
        print(len(sweep.runs), len(sweep.metrics))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="grok-scale-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        header = (
            f"{'members':>8} {'parts':>6} {'plan s':>7} {'status s':>9} {'load s':>7} {'load GB':>8} "
            f"{'report s':>9} {'report GB':>10} {'html MB':>8} {'watch first s':>14} {'watch commit s':>15}"
        )
        print(header, flush=True)
        for n in (int(x) for x in args.members.split(",")):
            r = measure(n, work, args)
            rows.append(r)
            print(
                f"{r['members']:>8,} {r['metric_parts']:>6} {r['plan_s']:>7} {r['status_s']:>9} {r['load_s']:>7} "
                f"{r['load_gb']:>8} {r['report_s']:>9} {r['report_gb']:>10} {r['html_mb']:>8} "
                f"{r['watch_first_s']:>14} {r['watch_commit_s']:>15}",
                flush=True,
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

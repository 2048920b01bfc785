"""`grok slurm`: a sweep as one SLURM job, with Ray started on the job's nodes the way Ray's own
SLURM guide does it (the head on the first node, a worker on each other node, each under `srun`,
the driver next to the head).

    grok slurm SPEC --results DIR --nodes 2 --gpus-per-node 4 --time 04:00:00 [--partition P] [--account A]

writes `<results>/<name>/slurm/<name>.sbatch` (readable, to edit and `sbatch` by hand) and submits
it; `<results>/<name>/slurm.json` lists the jobs submitted, which `grok status` shows with their
state. Everything is checked before submission, with the errors of a local run: the spec, its
members, that one trial fits one node of the job, that the results location can be written.

What the script does on the nodes (its own comments say the same):
- Ray's fixed default ports (6379 for the head, 10001 for the client server, 52365 for the dashboard
  agent) are replaced by free ports picked on each node as it starts (`start_ray_node`), so two
  jobs that share a node never clash; Ray's other ports are random or retried by Ray itself.
- Ray's temp dir is on node-local disk (`$SLURM_TMPDIR`, else `$TMPDIR`, else /tmp), one per job
  and node; the results location must be shared (a mount every node sees, or s3://...).
- A fresh Ray token per job (`RAY_AUTH_MODE=token`): other users of a shared node cannot join.
- At the time limit, on `scancel` or pre-emption SLURM sends SIGTERM and, after its grace time,
  SIGKILL. Nothing committed is lost either way (every file is written whole or not at all and
  the driver removes a killed pack's leftovers: docs/design.md, "the commit invariant"), so the
  script needs no signal handling to be safe; it only logs the signal. Resubmitting (the same
  command, `sbatch` of the script, or SLURM's own requeue with --requeue) continues the sweep.

The `python -m sweeps.slurm ...` helpers below are what the script calls on the nodes.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from grokcore.layout import SLURM_DIR
from sweeps.slurm_jobs import ENDED_STATES, JOBS_FILE, job_ended, job_state, latest_job  # noqa: F401

# SLURM's --time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_TIME = re.compile(
    r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})$"
)
# CPU-only jobs: trials per node when --cpus-per-node is not given
DEFAULT_CPU_TRIALS_PER_NODE = 4


@dataclass(frozen=True)
class SlurmJob:
    """What the job asks SLURM for (one task per node; the field docs are --help's)."""

    nodes: int = 1
    """nodes of the job: Ray's head runs on the first, a Ray worker on each other one"""
    gpus_per_node: int = 0
    """GPUs per node (--gres=gpu:G); trials share them as the spec's resources.gpus says"""
    cpus_per_node: int | None = None
    """CPUs per node (--cpus-per-task of the one task per node; default: what the node's trials need)"""
    time: str = "04:00:00"
    """the time limit (SLURM's formats: MM, HH:MM:SS, D-HH:MM:SS); resubmit to continue past it"""
    partition: str | None = None
    account: str | None = None
    mem: str | None = None
    """memory per node (--mem, e.g. 32G; default: the partition's)"""
    requeue: bool = False
    """ask SLURM to requeue the job when it is pre-empted (it then continues by itself)"""
    sbatch_args: tuple[str, ...] = field(default_factory=tuple)
    """more #SBATCH lines, e.g. --sbatch-arg=--qos=long --sbatch-arg=--constraint=a100"""

    def cpus_for(self, cpus_per_trial: float, gpus_per_trial: float) -> int:
        """--cpus-per-node, or as many trials' CPUs as the node's GPUs (or 4 CPU trials) hold."""
        if self.cpus_per_node is not None:
            return self.cpus_per_node
        if gpus_per_trial > 0 and self.gpus_per_node > 0:
            trials = max(1, int(self.gpus_per_node // gpus_per_trial))
        else:
            trials = DEFAULT_CPU_TRIALS_PER_NODE
        return max(1, int(-(-trials * cpus_per_trial // 1)))


class SlurmError(ValueError):
    """A bad option of `grok slurm` (names the option and what it allows)."""


def check_job(job: SlurmJob) -> None:
    if job.nodes < 1:
        raise SlurmError(f"--nodes: at least 1, got {job.nodes}")
    if job.gpus_per_node < 0:
        raise SlurmError(f"--gpus-per-node: 0 or more, got {job.gpus_per_node}")
    if job.cpus_per_node is not None and job.cpus_per_node < 1:
        raise SlurmError(f"--cpus-per-node: at least 1, got {job.cpus_per_node}")
    if not _TIME.match(job.time):
        raise SlurmError(
            f"--time: one of SLURM's formats MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, got {job.time!r}"
        )


# ---- the script -------------------------------------------------------------------------------------
def sbatch_script(
    *,
    name: str,
    spec_path: str,
    results: str,
    overrides: list[str],
    job: SlurmJob,
    cpus: int,
    output: str,
    workdir: str,
    python_bin: str,
    pythonpath: str | None,
) -> str:
    """The batch script's text: SLURM's options, then Ray on the nodes, the sweep, Ray stopped."""
    q = shlex.quote
    sbatch = [
        f"--job-name=grok-{name}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={cpus}",
        f"--time={job.time}",
        f"--output={output}",
        "--open-mode=append",
        f"--chdir={workdir}",
    ]
    if job.gpus_per_node:
        sbatch.append(f"--gres=gpu:{job.gpus_per_node}")
    sbatch += [f"--partition={job.partition}"] * bool(job.partition) + [f"--account={job.account}"] * bool(job.account)
    sbatch += [f"--mem={job.mem}"] * bool(job.mem) + ["--requeue"] * job.requeue + list(job.sbatch_args)
    # each Ray node's step asks for the node's GPUs itself, so SLURM puts them in its CUDA_VISIBLE_DEVICES
    step = "srun --nodes=1 --ntasks=1" + (f" --gres=gpu:{job.gpus_per_node}" if job.gpus_per_node else "")
    sweep_cmd = " ".join(
        ["grok", "sweep", q(spec_path), "--results", q(results), "--address", '"$address"']
        + [f"--set {q(o)}" for o in overrides]
    )
    env = [f'export PATH={q(python_bin)}:"$PATH"']
    if pythonpath:
        env.append(f"export PYTHONPATH={q(pythonpath)}")
    return f"""#!/bin/bash
# The sweep {name!r} as one SLURM job, written by `grok slurm` (sweeps/slurm.py). Edit it and
# resubmit by hand with `sbatch THIS_FILE`, or run the same `grok slurm` command again (which writes
# it anew). Either way the sweep continues: finished members are skipped and unfinished packs go on
# from their last checkpoint. The exit status is grok sweep's: 0 all done, 1 a pack failed,
# 2 a bad spec, 3 unfinished (stopped early); SLURM's own for a job it ended.
{chr(10).join(f"#SBATCH {a}" for a in sbatch)}

set -uo pipefail
{chr(10).join(env)}
unset RAY_ADDRESS  # this job's own Ray, never one from the submitting shell
# A fresh Ray token for this job only: every srun step inherits it; other users of a node cannot join.
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$(python -c 'import secrets; print(secrets.token_hex(32))')
export RAY_AUTH_TOKEN

# SIGTERM comes at the time limit, on scancel and on pre-emption (SIGKILL after the grace time).
# Every commit is whole or absent, so nothing committed is lost; resubmitting continues.
trap 'echo "grok slurm: $(date +%T) job $SLURM_JOB_ID got SIGTERM; committed work is kept, resubmit to continue"' TERM

# Ray on the job's nodes (Ray's SLURM guide): the head on the first node, which runs this script,
# a worker on each other one. Ports: free ones picked on each node, not Ray's fixed defaults, so
# jobs sharing a node do not clash; temp dirs on node-local disk (python -m sweeps.slurm start-ray
# --help; arguments after -- go to `ray start`).
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_ip=$(python -m sweeps.slurm node-ip "${{nodes[0]}}")
address="$head_ip:$(python -m sweeps.slurm free-port)"
ray_steps=()
{step} --nodelist="${{nodes[0]}}" python -m sweeps.slurm start-ray --head "$address" &
ray_steps+=($!)
for node in "${{nodes[@]:1}}"; do
  {step} --nodelist="$node" python -m sweeps.slurm start-ray "$address" &
  ray_steps+=($!)
done
stop_ray() {{  # srun passes SIGTERM on to `ray start --block`, which stops its node's Ray
  echo "grok slurm: $(date +%T) stopping Ray (srun reports its steps' end: 'forcing job termination')"
  kill -TERM "${{ray_steps[@]}}" 2>/dev/null
  wait "${{ray_steps[@]}}" 2>/dev/null
}}

echo "grok slurm: $(date +%T) starting Ray on ${{#nodes[@]}} node(s)"
if python -m sweeps.slurm wait-for-ray "$address" --nodes "${{#nodes[@]}}"; then
  {sweep_cmd} &
  driver=$!
  wait "$driver"
  status=$?
  if [ "$status" -gt 128 ] && kill -0 "$driver" 2>/dev/null; then  # the trap interrupted wait
    wait "$driver"
    status=$?
  fi
else
  status=1
fi
stop_ray
echo "grok slurm: $(date +%T) grok sweep exited with $status"
exit "$status"
"""


# ---- submitting -------------------------------------------------------------------------------------
@dataclass
class Submitted:
    script: str
    job_id: str | None  # None: written only (--no-submit)
    output: str


def prepare_and_submit(
    spec_path: str,
    overrides: list[str],
    results: str | None,
    job: SlurmJob,
    *,
    submit: bool = True,
    workdir: str | None = None,
) -> Submitted:
    """Check everything a local run checks (raising SpecError or SlurmError), write the script,
    submit it with sbatch and record the job in the sweep's slurm.json."""
    from sweeps.launch import check_trial_fits
    from sweeps.parquet import SweepStore, results_location
    from sweeps.spec import load_spec

    check_job(job)
    spec = load_spec(spec_path, overrides)
    if spec.search is None:
        spec.members()  # a grid's members are checked before anything starts (a search's as it asks)
    cpus = job.cpus_for(spec.cpus, spec.gpus)
    check_trial_fits(
        spec,
        cpus,
        job.gpus_per_node,
        cpus_at="the job gives each node --cpus-per-node",
        gpus_at="the job gives each node --gpus-per-node",
        elsewhere="ask the job for more per node (--cpus-per-node, --gpus-per-node)",
    )
    sbatch = shutil.which("sbatch")
    if submit and sbatch is None:
        raise SlurmError(
            "sbatch not found: run grok slurm on a SLURM login node, or add --no-submit to only write the script"
        )
    location = results_location(results or spec.results)
    store = SweepStore(location, spec.name)
    workdir = os.path.abspath(workdir or os.getcwd())
    if store.local:
        sweep_dir = Path(store.root)
        try:
            (sweep_dir / SLURM_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SlurmError(f"--results: cannot create {sweep_dir / SLURM_DIR}: {e.strerror}") from None
        script = sweep_dir / SLURM_DIR / f"{spec.name}.sbatch"
        output = str(sweep_dir / SLURM_DIR / "slurm-%j.out")
    else:  # an object store: the script and SLURM's log stay in the working directory
        script = Path(workdir) / f"{spec.name}.sbatch"
        output = str(Path(workdir) / f"slurm-{spec.name}-%j.out")
    text = sbatch_script(
        name=spec.name,
        spec_path=os.path.abspath(spec_path),
        results=location,
        overrides=list(overrides),
        job=job,
        cpus=cpus,
        output=output,
        workdir=workdir,
        python_bin=os.path.dirname(sys.executable),
        pythonpath=os.environ.get("PYTHONPATH"),
    )
    tmp = script.with_name(f".{script.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(script)
    if not submit:
        return Submitted(str(script), None, output)
    assert sbatch is not None  # found, or refused above
    done = subprocess.run([sbatch, "--parsable", str(script)], capture_output=True, text=True, cwd=workdir)
    if done.returncode != 0:
        raise SlurmError(f"sbatch refused {script}: {done.stderr.strip() or done.stdout.strip()}")
    job_id = done.stdout.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
    jobs = (store.read_json(JOBS_FILE) or {}).get("jobs", [])
    jobs.append(
        {
            "job_id": job_id,
            "submitted": time.time(),
            "script": str(script),
            "nodes": job.nodes,
            "gpus_per_node": job.gpus_per_node,
            "cpus_per_node": cpus,
            "time": job.time,
        }
    )
    store.write_json(JOBS_FILE, {"jobs": jobs})
    return Submitted(str(script), job_id, output.replace("%j", job_id))


# ---- helpers the script runs on the nodes -----------------------------------------------------------
def free_port() -> int:
    """A TCP port free on this node now (the kernel's pick); Ray binds it seconds later."""
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def node_ip(node: str) -> str:
    """The address SLURM reaches a node by (its NodeAddr), as an IP: Ray's nodes must use the
    network SLURM uses, not whatever the node's hostname resolves to first (127.0.1.1 on Debian)."""
    import socket

    out = subprocess.run(["scontrol", "show", "node", "-o", node], capture_output=True, text=True).stdout
    found = re.search(r"\bNodeAddr=(\S+)", out)
    return socket.gethostbyname(found.group(1) if found else node)


def start_ray_node(address: str, head: bool, extra: list[str]) -> list[str]:
    """`ray start --block` for this node of the job (run under srun): the CPUs SLURM gave the task,
    the GPUs Ray sees in CUDA_VISIBLE_DEVICES (set by SLURM), free ports, a node-local temp dir."""
    here = node_ip(os.environ.get("SLURMD_NODENAME", "localhost"))
    job, node = os.environ.get("SLURM_JOB_ID", str(os.getpid())), os.environ.get("SLURMD_NODENAME", "node")
    tmp_root = os.environ.get("SLURM_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    cmd = [
        "ray",
        "start",
        "--block",
        "--disable-usage-stats",
        f"--node-ip-address={here}",
        f"--temp-dir={tmp_root}/ray-{job}-{node}",
        f"--dashboard-agent-listen-port={free_port()}",
    ]
    if os.environ.get("SLURM_CPUS_PER_TASK"):
        cmd.append(f"--num-cpus={os.environ['SLURM_CPUS_PER_TASK']}")
    if head:
        cmd += [
            "--head",
            f"--port={address.rsplit(':', 1)[1]}",
            f"--ray-client-server-port={free_port()}",
            "--include-dashboard=false",
        ]
    else:
        cmd.append(f"--address={address}")
    return cmd + extra


def wait_for_ray(address: str, nodes: int, timeout_s: float) -> int:
    """Wait until the cluster at address has `nodes` live nodes, so that the sweep's checks (trial
    resources, shared storage) see all of them. 0 when they are there, 1 on timeout."""
    import logging
    import socket

    import ray

    deadline = time.monotonic() + timeout_s
    alive = 0
    host, port = address.rsplit(":", 1)
    while time.monotonic() < deadline:  # the head's port first: a ray.init before it listens waits long
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            break
        except OSError:
            time.sleep(0.5)
    while time.monotonic() < deadline:
        try:
            if not ray.is_initialized():
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            alive = sum(1 for n in ray.nodes() if n.get("Alive"))
            if alive >= nodes:
                print(f"grok slurm: {time.strftime('%H:%M:%S')} Ray at {address} has {alive} node(s)", flush=True)
                ray.shutdown()
                return 0
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            print(f"grok slurm: waiting for Ray at {address}: {e}", flush=True)
        time.sleep(2)
    print(
        f"grok slurm: Ray at {address} has {alive} of {nodes} node(s) after {timeout_s:.0f} s; giving up",
        file=sys.stderr,
        flush=True,
    )
    return 1


# ---- the CLI ----------------------------------------------------------------------------------------
def add_parser(sub) -> None:
    """`grok slurm`'s options (sweeps/cli.py calls this)."""
    p = sub.add_parser(
        "slurm",
        help="submit a sweep to SLURM as one job (Ray on the job's nodes)",
        description="Check the spec, write <results>/<name>/slurm/<name>.sbatch (Ray's head on "
        "the first node, a worker per other node, grok sweep against it) and submit "
        "it. Running the same command again after a time limit, scancel or "
        "pre-emption continues the sweep; `grok status DIR` shows the job.",
    )
    p.add_argument("spec", help="the sweep spec (YAML); see sweeps/examples/")
    p.add_argument(
        "--results", help="results location every node sees: a shared mount or an s3:// URI (default: the spec's)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="change a spec setting, as for grok sweep (repeatable)",
    )
    p.add_argument("--nodes", type=int, default=SlurmJob.nodes, help=_doc("nodes"))
    p.add_argument("--gpus-per-node", type=int, default=SlurmJob.gpus_per_node, help=_doc("gpus_per_node"))
    p.add_argument("--cpus-per-node", type=int, help=_doc("cpus_per_node"))
    p.add_argument("--time", default=SlurmJob.time, help=_doc("time") + f" (default {SlurmJob.time})")
    p.add_argument("--partition", help="the partition (default: the cluster's)")
    p.add_argument("--account", help="the account to charge (default: yours)")
    p.add_argument("--mem", help=_doc("mem"))
    p.add_argument("--requeue", action="store_true", help=_doc("requeue"))
    p.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="ARG",
        dest="sbatch_args",
        help=_doc("sbatch_args") + " (repeatable)",
    )
    p.add_argument("--no-submit", action="store_true", help="write the script, do not submit it")


def _doc(name: str) -> str:
    """A SlurmJob field's docstring, for --help (one home for each option's meaning)."""
    from grokcore.config import field_docs

    return field_docs(SlurmJob).get(name, "").replace("%", "%%")


def main(argv: list[str] | None = None) -> int:
    """The helpers the batch script calls on the nodes (python -m sweeps.slurm COMMAND)."""
    parser = argparse.ArgumentParser(prog="python -m sweeps.slurm", description="Helpers of grok slurm's batch script.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("free-port", help="print a TCP port free on this node")
    p = sub.add_parser("node-ip", help="print the IP SLURM reaches NODE by")
    p.add_argument("node")
    p = sub.add_parser("start-ray", help="exec `ray start --block` for this node of the job")
    p.add_argument("address", help="HEAD_IP:PORT of the job's Ray")
    p.add_argument("--head", action="store_true", help="start the head (at address's port)")
    p.add_argument("extra", nargs="*", help="after --: more `ray start` arguments")
    p = sub.add_parser("wait-for-ray", help="wait until the job's Ray has all its nodes")
    p.add_argument("address")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.command == "free-port":
        print(free_port())
    elif args.command == "node-ip":
        print(node_ip(args.node))
    elif args.command == "start-ray":
        cmd = start_ray_node(args.address, args.head, args.extra)
        print("grok slurm:", shlex.join(cmd), flush=True)
        os.execvp(cmd[0], cmd)
    elif args.command == "wait-for-ray":
        return wait_for_ray(args.address, args.nodes, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

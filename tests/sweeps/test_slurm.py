"""`grok slurm` against a real SLURM: Debian's slurmctld and two slurmd (this build has
MULTIPLE_SLURMD, so two nodes with ports of their own run on one machine) plus munged, all
started by the fixture on loopback with configuration in a temporary folder, and stopped by pid.

A small sweep submitted through the project's own command runs on both nodes (Ray's head on one, a
worker on the other); a second one, running at the same time on the same nodes, is cancelled
mid-run by `scancel` (SIGTERM, then SIGKILL: what a time limit or pre-emption does), resubmitted
with the same command, and ends with one runs row per member and every metrics row exactly once.
Each node has 2 CPUs for SLURM (on however many the machine has), so two 1-CPU-per-node jobs fit.

The quick checks (script text, option errors) need no SLURM and run by default."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sweeps_testing import SLOW, SLOW_EVALS, TINY, TINY_EVALS, TINY_MEMBERS, assert_rows_once, records, write_spec

from sweeps.slurm import ENDED_STATES, SlurmJob, free_port

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scancel")
JOB_TIMEOUT_S = 240


# ---- quick: no SLURM needed ---------------------------------------------------------------------
def _grok(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweeps.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_script_written_without_submitting(tmp_path):
    write_spec(tmp_path, TINY)
    done = _grok(
        [
            "slurm",
            "spec.yaml",
            "--results",
            "results",
            "--nodes",
            "3",
            "--gpus-per-node",
            "2",
            "--time",
            "1-00:00:00",
            "--partition",
            "gpu",
            "--account",
            "lab",
            "--requeue",
            "--sbatch-arg=--qos=long",
            "--set",
            "base.lr=3e-3",
            "--no-submit",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    script = tmp_path / "results" / "tiny" / "slurm" / "tiny.sbatch"
    assert f"script: {script}" in done.stdout and "sbatch " in done.stdout
    text = script.read_text()
    options = re.findall(r"^#SBATCH (\S+)$", text, re.MULTILINE)
    # one task per node; TINY's trial asks 1 CPU and no GPU, so 4 CPU trials' worth per node
    assert options == [
        "--job-name=grok-tiny",
        "--nodes=3",
        "--ntasks-per-node=1",
        "--cpus-per-task=4",
        "--time=1-00:00:00",
        f"--output={tmp_path}/results/tiny/slurm/slurm-%j.out",
        "--open-mode=append",
        f"--chdir={tmp_path}",
        "--gres=gpu:2",
        "--partition=gpu",
        "--account=lab",
        "--requeue",
        "--qos=long",
    ]
    assert (
        f'grok sweep {tmp_path}/spec.yaml --results {tmp_path}/results --address "$address" --set base.lr=3e-3'
    ) in text
    assert text.count("srun --nodes=1 --ntasks=1 --gres=gpu:2 --nodelist=") == 2  # each Ray node's step takes its GPUs
    assert os.access(script, os.X_OK)
    assert not (tmp_path / "results" / "tiny" / "slurm.json").exists()  # nothing submitted, nothing recorded
    bash = shutil.which("bash")
    assert subprocess.run([bash, "-n", str(script)]).returncode == 0  # the shell parses it


@pytest.mark.parametrize(
    "args, message",
    [
        (["--nodes", "0"], "--nodes: at least 1, got 0"),
        (["--time", "4h"], "--time: one of SLURM's formats MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, got '4h'"),
        (
            ["--cpus-per-node", "1", "--set", "resources.cpus=2"],
            (
                "resources.cpus: 2 CPUs per trial, but the job gives each node --cpus-per-node 1; lower it, "
                "or ask the job for more per node (--cpus-per-node, --gpus-per-node)"
            ),
        ),
        (
            ["--set", "resources.gpus=1"],
            "resources.gpus: 1 GPU per trial, but the job gives each node --gpus-per-node 0; set resources.gpus: 0",
        ),
        (["--set", "base.p=-3"], "base.p"),
    ],
)
def test_bad_options_fail_before_anything_is_written(tmp_path, args, message):
    write_spec(tmp_path, TINY)
    done = _grok(["slurm", "spec.yaml", "--results", "results", "--no-submit", *args], tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr and done.stderr.startswith("error: ")
    assert not (tmp_path / "results").exists()


def test_a_job_state_without_a_controller_is_unknown(monkeypatch, tmp_path):
    """Away from the cluster (no controller answers, or no SLURM at all) a job's state is unknown,
    so `grok status` never calls a driver dead for want of an answer."""
    from sweeps.slurm import job_ended, job_state

    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol, no sacct
    assert job_state("12345") == "unknown" and not job_ended("12345")
    if shutil.which("scontrol", path=os.defpath + ":/usr/sbin:/usr/bin"):  # installed, no controller configured
        conf = tmp_path / "slurm.conf"  # a controller on a port where nothing listens
        conf.write_text(
            f"ClusterName=none\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={free_port()}\nMessageTimeout=2\n"
        )
        monkeypatch.setenv("SLURM_CONF", str(conf))
        monkeypatch.setenv("PATH", os.defpath + ":/usr/sbin:/usr/bin")
        assert job_state("12345") == "unknown"


def test_cpus_per_node_default_follows_the_gpus():
    assert SlurmJob(gpus_per_node=4).cpus_for(2, 0.5) == 16  # 8 trials on 4 GPUs, 2 CPUs each
    assert SlurmJob(gpus_per_node=4).cpus_for(1.5, 1) == 6
    assert SlurmJob().cpus_for(2, 0) == 8  # CPU trials: 4 per node
    assert SlurmJob(cpus_per_node=3).cpus_for(2, 1) == 3


# ---- a real SLURM --------------------------------------------------------------------------------
def _install_slurm() -> None:
    """Debian's slurm-wlm and munge, when absent (CI runs on a fresh machine as root)."""
    if all(shutil.which(d) for d in DAEMONS):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("slurm-wlm and munge are not installed, and installing them needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")


SLURM_CONF = """\
ClusterName=grok-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.sock
CredType=cred/munge
CommunicationParameters=NoInAddrAny
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=3600
SchedulerParameters=sched_interval=1
NodeName=n1 NodeHostname={host} NodeAddr=127.0.0.1 Port={n1_port} CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeHostname={host} NodeAddr=127.0.0.1 Port={n2_port} CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Slurm:
    """munged, slurmctld and two slurmd started here; `env` points SLURM's commands at them."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "TMPDIR": str(root / "node-tmp")}
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        root = self.root
        for sub in ("munge", "state", "spool/n1", "spool/n2", "log", "node-tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "munge").chmod(0o755)  # munged wants its socket's folder open to all, and no more
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._spawn(
            [
                "munged",
                "-F",
                f"--key-file={key}",
                f"--socket={root}/munge/munge.sock",
                f"--pid-file={root}/munge/munged.pid",
                f"--log-file={root}/log/munged.log",
                f"--seed-file={root}/munge/munged.seed",
            ],
            "munged",
        )
        self._wait((root / "munge" / "munge.sock").exists, "munged's socket")
        self.conf.write_text(
            SLURM_CONF.format(
                host=os.uname().nodename, root=root, ctld_port=free_port(), n1_port=free_port(), n2_port=free_port()
            )
        )
        self._spawn(["slurmctld", "-D", "-f", str(self.conf)], "slurmctld")
        self._wait(lambda: self.run(["scontrol", "ping"]).stdout.count("UP") >= 1, "slurmctld")
        for node in ("n1", "n2"):
            self._spawn(["slurmd", "-D", "-N", node, "-f", str(self.conf)], f"slurmd-{node}")
        self._wait(
            lambda: self.run(["sinfo", "-h", "-N", "-o", "%T"]).stdout.split() == ["idle", "idle"], "both nodes idle"
        )

    def _spawn(self, cmd: list[str], name: str) -> None:
        with open(self.root / "log" / f"{name}.out", "w") as log:  # the daemon writes through its own copy
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root))

    def _wait(self, ready, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited ({p.returncode}) waiting for {what}: {self.logs()}")
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"no {what} after {timeout_s:.0f} s: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((self.root / "log").glob("*")))

    def run(self, cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=30)

    def job(self, job_id: str) -> dict[str, str]:
        out = self.run(["scontrol", "show", "job", "-o", job_id]).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait_job(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.get("JobState") in ENDED_STATES:
                return job
            time.sleep(1)
        raise AssertionError(f"job {job_id} still {self.job(job_id).get('JobState')} after {timeout_s} s")

    def leftovers(self) -> list[int]:
        """Pids of processes (Ray's, a job's) still holding this cluster's node-local temp dir."""
        mark = str(self.root / "node-tmp").encode()
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and mark in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
        return pids

    def stop(self) -> None:
        self.run(["scancel", "--full", "--partition=debug"])  # this controller's jobs: all ours
        for pid in self.leftovers():  # only if a job's end left any: the tests assert there are none
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for p in reversed(self.procs):  # slurmd, slurmctld, then munged
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def slurm():
    _install_slurm()
    # A short path under /tmp: munged refuses a socket folder closed to others, and Ray's sockets
    # under the jobs' TMPDIR must stay within the 107 characters of a Unix socket path.
    root = Path(tempfile.mkdtemp(prefix="gs-", dir="/tmp"))
    root.chmod(0o755)
    cluster = Slurm(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _submit(slurm: Slurm, workdir: Path, results: str = "results") -> str:
    done = _grok(
        ["slurm", "spec.yaml", "--results", results, "--nodes", "2", "--cpus-per-node", "1", "--time", "00:10:00"],
        workdir,
        slurm.env,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return re.search(r"submitted job (\d+)", done.stdout).group(1)


def _job_log(workdir: Path, name: str, job_id: str) -> str:
    path = workdir / "results" / name / "slurm" / f"slurm-{job_id}.out"
    return path.read_text() if path.exists() else f"(no {path})"


def _address(workdir: Path, name: str, job_id: str) -> str:
    return re.search(r"Ray at (\S+) has 2 node\(s\)", _job_log(workdir, name, job_id)).group(1)


@pytest.mark.slow
def test_two_jobs_share_the_nodes_and_a_cancelled_one_resumes(slurm, monkeypatch):
    """A small sweep and a longer one submitted together run at once on the same two nodes (their
    Rays on free ports of their own); the longer one is cancelled mid-run, resubmitted with the same
    command and ends with every row exactly once. Both jobs in one test: each job's Ray start-up is
    most of its time on two cores, and running them together also checks that jobs sharing a node
    do not clash."""
    from sweeps.spec import load_spec

    small, long = (Path(tempfile.mkdtemp(dir=slurm.root)) for _ in range(2))
    write_spec(small, TINY)
    write_spec(long, SLOW)
    sweep = long / "results" / "resumable"
    job_a, job_b = _submit(slurm, small), _submit(slurm, long)
    together = False
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not any(r["seq"] >= 2 and not r["done"] for r in records(sweep)):  # a pack has committed twice
        assert time.monotonic() < deadline, _job_log(long, "resumable", job_b)
        a, b = slurm.job(job_a), slurm.job(job_b)
        assert b.get("JobState") not in ENDED_STATES, _job_log(long, "resumable", job_b)
        together |= a.get("JobState") == b.get("JobState") == "RUNNING" and a.get("NodeList") == b.get("NodeList")
        time.sleep(0.3)
    assert slurm.run(["scancel", job_b]).returncode == 0
    assert slurm.wait_job(job_b)["JobState"] == "CANCELLED", _job_log(long, "resumable", job_b)
    status = _grok(["status", "results/resumable"], long, slurm.env)
    assert f"slurm     job {job_b} CANCELLED" in status.stdout, status.stdout
    assert "stopped" in status.stdout  # the driver SLURM killed counts as dead, its packs as interrupted
    assert [r for r in records(sweep) if not r["done"]], "the sweep ended before scancel"

    job_c = _submit(slurm, long)  # the same command again
    assert job_c not in (job_a, job_b)

    job = slurm.wait_job(job_a)
    log = _job_log(small, "tiny", job_a)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log
    assert "has 2 node(s)" in log and "grok sweep exited with 0" in log
    run_ids = [m.run_id for m in load_spec(small / "spec.yaml").members()]
    assert len(run_ids) == TINY_MEMBERS
    assert_rows_once(small / "results" / "tiny", run_ids, TINY_EVALS)
    status = _grok(["status", "results/tiny"], small, slurm.env)
    assert f"slurm     job {job_a} COMPLETED" in status.stdout, status.stdout
    assert together and job["NodeList"] == "n[1-2]"  # the two jobs ran at once on the same two nodes ...
    assert _address(small, "tiny", job_a) != _address(long, "resumable", job_b)  # ... each with its own Ray

    job = slurm.wait_job(job_c)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), _job_log(long, "resumable", job_c)
    assert_rows_once(sweep, [m.run_id for m in load_spec(long / "spec.yaml").members()], SLOW_EVALS)
    status = _grok(["status", "results/resumable"], long, slurm.env)
    assert f"slurm     job {job_c} COMPLETED (the newest of 2 submitted)" in status.stdout, status.stdout
    assert slurm.leftovers() == []  # every job stopped its Ray on both nodes

    from sweeps.slurm import job_state

    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    assert job_state(job_c) == "COMPLETED"
    assert job_state("999999") == "ENDED"  # the controller answers that it has no such job (any more)

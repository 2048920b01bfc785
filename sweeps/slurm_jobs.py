"""What SLURM says of a sweep's jobs: the part of sweeps/slurm.py that `grok status` and the
sweep's lease (a driver whose job has ended is dead) need, kept apart so that they do not import
the submitting side (which imports the driver)."""

from __future__ import annotations

import re
import shutil
import subprocess

from grokcore.layout import JOBS_FILE

# SLURM states of a job that will not run again by itself (squeue/scontrol spelling)
ENDED_STATES = (
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "PREEMPTED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "ENDED",
)


# ---- what `grok status` shows -----------------------------------------------------------------------
def job_state(job_id: str) -> str:
    """A job's state as SLURM tells it now (RUNNING, PENDING, COMPLETED, TIMEOUT, ...): scontrol
    while the controller remembers the job, then sacct where accounting runs; ENDED for a job the
    controller has forgotten (MinJobAge) where no accounting knows it; `unknown` where no
    controller answers (not on the cluster)."""

    def ask(cmd: list[str]) -> subprocess.CompletedProcess | None:
        if shutil.which(cmd[0]) is None:
            return None
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None

    shown = ask(["scontrol", "show", "job", "-o", job_id])
    found = re.search(r"\bJobState=(\S+)", shown.stdout) if shown and shown.returncode == 0 else None
    if found:
        return found.group(1)
    if not (shown and "invalid job id" in shown.stderr.lower()):  # no controller answered: off the cluster
        return "unknown"
    accounted = ask(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"])
    if accounted and accounted.returncode == 0 and accounted.stdout.strip():
        return accounted.stdout.strip().splitlines()[-1].split()[0]  # "CANCELLED by 0" -> CANCELLED
    return "ENDED"  # the controller no longer has the job, and no accounting knows it


def latest_job(store) -> dict | None:
    """The newest job `grok slurm` submitted for this sweep, with its state now (None: none)."""
    jobs = (store.read_json(JOBS_FILE) or {}).get("jobs", [])
    if not jobs:
        return None
    return {**jobs[-1], "state": job_state(str(jobs[-1]["job_id"])), "jobs": len(jobs)}


def job_ended(job_id: str) -> bool:
    return job_state(job_id) in ENDED_STATES

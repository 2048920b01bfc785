"""An interrupted driver: `grok sweep` killed hard mid-sweep (its local Ray dies with it), then the
same sweep run again completes it with no duplicate or missing rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from sweeps_testing import SLOW, SLOW_EVALS, assert_rows_once, records, write_spec

from sweeps.launch import run_sweep
from sweeps.lease import LEASE_FILE
from sweeps.spec import load_spec


def kill_once_packs_committed(proc: subprocess.Popen, read_records, timeout_s: float, packs: int = 2) -> None:
    """Kill a `grok sweep` started in its own session (its local Ray and workers with it) once each
    of its packs has committed some work, before they finish; then wait for its processes to go."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        recs = list(read_records())
        if len(recs) == packs and all(r["seq"] >= 2 for r in recs):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # the local Ray's reaper takes its workers down


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of a session: the driver, its local Ray and its workers."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def test_killed_driver_resumes_without_duplicates(ray_session, tmp_path):
    spec_path = write_spec(tmp_path, SLOW)
    results = tmp_path / "results"
    sweep = results / "resumable"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(spec_path), "--results", str(results), "-q"],
        start_new_session=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kill_once_packs_committed(proc, lambda: records(sweep), timeout_s=240)
        assert not session_processes(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    recs = records(sweep)
    assert recs and not all(r["done"] for r in recs)
    assert json.loads((sweep / LEASE_FILE).read_text())["state"] == "running"  # the killed driver's lease
    spec = load_spec(spec_path)
    result = run_sweep(spec, results=str(results), verbose=0)
    assert result.ok
    lease = json.loads((sweep / LEASE_FILE).read_text())
    assert lease["took_over"]["pid"] == proc.pid and lease["pid"] == os.getpid() and lease["state"] == "ended"
    assert_rows_once(sweep, [m.run_id for m in spec.members()], SLOW_EVALS)
    metrics = pq.read_table(sweep / "metrics").to_pandas()
    per_member = metrics.groupby("run_id").epoch.apply(sorted)
    assert all(epochs == list(range(20, 1501, 20)) for epochs in per_member)

"""One writer per sweep (sweeps/lease.py): a second writer refuses at once naming the holder, a gone
holder's lease is taken over, writers racing for it on the local disk and on moto's S3 server
leave exactly one holder, and two `grok sweep` or two `grok measure` started together lose
nothing. Also a full disk during a commit (a real tmpfs of a few MiB, made by the test)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sweeps_testing import TINY, TINY_EVALS, assert_rows_once, records, write_spec
from test_measure import drop_columns, measured_pack, progress
from test_object_store import BUCKET, s3_env  # noqa: F401 - the fixture, for the S3 race
from test_runner import settings

from sweeps.cli import main
from sweeps.lease import LEASE_FILE, STALE_S, LeaseHeld, SweepLease, _record_io, hold, holder_state
from sweeps.parquet import DiskFull, SweepStore
from sweeps.runner import run_pack
from sweeps.spec import load_spec


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_writer_refuses_naming_the_holder_and_takes_it_once_ended(tmp_path):
    store = SweepStore(str(tmp_path), "s")
    first = SweepLease(store, "grok sweep")
    first.acquire()
    with pytest.raises(LeaseHeld) as info:
        SweepLease(store, "grok measure").acquire()
    message = str(info.value)
    assert f"grok sweep (pid {os.getpid()} on {socket.gethostname()})" in message
    assert "last heartbeat 0 s ago" in message and "--force" in message and "\n" not in message
    first.release()
    assert holder_state(store.read_json(LEASE_FILE)) == "ended"
    second = SweepLease(store, "grok measure")
    second.acquire()  # an ended lease is free
    assert store.read_json(LEASE_FILE)["command"] == "grok measure" and "took_over" not in store.read_json(LEASE_FILE)


def test_a_gone_holders_lease_is_taken_over_and_logged_and_force_takes_a_live_one(tmp_path, caplog):
    store = SweepStore(str(tmp_path), "s")
    now = time.time()
    # a SIGKILLed driver on this host: its pid is gone, its heartbeat still fresh
    dead = _dead_pid()
    store.write_json(
        LEASE_FILE,
        {
            "state": "running",
            "command": "grok sweep",
            "host": socket.gethostname(),
            "pid": dead,
            "started": now,
            "heartbeat": now,
        },
    )
    with caplog.at_level(logging.WARNING, logger="sweeps"):
        SweepLease(store, "grok sweep").acquire()
    assert f"took over the lease of grok sweep (pid {dead} on" in caplog.text and "its holder is gone" in caplog.text
    assert store.read_json(LEASE_FILE)["took_over"]["pid"] == dead

    # a driver on another node that stopped beating STALE_S ago, and one that beat just now
    for beat, taken in ((now - STALE_S - 5, True), (now - 5, False)):
        store.write_json(
            LEASE_FILE,
            {
                "state": "running",
                "command": "grok sweep",
                "host": "node-7",
                "pid": 1,
                "started": now - 600,
                "heartbeat": beat,
            },
        )
        if taken:
            SweepLease(store, "grok sweep").acquire()
        else:
            with pytest.raises(LeaseHeld, match=r"on node-7\), started 10 min ago, last heartbeat 5 s ago"):
                SweepLease(store, "grok sweep").acquire()

    # --force takes the live one; the holder it displaced learns at its next beat and writes no more
    store.write_json(
        LEASE_FILE,
        {"state": "running", "command": "grok sweep", "host": "node-7", "pid": 1, "started": now, "heartbeat": now},
    )
    forced = SweepLease(store, "grok measure", force=True)
    forced.acquire()
    assert store.read_json(LEASE_FILE)["took_over"]["host"] == "node-7"
    displaced = SweepLease(store, "grok sweep", force=True)
    displaced.acquire()
    assert not forced.renew() and forced.lost["command"] == "grok sweep"
    forced.release()  # a displaced writer never ends the lease of the one that took it
    assert holder_state(store.read_json(LEASE_FILE)) == "running"
    assert displaced.renew()


def test_the_holder_beats_and_grok_train_results_refuses_while_it_holds(tmp_path, monkeypatch, capsys):
    import sweeps.lease

    monkeypatch.setattr(sweeps.lease, "HEARTBEAT_S", 0.05)
    store = SweepStore(str(tmp_path), "train")
    with hold(store, "grok sweep"):
        first = store.read_json(LEASE_FILE)["heartbeat"]
        deadline = time.monotonic() + 30
        while store.read_json(LEASE_FILE)["heartbeat"] == first:
            assert time.monotonic() < deadline, "the heartbeat was never renewed"
            time.sleep(0.05)
        assert main(["train", "--p", "11", "--epochs", "20", "--results", str(tmp_path)]) == 1
        assert "is being written by grok sweep" in capsys.readouterr().err
        assert not store.exists("checkpoints")  # refused before training or writing anything
    assert main(["train", "--p", "11", "--epochs", "20", "--results", str(tmp_path)]) == 0
    assert store.exists("checkpoints") and holder_state(store.read_json(LEASE_FILE)) == "ended"


RACE = """
import sys, time
from sweeps.lease import LeaseHeld, SweepLease
from sweeps.parquet import SweepStore
lease = SweepLease(SweepStore(sys.argv[1], "s"), "grok sweep")
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
try:
    lease.acquire()
    print("won")
except LeaseHeld:
    print("refused")
time.sleep(1)  # alive while the others decide: a gone pid would be taken over
"""


def _race(results: str, writers: int) -> list[str]:
    """`writers` processes that try to take one sweep's lease at the same instant."""
    at = time.time() + 4  # after every process has imported what it needs
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, results, str(at)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(writers)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    return sorted(out.strip() for out, _ in outs)


def _swaps_only_the_version_read(results: str) -> None:
    """The compare-and-swap under the lease: a write based on a version that another writer has
    replaced since is refused (create-only when there was none), where read-then-write would win.
    (The races below rarely open that window by timing alone: this closes it on purpose.)"""
    io = _record_io(SweepStore(results, "s"))
    assert io.read() == (None, None)
    assert io.swap({"n": 1}, None) and not io.swap({"n": 2}, None)  # a second create loses
    first, version = io.read()
    assert first == {"n": 1} and io.swap({"n": 3}, version)
    assert not io.swap({"n": 4}, version) and io.read()[0] == {"n": 3}  # a stale version loses


def test_writers_racing_for_the_lease_on_the_local_disk_leave_one_holder(tmp_path):
    _swaps_only_the_version_read(str(tmp_path / "cas"))
    assert _race(str(tmp_path), 6) == ["refused"] * 5 + ["won"]


def test_writers_racing_for_the_lease_on_s3_leave_one_holder(s3_env):  # noqa: F811
    results = f"s3://{BUCKET}/results"
    _swaps_only_the_version_read(f"s3://{BUCKET}/cas")
    assert _race(results, 4) == ["refused"] * 3 + ["won"]
    record = SweepStore(results, "s").read_json(LEASE_FILE)
    assert record["state"] == "running" and record["command"] == "grok sweep"  # negative control: it is there


def _grok_sweep(spec_path: Path, results: str | Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sweeps.cli",
        "sweep",
        str(spec_path),
        "--results",
        str(results),
        "-q",
        "--num-cpus",
        "2",
    ]


def _sweep_until(spec_path: Path, results: Path, ready, act) -> tuple[int, str, object]:
    """Run `grok sweep` until ready() holds, then act() and let it end: its exit code, its stderr,
    and what act returned."""
    proc = subprocess.Popen(
        _grok_sweep(spec_path, results), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        acted = act()
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err, acted


def _two_sweeps(spec_path: Path, results: str, env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            _grok_sweep(spec_path, results), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outs, strict=True)]


def _one_refused(done: list[subprocess.CompletedProcess], uri: str) -> None:
    codes = sorted(d.returncode for d in done)
    assert codes == [0, 1], [d.stderr[-2000:] for d in done]
    refused = next(d for d in done if d.returncode == 1)
    assert f"error: {uri} is being written by grok sweep (pid " in refused.stderr
    assert "Traceback" not in refused.stderr and "Ray" not in refused.stderr  # refused before Ray started


def test_two_grok_sweeps_started_together_one_refuses_and_nothing_is_lost(tmp_path):
    spec_path = write_spec(tmp_path, TINY)
    results = tmp_path / "results"
    done = _two_sweeps(spec_path, str(results), _env())
    _one_refused(done, str(results / "tiny"))
    assert_rows_once(results / "tiny", [m.run_id for m in load_spec(spec_path).members()], TINY_EVALS)
    assert all(r["done"] for r in records(results / "tiny"))
    assert json.loads((results / "tiny" / LEASE_FILE).read_text())["state"] == "ended"


@pytest.mark.slow
def test_two_grok_sweeps_started_together_on_s3_one_refuses_and_nothing_is_lost(s3_env, tmp_path):  # noqa: F811
    spec_path = write_spec(tmp_path, TINY)
    results = f"s3://{BUCKET}/results"
    done = _two_sweeps(spec_path, results, s3_env)
    _one_refused(done, f"{results}/tiny")
    store = SweepStore(results, "tiny")
    metrics = store.read_table("metrics", columns=["run_id", "epoch"]).to_pandas()
    members = sorted(m.run_id for m in load_spec(spec_path).members())
    assert sorted(store.read_table("runs", columns=["run_id"]).column("run_id").to_pylist()) == members
    assert len(metrics) == len(members) * TINY_EVALS and not metrics.duplicated().any()


def test_two_grok_measures_at_once_one_refuses_and_the_rows_are_measured_once(tmp_path, capsys):
    pack = measured_pack()
    run_pack(pack, settings(tmp_path, "s", snapshots={"every": 20}))
    store = SweepStore(str(tmp_path), "s")
    online = progress(store)
    drop_columns(store, pack.pack_id, list(online.columns[2:]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "measure", str(tmp_path / "s")],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while holder_state(store.read_json(LEASE_FILE)) != "running":  # the first measure holds the sweep
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert main(["measure", str(tmp_path / "s")]) == 1
        err = capsys.readouterr().err
        assert f"is being written by grok measure (pid {proc.pid} on {socket.gethostname()})" in err
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "8 progress rows added" in out
    pd.testing.assert_frame_equal(progress(store), online, check_exact=True)  # same machine, same code


# ---- a full disk ------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs mounted for the test (root only: skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of the disk with one file; returns it (remove it to free the space)."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def _files(sweep: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(sweep)): p.read_bytes()
        for p in sorted(sweep.rglob("*"))
        if p.is_file() and p.name != LEASE_FILE
    }


def test_a_full_disk_during_a_commit_leaves_the_pack_as_at_its_last_commit_and_the_next_run_continues(
    small_disk, tmp_path, capsys
):
    pack = measured_pack()
    sweep = small_disk / "s"
    state: dict = {}

    def fill_after_two_commits(_metrics: dict) -> None:
        record = SweepStore(str(small_disk), "s").read_record(pack.pack_id)
        if "filler" not in state and record and record["seq"] >= 2:
            state["before"] = _files(sweep)
            state["filler"] = _fill(small_disk)

    with (
        pytest.raises(
            DiskFull,
            match=r"no space left on the device while writing a commit of pack .*run the same "
            r"command again to continue",
        ),
        hold(SweepStore(str(small_disk), "s"), "grok train"),
    ):
        run_pack(pack, settings(small_disk, "s", snapshots={"every": 20}), report=fill_after_two_commits)
    assert _files(sweep) == state["before"]  # the failed commit left nothing: no part, temporary or checkpoint
    assert not list(sweep.rglob(".*tmp-*")) and not list(sweep.rglob(".trainer-*"))

    # the CLI's writer ends with the one message while the disk is full
    spec = write_spec(tmp_path, "name: s\nbase: {p: 13, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 80}\n")
    assert main(["train", str(spec), "--results", str(small_disk)]) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "no space left on the device" in err and "Traceback" not in err

    state["filler"].unlink()
    run_pack(pack, settings(small_disk, "s", snapshots={"every": 20}))
    store = SweepStore(str(small_disk), "s")
    metrics = store.read_table("metrics", columns=["run_id", "epoch"]).to_pandas()
    assert sorted(metrics.groupby("run_id").epoch.apply(list).sum()) == sorted([20, 40, 60, 80] * 2)
    assert sorted(store.read_table("runs", columns=["run_id"]).column("run_id").to_pylist()) == sorted(pack.run_ids)


@pytest.mark.slow
def test_a_full_disk_under_grok_sweep_ends_it_with_one_message_and_the_next_run_continues(small_disk, tmp_path):
    from sweeps_testing import SLOW, SLOW_EVALS

    spec_path = write_spec(tmp_path, SLOW)
    sweep = small_disk / "resumable"
    code, err, filler = _sweep_until(
        spec_path,
        small_disk,
        lambda: len(recs := records(sweep)) == 2 and all(r["seq"] >= 2 for r in recs),
        lambda: _fill(small_disk),
    )
    assert code == 1, err[-3000:]
    assert "no space left on the device while writing" in err and "run the same command again" in err, err[-3000:]
    assert not all(r["done"] for r in records(sweep))
    store = SweepStore(str(small_disk), "resumable")
    assert not [p for t in ("runs", "metrics") for p in store.uncommitted(t)]  # each pack as at its last commit

    filler.unlink()
    done = subprocess.run(_grok_sweep(spec_path, small_disk), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_rows_once(sweep, [m.run_id for m in load_spec(spec_path).members()], SLOW_EVALS)


@pytest.mark.slow
def test_a_driver_whose_lease_was_forced_away_stops_its_trials(tmp_path):
    from sweeps_testing import SLOW

    spec_path = write_spec(tmp_path, SLOW)
    results = tmp_path / "results"
    code, err, _ = _sweep_until(
        spec_path,
        results,
        lambda: records(results / "resumable"),
        lambda: SweepLease(SweepStore(str(results), "resumable"), "grok measure", force=True).acquire(),
    )
    assert code == 1, err[-3000:]
    assert f"grok measure (pid {os.getpid()} on {socket.gethostname()})" in err and "stopped its trials" in err
    assert not all(r["done"] for r in records(results / "resumable"))  # stopped before the packs finished

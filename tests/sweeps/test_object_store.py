"""Results on an object store, for real: moto's S3 server runs as its own process on 127.0.0.1 and
every process (the driver, Tune's trials, `grok status`, `grok report`) reaches it over HTTP through
pyarrow's S3FileSystem, configured only by the usual AWS_* environment variables (docs/clusters.md).
A sweep written there is killed mid-way, resumed, and read back with no row lost or duplicated."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sweeps_testing import SLOW, SLOW_EVALS, SLOW_MEMBERS, write_spec
from test_resume import kill_once_packs_committed

from sweeps.parquet import SweepStore
from sweeps.spec import load_spec

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None,
    reason="needs moto's standalone server: pip install 'moto[server]' (the test extra declares it)",
)

BUCKET = "grok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_env(tmp_path, monkeypatch):
    """A moto S3 server process with one bucket; the environment every process here reads."""
    port = _free_port()
    with open(tmp_path / "moto.log", "w") as log:  # the server writes through its own copy of the descriptor
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
                time.sleep(0.2)
        import pyarrow.fs as pafs

        pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"], allow_bucket_creation=True).create_dir(BUCKET)
        yield {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _grok(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sweeps.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_a_sweep_on_s3_is_killed_resumed_and_read_back(s3_env, tmp_path):
    spec_path = write_spec(tmp_path, SLOW)
    results = f"s3://{BUCKET}/results"
    store = SweepStore(results, "resumable")
    assert not store.local and store.records() == {}  # negative control: nothing there yet

    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "sweep", str(spec_path), "--results", results, "-q"],
        start_new_session=True,
        env=s3_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        kill_once_packs_committed(proc, lambda: store.records().values(), timeout_s=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not all(r.get("done") for r in store.records().values())

    _grok(s3_env, "sweep", str(spec_path), "--results", results, "-q", timeout=600)

    members = sorted(m.run_id for m in load_spec(spec_path).members())
    runs = store.read_table("runs", columns=["run_id"])
    metrics = store.read_table("metrics", columns=["run_id", "epoch"]).to_pandas()
    assert sorted(runs.column("run_id").to_pylist()) == members
    assert len(metrics) == SLOW_MEMBERS * SLOW_EVALS and not metrics.duplicated().any()
    # each finished pack was compacted to one part per table
    assert len(store.parts("runs")) == 2 and len(store.parts("metrics")) == 2

    status = json.loads(_grok(s3_env, "status", f"{results}/resumable", "--json"))
    status = status[0] if isinstance(status, list) else status
    assert status["with_row"] == SLOW_MEMBERS and status["metric_rows"] == SLOW_MEMBERS * SLOW_EVALS
    assert status["packs_done"] == 2 and status["waiting"] == 0

    out = tmp_path / "report"
    _grok(s3_env, "report", f"{results}/resumable", "--no-png", "--out", str(out))
    html = (out / "index.html").read_text()
    assert "resumable" in html and members[0] in html


def test_snapshots_on_s3_are_listed_loaded_exported_measured_and_drawn(s3_env, tmp_path):
    """A pack trained straight into s3:// (run_pack, as a trial does) keeps its snapshots there; every
    snapshot reader gets what the same pack gives on the local disk."""
    import pandas as pd
    import torch
    from test_measure import LLC, drop_columns, measured_pack, progress
    from test_runner import settings

    from grokcore.export import load_member
    from grokcore.snapshots import list_snapshots, load_snapshot
    from sweeps.runner import run_pack

    pack = measured_pack()
    results = f"s3://{BUCKET}/results"
    uri = f"{results}/snap"
    assert list_snapshots(uri) == []  # negative control: nothing there yet
    run_pack(pack, settings(tmp_path, "local", snapshots={"every": 20, "events": ["end"]}))
    run_pack(pack, settings(results, "snap", snapshots={"every": 20, "events": ["end"]}))

    local = list_snapshots(tmp_path / "local")
    remote = list_snapshots(uri)
    assert [(e["run_id"], e["epoch"], e["event"]) for e in remote] == [
        (e["run_id"], e["epoch"], e["event"]) for e in local
    ] and len(remote) == 8
    assert remote[0]["file"].startswith(f"{BUCKET}/results/snap/snapshots/part-")
    run_id = pack.run_ids[1]
    cfg, weights = load_snapshot(uri, run_id, 40)
    _, expected = load_snapshot(tmp_path / "local", run_id, 40)
    assert cfg == pack.members[1] and all(torch.equal(weights[k], expected[k]) for k in expected)

    # grok export, measure and report, each its own process reaching moto over HTTP
    _grok(s3_env, "export", uri, run_id, "--epoch", "40", "--out", str(tmp_path / "export"))
    exported_cfg, exported = load_member(tmp_path / "export")
    assert exported_cfg == cfg and all(torch.equal(exported[k], weights[k]) for k in weights)

    store = SweepStore(results, "snap")
    online = progress(store)
    drop_columns(store, pack.pack_id, LLC)
    assert "8 changed" in _grok(s3_env, "measure", uri, "--measures", "llc")
    pd.testing.assert_frame_equal(progress(store)[online.columns], online, check_exact=True)

    out = tmp_path / "report"
    _grok(s3_env, "report", uri, "--no-png", "--out", str(out))
    assert "Snapshots of representative members" in (out / "index.html").read_text()


def _requests_per_part(log_text: str) -> dict[tuple[str, str], list[str]]:
    """(method, table) -> the part files each request of moto's log named (werkzeug's access lines)."""
    import re

    out: dict[tuple[str, str], list[str]] = {}
    # werkzeug may colour a line by its status (3.1.9 does, even into a file: a ranged GET's 206 is magenta)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log_text)
    for method, path in re.findall(r'"(GET|HEAD|PUT) (\S+) HTTP', plain):
        found = re.search(r"/(runs|metrics)/(part-[^/?]+\.parquet)", path)
        if found:
            out.setdefault((method, found.group(1)), []).append(found.group(2))
    return out


def test_status_and_load_sweep_make_few_requests_per_part_file(s3_env, tmp_path):
    """On an object store every request is a round trip (issue 17): `grok status` reads each metrics part's
    footer once (its row count) and each runs part in two GETs (footer, then the columns); load_sweep
    each part in two GETs; no HEAD request for a part's size (the listing has it). Counted from the
    requests moto's server itself logged, each reader in its own process."""
    from grokcore.config import RunConfig
    from grokcore.records import METRIC_COLUMNS
    from sweeps.parquet import metrics_schema, runs_schema

    store = SweepStore(f"s3://{BUCKET}/results", "few")
    n_packs = 3
    for k in range(n_packs):
        pack = f"pack-{k:016d}"
        cfgs = [
            RunConfig(p=11, d_model=16, n_heads=2, d_mlp=32, epochs=40, eval_every=10, seed=4 * k + i) for i in range(4)
        ]
        store.write_part(
            "runs",
            pack,
            0,
            [
                {
                    "run_id": c.run_id,
                    "pack_id": pack,
                    "trial_id": "t",
                    **c.to_dict(),
                    "status": "done",
                    "error": None,
                    "epochs_trained": 40,
                    "epoch_train_99": 10,
                    "epoch_test_99": None,
                    "final/train/loss": 0.1,
                    "final/train/acc": 1.0,
                    "final/test/loss": 1.0,
                    "final/test/acc": 0.5,
                    "wall_seconds": 1.0,
                    "device": "cpu",
                    "optuna_trial": None,
                    # the runner's verdict columns: without them (an older sweep) status reads metrics rows instead
                    "epoch_memorised": 10,
                    "epoch_generalised": None,
                    "grokked": False,
                }
                for c in cfgs
            ],
            runs_schema(),
        )
        store.write_part(
            "metrics",
            pack,
            0,
            [
                {
                    **dict.fromkeys(METRIC_COLUMNS),
                    "run_id": c.run_id,
                    "epoch": e,
                    "train/acc": 1.0,
                    "test/acc": 0.5,
                    "train/loss": 0.1,
                    "test/loss": 1.0,
                }
                for c in cfgs
                for e in (10, 20, 30, 40)
            ],
            metrics_schema(),
        )
        store.write_record(
            pack, {"pack_id": pack, "members": [c.run_id for c in cfgs], "seq": 1, "done": True, "updated": time.time()}
        )
    log = tmp_path / "moto.log"
    time.sleep(0.5)
    written = _requests_per_part(log.read_text())
    assert len(written[("PUT", "runs")]) == len(written[("PUT", "metrics")]) == n_packs  # the log is read right

    def requests_of(*command: str) -> dict[tuple[str, str], list[str]]:
        before = log.stat().st_size
        done = subprocess.run([sys.executable, *command], env=s3_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        time.sleep(0.5)  # the server writes its access line after answering
        with open(log) as f:
            f.seek(before)
            return _requests_per_part(f.read())

    status = requests_of("-m", "sweeps.cli", "status", f"s3://{BUCKET}/results/few")
    parts = sorted(set(written[("PUT", "runs")]))
    assert sorted(status[("GET", "metrics")]) == sorted(set(written[("PUT", "metrics")]))  # one GET each
    assert sorted(status[("GET", "runs")]) == sorted(parts * 2)
    assert ("HEAD", "runs") not in status and ("HEAD", "metrics") not in status

    loaded = requests_of("-c", f"from analysis import load_sweep; load_sweep('s3://{BUCKET}/results/few')")
    assert sorted(loaded[("GET", "runs")]) == sorted(parts * 2) and len(loaded[("GET", "metrics")]) == 2 * n_packs
    assert ("HEAD", "runs") not in loaded and ("HEAD", "metrics") not in loaded

"""Every member as its own tracker run (sweeps/trackers.py), read back with each tracker's own reader:
TensorBoard's event accumulator, W&B's offline run file (W&B's protobufs), a real MLflow tracking server
(SQLite backend, loopback port) started here; pushed again, and after a killed and resumed sweep, with no
point twice."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sweeps_testing import SLOW, SLOW_EVALS, TINY, assert_bad_spec, records, write_spec

pytestmark = pytest.mark.timeout(900)
needs = {
    name: pytest.mark.skipif(
        importlib.util.find_spec(name) is None,
        reason=f"needs {name}: pip install 'grokking-sweeps[{name}]' (the test extra has it)",
    )
    for name in ("mlflow", "wandb", "tensorboard")
}
CELL_AXES = ("train_fraction", "weight_decay")


def grok(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """The real entry point, as a user types it in that folder (relative paths)."""
    done = subprocess.run(
        [sys.executable, "-m", "sweeps.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert not check or done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, _ray_owner) -> Path:
    """The TINY sweep run once for this module: `<folder>/res/tiny`, two packs of four members."""
    import ray

    from sweeps.launch import run_sweep
    from sweeps.spec import load_spec

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    folder = tmp_path_factory.mktemp("trackers")
    result = run_sweep(load_spec(write_spec(folder, TINY)), results=str(folder / "res"), verbose=0)
    assert result.ok
    return folder


def parquet_points(sweep: Path) -> dict[str, dict[int, dict[str, float]]]:
    """run_id -> epoch -> finite metric values, straight from the metrics parts."""
    metrics = pq.read_table(sweep / "metrics").to_pandas()
    out: dict[str, dict[int, dict[str, float]]] = {}
    for row in metrics.to_dict("records"):
        values = {k: float(v) for k, v in row.items() if k not in ("run_id", "epoch") and np.isfinite(v)}
        out.setdefault(row["run_id"], {})[int(row["epoch"])] = values
    return out


def runs_rows(sweep: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in pq.read_table(sweep / "runs").to_pylist()}


def cell(row: dict) -> str:
    return ",".join(f"{a}={row[a]}" for a in CELL_AXES)


# ---- the spec's trackers: block ------------------------------------------------------------------------
def test_trackers_block_errors_name_the_key_and_the_choices(tmp_path):
    assert_bad_spec(
        tmp_path,
        TINY + "trackers: {neptune: x}\n",
        "trackers: 'neptune' is not a tracker",
        "mlflow, wandb, tensorboard",
        expand=False,
    )
    assert_bad_spec(
        tmp_path,
        TINY + "trackers: {tensorboard: null}\n",
        "trackers: tensorboard: the log directory",
        None,
        expand=False,
    )
    assert_bad_spec(tmp_path, TINY + "trackers: {mlflow: null, every_s: 0}\n", "every_s", "a number > 0", expand=False)
    assert_bad_spec(tmp_path, TINY + "trackers: [mlflow]\n", "trackers", "a mapping of tracker: target", expand=False)


def test_push_names_an_unknown_tracker_before_reading(tmp_path):
    done = grok("push", "nowhere", "--to", "neptune", cwd=tmp_path, check=False)
    assert done.returncode == 2 and "--to: 'neptune' is not a tracker; one of mlflow, wandb, tensorboard" in done.stderr


# ---- TensorBoard -----------------------------------------------------------------------------------------
@needs["tensorboard"]
def test_tensorboard_event_files_read_back_equal(tiny_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tiny_sweep / "tb" / ".half-written.tmp-0000").mkdir(parents=True)  # what a killed push leaves
    first = grok("push", "res/tiny", "--to", "tensorboard", "tb", cwd=tiny_sweep)
    assert "8 member(s) pushed" in first.stdout, first.stdout
    again = grok("push", "res/tiny", "--to", "tensorboard", "tb", cwd=tiny_sweep)
    assert "0 member(s) pushed: 0 new point(s), 0 finished; 8 already complete" in again.stdout, again.stdout
    assert sorted(p.name for p in (tiny_sweep / "tb").iterdir()) == sorted(runs_rows(tiny_sweep / "res" / "tiny"))

    rows = runs_rows(tiny_sweep / "res" / "tiny")
    for run_id, points in parquet_points(tiny_sweep / "res" / "tiny").items():
        events = EventAccumulator(str(tiny_sweep / "tb" / run_id), size_guidance={"scalars": 0, "tensors": 0})
        events.Reload()
        keys = {k for values in points.values() for k in values}
        assert set(events.Tags()["scalars"]) == keys
        for key in keys:
            read = [(e.step, e.value) for e in events.Scalars(key)]
            # TensorBoard keeps scalars as float32: the Parquet value rounded the same way, exactly
            assert read == [
                (epoch, float(np.float32(values[key]))) for epoch, values in sorted(points.items()) if key in values
            ]
        tags = json.loads(events.Tensors("grok/tags/text_summary")[0].tensor_proto.string_val[0])
        assert tags == {
            "grok.run_id": run_id,
            "grok.sweep": "tiny",
            "grok.pack": rows[run_id]["pack_id"],
            "grok.cell": cell(rows[run_id]),
        }


# ---- W&B offline -------------------------------------------------------------------------------------------
@needs["wandb"]
def test_wandb_offline_runs_read_back_equal_and_once(tiny_sweep, monkeypatch):
    from wandb_records import config_and_tags, history

    from sweeps.trackers import WANDB_MARKER, push, wandb_id, wandb_runs

    monkeypatch.chdir(tiny_sweep)
    assert push("res/tiny", "wandb", "wb").members == 8
    root, rows = tiny_sweep / "wb", runs_rows(tiny_sweep / "res" / "tiny")
    # pushes killed mid-member: one run left without its done-marker, another beside a stray unfinished copy
    first, second = sorted(rows)[:2]
    (wandb_runs(root, first)[0] / WANDB_MARKER).unlink()
    stray = root / "wandb" / f"offline-run-19990101_000000-{wandb_id(second)}"
    shutil.copytree(wandb_runs(root, second)[0], stray)
    (stray / WANDB_MARKER).unlink()
    again = push("res/tiny", "wandb", "wb")
    assert (again.members, again.skipped) == (1, 7) and not stray.exists()

    for run_id, points in parquet_points(tiny_sweep / "res" / "tiny").items():
        (folder,) = wandb_runs(root, run_id)
        (log,) = folder.glob("run-*.wandb")
        logged = history(log)
        assert logged == {epoch: {**values, "grok/epoch": epoch} for epoch, values in points.items()}
        config, tags = config_and_tags(log)
        assert tags == ["sweep:tiny", f"pack:{rows[run_id]['pack_id']}", f"cell:{cell(rows[run_id])}"]
        assert config["train_fraction"] == rows[run_id]["train_fraction"] and config["grok.run_id"] == run_id


# ---- MLflow --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free loopback port, SQLite backend; its URI. Stopped (and only it) afterwards."""
    folder = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(folder / "server.log", "w") as log:  # the server writes through its own copy of the descriptor
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{folder / 'mlflow.db'}",
                "--artifacts-destination",
                str(folder / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.monotonic() + 240  # a fresh database migrates first; slow on a loaded machine
        while True:
            assert server.poll() is None, (folder / "server.log").read_text()
            try:
                if urllib.request.urlopen(f"{uri}/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (folder / "server.log").read_text()
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def assert_mlflow_equals_store(uri: str, sweep: Path, experiment: str) -> None:
    """One finished run per member; every metric's history is the Parquet values, each epoch once."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    by_member = {}
    for run in runs:
        assert run.data.tags["grok.run_id"] not in by_member, "a member has two runs"
        by_member[run.data.tags["grok.run_id"]] = run
    rows, points = runs_rows(sweep), parquet_points(sweep)
    assert set(by_member) == set(rows) == set(points)
    for run_id, run in by_member.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["grok.sweep"] == experiment and run.data.tags["grok.pack"] == rows[run_id]["pack_id"]
        assert (
            run.data.tags["grok.cell"] == cell(rows[run_id]) and run.data.tags["grok.status"] == rows[run_id]["status"]
        )
        assert float(run.data.params["weight_decay"]) == rows[run_id]["weight_decay"]
        keys = {k for values in points[run_id].values() for k in values}
        for key in keys:
            history = client.get_metric_history(run.info.run_id, key)
            expected = [(e, v[key]) for e, v in sorted(points[run_id].items()) if key in v]
            assert sorted((m.step, m.value) for m in history) == expected, (run_id, key)
        epochs = sorted(m.step for m in client.get_metric_history(run.info.run_id, "grok/epoch"))
        assert epochs == sorted(points[run_id])


@needs["mlflow"]
def test_mlflow_runs_per_member_equal_the_store_and_a_second_push_adds_nothing(tiny_sweep, mlflow_server):
    first = grok("push", "res/tiny", "--to", "mlflow", mlflow_server, cwd=tiny_sweep)
    assert "8 member(s) pushed: 640 new point(s), 8 finished" in first.stdout, first.stdout + first.stderr
    again = grok("push", "res/tiny", "--to", "mlflow", mlflow_server, cwd=tiny_sweep)
    assert "0 new point(s), 0 finished; 8 already complete" in again.stdout, again.stdout
    assert_mlflow_equals_store(mlflow_server, tiny_sweep / "res" / "tiny", "tiny")


@needs["mlflow"]
@pytest.mark.slow
def test_killed_and_resumed_sweep_logs_every_point_once(tmp_path, mlflow_server):
    """`grok sweep` with a trackers: block pushes while it trains; killed hard once its packs have committed,
    then run again to the end: MLflow holds each member's points once, equal to the store."""
    from test_resume import kill_once_packs_committed

    spec = SLOW.replace("name: resumable", "name: tracked") + f"trackers: {{mlflow: '{mlflow_server}', every_s: 1}}\n"
    write_spec(tmp_path, spec)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "sweeps.cli", "sweep", "spec.yaml", "--results", "res", "-q"]
    proc = subprocess.Popen(
        command, cwd=tmp_path, start_new_session=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        kill_once_packs_committed(proc, lambda: records(tmp_path / "res" / "tracked"), timeout_s=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(mlflow_server).get_experiment_by_name("tracked")
    assert experiment is not None, "nothing was pushed while the sweep ran"
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_mlflow_equals_store(mlflow_server, tmp_path / "res" / "tracked", "tracked")
    assert all(len(p) == SLOW_EVALS for p in parquet_points(tmp_path / "res" / "tracked").values())

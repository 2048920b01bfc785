"""Damaged committed files: every reader names the file, its pack and members in one message (no
traceback); `grok check` verifies the whole sweep; `grok sweep --repair` trains the damaged pack
again, its rows equal to the originals, and leaves every other pack's files alone.

The sweeps here are real: trained by `grok train --all --results` (no Ray) for the readers, by
`grok sweep` on a real local Ray (and on moto's S3 server, slow) for the repair."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sweeps_testing import TINY, TINY_EVALS, TINY_MEMBERS, write_spec
from test_object_store import s3_env  # noqa: F401  (the moto S3 server fixture)

from sweeps.cli import main
from sweeps.lease import LEASE_FILE, LOCK_FILE

# TINY with snapshots, so that a safetensors file can be damaged too
SPEC = TINY + "snapshots: {every: 100, events: [end]}\n"


def _damage(sweep: Path, kind: str) -> tuple[Path, str]:
    """Damage one committed file of the sweep's first pack as a full disk or a bad copy would;
    returns (the file, its pack)."""
    record = min(sweep.glob("checkpoints/packs/*/state.json"))
    pack = record.parent.name
    if kind == "record":
        text = record.read_text()
        record.write_text(text[: len(text) // 2])  # cut mid-JSON
        return record, pack
    folder, suffix = {
        "metrics": ("metrics", "parquet"),
        "metrics page": ("metrics", "parquet"),
        "runs": ("runs", "parquet"),
        "snapshot": ("snapshots", "safetensors"),
    }[kind]
    path = max(sweep.glob(f"{folder}/part-{pack}-*.{suffix}"))
    data = path.read_bytes()
    if kind == "runs":
        path.write_bytes(data[:-64] + b"\0" * 64)  # the footer overwritten, the size kept
    elif kind == "metrics page":
        path.write_bytes(data[:100] + b"\xff" * 500 + data[600:])  # a data page garbled, the footer whole
    else:
        path.write_bytes(data[: len(data) // 2])  # truncated to half (a safetensors header survives that)
    return path, pack


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(spec, results) of TINY with snapshots, trained once for this module without Ray."""
    root = tmp_path_factory.mktemp("damaged")
    spec = write_spec(root, SPEC)
    assert main(["train", str(spec), "--all", "--results", str(root / "results"), "--device", "cpu"]) == 0
    from sweeps.grid_source import prepare
    from sweeps.spec import load_spec

    prepare(load_spec(spec), str(root / "results"))  # sweep.yaml and plan.json, as grok sweep writes them
    return spec, root / "results"


@pytest.fixture
def sweep(trained, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the trained sweep, reached by a relative path from tmp_path as a user would."""
    spec, results = trained
    shutil.copytree(results, tmp_path / "results")
    shutil.copy(spec, tmp_path / "spec.yaml")
    monkeypatch.chdir(tmp_path)
    return Path("results/tiny")


def _files(sweep: Path) -> dict[str, bytes]:
    """The sweep's data: every file but the lease's, which each writer that starts (and refuses) records itself in."""
    lease = {LEASE_FILE, LOCK_FILE}
    return {
        str(p.relative_to(sweep)): p.read_bytes()
        for p in sorted(sweep.rglob("*"))
        if p.is_file() and str(p.relative_to(sweep)) not in lease
    }


def test_check_says_a_whole_sweep_is_whole(sweep, capsys):
    assert main(["check", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert f"{TINY_MEMBERS} runs rows, {TINY_MEMBERS * TINY_EVALS} metrics rows" in out
    assert re.search(r" [1-9]\d* snapshot files", out) and "  ok  " in out
    assert main(["check", str(sweep), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["problems"] == [] and report["checked"]["runs rows"] == TINY_MEMBERS


@pytest.mark.parametrize("kind", ["metrics", "metrics page", "runs", "snapshot", "record"])
def test_every_reader_names_the_damaged_file_and_its_pack(sweep, kind, capsys):
    path, pack = _damage(sweep, kind)
    members = json.loads((sweep / "plan.json").read_text())["packs"][pack]
    before = _files(sweep)
    commands = [["check", str(sweep)]]
    if kind != "metrics page":  # a footer or header: what a truncation or a bad copy breaks, checked before work
        commands += [
            ["measure", str(sweep), "--measures", "fourier"],
            ["sweep", "spec.yaml", "--results", "results", "-q"],
            ["sweep", "spec.yaml", "--dry-run"],
        ]
    if kind not in ("snapshot", "metrics page"):  # status reads no snapshot file nor metrics page (footers only)
        commands.append(["status", str(sweep)])
    if kind != "record":  # the report reads no record
        commands.append(["report", str(sweep), "--no-png"])
    if kind == "snapshot":
        commands.append(["export", str(sweep), members[0], "--out", "out"])
    for command in commands:
        code = main(command)
        out, err = capsys.readouterr()
        text = out + err
        assert code != 0, (command, text)
        assert path.name in text and f"pack {pack}" in text, (command, text)
        assert "Traceback" not in text, (command, text)
        assert members[0] in text, (command, text)
        if command[0] != "check":
            assert len(err.strip().splitlines()) == 1, (command, err)  # one message
        else:
            assert "uncommitted" not in out, out  # a damaged record's parts are not leftovers
    assert _files(sweep) == before  # the planner refused before deleting anything (a damaged record's
    # parts would otherwise look uncommitted and go)


def test_check_finds_rows_missing_or_twice(sweep, capsys):
    """A done pack whose runs part is gone, and a metrics part copied under a second committed seq."""
    record_path = min(sweep.glob("checkpoints/packs/*/state.json"))
    record = json.loads(record_path.read_text())
    pack = record["pack_id"]
    (part,) = sweep.glob(f"runs/part-{pack}-*.parquet")
    part.unlink()
    (other,) = [r for r in sweep.glob("checkpoints/packs/*/state.json") if r != record_path]
    other_record = json.loads(other.read_text())
    (metrics,) = sweep.glob(f"metrics/part-{other_record['pack_id']}-*.parquet")
    seq = int(metrics.name.rsplit("-", 1)[1].split(".")[0])
    shutil.copy(metrics, metrics.with_name(f"part-{other_record['pack_id']}-{seq + 1:06d}.parquet"))
    other_record["seq"] = seq + 2  # both copies committed
    other.write_text(json.dumps(other_record))
    assert main(["check", str(sweep)]) == 1
    out = capsys.readouterr().out
    assert f"pack {pack} is done but 4 member(s) have no runs row" in out
    assert f"{TINY_EVALS} metrics row(s) twice" in out
    assert f"trains pack(s) {', '.join(sorted([pack, other_record['pack_id']]))} again" in out


def test_repair_trains_the_damaged_pack_again_and_nothing_else(ray_session, sweep, capsys):
    """The sweep was trained by grok train (run_pack, as a trial runs it, one thread); the repair
    trains the damaged pack in a Ray trial."""
    original = _files(sweep)
    path, pack = _damage(sweep, "metrics")
    others = {k: v for k, v in original.items() if pack not in k and k.startswith(("runs", "metrics", "snapshots"))}
    mtimes = {k: (sweep / k).stat().st_mtime_ns for k in others}
    capsys.readouterr()

    assert main(["sweep", "spec.yaml", "--results", "results", "-q", "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"trained again: {pack}" in out and "surviving values are equal" in out

    assert main(["check", str(sweep)]) == 0
    now = _files(sweep)
    assert {k: now[k] for k in others} == others  # every other pack's file as it was, not rewritten
    assert {k: (sweep / k).stat().st_mtime_ns for k in others} == mtimes
    assert not (sweep / "repair").exists()
    # the damaged part's rows are back, equal to the bit (same code, same machine)
    (new,) = sweep.glob(f"metrics/part-{pack}-*.parquet")
    order = [("run_id", "ascending"), ("epoch", "ascending")]
    old = pq.read_table(pa.BufferReader(original[str(path.relative_to(sweep))])).sort_by(order)
    pd.testing.assert_frame_equal(pq.read_table(new).sort_by(order).to_pandas(), old.to_pandas(), check_exact=True)


@pytest.mark.slow
def test_on_s3_damage_is_named_and_repaired(s3_env, tmp_path):  # noqa: F811 - the fixture
    """On moto's S3 server: one pack's commit record cut mid-JSON, the other's snapshot file cut to
    half; status and check name both, --repair trains both packs again, check then passes."""
    import subprocess
    import sys

    from test_object_store import BUCKET, _grok

    from sweeps.parquet import SweepStore

    spec = str(write_spec(tmp_path, SPEC))
    results = f"s3://{BUCKET}/results"
    _grok(s3_env, "sweep", spec, "--results", results, "-q", "--num-cpus", "2")
    store = SweepStore(results, "tiny")
    first, second = sorted(store.records())
    record = store.read_text(f"{store.pack_dir(first)}/state.json")
    store.write_text(f"{store.pack_dir(first)}/state.json", record[: len(record) // 2])
    snapshot = store.parts("snapshots", second)[-1]
    store.write_bytes(f"snapshots/{snapshot.name}", store.read_bytes(snapshot.path)[: snapshot.size // 2])

    def grok(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sweeps.cli", *args], env=s3_env, capture_output=True, text=True, timeout=600
        )

    status = grok("status", store.uri)
    assert status.returncode == 1 and f"pack {first}" in status.stderr and "Traceback" not in status.stderr
    check = grok("check", store.uri)
    assert check.returncode == 1 and f"pack {first}" in check.stdout and snapshot.name in check.stdout
    repair = grok("sweep", spec, "--results", results, "-q", "--repair", "--num-cpus", "2")
    assert repair.returncode == 0, repair.stdout[-3000:] + repair.stderr[-3000:]
    assert f"pack {second} trained again" in repair.stdout
    assert f"pack {first} trained again" in repair.stdout
    _grok(s3_env, "check", store.uri)
    assert store.records()[first]["done"]


def test_a_repair_cut_short_is_finished_by_the_next(sweep):
    """A crash after the first step of setting a pack aside (its record moved, nothing else): the
    next --repair moves the rest, although nothing names the pack as damaged any more."""
    from sweeps.parquet import SweepStore
    from sweeps.repair import REPAIR_DIR, set_aside

    _, pack = _damage(sweep, "metrics")
    record = sweep / "checkpoints" / "packs" / pack / "state.json"
    moved = sweep / REPAIR_DIR / pack / record.relative_to(sweep)
    moved.parent.mkdir(parents=True)
    record.rename(moved)
    left = sorted(str(p.relative_to(sweep)) for p in sweep.glob(f"*/part-{pack}-*"))
    assert len(left) >= 3  # runs, metrics, snapshots still in place

    result = set_aside(SweepStore("results", "tiny"))
    assert result.set_aside == []  # no longer named by grok check, but still under repair/
    assert not list(sweep.glob(f"*/part-{pack}-*"))
    assert (
        sorted(str(p.relative_to(sweep / REPAIR_DIR / pack)) for p in (sweep / REPAIR_DIR / pack).glob("*/part-*"))
        == left
    )


def test_repair_refuses_a_search_before_anything(tmp_path, monkeypatch, capsys):
    spec = Path(__file__).parents[2] / "sweeps" / "examples" / "bisection_critical_fraction.yaml"
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(spec), "--results", "results", "--repair"]) == 2
    assert "search: --repair trains a grid sweep's packs again" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()

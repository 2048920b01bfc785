"""The live report (analysis/watch.py): a rebuild reads only the parts that changed, derives only the members
whose rows changed, and yields what a fresh `grok report` yields; `grok report DIR --watch` serves it on
loopback and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from analysis_synthetic import grid_members, metrics_rows, progress_rows, runs_row, write_parts, write_sweep

from analysis.derive import Thresholds
from analysis.load import load_sweep
from analysis.report import build_report
from analysis.watch import LiveReport

AXES = {"train_fraction": [0.1, 0.2, 0.3, 0.4, 0.5], "weight_decay": [0.1, 0.3, 1.0, 3.0], "seed": [0, 1, 2]}


def fresh_times(sweep_dir: Path) -> pd.DataFrame:
    """What `grok report` derives from the sweep as it is now, read whole."""
    return normalised(build_report(load_sweep(sweep_dir), Thresholds()).times)


def normalised(times: pd.DataFrame) -> pd.DataFrame:
    return times.sort_values("run_id").reset_index(drop=True)[sorted(times.columns)]


def live_times(live: LiveReport) -> pd.DataFrame:
    sweep = load_sweep(live.locations)  # the same rows, read whole, for _with_final_metrics' last evaluation
    return normalised(build_report(sweep, live.thresholds, times=live.times.times).times)


def assert_same_report(live: LiveReport, sweep_dir: Path) -> None:
    """The live page's figures and tables, one by one, equal those of a fresh `grok report` of the sweep as it
    is now: exactly (same code, same machine), bootstrap intervals included, however many were kept."""
    fresh = build_report(load_sweep(sweep_dir), Thresholds())
    assert [f.slug for f in live.report.figures] == [f.slug for f in fresh.figures]
    for mine, theirs in zip(live.report.figures, fresh.figures, strict=True):
        assert mine.caption == theirs.caption, mine.slug
        assert mine.figure.to_json() == theirs.figure.to_json(), mine.slug
    assert list(live.report.tables) == list(fresh.tables)
    for name, table in fresh.tables.items():
        pd.testing.assert_frame_equal(live.report.tables[name], table, check_exact=True, obj=name)
    assert live.report.notes == fresh.notes


def add_part(sweep_dir: Path, table: str, name: str, rows: list[dict]) -> None:
    """One part `part-<name>.parquet`, written aside and moved in whole, as a pack commits."""
    staging = sweep_dir.parent / "staging"
    write_parts(staging, rows, 1)
    os.replace(staging / "part-00000.parquet", sweep_dir / table / f"part-{name}.parquet")


def add_parts(sweep_dir: Path, name: str, members, start: int) -> None:
    """One more commit of these members: a runs part and a metrics part."""
    add_part(sweep_dir, "runs", name, [runs_row(m, start + i) for i, m in enumerate(members)])
    add_part(sweep_dir, "metrics", name, [r for m in members for r in metrics_rows(m)])


def test_rebuild_reads_only_new_parts_and_equals_a_fresh_report(tmp_path):
    members = grid_members()
    first, second, third = members[:24], members[24:48], members[48:]
    sweep_dir = write_sweep(tmp_path, "grid", first, axes=AXES, n_parts=1)
    live = LiveReport([str(sweep_dir)], Thresholds(), every_s=1)
    assert live.rebuild() and live.snapshot.parts_read == 2
    assert live.snapshot.progress["ended"] == 24 and "24 members ended" in live.snapshot.html
    pd.testing.assert_frame_equal(live_times(live), fresh_times(sweep_dir))
    assert_same_report(live, sweep_dir)
    assert not live.rebuild(), "nothing changed: no rebuild"

    add_parts(sweep_dir, "b", second, 24)  # a pack commits
    assert live.rebuild() and live.snapshot.parts_read == 2
    pd.testing.assert_frame_equal(live_times(live), fresh_times(sweep_dir))
    assert_same_report(live, sweep_dir)

    # a member still running: metrics but no runs row; then it ends
    running = third[0]
    add_part(sweep_dir, "metrics", "c", metrics_rows(running))
    reused = live.fits.reused
    assert live.rebuild() and live.snapshot.parts_read == 1 and live.snapshot.progress["running"] == 1
    assert live.fits.reused > reused, "no ended member changed: every fit's interval is the one kept"
    pd.testing.assert_frame_equal(live_times(live), fresh_times(sweep_dir))
    assert_same_report(live, sweep_dir)

    # compaction: the parts merged into one, the old ones deleted; then the rest of the sweep, with progress
    for table in ("runs", "metrics"):
        merged = pa.concat_tables(
            [pq.read_table(p) for p in sorted((sweep_dir / table).glob("part-*.parquet"))], promote_options="permissive"
        )
        for old in (sweep_dir / table).glob("part-*.parquet"):
            old.unlink()
        pq.write_table(merged, sweep_dir / table / "part-merged.parquet")
    assert live.rebuild() and live.snapshot.parts_read == 2
    pd.testing.assert_frame_equal(live_times(live), fresh_times(sweep_dir))
    assert_same_report(live, sweep_dir)
    add_parts(sweep_dir, "d", third, 48)
    (sweep_dir / "progress").mkdir()
    add_part(sweep_dir, "progress", "d", [r for m in third if m.progress for r in progress_rows(m)])
    assert live.rebuild()
    pd.testing.assert_frame_equal(live_times(live), fresh_times(sweep_dir))
    assert_same_report(live, sweep_dir)
    assert live.snapshot.progress["ended"] == len(members) and live.snapshot.progress["running"] == 0


def test_watch_serves_on_loopback_and_leaves_nothing_behind(tmp_path):
    sweep_dir = write_sweep(tmp_path, "grid", grid_members(), axes=AXES)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # Ctrl-C as in a terminal, whatever this test inherited: a test run started in the background of a shell
    # without job control ignores SIGINT, and the server inherited that and never stopped (seen in CI's walk).
    # A Python handler here becomes the default one in the child at exec.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeps.cli", "report", "grid", "--watch", "--port", "0", "--every", "0.5"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        line = proc.stdout.readline()
        assert "live report of grid at http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        deadline = time.monotonic() + 120
        while True:
            status = json.loads(urllib.request.urlopen(f"{url}status.json", timeout=10).read())
            if status["built"] is not None:
                break
            assert time.monotonic() < deadline and proc.poll() is None, status
            time.sleep(0.5)
        assert status["progress"] == {
            "planned": None,
            "ended": 60,
            "running": 0,
            "phases": status["progress"]["phases"],
        }
        assert sum(status["progress"]["phases"].values()) == 60
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'id="live-status"' in page and "60 members ended" in page and "heatmap" in page
        assert f"var built = {json.dumps(status['built'])};" in page
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped; nothing was written" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (sweep_dir / "report").exists()


def test_watch_refuses_out(tmp_path):
    write_sweep(tmp_path, "grid", grid_members()[:3], axes=AXES)
    done = subprocess.run(
        [sys.executable, "-m", "sweeps.cli", "report", "grid", "--watch", "--out", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--out: the live report is served, not written" in done.stderr

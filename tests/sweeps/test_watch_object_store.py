"""The live report and a tracker push on results in an object store (moto's S3 server, as
test_object_store.py runs it): a rebuild reads only the new parts over S3, and the push reads the
committed rows from there."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from sweeps_testing import TINY, write_spec
from test_object_store import BUCKET, s3_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None,
    reason="needs moto's standalone server: pip install 'moto[server]' (the test extra declares it)",
)


def test_live_report_and_push_follow_a_sweep_on_s3(s3_env, tmp_path, monkeypatch):  # noqa: F811
    from analysis.derive import Thresholds
    from analysis.watch import LiveReport

    write_spec(tmp_path, TINY)
    results = f"s3://{BUCKET}/results"

    def train(*more: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "sweeps.cli", "train", "spec.yaml", "--results", results, *more],
            cwd=tmp_path,
            env=s3_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    train()  # the first pack of two
    live = LiveReport([f"{results}/tiny"], Thresholds())
    assert live.rebuild() and live.snapshot.progress["ended"] == 4
    first_read = live.snapshot.parts_read
    assert not live.rebuild()
    train("--all")  # the second pack commits
    assert live.rebuild() and live.snapshot.progress["ended"] == 8
    assert live.snapshot.parts_read == first_read, "only the second pack's parts are read (as many as the first's)"

    if importlib.util.find_spec("tensorboard") is not None:
        from sweeps.trackers import push

        assert push(f"{results}/tiny", "tensorboard", str(tmp_path / "tb")).members == 8
        assert len(list((tmp_path / "tb").iterdir())) == 8

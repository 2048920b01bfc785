"""The live report in the real Chromium, during a real sweep: `grok sweep SPEC --watch PORT` serves the page
beside the driver, and the phase map fills in as packs commit (tests/analysis/test_watch.py: the rest)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from analysis_chromium import ink, load_page, needs_chromium, read_png
from test_analysis_browser import _figure_markup, _rendered

pytestmark = [needs_chromium, pytest.mark.slow, pytest.mark.timeout(900)]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweeps"))
from sweeps_testing import SLOW  # noqa: E402

# SLOW's 8 members as 12 (3 replicates) in 3 packs of 4, one pack at a time (--num-cpus 1): the page is
# read after the first pack and after the second, while the third still trains.
SPEC = SLOW.replace("name: resumable", "name: watched").replace("replicates: 2", "replicates: 3")
assert "replicates: 3" in SPEC and "pack_size: 4" in SPEC
PHASE_MAP = "phase__train_fraction__weight_decay__phase"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "live-report.png"
"""The picture of the live page in docs/live.md, taken here (GROK_SCREENSHOT=1 writes it)."""


def status(url: str) -> dict | None:
    try:
        return json.loads(urllib.request.urlopen(f"{url}status.json", timeout=5).read())
    except OSError:
        return None


def wait_for(url: str, proc: subprocess.Popen, ended: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        st = status(url)
        if st and st["built"] and st["progress"].get("ended", 0) >= ended:
            return st
        assert proc.poll() is None, "the sweep ended before the page showed it"
        assert time.monotonic() < deadline, st
        time.sleep(0.3)


def cells(url: str, profile: Path) -> list[str]:
    dom = load_page(url, profile, dump_dom=True)
    assert dom.console == [], dom.console
    assert 'id="live-status"' in dom.stdout
    return sorted(_rendered(_figure_markup(dom.stdout, PHASE_MAP), "textpoint"))


def test_live_page_shows_the_phase_map_fill_in_during_a_real_sweep(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeps.cli",
            "sweep",
            "spec.yaml",
            "--results",
            "res",
            "--num-cpus",
            "1",
            "-q",
            "--watch",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = wait_for(url, proc, 4, timeout_s=600)
        assert first["progress"]["ended"] == 4, first  # one pack in: the page was rebuilt before the second
        before = cells(url, tmp_path / "profile-a")
        second = wait_for(url, proc, 8, timeout_s=600)
        assert second["progress"]["ended"] == 8, second
        after = cells(url, tmp_path / "profile-b")
        if os.environ.get("GROK_SCREENSHOT"):
            shot = tmp_path / "live.png"
            load_page(url, tmp_path / "profile-shot", screenshot=shot, window=(1280, 1400), scale=1)
            nonwhite, colours = ink(read_png(shot))
            assert nonwhite > 0.05 and colours > 50
            SCREENSHOT.write_bytes(shot.read_bytes())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    assert status(url) is None, "the page is still served after the sweep ended"
    # known answer: each cell's text ends with `n/m`, m its members placed so far: 4 members, then 8
    assert sum(members(text) for text in before) == 4, before
    assert sum(members(text) for text in after) == 8 and after != before, after


def members(cell_text: str) -> int:
    """'memorisation 2/2' -> 2; a tie ('mixed<br>grokking 1/2<br>memorisation 1/2') counts its members once; a
    censoring line ('memorisation 2/2<br>2/2 censored at 1,500') is not a phase's count."""
    phases = re.sub(r"\d+/\d+ censored at [\d,]+", "", cell_text)
    return int(re.findall(r"\d+/(\d+)", phases)[-1])

"""The Optuna study on a real PostgreSQL server (what a cluster uses; SQLite stays the default on a
local disk): a server started here on 127.0.0.1, a search interrupted and resumed against it."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_optuna import check_rows, run_interrupted, search_text, study_of, tables

from sweeps.launch import run_sweep
from sweeps.spec import parse_spec

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
pytestmark = [
    pytest.mark.skipif(
        any(shutil.which(b) is None for b in SERVER_BINARIES),
        reason="needs PostgreSQL's server binaries (initdb, pg_ctl, postgres): Debian's postgresql "
        "package; .ci/run installs it",
    ),
]


def _server_user() -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the postgres user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root without a postgres user to run the server as")
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture
def postgres_url():
    pytest.importorskip("psycopg2", reason="needs psycopg2 (pip install psycopg2-binary; the test extra has it)")
    as_user = _server_user()
    home = Path(tempfile.mkdtemp(prefix="grok-pg-"))
    if as_user:
        shutil.chown(home, "postgres")
    data = home / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [*as_user, "initdb", "-D", str(data), "-U", "grok", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(home / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {home} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg2://grok@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_a_search_on_postgres_is_interrupted_and_resumed(ray_session, tmp_path, monkeypatch, postgres_url):
    results = tmp_path / "results"
    text = search_text(name="on_postgres", members=8, batch=4, sampler="random", pruning="", epochs=100)
    spec = parse_spec(text.replace("  kind: optuna\n", f"  kind: optuna\n  storage: {postgres_url}\n"))
    assert spec.search.storage_url(str(results)) == postgres_url
    first = run_interrupted(spec, results, monkeypatch)
    assert first.unfinished_packs
    study = study_of(spec, results)
    before = {t.number: t.state.name for t in study.get_trials()}
    assert 0 < sum(s == "COMPLETE" for s in before.values()) < 8, before
    assert not (results / "on_postgres" / "optuna.db").exists()  # the study is on the server

    assert run_sweep(spec, results=str(results), verbose=0).ok
    study = study_of(spec, results)
    runs, metrics = tables(results, "on_postgres")
    check_rows(runs, metrics, study, 8, epochs=100)
    after = {t.number: t.state.name for t in study.get_trials()}
    assert all(after[n] == s for n, s in before.items() if s != "RUNNING")
    assert sorted(after) == list(range(8)) and set(after.values()) == {"COMPLETE"}

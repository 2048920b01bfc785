"""The `grok` CLI: a light --help, the dry run's numbers, status while a sweep is half done,
`grok train` without Ray, and `grok report` handing over to analysis.report."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from sweeps_testing import TINY, write_spec

from sweeps.cli import main
from sweeps.grid_source import prepare
from sweeps.packing import cut_packs
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import load_spec
from sweeps.status import sweep_status

QUICK = Path(__file__).parents[2] / "sweeps" / "examples" / "quick.yaml"


def test_help_is_light():
    code = (
        "import sys\nfrom sweeps.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'ray', 'optuna', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "sweep" in out and "status" in out and "train" in out and "report" in out
    assert "HEAVY []" in out


def test_dry_run_prints_the_expansion_and_writes_nothing(tmp_path, capsys):
    assert main(["sweep", str(QUICK), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "members      27" in out and "packs        2" in out and "2 to run, 27 members" in out
    assert "81,000" in out  # model-epochs: 3 train fractions x 3 weight decays x 3 replicates x 3000 epochs
    assert not (tmp_path / "r").exists()


def test_status_of_a_half_done_sweep(tmp_path, capsys):
    spec = load_spec(write_spec(tmp_path, TINY))
    prepare(spec, str(tmp_path / "r"))  # writes plan.json and sweep.yaml, as `grok sweep` does
    first, second = cut_packs(spec.members(), spec.pack_size)
    settings = PackSettings(results=str(tmp_path / "r"), name=spec.name, checkpoint_every_s=0, report_every_s=0)
    run_pack(first, settings)

    def stop(metrics):
        if metrics["epoch"] >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pack(second, settings, report=stop)
    st = sweep_status(str(tmp_path / "r" / spec.name))
    assert (st.planned, st.with_row, st.training, st.waiting, st.packs_done, st.packs_started) == (8, 4, 4, 0, 1, 1)
    assert main(["status", str(tmp_path / "r" / spec.name)]) == 0
    out = capsys.readouterr().out
    assert "8 planned; 4 ended (4 done)" in out and "running   4 in 1 started pack(s)" in out
    assert f"outcome   memorised {st.memorised}, generalised {st.generalised}, grokked {st.grokked}" in out
    assert "test acc 0.99 held 3 evaluation(s)" in out
    assert main(["status", str(tmp_path / "nothing")]) == 1


def test_train_without_ray(tmp_path, capsys):
    args = [
        "train",
        "--p",
        "11",
        "--d_model",
        "16",
        "--n-heads",
        "2",
        "--d_mlp",
        "32",
        "--epochs",
        "60",
        "--eval_every",
        "20",
        "--lr",
        "1e-3",
        "--seeds",
        "3",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("add-p11-") == 3 and "epoch     60" in out
    assert main([*args, "--results", str(tmp_path)]) == 0
    assert "generalised    0" in capsys.readouterr().out  # the run_pack progress line: 60 epochs, nobody
    assert len(list((tmp_path / "train" / "runs").glob("part-*.parquet"))) >= 1
    assert main(["train", "--p", "1"]) == 2  # RunConfig's validation, one clear message
    assert "p: must be an integer >= 2" in capsys.readouterr().err


def test_report_hands_over_to_analysis(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("analysis.report")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "analysis.report", fake)
    import analysis

    monkeypatch.setattr(analysis, "report", fake, raising=False)
    assert main(["report", str(tmp_path), "--no-png"]) == 0
    assert calls == [[str(tmp_path), "--no-png"]]


@pytest.mark.parametrize("dry_run", [False, True])
def test_more_gpus_than_the_machine_has_is_a_spec_error_before_anything_starts(tmp_path, capsys, monkeypatch, dry_run):
    """This machine has no GPU: a spec asking one per trial exits 2 with the field named, starts no
    Ray and writes nothing, in a real run and in a dry run alike."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray_before = ray.is_initialized()
    spec = write_spec(tmp_path, TINY + "resources: {cpus: 1, gpus: 1}\n")
    assert main(["sweep", str(spec), "--results", str(tmp_path / "r"), *(["--dry-run"] if dry_run else [])]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: resources.gpus: 1 GPU per trial, but this machine has 0" in err
    assert not (tmp_path / "r").exists()
    assert ray.is_initialized() == ray_before


def test_more_cpus_than_the_local_ray_has_is_a_spec_error(tmp_path, capsys):
    spec = write_spec(tmp_path, TINY + "resources: {cpus: 4, gpus: 0}\n")
    assert main(["sweep", str(spec), "--results", str(tmp_path / "r"), "--num-cpus", "2", "--dry-run"]) == 2
    assert "resources.cpus: 4 CPUs per trial, but this machine's local Ray has 2" in capsys.readouterr().err


def test_status_after_the_driver_stopped_says_stopped_not_running(tmp_path, capsys):
    """A sweep whose driver ended (Ctrl-C) or died (kill -9) has no pack running, whatever its
    records say: `grok status` says so and how to continue."""
    import json
    import socket

    spec = load_spec(write_spec(tmp_path, TINY))
    prepare(spec, str(tmp_path / "r"))
    _, second = cut_packs(spec.members(), spec.pack_size)
    settings = PackSettings(results=str(tmp_path / "r"), name=spec.name, checkpoint_every_s=0, report_every_s=0)

    def stop(metrics):
        if metrics["epoch"] >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pack(second, settings, report=stop)
    sweep = tmp_path / "r" / spec.name
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for driver, state in (
        ({"state": "running", "pid": os.getpid(), "host": socket.gethostname()}, "running"),
        ({"state": "ended", "pid": 1, "host": socket.gethostname()}, "ended"),
        ({"state": "running", "pid": int(dead), "host": socket.gethostname()}, "dead"),
    ):
        (sweep / "driver.json").write_text(json.dumps(driver))
        st = sweep_status(str(sweep))
        assert st.driver == state
        assert (st.training, st.interrupted) == ((4, 0) if state == "running" else (0, 4))
    assert main(["status", str(sweep)]) == 0
    assert (
        "stopped   4 in 1 unfinished pack(s), no driver running (grok sweep again continues them)"
        in capsys.readouterr().out
    )


def test_status_into_a_closed_pipe_is_quiet(tmp_path):
    """`grok status DIR | head -1`: no BrokenPipeError traceback (the output is longer than a pipe's
    buffer, so the writer is still writing when the reader leaves)."""
    import shutil

    spec = load_spec(write_spec(tmp_path, TINY))
    prepare(spec, str(tmp_path / "r"))
    for i in range(300):
        shutil.copytree(tmp_path / "r" / spec.name, tmp_path / "r" / f"copy-{i:03d}")
    done = subprocess.run(
        f"{sys.executable} -m sweeps.cli status {tmp_path / 'r'} | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout == "c" and done.stderr == ""


def test_status_keeps_one_runs_row_per_member_preferring_one_that_did_not_fail():
    """The rule grok status counts by (vectorised for 100k members, issue 17): a member's first row
    that did not fail, else its last failed one; the other rows are not counted."""
    import pyarrow as pa

    from sweeps.status import one_row_per_member

    runs = pa.table(
        {
            "run_id": ["a", "a", "b", "b", "c", "d", "d", "a"],
            "status": ["failed", "done", "failed", "failed", "done", "done", "failed", "done"],
            "epoch_train_99": [None, 1, 2, 3, None, 5, 6, 7],
            "epoch_test_99": [None, None, None, None, None, 9, None, None],
        }
    )
    kept = one_row_per_member(runs).sort_values("run_id")
    assert kept["run_id"].tolist() == ["a", "b", "c", "d"]
    assert kept["status"].tolist() == ["done", "failed", "done", "done"]
    assert kept["epoch_train_99"].tolist()[:2] == [1, 3] and kept["epoch_test_99"].tolist()[3] == 9
    assert one_row_per_member(None) is None

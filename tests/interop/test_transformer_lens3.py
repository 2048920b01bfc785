"""TransformerLens 3.x interop, in the default test run: the project depends on TransformerLens 4, which
removed HookedTransformer, so the checks in check_tl3.py run in a second environment built here from
tests/interop/requirements-tl3.txt: a virtual environment that sees the running environment's
site-packages after its own (a .pth file), so torch and the rest are the project's own, installed
once, and only TransformerLens 3.x and what it lacks are added (~42 MB and ~20 s of pip on the 2-core
machine when idle). It is cached under .venvs/ by the requirements file's hash, or at $GROK_TL3_VENV.

Outside CI a machine that cannot reach a package index skips with pip's message; in CI (CI=true) it fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements-tl3.txt")
CHECKS = Path(__file__).with_name("check_tl3.py")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tl3_environment() -> Path:
    """The environment's python, built on first use; a build cut short is rebuilt (the marker comes last)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = Path(os.environ.get("GROK_TL3_VENV") or ROOT / ".venvs" / f"tl3-{digest}")
    python, marker = venv / "bin" / "python", venv / ".complete"
    if marker.exists() and python.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    # Not --system-site-packages: from inside a virtual environment that would mean the base Python's
    # packages, without the project's torch, and pip would fetch a multi-GB torch.
    project_sites = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]
    link = "".join(f"import site; site.addsitedir({p!r})\n" for p in project_sites)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(python),
            "-c",
            (
                f"import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], "
                f"'grok_project_env.pth').write_text({link!r})"
            ),
        ],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            message = f"building the TransformerLens 3.x environment failed: {' '.join(step)}\n{done.stderr[-3000:]}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    marker.write_text(REQUIREMENTS.read_text())
    return python


def test_transformer_lens_3_hooked_transformer_equals_grokcore():
    """check_tl3.py in the TransformerLens 3.x environment: six exported configurations give grokcore's logits
    bit for bit in HookedTransformer, the export leaves torch, random and numpy generators alone, and a stored
    snapshot loads into it with the live model's logits."""
    python = tl3_environment()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", str(CHECKS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "11 passed" in done.stdout, done.stdout[-2000:]  # every check ran: none skipped or deselected

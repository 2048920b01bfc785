"""The README's two commands are what CI runs (.ci/run reads them from the README by their markers):
each marker is followed by exactly one command, and the main job's report lands where CI looks."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_command(name: str) -> str:
    """The command .ci/run would run, extracted by .ci/run's own function."""
    script = (ROOT / ".ci" / "run").read_text()
    function = script[script.index("readme_command() {") :]
    function = function[: function.index("\n}\n") + 3]
    out = subprocess.run(
        ["bash", "-c", f"{function}\nreadme_command {name}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_ci_runs_the_readme_commands_exactly_as_written():
    readme = (ROOT / "README.md").read_text()
    main_job, tests = readme_command("main-job"), readme_command("tests")
    for command, marker in ((main_job, "<!-- ci:main-job"), (tests, "<!-- ci:tests")):
        assert readme.count(marker) == 1
        block = readme[readme.index(marker) :].split("```bash\n", 1)[1].split("```", 1)[0]
        assert block == command + "\n"  # one command, the whole block
    assert "--index-url https://download.pytorch.org/whl/cpu" in main_job  # never the CUDA build by accident
    spec = main_job.split("grok sweep ", 1)[1].split()[0]
    assert (ROOT / spec).is_file()
    assert main_job.endswith("--results results && grok report results/quick")
    assert "results/quick/report" in (ROOT / ".ci" / "run").read_text()
    assert tests.endswith("python -m pytest")


def test_the_readme_links_design_notes_the_clone_has():
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    assert "(docs/design.md)" in readme and (ROOT / "docs" / "design.md").is_file()

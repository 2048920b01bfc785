"""The docs' worked examples run as the pages write them, so a page cannot rot: each test takes the
fenced blocks that follow a `<!-- marker -->` line of a page and runs them. The tutorial's notebook
blocks and its spec run at a tiny size (each shrink is a named replacement that must match the page
exactly once, so a page that changes its sizes fails here rather than training at full size); the
how-to pages' example modules run unchanged."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
HOWTO = ROOT / "docs" / "howto"

# The tutorial's sizes -> a tiny run: p = 11 and 40 epochs train in a few seconds on one core.
NOTEBOOK_SIZES = {"p=31,": "p=11,", "epochs=700, eval_every=25": "epochs=40, eval_every=10"}
SPEC_SIZES = {"p: 31,": "p: 11,", "epochs: 3000, eval_every: 25": "epochs: 40, eval_every: 10"}
TRAIN_COMMAND = "grok train tutorial.yaml --all --results results"


def fenced_after(page: Path, marker: str) -> list[str]:
    """The code of every fenced block that directly follows a `<!-- marker -->` line, in page order."""
    tag = f"<!-- {marker} -->\n"
    text = page.read_text()
    blocks = []
    for piece in text.split(tag)[1:]:
        assert piece.startswith("```"), f"{page.name}: {tag.strip()} is not followed by a fenced block"
        blocks.append(piece.split("\n", 1)[1].split("\n```", 1)[0] + "\n")
    return blocks


def shrunk(code: str, sizes: dict[str, str]) -> str:
    for old, new in sizes.items():
        assert code.count(old) == 1, f"the page no longer says {old!r} exactly once; update the test's sizes"
        code = code.replace(old, new)
    return code


def grok(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The `grok` command as a subprocess of this interpreter (the worktree's code, whatever is on PATH)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from sweeps.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def tutorial_sweep(tmp_path_factory) -> Path:
    """The tutorial's spec, shrunk, trained by the command the page gives for training it without Ray;
    returns the folder the page's paths are relative to."""
    assert TRAIN_COMMAND in TUTORIAL.read_text()
    (spec,) = fenced_after(TUTORIAL, "tutorial:spec")
    here = tmp_path_factory.mktemp("tutorial")
    (here / "tutorial.yaml").write_text(shrunk(spec, SPEC_SIZES))
    grok(TRAIN_COMMAND.split()[1:], here)
    return here


def test_tutorial_notebook_blocks_run_in_order(tutorial_sweep, monkeypatch):
    blocks = fenced_after(TUTORIAL, "tutorial:run")
    assert len(blocks) == 4
    monkeypatch.chdir(tutorial_sweep)
    ns: dict = {}
    exec(compile(shrunk("".join(blocks[:3]), NOTEBOOK_SIZES), "tutorial.md", "exec"), ns)  # noqa: S102 (running the page's own code is the test)
    assert ns["outcome"].config.p == 11 and ns["outcome"].epochs_trained == 40 and ns["outcome"].status == "done"
    assert ns["curves"]["epoch"].tolist() == [10, 20, 30, 40]  # every eval_every epochs
    grid = {(f, wd) for f in (0.3, 0.6) for wd in (1.0, 3.0)}
    assert len(ns["ended"]) == 8 and {v[:2] for v in ns["ended"].values()} == grid  # 4 cells x 2 seeds

    exec(compile(blocks[3], "tutorial.md", "exec"), ns)  # noqa: S102 (running the page's own code is the test)
    times = ns["times"]
    cells = set(itertools.product((0.3, 0.45, 0.6), (1.0, 3.0, 10.0)))
    assert len(times) == 18 and set(zip(times["train_fraction"], times["weight_decay"])) == cells
    assert sorted(times["seed"].unique()) == [0, 1]
    (heatmap,) = [t for t in ns["fig"].data if t.type == "heatmap"]
    assert len(heatmap.z) == 3 and all(len(row) == 3 for row in heatmap.z)  # one cell per swept pair
    assert Path(ns["report"]) == Path("results/tutorial/report/index.html")  # where `grok report` writes
    assert (tutorial_sweep / ns["report"]).is_file()


def test_readme_ten_line_spec_loads_and_expands(tmp_path):
    """The README's "A sweep in ten lines" (the docs home page includes it) is a spec the tool accepts."""
    from sweeps.spec import load_spec

    readme = (ROOT / "README.md").read_text()
    spec_text = readme.split("<!-- --8<-- [start:spec] -->\n```yaml\n", 1)[1].split("```", 1)[0]
    assert len(spec_text.splitlines()) <= 10
    (tmp_path / "spec.yaml").write_text(spec_text)
    spec = load_spec(tmp_path / "spec.yaml")
    members = spec.members()
    assert len(members) == 3 * 4 * 2  # grid x random draws x replicates
    assert {m.train_fraction for m in members} == {0.3, 0.5, 0.7}
    assert all(0.01 <= m.weight_decay <= 3 for m in members) and len({m.weight_decay for m in members}) == 4


def _example_module(tmp_path: Path, monkeypatch, page: str, name: str) -> None:
    (code,) = fenced_after(HOWTO / page, f"howto:example {name}")
    (tmp_path / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name.removesuffix(".py"), None)


def test_pack_source_howto_hands_out_the_subset(tmp_path, monkeypatch):
    from sweeps import sources
    from sweeps.parquet import SweepStore
    from sweeps.spec import SpecError, load_spec

    _example_module(tmp_path, monkeypatch, "add-a-pack-source.md", "subsample.py")
    (row,) = fenced_after(HOWTO / "add-a-pack-source.md", "howto:example row")
    for kind, search_kind in eval("{" + row + "}", {"SearchKind": sources.SearchKind}).items():
        monkeypatch.setitem(sources.SEARCH_KINDS, kind, search_kind)
    (spec_text,) = fenced_after(HOWTO / "add-a-pack-source.md", "howto:example first-look.yaml")
    monkeypatch.chdir(tmp_path)

    def handed_out(text: str) -> list[str]:
        (tmp_path / "first-look.yaml").write_text(text)
        spec = load_spec("first-look.yaml")
        source = sources.open_source(spec, SweepStore("results", spec.name), {"results": "results"})
        packs = list(iter(source.next_pack, None))
        return [rid for pack in packs for rid in pack.run_ids]

    chosen = handed_out(spec_text)
    assert len(chosen) == len(set(chosen)) == 8
    assert handed_out(spec_text) == chosen  # the same members on a rerun
    # the whole grid when the budget covers it: exactly the members the spec has without its search
    whole = handed_out(spec_text.replace("members: 8", "members: 24"))
    grid = dataclasses.replace(load_spec("first-look.yaml"), search=None).members()
    assert sorted(whole) == sorted(m.run_id for m in grid) and len(grid) == 4 * 3 * 2
    assert set(chosen) < set(whole)
    (tmp_path / "bad.yaml").write_text(spec_text.replace("members: 8", "members: 0"))
    with pytest.raises(SpecError, match="search.members"):
        load_spec("bad.yaml")


def test_figure_howto_draws_one_trace_per_phase_with_a_delay(tmp_path, monkeypatch):
    import pandas as pd

    _example_module(tmp_path, monkeypatch, "add-a-figure.md", "delay_figure.py")
    from delay_figure import delay_figure

    times = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d", "e"],
            "weight_decay": [0.1, 1.0, 1.0, 10.0, 10.0],
            "phase": ["grokking", "grokking", "comprehension", "memorisation", "grokking"],
            "delay": [2000.0, 1000.0, 100.0, float("nan"), 400.0],
        }
    )
    fig = delay_figure(times)
    assert [t.name for t in fig.data] == ["comprehension", "grokking"]  # PHASES' order; memorisation has no delay
    comprehension, grokking = fig.data
    assert list(comprehension.x) == [1.0] and list(comprehension.y) == [100.0]
    assert list(grokking.x) == [0.1, 1.0, 10.0] and list(grokking.y) == [2000.0, 1000.0, 400.0]
    assert list(grokking.text) == ["a", "b", "e"] and fig.layout.xaxis.type == "log"


def test_figure_howto_goes_on_a_report_page(tutorial_sweep, tmp_path, monkeypatch):
    _example_module(tmp_path, monkeypatch, "add-a-figure.md", "delay_figure.py")
    (code,) = fenced_after(HOWTO / "add-a-figure.md", "howto:example report")
    monkeypatch.chdir(tutorial_sweep)
    from delay_figure import delay_figure

    ns = {"delay_figure": delay_figure}
    exec(compile(code, "add-a-figure.md", "exec"), ns)  # noqa: S102 (running the page's own code is the test)
    page = (tutorial_sweep / "results" / "tutorial" / "delay.html").read_text()
    assert "<h2>Grokking delay</h2>" in page and 'id="delay__weight_decay"' in page
    assert ns["report"].figures[-1].slug == "delay__weight_decay" and len(ns["report"].figures) > 1


@pytest.mark.slow
def test_tutorial_sweep_commands_on_a_local_ray(tmp_path):
    """The tutorial's shell block as written (dry run, the sweep on a local Ray, its status), on the shrunk
    spec: the sweep trains every member and status counts them."""
    (spec,) = fenced_after(TUTORIAL, "tutorial:spec")
    (tmp_path / "tutorial.yaml").write_text(shrunk(spec, SPEC_SIZES))
    (shell,) = fenced_after(TUTORIAL, "tutorial:shell")
    commands = [line.split("#", 1)[0].split() for line in shell.splitlines() if line.strip()]
    assert [c[:2] for c in commands] == [["grok", "sweep"], ["grok", "sweep"], ["grok", "status"]]
    outputs = [grok(c[1:], tmp_path).stdout for c in commands]
    assert "members      18" in outputs[0]
    from analysis import load_sweep

    runs = load_sweep(tmp_path / "results" / "tutorial").runs
    assert len(runs) == 18 and set(runs["status"]) == {"done"}
    assert "18 ended (18 done)" in outputs[2]


def test_readme_links_reach_files_of_the_clone():
    """The README is not part of the site (mkdocs checks the site's links); its own links into docs/ and
    reproductions/ are checked here."""
    import re

    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    local = [t for t in targets if "://" not in t]
    assert "docs/tutorial.md" in local and "docs/howto/index.md" in local
    assert [t for t in local if not (ROOT / t).exists()] == []

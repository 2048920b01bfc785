"""The report's progress section: which figures it draws from which columns, and what they show, read back from
the figures (known answers of analysis_progress_synthetic) and from the page; PNGs when Chromium is there."""

import math
import re

import analysis_progress_synthetic as ps
import analysis_synthetic as synthetic
import numpy as np
import pytest
from analysis_chromium import ink, load_page, needs_chromium, read_png

from analysis.load import load_sweep
from analysis.report import PROGRESS_LOSS, build_report, write_report
from grokcore.progress import columns as col

PROGRESS_SLUGS = {
    "progress__loss",
    "progress__llc",
    "progress__spectrum",
    "progress__bars",
    "progress__circle",
    "progress__measures",
    "progress__phase__train_fraction__weight_decay__restricted",
    "progress__phase__train_fraction__weight_decay__llc",
}


@pytest.fixture(scope="module")
def progress_sweep_dir(tmp_path_factory):
    return ps.write_progress_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def report(progress_sweep_dir):
    from analysis.derive import Thresholds

    return build_report(load_sweep(progress_sweep_dir), Thresholds())


def figures(report) -> dict:
    return {f.slug: f for f in report.figures if f.section == "Progress measures"}


def config_of(run_id: str) -> dict:
    return next(m.config for m in ps.members() if m.run_id == run_id)


def test_every_progress_figure_is_drawn_once(report):
    assert set(figures(report)) == PROGRESS_SLUGS
    assert PROGRESS_LOSS == ps.LOSS


def test_restricted_loss_falls_before_test_loss(report):
    fig = figures(report)["progress__loss"]
    crossings = fig.figure.layout.meta["crossings"]
    assert fig.figure.layout.meta["threshold"] == ps.LOSS
    assert len(crossings) == 3  # one representative per phase: comprehension, grokking, memorisation
    for run_id, c in crossings.items():
        cfg = config_of(run_id)
        grok = ps.gen_epoch(cfg["train_fraction"], cfg["weight_decay"])
        if grok is None:
            assert c["restricted"] is None and c["restricted_lead"] is None
        else:
            assert (c["restricted"], c["test"], c["restricted_lead"]) == (grok // 2, grok, grok - grok // 2)
            assert (
                f"restricted loss ≤ 0.1 at epoch {grok // 2}, test loss at {grok} (+{grok - grok // 2} epochs)"
                in fig.caption
            )


def test_llc_curves_only_where_estimated(report):
    fig = figures(report)["progress__llc"].figure
    means = [t for t in fig.data if (t.meta or {}).get("column") == col.LLC_MEAN]
    assert len(means) == 3
    for trace in means:
        cfg = config_of(trace.meta["run_id"])
        assert list(trace.x) == list(range(ps.LLC_EVERY, ps.EPOCHS + 1, ps.LLC_EVERY))
        assert trace.y[-1] == pytest.approx(ps.final_llc(cfg["train_fraction"], cfg["weight_decay"], cfg["seed"]))


def test_spectrum_and_circle_of_the_grokking_member(report):
    spectrum = figures(report)["progress__spectrum"]
    run_id = spectrum.figure.layout.meta["run_id"]
    row = report.times.set_index("run_id").loc[run_id]
    assert row["phase"] == "grokking"
    k = ps.key_frequency(int(row["seed"]))
    keys = spectrum.figure.layout.meta["key_frequencies"]
    assert keys[ps.EPOCHS] == [k] and keys[ps.EVERY] == list(range(1, ps.P // 2 + 1))
    bars = figures(report)["progress__bars"]
    assert bars.figure.layout.meta["shown"][run_id] == {"epoch": ps.EPOCHS, "key_frequencies": [k]}
    circle = figures(report)["progress__circle"].figure
    assert circle.layout.meta["run_id"] == run_id and circle.layout.meta["modulus"] == ps.P
    assert circle.layout.meta["order_freq"][ps.EPOCHS] == k
    line = next(t for t in circle.data if t.mode == "lines" and t.meta["epoch"] == ps.EPOCHS)
    angles = np.unwrap(np.arctan2(np.array(line.y), np.array(line.x)))
    assert np.all(np.diff(angles) > 0) and angles[-1] - angles[0] == pytest.approx(2 * math.pi)


def test_summary_curves_leave_out_what_other_figures_draw(report):
    columns = figures(report)["progress__measures"].figure.layout.meta["columns"]
    assert columns[:3] == [col.N_KEY, col.EMBED_KEY_FRAC, col.pca_var(0)]
    assert not any(
        c.startswith(("llc/", "fourier/embed_norm_", "embed/pc0_", "embed/pc1_", "fourier/key_freq_")) for c in columns
    )
    assert col.RESTRICTED_LOSS not in columns and len(columns) <= 8


def cells(fig) -> dict:
    heat = fig.data[0]
    return {(x, y): heat.customdata[i][j] for i, y in enumerate(heat.y) for j, x in enumerate(heat.x)}


def test_progress_phase_diagrams_hold_the_constructed_values(report):
    restricted = cells(figures(report)["progress__phase__train_fraction__weight_decay__restricted"].figure)
    assert {k: v for k, v in restricted.items() if not math.isnan(v)} == {
        ("0.5", "1.0"): 500,
        ("0.5", "0.5"): 1000,
        ("0.3", "1.0"): 1000,
    }
    assert math.isnan(restricted[("0.3", "0.5")])
    llc = cells(figures(report)["progress__phase__train_fraction__weight_decay__llc"].figure)
    for tf in ps.TRAIN_FRACTIONS:
        for wd in ps.WEIGHT_DECAYS:
            assert llc[(str(tf), str(wd))] == pytest.approx(100 * tf / wd + 0.5)  # median over seeds 0 and 1


def test_only_the_figures_whose_columns_exist(grid_sweep):
    """The grid sweep records restricted and excluded loss only, for one train fraction: the loss figure and
    nothing that needs other columns or two swept axes."""
    from analysis.derive import Thresholds

    drawn = figures(build_report(grid_sweep, Thresholds()))
    assert set(drawn) == {"progress__loss"}


def test_no_progress_section_without_progress_rows(tmp_path):
    page = write_report(synthetic.write_sweep(tmp_path, "none", synthetic.pow_members()), png=False)
    assert "Progress measures" not in page.read_text(encoding="utf-8")


def test_page_holds_the_progress_section(progress_sweep_dir, tmp_path):
    page = write_report(progress_sweep_dir, out_dir=tmp_path, png=False).read_text(encoding="utf-8")
    ids = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)
    assert set(ids) >= PROGRESS_SLUGS
    assert page.count("<h2>Progress measures</h2>") == 1
    assert "restricted loss ≤ 0.1 at epoch 1000, test loss at 2000 (+1000 epochs)" in page


@needs_chromium
def test_progress_pngs(progress_sweep_dir, tmp_path):
    index = write_report(progress_sweep_dir, out_dir=tmp_path, png=True)
    pngs = {p.stem for p in (tmp_path / "png").glob("progress__*.png")}
    assert pngs == PROGRESS_SLUGS
    for slug in ("progress__spectrum", "progress__circle", "progress__phase__train_fraction__weight_decay__llc"):
        nonwhite, colours = ink(read_png(tmp_path / "png" / f"{slug}.png"))
        assert nonwhite > 0.02 and colours > 20, slug
    assert "PNG export unavailable" not in index.read_text(encoding="utf-8")


@needs_chromium
def test_progress_section_renders_in_headless_chromium(progress_sweep_dir, tmp_path):
    index = write_report(progress_sweep_dir, out_dir=tmp_path / "report", png=False)
    dom = load_page(index, tmp_path / "profile", dump_dom=True)
    assert dom.console == [], f"console output from the report: {dom.console}"
    for slug in PROGRESS_SLUGS:
        assert re.search(rf'<div id="{slug}" class="plotly-graph-div js-plotly-plot"', dom.stdout), slug

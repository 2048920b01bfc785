"""The report's snapshot section: drawn from a real sweep's snapshots, with the values grokcore computes
from the stored weights; absent where a sweep kept none."""

from __future__ import annotations

import html

import numpy as np

from analysis.derive import Thresholds
from analysis.load import load_sweep
from analysis.report import build_report, render_html
from grokcore.config import RunConfig
from grokcore.progress.fourier import frequency_norms
from grokcore.snapshots import load_snapshot
from sweeps.packing import Pack
from sweeps.runner import PackSettings, run_pack


def test_snapshot_figures_show_the_stored_weights(tmp_path):
    pack = Pack.of(
        RunConfig(p=13, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=60, eval_every=20, seed=s)
        for s in (0, 1)
    )
    settings = PackSettings(
        results=str(tmp_path), name="s", checkpoint_every_s=0.0, report_every_s=0.0, snapshots={"every": 20}
    )
    run_pack(pack, settings)
    report = build_report(load_sweep(tmp_path / "s"), Thresholds())
    shown = {f.slug: f for f in report.figures if f.section == "Snapshots of representative members"}
    spectra = [f for slug, f in shown.items() if "spectrum" in slug]
    attention = [f for slug, f in shown.items() if "attention" in slug]
    assert spectra and attention
    page = render_html(report)
    assert "Snapshots of representative members" in page and html.escape(spectra[0].caption) in page

    fig = spectra[0].figure
    run_id = fig.layout.title.text.rsplit(": ", 1)[1]
    heat = fig.data[0]
    assert list(heat.x) == ["20", "40", "60"] and list(heat.y) == list(range(1, 7))  # p 13: frequencies 1..6
    _, weights = load_snapshot(tmp_path / "s", run_id, 40)
    norms = frequency_norms(weights["embed.W_E"][:13].double().unsqueeze(0))[0].numpy()
    np.testing.assert_allclose(np.asarray(heat.z)[:, 1], norms / norms.max(), rtol=1e-12)
    # attention: one line per head and key position, each epoch's weights summing to 1 over positions
    lines = attention[0].figure.data
    assert len(lines) == 2 * 3
    totals = np.sum([np.asarray(line.y) for line in lines], axis=0) / 2
    np.testing.assert_allclose(totals, 1.0, rtol=1e-5)


def test_no_snapshot_section_without_snapshots(tmp_path):
    pack = Pack.of([RunConfig(p=13, d_model=16, n_heads=2, d_mlp=32, epochs=20, eval_every=10)])
    run_pack(pack, PackSettings(results=str(tmp_path), name="n", checkpoint_every_s=0.0, report_every_s=0.0))
    report = build_report(load_sweep(tmp_path / "n"), Thresholds())
    assert not [f for f in report.figures if f.section == "Snapshots of representative members"]

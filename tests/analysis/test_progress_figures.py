"""analysis.progress_figures: figures read back from the figure objects, on progress tables with known
answers, and once on the rows a real (tiny) training run writes."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.progress_figures import (
    embedding_circle,
    first_epoch_below,
    frequency_bars,
    frequency_spectrum,
    llc_curves,
    loss_and_progress,
    member_progress_values,
    progress_phase_diagram,
)
from grokcore.progress import columns as col

P = 11
EPOCHS = [100, 200, 300, 400, 500]


def synthetic_tables():
    """Two members. 'a': restricted loss reaches 0.1 at epoch 200, test loss at 500; key frequency 3 from
    epoch 300 on, its embedding a circle of frequency 3. 'b': never below 0.1."""
    metrics, progress = [], []
    for run_id, fast in (("a", True), ("b", False)):
        for e in EPOCHS:
            test = {100: 5.0, 200: 3.0, 300: 1.0, 400: 0.5, 500: 0.05}[e] if fast else 4.0
            metrics.append({"run_id": run_id, "epoch": e, "train/loss": 0.01, "test/loss": test})
            row = {
                "run_id": run_id,
                "epoch": e,
                col.RESTRICTED_LOSS: ({100: 1.0, 200: 0.08, 300: 0.02, 400: 0.01, 500: 0.01}[e] if fast else 2.0),
                col.EXCLUDED_LOSS: 3.0 + e / 100,
                col.LLC_MEAN: 100.0 - e / 10,
                col.LLC_STD: 2.0,
            }
            keys = [3] if (fast and e >= 300) else [1, 2, 3, 4, 5]
            for i in range(col.MAX_KEY_FREQS):
                row[col.key_freq(i)] = float(keys[i]) if i < len(keys) else math.nan
            for k in range(1, P // 2 + 1):
                row[col.embed_norm(k)] = 10.0 if k in keys else 1.0
            for t in range(P):
                angle = 2 * math.pi * 3 * t / P
                row[col.pc_coord(0, t)], row[col.pc_coord(1, t)] = math.cos(angle), math.sin(angle)
            for i in range(col.N_PCA):
                row[col.pca_var(i)] = [0.5, 0.5, 0.0][i]
            progress.append(row)
    return pd.DataFrame(progress), pd.DataFrame(metrics)


def test_loss_and_progress_marks_restricted_loss_falling_first():
    progress, metrics = synthetic_tables()
    fig = loss_and_progress(progress, metrics, ["a", "b"], threshold=0.1)
    crossings = fig.layout.meta["crossings"]
    assert crossings["a"]["restricted"] == 200 and crossings["a"]["test"] == 500
    assert crossings["a"]["restricted_lead"] == 300
    assert crossings["b"]["restricted"] is None and crossings["b"]["restricted_lead"] is None
    lines = [t for t in fig.data if t.mode == "lines"]
    assert {(t.meta["run_id"], t.meta["column"]) for t in lines} == {
        (r, c) for r in "ab" for c in ("train/loss", "test/loss", col.RESTRICTED_LOSS, col.EXCLUDED_LOSS)
    }
    assert first_epoch_below(progress[progress.run_id == "a"], col.RESTRICTED_LOSS, 0.1) == 200
    with pytest.raises(AnalysisError, match="no progress rows"):
        loss_and_progress(progress, metrics, ["zzz"])


def test_llc_curves_band_and_mean():
    progress, metrics = synthetic_tables()
    fig = llc_curves(progress, metrics, ["a"])
    mean = next(t for t in fig.data if (t.meta or {}).get("column") == col.LLC_MEAN)
    assert list(mean.y) == [100.0 - e / 10 for e in EPOCHS]
    band = next(t for t in fig.data if (t.meta or {}).get("band"))
    assert max(band.y) == pytest.approx(100.0 - 10 + 2.0) and min(band.y) == pytest.approx(50.0 - 2.0)
    # rows without an estimate (llc_every > 1) are skipped, not drawn as gaps or zeros
    thinned = progress.copy()
    thinned.loc[thinned["epoch"].isin([100, 300, 500]), [col.LLC_MEAN, col.LLC_STD]] = math.nan
    mean = next(t for t in llc_curves(thinned, metrics, ["a"]).data if (t.meta or {}).get("column") == col.LLC_MEAN)
    assert list(mean.x) == [200, 400] and list(mean.y) == [80.0, 60.0]


def test_frequency_spectrum_and_bars_show_the_key_frequencies():
    progress, _ = synthetic_tables()
    fig = frequency_spectrum(progress, "a")
    heat = fig.data[0]
    assert list(heat.y) == list(range(1, P // 2 + 1))
    z = np.array(heat.z)  # (freq, epoch), each epoch normalised by its largest norm
    assert z[2, -1] == 1.0 and z[0, -1] == pytest.approx(0.1)
    assert fig.layout.meta["key_frequencies"][500] == [3] and fig.layout.meta["key_frequencies"][100] == [1, 2, 3, 4, 5]
    bars = frequency_bars(progress, ["a", "b"], epoch=450)
    assert bars.layout.meta["shown"]["a"] == {"epoch": 400, "key_frequencies": [3]}
    assert list(bars.data[0].marker.line.width) == [0, 0, 2.5, 0, 0]


def test_embedding_circle_joins_tokens_around_the_circle():
    progress, _ = synthetic_tables()
    fig = embedding_circle(progress, "a", epochs=[100, 500], p=P)
    assert fig.layout.meta["order_freq"] == {100: 1, 500: 3}
    line = next(t for t in fig.data if t.mode == "lines" and t.meta["epoch"] == 500)
    angles = np.unwrap(np.arctan2(np.array(line.y), np.array(line.x)))
    assert np.all(np.diff(angles) > 0) and angles[-1] - angles[0] == pytest.approx(2 * math.pi)  # once around
    default = embedding_circle(progress, "a")
    assert default.layout.meta["epochs"][-1] == 500 and len(default.layout.meta["epochs"]) == 4
    with pytest.raises(AnalysisError, match="epoch"):
        embedding_circle(progress, "a", epochs=[150])


def test_progress_phase_diagram_medians_and_first_epochs():
    rows, runs = [], []
    for i, (tf, wd, seed) in enumerate([(0.3, 1.0, 0), (0.3, 1.0, 1), (0.3, 0.1, 0), (0.5, 1.0, 0), (0.5, 0.1, 0)]):
        run_id = f"r{i}"
        runs.append(
            {"run_id": run_id, "train_fraction": tf, "weight_decay": wd, "seed": seed, "status": "done", "epochs": 300}
        )
        for e in (100, 200, 300):
            value = 1.0 / (e * (1 + i))
            rows.append({"run_id": run_id, "epoch": e, col.RESTRICTED_LOSS: value, col.LLC_MEAN: float(10 * i + e)})
    progress, runs = pd.DataFrame(rows), pd.DataFrame(runs)
    fig = progress_phase_diagram(progress, runs, "train_fraction", "weight_decay", col.LLC_MEAN)
    heat = fig.data[0]
    z = {(x, y): heat.customdata[i][j] for i, y in enumerate(heat.y) for j, x in enumerate(heat.x)}
    assert z[("0.3", "1.0")] == pytest.approx((300 + 310) / 2)  # median of the two seeds, at the last epoch
    assert z[("0.5", "0.1")] == 340
    at_200 = progress_phase_diagram(progress, runs, "train_fraction", "weight_decay", col.LLC_MEAN, epoch=200)
    assert at_200.data[0].customdata[list(at_200.data[0].y).index("0.1")][0] == 220
    firsts = member_progress_values(progress, col.RESTRICTED_LOSS, below=1 / 450)
    assert firsts.to_dict() == {"r0": math.nan, "r1": 300.0, "r2": 200.0, "r3": 200.0, "r4": 100.0} or (
        math.isnan(firsts["r0"]) and firsts.drop("r0").to_dict() == {"r1": 300.0, "r2": 200.0, "r3": 200.0, "r4": 100.0}
    )
    below = progress_phase_diagram(progress, runs, "train_fraction", "weight_decay", col.RESTRICTED_LOSS, below=1 / 450)
    assert below.layout.meta["below"] == pytest.approx(1 / 450)
    row = list(below.data[0].y).index("1.0")
    # tf 0.3, wd 1.0: r0 never fell below (censored at its last row, 300), r1 at 300: half by 300.
    assert below.data[0].customdata[row][0] == 300 and below.data[0].text[row][0] == "300 (1/2 reached)"
    # Censoring, not dropping: without r1's row the cell's median is unknown, shown as "> 300".
    alone = progress_phase_diagram(
        progress[progress["run_id"] != "r1"], runs, "train_fraction", "weight_decay", col.RESTRICTED_LOSS, below=1 / 450
    )
    row = list(alone.data[0].y).index("1.0")
    assert alone.data[0].text[row][0] == "> 300 (0/1 reached)"
    with pytest.raises(AnalysisError, match="not a column"):
        progress_phase_diagram(progress, runs, "lr", "weight_decay", col.LLC_MEAN)


def test_figures_draw_the_rows_a_real_run_writes():
    """The progress rows measure_pack writes for a tiny pack are enough for every figure."""
    from grokcore import PackTrainer, RunConfig
    from grokcore.progress import ProgressSettings, SGLDSettings

    base = RunConfig(
        p=P, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=60, eval_every=20, progress_every=20
    )
    members = [dataclasses.replace(base, weight_decay=wd, seed=s) for wd in (0.1, 1.0) for s in (0, 1)]
    trainer = PackTrainer(members)
    trainer.progress_settings = ProgressSettings(sgld=SGLDSettings(chains=2, burnin=1, draws=2))
    metrics, progress, runs = [], [], []
    for report in trainer.run():
        metrics += report.metrics
        progress += report.progress
        runs += [o.to_row() for o in report.finished]
    metrics, progress, runs = pd.DataFrame(metrics), pd.DataFrame(progress), pd.DataFrame(runs)
    ids = [m.run_id for m in members]
    assert loss_and_progress(progress, metrics, ids[:2]).data
    assert llc_curves(progress, metrics, ids[:2]).data
    assert frequency_spectrum(progress, ids[0]).data
    assert frequency_bars(progress, ids).data
    assert embedding_circle(progress, ids[0], p=P).layout.meta["epochs"] == [20, 40, 60]
    fig = progress_phase_diagram(progress, runs, "weight_decay", "seed", col.EXCLUDED_LOSS)
    assert np.isfinite(np.array(fig.data[0].customdata, dtype=float)).all()

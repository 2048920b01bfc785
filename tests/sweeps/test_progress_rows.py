"""Progress measures asked for by a spec: `progress_every` in base or as an axis, rows written by run_pack
(through `grok train`, no Ray) under progress/ keyed by (run_id, epoch), loaded by analysis and drawn in the
report."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
from sweeps_testing import write_spec

from grokcore.progress import columns as col
from sweeps.cli import main
from sweeps.parquet import TABLES
from sweeps.spec import parse_spec

SPEC = """\
name: prog
base: {task: add, p: 11, d_model: 16, n_heads: 2, d_mlp: 32, lr: 3.0e-3, epochs: 80, eval_every: 20,
       progress_every: 20}
axes:
  train_fraction: [0.4, 0.7]
  weight_decay: [0.5, 1.0]
replicates: 2
pack_size: 8
"""


def test_progress_every_is_a_spec_field_in_base_and_axes():
    members = parse_spec(SPEC).members()
    assert len(members) == 8 and {m.progress_every for m in members} == {20}
    text = SPEC.replace("\n       progress_every: 20}", "}").replace("axes:\n", "axes:\n  progress_every: [0, 40]\n")
    swept = parse_spec(text).members()
    assert sorted({m.progress_every for m in swept}) == [0, 40] and len(swept) == 16


def test_grok_train_writes_progress_rows_that_analysis_loads_and_draws(tmp_path, capsys):
    from analysis.load import load_sweep
    from analysis.report import write_report

    spec = write_spec(tmp_path, SPEC)
    assert main(["train", str(spec), "--all", "--results", str(tmp_path / "results")]) == 0
    sweep_dir = tmp_path / "results" / "prog"
    assert "progress" in TABLES and list((sweep_dir / "progress").glob("part-*.parquet"))
    raw = pq.read_table(sweep_dir / "progress")
    assert raw.column_names[:2] == ["run_id", "epoch"] and raw.schema.field("epoch").type.bit_width == 64

    sweep = load_sweep(sweep_dir)
    progress = sweep.progress
    assert sorted(set(progress["run_id"])) == sorted(sweep.runs["run_id"]) and len(sweep.runs) == 8
    assert not progress.duplicated(["run_id", "epoch"]).any()
    assert sorted(set(progress["epoch"])) == [20, 40, 60, 80] and len(progress) == 8 * 4
    expected = set(col.embed_columns(11) + col.fourier_columns(11) + col.LLC_COLUMNS)
    assert expected <= set(progress.columns)
    # the LLC every second progress evaluation (ProgressSettings.llc_every = 2), the rest every time
    llc_epochs = sorted(set(progress.loc[progress[col.LLC_MEAN].notna(), "epoch"]))
    assert llc_epochs == [40, 80]
    assert progress[col.RESTRICTED_LOSS].map(math.isfinite).all()

    page = write_report(sweep_dir, png=False).read_text(encoding="utf-8")
    for slug in (
        "progress__loss",
        "progress__llc",
        "progress__spectrum",
        "progress__circle",
        "progress__phase__train_fraction__weight_decay__restricted",
    ):
        assert f'id="{slug}"' in page, slug

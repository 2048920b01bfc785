"""The one rule on the sweeps side: the runs rows' verdict columns, `grok status`, the readers of sweeps
written before those columns existed (today's main), and the report of the same sweep all agree."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from analysis import load_sweep
from analysis.report import write_report
from grokcore.verdict import VERDICT_COLUMNS, Thresholds, decide
from sweeps.cli import main
from sweeps.grid_source import prepare
from sweeps.packing import cut_packs
from sweeps.parquet import SweepStore
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import parse_spec
from sweeps.status import sweep_status
from sweeps.verdicts import with_verdicts

# tiny members whose train accuracy ends at 0.45-0.6 after 200 epochs: a threshold some reach, some not
SPEC = """\
name: old
base: {task: add, p: 11, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 200, eval_every: 20}
axes:
  train_fraction: [0.5, 0.7]
replicates: 2
thresholds: {train_acc: 0.5, test_acc: 0.03, hold: 2, grok_delay: 40}
"""
RULE = Thresholds(train_acc=0.5, test_acc=0.03, hold=2, grok_delay=40)


def trained_sweep():
    """The sweep trained under results/ in the working directory (relative paths, as a user types them)."""
    spec = parse_spec(SPEC)
    assert spec.thresholds == RULE
    results = "results"
    prepare(spec, results)  # plan.json and sweep.yaml, as grok sweep writes them
    settings = PackSettings.from_spec(spec, results)
    for pack in cut_packs(spec.members(), spec.pack_size):
        run_pack(pack, settings)
    return spec, SweepStore(settings.results, spec.name)


def by_hand(store: SweepStore) -> dict:
    """run_id -> the verdict of decide() over its metrics rows."""
    metrics = store.read_table("metrics").to_pandas().sort_values(["run_id", "epoch"])
    return {
        rid: decide(m["epoch"].tolist(), m["train/acc"].tolist(), m["test/acc"].tolist(), RULE)
        for rid, m in metrics.groupby("run_id")
    }


def drop_verdict_columns(store: SweepStore) -> None:
    """Rewrite the runs parts as today's main writes them: without the verdict columns."""
    for part in store.parts("runs"):
        table = pq.read_table(part.path)
        pq.write_table(table.drop_columns([c for c in VERDICT_COLUMNS if c in table.column_names]), part.path)


def test_status_counts_the_rule_and_an_old_sweep_reads_the_same(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec, store = trained_sweep()
    expected = by_hand(store)
    counts = (
        sum(v.memorised for v in expected.values()),
        sum(v.generalised for v in expected.values()),
        sum(v.grokked for v in expected.values()),
    )
    assert 0 < counts[0] < 4  # not vacuous: some members reach the threshold, some not
    location = f"results/{spec.name}"
    st = sweep_status(location)
    assert (st.memorised, st.generalised, st.grokked) == counts
    written = store.read_table("runs").to_pandas().set_index("run_id")[list(VERDICT_COLUMNS)]

    drop_verdict_columns(store)
    assert "grokked" not in store.read_table("runs").column_names
    old = sweep_status(location)
    assert (old.memorised, old.generalised, old.grokked) == counts
    assert main(["status", location]) == 0
    assert f"memorised {counts[0]}, generalised {counts[1]}, grokked {counts[2]}" in capsys.readouterr().out
    # what the bisection and Optuna read: the same values the runner wrote
    filled = with_verdicts(store, store.read_table("runs"), RULE).to_pandas().set_index("run_id")
    pd.testing.assert_frame_equal(filled.loc[written.index, list(VERDICT_COLUMNS)], written, check_dtype=False)

    # the report of the old sweep, judged by its spec's thresholds, gives each member the same times
    sweep = load_sweep(location)
    times = sweep.member_times().set_index("run_id")
    for rid, v in expected.items():
        assert [None if pd.isna(times.loc[rid, c]) else int(times.loc[rid, c]) for c in ("mem_epoch", "gen_epoch")] == [
            v.memorised_epoch,
            v.generalised_epoch,
        ]
        assert bool(times.loc[rid, "generalised"]) == v.generalised
    assert write_report(location, png=False).exists()

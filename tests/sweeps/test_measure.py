"""grok measure: progress measures recomputed from snapshots equal the online ones, once per row."""

from __future__ import annotations

import shutil

import pandas as pd

from grokcore.config import RunConfig
from sweeps.cli import main
from sweeps.measure import MEASURE_PACK
from sweeps.packing import Pack
from sweeps.parquet import SweepStore, progress_schema
from sweeps.runner import run_pack
from test_runner import settings


def test_offline_measures_equal_online_and_never_duplicate(tmp_path):
    # p 13 add: Fourier and restricted-loss measures apply; progress every 20, the LLC every 40
    pack = Pack.of(RunConfig(p=13, d_model=16, n_heads=2, d_mlp=32, train_fraction=0.5, epochs=80, eval_every=20,
                             progress_every=20, seed=s) for s in (0, 1))
    run_pack(pack, settings(tmp_path, "s", snapshots={"every": 20}))
    store = SweepStore(str(tmp_path), "s")
    online = store.read_table("progress").to_pandas().sort_values(["run_id", "epoch"]).reset_index(drop=True)
    assert set(online.epoch) == {20, 40, 60, 80} and online["llc/mean"].notna().any()

    # the sweep as if it had measured nothing: measure its snapshots offline
    shutil.rmtree(tmp_path / "s" / "progress")
    # a crash leftover of an earlier measure (a part with no commit) goes first
    store.write_part("progress", MEASURE_PACK, 0, [{"run_id": "x", "epoch": 1, "llc/mean": 1.0}],
                     progress_schema({"llc/mean"}))
    assert main(["measure", str(tmp_path / "s")]) == 0
    offline = store.read_table("progress").to_pandas().sort_values(["run_id", "epoch"]).reset_index(drop=True)
    assert "x" not in set(offline.run_id)
    assert list(offline.columns) == list(online.columns)
    pd.testing.assert_frame_equal(offline, online, check_exact=True)  # bit for bit
    # again: nothing new, nothing doubled
    assert main(["measure", str(tmp_path / "s")]) == 0
    again = store.read_table("progress").to_pandas()
    assert len(again) == len(online) and not again.duplicated(["run_id", "epoch"]).any()

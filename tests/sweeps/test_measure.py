"""grok measure: progress measures recomputed from snapshots equal the online ones, merge into the
pack's own progress rows (one row per member and epoch), replace what --replace asks, and a crash or
a kill mid-measure leaves the rows as before or as after, never doubled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from test_runner import settings

from grokcore.config import RunConfig
from grokcore.progress import ProgressSettings, SGLDSettings, measure_pack
from grokcore.snapshots import load_snapshot, pack_at
from sweeps.cli import main
from sweeps.packing import Pack
from sweeps.parquet import SweepStore, progress_schema
from sweeps.runner import run_pack

LLC = ["llc/failed_chains", "llc/init_loss", "llc/mean", "llc/nbeta", "llc/std"]


def measured_pack(d_model: int = 16) -> Pack:
    # p 13 add: Fourier and restricted-loss measures apply; progress every 20, the LLC every 40
    return Pack.of(
        RunConfig(
            p=13,
            d_model=d_model,
            n_heads=2,
            d_mlp=32,
            train_fraction=0.5,
            epochs=80,
            eval_every=20,
            progress_every=20,
            seed=s,
        )
        for s in (0, 1)
    )


def progress(store: SweepStore) -> pd.DataFrame:
    """The committed progress rows (what a resume or a rerun sees), sorted."""
    records = store.records()
    parts = [p for p in store.parts("progress") if p not in store.uncommitted("progress", records)]
    table = store.read_table("progress", parts=parts) if parts else None
    frame = table.to_pandas() if table is not None else pd.DataFrame(columns=["run_id", "epoch"])
    return frame.sort_values(["run_id", "epoch"]).reset_index(drop=True)


def drop_columns(store: SweepStore, pack_id: str, columns: list[str]) -> None:
    """The pack's progress rows as a sweep that never measured these columns would have them."""
    store.compact_pack(
        pack_id,
        rewrite={
            "progress": lambda t: (
                None
                if t is None or not (set(t.column_names) - {"run_id", "epoch"} - set(columns))
                else t.drop_columns(columns)
            )
        },
    )


def part_files(store: SweepStore) -> list[str]:
    return sorted(p.name for t in ("runs", "metrics", "progress") for p in store.parts(t))


def test_offline_measures_equal_online_and_never_duplicate(tmp_path, capsys):
    pack = measured_pack()
    run_pack(pack, settings(tmp_path, "s", snapshots={"every": 20}))
    store = SweepStore(str(tmp_path), "s")
    online = progress(store)
    assert set(online.epoch) == {20, 40, 60, 80} and online["llc/mean"].notna().any()

    # the sweep as if it had measured nothing, plus a crash leftover of an earlier measure (a part
    # above the pack's committed seq), which goes first
    drop_columns(store, pack.pack_id, list(online.columns[2:]))
    assert progress(store).empty
    seq = store.read_record(pack.pack_id)["seq"]
    store.write_part(
        "progress", pack.pack_id, seq, [{"run_id": "x", "epoch": 1, "llc/mean": 1.0}], progress_schema({"llc/mean"})
    )
    assert main(["measure", str(tmp_path / "s")]) == 0
    assert "8 progress rows added, 0 changed, in 1 pack(s)" in capsys.readouterr().out
    offline = progress(store)
    assert "x" not in set(offline.run_id)
    assert list(offline.columns) == list(online.columns)
    pd.testing.assert_frame_equal(offline, online, check_exact=True)  # bit for bit
    # again: nothing computed differs, nothing is written
    files = part_files(store)
    assert main(["measure", str(tmp_path / "s")]) == 0
    assert "0 progress rows added, 0 changed, in 0 pack(s)" in capsys.readouterr().out
    assert part_files(store) == files
    pd.testing.assert_frame_equal(progress(store), online, check_exact=True)


def test_an_old_sweep_gains_a_measure_and_a_finer_llc_replaces_the_old(tmp_path, capsys):
    pack = measured_pack()
    run_pack(pack, settings(tmp_path, "s", snapshots={"every": 20}))
    store = SweepStore(str(tmp_path), "s")
    online = progress(store)

    # rows written before the LLC existed: every other column, no llc/ ones
    drop_columns(store, pack.pack_id, LLC)
    assert not set(LLC) & set(progress(store).columns)
    assert main(["measure", str(tmp_path / "s"), "--measures", "llc"]) == 0
    gained = progress(store)
    assert len(gained) == len(online) and not gained.duplicated(["run_id", "epoch"]).any()
    pd.testing.assert_frame_equal(gained[online.columns], online, check_exact=True)  # the online LLC, NaN rows too

    # a finer LLC: at every snapshot epoch, more chains and draws; it replaces the old values
    finer = ProgressSettings(fourier=False, embed_coords=False, llc_every=1, sgld=SGLDSettings(chains=3, draws=40))
    expected = {}
    for epoch in (20, 40, 60, 80):
        loaded = [load_snapshot(tmp_path / "s", m.run_id, epoch) for m in pack.members]
        rows = measure_pack(pack_at([c for c, _ in loaded], [w for _, w in loaded], epoch), finer)
        expected.update({(c.run_id, epoch): row["llc/mean"] for (c, _), row in zip(loaded, rows, strict=True)})
    replace_llc = ["measure", str(tmp_path / "s"), "--measures", "llc", "--replace", "--llc-every", "1"]
    replace_llc += ["--sgld", "chains=3,draws=40"]
    assert main(replace_llc) == 0
    assert "0 progress rows added, 8 changed" in capsys.readouterr().out
    replaced = progress(store)
    assert len(replaced) == len(online) and not replaced.duplicated(["run_id", "epoch"]).any()
    assert dict(zip(zip(replaced.run_id, replaced.epoch, strict=True), replaced["llc/mean"], strict=True)) == expected
    assert replaced["llc/mean"].notna().all()
    assert (replaced["llc/mean"] != online["llc/mean"]).all()  # the old values are gone (NaN != x too)
    others = [c for c in online.columns if not c.startswith("llc/")]
    pd.testing.assert_frame_equal(replaced[others], online[others], check_exact=True)  # the rest untouched

    # the same again: identical values (per-member generators seeded by the epoch), nothing written
    files = part_files(store)
    assert main(replace_llc) == 0
    assert "0 progress rows added, 0 changed" in capsys.readouterr().out
    assert part_files(store) == files
    # bad settings are named before anything runs
    assert main(["measure", str(tmp_path / "s"), "--measures", "llc,grid"]) == 2
    assert main(["measure", str(tmp_path / "s"), "--sgld", "chain=3"]) == 2
    assert "unknown ['chain']" in capsys.readouterr().err


def test_a_crash_mid_measure_leaves_the_rows_as_before(tmp_path):
    from analysis import load_sweep

    pack = measured_pack()
    run_pack(pack, settings(tmp_path, "s", snapshots={"every": 20}))
    store = SweepStore(str(tmp_path), "s")
    online = progress(store)
    drop_columns(store, pack.pack_id, LLC)
    before = progress(store)

    class Crash(Exception):
        pass

    def crash(_rows):
        raise Crash  # after the merged runs and metrics parts are written, before the record moves

    with pytest.raises(Crash):
        store.compact_pack(pack.pack_id, rewrite={"progress": crash})
    assert store.uncommitted("metrics")  # leftovers on disk
    pd.testing.assert_frame_equal(progress(store), before, check_exact=True)
    loaded = load_sweep(tmp_path / "s")  # a reader meanwhile: one row per member and epoch
    assert not loaded.metrics.duplicated(["run_id", "epoch"]).any() and len(loaded.progress) == len(online)

    assert main(["measure", str(tmp_path / "s"), "--measures", "llc"]) == 0
    assert not store.uncommitted("metrics") and not store.uncommitted("runs")
    pd.testing.assert_frame_equal(progress(store)[online.columns], online, check_exact=True)
    assert len(store.read_table("metrics")) == sum(m.epochs // m.eval_every for m in pack.members)


@pytest.mark.slow
def test_a_killed_measure_leaves_each_pack_before_or_after(tmp_path):
    # two packs (two shapes); the LLC at every snapshot epoch, so that the kill comes while the
    # second is measured
    packs = [measured_pack(16), measured_pack(24)]
    for pack in packs:
        run_pack(pack, settings(tmp_path, "s", snapshots={"every": 20}))
    store = SweepStore(str(tmp_path), "s")
    for pack in packs:
        drop_columns(store, pack.pack_id, LLC)
    before = progress(store)
    shutil.copytree(tmp_path / "s", tmp_path / "ref")
    args = ["--measures", "llc", "--llc-every", "1"]
    assert main(["measure", str(tmp_path / "ref"), *args]) == 0
    after = progress(SweepStore(str(tmp_path), "ref"))
    assert len(after) == len(before) and after["llc/mean"].notna().all()

    seqs = {p.pack_id: store.read_record(p.pack_id)["seq"] for p in packs}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "measure", str(tmp_path / "s"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if any(store.read_record(p.pack_id)["seq"] > seqs[p.pack_id] for p in packs):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the measure finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    now = progress(store)
    assert not now.duplicated(["run_id", "epoch"]).any()
    states = []
    for pack in packs:
        ids = set(pack.run_ids)
        mine = now[now.run_id.isin(ids)].reset_index(drop=True)
        if mine["llc/mean"].notna().any():
            pd.testing.assert_frame_equal(
                mine, after[after.run_id.isin(ids)].reset_index(drop=True)[mine.columns], check_exact=True
            )
            states.append("after")
        else:  # the other pack's rows brought llc/ columns into the table; none of this pack's has a value
            assert mine[LLC].isna().all().all()
            pd.testing.assert_frame_equal(
                mine.drop(columns=LLC), before[before.run_id.isin(ids)].reset_index(drop=True), check_exact=True
            )
            states.append("before")
    assert sorted(states) == ["after", "before"]

    assert main(["measure", str(tmp_path / "s"), *args]) == 0  # finishes the rest, redoes nothing twice
    pd.testing.assert_frame_equal(progress(store), after, check_exact=True)
    assert store.delete_crash_leftovers()["uncommitted parts"] == 0


def test_a_measure_off_by_default_is_added_offline_by_its_key(tmp_path, capsys):
    """grok measure --measures fourier_entropy (a registry row off by default) adds its column to the
    rows the sweep wrote online and changes nothing else; its values are the entropy of each
    snapshot's embedding spectrum."""
    import torch

    from grokcore.progress.entropy import fourier_entropy
    from grokcore.progress.fourier import frequency_norms

    pack = measured_pack()
    run_pack(pack, settings(tmp_path, "s", snapshots={"every": 40}))
    store = SweepStore(str(tmp_path), "s")
    online = progress(store)
    assert "fourier/embed_entropy" not in online.columns
    assert main(["measure", str(tmp_path / "s"), "--measures", "fourier_entropy"]) == 0
    assert "0 progress rows added, 4 changed, in 1 pack(s)" in capsys.readouterr().out
    offline = progress(store)
    pd.testing.assert_frame_equal(offline[online.columns], online, check_exact=True)
    measured = offline.dropna(subset=["fourier/embed_entropy"])
    assert sorted(set(measured.epoch)) == [40, 80] and len(measured) == 4
    for row in measured.to_dict("records"):
        _, weights = load_snapshot(str(tmp_path / "s"), row["run_id"], row["epoch"])
        expected = fourier_entropy(frequency_norms(weights["embed.W_E"][:13].to(torch.float64).unsqueeze(0)))
        # a pack of two batches the spectrum's matmul: the last bits may round differently from one alone
        assert row["fourier/embed_entropy"] == pytest.approx(expected.item(), rel=1e-12)

"""Members' verdicts (grokcore/verdict.py) as the sweeps side reads them: `grok status`, the bisection and
the Optuna objective count memorised / generalised / grokked from these and nothing else.

The runner writes each member's verdict into its runs row when it ends (VERDICT_COLUMNS, computed over the
member's whole evaluation history with the spec's thresholds). Rows written before those columns existed
(or by a pack that ran under older code) have them null; for those the verdict is computed here from the
member's metrics rows by the same function, with the spec's thresholds, so an old sweep reads the same as a
new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from grokcore.verdict import VERDICT_COLUMNS, Thresholds, decide_many
from sweeps.parquet import Part, SweepStore, runs_schema

_HISTORY = ["run_id", "epoch", "train/acc", "test/acc"]


def with_verdicts(
    store: SweepStore, runs: pa.Table | None, thresholds: Thresholds, metrics_parts: Sequence[Part] | None = None
) -> pa.Table | None:
    """`runs` with every row's VERDICT_COLUMNS filled: as written, or, where a row lacks them (grokked
    null), from its member's metrics rows (`metrics_parts`: where to look; None: the whole table). Rows of
    failed members (status failed) keep nulls."""
    if runs is None:
        return None
    missing = (
        np.ones(runs.num_rows, dtype=bool)
        if "grokked" not in runs.column_names
        else runs.column("grokked").is_null().to_numpy(zero_copy_only=False)
    )
    if "status" in runs.column_names:  # the driver's rows of a failed pack: no verdict, nothing to read for them
        missing &= np.asarray([s != "failed" for s in runs.column("status").to_pylist()], dtype=bool)
    columns = {
        c: (runs.column(c).to_pylist() if c in runs.column_names else [None] * runs.num_rows) for c in VERDICT_COLUMNS
    }
    if missing.any():
        ids = runs.column("run_id").to_pylist()
        wanted = {ids[i] for i in np.flatnonzero(missing)}
        verdicts = _from_metrics(store, wanted, thresholds, metrics_parts)
        for i in np.flatnonzero(missing):
            for c, v in verdicts.get(ids[i], dict.fromkeys(VERDICT_COLUMNS)).items():
                columns[c][i] = v
    out = runs.drop_columns([c for c in VERDICT_COLUMNS if c in runs.column_names])
    schema = runs_schema()
    for c in VERDICT_COLUMNS:
        out = out.append_column(schema.field(c), pa.array(columns[c], type=schema.field(c).type))
    return out


def _from_metrics(
    store: SweepStore, run_ids: set[str], thresholds: Thresholds, parts: Sequence[Part] | None
) -> dict[str, dict]:
    """run_id -> its VERDICT_COLUMNS computed from its metrics rows (members without rows: absent)."""
    table = store.read_table("metrics", columns=_HISTORY, parts=parts)
    if table is None or not all(c in table.column_names for c in _HISTORY):
        return {}
    frame = table.to_pandas()
    frame = frame[frame["run_id"].isin(run_ids)].sort_values(["run_id", "epoch"], kind="stable")
    frame = frame.drop_duplicates(["run_id", "epoch"], keep="last")
    if not len(frame):
        return {}
    codes, labels = frame["run_id"].factorize(sort=False)
    v = decide_many(
        codes,
        frame["epoch"].to_numpy(dtype="float64"),
        frame["train/acc"].to_numpy(dtype="float64", na_value=np.nan),
        frame["test/acc"].to_numpy(dtype="float64", na_value=np.nan),
        thresholds,
        n_members=len(labels),
    )
    return {rid: v[k].columns() for k, rid in enumerate(labels)}


__all__ = ["with_verdicts"]

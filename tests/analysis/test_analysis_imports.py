"""analysis must stay importable without torch, ray or optuna (DESIGN.md: it only reads tables)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "statement",
    [
        "import analysis",
        "import analysis.load, analysis.derive, analysis.figures, analysis.report",
    ],
)
def test_analysis_imports_no_heavy_package(statement):
    code = (
        f"{statement}\nimport sys\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray', 'optuna'))\n"
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{statement} imported: {done.stdout.strip()[:300]}"


def test_column_names_come_from_the_trainer_contract():
    from analysis import columns
    from grokcore import records

    assert columns.METRIC_COLUMNS == records.METRIC_COLUMNS
    assert "train_fraction" in columns.CONFIG_COLUMNS and "weight_decay" in columns.CONFIG_COLUMNS
    assert set(columns.REQUIRED_METRICS_COLUMNS) - {"run_id", "epoch"} <= set(records.METRIC_COLUMNS)
    assert set(columns.REQUIRED_RUNS_COLUMNS) <= {"run_id", *columns.CONFIG_COLUMNS, *records.OUTCOME_COLUMNS}

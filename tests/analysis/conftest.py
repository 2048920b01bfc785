"""Fixtures for the analysis tests: synthetic sweeps with known answers, written once per session."""

import sys
from pathlib import Path

import pytest

# The synthetic builder sits beside the tests; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))

import analysis_synthetic as synthetic


@pytest.fixture(scope="session")
def grid_sweep_dir(tmp_path_factory) -> Path:
    return synthetic.write_grid_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def grid_sweep(grid_sweep_dir):
    from analysis.load import load_sweep

    return load_sweep(grid_sweep_dir)


@pytest.fixture(scope="session")
def grid_times(grid_sweep):
    return grid_sweep.member_times()

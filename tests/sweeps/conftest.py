"""Fixtures for the sweeps tests: tiny specs, and one local Ray shared by the whole session
(starting Ray costs ~10 s on two cores)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sweeps_testing import TINY, write_spec


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    return write_spec(tmp_path, TINY)


@pytest.fixture(scope="session")
def _ray_owner():
    yield
    import ray

    ray.shutdown()


@pytest.fixture
def ray_session(_ray_owner):
    """One local Ray for every test that needs one (run_sweep reuses an initialised Ray); started
    again if a test (the multi-node one) shut it down."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    return ray

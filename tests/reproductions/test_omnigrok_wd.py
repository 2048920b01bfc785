"""Omnigrok weight decay, miniature of reproductions/omnigrok_wd: the reproduction's own spec with one
seed and three weight decays a half decade apart (0.316, 1, 3.16). The claims: the time to generalise
falls as weight decay rises, and the delay after memorisation falls faster than the raw time, which
saturates at the memorisation time (~150 epochs here) once the delay is short: fitted exponent of the
delay < exponent of the raw generalisation epoch < 0."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lit_miniature import run_miniature

from analysis import power_law_fit

MINIATURE = ["axes.weight_decay=[0.316, 1.0, 3.16]", "replicates=1", "base.epochs=4500"]


@pytest.mark.slow
def test_delay_falls_faster_than_raw_time_with_weight_decay(tmp_path):
    sweep = run_miniature("omnigrok_wd", MINIATURE, tmp_path)
    times = sweep.member_times().sort_values("weight_decay")
    assert times["gen_epoch"].notna().all(), times[["weight_decay", "gen_epoch"]]
    assert np.all(np.diff(times["gen_epoch"].to_numpy()) < 0)
    assert np.all(np.diff(times["delay"].to_numpy()) < 0)
    raw = power_law_fit(times, "weight_decay", value="gen_epoch", by=[], n_boot=0)["exponent"].iloc[0]
    delay = power_law_fit(times, "weight_decay", value="delay", by=[], n_boot=0)["exponent"].iloc[0]
    assert delay < raw < 0, (delay, raw)

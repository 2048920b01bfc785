"""Power et al. (2022) train fraction, miniature of reproductions/power_fraction: the reproduction's own
spec at three fractions and one seed. The claims: more data generalises sooner (0.7 before 0.6; seed 0
of the full run: 350 against 2,300), too little does not generalise within the budget (0.3 memorises
only, as in the quick example), so the critical fraction lies between 0.3 and 0.6."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lit_miniature import run_miniature

from analysis import critical_train_fraction

MINIATURE = ["axes.train_fraction=[0.3, 0.6, 0.7]", "replicates=1"]


@pytest.mark.slow
def test_less_data_generalises_later_or_not_at_all(tmp_path):
    sweep = run_miniature("power_fraction", MINIATURE, tmp_path)
    times = sweep.member_times().set_index("train_fraction")
    assert times.loc[0.3, "phase"] == "memorisation"
    assert times.loc[0.6, "generalised"] and times.loc[0.7, "generalised"]
    assert times.loc[0.7, "gen_epoch"] + 1000 < times.loc[0.6, "gen_epoch"]
    critical = critical_train_fraction(times.reset_index(), by=[], n_boot=0)["critical"].iloc[0]
    assert 0.3 < critical < 0.6, critical

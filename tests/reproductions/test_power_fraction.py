"""Power et al. (2022) train fraction, miniature of reproductions/power_fraction: the reproduction's own
spec at three fractions and one seed, with the fixed 3,000-epoch budget of its first round. The claims:
more data generalises sooner (0.7 at least 1,000 epochs before 0.6), too little does not generalise within
the budget (0.3 memorises only, as in the quick example), and the extra time at small fractions is all
delay after memorising: every fraction memorises by epoch 300 (the full run: 150 at every fraction), so
memorisation could have slowed with less data and did not."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lit_miniature import run_miniature

MINIATURE = ["axes.train_fraction=[0.3, 0.6, 0.7]", "replicates=1", "budget=null", "base.epochs=3000"]


@pytest.mark.slow
def test_less_data_generalises_later_or_not_at_all(tmp_path):
    sweep = run_miniature("power_fraction", MINIATURE, tmp_path)
    times = sweep.member_times().set_index("train_fraction")
    assert times.loc[0.3, "phase"] == "memorisation"
    assert times.loc[0.6, "generalised"] and times.loc[0.7, "generalised"]
    assert times.loc[0.7, "gen_epoch"] + 1000 < times.loc[0.6, "gen_epoch"]
    assert (times["mem_epoch"] <= 300).all(), times["mem_epoch"]

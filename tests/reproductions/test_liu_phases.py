"""Liu et al. (2022) phases, miniature of reproductions/liu_phases: the reproduction's own spec at one
train fraction (0.6), one seed and the fixed 3,000-epoch budget of the spec's first round. The claims,
with the quick example's measured cells: weight decay 1 groks, 3 comprehends, 10 fits neither set; the
generalisation epoch falls from 1 to 3; and where the training set is fitted at all (wd 0.3 to 3) it is
fitted by epoch 300, so the phases differ by what happens after memorising (the omnigrok rerun: 150-200
epochs at every weight decay up to 3.16), which the data could have contradicted."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lit_miniature import run_miniature

MINIATURE = ["axes.train_fraction=[0.6]", "replicates=1", "budget=null", "base.epochs=3000"]


@pytest.mark.slow
def test_phases_are_ordered_along_weight_decay(tmp_path):
    sweep = run_miniature("liu_phases", MINIATURE, tmp_path)
    times = sweep.member_times().sort_values("weight_decay").set_index("weight_decay")
    phases = times["phase"].to_dict()
    assert phases[1.0] == "grokking" and phases[3.0] == "comprehension" and phases[10.0] == "confusion", phases
    assert phases[0.3] in ("memorisation", "grokking"), phases
    assert (times.loc[[0.3, 1.0, 3.0], "mem_epoch"] <= 300).all(), times["mem_epoch"]
    assert times.loc[1.0, "gen_epoch"] > times.loc[3.0, "gen_epoch"] + 500

"""Liu et al. (2022) phases, miniature of reproductions/liu_phases: the reproduction's own spec at one
train fraction (0.6) and one seed. The claim: phases are ordered along weight decay (memorisation, then
grokking, comprehension and confusion as weight decay rises), with the quick example's measured cells:
weight decay 1 groks, 3 comprehends, 10 fits neither set; the generalisation epoch falls from 1 to 3."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lit_miniature import run_miniature

ORDER = ["memorisation", "grokking", "comprehension", "confusion"]
MINIATURE = ["axes.train_fraction=[0.6]", "replicates=1"]


@pytest.mark.slow
def test_phases_are_ordered_along_weight_decay(tmp_path):
    sweep = run_miniature("liu_phases", MINIATURE, tmp_path)
    times = sweep.member_times().sort_values("weight_decay").set_index("weight_decay")
    phases = times["phase"].to_dict()
    assert phases[1.0] == "grokking" and phases[3.0] == "comprehension" and phases[10.0] == "confusion", phases
    assert phases[0.3] in ("memorisation", "grokking"), phases
    ranks = [ORDER.index(phases[wd]) for wd in sorted(phases)]
    assert ranks == sorted(ranks), phases
    assert times.loc[1.0, "gen_epoch"] > times.loc[3.0, "gen_epoch"] + 500

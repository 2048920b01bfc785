"""Max of two, miniature of reproductions/max_of_two: the seed's model and data, fewer members and
epochs. The claim: the test pairs a member gets wrong are the ones whose gap |a - b| lies between the
trained gaps 2 and 17; the trained gaps and the gaps beyond 17 are right."""

import dataclasses

import pytest
import torch

from grokcore import PackTrainer, RunConfig
from grokcore.data import member_data
from grokcore.export import MemberModule

SEED_MAX = RunConfig(
    task="max",
    p=64,
    force_adjacent=(0, 1, 2, 17),
    model="transformer",
    attn_only=True,
    n_layers=1,
    n_heads=1,
    d_model=32,
    lr=1e-3,
    weight_decay=0.0,
    epochs=1500,
    eval_every=100,
)


@pytest.mark.slow
def test_max_of_two_errors_lie_between_the_trained_gaps():
    configs = [dataclasses.replace(SEED_MAX, seed=s) for s in range(4)]
    trainer = PackTrainer(configs)
    for _ in trainer.run(progress=False):
        pass
    gaps, correct = [], []
    for cfg in configs:
        data = member_data(cfg)
        with torch.no_grad():
            pred = MemberModule(cfg, trainer.member_weights(cfg.run_id))(data.test_tokens).argmax(-1)
        gaps.append((data.test_tokens[:, 0] - data.test_tokens[:, 1]).abs())
        correct.append(pred == data.test_labels)
    gap, ok = torch.cat(gaps), torch.cat(correct)
    between = (gap >= 3) & (gap <= 16)
    trained = torch.isin(gap, torch.tensor([0, 1, 2, 17]))
    wrong = ~ok
    assert wrong.sum() > 0, "the plateau is the claim: some test pairs must be wrong at this budget"
    assert ok[trained].float().mean() >= 0.97
    assert ok[gap >= 18].float().mean() >= 0.98
    # Most errors sit in the gaps no training pair has near it.
    assert between[wrong].float().mean() >= 0.8
    assert ok[between].float().mean() < ok[~between].float().mean() - 0.03

"""Label noise, miniature of reproductions/label_noise: the seed's MLP on (a + b + noise) mod 31,
noise = Binomial(n, 1/2) - n/2. The claim measured there, in the memorising regime: the model fits
the noisy labels it is trained on (so against the clean labels of the same inputs it is right only
where the noise left the label alone), and the test set (clean labels) stays near chance."""

import dataclasses

import pytest

from grokcore import RunConfig, train_pack
from grokcore.data import member_data

NOISY = RunConfig(task="add", p=31, model="mlp", d_model=128, d_mlp=512, noise="binomial", train_fraction=0.5,
                  lr=1e-3, weight_decay=1.0, epochs=500, eval_every=50)


@pytest.mark.slow
def test_memorised_noisy_labels_are_clean_only_where_the_noise_was_zero():
    configs = [dataclasses.replace(NOISY, noise_n=n) for n in (4, 16)]
    _, outcomes = train_pack(configs, progress=False)
    clean_acc = []
    for o in outcomes:
        data = member_data(o.config)
        unchanged = float((data.train_labels == data.train_clean_labels).float().mean())
        assert unchanged < 0.5  # P(noise = 0) is 0.375 at n = 4 and 0.196 at n = 16
        assert o.final["train/acc"] >= 0.99
        assert abs(o.final["train_clean/acc"] - unchanged) <= 0.05
        assert o.final["test/acc"] <= 0.1
        clean_acc.append(o.final["train_clean/acc"])
    assert clean_acc[0] > clean_acc[1]  # more noise, fewer clean labels fitted

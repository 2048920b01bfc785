"""The seed-notebook reproductions' specs: each loads and expands, lands its results under its
own name, the CPU specs ask for no GPU and stay within the CPU budget their READMEs state, and the
GPU specs are the larger versions."""

from pathlib import Path

import pytest

from sweeps.spec import load_spec

ROOT = Path(__file__).resolve().parents[2] / "reproductions"
SEEDS = ("add_mul", "exponents", "label_noise", "max_of_two", "grokking_mlp")
CPU_BUDGET = 200_000
"""Model-epochs at most per CPU spec's first budget round: the largest here (exponents, 75 members x 2,500
epochs = 187,500) took 1,765 CPU-seconds for both its rounds (its README); adaptive rounds add only what
the undecided members need."""


def model_epochs(spec) -> int:
    return sum(m.epochs for m in spec.members())


@pytest.mark.parametrize("name", SEEDS)
def test_cpu_and_gpu_specs_expand_under_their_names(name):
    cpu_paths = sorted((ROOT / name).glob("spec*.yaml"))
    assert cpu_paths, f"reproductions/{name} has no spec.yaml"
    for path in cpu_paths:
        spec = load_spec(path)
        assert spec.name.startswith(f"repro-{name}")
        assert spec.gpus == 0
        assert 0 < model_epochs(spec) <= CPU_BUDGET
    cpu = load_spec(ROOT / name / "spec.yaml")
    gpu = load_spec(ROOT / name / "gpu.yaml")
    assert cpu.name == f"repro-{name}" and gpu.name == f"repro-{name}-gpu"
    assert gpu.gpus > 0
    assert model_epochs(gpu) > model_epochs(cpu)


@pytest.mark.parametrize("name", SEEDS)
def test_each_reproduction_has_its_figures_and_readme(name):
    folder = ROOT / name
    assert (folder / "figures.py").is_file() and (folder / "README.md").is_file()
    pngs = list((folder / "figures").glob("*.png"))
    assert pngs and all(0 < p.stat().st_size < 150_000 for p in pngs)
    readme = (folder / "README.md").read_text()
    for png in pngs:
        if f"figures/{png.name}" in readme:
            break
    else:
        pytest.fail(f"reproductions/{name}/README.md embeds none of its figures")

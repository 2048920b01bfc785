"""Sweep specs: every bad spec gets one clear message naming the file and the field, and
launches and writes nothing; expansion counts and random draws are right and deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweeps_testing import assert_bad_spec

from sweeps.spec import SpecError, load_spec, parse_spec

EXAMPLES = Path(__file__).parents[2] / "sweeps" / "examples"
BASE = "name: t\nbase: {task: add, p: 23, epochs: 100, eval_every: 10}\n"

BAD = {
    # name: (spec text, expected "<where>: <message>" fragment, and what must be named as allowed)
    "unknown_top_key": (BASE + "replicate: 3\n", "replicate: unknown key; did you mean 'replicates'?", "allowed:"),
    "unknown_field": (
        BASE.replace("epochs: 100", "epochs: 100, weigth_decay: 1"),
        "base.weigth_decay: unknown config field; did you mean 'weight_decay'?",
        "allowed:",
    ),
    "wrong_type": (BASE.replace("p: 23", "p: twenty"), "base.p: must be an integer, got 'twenty'", None),
    "wrong_type_choice": (BASE.replace("task: add", "task: subtract"), "base.task: must be one of", "'add'"),
    "user_task_not_importable": (
        BASE.replace("task: add", "task: 'no_such_pkg_xyz:make(k=1)'"),
        "base.task: cannot import 'no_such_pkg_xyz'",
        None,
    ),
    "group_too_big": (
        BASE.replace("task: add, ", "") + "axes:\n  task: [perm, dihedral]\n",
        "axes.task: 'perm' is not allowed here: p: perm is S_p",
        None,
    ),
    "out_of_range": (BASE + "axes:\n  weight_decay: [0.1, -1]\n", "axes.weight_decay: must be >= 0, got -1", None),
    "out_of_range_random": (
        BASE + "axes:\n  train_fraction: {uniform: [0.1, 1.5]}\n",
        "axes.train_fraction: must be in (0, 1], got 1.5",
        None,
    ),
    "axis_not_a_field": (
        BASE + "axes:\n  learning_rate: [0.1, 0.2]\n",
        "axes.learning_rate: unknown config field",
        "allowed:",
    ),
    "two_axes_one_field": (
        BASE + "axes:\n  lr: [1e-3]\n  lr: [1e-2]\n",
        "axes.lr: two axes over one field (lines 4 and 5)",
        None,
    ),
    "axis_and_base": (
        BASE.replace("epochs: 100", "epochs: 100, lr: 0.01") + "axes:\n  lr: [1e-3]\n",
        "axes.lr: also set in base",
        None,
    ),
    "random_kind_for_int": (
        BASE.replace("p: 23, ", "") + "axes:\n  p: {uniform: [7, 23]}\n",
        "axes.p: uniform draws real numbers, but p is an integer field; use integers or choice",
        None,
    ),
    "unknown_threshold": (
        BASE + "thresholds: {holds: 1}\n",
        ("thresholds.holds: unknown threshold; did you mean 'hold'?"),
        "allowed:",
    ),
    "bad_threshold": (
        BASE + "thresholds: {test_acc: 1.5}\n",
        ("thresholds.test_acc: threshold test_acc must be in (0, 1], got 1.5"),
        None,
    ),
    "unknown_distribution": (
        BASE + "axes:\n  lr: {normal: [0, 1]}\n",
        "axes.lr: unknown axis kind 'normal'",
        "uniform",
    ),
    "bad_replicates": (BASE + "replicates: 0\n", "replicates: must be an integer >= 1, got 0", None),
    "bad_resources": (BASE + "resources: {cpus: 1, gpu: 1}\n", "resources.gpu: unknown resource", "gpus"),
    "seed_axis_and_replicates": (BASE + "axes:\n  seed: [0, 1]\nreplicates: 2\n", "replicates: a seed axis", None),
    "combination": (BASE + "axes:\n  noise_n: [2, 4]\n", "axes.noise_n: only used with noise: binomial", None),
    "bad_torch_compile": (BASE + "torch_compile: yes please\n", "torch_compile: must be true or false", None),
    "missing_name": ("base: {p: 23}\n", "name: required", None),
    "not_yaml": (BASE + "axes: [\n", "not valid YAML", None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_message_names_file_and_field(tmp_path, case):
    assert_bad_spec(tmp_path, *BAD[case])


@pytest.mark.parametrize("case", ["out_of_range", "two_axes_one_field", "axis_not_a_field", "unknown_field"])
def test_bad_spec_launches_and_writes_nothing(tmp_path, monkeypatch, capsys, case):
    import sweeps.launch
    from sweeps.cli import EXIT_SPEC, main

    def no_launch(*args, **kwargs):
        raise AssertionError("a bad spec must not launch anything")

    monkeypatch.setattr(sweeps.launch, "run_sweep", no_launch)
    monkeypatch.setattr(sweeps.launch, "connect_ray", no_launch)
    path = tmp_path / "bad.yaml"
    path.write_text(BAD[case][0])
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results)]) == EXIT_SPEC
    assert main(["sweep", str(path), "--results", str(results), "--dry-run"]) == EXIT_SPEC
    assert not results.exists()
    err = capsys.readouterr().err
    assert f"{path}: {BAD[case][1].split(':')[0]}" in err


def test_weight_decay_message_exactly(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE + "axes:\n  weight_decay: [1, -1]\n")
    with pytest.raises(SpecError, match=r"bad\.yaml: axes\.weight_decay: must be >= 0, got -1(\.0)?$"):
        load_spec(path)


def test_grid_and_replicates_counts():
    spec = parse_spec(BASE + "axes:\n  train_fraction: [0.3, 0.5, 0.7]\n  weight_decay: [0.3, 1, 3]\nreplicates: 4\n")
    members = spec.members()
    assert len(members) == spec.n_members() == 36
    assert len({m.run_id for m in members}) == 36
    points = {(m.train_fraction, m.weight_decay) for m in members}
    assert len(points) == 9
    assert sorted({m.seed for m in members}) == [0, 1, 2, 3]
    assert all(isinstance(m.weight_decay, float) for m in members)  # 1 and 1.0 are one run


def test_random_axes_counts_ranges_and_determinism():
    text = BASE + (
        "axes:\n  lr: {loguniform: [1e-4, 1e-2]}\n  seed: {integers: [0, 3]}\n"
        "  act: {choice: [relu, gelu]}\n  train_fraction: [0.3, 0.6]\nsamples: 25\n"
    )
    members = parse_spec(text).members()
    assert len(members) == 25 * 2
    assert all(1e-4 <= m.lr <= 1e-2 for m in members)
    assert {m.seed for m in members} <= {0, 1, 2, 3} and len({m.seed for m in members}) > 1
    assert {m.act for m in members} == {"relu", "gelu"}
    # each sample's draw is shared by the grid points
    by_lr: dict[float, set[float]] = {}
    for m in members:
        by_lr.setdefault(m.lr, set()).add(m.train_fraction)
    assert all(fractions == {0.3, 0.6} for fractions in by_lr.values())
    assert [m.run_id for m in parse_spec(text).members()] == [m.run_id for m in members]
    # draws come from named sub-seeds: another grid value keeps every earlier member
    wider = text.replace("[0.3, 0.6]", "[0.3, 0.6, 0.9]")
    assert {m.run_id for m in members} <= {m.run_id for m in parse_spec(wider).members()}
    other = text.replace("samples: 25", "samples: 25\nsample_seed: 1")
    assert {m.lr for m in parse_spec(other).members()} != {m.lr for m in members}


def test_yaml_reads_exponent_floats_and_rejects_duplicate_keys():
    spec = parse_spec(BASE + "axes:\n  lr: [1e-3, 3E-4]\n")
    assert [m.lr for m in spec.members()] == [1e-3, 3e-4]
    with pytest.raises(SpecError, match=r"base.p: set twice"):
        parse_spec("name: t\nbase:\n  p: 23\n  p: 29\n")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_validate(path):
    spec = load_spec(path)
    if spec.search is not None:  # a search picks its members as it goes (tests/sweeps/test_optuna.py)
        assert spec.n_members() == spec.search.members > 0 and spec.axes and spec.name
        return
    members = spec.members()
    assert len(members) == spec.n_members() > 0
    assert spec.name


def test_examples_cover_the_seed_experiments():
    names = {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert {
        "nanda_addition",
        "add_mul_mixture",
        "exponents",
        "max_of_two",
        "label_noise",
        "grokking_mlp",
        "quick",
    } <= names
    specs = [load_spec(EXAMPLES / f"{n}.yaml") for n in names]
    tasks = {(s.members()[0] if s.search is None else s.member({})).task for s in specs}
    assert {"add", "add_mul", "pow", "max"} <= tasks
    quick = load_spec(EXAMPLES / "quick.yaml")
    assert quick.gpus == 0 and len(quick.members()) <= 64


def test_trainer_options_reach_the_pack_settings(tmp_path):
    from sweeps.runner import PackSettings

    path = tmp_path / "s.yaml"
    path.write_text(BASE + "tf32: true\ntorch_compile: true\n")
    spec = load_spec(path)
    assert PackSettings.from_spec(spec).trainer_options() == {"tf32": True, "torch_compile": True, "snapshots": None}
    path.write_text(BASE)
    assert PackSettings.from_spec(load_spec(path)).trainer_options() == {
        "tf32": False,
        "torch_compile": False,
        "snapshots": None,
    }
    from grokcore.snapshots import SnapshotSchedule

    path.write_text(BASE + "snapshots: {log_points: 5, events: [end]}\n")
    assert PackSettings.from_spec(load_spec(path)).trainer_options()["snapshots"] == SnapshotSchedule(
        log_points=5, events=("end",)
    )


def loaded_modules(spec_path: Path) -> list[str]:
    """The search modules and libraries a fresh interpreter has imported after loading a spec."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\nfrom sweeps.spec import load_spec\nload_spec(sys.argv[1])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'ray', 'torch')\n"
        "             or m in ('sweeps.optuna_spec', 'sweeps.optuna_source', 'sweeps.bisection_source')))"
    )
    root = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code, str(spec_path)], capture_output=True, text=True, check=True, env=env, cwd=root
    ).stdout
    return eval(out)  # a printed list of module names


def test_a_grid_spec_never_imports_a_search():
    """Loading a grid spec imports no search module, no optuna and no ray; loading an Optuna search
    spec does reach its parser (the control: the check can see an import)."""
    assert loaded_modules(EXAMPLES / "quick.yaml") == []
    assert "sweeps.optuna_spec" in loaded_modules(EXAMPLES / "optuna_min_train_fraction.yaml")


def test_sweeps_modules_import_each_other_without_cycles():
    """Every import between sweeps modules, at module level or inside a function, points one way."""
    import ast

    package = Path(__file__).parents[2] / "sweeps"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        name = path.stem
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "sweeps":
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sweeps."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("sweeps.")}
        graph[name] = {d for d in deps if d != name and (package / f"{d}.py").exists()}
    assert graph["launch"] and graph["spec"]  # the walk sees imports

    def cycle_from(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        for dep in sorted(graph.get(node, ())):
            found = cycle_from(dep, [*path, node])
            if found:
                return found
        return None

    cycles = [c for n in sorted(graph) if n != "__init__" and (c := cycle_from(n, []))]
    assert not cycles, cycles


def test_the_writer_imports_the_reader_only_in_the_cli():
    """sweeps (the writer) reaches analysis (the reader) only from the CLI, which dispatches `grok report`,
    `grok check` and `--watch`; what both read about the results layout lives in grokcore."""
    import ast

    package = Path(__file__).parents[2] / "sweeps"
    importers = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            if any(m.split(".")[0] == "analysis" for m in modules):
                importers.add(path.stem)
    assert importers == {"cli"}, importers


def test_set_overrides_are_checked_like_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE + "axes:\n  weight_decay: [0.3, 1]\n")
    spec = load_spec(path, ["base.lr=3e-3", "resources.cpus=2", "axes.weight_decay=[0.1, 0.3, 1]"])
    assert spec.base["lr"] == 3e-3 and spec.cpus == 2.0 and len(spec.members()) == 3
    assert spec.text.startswith(f"# {path} with --set base.lr=3e-3 --set resources.cpus=2 --set axes.weight_decay=")
    # sweep.yaml (spec.text) is the spec as run: read back, it is the same sweep
    again = parse_spec(spec.text)
    assert [m.run_id for m in again.members()] == [m.run_id for m in spec.members()] and again.cpus == 2.0
    assert load_spec(path).text == path.read_text()  # no overrides: the file exactly
    for overrides, message in (
        (["base.p=twenty"], "base.p: must be an integer, got 'twenty'"),
        (["resources.cpu=2"], "resources.cpu: unknown resource; did you mean 'cpus'?"),
        (["replicate=3"], "replicate: unknown key; did you mean 'replicates'?"),
        (["base.lr"], "--set base.lr: expected KEY=VALUE"),
        (["name.x=1"], "name: is 't', not a mapping"),
    ):
        with pytest.raises(SpecError) as info:
            load_spec(path, overrides)
        assert str(info.value).startswith(f"{path}: {message}"), (overrides, str(info.value))


def test_grok_sweep_set_reaches_the_dry_run_and_a_bad_one_launches_nothing(tmp_path, capsys):
    from sweeps.cli import EXIT_SPEC, main

    quick = EXAMPLES / "quick.yaml"
    results = tmp_path / "r"
    assert main(["sweep", str(quick), "--results", str(results), "--dry-run", "--set", "base.epochs=100"]) == 0
    assert "model-epochs 2,700 to run" in capsys.readouterr().out  # 27 members x 100 epochs
    assert main(["sweep", str(quick), "--results", str(results), "--set", "base.epochs=-1"]) == EXIT_SPEC
    assert "quick.yaml: base.epochs: must be" in capsys.readouterr().err
    assert not results.exists()


def test_sweep_help_lists_every_spec_setting_from_the_one_settings_object(capsys):
    import dataclasses

    from sweeps.cli import main
    from sweeps.runner import PackSettings
    from sweeps.spec import SPEC_DEFAULTS, SPEC_DOCS, SweepSpec

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    keys = [f.metadata.get("key", f.name) for f in dataclasses.fields(SweepSpec) if not f.metadata.get("internal")]
    assert list(SPEC_DOCS) == keys and SPEC_DEFAULTS["resources"] == {"cpus": 1, "gpus": 0}
    for key in keys:
        assert f"{key} (" in text, key
    assert "resources.cpus (default 1): CPU cores per trial" in text and "--set KEY=VALUE" in text
    # PackSettings takes its values from the spec by name: every shared field is a spec field
    spec_fields = {f.name for f in dataclasses.fields(SweepSpec)}
    assert {f.name for f in dataclasses.fields(PackSettings)} - spec_fields == {"fault"}


def test_every_plain_setting_is_checked_by_its_field(tmp_path):
    """A bad value of each plain setting, through --set, fails with the words its SweepSpec field
    gives (`must`), so the check and the docs cannot drift apart."""
    import dataclasses

    from sweeps.spec import SweepSpec

    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    checked = [f for f in dataclasses.fields(SweepSpec) if "check" in f.metadata]
    assert {f.name for f in checked} >= {"samples", "replicates", "max_failures", "device", "tf32", "report_every_s"}
    for f in checked:
        bad = "''" if f.name == "results" else ("3" if f.name == "description" else "-1")
        with pytest.raises(SpecError) as info:
            load_spec(path, [f"{f.name}={bad}"])
        assert str(info.value).startswith(f"{path}: {f.name}: must be {f.metadata['must']}, got "), str(info.value)
        load_spec(path, [f"{f.name}={yaml_default(f.default)}"])  # its own default passes its check


def yaml_default(value) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip() or "''"


def test_replicates_expand_to_the_run_ids_of_configs_built_one_by_one():
    """members() checks one config per point and copies its replicates with another seed
    (RunConfig.reseeded, issue 17); the run_ids are the ones the full path gives, pinned by the
    digest that main's code at 888fdeb (every member built and hashed anew) gave for this spec."""
    import hashlib

    from grokcore.config import ConfigError, RunConfig

    spec = parse_spec(
        "name: ids\nbase: {task: add, p: 23, seed: 5, epochs: 100, init: kaiming}\n"
        "axes:\n  train_fraction: [0.3, 0.5]\n  weight_decay: [0.1, 1.0, 3]\n  n_heads: [2, 4]\n"
        "replicates: 50\n"
    )
    members = spec.members()
    assert len(members) == 600 and [m.seed for m in members[:51]] == [*range(5, 55), 5]
    digest = hashlib.sha256("\n".join(m.run_id for m in members).encode()).hexdigest()[:16]
    assert digest == "1967005c6887b9b5"
    for m in members[::7]:
        built = RunConfig(**m.to_dict())
        assert built == m and built.run_id == m.run_id and built.to_dict() == m.to_dict()
    assert members[1].reseeded(9) == RunConfig(**{**members[1].to_dict(), "seed": 9})
    with pytest.raises(ConfigError, match="seed: must be an integer >= 0, got -1"):
        members[0].reseeded(-1)
    assert spec.members() == members  # the second call (grok sweep's plan after its check) reuses the first


def test_thresholds_block_sets_the_one_rule(tmp_path):
    from grokcore.verdict import Thresholds

    assert parse_spec(BASE).thresholds == Thresholds()
    spec = parse_spec(BASE + "thresholds: {test_acc: 0.95, hold: 1, grok_delay: 500}\n")
    assert spec.thresholds == Thresholds(test_acc=0.95, hold=1, grok_delay=500)
    assert parse_spec(BASE, overrides=["thresholds.hold=2"]).thresholds.hold == 2

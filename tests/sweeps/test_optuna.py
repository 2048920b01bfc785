"""Optuna-guided search (`search:` in a spec), with real Optuna and a real local Ray: clear spec
errors; the objective and the in-trial pruner; guided search beats random search on a task whose
good region is known; pruned members end with status pruned and no rows after; an interrupted
search resumes the same study; Ray's own OptunaSearch with ASHA."""

from __future__ import annotations

import math
import os
import signal

import optuna
import pyarrow.parquet as pq
import pytest
from sweeps_testing import assert_bad_spec, write_spec

from grokcore.config import RunConfig
from sweeps.launch import run_sweep
from sweeps.optuna_source import MemberPruner, OptunaSource, open_study
from sweeps.optuna_spec import Objective
from sweeps.packing import Pack
from sweeps.parquet import SweepStore
from sweeps.runner import PackSettings, run_pack
from sweeps.spec import parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

# (a + b) mod 11, 100 epochs: after 100 full-batch steps the train loss is below ~0.07 for lr from
# 5e-3 to 1e-1 (weight decay up to 1 matters little) and stays near chance (ln 11 = 2.4) below
# 1e-3. Over lr in [1e-5, 1e-1] the good region is a third of the (log) range: random search puts
# about a third of its members there, a guided search should put most.
GOOD_LR = (5e-3, 1e-1)
SEARCH = """\
name: {name}
base: {{task: add, p: 11, train_fraction: 0.5, d_model: 16, n_heads: 2, d_mlp: 32, epochs: 100, eval_every: 20}}
axes:
  lr: {{loguniform: [1.0e-5, 1.0e-1]}}
  weight_decay: {{loguniform: [0.01, 1.0]}}
search:
  kind: optuna
  objective: {{metric: final/train/loss}}
  direction: minimize
  members: {members}
  batch: {batch}
  sampler: {sampler}
  seed: 0
{pruning}checkpoint_every_s: 0.2
report_every_s: 0.5
max_failures: 0
"""
PRUNING = "  pruning: {metric: train/loss, grace_epochs: 100, pruner: median, n_startup_trials: 4}\n"
GRACE = 100


def search_text(
    name="guided", sampler="{kind: tpe, n_startup_trials: 8}", members=40, batch=4, pruning=PRUNING, epochs=300
):
    """A search over SEARCH; with pruning, members train 300 epochs (evaluated every 60) so that
    pruning after the grace period saves something."""
    text = SEARCH.format(name=name, sampler=sampler, members=members, batch=batch, pruning=pruning)
    return text.replace("epochs: 100, eval_every: 20", f"epochs: {epochs}, eval_every: {epochs // 5}")


def tables(results, name):
    runs = pq.read_table(results / name / "runs").to_pandas()
    metrics = pq.read_table(results / name / "metrics").to_pandas()
    return runs, metrics


def study_of(spec, results):
    return open_study(spec, SweepStore(str(results), spec.name))


def check_rows(runs, metrics, study, budget, epochs=100):
    """One runs row per member with its trial number; a pruned member has no metrics after its
    prune epoch, which is never before the grace period; the study agrees with the table."""
    assert len(runs) == budget and not runs.run_id.duplicated().any()
    assert sorted(runs.optuna_trial) == list(range(budget))
    assert not metrics.duplicated(["run_id", "epoch"]).any()
    last = metrics.groupby("run_id").epoch.max()
    for row in runs.itertuples():
        assert last[row.run_id] == row.epochs_trained
    pruned = runs[runs.status == "pruned"]
    assert (pruned.epochs_trained >= GRACE).all() and (pruned.epochs_trained < epochs).all()
    assert set(runs.status) <= {"done", "pruned"}
    trials = study.get_trials()
    assert len(trials) == budget
    for row in runs.to_dict("records"):
        t = trials[row["optuna_trial"]]
        assert t.user_attrs["run_id"] == row["run_id"] and t.user_attrs["pack_id"] == row["pack_id"]
        assert t.state.name == ("PRUNED" if row["status"] == "pruned" else "COMPLETE")
        assert math.isclose(t.params["lr"], row["lr"], rel_tol=1e-5)
        if row["status"] == "done":
            assert t.value == pytest.approx(row["final/train/loss"])
        else:  # told with its intermediate values up to the prune epoch
            assert max(t.intermediate_values) == row["epochs_trained"]
    return pruned


# ---- spec errors --------------------------------------------------------------------------------
BASE = "name: s\nbase: {task: add, p: 23, epochs: 1000, eval_every: 10}\n"
AXES = "axes:\n  lr: {loguniform: [1.0e-4, 1.0e-2]}\n"
GOOD = "search: {kind: optuna, objective: {metric: epoch_test_99, penalty: 2000}, direction: minimize, members: 8"

BAD = {
    "unknown_objective_metric": (
        BASE + AXES + GOOD.replace("epoch_test_99", "epoch_test_999") + "}\n",
        "search.objective.metric: unknown metric 'epoch_test_999'",
        "allowed: epoch_generalised",
    ),
    "objective_not_a_field": (
        BASE + AXES + GOOD.replace("epoch_test_99, penalty: 2000", "task") + "}\n",
        "search.objective.metric: unknown metric 'task'",
        "final/test/loss",
    ),
    "space_not_a_field": (
        BASE + "axes:\n  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n" + GOOD + "}\n",
        "axes.learning_rate: unknown config field",
        "allowed:",
    ),
    "empty_bounds": (
        BASE + "axes:\n  lr: {uniform: [0.01, 0.01]}\n" + GOOD + "}\n",
        "axes.lr: uniform needs low < high, got [0.01, 0.01]",
        None,
    ),
    "reversed_bounds": (
        BASE + "axes:\n  weight_decay: {loguniform: [3.0, 0.1]}\n" + GOOD + "}\n",
        "axes.weight_decay: loguniform needs low < high",
        None,
    ),
    "empty_integers": (
        BASE + "axes:\n  d_mlp: {integers: [64, 32]}\n" + GOOD + "}\n",
        "axes.d_mlp: integers needs integers low <= high",
        None,
    ),
    "empty_choice": (
        BASE + "axes:\n  act: {choice: []}\n" + GOOD + "}\n",
        "axes.act: choice needs a non-empty list",
        None,
    ),
    "unknown_sampler": (
        BASE + AXES + GOOD + ", sampler: bayes}\n",
        "search.sampler: unknown sampler 'bayes'",
        "allowed: tpe, gp, cmaes, random, grid",
    ),
    "unknown_sampler_option": (
        BASE + AXES + GOOD + ", sampler: {kind: tpe, n_startup: 3}}\n",
        ("search.sampler.n_startup: unknown option of TPESampler; did you mean 'n_startup_trials'?"),
        None,
    ),
    "grid_over_continuous": (
        BASE + AXES + GOOD + ", sampler: grid}\n",
        "search.sampler: grid needs every axis to be a list of values",
        None,
    ),
    "missing_penalty": (
        BASE + AXES + GOOD.replace(", penalty: 2000", "") + "}\n",
        "search.objective.penalty: required: epoch_test_99 is null for members that never reach it",
        None,
    ),
    "penalty_inside_budget": (
        BASE + AXES + GOOD.replace("2000", "500") + "}\n",
        ("search.objective.penalty: 500 would score members that never reach epoch_test_99 better than some that do"),
        "epoch budget 1000",
    ),
    "no_direction": (
        BASE + AXES + GOOD.replace("direction: minimize, ", "") + "}\n",
        "search.direction: required: minimize or maximize",
        None,
    ),
    "no_space": (BASE + GOOD + "}\n", "axes: a search needs a search space", None),
    "grace_missing": (
        BASE + AXES + GOOD + ", pruning: {metric: test/acc}}\n",
        "search.pruning.grace_epochs: required",
        "sit at chance",
    ),
    "grace_zero_on_test": (
        BASE + AXES + GOOD + ", pruning: {metric: test/acc, grace_epochs: 0}}\n",
        "search.pruning.grace_epochs: must be > 0 for test/acc",
        None,
    ),
    "grace_past_budget": (
        BASE + AXES + GOOD + ", pruning: {metric: test/loss, grace_epochs: 1000}}\n",
        "search.pruning.grace_epochs: 1000 is not below the epoch budget 1000",
        None,
    ),
    "unknown_pruner": (
        BASE + AXES + GOOD + ", pruning: {grace_epochs: 100, pruner: hyperband}}\n",
        "search.pruning.pruner: unknown pruner 'hyperband'",
        "median, percentile",
    ),
    "pruning_metric": (
        BASE + AXES + GOOD + ", pruning: {metric: test/accuracy, grace_epochs: 100}}\n",
        "search.pruning.metric: unknown metric 'test/accuracy'; did you mean 'test/acc'?",
        None,
    ),
    "scheduler_with_packs": (
        BASE + AXES + GOOD + ", scheduler: asha}\n",
        "search.scheduler: a Tune scheduler needs kind: tune-optuna",
        None,
    ),
    "pruning_with_tune": (
        BASE + AXES + GOOD.replace("kind: optuna", "kind: tune-optuna") + ", pruning: {grace_epochs: 100}}\n",
        ("search.pruning: kind tune-optuna stops trials with a Tune scheduler"),
        None,
    ),
    "batch_with_tune": (
        BASE + AXES + GOOD.replace("kind: optuna", "kind: tune-optuna") + ", batch: 4}\n",
        "search.batch: tune-optuna trains one member per trial",
        None,
    ),
    "unknown_kind": (
        BASE + AXES + GOOD.replace("kind: optuna", "kind: hyperopt") + "}\n",
        "search.kind: unknown search kind 'hyperopt'",
        "optuna, tune-optuna",
    ),
    "grid_smaller_than_budget": (
        BASE + "axes:\n  lr: [1.0e-3, 1.0e-2]\n" + GOOD + ", sampler: grid}\n",
        "search.members: 8 is more than the grid's 2 points",
        None,
    ),
    "samples_with_search": (BASE + AXES + "samples: 4\n" + GOOD + "}\n", "samples: not used with a search", None),
    "bad_storage": (
        BASE + AXES + GOOD + ", storage: results/optuna.db}\n",
        "search.storage: must be an Optuna RDB URL",
        None,
    ),
    "uri_results_need_storage": (
        BASE + AXES + "results: s3://bucket/sweeps\n" + GOOD + "}\n",
        "search.storage: required when results is a URI",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_search_spec_message(tmp_path, case):
    assert_bad_spec(tmp_path, *BAD[case], expand=False)


def test_bad_search_spec_launches_nothing(tmp_path, monkeypatch, capsys):
    import sweeps.launch
    from sweeps.cli import EXIT_SPEC, main

    def no_launch(*args, **kwargs):
        raise AssertionError("a bad spec must not launch anything")

    monkeypatch.setattr(sweeps.launch, "connect_ray", no_launch)
    path = write_spec(tmp_path, BAD["unknown_objective_metric"][0])
    assert main(["sweep", str(path), "--results", str(tmp_path / "r")]) == EXIT_SPEC
    assert not (tmp_path / "r").exists()
    assert "search.objective.metric" in capsys.readouterr().err


def test_good_search_spec_and_dry_run(tmp_path, capsys):
    from sweeps.cli import main

    spec = parse_spec(search_text())
    assert spec.search.members == spec.n_members() == 40 and spec.pack_size == 4
    assert spec.search.pruning.grace_epochs == GRACE and spec.search.sampler_options == {"n_startup_trials": 8}
    with pytest.raises(TypeError, match="no fixed members"):
        spec.members()
    assert spec.member({"lr": 0.01, "weight_decay": 1}).weight_decay == 1.0
    path = write_spec(tmp_path, search_text())
    assert main(["sweep", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "minimize final/train/loss with tpe" in out and "40 in packs of 4" in out
    assert f"sqlite:///{tmp_path / 'r' / 'guided' / 'optuna.db'}" in out and "median on train/loss after 100" in out
    assert not (tmp_path / "r").exists()


# ---- the objective and the pruner, without Ray --------------------------------------------------
def test_objective_values():
    grok = Objective("epoch_generalised", penalty=5000.0)
    assert grok.value({"epoch_generalised": 1200}) == 1200.0
    assert grok.value({"epoch_generalised": None}) == 5000.0  # never generalised within the budget
    # each require word checks the one rule's column of the same name, as the report counts it
    smallest = Objective("train_fraction", penalty=1.0, require="generalised")
    assert smallest.value({"train_fraction": 0.3, "epoch_generalised": 900}) == 0.3
    assert smallest.value({"train_fraction": 0.2, "epoch_generalised": None}) == 1.0
    # `grokked` means grokked (late generalisation), not generalised: a member that generalised soon after
    # memorising scores the penalty
    late = Objective("train_fraction", penalty=1.0, require="grokked")
    soon = {"train_fraction": 0.3, "epoch_memorised": 800, "epoch_generalised": 900, "grokked": False}
    assert smallest.value(soon) == 0.3 and late.value(soon) == 1.0
    assert late.value({**soon, "epoch_memorised": 100, "epoch_generalised": 1500, "grokked": True}) == 0.3
    memorised = Objective("train_fraction", penalty=1.0, require="memorised")
    assert memorised.value(soon) == 0.3 and memorised.value({**soon, "epoch_memorised": None}) == 1.0
    delay = Objective("grok_delay", penalty=1e4)
    assert delay.value({"epoch_memorised": 100, "epoch_generalised": 700}) == 600.0
    assert delay.value({"epoch_memorised": 100, "epoch_generalised": None}) == 1e4
    # the trainer's first crossings stay available under their own names
    assert Objective("epoch_test_99", penalty=5000.0).value({"epoch_test_99": 40, "epoch_generalised": None}) == 40
    assert Objective("final/test/loss").value({"final/test/loss": math.nan}) is None  # diverged, no penalty


def test_member_pruner_waits_for_the_grace_period():
    # completed trials reached test loss 1.0 at every epoch; a member stuck at 2.0 is pruned at the
    # first evaluation at or after the grace period, one at 0.5 never
    completed = [{str(e): 1.0 for e in range(100, 1001, 100)} for _ in range(5)]
    pruner = MemberPruner(
        {"metric": "test/loss", "grace_epochs": 500, "pruner": "median", "options": {}}, completed, ["bad", "good"]
    )
    for epoch in range(100, 500, 100):
        assert pruner(epoch, [{"run_id": "bad", "test/loss": 2.0}, {"run_id": "good", "test/loss": 0.5}]) == []
    assert pruner(500, [{"run_id": "bad", "test/loss": 2.0}, {"run_id": "good", "test/loss": 0.5}]) == ["bad"]
    assert pruner(600, [{"run_id": "good", "test/loss": 0.5}]) == []
    # accuracy is maximised: low accuracy is what gets pruned
    acc = MemberPruner(
        {"metric": "test/acc", "grace_epochs": 100, "pruner": "median", "options": {}},
        [{"100": 0.5}] * 5,
        ["low", "high"],
    )
    assert acc(100, [{"run_id": "low", "test/acc": 0.1}, {"run_id": "high", "test/acc": 0.9}]) == ["low"]


def test_run_pack_drops_pruned_members(tmp_path):
    members = [
        RunConfig(p=11, train_fraction=0.5, d_model=16, n_heads=2, d_mlp=32, epochs=100, eval_every=20, lr=lr)
        for lr in (1e-4, 2e-2, 3e-2)
    ]
    pack = Pack.of(members)

    def prune_slow_learner(epoch, rows):
        return [r["run_id"] for r in rows if epoch >= 40 and r["train/loss"] > 2.0]

    prune_slow_learner.history = lambda rows: None
    settings = PackSettings(results=str(tmp_path), name="p", checkpoint_every_s=0, report_every_s=0)
    final = run_pack(
        pack,
        settings,
        on_eval=prune_slow_learner,
        member_extra={m.run_id: {"optuna_trial": i} for i, m in enumerate(members)},
    )
    assert final["members_pruned"] == 1 and final["members_finished"] == 3
    runs, metrics = tables(tmp_path, "p")
    slow = runs[runs.lr == 1e-4].iloc[0]
    assert slow.status == "pruned" and slow.epochs_trained == 40 and slow.optuna_trial == 0
    assert metrics[metrics.run_id == slow.run_id].epoch.max() == 40
    assert set(runs[runs.lr > 1e-4].status) == {"done"}
    assert metrics.groupby("run_id").size().to_dict() == {m.run_id: (2 if m.lr == 1e-4 else 5) for m in members}


# ---- with Ray -----------------------------------------------------------------------------------
def later_half(runs, study, members):
    """The later half of the members asked: share in the good lr region, mean objective (a pruned
    member counts with its last intermediate value), members with a train loss below 0.01."""
    later = runs.sort_values("optuna_trial").tail(members // 2)
    values = [study.trials[n].value for n in later.optuna_trial]
    return {
        "share": float(((later.lr >= GOOD_LR[0]) & (later.lr <= GOOD_LR[1])).mean()),
        "mean": sum(values) / len(values),
        "good": sum(v < 0.01 for v in values),
    }


def test_guided_search_beats_random(ray_session, tmp_path):
    """Same budget and seed: TPE spends most of its later members in the good lr region, they score
    far better than random search's, and more of them are good. (The single best member is not
    compared: near a loss of 0 it is luck which search lands closest.)"""
    results = tmp_path / "results"
    found = {}
    for name, sampler in (("guided", "{kind: tpe, n_startup_trials: 8}"), ("random", "random")):
        spec = parse_spec(search_text(name=name, sampler=sampler, pruning="", epochs=100))
        result = run_sweep(spec, results=str(results), verbose=0)
        assert result.ok, (result.failed_packs, result.unfinished_packs)
        runs, metrics = tables(results, name)
        study = study_of(spec, results)
        pruned = check_rows(runs, metrics, study, 40)
        found[name] = {**later_half(runs, study, 40), "best": study.best_value, "pruned": len(pruned)}
    print(found)
    guided, rand = found["guided"], found["random"]
    assert guided["share"] >= 0.6 and guided["share"] >= rand["share"] + 0.25, found
    assert guided["mean"] < 0.6 * rand["mean"] and guided["good"] > rand["good"], found


def run_interrupted(spec, results, monkeypatch):
    """Run the search and stop it as Ctrl+C would once its first pack was told (Tune's own interrupt:
    SIGUSR1 does what SIGINT does, without pytest's handler)."""
    real_finish = OptunaSource.pack_finished
    told = []

    def interrupting_finish(self, pack_id):
        real_finish(self, pack_id)
        if not told:
            told.append(pack_id)
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(OptunaSource, "pack_finished", interrupting_finish)
    try:
        return run_sweep(spec, results=str(results), verbose=0)
    finally:
        monkeypatch.setattr(OptunaSource, "pack_finished", real_finish)


def test_interrupted_search_resumes_the_same_study_and_prunes(ray_session, tmp_path, monkeypatch):
    """Stopped as by Ctrl+C once its first pack was told (Tune's own interrupt: SIGUSR1 does what
    SIGINT does, without pytest's handler), with other packs still training; the same command
    again continues the same study to exactly its budget, with no duplicate rows. Members pruned
    on the way end with status pruned, as PRUNED trials, and no metrics rows after."""
    results = tmp_path / "results"
    spec = parse_spec(search_text(name="resumed", members=16, batch=4, sampler="random"))
    first = run_interrupted(spec, results, monkeypatch)
    assert first.unfinished_packs and not first.failed_packs
    study = study_of(spec, results)
    before = {t.number: t.state.name for t in study.get_trials()}
    assert 0 < sum(s == "COMPLETE" for s in before.values()) < 16 and "RUNNING" in before.values(), before
    study_id = study._study_id

    result = run_sweep(spec, results=str(results), verbose=0)
    assert result.ok
    study = study_of(spec, results)
    assert study._study_id == study_id
    runs, metrics = tables(results, "resumed")
    pruned = check_rows(runs, metrics, study, 16, epochs=300)
    after = {t.number: t.state.name for t in study.get_trials()}
    assert all(after[n] == s for n, s in before.items() if s != "RUNNING")
    assert 0 < len(pruned) < 16 and len(metrics) == runs.epochs_trained.sum() // 60

    # once more: nothing left to do
    again = run_sweep(spec, results=str(results), verbose=0)
    assert again.ran_packs == 0 and len(study_of(spec, results).get_trials()) == 16


def test_tune_optuna_with_asha(ray_session, tmp_path):
    """Ray's OptunaSearch, one member per trial, ASHA stopping members on train loss after the
    grace period: stopped members end with status pruned, PRUNED trials and no rows after."""
    text = search_text(name="tuneopt", members=8, pruning="", sampler="random")
    text = (
        text.replace("kind: optuna", "kind: tune-optuna")
        .replace("  batch: 4\n", "")
        .replace(
            "  seed: 0\n",
            "  seed: 0\n  scheduler: {kind: asha, metric: train/loss, grace_epochs: 60, reduction_factor: 2}\n",
        )
    )
    spec = parse_spec(text.replace("report_every_s: 0.5", "report_every_s: 0.01"))  # ASHA sees every evaluation
    result = run_sweep(spec, results=str(results := tmp_path / "results"), verbose=0)
    assert not result.failed_packs
    runs, metrics = tables(results, "tuneopt")
    study = study_of(spec, results)
    print(runs[["optuna_trial", "status", "lr", "epochs_trained"]].sort_values("optuna_trial").to_string())
    assert len(runs) == 8 and sorted(runs.optuna_trial) == list(range(8))
    assert set(runs.status) == {"done", "pruned"}
    last = metrics.groupby("run_id").epoch.max()
    for row in runs.itertuples():
        assert last[row.run_id] == row.epochs_trained
        assert study.trials[row.optuna_trial].state.name == ("PRUNED" if row.status == "pruned" else "COMPLETE")
        assert row.status == "done" or GRACE_TUNE <= row.epochs_trained < 300


GRACE_TUNE = 60


@pytest.mark.parametrize("sampler", ["tpe", "gp", "cmaes", "random", "grid"])
def test_every_sampler_asks_in_the_space(sampler):
    from sweeps.optuna_source import distributions, make_sampler

    for package in {"gp": ["scipy"], "cmaes": ["cmaes"]}.get(sampler, []):
        pytest.importorskip(package)
    axes = (
        "  lr: [1.0e-3, 3.0e-3, 1.0e-2]\n  weight_decay: [0.1, 1.0]\n"
        if sampler == "grid"
        else "  lr: {loguniform: [1.0e-4, 1.0e-2]}\n  weight_decay: {uniform: [0.1, 1.0]}\n"
        "  d_mlp: {integers: [16, 64]}\n"
    )
    spec = parse_spec(BASE + "axes:\n" + axes + GOOD.replace("members: 8", "members: 6") + f", sampler: {sampler}}}\n")
    study = optuna.create_study(sampler=make_sampler(spec), direction="minimize")
    seen = set()
    for _ in range(6):
        trial = study.ask(distributions(spec))
        member = spec.member(trial.params)
        assert 1e-4 <= member.lr <= 1e-2 and 0.1 <= member.weight_decay <= 1.0
        seen.add((member.lr, member.weight_decay))
        study.tell(trial, member.lr * member.weight_decay)
    if sampler == "grid":
        assert len(seen) == 6  # every grid point once

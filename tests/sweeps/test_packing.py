"""Packing: every member in exactly one pack, packs by shape, deterministic ids, and a plan
that skips finished members and keeps packs stable across reruns."""

from __future__ import annotations

from grokcore.config import RunConfig
from sweeps.packing import CPU_MAX_PACK, Pack, auto_pack_size, cut_packs, pack_id_of, plan
from sweeps.spec import parse_spec

BASE = "name: t\nbase: {task: add, p: 23, d_mlp: 64, epochs: 100, eval_every: 10}\n"


def members(axes: str, extra: str = "") -> list[RunConfig]:
    return parse_spec(BASE + "axes:\n" + axes + extra).members()


def check_partition(ms: list[RunConfig], packs: list[Pack]) -> None:
    ids = [r for p in packs for r in p.run_ids]
    assert sorted(ids) == sorted(m.run_id for m in ms)
    for p in packs:
        assert len({m.shape_key() for m in p.members}) == 1
        assert p.pack_id == pack_id_of(p.run_ids)


def test_fixed_pack_size_counts():
    ms = members("  train_fraction: [0.3, 0.5, 0.7]\n  weight_decay: [0.3, 1, 3]\n", "replicates: 4\n")
    for size, n_packs, sizes in [(18, 2, {18}), (36, 1, {36}), (10, 4, {9}), (7, 6, {6}), (1, 36, {1})]:
        packs = cut_packs(ms, size)
        check_partition(ms, packs)
        assert len(packs) == n_packs and {len(p.members) for p in packs} == sizes, size


def test_shapes_split_packs_and_hyperparameters_do_not():
    ms = members(
        "  d_model: [32, 64]\n  lr: {loguniform: [1e-4, 1e-2]}\n  weight_decay: [0.1, 1]\n",
        "samples: 5\nreplicates: 2\n",
    )
    assert len(ms) == 2 * 5 * 2 * 2
    packs = cut_packs(ms, None)
    check_partition(ms, packs)
    assert len(packs) == 2  # one per d_model: lr, weight decay and seeds are tensors inside a pack
    assert {p.members[0].d_model for p in packs} == {32, 64}


def test_pack_ids_are_deterministic_and_order_free():
    ms = members("  weight_decay: [0.1, 0.3, 1, 3]\n", "replicates: 5\n")
    a = cut_packs(ms, 6)
    b = cut_packs(list(reversed(ms)), 6)
    assert [p.pack_id for p in a] == [p.pack_id for p in b]
    assert Pack.from_dict(a[0].to_dict()) == a[0]


def test_auto_pack_size_is_memory_bound_and_capped():
    small = RunConfig(p=23, d_model=32, d_mlp=128)
    nanda = RunConfig(p=113, d_model=128, d_mlp=512, train_fraction=0.3)
    assert auto_pack_size([small], gpus=0) == CPU_MAX_PACK
    assert 1 <= auto_pack_size([nanda], gpus=0) < CPU_MAX_PACK
    assert auto_pack_size([nanda], gpus=1) > auto_pack_size([nanda], gpus=0.5) > auto_pack_size([nanda], gpus=0)


def test_plan_skips_finished_and_continues_packs():
    ms = members("  weight_decay: [0.1, 0.3, 1, 3]\n", "replicates: 3\n")  # 12 members
    packs = cut_packs(ms, 4)
    fresh = plan(ms, 4)
    assert [p.pack_id for p in fresh.to_run] == [p.pack_id for p in packs] and not fresh.done

    # pack 0 finished; pack 1 half finished (in itself): it keeps its id and continues from its record
    finished = dict.fromkeys(packs[0].run_ids, packs[0].pack_id)
    finished.update(dict.fromkeys(packs[1].run_ids[:2], packs[1].pack_id))
    records = {p.pack_id: {"members": p.run_ids, "seq": 3, "done": i == 0} for i, p in enumerate(packs[:2])}
    again = plan(ms, 4, finished=finished, records=records)
    assert [p.pack_id for p in again.done] == [packs[0].pack_id]
    assert [p.pack_id for p in again.to_run] == [p.pack_id for p in packs[1:]]
    assert again.members_to_run == 8 and not again.orphans

    # members finished under another cut (another pack size): the pack shrinks to the rest, and
    # records no pack continues are orphans
    other = cut_packs(ms, 6)
    finished = dict.fromkeys(other[0].run_ids[:3], other[0].pack_id)
    records = {other[0].pack_id: {"members": other[0].run_ids, "seq": 2, "done": False}}
    shrunk = plan(ms, 4, finished=finished, records=records)
    assert shrunk.members_to_run == 12 - 3
    assert shrunk.orphans == [other[0].pack_id]
    ids = [r for p in shrunk.to_run for r in p.run_ids]
    assert len(ids) == len(set(ids)) == 9 and not set(ids) & set(finished)


def test_task_axis_packs_one_task_per_pack():
    """Tasks are sweep axes; members of different tasks never share a pack (their examples differ),
    members of one task with different hyperparameters do."""
    tasks = ["add", "sub", "quad", "add_or_mul", "dihedral"]
    ms = parse_spec(
        "name: t\nbase: {p: 7, train_fraction: 0.5, d_mlp: 64, epochs: 100, eval_every: 10}\n"
        f"axes:\n  task: [{', '.join(tasks)}]\n  weight_decay: [0.3, 1]\n"
    ).members()
    packs = cut_packs(ms, None)
    check_partition(ms, packs)
    assert sorted(p.members[0].task for p in packs) == sorted(tasks)
    assert {len(p.members) for p in packs} == {2}


def test_auto_packs_grow_to_keep_trials_within_the_target_where_memory_allows():
    """pack_size auto at scale (issue 17): more trials than the target make larger packs, up to what
    the memory budget holds, and the dry run's line says why."""
    from sweeps.packing import AUTO_MAX_TRIALS, auto_pack_size, auto_pack_sizes, describe_auto

    small = RunConfig(p=11, d_model=16, n_heads=2, d_mlp=32, epochs=100)
    members = [small.reseeded(i) for i in range(5000)]
    assert AUTO_MAX_TRIALS == 1000
    assert auto_pack_size(members, gpus=0) == CPU_MAX_PACK  # no target: the cap
    assert len(cut_packs(members, None)) == 79  # 5000 / 64 -> 79 <= 1000
    assert auto_pack_size(members, gpus=0, max_packs=10) == 500  # grown past the cap of 64
    assert [len(p.members) for p in cut_packs(members, None, max_trials=10)] == [500] * 10
    assert describe_auto(members, 0, 10).endswith(
        "packs grown to 500 since 79 trials would exceed 10 (Tune's ~0.2 s a trial: ~2 s of the driver's time)"
    )
    assert "79 trials <= 1,000 (Tune's ~0.2 s a trial: ~16 s" in describe_auto(members, 0)
    # two shape groups share the target by size: 4000 and 1000 members, 10 trials -> 8 and 2 packs
    other = RunConfig(p=13, d_model=16, n_heads=2, d_mlp=32, epochs=100)
    mixed = members[:4000] + [other.reseeded(i) for i in range(1000)]
    assert sorted(auto_pack_sizes([mixed[:4000], mixed[4000:]], 0, max_trials=10)) == [500, 500]
    assert len(cut_packs(mixed, None, max_trials=10)) == 10
    # memory bound: the Nanda member fills a CPU trial's budget before the target is met
    nanda = RunConfig()
    fits = auto_pack_size([nanda], gpus=0)
    big = [nanda.reseeded(i) for i in range(40 * fits)]
    assert auto_pack_size(big, gpus=0, max_packs=10) == fits and len(cut_packs(big, None, max_trials=10)) == 40
    assert "40 trials, above the 10 aimed at, since memory holds no larger packs" in describe_auto(big, 0, 10)

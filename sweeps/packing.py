"""Members -> packs: members that share tensor shapes train together as one batched model.

A pack's identity is a hash of its members' run_ids, and packs are cut deterministically from
the sweep's full member list (finished or not), so a rerun of the same spec cuts the same packs
and finds their checkpoints and commit records. `plan` then decides, given what is already on
disk, which packs still have to run.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grokcore.config import RunConfig

# auto pack size: at most this many members, and at most this much estimated training memory
CPU_MAX_PACK, GPU_MAX_PACK = 64, 256
CPU_PACK_BYTES, GPU_PACK_BYTES_PER_GPU = 4 << 30, 16 << 30
# ... unless that makes more trials than this: Ray Tune spends ~0.2 s of the driver's time on each
# trial (docs/specs.md), one trial after another, so 1,000 trials cost it ~200 s in all. Beyond that,
# auto packs grow (within the memory budget) until the trials fit: 100,000 members on CPUs make 1,000
# packs of 100 rather than 1,563 of 64, at some loss of per-member speed on a CPU (a pack of 64
# already runs at about half a lone member's model-epochs/s there) but none on a GPU.
TUNE_SECONDS_PER_TRIAL = 0.2
AUTO_MAX_TRIALS = 1000


@dataclass(frozen=True)
class Pack:
    pack_id: str
    members: tuple[RunConfig, ...]

    @property
    def run_ids(self) -> list[str]:
        return [m.run_id for m in self.members]

    @property
    def model_epochs(self) -> int:
        """Upper bound on member-epochs (a stop rule or divergence can end members earlier)."""
        return sum(m.epochs for m in self.members)

    def to_dict(self) -> dict[str, Any]:
        return {"pack_id": self.pack_id, "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pack:
        return cls(data["pack_id"], tuple(RunConfig.from_dict(m) for m in data["members"]))

    @classmethod
    def of(cls, members: Iterable[RunConfig]) -> Pack:
        members = tuple(members)
        return cls(pack_id_of(m.run_id for m in members), members)


def pack_id_of(run_ids: Iterable[str]) -> str:
    """Deterministic from the member set (order does not matter)."""
    digest = hashlib.sha256("\n".join(sorted(run_ids)).encode()).hexdigest()[:16]
    return f"pack-{digest}"


def member_params(cfg: RunConfig) -> int:
    """Trained parameters of one member (biases are frozen at zero)."""
    d, h, dh, m, c, n = cfg.d_model, cfg.n_heads, cfg.d_head_, cfg.d_mlp, cfg.n_classes, cfg.n_ctx
    if cfg.model == "mlp":
        return cfg.d_vocab * d + n * d * m + m * c
    attn = 0 if cfg.attn_only else 2 * d * m
    return cfg.d_vocab * d + n * d + cfg.n_layers * (4 * h * dh * d + attn) + d * c


def member_bytes(cfg: RunConfig) -> int:
    """Rough training memory of one member: weights, gradients, two Adam moments, and the
    full-batch (or minibatch) activations kept for backward. An estimate to size packs, not a bound."""
    d, h, dh, m, c, n = cfg.d_model, cfg.n_heads, cfg.d_head_, cfg.d_mlp, cfg.n_classes, cfg.n_ctx
    params = member_params(cfg)
    if cfg.model == "mlp":
        per_example = n * d + 2 * m + 3 * c
    else:
        per_example = cfg.n_layers * n * (4 * d + 3 * h * dh + h * n + (0 if cfg.attn_only else 2 * m)) + 5 * c
    examples = cfg.train_size
    if cfg.batch_size is not None:
        examples = min(examples, cfg.batch_size)
    return 4 * (4 * params + 2 * per_example * examples)


def _limits(members: Sequence[RunConfig], gpus: float) -> tuple[int, int]:
    """(the member cap of the trial's device, how many of these members its memory budget holds)."""
    if gpus > 0:  # a GPU fraction gets that fraction of the memory (Ray does not enforce it)
        cap, budget = GPU_MAX_PACK, GPU_PACK_BYTES_PER_GPU * gpus
    else:
        cap, budget = CPU_MAX_PACK, CPU_PACK_BYTES
    need = max(member_bytes(m) for m in members)
    return cap, max(1, int(budget // max(need, 1)))


def auto_pack_size(members: Sequence[RunConfig], gpus: float, max_packs: int | None = None) -> int:
    """How many of these (same-shape) members to train as one model on the trial's device: the device's
    member cap or what its memory holds, whichever is less; larger (up to what the memory holds) when
    that would cut more than `max_packs` packs from them."""
    cap, fits = _limits(members, gpus)
    size = min(cap, fits)
    if max_packs is not None and math.ceil(len(members) / size) > max_packs:
        size = min(fits, math.ceil(len(members) / max_packs))
    return size


def auto_pack_sizes(groups: Sequence[Sequence[RunConfig]], gpus: float, max_trials: int = AUTO_MAX_TRIALS) -> list[int]:
    """auto_pack_size of each shape group, the trial budget shared out by the groups' sizes."""
    total = sum(len(g) for g in groups)
    return [auto_pack_size(g, gpus, max_packs=max(1, max_trials * len(g) // total)) for g in groups]


def describe_auto(members: Sequence[RunConfig], gpus: float, max_trials: int = AUTO_MAX_TRIALS) -> str:
    """Why `pack_size: auto` cut the packs it did, for the dry run."""
    groups = shape_groups(members)
    sizes = auto_pack_sizes(groups, gpus, max_trials)
    trials = sum(math.ceil(len(g) / size) for g, size in zip(groups, sizes, strict=True))
    limits = [_limits(g, gpus) for g in groups]
    device = f"{gpus:g} GPU" if gpus > 0 else "a CPU trial"
    capped = [min(cap, fits) for cap, fits in limits]
    at_cap = sum(math.ceil(len(g) / size) for g, size in zip(groups, capped, strict=True))
    text = f"packs of at most {limits[0][0]} members on {device} (fewer where its memory budget holds fewer)"
    tune = (
        f"Tune's ~{TUNE_SECONDS_PER_TRIAL:g} s a trial: ~{trials * TUNE_SECONDS_PER_TRIAL:,.0f} s of the driver's time"
    )
    if at_cap <= max_trials:
        return f"{text}; {trials:,} trials <= {max_trials:,} ({tune})"
    if trials <= max_trials:
        return f"{text}; packs grown to {max(sizes)} since {at_cap:,} trials would exceed {max_trials:,} ({tune})"
    return f"{text}; {trials:,} trials, above the {max_trials:,} aimed at, since memory holds no larger packs ({tune})"


def shape_groups(members: Sequence[RunConfig]) -> list[list[RunConfig]]:
    """Members grouped by shape_key, groups and members in a deterministic order."""
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for m in members:
        groups[m.shape_key()].append(m)
    return [sorted(groups[k], key=lambda m: (m.epochs, m.run_id)) for k in sorted(groups, key=repr)]


def cut_packs(
    members: Sequence[RunConfig], pack_size: int | None, gpus: float = 0.0, max_trials: int = AUTO_MAX_TRIALS
) -> list[Pack]:
    """Every member in exactly one pack; equal-sized packs per shape group (sizes differ by at most one).
    pack_size None: auto (`auto_pack_sizes`, at most about `max_trials` packs where memory allows)."""
    packs: list[Pack] = []
    groups = shape_groups(members)
    sizes = [pack_size] * len(groups) if pack_size else auto_pack_sizes(groups, gpus, max_trials)
    for group, size in zip(groups, sizes, strict=True):
        n_packs = math.ceil(len(group) / size)
        base, extra = divmod(len(group), n_packs)
        start = 0
        for i in range(n_packs):
            stop = start + base + (1 if i < extra else 0)
            packs.append(Pack.of(group[start:stop]))
            start = stop
    return packs


@dataclass
class Plan:
    """What a (re)run of a sweep has to do."""

    packs: list[Pack]  # every pack of the full expansion
    to_run: list[Pack]  # packs to hand to Tune (fresh, or continuing from their commit record)
    done: list[Pack] = field(default_factory=list)  # every member already has a runs row
    orphans: list[str] = field(default_factory=list)  # unfinished pack records no pack continues

    @property
    def members_to_run(self) -> int:
        return sum(len(p.members) for p in self.to_run)


def plan(
    members: Sequence[RunConfig],
    pack_size: int | None,
    gpus: float = 0.0,
    finished: Mapping[str, str] | None = None,
    records: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """Packs to run given what is on disk.

    finished: run_id -> pack_id of every member with a committed runs row (not failed).
    records: pack_id -> commit record ({"members": [run_ids], "done": bool, ...}) of packs seen before.

    A pack whose members all finished is done. Otherwise it runs under its id, and its trial continues
    from the pack's commit record and checkpoint if there are any (training only what is left). A pack
    some of whose members finished in another pack (an earlier run cut packs differently) shrinks
    to its unfinished members, under a new id. Records not continued by any pack are orphans: the driver purges their
    unfinished members' rows, since those members are trained again in their new packs.
    """
    finished = finished or {}
    records = records or {}
    packs = cut_packs(members, pack_size, gpus)
    to_run, done, used = [], [], set()
    for pack in packs:
        left = [m for m in pack.members if m.run_id not in finished]
        if not left:
            done.append(pack)
            continue
        elsewhere = any(finished[r] != pack.pack_id for r in pack.run_ids if r in finished)
        run = pack if not elsewhere else Pack.of(left)
        to_run.append(run)
        used.add(run.pack_id)
    orphans = sorted(
        pid for pid, rec in records.items() if pid not in used and not rec.get("done") and not rec.get("abandoned")
    )
    return Plan(packs=packs, to_run=to_run, done=done, orphans=orphans)

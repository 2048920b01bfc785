"""Budgets that extend instead of retraining: continuing members past the budget they ended at.

A rerun of a finished sweep with a larger budget (`grok sweep SPEC --set base.epochs=12000`), or a
spec's adaptive `budget: {epochs: 3000, max_epochs: 48000}`, continues every member that ended at
its old budget undecided (not generalised by the held rule of grokcore.verdict over its whole
history, not diverged: status "done") from its end state; members a stop rule ended, that
generalised or diverged are not touched.

Identity: a continued member keeps its run_id (RunConfig.extended_from holds its first budget, and
the id hashes that one), so its metrics, progress rows and snapshots go on after the old ones under
one run_id, and its runs row is replaced by the newest outcome (one row per member). A spec member
whose run_id has no runs row is matched to a row of the same member at another budget by its
`lineage` (the config without its budget).

Where things live (the commit invariant of sweeps/parquet.py covers them):
    endstates/part-<pack>-<seq>.safetensors   end states of the pack's members that ended "done"
                                              (grokcore.continuation's format), same seq as the parts
    runs rows of a continued member            its new row goes to the continuing pack's parts with
                                              `continued_from` (the epoch it went on from); the old
                                              row and the old end state are purged once the new one
                                              is committed (`purge_superseded`: the driver after each
                                              pack, and every prepare; readers keep the longest row
                                              meanwhile)

Continuing members are packed by (shape, start epoch, new budget): a pack shares one epoch counter
and one optimizer step. Their pack ids hash run_ids with both epochs, so they never collide with
the packs the members first trained in.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from grokcore.config import RunConfig, config_fields
from grokcore.layout import ENDSTATE_DIR, part_name
from grokcore.records import BUDGET_END
from sweeps.packing import Pack, Plan, cut_packs, member_params
from sweeps.parquet import SweepStore, counted_runs
from sweeps.validation import SpecError, is_int


# ---- the spec's adaptive budget ------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """`budget: {epochs: E, max_epochs: M, factor: 2}`: members start with E epochs; those that end
    undecided go on in rounds, their budget times `factor` each round, up to M."""

    epochs: int
    max_epochs: int
    factor: int = 2

    def next(self, epochs: int) -> int | None:
        """The budget after `epochs` (None: at max_epochs, no further round)."""
        return min(epochs * self.factor, self.max_epochs) if epochs < self.max_epochs else None

    def rounds(self) -> list[int]:
        out = [self.epochs]
        while (n := self.next(out[-1])) is not None:
            out.append(n)
        return out

    def to_dict(self) -> dict[str, int]:
        return {"epochs": self.epochs, "max_epochs": self.max_epochs, "factor": self.factor}


BUDGET_KEYS = ("epochs", "max_epochs", "factor")


def parse_budget(source: str, raw: Any, base: dict[str, Any], axes: Sequence[Any], search: Any) -> Budget:
    """The spec's `budget:` block; errors name the key and what is allowed."""
    if not isinstance(raw, dict):
        raise SpecError(source, "budget", f"must be a mapping {{epochs: N, max_epochs: M, factor: 2}}, got {raw!r}")
    for key in raw:
        if key not in BUDGET_KEYS:
            from sweeps.validation import unknown

            raise unknown(source, f"budget.{key}", str(key), list(BUDGET_KEYS), "budget key")
    for key in ("epochs", "max_epochs"):
        if key not in raw:
            raise SpecError(source, f"budget.{key}", "required: an integer >= 1")
    values: dict[str, Any] = {k: raw.get(k, 2 if k == "factor" else None) for k in BUDGET_KEYS}
    for key, low in (("epochs", 1), ("max_epochs", 1), ("factor", 2)):
        if not is_int(values[key]) or values[key] < low:
            raise SpecError(source, f"budget.{key}", f"must be an integer >= {low}, got {values[key]!r}")
    if values["max_epochs"] <= values["epochs"]:
        raise SpecError(
            source, "budget.max_epochs", f"must be above budget.epochs={values['epochs']}, got {values['max_epochs']}"
        )
    if search is not None:
        raise SpecError(
            source,
            "budget",
            f"adaptive budgets work with a grid; a search ({search.kind}) picks "
            "members by their outcome at one budget: remove budget: and set base.epochs",
        )
    if "epochs" in base:
        raise SpecError(source, "base.epochs", "budget.epochs sets the first budget; set epochs in one place")
    if any(a.field == "epochs" for a in axes):
        raise SpecError(source, "axes.epochs", "budget: sets every member's budget; remove the epochs axis")
    return Budget(**values)


# ---- end states in the store -----------------------------------------------------------------------
def part_path(pack_id: str, seq: int) -> str:
    return f"{ENDSTATE_DIR}/{part_name(pack_id, seq, '.safetensors')}"


def write_end_states(store: SweepStore, pack_id: str, seq: int, states: Sequence[Any]) -> str:
    """One file of these end states (grokcore.continuation.EndState), whole or not at all."""
    from grokcore.continuation import to_bytes

    rel = part_path(pack_id, seq)
    store.write_bytes(rel, to_bytes(states))
    return rel


def _header_index(store: SweepStore, path: str) -> list[dict[str, Any]]:
    """A file's index from its header alone (two small reads, also on an object store)."""
    from grokcore.continuation import INDEX_KEY

    with store.fs.open_input_file(path) as f:
        length = int.from_bytes(f.read(8), "little")
        return json.loads(json.loads(f.read(length)).get("__metadata__", {}).get(INDEX_KEY, "[]"))


def end_states_held(store: SweepStore, pack_ids: Iterable[str]) -> set[tuple[str, int]]:
    """(run_id, epoch) of every committed end state of these packs."""
    return {
        (e["run_id"], e["epoch"])
        for pid in set(pack_ids)
        for part in store.committed_parts(ENDSTATE_DIR, pid, store.read_record(pid))
        for e in _header_index(store, part.path)
    }


def read_end_states(store: SweepStore, wanted: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    """run_id -> EndState, for run_id -> (pack_id, epoch) wanted."""
    from grokcore.continuation import from_bytes

    by_pack: dict[str, set[str]] = defaultdict(set)
    for rid, (pid, _) in wanted.items():
        by_pack[pid].add(rid)
    out = {}
    for pid, ids in by_pack.items():
        for part in store.committed_parts(ENDSTATE_DIR, pid, store.read_record(pid)):
            if not {e["run_id"] for e in _header_index(store, part.path)} & ids:
                continue
            for st in from_bytes(store.read_bytes(part.path) or b"", ids):
                if st.epoch == wanted[st.run_id][1]:
                    out[st.run_id] = st
    return out


def purge_end_states(store: SweepStore, pack_id: str, run_ids: set[str]) -> int:
    """Rewrite a pack's end-state files without these members; returns the states removed."""
    from grokcore.continuation import without

    removed = 0
    for part in store.parts(ENDSTATE_DIR, pack_id):
        index = _header_index(store, part.path)
        hit = sum(e["run_id"] in run_ids for e in index)
        if not hit:
            continue
        removed += hit
        rest = without(store.read_bytes(part.path) or b"", run_ids)
        if rest is None:
            store.delete_parts([part])
        else:
            store.write_bytes(part.path.removeprefix(store.root + "/"), rest)
    return removed


# ---- which runs row counts ---------------------------------------------------------------------
def lineage(cfg: RunConfig) -> str:
    """The member without its budget: equal for one member at every budget."""
    fields = cfg.to_dict()
    for name in ("epochs", "extended_from", "name"):
        fields.pop(name, None)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def latest_rows(store: SweepStore, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One runs row per member (failed rows left out): the one that trained longest, the newest outcome
    of a member continued to a larger budget (its old row may stay until purge_superseded)."""
    base = ["run_id", "pack_id", "status", "epochs_trained", "continued_from"]
    table = counted_runs(store.read_table("runs", columns=None if columns is None else [*base, *columns]), failed=False)
    return [] if table is None else table.to_pylist()


def purge_superseded(store: SweepStore, run_ids: set[str] | None = None) -> int:
    """Remove the older runs rows and end states of members continued since (one runs row per
    member: the newest outcome). Only while no pack that could be reading them runs (the driver)."""
    table = store.read_table("runs", columns=["run_id", "pack_id", "status", "epochs_trained"])
    if table is None:
        return 0
    rows = [r for r in table.to_pylist() if r["status"] != "failed" and (run_ids is None or r["run_id"] in run_ids)]
    longest: dict[str, int] = {}
    for r in rows:
        longest[r["run_id"]] = max(longest.get(r["run_id"], -1), r["epochs_trained"] or -1)
    stale: dict[str, set[str]] = defaultdict(set)  # pack_id -> run_ids whose row there is superseded
    for r in rows:
        if (r["epochs_trained"] or -1) < longest[r["run_id"]]:
            stale[r["pack_id"]].add(r["run_id"])
    removed = 0
    for pid, ids in stale.items():
        for part in store.pack_parts("runs", pid):
            removed += store.purge_rows(part, ids)
        purge_end_states(store, pid, ids)
    return removed


def undecided(store: SweepStore, rows: Sequence[dict[str, Any]], thresholds: Any) -> set[str]:
    """run_ids of these runs rows that ended at their budget (status done: not diverged, no stop rule)
    not generalised by the one rule over their whole history (their rows' verdict columns, or for rows
    written before those existed, grokcore.verdict over their metrics rows: sweeps/verdicts.py)."""
    import pyarrow as pa

    from grokcore.verdict import VERDICT_COLUMNS
    from sweeps.verdicts import with_verdicts

    ended = [r for r in rows if r.get("status") == BUDGET_END]
    if not ended:
        return set()
    table = pa.Table.from_pylist(
        [{"run_id": r["run_id"], "status": r["status"], **{c: r.get(c) for c in VERDICT_COLUMNS}} for r in ended]
    )
    judged = with_verdicts(store, table, thresholds)
    assert judged is not None  # a table in, a table out
    return {
        rid
        for rid, gen in zip(
            judged.column("run_id").to_pylist(), judged.column("epoch_generalised").to_pylist(), strict=True
        )
        if gen is None
    }


# ---- planning --------------------------------------------------------------------------------------
@dataclass
class Extension:
    """What prepare() plans besides fresh members: the members as they are on disk (continued ones
    with their larger budget), and the packs of continuing members."""

    members: list[RunConfig]  # the plan's members: fresh, finished (their row's config), continuing
    main: list[RunConfig]  # members planned the usual way (fresh or finished, trained from epoch 0)
    plan: Plan  # continuation packs (to_run: continuing; done: every member continued already)
    starts: dict[str, tuple[str, int]] = field(default_factory=dict)  # continuing run_id -> (pack_id, epoch)
    unextendable: list[str] = field(default_factory=list)  # continuing members with no end state to go on from

    def epochs_before(self, packs: Iterable[Pack]) -> int:
        """Epochs these packs' continuing members trained before (Pack.model_epochs counts from 0)."""
        return sum(self.starts[m.run_id][1] for p in packs for m in p.members if m.run_id in self.starts)

    @property
    def model_epochs(self) -> int:
        return sum(p.model_epochs for p in self.plan.to_run) - self.epochs_before(self.plan.to_run)


def continuation_pack_id(run_ids: Iterable[str], start: int, target: int) -> str:
    digest = hashlib.sha256(f"{start}->{target}\n".encode() + "\n".join(sorted(run_ids)).encode()).hexdigest()[:16]
    return f"pack-{digest}"


def plan_extension(
    spec: Any, store: SweepStore, members: Sequence[RunConfig], finished: Mapping[str, str]
) -> Extension | None:
    """The members continued to a larger budget, or None when there are none to continue or
    continued before (every spec member matched by run_id, no adaptive budget): today's plan as is."""
    budget: Budget | None = getattr(spec, "budget", None)
    if budget is None and all(m.run_id in finished for m in members):
        return None
    ids = {m.run_id for m in members}
    unmatched = [m for m in members if m.run_id not in finished]
    if budget is None and not finished:
        return None
    from grokcore.verdict import VERDICT_COLUMNS

    rows = latest_rows(store, columns=[*config_fields(), *VERDICT_COLUMNS])
    if not rows:
        return None
    by_id = {r["run_id"]: r for r in rows}
    fields = set(config_fields())
    by_lineage: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["run_id"] not in ids:  # a member at another budget than the spec's
            key = lineage(_config(r, fields))
            if key not in by_lineage or (r["epochs_trained"] or -1) > (by_lineage[key]["epochs_trained"] or -1):
                by_lineage[key] = r
    matched: list[tuple[RunConfig, dict[str, Any] | None]] = []
    for m in members:
        row = by_id.get(m.run_id)
        if row is None and m in unmatched and by_lineage:
            row = by_lineage.get(lineage(m))
        matched.append((m, row))
    if budget is None and not any(r is not None and r["run_id"] != m.run_id for m, r in matched):
        return None  # nothing at another budget: the usual plan

    # members that ended at their budget, and the budget they would go on to
    targets: dict[str, int] = {}
    for m, row in matched:
        if row is None or row["status"] != BUDGET_END or row["epochs_trained"] != row["epochs"]:
            continue
        target = budget.next(row["epochs"]) if budget is not None else m.epochs
        if target is not None and target > row["epochs"]:
            targets[row["run_id"]] = target
    ended = {row["run_id"]: row for _, row in matched if row is not None and row["run_id"] in targets}
    go_on = undecided(store, list(ended.values()), spec.thresholds) if ended else set()

    out_members, main, groups = [], [], defaultdict(list)
    starts: dict[str, tuple[str, int]] = {}
    continued_done: set[str] = set()
    for m, row in matched:
        if row is None:
            out_members.append(m)
            main.append(m)
            continue
        cfg = replace(_config(row, fields), name=m.name)
        if row["run_id"] in go_on:
            cfg = replace(cfg, epochs=targets[row["run_id"]], extended_from=cfg.extended_from or cfg.epochs)
            starts[cfg.run_id] = (row["pack_id"], row["epochs_trained"])
            groups[(cfg.shape_key(), row["epochs_trained"], cfg.epochs)].append(cfg)
        elif row.get("continued_from"):
            continued_done.add(cfg.run_id)
            groups[(cfg.shape_key(), row["continued_from"], cfg.epochs)].append(cfg)
        else:
            main.append(cfg)
        out_members.append(cfg)

    packs, to_run, done = [], [], []
    for (_, start, target), group in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        for cut in cut_packs(group, spec.pack_size, spec.gpus):
            pack = Pack(continuation_pack_id(cut.run_ids, start, target), cut.members)
            packs.append(pack)
            left = [m for m in pack.members if m.run_id not in continued_done]
            if not left:
                done.append(pack)
                continue
            elsewhere = any(finished.get(m.run_id) != pack.pack_id for m in pack.members if m.run_id in continued_done)
            to_run.append(
                pack
                if not elsewhere
                else Pack(continuation_pack_id([m.run_id for m in left], start, target), tuple(left))
            )
    held = end_states_held(store, {pid for pid, _ in starts.values()}) if starts else set()
    missing = sorted(rid for rid, (_, epoch) in starts.items() if (rid, epoch) not in held)
    return Extension(out_members, main, Plan(packs=packs, to_run=to_run, done=done), starts, missing)


def _config(row: Mapping[str, Any], fields: set[str]) -> RunConfig:
    """A runs row's config (columns a part written before a field existed read as null: its default)."""
    return RunConfig.from_dict({k: v for k, v in row.items() if k in fields and v is not None})


def merge(main: Plan, ext: Extension) -> Plan:
    """One plan of the usual packs and the continuation packs; a continuation pack's record is no orphan."""
    used = {p.pack_id for p in ext.plan.to_run}
    return Plan(
        packs=main.packs + ext.plan.packs,
        to_run=main.to_run + ext.plan.to_run,
        done=main.done + ext.plan.done,
        orphans=[o for o in main.orphans if o not in used],
    )


def refuse_unextendable(spec: Any, ext: Extension) -> None:
    """Members that must go on but have no end state: refused before anything runs."""
    if not ext.unextendable:
        return
    epochs = sorted({ext.starts[r][1] for r in ext.unextendable})
    why = (
        "the spec has end_states: false"
        if not getattr(spec, "end_states", True)
        else "written before end states were kept, or by a sweep with end_states: false"
    )
    raise SpecError(
        spec.source,
        "base.epochs" if getattr(spec, "budget", None) is None else "budget",
        f"{len(ext.unextendable)} member(s) ended undecided at {', '.join(f'{e:,}' for e in epochs)} "
        f"epochs and would go on to a larger budget, but have no end state to continue from ({why}). "
        "Keep the old budget, or train the larger one in a new sweep (another name or results "
        "location), which starts every member from epoch 0",
    )


# ---- inside a trial ----------------------------------------------------------------------------------
def starts_of(store: SweepStore, members: Sequence[RunConfig]) -> dict[str, tuple[str, int]]:
    """run_id -> (pack_id, epoch) of the end state each continued member goes on from: its latest
    row that ended at its budget below the member's new one."""
    wanted = {m.run_id: m.epochs for m in members if m.extended_from is not None}
    if not wanted:
        return {}
    out: dict[str, tuple[str, int]] = {}
    table = store.read_table("runs", columns=["run_id", "pack_id", "status", "epochs_trained"])
    for r in table.to_pylist() if table is not None else []:
        rid, epoch = r["run_id"], r["epochs_trained"]
        if (
            rid in wanted
            and r["status"] == BUDGET_END
            and epoch is not None
            and epoch < wanted[rid]
            and (rid not in out or epoch > out[rid][1])
        ):
            out[rid] = (r["pack_id"], epoch)
    return out


def history_before(store: SweepStore, pack_id: str, starts: Mapping[str, tuple[str, int]]) -> list[dict[str, Any]]:
    """Continued members' committed metrics rows up to where they went on from, outside this pack, in
    epoch order: the held rule decides over a member's whole history, a streak across the old budget too."""
    if not starts:
        return []
    import pyarrow.dataset as ds

    # the packs they trained in before are done; this pack's own rows the runner reads itself. Every
    # other pack's metrics are scanned (a member's earlier packs are not recorded), filtered as read.
    parts = [p for p in store.parts("metrics") if p.pack_id != pack_id]
    if not parts:
        return []
    table = store.dataset(parts).to_table(
        columns=["run_id", "epoch", "train/acc", "test/acc"], filter=ds.field("run_id").isin(sorted(starts))
    )
    rows = [r for r in table.to_pylist() if r["epoch"] <= starts[r["run_id"]][1]]
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: r["epoch"]):
        if (r["run_id"], r["epoch"]) not in seen:
            seen.add((r["run_id"], r["epoch"]))
            out.append(r)
    return out


def new_trainer(store: SweepStore, members: Sequence[RunConfig], device: str, **options: Any) -> Any:
    """The trainer of a pack with no checkpoint: from epoch 0, or, for members continued to a larger
    budget, from their end states."""
    from grokcore import PackTrainer

    starts = starts_of(store, members)
    if not starts:
        return PackTrainer(members, device=device, **options)
    from grokcore.continuation import continue_pack

    lost = [m.run_id for m in members if m.run_id not in starts]
    states = read_end_states(store, starts)
    lost += [r for r in starts if r not in states]
    if lost:
        raise RuntimeError(
            f"{len(lost)} continued member(s) have no end state to go on from "
            f"(first: {lost[0]}); rerun `grok sweep` to plan again"
        )
    return continue_pack(members, [states[m.run_id] for m in members], device=device, **options)


def describe(spec: Any, ext: Extension | None, members: Sequence[RunConfig]) -> list[str]:
    """The dry run's lines on budgets: members going on, and an adaptive budget's worst case."""
    lines = []
    if ext is not None and ext.starts:
        by_start: dict[tuple[int, int], int] = defaultdict(int)
        for m in members:
            if m.run_id in ext.starts:
                by_start[(ext.starts[m.run_id][1], m.epochs)] += 1
        lines.append(
            "  extend       "
            + "; ".join(
                f"{n} member(s) {a:,} -> {b:,} epochs from their end states" for (a, b), n in sorted(by_start.items())
            )
            + f" ({ext.model_epochs:,} model-epochs)"
        )
    budget: Budget | None = getattr(spec, "budget", None)
    if budget is not None:
        rounds = budget.rounds()
        lines.append(
            f"  budget       adaptive: {budget.epochs:,} -> {budget.max_epochs:,} epochs, x{budget.factor} a "
            f"round ({len(rounds)} rounds: {', '.join(f'{r:,}' for r in rounds)}); at most "
            f"{len(members) * budget.max_epochs:,} model-epochs if every member stays undecided"
        )
    if not getattr(spec, "end_states", True):
        lines.append("  end states   not kept (end_states: false): a larger budget cannot continue these members")
    elif members:
        from sweeps.snapshots import _bytes

        sizes = [end_state_bytes(m) for m in members]
        lines.append(
            f"  end states   {_bytes(max(sizes))} a member that ends at its budget (weights and Adam "
            f"moments), at most {_bytes(sum(sizes))} under endstates/ (end_states: false keeps none)"
        )
    return lines


def end_state_bytes(cfg: RunConfig) -> int:
    """Bytes of one member's end state: its weights and both Adam moments, float32."""
    return 3 * 4 * member_params(cfg)


__all__ = [
    "Budget",
    "Extension",
    "describe",
    "latest_rows",
    "lineage",
    "merge",
    "new_trainer",
    "parse_budget",
    "plan_extension",
    "purge_superseded",
    "read_end_states",
    "refuse_unextendable",
    "starts_of",
    "undecided",
    "write_end_states",
]

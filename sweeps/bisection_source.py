"""The bisection source: home in on a phase boundary along one axis, e.g. the critical train
fraction for each weight decay, by asking for packs where the generalised fraction crosses a level.

    axes:
      weight_decay: [0.3, 1.0, 3.0]          # lines: one bisection per point of the other axes
      train_fraction: {uniform: [0.1, 0.9]}  # the bisected axis: a range (uniform or loguniform)
    search:
      kind: bisection
      axis: train_fraction   # optional when exactly one axis is a range
      target: 0.5            # the generalised fraction whose crossing is sought
      seeds: 4               # members per probe (seeds base.seed, base.seed + 1, ...)
      steps: 4               # probes inside the bracket after its two ends

A probe is `seeds` members at one value of the axis on one line; its generalised fraction is the
share of them generalised by the one rule (grokcore/verdict.py, with the spec's `thresholds:`), the
same count as the report's fraction_generalised of that point. Round 0 probes both ends
of every line; a line whose ends lie on the same side of `target` has no crossing in the range and
stops there. Each later round probes the middle of every open line's bracket (the geometric middle
for loguniform) and keeps the half where the fraction crosses `target`. One round's probes train
together, cut into packs by shape; the next round is asked once they have all ended. After
`steps` rounds the bracket is (high - low) / 2**steps wide (uniform).

The state is a function of the runs rows on disk: a rerun replays the rounds from the rows, and
continues the round that was training (its packs keep their ids and checkpoints). The outcome is
written to bisection.json in the sweep's folder and printed at the end of the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from grokcore.config import RunConfig
from grokcore.layout import BISECTION_FILE
from grokcore.verdict import VERDICT_COLUMNS
from sweeps.check import clean_for_restart
from sweeps.packing import Pack, plan
from sweeps.parquet import SweepStore, counted_runs
from sweeps.snapshots import describe_search_storage
from sweeps.validation import SpecError, coerce, is_int, is_number, unknown
from sweeps.verdicts import with_verdicts

SEARCH_KEYS = ("kind", "axis", "target", "seeds", "steps")


# ---- the search block ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BisectionSpec:
    kind: str
    axis: str  # the bisected field
    low: float
    high: float
    log: bool  # loguniform: bisect in log space
    target: float
    seeds: int
    steps: int
    lines: tuple[tuple[tuple[str, Any], ...], ...]  # each line's values of the other axes
    members: int  # the budget: lines x (2 + steps) x seeds
    batch: int | None = None  # pack size: auto


def parse_search(source: str, raw: dict[str, Any], base: dict[str, Any], axes: tuple, results: str) -> BisectionSpec:
    """The `search:` block of kind bisection, checked against base and the axes."""
    for key in raw:
        if key not in SEARCH_KEYS:
            raise unknown(source, f"search.{key}", str(key), list(SEARCH_KEYS), "search key")
    ranges = [a for a in axes if a.kind in ("uniform", "loguniform")]
    name = raw.get("axis")
    if name is None:
        if len(ranges) != 1:
            raise SpecError(
                source,
                "search.axis",
                "required: name the axis to bisect (an axis with {uniform|loguniform: [low, high]})"
                if ranges
                else "a bisection needs one axis with a range, {uniform|loguniform: [low, high]}",
            )
        name = ranges[0].field
    bisected = next((a for a in ranges if a.field == name), None)
    if bisected is None:
        raise SpecError(
            source, "search.axis", f"'{name}' must be an axis with a range {{uniform|loguniform: [low, high]}}"
        )
    others = [a for a in axes if a is not bisected]
    for a in others:
        if a.kind != "grid":
            raise SpecError(source, f"axes.{a.field}", "a bisection's other axes are its lines: give a list of values")
        if a.field == "seed":
            raise SpecError(source, "axes.seed", "a bisection sets seeds itself (search.seeds)")
    target = raw.get("target", 0.5)
    if not is_number(target) or not 0 < target < 1:
        raise SpecError(source, "search.target", f"must be a fraction strictly between 0 and 1, got {target!r}")
    seeds, steps = raw.get("seeds", 4), raw.get("steps", 4)
    if not is_int(seeds) or seeds < 1:
        raise SpecError(source, "search.seeds", f"must be an integer >= 1 (members per probe), got {seeds!r}")
    if not is_int(steps) or steps < 1:
        raise SpecError(source, "search.steps", f"must be an integer >= 1 (probes after the two ends), got {steps!r}")
    lines: list[tuple[tuple[str, Any], ...]] = [()]
    for a in others:
        lines = [(*line, (a.field, v)) for line in lines for v in a.values]
    return BisectionSpec(
        kind="bisection",
        axis=name,
        low=bisected.values[0],
        high=bisected.values[1],
        log=bisected.kind == "loguniform",
        target=float(target),
        seeds=seeds,
        steps=steps,
        lines=tuple(lines),
        members=len(lines) * (2 + steps) * seeds,
    )


# ---- the source ---------------------------------------------------------------------------------
@dataclass
class Line:
    """One bisection: the other axes' values, the probes so far ({value: generalised fraction})."""

    point: dict[str, Any]
    probes: dict[float, float] = field(default_factory=dict)
    low: float = math.nan  # the bracket: the fraction crosses target between low and high
    high: float = math.nan
    state: str = "open"  # open | found (steps done) | none (no crossing in the range)

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.point.items()) or "(one line)"


class BisectionSource:
    """A PackSource (sweeps/sources.py) asking, round by round, for the probes that halve each
    line's bracket (see the module docstring)."""

    learns = True

    def __init__(
        self, spec: Any, store: SweepStore, settings: dict[str, Any], retry_failed: bool = True, write: bool = True
    ):
        self.spec, self.search, self.store = spec, spec.search, store
        self.retry_failed, self.write = retry_failed, write
        self.name = "bisection"
        self.n_members = self.members_to_run = self.search.members
        if write:
            clean_for_restart(store)
            store.write_spec(spec.text)
        self.rows = self._rows()
        self.queue: list[Pack] = []
        self.in_round: set[str] = set()  # packs of the round being trained, until they end
        self.handed: dict[str, Pack] = {}
        self.lines = self._replay()

    # ---- what is on disk ---------------------------------------------------------------------
    def _rows(self, pack_id: str | None = None) -> dict[str, dict[str, Any]]:
        """run_id -> (status, generalised) of members with a runs row; failed rows count only when
        failed members are kept failed (otherwise they train again)."""
        parts = None if pack_id is None else self.store.pack_parts("runs", pack_id)
        metrics = None if pack_id is None else self.store.pack_parts("metrics", pack_id)
        table = with_verdicts(
            self.store,
            self.store.read_table(
                "runs", columns=["run_id", "status", "epochs_trained", *VERDICT_COLUMNS], parts=parts
            ),
            self.spec.thresholds,
            metrics,
        )
        table = counted_runs(table, failed=not self.retry_failed)
        return {} if table is None else {row["run_id"]: row for row in table.to_pylist()}

    def _probe_members(self, line: Line, value: float) -> list[RunConfig]:
        seed = self.spec.base.get("seed", RunConfig.seed)
        return [
            self.spec.member({**line.point, self.search.axis: value, "seed": seed + k})
            for k in range(self.search.seeds)
        ]

    def _fraction(self, members: list[RunConfig]) -> float | None:
        """The probe's generalised fraction, or None while a member has no runs row."""
        if any(m.run_id not in self.rows for m in members):
            return None
        return sum(self.rows[m.run_id]["epoch_generalised"] is not None for m in members) / len(members)

    def _middle(self, line: Line) -> float:
        s = self.search
        mid = math.sqrt(line.low * line.high) if s.log else (line.low + line.high) / 2
        return coerce(s.axis, float(f"{mid:.6g}"))

    def _replay(self) -> list[Line]:
        """Every line advanced as far as the rows on disk take it; sets self.pending (line index ->
        the value it waits for)."""
        s = self.search
        lines = [Line(dict(point)) for point in s.lines]
        self.pending: dict[int, list[float]] = {}
        for i, line in enumerate(lines):
            ends = {v: self._fraction(self._probe_members(line, v)) for v in (s.low, s.high)}
            line.probes.update({v: f for v, f in ends.items() if f is not None})
            if len(line.probes) < 2:
                self.pending[i] = [v for v, f in ends.items() if f is None]
                continue
            f_low, f_high = ends[s.low], ends[s.high]
            if (f_low >= s.target) == (f_high >= s.target):
                line.state = "none"
                continue
            line.low, line.high = s.low, s.high
            for _ in range(s.steps):
                mid = self._middle(line)
                if mid in (line.low, line.high):  # the bracket is as narrow as six digits allow
                    break
                f_mid = self._fraction(self._probe_members(line, mid))
                if f_mid is None:
                    self.pending[i] = [mid]
                    break
                line.probes[mid] = f_mid
                # keep the half whose ends lie on different sides of target
                if (f_mid >= s.target) == (line.probes[line.low] >= s.target):
                    line.low = mid
                else:
                    line.high = mid
            if i not in self.pending:
                line.state = "found"
        return lines

    # ---- the driver's view ------------------------------------------------------------------
    def next_pack(self) -> Pack | None:
        if not self.queue and not self.in_round:
            self._plan_round()
        if not self.queue:
            return None  # the round is training (or every line is settled)
        pack = self.queue.pop(0)
        self.handed[pack.pack_id] = pack
        return pack

    def _plan_round(self) -> None:
        """The next round: every pending probe's members, cut into packs, minus those done."""
        members = [
            m for i, values in self.pending.items() for v in values for m in self._probe_members(self.lines[i], v)
        ]
        finished = dict.fromkeys(self.rows, "")
        the_plan = plan(members, self.spec.pack_size, self.spec.gpus, finished=finished)
        if self.write:
            self.store.purge_failed_rows({m.run_id for m in members if m.run_id not in self.rows})
        self.queue = list(the_plan.to_run)
        self.in_round = {p.pack_id for p in self.queue}

    def pack_finished(self, pack_id: str) -> None:
        if pack_id not in self.in_round:
            return
        self.rows.update(self._rows(pack_id))
        pack = self.handed[pack_id]
        if all(r in self.rows for r in pack.run_ids):
            self.in_round.discard(pack_id)
        if not self.in_round:  # the round ended: advance every line
            self.lines = self._replay()
            self._write_result()

    def _write_result(self) -> None:
        s = self.search
        self.store.write_json(
            BISECTION_FILE,
            {
                "axis": s.axis,
                "target": s.target,
                "seeds": s.seeds,
                "steps": s.steps,
                "updated": time.time(),
                "lines": [
                    {
                        "point": line.point,
                        "state": line.state,
                        "low": _finite(line.low),
                        "high": _finite(line.high),
                        "probes": sorted([v, f] for v, f in line.probes.items()),
                    }
                    for line in self.lines
                ],
            },
        )

    def nothing_to_run(self) -> str | None:
        if self.pending:
            return None
        self._write_result()
        return "nothing to run: every line is settled\n" + "\n".join(self.summary())

    def handed_out(self) -> list[Pack]:
        return list(self.handed.values())

    def trial_hooks(self, pack: Pack) -> dict[str, Any] | None:
        return None

    def member_extra(self, pack: Pack) -> dict[str, dict[str, Any]]:
        return {}

    def describe(self) -> str:
        s, spec = self.search, self.spec
        lines = [
            f"sweep {spec.name}  ({spec.source})",
            f"  results      {self.store.uri}",
            (
                f"  search       bisection of {s.axis} in [{s.low:g}, {s.high:g}]{' (log)' if s.log else ''} for "
                f"where the generalised fraction crosses {s.target:g}"
            ),
            f"  lines        {len(s.lines)}"
            + (f" ({'; '.join(line.label() for line in self.lines)})" if len(s.lines) <= 8 else ""),
            f"  members      at most {s.members}: {s.seeds} seeds per probe, 2 ends + {s.steps} steps per line",
            f"  trials       each with {spec.cpus:g} CPU{'s' if spec.cpus != 1 else ''}"
            + (f" and {spec.gpus:g} GPU" if spec.gpus else ""),
        ]
        settled = sum(line.state != "open" for line in self.lines)
        if self.rows:
            lines.append(f"  so far       {settled} of {len(self.lines)} lines settled")
        storage = describe_search_storage(spec.snapshots, spec, s.members)
        return "\n".join(lines + ([storage] if storage else []))

    def summary(self) -> list[str]:
        s = self.search
        out = []
        for line in self.lines:
            if line.state == "none":
                ends = ", ".join(f"{f:.2f} at {v:g}" for v, f in sorted(line.probes.items()))
                out.append(
                    f"  {line.label()}: no crossing of {s.target:g} in [{s.low:g}, {s.high:g}] (generalised {ends})"
                )
            elif line.state == "found":
                out.append(f"  {line.label()}: {s.axis} crosses {s.target:g} in [{line.low:g}, {line.high:g}]")
            else:
                out.append(f"  {line.label()}: unfinished, bracket [{_text(line.low)}, {_text(line.high)}]")
        return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _text(x: float) -> str:
    return f"{x:g}" if math.isfinite(x) else "?"

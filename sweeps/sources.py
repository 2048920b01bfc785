"""Where a sweep's packs come from: the PackSource interface and the table of search kinds.

The driver (sweeps/launch.py) runs every sweep the same way: one Tuner, one searcher that asks a
PackSource for the next pack when a trial slot is free and tells it when a pack ended. What differs
between a grid, an Optuna search and a bisection is only the source:

    grid      sweeps/grid_source.py       every member of the spec, cut into packs up front
    optuna    sweeps/optuna_source.py     Optuna asks `batch` members at a time (tune-optuna: batch 1)
    bisection sweeps/bisection_source.py  homes in on where the generalised fraction crosses a level

Adding a search algorithm is one new source class and one row of SEARCH_KINDS (its parser reads
the spec's `search:` block when the spec is loaded). This module names modules by string and
imports none of them at import time: loading a grid spec imports no search library, and no source
imports the driver (the import graph has no cycles).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sweeps.validation import SpecError, unknown

if TYPE_CHECKING:
    from sweeps.packing import Pack
    from sweeps.parquet import SweepStore
    from sweeps.runner import PackSettings


class PackSource(Protocol):
    """What the driver needs of a source of packs.

        `next_pack` returns the next pack to train, or None when there is none to hand out right now;
        the driver ends the sweep once it returns None with no pack in flight. `pack_finished` is called
        when a handed-out pack's trial ended, failed ones after their failed rows were written (the
        source reads the pack's runs rows). `trial_hooks` is what the trial needs besides the pack and
        the settings (plain values; see `trial_hooks` below), `member_extra` more columns of the pack's
    failed rows; `describe` is the dry-run text, `nothing_to_run` says why a run has nothing to do (or
    None), `summary` adds lines to the end-of-run summary, `handed_out` lists the packs this run
    handed out (the driver sorts them into done, failed and unfinished)."""

    name: str  # the Tune experiment's name under <results>/<name>/tune
    n_members: int  # members of the whole sweep (a search: its budget)
    members_to_run: int  # for the progress line: members this run may train
    learns: bool  # True: hand a pack out only when a slot is free, so it learns from every pack before it

    def next_pack(self) -> Pack | None: ...

    def pack_finished(self, pack_id: str) -> None: ...

    def trial_hooks(self, pack: Pack) -> dict[str, Any] | None: ...

    def member_extra(self, pack: Pack) -> dict[str, dict[str, Any]]: ...

    def describe(self) -> str: ...

    def nothing_to_run(self) -> str | None: ...

    def summary(self) -> list[str]: ...

    def handed_out(self) -> list[Pack]: ...


@dataclass(frozen=True)
class SearchKind:
    parser: str  # "module:function" that reads the spec's `search:` block (must not import heavy libraries)
    source: str  # "module:class" of the PackSource
    hooks: str | None = None  # "module:function" building run_pack's hooks inside a trial


GRID_SOURCE = "sweeps.grid_source:GridSource"
SEARCH_KINDS: dict[str, SearchKind] = {
    "optuna": SearchKind(
        "sweeps.optuna_spec:parse_search", "sweeps.optuna_source:OptunaSource", "sweeps.optuna_source:trial_hooks"
    ),
    "tune-optuna": SearchKind(
        "sweeps.optuna_spec:parse_search", "sweeps.optuna_source:OptunaSource", "sweeps.optuna_source:trial_hooks"
    ),
    "bisection": SearchKind("sweeps.bisection_source:parse_search", "sweeps.bisection_source:BisectionSource"),
}


def _load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def parse_search(source: str, raw: Any, base: dict[str, Any], axes: tuple, results: str) -> Any:
    """The spec's `search:` block, read by its kind's parser."""
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise SpecError(
            source,
            "search",
            f"must be a mapping {{kind: optuna, objective: ..., direction: ..., members: N, ...}}, got {raw!r}",
        )
    kind = raw.get("kind")
    if kind not in SEARCH_KINDS:
        if kind is None:
            raise SpecError(source, "search.kind", f"required: one of {', '.join(SEARCH_KINDS)}")
        raise unknown(source, "search.kind", str(kind), list(SEARCH_KINDS), f"search kind '{kind}'")
    return _load(SEARCH_KINDS[kind].parser)(source, raw, base, axes, results)


def open_source(
    spec: Any, store: SweepStore, settings: dict[str, Any], retry_failed: bool = True, write: bool = True
) -> PackSource:
    """The spec's source, opened against what is on disk. write=False (a dry run) only reads."""
    target = GRID_SOURCE if spec.search is None else SEARCH_KINDS[spec.search.kind].source
    if not write:  # a dry run names a damaged file as a run would (its SweepStore.delete_crash_leftovers)
        from sweeps.check import refuse_damaged

        refuse_damaged(store, store.records())
    return _load(target)(spec, store, settings, retry_failed=retry_failed, write=write)


def trial_hooks(hooks: dict[str, Any] | None, pack: Pack, settings: PackSettings) -> dict[str, Any]:
    """Inside a trial: run_pack's keyword arguments from the source's `trial_hooks` config
    ({"kind": <search kind>, ...}), built by that kind's hooks function."""
    if not hooks:
        return {}
    build = SEARCH_KINDS[hooks["kind"]].hooks
    if build is None:
        raise ValueError(f"search kind {hooks['kind']!r} builds no trial hooks, yet its source asked for them")
    return _load(build)(hooks, pack, settings)

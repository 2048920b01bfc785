"""Generalisation times, phases, replicate aggregates and the fits the literature reports.

Vocabulary, the same in the CLI, the Tune table, the columns and the report, and one rule behind it
(grokcore/verdict.py, `decide_many`; `Thresholds` lives there and is re-exported here):

- memorised: train accuracy reached its threshold and held it (`mem_epoch`);
- generalised: test accuracy reached its threshold, held it, and is not below it again at the member's
  last evaluation (`gen_epoch`);
- grokked: generalised at least `grok_delay` epochs after memorising (`delay` = gen - mem), and, when
  `grok_ratio` is set, at least that multiple of the memorisation epoch later (`relative_delay` =
  delay / mem_epoch).

Everything here is computed from the metrics table, never typed in: a time is the first *evaluated* epoch
from which an accuracy stays at or above its threshold for `hold` consecutive evaluations (or until the
last one), so it is known only to within the evaluation interval (`resolution` column: the true crossing
lies after the previous evaluation and at or before the reported epoch).

Phases follow Liu et al. 2022 ("Towards understanding grokking"), within the member's epoch budget:

- comprehension: generalised and memorised, not grokked (test soon after train);
- grokking: grokked;
- memorisation: train reaches its threshold, test never does;
- confusion: neither does.

Outcomes Liu et al. do not need, because real sweeps have them:

- unstable: an accuracy reached its threshold (and held `hold` evaluations) but is below it again at the
  member's last evaluation: it is flagged rather than given a phase its end state contradicts;
- test_only: test reaches the threshold but train never does (under label noise a model that generalises
  does not fit the noisy labels; see the "clean" view, which measures train accuracy against the clean
  labels);
- diverged: the trainer reported the loss went NaN/inf before both were reached;
- undecided: the member ended (stopped, pruned, failed) or is still running before its budget without both
  times, so its phase is not known yet.

Time statistics over replicates treat a member that did not reach a time within its budget (or before it
ended) as right-censored at its last evaluation, never as absent: medians and quartiles are Kaplan-Meier
estimates, NaN when more than that share of the replicates is censored ("not reached within the budget"),
and every median comes with how many reached it and how many are censored.

Views: the same times per subtask (add_mul: generalisation on the addition or multiplication test pairs)
and on clean labels under label noise. Their columns carry a prefix: `add/gen_epoch`, `clean/phase`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.axes import replicate_axes, require_axes
from analysis.columns import REQUIRED_METRICS_COLUMNS, REQUIRED_RUNS_COLUMNS, RUNNING_STATUS
from analysis.errors import AnalysisError
from grokcore.records import ACC_THRESHOLD
from grokcore.verdict import Thresholds, Verdicts, decide_many, held_streaks

PHASES = ("comprehension", "grokking", "memorisation", "confusion", "unstable", "test_only", "diverged", "undecided")
"""Every phase a member can get."""
MIXED = "mixed"
"""The phase of a cell whose replicates tie between phases: no tie is broken silently."""
CELL_PHASES = (*PHASES, MIXED)
UNDECIDED = "undecided"
DECIDED_PHASES = tuple(p for p in PHASES if p != UNDECIDED)

TIME_COLUMNS = ("mem_epoch", "gen_epoch", "delay")
"""Per-member times: memorisation epoch, generalisation epoch, and gen - mem."""
FRACTION_COLUMNS = ("fraction_generalised", "fraction_grokked")
MIN_FIT_POINTS = 3
"""A fit through fewer points than this is neither drawn nor scored: two points always give r² = 1."""
BOOTSTRAP_SAMPLES = 400
CI_LEVEL = 0.95


@dataclass(frozen=True)
class View:
    """A pair of accuracy columns that define memorisation and generalisation."""

    name: str
    """'' for the main view; otherwise the prefix of its columns ('add' -> 'add/gen_epoch')."""
    train_col: str
    test_col: str
    description: str

    def column(self, base: str) -> str:
        return f"{self.name}/{base}" if self.name else base


MAIN_VIEW = View(
    "", "train/acc", "test/acc", "train accuracy on the labels trained on; test accuracy on held-out pairs"
)
VIEWS = (
    MAIN_VIEW,
    View("add", "train/acc", "test_add/acc", "add_mul: generalisation measured on the addition test pairs only"),
    View("mul", "train/acc", "test_mul/acc", "add_mul: generalisation measured on the multiplication test pairs only"),
    View(
        "clean",
        "train_clean/acc",
        "test/acc",
        "label noise: memorisation measured against the clean labels of the training inputs",
    ),
)


def view_named(name: str) -> View:
    for view in VIEWS:
        if view.name == name:
            return view
    raise AnalysisError(f"unknown view '{name}'; allowed: {', '.join(repr(v.name) for v in VIEWS)}")


def applicable_views(metrics: pd.DataFrame) -> list[View]:
    """The main view, the subtask views where the metrics have per-subtask accuracies, and the clean view
    where clean-label train accuracy differs from the trained-on one (i.e. there was label noise)."""
    views = [MAIN_VIEW]
    for view in VIEWS[1:]:
        if view.test_col not in metrics.columns or view.train_col not in metrics.columns:
            continue
        if view.name == "clean":
            both = metrics[["train/acc", "train_clean/acc"]].dropna()
            if (both["train/acc"] != both["train_clean/acc"]).any():
                views.append(view)
        elif metrics[view.test_col].notna().any():
            views.append(view)
    return views


# ---- per member -----------------------------------------------------------------------------


def first_epoch_reaching(metrics: pd.DataFrame, column: str, threshold: float, hold: int = 1) -> pd.Series:
    """Per run_id, the first evaluated epoch with `column` >= threshold, held for `hold` consecutive
    evaluations or until the member's last one (a streak cut short by the end of training is all there is
    to see); hold 0: until the last one. Members that never reach it are absent. `metrics` must be sorted
    by run_id, then epoch."""
    if column not in metrics.columns or not len(metrics):
        return pd.Series(dtype="float64")
    runs = _Runs(metrics)
    first = runs.first_reaching(metrics, column, threshold, hold)
    reached = ~np.isnan(first)
    return pd.Series(first[reached], index=runs.labels[reached])


class _Runs:
    """The members of a metrics table sorted by run_id, then epoch, as contiguous row ranges: per-member
    values are reductions over those ranges, found by integer codes rather than by grouping or mapping
    strings (what member_times spent most of its time on at 100k members)."""

    def __init__(self, metrics: pd.DataFrame):
        codes, labels = pd.factorize(metrics["run_id"], sort=False)
        self.new_run = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, dtype=bool)
        self.starts = np.flatnonzero(self.new_run)
        self.labels = np.asarray(labels, dtype=object)[codes[self.starts]]  # the run_id of each range
        self.run_index = np.cumsum(self.new_run) - 1

    def per_member(self, ids: pd.Series, per_run: np.ndarray, missing) -> np.ndarray:
        """per_run (one value per run, in table order) at each of `ids`; `missing` where an id has no rows."""
        where = pd.Index(self.labels).get_indexer(ids.to_numpy(dtype=object))
        out = np.full(len(ids), missing, dtype=per_run.dtype)
        out[where >= 0] = per_run[where[where >= 0]]
        return out

    def first_reaching(self, metrics: pd.DataFrame, column: str, threshold: float, hold: int = 1) -> np.ndarray:
        """Per run, first_epoch_reaching's epoch, NaN where it is never reached."""
        if column not in metrics.columns or not len(metrics):
            return np.full(len(self.starts), np.nan)
        ok = (metrics[column] >= threshold).to_numpy(dtype=bool, na_value=False)
        return held_streaks(ok, self.new_run, metrics["epoch"].to_numpy(dtype="float64"), hold)[0]

    def verdicts(self, metrics: pd.DataFrame, view: View, th: Thresholds) -> Verdicts:
        """Per run, the one rule's verdict (grokcore.verdict.decide_many) on this view's accuracies."""

        def column(name: str) -> np.ndarray:
            if name not in metrics.columns:
                return np.full(len(metrics), np.nan)
            return metrics[name].to_numpy(dtype="float64", na_value=np.nan)

        return decide_many(
            self.run_index,
            metrics["epoch"].to_numpy(dtype="float64"),
            column(view.train_col),
            column(view.test_col),
            th,
            n_members=len(self.starts),
        )


def member_times(
    metrics: pd.DataFrame, runs: pd.DataFrame, thresholds: Thresholds | None = None, views: Sequence[View] | None = None
) -> pd.DataFrame:
    """One row per member: its runs row (config and outcome columns), then the derived columns.

    Derived: `status` ("running" for members with metrics but no runs row), `budget` (epochs it is judged
    within), `last_epoch` (last evaluation within it), `resolution` (evaluation interval: each time is known
    to within this many epochs), `finished` (budget spent, so a missing time means never), and per view
    `mem_epoch`, `gen_epoch`, `delay` and `phase` (NaN / None where the view does not apply), `censored`
    (spent its budget without generalising, not diverged: its phase holds within the budget only) and
    `censored_at` (the epochs it reached then).
    """
    th = thresholds or Thresholds()
    _require_columns(metrics, REQUIRED_METRICS_COLUMNS, "metrics table")
    _require_columns(runs, REQUIRED_RUNS_COLUMNS, "runs table")
    views = list(views) if views is not None else applicable_views(metrics)

    m = metrics.sort_values(["run_id", "epoch"], kind="stable")
    if th.budget is not None:
        m = m[m["epoch"] <= th.budget]
    m = m.reset_index(drop=True)

    ended = runs.drop_duplicates("run_id", keep="last")
    running_ids = sorted(set(m["run_id"].unique().tolist()) - set(ended["run_id"].unique().tolist()))
    running = pd.DataFrame({"run_id": pd.Series(running_ids, dtype=object), "status": RUNNING_STATUS})
    times = pd.concat([ended, running], ignore_index=True, sort=False) if running_ids else ended.copy()
    times = times.reset_index(drop=True)
    ids = times["run_id"]

    member_runs = _Runs(m)
    epochs = m["epoch"].to_numpy(dtype="float64")
    last_epoch = np.maximum.reduceat(epochs, member_runs.starts) if len(m) else np.zeros(0)
    times["last_epoch"] = member_runs.per_member(ids, last_epoch, np.nan)
    times["resolution"] = _resolution(times, m)

    own_budget = pd.to_numeric(times["epochs"], errors="coerce").astype("float64")
    times["budget"] = np.fmin(own_budget, th.budget) if th.budget is not None else own_budget
    trained = times["last_epoch"]
    if "epochs_trained" in times.columns:
        trained = np.fmax(trained, pd.to_numeric(times["epochs_trained"], errors="coerce").astype("float64"))
        if th.budget is not None:
            trained = np.fmin(trained, th.budget)
    status = times["status"].astype(object)
    finished = ((status == "done") & (th.budget is None)) | (trained >= times["budget"])
    # With no evaluation at all nothing is known, whatever the status says.
    times["finished"] = (finished & times["last_epoch"].notna()).astype(bool)
    diverged = (status == "diverged").to_numpy()

    def per_member(per_run: np.ndarray, missing=np.nan) -> pd.Series:
        return pd.Series(member_runs.per_member(ids, per_run, missing), index=times.index)

    for view in views:
        if view is MAIN_VIEW:
            applies = np.ones(len(ids), dtype=bool)  # every member has a main-view phase, if only "undecided"
        elif view.test_col in m.columns and len(m):
            has_values = np.logical_or.reduceat(m[view.test_col].notna().to_numpy(), member_runs.starts)
            applies = member_runs.per_member(ids, has_values, False)
        else:
            applies = np.zeros(len(ids), dtype=bool)
        verdicts = member_runs.verdicts(m, view, th)
        mem = per_member(verdicts.memorised_epoch)
        gen = per_member(verdicts.generalised_epoch)
        mem[~applies] = np.nan
        gen[~applies] = np.nan
        train_fell = per_member(verdicts.train_fell_back, False).to_numpy(dtype=bool) & applies
        test_fell = per_member(verdicts.test_fell_back, False).to_numpy(dtype=bool) & applies
        grokked = per_member(verdicts.grokked, False).to_numpy(dtype=bool) & applies
        times[view.column("mem_epoch")] = mem
        times[view.column("gen_epoch")] = gen
        if view is MAIN_VIEW:  # the first crossings, whatever `hold` says: what hold changed, and the trainer's
            times["mem_epoch_first"] = per_member(member_runs.first_reaching(m, view.train_col, th.train_acc))
            times["gen_epoch_first"] = per_member(member_runs.first_reaching(m, view.test_col, th.test_acc))
        times[view.column("delay")] = gen - mem
        times[view.column("relative_delay")] = (gen - mem) / mem.where(mem > 0)
        times[view.column("train_fell_back")] = np.where(applies, train_fell, False)
        times[view.column("test_fell_back")] = np.where(applies, test_fell, False)
        phase = classify_phases(
            mem.to_numpy(),
            gen.to_numpy(),
            times["finished"].to_numpy(),
            diverged,
            grokked,
            fell_back=train_fell | test_fell,
        )
        times[view.column("phase")] = pd.Series(np.where(applies, phase, np.array(None)), dtype=object)
        # The count behind fraction_generalised and the events of the censored medians.
        times[view.column("generalised")] = gen.notna().to_numpy()
        # Censored: spent its budget without generalising, so its phase says what happened within the budget only.
        censored = times["finished"].to_numpy() & gen.isna().to_numpy() & ~diverged & applies
        times[view.column("censored")] = censored
        times[view.column("censored_at")] = np.where(censored, trained.to_numpy(dtype="float64"), np.nan)
    times.attrs["thresholds"] = th
    times.attrs["views"] = [v.name for v in views]
    return times


def classify_phases(
    mem: np.ndarray,
    gen: np.ndarray,
    finished: np.ndarray,
    diverged: np.ndarray,
    grokked: np.ndarray,
    fell_back: np.ndarray | None = None,
) -> np.ndarray:
    """Liu et al. phases from the one rule's verdicts (grokcore.verdict: the two times, NaN where not
    reached for good, and grokked); a member that has not spent its budget is undecided unless both times
    are already there (more training cannot undo a time that happened). A member whose accuracy fell back
    below a threshold it had reached is unstable when its budget is spent, undecided before."""
    fell_back = np.zeros(len(mem), dtype=bool) if fell_back is None else np.asarray(fell_back, dtype=bool)
    has_mem = ~np.isnan(mem)
    has_gen = ~np.isnan(gen)
    both = has_mem & has_gen
    grokked = np.asarray(grokked, dtype=bool)
    unstable = fell_back & ~diverged
    return np.select(
        [unstable & finished, unstable, both & ~grokked, both, diverged, ~finished, has_mem, has_gen],
        ["unstable", UNDECIDED, "comprehension", "grokking", "diverged", UNDECIDED, "memorisation", "test_only"],
        default="confusion",
    ).astype(object)


def _resolution(times: pd.DataFrame, metrics: pd.DataFrame) -> pd.Series:
    """The evaluation interval: the config's eval_every, else the most common step between evaluations."""
    configured = (
        pd.to_numeric(times["eval_every"], errors="coerce").astype("float64")
        if "eval_every" in times.columns
        else pd.Series(np.nan, index=times.index)
    )
    if configured.notna().all():
        return configured
    step = metrics.groupby("run_id")["epoch"].agg(lambda e: e.diff().mode().min() if len(e) > 1 else np.nan)
    return configured.fillna(times["run_id"].map(step).astype("float64"))


def _require_columns(table: pd.DataFrame, required: Sequence[str], what: str) -> None:
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AnalysisError(
            f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}; it needs {', '.join(required)}. "
            f"Columns found: {', '.join(map(str, table.columns)) or 'none'}"
        )


def trainer_disagreements(times: pd.DataFrame) -> pd.DataFrame | None:
    """Members whose first crossings of 0.99 differ from the trainer's own `epoch_train_99` / `epoch_test_99`.

    A check on the data, not a second source: both should be the first evaluation at or above 0.99
    (`mem_epoch_first`, `gen_epoch_first`, whatever `hold` is). Only meaningful with thresholds 0.99 and no
    budget; returns None otherwise or when the runs table lacks the columns.
    """
    th = times.attrs.get("thresholds")
    if th is None or (th.train_acc, th.test_acc, th.budget) != (ACC_THRESHOLD, ACC_THRESHOLD, None):
        return None
    if not {"epoch_train_99", "epoch_test_99", "mem_epoch_first"} <= set(times.columns):
        return None
    ended = times[times["status"] != RUNNING_STATUS]

    def differs(derived: str, reported: str) -> pd.Series:
        a = ended[derived].astype("float64")
        b = pd.to_numeric(ended[reported], errors="coerce").astype("float64")
        return ~((a == b) | (a.isna() & b.isna()))

    bad = differs("mem_epoch_first", "epoch_train_99") | differs("gen_epoch_first", "epoch_test_99")
    return ended.loc[bad, ["run_id", "mem_epoch_first", "epoch_train_99", "gen_epoch_first", "epoch_test_99"]]


# ---- over replicates ------------------------------------------------------------------------


def survival_quantiles(
    durations: np.ndarray, observed: np.ndarray, quantiles: Sequence[float] = (0.25, 0.5, 0.75)
) -> list[float]:
    """Kaplan-Meier quantiles of a time some members never reached: `durations` are the epochs at which
    each member reached it (observed) or was last seen without it (censored). The q-quantile is the first
    time by which a share q of the members is estimated to have reached it; NaN when the censored ones
    leave that unknown (e.g. the median when half never reached it within their budget). With nothing
    censored these are the lower empirical quantiles (the median of 200, 300, 400 is 300)."""
    durations = np.asarray(durations, dtype="float64")
    observed = np.asarray(observed, dtype=bool)
    keep = np.isfinite(durations)
    durations, observed = durations[keep], observed[keep]
    if not len(durations):
        return [np.nan] * len(quantiles)
    event_times, events = np.unique(durations[observed], return_counts=True)
    # members at risk at t: those with duration >= t (a member censored at t was still at risk at t);
    # by sorting, not by a scan per event time (a report calls this tens of thousands of times)
    at_risk = len(durations) - np.searchsorted(np.sort(durations), event_times, side="left")
    reached = 1.0 - np.cumprod(1.0 - events / at_risk)
    out = []
    for q in quantiles:
        hit = np.flatnonzero(reached >= q - 1e-12)
        out.append(float(event_times[hit[0]]) if len(hit) else np.nan)
    return out


def _durations(frame: pd.DataFrame, view: View, base: str) -> tuple[np.ndarray, np.ndarray]:
    """(duration, observed) of each member for one time: the time if reached for good, else censored at
    the member's last evaluation (delay: counted from memorisation; undefined without it)."""
    mem = frame[view.column("mem_epoch")].to_numpy(dtype="float64")
    gen = frame[view.column("gen_epoch")].to_numpy(dtype="float64")
    last = frame["last_epoch"].to_numpy(dtype="float64")
    generalised = frame[view.column("generalised")].to_numpy(dtype=bool)
    memorised = ~np.isnan(mem) & ~frame[view.column("train_fell_back")].to_numpy(dtype=bool)
    if base == "mem_epoch":
        return np.where(memorised, mem, last), memorised
    if base == "gen_epoch":
        return np.where(generalised, gen, last), generalised
    has_mem = ~np.isnan(mem)
    return np.where(has_mem, np.where(generalised, gen, last) - mem, np.nan), has_mem & generalised


def aggregate(times: pd.DataFrame, by: Sequence[str] | None = None, view: str = "") -> pd.DataFrame:
    """One row per point of the sweep (by default every swept axis but the seed): replicate statistics.

    Columns: the `by` axes; `n_members`, `n_decided`, `n_undecided`; for each of mem_epoch, gen_epoch and
    delay its censored (Kaplan-Meier) `_median`, `_q25`, `_q75` (members that did not reach it count as
    censored at their last evaluation; NaN where too many are censored to know), `_n` (how many reached
    it), `_censored` (how many did not) and `_censored_at` (the latest epoch a censored one was seen);
    `fraction_generalised` (decided members that generalised for good) and `fraction_grokked` (decided
    members in the grokking phase); `count/<phase>` for every phase; `phase`, the phase more decided members
    fall in than any other, "mixed" when phases tie, "undecided" when no member is decided; `phase_count`
    (members in that phase) and `phase_counts` (all counts as text); `n_censored` (members that spent their
    budget without generalising), `censored_at_min` / `censored_at_max` (the epochs they reached) and
    `phase_censored` (how many of the cell's phase's members are censored: > 0, the phase rests on members
    cut off by their budget).
    Members still running without a runs row have no config and are left out.
    """
    vw = view_named(view)
    needed = [
        vw.column(c) for c in (*TIME_COLUMNS, "phase", "generalised", "train_fell_back", "censored", "censored_at")
    ]
    _require_columns(times, needed, f"member times (view '{view or 'main'}')")
    by = list(by) if by is not None else replicate_axes(times)
    if by:
        require_axes(times, by, what="aggregation axis")
    placed = times[times["status"] != RUNNING_STATUS] if "status" in times.columns else times
    placed = placed[placed[vw.column("phase")].notna()]
    keys = by or ["__all__"]
    work = placed.assign(__all__=0) if not by else placed
    # Columns as arrays once, then each group's rows by index: slicing a DataFrame per group, and
    # comparing its phases with each phase name, were most of a 100k-member report (issue 17).
    groups = work.groupby(keys, dropna=False, sort=True)
    phase_codes = pd.Categorical(work[vw.column("phase")], categories=PHASES).codes.astype(np.int64) + 1
    times_of = {base: _durations(work, vw, base) for base in TIME_COLUMNS}
    generalised_all = work[vw.column("generalised")].to_numpy(dtype=bool)
    censored_all = work[vw.column("censored")].to_numpy(dtype=bool)
    censored_at_all = work[vw.column("censored_at")].to_numpy(dtype="float64")
    rows = []
    for key, index in _group_rows(groups):
        key = key if isinstance(key, tuple) else (key,)
        tally = np.bincount(phase_codes[index], minlength=len(PHASES) + 1)[1:]  # 0: a phase not in PHASES
        counts = {phase: int(n) for phase, n in zip(PHASES, tally, strict=True)}
        n_decided = len(index) - counts[UNDECIDED]
        row = dict(zip(keys, key, strict=True))
        row.update(n_members=len(index), n_decided=n_decided, n_undecided=counts[UNDECIDED])
        for base in TIME_COLUMNS:
            durations, observed = (a[index] for a in times_of[base])
            q25, median, q75 = survival_quantiles(durations, observed)
            censored = np.isfinite(durations) & ~observed
            row.update(
                {
                    f"{base}_median": median,
                    f"{base}_q25": q25,
                    f"{base}_q75": q75,
                    f"{base}_n": int(observed.sum()),
                    f"{base}_censored": int(censored.sum()),
                    f"{base}_censored_at": float(durations[censored].max()) if censored.any() else np.nan,
                }
            )
        decided = phase_codes[index] != PHASES.index(UNDECIDED) + 1
        generalised = generalised_all[index] & decided
        row["fraction_generalised"] = generalised.sum() / n_decided if n_decided else np.nan
        row["n_generalised"] = int(generalised.sum())
        row["fraction_grokked"] = counts["grokking"] / n_decided if n_decided else np.nan
        for phase in PHASES:
            row[f"count/{phase}"] = counts[phase]
        top = max((counts[p] for p in DECIDED_PHASES), default=0)
        leaders = [p for p in DECIDED_PHASES if counts[p] == top]
        row["phase"] = UNDECIDED if top == 0 else leaders[0] if len(leaders) == 1 else MIXED
        row["phase_count"] = counts[UNDECIDED] if top == 0 else top
        row["phase_counts"] = ", ".join(f"{phase} {n}" for phase, n in counts.items() if n)
        censored = censored_all[index]
        at = censored_at_all[index][censored]
        in_phase = phase_codes[index] == (PHASES.index(row["phase"]) + 1 if row["phase"] in PHASES else -1)
        row.update(
            n_censored=int(censored.sum()),
            censored_at_min=float(at.min()) if len(at) else np.nan,
            censored_at_max=float(at.max()) if len(at) else np.nan,
            phase_censored=int((censored & in_phase).sum()),
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    if not len(out):
        out = pd.DataFrame(columns=[*keys, "n_members", "phase"])
    if not by:
        out = out.drop(columns="__all__")
    out.attrs["by"] = by
    out.attrs["view"] = view
    return out


def _group_rows(groups) -> list[tuple[object, np.ndarray]]:
    """(key, row positions) of each group of a groupby, in its sorted order, rows in table order."""
    codes = groups.ngroup().to_numpy()
    keys = groups.size().index
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
    return [(key, order[bounds[i] : bounds[i + 1]]) for i, key in enumerate(keys)]


def representative_members(times: pd.DataFrame, view: str = "", per_phase: int = 1) -> pd.DataFrame:
    """For each phase present, the member(s) in the middle of that phase by grokking epoch, then memorisation
    epoch, then run_id: typical examples for training-curve figures, chosen by the data."""
    vw = view_named(view)
    phase_col, grok_col, mem_col = vw.column("phase"), vw.column("gen_epoch"), vw.column("mem_epoch")
    chosen = []
    # ordered by the sort keys alone, then the chosen rows taken whole: filtering and sorting every
    # column of 100k members per phase was most of it
    keys = times[[phase_col, grok_col, mem_col, "run_id"]].reset_index(drop=True)
    for phase in PHASES:
        members = keys[keys[phase_col] == phase].sort_values([grok_col, mem_col, "run_id"], na_position="last")
        if not len(members):
            continue
        middle = len(members) // 2
        start = max(0, middle - per_phase // 2)
        chosen.append(times.iloc[members.index[start : start + per_phase]])
    if not chosen:
        return times.iloc[:0]
    return pd.concat(chosen)


# ---- fits -----------------------------------------------------------------------------------


def _scope(times: pd.DataFrame, x: str, by: list[str]) -> str:
    """What a fit row stands for: one value of each `by` axis, pooled over the other swept axes (said)."""
    pooled = [a for a in replicate_axes(times) if a not in (x, *by)]
    if by:
        return "per " + ", ".join(by) + (f" (pooled over {', '.join(pooled)})" if pooled else "")
    return f"pooled over {', '.join(pooled)}" if pooled else "all members"


@dataclass(frozen=True)
class _Point:
    """The members of one point of a fit as arrays (fast to resample): each one's duration and whether it
    was observed, for the fitted time, and whether it is decided and generalised, for the fraction."""

    durations: np.ndarray
    observed: np.ndarray
    decided: np.ndarray
    generalised: np.ndarray

    def take(self, index: np.ndarray) -> _Point:
        return _Point(self.durations[index], self.observed[index], self.decided[index], self.generalised[index])

    def __len__(self) -> int:
        return len(self.decided)


def _point_groups(times: pd.DataFrame, x: str, by: list[str], view: str, base: str = "gen_epoch"):
    """For each group of the `by` axes: its {x value: _Point} (placed members with a phase in `view`)."""
    vw = view_named(view)
    placed = times[times["status"] != RUNNING_STATUS] if "status" in times.columns else times
    placed = placed[placed[vw.column("phase")].notna()]
    # Columns as arrays once, then each point's members by row positions (as aggregate does): a DataFrame
    # per group and per point cost a live rebuild more than the fits' arithmetic.
    durations, observed = _durations(placed, vw, base)
    decided = (placed[vw.column("phase")] != UNDECIDED).to_numpy()
    generalised = placed[vw.column("generalised")].to_numpy(dtype=bool) & decided
    groups = _group_rows(placed.groupby(by, dropna=False, sort=True)) if by else [((), np.arange(len(placed)))]
    group_of = np.empty(len(placed), dtype=np.int64)
    for g, (_, index) in enumerate(groups):
        group_of[index] = g
    points: list[dict] = [{} for _ in groups]
    for xv, index in _group_rows(placed.groupby(x, dropna=False, sort=True)):
        for g in np.unique(group_of[index]):
            mine = index[group_of[index] == g]
            points[g][xv] = _Point(durations[mine], observed[mine], decided[mine], generalised[mine])
    for (key, _), group_points in zip(groups, points, strict=True):
        key = key if isinstance(key, tuple) else (key,)
        yield (
            dict(zip(by, key, strict=True)),
            group_points,
        )  # x values in sorted order, members in table order, as before


def _draws(points: dict, n_boot: int, seed: int, chunk: int = 50):
    """The bootstrap's resamples: the members of each point drawn with replacement (replicates are the
    unit of noise), each point keeping its own number of members. Drawn resample by resample, point by
    point, and yielded `chunk` resamples at a time as (first resample, {x value: (resamples, members)
    indices}), which bounds the memory of a pooled fit over 100k members."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        draws = {xv: np.empty((stop - start, len(pt)), dtype=np.int64) for xv, pt in points.items()}
        for b in range(stop - start):
            for xv, pt in points.items():
                draws[xv][b] = rng.integers(0, len(pt), len(pt))
        yield start, draws


def _resampled_survival_quantile(
    durations: np.ndarray, observed: np.ndarray, draws: np.ndarray, q: float
) -> np.ndarray:
    """survival_quantiles(durations[d], observed[d], (q,))[0] for every row d of `draws`, all at once:
    a resample is a count per member, the Kaplan-Meier product runs over every distinct time of the
    point (at a time without events its factor is exactly 1.0, so each product is the one the
    resample alone gives, bit for bit). The report's bootstraps took a minute at 100k members."""
    n_boot, n = draws.shape
    counts = np.bincount((draws + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    keep = np.isfinite(durations)
    out = np.full(n_boot, np.nan)
    if not keep.any():
        return out
    times, slot = np.unique(durations[keep], return_inverse=True)
    order = np.argsort(slot, kind="stable")
    starts = np.searchsorted(slot[order], np.arange(len(times)))
    weights = counts[:, np.flatnonzero(keep)[order]]
    at_time = np.add.reduceat(weights, starts, axis=1)
    events = np.add.reduceat(weights * observed[keep][order], starts, axis=1)
    at_risk = np.cumsum(at_time[:, ::-1], axis=1)[:, ::-1]
    factor = np.ones(at_risk.shape)
    np.divide(events, at_risk, out=factor, where=at_risk > 0)
    factor = np.where(at_risk > 0, 1.0 - factor, 1.0)
    reached = 1.0 - np.cumprod(factor, axis=1)
    hit = reached >= q - 1e-12
    found = hit.any(axis=1)
    out[found] = times[hit[found].argmax(axis=1)]
    return out


class BootstrapCache:
    """Bootstrap intervals kept by what they are computed from: a fit's kind and arguments and its
    points' member arrays, hashed. A group whose members did not change gets the very numbers it got
    before (the draws depend only on the seed and the points, so recomputing would give them bit for
    bit); the live report (analysis/watch.py) keeps one across rebuilds, so one pack's commit
    resamples only the groups it touched and the pooled fits. `prune` drops what the last build did
    not ask for (groups whose members have since changed)."""

    def __init__(self) -> None:
        self.kept: dict[bytes, tuple] = {}
        self.asked: set[bytes] = set()
        self.reused = 0
        """Intervals answered from `kept` rather than resampled (since the cache was made)."""

    def get(self, what: tuple, points: dict, compute: Callable[[], tuple]) -> tuple:
        digest = hashlib.blake2b(repr(what).encode(), digest_size=20)
        for xv, pt in points.items():
            digest.update(repr(xv).encode())
            for a in (pt.durations, pt.observed, pt.decided, pt.generalised):
                digest.update(f"{a.dtype.str}{a.shape}".encode())
                digest.update(np.ascontiguousarray(a).tobytes())
        key = digest.digest()
        self.asked.add(key)
        if key in self.kept:
            self.reused += 1
        else:
            self.kept[key] = compute()
        return self.kept[key]

    def prune(self) -> None:
        self.kept = {k: v for k, v in self.kept.items() if k in self.asked}
        self.asked = set()


def _cached(cache: BootstrapCache | None, what: tuple, points: dict, compute: Callable[[], tuple]) -> tuple:
    return compute() if cache is None else cache.get(what, points, compute)


def _resampled_interval(resample: Callable[[dict], np.ndarray], points: dict) -> tuple[float, float, int]:
    return _interval(resample(points))


def _interval(samples: np.ndarray) -> tuple[float, float, int]:
    ok = samples[np.isfinite(samples)]
    if len(ok) < len(samples) / 2:  # undefined in most resamples: an interval from the rest would flatter
        return np.nan, np.nan, len(ok)
    tail = (1 - CI_LEVEL) / 2 * 100
    return float(np.percentile(ok, tail)), float(np.percentile(ok, 100 - tail)), len(ok)


def critical_train_fraction(
    times: pd.DataFrame,
    axis: str = "train_fraction",
    by: Sequence[str] | None = None,
    level: float = 0.5,
    view: str = "",
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    cache: BootstrapCache | None = None,
) -> pd.DataFrame:
    """The train fraction below which members stop generalising within the budget, per group of the other axes
    (by default every other swept axis; `by=[]` pools them all, and the `scope` column says which).

    Walking down from the largest swept fraction, `upper` is the smallest fraction at and above which every
    point has fraction_generalised >= level, `lower` the next fraction below it (fraction_generalised <
    level), and `critical` the fraction where fraction_generalised crosses `level` on the straight line between
    them. Needs MIN_FIT_POINTS points or more; `critical_lo`, `critical_hi`: the 95% bootstrap interval over
    replicates (NaN when most resamples do not cross). Rows: the `by` axes, scope, critical, critical_lo,
    critical_hi, lower, upper, level, n_points, n_members, note (why critical is NaN, if it is).
    `cache`: intervals of unchanged groups kept from an earlier call (BootstrapCache).
    """
    by = _other_axes(times, axis, by)
    rows = []

    def crossing(points: dict) -> tuple[float, float, float, str]:
        xs, fracs = [], []
        for xv, pt in sorted(points.items()):
            if pt.decided.any():
                xs.append(float(xv))
                fracs.append(pt.generalised.sum() / pt.decided.sum())
        return crossing_of(xs, fracs)

    def resampled_crossings(points: dict) -> np.ndarray:
        """crossing(resample)[0] for each of `_draws`' resamples: a resample's decided and generalised
        counts per point are its member counts times the point's 0/1 columns (the same integers
        crossing() sums, hence the same fractions)."""
        order = sorted(points)
        out = np.full(n_boot, np.nan)
        for start, draws in _draws(points, n_boot, seed):
            tallies = {}
            for xv in order:
                pt, rows = points[xv], draws[xv]
                counts = np.bincount(
                    (rows + len(pt) * np.arange(len(rows))[:, None]).ravel(), minlength=len(rows) * len(pt)
                ).reshape(len(rows), len(pt))
                tallies[xv] = (counts @ pt.decided.astype(np.int64), counts @ pt.generalised.astype(np.int64))
            for b in range(len(next(iter(draws.values())))):
                kept = [xv for xv in order if tallies[xv][0][b] > 0]
                out[start + b] = crossing_of(
                    [float(xv) for xv in kept], [tallies[xv][1][b] / tallies[xv][0][b] for xv in kept]
                )[0]
        return out

    def crossing_of(xs: list[float], fracs: list[float]) -> tuple[float, float, float, str]:
        x, frac = np.asarray(xs), np.asarray(fracs)
        if len(x) < MIN_FIT_POINTS:
            return (
                np.nan,
                np.nan,
                np.nan,
                (f"needs decided members at {MIN_FIT_POINTS} or more {axis} values; has {len(x)}"),
            )
        if frac[-1] < level:
            return (
                np.nan,
                x[-1],
                np.nan,
                (f"no point reaches fraction_generalised {level}: critical above the largest {axis} swept"),
            )
        i = len(x) - 1
        while i > 0 and frac[i - 1] >= level:
            i -= 1
        if i == 0:
            return (
                np.nan,
                np.nan,
                x[0],
                (f"every point reaches fraction_generalised {level}: critical below the smallest {axis} swept"),
            )
        x0, x1, f0, f1 = x[i - 1], x[i], frac[i - 1], frac[i]
        return x0 + (level - f0) * (x1 - x0) / (f1 - f0), x0, x1, ""

    scope = _scope(times, axis, by)  # the same for every group (and it scans every config column)
    for key, points in _point_groups(times, axis, by, view):
        critical, lower, upper, note = crossing(points)
        lo = hi = np.nan
        if np.isfinite(critical) and n_boot:
            lo, hi, _ = _cached(
                cache,
                ("critical", level, n_boot, seed),
                points,
                functools.partial(_resampled_interval, resampled_crossings, points),
            )
        rows.append(
            {
                **key,
                "scope": scope,
                "critical": critical,
                "critical_lo": lo,
                "critical_hi": hi,
                "lower": lower,
                "upper": upper,
                "level": level,
                "n_points": len(points),
                "n_members": sum(len(pt) for pt in points.values()),
                "note": note,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            *by,
            "scope",
            "critical",
            "critical_lo",
            "critical_hi",
            "lower",
            "upper",
            "level",
            "n_points",
            "n_members",
            "note",
        ],
    )


def power_law_fit(
    times: pd.DataFrame,
    x: str,
    value: str = "gen_epoch",
    by: Sequence[str] | None = None,
    view: str = "",
    n_boot: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    cache: BootstrapCache | None = None,
) -> pd.DataFrame:
    """Least-squares fit of log(median value) = log(prefactor) + exponent * log(x), per group of the other axes
    (by default every other swept axis; `by=[]` pools them all, and the `scope` column says which).

    The medians are the censored (Kaplan-Meier) replicate medians of `aggregate`, so members that never
    reached the time count; a point whose median is unknown (half or more censored) is left out and
    counted in `n_censored_points`. Fewer than MIN_FIT_POINTS points: no fit (two points always give r² = 1).
    `exponent_lo`, `exponent_hi`: the 95% bootstrap interval over replicates. Rows: the `by` axes, scope,
    exponent, exponent_lo, exponent_hi, prefactor, r2, n_points, n_censored_points, n_members, x_min,
    x_max, note. `cache`: intervals of unchanged groups kept from an earlier call (BootstrapCache).
    """
    if value not in TIME_COLUMNS:
        raise AnalysisError(f"power_law_fit value must be one of {', '.join(TIME_COLUMNS)}, got '{value}'")
    by = _other_axes(times, x, by)

    def medians(points: dict) -> tuple[np.ndarray, np.ndarray, int]:
        xs, ys, unknown = [], [], 0
        for xv, pt in points.items():
            xf = float(xv) if isinstance(xv, (int, float, np.integer, np.floating)) else np.nan
            if not (np.isfinite(xf) and xf > 0):
                continue
            median = survival_quantiles(pt.durations, pt.observed, quantiles=(0.5,))[0]
            if np.isfinite(median) and median > 0:
                xs.append(float(xf))
                ys.append(median)
            else:
                unknown += 1
        return np.asarray(xs), np.asarray(ys), unknown

    def fit(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
        if len(np.unique(xs)) < MIN_FIT_POINTS:
            return np.nan, np.nan, np.nan
        lx, ly = np.log(xs), np.log(ys)
        slope, intercept = np.polyfit(lx, ly, 1)
        residual = ly - (intercept + slope * lx)
        total = ((ly - ly.mean()) ** 2).sum()
        return float(slope), float(np.exp(intercept)), (1 - (residual**2).sum() / total if total > 0 else 1.0)

    def resampled_exponents(points: dict) -> np.ndarray:
        """fit(*medians(resample)[:2])[0] for each of `_draws`' resamples, the medians of all resamples of
        a point at once (`_resampled_survival_quantile`)."""
        positive = {
            xv: float(xv)
            for xv in points
            if isinstance(xv, (int, float, np.integer, np.floating)) and np.isfinite(float(xv)) and float(xv) > 0
        }
        out = np.full(n_boot, np.nan)
        for start, draws in _draws(points, n_boot, seed):
            resampled = {
                xv: _resampled_survival_quantile(points[xv].durations, points[xv].observed, draws[xv], 0.5)
                for xv in positive
            }
            for b in range(len(next(iter(draws.values())))):
                known = [xv for xv in positive if np.isfinite(resampled[xv][b]) and resampled[xv][b] > 0]
                out[start + b] = fit(
                    np.asarray([positive[xv] for xv in known]), np.asarray([float(resampled[xv][b]) for xv in known])
                )[0]
        return out

    rows = []
    scope = _scope(times, x, by)  # the same for every group (and it scans every config column)
    for key, points in _point_groups(times, x, by, view, base=value):
        xs, ys, unknown = medians(points)
        exponent, prefactor, r2 = fit(xs, ys)
        row = {
            **key,
            "scope": scope,
            "exponent": exponent,
            "exponent_lo": np.nan,
            "exponent_hi": np.nan,
            "prefactor": prefactor,
            "r2": r2,
            "n_points": len(xs),
            "n_censored_points": unknown,
            "n_members": sum(len(pt) for pt in points.values()),
            "x_min": xs.min() if len(xs) else np.nan,
            "x_max": xs.max() if len(xs) else np.nan,
            "note": "",
        }
        if not np.isfinite(exponent):
            row["note"] = f"needs medians at {MIN_FIT_POINTS} or more positive {x} values; has {len(np.unique(xs))}" + (
                f" ({unknown} more with half or more of the replicates censored)" if unknown else ""
            )
        elif n_boot:
            lo, hi, ok = _cached(
                cache,
                ("power", n_boot, seed),
                points,
                functools.partial(_resampled_interval, resampled_exponents, points),
            )
            row.update(exponent_lo=lo, exponent_hi=hi)
            if not np.isfinite(lo):
                row["note"] = f"no interval: only {ok} of {n_boot} resamples had {MIN_FIT_POINTS} medians"
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            *by,
            "scope",
            "exponent",
            "exponent_lo",
            "exponent_hi",
            "prefactor",
            "r2",
            "n_points",
            "n_censored_points",
            "n_members",
            "x_min",
            "x_max",
            "note",
        ],
    )


def weight_decay_exponent(
    times: pd.DataFrame,
    by: Sequence[str] | None = None,
    value: str = "gen_epoch",
    view: str = "",
    n_boot: int = BOOTSTRAP_SAMPLES,
    cache: BootstrapCache | None = None,
) -> pd.DataFrame:
    """The exponent of generalisation time against weight decay; Omnigrok (Liu et al. 2023) reports time ∝
    1/wd, i.e. an exponent near -1."""
    return power_law_fit(times, x="weight_decay", value=value, by=by, view=view, n_boot=n_boot, cache=cache)


def _other_axes(times: pd.DataFrame, axis: str, by: Sequence[str] | None) -> list[str]:
    require_axes(times, [axis])
    if by is None:
        return [a for a in replicate_axes(times) if a != axis]
    return list(by)

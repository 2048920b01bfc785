"""The one rule for memorised, generalised and grokked: every part of the project calls this module.

Vocabulary (the same in `grok status`, the bisection, the Optuna objective and `require:`, adaptive
budgets, the runs rows and the report):

- an accuracy *reaches* its threshold at the first evaluation of a streak at or above it that lasts
  `hold` consecutive evaluations, or to the member's last one (a streak cut short by the end of training
  is all there is to see); hold 0: the streak must last to the last evaluation;
- it *falls back* when it reached its threshold and is below it again at the member's last evaluation;
- memorised: train accuracy reached its threshold and did not fall back (`memorised_epoch`);
- generalised: test accuracy reached its threshold and did not fall back (`generalised_epoch`);
- grokked: generalised at least `grok_delay` epochs after memorising and, when `grok_ratio` is set, at
  least that multiple of the memorisation epoch later.

A member that fell back is neither memorised (train) nor generalised (test): its end state contradicts the
word, and more training may settle it (the report flags it `unstable`). Evaluations after
`Thresholds.budget` are ignored. Times are evaluated epochs, known to within the evaluation interval.

Two forms of the rule, tested equal: `decide`, one member's history read as it is written above, and
`decide_many`, the same over the flat metrics rows of many members at once (what the analysis uses at
100k members). Standard library and numpy only, so the trainer's side, the driver and a notebook can all
import it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grokcore.records import ACC_THRESHOLD


class ThresholdsError(ValueError):
    """A threshold value that is not allowed; the message names the field and what is allowed."""

    def __init__(self, field_name: str, message: str):
        self.field_name = field_name
        super().__init__(message)


@dataclass(frozen=True)
class Thresholds:
    """What counts as memorised, generalised and grokked. Defaults follow DESIGN.md (the trainer's
    ACC_THRESHOLD, 0.99) and Liu et al."""

    train_acc: float = ACC_THRESHOLD
    """Memorisation: train accuracy at or above this."""
    test_acc: float = ACC_THRESHOLD
    """Generalisation: test accuracy at or above this."""
    grok_delay: int = 1000
    """Grokked: generalised this many epochs or more after memorising; less is comprehension."""
    grok_ratio: float | None = None
    """Also required for grokked when set: the delay is at least this multiple of the memorisation epoch
    (relative_delay = delay / mem_epoch), so the rule scales with how long a setting takes to memorise."""
    hold: int = 3
    """An accuracy counts from the first evaluation where it stays at or above its threshold for this many
    consecutive evaluations (or until the member's last one); 1: the first crossing counts; 0: it must stay
    there until the last evaluation. Default 3: a lone evaluation above the threshold during a loss spike
    does not count, and a clean crossing keeps its epoch (the time is the streak's first evaluation)."""
    budget: int | None = None
    """Judge every member within this many epochs (evaluations after it are ignored); None: each member's
    own `epochs`. A member's own budget still applies when it is smaller."""

    def __post_init__(self) -> None:
        for name in ("train_acc", "test_acc"):
            value = getattr(self, name)
            if not (_is_number(value) and 0 < value <= 1):
                raise ThresholdsError(name, f"threshold {name} must be in (0, 1], got {value!r}")
        if not (_is_number(self.grok_delay) and self.grok_delay >= 0):
            raise ThresholdsError("grok_delay", f"grok_delay must be a number of epochs >= 0, got {self.grok_delay!r}")
        if self.grok_ratio is not None and not (_is_number(self.grok_ratio) and self.grok_ratio >= 0):
            raise ThresholdsError(
                "grok_ratio",
                f"grok_ratio must be a multiple of the memorisation epoch >= 0 or None, got {self.grok_ratio!r}",
            )
        if not (isinstance(self.hold, int) and not isinstance(self.hold, bool) and self.hold >= 0):
            raise ThresholdsError(
                "hold", f"hold must be an integer >= 0 (0: until the last evaluation), got {self.hold!r}"
            )
        if self.budget is not None and not (
            isinstance(self.budget, int) and not isinstance(self.budget, bool) and self.budget >= 1
        ):
            raise ThresholdsError("budget", f"budget must be a positive number of epochs or None, got {self.budget!r}")

    @classmethod
    def from_mapping(cls, raw: Any) -> Thresholds:
        """Thresholds from a spec's `thresholds:` block (None or {}: the defaults); an unknown key or a bad
        value raises ThresholdsError naming the field and what is allowed."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ThresholdsError("", f"must be a mapping of {', '.join(FIELDS)}, got {raw!r}")
        for key in raw:
            if key not in FIELDS:
                raise ThresholdsError(str(key), f"unknown field {key!r}; allowed: {', '.join(FIELDS)}")
        return cls(**raw)

    def grok_rule(self) -> str:
        ratio = (
            f" and at least {self.grok_ratio:g}× its memorisation epoch later" if self.grok_ratio is not None else ""
        )
        return f"generalised {self.grok_delay:g} or more epochs after memorising{ratio}"

    def describe(self) -> str:
        """One sentence for the report, so a reader knows exactly what was counted."""
        hold = (
            "the first evaluation at or above it counts"
            if self.hold == 1
            else "it must then hold until the member's last evaluation"
            if self.hold == 0
            else f"it counts from the first of {self.hold} consecutive evaluations at or above it "
            "(or of the evaluations left, if fewer)"
        )
        budget = (
            f"within {self.budget} epochs (or the member's own budget if smaller)"
            if self.budget
            else "within each member's own epoch budget"
        )
        return (
            f"Memorised: train accuracy ≥ {self.train_acc}; generalised: test accuracy ≥ {self.test_acc} "
            f"and not below it again at the member's last evaluation; {hold}; judged {budget}. "
            f"Grokked (the grokking phase): {self.grok_rule()}; comprehension: generalised sooner. "
            "A member whose train or test accuracy reached its threshold and is below it again at its last "
            "evaluation is flagged unstable instead of given a phase."
        )


FIELDS = tuple(f.name for f in dataclasses.fields(Thresholds))

VERDICT_COLUMNS = ("epoch_memorised", "epoch_generalised", "grokked")
"""The runs-row columns of a member's verdict (sweeps/runner.py writes them when it ends): nullable ints, bool."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


@dataclass(frozen=True)
class Verdict:
    """One member's outcome under the rule (see the module docstring)."""

    memorised_epoch: int | None
    """First evaluation of the held train-accuracy streak; None: never reached, or fell back."""
    generalised_epoch: int | None
    """First evaluation of the held test-accuracy streak; None: never reached, or fell back."""
    grokked: bool
    """Generalised at least grok_delay (and grok_ratio × memorised_epoch, when set) after memorising."""
    train_fell_back: bool = False
    """Train accuracy reached its threshold and is below it again at the last evaluation judged."""
    test_fell_back: bool = False
    """Test accuracy reached its threshold and is below it again at the last evaluation judged."""

    @property
    def memorised(self) -> bool:
        return self.memorised_epoch is not None

    @property
    def generalised(self) -> bool:
        return self.generalised_epoch is not None

    def columns(self) -> dict[str, Any]:
        """The VERDICT_COLUMNS of a runs row."""
        return dict(zip(VERDICT_COLUMNS, (self.memorised_epoch, self.generalised_epoch, self.grokked), strict=True))


def decide(
    epochs: Sequence[float],
    train_acc: Sequence[float | None],
    test_acc: Sequence[float | None],
    thresholds: Thresholds = Thresholds(),
) -> Verdict:
    """The verdict on one member's evaluation history (equal-length sequences in epoch order; a missing
    accuracy, None or NaN, counts as below its threshold)."""
    if not len(epochs) == len(train_acc) == len(test_acc):
        raise ValueError(
            f"epochs, train_acc and test_acc must have one value per evaluation; got lengths "
            f"{len(epochs)}, {len(train_acc)}, {len(test_acc)}"
        )
    rows = [
        (e, tr, te)
        for e, tr, te in zip(epochs, train_acc, test_acc, strict=True)
        if thresholds.budget is None or e <= thresholds.budget
    ]
    mem, train_fell = _reached([(e, tr) for e, tr, _ in rows], thresholds.train_acc, thresholds.hold)
    gen, test_fell = _reached([(e, te) for e, _, te in rows], thresholds.test_acc, thresholds.hold)
    grokked = False
    if mem is not None and gen is not None:
        delay = gen - mem
        grokked = delay >= thresholds.grok_delay and (
            thresholds.grok_ratio is None or (mem > 0 and delay / mem >= thresholds.grok_ratio)
        )
    return Verdict(mem, gen, bool(grokked), train_fell, test_fell)


def _reached(history: list[tuple[float, float | None]], threshold: float, hold: int) -> tuple[int | None, bool]:
    """(the epoch the accuracy reached its threshold, None if never or it fell back; whether it fell back)."""
    above = [acc is not None and not math.isnan(acc) and acc >= threshold for _, acc in history]
    n = len(above)
    for i in range(n):
        if not above[i]:
            continue
        run = i
        while run < n and above[run]:
            run += 1
        if run == n or (hold > 0 and run - i >= hold):
            fell = not above[-1]
            return (None if fell else int(history[i][0])), fell
    return None, False


@dataclass(frozen=True)
class Verdicts:
    """decide_many's answers, one entry per member code (NaN epochs: None)."""

    memorised_epoch: np.ndarray  # (member,) float64
    generalised_epoch: np.ndarray  # (member,) float64
    grokked: np.ndarray  # (member,) bool
    train_fell_back: np.ndarray  # (member,) bool
    test_fell_back: np.ndarray  # (member,) bool

    @property
    def memorised(self) -> np.ndarray:
        return ~np.isnan(self.memorised_epoch)

    @property
    def generalised(self) -> np.ndarray:
        return ~np.isnan(self.generalised_epoch)

    def __len__(self) -> int:
        return len(self.grokked)

    def __getitem__(self, i: int) -> Verdict:
        def epoch(values: np.ndarray) -> int | None:
            return None if np.isnan(values[i]) else int(values[i])

        return Verdict(
            epoch(self.memorised_epoch),
            epoch(self.generalised_epoch),
            bool(self.grokked[i]),
            bool(self.train_fell_back[i]),
            bool(self.test_fell_back[i]),
        )


def decide_many(
    member: np.ndarray,
    epochs: np.ndarray,
    train_acc: np.ndarray,
    test_acc: np.ndarray,
    thresholds: Thresholds = Thresholds(),
    n_members: int | None = None,
) -> Verdicts:
    """`decide` for many members at once, from flat evaluation rows: `member` (row,) integer codes 0..n-1,
    each member's rows contiguous and in epoch order (e.g. a metrics table sorted by run_id, then epoch);
    `epochs`, `train_acc`, `test_acc` (row,) alongside (NaN: below the threshold). Entry k of the result
    is member code k's verdict; a code without rows (within the budget) gets no times."""
    member = np.asarray(member, dtype=np.int64)
    epochs = np.asarray(epochs, dtype="float64")
    train_acc = np.asarray(train_acc, dtype="float64")
    test_acc = np.asarray(test_acc, dtype="float64")
    if not len(member) == len(epochs) == len(train_acc) == len(test_acc):
        raise ValueError(
            f"member, epochs, train_acc and test_acc must have one value per row; got lengths "
            f"{len(member)}, {len(epochs)}, {len(train_acc)}, {len(test_acc)}"
        )
    n = n_members if n_members is not None else (int(member.max()) + 1 if len(member) else 0)
    if thresholds.budget is not None:
        keep = epochs <= thresholds.budget
        member, epochs, train_acc, test_acc = member[keep], epochs[keep], train_acc[keep], test_acc[keep]
    new_run = np.r_[True, member[1:] != member[:-1]] if len(member) else np.zeros(0, dtype=bool)
    owner = member[new_run]  # (run,) the member code of each run of rows
    if len(np.unique(owner)) != len(owner) or (np.diff(epochs)[~new_run[1:]] <= 0).any():
        raise ValueError("decide_many: each member's rows must be contiguous and in increasing epoch order")
    if len(owner) and (owner.min() < 0 or owner.max() >= n):
        raise ValueError(f"decide_many: member codes must be in 0..{n - 1}")

    def reached(acc: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        first, fell = held_streaks(acc >= threshold, new_run, epochs, thresholds.hold)
        first_out, fell_out = np.full(n, np.nan), np.zeros(n, dtype=bool)
        first_out[owner], fell_out[owner] = np.where(fell, np.nan, first), fell
        return first_out, fell_out

    mem, train_fell = reached(train_acc, thresholds.train_acc)
    gen, test_fell = reached(test_acc, thresholds.test_acc)
    delay = gen - mem
    with np.errstate(invalid="ignore", divide="ignore"):
        grokked = delay >= thresholds.grok_delay  # NaN (a time missing) compares False
        if thresholds.grok_ratio is not None:
            grokked &= (mem > 0) & (delay / np.where(mem > 0, mem, 1.0) >= thresholds.grok_ratio)
    return Verdicts(mem, gen, grokked, train_fell, test_fell)


def held_streaks(ok: np.ndarray, new_run: np.ndarray, epochs: np.ndarray, hold: int) -> tuple[np.ndarray, np.ndarray]:
    """Per run of rows (`new_run` marks each run's first row): the epoch its accuracy reached the threshold
    (`ok`: at or above it) by the held-streak rule, NaN if never, ignoring falling back; and whether it fell
    back (reached, yet not `ok` at the run's last row). The primitive under decide_many, also used alone
    for first crossings (hold 1)."""
    n = len(ok)
    n_runs = int(new_run.sum())
    if not n:
        return np.full(n_runs, np.nan), np.zeros(n_runs, dtype=bool)
    new_streak = new_run | np.r_[True, ok[1:] != ok[:-1]]
    streak_id = np.cumsum(new_streak) - 1  # (row,) which streak each row is in
    streak_start = np.flatnonzero(new_streak)  # (streak,)
    streak_len = np.diff(np.r_[streak_start, n])  # (streak,)
    remaining = streak_len[streak_id] - (np.arange(n) - streak_start[streak_id])  # evaluations left in the streak
    run_index = np.cumsum(new_run) - 1  # (row,)
    last_row_of_run = np.r_[np.flatnonzero(new_run)[1:] - 1, n - 1]  # (run,)
    to_the_end = streak_id == streak_id[last_row_of_run][run_index]
    qualifies = ok & to_the_end if hold == 0 else ok & ((remaining >= hold) | to_the_end)
    first = np.full(n_runs, np.inf)
    np.minimum.at(first, run_index[qualifies], epochs[qualifies])
    first[np.isinf(first)] = np.nan
    fell = ~np.isnan(first) & ~ok[last_row_of_run]
    return first, fell


__all__ = [
    "FIELDS",
    "VERDICT_COLUMNS",
    "Thresholds",
    "ThresholdsError",
    "Verdict",
    "Verdicts",
    "decide",
    "decide_many",
    "held_streaks",
]

"""Which config columns a sweep varied, and how to draw each one.

Why derived from the data, not only from the spec: a sweep still running may
not have reached every value of an axis yet, an Optuna search samples values
the spec does not list, and several sweeps loaded together vary whatever
differs between them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.columns import CONFIG_COLUMNS, NON_AXIS_COLUMNS, REPLICATE_AXIS, RUNNING_STATUS, SWEEP_COLUMN
from analysis.errors import AnalysisError

Scale = Literal["log", "linear", "category"]

# Readable axis titles for the axes the seed experiments sweep; anything else shows its column name.
AXIS_TITLES: dict[str, str] = {
    "train_fraction": "train fraction",
    "weight_decay": "weight decay",
    "lr": "learning rate",
    "exp_m": "exponent m (of a)",
    "exp_n": "exponent n (of b)",
    "addition_fraction": "addition fraction of the train set",
    "noise_n": "label noise n (Binomial(n, 1/2) − n/2)",
    "noise_fraction": "label noise fraction (uniform)",
    "p": "modulus p",
    "d_model": "d_model",
    "d_mlp": "d_mlp",
    "seed": "seed",
    SWEEP_COLUMN: "sweep",
}


_ASKED: ContextVar[dict | None] = ContextVar("swept_axes_asked", default=None)


@contextmanager
def axes_remembered() -> Iterator[None]:
    """Within the block, swept_axes answers each table once: a report asks it of the same few tables
    dozens of times (seconds at 100k members). The tables must not change meanwhile, as the report's
    build step leaves them (it adds columns to copies, never config values to a table it asked about)."""
    token = _ASKED.set({})
    try:
        yield
    finally:
        _ASKED.reset(token)


def axis_title(axis: str) -> str:
    return AXIS_TITLES.get(axis, axis)


def _placed(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose config is known: members still running without a runs row have none."""
    if "status" in table.columns:
        running = table["status"] == RUNNING_STATUS
        if running.any():  # a finished sweep has none: no copy of every column then
            return table[~running]
    return table


def swept_axes(table: pd.DataFrame, include_seed: bool = False) -> list[str]:
    """Config columns (and `sweep`) that take more than one value among the members, in config order.

    A None/null value counts as a value of its own (max_num None next to max_num 130 is a sweep).
    """
    asked = _ASKED.get()
    if asked is not None:
        kept = asked.get((id(table), include_seed))
        if kept is not None and kept[0] is table:  # the table itself is kept, so its id is not reused
            return list(kept[1])
        axes = _swept_axes(table, include_seed)
        asked[(id(table), include_seed)] = (table, axes)
        return list(axes)
    return _swept_axes(table, include_seed)


def _swept_axes(table: pd.DataFrame, include_seed: bool) -> list[str]:
    placed = _placed(table)
    candidates = [c for c in CONFIG_COLUMNS if c in placed.columns and c not in NON_AXIS_COLUMNS]
    if SWEEP_COLUMN in placed.columns:
        candidates.append(SWEEP_COLUMN)
    axes = [c for c in candidates if _varies(placed[c]) and c not in _BUDGET_COLUMNS]
    if "epochs" in candidates and _varies(_first_budget(placed)):
        axes.insert(candidates.index("epochs"), "epochs")  # config order, as above
    if not include_seed:
        axes = [c for c in axes if c != REPLICATE_AXIS]
    return axes


# A member continued to a larger budget (sweeps/budget.py) has a runs row with its new `epochs` and
# `extended_from`, its first budget; neither makes it another point of the sweep. The budget is an axis
# only where the members' first budgets differ (an epochs axis in the spec).
_BUDGET_COLUMNS = ("epochs", "extended_from")


def _first_budget(placed: pd.DataFrame) -> pd.Series:
    if "extended_from" not in placed.columns:
        return placed["epochs"]
    return placed["extended_from"].where(placed["extended_from"].notna(), placed["epochs"])


def _varies(column: pd.Series) -> bool:
    """nunique(dropna=False) > 1 without hashing every value: a report asks this of every config
    column some sixty times, which at 100k members took seconds."""
    if len(column) < 2:
        return False
    if column.dtype.kind in "iufb" and not isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        values = column.to_numpy()  # plain numpy: pandas' per-operation overhead was most of the cost
        if values.dtype.kind == "f":
            missing = np.isnan(values)
            if missing.any():
                return not missing.all()
        return bool((values[1:] != values[0]).any())
    missing = column.isna()
    if missing.any():
        return not missing.all()  # a null beside a value is a value of its own
    first = column.iloc[0]
    if isinstance(first, (tuple, list)):  # force_adjacent: compared as a whole, not element-wise
        return column.nunique(dropna=False) > 1
    return bool((column != first).any())


def replicate_axes(table: pd.DataFrame) -> list[str]:
    """The axes that define a point of the sweep: every swept axis but the seed (replicates differ by seed only)."""
    return swept_axes(table, include_seed=False)


def require_axes(table: pd.DataFrame, axes: Iterable[str], what: str = "axis") -> None:
    """Raise an AnalysisError naming an axis that is not a column or was not swept, and the swept ones."""
    swept = swept_axes(table, include_seed=True)
    for axis in axes:
        if axis not in table.columns:
            raise AnalysisError(
                f"{what} '{axis}' is not a column of the table; swept axes: {', '.join(swept) or 'none'}"
            )
        if axis not in swept:
            values = pd.unique(_placed(table)[axis])
            shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:5])
            raise AnalysisError(
                f"{what} '{axis}' was not swept: it takes only the value(s) {shown}; "
                f"swept axes: {', '.join(swept) or 'none'}"
            )


def _numeric_array(values: Iterable) -> np.ndarray | None:
    """The values as float64 when they come as a numeric (not bool) column: the checks below then run
    on the array instead of value by value (100k members' worth each time)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype("float64")
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype.kind in "iuf":
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return None


def is_numeric_axis(values: Iterable) -> bool:
    numbers = _numeric_array(values)
    if numbers is not None:
        return bool((~np.isnan(numbers)).any())
    vals = [v for v in values if not _is_missing(v)]
    return bool(vals) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in vals
    )


def axis_scale(values: Iterable) -> Scale:
    """'log' when the distinct values are log-spaced, 'linear' for other numbers, 'category' otherwise.

    Log-spaced: all positive, and the ratio between successive sorted values is
    roughly constant (largest ratio at most twice the smallest) and above 1.5;
    two values count when their ratio is at least 10. So 1e-4, 3e-4, 1e-3 or
    0.1, 0.2, 0.5, 1 are log; 0.1, 0.2, ..., 0.9 and the exponents 1..9 are linear.
    """
    numbers = _numeric_array(values)
    if numbers is not None:
        numbers = numbers[~np.isnan(numbers)]
        if not len(numbers):
            return "category"
    else:
        values = list(values)
        if not is_numeric_axis(values):
            return "category"
        numbers = np.asarray([float(v) for v in values if not _is_missing(v)])
    distinct = np.unique(numbers)
    if len(distinct) < 2 or distinct[0] <= 0:
        return "linear"
    ratios = distinct[1:] / distinct[:-1]
    if len(distinct) == 2:
        return "log" if ratios[0] >= 10 else "linear"
    if ratios.min() > 1.5 and ratios.max() <= 2 * ratios.min():
        return "log"
    return "linear"


def _is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # tuples and arrays are never "missing"
        return False


# ---- tick labels that say the data's values ------------------------------------------------------
#
# Why not plotly's own log ticks: on a log axis it labels minor ticks with a lone digit ("2", "5"), so a
# weight decay of 0.3 reads "3" and an epoch axis reads "5, 100, 2, 5, 1000, 2". Every function below
# returns explicit tick values with full labels; decades stay visible as unlabelled grid lines.

MAX_LOG_TICKS = 12


def format_value(value) -> str:
    """A tick or cell label: the value as written in a spec (0.3, 1e-05, 4000), never a lone mantissa."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.4g}"


def decades(lo: float, hi: float) -> list[float]:
    """Powers of ten from the one at or below `lo` to the one at or above `hi`."""
    return [10.0**k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def value_ticks(values: Iterable, scale: Scale, decade_grid: bool = True) -> dict:
    """Axis settings that label every swept value exactly (and only those); on a log axis, decades are
    drawn as unlabelled grid lines for context (`decade_grid`; a heatmap's cells would hide them)."""
    shown = [v for v in values if not _is_missing(v)]
    if scale == "category" or not shown:
        return {}
    settings: dict[str, Any] = dict(tickmode="array", tickvals=list(shown), ticktext=[format_value(v) for v in shown])
    if scale == "log" and decade_grid:
        numbers = [float(v) for v in shown]
        settings["minor"] = dict(
            tickmode="array",
            tickvals=decades(min(numbers), max(numbers)),
            showgrid=True,
            gridcolor="#d0d0d0",
            griddash="dot",
            ticks="",
        )
    return settings


def log_ticks(lo: float, hi: float) -> dict:
    """Axis settings for a continuous log axis (epochs, losses) from `lo` to `hi` > 0: ticks at 1, 2, 5 per
    decade with full labels (only the decades when that would be more than MAX_LOG_TICKS)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= 0:
        return {}
    lo, hi = min(lo, hi), max(lo, hi)
    steps = [d * m for d in decades(lo, hi) for m in (1, 2, 5)]
    ticks = [t for t in steps if lo / 1.0001 <= t <= hi * 1.0001]
    if len(ticks) > MAX_LOG_TICKS:
        ticks = [t for t in decades(lo, hi) if lo / 1.0001 <= t <= hi * 1.0001]
    if len(ticks) < 2:  # less than a factor of two in range: label its ends
        ticks = sorted({lo, hi})
    return dict(tickmode="array", tickvals=ticks, ticktext=[format_value(t) for t in ticks])


def label_log_axes(fig) -> None:
    """Give every log axis of `fig` that has no explicit ticks the labels of log_ticks over its data."""
    layout = fig.layout
    for name in [k for k in layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
        axis = layout[name]
        if axis.type != "log" or axis.tickvals is not None:
            continue
        letter, suffix = name[0], name[5:]
        ref = f"{letter}{suffix}"
        values = []
        for trace in fig.data:
            if (getattr(trace, f"{letter}axis", None) or letter) != ref:
                continue
            data = getattr(trace, letter, None)
            if data is None:
                continue
            numbers = pd.to_numeric(pd.Series(list(data)), errors="coerce").to_numpy(dtype="float64")
            values.extend(numbers[np.isfinite(numbers) & (numbers > 0)])
        if values:
            axis.update(**log_ticks(min(values), max(values)))

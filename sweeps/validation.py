"""The vocabulary of spec checking, shared by the spec and every search block's parser: the one
error type, did-you-mean, number checks, RunConfig field kinds and coercion, the epoch budget.

A leaf module (grokcore and yaml-free), so that sweeps/spec.py and a search's own parser
(sweeps/optuna_spec.py, sweeps/bisection_source.py) both import it without importing each other.
"""

from __future__ import annotations

import difflib
import math
import types
from collections.abc import Iterable
from typing import Any, Union, get_args, get_origin

from grokcore.config import ConfigError, RunConfig, allowed_values, config_hints


class SpecError(ValueError):
    """A sweep spec that cannot run. The message names the spec file and the field."""

    def __init__(self, source: str, where: str, message: str):
        self.source, self.where, self.message = source, where, message
        super().__init__(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def unknown(source: str, where: str, key: str, allowed: list[str], what: str) -> SpecError:
    """`<where>: unknown <what>; did you mean '<closest>'? allowed: ...`."""
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return SpecError(source, where, f"unknown {what}; {hint}allowed: {', '.join(allowed)}")


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def field_kind(field: str) -> str:
    """int, float, bool, str, literal, list or other, from RunConfig's annotation."""
    hint = config_hints()[field]
    union = get_origin(hint) in (Union, types.UnionType)
    options = [h for h in (get_args(hint) if union else (hint,)) if h is not type(None)]
    if allowed_values(field) is not None:
        return "literal"
    for h in options:
        if h is bool:
            return "bool"
        if h is int:
            return "int"
        if h is float:
            return "float"
        if get_origin(h) is tuple:
            return "list"
        if h is str:
            return "str"
    return "other"


def coerce(field: str, value: Any) -> Any:
    """1 and 1.0 of a float field are the same run; make them the same value (and run_id)."""
    if is_int(value) and field_kind(field) == "float":
        return float(value)
    return value


def bare(e: ConfigError) -> str:
    """ConfigError's message without its leading 'field: '."""
    text = str(e)
    prefix = f"{e.field_name}: "
    return text.removeprefix(prefix)


def epoch_budget(base: dict[str, Any], axes: Iterable[Any]) -> int:
    """The most epochs any member of the spec may train: base's (or RunConfig's default), or the
    largest value of an `epochs` axis. Grace periods and penalties are checked against it."""
    return max(
        [base.get("epochs", RunConfig.epochs)] + [v for a in axes if a.field == "epochs" for v in a.values if is_int(v)]
    )

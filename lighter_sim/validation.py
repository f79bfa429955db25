"""Validated records for the `sim:` section, and `SimConfigError`, the one error a bad setting raises.

A record is a frozen pydantic dataclass (`record`) whose unknown keys are errors. A field's type carries its
constraints and the words for them: `expecting("an integer >= 1")` turns whatever fails inside it into
"expected an integer >= 1", so a message does not depend on pydantic's wording. `validated` reads a
`ValidationError` back as one line per fault: the dotted key, what was expected, what was given.

A cut-down copy of `hedge_strategy/validation.py` (the field types are in `config.py`, as the bot's are),
duplicated on purpose: the simulator may not import the bot (`tests/test_package_boundary.py`), and the bot's
config and the simulator's should read alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ConfigDict, ValidationError, WrapValidator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# Unknown keys are errors, NaN and infinities are refused, defaults go through their field's validators.
_RECORD_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)
_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument", "invalid_key"}
_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument"}
_SHAPES = {"dataclass_type": "a mapping", "dict_type": "a mapping", "list_type": "a list",
           "too_short": "a list of at least {min_length}"}


class SimConfigError(ValueError):
    """A bad `sim:` setting. `lines`: one `<dotted.key>: <what is wrong>` per fault; `key`: the first key."""

    def __init__(self, key: str, problem: str, *more_lines: str) -> None:
        self.key = key
        self.lines = (f"{key}: {problem}", *more_lines)
        super().__init__("\n".join(self.lines))


def record(cls: type[T]) -> type[T]:
    """`cls` as a frozen pydantic dataclass whose unknown keys are errors."""
    return pydantic_dataclass(frozen=True, config=_RECORD_CONFIG)(cls)


def expecting(description: str) -> WrapValidator:
    """Every failure of the validators inside becomes "expected `description`"."""

    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValueError:  # pydantic's ValidationError, or a check's own ValueError
            raise PydanticCustomError("expected", "expected {expected}", {"expected": description}) from None

    return WrapValidator(check)


def broken_rule(message: str, key: str) -> PydanticCustomError:
    """The error a record validator raises when a rule across fields fails; `key` names the field at fault."""
    return PydanticCustomError("rule", "{message}", {"message": message, "key": key})


def validated(build: Callable[[], T], prefix: str) -> T:
    """`build()`, its ValidationError turned into a SimConfigError with one line per fault under `prefix`."""
    try:
        return build()
    except ValidationError as error:
        faults = [_fault(e, prefix) for e in error.errors()]
        raise SimConfigError(*faults[0], *(f"{key}: {text}" for key, text in faults[1:])) from None


def _fault(error: Any, prefix: str) -> tuple[str, str]:
    """(dotted key, what is wrong) of one pydantic error; list positions read `markets[0]`."""
    ctx = error.get("ctx") or {}
    key = prefix
    for part in (*error["loc"], ctx.get("key")):
        if isinstance(part, int):
            key += f"[{part}]"
        elif part:
            key += f".{part}"
    kind, given = error["type"], error["input"]
    if kind == "expected" or kind in _SHAPES:
        return key, f"expected {ctx.get('expected') or _SHAPES[kind].format(**ctx)}, got {given!r}"
    if kind in _UNKNOWN:
        return key, "unknown key"
    if kind in _MISSING:
        return key, "missing required key"
    return key, error["msg"]  # a `broken_rule`, or a fault no field type words itself (pydantic's words)

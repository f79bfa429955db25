"""Validated records declared once: the config sections (`config`) and the bus messages (`bus.messages`).

A record is a frozen pydantic dataclass (`record`): constructing it, `dataclasses.replace` and validating a
parsed mapping all check every field, and an unknown key is an error. A field's type carries its constraints
and the words for them: `expecting("an integer >= 1")` turns whatever fails inside it into the one error
"expected an integer >= 1", so a message does not depend on pydantic's own wording. `problems` reads a
`ValidationError` back as one `Problem` per fault (the dotted key, what was expected, what was given), which
`config` and `bus.messages` each phrase their way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# Unknown keys are errors; NaN and infinities are refused by every float and Decimal field; defaults go
# through their field's validators like given values. Strictness is declared per field type (`Strict()`), not
# here: a strict record would refuse a nested mapping.
_RECORD_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument", "invalid_key"}  # invalid: not a string
_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument"}
_NOT_A_MAPPING = {"dataclass_type", "model_type", "dict_type"}


def record(cls: type[T]) -> type[T]:
    """`cls` as a frozen pydantic dataclass whose unknown keys are errors."""
    return pydantic_dataclass(frozen=True, config=_RECORD_CONFIG)(cls)


@dataclass(frozen=True)
class Problem:
    """One fault of a validated value. `text` is what was expected, or a rule's sentence."""

    key: str  # dotted: "strategy.retry_times"
    kind: Literal["expected", "unknown", "missing", "rule"]
    text: str = ""
    given: Any = None


def expecting(description: str) -> WrapValidator:
    """Every failure of the validators inside becomes "expected `description`".

    An inner `expecting` about the same value (not about an item of it) is more precise and is kept: a
    decimal field says "a decimal string" for a JSON number and its full range for a bad string.
    """

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            inner = [e["ctx"] for e in error.errors() if e["type"] == "expected" and not e["loc"]]
            raise PydanticCustomError("expected", "expected {expected}",
                                      inner[0] if inner else {"expected": description}) from None

    return WrapValidator(check)


def expected(description: str, given: Any, key: str = "") -> PydanticCustomError:
    """The error for a record validator to raise when a field that depends on others is wrong."""
    return PydanticCustomError("expected", "expected {expected}", {"expected": description, "given": given,
                                                                   "key": key})


def broken_rule(message: str, key: str = "") -> PydanticCustomError:
    """The error for a record validator to raise when a rule across fields fails; `key` names the field."""
    return PydanticCustomError("rule", "{message}", {"message": message, "key": key})


# Field types both kinds of record use.

Text = Annotated[str, Strict(), Field(pattern=r"\S"), expecting("a non-empty string")]


def choice(*options: str) -> Any:
    """One of `options`. A str subclass (an enum member such as `Side.BUY`) is kept as a plain string, so
    equality and JSON survive a round trip."""
    return Annotated[Literal[options], BeforeValidator(lambda v: str(v) if isinstance(v, str) else v),
                     expecting("one of " + ", ".join(options))]


def problems(error: ValidationError) -> list[Problem]:
    """Each fault of `error` as a `Problem`, in pydantic's order (the order of the declared fields)."""
    found = []
    for e in error.errors():
        ctx = e.get("ctx") or {}
        key = ".".join(str(part) for part in (*e["loc"], ctx.get("key")) if part not in (None, ""))
        if e["type"] == "expected":
            found.append(Problem(key, "expected", ctx["expected"], ctx.get("given", e["input"])))
        elif e["type"] in _UNKNOWN:
            found.append(Problem(key, "unknown"))
        elif e["type"] in _MISSING:
            found.append(Problem(key, "missing"))
        elif e["type"] in _NOT_A_MAPPING:
            found.append(Problem(key, "expected", "a mapping", e["input"]))
        else:  # a `broken_rule`, or a fault no field type words itself (then pydantic's words are shown)
            found.append(Problem(key, "rule", e["msg"]))
    return found

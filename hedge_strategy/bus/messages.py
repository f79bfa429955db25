"""The messages A and B exchange over Redis: versioned JSON, validated strictly in both directions.

Every message is a JSON object with `"v": 1` and a `"type"`; sizes and prices are decimal strings;
timestamps are integer milliseconds since the epoch. Constructing a message validates it (`BusMessageError`,
a `ValueError`, on anything wrong), and so does `from_json`, which also rejects missing and unknown fields,
so a message that parses is safe to act on.

Numbers are bounded, not only typed: a schema-valid "1E+40" would otherwise reach the exchange arithmetic
and raise there, where nothing dead-letters it. Decimals are finite, below 10^12, with at most 18 fractional
digits; timestamps are 0..10^14 ms (0..10^17 µs); order indexes, trade ids and other integers fit an int64.
`from_json` turns *any* failure while decoding (deep nesting, a 5,000-digit integer) into `BusMessageError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted

SCHEMA_VERSION = 1
SIDES = ("buy", "sell")
FILLED, FAILED = "filled", "failed"
OUTCOME_STATUSES = (FILLED, FAILED)
RESIDUAL = "residual"

# Bounds (see the module docstring). Far beyond any real size, price or date, well inside what arithmetic,
# datetime and the exchange's int64 fields can hold.
MAX_DECIMAL = Decimal(10) ** 12
MAX_FRACTION_DIGITS = 18
MAX_TS_MS = 10**14
MAX_TS_US = 10**17
MAX_INT64 = 2**63 - 1
# Our messages nest two levels deep. The limit is checked *before* json.loads: lighter-sdk's py_ecc raises
# the recursion limit to 100,000, and at that limit a deeply nested document overflows the C stack of the
# JSON decoder (a segfault, which no except clause catches) instead of raising RecursionError.
_MAX_SHOWN_CHARS = 120  # of a bad value quoted in an error: a megabyte-long field must not fill the logs


class BusMessageError(ValueError):
    """A message that does not follow the schema. The text says which field and why."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def opposite_side(side: str) -> str:
    """ "buy" for "sell" and back (accepts `Side` members, which are strings)."""
    side = str(side)
    if side not in SIDES:
        raise BusMessageError(f"side must be one of {SIDES}, got {side!r}")
    return "sell" if side == "buy" else "buy"


def request_id_for(a_client_order_index: int, trade_ids: Sequence[int]) -> str:
    """The id of the request that hedges A's fills `trade_ids` of order `a_client_order_index`.

    `"<coid>-<trade_id>"` for one fill, `"<coid>-<t1>+<t2>..."` (ascending) for fills A netted together, and
    `"<coid>-residual"` for a residual hedge (no fill: A + B drifted apart). The same fills always give the
    same id, so B recognises a redelivered or republished request.
    """
    if not trade_ids:
        return f"{a_client_order_index}-{RESIDUAL}"
    return f"{a_client_order_index}-" + "+".join(str(t) for t in sorted(trade_ids))


@dataclass(frozen=True)
class HedgeRequest:
    """A asks B to hedge: B must trade `side` for `size` on `market`.

    `side` is the side **B** trades, the opposite of A's fill side (A bought, so B sells). Build one with
    `for_fills` (which takes A's fill side and derives the rest) or `for_residual`.
    """

    pair: str
    request_id: str
    market: str  # symbol, e.g. "BTC"
    market_id: int
    side: str  # the side B must trade: "buy" | "sell"
    size: Decimal  # base amount, > 0
    a_client_order_index: int
    trade_ids: tuple[int, ...]  # A's fills this covers; empty for a residual hedge
    a_fill_price: Decimal | None  # size-weighted average price of those fills; None for a residual
    fill_ts_ms: int  # exchange time of the (last) fill, or when the residual was seen
    publish_ts_ms: int = 0  # stamped by Bus.publish_request when left at 0
    seen_ts_us: int = 0  # when A saw the fill (µs since the epoch; 0: not stamped), for latency benchmarks

    TYPE: ClassVar[str] = "hedge_request"

    @classmethod
    def for_fills(
        cls,
        *,
        pair: str,
        market: str,
        market_id: int,
        a_fill_side: str,
        size: Decimal,
        a_client_order_index: int,
        trade_ids: Sequence[int],
        a_fill_price: Decimal,
        fill_ts_ms: int,
        seen_ts_us: int = 0,
    ) -> HedgeRequest:
        """The request hedging A's fills: B trades the opposite of `a_fill_side`."""
        return cls(
            pair=pair,
            request_id=request_id_for(a_client_order_index, trade_ids),
            market=market,
            market_id=market_id,
            side=opposite_side(a_fill_side),
            size=size,
            a_client_order_index=a_client_order_index,
            trade_ids=tuple(trade_ids),
            a_fill_price=a_fill_price,
            fill_ts_ms=fill_ts_ms,
            seen_ts_us=seen_ts_us,
        )

    @classmethod
    def for_residual(
        cls,
        *,
        pair: str,
        market: str,
        market_id: int,
        side: str,
        size: Decimal,
        a_client_order_index: int,
        seen_ts_ms: int,
    ) -> HedgeRequest:
        """A request to trade away an imbalance of A + B; `side` is what B trades. Use a fresh coid."""
        return cls(
            pair=pair,
            request_id=request_id_for(a_client_order_index, ()),
            market=market,
            market_id=market_id,
            side=str(side),
            size=size,
            a_client_order_index=a_client_order_index,
            trade_ids=(),
            a_fill_price=None,
            fill_ts_ms=seen_ts_ms,
        )

    @property
    def is_residual(self) -> bool:
        return not self.trade_ids

    def __post_init__(self) -> None:
        check = _Check("hedge request", self)
        check.text("pair", "request_id", "market")
        check.integer("market_id", "a_client_order_index")
        check.integer("fill_ts_ms", "publish_ts_ms", maximum=MAX_TS_MS)
        check.integer("seen_ts_us", maximum=MAX_TS_US)
        check.choice("side", SIDES)
        check.decimal("size", positive=True)
        check.integers("trade_ids")
        check.decimal("a_fill_price", positive=True, optional=not self.trade_ids)
        expected = request_id_for(self.a_client_order_index, self.trade_ids)
        if self.request_id != expected:
            raise BusMessageError(
                f"hedge request: request_id {self.request_id!r} does not match its order and "
                f"fills (expected {expected!r})"
            )

    def to_json(self) -> str:
        return _dump(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> HedgeRequest:
        return _load(cls, raw)


@dataclass(frozen=True)
class HedgeOutcome:
    """B's answer to one or more requests (B nets requests waiting together into one hedge).

    `filled`: the hedge is done (`filled_size` at `avg_price`). `failed`: B gave up, `reason` says why, and
    `filled_size` may still be non-zero (a partial hedge). Requests of opposite sides that net to nothing are
    answered `filled` with `requested_size` and `filled_size` 0 and no order. `latency_ms` is B's measure
    from the earliest request's publish to its first hedge order being sent.
    """

    pair: str
    request_ids: tuple[str, ...]
    status: str  # "filled" | "failed"
    market: str
    side: str  # the side B traded
    requested_size: Decimal  # net size of the requests answered
    filled_size: Decimal
    avg_price: Decimal | None  # None when nothing filled
    attempts: int  # hedge orders sent
    reason: str | None  # required when failed
    hedge_client_order_indexes: tuple[int, ...]
    received_ts_ms: int  # B read the (first) request
    sent_ts_ms: int | None  # B's first hedge order went out
    filled_ts_ms: int | None  # the hedge completed
    latency_ms: float | None
    publish_ts_ms: int = 0  # stamped by Bus.publish_outcome when left at 0

    TYPE: ClassVar[str] = "hedge_outcome"

    @property
    def filled(self) -> bool:
        return self.status == FILLED

    def __post_init__(self) -> None:
        check = _Check("hedge outcome", self)
        check.text("pair", "market")
        check.texts("request_ids")
        check.choice("status", OUTCOME_STATUSES)
        check.choice("side", SIDES)
        check.decimal("requested_size", positive=False)
        check.decimal("filled_size", positive=False)
        check.decimal("avg_price", positive=True, optional=True)
        check.integer("attempts")
        check.integer("received_ts_ms", "publish_ts_ms", maximum=MAX_TS_MS)
        check.integer("sent_ts_ms", "filled_ts_ms", optional=True, maximum=MAX_TS_MS)
        check.integers("hedge_client_order_indexes", allow_empty=True)
        check.number("latency_ms", optional=True, maximum=MAX_TS_MS)
        check.text("reason", optional=self.status == FILLED)
        if self.filled_size > 0 and self.avg_price is None:
            raise BusMessageError("hedge outcome: avg_price is required when filled_size > 0")

    def to_json(self) -> str:
        return _dump(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> HedgeOutcome:
        return _load(cls, raw)


@dataclass(frozen=True)
class PauseState:
    """Why and since when A is paused, and who paused it ("A", "ctl", ...)."""

    reason: str
    by: str
    since_ms: int

    TYPE: ClassVar[str] = "pause"

    def __post_init__(self) -> None:
        check = _Check("pause state", self)
        check.text("reason", "by")
        check.integer("since_ms", maximum=MAX_TS_MS)

    def to_json(self) -> str:
        return _dump(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> PauseState:
        return _load(cls, raw)


# ---------------------------------------------------------------------------------------------------------
# Encoding


def _dump(message: Any) -> str:
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "type": message.TYPE}
    for f in fields(message):
        value = getattr(message, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        body[f.name] = value
    return json.dumps(body, separators=(",", ":"))


def _load(cls: Any, raw: str | bytes) -> Any:
    what = cls.TYPE.replace("_", " ")
    try:
        return _load_checked(cls, what, raw)
    except BusMessageError:
        raise
    except Exception as exc:
        # Whatever else decoding raises (RecursionError on deeply nested JSON, ValueError on an integer of
        # thousands of digits, ...) is still a poison message: the caller dead-letters or skips it. Letting
        # it escape would crash the reader, and again at every restart while the entry stays pending.
        raise BusMessageError(f"{what}: unreadable ({type(exc).__name__}: {_shorten(str(exc))})") from None


def loads_bounded(raw: str | bytes, what: str = "message") -> Any:
    """`json.loads(raw)` for untrusted input: `BusMessageError` for anything that is not readable JSON
    (including nesting deeper than `MAX_JSON_DEPTH`: see `hedge_strategy.untrusted_json`)."""
    try:
        return loads_untrusted(raw, what)
    except UntrustedJSONError as exc:
        raise BusMessageError(str(exc)) from None


def _load_checked(cls: Any, what: str, raw: str | bytes) -> Any:
    body = loads_bounded(raw, what)
    if not isinstance(body, dict):
        raise BusMessageError(f"{what}: expected a JSON object, got {type(body).__name__}")
    if type(body.get("v")) is not int or body["v"] != SCHEMA_VERSION:
        raise BusMessageError(
            f"{what}: unsupported version {body.get('v')!r} (this build reads v{SCHEMA_VERSION})"
        )
    if body.get("type") != cls.TYPE:
        raise BusMessageError(f"{what}: expected type {cls.TYPE!r}, got {body.get('type')!r}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(body) - set(names) - {"v", "type"})
    if unknown:
        raise BusMessageError(f"{what}: unknown field(s) {', '.join(unknown)}")
    # Fields added after v1 shipped carry a default and may be absent (a message from an older writer).
    missing = sorted(n for n in names if n not in body and n not in _OPTIONAL_FIELDS.get(cls.TYPE, ()))
    if missing:
        raise BusMessageError(f"{what}: missing field(s) {', '.join(missing)}")
    values = {name: _decode_field(what, name, body[name], cls) for name in names if name in body}
    return cls(**values)


def _decode_field(what: str, name: str, value: Any, cls: Any) -> Any:
    """JSON value -> Python value for the field's declared kind; the dataclass then validates ranges."""
    kind = _FIELD_KINDS[cls.TYPE].get(name)
    if kind == "decimal":
        if value is None:
            return None
        if not isinstance(value, str):
            raise BusMessageError(f"{what}: {name} must be a decimal string, got {value!r}")
        try:
            return Decimal(value)
        except InvalidOperation:
            raise BusMessageError(f"{what}: {name} is not a decimal number: {value!r}") from None
    if kind == "list":
        if not isinstance(value, list):
            raise BusMessageError(f"{what}: {name} must be a list, got {value!r}")
        return tuple(value)
    return value


_OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {HedgeRequest.TYPE: ("seen_ts_us",)}

_FIELD_KINDS: dict[str, dict[str, str]] = {
    HedgeRequest.TYPE: {"size": "decimal", "a_fill_price": "decimal", "trade_ids": "list"},
    HedgeOutcome.TYPE: {
        "requested_size": "decimal",
        "filled_size": "decimal",
        "avg_price": "decimal",
        "request_ids": "list",
        "hedge_client_order_indexes": "list",
    },
    PauseState.TYPE: {},
}


class _Check:
    """Field validation for a message's __post_init__: raises BusMessageError naming the field."""

    def __init__(self, what: str, message: Any) -> None:
        self.what = what
        self.message = message

    def _fail(self, name: str, expected: str) -> None:
        shown = _shorten(repr(getattr(self.message, name)))
        raise BusMessageError(f"{self.what}: {name} must be {expected}, got {shown}")

    def text(self, *names: str, optional: bool = False) -> None:
        for name in names:
            value = getattr(self.message, name)
            if not (value is None and optional) and (not isinstance(value, str) or not value.strip()):
                self._fail(name, "a non-empty string")

    def _as_tuple(self, name: str) -> Any:
        value = getattr(self.message, name)
        if isinstance(value, list):  # callers may pass lists; the message keeps an immutable tuple
            value = tuple(value)
            object.__setattr__(self.message, name, value)
        return value

    def texts(self, name: str) -> None:
        value = self._as_tuple(name)
        if not isinstance(value, tuple) or not value or not all(isinstance(v, str) and v for v in value):
            self._fail(name, "a non-empty list of non-empty strings")

    def integer(self, *names: str, optional: bool = False, maximum: int = MAX_INT64) -> None:
        for name in names:
            value = getattr(self.message, name)
            if value is None and optional:
                continue
            if not _bounded_int(value, maximum):
                self._fail(name, f"an integer >= 0 and <= {maximum}")

    def integers(self, name: str, allow_empty: bool = True) -> None:
        value = self._as_tuple(name)
        ok = isinstance(value, tuple) and (allow_empty or value)
        if not ok or not all(_bounded_int(v, MAX_INT64) for v in value):
            self._fail(name, f"a list of integers >= 0 and <= {MAX_INT64}")

    def number(self, name: str, maximum: float, optional: bool = False) -> None:
        value = getattr(self.message, name)
        if value is None and optional:
            return
        # `not 0 <= value < maximum` is also true for NaN, which compares false to everything.
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < maximum:
            self._fail(name, f"a number >= 0 and below {maximum:g}")

    def decimal(self, name: str, positive: bool, optional: bool = False) -> None:
        value = getattr(self.message, name)
        if value is None and optional:
            return
        ok = (
            isinstance(value, Decimal)
            and value.is_finite()
            and (value > 0 if positive else value >= 0)
            and value < MAX_DECIMAL
            and int(value.as_tuple().exponent) >= -MAX_FRACTION_DIGITS
        )
        if not ok:
            self._fail(
                name,
                ("a decimal > 0" if positive else "a decimal >= 0")
                + f" below 1E+12 with at most {MAX_FRACTION_DIGITS} fractional digits",
            )

    def choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self.message, name)
        if not isinstance(value, str) or value not in choices:
            self._fail(name, f"one of {', '.join(choices)}")
        # Enum members (Side.BUY) become plain strings: equality and JSON then survive a round trip.
        object.__setattr__(self.message, name, str(value))


def _bounded_int(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN_CHARS else f"{text[:_MAX_SHOWN_CHARS]}... ({len(text)} chars)"


def decode_text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes replies or not (bad UTF-8 replaced, not raised)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def decode_fields(fields_: Mapping[Any, Any] | None) -> dict[str, str]:
    return {decode_text(k): decode_text(v) for k, v in (fields_ or {}).items()}

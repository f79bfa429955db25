"""The messages A and B exchange over Redis: versioned JSON, validated strictly in both directions.

Every message is a JSON object with `"v": 1` and a `"type"`; sizes and prices are decimal strings;
timestamps are integer milliseconds since the epoch. Each message is a validated record
(`hedge_strategy.validation`): constructing one, `dataclasses.replace` and `from_json` check every field and
raise `BusMessageError` (a `ValueError`) naming the field on anything wrong; `from_json` also rejects unknown
and missing fields, so a message that parses is safe to act on.

Numbers are bounded, not only typed: a schema-valid "1E+40" would otherwise reach the exchange arithmetic
and raise there, where nothing dead-letters it. Decimals are finite, below 10^12, with at most 18 fractional
digits; timestamps are 0..10^14 ms (0..10^17 µs); order indexes, trade ids and other integers fit an int64.
`from_json` reads the text with the bounded reader (`hedge_strategy.untrusted_json`) before any model sees
it, and turns *any* failure (deep nesting, a 5,000-digit integer) into `BusMessageError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self, TypeVar

from loguru import logger
from pydantic import BeforeValidator, Field, Strict, ValidationError, model_validator

from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted, shorten
from hedge_strategy.validation import (
    Problem,
    Text,
    broken_rule,
    choice,
    expected,
    expecting,
    problems,
    record,
)

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


class BusMessageError(ValueError):
    """A message that does not follow the schema. The text says which field and why."""


# ---------------------------------------------------------------------------------------------------------
# Field types: the bounds above, declared once.


def _count(maximum: int) -> Any:
    """An int 0..maximum (never a bool, never "5")."""
    return Annotated[int, Strict(), Field(ge=0, le=maximum), expecting(f"an integer >= 0 and <= {maximum}")]


def _from_wire(value: Any) -> Any:
    """A decimal arrives as a string (a JSON number would lose digits in other readers) or as a Decimal."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value  # refused by the Decimal schema, in the words of the whole type
    if not isinstance(value, Decimal):
        raise expected("a decimal string", value)
    return value


def _decimal_words(positive: bool) -> str:
    return ("a decimal > 0" if positive else "a decimal >= 0") + \
        f" below 1E+12 with at most {MAX_FRACTION_DIGITS} fractional digits"


def _decimal(positive: bool) -> Any:
    bound = Field(gt=0) if positive else Field(ge=0)
    return Annotated[Decimal, Strict(), bound, Field(lt=MAX_DECIMAL, decimal_places=MAX_FRACTION_DIGITS),
                     BeforeValidator(_from_wire), expecting(_decimal_words(positive))]


Int64 = _count(MAX_INT64)
TimestampMs = _count(MAX_TS_MS)
TimestampUs = _count(MAX_TS_US)
PositiveDecimal = _decimal(positive=True)  # sizes of requests, prices
# Positions: + long, - short.
SignedDecimal = Annotated[Decimal, Strict(), Field(gt=-MAX_DECIMAL, lt=MAX_DECIMAL,
                                                   decimal_places=MAX_FRACTION_DIGITS),
                          BeforeValidator(_from_wire),
                          expecting("a decimal above -1E+12 and below 1E+12 with at most "
                                    f"{MAX_FRACTION_DIGITS} fractional digits")]
NonNegativeDecimal = _decimal(positive=False)  # sizes of outcomes (a failure may fill nothing)
SideName = choice(*SIDES)
Int64s = Annotated[tuple[Int64, ...], expecting(f"a list of integers >= 0 and <= {MAX_INT64}")]
Texts = Annotated[tuple[Text, ...], Field(min_length=1), expecting("a non-empty list of non-empty strings")]
Latency = Annotated[float, Strict(), Field(ge=0, lt=MAX_TS_MS),
                    expecting(f"a number >= 0 and below {MAX_TS_MS:g}")]
Flag = Annotated[bool, Strict(), expecting("true or false")]


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


class _Message:
    """JSON in and out for the message records below; `message` makes a class one of them."""

    TYPE: ClassVar[str]

    def to_json(self) -> str:
        fields = self.__pydantic_serializer__.to_python(self, mode="json")  # type: ignore[attr-defined]
        return json.dumps({"v": SCHEMA_VERSION, "type": self.TYPE, **fields}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Self:
        return cls._read(raw)

    @classmethod
    def _read(cls, raw: str | bytes, without: tuple[str, ...] = ()) -> Self:
        """The message in `raw`, its fields named in `without` left out."""
        what = cls.TYPE.replace("_", " ")
        try:
            body = loads_bounded(raw, what)
            if not isinstance(body, dict):
                raise BusMessageError(f"{what}: expected a JSON object, got {type(body).__name__}")
            version, kind = body.pop("v", None), body.pop("type", None)
            if type(version) is not int or version != SCHEMA_VERSION:
                raise BusMessageError(
                    f"{what}: unsupported version {version!r} (this build reads v{SCHEMA_VERSION})"
                )
            if kind != cls.TYPE:
                raise BusMessageError(f"{what}: expected type {cls.TYPE!r}, got {kind!r}")
            return cls(**{k: v for k, v in body.items() if k not in without})
        except BusMessageError:
            raise
        except Exception as exc:
            # Whatever else decoding raises is still a poison message: the caller dead-letters or skips it.
            # Letting it escape would crash the reader, and again at every restart while the entry is pending.
            raise BusMessageError(f"{what}: unreadable ({type(exc).__name__}: {shorten(str(exc))})") from None


T = TypeVar("T")


def message(cls: type[T]) -> type[T]:
    """`cls` as a validated record whose every construction raises `BusMessageError`, naming the field."""
    cls = record(cls)
    validate: Callable[..., None] = cls.__init__  # type: ignore[misc]
    what = cls.TYPE.replace("_", " ")  # type: ignore[attr-defined]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as error:
            raise BusMessageError(f"{what}: " + "; ".join(_phrases(problems(error)))) from None

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def _phrases(found: list[Problem]) -> list[str]:
    unknown = sorted(p.key for p in found if p.kind == "unknown")
    missing = sorted(p.key for p in found if p.kind == "missing")
    return [
        *([f"unknown field(s) {', '.join(unknown)}"] if unknown else []),
        *([f"missing field(s) {', '.join(missing)}"] if missing else []),
        *(f"{p.key} must be {p.text}, got {shorten(repr(p.given))}" for p in found if p.kind == "expected"),
        *(p.text for p in found if p.kind == "rule"),
    ]


def loads_bounded(raw: str | bytes, what: str = "message") -> Any:
    """`json.loads(raw)` for untrusted input: `BusMessageError` for anything that is not readable JSON
    (including nesting deeper than `MAX_JSON_DEPTH`: see `hedge_strategy.untrusted_json`)."""
    try:
        return loads_untrusted(raw, what)
    except UntrustedJSONError as exc:
        raise BusMessageError(str(exc)) from None


@message
class RestingSnapshot(_Message):
    """A's resting maker order as A named it for B's wash guard (`bus.resting`) when it published a request:
    the order, or none at all (every field null). Carried by a first-published request
    (`HedgeRequest.a_resting`, `bus.first_publish`) so that B bounds its first IOC without reading the key."""

    client_order_index: Int64 | None = None
    side: SideName | None = None
    price: PositiveDecimal | None = None
    size: PositiveDecimal | None = None  # None with an order: A did not publish its size (B keeps the bound)

    TYPE: ClassVar[str] = "maker_resting"

    @model_validator(mode="after")
    def _whole(self) -> RestingSnapshot:
        named = (self.client_order_index, self.side, self.price)
        if any(v is not None for v in named) and any(v is None for v in named):
            raise broken_rule("client_order_index, side and price are given together or not at all")
        if self.size is not None and self.client_order_index is None:
            raise broken_rule("size without an order")
        return self


# Fields of a request that only speed B up (`bus.first_publish`): a malformed one is logged and read as
# absent, which is B's careful path, rather than dead-lettering the hedge of a real fill.
HINTS = ("first_publish", "a_resting")


@message
class HedgeRequest(_Message):
    """A asks B to hedge: B must trade `side` for `size` on `market`.

    `side` is the side **B** trades, the opposite of A's fill side (A bought, so B sells). Build one with
    `for_fills` (which takes A's fill side and derives the rest) or `for_residual`.
    """

    pair: Text
    request_id: Text  # `request_id_for(a_client_order_index, trade_ids)`, checked
    market: Text  # symbol, e.g. "BTC"
    market_id: Int64
    side: SideName  # the side B must trade
    size: PositiveDecimal  # base amount
    a_client_order_index: Int64
    trade_ids: Int64s  # A's fills this covers; empty for a residual hedge
    a_fill_price: PositiveDecimal | None  # size-weighted average price of those fills; None for a residual
    fill_ts_ms: TimestampMs  # exchange time of the (last) fill, or when the residual was seen
    publish_ts_ms: TimestampMs = 0  # stamped by Bus.publish_request when left at 0
    seen_ts_us: TimestampUs = 0  # when A saw the fill (µs since the epoch; 0: not stamped), for benchmarks
    # Set by A's outbox on the one publish of a request nothing can have answered yet (`bus.first_publish`: B
    # then skips its stored-outcome check); false or absent: any other publish, and B checks.
    first_publish: Flag = False
    # A's resting order when it published a first-published request (None: not carried, B reads the key).
    a_resting: RestingSnapshot | None = None

    TYPE: ClassVar[str] = "hedge_request"

    @classmethod
    def from_json(cls, raw: str | bytes) -> Self:
        """As `_Message.from_json`; malformed hints (`HINTS`) are logged and read as absent."""
        try:
            return cls._read(raw)
        except BusMessageError as error:
            try:
                request = cls._read(raw, without=HINTS)
            except BusMessageError:
                raise error from None  # not (only) the hints: the whole reason
            logger.warning("hedge request {}: its fast-path field(s) ignored ({}); read without them, so B "
                           "checks it the careful way", request.request_id, error)
            return request

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

    @model_validator(mode="after")
    def _consistent(self) -> HedgeRequest:
        if self.trade_ids and self.a_fill_price is None:
            raise expected(_decimal_words(positive=True), None, key="a_fill_price")
        wanted = request_id_for(self.a_client_order_index, self.trade_ids)
        if self.request_id != wanted:
            raise broken_rule(f"request_id {shorten(repr(self.request_id))} does not match its order and "
                              f"fills (expected {wanted!r})")
        return self


@message
class PositionReport(_Message):
    """B's position in one market as B's own stream reported it, published when B could act on it (the
    stream up, the position reported after B's last fill: `OrderTracker.stream_position`), so that A need not
    read it over REST every cycle. `as_of_ms`: B's clock when B judged it current. Carried by B's outcomes
    (`HedgeOutcome.b_position`) and heartbeat (`"position"`)."""

    market_id: Int64
    size: SignedDecimal  # + long, - short
    as_of_ms: TimestampMs

    TYPE: ClassVar[str] = "position"

    @classmethod
    def from_wire(cls, value: Any) -> PositionReport | None:
        """A report from a heartbeat's `"position"` (None when absent); BusMessageError when malformed."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise BusMessageError(f"position: expected a JSON object, got {type(value).__name__}")
        return cls(**value)

    def to_wire(self) -> dict[str, Any]:
        """What `from_wire` reads back (a heartbeat's `"position"`)."""
        return {"market_id": self.market_id, "size": str(self.size), "as_of_ms": self.as_of_ms}


@message
class HedgeOutcome(_Message):
    """B's answer to one or more requests (B nets requests waiting together into one hedge).

    `filled`: the hedge is done (`filled_size` at `avg_price`). `failed`: B gave up, `reason` says why, and
    `filled_size` may still be non-zero (a partial hedge). Requests of opposite sides that net to nothing are
    answered `filled` with `requested_size` and `filled_size` 0 and no order. `latency_ms` is B's measure
    from the earliest request's publish to its first hedge order being sent.
    """

    pair: Text
    request_ids: Texts
    status: choice(*OUTCOME_STATUSES)
    market: Text
    side: SideName  # the side B traded
    requested_size: NonNegativeDecimal  # net size of the requests answered
    filled_size: NonNegativeDecimal
    avg_price: PositiveDecimal | None  # None when nothing filled
    attempts: Int64  # hedge orders sent
    reason: Text | None  # required when failed
    hedge_client_order_indexes: Int64s
    received_ts_ms: TimestampMs  # B read the (first) request
    sent_ts_ms: TimestampMs | None  # B's first hedge order went out
    filled_ts_ms: TimestampMs | None  # the hedge completed
    latency_ms: Latency | None
    publish_ts_ms: TimestampMs = 0  # stamped by Bus.publish_outcome when left at 0
    # B's position once this hedge shows in it (None: B's stream could not say in time, or an older B, or an
    # outcome B did not write): A then reads B's position over REST.
    b_position: PositionReport | None = None

    TYPE: ClassVar[str] = "hedge_outcome"

    @classmethod
    def unhedged(cls, request: HedgeRequest, reason: str) -> HedgeOutcome:
        """`failed` with `reason` for a request answered without B hedging it (superseded by `hedgectl
        clear`, withdrawn by A): stored like B's outcomes, so a B that reads the request later only
        acknowledges it."""
        return cls(
            pair=request.pair, request_ids=(request.request_id,), status=FAILED, market=request.market,
            side=request.side, requested_size=request.size, filled_size=Decimal(0), avg_price=None,
            attempts=0, reason=reason, hedge_client_order_indexes=(), received_ts_ms=now_ms(),
            sent_ts_ms=None, filled_ts_ms=None, latency_ms=None)

    @property
    def filled(self) -> bool:
        return self.status == FILLED

    @model_validator(mode="after")
    def _consistent(self) -> HedgeOutcome:
        if self.status == FAILED and self.reason is None:
            raise expected("a non-empty string", None, key="reason")
        if self.filled_size > 0 and self.avg_price is None:
            raise broken_rule("avg_price is required when filled_size > 0")
        return self


@message
class PauseState(_Message):
    """Why and since when A is paused, and who paused it ("A", "ctl", ...)."""

    reason: Text
    by: Text
    since_ms: TimestampMs

    TYPE: ClassVar[str] = "pause"


def decode_text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes replies or not (bad UTF-8 replaced, not raised)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def decode_fields(fields_: Mapping[Any, Any] | None) -> dict[str, str]:
    return {decode_text(k): decode_text(v) for k, v in (fields_ or {}).items()}

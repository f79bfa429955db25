"""Lighter wire shapes (REST model dicts, WebSocket frames) → typed events.

Everything here is tolerant: unknown keys are ignored, and a malformed item raises `ValueError` (or
`KeyError`/`TypeError`/`decimal.InvalidOperation`, all caught by `parse_items`) so the caller can log and skip
that one item instead of losing the whole frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from loguru import logger

from hedge_strategy.exchange.events import (
    AllPositions,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    PublicTrade,
    Side,
)
from hedge_strategy.exchange.statuses import order_facts
from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted

# Trade fees (`maker_fee` / `taker_fee`) are fee RATES in millionths of the notional: 28 = 0.28 bps.
# Inferred from captures, not documented: the same 28 (maker) and 196 (taker) appear on trades of 1.18, 291
# and 314 USD notional and match the premium schedule (0.28 / 1.96 bps); 28 also on 0.14 and 1646 USD, and
# every liquidation carries 10000, the market's 1 % liquidation fee (tests/wire/README.md, fact 5), so they
# cannot be amounts. Left out of the trade when zero. Converted to USDC here only (`fee_usdc`).
FEE_RATE_SCALE = Decimal("1e-6")
# Order `timestamp`, `created_at`, `updated_at` are seconds in every captured frame (10 digits; tests/wire/
# ws/account_all_orders/qubx_mainnet-225671-2025-10-12.jsonl and hftbacktest_testnet-516-2026-07-30.jsonl,
# rest/accountActiveOrders/hftbacktest_testnet-2026-08-01.jsonl, rest/accountInactiveOrders/
# ccxt_testnet-2025-12-22.jsonl) and ms in the docs-following fixtures (13 digits: rest/accountOrders/
# nautilus_schema-fixture.jsonl, ws/account_orders/nautilus_update.jsonl); trade `timestamp` is ms in every
# capture and seconds in the old docs example (ws/trade/docs_update.jsonl). 10^11 seconds is the year 5138 and
# 10^11 ms is 1973, so a value below 10^11 can only be seconds (tests/wire/README.md, fact 4). One rule, here.
SECONDS_BELOW = 10**11
# `transaction_time` is µs on every captured order and trade (16 digits: ws/account_all_orders/
# hftbacktest_testnet-516-2026-07-30.jsonl, rest/accountActiveOrders/hftbacktest_testnet-2026-08-01.jsonl,
# ws/trade/hftbacktest_*). 10^14 µs is 1973 and 10^14 ms the year 5138: at or above it a value is µs; below,
# it is read as ms or seconds by SECONDS_BELOW, so no unit can turn a newer report into an older one.
MICROS_FROM = 10**14
PARSE_ERRORS = (ValueError, KeyError, TypeError, InvalidOperation, AttributeError)

T = TypeVar("T")


def to_decimal(value: Any, default: Decimal | None = None) -> Decimal:
    if value is None or value == "":
        if default is None:
            raise ValueError("missing decimal value")
        return default
    if isinstance(value, float):
        value = repr(value)  # never through binary float rounding
    result = Decimal(str(value))
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def to_int(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"not an integer: {value!r}")
        return int(value)
    return int(value)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "0", "1"):
        return value.lower() in ("true", "1")
    raise ValueError(f"not a boolean: {value!r}")


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict from a dict or an SDK pydantic model (lenient models may carry None fields)."""
    if isinstance(obj, Mapping):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    raise TypeError(f"cannot read {type(obj).__name__} as a dict")


def fee_usdc(rate_millionths: Any, size: Decimal, price: Decimal) -> Decimal:
    """The USDC a fill paid: rate x 1e-6 x size x price (see FEE_RATE_SCALE); a missing rate is zero."""
    return to_decimal(rate_millionths, Decimal(0)) * FEE_RATE_SCALE * size * price


def timestamp_ms(value: Any) -> int:
    """An order or trade timestamp in ms, whether the venue sent seconds or ms (see SECONDS_BELOW)."""
    number = to_int(value)
    return number * 1000 if 0 < number < SECONDS_BELOW else number


def order_update(raw: Any, account_index: int | None = None) -> OrderUpdate:
    """An `Order` model dict → OrderUpdate."""
    order = as_dict(raw)
    owner = order.get("owner_account_index")
    status = str(order["status"])
    state, end_reason = order_facts(status)
    return OrderUpdate(
        account_index=to_int(owner) if owner is not None else _required(account_index, "owner_account_index"),
        market_id=to_int(order["market_index"]),
        client_order_index=to_int(order.get("client_order_index") or 0),
        order_index=to_int(order["order_index"]),
        side=_order_side(order),
        state=state,
        end_reason=end_reason,
        price=to_decimal(order["price"]),
        initial_size=to_decimal(order["initial_base_amount"]),
        filled_size=to_decimal(order.get("filled_base_amount"), Decimal(0)),
        remaining_size=to_decimal(order.get("remaining_base_amount"), Decimal(0)),
        ts_ms=_order_ts_ms(order),
        venue_status=status,
    )


def _order_side(order: Mapping[str, Any]) -> Side:
    # `is_ask` decides: the venue's `side` text can be "" (captured), the SDK marks it "TODO: remove this".
    if order.get("is_ask") is not None:
        return Side.from_is_ask(to_bool(order["is_ask"]))
    return Side(str(order["side"]).lower())


def fills_for_account(raw: Any, account_index: int) -> list[Fill]:
    """A `Trade` model dict → the Fill(s) of `account_index` in it (none if the account is not a party).

    A self-trade (both sides ours) yields two fills with the same trade id. A trade without our side's client
    order index (older captures have no `ask_client_id` / `bid_client_id`), or with 0 there, gives a fill
    whose `client_order_index` is None: the tracker matches it by the exchange order index.
    """
    trade = as_dict(raw)
    fills: list[Fill] = []
    is_maker_ask = to_bool(trade["is_maker_ask"])
    for side, prefix in ((Side.BUY, "bid"), (Side.SELL, "ask")):
        party = trade.get(f"{prefix}_account_id")
        if party is None or to_int(party) != account_index:
            continue
        is_maker = is_maker_ask if side is Side.SELL else not is_maker_ask
        size, price = to_decimal(trade["size"]), to_decimal(trade["price"])
        fills.append(Fill(
            account_index=account_index,
            market_id=to_int(trade["market_id"]),
            trade_id=to_int(trade["trade_id"]),
            order_index=to_int(trade[f"{prefix}_id"]),
            client_order_index=_client_index(trade.get(f"{prefix}_client_id")),
            side=side,
            size=size,
            price=price,
            is_maker=is_maker,
            fee=fee_usdc(trade.get("maker_fee" if is_maker else "taker_fee"), size, price),
            ts_ms=timestamp_ms(trade["timestamp"]),
        ))
    return fills


def public_trade(raw: Any) -> PublicTrade:
    """One trade of the public `trade/{market}` channel (captured shapes: tests/wire/ws/trade)."""
    trade = as_dict(raw)
    size, price = to_decimal(trade["size"]), to_decimal(trade["price"])
    if size <= 0 or price <= 0:
        raise ValueError(f"trade size {size} / price {price} not positive")
    return PublicTrade(
        market_id=to_int(trade["market_id"]),
        trade_id=to_int(trade["trade_id"]),
        size=size,
        price=price,
        ask_account_id=to_int(trade["ask_account_id"]),
        bid_account_id=to_int(trade["bid_account_id"]),
        ask_client_id=_client_index(trade.get("ask_client_id")),
        bid_client_id=_client_index(trade.get("bid_client_id")),
        is_maker_ask=to_bool(trade["is_maker_ask"]),
        ts_ms=timestamp_ms(trade["timestamp"]),
    )


def public_trades(frame: Mapping[str, Any]) -> Iterator[PublicTrade]:
    """The trades of a `trade` channel frame: `trades` and `liquidation_trades`, plain lists (captured). A
    liquidation fills a resting order like any taker (hftbacktest's capture: its maker pays the maker fee),
    so it can be A's fill. A malformed trade is logged and skipped."""
    yield from parse_items(frame.get("trades"), public_trade, "public trade")
    if frame.get("liquidation_trades") is not None:
        yield from parse_items(frame.get("liquidation_trades"), public_trade, "public liquidation trade")


def _client_index(value: Any) -> int | None:
    """A trade's client order index for one side: None when absent or 0 (0 is never an order of ours)."""
    if value is None:
        return None
    return to_int(value) or None


def position_snapshot(raw: Any, account_index: int, market_id: int | None = None) -> PositionSnapshot:
    """An `AccountPosition` model dict → PositionSnapshot with a signed size.

    The size decides flatness: captures show a flat position as sign 1 with position "0.00".
    """
    position = as_dict(raw)
    sign = to_int(position.get("sign", 0) or 0)
    size = to_decimal(position.get("position"), Decimal(0))
    return PositionSnapshot(
        account_index=account_index,
        market_id=to_int(position["market_id"]) if position.get("market_id") is not None
        else _required(market_id, "market_id"),
        size=Decimal(0) if size == 0 or sign == 0 else (-size if sign < 0 else size),
        avg_entry_price=to_decimal(position.get("avg_entry_price"), Decimal(0)),
        unrealized_pnl=to_decimal(position.get("unrealized_pnl"), Decimal(0)),
        realized_pnl=to_decimal(position.get("realized_pnl"), Decimal(0)),
    )


def parse_items(items: Any, parse: Callable[[Any], T], what: str) -> Iterator[T]:
    """Parse each item of a list, logging and skipping the malformed ones."""
    if not isinstance(items, list):
        logger.warning("ws frame: {} is not a list ({}); skipped", what, type(items).__name__)
        return
    for item in items:
        try:
            yield parse(item)
        except PARSE_ERRORS as exc:
            logger.warning("ws frame: malformed {} skipped ({}: {})", what, type(exc).__name__, exc)


def by_market(payload: Any, what: str) -> Iterator[tuple[int | None, Any]]:
    """Walk `{"<market_id>": value}` maps (the account channels' layout), tolerating a plain list too."""
    if isinstance(payload, list):
        for value in payload:
            yield None, value
        return
    if not isinstance(payload, Mapping):
        if payload is not None:
            logger.warning("ws frame: {} is neither a map nor a list; skipped", what)
        return
    for key, value in payload.items():
        try:
            market_id: int | None = int(key)
        except (TypeError, ValueError):
            logger.warning("ws frame: {} keyed by non-numeric market {!r}; skipped", what, key)
            continue
        yield market_id, value


AccountEvent = OrderUpdate | Fill | PositionSnapshot


def account_events(frame: Mapping[str, Any], account_index: int) -> Iterator[AccountEvent]:
    """The events of `account_index` in an account channel frame (`account_all_orders`, `account_all_trades`,
    `account_all_positions`, and `account_all`, which carries trades and positions): orders, then fills,
    then positions, each keyed by market as `{"<market_id>": ...}`. Malformed items are logged and skipped.
    """
    for _, orders in by_market(frame.get("orders"), "orders"):
        for update in parse_items(orders, lambda raw: order_update(raw, account_index), "order"):
            if update.account_index == account_index:
                yield update
    for _, trades in by_market(frame.get("trades"), "trades"):
        for fills in parse_items(trades, lambda raw: fills_for_account(raw, account_index), "trade"):
            yield from fills
    for market_id, value in by_market(frame.get("positions"), "positions"):
        items = value if isinstance(value, list) else [value]
        yield from parse_items(
            items, lambda raw, m=market_id: position_snapshot(raw, account_index, m), "position")


def all_positions(frame: Mapping[str, Any], account_index: int) -> AllPositions | None:
    """A positions snapshot frame (`subscribed/account_all_positions`) as the account's whole set, or None
    (logged) when an item of it is malformed: a set missing a market would read that market as flat, so a
    damaged snapshot is not taken as the whole set (the caller applies its readable items one by one)."""
    found: list[PositionSnapshot] = []
    for market_id, value in by_market(frame.get("positions"), "positions"):
        for raw in value if isinstance(value, list) else [value]:
            try:
                found.append(position_snapshot(raw, account_index, market_id))
            except PARSE_ERRORS as exc:
                logger.warning("ws frame: malformed position in the positions snapshot ({}: {}); the "
                               "snapshot is not taken as the whole set", type(exc).__name__, exc)
                return None
    return AllPositions(account_index, tuple(found))


def decode_frame(text: str | bytes) -> dict[str, Any] | None:
    """JSON text → frame dict, or None (logged) when it is not a JSON object with a string `type`.

    The one exception is the venue's error frame, `{"error": {"code": .., "message": ..}}`, which has no
    `type` (every error captured on the venue has that form; see `ws_error`).
    """
    try:
        frame = loads_untrusted(text, "ws frame")
    except UntrustedJSONError as exc:
        logger.warning("{}; skipped: {!r}", exc, _clip(text))
        return None
    if not isinstance(frame, dict):
        logger.warning("ws frame: not a JSON object; skipped: {!r}", _clip(text))
        return None
    kind = frame.get("type")
    if not isinstance(kind, str) and not (kind is None and isinstance(frame.get("error"), Mapping)):
        logger.warning("ws frame: no string 'type'; skipped: {!r}", _clip(text))
        return None
    return frame


@dataclass(frozen=True)
class WsError:
    """An error frame: its code (None when it has none), message, and the channel it names, if any."""

    code: int | None
    message: str
    channel: str | None  # 'name:arg' form, or None when the frame does not say


# Captured error frames carry no channel field but name the channel at the end of the message, in the
# colon form: "Already Subscribed to : order_book:0", "invalid auth: expired token: account_all_orders:1".
_CHANNEL_IN_MESSAGE = re.compile(r"([a-z][a-z_]*[:/][0-9]+)\s*$")


def ws_error(frame: Mapping[str, Any]) -> WsError | None:
    """The error a frame carries, in either form the venue uses, else None.

    `{"type": "error", "code": .., "message": .., "channel": ..}` (the simulator; Nautilus' tests) and
    `{"error": {"code": .., "message": ..}}` without a type (every error captured on the venue).
    """
    if frame.get("type") == "error":
        body: Mapping[str, Any] = frame
    elif frame.get("type") is None and isinstance(frame.get("error"), Mapping):
        body = frame["error"]
    else:
        return None
    raw_code = body.get("code")
    try:
        code: int | None = to_int(raw_code)
    except (ValueError, TypeError):
        code = None
    message = str(body.get("message", ""))[:200]
    channel = body.get("channel", frame.get("channel"))
    if not isinstance(channel, str) or not channel:
        found = _CHANNEL_IN_MESSAGE.search(message)
        channel = found.group(1) if found else None
    return WsError(code, message, channel_key(channel) if channel else None)


def shutdown_delay_s(frame: Mapping[str, Any]) -> float:
    """Seconds until the close a `{"type": "shutdown", "close_in_ms": N}` frame announces (0 if unreadable).

    The frame's shape is the SDK's (`WsClient.handle_shutdown`); none was found captured.
    """
    try:
        return max(0.0, to_int(frame.get("close_in_ms")) / 1000)
    except (ValueError, TypeError):
        return 0.0


def channel_key(channel: str) -> str:
    """Subscribe names use '/', server replies use ':': normalise both to 'name:arg'."""
    return channel.replace("/", ":", 1)


def transaction_time_ms(value: Any) -> int:
    """A `transaction_time` in ms: µs as captured, or ms / seconds by magnitude (see MICROS_FROM)."""
    number = to_int(value)
    return number // 1000 if number >= MICROS_FROM else timestamp_ms(number)


def _order_ts_ms(order: Mapping[str, Any]) -> int:
    """When the order last changed, in ms: its `transaction_time` where the venue sends one, else
    `updated_at`, `timestamp` or `created_at`.

    Verified (ws/account_all_orders/hftbacktest_testnet-516-2026-07-30.jsonl): `updated_at` is whole seconds
    of block time and lags `transaction_time` (µs) by 4-8 s (lines 3, 13), and it does not always move when
    the order changes (line 4: a cancel with the same `updated_at`, only `transaction_time` moved). Read at
    1 s, a REST report begun before a streamed modify of the same second would count as current and put the
    old price back (`models.reported_price`). Every 2026 order capture, REST and WebSocket, carries
    `transaction_time`; the Oct and Dec 2025 ones have none (older API), hence the fallback.
    """
    micros = order.get("transaction_time")
    if micros:
        return transaction_time_ms(micros)
    for key in ("updated_at", "timestamp", "created_at"):
        value = order.get(key)
        if value:
            return timestamp_ms(value)
    return 0


def _required(value: int | None, name: str) -> int:
    if value is None:
        raise ValueError(f"missing {name}")
    return value


def _clip(text: str | bytes, limit: int = 200) -> str | bytes:
    return text if len(text) <= limit else text[:limit]

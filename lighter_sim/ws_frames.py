"""The frames the WebSocket `/stream` sends, shaped as the venue sends them.

Provenance, per frame (docs/design.md, "Simulator wire protocol", says the same):
- captured on mainnet (2026-07/08, public recordings): the order-book snapshot and update envelope (top-level
  keys `channel, last_updated_at, offset, order_book, timestamp, type`; `nonce` and `begin_nonce` only inside
  `order_book`; a snapshot's `begin_nonce` is 0), `connected` with a `session_id`, `pong`, `unsubscribed` (the
  one frame the venue spells with spaces), the nested errors 30003, 30005, 30009, and the sendtx answer;
- captured on testnet (2026-07): `account_all_orders`, `account_all_positions`, the `account_all_trades`
  snapshot, the auth refusals 20001 / 20013; captured on mainnet in Oct 2025: `account_all`;
- from Lighter's documentation only (websocket reference, Jan 2026 copy): the `account_all_trades` update and
  `account_orders`; the `shutdown` frame only from lighter-sdk's WsClient, which reads `close_in_ms`.
Top-level keys are in alphabetical order, as the venue's (Go map) encoder writes them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .errors import ALREADY_SUBSCRIBED

# The error codes are in lighter_sim/errors.py's one table (ALREADY_SUBSCRIBED, INVALID_CHANNEL, ...).
INVALID_CHANNEL_MESSAGE = "Invalid Channel"
INVALID_MARKET_MESSAGE = "Invalid Channel:  (marketId)"  # sic, two spaces: captured for ticker/99999
TOO_MANY_MESSAGES_MESSAGE = "Too Many Websocket Messages!"


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def nested_error(code: int, message: str) -> str:
    """The venue's error without a `type`: how every captured subscription error looks."""
    return dumps({"error": {"code": code, "message": message}})


def typed_error(code: int, message: str, channel: str | None = None) -> str:
    """The venue's other error form, `{"type":"error",...}` (public clients parse it; not captured)."""
    frame: dict[str, Any] = {"code": code}
    if channel is not None:
        frame["channel"] = channel
    frame |= {"message": message, "type": "error"}
    return dumps(frame)


def already_subscribed(channel: str) -> str:
    return nested_error(ALREADY_SUBSCRIBED, f"Already Subscribed to : {channel}")


def connected(session_id: str) -> str:
    return dumps({"session_id": session_id, "type": "connected"})


PING = dumps({"type": "ping"})
PONG = dumps({"type": "pong"})


def shutdown(close_in_ms: int) -> str:
    return dumps({"close_in_ms": close_in_ms, "type": "shutdown"})


def unsubscribed(channel: str) -> str:
    return json.dumps({"type": "unsubscribed", "channel": channel})  # captured with ", " and ": " separators


# --- order book -------------------------------------------------------------------------------------------

_OFFSET_MARK = -987654321  # a number no book frame carries otherwise; replaced by each connection's offset


class BookFrame:
    """One order-book frame serialized once; each connection gets it with its own `offset`."""

    def __init__(
        self,
        kind: str,
        market_id: int,
        asks: list[dict[str, str]],
        bids: list[dict[str, str]],
        nonce: int,
        begin_nonce: int,
        updated_us: int,
    ) -> None:
        frame = {
            "channel": f"order_book:{market_id}",
            "last_updated_at": updated_us,
            "offset": _OFFSET_MARK,
            "order_book": {
                "code": 0,
                "asks": asks,
                "bids": bids,
                "offset": _OFFSET_MARK,
                "nonce": nonce,
                "last_updated_at": updated_us,
                "begin_nonce": begin_nonce,
            },
            "timestamp": now_ms(),
            "type": f"{kind}/order_book",
        }
        self._parts = dumps(frame).split(f'"offset":{_OFFSET_MARK}')
        if len(self._parts) != 3:  # the mark must occur exactly twice: a bug here would corrupt every frame
            raise AssertionError("order book frame template lost its offset marks")

    def text(self, offset: int) -> str:
        mark = f'"offset":{offset}'
        return self._parts[0] + mark + self._parts[1] + mark + self._parts[2]


# --- account channels -------------------------------------------------------------------------------------


def account_all_orders(kind: str, account: int, orders: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "channel": f"account_all_orders:{account}",
        "orders": orders,
        "type": f"{kind}/account_all_orders",
    }


def account_orders(
    kind: str, market_id: int, account: int, nonce: int, orders: list[dict[str, Any]]
) -> dict[str, Any]:
    # The docs name the frame's channel by the market alone; the account is in `account` (not captured).
    return {
        "account": account,
        "channel": f"account_orders:{market_id}",
        "nonce": nonce,
        "orders": {str(market_id): orders},
        "type": f"{kind}/account_orders",
    }


def account_all_trades_update(account: int, trades: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"channel": f"account_all_trades:{account}", "trades": trades, "type": "update/account_all_trades"}


def public_trades(kind: str, market_id: int, nonce: int, trades: list[dict[str, Any]]) -> dict[str, Any]:
    """The public `trade:{market}` frame: keys, their order and the `subscribed/trade` / `update/trade` types
    as captured on mainnet (tests/wire/ws/trade: ccxt Nov 2025, hftbacktest and Nautilus 2026). The sim has no
    liquidations, so `liquidation_trades` is always empty (captured empty or not). Which nonce the venue puts
    here is not documented: the market's book nonce is the sim's choice (inferred, as for `account_orders`).
    Each trade is `ws_objects.ws_trade`, the account channels' object, checked field by field against the
    public ones: every field of TRADE_KEYS is in the hftbacktest Jul 2026 captures (with the `*_str` twins);
    `maker_fee`, `taker_position_size_before`, `maker_position_size_before`, the `*_entry_quote_before` and
    `*_initial_margin_fraction_before` fields are in ccxt's Nov 2025 one too; `ask_client_id` /
    `bid_client_id` are in ccxt's, Nautilus' and hftbacktest's, absent from qubx's Oct 2025 frames."""
    return {
        "channel": f"trade:{market_id}",
        "liquidation_trades": [],
        "nonce": nonce,
        "trades": trades,
        "type": f"{kind}/trade",
    }


def account_all_trades_snapshot(account: int, volumes: dict[str, float]) -> dict[str, Any]:
    """No past trades (the venue's snapshots carry none), only the account's traded volumes."""
    return {
        "channel": f"account_all_trades:{account}",
        "daily_volume": volumes["daily"],
        "monthly_volume": volumes["monthly"],
        "total_volume": volumes["total"],
        "trades": {},
        "type": "subscribed/account_all_trades",
        "weekly_volume": volumes["weekly"],
    }


def account_tx(account: int, txs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """`subscribed/account_tx` (txs None: the captured snapshot has no `txs`) or `update/account_tx`."""
    if txs is None:
        return {"channel": f"account_tx:{account}", "type": "subscribed/account_tx"}
    return {"channel": f"account_tx:{account}", "txs": txs, "type": "update/account_tx"}


def account_all_positions(kind: str, account: int, positions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "channel": f"account_all_positions:{account}",
        "positions": positions,
        "shares": [],
        "type": f"{kind}/account_all_positions",
    }


def account_all_update(
    account: int, positions: dict[str, dict[str, Any]], trades: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    return {
        "account": account,
        "channel": f"account_all:{account}",
        "funding_histories": {},
        "positions": positions,
        "shares": [],
        "trades": trades,
        "type": "update/account_all",
    }


def account_all_snapshot(
    account: int, positions: dict[str, dict[str, Any]], counts: dict[str, int], volumes: dict[str, float]
) -> dict[str, Any]:
    return {
        "account": account,
        "channel": f"account_all:{account}",
        "daily_trades_count": counts["daily"],
        "daily_volume": volumes["daily"],
        "funding_histories": {},
        "monthly_trades_count": counts["monthly"],
        "monthly_volume": volumes["monthly"],
        "positions": positions,
        "shares": [],
        "total_trades_count": counts["total"],
        "total_volume": volumes["total"],
        "trades": {},
        "type": "subscribed/account_all",
        "weekly_trades_count": counts["weekly"],
        "weekly_volume": volumes["weekly"],
    }


_WINDOWS_MS = {"daily": 86_400_000, "weekly": 7 * 86_400_000, "monthly": 30 * 86_400_000}


def trade_statistics(
    trades: list[dict[str, Any]], now: int | None = None
) -> tuple[dict[str, int], dict[str, float]]:
    """Trade counts and USD volumes by window, from the trades the sim keeps (its last few thousand)."""
    now = now_ms() if now is None else now
    counts = {"total": len(trades), **{name: 0 for name in _WINDOWS_MS}}
    volumes = {"total": 0.0, **{name: 0.0 for name in _WINDOWS_MS}}
    for trade in trades:
        amount = float(trade.get("usd_amount", 0) or 0)
        volumes["total"] += amount
        for name, span in _WINDOWS_MS.items():
            if now - int(trade.get("timestamp", 0)) < span:
                counts[name] += 1
                volumes[name] += amount
    return counts, {name: round(value, 6) for name, value in volumes.items()}

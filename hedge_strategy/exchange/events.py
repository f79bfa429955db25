"""Typed events the venue adapter emits to its subscribers.

These are the only shapes the rest of the bot sees from the exchange: Lighter's wire formats stop at
`parsing.py`. All money and sizes are `Decimal`; timestamps are milliseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def is_ask(self) -> bool:
        """Lighter's `is_ask` flag for an order on this side."""
        return self is Side.SELL

    @classmethod
    def from_is_ask(cls, is_ask: bool) -> Side:
        return cls.SELL if is_ask else cls.BUY


@dataclass(frozen=True)
class OrderUpdate:
    account_index: int
    market_id: int
    client_order_index: int
    order_index: int
    side: Side
    status: str  # Lighter status string, e.g. "open", "filled", "canceled-post-only"
    price: Decimal
    initial_size: Decimal
    filled_size: Decimal
    remaining_size: Decimal
    ts_ms: int


@dataclass(frozen=True)
class Fill:
    account_index: int
    market_id: int
    trade_id: int
    order_index: int
    client_order_index: int
    side: Side
    size: Decimal
    price: Decimal
    is_maker: bool
    fee: Decimal  # USDC paid (negative would be a rebate)
    ts_ms: int


@dataclass(frozen=True)
class PositionSnapshot:
    account_index: int
    market_id: int
    size: Decimal  # signed: + long, - short
    avg_entry_price: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True)
class TopOfBook:
    market_id: int
    best_bid: Decimal | None
    best_ask: Decimal | None
    ts_ms: int


@dataclass(frozen=True)
class StreamUp:
    account_index: int
    reconnect: bool  # False on the first connect


@dataclass(frozen=True)
class StreamDown:
    account_index: int
    reason: str


Event = OrderUpdate | Fill | PositionSnapshot | TopOfBook | StreamUp | StreamDown

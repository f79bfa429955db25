"""Events the engine publishes synchronously, in order, after each state change (the server fans them out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class OrderChanged:
    account_index: int
    market_id: int
    order: dict[str, Any]  # Order model dict


@dataclass(frozen=True, slots=True)
class TradeHappened:
    market_id: int
    trade: dict[str, Any]  # Trade model dict
    maker_account: int
    taker_account: int


@dataclass(frozen=True, slots=True)
class PositionChanged:
    account_index: int
    market_id: int
    position: dict[str, Any]  # AccountPosition model dict


@dataclass(frozen=True, slots=True)
class BookChanged:
    market_id: int
    offset: int  # the engine's own count, +1 per BookChanged of a market (wire nonce/offset: ws_book.py)
    asks: list[dict[str, str]]  # changed levels only; size "0.000..." = level removed
    bids: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class TxSettled:
    """The sequencer executed or refused one transaction; `tx` is its `account_tx` object (tx_history.py)."""

    account_index: int
    tx: dict[str, Any]


SimEvent = OrderChanged | TradeHappened | PositionChanged | BookChanged | TxSettled

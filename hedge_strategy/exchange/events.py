"""Typed events the venue adapter emits to its subscribers.

These are the only shapes the rest of the bot sees from the exchange: Lighter's wire formats (status strings,
fee units, timestamp units) stop at `parsing.py` and `statuses.py`. All money and sizes are `Decimal`;
timestamps are milliseconds since the epoch.
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


class VenueState(StrEnum):
    """Where an order stands on the exchange, in the venue's own words mapped to four facts."""

    LIVE = "live"  # accepted by the exchange and not ended (resting, or still being processed)
    FILLED = "filled"
    CANCELED = "canceled"  # ended without filling completely; `EndReason` says why
    UNRECOGNISED = "unrecognised"  # a status the adapter does not know: callers leave their state as it is


class EndReason(StrEnum):
    """Why an order ended without filling completely (venue-neutral)."""

    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    REDUCE_ONLY = "reduce_only"  # it would have grown or flipped the position
    MARGIN = "margin"  # not enough margin for it
    EXPIRED = "expired"
    SELF_TRADE = "self_trade"
    NOT_ENOUGH_LIQUIDITY = "not_enough_liquidity"  # a taker order found the book empty
    TOO_MUCH_SLIPPAGE = "too_much_slippage"  # a taker order reached its price limit
    CANCELED_BY_US = "canceled_by_us"  # a cancel we sent (the simulator also ends an IOC's rest this way)
    OTHER = "other"  # any other reason the venue gives (liquidation, OCO, ...): see the venue status in logs


@dataclass(frozen=True)
class OrderUpdate:
    account_index: int
    market_id: int
    client_order_index: int  # 0: the order carries none (placed outside the bot); never one of ours
    order_index: int  # the exchange's order index
    side: Side
    state: VenueState
    end_reason: EndReason | None  # set when `state` is CANCELED
    price: Decimal
    initial_size: Decimal
    filled_size: Decimal
    remaining_size: Decimal
    ts_ms: int
    venue_status: str = ""  # the venue's own word for the state, for operators' logs only: never compared


@dataclass(frozen=True)
class Fill:
    account_index: int
    market_id: int
    trade_id: int
    order_index: int  # the exchange's order index of our side
    # None when the trade does not name our client order index (older captures lack `ask_client_id` /
    # `bid_client_id`): the tracker then finds the order by `order_index`. Never 0.
    client_order_index: int | None
    side: Side
    size: Decimal
    price: Decimal
    is_maker: bool
    fee: Decimal  # USDC paid (negative would be a rebate), converted from the venue's fee rate in parsing.py
    ts_ms: int


@dataclass(frozen=True)
class PublicTrade:
    """One trade of the market's public feed (`trade/{market}`), whoever traded: both parties named.

    Verified from captured frames (tests/wire/ws/trade): ccxt Nov 2025, Nautilus and hftbacktest 2026 name
    both client order indexes; qubx's Oct 2025 frames do not (then None, as is 0: no client order index)."""

    market_id: int
    trade_id: int
    size: Decimal
    price: Decimal
    ask_account_id: int
    bid_account_id: int
    ask_client_id: int | None
    bid_client_id: int | None
    is_maker_ask: bool
    ts_ms: int

    @property
    def maker_account_id(self) -> int:
        return self.ask_account_id if self.is_maker_ask else self.bid_account_id

    @property
    def maker_client_id(self) -> int | None:
        return self.ask_client_id if self.is_maker_ask else self.bid_client_id

    @property
    def maker_side(self) -> Side:
        """The side the maker traded: it sold when the maker was the ask."""
        return Side.SELL if self.is_maker_ask else Side.BUY


@dataclass(frozen=True)
class PositionSnapshot:
    account_index: int
    market_id: int
    size: Decimal  # signed: + long, - short
    avg_entry_price: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True)
class AllPositions:
    """The account's whole set of positions (a `subscribed/` snapshot of the positions channel): a market not
    in it is flat. Captured frames list a flat market with size 0 and an account holding nothing as an empty
    map (tests/wire/README.md, fact 8); whether a market closed earlier can be left out of a later snapshot is
    not captured, so the set replaces what was believed either way. Update frames carry only the markets that
    changed: they come as single `PositionSnapshot`s."""

    account_index: int
    positions: tuple[PositionSnapshot, ...]


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


SEQUENCER_REFUSED = "rejected by the sequencer"  # how a refused transaction's reason starts


@dataclass(frozen=True)
class TxOutcome:
    """What the sequencer did with one of the account's transactions (`tx_outcomes.py`): executed, or refused
    with a reason (then no order ever appears for it). HTTP 200 from a send says neither."""

    account_index: int
    tx_hash: str
    tx_type: int
    client_order_index: int | None  # a create's; None for other transactions (or when unreadable)
    refused: bool
    code: int | None  # the venue's code of a refusal, when it gave one
    reason: str  # the refusal in the venue's words; "" when executed

    def describe(self) -> str:
        """One phrase for logs and journal reasons."""
        if not self.refused:
            return "executed"
        return f"{SEQUENCER_REFUSED}: {self.code if self.code is not None else '-'} {self.reason}"


Event = (OrderUpdate | Fill | PositionSnapshot | AllPositions | TopOfBook | StreamUp | StreamDown | TxOutcome
         | PublicTrade)

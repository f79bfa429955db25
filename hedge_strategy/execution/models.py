"""What the journal records: orders with their state machine, and fills matched one-to-one to orders.

The state machine: PENDING_SUBMIT (recorded, before the send) -> OPEN -> PARTIALLY_FILLED -> FILLED |
CANCELED(reason) | REJECTED(reason), with UNKNOWN for an ambiguous send (resolved later to any state).
Terminal states never change by a transition; one exception, the exchange's word: an order REJECTED that the
exchange reports after all (it executed late) takes the exchange's state (`Journal._executed_late`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from hedge_strategy.exchange.events import EndReason, OrderUpdate, Side, VenueState
from hedge_strategy.execution.fill_identity import FillKey


def now_ms() -> int:
    return int(time.time() * 1000)


class OrderState(StrEnum):
    PENDING_SUBMIT = "pending_submit"  # written to the journal, not (yet) known to have reached the exchange
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # the send's outcome is ambiguous (timeout, 5xx, dropped connection)

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


class Intent(StrEnum):
    MAKER = "maker"
    HEDGE = "hedge"
    CLOSE = "close"
    REBALANCE = "rebalance"


RESTING_ORDER_TYPE = "post_only"  # the one order type of ours that rests, so that a modify can move it
TERMINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED})
UNRESOLVED_STATES = frozenset(
    {OrderState.PENDING_SUBMIT, OrderState.UNKNOWN, OrderState.OPEN, OrderState.PARTIALLY_FILLED}
)

# Forward-only moves. UNKNOWN can resolve to anything because we never knew where the order stood.
_LEGAL_MOVES: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING_SUBMIT: frozenset(OrderState) - {OrderState.PENDING_SUBMIT},
    OrderState.UNKNOWN: frozenset(OrderState) - {OrderState.PENDING_SUBMIT, OrderState.UNKNOWN},
    OrderState.OPEN: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELED}),
    OrderState.PARTIALLY_FILLED: frozenset({OrderState.FILLED, OrderState.CANCELED}),
    OrderState.FILLED: frozenset(),
    OrderState.CANCELED: frozenset(),
    OrderState.REJECTED: frozenset(),
}


def is_legal_move(current: OrderState, target: OrderState) -> bool:
    return target in _LEGAL_MOVES[current]


def state_for_venue(
    state: VenueState, end_reason: EndReason | None, filled_size: Decimal
) -> tuple[OrderState, str | None] | None:
    """The adapter's venue-neutral order facts → (journal state, reason); None for an unrecognised state.

    `filled_size` is the best known filled size, so a resting order that has traded shows PARTIALLY_FILLED.
    A CANCELED order's reason is its `EndReason` value (read back with `JournalOrder.end_reason`).
    """
    if state is VenueState.LIVE:
        return (OrderState.PARTIALLY_FILLED if filled_size > 0 else OrderState.OPEN), None
    if state is VenueState.FILLED:
        return OrderState.FILLED, None
    if state is VenueState.CANCELED:
        return OrderState.CANCELED, (end_reason or EndReason.OTHER).value
    return None


def reported_price(order: JournalOrder, update: OrderUpdate,
                   price_since_ms: int) -> tuple[Decimal | None, bool]:
    """What an exchange report of `order` says of its price: (the new price of a resting order, or None when
    it has not moved; whether a modify in flight is settled). A live order's price is the exchange's (a modify
    moved it: ours, or one this process does not know of), unless the report is older than the one the price
    came from (`price_since_ms`: a REST read begun before a streamed update). A modify is settled when the
    exchange shows its price in a report not older than the price held (an older one may show the price the
    order had before the last modify, which a modify back to it would seem to confirm while the venue has yet
    to execute it), or the order ended. Only a resting order's price is taken (an IOC's or a market order's is
    its limit, kept as sent: the worst it can fill at)."""
    ended = update.state in (VenueState.FILLED, VenueState.CANCELED)
    current = update.ts_ms >= price_since_ms
    settled = order.modify_price is not None and ((update.price == order.modify_price and current) or ended)
    moved = (update.state is VenueState.LIVE and order.order_type == RESTING_ORDER_TYPE
             and update.price != order.price and current)
    return (update.price if moved else None), settled


@dataclass
class JournalOrder:
    client_order_index: int
    account_index: int
    market_id: int
    intent: Intent
    side: Side
    size: Decimal
    price: Decimal
    order_type: str  # "post_only" | "ioc" | "market"
    reduce_only: bool
    state: OrderState
    reason: str | None
    filled_size: Decimal
    filled_quote: Decimal
    order_index: int | None
    request_id: str | None  # the hedge request(s) it serves; several joined by ',' when B netted them
    created_ms: int
    sent_ms: int | None
    updated_ms: int
    # The price a modify of this resting order was sent for, recorded before the send (write-ahead) and
    # cleared once the exchange shows the order at it, refuses the modify, or ends the order; `price` is the
    # price the exchange last showed. While set, the order may rest at either.
    modify_price: Decimal | None = None

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def remaining_size(self) -> Decimal:
        return max(self.size - self.filled_size, Decimal(0))

    @property
    def end_reason(self) -> EndReason | None:
        """Why the exchange ended it, when it is CANCELED by the exchange's word (None otherwise)."""
        if self.state is not OrderState.CANCELED or self.reason is None:
            return None
        try:
            return EndReason(self.reason)
        except ValueError:  # a journal written before reasons were venue-neutral
            return None


@dataclass(frozen=True)
class JournalFill:
    trade_id: int
    client_order_index: int
    account_index: int
    market_id: int
    side: Side
    size: Decimal
    price: Decimal
    fee: Decimal
    is_maker: bool
    ts_ms: int
    source: str  # where we learned it: "ws", "rest", "reconcile", ...
    order_index: int | None = None  # the exchange's order index, when the report carried it
    epoch: int = 0  # set by the journal: > 0 when other trades already held the trade id (fill_identity)

    @property
    def key(self) -> FillKey:
        """The fill's identity in the journal: the trade id with its market, account, side and epoch."""
        return FillKey(self.account_index, self.market_id, self.trade_id, self.side.value, self.epoch)


def new_order(*, client_order_index: int, account_index: int, market_id: int, intent: Intent, side: Side,
              size: Decimal, price: Decimal, order_type: str, now_ms: int, reduce_only: bool = False,
              request_id: str | None = None) -> JournalOrder:
    """A fresh PENDING_SUBMIT order, ready for `Journal.record_new`."""
    return JournalOrder(client_order_index=client_order_index, account_index=account_index,
                        market_id=market_id, intent=intent, side=side, size=size, price=price,
                        order_type=order_type, reduce_only=reduce_only, state=OrderState.PENDING_SUBMIT,
                        reason=None, filled_size=Decimal(0), filled_quote=Decimal(0), order_index=None,
                        request_id=request_id, created_ms=now_ms, sent_ms=None, updated_ms=now_ms)

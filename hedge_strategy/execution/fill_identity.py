"""What makes a fill one trade: the key the journal stores it under, and when two reports are the same trade.

The venue numbers its trades, and a trade id is the natural key, but not on its own:
- a self-trade (both sides ours) gives one account two fills under one trade id, so the side is part of it;
- a venue that restarts may number trades from 1 again (the simulator did before it kept its ids across
  restarts; nothing guarantees a real venue never will), so an id already held can name a different trade.

So a fill is stored under (account, market, trade id, side, epoch). The epoch is the journal's own count:
0 for the first trade it holds under that venue id, n for the n-th different trade that reused it. Whether a
report is the trade already held or a new one is decided by its facts: a second report of one trade (the
stream, then the trades endpoint during reconciliation) agrees on the order, size, price and time; a report
that disagrees on any of them is another trade under a reused id. Unknown values (an order index the report
lacked, a client order index of 0 from a trade without `*_client_id`, as in captured Oct 2025 account
trades) are not compared.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

# One trade reported twice carries one timestamp: the stream and the trades endpoint serve the same Trade
# model (identical in the simulator; inferred for the venue). The slack covers a channel rounding to whole
# seconds; a venue restart that reuses ids lies further apart than this, and different orders tell it anyway.
SAME_TRADE_SLACK_MS = 5_000


class FillKey(NamedTuple):
    """The primary key of a fill in the journal (the `fills` table's, in this order)."""

    account_index: int
    market_id: int
    trade_id: int
    side: str  # "buy" | "sell"
    epoch: int


class TradeFacts(Protocol):
    """What a report of a fill says about its trade (a journal fill, a row read by `hedgectl`)."""

    @property
    def client_order_index(self) -> int: ...

    @property
    def order_index(self) -> int | None: ...

    @property
    def size(self) -> Decimal: ...

    @property
    def price(self) -> Decimal: ...

    @property
    def ts_ms(self) -> int: ...


def disagreement(held: TradeFacts, seen: TradeFacts) -> str | None:
    """Why `seen` is not another report of the trade `held` (same venue id); None if it is the same trade."""
    if _known_and_different(held.client_order_index, seen.client_order_index):
        return f"client order index {held.client_order_index} vs {seen.client_order_index}"
    if _known_and_different(held.order_index, seen.order_index):
        return f"order index {held.order_index} vs {seen.order_index}"
    if held.size != seen.size:
        return f"size {held.size} vs {seen.size}"
    if held.price != seen.price:
        return f"price {held.price} vs {seen.price}"
    if abs(held.ts_ms - seen.ts_ms) > SAME_TRADE_SLACK_MS:
        return f"time {held.ts_ms} vs {seen.ts_ms} ms"
    return None


def _known_and_different(held: int | None, seen: int | None) -> bool:
    """Both values known (0 and None stand for a value the report lacked) and not equal."""
    return bool(held) and bool(seen) and held != seen

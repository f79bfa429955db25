"""Orders and the per-market limit order book: price levels in FIFO order, best prices by bisect.

Prices and sizes are the exchange's scaled integers. The book records which levels a transaction touched
so the engine can publish only the changed levels (a delta) once per transaction.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass

# Lighter's numeric codes (tx_info) for order types and times in force.
TYPE_LIMIT = 0
TYPE_MARKET = 1
TIF_IOC = 0
TIF_GTT = 1
TIF_POST_ONLY = 2


@dataclass(slots=True, eq=False)
class Order:
    order_index: int
    client_order_index: int
    account_index: int
    market_id: int
    is_ask: bool
    price: int
    initial_size: int
    remaining: int
    order_type: int
    time_in_force: int
    reduce_only: bool
    trigger_price: int
    order_expiry: int
    nonce: int
    created_ms: int
    updated_ms: int  # the block time of the order's latest change (creation, fill, cancel, modify)
    block_height: int  # the block of that change
    status: str = "open"
    transaction_us: int = 0  # that change's `transaction_time`: µs, unique across the engine's changes
    filled: int = 0
    filled_quote: int = 0  # sum of price_int * size_int over fills (scale: price + size decimals)
    seq: int = 0  # time priority: refreshed when a modify loses priority
    closed_seq: int = 0  # position in the account's inactive history, set when the order ends

    @property
    def is_open(self) -> bool:
        return self.status == "open"


class PriceLevel:
    """Orders at one price, oldest first; dicts keep insertion order and remove in O(1)."""

    __slots__ = ("orders", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: dict[int, Order] = {}
        self.total = 0

    def first(self) -> Order:
        return next(iter(self.orders.values()))


class OrderBook:
    def __init__(self, market_id: int) -> None:
        self.market_id = market_id
        self.offset = 0
        self._levels: tuple[dict[int, PriceLevel], dict[int, PriceLevel]] = ({}, {})  # bids, asks
        # Both sorted ascending: the best bid is the last element, the best ask the first.
        self._prices: tuple[list[int], list[int]] = ([], [])
        self._changed: set[tuple[bool, int]] = set()

    # -- mutation ------
    def add(self, order: Order) -> None:
        side = int(order.is_ask)
        levels = self._levels[side]
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = PriceLevel(order.price)
            insort(self._prices[side], order.price)
        level.orders[order.order_index] = order
        level.total += order.remaining
        self._changed.add((order.is_ask, order.price))

    def remove(self, order: Order) -> None:
        """Takes a resting order out of the book (its `remaining` is what the level still counts)."""
        side = int(order.is_ask)
        level = self._levels[side].get(order.price)
        if level is None or level.orders.pop(order.order_index, None) is None:
            return
        level.total -= order.remaining
        self._changed.add((order.is_ask, order.price))
        if not level.orders:
            del self._levels[side][order.price]
            prices = self._prices[side]
            del prices[bisect_left(prices, order.price)]

    def reduce(self, order: Order, qty: int) -> None:
        """A resting order filled by `qty`; removes it when nothing is left."""
        level = self._levels[int(order.is_ask)][order.price]
        order.remaining -= qty
        level.total -= qty
        self._changed.add((order.is_ask, order.price))
        if order.remaining == 0:
            order.remaining = 0
            self.remove(order)

    def clear(self) -> None:
        for side in (0, 1):
            for price in self._prices[side]:
                self._changed.add((bool(side), price))
            self._levels[side].clear()
            self._prices[side].clear()

    # -- queries ------
    def best_bid(self) -> int | None:
        prices = self._prices[0]
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        prices = self._prices[1]
        return prices[0] if prices else None

    def best(self, is_ask: bool) -> int | None:
        return self.best_ask() if is_ask else self.best_bid()

    def level(self, is_ask: bool, price: int) -> PriceLevel | None:
        return self._levels[int(is_ask)].get(price)

    def level_size(self, is_ask: bool, price: int) -> int:
        level = self._levels[int(is_ask)].get(price)
        return level.total if level else 0

    def levels(self, is_ask: bool) -> Iterator[PriceLevel]:
        """Levels of one side, best first."""
        side = int(is_ask)
        prices = self._prices[side] if is_ask else reversed(self._prices[side])
        for price in list(prices):
            yield self._levels[side][price]

    def orders(self, is_ask: bool) -> Iterator[Order]:
        """Resting orders of one side in priority order (best price, then oldest)."""
        for level in self.levels(is_ask):
            yield from list(level.orders.values())

    def order_count(self, is_ask: bool) -> int:
        return sum(len(level.orders) for level in self._levels[int(is_ask)].values())

    # -- deltas ------
    def take_changes(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]] | None:
        """(price, size) of each level touched since the last call (size 0 = gone); None if none."""
        if not self._changed:
            return None
        asks: list[tuple[int, int]] = []
        bids: list[tuple[int, int]] = []
        for is_ask, price in sorted(self._changed):
            (asks if is_ask else bids).append((price, self.level_size(is_ask, price)))
        self._changed.clear()
        bids.reverse()  # bids best (highest) first, asks ascending
        return asks, bids

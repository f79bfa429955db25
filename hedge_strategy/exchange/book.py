"""A local copy of one market's order book, kept from `order_book/{m}` snapshots and deltas.

Levels are keyed by price and replaced (or removed when the size is zero) by each delta, so the book stays
sorted no matter in which order levels arrive (the SDK's WsClient appends them unsorted). The offset grows by
exactly one per delta: anything else is a gap, and the book must be resnapshotted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

Level = tuple[Decimal, Decimal]  # (price, size)


class DeltaResult(Enum):
    APPLIED = "applied"
    GAP = "gap"  # offset jumped (or no snapshot yet): the book is invalid until a new snapshot
    STALE = "stale"  # an offset we already have: ignored


class LocalBook:
    def __init__(self, market_id: int) -> None:
        self.market_id = market_id
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self.offset: int | None = None  # None: no valid snapshot (never had one, or a gap invalidated it)
        self.updated_ms = 0

    @property
    def valid(self) -> bool:
        return self.offset is not None

    def invalidate(self) -> None:
        self.offset = None

    def apply_snapshot(self, offset: int, bids: Iterable[Level], asks: Iterable[Level], ts_ms: int) -> None:
        self._bids = {price: size for price, size in bids if size > 0}
        self._asks = {price: size for price, size in asks if size > 0}
        self.offset = offset
        self.updated_ms = ts_ms

    def apply_delta(
        self, offset: int, bids: Iterable[Level], asks: Iterable[Level], ts_ms: int
    ) -> DeltaResult:
        if self.offset is None:
            return DeltaResult.GAP
        if offset <= self.offset:
            return DeltaResult.STALE
        if offset != self.offset + 1:
            self.offset = None
            return DeltaResult.GAP
        _merge(self._bids, bids)
        _merge(self._asks, asks)
        self.offset = offset
        self.updated_ms = ts_ms
        return DeltaResult.APPLIED

    def best_bid(self) -> Decimal | None:
        return max(self._bids) if self._bids else None

    def best_ask(self) -> Decimal | None:
        return min(self._asks) if self._asks else None

    def level_price(self, is_bid: bool, depth: int) -> Decimal | None:
        """Price of the `depth`-th level (1 = best) on one side, or None when the book is that thin."""
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        prices = sorted(self._bids, reverse=True) if is_bid else sorted(self._asks)
        return prices[depth - 1] if depth <= len(prices) else None

    def bids(self) -> list[Level]:
        return sorted(self._bids.items(), reverse=True)

    def asks(self) -> list[Level]:
        return sorted(self._asks.items())


def _merge(levels: dict[Decimal, Decimal], changes: Iterable[Level]) -> None:
    for price, size in changes:
        if size > 0:
            levels[price] = size
        else:
            levels.pop(price, None)


def parse_levels(raw: Any) -> list[Level]:
    """`[{"price": "95000.1", "size": "0.50000"}, ...]` → [(price, size)]; ValueError if malformed."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"book levels are not a list: {type(raw).__name__}")
    levels: list[Level] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise ValueError(f"book level is not an object: {entry!r}")
        price, size = Decimal(str(entry["price"])), Decimal(str(entry["size"]))
        if not (price.is_finite() and size.is_finite()) or size < 0:
            raise ValueError(f"book level out of range: {entry!r}")
        levels.append((price, size))
    return levels

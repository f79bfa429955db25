"""A local copy of one market's order book, kept from `order_book/{m}` snapshots and deltas.

Levels are keyed by price and replaced (or removed when the size is zero) by each delta, so the book stays
sorted no matter in which order levels arrive (the SDK's WsClient appends them unsorted).

Continuity (`BookSeq`, checked by `LocalBook.apply_delta`), two forms, both in the captured corpus
(tests/wire/README.md, "Differences seen"):
- since Lighter's API upgrade of Dec 2025, `offset` belongs to the API server (it jumps, and changes on
  reconnection): it is no sequence. Each frame's `order_book` carries `nonce` and `begin_nonce`; an update
  continues the book when its `begin_nonce` equals the `nonce` of the frame before it (the snapshot seeds
  the chain with `begin_nonce` 0). Verified on captured mainnet frames of Jul 2026.
- before it (Oct 2025 captures), frames had no `begin_nonce` and `offset` grew by exactly one per update of
  a market. A delta without `begin_nonce` is checked that way (a Nov 2025 capture has `nonce` but no
  `begin_nonce`; it is treated as that older form [inferred]).
Anything else is a gap: the book is invalid until a new snapshot.

A book remembers which connection (`source`) its snapshot came from and takes deltas only from that one:
while the stream moves to a new connection, both may deliver the same market for a moment.

A book may not show a trade yet (`LocalBook.touch_after`). The venue sends `order_book` updates in batches
about 50 ms apart (captured mainnet frames of Jul 2026: `last_updated_at` 25-50 ms apart), and the public
trade or the account's fill can come first: a hedge priced from the book then takes a level the trade has
just emptied as still there, and its first IOC misses. Each frame carries `last_updated_at` (µs, the venue's
clock: captured), each trade its `timestamp` (ms, the same clock: captured): a book whose state is older than
a trade is taken without what the trade consumed: every public trade of the market noted since the book's
state (`note_trade`, when the account follows `trade/{m}`), and the fills a hedge names. [Inferred: that
`last_updated_at` is the time of the book's state, so a book at or past a trade's time shows it.] A book
without `last_updated_at` (frames before Dec 2025) is taken as it is. Only the price of a hedge's IOC reads
the book so (`LighterAccount.top_of_book`); the book itself changes only by the venue's frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from hedge_strategy.exchange.parsing import to_int

Level = tuple[Decimal, Decimal]  # (price, size)
MIN_TIME_US, MAX_TIME_US = 10**15, 10**17  # a time in µs since the epoch (2001 to 5138)
AS_OF_NEAR_MS = 60_000  # a book's state this far from its frame's own time is no time to trust
UNSHOWN_MAX = 256  # public trades kept while the book does not show them (a burst; the next update clears)


@dataclass(frozen=True)
class Traded:
    """A trade the book may not show yet: its price, size, the venue's time (ms) and the maker's side (the
    side of the book it consumed)."""

    price: Decimal
    size: Decimal
    ts_ms: int
    maker_is_bid: bool
    trade_id: int | None = None  # the same trade named twice (the feed, a hedge request) counts once


class DeltaResult(Enum):
    APPLIED = "applied"
    GAP = "gap"  # does not follow (or no snapshot yet): the book is invalid until a new snapshot
    STALE = "stale"  # older than what the book has, or from another connection: ignored


@dataclass(frozen=True)
class BookSeq:
    """The sequencing fields of one order_book frame (None where the frame has none)."""

    offset: int | None
    nonce: int | None
    begin_nonce: int | None


class LocalBook:
    def __init__(self, market_id: int) -> None:
        self.market_id = market_id
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self.seq: BookSeq | None = None  # None: no valid snapshot (never had one, or a gap invalidated it)
        self.source: int | None = None  # the connection the snapshot came from
        self.updated_ms = 0
        self.as_of_us: int | None = None  # the venue's time of the book's state (`last_updated_at`), if sent
        self._unshown: list[Traded] = []  # the market's public trades newer than the book's state

    @property
    def valid(self) -> bool:
        return self.seq is not None

    @property
    def offset(self) -> int | None:
        return self.seq.offset if self.seq is not None else None

    def invalidate(self) -> None:
        self.seq = None

    def apply_snapshot(self, seq: BookSeq, bids: Iterable[Level], asks: Iterable[Level], ts_ms: int,
                       source: int = 0, as_of_us: int | None = None) -> None:
        self._shown(as_of_us)
        self._bids = {price: size for price, size in bids if size > 0}
        self._asks = {price: size for price, size in asks if size > 0}
        self.seq = seq
        self.source = source
        self.updated_ms = ts_ms

    def apply_delta(self, seq: BookSeq, bids: Iterable[Level], asks: Iterable[Level], ts_ms: int,
                    source: int = 0, as_of_us: int | None = None) -> DeltaResult:
        if self.seq is None:
            return DeltaResult.GAP
        if source != self.source:
            return DeltaResult.STALE
        verdict = _follows(self.seq, seq)
        if verdict is DeltaResult.GAP:
            self.seq = None
        if verdict is not DeltaResult.APPLIED:
            return verdict
        _merge(self._bids, bids)
        _merge(self._asks, asks)
        self.seq = seq
        self.updated_ms = ts_ms
        self._shown(as_of_us)
        return DeltaResult.APPLIED

    def best_bid(self) -> Decimal | None:
        return max(self._bids) if self._bids else None

    def best_ask(self) -> Decimal | None:
        return min(self._asks) if self._asks else None

    def level_price(self, is_bid: bool, depth: int, without: Level | None = None) -> Decimal | None:
        """Price of the `depth`-th level (1 = best) on one side, or None when the book is that thin.
        `without` (price, size): an order of ours taken out first, so that a level holding nothing else does
        not count (the book as it would be without our order: where we would place it now)."""
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        levels = self._bids if is_bid else self._asks
        kept = (price for price, size in levels.items()
                if without is None or price != without[0] or size > without[1])
        prices = sorted(kept, reverse=is_bid)
        return prices[depth - 1] if depth <= len(prices) else None

    def note_trade(self, trade: Traded) -> None:
        """A public trade of the market (`trade/{m}`): kept while the book's state is older than it."""
        if self._not_showing(trade):
            self._unshown.append(trade)
            del self._unshown[:-UNSHOWN_MAX]

    def _shown(self, as_of_us: int | None) -> None:
        self.as_of_us = as_of_us
        self._unshown = [t for t in self._unshown if self._not_showing(t)]

    def _not_showing(self, trade: Traded) -> bool:
        """The book's state is older than `trade` (a book that says nothing of its time shows everything)."""
        return self.as_of_us is not None and self.as_of_us < trade.ts_ms * 1000

    def touch_after(self, is_bid: bool, trades: Iterable[Traded] = ()) -> Decimal | None:
        """The best price on one side once the trades on it that this book does not show yet are taken out
        (module docstring): the market's public trades noted since the book's state, and `trades` (the fills a
        hedge covers). A trade at P consumed its size at P and every level better than P (the taker walked
        the book down to P). A book that shows them (or says nothing of its time) is as it is."""
        levels = dict(self._bids if is_bid else self._asks)
        named: set[int] = set()
        for trade in [*self._unshown, *trades]:
            if trade.maker_is_bid is not is_bid or not self._not_showing(trade) or trade.trade_id in named:
                continue
            if trade.trade_id is not None:
                named.add(trade.trade_id)
            for price in [p for p in levels if (p > trade.price if is_bid else p < trade.price)]:
                del levels[price]
            left = levels.get(trade.price, Decimal(0)) - trade.size
            if left > 0:
                levels[trade.price] = left
            else:
                levels.pop(trade.price, None)
        if not levels:
            return None
        return max(levels) if is_bid else min(levels)

    def bids(self) -> list[Level]:
        return sorted(self._bids.items(), reverse=True)

    def asks(self) -> list[Level]:
        return sorted(self._asks.items())


def _follows(have: BookSeq, delta: BookSeq) -> DeltaResult:
    if delta.begin_nonce is not None:  # the nonce chain (Dec 2025 onwards)
        if have.nonce is None or delta.nonce is None:
            return DeltaResult.GAP
        if delta.begin_nonce == have.nonce:
            return DeltaResult.APPLIED
        # Nonces grow along the chain (every capture), so one we already passed is a late duplicate.
        return DeltaResult.STALE if delta.nonce <= have.nonce else DeltaResult.GAP
    if have.offset is None or delta.offset is None:  # the older form: offset +1 per update
        return DeltaResult.GAP
    if delta.offset <= have.offset:
        return DeltaResult.STALE
    return DeltaResult.APPLIED if delta.offset == have.offset + 1 else DeltaResult.GAP


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


def parse_as_of_us(frame: Mapping[str, Any], body: Mapping[str, Any]) -> int | None:
    """The venue's time of the book's state, µs: `last_updated_at`, at the top and inside `order_book`
    (captured Jul 2026); None when the frame has none or one that is no time in µs near the frame's own
    `timestamp` (ms): a captured empty market's snapshot says 0, and a unit other than µs would keep every
    later trade unshown (`touch_after` would then read the touch deeper than it is)."""
    value = frame.get("last_updated_at", body.get("last_updated_at"))
    if value is None:
        return None
    as_of_us = to_int(value)
    sent_ms = frame.get("timestamp")
    if not MIN_TIME_US <= as_of_us <= MAX_TIME_US or (
            sent_ms is not None and abs(as_of_us // 1000 - to_int(sent_ms)) > AS_OF_NEAR_MS):
        return None
    return as_of_us


def parse_seq(frame: Mapping[str, Any], body: Mapping[str, Any]) -> BookSeq:
    """The sequencing fields of an order_book frame: inside `order_book` (captures), else at the top."""
    def field(name: str) -> int | None:
        value = body.get(name, frame.get(name))
        return None if value is None else to_int(value)
    return BookSeq(offset=field("offset"), nonce=field("nonce"), begin_nonce=field("begin_nonce"))

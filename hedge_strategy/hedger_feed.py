"""B hedges A's fills from the exchange's public trade feed: at once while Redis answers ("feed first"), and
while Redis is silent after a wait (docs/design.md, "B hedges from the trade feed").

Hedge requests reach B only through Redis (A -> Redis -> B: A's publish path alone is about 2 ms). The
exchange is the single source of truth and a second channel: its public `trade/{market}` feed names both
accounts and both client order indexes of every trade (`exchange.PublicTrade`). B remembers A's maker fills it
sees there (`FeedFills`: A's account on the maker side, A's maker digits in the client order index, younger
than the age bound) and forgets each once a request naming its trade arrives, once it is hedged, or once it
is too old. It hands one to B's hedge path (`Hedger.hedge_from_feed`: journal, client order indexes, chase,
outcome) as the very request A sends for it (`feed_request`: the same request id):
- **feed first** (`strategy.hedge_from_trade_feed_first`): the moment the trade event arrives, while Redis
  answers B (`RedisSilence` below `REDIS_SILENT_S`), B is not held and has read its hold state, for a trade
  made since this B began following the feed (older ones may have been settled by whoever this process's
  memory does not know: A's withdrawal, `hedgectl clear`). B's usual key-based wash guard applies: Redis
  answers; a fill that leaves A's order resting as the key names it (partly filled, being modified) is left
  to A's request, as A may re-price that order before it knows the fill (`wash_guard.may_rest_after`).
  Nothing is logged before the send; B's outcome line says the fill was hedged from the feed.
- **while Redis is silent**: a fill unrequested for `strategy.hedge_from_trade_feed_after_s` while Redis has
  not answered B for `REDIS_SILENT_S`, bounded by `FeedWashBound` (B cannot read A's key).

At most once, whichever channel comes first: the request id is A's own (`request_id_for(coid, [trade id])`, A
publishes one request per fill), every hedge of B runs under one lock and is checked against what this
process answered and what its journal holds, a feed hedge is known to this process from the moment it is
taken (A's request for it takes no fast path), and a request that arrives first makes the feed forget its
trade for good. So A's request is answered from B's outcome (or resumed from the journal), never hedged twice.

A trade without the maker's client order index (the venue's frames of Oct 2025 had none) cannot give the
request id: never hedged first (nothing changes: A's request hedges it); while Redis is silent B logs it and
leaves it to A's request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from loguru import logger
from redis.exceptions import ResponseError

from hedge_strategy.bus import HedgeRequest, now_ms
from hedge_strategy.bus.resting import RestingOrder
from hedge_strategy.exchange import (
    LighterAccount,
    MarketInfo,
    PublicTrade,
    Side,
    describe_coid,
    is_a_maker_coid,
)
from hedge_strategy.wash_guard import limit_bound

# B's blocked read of requests returns at least every READ_BLOCK_MS (1 s) while Redis lives: no answer for
# this long says Redis is not answering (hung or down), not merely idle.
REDIS_SILENT_S = 1.5
FEED_MEMORY_S = 120.0  # a fill unrequested this long is forgotten (A's request, or A's restart, settles it)
FEED_MEMORY_MAX = 1000  # fills remembered at most (the oldest go first)
# After B is released from a hold, trades stamped up to this long after the release are left to A's request:
# the venue's clock and B's differ, and the holder settled every fill made before the release.
RELEASE_MARGIN_MS = 1000
REQUESTED_MEMORY = 4096  # trade ids whose request arrived: a feed frame that comes later is not remembered
CHECK_EVERY_S = 0.25  # how often the remembered fills are looked at while the feed is quiet
RELIST_AFTER_S = 1.0  # A's order at the touch: the listing is read again this long after (A cancels at once)
# Feed first: B's read of A's wash-guard key before the first IOC answers in about a millisecond; one that
# takes this long says Redis has just stopped answering: nothing is sent, the feed's wait takes the fill.
FIRST_KEY_READ_S = 0.5


class RedisSilence:
    """How long Redis has left B without an answer: since the first of B's calls after its last answer, while
    one is unanswered or the last one failed; zero while Redis answers (an idle B has its blocked read
    out)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._unanswered_since: float | None = None  # the first call made since the last answer

    def ask(self) -> None:
        """A Redis call of B's starts: unanswered, it starts the silence."""
        if self._unanswered_since is None:
            self._unanswered_since = self._clock()

    def answered(self) -> None:
        """Redis answered one of B's calls: no silence."""
        self._unanswered_since = None

    @contextmanager
    def asking(self) -> Iterator[None]:
        """Wrap Redis calls: their answer ends the silence; their failure leaves it running."""
        self.ask()
        try:
            yield
        except ResponseError:
            self.answered()  # an error reply is an answer: Redis is there
            raise
        else:
            self.answered()

    def silent_s(self) -> float:
        if self._unanswered_since is None:
            return 0.0
        return self._clock() - self._unanswered_since


@dataclass
class SeenFill:
    trade: PublicTrade
    seen_at: float  # B's clock when the feed brought it
    first_tried: bool = False  # taken first once, and nothing sent (Redis went silent): left to the wait


class FeedFills:
    """A's maker fills seen on the feed that no request named yet (bounded in number and time)."""

    def __init__(self, a_account: int, after_s: float | None, clock: Callable[[], float] = time.monotonic,
                 memory_s: float = FEED_MEMORY_S, wall_ms: Callable[[], int] = now_ms
                 ) -> None:
        """`after_s`: the wait of a fill while Redis is silent (None: never while silent). `memory_s`: how old
        (by the trade's own time) a fill may be and still be hedged from the feed. The caller gives at most
        half of A's `hedge_confirm_timeout_s`: past that A withdraws the request and hedges the residual
        itself, so a fill the feed brought late (a reconnect's or a restart's snapshot) must not be hedged
        again by B."""
        self.a_account = a_account
        self.after_s = after_s
        self._clock = clock
        self._memory_s = memory_s
        self._wall_ms = wall_ms
        self.since_ms = wall_ms()  # trades made before this memory began are never hedged first
        self._released_ms = 0  # before B's last release from a hold: never from the feed
        self._fills: OrderedDict[int, SeenFill] = OrderedDict()  # trade id -> fill, oldest first
        self._requested: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._fills)

    def __contains__(self, trade_id: int) -> bool:
        return trade_id in self._fills

    def saw(self, trade: PublicTrade) -> bool:
        """Remember `trade` when it is a maker fill of A's not requested yet; True when remembered."""
        if trade.maker_account_id != self.a_account or trade.trade_id in self._requested:
            return False
        coid = trade.maker_client_id
        if coid is not None and not is_a_maker_coid(coid):
            return False  # A's account, not A's maker order (an operator's close): A hedges none of those
        if trade.ts_ms < self._oldest_ms():
            return False  # old (a snapshot after a reconnect): its request came, or A's restart sends it
        self._fills.setdefault(trade.trade_id, SeenFill(trade, self._clock()))
        while len(self._fills) > FEED_MEMORY_MAX:
            self._fills.popitem(last=False)
        return True

    def requested(self, request: HedgeRequest) -> None:
        """A request for these fills arrived: the feed leaves them to it."""
        for trade_id in request.trade_ids:
            self._fills.pop(trade_id, None)
            self._requested[trade_id] = None
        while len(self._requested) > REQUESTED_MEMORY:
            self._requested.popitem(last=False)

    def forget(self, trade_id: int) -> None:
        self._fills.pop(trade_id, None)

    def again(self, seen: SeenFill) -> None:
        """A fill taken first whose hedge sent nothing (Redis went silent): remembered again, for the wait
        while Redis is silent only, unless its request arrived meanwhile."""
        if seen.trade.trade_id not in self._requested:
            seen.first_tried = True
            self._fills[seen.trade.trade_id] = seen

    def first_due(self) -> list[SeenFill]:
        """The fills to hedge at once (the caller does so only while Redis answers): naming the maker's client
        order index (else A's request is the only way), made since this memory began and within its time,
        not taken first before."""
        oldest_ms = max(self.since_ms, self._oldest_ms())
        return [seen for seen in self._fills.values()
                if not seen.first_tried and seen.trade.ts_ms >= oldest_ms
                and seen.trade.maker_client_id is not None]

    def drop_all(self) -> int:
        """Leave every remembered fill to whoever holds B (`hedgectl clear` closes both accounts; A's
        withdrawal hedges the residual): none is hedged from the feed afterwards. How many were dropped."""
        dropped = len(self._fills)
        for trade_id in list(self._fills):
            self._requested[trade_id] = None
        self._fills.clear()
        while len(self._requested) > REQUESTED_MEMORY:
            self._requested.popitem(last=False)
        return dropped

    def released(self) -> None:
        """B was released from a hold: the holder (`hedgectl clear`, A's withdrawal) settled every fill made
        before, so none of them is hedged from the feed, even one whose frame comes later (a reconnect's
        snapshot of recent trades)."""
        self._released_ms = self._wall_ms() + RELEASE_MARGIN_MS
        self.drop_all()

    def _oldest_ms(self) -> int | float:
        """The time of the oldest trade still hedged from the feed: `memory_s` ago, and not before B's last
        release from a hold."""
        return max(self._wall_ms() - self._memory_s * 1000, self._released_ms)

    def waited_s(self, seen: SeenFill) -> float:
        return self._clock() - seen.seen_at

    def due(self) -> list[SeenFill]:
        """The fills unrequested for `after_s` (the caller hedges them only while Redis is silent); forgets
        those past the memory's time."""
        now, oldest_ms = self._clock(), self._oldest_ms()
        for trade_id in [t for t, seen in self._fills.items() if seen.trade.ts_ms < oldest_ms]:
            seen = self._fills.pop(trade_id)
            logger.warning("B: A's fill trade {} (made {:.0f} s ago) got no request; no longer hedged from "
                           "the feed (A's request, when it comes, is hedged as usual; past its confirmation "
                           "timeout A hedges the residual itself)", trade_id,
                           (self._wall_ms() - seen.trade.ts_ms) / 1000)
        if self.after_s is None:
            return []
        return [seen for seen in self._fills.values() if now - seen.seen_at >= self.after_s]


def feed_request(trade: PublicTrade, pair: str, market: MarketInfo) -> HedgeRequest:
    """The request A publishes for this fill (`maker.Maker.on_fill`: one request per fill), built from the
    feed: the same request id, B's side opposite to A's, the trade's size and price. Not first-published: the
    fast path is A's alone. Requires the maker's client order index."""
    coid = trade.maker_client_id
    if coid is None:
        raise ValueError(f"trade {trade.trade_id} does not name the maker's client order index")
    return HedgeRequest.for_fills(
        pair=pair, market=market.symbol, market_id=trade.market_id, a_fill_side=trade.maker_side.value,
        size=trade.size, a_client_order_index=coid, trade_ids=[trade.trade_id], a_fill_price=trade.price,
        fill_ts_ms=trade.ts_ms)


class FeedWashBound:
    """The wash guard of a hedge from the feed (`execution.chase_loop.PriceGuard`), for when B cannot read
    A's key. A places nothing new and modifies nothing without writing that key first, and places nothing
    new until B answers the fill's request: A's only order that can rest is the filled order's remainder
    (which A cancels at once, without Redis), at the trade's price or where a modify sent before Redis went
    silent moved it. B reads where A's orders rest from the book's public listing of orders (one REST read,
    `LighterAccount.resting_prices`, which names each order's account) before the first IOC, and bounds each
    IOC strictly short of A's orders listed there (or of the listing's deepest price when it was cut at its
    limit); A's orders can only go away meanwhile, so the listing holds for the next attempts. When the
    listing cannot be read, each IOC is bounded strictly short of the trade's price and of the last entry of
    A's key B read (`wash_guard.LastRead`), the stricter of the two. When the bound leaves nothing to take at
    the touch, B reads the listing again after `RELIST_AFTER_S` (A's cancel is on its way)."""

    def __init__(self, account: LighterAccount, market: MarketInfo, trade: PublicTrade, a_account: int,
                 known: RestingOrder | None, relist_after_s: float = RELIST_AFTER_S) -> None:
        self.account = account
        self.market = market
        self.trade = trade
        self.a_account = a_account
        self.known = known
        self.relist_after_s = relist_after_s
        self._listed: list[Decimal] | None = None  # A's order prices on the side B's IOC could meet

    async def bound(self, side: Side, tick: Decimal) -> Decimal | None:
        """Short of A's orders the exchange lists; without a listing, short of the trade's price and of the
        last entry of A's key B read, the stricter."""
        if self._listed is None:
            await self._read_listing(side)
        if self._listed is not None:
            return _strictest(side, [_short_of(side, price, tick) for price in self._listed])
        return _strictest(side, [_short_of(side, self.trade.price, tick),
                                 limit_bound(side, self.known, tick)])

    async def wait_unbound(self, side: Side, tick: Decimal) -> Decimal | None:
        """A's order is at the touch: read the listing again once A's cancel had time to land."""
        await asyncio.sleep(self.relist_after_s)  # one bounded wait for A's cancel, then one REST read
        await self._read_listing(side)
        return await self.bound(side, tick)

    async def _read_listing(self, side: Side) -> None:
        try:
            prices, deepest = await self.account.resting_prices(self.market, self.a_account, side.opposite)
        except Exception as exc:  # nothing read: the listing B had (if any) stays
            logger.warning("B: the book's listing of orders could not be read ({!r}); the hedge of trade {} "
                           "from the feed stays short of A's fill price", exc, self.trade.trade_id)
            return
        if deepest is not None:  # listed up to its limit: an order of A's beyond it is unseen
            prices = [*prices, deepest]
        if prices != self._listed:
            logger.info("B: the book lists {} for the hedge of trade {} from the feed",
                        f"A's order(s) at {', '.join(map(str, prices))}" if prices else "no order of A's",
                        self.trade.trade_id)
        self._listed = prices


def _short_of(side: Side, a_price: Decimal, tick: Decimal) -> Decimal | None:
    """The bound of an order of A's at `a_price` on the side opposite to `side`."""
    return limit_bound(side, RestingOrder(0, side.opposite.value, a_price, None), tick)


def _strictest(side: Side, bounds: list[Decimal | None]) -> Decimal | None:
    """A sell's bound is a floor (the highest binds), a buy's a ceiling (the lowest binds)."""
    present = [b for b in bounds if b is not None]
    if not present:
        return None
    return max(present) if side is Side.SELL else min(present)


# B's hedge path: (request, None) hedges first, with B's key-based wash guard; (request, FeedWashBound) while
# Redis is silent. False: nothing of it was sent because Redis went silent (the fill may be taken again).
Hedge = Callable[[HedgeRequest, FeedWashBound | None], Awaitable[bool]]


class TradeFeedWatch:
    """B's task: reads the account's events for PublicTrade, remembers A's fills, and hands each one to
    `hedge` (B's hedge path, `Hedger.hedge_from_feed`), once: at the trade's event while Redis answers
    (`first`), or once due while Redis is silent."""

    def __init__(self, account: LighterAccount, market: MarketInfo, pair: str, fills: FeedFills,
                 silence: RedisSilence, hedge: Hedge, known_resting: Callable[[], RestingOrder | None],
                 stop: asyncio.Event, held: Callable[[], bool] = lambda: False, first: bool = False,
                 hold_known: Callable[[], bool] = lambda: True) -> None:
        self.account = account
        self.market = market
        self.pair = pair
        self.fills = fills
        self.silence = silence
        self._hedge = hedge
        self._known_resting = known_resting
        self._stop = stop
        self._held = held  # `hedgectl clear` holds B: nothing is hedged, from the feed either
        self.first = first  # `strategy.hedge_from_trade_feed_first`
        self._hold_known = hold_known  # B read its hold state once: before that, nothing is hedged first

    async def run(self) -> None:
        queue = self.account.subscribe()
        try:
            while not self._stop.is_set():
                try:
                    event = await asyncio.wait_for(queue.get(), CHECK_EVERY_S)
                except TimeoutError:
                    event = None
                if isinstance(event, PublicTrade) and event.market_id == self.market.market_id:
                    self.fills.saw(event)
                await self.hedge_due()
        finally:
            self.account.unsubscribe(queue)

    async def hedge_due(self) -> int:
        """Hedge each remembered fill that is due: at once while Redis answers (feed first), after the wait
        while Redis is silent; how many were handed over."""
        if self._held() and (dropped := self.fills.drop_all()):
            logger.info("B is held: {} fill(s) of A's seen on the trade feed are left to the holder "
                        "(hedgectl clear or A's withdrawal settles them); none is hedged from the feed",
                        dropped)
        if self._first_now():
            return await self._hedge_first()
        handed = 0
        for seen in self.fills.due() if self._silent_and_free() else []:
            if handed and not self._silent_and_free():
                break  # Redis answered during the last hedge: A's requests are on their way
            self.fills.forget(seen.trade.trade_id)  # once: A's request settles whatever this leaves
            trade = seen.trade
            if trade.maker_client_id is None:
                logger.warning("B: A's fill trade {} seen on the trade feed names no client order index: its "
                               "request id cannot be known, so it is not hedged from the feed (A's request "
                               "is, when Redis answers again)", trade.trade_id)
                continue
            waited_s = self.fills.waited_s(seen)
            logger.warning("B: A's fill trade {} ({}) seen on the trade feed, no request for {:.1f} s and "
                           "Redis silent {:.1f} s: hedging it from the feed", trade.trade_id,
                           describe_coid(trade.maker_client_id), waited_s, self.silence.silent_s())
            if (request := self._request_of(trade)) is None:
                continue
            known = self._known_resting()
            guard = FeedWashBound(self.account, self.market, trade, self.fills.a_account, known)
            await self._hedge(request, guard)  # its errors are logged there (`InHand.finish`)
            handed += 1
        return handed

    async def _hedge_first(self) -> int:
        """The hot path: no log line before the send (B's outcome line tells the operator), no await before
        the hand-over (a hold or a request read meanwhile is checked again under B's hedge lock)."""
        handed = 0
        for seen in self.fills.first_due():
            if handed and not self._first_now():
                break  # held, or Redis went silent, during the last hedge: the rest stay remembered
            if seen.trade.trade_id not in self.fills:
                continue  # its request arrived during the last hedge: left to it
            self.fills.forget(seen.trade.trade_id)  # once: A's request settles whatever this leaves
            if (request := self._request_of(seen.trade)) is None:
                continue
            if not await self._hedge(request, None):  # its errors are logged there (`InHand.finish`)
                self.fills.again(seen)  # nothing sent: A's request, or the silent wait, takes it
            handed += 1
        return handed

    def _request_of(self, trade: PublicTrade) -> HedgeRequest | None:
        """The request A sends for this fill (`feed_request`); None, logged, for a trade it cannot carry (A's
        request settles that one)."""
        try:
            return feed_request(trade, self.pair, self.market)
        except Exception as exc:
            logger.error("B: A's fill trade {} from the trade feed gives no valid request ({!r}); not hedged "
                         "from the feed", trade.trade_id, exc)
            return None

    def _first_now(self) -> bool:
        return (self.first and self._hold_known() and not self._held()
                and self.silence.silent_s() < REDIS_SILENT_S)

    def _silent_and_free(self) -> bool:
        return self.silence.silent_s() >= REDIS_SILENT_S and not self._held()

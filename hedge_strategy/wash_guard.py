"""B's guard against trading with A (no wash trades): B's IOC limit never reaches A's resting maker order.

A publishes its resting order (side, price) before sending it (`bus.resting`, write-ahead). Before pricing
each IOC of a hedge, B reads it: a B sell while A rests a bid at P is limited to P + 1 tick or higher, a B
buy while A rests an ask at P to P - 1 tick or lower. An IOC matches only resting orders at or better than
its limit, so it cannot reach A's order, whatever the sizes (sound as long as the key is there whenever A's
order may rest: the write-ahead makes sure of it, and A places nothing new while a hedge is outstanding).

A's order that the hedge in hand fills completely (its requests cover A's fills of that order for at least the
size A published) rests nowhere: the key is stale, only not cleared yet (A clears it after its order's final
state, while B is already pricing). It bounds nothing then, so neither clamps the first IOC's room for the
taker speed bump away nor makes B wait (measured: bench/README.md, issue 10). A partly filled order (its
remainder may still rest while A cancels it) and a key without a size (an older A) still bound.

The first bound of a batch's hedge may come from a read started as the batch arrived (`read_ahead`, beside
B's stored-outcome check, to take one Redis round trip off the hedge's path). It is as sound as a read at
pricing time: A writes the key before it sends an order and sends no new order while a request of its is
unanswered (the batch's are), so between that read and the pricing the key can only have been deleted (A's
order ended): the early value bounds as much or more, never less.

The first bound may also come from A's resting order as A's request carries it (`HedgeRequest.a_resting`),
trusted only on B's fast path (`bus.first_publish`, which says why it bounds as much as a read at pricing
time); the next bounds and the wait below read the key.

When the limit leaves B nothing to take (A's order is at the touch), B waits, at most `WAIT_FOR_A_S`, for
A's order to end (A cancels a partly filled order's remainder at once), reading the key every `POLL_S`.
When Redis cannot answer, the RedisError goes up: B sends nothing it cannot check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from hedge_strategy.bus import Bus, HedgeRequest
from hedge_strategy.bus.resting import RestingOrder, read_resting
from hedge_strategy.exchange import Side
from hedge_strategy.task_end import retrieve_outcome

WAIT_FOR_A_S = 2.0  # about one cancel round trip of A, with room; past it the attempt is not sent
POLL_S = 0.05  # a local Redis GET: 40 reads over the whole wait


def covered_fills(requests: Iterable[HedgeRequest]) -> dict[int, Decimal]:
    """A's filled size per maker order (client order index) that these hedge requests cover (each id once;
    a residual hedge names no fill of a maker order)."""
    covered: dict[int, Decimal] = {}
    seen: set[str] = set()
    for request in requests:
        if request.trade_ids and request.request_id not in seen:
            seen.add(request.request_id)
            coid = request.a_client_order_index
            covered[coid] = covered.get(coid, Decimal(0)) + request.size
    return covered


def carried_resting(requests: Sequence[HedgeRequest]) -> tuple[bool, RestingOrder | None]:
    """(usable, A's resting order) as the requests carry it (`HedgeRequest.a_resting`); not usable when one
    carries none or they name different orders (then B reads the key)."""
    named: set[RestingOrder] = set()
    for request in requests:
        snapshot = request.a_resting
        if snapshot is None:
            return False, None
        coid, side, price = snapshot.client_order_index, snapshot.side, snapshot.price
        if coid is not None and side is not None and price is not None:
            named.add(RestingOrder(coid, side, price, snapshot.size))
    if len(named) > 1:
        return False, None
    return True, next(iter(named), None)


def limit_bound(side: Side, resting: RestingOrder | None, tick: Decimal,
                covered: Mapping[int, Decimal] | None = None) -> Decimal | None:
    """The worst limit an IOC on `side` may have so it cannot match `resting` (None: no bound); `covered`:
    A's fills per maker order that the hedge in hand covers (`covered_fills`)."""
    if resting is None or resting.side == side.value:
        return None  # same side as A's order: B's IOC can never match it
    if not _rests_after(resting, covered or {}):
        return None  # all of it filled (the fills this hedge covers): it rests nowhere, the key is stale
    return resting.price + tick if side is Side.SELL else resting.price - tick


def _rests_after(resting: RestingOrder, covered: Mapping[int, Decimal]) -> bool:
    """Whether A's order may still rest once the fills `covered` (per maker order) are done: not all of the
    size the key names (or no size: a modify in flight) is covered."""
    filled = covered.get(resting.client_order_index, Decimal(0))
    return resting.size is None or filled < resting.size


def may_rest_after(resting: RestingOrder | None, requests: Iterable[HedgeRequest]) -> bool:
    """Whether A's order the key names may still rest once the fills `requests` cover are done: partly
    filled, being modified (an in-flight entry names no size), or another order. A feed-first hedge leaves
    such a fill to A's request (`hedger_feed`): A, not knowing the fill yet, may re-price that order."""
    if resting is None:
        return False  # A writes the key before any order or modify: no entry, no order of A's rests
    return _rests_after(resting, covered_fills(requests))


@dataclass
class LastRead:
    """The last entry of A's key any guard of B read (None: no order, or never read): what B knows of A's
    resting order when Redis goes silent (`hedger_feed.FeedWashBound`)."""

    resting: RestingOrder | None = None


class WashGuard:
    """What B's chase asks before each IOC (`execution.chase_loop.PriceGuard`); `for_hedge` gives the guard
    of one hedge, which knows which of A's fills it covers."""

    def __init__(self, bus: Bus, wait_s: float = WAIT_FOR_A_S, covered: Mapping[int, Decimal] | None = None,
                 first_read: asyncio.Future[RestingOrder | None] | None = None,
                 last: LastRead | None = None) -> None:
        self.bus = bus
        self.wait_s = wait_s
        self.covered = dict(covered or {})
        self._first_read = first_read  # a read of the key started when the batch arrived, for the first bound
        self.last = last if last is not None else LastRead()  # shared with the guards `for_hedge` gives

    def read_ahead(self) -> asyncio.Future[RestingOrder | None]:
        """Start reading A's key now, for the first bound of a hedge of the batch just received (module
        docstring). One no hedge took is left to finish; its result goes unused."""
        read = asyncio.ensure_future(read_resting(self.bus))
        read.add_done_callback(retrieve_outcome)  # a Redis error no hedge awaited is not an unhandled one
        return read

    async def read_within(self, timeout_s: float) -> asyncio.Future[RestingOrder | None]:
        """Read A's key now, for the first bound of a hedge from the trade feed while Redis answers
        (`hedger_feed`): TimeoutError past `timeout_s` (a Redis that has just stopped answering: the hedge
        falls back to the feed's wait and its own bound), a RedisError as it comes."""
        async with asyncio.timeout(timeout_s):
            return self.known(await read_resting(self.bus))

    @staticmethod
    def known(resting: RestingOrder | None) -> asyncio.Future[RestingOrder | None]:
        """A first read already answered (A's resting order as its request carried it): no round trip."""
        read: asyncio.Future[RestingOrder | None] = asyncio.get_running_loop().create_future()
        read.set_result(resting)
        return read

    def for_hedge(self, requests: Iterable[HedgeRequest],
                  first_read: asyncio.Future[RestingOrder | None] | None = None) -> WashGuard:
        """The guard for the hedge of `requests`: A's order they fill completely bounds nothing."""
        return WashGuard(self.bus, self.wait_s, covered_fills(requests), first_read, self.last)

    async def bound(self, side: Side, tick: Decimal) -> Decimal | None:
        read, self._first_read = self._first_read, None
        resting = await read if read is not None else await read_resting(self.bus)
        self.last.resting = resting
        return limit_bound(side, resting, tick, self.covered)

    async def wait_unbound(self, side: Side, tick: Decimal) -> Decimal | None:
        """Wait (at most `wait_s`) until A's order no longer bounds `side`; the bound then (None: gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        bound = await self.bound(side, tick)
        while bound is not None and loop.time() < deadline:
            await asyncio.sleep(POLL_S)  # a poll of a local key: simpler than a channel for a 2 s wait
            bound = await self.bound(side, tick)
        return bound


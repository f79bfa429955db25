"""The fill tracker: adapter events into the journal, and each new fill announced to the strategy once.

One-to-one confirmation: every fill is keyed by its trade id (with market, account, side and an epoch:
`fill_identity`) and matched to exactly one order by client order index. A trade seen twice (WebSocket, then
the trades endpoint during reconciliation) is applied and announced once, because both paths go through
`ingest_fill`.

A fill that does not name its client order index (older venue captures lack `ask_client_id` /
`bid_client_id`) is matched by the exchange order index instead: the tracker learns order index -> client
order index from every order update (stream or REST) and from the journal. A fill whose order is not known
yet is HELD, never attributed to client order index 0: it is applied as soon as an order update names its
order; the reconciler looks the orders up by REST when it waits longer (`settle_due`); it is given up,
logged, after `HOLD_FILL_S` (the positions check still sees what it did). At most `HOLD_FILLS_MAX` wait.

A fill is marked announced in the journal only after the strategy's callback returned; a fill stored but
not announced (callback failed, process died) is announced again by `announce_pending` (at start and after
each reconciliation), so downstream must treat a fill it has already handled as done.

`timeout` parameters keep the names of the pinned interface (hence the ASYNC109 exemptions).

Callers wait on conditions without polling: every applied event wakes the waiters, which re-check their
predicate against the journal (`wait_terminal`, `wait_filled`, `wait_fills_applied`, `wait_for`).

Positions: the stream's positions channel keeps `positions` (a snapshot replaces the whole set, an update
the markets it names; a size of 0 is flat), and reconciliation replaces them with the exchange's REST answer.
`stream_position` says when that number can be acted on: the stream is up, a whole set came since it was last
down, and the market's position was reported after the last new fill of that market was applied. A position
frame trails the trade frame of its fill on the venue (captured: `account_all` sends the trades, then the
positions) and in the simulator; until it comes, the number may not count the fill, so it is not offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from loguru import logger

from hedge_strategy.exchange.coid import describe_coid
from hedge_strategy.exchange.events import (
    AllPositions,
    Event,
    Fill,
    OrderUpdate,
    PositionSnapshot,
    PublicTrade,
    StreamDown,
    StreamUp,
    TopOfBook,
    TxOutcome,
)
from hedge_strategy.execution.fill_identity import FillKey
from hedge_strategy.execution.journal import Journal, JournalFill, JournalOrder, OrderState
from hedge_strategy.execution.tx_verdicts import TxVerdicts, apply_verdict

FillCallback = Callable[[JournalFill, JournalOrder | None], Awaitable[None]]
T = TypeVar("T")

HOLD_FILLS_MAX = 1000  # fills waiting for their order; beyond it the oldest is given up (logged)
HOLD_FILL_S = 60.0  # a held fill whose order neither the stream nor a REST lookup named by then is given up
ORDER_INDEXES_KEPT = 10_000  # order index -> client order index pairs remembered (the oldest are forgotten)


@dataclass(frozen=True)
class HeldFill:
    fill: Fill
    source: str
    since: float  # time.monotonic() when it was first held


def journal_fill(fill: Fill, source: str, client_order_index: int) -> JournalFill:
    return JournalFill(trade_id=fill.trade_id, client_order_index=client_order_index,
                       account_index=fill.account_index, market_id=fill.market_id, side=fill.side,
                       size=fill.size, price=fill.price, fee=fill.fee, is_maker=fill.is_maker,
                       ts_ms=fill.ts_ms, source=source, order_index=fill.order_index)


class OrderTracker:
    """Consumes one account's adapter events (a `LighterAccount.subscribe()` queue) into its journal."""

    def __init__(self, journal: Journal, events: asyncio.Queue[Event], on_fill: FillCallback | None = None
                 ) -> None:
        self.journal = journal
        self.account_index = journal.account_index
        self.positions: dict[int, PositionSnapshot] = {}  # stream belief; reconciliation replaces it
        self.stream_connected = False
        # Order of what was applied, to tell a position reported after a fill from one that may predate it.
        self._step = 0
        self._positions_known = False  # a whole set (stream snapshot or REST) came since the stream was down
        self._set_step = 0  # step of the last whole set (a REST one: when its read began)
        self._position_step: dict[int, int] = {}  # market -> step of its last position update since then
        self._fill_step: dict[int, int] = {}  # market -> step of its last new fill
        self.reconnects = 0  # StreamUp(reconnect=True) seen so far
        self._events = events
        self._on_fill = on_fill
        self._changed = asyncio.Event()
        self._announcing: set[FillKey] = set()
        self._foreign_orders_logged: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._coid_by_order_index: dict[int, int] = {}
        self._held: dict[int, HeldFill] = {}  # by trade id
        self._given_up: dict[int, None] = {}  # trade ids given up (ordered, bounded): not held again
        self.txs = TxVerdicts()  # the sequencer's verdicts on our sends (tx_verdicts.py)
        for order in journal.unresolved():  # orders from before a restart whose index is already known
            if order.order_index:
                self._learn(order.order_index, order.client_order_index)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Announce fills a previous run stored but never announced, then consume events in the background."""
        await self.announce_pending()
        self._task = asyncio.create_task(self.run(), name=f"order-tracker-{self.account_index}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Apply events from the queue forever; one bad event is logged and skipped, never fatal."""
        while True:
            event = await self._events.get()
            try:
                await self.handle(event)
            except Exception:
                logger.exception("tracker {}: failed to apply {!r}; skipped", self.account_index, event)

    # ---------------------------------------------------------------- applying events

    async def handle(self, event: Event) -> None:
        if isinstance(event, Fill):
            await self.ingest_fill(event, source="ws")
        elif isinstance(event, OrderUpdate):
            self.apply_update(event, source="ws")
            await self.release_held()
        elif isinstance(event, PositionSnapshot):
            self._apply_position(event)
        elif isinstance(event, AllPositions):
            self._apply_all_positions(event)
        elif isinstance(event, StreamUp):
            self._apply_stream_up(event)
        elif isinstance(event, TxOutcome):
            self.apply_tx_outcome(event, source="ws")
        elif isinstance(event, StreamDown):
            self.stream_connected = False
            self._positions_known = False  # updates were missed: the next snapshot makes them whole again
            logger.warning("tracker {}: stream down ({}); fills meanwhile are recovered by reconciliation",
                           self.account_index, event.reason)
            self._notify()
        elif not isinstance(event, TopOfBook | PublicTrade):  # the market's, not the account's: the role's
            logger.warning("tracker {}: unexpected event {!r} ignored", self.account_index, event)

    def apply_update(self, update: OrderUpdate, source: str) -> bool:
        """Apply an order update (stream or REST); True if the journal changed."""
        if update.account_index != self.account_index:
            logger.warning(
                "tracker {}: order update of account {} ignored", self.account_index, update.account_index)
            return False
        if update.client_order_index and update.order_index:
            self._learn(update.order_index, update.client_order_index)
        if self.journal.get(update.client_order_index) is None:
            if update.client_order_index not in self._foreign_orders_logged:
                self._foreign_orders_logged.add(update.client_order_index)
                logger.info(
                    "tracker {}: {} order {} ({}) is not in the journal; not tracked",
                    self.account_index,
                    source,
                    describe_coid(update.client_order_index) if update.client_order_index
                    else f"exchange order {update.order_index} without a client order index",
                    update.venue_status,
                )
            return False
        changed = self.journal.apply_order_update(update)
        if changed:
            self._notify()
        return changed

    def apply_tx_outcome(self, outcome: TxOutcome, source: str) -> bool:
        """A transaction's verdict (stream, or a lookup by hash): `tx_verdicts.apply_verdict`."""
        return apply_verdict(self, outcome, source)

    def wake(self) -> None:
        """Wake every waiter to re-check its condition (something it may wait on changed)."""
        self._notify()

    def transition(
        self, coid: int, state: OrderState, *, reason: str | None = None, order_index: int | None = None
    ) -> bool:
        """`Journal.transition` that also wakes waiters: use it for the caller's verdicts (send results)."""
        if order_index:
            self._learn(order_index, coid)
        changed = self.journal.transition(coid, state, reason=reason, order_index=order_index)
        if changed:
            self._notify()
        return changed

    async def ingest_fill(self, fill: Fill, source: str) -> bool:
        """Apply a fill and announce it if it is a new trade; False for a duplicate (any source) or a fill
        held until its order is known (see the module docstring).

        The journal decides, and logs a duplicate (INFO) or a reused trade id (WARNING) with the reason.
        """
        if fill.account_index != self.account_index:
            logger.warning("tracker {}: fill of account {} ignored", self.account_index, fill.account_index)
            return False
        coid = self.client_index_of(fill)
        if coid is None:
            self._hold(fill, source)
            return False
        if fill.client_order_index is not None and fill.order_index:
            self._learn(fill.order_index, fill.client_order_index)
        entry = self.journal.apply_fill(journal_fill(fill, source, coid))
        if entry is None:
            return False
        self._fill_step[fill.market_id] = self._next_step()  # the market's position may not count it yet
        order = self.journal.get(coid)
        if order is not None and order.order_index is None and fill.order_index:
            self.journal.transition(order.client_order_index, order.state, order_index=fill.order_index)
        if order is None:
            logger.warning(
                "tracker {}: trade {} for {} unknown to the journal; recorded, announced without an order",
                self.account_index, fill.trade_id, describe_coid(coid))
        logger.info("tracker {}: new fill trade {} {} {} {} @ {} ({}), order {} filled {}; announcing",
                    self.account_index, fill.trade_id, describe_coid(coid), fill.side, fill.size, fill.price,
                    source, order.state if order else "unknown", order.filled_size if order else "-")
        try:
            await self._announce(entry, order)
        finally:
            # Waiters are woken after the announcement, not before: what they run (the order's settlement, its
            # waits) then queues behind the task A's announcement wakes, the outbox that publishes the hedge
            # request (~0.05 ms sooner: bench/README.md, "Where the hedge path's milliseconds go"). A's
            # handler (`Maker.on_fill`) awaits nothing, so no waiter could have run in between anyway.
            self._notify()
        return True

    # ---------------------------------------------------------------- fills matched by exchange order index

    def client_index_of(self, fill: Fill) -> int | None:
        """The client order index a fill belongs to: its own, else the one learned for its order index."""
        if fill.client_order_index is not None:
            return fill.client_order_index
        known = self._coid_by_order_index.get(fill.order_index)
        if known is not None:
            return known
        for order in self.journal.unresolved():  # an index the journal learned some other way
            if order.order_index == fill.order_index:
                self._learn(order.order_index, order.client_order_index)
                return order.client_order_index
        return None

    @property
    def held_fills(self) -> list[HeldFill]:
        """Fills waiting for their order to be known, oldest first."""
        return sorted(self._held.values(), key=lambda h: h.since)

    def _learn(self, order_index: int, coid: int) -> None:
        if not coid or self._coid_by_order_index.get(order_index) == coid:
            return
        self._coid_by_order_index[order_index] = coid
        if len(self._coid_by_order_index) > ORDER_INDEXES_KEPT:
            del self._coid_by_order_index[next(iter(self._coid_by_order_index))]

    def _hold(self, fill: Fill, source: str) -> None:
        # Already recorded (matched earlier)? Client order index 0 stands for "unknown": not compared.
        if self.journal.recorded(journal_fill(fill, source, 0)) is not None:
            return
        if fill.trade_id in self._held:
            return
        if fill.trade_id in self._given_up:
            logger.debug("tracker {}: trade {} was given up before; ignored", self.account_index,
                         fill.trade_id)
            return
        self._held[fill.trade_id] = HeldFill(fill, source, time.monotonic())
        logger.info(
            "tracker {}: trade {} ({} {} @ {}, {}) names no client order index and exchange order {} is not "
            "known yet; held until an order update or a REST lookup names it",
            self.account_index,
            fill.trade_id,
            fill.side,
            fill.size,
            fill.price,
            source,
            fill.order_index,
        )
        if len(self._held) > HOLD_FILLS_MAX:
            oldest = self.held_fills[0]
            self._give_up(oldest, f"more than {HOLD_FILLS_MAX} fills waiting")
        self._notify()

    async def release_held(self) -> int:
        """Apply every held fill whose order is known now; returns how many were applied."""
        applied = 0
        for held in self.held_fills:
            coid = self.client_index_of(held.fill)
            if coid is None:
                continue
            del self._held[held.fill.trade_id]
            logger.info("tracker {}: held trade {} belongs to {} (exchange order {}); applying it",
                        self.account_index, held.fill.trade_id, describe_coid(coid), held.fill.order_index)
            if await self.ingest_fill(dataclasses.replace(held.fill, client_order_index=coid), held.source):
                applied += 1
        return applied

    def give_up_held(self, older_than_s: float = HOLD_FILL_S) -> list[Fill]:
        """Drop (logged) the held fills that waited longer than `older_than_s`; returns them."""
        cutoff = time.monotonic() - older_than_s
        stale = [h for h in self.held_fills if h.since <= cutoff]
        for held in stale:
            self._give_up(held, f"no order of ours named exchange order {held.fill.order_index} within "
                                f"{older_than_s:g} s, a REST lookup included")
        return [h.fill for h in stale]

    def _give_up(self, held: HeldFill, why: str) -> None:
        self._held.pop(held.fill.trade_id, None)
        self._given_up[held.fill.trade_id] = None
        if len(self._given_up) > HOLD_FILLS_MAX:
            del self._given_up[next(iter(self._given_up))]
        logger.warning(
            "tracker {}: trade {} ({} {} @ {}) given up: {}; not journaled (never attributed to client order "
            "index 0), the A + B positions check accounts for it",
            self.account_index,
            held.fill.trade_id,
            held.fill.side,
            held.fill.size,
            held.fill.price,
            why,
        )

    async def announce_pending(self) -> int:
        """Announce fills stored but not yet announced (a failed callback, a crash); returns how many."""
        count = 0
        for fill in self.journal.unannounced_fills():
            if fill.key in self._announcing:
                continue
            logger.info("tracker {}: trade {} for {} was stored but never announced; announcing now",
                        self.account_index, fill.trade_id, describe_coid(fill.client_order_index))
            await self._announce(fill, self.journal.get(fill.client_order_index))
            count += 1
        return count

    async def _announce(self, fill: JournalFill, order: JournalOrder | None) -> None:
        self._announcing.add(fill.key)
        try:
            if self._on_fill is not None:
                await self._on_fill(fill, order)
        except Exception:
            logger.exception(
                "tracker {}: fill callback failed for trade {}; it stays unannounced and is retried",
                self.account_index, fill.trade_id)
            return
        finally:
            self._announcing.discard(fill.key)
        self.journal.mark_announced(fill.key)

    def _apply_position(self, snapshot: PositionSnapshot) -> None:
        if snapshot.account_index != self.account_index:
            logger.warning(
                "tracker {}: position of account {} ignored", self.account_index, snapshot.account_index)
            return
        if snapshot.size == 0:
            self.positions.pop(snapshot.market_id, None)
        else:
            self.positions[snapshot.market_id] = snapshot
        self._position_step[snapshot.market_id] = self._next_step()
        self._notify()

    def _apply_all_positions(self, whole: AllPositions) -> None:
        if whole.account_index != self.account_index:
            logger.warning(
                "tracker {}: positions of account {} ignored", self.account_index, whole.account_index)
            return
        fresh = {p.market_id: p for p in whole.positions if p.size != 0}
        believed = {m: p.size for m, p in self.positions.items()}
        snapshot = {m: p.size for m, p in fresh.items()}
        if believed != snapshot:
            logger.info("tracker {}: the stream's positions snapshot ({}) replaces the positions believed "
                        "({})", self.account_index, _sizes(snapshot), _sizes(believed))
        self.replace_positions(fresh)

    def position_step(self) -> int:
        """A mark to pass to `replace_positions` when a REST read of the positions begins."""
        return self._next_step()

    def replace_positions(self, fresh: dict[int, PositionSnapshot], read_from: int | None = None) -> None:
        """The whole set (the exchange's REST answer, or a stream snapshot) replaces the belief, in place;
        wakes waiters. `read_from` (`position_step()` taken when the REST read began): a fill applied since
        then may be missing from the answer, so the positions count only from that mark."""
        self.positions.clear()
        self.positions.update({m: p for m, p in fresh.items() if p.size != 0})
        self._set_step = read_from if read_from is not None else self._next_step()
        self._position_step.clear()
        self._positions_known = True
        self._notify()

    def stream_position(self, market_id: int) -> Decimal | None:
        """The signed position in `market_id` when it can be acted on (see the module docstring), else None:
        the caller reads the exchange over REST instead."""
        if not (self.stream_connected and self._positions_known):
            return None
        reported = max(self._set_step, self._position_step.get(market_id, 0))
        if reported <= self._fill_step.get(market_id, -1):
            return None
        held = self.positions.get(market_id)
        return held.size if held is not None else Decimal(0)

    def _next_step(self) -> int:
        self._step += 1
        return self._step

    def _apply_stream_up(self, event: StreamUp) -> None:
        self.stream_connected = True
        if event.reconnect:
            self.reconnects += 1
            logger.info("tracker {}: stream reconnected (#{}); reconciliation will look for missed fills",
                        self.account_index, self.reconnects)
        else:
            logger.info("tracker {}: stream up", self.account_index)
        self._notify()

    def _notify(self) -> None:
        """Wake every waiter so it re-checks its condition."""
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    # ---------------------------------------------------------------- waiting without polling

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float) -> T:  # noqa: ASYNC109
        """The first truthy value of `predicate`, re-checked after every applied event; else TimeoutError."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                result = predicate()
                if result:
                    return result
                await changed.wait()

    async def wait_terminal(self, coid: int, timeout: float) -> JournalOrder:  # noqa: ASYNC109
        """The order once it is FILLED, CANCELED or REJECTED; TimeoutError if not within `timeout`."""
        self._require(coid)
        return await self.wait_for(lambda: self._order_if(coid, lambda o: o.is_terminal), timeout)

    async def wait_filled(self, coid: int, size: Decimal, timeout: float) -> JournalOrder:  # noqa: ASYNC109
        """The order once its filled size reaches `size`, or once it is terminal (check `filled_size`)."""
        self._require(coid)
        return await self.wait_for(
            lambda: self._order_if(coid, lambda o: o.filled_size >= size or o.is_terminal), timeout)

    async def wait_fills_applied(self, coid: int, timeout: float) -> JournalOrder:  # noqa: ASYNC109
        """The order once every fill the exchange reported for it is in the journal as a fill."""
        self._require(coid)
        return await self.wait_for(
            lambda: self._order_if(coid, lambda o: self.journal.fills_total(coid) >= o.filled_size), timeout)

    async def wait_change(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True once any event was applied (or a waiter was woken) within `timeout`, else False."""
        changed = self._changed
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def wait_stream_position(self, market_id: int, timeout: float) -> Decimal:  # noqa: ASYNC109
        """`stream_position` once it can be acted on; TimeoutError if not within `timeout`."""
        found = await self.wait_for(lambda: _boxed(self.stream_position(market_id)), timeout)
        return found[0]

    async def wait_reconnect(self, seen: int, timeout: float) -> int:  # noqa: ASYNC109
        """The reconnect count once it exceeds `seen`; TimeoutError if no reconnect within `timeout`."""
        return await self.wait_for(lambda: self.reconnects if self.reconnects > seen else None, timeout)

    def _require(self, coid: int) -> None:
        if self.journal.get(coid) is None:
            raise KeyError(f"{describe_coid(coid)} is not in the journal")

    def _order_if(self, coid: int, condition: Callable[[JournalOrder], bool]) -> JournalOrder | None:
        order = self.journal.get(coid)
        return order if order is not None and condition(order) else None


def _sizes(by_market: dict[int, Decimal]) -> str:
    return ", ".join(f"market {m}: {size}" for m, size in sorted(by_market.items())) or "flat"


def _boxed(value: T | None) -> tuple[T] | None:
    """`value` in a tuple (truthy even when the value is 0), or None: for `wait_for` predicates."""
    return None if value is None else (value,)

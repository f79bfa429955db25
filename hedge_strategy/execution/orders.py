"""The one path every order takes (A's maker orders, B's hedges, `hedgectl clear`'s closes): `OrderExecutor`.

Client order index -> write-ahead record, committed while the order is signed (the post waits for it) ->
send -> the adapter's venue-neutral answer (`SendResult`) -> state -> mark sent (the rule: `submit`) -> final.
Every order that ends is counted and emitted here (`order_ended`; a hedge's send `hedge_attempt`, a cancel
`cancel_sent`); what the role does about an answer, and its log line, stays with the role or the chase.
The roles read their orders through it too, so tests put an in-memory fake under them. `docs/design.md`,
"Execution", has the whole path and one fill traced through it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from loguru import logger

from hedge_strategy.chase import average_price
from hedge_strategy.exchange import (
    Fill,
    LighterAccount,
    MarketInfo,
    PriceAtSend,
    Purpose,
    Role,
    SendResult,
    SendStatus,
    Side,
    VenueError,
    describe_coid,
    make_coid,
)
from hedge_strategy.execution.journal import (
    DuplicateOrderError,
    Intent,
    Journal,
    JournalOrder,
    OrderState,
    new_order,
    now_ms,
)
from hedge_strategy.execution.models import RESTING_ORDER_TYPE
from hedge_strategy.execution.reconcile import Reconciler, ReconcileReport
from hedge_strategy.execution.tracker import OrderTracker
from hedge_strategy.observe import EventKind, HedgeMetrics, RoleEvents
from hedge_strategy.task_end import end_tasks


class ModifyOvertaken(Exception):
    """A modify's write-ahead met a fill or the order's end: it is not sent (`OrderExecutor.modify`)."""


class OrderKind(StrEnum):
    POST_ONLY = "post_only"
    IOC = "ioc"


@dataclass(frozen=True)
class OrderSpec:
    """One order to send. `coid`: from `OrderExecutor.next_coid` or, for B's hedges, `hedger.hedge_coid`.
    `price`: the limit, or (post-only only) a function giving it when the order leaves: see `submit`."""

    coid: int
    intent: Intent
    market: MarketInfo
    side: Side
    size: Decimal
    price: Decimal | PriceAtSend
    kind: OrderKind
    reduce_only: bool = False
    request_id: str | None = None  # the hedge request(s) it serves, joined by ',' (B's idempotency index)
    attempt: int | None = None  # its number in a chase, carried by its events
    # Published with the write-ahead record, before the post, with the price the order leaves with (A names
    # its resting order for B's wash guard). A failure sends nothing: the order is rejected "not sent".
    announce: Callable[[Decimal], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Submitted:
    """What became of a send: the order as the journal holds it now, and the venue's answer."""

    order: JournalOrder  # the journal's live object: its state moves as the exchange reports
    result: SendResult | None  # None: the client order index was in the journal already; nothing was sent
    sent_us: int  # when the send began, µs since the epoch (latency figures)

    @property
    def status(self) -> SendStatus | None:  # None: not sent
        return self.result.status if self.result is not None else None

    @property
    def detail(self) -> str:
        """The venue's answer in one phrase for logs, or why nothing was sent."""
        return self.result.detail if self.result is not None else "already in the journal: not sent again"


class OrderExecutor:
    """One account's orders. See the module docstring; `name` ("A", "B", "clear A") starts its log lines."""

    def __init__(self, account: LighterAccount, journal: Journal, tracker: OrderTracker,
                 reconciler: Reconciler, *, name: str, events: RoleEvents, metrics: HedgeMetrics,
                 request_timeout_s: float, unknown_grace_s: float, lookup_after_s: float = 1.0) -> None:
        self.account = account
        self.journal = journal
        self.tracker = tracker
        self.reconciler = reconciler
        self.name = name
        self.events = events
        self.metrics = metrics
        self.request_timeout_s = request_timeout_s
        self.lookup_after_s = lookup_after_s  # how long the stream gets before an order is looked up by REST
        # Long enough for the reconciler's grace to run out: after it, an order never found never arrived.
        self.settle_timeout_s = unknown_grace_s + request_timeout_s
        self._late_cancels: set[asyncio.Task[None]] = set()
        journal.on_executed_late(self._cancel_if_resting)

    def _cancel_if_resting(self, order: JournalOrder) -> None:
        """A post-only order the bot had given up (REJECTED: never found past the grace) that the exchange
        shows after all is cancelled at once: nobody means it to rest, A may have placed its next order
        meanwhile, and B's wash guard names only that one (`bus.resting`). IOCs end by themselves."""
        if order.is_terminal or order.order_type != RESTING_ORDER_TYPE:
            return
        cancel = self._cancel_late(order.market_id, order.client_order_index)
        task = asyncio.get_running_loop().create_task(cancel)
        self._late_cancels.add(task)
        task.add_done_callback(self._late_cancels.discard)

    async def _cancel_late(self, market_id: int, coid: int) -> None:
        try:
            await self.send_cancel(self.account.market_by_id(market_id), coid,
                                   "it executed after it had been given up: nobody means it to rest")
        except Exception as exc:  # the next cycle's reconciliation cancels it (A cancels what it left live)
            logger.warning("{}: the cancel of {}, executed late, could not be sent ({!r}); the next cycle "
                           "cancels it", self.name, describe_coid(coid), exc)

    @property
    def account_index(self) -> int:
        return self.account.account_index

    async def close(self) -> None:
        await end_tasks(self._late_cancels, f"{self.name}: the cancel of an order executed late")
        await self.tracker.stop()
        await self.journal.close()
        await self.account.close()

    # ---------------------------------------------------------------- the send path

    def next_coid(self, role: Role, purpose: Purpose, sequence: str) -> int:
        """A client order index numbered by the journal's `sequence`: unique across restarts."""
        return make_coid(role, purpose, self.journal.next_sequence(sequence))

    async def submit(self, spec: OrderSpec) -> Submitted:
        """Record, send, classify, set the state, mark sent. Raises only when the journal record failed
        (nothing was sent then); a client order index already in the journal is not sent again.

        A price given as a function (A's maker price) is read when the order leaves: after the send's turn
        and the throttle's wait, right before signing; the journal records the price read (written ahead of
        the post, committing while the order is signed). When it gives no price the order is given up: not
        recorded, answered REJECTED "not sent"."""
        sent_us = time.time_ns() // 1000
        records: list[tuple[JournalOrder, asyncio.Future[object]]] = []

        def record(price: Decimal) -> asyncio.Future[object]:
            order = new_order(client_order_index=spec.coid, account_index=self.account_index,
                              market_id=spec.market.market_id, intent=spec.intent, side=spec.side,
                              size=spec.size, price=price, order_type=spec.kind.value, now_ms=now_ms(),
                              reduce_only=spec.reduce_only, request_id=spec.request_id)
            records.append((order, asyncio.ensure_future(self._write_ahead(order, spec.announce))))
            return records[-1][1]  # commits while the order is signed

        if isinstance(spec.price, Decimal):
            place = self.account.place_ioc if spec.kind is OrderKind.IOC else self.account.place_post_only
            recorded = record(spec.price)
            result = await place(spec.market, spec.side, spec.size, spec.price, spec.coid, spec.reduce_only,
                                 ready=recorded)
        else:
            assert spec.kind is OrderKind.POST_ONLY, "only a post-only order is priced at departure"
            result = await self.account.place_post_only_at_departure(
                spec.market, spec.side, spec.size, spec.price, spec.coid, spec.reduce_only, record=record)
            if not records:  # given up at departure: nothing recorded, nothing sent
                return Submitted(self._given_up(spec, result), result, sent_us)
        order, recorded = records[0]
        try:
            await recorded  # a failed record was not followed by a send (REJECTED "not sent"): raise it
        except DuplicateOrderError:
            known = self.journal.get(spec.coid)
            assert known is not None, f"{describe_coid(spec.coid)} reported in the journal but not found"
            return Submitted(known, None, sent_us)
        # The write-ahead record's line comes after the post, not when it commits: formatting and writing a
        # line on the event loop thread (~0.4 ms p50 under load) delayed the post whenever the record finished
        # after the signature (bench/README.md, "Where the hedge path's milliseconds go").
        logger.info("journal: recorded {} {} {} {} @ {} ({}) before its send",
                    describe_coid(order.client_order_index), order.intent, order.side, order.size,
                    order.price, order.order_type)
        if result.tx_hash:
            self.tracker.txs.sent(spec.coid, result.tx_hash)  # its verdict settles it: tx_verdicts.py
        if spec.intent is Intent.HEDGE:
            self.events.emit(EventKind.HEDGE_ATTEMPT, request_ids=tuple((spec.request_id or "").split(",")),
                             attempt=spec.attempt, coid=spec.coid, side=spec.side, size=spec.size,
                             price=order.price, state=result.status)
        if result.status is SendStatus.REJECTED:
            self.tracker.transition(spec.coid, OrderState.REJECTED, reason=result.detail)
            self.ended(self.journal.get(spec.coid) or order, spec.attempt)
        else:
            # Marked sent once the venue answered (accepted, or no verdict), never before the post: an order
            # this process recorded and has not marked sent is a send in flight, which the reconciler leaves
            # to its sender (a lookup that does not find it proves nothing while the post may still land, or
            # wait out 429s). From the mark on, the grace runs: not found after it, the order never arrived.
            # A crash between the post and the mark leaves a PENDING_SUBMIT row with no send time, created
            # before the next process started: that process's reconciliation looks it up by client order
            # index, applies what it finds, and rejects it ("never reached the exchange") only when it is not
            # found a grace after its creation. A refused send is never marked: it is final at once.
            self.journal.mark_sent(spec.coid, now_ms())
            if result.status is SendStatus.UNKNOWN:
                self.tracker.transition(spec.coid, OrderState.UNKNOWN, reason=result.message)
        return Submitted(self.journal.get(spec.coid) or order, result, sent_us)

    async def _write_ahead(self, order: JournalOrder,
                           announce: Callable[[Decimal], Awaitable[None]] | None) -> None:
        """The journal record, then the announcement if any; the post waits for both."""
        await self.journal.record_new(order)
        if announce is None:
            return
        try:
            await announce(order.price)
        except BaseException as exc:
            self.tracker.transition(order.client_order_index, OrderState.REJECTED,
                                    reason=f"not sent: announcing it failed ({exc!r})")
            raise

    def _given_up(self, spec: OrderSpec, result: SendResult) -> JournalOrder:
        """The order a send gave up at departure, as a REJECTED record kept nowhere (it has no price)."""
        order = new_order(client_order_index=spec.coid, account_index=self.account_index,
                          market_id=spec.market.market_id, intent=spec.intent, side=spec.side, size=spec.size,
                          price=Decimal(0), order_type=spec.kind.value, now_ms=now_ms(),
                          reduce_only=spec.reduce_only, request_id=spec.request_id)
        order.state, order.reason = OrderState.REJECTED, result.detail
        return order

    async def finish(self, coid: int, attempt: int | None = None) -> JournalOrder:
        """An order just sent (an IOC), in its final state with all its fills: the stream first, for
        `lookup_after_s`, then the exchange by client order index (after 2x, 4x ... that on the stream
        again) until the grace is over. An IOC ends within its speed bump, so an order the stream has not
        ended by then is looked up at once, not seconds later: an ambiguous send (no answer, 5xx) that
        reached the venue is found and settled by its client order index; one that did not is REJECTED once
        the grace is over (the reconciler's rule). Counted and emitted as ended (in the state it reached)."""
        order = await self.reconciler.confirm_final(coid, timeout=self.settle_timeout_s,
                                                    first_look_s=self.lookup_after_s)
        self.ended(order, attempt)
        return order

    async def confirm_final(self, coid: int, timeout_s: float | None = None) -> JournalOrder:
        """The order in its final state with every fill applied (a fill racing a cancel included); still live
        when `timeout_s` (default: until the grace is over) ran out. See `Reconciler.confirm_final`."""
        timeout = self.settle_timeout_s if timeout_s is None else timeout_s
        return await self.reconciler.confirm_final(coid, timeout=timeout)

    async def cancel(self, market: MarketInfo, coid: int, why: str, confirm_s: float) -> JournalOrder:
        """Cancel and confirm the final state (within `confirm_s`); a fill racing the cancel is applied."""
        await self.send_cancel(market, coid, why)
        return await self.confirm_final(coid, confirm_s)

    async def send_cancel(self, market: MarketInfo, coid: int, why: str) -> SendResult:
        """Send a cancel of `coid` and return the venue's answer, confirming nothing: for a caller that waits
        for the order's end on its own terms (A's resting loop, which a failed hedge must wake)."""
        result = await self.account.cancel(market, coid)
        refused = self.tracker.txs.cancel_sent(coid, result.tx_hash) if result.tx_hash else None
        if refused is not None:  # its verdict came before its answer: the wait for it ends at once
            logger.warning("{}: the cancel of {} was {} already", self.name, describe_coid(coid),
                           refused.describe())
        logger.info("{} cancelling {} ({}): cancel {} {}", self.name, describe_coid(coid), why,
                    result.status.value, f"({result.detail})" if not result.accepted else "")
        self.events.emit(EventKind.CANCEL_SENT, coid=coid, reason=why, state=result.status)
        return result

    async def modify(self, market: MarketInfo, coid: int, price_at_send: PriceAtSend, why: str,
                     announce: Callable[[Decimal], Awaitable[None]] | None = None) -> SendResult:
        """Re-price a live order with nothing filled in place: one ModifyOrder, priced when it leaves as a
        `submit` with a price function is (None: given up, REJECTED "not sent", nothing recorded).

        Write-ahead: before the post the journal commits the new price as the order's modify in flight
        (`JournalOrder.modify_price`), then `announce(price)` runs (A widens its entry for B's wash guard);
        either failing sends nothing, and so does a fill or an end of the order the journal learnt of before
        both were done (`_write_ahead_modify`). The order's `price` changes only when the exchange shows the
        new one (`Journal.apply_order_update`); a modify refused at sendTx or by the sequencer (`tx_verdicts`)
        leaves it where the exchange last showed it, an unanswered one to the exchange's next report, and one
        that meets an order ended meanwhile does nothing (the venue refuses or ignores it). Never raises for
        the venue's trouble or a failed record (the answer says it: REJECTED "not sent")."""
        order = self.journal.get(coid)
        if order is None or order.is_terminal or order.modify_price is not None or order.filled_size > 0:
            raise ValueError(f"{describe_coid(coid)} is not live, unfilled and without a modify in flight")
        records: list[tuple[Decimal, asyncio.Future[object]]] = []

        def record(price: Decimal) -> asyncio.Future[object]:
            records.append((price, asyncio.ensure_future(self._write_ahead_modify(coid, price, announce))))
            return records[-1][1]  # commits while the modify is signed

        result = await self.account.modify_at_departure(market, coid, order.remaining_size, price_at_send,
                                                        record=record)
        price = records[0][0] if records else None
        if records:
            try:
                await records[0][1]
            except Exception as exc:  # not followed by a send: the answer says "not sent", logged below
                logger.warning("{}: the modify of {} was not recorded ({!r})", self.name, describe_coid(coid),
                               exc)
        refused = self.tracker.txs.modify_sent(coid, result.tx_hash) if result.tx_hash and records else None
        if records and (result.status is SendStatus.REJECTED or refused is not None):
            self.journal.modify_settled(coid, f"refused ({refused.describe() if refused else result.detail})")
            self.tracker.wake()
        logger.info("{} modifying {} to {} ({}): modify {} {}", self.name, describe_coid(coid),
                    price if price is not None else "-", why, result.status.value,
                    f"({result.detail})" if not result.accepted else "")
        self.events.emit(EventKind.MODIFY_SENT, coid=coid, price=price, reason=why, state=result.status)
        return result

    async def _write_ahead_modify(self, coid: int, price: Decimal,
                                  announce: Callable[[Decimal], Awaitable[None]] | None) -> None:
        """The journal's record of the modify, then the announcement if any; the post waits for both. A fill
        (or the order's end) the journal learnt of meanwhile sends nothing: its hedge request may have gone
        out while the announcement was on its way, naming the order at its old price only (B's first bound,
        `bus.first_publish`, or a read of the key before the announcement landed), and the venue would move
        the remainder to the new price. Checked after the announcement: a fill learnt of later is announced
        after it, so its request names the widened entry."""
        await self.journal.record_modify(coid, price)
        if announce is not None:
            await announce(price)
        order = self.journal.get(coid)
        if order is None or order.is_terminal or order.filled_size > 0:
            raise ModifyOvertaken(f"{describe_coid(coid)} filled or ended while its modify was recorded")

    async def cancel_all(self, why: str) -> SendResult:
        """Cancel every resting order of the account (`hedgectl clear`), in one send; nothing is confirmed
        here: a cancel executes after its answer, so the caller reads the open orders again."""
        result = await self.account.cancel_all()
        if result.status is SendStatus.REJECTED:
            logger.warning("{}: cancel-all refused ({}); {}", self.name, result.detail, why)
        else:
            logger.info("{}: cancel-all sent ({}): {}", self.name, why, result.status.value)
        self.events.emit(EventKind.CANCEL_SENT, reason=why, state=result.status)
        return result

    def ended(self, order: JournalOrder, attempt: int | None = None) -> None:
        """Count and emit an order that ended (refused, or final as far as the exchange said)."""
        self.metrics.order(order.intent, order.state)
        self.events.emit(EventKind.ORDER_ENDED, coid=order.client_order_index, attempt=attempt,
                         state=order.state, size=order.size, filled=order.filled_size,
                         price=self.average_price(order.client_order_index), reason=order.reason)

    # ---------------------------------------------------------------- orders and fills, as journaled

    def order(self, coid: int) -> JournalOrder | None:
        return self.journal.get(coid)

    def unresolved(self, intent: Intent) -> list[JournalOrder]:
        """Orders of `intent` still open or with an unknown outcome, oldest first."""
        return [o for o in self.journal.unresolved() if o.intent is intent]

    def orders_for_request(self, request_id: str) -> list[JournalOrder]:
        return self.journal.orders_for_request(request_id)

    def average_price(self, coid: int) -> Decimal | None:
        return average_price((f.size, f.price) for f in self.journal.fills_for(coid))

    async def fill_prices(self, orders: Sequence[JournalOrder]) -> list[tuple[Decimal, Decimal]]:
        """(size, price) of every fill of `orders`. When the exchange reports more filled than the fills we
        hold (a fill still in flight), they are read from the trades endpoint; what is still missing is
        priced at the order's limit, the worst it can have filled at, and said in the log. A read the
        exchange does not answer (a burst of 429s, a timeout) is logged and leaves the price to the fills
        the stream gave and the limit: it never raises, since the sizes (what the hedge is) are known."""
        fills: list[tuple[Decimal, Decimal]] = []
        for order in orders:
            coid = order.client_order_index
            if self.journal.fills_total(coid) < order.filled_size:
                try:
                    await self.reconciler.recover_order_fills(order)
                except (VenueError, OSError, TimeoutError) as exc:
                    logger.warning("{}: the fills of {} could not be read from the exchange ({!r}); priced "
                                   "from the fills the stream gave, the rest at the limit", self.name,
                                   describe_coid(coid), exc)
            own = [(f.size, f.price) for f in self.journal.fills_for(coid)]
            missing = order.filled_size - sum((size for size, _ in own), Decimal(0))
            if missing > 0:
                logger.warning("{}: {} filled {} but only {} of its fills are known; the rest is priced at "
                               "its limit {}", self.name, describe_coid(coid), order.filled_size,
                               order.filled_size - missing, order.price)
                own.append((missing, order.price))
            fills.extend(own)
        return fills

    # ---------------------------------------------------------------- waiting on the exchange

    async def wait_final(self, coid: int, timeout_s: float) -> JournalOrder:
        """The order once the stream (or a reconciliation) made it final; TimeoutError otherwise."""
        return await self.tracker.wait_terminal(coid, timeout=timeout_s)

    async def wait_filled(self, coid: int, size: Decimal, timeout_s: float) -> JournalOrder:
        """The order once it filled `size` or more, or once it is final; TimeoutError otherwise."""
        return await self.tracker.wait_filled(coid, size, timeout=timeout_s)

    async def wait_modified(self, coid: int, timeout_s: float) -> JournalOrder:
        """The order once no modify of it is in flight (the exchange showed its price, refused it, or ended
        the order); TimeoutError otherwise."""

        def settled() -> JournalOrder | None:
            order = self.journal.get(coid)
            return order if order is not None and order.modify_price is None else None

        return await self.tracker.wait_for(settled, timeout=timeout_s)

    async def wait_known(self, coids: Sequence[int], timeout_s: float) -> None:
        """Until none of `coids` has an UNKNOWN outcome any more; TimeoutError otherwise."""

        def known() -> bool:
            return all((o := self.journal.get(c)) is None or o.state is not OrderState.UNKNOWN for c in coids)

        await self.tracker.wait_for(known, timeout=timeout_s)

    def stream_quiet_s(self) -> float:
        """Seconds without news from the account's stream: since its last frame while it is up, infinite
        while it is down (what it would have told is not replayed: only REST can tell it)."""
        return self.account.seconds_since_heard() if self.account.stream_up else math.inf

    async def probe_stream(self, timeout_s: float) -> bool:
        """Ping the account stream and wait up to `timeout_s` for a frame: True when it answered (it is alive,
        so its silence says nothing happened), False when it did not or is down. Costs no REST weight."""
        return await self.account.probe_stream(timeout_s)

    async def check_by_rest(self, coid: int) -> list[Fill]:
        """One look at a live order by client order index, its missing fills read if it filled; each fill
        found is applied and announced once, as if streamed (`Reconciler.check_order`). The fills this look
        was first to record; raises `VenueError` when the exchange does not answer."""
        return await self.reconciler.check_order(coid)

    async def reconcile(self, reason: str) -> ReconcileReport:
        """One reconciliation run now (positions, unresolved orders, missed fills)."""
        return await self.reconciler.run_once(reason)

    def held(self, market_id: int) -> Decimal:
        """The signed position in `market_id` as the stream (and the last reconciliation) reported it."""
        position = self.tracker.positions.get(market_id)
        return position.size if position is not None else Decimal(0)

    def stream_position(self, market_id: int) -> Decimal | None:
        """The signed position in `market_id` from the stream when it can be acted on (the stream up, the
        position reported after the market's last fill: `OrderTracker.stream_position`), else None."""
        return self.tracker.stream_position(market_id)

    async def wait_stream_position(self, market_id: int, timeout_s: float) -> Decimal | None:
        """`stream_position` once it can be acted on, waiting at most `timeout_s`; None if it cannot then."""
        try:
            return await self.tracker.wait_stream_position(market_id, timeout_s)
        except TimeoutError:
            return None

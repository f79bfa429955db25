"""Account B: the hedger. Read top to bottom: start-up, the read loop, one batch, one hedge, the outcome.

Every request is hedged at most once, whatever restarts: a request with a stored outcome is only
acknowledged; a request with hedge orders in the journal is resumed from what the exchange says about those
orders (never a new attempt while an earlier one may still fill); only a request with neither is hedged.
Client order indexes derive from the request id and the attempt number, so a redelivered request maps to
the same orders. Requests waiting together on the same market and side are netted into one order. The
outcome is stored before the deliveries are acknowledged (one Redis transaction). A request that raises
while it is prepared (before any order of it is sent) is answered as failed with the reason, not retried.

Metrics: each attempt's end is counted; the latency stages (`request_received`, `hedge_sent`,
`hedge_filled`) of each hedged fill are recorded once its outcome is out, off the hot path. B raises one
alert only, heartbeat_lost for A's heartbeat: A sees every outcome and raises the hedge alerts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy import chase
from hedge_strategy.bus import FAILED, FILLED, BusMessageError, Delivery, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.exchange import (
    MarketInfo,
    Purpose,
    Role,
    SendStatus,
    Side,
    VenueError,
    derived_number,
    describe_coid,
    make_coid,
)
from hedge_strategy.execution import DuplicateOrderError, Intent, JournalOrder, OrderState, new_order
from hedge_strategy.hedger_hold import HoldGate
from hedge_strategy.observe import EventKind
from hedge_strategy.runtime import Runtime

READ_BLOCK_MS = 1000  # a blocked read returns at least this often, so a stop is noticed within a second
CLAIM_EVERY_S = 10.0  # how often deliveries idle in any consumer's pending list are taken over
CLAIM_IDLE_MS = 30_000  # a delivery idle this long belongs to nobody working on it
NO_TOUCH_WAIT_S = 0.5
# Errors that say Redis or the exchange is unavailable, not that the request is wrong: never a failed outcome.
UNAVAILABLE_ERRORS = (RedisError, VenueError, OSError, TimeoutError)


def hedge_coid(first_request_id: str, attempt: int) -> int:
    """The client order index of attempt `attempt` of the hedge that starts with `first_request_id`."""
    return make_coid(Role.B, Purpose.HEDGE, derived_number(f"{first_request_id}#{attempt}"))


@dataclass
class HedgeJob:
    """One hedge order's worth of requests (netted), and where the chase stands."""

    request_ids: list[str]  # the first one names the client order indexes
    market: MarketInfo
    side: Side
    size: Decimal
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[HedgeRequest] = field(default_factory=list)
    received_ms: int = field(default_factory=now_ms)
    attempts: list[JournalOrder] = field(default_factory=list)
    first_touch: Decimal | None = None
    sent_ms: int | None = None
    failure: str | None = None

    @property
    def filled(self) -> Decimal:
        return sum((o.filled_size for o in self.attempts), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return max(self.size - self.filled, Decimal(0))

    @property
    def label(self) -> str:
        return ", ".join(self.request_ids)


def net_requests(deliveries: list[Delivery]) -> list[tuple[list[HedgeRequest], list[Delivery]]]:
    """Group new deliveries into hedges: one per (market, side), requests in arrival order, each id once."""
    groups: dict[tuple[int, str], tuple[list[HedgeRequest], list[Delivery]]] = {}
    for delivery in deliveries:
        request = delivery.request
        requests, group_deliveries = groups.setdefault((request.market_id, request.side), ([], []))
        if all(r.request_id != request.request_id for r in requests):
            requests.append(request)
        group_deliveries.append(delivery)
    return list(groups.values())


class Hedger:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cfg = rt.config.strategy
        self.consumer = f"b-{rt.account.account_index}"
        self.hedges_done = 0
        self.busy = False
        self.gate = HoldGate(rt.bus, rt.events)  # `hedgectl clear` holds B: nothing new is read while held

    # ---------------------------------------------------------------- the whole life

    async def run(self) -> None:
        await self.rt.start_tracking()  # returns without a complete reconciliation only when stopping
        if self.rt.stopping:
            await self.rt.journal.flush()
            logger.info("B stopped before it was ready: nothing read, nothing hedged, journal flushed")
            self.rt.events.emit(EventKind.STOPPED, reason="before it was ready", count=0)
            return
        self.rt.watch_heartbeat("a", "B hedges what is already in the stream; is main_A.py running?")
        self.rt.keep_heartbeat(lambda: {"consumer": self.consumer, "busy": self.busy,
                                        "hedges": self.hedges_done, **self.gate.heartbeat_info()})
        try:
            await self._settle_left_overs()
            await self._read_loop()
        finally:
            await self.rt.end_heartbeat()
            await self.rt.journal.flush()
            logger.info("B stopped: {} hedges done this run, journal flushed", self.hedges_done)
            self.rt.events.emit(EventKind.STOPPED, reason="cleanly", count=self.hedges_done)

    async def _settle_left_overs(self) -> None:
        """First of all: requests a previous B read but never acknowledged are settled before new ones."""
        while not self.rt.stopping:
            try:
                await self.gate.pass_when_released(self.rt.stop)
                if self.rt.stopping:
                    return
                await self.rt.bus.ensure_group()
                stale = await self.rt.bus.claim_stale(self.consumer, min_idle_ms=0)
            except RedisError as exc:
                logger.warning("B start-up: Redis unavailable ({!r}); retrying in 1 s", exc)
                await self.rt.sleep(1.0)
                continue
            if stale:
                logger.info("B start-up: {} request(s) left pending by a previous B; settling them first",
                            len(stale))
                self.rt.events.emit(EventKind.LEFT_OVERS_CLAIMED, count=len(stale))
                await self._in_hand(stale)
            return

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_claim = loop.time() + CLAIM_EVERY_S
        logger.info("B ready: reading hedge requests of pair {} as {}", self.rt.config.pair, self.consumer)
        self.rt.events.emit(EventKind.READY)
        while not self.rt.stopping:
            try:
                await self.gate.pass_when_released(self.rt.stop)  # held: read nothing new
                if self.rt.stopping:
                    break
                deliveries = await self.rt.bus.read_requests(self.consumer, count=100, block_ms=READ_BLOCK_MS)
                if loop.time() >= next_claim:
                    next_claim = loop.time() + CLAIM_EVERY_S
                    deliveries += await self.rt.bus.claim_stale(self.consumer, min_idle_ms=CLAIM_IDLE_MS)
            except RedisError as exc:
                logger.warning("B: reading requests failed ({!r}); retrying in 1 s", exc)
                await self.rt.sleep(1.0)
                continue
            if deliveries:
                await self._in_hand(deliveries)

    async def _in_hand(self, deliveries: list[Delivery]) -> None:
        """Handle a batch; on shutdown it gets `shutdown_wait_s` to finish, then it is cut (and resumed by the
        next B from the journal: nothing was acknowledged)."""
        self.busy = True
        work = asyncio.ensure_future(self.handle(deliveries))
        try:
            stop = asyncio.ensure_future(self.rt.stop.wait())
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not work.done():
                logger.info("B stopping: finishing the hedge in hand (up to {:g} s)",
                            self.cfg.shutdown_wait_s)
                self.rt.events.emit(EventKind.STOPPING, waited_s=self.cfg.shutdown_wait_s,
                                    reason="finishing the hedge in hand")
                try:
                    await asyncio.wait_for(asyncio.shield(work), self.cfg.shutdown_wait_s)
                except TimeoutError:
                    logger.warning("B stopping: the hedge in hand did not finish in {:g} s; left "
                                   "unacknowledged for the next B to resume from the journal",
                                   self.cfg.shutdown_wait_s)
                    self.rt.events.emit(EventKind.LEFT_UNFINISHED, reason="unacknowledged",
                                        request_ids=tuple(d.request.request_id for d in deliveries))
                    work.cancel()
            if work.done() and not work.cancelled() and work.exception() is not None:
                exc = work.exception()
                logger.opt(exception=exc).error("B: handling {} request(s) failed ({!r}); left "
                                                "unacknowledged, retried when claimed again",
                                                len(deliveries), exc)
        finally:
            if not work.done():
                work.cancel()
            self.busy = False

    # ---------------------------------------------------------------- one batch

    async def handle(self, deliveries: list[Delivery]) -> None:
        """Answer each request of the batch exactly once: stored outcome, journaled hedge, or a new hedge."""
        todo: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            todo.setdefault(delivery.request.request_id, []).append(delivery)
        stored = await self.rt.bus.get_outcomes(todo)
        for request_id, outcome in stored.items():
            acked = await self.rt.bus.ack(*todo.pop(request_id))
            logger.info("B: request {} already answered ({}); acknowledged ({}), not hedged again",
                        request_id, outcome.status, acked)
        for request_id in list(todo):
            if request_id not in todo:
                continue  # resumed with an earlier request of the same hedge
            journaled = self.rt.journal.orders_for_request(request_id)
            if journaled:
                await self._resume(journaled, todo)
        for requests, group in net_requests([d for ds in todo.values() for d in ds]):
            try:
                await self._hedge_new(requests, group)
            except UNAVAILABLE_ERRORS:
                raise  # Redis or the exchange is down: left unacknowledged, retried when claimed again
            except Exception as exc:
                await self._refuse_poisoned(requests, group, exc)

    async def _refuse_poisoned(self, requests: list[HedgeRequest], deliveries: list[Delivery],
                               error: Exception) -> None:
        """A request that raised before any order of it was sent fails for good with the reason (retrying
        the same request would raise again, forever); once an order was sent, the hedge may be live, so the
        error goes up and the request is resumed from the journal when claimed again."""
        request_ids = [r.request_id for r in requests]
        if any(self.rt.journal.orders_for_request(r) for r in request_ids):
            raise error
        logger.opt(exception=error).error("B: request(s) {} raised while being prepared ({!r}); answered "
                                          "as failed, not retried", ", ".join(request_ids), error)
        try:
            side = Side(requests[0].side)
        except ValueError:
            side = Side.BUY  # cannot happen for a parsed request: the outcome needs some side
        size = sum((r.size for r in requests), Decimal(0))
        job = HedgeJob(request_ids, self.rt.market, side, size, deliveries, requests,
                       failure=f"request could not be prepared: {error!r}")
        try:
            await self._publish(job)
        except BusMessageError:  # a size too odd for the outcome as well: the reason says what it was
            job.size = Decimal(0)
            job.failure = f"request could not be prepared: {error!r} (size {size})"
            await self._publish(job)

    async def _resume(self, journaled: list[JournalOrder], todo: dict[str, list[Delivery]]) -> None:
        """A hedge a previous B started: its orders decide what is left; the chase continues from there."""
        first = journaled[0]
        request_ids = [r for r in (first.request_id or "").split(",") if r]
        deliveries = [d for r in request_ids for d in todo.pop(r, [])]
        job = HedgeJob(request_ids=request_ids, market=self.rt.account.market_by_id(first.market_id),
                       side=first.side, size=first.size, deliveries=deliveries,
                       requests=[d.request for d in deliveries])
        numbered = {hedge_coid(request_ids[0], k): k for k in range(1, self.cfg.retry_times + 1)}
        job.attempts = sorted(journaled, key=lambda o: numbered.get(o.client_order_index, 0))
        logger.warning("B: requests {} were already being hedged ({} attempt(s) in the journal); resuming "
                       "from what the exchange says about them", job.label, len(job.attempts))
        self.rt.events.emit(EventKind.HEDGE_RESUMED, request_ids=tuple(request_ids), count=len(job.attempts))
        for order in job.attempts:
            if not order.is_terminal and not await self._settle_attempt(order):
                logger.warning("B: {} of {} is still unresolved; no new attempt while it may fill (retried "
                               "when the request is claimed again)", describe_coid(order.client_order_index),
                               job.label)
                return
        job.first_touch = job.attempts[0].price if job.attempts else None
        job.sent_ms = job.attempts[0].sent_ms if job.attempts else None
        await self._chase(job)
        await self._publish(job)

    async def _hedge_new(self, requests: list[HedgeRequest], deliveries: list[Delivery]) -> None:
        first = requests[0]
        size = sum((r.size for r in requests), Decimal(0))
        try:
            market = self.rt.account.market_by_id(first.market_id)
        except KeyError:
            job = HedgeJob([r.request_id for r in requests], self.rt.market, Side(first.side), size,
                           deliveries, requests,
                           failure=f"market not found: {first.market} ({first.market_id})")
            await self._publish(job)
            return
        job = HedgeJob([r.request_id for r in requests], market, Side(first.side), size, deliveries, requests)
        if len(requests) > 1:
            logger.info("B: netting {} requests into one {} {} hedge: {}", len(requests), job.side, size,
                        job.label)
            self.rt.events.emit(EventKind.HEDGE_NETTED, request_ids=tuple(job.request_ids), side=job.side,
                                size=size, count=len(requests))
        problem = self._size_problem(market, size)
        if problem is not None:
            job.failure = problem
        else:
            await self._chase(job)
        await self._publish(job)

    def _size_problem(self, market: MarketInfo, size: Decimal) -> str | None:
        """Why `size` cannot be sent at all (retrying would not help), or None."""
        if size != market.round_size_down(size):
            return f"size {size} is not a multiple of the lot {market.lot}"
        if size < market.min_base_amount:
            return f"size {size} is below the market minimum {market.min_base_amount}"
        if market.base_to_int(size) > chase.MAX_BASE_AMOUNT_LOTS:
            return (f"size {size} is above the largest an order can carry "
                    f"({market.base_from_int(chase.MAX_BASE_AMOUNT_LOTS)})")
        return None

    # ---------------------------------------------------------------- one hedge: the IOC chase

    async def _chase(self, job: HedgeJob) -> None:
        """IOC attempts from the touch, widening a tick each time, capped by the slippage limit."""
        attempt = len(job.attempts) + 1
        while job.remaining > 0 and job.failure is None and attempt <= self.cfg.retry_times:
            order = await self._attempt(job, attempt)
            attempt += 1
            if order is not None and not order.is_terminal and not await self._settle_attempt(order):
                job.failure = (f"{describe_coid(order.client_order_index)} left unresolved by the exchange; "
                               "stopped rather than risk a double hedge")
        if job.remaining > 0 and job.failure is None:
            job.failure = (f"{self.cfg.retry_times} IOC attempts filled {job.filled} of {job.size} "
                           f"(slippage cap {self.cfg.max_slippage_bps} bps)")

    async def _attempt(self, job: HedgeJob, attempt: int) -> JournalOrder | None:
        """Send attempt `attempt` and wait for its end; None when nothing was sent (no touch)."""
        market, side, size = job.market, job.side, job.remaining
        book = await self.rt.account.top_of_book(market)
        touch = chase.touch_price(side, book.best_bid, book.best_ask)
        if touch is None:
            logger.warning("B hedge {}/{} of {}: no {} in the {} book; waiting for one", attempt,
                           self.cfg.retry_times, job.label, "ask" if side is Side.BUY else "bid",
                           market.symbol)
            await self.rt.sleep(NO_TOUCH_WAIT_S)
            return None
        if job.first_touch is None:
            job.first_touch = touch
        price = chase.attempt_price(side, touch, attempt, job.first_touch, self.cfg.max_slippage_bps,
                                    market.tick, self.cfg.retry_times)
        held = self.rt.tracker.positions.get(market.market_id)
        reduce_only = chase.is_reduce_only(side, held.size if held else Decimal(0), size)
        coid = hedge_coid(job.request_ids[0], attempt)
        order = new_order(client_order_index=coid, account_index=self.rt.account.account_index,
                          market_id=market.market_id, intent=Intent.HEDGE, side=side, size=size, price=price,
                          order_type="ioc", now_ms=now_ms(), reduce_only=reduce_only,
                          request_id=",".join(job.request_ids))
        sent_us = time.time_ns() // 1000
        # Write-ahead: the journal's commit runs while the order is signed, and the post waits for it.
        recorded = asyncio.ensure_future(self.rt.journal.record_new(order))
        result = await self.rt.account.place_ioc(market, side, size, price, coid, reduce_only, ready=recorded)
        try:
            await recorded  # a failed record was not followed by a send (REJECTED "not sent")
        except DuplicateOrderError:
            known = self.rt.journal.get(coid)
            logger.warning("B hedge {}/{} of {}: {} already in the journal; settling it instead of sending",
                           attempt, self.cfg.retry_times, job.label, describe_coid(coid))
            if known is not None:
                job.attempts.append(known)
            return known
        job.attempts.append(self.rt.journal.get(coid) or order)
        what = f"B hedge {attempt}/{self.cfg.retry_times} IOC {side} {size} @ {price}"
        if job.sent_ms is None:
            job.sent_ms = sent_us // 1000
            seen = [r.seen_ts_us for r in job.requests if r.seen_ts_us]
            logger.info("{} for {}: sent_us={} seen_us={} tx {} ({})", what, job.label, sent_us,
                        min(seen) if seen else "-", (result.tx_hash or "-")[:16], result.status.value)
        self.rt.events.emit(EventKind.HEDGE_ATTEMPT, request_ids=tuple(job.request_ids), attempt=attempt,
                            coid=coid, side=side, size=size, price=price, state=result.status)
        if result.status is SendStatus.REJECTED:
            self.rt.tracker.transition(coid, OrderState.REJECTED, reason=result.detail)
            self.rt.metrics.order(Intent.HEDGE, OrderState.REJECTED)
            logger.warning("{} → rejected ({})", what, result.detail)
            self.rt.events.emit(EventKind.ORDER_ENDED, coid=coid, attempt=attempt, state=OrderState.REJECTED,
                                size=size, filled=Decimal(0), reason=result.detail)
            if not result.worth_retrying:
                job.failure = f"{result.detail} (retrying cannot fix it)"
            return self.rt.journal.get(coid)
        self.rt.journal.mark_sent(coid, now_ms())
        if result.status is SendStatus.UNKNOWN:
            self.rt.tracker.transition(coid, OrderState.UNKNOWN, reason=result.message)
        done = await self._wait_done(coid)
        self.rt.metrics.order(Intent.HEDGE, done.state)
        avg = chase.average_price((f.size, f.price) for f in self.rt.journal.fills_for(coid))
        logger.info("{} → {} {}{} in {:.0f} ms", what, done.state, done.filled_size,
                    f" @ {avg:.{market.price_decimals + 2}f}" if avg is not None else "",
                    (time.time_ns() // 1000 - sent_us) / 1000)
        self.rt.events.emit(EventKind.ORDER_ENDED, coid=coid, attempt=attempt, state=done.state,
                            size=done.size, filled=done.filled_size, price=avg, reason=done.reason)
        if chase.end_repeats(done.end_reason):
            job.failure = f"ended {done.end_reason} (retrying cannot fix it)"
        return done

    async def _wait_done(self, coid: int) -> JournalOrder:
        """The IOC's final state with all its fills (stream first, the exchange's answer as a fallback)."""
        timeout = self.rt.config.exchange.request_timeout_s
        try:
            await self.rt.tracker.wait_terminal(coid, timeout=timeout)
        except TimeoutError:
            logger.warning("B: no final state for {} within {:g} s from the stream; asking the exchange",
                           describe_coid(coid), timeout)
        return await self.rt.reconciler.confirm_final(coid, timeout=self._settle_timeout())

    async def _settle_attempt(self, order: JournalOrder) -> bool:
        """Resolve an attempt whose outcome is open or unknown; True once it is final."""
        settled = await self.rt.reconciler.confirm_final(order.client_order_index,
                                                         timeout=self._settle_timeout())
        return settled.is_terminal

    def _settle_timeout(self) -> float:
        # Long enough for the reconciler's grace to run out: after it, an order never found never arrived.
        return self.rt.config.exchange.unknown_order_grace_s + self.rt.config.exchange.request_timeout_s

    # ---------------------------------------------------------------- the outcome, then the acknowledgement

    async def _fills_of(self, job: HedgeJob) -> list[tuple[Decimal, Decimal]]:
        """(size, price) of every fill of the job's attempts. When the exchange reports more filled than the
        fills we hold (a fill still in flight), they are read from the trades endpoint; what is still missing
        is priced at the attempt's limit price, the worst it can have filled at, and said in the log."""
        fills: list[tuple[Decimal, Decimal]] = []
        for order in job.attempts:
            coid = order.client_order_index
            if self.rt.journal.fills_total(coid) < order.filled_size:
                await self.rt.reconciler.recover_order_fills(order)
            own = [(f.size, f.price) for f in self.rt.journal.fills_for(coid)]
            missing = order.filled_size - sum((size for size, _ in own), Decimal(0))
            if missing > 0:
                logger.warning("B: {} filled {} but only {} of its fills are known; the rest is priced "
                               "at its limit {} in the outcome", describe_coid(coid), order.filled_size,
                               order.filled_size - missing, order.price)
                own.append((missing, order.price))
            fills.extend(own)
        return fills

    async def _publish(self, job: HedgeJob) -> None:
        fills = await self._fills_of(job)
        filled = job.filled
        ok = job.failure is None and job.remaining == 0
        publish_ts = [r.publish_ts_ms for r in job.requests if r.publish_ts_ms]
        latency = (job.sent_ms - min(publish_ts)) if job.sent_ms and publish_ts else None
        avg = chase.average_price(fills)
        outcome = HedgeOutcome(
            pair=self.rt.config.pair, request_ids=tuple(job.request_ids), status=FILLED if ok else FAILED,
            market=job.market.symbol, side=job.side.value, requested_size=job.size, filled_size=filled,
            avg_price=avg.quantize(Decimal(1).scaleb(-(job.market.price_decimals + 4))) if avg else None,
            attempts=len(job.attempts), reason=None if ok else job.failure,
            hedge_client_order_indexes=tuple(o.client_order_index for o in job.attempts),
            received_ts_ms=job.received_ms, sent_ts_ms=job.sent_ms, filled_ts_ms=now_ms() if ok else None,
            latency_ms=float(max(latency, 0)) if latency is not None else None,
        )
        while True:
            try:
                await self.rt.bus.publish_outcome(outcome, ack=job.deliveries)
                break
            except RedisError as exc:
                logger.error("B: outcome of {} not published ({!r}); retrying in 1 s (the hedge is "
                             "journaled)", job.label, exc)
                if await self.rt.sleep(1.0):
                    return  # the next B resumes it from the journal and publishes then
        self.hedges_done += 1
        self._observe_stages(job, outcome)
        self.rt.events.emit(EventKind.HEDGE_DONE, request_ids=outcome.request_ids, state=outcome.status,
                            side=job.side, size=job.size, filled=filled, price=outcome.avg_price,
                            attempt=len(job.attempts), reason=job.failure, count=len(job.deliveries))
        if ok:
            logger.info("B hedged {}: {} {} @ {} in {} attempt(s); outcome published, {} acknowledged",
                        job.label, job.side, filled, outcome.avg_price, len(job.attempts),
                        len(job.deliveries))
        else:
            logger.error("B hedge FAILED for {}: {}; filled {} of {}. Outcome published: A pauses until an "
                         "operator fixes it and runs `hedgectl resume`", job.label, job.failure, filled,
                         job.size)

    def _observe_stages(self, job: HedgeJob, outcome: HedgeOutcome) -> None:
        """Latency of each fill this hedge covered, from the fill's exchange time (residuals have none)."""
        stages = (("request_received", outcome.received_ts_ms), ("hedge_sent", outcome.sent_ts_ms),
                  ("hedge_filled", outcome.filled_ts_ms))
        for request in job.requests:
            if request.is_residual or not request.fill_ts_ms:
                continue
            for stage, at_ms in stages:
                if at_ms:
                    self.rt.metrics.observe_since_fill(stage, request.fill_ts_ms, at_ms)


async def run_hedger(rt: Runtime) -> None:
    await Hedger(rt).run()

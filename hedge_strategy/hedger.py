"""Account B: the hedger. Read top to bottom: start-up, the read loop, one batch, one hedge, the outcome.

Every request is hedged at most once, whatever restarts: a request with a stored outcome is only
acknowledged (that check is skipped only for a request A marked as published for the first time, read fresh
and young, that neither the journal nor this process knows: `bus.first_publish`); a request with hedge
orders in the journal is resumed from what the exchange says about those orders (never a new attempt while
an earlier one may still fill); only a request with neither is hedged.
Client order indexes derive from the request id and the attempt number, so a redelivered request maps to
the same orders. Requests waiting together on the same market and side are netted into one order. The
outcome is stored before the deliveries are acknowledged (one Redis transaction). A request that raises
while it is prepared (before any order of it is sent) is answered as failed with the reason, not retried.

B also hedges A's fills it sees on the exchange's public trade feed, as the very request A would have sent
(`hedger_feed`): at once while Redis answers (`strategy.hedge_from_trade_feed_first`), and while Redis is
silent after a wait. Through `hedge_from_feed`: the same path, one hedge at a time with the batches
(`_one_hedge`), so A's request for it is answered from the outcome or the journal, never hedged again; a feed
hedge counts as known to this process from the moment it is taken (`_feed_in_hand`: A's request for it takes
no fast path).

The chase itself, IOC after IOC, is `execution.chase_loop` (shared with `hedgectl clear`), each attempt sent
through the executor (`execution.orders`: journaled while it is signed, its end counted and emitted).

B's position, from its own stream, goes to A in each outcome and in the heartbeat (`hedger_outcome`).

Metrics: the latency stages (`request_received`, `hedge_sent`,
`hedge_filled`) of each hedged fill are recorded once its outcome is out, off the hot path. B raises one
alert only, heartbeat_lost for A's heartbeat: A sees every outcome and raises the hedge alerts.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from decimal import Decimal

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import (
    BusMessageError,
    Delivery,
    HedgeRequest,
    PositionReport,
    first_publish,
)
from hedge_strategy.bus.resting import RestingOrder
from hedge_strategy.bus.revival import UntilAnswering
from hedge_strategy.exchange import (
    Side,
    VenueError,
    describe_coid,
)
from hedge_strategy.execution import Intent, JournalOrder
from hedge_strategy.execution.chase_loop import Chase, ChasePlan, run_chase
from hedge_strategy.hedger_feed import (
    FEED_MEMORY_S,
    FIRST_KEY_READ_S,
    REDIS_SILENT_S,
    FeedFills,
    FeedWashBound,
    RedisSilence,
    TradeFeedWatch,
)
from hedge_strategy.hedger_hold import HoldGate
from hedge_strategy.hedger_in_hand import InHand
from hedge_strategy.hedger_jobs import (
    HedgeJob,
    attempt_numbers,
    hedge_coid,
    net_requests,
    size_problem,
    traded_of,
)
from hedge_strategy.hedger_outcome import observe_stages, outcome_of, position_report, wire
from hedge_strategy.observe import EventKind
from hedge_strategy.runtime import Runtime
from hedge_strategy.wash_guard import WashGuard, carried_resting, may_rest_after

READ_BLOCK_MS = 1000  # a blocked read returns at least this often, so a stop is noticed within a second
SLOW_READ_S = 0.5  # a read that returned this much later than its block may have been sent twice
READ_RETRY_MAX_S = 1.0  # the longest wait between reads while Redis answers but fails (`bus.revival`)
CLAIM_EVERY_S = 10.0  # how often deliveries idle in any consumer's pending list are taken over
CLAIM_IDLE_MS = 30_000  # a delivery idle this long belongs to nobody working on it
# Errors that say Redis or the exchange is unavailable, not that the request is wrong: never a failed outcome.
UNAVAILABLE_ERRORS = (RedisError, VenueError, OSError, TimeoutError)
ANSWERED_MEMORY = 4096  # request ids this process answered: a mark on one of them is not trusted


class Hedger:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cfg = rt.config.strategy
        self.consumer = f"b-{rt.account.account_index}"
        self.hedges_done = 0
        self.in_hand = InHand(rt)  # batches and feed hedges in hand (`busy`), cut after a stop's grace
        self.gate = HoldGate(rt.bus, rt.events)  # `hedgectl clear` holds B: nothing new is read while held
        self.wash_guard: WashGuard | None = WashGuard(rt.bus)  # no IOC of B ever reaches A's resting order
        self._resting_ahead: asyncio.Future[RestingOrder | None] | None = None  # `handle`'s early read
        self._first_window_s = first_publish.window_s(self.cfg.hedge_confirm_timeout_s)
        self._fast: set[str] = set()  # the batch's request ids on the fast path (`bus.first_publish`)
        self._answered: OrderedDict[str, None] = OrderedDict()  # ids this process answered, newest last
        self._one_hedge = asyncio.Lock()  # a batch of requests, or a hedge from the trade feed
        self.silence = RedisSilence()  # how long Redis has left B's calls unanswered
        self.feed = (FeedFills(rt.config.accounts["a"].account_index, self.cfg.hedge_from_trade_feed_after_s,
                               memory_s=min(FEED_MEMORY_S, self.cfg.hedge_confirm_timeout_s / 2))
                     if self.cfg.follows_trade_feed else None)  # A's fills seen on the feed, no request yet
        self._feed_in_hand: set[str] = set()  # request ids of the feed hedges taken and not done
        # After a hold (`hedgectl clear`, A's withdrawal) the holder settled every fill made before it
        self.gate.on_release.append(lambda: self.feed.released() if self.feed is not None else None)
        self._feed_task: asyncio.Task[None] | None = None

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
                                        "hedges": self.hedges_done, **self.gate.heartbeat_info(),
                                        "position": wire(self.position_report())})
        if (watch := self.feed_watch()) is not None:
            self._feed_task = self.rt.spawn(watch.run(), "b-trade-feed")
        try:
            await self._settle_left_overs()
            await self._read_loop()
        finally:
            if self._feed_task is not None:  # a feed hedge in hand gets its grace (`InHand.finish`)
                await asyncio.wait({self._feed_task}, timeout=self.cfg.shutdown_wait_s + 1)
            await self.rt.end_heartbeat()
            await self.rt.journal.flush()
            logger.info("B stopped: {} hedges done this run, journal flushed", self.hedges_done)
            self.rt.events.emit(EventKind.STOPPED, reason="cleanly", count=self.hedges_done)

    def feed_watch(self) -> TradeFeedWatch | None:
        """B's task on the exchange's public trade feed (`hedger_feed`), when B follows it."""
        if self.feed is None:
            return None
        last = self.wash_guard.last if self.wash_guard is not None else None
        return TradeFeedWatch(self.rt.account, self.rt.market, self.rt.config.pair, self.feed, self.silence,
                              self.hedge_from_feed, lambda: last.resting if last is not None else None,
                              self.rt.stop, held=lambda: self.gate.held,
                              first=self.cfg.hedge_from_trade_feed_first, hold_known=lambda: self.gate.known)

    async def _settle_left_overs(self) -> None:
        """First of all: requests a previous B read but never acknowledged are settled before new ones."""
        while not self.rt.stopping:
            try:
                with self.silence.asking():  # every Redis call of B's loops: none answering is a silence
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
        revival = UntilAnswering(self.rt.bus.redis, READ_RETRY_MAX_S)
        # A read whose reply was lost (it raised, or the client sent it again after a timeout: it took longer
        # than its block) may still have run in Redis, a hung one when it ran again, and taken requests for
        # this consumer that no later read of new ones returns: this consumer's own pending ones come first.
        own_due = False
        while not self.rt.stopping:
            try:
                # B's silence (`hedger_feed`) runs until these calls are answered. Held, the gate waits as
                # long as the hold lasts: a silence then, but nothing is hedged from the feed while B is held.
                self.silence.ask()
                await self.gate.pass_when_released(self.rt.stop)  # held: read nothing new
                if self.rt.stopping:
                    break
                self.silence.answered()  # the gate's read was answered: a hold is no silence
                self.silence.ask()
                asked = loop.time()
                deliveries = await self.rt.bus.read_requests(self.consumer, count=100, block_ms=READ_BLOCK_MS,
                                                             own_pending=own_due)
                if own_due and deliveries:
                    logger.warning("B: {} request(s) were delivered to a read whose reply was lost (Redis "
                                   "hung or dropped the connection); hedging them now", len(deliveries))
                own_due = not own_due and loop.time() - asked > READ_BLOCK_MS / 1000 + SLOW_READ_S
                if loop.time() >= next_claim:
                    next_claim = loop.time() + CLAIM_EVERY_S
                    deliveries += await self.rt.bus.claim_stale(self.consumer, min_idle_ms=CLAIM_IDLE_MS)
                revival.answered()
                self.silence.answered()
            except RedisError as exc:
                own_due = True
                logger.warning("B: reading requests failed ({!r}); reading again once Redis answers", exc)
                if not await revival.wait(self.rt.stop):  # at once when a hung Redis runs again
                    break
                continue
            if deliveries:
                await self._in_hand(deliveries)

    async def _in_hand(self, deliveries: list[Delivery]) -> None:
        await self.in_hand.finish(self.handle(deliveries), tuple(d.request.request_id for d in deliveries))

    # ---------------------------------------------------------------- one batch

    async def handle(self, deliveries: list[Delivery]) -> None:
        """Answer each request of the batch exactly once: stored outcome, journaled hedge, or a new hedge."""
        todo: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            todo.setdefault(delivery.request.request_id, []).append(delivery)
            if self.feed is not None:
                self.feed.requested(delivery.request)  # the feed leaves these fills to their request
        async with self._one_hedge:
            await self._handle_batch(todo)

    async def _handle_batch(self, todo: dict[str, list[Delivery]]) -> None:
        self._fast = self._fast_path(todo)
        # A's key for the wash guard is read beside the outcome check (one round trip fewer before the send),
        # unless every request carries A's resting order.
        carried = all(r in self._fast and ds[0].request.a_resting is not None for r, ds in todo.items())
        if todo and self.wash_guard is not None and not carried:
            self._resting_ahead = self.wash_guard.read_ahead()
        try:
            await self._handle(todo)
        finally:
            self._resting_ahead = None  # no hedge of the batch took it: left to finish, its result unused
            self._fast = set()

    def _fast_path(self, todo: dict[str, list[Delivery]]) -> set[str]:
        """The request ids that skip the stored-outcome check: marked by A, read fresh and young
        (`bus.first_publish.trusted`), unknown to this process (neither answered nor taken from the trade
        feed) and without orders in the journal."""
        return {request_id for request_id, group in todo.items()
                if first_publish.trusted(group, self._first_window_s) and request_id not in self._answered
                and request_id not in self._feed_in_hand
                and not self.rt.orders.orders_for_request(request_id)}

    async def _handle(self, todo: dict[str, list[Delivery]]) -> None:
        stored = await self.rt.bus.get_outcomes([r for r in todo if r not in self._fast])
        for request_id, outcome in stored.items():
            acked = await self.rt.bus.ack(*todo.pop(request_id))
            logger.info("B: request {} already answered ({}); acknowledged ({}), not hedged again",
                        request_id, outcome.status, acked)
            self.rt.events.emit(EventKind.REQUEST_ALREADY_ANSWERED, request_ids=(request_id,),
                                state=outcome.status)
        for request_id in list(todo):
            if request_id not in todo or request_id in self._fast:
                continue  # resumed with an earlier request of its hedge; on the fast path: none journaled
            journaled = self.rt.orders.orders_for_request(request_id)
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
        if any(self.rt.orders.orders_for_request(r) for r in request_ids):
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
            job.chase.failure = f"request could not be prepared: {error!r} (size {size})"
            await self._publish(job)

    async def _resume(self, journaled: list[JournalOrder], todo: dict[str, list[Delivery]]) -> None:
        """A hedge a previous B started: its orders decide what is left; the chase continues from there."""
        first = journaled[0]
        request_ids = [r for r in (first.request_id or "").split(",") if r]
        deliveries = [d for r in request_ids for d in todo.pop(r, [])]
        job = HedgeJob(request_ids=request_ids, market=self.rt.account.market_by_id(first.market_id),
                       side=first.side, size=first.size, deliveries=deliveries,
                       requests=[d.request for d in deliveries])
        numbered = attempt_numbers(request_ids[0], self.cfg.retry_times)
        attempts = sorted(journaled, key=lambda o: numbered.get(o.client_order_index, (0, 0)))
        # Attempts used: up to the last one journaled (a re-send after transport trouble counted as used: the
        # resumed chase goes on at the next step, with client order indexes no order has had).
        priced = max((numbered.get(o.client_order_index, (0, 0))[0] for o in attempts), default=0)
        job.chase = Chase(job.size, attempts, first_limit=attempts[0].price, sent_ms=attempts[0].sent_ms,
                          priced=priced or len(attempts))
        logger.warning("B: requests {} were already being hedged ({} order(s) in the journal); resuming "
                       "from what the exchange says about them", job.label, len(attempts))
        self.rt.events.emit(EventKind.HEDGE_RESUMED, request_ids=tuple(request_ids), count=len(attempts))
        for order in [o for o in attempts if not o.is_terminal]:
            if not (await self.rt.orders.confirm_final(order.client_order_index)).is_terminal:
                logger.warning("B: {} of {} is still unresolved; no new attempt while it may fill (retried "
                               "when the request is claimed again)", describe_coid(order.client_order_index),
                               job.label)
                return
        await run_chase(self.rt.orders, self._plan(job), job.chase)
        await self._publish(job)

    async def hedge_from_feed(self, request: HedgeRequest, guard: FeedWashBound | None) -> bool:
        """Hedge a fill of A's seen on the trade feed (`hedger_feed`), unless this B knows its request:
        `guard` None is feed first (Redis answers: B's key-based wash guard), a FeedWashBound the hedge while
        Redis is silent (a hedge then that does not fill publishes nothing: A's request resumes it from the
        journal; feed first, its outcome is published whatever it is). False when a hedge taken first sent
        nothing because Redis went silent or A's order may still rest (`wash_guard.may_rest_after`): A's
        request settles it, or the feed's silent path may take it; True otherwise (hedged, known, or left to
        A's request or to whoever holds B)."""
        request_id = request.request_id
        # Known to this process from now on, before any await: A's request for it takes no fast path.
        self._feed_in_hand.add(request_id)
        settled = [True]

        async def hedge() -> None:
            async with self._one_hedge:
                settled[0] = await self._hedge_from_feed(request, guard)
        try:
            await self.in_hand.finish(hedge(), (request_id,))
        finally:
            self._feed_in_hand.discard(request_id)
        return settled[0]

    async def _hedge_from_feed(self, request: HedgeRequest, guard: FeedWashBound | None) -> bool:
        request_id, first = request.request_id, guard is None
        if request_id in self._answered or self.rt.orders.orders_for_request(request_id):
            logger.info("B: {} from the trade feed is already answered or journaled; not hedged again",
                        request_id)
            return True
        silent = self.silence.silent_s() >= REDIS_SILENT_S
        if self.gate.held or (not first and not silent):  # waited behind a batch
            why = "B is held" if self.gate.held else "Redis answers again"
            logger.info("B: {} from the trade feed not hedged: {}; its request settles it", request_id, why)
            if self.gate.held and self.feed is not None:
                self.feed.requested(request)  # the holder settles it: a later frame of it is not taken
            return True
        if first and silent:  # B's key cannot be read: the wash bound of a silent Redis is the wait's
            logger.info("B: {} from the trade feed not hedged at once: Redis went silent while it waited; "
                        "left to A's request or to the feed's wait", request_id)
            return False
        try:
            if first and self.wash_guard is not None:  # B's key, read now (bounded) for the first bound
                self._resting_ahead = await self.wash_guard.read_within(FIRST_KEY_READ_S)
                if may_rest_after(resting := self._resting_ahead.result(), [request]):
                    logger.info("B: {} from the trade feed left to A's request: A's order {} may still rest "
                                "(partly filled or being modified), and A may re-price it before it knows "
                                "the fill", request_id, describe_coid(resting.client_order_index))
                    return False
            self.rt.events.emit(EventKind.HEDGE_FROM_FEED, request_ids=(request_id,), side=request.side,
                                size=request.size, price=request.a_fill_price)
            await self._hedge_new([request], [], guard, from_feed=True)
        except UNAVAILABLE_ERRORS as exc:
            if not first or self.rt.orders.orders_for_request(request_id):
                raise  # an order may be live: A's request resumes it from the journal
            logger.warning("B: {} from the trade feed not hedged at once ({!r}): nothing sent; left to A's "
                           "request or to the feed's wait while Redis is silent", request_id, exc)
            return False
        finally:
            self._resting_ahead = None
        return True

    async def _hedge_new(self, requests: list[HedgeRequest], deliveries: list[Delivery],
                         guard: FeedWashBound | None = None, from_feed: bool = False) -> None:
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
        job = HedgeJob([r.request_id for r in requests], market, Side(first.side), size, deliveries, requests,
                       guard=guard, from_feed=from_feed)
        if len(requests) > 1:
            logger.info("B: netting {} requests into one {} {} hedge: {}", len(requests), job.side, size,
                        job.label)
            self.rt.events.emit(EventKind.HEDGE_NETTED, request_ids=tuple(job.request_ids), side=job.side,
                                size=size, count=len(requests))
        problem = size_problem(market, size)
        if problem is not None:
            job.chase.failure = problem
        else:
            await run_chase(self.rt.orders, self._plan(job), job.chase)
        # While Redis is silent, a feed hedge that did not fill publishes nothing (A's request, when Redis
        # answers, resumes it from the journal). Feed first, its outcome is published whatever it is, as A's
        # request's would be: a refusal stops the chase and pauses A, exactly as on the request path.
        if guard is not None and (job.chase.failure is not None or job.chase.remaining > 0):
            logger.warning("B: the hedge of {} from the trade feed did not fill ({}; {} of {}); no outcome: "
                           "A's request, when Redis answers, resumes it from the journal", job.label,
                           job.chase.failure or "not filled", job.chase.filled, job.size)
            return
        await self._publish(job)

    # ---------------------------------------------------------------- one hedge: the IOC chase

    def _plan(self, job: HedgeJob) -> ChasePlan:
        """The chase of `job` (`execution.chase_loop`): client order indexes from its first request id, the
        attempt and its re-send, an empty book side waited out, transport trouble re-sent within
        `strategy.transport_budget_s`, only a refusal retrying cannot fix stopping it early."""
        seen = [r.seen_ts_us for r in job.requests if r.seen_ts_us]
        return ChasePlan(market=job.market, side=job.side, size=job.size, intent=Intent.HEDGE,
                         coid_for=lambda attempt, resend: hedge_coid(job.request_ids[0], attempt, resend),
                         retry_times=self.cfg.retry_times, max_slippage_bps=self.cfg.max_slippage_bps,
                         label="B hedge", target=job.label, request_ids=tuple(job.request_ids),
                         seen_us=min(seen) if seen else None, no_touch_wait=self.rt.sleep,
                         guard=self._wash_guard_for(job), transport_budget_s=self.cfg.transport_budget_s,
                         sleep=self.rt.sleep, traded=traded_of(job.requests))

    def _wash_guard_for(self, job: HedgeJob) -> WashGuard | None:
        """The hedge's guard: its first bound from A's resting order as the requests carry it when all of them
        are on the fast path, else from the key's read started with the batch (the batch's first hedge)."""
        if job.guard is not None:
            return job.guard  # from the feed: B cannot read A's key
        if self.wash_guard is None:
            return None
        if job.requests and all(r in self._fast for r in job.request_ids):
            usable, resting = carried_resting(job.requests)
            if usable:
                return self.wash_guard.for_hedge(job.requests, self.wash_guard.known(resting))
        first_read, self._resting_ahead = self._resting_ahead, None
        return self.wash_guard.for_hedge(job.requests, first_read)

    # ---------------------------------------------------------------- B's position, for A

    @property
    def busy(self) -> bool:
        return self.in_hand.busy

    def position_report(self, market_id: int | None = None) -> PositionReport | None:
        """B's position as its stream says it now, when it can be acted on; else None."""
        return position_report(self.rt, market_id)

    # ---------------------------------------------------------------- the outcome, then the acknowledgement

    async def _publish(self, job: HedgeJob) -> None:
        done = job.chase
        filled = done.filled
        ok = done.failure is None and done.remaining == 0
        outcome = await outcome_of(self.rt, job)
        while True:
            try:
                with self.silence.asking():
                    await self.rt.bus.publish_outcome(outcome, ack=job.deliveries)
                break
            except RedisError as exc:
                logger.error("B: outcome of {} not published ({!r}); retrying in 1 s (the hedge is "
                             "journaled)", job.label, exc)
                if await self.rt.sleep(1.0):
                    return  # the next B resumes it from the journal and publishes then
        self.hedges_done += 1
        self._remember_answered(job.request_ids)
        observe_stages(self.rt, job, outcome)
        self.rt.events.emit(EventKind.HEDGE_DONE, request_ids=outcome.request_ids, state=outcome.status,
                            side=job.side, size=job.size, filled=filled, price=outcome.avg_price,
                            attempt=len(done.attempts), reason=done.failure, count=len(job.deliveries))
        via = " from the trade feed, ahead of A's request" if job.from_feed else ""
        if ok:
            logger.info("B hedged {}{}: {} {} @ {} in {} attempt(s), {} order(s) sent; outcome published, {} "
                        "acknowledged", job.label, via, job.side, filled, outcome.avg_price, done.priced,
                        len(done.attempts), len(job.deliveries))
        else:
            logger.error("B hedge FAILED for {}{}: {}; filled {} of {}. Outcome published: A pauses until an "
                         "operator fixes it and runs `hedgectl resume`", job.label, via, done.failure, filled,
                         job.size)

    def _remember_answered(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            self._answered[request_id] = None
        while len(self._answered) > ANSWERED_MEMORY:
            self._answered.popitem(last=False)


async def run_hedger(rt: Runtime) -> None:
    await Hedger(rt).run()

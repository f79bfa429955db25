"""Account A: the post-only maker. Read top to bottom: start-up, fills, one cycle, the resting order,
shutdown. Waiting for B's outcomes and pausing live in `maker_hedges`, the persisted set of outstanding
requests in `outstanding`.

A never trusts itself about B: every fill increment becomes a hedge request the moment it is seen, every
request is waited for (B's stored outcome), and when an outcome does not come the exchange decides (A + B
positions). Nothing is placed while paused, while B's heartbeat is absent, while a hedge is outstanding,
while an order of ours has an unknown outcome, or while A + B is not flat (the positions come from the
streams where they can be acted on, else from REST: `maker_positions`).

Outstanding requests are kept in the journal's meta (`maker.outstanding`): that is the outbox, published by
its own task (`maker_bus`), so a crash between a fill and its hedge loses nothing (at start-up each one
without a stored outcome is published again; same request id: B dedups) and a hung Redis never holds up the
exchange events. The same task notices a Redis that lost its data (the requests are published again, a
pause is set again from the journal's copy).

No wash trades: A publishes its maker order (side, price) in Redis before sending it (and before modifying
it: both prices bound B meanwhile, `maker_reprice`) and clears it once the order is final (`bus.resting`); B's
hedges keep their limit off it (`wash_guard`). A cancels the remainder
of a partly filled order at once, so B waits at most one cancel round trip when A's price is the touch.

A failed hedge is acted on at once: while the order rests A watches B's outcomes (`FailedHedges`); a failed
one cancels the order at once (that cancel may have been refused, or not taken yet, and the order may fill
again), then A pauses with B's reason. Once the order is final, `settle` takes the outcomes.

Observability: the fill's latency stages (`fill_seen` here, `request_published` by the outbox) are recorded
after the request is recorded or out, never before; an `ExposureWatchdog` reads A + B now and then and
alerts on a lasting imbalance (its REST read of B is also the cross-check of B's published position).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.bus.resting import RestingOrder, clear_resting, publish_resting, read_resting
from hedge_strategy.exchange import (
    EndReason,
    Purpose,
    Role,
    SendResult,
    SendStatus,
    Side,
    VenueError,
    describe_coid,
    is_a_maker_coid,
)
from hedge_strategy.execution import Intent, JournalFill, JournalOrder, OrderKind, OrderSpec, OrderState
from hedge_strategy.maker_b_watch import BWatch, b_in_hand, wait_for_b_idle
from hedge_strategy.maker_cancels import CancelPacing, refused_at_send
from hedge_strategy.maker_hedges import FailedHedges, MakerHedges
from hedge_strategy.maker_reprice import Repricer
from hedge_strategy.maker_rest_check import RestingCheck, check_interval_s
from hedge_strategy.maker_unsettled import UnsettledOrders
from hedge_strategy.observe import EventKind, ExposureWatchdog
from hedge_strategy.runtime import BookWatch, Runtime, first_of

CONFIRM_FINAL_S = 10.0  # after a cancel, how long to wait for the order's final state before re-checking
SHUTDOWN_CANCELS = 3  # on shutdown, cancels tried before the order is left to the next start
NO_BOOK_RETRY_S = 1.0
# The share of the last minute's maker-bump moves A's post-only price is kept clear of (Standard only): the
# rest would still cross and be cancelled; a wider share costs fills (the order sits further back). 0.95, not
# 0.9: an order placed after a re-price (the book moved through the last one) meets a market that moves fast,
# and at 0.9 Standard's canceled-post-only reached 8-11 % (target at most 10 %; bench/README.md).
MAKER_MOVE_SHARE = 0.95
IMBALANCE_RECHECK_S = 1.0  # an imbalance is read twice, this far apart, before anything is done about it
COID_SEQUENCE = "coid"  # the journal sequence numbering A's client order indexes
PLACED_MEMORY = 64  # A's latest orders this process placed: their fills' requests may be marked first_publish


class Maker:
    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.clock = clock  # how old the resting order is (a test moves it by hand)
        self.cfg = rt.config.strategy
        self.market = rt.market
        self.hedges = MakerHedges(rt)
        self.outstanding = self.hedges.outstanding  # request id -> request, until B's outcome is in
        self.book = BookWatch(rt.account, rt.market.market_id)
        self.exposure = ExposureWatchdog.from_config(rt.config, self._net_exposure, rt.alerter, rt.metrics)
        self._b_absent_said = False
        self._resting_published: RestingOrder | None = None  # named in Redis for B, until cleared
        self._placed_here: deque[int] = deque(maxlen=PLACED_MEMORY)  # orders this process placed
        self.hedges.outbox.resting_now = lambda: self._resting_published  # carried by marked requests
        self.check_interval_s = check_interval_s(rt)  # REST looks at the resting order in a silence
        self.unsettled = UnsettledOrders(rt, clock, CONFIRM_FINAL_S)  # orders whose outcome is unknown
        rt.fill_handler = self.on_fill

    # ---------------------------------------------------------------- the whole life

    async def run(self) -> None:
        self.book.start()
        try:
            await self.start_up()
            self.rt.keep_heartbeat(lambda: {"outstanding": len(self.hedges.outstanding)})
            await self.exposure.start()  # also the cross-check of B's published position: always on
            while not self.rt.stopping:
                try:
                    await self.cycle()
                except (RedisError, VenueError, OSError) as exc:
                    logger.warning("A cycle interrupted ({!r}); nothing placed, retrying in 1 s", exc)
                    await self.rt.sleep(1.0)
            await self.shut_down()
        finally:
            await self.rt.end_heartbeat()
            await self.exposure.stop()
            await self.book.stop()

    async def start_up(self) -> None:
        """Reconcile before anything trades, then publish again every request whose outcome is missing."""
        self.outstanding.load()  # each is published again by the outbox unless B answered it
        self.hedges.outbox.start()  # before anything can fill: it sends what on_fill records
        await self.rt.start_tracking()  # fills found by reconciliation reach on_fill like any other
        await self.hedges.outbox.wait_synced()  # a pause Redis lost is set again before any cycle
        self._resting_published = await read_resting(self.rt.bus)  # a previous A's: cleared once settled
        ex = self.rt.config.exchange
        logger.info("A checks a resting order by REST every {:g} s while its account stream is down or "
                    "sends nothing{}", self.check_interval_s,
                    "" if ex.resting_check_interval_s else f" (from the {ex.tier} tier's budget)")

    async def _net_exposure(self) -> Decimal:
        """A + B for the exposure watchdog: A from its own stream (no REST weight), B over REST, which is also
        the periodic cross-check of B's published position (`maker_positions`)."""
        b_size = await self.hedges.positions.cross_check_b()
        return self.rt.orders.held(self.market.market_id) + b_size

    # ---------------------------------------------------------------- fills: one request per increment

    async def on_fill(self, fill: JournalFill, order: JournalOrder | None) -> None:
        """The tracker's callback: a new fill of ours. A maker fill is hedged at once, whatever the order."""
        seen_us = time.time_ns() // 1000
        if not is_a_maker_coid(fill.client_order_index):
            logger.warning("A fill {} {} @ {} (trade {}, {}) is not a maker fill of A: not hedged here; the "
                           "cycle's A + B check sees it", fill.side, fill.size, fill.price, fill.trade_id,
                           describe_coid(fill.client_order_index))
            return
        market = self.rt.account.market_by_id(fill.market_id)
        request = HedgeRequest.for_fills(
            pair=self.rt.config.pair, market=market.symbol, market_id=fill.market_id, a_fill_side=fill.side,
            size=fill.size, a_client_order_index=fill.client_order_index, trade_ids=[fill.trade_id],
            a_fill_price=fill.price, fill_ts_ms=fill.ts_ms, seen_ts_us=seen_us,
        )
        # Recorded (the outbox, in the journal) and handed to the outbox's task, which publishes it and logs
        # the fill: no Redis call here, so a hung Redis never holds up the exchange events. A fill of an order
        # this process placed cannot have been announced by an earlier process: its request may go out
        # marked first_publish (`bus.first_publish`); any other (found at start-up) goes unmarked.
        self.hedges.outbox.put(request, first=fill.client_order_index in self._placed_here)
        self.rt.metrics.observe_since_fill("fill_seen", fill.ts_ms, seen_us // 1000)

    # ---------------------------------------------------------------- one cycle

    async def cycle(self) -> None:
        await self._clear_resting_if_final()
        if await self._wait_while_paused() or not await self._hedger_alive():
            return
        if self.outstanding:
            await self.hedges.settle()
            return
        if self._unsettled_orders():
            await self._settle_unknown_orders()
            return
        a_size, b_size = await self.hedges.positions.both()  # from the streams where they can be acted on
        net = a_size + b_size
        if abs(net) > self.cfg.flat_tolerance:
            await self._on_imbalance(a_size, b_size)
            return
        coid = await self._place(a_size)
        if coid is None:
            return
        await self._while_resting(coid)
        # Its fills may trail its final state: every one must be announced (so outstanding) before settling,
        # or a fill still in flight would later look like an imbalance and be hedged twice.
        await self.rt.orders.confirm_final(coid, CONFIRM_FINAL_S)
        await self._clear_resting_if_final()
        await self.hedges.settle()

    async def _wait_while_paused(self) -> bool:
        """False when not paused; else waits (woken by the pause channel) until resumed or stopping."""
        pause = await self.hedges.outbox.current_pause()  # Redis probed: a pause it lost is set again first
        if pause is None:
            return False
        logger.warning("A paused since {} by {}: {}; no orders until `hedgectl resume`", pause.since_ms,
                       pause.by, pause.reason)
        self.rt.events.emit(EventKind.PAUSED, by=pause.by, reason=pause.reason)
        self.rt.metrics.set_paused(True)  # also a pause set by hedgectl
        pubsub = self.rt.bus.redis.pubsub()
        try:
            await pubsub.subscribe(self.rt.bus.keys.channel_pause_changed)
            while not self.rt.stopping:
                if await self.hedges.outbox.current_pause() is None:
                    logger.info("A resumed (pause cleared); a new cycle starts from the exchange's positions")
                    self.rt.events.emit(EventKind.RESUMED)
                    self.rt.metrics.set_paused(False)
                    break
                # A resume wakes this at once; the timeout re-checks should a notification be lost.
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        finally:
            await pubsub.aclose()
        return True

    async def _hedger_alive(self) -> bool:
        beat = await self.rt.bus.heartbeat("b")
        self.hedges.positions.heard_heartbeat(beat)  # B's position, from B's stream
        await self.hedges.watch_b_heartbeat(beat is not None, "A places no new orders until B is back")
        if beat is None:
            if not self._b_absent_said:
                self._b_absent_said = True
                logger.warning("A: B's heartbeat is absent: no new orders until B is back (start main_B.py)")
                self.rt.events.emit(EventKind.HEARTBEAT_ABSENT, peer="b", reason="no new orders")
            await self.rt.sleep(min(1.0, self.cfg.heartbeat_ttl_s / 3))
            return False
        if self._b_absent_said:
            self._b_absent_said = False
            logger.info("A: B's heartbeat is back (pid {}); trading resumes", beat.get("pid", "?"))
            self.rt.events.emit(EventKind.HEARTBEAT_BACK, peer="b")
        return True

    async def _on_imbalance(self, a_size: Decimal, b_size: Decimal) -> None:
        # Position reads can trail a fill by a moment: act only on an imbalance that is still there a little
        # later, or a hedge that just landed would be hedged again as a residual. Read from the exchange: a
        # streamed number never decides a trade.
        if await self.rt.sleep(IMBALANCE_RECHECK_S):
            return
        if self.outstanding:  # a fill announced meanwhile: its hedge explains the difference, settle it first
            return
        a_size, b_size = await self.hedges.positions.both(exchange=True)
        net = a_size + b_size
        if abs(net) <= self.cfg.flat_tolerance:
            logger.info("A: A + B looked off a moment ago but is flat now (A {}, B {})", a_size, b_size)
            return
        what = f"A {a_size} + B {b_size} = {net} on {self.market.symbol}, beyond {self.cfg.flat_tolerance}"
        if self.cfg.on_imbalance == "pause":
            await self.hedges.pause(f"not flat: {what}",
                                    "check both accounts, fix by hand, then `hedgectl resume`")
            return
        in_hand = await b_in_hand(self.rt)
        if in_hand is not None:
            logger.info("A: {}; {}: waiting for B first", what, in_hand)
            await wait_for_b_idle(self.rt)
            return
        coid = self.rt.orders.next_coid(Role.A, Purpose.REBALANCE, COID_SEQUENCE)
        request = HedgeRequest.for_residual(
            pair=self.rt.config.pair, market=self.market.symbol, market_id=self.market.market_id,
            side=Side.SELL if net > 0 else Side.BUY, size=abs(net), a_client_order_index=coid,
            seen_ts_ms=now_ms())
        self.hedges.outbox.put(request, a_position=a_size, b_position=b_size)
        logger.warning("A: {}: residual hedge request {} sent to the outbox (B to {} {}); waiting for it "
                       "before any order", what, request.request_id, request.side, request.size)
        await self.hedges.settle()

    # ---------------------------------------------------------------- the maker order

    def _next_order(self, a_size: Decimal) -> tuple[Side, Decimal, bool]:
        """(side, size, reduce_only): buy to open when flat, sell to close when long, buy back when short."""
        quantity = self.cfg.quantity
        if abs(a_size) <= self.cfg.flat_tolerance:
            return Side.BUY, quantity, False
        if a_size < 0:
            logger.warning("A is short {} (A only ever buys to open): buying it back reduce-only", a_size)
        size = min(quantity, abs(a_size))
        if size < self.market.min_base_amount:
            # Below the exchange minimum the order would be refused; reduce-only keeps a larger one from
            # ever turning the position around.
            size = self.market.min_base_amount
        return (Side.SELL if a_size > 0 else Side.BUY), self.market.round_size_down(size), True

    async def _place(self, a_size: Decimal) -> int | None:
        """Send one post-only order at book depth N, priced from the stream's book when it leaves (after any
        wait in the client's throttle: on Standard seconds, long enough for the touch to move); its client
        order index, or None when none is resting."""
        side, size, reduce_only = self._next_order(a_size)
        if self._price_now(side) is None:  # checked first, so that no throttle token goes to a bookless send
            await self._wait_for_book(side)
            return None
        priced: list[Decimal | None] = []

        def price_at_send() -> Decimal | None:
            priced.append(self._price_now(side))
            return priced[-1]

        coid = self.rt.orders.next_coid(Role.A, Purpose.MAKER, COID_SEQUENCE)
        self._placed_here.append(coid)

        async def announce(price: Decimal) -> None:
            # Write-ahead for B's wash guard, before the post: a RedisError sends nothing (the cycle retries).
            await self._publish_entry(RestingOrder(coid, side.value, price, size))

        sent = await self.rt.orders.submit(OrderSpec(coid, Intent.MAKER, self.market, side, size,
                                                     price_at_send, OrderKind.POST_ONLY, reduce_only,
                                                     announce=announce))
        if priced == [None]:  # the book went stale while the order waited its turn: given up, nothing sent
            await self._wait_for_book(side)
            return None
        price = sent.order.price
        what = (f"post-only {side} {size} @ {price} ({describe_coid(coid)}"
                f"{', reduce-only' if reduce_only else ''})")
        if sent.status is SendStatus.ACCEPTED:
            logger.info("A placed {}", what)
            self.rt.events.emit(EventKind.ORDER_PLACED, coid=coid, side=side, size=size, price=price,
                                reduce_only=reduce_only)
            return coid
        if sent.status is SendStatus.REJECTED:
            logger.warning("A: {} rejected ({}); next cycle", what, sent.detail)
            await self._clear_resting_if_final()
            return None
        logger.warning("A: {} outcome unknown ({}); no new order until the exchange tells where it is", what,
                       sent.detail)
        return coid

    def _price_now(self, side: Side) -> Decimal | None:
        """Depth N on `side`'s own book side, from the stream's live book (None without a fresh one), kept
        clear of the opposite touch by the move of one maker speed bump (Standard: 200 ms), so the post-only
        order still rests when it arrives."""
        return self.rt.account.live_maker_price(self.market, side, self.cfg.depth, MAKER_MOVE_SHARE)

    async def _wait_for_book(self, side: Side) -> None:
        logger.warning("A: no level {} on the {} side of {} in the stream's book; waiting for the book",
                       self.cfg.depth, "bid" if side is Side.BUY else "ask", self.market.symbol)
        await first_of(self.book.changed(), self.rt.stop.wait(), timeout_s=NO_BOOK_RETRY_S)

    async def _while_resting(self, coid: int) -> None:
        """Until the order is final: cancel it when too old, when partly filled, when paused or stopping, and
        at once when B's hedge of one of its fills failed (then A pauses); modify it to A's price now when the
        book moved away from it or through it (`maker_reprice`).

        Wakes on the order's events, on book changes, on B's failed outcomes and on the stop signal; polls
        only while the stream brings no news, by REST at the tier's pace (`maker_rest_check`): a fill
        found is hedged at once. A failed hedge also cuts short the wait for a cancel to take.
        """
        placed_at = self.clock()
        pacing = CancelPacing(self.clock)  # when the next cancel may go out (maker_cancels.py)
        order = self._order(coid)
        checks = RestingCheck(self.rt, coid, self.check_interval_s, self.clock)
        reprice = Repricer(self.rt, coid, self._price_without, lambda: self._resting_published,
                           self._publish_entry, self.clock)
        b_watch = BWatch(self.rt, coid, answered_elsewhere=lambda: self.hedges.outbox.answered_at)
        async with FailedHedges(self.hedges) as failures, b_watch:
            while not order.is_terminal:
                if order.state is OrderState.UNKNOWN:  # its send had no verdict: found, it rests here on
                    await self.unsettled.await_known([order])
                    continue
                failed = failures.take()
                if failed:
                    await self._cancel_on_failed_hedge(coid, failed, failures, pacing)
                    continue
                if checks.due_in() <= 0:  # no news for a whole interval: "still resting" is no longer known
                    await checks.check()
                    continue
                age = self.clock() - placed_at
                why = self._cancel_reason(order, age) or b_watch.cancel_reason or reprice.unconfirmed(order)
                if why is not None and pacing.due_in() <= 0:
                    if self.rt.stopping and pacing.sent >= SHUTDOWN_CANCELS:
                        logger.error("A: {} still {} after {} cancels; leaving it to the next start's "
                                     "reconciliation", describe_coid(coid), order.state, pacing.sent)
                        return
                    result = await self.rt.orders.send_cancel(self.market, coid, why)
                    pacing.record(result)
                    await self._confirm_cancel(coid, failures, result)
                elif pacing.any_sent:  # a cancel is out (or was refused): give it time before sending another
                    wait_s = max(min(pacing.due_in(), checks.due_in()), 0.05)
                    await first_of(self.rt.orders.wait_final(coid, wait_s), failures.wait(), timeout_s=wait_s)
                elif why is None and (moved := reprice.reason(order)) is not None:
                    await reprice.modify(order, moved)
                else:
                    await reprice.narrow(order)  # the entry for B names the price the exchange shows
                    left = max(min(self.cfg.maker_order_timeout_s - age, checks.due_in(),
                                   reprice.wake_in(order)), 0.05)
                    in_flight = [self.rt.orders.wait_modified(coid, left)] if order.modify_price else []
                    await first_of(self.rt.orders.wait_final(coid, left), self.book.changed(),
                                   self.rt.orders.wait_filled(coid, self.market.lot, left), *in_flight,
                                   self.hedges.outbox.pause_seen(), failures.wait(), b_watch.wait(),
                                   self.rt.stop.wait(), timeout_s=left)
        self._b_absent_said = self._b_absent_said or b_watch.lost  # said once, with the cancel
        self._log_final(order)

    async def _cancel_on_failed_hedge(self, coid: int, failed: dict[str, HedgeOutcome],
                                      failures: FailedHedges, pacing: CancelPacing) -> None:
        """B could not hedge a fill of this order: its remainder is cancelled at once, whatever cancel is
        already out (refused, or not taken yet), then the outcome is taken as `settle` would (so `settle`
        does not take it again) and A pauses with B's reason, without waiting on Redis."""
        ids = ", ".join(dict.fromkeys(r for outcome in failed.values() for r in outcome.request_ids))
        result = await self.rt.orders.send_cancel(self.market, coid, f"B's hedge of {ids} failed: A pauses")
        pacing.record(result)
        self.hedges.take_outcomes_now(failed)
        await self._confirm_cancel(coid, failures, result)

    async def _confirm_cancel(self, coid: int, failures: FailedHedges, result: SendResult) -> None:
        """The order's final state (a fill racing the cancel applied), unless B's hedge fails meanwhile; not
        waited for when sendTx refused the cancel (nothing to wait for: the loop sends it again soon)."""
        if refused_at_send(result):
            return
        await first_of(self.rt.orders.confirm_final(coid, CONFIRM_FINAL_S), failures.wait(), timeout_s=None)

    def _cancel_reason(self, order: JournalOrder, age_s: float) -> str | None:
        """Why the order must end now (a book that moved re-prices it instead: `maker_reprice`)."""
        if self.rt.stopping:
            return "shutting down"
        if self.hedges.outbox.known_pause is not None:  # as last read from Redis: no wait on Redis here
            return "trading is paused"
        if order.filled_size > 0:  # B's hedge waits while A's price is the touch: end it at once
            return f"partly filled ({order.filled_size} of {order.size}): the remainder is cancelled"
        if age_s >= self.cfg.maker_order_timeout_s:
            return f"older than {self.cfg.maker_order_timeout_s:g} s"
        return None

    def _price_without(self, order: JournalOrder) -> Decimal | None:
        """The price A would place `order` at now (`_price_now`), from the book without the order itself."""
        return self.rt.account.live_maker_price(self.market, order.side, self.cfg.depth, MAKER_MOVE_SHARE,
                                                without=(order.price, order.remaining_size))

    async def _publish_entry(self, resting: RestingOrder) -> None:
        """Name the order in Redis for B's wash guard (raises RedisError: then the caller sends nothing)."""
        await publish_resting(self.rt.bus, resting)
        self._resting_published = resting

    def _log_final(self, order: JournalOrder) -> None:
        self.rt.orders.ended(order)
        coid = describe_coid(order.client_order_index)
        if order.end_reason is EndReason.POST_ONLY_WOULD_CROSS:
            logger.info("A: {} would have crossed the book (post-only); next cycle re-prices", coid)
        else:
            logger.info("A: {} ended {}{}, filled {}/{}", coid, order.state,
                        f" ({order.reason})" if order.reason else "", order.filled_size, order.size)

    async def _clear_resting_if_final(self) -> None:
        """Clear the order B's wash guard reads once no maker order of ours may rest. When Redis does not
        answer, the clear is handed to the outbox, which does it before it publishes any hedge request: B
        never reads a hedge request while the entry of an order that has ended still bounds its limit."""
        resting = self._resting_published
        if resting is None or self._unsettled_orders():
            return
        self._resting_published = None
        try:
            await clear_resting(self.rt.bus, resting)
        except RedisError as exc:
            logger.warning("A: {} is final but its entry for B's wash guard was not cleared ({!r}); the "
                           "outbox clears it before it publishes anything",
                           describe_coid(resting.client_order_index), exc)
            self.hedges.outbox.clear_resting_later(resting)

    def _order(self, coid: int) -> JournalOrder:
        order = self.rt.orders.order(coid)
        assert order is not None, f"{describe_coid(coid)} vanished from the journal"
        return order

    def _unsettled_orders(self) -> list[JournalOrder]:
        """Our orders whose outcome is unknown or that still rest: no new order until each is resolved."""
        return self.rt.orders.unresolved(Intent.MAKER)

    async def _settle_unknown_orders(self) -> None:
        """Resolve with the exchange the maker orders an earlier cycle or run left unsettled: those still live
        are cancelled; those whose outcome is unknown are waited for, looked up by client order index on the
        way, and cancelled in turn when found resting (`maker_unsettled`)."""
        await self.unsettled.settle(self._unsettled_orders())

    # ---------------------------------------------------------------- shutdown

    async def shut_down(self) -> None:
        """Stop placing (the resting order was cancelled on the way out); wait, bounded, for hedges."""
        if self._unsettled_orders():
            await self._settle_unknown_orders()
        await self._clear_resting_if_final()
        await self.hedges.settle_on_shutdown()
        await self.rt.journal.flush()
        logger.info("A stopped cleanly: no resting order, journal flushed")
        self.rt.events.emit(EventKind.STOPPED, reason="cleanly")


async def run_maker(rt: Runtime) -> None:
    await Maker(rt).run()

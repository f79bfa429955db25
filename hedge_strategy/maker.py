"""Account A: the post-only maker. Read top to bottom: start-up, fills, one cycle, the resting order, hedges,
shutdown.

A never trusts itself about B: every fill increment becomes a hedge request the moment it is seen, every
request is waited for (B's stored outcome), and when an outcome does not come the exchange decides (A + B
positions). Nothing is placed while paused, while B's heartbeat is absent, while a hedge is outstanding,
while an order of ours has an unknown outcome, or while A + B is not flat.

Outstanding requests are kept in the journal's meta (`maker.outstanding`), so a crash between a fill and its
hedge loses nothing: at start-up each one without a stored outcome is published again (same request id: B
dedups).
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.exchange import (
    Purpose,
    Role,
    SendStatus,
    Side,
    VenueError,
    describe_coid,
    make_coid,
    parse_coid,
)
from hedge_strategy.execution import Intent, JournalFill, JournalOrder, OrderState, new_order
from hedge_strategy.runtime import BookWatch, Runtime, first_of

OUTSTANDING_META = "maker.outstanding"
CONFIRM_FINAL_S = 10.0  # after a cancel, how long to wait for the order's final state before re-checking
RECANCEL_AFTER_S = 5.0  # a cancel that did not end the order is sent again this often
SHUTDOWN_CANCELS = 3  # on shutdown, cancels tried before the order is left to the next start
NO_BOOK_RETRY_S = 1.0
IMBALANCE_RECHECK_S = 1.0  # an imbalance is read twice, this far apart, before anything is done about it
_UNSETTLED = (OrderState.UNKNOWN,)


class Maker:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cfg = rt.config.strategy
        self.market = rt.market
        self.b_account = rt.config.accounts["b"].account_index
        self.outstanding: dict[str, HedgeRequest] = {}  # request id -> request, until B's outcome is in
        self.unpublished: set[str] = set()  # Redis refused the publish: retried before each wait
        self.book = BookWatch(rt.account, rt.market.market_id)
        self._b_absent_said = False
        rt.fill_handler = self.on_fill

    # ---------------------------------------------------------------- the whole life

    async def run(self) -> None:
        self.book.start()
        try:
            await self.start_up()
            while not self.rt.stopping:
                try:
                    await self.cycle()
                except (RedisError, VenueError, OSError) as exc:
                    logger.warning("A cycle interrupted ({!r}); nothing placed, retrying in 1 s", exc)
                    await self.rt.sleep(1.0)
            await self.shut_down()
        finally:
            await self.book.stop()

    async def start_up(self) -> None:
        """Reconcile before anything trades, then publish again every request whose outcome is missing."""
        loaded = self._load_outstanding()
        await self.rt.start_tracking()  # fills found by reconciliation reach on_fill like any other
        if not loaded:
            return
        outcomes = await self.rt.bus.get_outcomes(loaded)
        await self._take_outcomes(outcomes)
        for request_id in loaded:
            if request_id in outcomes or request_id not in self.outstanding:
                continue
            logger.warning("A start-up: hedge request {} has no outcome in Redis; publishing it again "
                           "(same id: B hedges it at most once)", request_id)
            await self._publish(self.outstanding[request_id])

    # ---------------------------------------------------------------- fills: one request per increment

    async def on_fill(self, fill: JournalFill, order: JournalOrder | None) -> None:
        """The tracker's callback: a new fill of ours. A maker fill is hedged at once, whatever the order."""
        seen_us = time.time_ns() // 1000
        try:
            role, purpose, _ = parse_coid(fill.client_order_index)
        except ValueError:
            role, purpose = None, None
        if role is not Role.A or purpose is not Purpose.MAKER:
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
        self._remember(request)
        published = await self._publish(request)
        logger.info("A fill {} @ {} (trade {}, {}): hedge request {} {} (B to {} {}; seen_us={}, {:.2f} ms "
                    "after seen)", fill.size, fill.price, fill.trade_id,
                    describe_coid(fill.client_order_index),
                    request.request_id, "published" if published else "NOT published yet (Redis), retried",
                    request.side, request.size, seen_us, (time.time_ns() // 1000 - seen_us) / 1000)

    async def _publish(self, request: HedgeRequest) -> bool:
        try:
            await self.rt.bus.publish_request(request)
        except RedisError as exc:
            self.unpublished.add(request.request_id)
            logger.error("A: hedge request {} not published ({!r}); kept and published again before the "
                         "next wait", request.request_id, exc)
            return False
        self.unpublished.discard(request.request_id)
        return True

    # ---------------------------------------------------------------- one cycle

    async def cycle(self) -> None:
        if await self._wait_while_paused() or not await self._hedger_alive():
            return
        if self.outstanding:
            await self.settle_hedges()
            return
        if self._unsettled_orders():
            await self._settle_unknown_orders()
            return
        a_size, b_size = await self._positions()
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
        await self.rt.reconciler.confirm_final(coid, timeout=CONFIRM_FINAL_S)
        await self.settle_hedges()

    async def _wait_while_paused(self) -> bool:
        """False when not paused; else waits (woken by the pause channel) until resumed or stopping."""
        pause = await self.rt.bus.get_pause()
        if pause is None:
            return False
        logger.warning("A paused since {} by {}: {}; no orders until `hedgectl resume`", pause.since_ms,
                       pause.by, pause.reason)
        pubsub = self.rt.bus.redis.pubsub()
        try:
            await pubsub.subscribe(self.rt.bus.keys.channel_pause_changed)
            while not self.rt.stopping:
                if await self.rt.bus.get_pause() is None:
                    logger.info("A resumed (pause cleared); a new cycle starts from the exchange's positions")
                    break
                # A resume wakes this at once; the timeout re-checks should a notification be lost.
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        finally:
            await pubsub.aclose()
        return True

    async def _hedger_alive(self) -> bool:
        beat = await self.rt.bus.heartbeat("b")
        if beat is None:
            if not self._b_absent_said:
                self._b_absent_said = True
                logger.warning("A: B's heartbeat is absent: no new orders until B is back (start main_B.py)")
            await self.rt.sleep(min(1.0, self.cfg.heartbeat_ttl_s / 3))
            return False
        if self._b_absent_said:
            self._b_absent_said = False
            logger.info("A: B's heartbeat is back (pid {}); trading resumes", beat.get("pid", "?"))
        return True

    async def _positions(self) -> tuple[Decimal, Decimal]:
        """A's and B's signed positions in the market, from the exchange (REST), read together."""
        mine, theirs = await asyncio.gather(self.rt.account.positions(),
                                            self.rt.account.positions_of(self.b_account))
        market_id = self.market.market_id
        a_size = mine[market_id].size if market_id in mine else Decimal(0)
        b_size = theirs[market_id].size if market_id in theirs else Decimal(0)
        return a_size, b_size

    async def _on_imbalance(self, a_size: Decimal, b_size: Decimal) -> None:
        # Position reads can trail a fill by a moment: act only on an imbalance that is still there a little
        # later, or a hedge that just landed would be hedged again as a residual.
        if await self.rt.sleep(IMBALANCE_RECHECK_S):
            return
        if self.outstanding:  # a fill announced meanwhile: its hedge explains the difference, settle it first
            return
        a_size, b_size = await self._positions()
        net = a_size + b_size
        if abs(net) <= self.cfg.flat_tolerance:
            logger.info("A: A + B looked off a moment ago but is flat now (A {}, B {})", a_size, b_size)
            return
        what = f"A {a_size} + B {b_size} = {net} on {self.market.symbol}, beyond {self.cfg.flat_tolerance}"
        if self.cfg.on_imbalance == "pause":
            await self._pause(f"not flat: {what}", "check both accounts, fix by hand, then `hedgectl resume`")
            return
        if await self.rt.bus.pending_count():
            logger.info("A: {}; B still holds unacknowledged requests: waiting for them first", what)
            await self._wait_for_b_idle()
            return
        coid = make_coid(Role.A, Purpose.REBALANCE, self.rt.journal.next_sequence("coid"))
        request = HedgeRequest.for_residual(
            pair=self.rt.config.pair, market=self.market.symbol, market_id=self.market.market_id,
            side=Side.SELL if net > 0 else Side.BUY, size=abs(net), a_client_order_index=coid,
            seen_ts_ms=now_ms())
        self._remember(request)
        await self._publish(request)
        logger.warning("A: {}: residual hedge request {} published (B to {} {}); waiting for it before any "
                       "order", what, request.request_id, request.side, request.size)
        await self.settle_hedges()

    async def _wait_for_b_idle(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.cfg.hedge_confirm_timeout_s
        async with self.rt.bus.subscribe_outcomes() as outcomes:
            while await self.rt.bus.pending_count() and not self.rt.stopping:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    logger.warning("A: B's pending requests did not clear in {} s; judging the imbalance "
                                   "again", self.cfg.hedge_confirm_timeout_s)
                    return
                await outcomes.receive(timeout_s=min(left, 1.0))

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
        """Send one post-only order at book depth N; its client order index, or None when none is resting."""
        side, size, reduce_only = self._next_order(a_size)
        price = await self.rt.account.book_price(self.market, side, self.cfg.depth)
        if price is None:
            logger.warning("A: no level {} on the {} side of {}; waiting for the book", self.cfg.depth,
                           "bid" if side is Side.BUY else "ask", self.market.symbol)
            await first_of(self.book.changed(), self.rt.stop.wait(), timeout_s=NO_BOOK_RETRY_S)
            return None
        coid = make_coid(Role.A, Purpose.MAKER, self.rt.journal.next_sequence("coid"))
        order = new_order(client_order_index=coid, account_index=self.rt.account.account_index,
                          market_id=self.market.market_id, intent=Intent.MAKER, side=side, size=size,
                          price=price, order_type="post_only", now_ms=now_ms(), reduce_only=reduce_only)
        await self.rt.journal.record_new(order)  # write-ahead: on disk before the send
        result = await self.rt.account.place_post_only(self.market, side, size, price, coid, reduce_only)
        what = (f"post-only {side} {size} @ {price} ({describe_coid(coid)}"
                f"{', reduce-only' if reduce_only else ''})")
        if result.status is SendStatus.ACCEPTED:
            self.rt.journal.mark_sent(coid, now_ms())
            logger.info("A placed {}", what)
            return coid
        if result.status is SendStatus.REJECTED:
            self.rt.tracker.transition(coid, OrderState.REJECTED, reason=f"{result.code}: {result.message}")
            logger.warning("A: {} rejected ({} {}); next cycle", what, result.code, result.message)
            return None
        self.rt.journal.mark_sent(coid, now_ms())
        self.rt.tracker.transition(coid, OrderState.UNKNOWN, reason=result.message)
        logger.warning("A: {} outcome unknown ({}); no new order until the exchange tells where it is", what,
                       result.message)
        return coid

    async def _while_resting(self, coid: int) -> None:
        """Until the order is final: cancel it when too old, when its price drifted, when paused or stopping.

        Wakes on the order's events, on book changes and on the stop signal; never polls.
        """
        loop = asyncio.get_running_loop()
        placed_at = loop.time()
        last_cancel: float | None = None
        cancels = 0
        order = self._order(coid)
        while not order.is_terminal:
            if order.state in _UNSETTLED:
                await self._settle_unknown_orders()
                continue
            age = loop.time() - placed_at
            why = await self._cancel_reason(order, age)
            if why is not None and (last_cancel is None or loop.time() - last_cancel >= RECANCEL_AFTER_S):
                if self.rt.stopping and cancels >= SHUTDOWN_CANCELS:
                    logger.error("A: {} still {} after {} cancels; leaving it to the next start's "
                                 "reconciliation", describe_coid(coid), order.state, cancels)
                    return
                last_cancel, cancels = loop.time(), cancels + 1
                await self._cancel(coid, why)
            elif last_cancel is not None:  # a cancel is out: give it time to take before sending another
                await first_of(self.rt.tracker.wait_terminal(coid, timeout=RECANCEL_AFTER_S),
                               timeout_s=RECANCEL_AFTER_S)
            else:
                left = max(self.cfg.maker_order_timeout_s - age, 0.05)
                await first_of(self.rt.tracker.wait_terminal(coid, timeout=left), self.book.changed(),
                               self.rt.stop.wait(), timeout_s=left)
        self._log_final(order)

    async def _cancel_reason(self, order: JournalOrder, age_s: float) -> str | None:
        if self.rt.stopping:
            return "shutting down"
        if await self.rt.bus.get_pause() is not None:
            return "trading is paused"
        if age_s >= self.cfg.maker_order_timeout_s:
            return f"older than {self.cfg.maker_order_timeout_s:g} s"
        target = await self.rt.account.book_price(self.market, order.side, self.cfg.depth)
        if target is None:
            return None
        ticks = abs(target - order.price) / self.market.tick
        if ticks > self.cfg.max_price_drift_ticks:
            return f"depth-{self.cfg.depth} price moved to {target} ({ticks:.0f} ticks away)"
        return None

    async def _cancel(self, coid: int, why: str) -> None:
        """Cancel and confirm the final state; a fill racing the cancel still reaches on_fill (hedged)."""
        result = await self.rt.account.cancel(self.market, coid)
        logger.info("A cancelling {} ({}): cancel {} {}", describe_coid(coid), why, result.status.value,
                    f"({result.code} {result.message})" if not result.accepted else "")
        await self.rt.reconciler.confirm_final(coid, timeout=CONFIRM_FINAL_S)

    def _log_final(self, order: JournalOrder) -> None:
        coid = describe_coid(order.client_order_index)
        if order.reason == "canceled-post-only":
            logger.info("A: {} would have crossed the book (canceled-post-only); next cycle re-prices", coid)
        else:
            logger.info("A: {} ended {}{}, filled {}/{}", coid, order.state,
                        f" ({order.reason})" if order.reason else "", order.filled_size, order.size)

    def _order(self, coid: int) -> JournalOrder:
        order = self.rt.journal.get(coid)
        assert order is not None, f"{describe_coid(coid)} vanished from the journal"
        return order

    def _unsettled_orders(self) -> list[JournalOrder]:
        """Our orders whose outcome is unknown or that still rest: no new order until each is resolved."""
        return [o for o in self.rt.journal.unresolved() if o.intent is Intent.MAKER]

    async def _settle_unknown_orders(self) -> None:
        """Resolve maker orders with an unknown outcome (or left open by a previous run) with the exchange."""
        pending = self._unsettled_orders()
        if not pending:
            return
        labels = ", ".join(f"{describe_coid(o.client_order_index)} {o.state}" for o in pending)
        resting = [o for o in pending if o.state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED)
                   or (o.state is OrderState.PENDING_SUBMIT and o.sent_ms)]
        if resting:
            logger.info("A: {} from before is still live: cancelling it before anything new", labels)
            for order in resting:
                await self._cancel(order.client_order_index, "left from an earlier cycle")
            return
        grace = self.rt.config.exchange.unknown_order_grace_s
        logger.info("A: waiting for the exchange to settle {} (grace {:g} s)", labels, grace)
        coids = [o.client_order_index for o in pending]
        settled = self.rt.tracker.wait_for(
            lambda: all(self.rt.journal.get(c) is None or self.rt.journal.get(c).state not in _UNSETTLED
                        for c in coids) or None, timeout=grace)
        await first_of(settled, self.rt.stop.wait(), timeout_s=grace)
        if any(o.state in _UNSETTLED or o.state is OrderState.PENDING_SUBMIT for o in pending):
            await self.rt.reconciler.run_once("unsettled maker order")

    # ---------------------------------------------------------------- hedges: wait for B, else the exchange

    async def settle_hedges(self, timeout_s: float | None = None) -> None:
        """Wait for the outcome of every outstanding request; when some do not come, the exchange decides."""
        if not self.outstanding:
            return
        for request_id in sorted(self.unpublished):
            if request_id in self.outstanding:
                await self._publish(self.outstanding[request_id])
        timeout_s = self.cfg.hedge_confirm_timeout_s if timeout_s is None else timeout_s
        wanted = list(self.outstanding)
        logger.info("A waiting for B's outcome of {} (timeout {:g} s)", ", ".join(wanted), timeout_s)
        started = time.monotonic()
        waiting = asyncio.ensure_future(self.rt.bus.wait_outcomes(
            wanted, timeout_s, on_progress=self._progress,
            progress_interval_s=self.cfg.progress_log_interval_s))
        try:
            await first_of(asyncio.shield(waiting), self.rt.stop.wait(), timeout_s=None)
            if not waiting.done():  # stopping: the shutdown waits again, bounded by shutdown_wait_s
                return
            found = waiting.result()
        finally:
            if not waiting.done():
                waiting.cancel()
        await self._take_outcomes(found)
        missing = [r for r in wanted if r not in found]
        if missing:
            await self._exchange_decides(missing, time.monotonic() - started)

    async def _progress(self, elapsed_s: float, missing: list[str]) -> None:
        beat = await self.rt.bus.heartbeat("b")
        logger.info("A still waiting {:.0f} s for B's outcome of {}{}", elapsed_s, ", ".join(missing),
                    "" if beat else " (B's heartbeat is absent: is main_B.py running?)")

    async def _take_outcomes(self, outcomes: dict[str, HedgeOutcome]) -> None:
        """Drop answered requests from the outstanding set; a failed hedge pauses A with B's reason."""
        reported: set[tuple[str, ...]] = set()
        for request_id, outcome in outcomes.items():
            self._forget(request_id)
            if outcome.request_ids in reported:  # one outcome answers every request B netted into it
                continue
            reported.add(outcome.request_ids)
            ids = ", ".join(outcome.request_ids)
            if outcome.filled:
                logger.info("A: B hedged {}: {} {} @ {} in {} attempt(s), latency {} ms", ids, outcome.side,
                            outcome.filled_size, outcome.avg_price, outcome.attempts, outcome.latency_ms)
            else:
                await self._pause(f"B hedge failed for {ids}: {outcome.reason} (filled {outcome.filled_size} "
                                  f"of {outcome.requested_size})",
                                  "check B's log and account (margin, size, market), fix it, then "
                                  "`hedgectl resume`")

    async def _exchange_decides(self, missing: list[str], waited_s: float) -> None:
        a_size, b_size = await self._positions()
        net = a_size + b_size
        if abs(net) <= self.cfg.flat_tolerance:
            logger.warning("A: hedge not confirmed after {:.0f} s for {}, but A + B is flat (A {}, B {}): "
                           "carrying on", waited_s, ", ".join(missing), a_size, b_size)
            for request_id in missing:
                self._forget(request_id)
            return
        await self._pause(f"hedge not confirmed after {waited_s:.0f} s for {', '.join(missing)} and "
                          f"A {a_size} + B {b_size} = {net} is not flat",
                          "check B (log, heartbeat, account), hedge or close by hand, then `hedgectl resume`")

    async def _pause(self, reason: str, advice: str) -> None:
        await self.rt.bus.set_pause(reason, by="A")
        logger.error("A PAUSED: {}. No new orders. Operator: {}", reason, advice)

    # ---------------------------------------------------------------- outstanding set, persisted

    def _remember(self, request: HedgeRequest) -> None:
        self.outstanding[request.request_id] = request
        self._persist()

    def _forget(self, request_id: str) -> None:
        if self.outstanding.pop(request_id, None) is not None:
            self.unpublished.discard(request_id)
            self._persist()

    def _persist(self) -> None:
        body = {rid: request.to_json() for rid, request in self.outstanding.items()}
        self.rt.journal.set_meta(OUTSTANDING_META, json.dumps(body))

    def _load_outstanding(self) -> list[str]:
        raw = self.rt.journal.get_meta(OUTSTANDING_META)
        if not raw:
            return []
        try:
            for request_id, text in json.loads(raw).items():
                self.outstanding[request_id] = HedgeRequest.from_json(text)
        except (ValueError, AttributeError) as exc:
            logger.error("A start-up: outstanding requests in the journal are unreadable ({}); the A + B "
                         "check decides instead", exc)
        if self.outstanding:
            logger.info("A start-up: {} hedge request(s) outstanding from the last run: {}",
                        len(self.outstanding), ", ".join(self.outstanding))
        return list(self.outstanding)

    # ---------------------------------------------------------------- shutdown

    async def shut_down(self) -> None:
        """Stop placing (the resting order was cancelled on the way out); wait, bounded, for hedges."""
        if self._unsettled_orders():
            await self._settle_unknown_orders()
        if self.outstanding:
            logger.info("A stopping: waiting up to {:g} s for B's outcome of {}", self.cfg.shutdown_wait_s,
                        ", ".join(self.outstanding))
            for request_id in sorted(self.unpublished):
                await self._publish(self.outstanding[request_id])
            found = await self.rt.bus.wait_outcomes(list(self.outstanding), self.cfg.shutdown_wait_s)
            await self._take_outcomes(found)
        if self.outstanding:
            logger.warning("A stopping with {} unconfirmed: they are published again at the next start",
                           ", ".join(self.outstanding))
        await self.rt.journal.flush()
        logger.info("A stopped cleanly: no resting order, journal flushed")


async def run_maker(rt: Runtime) -> None:
    await Maker(rt).run()

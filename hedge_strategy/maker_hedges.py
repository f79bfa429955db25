"""A's side of every hedge: publish the request, wait for B's outcome, and when it does not come let the
exchange decide (A + B positions). Also what A tells the operator when a hedge goes wrong: the pause, the
alerts (paused, hedge failed, B's heartbeat lost) and the paused gauge.

Hedge alerts are raised by A only: A sees every hedge's outcome, and the alerter's per-process
deduplication could not merge the same event reported by both processes. Heartbeats are the exception, one
per direction: A alerts on B's (here, `runtime.HeartbeatWatch`), B on A's.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import HedgeOutcome, HedgeRequest
from hedge_strategy.observe import AlertKind, EventKind
from hedge_strategy.outstanding import OutstandingRequests
from hedge_strategy.runtime import HeartbeatWatch, Runtime, first_of


class MakerHedges:
    """The outstanding requests of A and how each one ends. See the module docstring."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cfg = rt.config.strategy
        self.market = rt.market
        self.b_account = rt.config.accounts["b"].account_index
        self.outstanding = OutstandingRequests(rt.journal)
        self.b_heartbeat = HeartbeatWatch(rt, "b")

    async def positions(self) -> tuple[Decimal, Decimal]:
        """A's and B's signed positions in the market, from the exchange (REST), read together."""
        mine, theirs = await asyncio.gather(self.rt.account.positions(),
                                            self.rt.account.positions_of(self.b_account))
        market_id = self.market.market_id
        a_size = mine[market_id].size if market_id in mine else Decimal(0)
        b_size = theirs[market_id].size if market_id in theirs else Decimal(0)
        return a_size, b_size

    # ---------------------------------------------------------------- publishing

    async def publish(self, request: HedgeRequest) -> bool:
        try:
            await self.rt.bus.publish_request(request)
        except RedisError as exc:
            self.outstanding.mark_published(request.request_id, False)
            logger.error("A: hedge request {} not published ({!r}); kept and published again before the "
                         "next wait", request.request_id, exc)
            return False
        self.outstanding.mark_published(request.request_id, True)
        return True

    async def republish_loaded(self, loaded: list[str]) -> None:
        """Start-up: take the stored outcomes of `loaded` requests, publish again those without one."""
        outcomes = await self.rt.bus.get_outcomes(loaded)
        await self.take_outcomes(outcomes)
        for request_id in loaded:
            if request_id in outcomes or request_id not in self.outstanding:
                continue
            logger.warning("A start-up: hedge request {} has no outcome in Redis; publishing it again "
                           "(same id: B hedges it at most once)", request_id)
            request = self.outstanding[request_id]
            if await self.publish(request):
                self.rt.events.emit(EventKind.HEDGE_REQUEST_PUBLISHED, request_ids=(request_id,),
                                    coid=request.a_client_order_index, side=request.side, size=request.size,
                                    reason="start-up")

    async def _publish_refused(self) -> None:
        for request in self.outstanding.unpublished():
            await self.publish(request)

    # ---------------------------------------------------------------- waiting for B, else the exchange

    async def settle(self, timeout_s: float | None = None) -> None:
        """Wait for the outcome of every outstanding request; when some do not come, the exchange decides."""
        if not self.outstanding:
            return
        await self._publish_refused()
        timeout_s = self.cfg.hedge_confirm_timeout_s if timeout_s is None else timeout_s
        wanted = self.outstanding.ids
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
        await self.take_outcomes(found)
        missing = [r for r in wanted if r not in found]
        if missing:
            await self._exchange_decides(missing, time.monotonic() - started)

    async def settle_on_shutdown(self) -> None:
        """Wait (at most `shutdown_wait_s`) for the missing outcomes; the rest wait for the next start."""
        if self.outstanding:
            logger.info("A stopping: waiting up to {:g} s for B's outcome of {}", self.cfg.shutdown_wait_s,
                        ", ".join(self.outstanding))
            self.rt.events.emit(EventKind.STOPPING, request_ids=tuple(self.outstanding.ids),
                                waited_s=self.cfg.shutdown_wait_s, reason="waiting for B's outcomes")
            await self._publish_refused()
            found = await self.rt.bus.wait_outcomes(self.outstanding.ids, self.cfg.shutdown_wait_s)
            await self.take_outcomes(found)
        if self.outstanding:
            logger.warning("A stopping with {} unconfirmed: they are published again at the next start",
                           ", ".join(self.outstanding))
            self.rt.events.emit(EventKind.LEFT_UNFINISHED, request_ids=tuple(self.outstanding.ids),
                                reason="unconfirmed: published again at the next start")

    async def _progress(self, elapsed_s: float, missing: list[str]) -> None:
        beat = await self.rt.bus.heartbeat("b")
        logger.info("A still waiting {:.0f} s for B's outcome of {}{}", elapsed_s, ", ".join(missing),
                    "" if beat else " (B's heartbeat is absent: is main_B.py running?)")
        self.rt.events.emit(EventKind.HEDGE_WAITING, request_ids=tuple(missing), waited_s=elapsed_s,
                            peer_up=beat is not None)
        waited = f"A has waited {elapsed_s:.0f} s for B's outcome of {', '.join(missing)}"
        await self.watch_b_heartbeat(beat is not None, waited)

    async def take_outcomes(self, outcomes: dict[str, HedgeOutcome]) -> None:
        """Drop answered requests from the outstanding set; a failed hedge pauses A with B's reason."""
        reported: set[tuple[str, ...]] = set()
        for request_id, outcome in outcomes.items():
            self.outstanding.forget(request_id)
            if outcome.request_ids in reported:  # one outcome answers every request B netted into it
                continue
            reported.add(outcome.request_ids)
            ids = ", ".join(outcome.request_ids)
            self.rt.events.emit(EventKind.HEDGE_OUTCOME_RECEIVED, request_ids=outcome.request_ids,
                                state=outcome.status, side=outcome.side, size=outcome.requested_size,
                                filled=outcome.filled_size, price=outcome.avg_price, attempt=outcome.attempts,
                                reason=outcome.reason)
            if outcome.filled:
                logger.info("A: B hedged {}: {} {} @ {} in {} attempt(s), latency {} ms", ids, outcome.side,
                            outcome.filled_size, outcome.avg_price, outcome.attempts, outcome.latency_ms)
                continue
            what = (f"B hedge failed for {ids}: {outcome.reason} (filled {outcome.filled_size} of "
                    f"{outcome.requested_size})")
            self.rt.alerter.notify(AlertKind.HEDGE_FAILED, what, key=",".join(outcome.request_ids),
                                   details={"market": outcome.market, "side": outcome.side,
                                            "requested": outcome.requested_size,
                                            "filled": outcome.filled_size, "reason": outcome.reason,
                                            "attempts": outcome.attempts})
            await self.pause(what, "check B's log and account (margin, size, market), fix it, then "
                                   "`hedgectl resume`")

    async def _exchange_decides(self, missing: list[str], waited_s: float) -> None:
        a_size, b_size = await self.positions()
        net = a_size + b_size
        if abs(net) <= self.cfg.flat_tolerance:
            logger.warning("A: hedge not confirmed after {:.0f} s for {}, but A + B is flat (A {}, B {}): "
                           "carrying on", waited_s, ", ".join(missing), a_size, b_size)
            self.rt.events.emit(EventKind.HEDGE_UNCONFIRMED, request_ids=tuple(missing), waited_s=waited_s,
                                a_position=a_size, b_position=b_size)
            for request_id in missing:
                self.outstanding.forget(request_id)
            return
        await self.pause(f"hedge not confirmed after {waited_s:.0f} s for {', '.join(missing)} and "
                         f"A {a_size} + B {b_size} = {net} is not flat",
                         "check B (log, heartbeat, account), hedge or close by hand, then `hedgectl resume`")

    # ---------------------------------------------------------------- telling the operator

    async def pause(self, reason: str, advice: str) -> None:
        await self.rt.bus.set_pause(reason, by="A")
        self.rt.metrics.set_paused(True)
        logger.error("A PAUSED: {}. No new orders. Operator: {}", reason, advice)
        self.rt.events.emit(EventKind.PAUSE_SET, reason=reason)
        self.rt.alerter.notify(AlertKind.PAUSED, f"A paused: {reason}", key=reason,
                               details={"advice": advice})

    async def watch_b_heartbeat(self, present: bool, context: str) -> None:
        """What A saw of B's heartbeat just now; raises heartbeat_lost once per absence (A logs it itself).
        A clean stop of B is excused only while no hedge of A waits for B."""
        await self.b_heartbeat.observe(present, context, excuse_clean_stop=not self.outstanding)

"""A's side of every hedge: publish the request, wait for B's outcome, and when it does not come let the
exchange decide (A + B positions, over REST; where the cycle's positions come from: `maker_positions`); while
A's order rests, B's failed outcomes as they come (`FailedHedges`).
Also what A tells the operator when a hedge goes wrong: the pause, the alerts (paused, hedge failed, B's
heartbeat lost) and the paused gauge.

Hedge alerts are raised by A only: A sees every hedge's outcome, and the alerter's per-process
deduplication could not merge the same event reported by both processes. Heartbeats are the exception, one
per direction: A alerts on B's (here, `runtime.HeartbeatWatch`), B on A's.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import HedgeOutcome, PauseState, now_ms
from hedge_strategy.maker_bus import MakerBus
from hedge_strategy.maker_positions import PositionSource
from hedge_strategy.observe import AlertKind, EventKind
from hedge_strategy.outstanding import OutstandingRequests
from hedge_strategy.runtime import HeartbeatWatch, Runtime, first_of
from hedge_strategy.task_end import end_tasks

SHUTDOWN_SUBSCRIBE_S = 5.0  # on shutdown, what subscribing to the outcomes may add to shutdown_wait_s
HEDGE_FAILED_ADVICE = "check B's log and account (margin, size, market), fix it, then `hedgectl resume`"


class MakerHedges:
    """The outstanding requests of A and how each one ends. See the module docstring."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cfg = rt.config.strategy
        self.market = rt.market
        self.outstanding = OutstandingRequests(rt.journal)
        self.outbox = MakerBus(rt, self.outstanding)  # publishes the outstanding requests, keeps the pause
        self.b_heartbeat = HeartbeatWatch(rt, "b")
        self.positions = PositionSource(rt, busy=lambda: bool(self.outstanding))

    # ---------------------------------------------------------------- waiting for B, else the exchange

    async def settle(self, timeout_s: float | None = None) -> None:
        """Wait for the outcome of every outstanding request; when some do not come, the exchange decides."""
        if not self.outstanding:
            return
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
            try:  # bounded as a whole: a hung Redis must not hold the stop beyond shutdown_wait_s
                found = await asyncio.wait_for(
                    self.rt.bus.wait_outcomes(self.outstanding.ids, self.cfg.shutdown_wait_s),
                    self.cfg.shutdown_wait_s + SHUTDOWN_SUBSCRIBE_S)
            except (RedisError, TimeoutError) as exc:
                logger.warning("A stopping: B's outcomes not read ({!r})", exc)
                found = {}
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
        for failure in self._record(outcomes):
            await self.pause(failure, HEDGE_FAILED_ADVICE)

    def take_outcomes_now(self, outcomes: dict[str, HedgeOutcome]) -> None:
        """`take_outcomes` without waiting on Redis (the resting order's loop): each request is answered and
        A is paused (journal and memory) before this returns; the pause reaches Redis from a task."""
        for failure in self._record(outcomes):
            self.pause_soon(failure, HEDGE_FAILED_ADVICE)

    def _record(self, outcomes: dict[str, HedgeOutcome]) -> list[str]:
        """Forget the answered requests, report each outcome once; what failed, one phrase per hedge."""
        failures: list[str] = []
        reported: set[tuple[str, ...]] = set()
        for request_id, outcome in outcomes.items():
            self.outstanding.forget(request_id)
            self.positions.take_outcome(outcome)
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
            failures.append(what)
        return failures

    async def _exchange_decides(self, missing: list[str], waited_s: float) -> None:
        """No outcome in time: A + B on the exchange says whether the hedge happened. When it did not, the
        requests are withdrawn (B will never hedge them), so the same request is never waited for twice; the
        residual is then hedged by the next cycle (`on_imbalance: hedge`) or the pause says what to do."""
        a_size, b_size = await self.positions.both(exchange=True)
        if abs(a_size + b_size) <= self.cfg.flat_tolerance:
            logger.warning("A: hedge not confirmed after {:.0f} s for {}, but A + B is flat (A {}, B {}): "
                           "carrying on", waited_s, ", ".join(missing), a_size, b_size)
            self.rt.events.emit(EventKind.HEDGE_UNCONFIRMED, request_ids=tuple(missing), waited_s=waited_s,
                                a_position=a_size, b_position=b_size)
            for request_id in missing:
                self.outstanding.forget(request_id)
            return
        unconfirmed = f"hedge not confirmed after {waited_s:.0f} s for {', '.join(missing)}"
        residuals = [r for r in missing if r in self.outstanding and self.outstanding[r].is_residual]
        withdrawn, busy = await self._withdraw(missing, unconfirmed)
        if busy is not None:
            net = a_size + b_size
            await self.pause(f"{unconfirmed} and A {a_size} + B {b_size} = {net} is not flat; B is {busy}",
                             "read B's log; once B has answered or stopped, `hedgectl resume`: A waits for "
                             "the outcome again, and withdraws the request if none comes")
            return
        if not withdrawn:
            return  # B answered them while A made sure it was not working on them: taken as usual
        a_size, b_size = await self.positions.both(exchange=True)  # B's last hedge may have landed meanwhile
        net = a_size + b_size
        gone = f"{', '.join(withdrawn)} withdrawn (B will not hedge it)"
        flat = abs(net) <= self.cfg.flat_tolerance
        residual = self.cfg.on_imbalance == "hedge" and not residuals
        self.rt.events.emit(EventKind.HEDGE_WITHDRAWN, request_ids=tuple(withdrawn), waited_s=waited_s,
                            a_position=a_size, b_position=b_size,
                            reason="flat" if flat else "residual" if residual else "pause")
        if flat:
            logger.warning("A: {}; {}; A + B is flat now (A {}, B {}): carrying on", unconfirmed, gone,
                           a_size, b_size)
            return
        symbol = self.market.symbol
        state = f"{unconfirmed} and A {a_size} + B {b_size} = {net} on {symbol} is not flat; {gone}"
        if residual:
            logger.warning("A: {}: the next cycle hedges the residual (on_imbalance: hedge)", state)
            return
        side = "sell" if net > 0 else "buy"
        why_not = "B did not answer A's residual hedge either" if residuals else "on_imbalance: pause"
        await self.pause(f"{state} ({why_not})",
                         f"make A + B flat by hand (B to {side} {abs(net)} {symbol}, or A's position "
                         "closed), check B (log, heartbeat, account), then `hedgectl resume`")

    async def _withdraw(self, request_ids: list[str], why: str) -> tuple[list[str], str | None]:
        """Answer `request_ids` failed in B's place, once B is held and idle or not running (so it is not
        hedging them and never will: it only acknowledges an answered request). Outcomes B published meanwhile
        are taken as usual. Returns the ids withdrawn, or what B is doing when it cannot be made idle."""
        hold = await self.rt.bus.hedger_hold()  # an operator's hold (hedgectl clear) serves as well
        own = hold is None
        if hold is None:
            hold = await self.rt.bus.hold_hedger(f"A withdraws unconfirmed hedge request(s): {why}", by="A")
        try:
            seen, settled = await self.rt.bus.wait_hedger_held(hold, self.cfg.hedge_confirm_timeout_s)
            if not settled:
                return [], seen
            found = await self.rt.bus.get_outcomes(request_ids)
            await self.take_outcomes(found)
            withdrawn = [r for r in request_ids if r not in found and r in self.outstanding]
            for request_id in withdrawn:
                reason = f"withdrawn by A: {why}; A + B decided from the exchange"
                await self.rt.bus.publish_outcome(HedgeOutcome.unhedged(self.outstanding[request_id], reason))
                self.outstanding.forget(request_id)
            return withdrawn, None
        finally:
            if own:
                await self._release(hold)

    async def _release(self, hold: PauseState) -> None:
        try:
            if await self.rt.bus.hedger_hold() == hold:  # not replaced by an operator's hold meanwhile
                await self.rt.bus.release_hedger()
        except RedisError as exc:
            logger.error("A: its hold of B could not be lifted ({!r}); lifted at A's next start, or delete "
                         "{}", exc, self.rt.bus.keys.hold_b)

    # ---------------------------------------------------------------- telling the operator

    async def pause(self, reason: str, advice: str, state: PauseState | None = None) -> None:
        """Pause with `reason`: in A's journal first, then in Redis (retried until Redis takes it). `state`:
        the pause already held (`pause_soon`)."""
        await self.outbox.assert_pause(state or PauseState(reason=reason, by="A", since_ms=now_ms()))
        self.rt.metrics.set_paused(True)
        logger.error("A PAUSED: {}. No new orders. Operator: {}", reason, advice)
        self.rt.events.emit(EventKind.PAUSE_SET, reason=reason)
        self.rt.alerter.notify(AlertKind.PAUSED, f"A paused: {reason}", key=reason,
                               details={"advice": advice})

    def pause_soon(self, reason: str, advice: str) -> None:
        """Pause now without waiting on Redis: held in A's journal and memory before this returns (nothing
        new is placed), then `pause` goes on in a task of its own (Redis, the log line, the alert)."""
        state = PauseState(reason=reason, by="A", since_ms=now_ms())
        self.outbox.hold_pause(state)
        self.rt.spawn(self.pause(reason, advice, state), "pause-a")

    async def watch_b_heartbeat(self, present: bool, context: str) -> None:
        """What A saw of B's heartbeat just now; raises heartbeat_lost once per absence (A logs it itself).
        A clean stop of B is excused only while no hedge of A waits for B."""
        await self.b_heartbeat.observe(present, context, excuse_clean_stop=not self.outstanding)


class FailedHedges:
    """While A's order rests: B's failed outcomes of A's outstanding requests, the moment they are published.

    `async with FailedHedges(hedges) as failures:` starts a task that listens on the outcome channels (a
    confirmed subscription) and reads the stored outcomes after subscribing and after every wake-up that
    carried no outcome (a resubscription, a malformed message) or none for `STORE_RECHECK_S` (a lost
    message), so an outcome published before or while listening is not missed. `wait()` returns once a
    failed one is known; `take()` hands them over (request id -> outcome) for the resting loop to act on:
    cancel at once, then `MakerHedges.take_outcomes_now`. Outcomes that are not taken stay outstanding and in
    Redis, for `settle`. Redis errors are logged once per outage and retried; they never reach the loop.
    """

    STORE_RECHECK_S = 5.0  # a safety net against a lost message: the channels wake it otherwise
    RETRY_MAX_S = 2.0
    # Leaving: each cancel of the watch is given this long to end it (ms when all is well), at most
    # EXIT_CANCELS of them. A cancel can be lost inside a redis-py call (`task_end`): one so lost let the
    # watch run on, and leaving waited for it forever: A's resting loop stopped after a fill
    # (bench/README.md, "The stall").
    EXIT_WAIT_S, EXIT_CANCELS = 1.0, 3

    def __init__(self, hedges: MakerHedges) -> None:
        self._hedges = hedges
        self._found: dict[str, HedgeOutcome] = {}
        self._seen = asyncio.Event()
        self._leaving = False  # its loop ends on this too, so a watch left behind ends by itself
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FailedHedges:
        self._task = asyncio.create_task(self._run(), name="a-failed-hedges")
        return self

    async def __aexit__(self, *_: object) -> None:
        # Bounded: this watch is an aid to the resting loop, whose end never waits on its cleanup.
        self._leaving = True
        if self._task is not None:
            await end_tasks([self._task], "A: the watch of B's outcomes", self.EXIT_CANCELS, self.EXIT_WAIT_S)

    async def wait(self) -> None:
        """Return once a failed outcome of an outstanding request is known (at once if one is)."""
        await self._seen.wait()

    def take(self) -> dict[str, HedgeOutcome]:
        """The failed outcomes of requests still outstanding, by request id; forgotten here once taken."""
        taken = {r: o for r, o in self._found.items() if r in self._hedges.outstanding}
        self._found.clear()
        self._seen.clear()
        return taken

    async def _run(self) -> None:
        rt = self._hedges.rt
        delay, outage = 0.1, False
        while not rt.stopping and not self._leaving:
            outcomes = rt.bus.subscribe_outcomes()
            try:  # not `async with`: a cancel while subscribing must close the subscription too
                await outcomes.open()
                await self._read_store()
                if outage:
                    logger.info("A: B's outcomes are watched again while the order rests")
                    outage, delay = False, 0.1
                while not self._leaving:
                    _, outcome = await outcomes.receive(timeout_s=self.STORE_RECHECK_S)
                    if outcome is not None:
                        self._consider(outcome)
                    else:
                        await self._read_store()
            except (RedisError, OSError, TimeoutError) as exc:
                if not outage:
                    logger.warning("A: B's outcomes cannot be watched while the order rests ({!r}); retrying "
                                   "(they are read when the order ends)", exc)
                outage = True
            finally:
                await outcomes.aclose()
            if self._leaving or await rt.sleep(delay):
                return
            delay = min(delay * 2, self.RETRY_MAX_S)

    async def _read_store(self) -> None:
        wanted = self._hedges.outstanding.ids
        if wanted:
            for outcome in (await self._hedges.rt.bus.get_outcomes(wanted)).values():
                self._consider(outcome)

    def _consider(self, outcome: HedgeOutcome) -> None:
        if outcome.filled:
            return  # taken by `settle` once the order ends
        mine = [r for r in outcome.request_ids if r in self._hedges.outstanding]
        for request_id in mine:
            self._found[request_id] = outcome
        if mine:
            self._seen.set()

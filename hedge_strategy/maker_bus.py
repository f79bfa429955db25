"""A's side of the bus that never holds up trading: the outbox, the check that Redis still holds what A put
there, and the pause A keeps in its journal too.

**Outbox.** The outstanding set (`outstanding`, journal meta `maker.outstanding`) is the outbox. The fill
tracker's task only records a request there and wakes this component's own task, which publishes it, and
retries while Redis is down or hung (its client has timeouts, a health check and a retry policy:
`bus.connect`). So a Redis that hangs rather than refuses delays hedge requests, never the exchange events:
A still sees its fills, cancels its order, and the requests go out when Redis answers again: after a failed
attempt the task keeps a PING in flight and tries again the moment Redis answers it (`bus.revival`), not
after a fixed sleep. `answered_at` (when Redis last answered this task, about every `AUDIT_INTERVAL_S`)
tells the resting order's watch how long Redis has been silent (`maker_b_watch`). An ended
order's entry for B's wash guard that A could not delete is deleted first (`clear_resting_later`), so B never
reads a request while that entry still bounds its limit.

**Lost data.** About every `AUDIT_INTERVAL_S`, and at each cycle's pause check, A probes Redis in one round
trip (`bus.audit`): a new run id, its epoch marker gone, or the consumer group gone means Redis may have lost
what A published, so every outstanding request without a stored outcome is published again; so is a
published request whose stream entry is gone. B hedges a request at most once whatever it is sent twice
(its stored outcome, else its journal's orders for the request).

**Pause.** The pause read at each probe is copied into the journal (`pause_mirror`); when the epoch marker is
gone (Redis lost its data) a pause the copy holds is set again. `known_pause` is the last pause seen, read
without I/O by the resting order's loop; `current_pause` probes first, for the cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import HedgeRequest, PauseState, now_ms
from hedge_strategy.bus.audit import BusProbe
from hedge_strategy.bus.first_publish import window_s
from hedge_strategy.bus.messages import RestingSnapshot
from hedge_strategy.bus.resting import RestingOrder, clear_resting
from hedge_strategy.bus.revival import UntilAnswering
from hedge_strategy.exchange import describe_coid
from hedge_strategy.observe import EventKind
from hedge_strategy.outstanding import FRESH, START_UP, OutstandingRequests
from hedge_strategy.pause_mirror import PauseMirror
from hedge_strategy.runtime import Runtime

AUDIT_INTERVAL_S = 1.0  # how often Redis is probed for lost data and the pause copied (one round trip)
# The longest wait between two attempts while Redis fails; the outbox goes on sooner, the moment Redis
# answers a PING again (`bus.revival`): this caps only its pace against a Redis that answers but refuses.
RETRY_MAX_S = 2.0
LOST = "Redis lost it"


class MakerBus:
    """See the module docstring. `start()` it before anything can fill; `put` a request to send it."""

    def __init__(self, rt: Runtime, outstanding: OutstandingRequests) -> None:
        self.rt = rt
        self.bus = rt.bus
        self.outstanding = outstanding
        self.pause_mirror = PauseMirror(rt.journal)
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()  # one probe done: a pause the journal kept is in Redis again
        self._paused = asyncio.Event()  # set while a pause is known
        self._known_pause: PauseState | None = None
        self._lock = asyncio.Lock()  # one probe or drain at a time (the task and the cycle share them)
        self._token = uuid.uuid4().hex
        self._run_id: str | None = None
        self._epoch: str | None = None
        self._group_seen = False
        self._last_probe = 0.0
        self._outage: str | None = None  # the error of the current Redis outage, logged once
        self._said_unpublished: set[str] = set()
        self._event_fields: dict[str, dict[str, object]] = {}  # request id -> what its event adds
        self._stale_resting: RestingOrder | None = None  # an ended order's entry for B's guard, to delete
        # A's resting order as named for B's wash guard now (the maker's), carried by marked requests
        self.resting_now: Callable[[], RestingOrder | None] = lambda: None
        self._first_window_s = window_s(rt.config.strategy.hedge_confirm_timeout_s)
        self._last_snapshot: tuple[RestingOrder | None, RestingSnapshot] | None = None
        self._until_answering = UntilAnswering(self.bus.redis, RETRY_MAX_S)  # paces the retries of a failure
        self.answered_at = time.monotonic()  # when Redis last answered the outbox (`time.monotonic`)

    # ---------------------------------------------------------------- what the maker uses

    def start(self) -> None:
        self.rt.spawn(self._run(), "bus-outbox-a")

    def put(self, request: HedgeRequest, first: bool = False, **event_fields: object) -> None:
        """Record `request` (journal) and wake the publisher: no I/O here, so no wait on Redis. `first`: a
        fill of an order this process placed (its first publish may be marked, `bus.first_publish`).
        `event_fields` go into its `hedge_request_published` event (a residual's positions)."""
        self.outstanding.remember(request, first)
        if event_fields:
            self._event_fields[request.request_id] = event_fields
        self._wake.set()

    def clear_resting_later(self, order: RestingOrder) -> None:
        """Delete `order`'s entry for B's wash guard before anything else is published (the maker's own
        delete failed): the compare-and-delete leaves the entry of a newer order alone."""
        self._stale_resting = order
        self._wake.set()

    @property
    def known_pause(self) -> PauseState | None:
        """The pause as last seen in Redis (or set by A), without asking Redis."""
        return self._known_pause

    async def pause_seen(self) -> None:
        """Return once a pause is known (at once if one is)."""
        await self._paused.wait()

    async def wait_synced(self) -> bool:
        """Until the first probe is done (a pause kept in the journal is then in Redis); False if stopping."""
        stop = asyncio.ensure_future(self.rt.stop.wait())
        synced = asyncio.ensure_future(self._synced.wait())
        try:
            await asyncio.wait({stop, synced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            synced.cancel()
        return self._synced.is_set()

    async def current_pause(self) -> PauseState | None:
        """The pause now: Redis probed first, so a pause Redis lost is set again before A trades on it.
        Raises RedisError when Redis does not answer."""
        async with self._lock:
            await self._probe()
        return self._known_pause

    def hold_pause(self, state: PauseState) -> None:
        """A pauses, at once and without I/O: `state` is kept in the journal (to be set in Redis) and known
        here, so nothing new is placed from now on."""
        self.pause_mirror.set_by_a(state)
        self._know_pause(state)

    async def assert_pause(self, state: PauseState) -> None:
        """A pauses: `state` goes to the journal first (`hold_pause`), then to Redis, retried until Redis
        takes it (when stopping first, the next start sets it)."""
        self.hold_pause(state)
        delay, failed = AUDIT_INTERVAL_S, False
        while True:
            try:
                await self.bus.put_pause(state)
                self.pause_mirror.asserted(state)
                if failed:
                    logger.info("A: its pause is set in Redis now: {}", state.reason)
                return
            except RedisError as exc:
                if not failed:
                    logger.error("A: the pause could not be set in Redis ({!r}); it is kept in A's journal "
                                 "and set as soon as Redis answers", exc)
                failed = True
            if await self.rt.sleep(delay):
                return
            delay = min(delay * 2, RETRY_MAX_S)

    # ---------------------------------------------------------------- the task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                async with self._lock:
                    await self._drain()
                    if time.monotonic() - self._last_probe >= AUDIT_INTERVAL_S:
                        await self._probe()
                    await self._drain()  # what the probe found lost
                self._answering()
            except RedisError as exc:
                self._failing(exc)
                # Not stop-aware: A's shutdown still waits for its hedges, so the outbox goes on until closed.
                await self._until_answering.wait()  # at once when a hung Redis runs again (`bus.revival`)
                continue
            # Woken by a new request, else the cadence. `timeout` rather than `wait_for`, which would wait in
            # a task of its own: two more turns of the loop between a fill and its publish.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(AUDIT_INTERVAL_S):
                    await self._wake.wait()

    def _failing(self, exc: RedisError) -> None:
        if self._outage is None:
            waiting = self.outstanding.to_publish()
            logger.warning("A: Redis at {} does not answer ({!r}); {} hedge request(s) wait in the outbox "
                           "(kept in the journal), sent when it answers; trading events go on",
                           self.bus.where, exc, len(waiting))
            self.rt.events.emit(EventKind.REDIS_UNAVAILABLE, reason=repr(exc), count=len(waiting))
        self._outage = repr(exc)

    def _answering(self) -> None:
        self.answered_at = time.monotonic()
        self._until_answering.answered()
        if self._outage is not None:
            logger.info("A: Redis at {} answers again (after {}); the outbox is sent", self.bus.where,
                        self._outage)
            self.rt.events.emit(EventKind.REDIS_BACK, reason=self._outage)
            self._outage = None

    # ---------------------------------------------------------------- publishing

    async def _drain(self) -> None:
        if self._stale_resting is not None:  # first: B must not read a request while it still bounds B
            await clear_resting(self.bus, self._stale_resting)
            self._stale_resting = None
        waiting = self.outstanding.to_publish()
        if not waiting:
            return
        again = [r.request_id for r, why in waiting if why != FRESH]
        answered = await self.bus.get_outcomes(again) if again else {}
        for request, why in waiting:
            if request.request_id in answered:  # B answered it: nothing to send, the cycle takes the outcome
                self.outstanding.published(request.request_id, None)
                continue
            try:
                entry = await self.bus.publish_request(self._marked(request, why))
            except RedisError as exc:
                self._not_published(request, why, exc)
                raise
            self.outstanding.published(request.request_id, entry)
            self._said_unpublished.discard(request.request_id)
            self._published(request, why)

    def _marked(self, request: HedgeRequest, why: str) -> HedgeRequest:
        """`request` marked `first_publish` with A's resting order, when this is its first publish attempt
        (`bus.first_publish`; the journal keeps it unmarked, so a start-up publishes it unmarked)."""
        if why != FRESH or not self.outstanding.take_first(request.request_id, self._first_window_s):
            return request
        # One `replace` (each validates the whole request again) also stamps the publish, which
        # `Bus.publish_request` would do with a second one; the snapshot is made once per resting order.
        return replace(request, first_publish=True, a_resting=self._snapshot(self.resting_now()),
                       publish_ts_ms=now_ms())

    def _snapshot(self, resting: RestingOrder | None) -> RestingSnapshot:
        if self._last_snapshot is None or self._last_snapshot[0] != resting:
            snapshot = RestingSnapshot() if resting is None else RestingSnapshot(
                client_order_index=resting.client_order_index, side=resting.side, price=resting.price,
                size=resting.size)
            self._last_snapshot = (resting, snapshot)
        return self._last_snapshot[1]

    def _published(self, request: HedgeRequest, why: str) -> None:
        reason = why or ("residual" if request.is_residual else "fill")
        self.rt.events.emit(EventKind.HEDGE_REQUEST_PUBLISHED, request_ids=(request.request_id,),
                            coid=request.a_client_order_index, side=request.side, size=request.size,
                            reason=reason, **self._event_fields.pop(request.request_id, {}))
        if why != FRESH:
            logger.warning("{}: hedge request {} has no outcome in Redis; publishing it again (same id: B "
                           "hedges it at most once)", "A start-up" if why == START_UP else f"A ({why})",
                           request.request_id)
            return
        if request.is_residual:
            return  # announced when it was made (`Maker._on_imbalance`)
        published_ms = now_ms()
        seen_us = request.seen_ts_us
        logger.info("{}: hedge request {} published (B to {} {}; seen_us={}, {:.2f} ms after seen)",
                    _fill_of(request), request.request_id, request.side, request.size, seen_us,
                    (time.time_ns() // 1000 - seen_us) / 1000 if seen_us else 0.0)
        self.rt.metrics.observe_since_fill("request_published", request.fill_ts_ms, published_ms)

    def _not_published(self, request: HedgeRequest, why: str, exc: RedisError) -> None:
        if request.request_id in self._said_unpublished:
            return
        self._said_unpublished.add(request.request_id)
        what = (_fill_of(request) if why == FRESH and not request.is_residual
                else "A start-up" if why == START_UP else f"A ({why or 'residual'})")
        logger.warning("{}: hedge request {} NOT published yet ({!r}); kept in the outbox (journal), sent "
                       "when Redis answers", what, request.request_id, exc)

    # ---------------------------------------------------------------- noticing lost data

    async def _probe(self) -> None:
        probe = await self.bus.probe(self.outstanding.entries())
        self._last_probe = time.monotonic()
        first = self._run_id is None
        lost: list[str] = []
        if not first and probe.run_id != self._run_id:
            lost.append(f"Redis run id changed ({(self._run_id or '')[:8]} -> {probe.run_id[:8]})")
        data_lost = probe.epoch is None or (self._epoch is not None and probe.epoch != self._epoch)
        if data_lost and not first:
            lost.append("its data is gone (A's epoch marker is missing)")
        if self._group_seen and not probe.group_exists:
            lost.append("the consumer group is gone")
        self._run_id = probe.run_id
        if first:
            await self._lift_leftover_hold()
        if data_lost or self._epoch is None:
            self._epoch = await self.bus.claim_epoch(self._token)
        if not probe.group_exists:
            await self.bus.ensure_group()
        self._group_seen = True
        if lost:
            self._publish_all_again(lost)
        elif probe.missing:
            self._publish_missing_again(list(probe.missing))
        await self._keep_pause(probe, data_lost and not first)
        self._synced.set()

    async def _lift_leftover_hold(self) -> None:
        """A hold of B that A set to withdraw requests and could not lift (A died meanwhile) is lifted now."""
        hold = await self.bus.hedger_hold()
        if hold is not None and hold.by == "A":
            await self.bus.release_hedger()
            logger.warning("A start-up: B was still held by a previous A ({}); released", hold.reason)

    def _publish_all_again(self, lost: list[str]) -> None:
        marked = self.outstanding.publish_again(self.outstanding.ids, LOST)
        logger.warning("A: Redis may have lost what A published ({}): {}", "; ".join(lost),
                       f"{len(marked)} outstanding hedge request(s) published again unless answered "
                       f"({', '.join(marked)})" if marked else "no hedge request outstanding")
        self.rt.events.emit(EventKind.BUS_DATA_LOST, reason="; ".join(lost), request_ids=tuple(marked))

    def _publish_missing_again(self, missing: list[str]) -> None:
        self.outstanding.publish_again(missing, "its stream entry is gone")
        logger.warning("A: hedge request(s) {} are gone from the request stream; published again unless "
                       "answered", ", ".join(missing))
        self.rt.events.emit(EventKind.BUS_DATA_LOST, reason="gone from the request stream",
                            request_ids=tuple(missing))

    async def _keep_pause(self, probe: BusProbe, data_lost: bool) -> None:
        # Redis found empty at A's first probe (a fresh one, or one that lost its data while A was down) is
        # treated as lost too: a pause A's journal holds from before is set again.
        restore = self.pause_mirror.to_restore(probe.pause, data_lost or probe.epoch is None)
        if restore is None:
            self.pause_mirror.observed(probe.pause)
            self._know_pause(probe.pause)
            if data_lost:
                logger.info("A: Redis lost its data; A's journal holds no pause to set again ({})",
                            "paused: " + probe.pause.reason if probe.pause else "trading is allowed")
            return
        await self.bus.put_pause(restore)
        unasserted = self.pause_mirror.unasserted
        self.pause_mirror.asserted(restore)
        self._know_pause(restore)
        if unasserted:
            logger.warning("A: its pause (since {}: {}) is set in Redis now", restore.since_ms,
                           restore.reason)
        else:
            logger.warning("A: Redis lost its data; the pause by {} since {} is set again from A's journal: "
                           "{}", restore.by, restore.since_ms, restore.reason)
        self.rt.events.emit(EventKind.PAUSE_RESTORED, by=restore.by, reason=restore.reason)

    def _know_pause(self, pause: PauseState | None) -> None:
        self._known_pause = pause
        if pause is None:
            self._paused.clear()
        else:
            self._paused.set()


def _fill_of(request: HedgeRequest) -> str:
    """ "A fill 0.0002 @ 95000.1 (trade 56, A/maker#4)": the fill a request hedges, as A's log names it."""
    trades = ", ".join(str(t) for t in request.trade_ids)
    return (f"A fill {request.size} @ {request.a_fill_price} (trade {trades}, "
            f"{describe_coid(request.a_client_order_index)})")

"""What A and B share as processes: wiring, heartbeats, orderly shutdown, and a few stop-aware waits.

Wiring (`open_runtime`): the account with its journal, tracker, reconciler and executor
(`execution.connect.open_account`, the same wiring `hedgectl clear` uses), then the `Bus`, `HedgeMetrics` and
`Alerter` (both serving/delivering before anything trades). The role's loop (`maker.Maker`, `hedger.Hedger`)
then calls `start_tracking()` (tracker consuming, start-up reconciliation, periodic reconciliation) and runs
until `stop` is set by SIGTERM/SIGINT (`process.py`: the life of the process, its exit code).

Observability is shared wiring too: every fill is counted by intent as it reaches the role, and the metrics
follow the reconciler and the adapter's running totals (reconnects, nonce resyncs, rate-limit backoffs).
Metrics calls are in-memory and alerts are queued, so neither delays the hot path. `Runtime.events` takes
the role's structured events (`observe.events`): none are kept unless `--events-file` names a file (or a
test gives `run_role` a sink).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.bus import Bus, SharedBudget, shared_budget
from hedge_strategy.config import Config
from hedge_strategy.config_error import ROLE_NAMES as ROLE_NAMES
from hedge_strategy.exchange import Event, LighterAccount, MarketInfo, TopOfBook, parse_coid
from hedge_strategy.exchange.throttle import reconcile_interval_s
from hedge_strategy.execution import (
    FillCallback,
    Journal,
    JournalFill,
    JournalOrder,
    OrderExecutor,
)
from hedge_strategy.execution.connect import open_account
from hedge_strategy.observe import (
    NO_EVENTS,
    Alerter,
    AlertKind,
    EventKind,
    EventSink,
    HedgeMetrics,
    RoleEvents,
)
from hedge_strategy.task_end import end_tasks

NEVER_SEEN_GRACE_S = 30.0  # a heartbeat never seen this long after start counts as lost
STARTUP_RETRY_MIN_S, STARTUP_RETRY_MAX_S = 0.5, 30.0  # back-off of an incomplete start-up reconciliation
COUNTER_SYNC_S = 5.0  # how often the adapter's rate-limit backoff total is copied into the metrics


@dataclass
class Runtime:
    """Everything one process (A or B) trades with. Build it with `open_runtime`, end it with `close`."""

    config: Config
    role: str  # "a" | "b"
    market: MarketInfo
    orders: OrderExecutor  # the account: every order it sends, and what the role reads of it
    bus: Bus
    metrics: HedgeMetrics
    alerter: Alerter
    events: RoleEvents
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    fill_handler: FillCallback | None = None  # set by the role before start_tracking()
    shared_budget: SharedBudget | None = None  # the account's rate budget when A and B share one
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def account(self) -> LighterAccount:
        return self.orders.account

    @property
    def journal(self) -> Journal:
        return self.orders.journal

    @property
    def name(self) -> str:
        return ROLE_NAMES[self.role]

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    async def relay_fill(self, fill: JournalFill, order: JournalOrder | None) -> None:
        """The tracker's callback: forwards to the role's handler (installed after construction)."""
        if self.fill_handler is not None:
            await self.fill_handler(fill, order)
        # After the handler: A's hedge request is recorded first. The fee is already in USDC.
        self.metrics.fill(_intent_of(fill, order), fill.fee)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A background task that lives until `close` (an unexpected end is logged)."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_task_end)
        self._tasks.append(task)
        return task

    async def start_tracking(self) -> None:
        """Consume exchange events, reconcile until a run completes (nothing trades before), then keep
        reconciling. Returns early, without a complete run, only when stopping."""
        reconciler = self.orders.reconciler
        await self.orders.tracker.start()
        await self._reconcile_until_complete()
        ex = self.config.exchange
        interval_s = ex.reconcile_interval_s or reconcile_interval_s(ex.tier, ex.shared_budget)
        logger.info("{} reconciles with the exchange every {:g} s{}", self.name, interval_s,
                    "" if ex.reconcile_interval_s else f" (from the {ex.tier} tier's budget)")
        self.spawn(reconciler.run(interval_s), f"reconcile-{self.role}")
        if self.metrics.enabled:
            self.spawn(self.metrics.follow(reconciler, self.account), f"metrics-{self.role}")
            self.spawn(self._sync_rate_limit_backoffs(), f"metrics-backoffs-{self.role}")

    async def _reconcile_until_complete(self) -> bool:
        """Start-up reconciliation, retried with a growing back-off until a run completes; False if stopping.

        A partial run (an exchange read failed) could leave a fill unannounced or an order unknown, and
        trading on that could hedge twice or not at all: so the role waits here, heartbeat not yet started.
        """
        delay, attempt = STARTUP_RETRY_MIN_S, 1
        while True:
            report = await self.orders.reconcile("start-up" if attempt == 1 else f"start-up #{attempt}")
            if report.complete:
                if attempt > 1:
                    logger.info("{} start-up reconciliation complete at attempt {}; trading may start",
                                self.name, attempt)
                self.events.emit(EventKind.RECONCILED, attempt=attempt)
                return True
            logger.warning("{} start-up reconciliation incomplete (attempt {}: {}); nothing trades until one "
                           "completes, retrying in {:g} s", self.name, attempt, "; ".join(report.errors),
                           delay)
            self.events.emit(EventKind.RECONCILE_INCOMPLETE, attempt=attempt, reason="; ".join(report.errors))
            if await self.sleep(delay):
                logger.warning("{} stopping before a complete start-up reconciliation", self.name)
                self.events.emit(EventKind.STOPPING, reason="start-up reconciliation incomplete")
                return False
            delay, attempt = min(delay * 2, STARTUP_RETRY_MAX_S), attempt + 1

    def watch_heartbeat(self, other: str, context: str) -> HeartbeatWatch:
        """Check `other`'s heartbeat every `heartbeat_ttl_s / 3` until `close`: one log line and one
        heartbeat_lost alert per absence (see `HeartbeatWatch`)."""
        watch = HeartbeatWatch(self, other)

        async def check() -> None:
            while True:
                try:
                    change = await watch.observe(await self.bus.heartbeat(other) is not None, context)
                except RedisError as exc:
                    change = None
                    logger.warning("{}: {}'s heartbeat not read ({!r}); read again shortly", self.name,
                                   ROLE_NAMES[other], exc)
                if change == "first":
                    logger.info("{}: {} is up (heartbeat seen)", self.name, ROLE_NAMES[other])
                    self.events.emit(EventKind.HEARTBEAT_SEEN, peer=other)
                elif change == "back":
                    logger.info("{}: {}'s heartbeat is back", self.name, ROLE_NAMES[other])
                    self.events.emit(EventKind.HEARTBEAT_BACK, peer=other)
                elif change == "stopped":
                    logger.info("{}: {} stopped cleanly (its heartbeat was ended on purpose); no alert",
                                self.name, ROLE_NAMES[other])
                    self.events.emit(EventKind.HEARTBEAT_ENDED, peer=other)
                elif change is not None:
                    logger.warning("{}: {} ({}); alert raised", self.name, change.removeprefix("lost: "),
                                   context)
                    self.events.emit(EventKind.HEARTBEAT_ABSENT, peer=other,
                                     reason=change.removeprefix("lost: "))
                await asyncio.sleep(self.config.strategy.heartbeat_ttl_s / 3)  # cadence, not a wait

        self.spawn(check(), f"heartbeat-watch-{other}")
        return watch

    def keep_heartbeat(self, info: Callable[[], dict[str, Any]]) -> None:
        """Beat every `heartbeat_ttl_s / 3` until `end_heartbeat`, with the role's `info()` for observers
        (`hedgectl status`, A's check of B, `start_hedge.sh`'s wait for B)."""
        self.spawn(self._beat(info), f"heartbeat-{self.role}")

    async def _beat(self, info: Callable[[], dict[str, Any]]) -> None:
        ttl = self.config.strategy.heartbeat_ttl_s
        while True:
            body = {"pid": os.getpid(), "account_index": self.account.account_index,
                    "stream_up": self.account.stream_up, **info()}
            try:
                await self.bus.beat(self.role, ttl, body)
            except RedisError as exc:
                logger.warning("{}: heartbeat not written ({!r}); it counts as absent once its TTL ends",
                               self.name, exc)
            await asyncio.sleep(ttl / 3)  # the beat's cadence, not a wait for an outcome

    async def end_heartbeat(self) -> None:
        """Stop beating and remove the key, so the other process sees this one gone at once."""
        for task in self._tasks:
            if task.get_name() == f"heartbeat-{self.role}":
                task.cancel()
        try:
            await self.bus.end_heartbeat(self.role)
        except RedisError as exc:
            logger.warning("{}: heartbeat key not removed ({!r}); it expires by itself", self.name, exc)

    async def _sync_rate_limit_backoffs(self) -> None:
        # `HedgeMetrics.follow` catches up reconnects and nonce resyncs but not this total: copy it here.
        while True:
            self.metrics.sync_rate_limit_backoffs(self.account.rate_limit_backoffs)
            await asyncio.sleep(COUNTER_SYNC_S)  # a polling cadence, not a wait for an outcome

    async def sleep(self, seconds: float) -> bool:
        """Wait `seconds` or until stop; True when stopping (for retry back-offs, never to await a result)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stopping

    async def close(self) -> None:
        """Stop background work, flush and close the journal, close the exchange and Redis connections."""
        await self._end_tasks()
        await self.orders.close()
        if self.shared_budget is not None:
            await self.shared_budget.aclose()
        await self.bus.aclose()
        await self.alerter.stop()  # delivers what is queued (bounded by its timeout), e.g. a last pause
        await self.metrics.stop()

    async def _end_tasks(self) -> None:
        # A cancellation can be lost inside a library call (`task_end`): cancelled again, bounded.
        await end_tasks(self._tasks, self.name)
        self._tasks.clear()


async def open_runtime(config: Config, role: str, event_sink: EventSink = NO_EVENTS) -> Runtime:
    """Connect account `role` ("a" or "b"), its structured events going to `event_sink`: raises ConfigError
    for a missing secret or unknown market."""
    events = RoleEvents(event_sink, role)
    metrics = HedgeMetrics.from_config(config, role)
    budget = shared_budget(config)  # the REST budget A and B share, when they do
    holder: list[Runtime] = []

    async def relay(fill: JournalFill, order: JournalOrder | None) -> None:
        await holder[0].relay_fill(fill, order)

    journal_file = config.journal.path_for(config.accounts[role].account_index)
    trade_feed = role == "b" and config.strategy.follows_trade_feed  # hedger_feed.py
    try:
        orders = await open_account(config, role, journal_file, name=ROLE_NAMES[role],
                                    market=config.strategy.market, on_fill=relay, events=events,
                                    metrics=metrics, budget=budget,
                                    trade_feed=trade_feed)
    except BaseException:
        if budget is not None:
            await budget.aclose()
        raise
    alerter = Alerter.from_config(config, role, metrics)
    runtime = Runtime(config=config, role=role, market=orders.account.market(config.strategy.market),
                      orders=orders, bus=Bus.from_config(config.redis, config.pair), metrics=metrics,
                      alerter=alerter, events=events, shared_budget=budget)
    holder.append(runtime)
    await metrics.start()  # a port that cannot be bound is logged; trading goes on without metrics
    await alerter.start()
    return runtime


class HeartbeatWatch:
    """What one role saw of the other's heartbeat, and the heartbeat_lost alert: once per absence.

    The heartbeat counts as lost when it disappears after it was seen, or when it has not appeared
    `NEVER_SEEN_GRACE_S` after this watch began (the other may start a moment later: that is no loss).
    """

    def __init__(self, rt: Runtime, other: str) -> None:
        self.rt = rt
        self.other = other
        self._started = time.monotonic()
        self.seen = False  # the heartbeat was there at least once in this run
        self._alerted = False  # heartbeat_lost raised for the current absence

    async def observe(self, present: bool, context: str, excuse_clean_stop: bool = True) -> str | None:
        """`saw`, after asking Redis whether an absent heartbeat was ended by a clean stop. A caller that is
        waiting on the other process passes `excuse_clean_stop=False`: then even a clean stop is an alert."""
        stopped = excuse_clean_stop and not present and await self.rt.bus.stopped_cleanly(self.other)
        return self.saw(present, context, stopped_cleanly=stopped)

    def saw(self, present: bool, context: str, stopped_cleanly: bool = False) -> str | None:
        """What was seen of the heartbeat just now; alerts on the first look of an absence that counts.

        Returns what changed, for the caller's log: "first" when first seen, "lost: ..." once per absence,
        "stopped" once per clean stop (no alert: the operator stopped it), "back" after either, or None.
        """
        if present:
            was_absent, first = self._alerted, not self.seen
            self.seen, self._alerted = True, False
            return "back" if was_absent else "first" if first else None
        never_seen_for = time.monotonic() - self._started
        if self._alerted or not (self.seen or never_seen_for >= NEVER_SEEN_GRACE_S):
            return None
        self._alerted = True
        if stopped_cleanly:
            return "stopped"
        other = ROLE_NAMES[self.other]
        lost = "is absent" if self.seen else f"has not appeared in {never_seen_for:.0f} s"
        self.rt.alerter.notify(AlertKind.HEARTBEAT_LOST, f"{other}'s heartbeat {lost}: {context}",
                               key=self.other,
                               details={"heartbeat_ttl_s": self.rt.config.strategy.heartbeat_ttl_s})
        return f"lost: {other}'s heartbeat {lost}"


def _intent_of(fill: JournalFill, order: JournalOrder | None) -> str:
    """What the filled order was for (maker, hedge, close, rebalance), from the journal or its coid."""
    if order is not None:
        return str(order.intent)
    try:
        return parse_coid(fill.client_order_index)[1].name.lower()
    except ValueError:
        return "unknown"


# ------------------------------------------------------------------------------------------------------
# Stop-aware waiting


async def first_of(*awaitables: Awaitable[Any], timeout_s: float | None) -> None:
    """Return when the first awaitable finishes (its result and errors are dropped) or after `timeout_s`.

    The others are cancelled. Used to wait on several events at once (an order, the book, the stop signal).
    """
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Bounded: an awaitable that is a Redis call can lose its cancel (`task_end`).
        await end_tasks(tasks, "first_of")


class BookWatch:
    """Wakes waiters when the top of one market's book changes (from the adapter's stream events)."""

    def __init__(self, account: LighterAccount, market_id: int) -> None:
        self._account = account
        self._market_id = market_id
        self._queue: asyncio.Queue[Event] = account.subscribe()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"book-watch-{self._market_id}")

    async def stop(self) -> None:
        self._account.unsubscribe(self._queue)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def changed(self) -> None:
        """Return at the next top-of-book change of the market."""
        await self._changed.wait()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            if isinstance(event, TopOfBook) and event.market_id == self._market_id:
                woken, self._changed = self._changed, asyncio.Event()
                woken.set()


def _log_task_end(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.opt(exception=error).error("background task {} died: {!r}", task.get_name(), error)

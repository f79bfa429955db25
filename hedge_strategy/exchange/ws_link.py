"""A `Link`: one set of subscriptions kept alive over successive WebSocket connections (`Session`s).

It reconnects with exponential backoff and full jitter after a connection ends (at once when the reason
says so), and moves to a new connection *before* the old one goes when it can (make-before-break): on the
server's `{"type":"shutdown","close_in_ms":N}` and on an auth token renewal, a second connection is opened
and subscribed while the first keeps delivering; once every subscription of the new one is confirmed, the
old one is closed. Frames from both count meanwhile (fills are deduplicated by trade id downstream, a book
takes deltas only from the connection its snapshot came from). If the old connection closes first, the link
goes down and the new one, already on its way, brings it back up.

Subclasses say what to subscribe and what the frames mean: `subscriptions`, `subscribe_frame`, `prepare`,
`on_data`, `on_error`, `on_already_subscribed`, `on_tx_answer`, `on_tx_refusal`, `went_up`, `went_down`,
`handed_over`, `session_closed`, `session_retired`, `next_timer`/`on_timer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from loguru import logger
from websockets.exceptions import ConnectionClosed, WebSocketException

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.throttle import backoff_delay
from hedge_strategy.exchange.ws_budget import MessageBudget, Priority
from hedge_strategy.exchange.ws_session import MoveRefused, Reconnect, Session, Subscription


class Link:
    keepalive_priority = Priority.KEEPALIVE  # the priority of this link's pongs and pings

    def __init__(self, *, name: str, ws_url: str, budget: MessageBudget, silence_s: float,
                 backoff_min_s: float, backoff_max_s: float) -> None:
        self.name = name
        self.ws_url = ws_url
        self.budget = budget
        self.silence_s = silence_s
        self._backoff = (backoff_min_s, backoff_max_s)
        self.up = False
        self.ever_up = False
        self.connects = 0  # times the link came up (first connect and every recovery)
        self.handovers = 0  # moves to a new connection without going down
        self.heard_at = time.monotonic()
        self.current: Session | None = None
        self._current_task: asyncio.Task[None] | None = None
        self._successor: tuple[Session, asyncio.Task[None], str] | None = None
        self._handover_retry: tuple[float, str, bool] | None = None  # (when, reason, fresh)
        self._up_event = asyncio.Event()
        self._heard = asyncio.Event()  # set by the next frame heard on any of this link's connections
        self._task: asyncio.Task[None] | None = None
        self._serial = 0
        self._fresh_next = False
        self._closing = False
        self.can_move = True  # False once the venue refused a second connection's subscriptions

    # --- what subclasses provide -------------------------------------------------------------------

    def subscriptions(self) -> list[Subscription]:
        raise NotImplementedError

    def subscribe_frame(self, sub: Subscription) -> dict[str, Any]:
        return {"type": "subscribe", "channel": sub.channel}

    async def prepare(self, fresh: bool) -> None:
        """Before each new connection (e.g. get an auth token, a new one when `fresh`)."""

    async def on_data(self, session: Session, frame: dict[str, Any], *, snapshot: bool, family: str) -> None:
        """A `subscribed/<family>` (snapshot) or `update/<family>` frame."""

    async def on_error(self, session: Session, error: parsing.WsError, key: str | None) -> bool:
        """An error frame the session does not handle itself; True when handled here."""
        return False

    async def on_already_subscribed(self, session: Session, key: str) -> None:
        """30003 for a subscription we are waiting on: by default, it simply is subscribed."""
        session.confirm(key)

    def on_tx_answer(self, session: Session, frame: dict[str, Any]) -> None:
        """The answer to a transaction sent on `session` (`jsonapi/sendtx`, ws_tx.py)."""

    def on_tx_refusal(self, session: Session, frame: dict[str, Any], error: parsing.WsError) -> bool:
        """An error frame that may refuse a transaction sent on `session` (it carries its `id`, ws_tx.py);
        True when it did, else the session handles it as any error frame."""
        return False

    def went_up(self, reconnect: bool) -> None: ...

    def went_down(self, reason: str) -> None: ...

    def handed_over(self, reason: str) -> None: ...

    def session_closed(self, session: Session) -> None: ...

    def session_retired(self, session: Session) -> None:
        """`session` was replaced by a newer connection and reads nothing more."""

    def next_timer(self) -> float:
        return math.inf

    async def on_timer(self, session: Session) -> None: ...

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ws {self.name}")

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._task, self._current_task, self._successor[1] if self._successor else None)
                 if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = self._current_task = self._successor = None
        self.up = False

    async def wait_up(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up_event.wait(), timeout_s)
        return self.up

    def seconds_since_heard(self) -> float:
        return time.monotonic() - self.heard_at

    # --- called by sessions ---------------------------------------------------------------------------

    def heard(self, at: float) -> None:
        self.heard_at = at
        self._heard.set()  # wakes a `probe`; the next one waits on a fresh event
        self._heard = asyncio.Event()

    def is_current(self, session: Session) -> bool:
        return session is self.current

    def is_successor(self, session: Session) -> bool:
        return self._successor is not None and session is self._successor[0]

    def tick_at(self) -> float:
        retry_at = self._handover_retry[0] if self._handover_retry is not None else math.inf
        return min(self.next_timer(), retry_at)

    async def tick(self, session: Session) -> None:
        if self._handover_retry is not None and time.monotonic() >= self._handover_retry[0]:
            _, reason, fresh = self._handover_retry
            self._handover_retry = None
            self.request_handover(reason, fresh=fresh)
        if time.monotonic() >= self.next_timer():
            await self.on_timer(session)

    def session_up(self, session: Session) -> None:
        if self._successor is not None and session is self._successor[0]:
            self._promote()
        elif session is self.current and not self.up:
            self._set_up()

    def session_lost(self, session: Session, reason: str) -> None:
        if session is self.current:
            self._set_down(reason)

    def on_shutdown(self, session: Session, delay_s: float) -> None:
        if session is not self.current:
            return
        if self.can_move:
            logger.warning("ws {}: the server announces a close in {:.1f} s; moving to a new connection "
                           "first", self.name, delay_s)
            self.request_handover(f"server shutdown in {delay_s:.1f} s")
        else:
            logger.warning("ws {}: the server announces a close in {:.1f} s; reconnecting once it closes "
                           "(the venue refused a second connection before)", self.name, delay_s)

    async def probe(self, timeout_s: float) -> bool:
        """Ping the current connection now and wait up to `timeout_s` for any frame: True when one came, the
        proof that a connection which said nothing for a while is alive (a quiet market), not dead without
        having closed. False when it stayed silent, when there is no writable connection, or when the
        message budget cannot afford a ping now (then the caller knows no more than before)."""
        session = self.current
        heard = self._heard
        if session is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):  # the whole probe, its write included, is bounded
                if not await session.ping_now():
                    return False
                await heard.wait()
        except (TimeoutError, ConnectionClosed, OSError):
            pass  # unanswered, or the connection is going: the caller knows no more than before
        return heard.is_set()

    def restart(self, reason: str) -> bool:
        """Leave the current connection and reconnect at once, though it has not closed: its news is known
        to be stale (REST showed what it never delivered). False when there is no connection to leave."""
        session = self.current
        if session is None or not session.writable:
            return False
        logger.warning("ws {}: {}; leaving this connection and reconnecting now", self.name, reason)
        session.end(reason)
        return True

    def request_handover(self, reason: str, *, fresh: bool = False) -> bool:
        """Open a new connection beside the current one; it replaces it once all its subscriptions are up.

        False when a move cannot be made (the venue refused one before); True when one is under way."""
        if not self.can_move or self.current is None:
            return False
        if self._successor is not None:
            return True
        session, task = self._spawn(fresh)
        self._successor = (session, task, reason)
        task.add_done_callback(lambda done: self._successor_ended(session, done, reason, fresh))
        logger.info("ws {}: opening a new connection ({}); the current one stays until it is up",
                    self.name, reason)
        return True

    # --- internals ------------------------------------------------------------------------------------

    def _spawn(self, fresh: bool) -> tuple[Session, asyncio.Task[None]]:
        self._serial += 1
        session = Session(self, self._serial)
        task = asyncio.get_running_loop().create_task(self._serve(session, fresh), name=f"ws {session.name}")
        return session, task

    async def _serve(self, session: Session, fresh: bool) -> None:
        try:
            await self.prepare(fresh)
        except Exception as exc:
            raise Reconnect(f"auth token unavailable: {exc}") from exc
        await session.run()

    async def _run(self) -> None:
        attempt = 0
        while True:
            if self.current is None or self._current_task is None:
                self.current, self._current_task = self._spawn(self._fresh_next)
            session, task = self.current, self._current_task
            reason, immediate = await self._outcome(task)
            if session.retired:  # handed over: the successor is current already
                continue
            self.session_closed(session)
            healthy = self.up
            self._set_down(reason)
            if self._successor is not None:  # a new connection is on its way already: it takes over
                new, new_task, why = self._successor
                self._successor = None
                self.current, self._current_task = new, new_task
                logger.warning("ws down ({}): {}; the new connection opened for {} takes over",
                               self.name, reason, why)
                continue
            self.current = self._current_task = None
            if healthy:
                attempt = 0  # the connection was fine: start the backoff over
            delay = 0.0 if immediate else backoff_delay(attempt, *self._backoff)
            attempt = 0 if immediate else attempt + 1
            logger.warning("ws down ({}): {}; reconnecting in {:.2f} s", self.name, reason, delay)
            await asyncio.sleep(delay)

    async def _outcome(self, task: asyncio.Task[None]) -> tuple[str, bool]:
        """Wait for a connection's task to end; (reason, reconnect at once?)."""
        self._fresh_next = False
        try:
            await task  # cancelling the link (close) cancels the connection with it
            return "server closed the connection", False
        except Reconnect as exc:
            self._fresh_next = exc.fresh_token
            return str(exc), exc.immediate
        except ConnectionClosed as exc:
            return f"connection closed ({_close_text(exc)})", False
        except (OSError, WebSocketException, TimeoutError) as exc:
            return f"connect failed: {type(exc).__name__}: {exc}", False
        except asyncio.CancelledError:
            if task.cancelled() and not _current_task_cancelling():
                return "connection task cancelled", False
            raise
        except Exception as exc:  # a bug must not kill the stream for good: log it and reconnect
            logger.exception("ws {}: unexpected error in the connection loop", self.name)
            return f"internal error: {type(exc).__name__}: {exc}", False

    def _promote(self) -> None:
        assert self._successor is not None
        new, new_task, reason = self._successor
        old = self.current
        self._successor = None
        self.current, self._current_task = new, new_task
        self.handovers += 1
        if old is not None:
            old.retire()
            self.session_retired(old)
        logger.info("ws {}: moved to a new connection ({}); the old one is closed", self.name, reason)
        self.handed_over(reason)
        if not self.up:
            self._set_up()

    def _successor_ended(self, session: Session, task: asyncio.Task[None], reason: str, fresh: bool) -> None:
        if self._closing or self._successor is None or self._successor[0] is not session:
            return  # promoted (or taken over as current): the main loop follows it now
        self._successor = None
        failure = None if task.cancelled() else task.exception()
        if isinstance(failure, MoveRefused):
            self.can_move = False
            logger.warning("ws {}: the new connection for {} was refused ({}); this link will not move "
                           "connections again, it reconnects instead", self.name, reason, failure)
            return
        delay = backoff_delay(1, *self._backoff)
        logger.warning("ws {}: the new connection for {} failed ({!r}); trying again in {:.2f} s",
                       self.name, reason, failure or "cancelled", delay)
        self._handover_retry = (time.monotonic() + delay, reason, fresh)

    def _set_up(self) -> None:
        reconnect = self.ever_up
        self.up = self.ever_up = True
        self.connects += 1
        self._up_event.set()
        self.went_up(reconnect)

    def _set_down(self, reason: str) -> None:
        if self.up:
            self.up = False
            self._up_event.clear()
            self.went_down(reason)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"code {frame.code} {frame.reason!r}" if frame is not None else "no close frame"

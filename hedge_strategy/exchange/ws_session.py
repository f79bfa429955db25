"""One WebSocket connection of the stream: subscriptions, pings, silence, error frames, all within the budget.

A `Session` belongs to a `Link` (ws_link.py), which decides what to subscribe and what the frames mean. The
session itself:
- subscribes once the server's `connected` greeting came, or after `GREETING_WAIT_S` (at most a quarter of
  the silence limit) without one: a greeting that never comes costs two seconds, not a heartbeat;
- sends every frame through the shared `MessageBudget`: what the budget cannot afford now waits in a queue,
  keep-alives first, and the loop never blocks on it (pings keep being answered);
- answers `ping` with `pong`; pings the server itself half-way through a quiet spell, and whenever it has
  sent nothing for `CLIENT_IDLE_PING_S` (the venue closes a connection it heard nothing from for two
  minutes, however much it sends itself);
- treats silence longer than `silence_s` as a dead connection. The venue pings, so `silence_s` (the
  `exchange.ws_heartbeat_timeout_s` setting) is meant as twice its ping interval: one missed ping is death;
- confirms a subscription on its `subscribed/<channel>` frame and subscribes again, with backoff, when it
  is refused (30012 and any other error naming the channel), rate limited (30009: the budget backs off, no
  reconnect) or not confirmed within `SUBSCRIBE_CONFIRM_S` (at most the silence limit: after a reconnect
  into a server still silent, the stream is up again seconds after it speaks, not a heartbeat later);
  `MAX_SUBSCRIBE_ATTEMPTS` unconfirmed tries end the connection;
- treats 30003 (already subscribed) as harmless: logged once, then the link decides (a book needs a fresh
  snapshot, an account channel simply is subscribed).
Error frames come in two forms and usually name their channel only in the message (`parsing.ws_error`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.throttle import backoff_delay
from hedge_strategy.exchange.ws_budget import Priority
from hedge_strategy.exchange.ws_tx import TX_ANSWER_TYPES

if TYPE_CHECKING:
    from hedge_strategy.exchange.ws_link import Link

MAX_FRAME_BYTES = 8 * 1024 * 1024
# No permessage-deflate: the client does not offer it, so frames go plain both ways. RFC 7692 makes the
# extension optional for both ends, so a server must accept a client without it; whether the venue offers it
# is not captured, and the research notes know of nothing that needs it [inferred]. The `websockets` default
# offered it and the simulator took it: every frame was deflated by its sender and inflated by its reader, on
# the CPUs the hedge path runs on, for frames too small to gain from it (a transaction: ~460 bytes). Measured
# (bench/README.md, "Where the hedge path's milliseconds go"): one `jsonapi/sendtx` round trip 0.34 -> 0.19 ms
# idle, B's write to the sim's read of its transaction 0.43 -> 0.35 ms (p50) in the latency bench.
COMPRESSION = None
GREETING_WAIT_S = 2.0
# How long a subscription may wait for its snapshot before it is sent again. The venue answers a subscribe at
# once (the snapshot follows it); waiting a whole heartbeat for one that never comes (a reconnect into a
# server that is still silent) kept the stream down for as long again after the server spoke again.
SUBSCRIBE_CONFIRM_S = 5.0
CLIENT_IDLE_PING_S = 60.0
PING_TEXT = json.dumps({"type": "ping"}, separators=(",", ":"))
MAX_SUBSCRIBE_ATTEMPTS = 3
SUBSCRIBE_RETRY_MIN_S = 1.0
SUBSCRIBE_RETRY_MAX_S = 60.0

ALREADY_SUBSCRIBED = 30003
RATE_LIMITED = 30009
SUBSCRIBE_FAILED = 30012


class Reconnect(Exception):
    """Leave this connection; the message is the reason logged (and sent in StreamDown)."""

    def __init__(self, reason: str, *, immediate: bool = False, fresh_token: bool = False) -> None:
        super().__init__(reason)
        self.immediate = immediate
        self.fresh_token = fresh_token


class MoveRefused(Reconnect):
    """A second connection got 30003 for a channel it never subscribed: the venue already counts it as
    subscribed on the first one, so closing that one would lose the channel. The move is off."""


@dataclass(frozen=True)
class Subscription:
    channel: str  # as subscribed, e.g. "order_book/1"
    priority: Priority

    @property
    def key(self) -> str:
        """The channel as the server names it in its frames: "order_book:1"."""
        return parsing.channel_key(self.channel)


@dataclass
class _Outgoing:
    frames: list[dict[str, Any]]
    priority: Priority
    key: str | None  # the subscription these frames (re)subscribe


class Session:
    def __init__(self, link: Link, serial: int) -> None:
        self.link = link
        self.serial = serial
        self.name = f"{link.name} #{serial}"
        self.ws: ClientConnection | None = None
        self.up = False  # every subscription confirmed (and none lost since)
        self.retired = False  # replaced by a newer connection: its frames no longer count
        self.greeted = False
        self.confirmed: set[str] = set()
        self._subscribed = False  # the initial subscriptions were queued
        self._subscribe_at = math.inf
        self._queue: list[_Outgoing] = []
        self._wait_logged: _Outgoing | None = None
        self._flush_at = math.inf
        self._pending: dict[str, float] = {}  # key -> confirmation deadline
        self._attempts: dict[str, int] = {}  # key -> subscribes sent without a confirmation
        self._retry_at: dict[str, tuple[float, bool]] = {}  # key -> (when to subscribe again, unsub first?)
        self._already_logged: set[str] = set()
        self.heard_at = self.sent_at = self._probed_at = time.monotonic()
        self._closer: asyncio.Task[None] | None = None
        self._end_reason: str | None = None  # set by `end`: leave this connection, reconnect at once

    # --- lifecycle ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and serve until the connection ends (raises Reconnect, ConnectionClosed, OSError...)."""
        silence_s = self.link.silence_s
        try:
            async with connect(self.link.ws_url, open_timeout=silence_s, close_timeout=1.0,
                               ping_interval=None, max_size=MAX_FRAME_BYTES, compression=COMPRESSION) as ws:
                self.ws = ws
                self.heard_at = self.sent_at = self._probed_at = time.monotonic()
                self._subscribe_at = self.heard_at + self._greeting_wait_s()
                while not self.retired:
                    self._tick()
                    await self._flush()
                    frame = await self._receive(self._wake_at())
                    if frame is not None and not self.retired:
                        await self._dispatch(frame)
                    if self.link.is_current(self) and time.monotonic() >= self.link.tick_at():
                        await self.link.tick(self)
        except ConnectionClosed as exc:
            if self._end_reason is not None:  # closed by `end`: say why, and come back at once
                raise Reconnect(self._end_reason, immediate=True) from exc
            raise

    def _greeting_wait_s(self) -> float:
        return min(GREETING_WAIT_S, self.link.silence_s / 4)

    def _confirm_wait_s(self) -> float:
        return min(SUBSCRIBE_CONFIRM_S, self.link.silence_s)

    def end(self, reason: str) -> None:
        """Leave this connection now, though it has not closed (what it delivers is known to be stale): it is
        closed, transactions stop using it at once (no longer writable), and the link reconnects at once."""
        self._end_reason = reason
        if self.ws is not None and self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self.ws.close(), name=f"close {self.name}")

    def retire(self) -> None:
        """A newer connection took over: stop counting this one and close it in the background."""
        self.retired = True
        if self.ws is not None and self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self.ws.close(), name=f"close {self.name}")

    # --- what the link asks -------------------------------------------------------------------------

    def resubscribe(self, key: str, *, unsubscribe_first: bool = False, delay_s: float = 0.0) -> None:
        """Subscribe `key` again (after an unsubscribe for a fresh snapshot), at once or after `delay_s`."""
        self.confirmed.discard(key)
        self._pending.pop(key, None)
        if delay_s > 0:
            self._retry_at[key] = (time.monotonic() + delay_s, unsubscribe_first)
            return
        self._retry_at.pop(key, None)
        self._want(key, unsubscribe_first=unsubscribe_first)

    def is_resubscribing(self, key: str) -> bool:
        return key in self._pending or key in self._retry_at or any(o.key == key for o in self._queue)

    def confirm(self, key: str) -> None:
        self._pending.pop(key, None)
        self._attempts.pop(key, None)
        if any(sub.key == key for sub in self.link.subscriptions()):
            self.confirmed.add(key)
        if not self.up and all(sub.key in self.confirmed for sub in self.link.subscriptions()):
            self.up = True
            self.link.session_up(self)

    def lose(self, key: str, reason: str) -> None:
        """A confirmed subscription stopped delivering (e.g. its token was refused): the session is down."""
        self.confirmed.discard(key)
        if self.up:
            self.up = False
            self.link.session_lost(self, reason)

    def attempts(self, key: str) -> int:
        return self._attempts.get(key, 0)

    @property
    def writable(self) -> bool:
        """Open, and not replaced by a newer connection: a frame sent now is written to the socket."""
        return not self.retired and self.ws is not None and self.ws.protocol.state is State.OPEN

    async def ping_now(self) -> bool:
        """Ping the server now, outside the loop's own keep-alive schedule, paid from the message budget like
        any ping; False when the budget cannot afford it now or the connection is not writable."""
        if not self.writable or self.link.budget.try_take(self.link.keepalive_priority, 1) > 0:
            return False
        await self.send_unmetered(PING_TEXT)  # paid for just above: the venue counts a ping
        self._probed_at = time.monotonic()
        return True

    async def send_unmetered(self, text: str) -> None:
        """Write one frame now, outside the message budget and its queue: only for what the venue does not
        count (transactions, ws_tx.py). Raises ConnectionClosed when the connection is closing."""
        assert self.ws is not None
        await self.ws.send(text)
        self.sent_at = time.monotonic()

    # --- the loop -------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._end_reason is not None:
            raise Reconnect(self._end_reason, immediate=True)
        now = time.monotonic()
        silent_s = now - self.heard_at
        if silent_s >= self.link.silence_s:
            raise Reconnect(f"no frame for {silent_s:.1f} s")
        if not self._subscribed and (self.greeted or now >= self._subscribe_at):
            if not self.greeted:
                logger.info("ws {}: no 'connected' greeting within {:.1f} s; subscribing anyway",
                            self.name, self._greeting_wait_s())
            self._subscribed = True
            for sub in self.link.subscriptions():
                self._want(sub.key)
        for key, (at, unsubscribe_first) in list(self._retry_at.items()):
            if now >= at:
                del self._retry_at[key]
                self._want(key, unsubscribe_first=unsubscribe_first)
        for key, deadline in list(self._pending.items()):
            if now >= deadline:
                self._unconfirmed(key)
        quiet = now - self.heard_at >= self.link.silence_s / 2 and self._probed_at < self.heard_at
        if quiet or now - max(self.sent_at, self._probed_at) >= CLIENT_IDLE_PING_S:
            # A live server answers a ping (pong, or at worst an error frame): a quiet market is not
            # mistaken for a dead link, and the venue sees a frame from us at least every minute.
            self._probed_at = now
            self._keepalive({"type": "ping"})

    def _unconfirmed(self, key: str) -> None:
        attempts = self._attempts.get(key, 0)
        if attempts >= MAX_SUBSCRIBE_ATTEMPTS:
            raise Reconnect(f"{key} not confirmed after {attempts} subscribes")
        logger.warning("ws {}: subscription {} not confirmed within {:.1f} s; subscribing again",
                       self.name, key, self._confirm_wait_s())
        del self._pending[key]
        self._want(key)

    def _wake_at(self) -> float:
        times = [self.heard_at + self.link.silence_s, self._flush_at,
                 max(self.sent_at, self._probed_at) + CLIENT_IDLE_PING_S,
                 *(at for at, _ in self._retry_at.values()), *self._pending.values()]
        if self._probed_at < self.heard_at:
            times.append(self.heard_at + self.link.silence_s / 2)
        if not self._subscribed:
            times.append(self._subscribe_at)
        if self.link.is_current(self):
            times.append(self.link.tick_at())
        return min(times)

    async def _receive(self, wake_at: float) -> dict[str, Any] | None:
        """One decoded frame, or None when `wake_at` (monotonic) came first or the frame was unreadable."""
        assert self.ws is not None
        try:
            async with asyncio.timeout(max(0.0, wake_at - time.monotonic())):
                raw = await self.ws.recv()
        except TimeoutError:
            return None
        self.heard_at = time.monotonic()
        self.link.heard(self.heard_at)
        return parsing.decode_frame(raw)

    # --- sending --------------------------------------------------------------------------------------

    def _want(self, key: str, *, unsubscribe_first: bool = False) -> None:
        sub = next((s for s in self.link.subscriptions() if s.key == key), None)
        if sub is None or any(o.key == key for o in self._queue):
            return
        frames = [{"type": "unsubscribe", "channel": sub.channel}] if unsubscribe_first else []
        self._queue.append(_Outgoing([*frames, self.link.subscribe_frame(sub)], sub.priority, key))

    def _keepalive(self, frame: dict[str, Any]) -> None:
        if not any(o.frames == [frame] for o in self._queue):  # one waiting pong answers every ping
            self._queue.append(_Outgoing([frame], self.link.keepalive_priority, None))

    async def _flush(self) -> None:
        """Send what the budget affords now, most urgent first; the rest waits for `_flush_at`."""
        assert self.ws is not None
        self._flush_at = math.inf
        self._queue.sort(key=lambda o: o.priority)  # stable: first come first served within a priority
        while self._queue:
            item = self._queue[0]
            wait_s = self.link.budget.try_take(item.priority, len(item.frames))
            if wait_s > 0:
                self._flush_at = time.monotonic() + wait_s
                if item.key is not None and item is not self._wait_logged and wait_s >= 1.0:
                    self._wait_logged = item  # once per waiting message, not once per wake-up
                    logger.info("ws {}: subscribing {} waits {:.1f} s for the message budget ({} queued)",
                                self.name, item.key, wait_s, len(self._queue))
                return
            del self._queue[0]
            for frame in item.frames:
                await self.ws.send(json.dumps(frame, separators=(",", ":")))
            self.sent_at = time.monotonic()
            if item.key is not None:
                self._pending[item.key] = self.sent_at + self._confirm_wait_s()
                self._attempts[item.key] = self._attempts.get(item.key, 0) + 1

    # --- frames ---------------------------------------------------------------------------------------

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        error = parsing.ws_error(frame)
        if error is not None:
            # A transaction's refusal can come as an error frame carrying its id (ws_tx.py): its answer.
            if "id" in frame and self.link.on_tx_refusal(self, frame, error):
                return
            await self._on_error(error)
            return
        kind = frame.get("type")
        if kind == "connected":
            self.greeted = True
        elif kind == "ping":
            self._keepalive({"type": "pong"})
        elif kind == "shutdown":
            self.link.on_shutdown(self, parsing.shutdown_delay_s(frame))
        elif kind in TX_ANSWER_TYPES:
            self.link.on_tx_answer(self, frame)
        elif isinstance(kind, str):
            stage, _, family = kind.partition("/")
            if stage not in ("subscribed", "update") or not family:
                return  # pong, unsubscribed, and anything new: not ours to act on
            channel = frame.get("channel")
            if stage == "subscribed" and isinstance(channel, str):
                self.confirm(parsing.channel_key(channel))
            try:
                await self.link.on_data(self, frame, snapshot=stage == "subscribed", family=family)
            except parsing.PARSE_ERRORS as exc:
                logger.warning("ws {}: malformed {} frame skipped ({}: {})", self.name, kind,
                               type(exc).__name__, exc)

    async def _on_error(self, error: parsing.WsError) -> None:
        keys = {sub.key for sub in self.link.subscriptions()}
        key = error.channel if error.channel in keys else None
        if error.code == ALREADY_SUBSCRIBED:
            if (key or "") not in self._already_logged:
                self._already_logged.add(key or "")
                logger.info("ws {}: already subscribed to {} (30003); carrying on", self.name, key or "?")
            if key is not None and key in self._pending:
                if self.link.is_successor(self) and self.attempts(key) <= 1:
                    # Subscriptions keyed by more than the connection [unverified; a precaution].
                    raise MoveRefused(f"{key} is already subscribed on the old connection")
                await self.link.on_already_subscribed(self, key)
            return
        if error.code == RATE_LIMITED:
            pause_s = self.link.budget.rate_limited()
            retry = [key] if key is not None else list(self._pending)
            logger.warning("ws {}: the venue rate-limited our messages (30009: {}); only pongs for {:.0f} s, "
                           "then {} resent within the budget", self.name, error.message, pause_s,
                           ", ".join(retry) or "nothing")
            for each in retry:
                self.resubscribe(each, delay_s=pause_s)
            return
        if await self.link.on_error(self, error, key):
            return
        unnamed = list(self._pending) if error.code == SUBSCRIBE_FAILED else []
        refused = [key] if key is not None else unnamed
        if not refused:
            logger.warning("ws {}: server error {} {!r} (no channel of ours); carrying on", self.name,
                           error.code, error.message)
            return
        for each in refused:
            delay_s = backoff_delay(self.attempts(each), SUBSCRIBE_RETRY_MIN_S, SUBSCRIBE_RETRY_MAX_S)
            logger.warning("ws {}: subscription {} refused (code {} {!r}); subscribing again in {:.1f} s",
                           self.name, each, error.code, error.message, delay_s)
            self.lose(each, f"subscription {each} refused (code {error.code})")
            self.resubscribe(each, delay_s=delay_s)

"""WebSocket `/stream`: subscriptions, snapshots, pushes on every engine event, ping/pong, limits, faults.

The frames are the venue's (ws_frames.py says which are verified from captures); docs/design.md lists
them. Every connection has its own bounded send queue and writer task, so a slow client never stalls the
engine: when its queue overflows, that connection is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import WSMsgType, web

from . import ws_frames as frames
from .errors import INVALID_DATA, SUBSCRIBE_FAILED, TOO_MANY_MESSAGES
from .events import BookChanged, OrderChanged, PositionChanged, SimEvent, TradeHappened, TxSettled
from .ws_book import BookSequencer, ConnectionOffset
from .ws_channels import Channel, ChannelRefused, Snapshots, parse_channel
from .ws_faults import WsFaults
from .ws_limits import SUBSCRIPTIONS_PER_CONNECTION, UNMETERED_TYPES, MessageBudget
from .ws_objects import ws_order, ws_position, ws_trade

log = logging.getLogger("sim.ws")

SEND_QUEUE_FRAMES = 2000
SHUTDOWN_CLOSE_CODE = 1001  # inferred: the venue's close code after a shutdown notice is not captured
TOO_MANY_SUBSCRIPTIONS = "Too Many Subscriptions"  # inferred wording; the venue's refusal is not captured

SendTx = Callable[
    [dict[str, Any], str, bool], Awaitable[dict[str, Any] | None]
]  # (data, client key, batch?) -> reply, None when the fault blackhole_next_sendtx swallows it


class Connection:
    def __init__(self, hub: WsHub, ws: web.WebSocketResponse, peer: str) -> None:
        self.hub = hub
        self.ws = ws
        self.peer = peer
        self.session_id = str(uuid.UUID(int=hub.random.getrandbits(128), version=4))
        self.channels: set[str] = set()
        self.accounts: set[int] = set()  # accounts of the channels it subscribed (a silence may be scoped)
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=SEND_QUEUE_FRAMES)
        self.ping_outstanding_since: float | None = None
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []
        self.budget = MessageBudget()
        self.over_budget = False
        self.offset = ConnectionOffset(random.Random(hub.random.getrandbits(64)))

    def send_text(self, text: str) -> None:
        """Queue one frame; drops it during a silence fault; drops the connection when the queue is full."""
        if self.closing or self.hub.silenced(self.accounts):
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning(
                "ws %s (%s) is too slow (%d frames queued); dropping the connection",
                self.session_id,
                self.peer,
                self.queue.qsize(),
            )
            self.close_soon(1008, "send queue overflow")

    def send_data(self, frame: str | frames.BookFrame) -> None:
        """A channel frame: it advances the connection's offset (book frames carry it)."""
        offset = self.offset.advance()
        self.send_text(frame.text(offset) if isinstance(frame, frames.BookFrame) else frame)

    def close_soon(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.tasks.append(asyncio.get_running_loop().create_task(self._close(code, reason)))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=reason.encode())

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if self.hub.silenced(self.accounts):
                continue  # queued before the silence began: lost, as on a dead link
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def pinger(self) -> None:
        loop = asyncio.get_running_loop()
        interval, timeout = self.hub.ping_interval_s, self.hub.pong_timeout_s
        step = min(interval, timeout, 1.0) / 4
        next_ping = loop.time() + interval
        while not self.closing:
            await asyncio.sleep(step)
            now = loop.time()
            if self.hub.silenced(self.accounts):
                # Nothing is sent, so no pong is owed; the clock restarts when the link "comes back".
                self.ping_outstanding_since = None
                next_ping = now + interval
                continue
            if self.ping_outstanding_since is not None and now - self.ping_outstanding_since >= timeout:
                log.info(
                    "ws %s (%s) sent no pong for %.1f s; closing it with 1008",
                    self.session_id,
                    self.peer,
                    now - self.ping_outstanding_since,
                )
                self.close_soon(1008, "no pong")
                return
            if now >= next_ping:
                self.send_text(frames.PING)
                if self.ping_outstanding_since is None:
                    self.ping_outstanding_since = now
                next_ping = now + interval


class WsHub:
    def __init__(
        self,
        engine: Any,
        *,
        ping_interval_s: float,
        pong_timeout_s: float,
        silenced: Callable[[Collection[int] | None], bool],  # for a connection's accounts; None: for all
        send_tx: SendTx,
        faults: WsFaults | None = None,
        key_registered: Callable[[int, int], bool] | None = None,
        seed: int = 0,
    ) -> None:
        self.engine = engine
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.silenced = silenced
        self.faults = faults if faults is not None else WsFaults()
        self.random = random.Random(seed)
        self.sequencer = BookSequencer(seed)
        self.snapshots = Snapshots(engine, self.sequencer, key_registered or (lambda _a, _k: False))
        self._send_tx = send_tx
        self.connections: set[Connection] = set()
        self._subscribers: dict[str, set[Connection]] = {}

    # --- engine events -> frames ----------------------------------------------------------------------

    def on_event(self, event: SimEvent) -> None:
        """Engine listener: turn one event into frames for the subscribed connections."""
        if isinstance(event, BookChanged):
            self._book_changed(event)  # advances the nonce chain even when nobody listens
            return
        if not self._subscribers or self.silenced(None):
            return
        if isinstance(event, OrderChanged):
            order = ws_order(event.order)
            account, market = event.account_index, event.market_id
            self._publish(
                f"account_all_orders:{account}",
                lambda: frames.account_all_orders("update", account, {str(market): [order]}),
            )
            self._publish(
                f"account_orders:{market}:{account}",
                lambda: frames.account_orders(
                    "update", market, account, self.sequencer.current(market)[0], [order]
                ),
            )
        elif isinstance(event, TradeHappened):
            market, trade = event.market_id, ws_trade(event.trade)  # one object for all three channels
            self._publish(f"trade:{market}", lambda: frames.public_trades(
                "update", market, self.sequencer.current(market)[0], [trade]))
            trades = {str(market): [trade]}
            for account in {event.maker_account, event.taker_account}:
                self._publish(
                    f"account_all_trades:{account}",
                    lambda a=account: frames.account_all_trades_update(a, trades),
                )
                self._publish(
                    f"account_all:{account}", lambda a=account: frames.account_all_update(a, {}, trades)
                )
        elif isinstance(event, PositionChanged):
            account, positions = event.account_index, {str(event.market_id): ws_position(event.position)}
            self._publish(
                f"account_all_positions:{account}",
                lambda: frames.account_all_positions("update", account, positions),
            )
            self._publish(f"account_all:{account}", lambda: frames.account_all_update(account, positions, {}))
        elif isinstance(event, TxSettled):
            tx, owner = event.tx, event.account_index
            self._publish(f"account_tx:{owner}", lambda: frames.account_tx(owner, [tx]))

    def _book_changed(self, event: BookChanged) -> None:
        gap = self.faults.take_book_gap(event.market_id)
        begin, nonce, updated_us = self.sequencer.advance(event.market_id, gap=gap)
        if gap:
            log.info("book_gap fault: the update of market %s begins at nonce %s, past the last nonce",
                     event.market_id, begin)
        subscribers = self._subscribers.get(f"order_book:{event.market_id}")
        if not subscribers or self.silenced(None):
            return
        frame = frames.BookFrame("update", event.market_id, event.asks, event.bids, nonce, begin, updated_us)
        for conn in list(subscribers):
            conn.send_data(frame)

    def _publish(self, channel: str, build: Callable[[], dict[str, Any]]) -> None:
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        text = frames.dumps(build())  # serialized once for every subscriber
        for conn in list(subscribers):
            conn.send_data(text)

    # --- connections ----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0, autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(self, ws, request.remote or "?")
        self.connections.add(conn)
        loop = asyncio.get_running_loop()
        conn.tasks += [loop.create_task(conn.writer()), loop.create_task(conn.pinger())]
        log.info("ws %s connected from %s", conn.session_id, conn.peer)
        conn.send_text(frames.connected(conn.session_id))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        await self._on_frame(conn, msg.data)
                    except Exception as exc:  # one bad frame answers an error; it never ends the connection
                        log.exception("ws %s: frame %.200r failed: %r; error frame sent", conn.session_id,
                                      msg.data, exc)
                        conn.send_text(frames.typed_error(INVALID_DATA, "Invalid Data"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._forget(conn)
            conn.closing = True
            for task in conn.tasks:
                task.cancel()
            log.info("ws %s from %s closed (code %s)", conn.session_id, conn.peer, ws.close_code)
        return ws

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for channel in conn.channels:
            self._drop_subscriber(channel, conn)
        conn.channels.clear()

    def _drop_subscriber(self, channel: str, conn: Connection) -> None:
        subscribers = self._subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self._subscribers[channel]

    async def close_all(self, code: int, reason: str) -> int:
        """Close every connection now (fault injection, reset, shutdown). Returns how many were open."""
        conns = list(self.connections)
        for conn in conns:
            conn.closing = True
        await asyncio.gather(*(conn._close(code, reason) for conn in conns), return_exceptions=True)
        return len(conns)

    def subscriber_counts(self) -> dict[str, int]:
        return {channel: len(conns) for channel, conns in sorted(self._subscribers.items())}

    # --- faults carried out on the connections --------------------------------------------------------

    def run_faults(self) -> dict[str, int]:
        """Carry out the WebSocket faults just installed: a shutdown notice, an injected frame."""
        announced = 0
        close_in_ms = self.faults.take_shutdown()
        if close_in_ms is not None:
            announced = self._announce_shutdown(close_in_ms)
        injected = 0
        injection = self.faults.injection
        if injection is not None:
            for conn in list(self.connections):
                if any(injection.matches(channel) for channel in conn.channels):
                    self._inject(conn)
                    injected += 1
            if injected:
                self.faults.injection = None
        return {"shutdown_announced": announced, "injected_ws_frames": injected}

    def _announce_shutdown(self, close_in_ms: int) -> int:
        conns = [conn for conn in self.connections if not conn.closing]
        loop = asyncio.get_running_loop()
        for conn in conns:
            conn.send_text(frames.shutdown(close_in_ms))
            loop.call_later(close_in_ms / 1000, conn.close_soon, SHUTDOWN_CLOSE_CODE, "shutdown")
        log.info("shutdown fault: %d connections told they close in %d ms", len(conns), close_in_ms)
        return len(conns)

    def _inject(self, conn: Connection) -> None:
        injection = self.faults.injection
        if injection is None:
            return
        for _ in range(injection.count):
            conn.send_text(injection.text)
        log.info("inject_ws_frame fault: %d raw frame(s) sent to ws %s", injection.count, conn.session_id)

    # --- client frames --------------------------------------------------------------------------------

    async def _on_frame(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind not in UNMETERED_TYPES and not self._within_budget(conn, kind):
            return
        if not isinstance(frame, dict):
            conn.send_text(frames.typed_error(INVALID_DATA, "Invalid Data"))
        elif kind == "pong":
            conn.ping_outstanding_since = None
        elif kind == "ping":
            conn.send_text(frames.PONG)
        elif kind == "subscribe":
            self._subscribe(conn, frame)
        elif kind == "unsubscribe":
            self._unsubscribe(conn, frame)
        elif kind in UNMETERED_TYPES:
            await self._send_transaction(conn, kind, frame.get("data"))
        else:
            conn.send_text(frames.typed_error(INVALID_DATA, "Invalid Data"))

    def _within_budget(self, conn: Connection, kind: Any) -> bool:
        """The venue's 200 client messages a minute: over it, each frame is refused with 30009 (captured)."""
        if conn.budget.allow():
            conn.over_budget = False
            return True
        if kind == "pong":
            conn.ping_outstanding_since = None  # a refused pong still proves the client is there
        if not conn.over_budget:
            conn.over_budget = True
            log.info("ws %s (%s) is over 200 client messages a minute; refusing frames with 30009",
                     conn.session_id, conn.peer)
        conn.send_text(frames.nested_error(TOO_MANY_MESSAGES, frames.TOO_MANY_MESSAGES_MESSAGE))
        return False

    async def _send_transaction(self, conn: Connection, kind: str, data: Any) -> None:
        """The venue's answer: the result flat beside `type`, and the request's `id` if any.

        Verified for an accepted transaction (tests/wire/ws/sendtx/ccxt_ack-2026-08.jsonl). A refusal is
        answered in the same flat form [inferred: no refusal was captured; NautilusTrader's test frames use
        it]; ccxt expects instead `{"error":{"code":..,"message":..},"id":..}`, which the bot reads too.
        """
        if not isinstance(data, dict):
            conn.send_text(frames.typed_error(INVALID_DATA, "Invalid Data"))
            return
        reply = await self._send_tx(data, f"ip:{conn.peer}", kind == "jsonapi/sendtxbatch")
        if reply is None:
            return  # accepted and executing, but never answered (fault blackhole_next_sendtx)
        accepted = reply.get("code") == 200
        keep = ("code", "tx_hash", "predicted_execution_time_ms") if accepted else ("code", "message")
        answer: dict[str, Any] = {key: reply[key] for key in keep if key in reply}
        if "id" in data:
            answer["id"] = data["id"]
        answer["type"] = kind
        conn.send_text(frames.dumps(dict(sorted(answer.items()))))

    def _subscribe(self, conn: Connection, frame: dict[str, Any]) -> None:
        try:
            channel = parse_channel(frame.get("channel"))
            if channel.name in conn.channels:
                raise ChannelRefused(frames.already_subscribed(channel.name))  # and no snapshot (captured)
            if len(conn.channels) >= SUBSCRIPTIONS_PER_CONNECTION:
                raise ChannelRefused(frames.nested_error(SUBSCRIBE_FAILED, TOO_MANY_SUBSCRIPTIONS))
            snapshot = self.snapshots.build(channel, frame.get("auth"))
        except ChannelRefused as refused:
            conn.send_text(refused.frame)
            return
        # Snapshot and registration happen with no await in between, so no update can fall in a gap.
        conn.channels.add(channel.name)
        if channel.account is not None:
            conn.accounts.add(channel.account)
        self._subscribers.setdefault(channel.name, set()).add(conn)
        conn.send_data(snapshot if isinstance(snapshot, frames.BookFrame) else frames.dumps(snapshot))
        self._deliver_pending_injection(conn, channel)

    def _deliver_pending_injection(self, conn: Connection, channel: Channel) -> None:
        injection = self.faults.injection
        if injection is not None and injection.matches(channel.name):
            self._inject(conn)
            self.faults.injection = None

    def _unsubscribe(self, conn: Connection, frame: dict[str, Any]) -> None:
        try:
            channel = parse_channel(frame.get("channel"))
        except ChannelRefused as refused:
            conn.send_text(refused.frame)
            return
        conn.channels.discard(channel.name)
        self._drop_subscriber(channel.name, conn)
        conn.send_text(frames.unsubscribed(channel.name))

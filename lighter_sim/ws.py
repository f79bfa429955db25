"""WebSocket `/stream`: subscriptions, snapshots, pushes on every engine event, ping/pong, faults.

Frames are exactly those of docs/design.md. Every connection has its own bounded send queue and writer
task, so a slow client never stalls the engine: when its queue overflows, that connection is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from .auth import AuthError, check_token
from .events import BookChanged, OrderChanged, PositionChanged, SimEvent, TradeHappened

log = logging.getLogger("sim.ws")

SEND_QUEUE_FRAMES = 2000
BAD_FRAME_CODE = 21106
ACCOUNT_NOT_FOUND = 21100
MARKET_NOT_FOUND = 21120
PRIVATE_KINDS = ("account_all_orders", "account_all_trades", "account_all_positions")
ACCOUNT_KINDS = ("account_all", *PRIVATE_KINDS)

SendTx = Callable[
    [dict[str, Any], str, bool], Awaitable[dict[str, Any]]
]  # (data, client key, batch?) -> reply


class Connection:
    def __init__(self, hub: WsHub, ws: web.WebSocketResponse, peer: str) -> None:
        self.hub = hub
        self.ws = ws
        self.peer = peer
        self.session_id = uuid.uuid4().hex[:16]
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=SEND_QUEUE_FRAMES)
        self.ping_outstanding_since: float | None = None
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []

    def send_text(self, text: str) -> None:
        """Queue one frame; drops it during a silence fault; drops the connection when the queue is full."""
        if self.closing or self.hub.silenced():
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

    def send(self, frame: dict[str, Any]) -> None:
        self.send_text(json.dumps(frame, separators=(",", ":")))

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
            if self.hub.silenced():
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
            if self.hub.silenced():
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
                self.send({"type": "ping"})
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
        silenced: Callable[[], bool],
        send_tx: SendTx,
    ) -> None:
        self.engine = engine
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.silenced = silenced
        self._send_tx = send_tx
        self.connections: set[Connection] = set()
        self._subscribers: dict[str, set[Connection]] = {}

    # --- engine events -> frames ----------------------------------------------------------------------

    def on_event(self, event: SimEvent) -> None:
        """Engine listener: turn one event into frames for the subscribed connections."""
        if not self._subscribers or self.silenced():
            return
        if isinstance(event, BookChanged):
            channel = f"order_book:{event.market_id}"
            self._publish(
                channel,
                lambda: {
                    "type": "update/order_book",
                    "channel": channel,
                    "offset": event.offset,
                    "order_book": {"asks": event.asks, "bids": event.bids, "offset": event.offset},
                },
            )
        elif isinstance(event, OrderChanged):
            channel = f"account_all_orders:{event.account_index}"
            self._publish(
                channel,
                lambda: {
                    "type": "update/account_all_orders",
                    "channel": channel,
                    "orders": {str(event.market_id): [event.order]},
                },
            )
        elif isinstance(event, TradeHappened):
            for account in {event.maker_account, event.taker_account}:
                self._publish_trade(account, event.market_id, event.trade)
        elif isinstance(event, PositionChanged):
            self._publish_position(event.account_index, event.market_id, event.position)

    def _publish_trade(self, account: int, market_id: int, trade: dict[str, Any]) -> None:
        trades = {str(market_id): [trade]}
        channel = f"account_all_trades:{account}"
        self._publish(
            channel, lambda: {"type": "update/account_all_trades", "channel": channel, "trades": trades}
        )
        self._publish_account_all(account, positions={}, trades=trades)

    def _publish_position(self, account: int, market_id: int, position: dict[str, Any]) -> None:
        positions = {str(market_id): position}
        channel = f"account_all_positions:{account}"
        self._publish(
            channel,
            lambda: {"type": "update/account_all_positions", "channel": channel, "positions": positions},
        )
        self._publish_account_all(account, positions=positions, trades={})

    def _publish_account_all(
        self, account: int, positions: dict[str, Any], trades: dict[str, list[dict[str, Any]]]
    ) -> None:
        """The same change on the combined `account_all` channel (what the SDK's own WsClient reads)."""
        channel = f"account_all:{account}"
        self._publish(
            channel,
            lambda: {
                "type": "update/account_all",
                "channel": channel,
                "account": account,
                "positions": positions,
                "trades": trades,
                "funding_histories": {},
            },
        )

    def _publish(self, channel: str, build: Callable[[], dict[str, Any]]) -> None:
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        text = json.dumps(build(), separators=(",", ":"))  # serialized once for every subscriber
        for conn in list(subscribers):
            conn.send_text(text)

    # --- connections ----------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0, autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(self, ws, request.remote or "?")
        self.connections.add(conn)
        loop = asyncio.get_running_loop()
        conn.tasks += [loop.create_task(conn.writer()), loop.create_task(conn.pinger())]
        log.info("ws %s connected from %s", conn.session_id, conn.peer)
        conn.send({"type": "connected", "session_id": conn.session_id})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        await self._on_frame(conn, msg.data)
                    except Exception as exc:  # one bad frame answers an error; it never ends the connection
                        log.exception("ws %s: frame %.200r failed: %r; error frame sent", conn.session_id,
                                      msg.data, exc)
                        conn.send({"type": "error", "code": BAD_FRAME_CODE,
                                   "message": f"frame failed: {exc}"})
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
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self._subscribers[channel]
        conn.channels.clear()

    async def close_all(self, code: int, reason: str) -> int:
        """Close every connection now (fault injection, reset, shutdown). Returns how many were open."""
        conns = list(self.connections)
        for conn in conns:
            conn.closing = True
        await asyncio.gather(*(conn._close(code, reason) for conn in conns), return_exceptions=True)
        return len(conns)

    def subscriber_counts(self) -> dict[str, int]:
        return {channel: len(conns) for channel, conns in sorted(self._subscribers.items())}

    # --- client frames --------------------------------------------------------------------------------

    async def _on_frame(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            conn.send({"type": "error", "code": BAD_FRAME_CODE, "message": "frame is not JSON"})
            return
        if not isinstance(frame, dict):
            conn.send({"type": "error", "code": BAD_FRAME_CODE, "message": "frame must be a JSON object"})
            return
        kind = frame.get("type")
        if kind == "pong":
            conn.ping_outstanding_since = None
        elif kind == "ping":
            conn.send({"type": "pong"})
        elif kind == "subscribe":
            self._subscribe(conn, frame)
        elif kind == "unsubscribe":
            self._unsubscribe(conn, frame)
        elif kind in ("jsonapi/sendtx", "jsonapi/sendtxbatch"):
            data = frame.get("data")
            if not isinstance(data, dict):
                conn.send(
                    {"type": kind, "data": {"code": BAD_FRAME_CODE, "message": "data must be an object"}}
                )
                return
            reply = await self._send_tx(data, f"ip:{conn.peer}", kind == "jsonapi/sendtxbatch")
            conn.send({"type": kind, "data": reply})
        else:
            conn.send({"type": "error", "code": BAD_FRAME_CODE, "message": f"unknown frame type {kind!r}"})

    def _parse_channel(self, conn: Connection, frame: dict[str, Any]) -> tuple[str, int] | None:
        raw = frame.get("channel")
        kind, sep, ident = (raw if isinstance(raw, str) else "").replace(":", "/").partition("/")
        if not isinstance(raw, str) or not sep or not ident.isdigit():
            conn.send(
                {
                    "type": "error",
                    "channel": raw,
                    "code": BAD_FRAME_CODE,
                    "message": "channel must look like order_book/0 or account_all/101",
                }
            )
            return None
        if kind != "order_book" and kind not in ACCOUNT_KINDS:
            conn.send(
                {
                    "type": "error",
                    "channel": raw,
                    "code": BAD_FRAME_CODE,
                    "message": f"unknown channel {raw!r}",
                }
            )
            return None
        return kind, int(ident)

    def _subscribe(self, conn: Connection, frame: dict[str, Any]) -> None:
        parsed = self._parse_channel(conn, frame)
        if parsed is None:
            return
        kind, ident = parsed
        raw = frame["channel"]
        try:
            snapshot = self._snapshot(kind, ident, frame.get("auth"))
        except _ChannelError as exc:
            conn.send({"type": "error", "channel": raw, "code": exc.code, "message": str(exc)})
            return
        channel = f"{kind}:{ident}"
        # Snapshot and registration happen with no await in between, so no delta can fall in a gap.
        conn.channels.add(channel)
        self._subscribers.setdefault(channel, set()).add(conn)
        conn.send(snapshot)

    def _unsubscribe(self, conn: Connection, frame: dict[str, Any]) -> None:
        parsed = self._parse_channel(conn, frame)
        if parsed is None:
            return
        channel = f"{parsed[0]}:{parsed[1]}"
        conn.channels.discard(channel)
        subscribers = self._subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self._subscribers[channel]
        conn.send({"type": "unsubscribed", "channel": channel})

    def _snapshot(self, kind: str, ident: int, token: Any) -> dict[str, Any]:
        engine = self.engine
        channel = f"{kind}:{ident}"
        if kind == "order_book":
            try:
                book = engine.book_snapshot(ident)
            except Exception as exc:  # SimError for an unknown market
                raise _ChannelError(MARKET_NOT_FOUND, f"market {ident} not found") from exc
            return {
                "type": "subscribed/order_book",
                "channel": channel,
                "offset": book["offset"],
                "order_book": book,
            }
        if not engine.has_account(ident):
            raise _ChannelError(ACCOUNT_NOT_FOUND, f"account {ident} not found")
        if kind in PRIVATE_KINDS:
            try:
                check_token(token if isinstance(token, str) else None, ident, self._key_registered)
            except AuthError as exc:
                raise _ChannelError(exc.code, str(exc)) from None
        if kind == "account_all":
            return {
                "type": "subscribed/account_all",
                "channel": channel,
                "account": ident,
                "positions": engine.positions_json(ident),
                "trades": engine.account_trades_json(ident),
                "funding_histories": {},
            }
        if kind == "account_all_orders":
            return {
                "type": "subscribed/account_all_orders",
                "channel": channel,
                "orders": engine.open_orders_json(ident),
            }
        if kind == "account_all_trades":
            return {
                "type": "subscribed/account_all_trades",
                "channel": channel,
                "trades": engine.account_trades_json(ident, 50),
            }
        return {
            "type": "subscribed/account_all_positions",
            "channel": channel,
            "positions": engine.positions_json(ident),
        }

    def _key_registered(self, account_index: int, api_key_index: int) -> bool:
        try:
            return bool(self.engine.api_keys_json(account_index, api_key_index))
        except Exception:
            return False


class _ChannelError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code

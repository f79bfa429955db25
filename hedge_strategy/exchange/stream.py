"""The account's WebSocket: our own connection loop over `websockets`, not the SDK's WsClient.

The SDK client never reconnects and keeps books unsorted (lighter-sdk.md 5, 7.12). This loop connects,
subscribes the requested order books and the private account channels (with an auth token), answers pings,
treats silence longer than the heartbeat as a dead link, reconnects with exponential backoff and full jitter,
resubscribes (every snapshot is replayed as events, which is how fills missed during a gap come back),
detects book offset gaps, and renews the auth token before it expires by subscribing again with the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import DeltaResult, LocalBook, parse_levels
from hedge_strategy.exchange.events import Event, StreamDown, StreamUp, TopOfBook
from hedge_strategy.exchange.throttle import backoff_delay

PRIVATE_CHANNELS = ("account_all_orders", "account_all_trades", "account_all_positions")
AUTH_ERROR_CODE = 21140
MAX_FRAME_BYTES = 8 * 1024 * 1024

# (force a new token?) -> (token, unix expiry seconds)
TokenSource = Callable[[bool], Awaitable[tuple[str, float]]]


class _Reconnect(Exception):
    """Leave this session; the message is the reason logged and sent in StreamDown."""

    def __init__(self, reason: str, *, immediate: bool = False, fresh_token: bool = False) -> None:
        super().__init__(reason)
        self.immediate = immediate
        self.fresh_token = fresh_token


class AccountStream:
    def __init__(
        self,
        *,
        ws_url: str,
        account_index: int,
        book_market_ids: Sequence[int],
        token_source: TokenSource,
        emit: Callable[[Event], None],
        heartbeat_timeout_s: float,
        backoff_min_s: float,
        backoff_max_s: float,
        token_refresh_margin_s: float,
    ) -> None:
        self.ws_url = ws_url
        self.account_index = account_index
        self.books: dict[int, LocalBook] = {m: LocalBook(m) for m in book_market_ids}
        self._token_source = token_source
        self._emit = emit
        self._heartbeat_s = heartbeat_timeout_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._refresh_margin_s = token_refresh_margin_s
        self._heard_at = time.monotonic()
        self._session_started = time.monotonic()  # silence is measured from here when the session is newer
        self._probed_at = -math.inf  # when we last pinged the server to prove the link during a quiet spell
        self._up = False
        self._ever_up = False
        self._up_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tops: dict[int, tuple[Any, Any]] = {}
        self._resnapshotting: set[int] = set()
        self.connects = 0  # sessions that reached "up", for tests and metrics
        self.token_renewals = 0  # in-place auth token renewals

    # --- public -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ws-{self.account_index}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._up = False

    async def wait_up(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up_event.wait(), timeout_s)
        return self._up

    @property
    def up(self) -> bool:
        return self._up

    def seconds_since_heard(self) -> float:
        return time.monotonic() - self._heard_at

    def fresh_book(self, market_id: int) -> LocalBook | None:
        """The local book when it can be trusted (stream up, heard recently, snapshot valid), else None."""
        book = self.books.get(market_id)
        if book is None or not book.valid or not self._up or self.seconds_since_heard() > self._heartbeat_s:
            return None
        return book

    # --- connection loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        fresh_token = False
        while True:
            try:
                await self._session(fresh_token)
                reason, immediate, fresh_token = "server closed the connection", False, False
            except _Reconnect as exc:
                reason, immediate, fresh_token = str(exc), exc.immediate, exc.fresh_token
            except ConnectionClosed as exc:
                reason, immediate, fresh_token = f"connection closed ({_close_text(exc)})", False, False
            except (OSError, WebSocketException, TimeoutError) as exc:
                reason, immediate, fresh_token = f"connect failed: {type(exc).__name__}: {exc}", False, False
            except Exception as exc:  # a bug must not kill the stream for good: log it and reconnect
                logger.exception("ws account {}: unexpected error in the stream loop", self.account_index)
                reason, immediate, fresh_token = f"internal error: {type(exc).__name__}: {exc}", False, False
            if self._up:
                attempt = 0  # the session was healthy: start the backoff over
            delay = 0.0 if immediate else backoff_delay(attempt, self._backoff_min_s, self._backoff_max_s)
            attempt = 0 if immediate else attempt + 1
            self._go_down(reason)
            logger.warning("ws down (account {}): {}; reconnecting in {:.2f} s",
                           self.account_index, reason, delay)
            await asyncio.sleep(delay)

    def _go_down(self, reason: str) -> None:
        for book in self.books.values():
            book.invalidate()
        self._resnapshotting.clear()
        if self._up:
            self._up = False
            self._up_event.clear()
            self._emit(StreamDown(self.account_index, reason))

    async def _session(self, fresh_token: bool) -> None:
        try:
            token, expiry_s = await self._token_source(fresh_token)
        except Exception as exc:
            raise _Reconnect(f"auth token unavailable: {exc}") from exc
        self._session_started = time.monotonic()
        async with connect(self.ws_url, open_timeout=self._heartbeat_s, close_timeout=1.0, ping_interval=None,
                           max_size=MAX_FRAME_BYTES) as ws:
            self._session_started = time.monotonic()
            await self._await_connected(ws)
            pending = await self._subscribe_all(ws, token)
            up_deadline = time.monotonic() + self._heartbeat_s
            refresh_at = _monotonic_deadline(expiry_s - self._refresh_margin_s)
            while True:
                now = time.monotonic()
                if pending and now >= up_deadline:
                    raise _Reconnect(f"subscriptions not confirmed within {self._heartbeat_s:.1f} s: "
                                     f"{sorted(pending)}")
                if now >= refresh_at:
                    token, expiry_s = await self._renew_token(ws)
                    refresh_at = _monotonic_deadline(expiry_s - self._refresh_margin_s)
                frame = await self._receive(ws, min(refresh_at, up_deadline if pending else refresh_at))
                if frame is None:
                    continue
                await self._handle(frame, ws, pending)
                if pending:
                    continue
                if not self._up:
                    self._mark_up()

    async def _await_connected(self, ws: ClientConnection) -> None:
        deadline = time.monotonic() + self._heartbeat_s
        while True:
            frame = await self._receive(ws, deadline)
            if frame is None:
                if time.monotonic() >= deadline:
                    raise _Reconnect(f"no 'connected' frame within {self._heartbeat_s:.1f} s")
                continue
            if frame["type"] == "connected":
                return
            if frame["type"] == "ping":
                await self._send(ws, {"type": "pong"})

    async def _receive(self, ws: ClientConnection, wake_at: float) -> dict[str, Any] | None:
        """One frame, or None when `wake_at` (monotonic) came first. Silence past the heartbeat is fatal.

        Half-way through a quiet spell we send our own ping: a live server answers (a pong, or at worst an
        error frame), so a quiet market is not mistaken for a dead link, and a dead link still times out.
        """
        quiet_since = max(self._heard_at, self._session_started)
        silence_deadline = quiet_since + self._heartbeat_s
        probe_at = quiet_since + self._heartbeat_s / 2
        if self._probed_at >= quiet_since:
            probe_at = math.inf
        wait_s = min(silence_deadline, wake_at, probe_at) - time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, wait_s)):
                raw = await ws.recv()
        except TimeoutError:
            now = time.monotonic()
            if now >= probe_at and now < silence_deadline:
                self._probed_at = now
                await self._send(ws, {"type": "ping"})
                return None
            if now >= silence_deadline:
                silent_s = time.monotonic() - max(self._heard_at, self._session_started)
                raise _Reconnect(f"no frame for {silent_s:.1f} s") from None
            return None
        self._heard_at = time.monotonic()
        return parsing.decode_frame(raw)

    async def _subscribe_all(self, ws: ClientConnection, token: str) -> set[str]:
        pending: set[str] = set()
        for market_id in self.books:
            await self._send(ws, {"type": "subscribe", "channel": f"order_book/{market_id}"})
            pending.add(f"order_book:{market_id}")
        for name in PRIVATE_CHANNELS:
            await self._subscribe_private(ws, name, token)
            pending.add(f"{name}:{self.account_index}")
        return pending

    async def _subscribe_private(self, ws: ClientConnection, name: str, token: str) -> None:
        await self._send(ws, {"type": "subscribe", "channel": f"{name}/{self.account_index}", "auth": token})

    async def _renew_token(self, ws: ClientConnection) -> tuple[str, float]:
        """Subscribe the private channels again with a fresh token (the snapshots replay as events)."""
        try:
            token, expiry_s = await self._token_source(True)
        except Exception as exc:
            raise _Reconnect(f"auth token refresh failed: {exc}") from exc
        for name in PRIVATE_CHANNELS:
            await self._subscribe_private(ws, name, token)
        self.token_renewals += 1
        logger.info("ws account {}: auth token renewed; private channels resubscribed (valid {:.0f} s)",
                    self.account_index, expiry_s - time.time())
        return token, expiry_s

    def _mark_up(self) -> None:
        reconnect = self._ever_up
        self._up = self._ever_up = True
        self.connects += 1
        self._up_event.set()
        logger.info("ws up (account {}): {} subscribed{}", self.account_index,
                    ", ".join([f"order_book/{m}" for m in self.books] + list(PRIVATE_CHANNELS)),
                    " after a reconnect" if reconnect else "")
        self._emit(StreamUp(self.account_index, reconnect=reconnect))

    @staticmethod
    async def _send(ws: ClientConnection, frame: Mapping[str, Any]) -> None:
        await ws.send(json.dumps(frame, separators=(",", ":")))

    # --- frames -----------------------------------------------------------------------------------

    async def _handle(self, frame: dict[str, Any], ws: ClientConnection, pending: set[str]) -> None:
        kind: str = frame["type"]
        if kind == "ping":
            await self._send(ws, {"type": "pong"})
            return
        if kind == "error":
            self._on_error(frame)
            return
        stage, _, family = kind.partition("/")
        if stage not in ("subscribed", "update") or not family:
            return  # connected, pong, unsubscribed, and anything new: not ours to act on
        channel = frame.get("channel")
        if isinstance(channel, str):
            pending.discard(parsing.channel_key(channel))
        if family == "order_book":
            await self._on_book(frame, ws, snapshot=stage == "subscribed")
        elif family == "account_all_orders":
            self._on_orders(frame)
        elif family == "account_all_trades":
            self._on_trades(frame)
        elif family == "account_all_positions":
            self._on_positions(frame)

    def _on_error(self, frame: dict[str, Any]) -> None:
        code, channel = frame.get("code"), frame.get("channel")
        logger.warning("ws account {}: server error on {}: code {} {}", self.account_index, channel, code,
                       str(frame.get("message", ""))[:200])
        if code == AUTH_ERROR_CODE:
            raise _Reconnect("auth token refused; reconnecting with a new one", fresh_token=True)
        if isinstance(channel, str):
            # A subscription we rely on failed: a clean new session is the safe answer.
            raise _Reconnect(f"subscription {channel} failed (code {code})")

    async def _on_book(self, frame: dict[str, Any], ws: ClientConnection, snapshot: bool) -> None:
        market_id = _channel_id(frame.get("channel"))
        book = self.books.get(market_id) if market_id is not None else None
        if book is None:
            return
        try:
            body = frame["order_book"]
            offset = parsing.to_int(frame.get("offset", body.get("offset")))
            bids, asks = parse_levels(body.get("bids")), parse_levels(body.get("asks"))
        except parsing.PARSE_ERRORS as exc:
            logger.warning("ws frame: malformed order_book frame for market {} ({}); resnapshotting",
                           market_id, exc)
            await self._resnapshot(book, ws)
            return
        now_ms = int(time.time() * 1000)
        if snapshot:
            book.apply_snapshot(offset, bids, asks, now_ms)
            self._resnapshotting.discard(book.market_id)
        else:
            result = book.apply_delta(offset, bids, asks, now_ms)
            if result is DeltaResult.GAP:
                if book.market_id not in self._resnapshotting:
                    logger.warning("ws book gap on market {}: offset {} does not follow; resubscribing for a "
                                   "fresh snapshot", book.market_id, offset)
                    await self._resnapshot(book, ws)
                return
            if result is DeltaResult.STALE:
                return
        self._emit_top(book, now_ms, force=snapshot)

    async def _resnapshot(self, book: LocalBook, ws: ClientConnection) -> None:
        book.invalidate()
        self._resnapshotting.add(book.market_id)
        channel = f"order_book/{book.market_id}"
        await self._send(ws, {"type": "unsubscribe", "channel": channel})
        await self._send(ws, {"type": "subscribe", "channel": channel})

    def _emit_top(self, book: LocalBook, now_ms: int, force: bool) -> None:
        top = (book.best_bid(), book.best_ask())
        if force or self._tops.get(book.market_id) != top:
            self._tops[book.market_id] = top
            self._emit(TopOfBook(book.market_id, top[0], top[1], now_ms))

    def _on_orders(self, frame: dict[str, Any]) -> None:
        for _, orders in parsing.by_market(frame.get("orders"), "orders"):
            for update in parsing.parse_items(
                    orders, lambda raw: parsing.order_update(raw, self.account_index), "order"):
                if update.account_index == self.account_index:
                    self._emit(update)

    def _on_trades(self, frame: dict[str, Any]) -> None:
        for _, trades in parsing.by_market(frame.get("trades"), "trades"):
            for fills in parsing.parse_items(
                    trades, lambda raw: parsing.fills_for_account(raw, self.account_index), "trade"):
                for fill in fills:
                    self._emit(fill)

    def _on_positions(self, frame: dict[str, Any]) -> None:
        for market_id, value in parsing.by_market(frame.get("positions"), "positions"):
            items = value if isinstance(value, list) else [value]
            for snapshot in parsing.parse_items(
                    items, lambda raw, m=market_id: parsing.position_snapshot(raw, self.account_index, m),
                    "position"):
                self._emit(snapshot)


def _channel_id(channel: Any) -> int | None:
    if not isinstance(channel, str):
        return None
    _, sep, ident = parsing.channel_key(channel).partition(":")
    return int(ident) if sep and ident.isdigit() else None


def _monotonic_deadline(unix_s: float) -> float:
    return time.monotonic() + (unix_s - time.time())


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"code {frame.code} {frame.reason!r}" if frame is not None else "no close frame"

"""`hedgectl preflight`'s WebSocket watch of one account: the connections one bot process keeps, laid out as
`AccountStream` lays them out (a book link with `order_book/{market}`, and B's with `trade/{market}` too when
it hedges from the trade feed; an account link with the three private
channels and the adapter's auth token), held open for a while, every frame counted and checked, none acted
upon.

Besides counting, it proves what the bot relies on: the server's pings are answered and our own ping gets a
pong on each link; order book updates continue one another (`preflight_frames.BookContinuity`, the adapter's
own rule); half-way through, a fresh auth token is made and `account_all_orders` subscribed with it on a
new connection, the way the adapter renews a token (a new connection takes over from the old one), and its
snapshot must come. It only ever sends subscribe, ping and pong frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.preflight_frames import (
    BOOK,
    CONTROL,
    KEPT_EXAMPLES,
    BookContinuity,
    account_channels,
    book_channels,
    frame_problems,
    frame_time_ms,
    record_name,
)
from hedge_strategy.exchange.preflight_reads import Observed, Observer
from hedge_strategy.exchange.stream import AUTH_ERROR_CODES, PRIVATE_CHANNELS
from hedge_strategy.exchange.ws_session import COMPRESSION, MAX_FRAME_BYTES
from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted

WS_MESSAGES_PER_MINUTE = 200  # the venue's budget of client messages per IP (sendTx excluded)
REFRESHED_CHANNEL = PRIVATE_CHANNELS[0]  # account_all_orders: subscribed again with a fresh token
BOOK_LINK, ACCOUNT_LINK, REFRESH_LINK = "books", "account", "renewal"

TokenSource = Callable[[bool], Awaitable[tuple[str, float]]]
Channels = list[tuple[str, bool]]  # (subscribe name, needs auth)


@dataclass
class TokenRefresh:
    attempted: bool = False
    ok: bool = False
    detail: str = ""  # what happened: the new snapshot's delay, or why it failed


@dataclass
class WatchReport:
    """What one account's watch saw, over all its connections. `wanted`: the channel keys it subscribed."""

    account_index: int
    book: BookContinuity
    wanted: list[str] = field(default_factory=list)
    connect_errors: dict[str, str] = field(default_factory=dict)  # link -> why it could not be opened
    connect_ms: dict[str, float] = field(default_factory=dict)  # link -> until its `connected` frame
    lost: dict[str, str] = field(default_factory=dict)  # link -> why it ended before the watch did
    frames: dict[str, int] = field(default_factory=dict)  # by corpus name (`order_book`, `control`, ...)
    confirmed: set[str] = field(default_factory=set)  # channel keys whose snapshot arrived
    channel_errors: dict[str, str] = field(default_factory=dict)  # channel key -> the venue's error
    other_errors: list[str] = field(default_factory=list)  # error frames naming no channel
    notices: list[str] = field(default_factory=list)  # shutdown announcements
    parse_failures: int = 0
    parse_examples: list[str] = field(default_factory=list)
    server_pings: int = 0
    pong_ms: dict[str, float] = field(default_factory=dict)  # link -> our ping's round trip
    refresh: TokenRefresh = field(default_factory=TokenRefresh)
    sent_at: list[float] = field(default_factory=list)  # monotonic time of every message we sent
    skews_ms: list[float] = field(default_factory=list)  # local receive time - frame timestamp, per frame

    @property
    def connect_error(self) -> str | None:
        return "; ".join(f"{link}: {why}" for link, why in self.connect_errors.items()) or None

    def fail_parse(self, why: str) -> None:
        self.parse_failures += 1
        if len(self.parse_examples) < KEPT_EXAMPLES:
            self.parse_examples.append(why)


async def watch_account(*, ws_url: str, account_index: int, market_id: int, token_source: TokenSource,
                        seconds: float, timeout_s: float, observe: Observer,
                        subscribed: Callable[[], None] | None = None, trades: bool = False) -> WatchReport:
    """Watch the bot's channels of one account for `seconds` (plus at most `timeout_s` for answers still
    owed: snapshots, pongs, the renewed subscription). `subscribed` is called once every channel's snapshot
    has arrived; `trades`: the book link also carries the public trade feed (B's). Never raises for what the
    venue does."""
    books, account = book_channels(market_id, trades), account_channels(account_index)
    report = WatchReport(account_index, BookContinuity(market_id),
                         wanted=[parsing.channel_key(name) for name, _ in books + account])
    try:
        token, _expiry = await token_source(False)
    except Exception as exc:
        report.connect_errors[ACCOUNT_LINK] = f"auth token not made: {exc}"
        return report

    def confirmed() -> None:
        nonlocal subscribed
        if subscribed is not None and set(report.wanted) <= report.confirmed:
            subscribed()
            subscribed = None

    link = _LinkWatch(ws_url, report, timeout_s, observe, confirmed)
    renewal = _Renewal(link, token_source)
    await asyncio.gather(link.run(BOOK_LINK, books, token, seconds, None),
                         link.run(ACCOUNT_LINK, account, token, seconds, renewal))
    return report


class _NoConnected(Exception):
    """The socket opened but the venue never said `connected`."""


def _connect(ws_url: str, timeout_s: float) -> connect:
    return connect(ws_url, open_timeout=timeout_s, close_timeout=1.0, ping_interval=None,
                   max_size=MAX_FRAME_BYTES, compression=COMPRESSION)  # as the bot's own sessions


@dataclass
class _LinkWatch:
    """What every connection of one account's watch shares."""

    ws_url: str
    report: WatchReport
    timeout_s: float
    observe: Observer
    confirmed: Callable[[], None]

    async def run(self, link: str, channels: Channels, token: str, seconds: float,
                  renewal: _Renewal | None) -> None:
        report, opened = self.report, time.monotonic()
        try:
            async with _connect(self.ws_url, self.timeout_s) as ws:
                watch = _Connection(ws, self, link)
                report.connect_ms[link] = await watch.await_connected(opened)
                await watch.watch(channels, token, seconds, renewal)
        except (_NoConnected, ConnectionClosed, OSError, WebSocketException, TimeoutError) as exc:
            why = str(exc) if isinstance(exc, _NoConnected) else f"{type(exc).__name__}: {exc}".strip(": ")
            (report.lost if link in report.connect_ms else report.connect_errors)[link] = why


class _Connection:
    """One connection's frames, into the account's report."""

    def __init__(self, ws: ClientConnection, shared: _LinkWatch, link: str) -> None:
        self._ws = ws
        self._shared = shared
        self._report = shared.report
        self._link = link
        self._wanted: set[str] = set()
        self._ping_sent: float | None = None
        self._renewal_sent: float | None = None  # when the renewed subscription left (renewal link only)
        self._renewal_key = f"{REFRESHED_CHANNEL}:{self._report.account_index}"

    async def await_connected(self, opened: float) -> float:
        """Wait (bounded) for the venue's `connected` frame; the ms since `opened`."""
        timeout_s = self._shared.timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self._receive(deadline)
            if frame is None:
                if time.monotonic() >= deadline:
                    raise _NoConnected(f"the socket opened but no 'connected' frame came in {timeout_s:g} s")
                continue
            if frame.get("type") == "connected":
                return (time.monotonic() - opened) * 1000

    async def watch(self, channels: Channels, token: str, seconds: float, renewal: _Renewal | None) -> None:
        await self._subscribe(channels, token)
        self._ping_sent = time.monotonic()
        await self._send({"type": "ping"})
        start = time.monotonic()
        renew_at, end = start + seconds / 2, start + seconds
        grace_end = end + self._shared.timeout_s
        renewing: asyncio.Task[None] | None = None
        try:
            while True:
                now = time.monotonic()
                if renewal is not None and renewing is None and now >= renew_at:
                    renewing = asyncio.create_task(renewal.run(), name="preflight-token-renewal")
                if now >= end and (self._settled(renewal) or now >= grace_end):
                    return
                wake = end if now < end else grace_end
                if renewal is not None and renewing is None:
                    wake = min(wake, renew_at)
                await self.next_frame(wake)
        finally:
            if renewing is not None:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing

    async def renew(self, token: str) -> None:
        """Subscribe `account_all_orders` with a fresh token (on the renewal link)."""
        self._renewal_sent = time.monotonic()
        await self._subscribe([(f"{REFRESHED_CHANNEL}/{self._report.account_index}", True)], token)

    def _settled(self, renewal: _Renewal | None) -> bool:
        """Nothing is still owed on this link: every channel answered, our ping, the renewal if it has one."""
        report = self._report
        answered = report.confirmed | set(report.channel_errors)
        renewed = renewal is None or not report.refresh.attempted or report.refresh.ok or bool(
            report.refresh.detail)
        return self._wanted <= answered and self._link in report.pong_ms and renewed

    async def _subscribe(self, channels: Channels, token: str) -> None:
        for name, private in channels:
            self._wanted.add(parsing.channel_key(name))
            await self._send({"type": "subscribe", "channel": name, **({"auth": token} if private else {})})

    async def _send(self, frame: Mapping[str, Any]) -> None:
        self._report.sent_at.append(time.monotonic())
        await self._ws.send(json.dumps(frame, separators=(",", ":")))

    async def next_frame(self, deadline: float) -> None:
        frame = await self._receive(deadline)
        if frame is not None:
            await self._handle(frame)

    async def _receive(self, wake_at: float) -> dict[str, Any] | None:
        """The next frame as a dict, or None at `wake_at` or for a frame that is not a JSON object (which
        is recorded and counted as a parse failure)."""
        try:
            async with asyncio.timeout(max(0.0, wake_at - time.monotonic())):
                raw = await self._ws.recv()
        except TimeoutError:
            return None
        received_ms = time.time() * 1000
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
        try:
            frame = loads_untrusted(text, "ws frame")
        except UntrustedJSONError as exc:
            self._observe(CONTROL, text)
            self._report.fail_parse(str(exc))
            return None
        self._observe(record_name(frame), frame)
        if not isinstance(frame, dict):
            self._report.fail_parse(f"ws frame: a JSON {type(frame).__name__}, not an object")
            return None
        venue_ms = frame_time_ms(frame)
        if venue_ms is not None:
            self._report.skews_ms.append(received_ms - venue_ms)
        return frame

    def _observe(self, name: str, payload: Any) -> None:
        self._shared.observe(Observed("ws", name, payload))
        self._report.frames[name] = self._report.frames.get(name, 0) + 1

    async def _handle(self, frame: dict[str, Any]) -> None:
        error = parsing.ws_error(frame)  # both forms: {"type": "error", ...} and the venue's {"error": {...}}
        if error is not None:
            self._on_error(error)
            return
        kind = frame.get("type")
        if not isinstance(kind, str):
            self._report.fail_parse("ws frame: no string 'type'")
        elif kind == "ping":
            self._report.server_pings += 1
            await self._send({"type": "pong"})
        elif kind == "pong":
            if self._ping_sent is not None and self._link not in self._report.pong_ms:
                self._report.pong_ms[self._link] = (time.monotonic() - self._ping_sent) * 1000
        elif kind == "shutdown":
            self._report.notices.append(f"shutdown announced on the {self._link} link "
                                        f"(close in {frame.get('close_in_ms')} ms)")
        elif record_name(frame) != CONTROL:
            self._on_channel_frame(frame, snapshot=kind.startswith("subscribed/"))

    def _on_channel_frame(self, frame: dict[str, Any], snapshot: bool) -> None:
        report = self._report
        channel = frame.get("channel")
        key = parsing.channel_key(channel) if isinstance(channel, str) else None
        if snapshot and key is not None:
            report.confirmed.add(key)
            self._shared.confirmed()
            if key == self._renewal_key and self._renewal_sent is not None and not report.refresh.ok:
                report.refresh.ok = True
                delay_ms = (time.monotonic() - self._renewal_sent) * 1000
                report.refresh.detail = f"its snapshot came in {delay_ms:.0f} ms"
        problems = frame_problems(frame, report.account_index)
        for problem in problems:
            report.fail_parse(problem)
        if record_name(frame) == BOOK and not problems:
            report.book.see(frame, snapshot)

    def _on_error(self, error: parsing.WsError) -> None:
        report = self._report
        text = f"code {error.code}: {error.message}" if error.message else f"code {error.code}"
        renewing = self._renewal_sent is not None and not report.refresh.ok
        if renewing and (error.channel == self._renewal_key or error.code in AUTH_ERROR_CODES):
            report.refresh.detail = f"the venue refused the subscription with the new token ({text})"
        elif error.channel is not None:
            report.channel_errors.setdefault(error.channel, text)
        else:
            report.other_errors.append(f"{self._link} link: {text}")


class _Renewal:
    """A fresh auth token, and `account_all_orders` subscribed with it on a new connection (as the adapter
    moves to a new connection to renew its token); done when its snapshot comes, or the venue refuses it."""

    def __init__(self, shared: _LinkWatch, token_source: TokenSource) -> None:
        self._shared = shared
        self._token_source = token_source

    async def run(self) -> None:
        refresh, timeout_s = self._shared.report.refresh, self._shared.timeout_s
        refresh.attempted = True
        try:
            token, _expiry = await self._token_source(True)
        except Exception as exc:
            refresh.detail = f"a new auth token could not be made: {exc}"
            return
        try:
            async with _connect(self._shared.ws_url, timeout_s) as ws:
                watch = _Connection(ws, self._shared, REFRESH_LINK)
                await watch.await_connected(time.monotonic())
                await watch.renew(token)
                deadline = time.monotonic() + timeout_s
                while not (refresh.ok or refresh.detail) and time.monotonic() < deadline:
                    await watch.next_frame(deadline)
        except (_NoConnected, ConnectionClosed, OSError, WebSocketException, TimeoutError) as exc:
            refresh.detail = f"the new connection failed: {type(exc).__name__}: {exc}"
            return
        if not (refresh.ok or refresh.detail):
            refresh.detail = f"no snapshot within {timeout_s:g} s"


def busiest_minute(sent_at: list[float]) -> int:
    """The most messages sent within any 60 s window (the venue counts per rolling minute)."""
    times = sorted(sent_at)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 60:
            first += 1
        most = max(most, last - first + 1)
    return most


def skew_bound_ms(skews_ms: list[float]) -> float:
    """Frames arrive after they are stamped, so local - venue is at most the smallest (receive - stamp)."""
    return min(skews_ms) if skews_ms else math.inf

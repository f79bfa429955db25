"""`hedgectl preflight`'s WebSocket watch of one account: the channels one bot process subscribes (the
market's order book and the account's private channels, with the adapter's auth token, as `AccountStream`
subscribes them), held open for a while, every frame counted and checked, none acted upon.

Besides counting, it proves what the bot relies on: the server's pings are answered and our own ping gets a
pong; order book updates continue one another (`preflight_frames.continuity_break`); half-way through, a
fresh auth token is made and one private channel subscribed with it on a second connection, the way the
adapter renews a token (a new connection takes over from the old one), and its snapshot must come. It only
ever sends subscribe, ping and pong frames.
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
    AUTH_ERROR_CODES,
    BOOK,
    CONTROL,
    BookMark,
    book_mark,
    channel_names,
    continuity_break,
    continuity_rule,
    error_channel,
    frame_problems,
    frame_time_ms,
    record_name,
)
from hedge_strategy.exchange.preflight_reads import Observed, Observer
from hedge_strategy.exchange.stream import MAX_FRAME_BYTES
from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted

WS_MESSAGES_PER_MINUTE = 200  # the venue's budget of client messages per IP (sendTx excluded)
REFRESHED_CHANNEL = "account_all_orders"  # the private channel subscribed again with a fresh token
KEPT_PROBLEMS = 5  # examples kept per kind of problem; the counts are complete

TokenSource = Callable[[bool], Awaitable[tuple[str, float]]]


@dataclass
class TokenRefresh:
    attempted: bool = False
    ok: bool = False
    detail: str = ""  # what happened: the new snapshot's delay, or why it failed


@dataclass
class WatchReport:
    """What one account's watch saw. `wanted` lists the channel keys (`order_book:1`) it subscribed."""

    account_index: int
    wanted: list[str] = field(default_factory=list)
    connect_error: str | None = None  # the WebSocket could not be opened (or said no `connected`)
    connect_ms: float | None = None
    lost: str | None = None  # the connection ended before the watch did
    frames: dict[str, int] = field(default_factory=dict)  # by corpus name (`order_book`, `control`, ...)
    confirmed: set[str] = field(default_factory=set)  # channel keys whose snapshot arrived
    channel_errors: dict[str, str] = field(default_factory=dict)  # channel key -> the venue's error
    other_errors: list[str] = field(default_factory=list)  # error frames naming no channel
    notices: list[str] = field(default_factory=list)  # shutdown announcements
    parse_failures: int = 0
    parse_examples: list[str] = field(default_factory=list)
    book_updates: int = 0
    book_rule: str | None = None  # "nonce" or "offset": how continuity was checked
    book_breaks: int = 0
    break_examples: list[str] = field(default_factory=list)
    server_pings: int = 0
    pong_ms: float | None = None  # our ping's round trip, None when no pong came
    refresh: TokenRefresh = field(default_factory=TokenRefresh)
    sent_at: list[float] = field(default_factory=list)  # monotonic time of every message we sent
    skews_ms: list[float] = field(default_factory=list)  # local receive time - frame timestamp, per frame

    def fail_parse(self, why: str) -> None:
        self.parse_failures += 1
        if len(self.parse_examples) < KEPT_PROBLEMS:
            self.parse_examples.append(why)


async def watch_account(*, ws_url: str, account_index: int, market_id: int, token_source: TokenSource,
                        seconds: float, timeout_s: float, observe: Observer,
                        subscribed: Callable[[], None] | None = None) -> WatchReport:
    """Watch the bot's channels of one account for `seconds` (plus at most `timeout_s` for answers still
    owed: snapshots, the pong, the refreshed subscription). `subscribed` is called once every channel's
    snapshot has arrived. Never raises for what the venue does."""
    report = WatchReport(account_index, wanted=[parsing.channel_key(name)
                                                for name, _ in channel_names(account_index, market_id)])
    try:
        token, _expiry = await token_source(False)
    except Exception as exc:
        report.connect_error = f"auth token not created: {exc}"
        return report
    opened = time.monotonic()
    try:
        async with _connect(ws_url, timeout_s) as ws:
            watch = _Watch(ws, report, market_id, timeout_s, observe, subscribed)
            report.connect_ms = await watch.await_connected(opened)
            await watch.run(token, seconds, _Refresher(ws_url, report, token_source, timeout_s, observe))
    except _NoConnected as exc:
        report.connect_error = str(exc)
    except ConnectionClosed as exc:
        _connection_ended(report, f"closed ({exc})")
    except (OSError, WebSocketException, TimeoutError) as exc:
        _connection_ended(report, f"{type(exc).__name__}: {exc}".strip(": "))
    return report


def _connect(ws_url: str, timeout_s: float) -> connect:
    return connect(ws_url, open_timeout=timeout_s, close_timeout=1.0, ping_interval=None,
                   max_size=MAX_FRAME_BYTES)


def _connection_ended(report: WatchReport, why: str) -> None:
    if report.connect_ms is None:
        report.connect_error = why
    else:
        report.lost = why


class _NoConnected(Exception):
    """The socket opened but the venue never said `connected`."""


class _Watch:
    """One connection's frames, into the account's report."""

    def __init__(self, ws: ClientConnection, report: WatchReport, market_id: int | None, timeout_s: float,
                 observe: Observer, subscribed: Callable[[], None] | None = None) -> None:
        self._ws = ws
        self._subscribed = subscribed
        self._report = report
        self._market_id = market_id
        self._timeout_s = timeout_s
        self._observe = observe
        self._book: BookMark | None = None
        self._ping_sent: float | None = None
        self._refresh_sent: float | None = None
        self._refresh_key = f"{REFRESHED_CHANNEL}:{report.account_index}"

    async def await_connected(self, opened: float) -> float:
        """Wait (bounded) for the venue's `connected` frame; the ms since `opened`."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            frame = await self._receive(deadline)
            if frame is None:
                if time.monotonic() >= deadline:
                    raise _NoConnected(
                        f"the socket opened but no 'connected' frame came in {self._timeout_s} s")
                continue
            if frame.get("type") == "connected":
                return (time.monotonic() - opened) * 1000

    async def run(self, token: str, seconds: float, refresher: _Refresher) -> None:
        assert self._market_id is not None
        for name, private in channel_names(self._report.account_index, self._market_id):
            await self._send({"type": "subscribe", "channel": name, **({"auth": token} if private else {})})
        self._ping_sent = time.monotonic()
        await self._send({"type": "ping"})
        start = time.monotonic()
        refresh_at, end = start + seconds / 2, start + seconds
        refreshing: asyncio.Task[None] | None = None
        try:
            while True:
                now = time.monotonic()
                if now >= refresh_at and refreshing is None:
                    refreshing = asyncio.create_task(refresher.run(), name="preflight-token-refresh")
                if now >= end and (self._settled() or now >= end + self._timeout_s):
                    return
                wake = end if now < end else end + self._timeout_s
                if refreshing is None:
                    wake = min(wake, refresh_at)
                frame = await self._receive(wake)
                if frame is not None:
                    await self._handle(frame)
        finally:
            if refreshing is not None:
                refreshing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refreshing

    def _settled(self) -> bool:
        """Nothing is still owed: every channel answered, our ping and the refreshed subscription too."""
        report = self._report
        answered = report.confirmed | set(report.channel_errors)
        refresh_done = not report.refresh.attempted or report.refresh.ok or bool(report.refresh.detail)
        return set(report.wanted) <= answered and report.pong_ms is not None and refresh_done

    async def subscribe_refreshed(self, token: str) -> None:
        self._refresh_sent = time.monotonic()
        channel = f"{REFRESHED_CHANNEL}/{self._report.account_index}"
        await self._send({"type": "subscribe", "channel": channel, "auth": token})

    async def next_frame(self, deadline: float) -> None:
        frame = await self._receive(deadline)
        if frame is not None:
            await self._handle(frame)

    async def _send(self, frame: Mapping[str, Any]) -> None:
        self._report.sent_at.append(time.monotonic())
        await self._ws.send(json.dumps(frame, separators=(",", ":")))

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
            self._observe(Observed("ws", CONTROL, text))
            self._count(CONTROL)
            self._report.fail_parse(str(exc))
            return None
        name = record_name(frame)
        self._observe(Observed("ws", name, frame))
        self._count(name)
        if not isinstance(frame, dict):
            self._report.fail_parse(f"ws frame: a JSON {type(frame).__name__}, not an object")
            return None
        venue_ms = frame_time_ms(frame)
        if venue_ms is not None:
            self._report.skews_ms.append(received_ms - venue_ms)
        return frame

    def _count(self, name: str) -> None:
        self._report.frames[name] = self._report.frames.get(name, 0) + 1

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind is None and isinstance(frame.get("error"), Mapping):
            self._on_error({"channel": frame.get("channel"), **frame["error"]})  # the venue's typeless form
            return
        if not isinstance(kind, str):
            self._report.fail_parse("ws frame: no string 'type'")
            return
        if kind == "ping":
            self._report.server_pings += 1
            await self._send({"type": "pong"})
        elif kind == "pong":
            if self._ping_sent is not None and self._report.pong_ms is None:
                self._report.pong_ms = (time.monotonic() - self._ping_sent) * 1000
        elif kind == "error":
            self._on_error(frame)
        elif kind == "shutdown":
            self._report.notices.append(f"shutdown announced (close in {frame.get('close_in_ms')} ms)")
        elif record_name(frame) != CONTROL:
            self._on_channel_frame(frame, snapshot=kind.startswith("subscribed/"))

    def _on_channel_frame(self, frame: dict[str, Any], snapshot: bool) -> None:
        report = self._report
        channel = frame.get("channel")
        key = parsing.channel_key(channel) if isinstance(channel, str) else None
        if snapshot and key is not None:
            report.confirmed.add(key)
            if self._subscribed is not None and set(report.wanted) <= report.confirmed:
                self._subscribed()
                self._subscribed = None
            if key == self._refresh_key and self._refresh_sent is not None and not report.refresh.ok:
                report.refresh.ok = True
                delay_ms = (time.monotonic() - self._refresh_sent) * 1000
                report.refresh.detail = f"its snapshot came in {delay_ms:.0f} ms"
        for problem in frame_problems(frame, report.account_index):
            report.fail_parse(problem)
        if record_name(frame) == BOOK:
            self._on_book(frame, snapshot)

    def _on_book(self, frame: dict[str, Any], snapshot: bool) -> None:
        report = self._report
        mark = book_mark(frame)
        if not snapshot:
            report.book_updates += 1
            previous = self._book
            why = "an update before any snapshot" if previous is None else continuity_break(previous, mark)
            report.book_rule = report.book_rule or continuity_rule(mark)
            if why is not None:
                report.book_breaks += 1
                if len(report.break_examples) < KEPT_PROBLEMS:
                    report.break_examples.append(why)
        self._book = mark

    def _on_error(self, error: Mapping[str, Any]) -> None:
        report = self._report
        code, message = error.get("code"), str(error.get("message", ""))[:200]
        text = f"code {code}: {message}" if message else f"code {code}"
        key = error_channel(error, report.wanted)
        refreshing = self._refresh_sent is not None and not report.refresh.ok
        if refreshing and (key == self._refresh_key or code in AUTH_ERROR_CODES):
            report.refresh.detail = f"the venue refused the subscription with the new token ({text})"
        elif key is not None:
            report.channel_errors.setdefault(key, text)
        else:
            report.other_errors.append(text)


class _Refresher:
    """A fresh auth token, and `account_all_orders` subscribed with it on a second connection (as the adapter
    hands over to a new connection on a renewal); done when its snapshot comes, or the venue refuses it."""

    def __init__(self, ws_url: str, report: WatchReport, token_source: TokenSource, timeout_s: float,
                 observe: Observer) -> None:
        self._ws_url = ws_url
        self._report = report
        self._token_source = token_source
        self._timeout_s = timeout_s
        self._observe = observe

    async def run(self) -> None:
        refresh = self._report.refresh
        refresh.attempted = True
        try:
            token, _expiry = await self._token_source(True)
        except Exception as exc:
            refresh.detail = f"a new auth token could not be made: {exc}"
            return
        try:
            async with _connect(self._ws_url, self._timeout_s) as ws:
                watch = _Watch(ws, self._report, None, self._timeout_s, self._observe)
                await watch.await_connected(time.monotonic())
                await watch.subscribe_refreshed(token)
                deadline = time.monotonic() + self._timeout_s
                while not (refresh.ok or refresh.detail) and time.monotonic() < deadline:
                    await watch.next_frame(deadline)
        except (_NoConnected, OSError, WebSocketException, TimeoutError) as exc:
            refresh.detail = f"the second connection failed: {type(exc).__name__}: {exc}"
            return
        if not (refresh.ok or refresh.detail):
            refresh.detail = f"no snapshot within {self._timeout_s:g} s"


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


"""The client-side budget of WebSocket messages, so the bot never trips the venue's per-IP message limit.

Lighter allows 200 client messages a minute per IP (sendTx excluded), 50 in flight, and 100 subscriptions per
connection (rate-limits page; the same figures in NautilusTrader's and other public Lighter clients). Whether
our answers to the server's pings count is not documented: they are counted here, like every other frame
we send (subscribe, unsubscribe, pong, our own ping, token renewals), because a frame the venue counts and
we do not is how a client gets `30009 Too Many Websocket Messages!`. Transactions sent on the socket
(`jsonapi/sendtx`, ws_tx.py) are the documented exception and never take from this budget.

One `MessageBudget` per process is shared by all its connections. A and B run on one host, so they share
the IP's 200: each process takes `MESSAGES_PER_MINUTE` (2 x 80 = 160), leaving room for `hedgectl` and for
our rolling window not lining up with the venue's. It is a token bucket from `throttle.py`: capacity
`BURST`, refilled so that `BURST + 60 x refill` is the minute's budget, so no rolling minute can see more.

Messages have priorities, each with a floor the bucket may not be drained below by that priority, most
urgent first: keep-alives (pong, ping) of the account connection may take the last token, because a
connection that stops answering pings is closed by the server and the fills ride on that one; then the
account channels' (re)subscriptions; then the book connection's keep-alives; then order book
(re)subscriptions, which leave every other reserve alone. So a burst of book gaps can never starve the
account connection of the messages it needs.

`30009` from the venue drains the bucket and pauses everything but keep-alives for a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum

from hedge_strategy.exchange.throttle import TokenBucket

VENUE_MESSAGES_PER_MINUTE = 200  # per IP, sendTx excluded
MAX_IN_FLIGHT = 50  # per IP; BURST stays below it
MAX_SUBSCRIPTIONS_PER_CONNECTION = 100
MESSAGES_PER_MINUTE = 80  # this process's share of the IP's 200 (A and B share one host)
BURST = 20
RATE_LIMITED_PAUSE_S = 15.0  # after a 30009: nothing but keep-alives for this long


class Priority(IntEnum):
    KEEPALIVE = 0  # pong, ping on the account connection
    ACCOUNT = 1  # private channel (re)subscriptions: they carry the fills
    BOOK_KEEPALIVE = 2  # pong, ping on the book connection
    BOOK = 3  # order book (re)subscriptions, resyncs after a gap


# Tokens each priority must leave in the bucket.
FLOORS: dict[Priority, float] = {Priority.KEEPALIVE: 0.0, Priority.ACCOUNT: 3.0, Priority.BOOK_KEEPALIVE: 5.0,
                                 Priority.BOOK: 8.0}
KEEPALIVES = frozenset({Priority.KEEPALIVE, Priority.BOOK_KEEPALIVE})


class MessageBudget:
    def __init__(self, per_minute: int = MESSAGES_PER_MINUTE, burst: int = BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < burst < per_minute or burst <= FLOORS[Priority.BOOK] + 2:
            raise ValueError(f"need {FLOORS[Priority.BOOK] + 2} < burst < per_minute: {burst}/{per_minute}")
        self.per_minute = per_minute
        self._bucket = TokenBucket(burst, (per_minute - burst) / 60.0, clock)
        self._clock = clock
        self._paused_until = -1.0
        self.sent = 0  # messages taken from the budget, for tests and metrics
        self.rate_limited_count = 0  # 30009 answers seen

    def try_take(self, priority: Priority, count: int = 1) -> float:
        """Take `count` messages now and return 0, or take nothing and return the seconds to wait."""
        now = self._clock()
        if priority not in KEEPALIVES and now < self._paused_until:
            return self._paused_until - now
        floor = FLOORS[priority]
        missing = count + floor - self._bucket.available
        if missing > 0:
            return missing / self._bucket.refill_per_s
        if self._bucket.try_take(count) > 0:  # cannot happen after the check above; kept for safety
            return 1.0 / self._bucket.refill_per_s
        self.sent += count
        return 0.0

    def most_allowed(self) -> float:
        """The most messages it can have let out so far (its burst plus its refill over its own clock): `sent`
        is never above it, and messages of a priority never above it less that priority's floor."""
        return self._bucket.most_given()

    def rate_limited(self) -> float:
        """The venue refused a message (30009): empty the bucket and pause; returns the pause in seconds."""
        self.rate_limited_count += 1
        self._bucket.try_take(self._bucket.available)  # drains it: refills start from zero
        self._paused_until = self._clock() + RATE_LIMITED_PAUSE_S
        return RATE_LIMITED_PAUSE_S

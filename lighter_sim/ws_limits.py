"""The venue's WebSocket limits, enforced per connection.

Lighter's websocket reference ("WebSocket Limits", per IP): 100 connections, 100 subscriptions per
connection, 1000 subscriptions in all, 200 messages a minute ("sendTx and sendBatchTx are not counted
here"), 50 messages in flight, 10 unique accounts. The sim enforces the message budget and the
subscriptions per connection, keyed by connection instead of by IP, because every test client shares
127.0.0.1 and one test must not spend another's budget; the other limits are not simulated.

What the venue does over the limit is captured (mainnet, Aug 2026): each refused frame is answered with
`{"error":{"code":30009,"message":"Too Many Websocket Messages!"}}`, one per frame, and the connection
stays open (a refused subscribe just gets no snapshot). The documentation excludes only sendTx from the
count, so pings and pongs count too (inferred from its wording); a refused pong still proves the client
alive, so it never costs the connection. What the venue answers past 100 subscriptions is not captured:
the sim sends 30012.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MESSAGES_PER_MINUTE = 200
SUBSCRIPTIONS_PER_CONNECTION = 100
WINDOW_S = 60.0
UNMETERED_TYPES = ("jsonapi/sendtx", "jsonapi/sendtxbatch")


class MessageBudget:
    """A sliding one-minute window of the client frames a connection had accepted."""

    def __init__(self, limit: int = MESSAGES_PER_MINUTE, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._accepted: deque[float] = deque()

    def allow(self) -> bool:
        now = self._clock()
        while self._accepted and now - self._accepted[0] >= WINDOW_S:
            self._accepted.popleft()
        if len(self._accepted) >= self._limit:
            return False  # refused frames are not recorded: a client that waits gets its budget back
        self._accepted.append(now)
        return True

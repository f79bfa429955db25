"""Per-tier rate limits over a rolling minute (lighter-venue.md).

Standard accounts get `standard_per_minute` requests, sendTx included, unweighted. Premium accounts get
`premium_weight_per_minute` of weight: sendTx/sendTxBatch/nextNonce 6, accountInactiveOrders 100, apikeys 150,
trades/recentTrades 600, everything else 300. A request is charged to the account it names, or else to the
client IP (charged like a premium account: an anonymous reader should not starve on public data).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 60.0
RATE_LIMIT_CODE = 23000

_WEIGHTS = {
    "sendTx": 6,
    "sendTxBatch": 6,
    "nextNonce": 6,
    "jsonapi/sendtx": 6,
    "accountInactiveOrders": 100,
    "apikeys": 150,
    "trades": 600,
    "recentTrades": 600,
}
DEFAULT_WEIGHT = 300


def premium_weight(route: str) -> int:
    """Weight of one request to `route` (the last path segment, e.g. "sendTx")."""
    return _WEIGHTS.get(route, DEFAULT_WEIGHT)


@dataclass
class _Bucket:
    events: deque[tuple[float, int]] = field(default_factory=deque)  # (time, weight)
    used: int = 0


class RateLimiter:
    """Rolling-window budget per key. `allow` charges the request when there is room, else refuses it."""

    def __init__(
        self,
        standard_per_minute: int,
        premium_weight_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._standard = standard_per_minute
        self._premium = premium_weight_per_minute
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str, tier: str, route: str) -> bool:
        capacity, cost = self._cost(tier, route)
        bucket = self._buckets.setdefault(key, _Bucket())
        now = self._clock()
        self._expire(bucket, now)
        if bucket.used + cost > capacity:
            return False
        bucket.events.append((now, cost))
        bucket.used += cost
        return True

    def remaining(self, key: str, tier: str) -> int:
        capacity, _ = self._cost(tier, "")
        bucket = self._buckets.get(key)
        if bucket is None:
            return capacity
        self._expire(bucket, self._clock())
        return max(0, capacity - bucket.used)

    def reset(self) -> None:
        self._buckets.clear()

    def _cost(self, tier: str, route: str) -> tuple[int, int]:
        if tier == "standard":
            return self._standard, 1
        return self._premium, premium_weight(route)

    @staticmethod
    def _expire(bucket: _Bucket, now: float) -> None:
        while bucket.events and now - bucket.events[0][0] >= WINDOW_S:
            _, cost = bucket.events.popleft()
            bucket.used -= cost

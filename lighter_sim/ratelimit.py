"""Per-tier rate limits over a rolling minute, as Lighter's rate-limits page documents them.

Standard accounts get `standard_per_minute` requests (60), sendTx included, unweighted. Premium accounts get
`premium_weight_per_minute` (24,000) of weight: sendTx/sendTxBatch/nextNonce 6, accountInactiveOrders 100,
apikeys 150, trades/recentTrades 600, everything else 300. The page adds: "whenever premium_weighted_requests
/ endpoint_weight < standard_requests, the former limit is going to be applied" to both tiers; so a standard
account is also held to the weighted budget (at most 40 trades reads a minute: 24,000 / 600). A request is
charged to the account it names, or else to the client IP (charged like a premium account: an anonymous reader
should not starve on public data). The 429 body's code 23000 is invented (errors.py).

Shared budgets (`sim.rate_limits.shared`): the rate-limits page says limits apply per IP and per L1 address,
so the sub-accounts of one L1 address share one (documented, not seen in captured traffic). Each group of
account indexes listed there is charged to one budget: what one account spends, the others no longer have.
It is the group's tier's budget: the config refuses a group of mixed tiers, and each request is checked
against the tier of the account it names.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
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
    used: int = 0  # weight in the window
    count: int = 0  # requests in the window


class RateLimiter:
    """Rolling-window budget per key. `allow` charges the request when there is room, else refuses it."""

    def __init__(
        self,
        standard_per_minute: int,
        premium_weight_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        shared: Iterable[list[int]] = (),
    ) -> None:
        self._standard = standard_per_minute
        self._premium = premium_weight_per_minute
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._group_key = {a: "accounts:" + "+".join(map(str, group)) for group in shared for a in group}

    def account_key(self, account_index: int) -> str:
        """The budget `account_index` is charged to: its group's when it shares one, else its own."""
        return self._group_key.get(account_index, f"account:{account_index}")

    def allow(self, key: str, tier: str, route: str) -> bool:
        weight = premium_weight(route)
        bucket = self._buckets.setdefault(key, _Bucket())
        now = self._clock()
        self._expire(bucket, now)
        if bucket.used + weight > self._premium:
            return False  # both tiers: the weighted budget
        if tier == "standard" and bucket.count + 1 > self._standard:
            return False  # standard: the unweighted count as well
        bucket.events.append((now, weight))
        bucket.used += weight
        bucket.count += 1
        return True

    def remaining(self, key: str, tier: str) -> int:
        """Requests (standard) or weight (premium) still allowed in the window."""
        bucket = self._buckets.get(key)
        used, count = (0, 0) if bucket is None else self._expire(bucket, self._clock())
        if tier == "standard":
            return max(0, self._standard - count)
        return max(0, self._premium - used)

    def reset(self) -> None:
        self._buckets.clear()

    @staticmethod
    def _expire(bucket: _Bucket, now: float) -> tuple[int, int]:
        while bucket.events and now - bucket.events[0][0] >= WINDOW_S:
            _, cost = bucket.events.popleft()
            bucket.used -= cost
            bucket.count -= 1
        return bucket.used, bucket.count

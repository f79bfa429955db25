"""Order-book continuity as the venue has sent it since its December 2025 API upgrade.

Verified from captured mainnet frames: every book frame carries `nonce` and `begin_nonce` inside
`order_book`; an update continues the book when its `begin_nonce` equals the previous frame's `nonce`, and a
snapshot carries `begin_nonce` 0 and the `nonce` the next update starts from. Nonces advance by tens to
hundreds per update (they count the venue's book events, not frames). `offset` belongs to the API server
the connection landed on: it is not +1 per update (captures show steps of 1 to 7 between chained updates) and
a new connection starts elsewhere.

Inferred (no capture shows the mechanism): the sim draws each connection's offset base at random and advances
it by 1 plus a small random step per data frame, so a client can only rely on the nonce chain.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

NONCE_BASE = 17_000_000_000  # the order of the venue's nonces in 2026 captures
NONCE_STEP_MAX = 60  # an update advances the nonce by 1 .. this (the venue's steps are of this order)
GAP_SKIP = 1000  # how far a `book_gap` fault makes begin_nonce jump past the previous nonce
OFFSET_BASE_MAX = 5_000_000
OFFSET_EXTRA_STEP_MAX = 3


def wall_us() -> int:
    return time.time_ns() // 1000


@dataclass
class _Chain:
    nonce: int
    updated_us: int


class BookSequencer:
    """The venue-wide nonce chain of each market: one for all connections, advanced on every book change
    (subscribed or not, silenced or not, so frames lost by a client show as a break in the chain)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._chains: dict[int, _Chain] = {}

    def _chain(self, market_id: int) -> _Chain:
        chain = self._chains.get(market_id)
        if chain is None:
            base = NONCE_BASE + market_id * 1_000_000_000 + self._random.randrange(1_000_000)
            chain = self._chains[market_id] = _Chain(base, wall_us())
        return chain

    def advance(self, market_id: int, gap: bool = False) -> tuple[int, int, int]:
        """One update: (begin_nonce, nonce, updated_us). With `gap`, begin_nonce skips past the last nonce."""
        chain = self._chain(market_id)
        begin = chain.nonce + (GAP_SKIP if gap else 0)
        chain.nonce = begin + self._random.randint(1, NONCE_STEP_MAX)
        chain.updated_us = max(wall_us(), chain.updated_us + 1)
        return begin, chain.nonce, chain.updated_us

    def current(self, market_id: int) -> tuple[int, int]:
        """(nonce, updated_us) a snapshot taken now carries."""
        chain = self._chain(market_id)
        return chain.nonce, chain.updated_us


class ConnectionOffset:
    """One connection's `offset`: a random base, then 1 + a small random step per data frame it is sent."""

    def __init__(self, rng: random.Random) -> None:
        self._random = rng
        self.value = rng.randrange(1, OFFSET_BASE_MAX)

    def advance(self) -> int:
        self.value += 1 + self._random.randrange(OFFSET_EXTRA_STEP_MAX)
        return self.value

"""How far one market's price moves during a taker speed bump: the room B's first IOC needs to still fill.

On Lighter a taker order executes a speed bump after it arrives: premium 200 ms (140 ms with staked LIT),
Standard 300 ms (lighter-venue.md, "Account tiers", from the venue's account-types page; the simulator applies
the same figures, `sim.speed_bumps`). An IOC priced at the touch read before it left meets the book one bump
later. `MidMovement` follows the mid of one market at each top-of-book change and keeps, for the last
`window_ms` (a minute), how far the mid had moved since one bump before: |mid(t) - mid(t - bump)| in whole
ticks, rounded up, where mid(t - bump) is the mid that stood at that moment (the last change at or before it).
`move_ticks(share, now)` is the move that share of those samples stayed within (nearest rank), e.g. 0.99.
The adapter measures over the bump plus `ARRIVAL_MARGIN_MS`: the IOC meets the book one bump after it
arrives, and it arrives a while after the touch it was priced from (below).

Samples are taken per book change, so a busy minute weighs more than a quiet one: the estimate leans towards
the moves seen while the market was moving, which is when A's maker order fills. A minute without a change
has no samples: the market stood still, and the estimate is None (the caller then prices at the touch).

Cost: each update appends one mid and at most one sample and drops what aged out: O(1) amortised. Memory is
bounded: the mids of one bump and at most `max_samples` samples (the oldest go first). A query sorts the
distinct tick counts held, once per hedge.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from decimal import Decimal

# The venue's taker speed bump per account tier, in ms (lighter-venue.md; premium's 200 ms is its figure
# without staked LIT, the longest a premium taker waits). Keyed like `exchange.tier`.
TAKER_SPEED_BUMP_MS: dict[str, int] = {"premium": 200, "standard": 300}
# The maker speed bump (post-only orders and cancels): Standard 200 ms, premium none (same sources). A maker
# order priced at the touch meets the book one bump later; on Standard the touch has often moved through it by
# then, and a post-only order that would cross is cancelled (`canceled-post-only`: 55 % of A's orders on the
# simulator's default flow, bench/tiers.py). A keeps its price that far from the opposite touch (adapter).
MAKER_SPEED_BUMP_MS: dict[str, int] = {"premium": 0, "standard": 200}
# The IOC meets the book one bump after it ARRIVES, and it arrives a while after the touch B priced it from:
# the book frame's own age plus B's path to the exchange (a few ms idle, tens under load: bench/README.md).
# On the simulator's flow, whose mid steps every 100 ms, a window of one bump plus those ms holds one step
# more than the bump alone as often as the ms are long; the room measured over the bump alone fell short in
# those hedges (issue 10). 50 ms covers the path with room; a wider window costs nothing when the book holds.
ARRIVAL_MARGIN_MS = 50
WINDOW_MS = 60_000
MAX_SAMPLES = 20_000  # 330 book changes a second for a whole minute; beyond that the oldest samples go
MAX_MIDS = 4_096  # mids kept for one bump; more changes than this within one bump: the oldest go


def taker_speed_bump_ms(tier: str) -> int:
    """The taker speed bump of `tier` ("premium" or "standard"); KeyError for anything else."""
    try:
        return TAKER_SPEED_BUMP_MS[tier]
    except KeyError:
        raise KeyError(f"unknown account tier {tier!r} (known: {sorted(TAKER_SPEED_BUMP_MS)})") from None


def maker_speed_bump_ms(tier: str) -> int:
    """The maker speed bump of `tier` ("premium" or "standard"), 0 for none; KeyError for anything else."""
    try:
        return MAKER_SPEED_BUMP_MS[tier]
    except KeyError:
        raise KeyError(f"unknown account tier {tier!r} (known: {sorted(MAKER_SPEED_BUMP_MS)})") from None


def clear_of_touch(price: Decimal, opposite_touch: Decimal | None, is_bid: bool, move_ticks: int | None,
                   tick: Decimal) -> Decimal:
    """`price` (a post-only bid or ask) moved back, if need be, so that a move of the book by `move_ticks`
    towards it during the maker speed bump leaves it one tick short of the opposite touch: a post-only order
    that still rests when it arrives instead of one cancelled for crossing. Unchanged without an estimate."""
    if not move_ticks or move_ticks <= 0 or opposite_touch is None:
        return price
    room = (move_ticks + 1) * tick
    return min(price, opposite_touch - room) if is_bid else max(price, opposite_touch + room)


class MidMovement:
    """|mid(t) - mid(t - horizon)| in ticks at each book change of one market, over a sliding window."""

    def __init__(self, tick: Decimal, horizon_ms: int, window_ms: int = WINDOW_MS,
                 max_samples: int = MAX_SAMPLES) -> None:
        if tick <= 0 or horizon_ms <= 0 or window_ms <= 0 or max_samples <= 0:
            raise ValueError("tick, horizon, window and sample cap must be positive")
        self.tick = tick
        self.horizon_ms = horizon_ms
        self.window_ms = window_ms
        self._mids: deque[tuple[float, Decimal]] = deque(maxlen=MAX_MIDS)  # (ms, mid), oldest first
        self._samples: deque[tuple[float, int]] = deque()  # (ms, ticks moved), oldest first
        self._counts: Counter[int] = Counter()  # ticks moved -> samples held
        self._max_samples = max_samples

    def __len__(self) -> int:
        return len(self._samples)

    def update(self, now_ms: float, best_bid: Decimal | None, best_ask: Decimal | None) -> None:
        """A new top of book at `now_ms` (any monotonic ms clock, the same for every call)."""
        if best_bid is None or best_ask is None:
            return  # one side empty: no mid, nothing to compare
        mid = (best_bid + best_ask) / 2
        since = now_ms - self.horizon_ms
        mids = self._mids
        while len(mids) >= 2 and mids[1][0] <= since:
            mids.popleft()  # the second one stood at `since` already: the first one is of no further use
        if mids and mids[0][0] <= since:
            self._add(now_ms, math.ceil(abs(mid - mids[0][1]) / self.tick))
        mids.append((now_ms, mid))
        self._expire(now_ms)

    def move_ticks(self, share: float, now_ms: float) -> int | None:
        """The move (ticks) `share` of the window's samples stayed within; None without samples."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self._expire(now_ms)
        if not self._samples:
            return None
        rank = math.ceil(share * len(self._samples))
        seen = 0
        for ticks in sorted(self._counts):
            seen += self._counts[ticks]
            if seen >= rank:
                return ticks
        raise AssertionError("the counts add up to the samples held")

    def _add(self, now_ms: float, ticks: int) -> None:
        if len(self._samples) >= self._max_samples:
            self._drop_oldest()
        self._samples.append((now_ms, ticks))
        self._counts[ticks] += 1

    def _expire(self, now_ms: float) -> None:
        oldest_kept = now_ms - self.window_ms
        while self._samples and self._samples[0][0] < oldest_kept:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, ticks = self._samples.popleft()
        self._counts[ticks] -= 1
        if not self._counts[ticks]:
            del self._counts[ticks]

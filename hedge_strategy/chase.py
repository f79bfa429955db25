"""The IOC price chase of B's hedge and `hedgectl clear`'s close: each attempt's price, the cap, what ends it.

Pure functions, no I/O: the chase loop (`execution/chase_loop.py`) reads the touch and sends; this decides.

The limit is a bound, not the fill price: an IOC executes at the best prices resting in the book, up to its
limit. A limit wider than the touch costs nothing when the market holds still (the IOC fills at the touch all
the same, or, when the touch holds less than the size, also at the next levels up to the limit); it lets the
order still fill when the market moved against it before it executed.

Attempt 1 (`first_attempt_room`): the touch plus room for the taker speed bump. The IOC executes one speed
bump (premium 200 ms, Standard 300 ms) after it arrives, so a limit at the touch read before it left misses
whenever the market moved away meanwhile. The room is the market's recent movement over one bump, in whole
ticks (the caller passes it: `LighterAccount.taker_move_ticks(market, MOVE_SHARE)`, the 99th percentile of
|mid(t) - mid(t - bump - margin)| over the last minute of book changes, the margin for the IOC's way to the
exchange: `movement.ARRIVAL_MARGIN_MS`), and never more than half the slippage budget,
so the later attempts keep the other half to widen in. No estimate (no book stream, a market that did not
move): no room, attempt 1 at the touch.

Each further attempt re-reads the touch and widens by one more step beyond the room (attempt k: touch_k +
room + (k - 1) steps for a buy, touch_k - room - (k - 1) steps for a sell), but never beyond
`max_slippage_bps` from the first attempt's touch: a buy is capped at first_touch * (1 + bps / 10^4)
rounded down to the tick grid, a sell floored at first_touch * (1 - bps / 10^4) rounded up, so the cap
itself is never crossed.

The step is a whole number of ticks: at least one, and large enough that the last attempt reaches the cap
(what the room left of the slippage budget, spread evenly over `retry_times - 1` widenings). One tick per
attempt is not enough on Lighter: a BTC tick is about 0.01 bp while the price moves tens of ticks during a
taker's 200-300 ms speed bump, so a one-tick chase keeps arriving behind a moving market and never fills
(measured: bench/README.md).

A chase resumed from the journal after a restart (`resumed_first_touch`) knows attempt 1's limit but not the
touch it was priced from: it takes the lowest touch (a buy; the highest for a sell) that limit can have come
from, so the resumed chase stays within the cap of the real first touch, and widens from the touch without
room.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hedge_strategy.exchange.events import EndReason, Side

BPS = Decimal(10_000)

# Why an IOC may end after which another attempt would end the same way. (A refused send says so itself:
# `SendResult.worth_retrying`, classified by the adapter.)
REPEATING_END_REASONS = frozenset({EndReason.MARGIN})
# The largest base amount (in lots) an order can carry: lighter's signer refuses anything above 2^48 - 1.
MAX_BASE_AMOUNT_LOTS = 2**48 - 1
# The share of the slippage budget attempt 1's room may take: the rest is left for the later attempts.
ROOM_SHARE = Decimal("0.5")
# Attempt 1's room covers the move over one taker speed bump that this share of the last minute's moves stayed
# within (`LighterAccount.taker_move_ticks(market, MOVE_SHARE)`). The target is 95 % of hedges filled by their
# first IOC (issue 10); the 95th percentile itself left no margin for the estimate's own error over a minute
# of samples: measured, the adverse move reached 0.9 of the room (bench/README.md). A wider room costs nothing
# while the book holds (the IOC fills at the best prices); a missed IOC costs a speed bump of naked exposure.
MOVE_SHARE = 0.99


def slippage_limit(side: Side, first_touch: Decimal, max_slippage_bps: Decimal, tick: Decimal) -> Decimal:
    """The worst price any attempt may use: `max_slippage_bps` from the first touch, on the tick grid."""
    offset = first_touch * Decimal(max_slippage_bps) / BPS
    if side is Side.BUY:
        return (first_touch + offset).quantize(tick, rounding=ROUND_FLOOR)
    return (first_touch - offset).quantize(tick, rounding=ROUND_CEILING)


def first_attempt_room(first_touch: Decimal, move_ticks: int | None, max_slippage_bps: Decimal,
                       tick: Decimal) -> int:
    """Ticks attempt 1 goes beyond the touch: the market's recent move over one taker speed bump
    (`move_ticks`, None when unknown), at most `ROOM_SHARE` of the slippage budget."""
    if not move_ticks or move_ticks <= 0:
        return 0
    budget_ticks = first_touch * Decimal(max_slippage_bps) / BPS * ROOM_SHARE / tick
    return min(move_ticks, int(budget_ticks.to_integral_value(rounding=ROUND_FLOOR)))


def chase_step(first_touch: Decimal, max_slippage_bps: Decimal, tick: Decimal, retry_times: int,
               room_ticks: int = 0) -> Decimal:
    """How far each attempt widens beyond the last: whole ticks, at least one, the last one at the cap."""
    if retry_times <= 1:
        return tick
    budget = first_touch * Decimal(max_slippage_bps) / BPS - room_ticks * tick
    per_attempt = (budget / (retry_times - 1)).quantize(tick, rounding=ROUND_FLOOR)
    return max(per_attempt, tick)


def attempt_price(
    side: Side,
    touch: Decimal,
    attempt: int,
    first_touch: Decimal,
    max_slippage_bps: Decimal,
    tick: Decimal,
    retry_times: int,
    room_ticks: int = 0,
) -> Decimal:
    """The IOC limit price of `attempt` (1-based of `retry_times`) given the touch read just before it;
    `room_ticks` is attempt 1's room (`first_attempt_room`), kept for the whole chase."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    step = chase_step(first_touch, max_slippage_bps, tick, retry_times, room_ticks)
    widen = room_ticks * tick + step * (attempt - 1)
    limit = slippage_limit(side, first_touch, max_slippage_bps, tick)
    if side is Side.BUY:
        return min(touch + widen, limit)
    return max(touch - widen, limit)


def resumed_first_touch(side: Side, first_limit: Decimal, max_slippage_bps: Decimal,
                        tick: Decimal) -> Decimal:
    """The first touch a resumed chase counts its cap from, knowing only attempt 1's limit: the lowest touch
    (a buy; a sell: the highest) that limit can have been priced from with the largest room."""
    room_share = Decimal(max_slippage_bps) / BPS * ROOM_SHARE
    if side is Side.BUY:  # limit = touch + room, room <= touch * room_share
        return (first_limit / (1 + room_share)).quantize(tick, rounding=ROUND_CEILING)
    return (first_limit / (1 - room_share)).quantize(tick, rounding=ROUND_FLOOR)


def touch_price(side: Side, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
    """Where a taker on `side` starts: the best ask for a buy, the best bid for a sell (None: empty side)."""
    return best_ask if side is Side.BUY else best_bid


def out_of_reach(side: Side, touch: Decimal, bound: Decimal) -> bool:
    """True when a limit `bound` (the worst an IOC on `side` may have) leaves nothing to take at the touch."""
    return touch < bound if side is Side.SELL else touch > bound


def clamp(side: Side, price: Decimal, bound: Decimal | None) -> Decimal:
    """`price`, no worse than `bound` for a taker on `side` (None: no bound)."""
    if bound is None:
        return price
    return max(price, bound) if side is Side.SELL else min(price, bound)


def end_repeats(end_reason: EndReason | None) -> bool:
    """True when an IOC ended for a reason that another attempt would repeat (not enough margin)."""
    return end_reason in REPEATING_END_REASONS


def is_reduce_only(side: Side, position: Decimal, size: Decimal) -> bool:
    """Reduce-only when the hedge shrinks B's `position` (signed) by no more than its size (no flip)."""
    if side is Side.BUY:
        return position < 0 and size <= -position
    return position > 0 and size <= position


def average_price(fills: Iterable[tuple[Decimal, Decimal]]) -> Decimal | None:
    """Size-weighted average of (size, price) pairs; None when nothing filled."""
    total_size = Decimal(0)
    total_quote = Decimal(0)
    for size, price in fills:
        total_size += size
        total_quote += size * price
    if total_size == 0:
        return None
    return total_quote / total_size

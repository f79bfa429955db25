"""One IOC chase, shared by B's hedge and `hedgectl clear`'s close of a position.

Each attempt reads the touch, prices the IOC (`hedge_strategy.chase`: attempt 1 at the touch plus room for
the taker speed bump, the market's recent move over one bump as the adapter measures it from its book stream;
each next one wider by an equal share of what is left of `max_slippage_bps` in whole ticks, at least one tick,
never beyond the cap from the first attempt's touch), decides reduce-only, sends it through the executor and
waits for its end with every fill. It stops when the size is filled; when the attempts run out; on a refusal
retrying cannot fix (clear, whose second round is for that: on any refusal); on an end another attempt would
repeat (`chase.end_repeats`: margin); when an attempt is left unresolved (never a new attempt while an earlier
one may still fill); and, for clear, when the side to take is empty (B waits that out, at the cost of the
attempt). A chase can continue one a previous process started (a `Chase` holding its orders, with
`first_limit` = attempt 1's limit): numbering and cap go on from them, the cap from the touch that limit can
have come from at worst (`chase.resumed_first_touch`: that touch is not journaled).

Transport trouble never uses up an attempt. A send the venue gave no verdict on about the order is sent
again, as a new order (client order index `coid_for(attempt, re-send)`) at the SAME price step re-read from
the current book, after a backoff (the venue's Retry-After when it sent one), while the chase's transport
budget (`transport_budget_s`: the time spent on such sends and their backoffs, for the whole chase) pays for
the next backoff (so it is overrun by one send's time at most); past it the chase stops ("transport"). Such
a send is a refusal of kind TRANSPORT or NONCE (429 past the sender's own retries, a nonce that could not be
synced), or an order that never reached the venue or that the sequencer dropped (REJECTED "never reached the
exchange" / "accepted, never executed" once looked up by its client order index past the grace); so is a
touch that cannot be read (the stream's book stale and its REST read unanswered: 429s past the read's own
retries, a timeout), after which nothing is sent and the same attempt follows the backoff. An
ambiguous send (no answer, 5xx) is settled by its client order index before anything else is sent
(`OrderExecutor.finish`): found, it is an attempt like any other; a new order is never sent while it may
still fill. An attempt is used up only when the venue answered about the order: it existed and ended
(filled, partly, cancelled, expired), or its send was refused for a reason that is not transport, or the
sequencer refused it after the API accepted it (REJECTED "rejected by the sequencer: ...", tx_verdicts.py:
a price band or margin refusal is the venue's word on that order at that price; settled at once, not after
the grace).

B's hedge takes a `PriceGuard` (`wash_guard.WashGuard`): before each attempt is priced it says the worst limit
the IOC may have so it cannot meet A's resting order; the price is clamped to it, and when the bound leaves
nothing to take at the touch the guard waits (bounded) for A's order to end; past that the attempt is spent
without a send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from loguru import logger

from hedge_strategy import chase as pricing
from hedge_strategy.exchange import (
    MarketInfo,
    RefusalKind,
    SendResult,
    SendStatus,
    Side,
    TopOfBook,
    Traded,
    VenueError,
    describe_coid,
)
from hedge_strategy.exchange.throttle import backoff_delay
from hedge_strategy.execution.journal import Intent, JournalOrder, OrderState
from hedge_strategy.execution.orders import OrderExecutor, OrderKind, OrderSpec
from hedge_strategy.execution.reconcile import NEVER_EXECUTED, NEVER_REACHED

NO_TOUCH_WAIT_S = 0.5
TRANSPORT_BACKOFF_BASE_S = 0.1  # between re-sends after transport trouble: jittered, doubling, up to the cap
TRANSPORT_BACKOFF_CAP_S = 2.0
MAX_RESENDS = 64  # re-sends of one attempt, whatever the budget (B's resume enumerates their indexes)
_TRANSPORT_REFUSALS = frozenset({RefusalKind.TRANSPORT, RefusalKind.NONCE})
_NEVER_THERE = frozenset({NEVER_REACHED, NEVER_EXECUTED})


class PriceGuard(Protocol):
    """Bounds an attempt's limit (see the module docstring); raises when it cannot tell (nothing is sent)."""

    async def bound(self, side: Side, tick: Decimal) -> Decimal | None: ...

    async def wait_unbound(self, side: Side, tick: Decimal) -> Decimal | None: ...


@dataclass(frozen=True)
class ChasePlan:
    """What to chase and the caller's rules. `label` names the attempts in the log: "B hedge" reads
    `B hedge 2/5 IOC sell 0.0002 @ 95000.1`."""

    market: MarketInfo
    side: Side
    size: Decimal
    intent: Intent
    coid_for: Callable[[int, int], int]  # (attempt number, re-send of it: 0 first) -> client order index
    retry_times: int
    max_slippage_bps: Decimal
    label: str
    target: str  # what it is for, in the first attempt's line (B: the request ids)
    request_ids: tuple[str, ...] = ()  # B: the hedge requests served, journaled with every order
    seen_us: int | None = None  # B: when A saw the first fill (µs), for the latency line
    always_reduce_only: bool = False  # clear; else reduce-only when it shrinks the position without a flip
    any_refusal_stops: bool = False  # clear; else only a refusal that retrying cannot fix stops the chase
    no_touch_wait: Callable[[float], Awaitable[object]] | None = None  # B: wait, then the next attempt
    guard: PriceGuard | None = None  # B: keeps the IOC's limit off A's resting order
    # B: A's fills it hedges, which the book may not show yet (`LocalBook.touch_after`): the touch is read
    # without what they consumed, so the first IOC does not aim at a level a fill has just emptied
    traded: tuple[Traded, ...] = ()
    transport_budget_s: float = 0.0  # time for transport trouble (module docstring); 0: it stops the chase
    clock: Callable[[], float] = time.monotonic  # measures the transport budget
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep  # the backoff before a re-send


@dataclass
class Chase:
    """Where a chase stands: the orders sent (the journal's live objects), and why it stopped short."""

    size: Decimal
    attempts: list[JournalOrder] = field(default_factory=list)
    first_touch: Decimal | None = None  # what the cap counts from: set by the first attempt priced here
    room_ticks: int = 0  # attempt 1's room beyond the touch (`chase.first_attempt_room`), kept for the chase
    first_limit: Decimal | None = None  # a resumed chase: attempt 1's limit, whose touch is not journaled
    sent_ms: int | None = None  # when its first order was sent
    failure: str | None = None
    code: int | str | None = None  # the venue's code of a refusal, else no_liquidity, unresolved, not_filled,
    # or the end reason
    fills: list[tuple[Decimal, Decimal]] = field(default_factory=list)  # (size, price), once it is over
    priced: int | None = None  # attempts used up so far (None: one per order in `attempts`, as resumed)
    transport_s: float = 0.0  # spent on transport trouble: its sends and backoffs
    resends: int = 0  # sends after transport trouble, in this chase

    def __post_init__(self) -> None:
        if self.priced is None:
            self.priced = len(self.attempts)

    @property
    def filled(self) -> Decimal:
        return sum((o.filled_size for o in self.attempts), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return max(self.size - self.filled, Decimal(0))

    @property
    def avg_price(self) -> Decimal | None:
        return pricing.average_price(self.fills)

    def stop(self, failure: str, code: int | str | None) -> None:
        self.failure, self.code = failure, code


async def run_chase(orders: OrderExecutor, plan: ChasePlan, chase: Chase | None = None) -> Chase:
    """Chase until a stop condition (module docstring); returns the chase with its fills."""
    chase = chase or Chase(plan.size)
    attempt = (chase.priced or 0) + 1
    resend = 0  # re-sends of this attempt after transport trouble
    while chase.remaining > 0 and chase.failure is None and attempt <= plan.retry_times:
        started = plan.clock()
        try:
            order, result = await _attempt(orders, plan, chase, attempt, resend)
        except BookUnread as unread:  # nothing sent: transport trouble too, the same attempt once it reads
            chase.transport_s += plan.clock() - started
            if not await _back_off(plan, chase, attempt, resend, str(unread), None, resent=False):
                break
            continue
        if order is not None and not order.is_terminal:
            order = await orders.confirm_final(order.client_order_index)
            if not order.is_terminal:
                chase.stop(f"{describe_coid(order.client_order_index)} left {order.state} by the exchange; "
                           "stopped rather than risk trading twice", "unresolved")
                break
        trouble = _transport_trouble(order, result)
        if trouble is not None and chase.failure is None:
            chase.transport_s += plan.clock() - started
            if not await _back_off(plan, chase, attempt, resend, trouble, result):
                break  # the budget is spent: stopped, this attempt not used
            resend += 1
            continue
        chase.priced = attempt
        attempt, resend = attempt + 1, 0
    if chase.remaining > 0 and chase.failure is None:
        chase.stop(f"{plan.retry_times} IOC attempts filled {chase.filled} of {chase.size} (slippage cap "
                   f"{plan.max_slippage_bps} bps)", "not_filled")
    chase.fills = await orders.fill_prices(chase.attempts)
    return chase


def _transport_trouble(order: JournalOrder | None, result: SendResult | None) -> str | None:
    """Why the venue said nothing about this order (a transport event: no attempt used), or None when it did:
    the order existed and ended, or its send was refused for a reason that is not transport."""
    if order is None:
        return None
    if result is not None and result.status is SendStatus.REJECTED:
        refusal = result.refusal
        return result.detail if refusal is not None and refusal.kind in _TRANSPORT_REFUSALS else None
    if order.state is OrderState.REJECTED and order.reason in _NEVER_THERE:
        return f"{describe_coid(order.client_order_index)} {order.reason}"
    return None


async def _back_off(plan: ChasePlan, chase: Chase, attempt: int, resend: int, trouble: str,
                    result: SendResult | None, resent: bool = True) -> bool:
    """Wait before sending attempt `attempt` again; False (the chase stopped) when the transport budget
    cannot pay for the wait, or the attempt was sent again too often. `resent=False`: nothing was sent
    (the book could not be read), so no re-send is counted."""
    asked = result.retry_after_s if result is not None else None
    delay = asked if asked is not None else backoff_delay(resend, TRANSPORT_BACKOFF_BASE_S,
                                                           TRANSPORT_BACKOFF_CAP_S)
    left = plan.transport_budget_s - chase.transport_s
    if delay > left or resend + 1 > MAX_RESENDS:
        chase.stop(f"transport trouble for {chase.transport_s:.1f} s (budget {plan.transport_budget_s:g} s, "
                   f"{chase.resends} re-send(s)), last: {trouble}", "transport")
        return False
    logger.warning("{} {}/{} of {}: transport trouble ({}); sending it again at the same step in {:.2f} s "
                   "({:.1f} s of the {:g} s transport budget left)", plan.label, attempt, plan.retry_times,
                   plan.target, trouble, delay, left - delay, plan.transport_budget_s)
    await plan.sleep(delay)
    chase.transport_s += delay
    chase.resends += int(resent)
    return True


class BookUnread(Exception):
    """The touch could not be read (the stream's book stale and the REST read unanswered: 429s, a timeout):
    nothing was sent, and the chase treats it as transport trouble."""


async def _top_of_book(orders: OrderExecutor, market: MarketInfo, traded: Sequence[Traded]) -> TopOfBook:
    try:
        return await orders.account.top_of_book(market, traded)
    except (VenueError, OSError, TimeoutError) as exc:
        raise BookUnread(f"the {market.symbol} book could not be read ({exc!r})") from exc


async def _attempt(orders: OrderExecutor, plan: ChasePlan, chase: Chase, attempt: int, resend: int
                   ) -> tuple[JournalOrder | None, SendResult | None]:
    """Send attempt `attempt` (its `resend`th re-send) and wait for its end: the order and the venue's answer
    to its send; (None, None) when nothing was sent (no touch)."""
    market, side, size = plan.market, plan.side, chase.remaining
    book = await _top_of_book(orders, market, plan.traded)
    touch = pricing.touch_price(side, book.best_bid, book.best_ask)
    bound = await plan.guard.bound(side, market.tick) if plan.guard is not None else None
    if plan.guard is not None and bound is not None and touch is not None and pricing.out_of_reach(
            side, touch, bound):
        logger.info("{} {}/{} of {}: A's maker order rests at the touch {} ({} no further than {}); waiting "
                    "for it to end", plan.label, attempt, plan.retry_times, plan.target, touch, side, bound)
        bound = await plan.guard.wait_unbound(side, market.tick)
        book = await _top_of_book(orders, market, plan.traded)
        touch = pricing.touch_price(side, book.best_bid, book.best_ask)
        if bound is not None and touch is not None and pricing.out_of_reach(side, touch, bound):
            logger.warning("{} {}/{} of {}: A's maker order still rests at the touch {}; attempt not sent "
                           "(it could only trade with A)", plan.label, attempt, plan.retry_times, plan.target,
                           touch)
            return None, None
    if touch is None:
        empty = f"no {'ask' if side is Side.BUY else 'bid'} in the {market.symbol} book"
        if plan.no_touch_wait is None:
            chase.stop(empty, "no_liquidity")
            return None, None
        logger.warning("{} {}/{} of {}: {}; waiting for one", plan.label, attempt, plan.retry_times,
                       plan.target, empty)
        await plan.no_touch_wait(NO_TOUCH_WAIT_S)
        return None, None
    if chase.first_touch is None:
        chase.first_touch, chase.room_ticks = _anchor(orders, plan, chase, touch)
    price = pricing.clamp(side, pricing.attempt_price(side, touch, attempt, chase.first_touch,
                                                      plan.max_slippage_bps, market.tick, plan.retry_times,
                                                      chase.room_ticks), bound)
    reduce_only = plan.always_reduce_only or pricing.is_reduce_only(side, orders.held(market.market_id), size)
    spec = OrderSpec(plan.coid_for(attempt, resend), plan.intent, market, side, size, price, OrderKind.IOC,
                     reduce_only, request_id=",".join(plan.request_ids) or None, attempt=attempt)
    sent = await orders.submit(spec)
    chase.attempts.append(sent.order)
    what = (f"{plan.label} {attempt}/{plan.retry_times} IOC {side} {size} @ {price}"
            f"{f' (re-send {resend})' if resend else ''}")
    if sent.result is None:
        logger.warning("{}: {} already in the journal; settling it instead of sending", what,
                       describe_coid(spec.coid))
        return sent.order, None
    if chase.sent_ms is None:
        chase.sent_ms = sent.sent_us // 1000
        logger.info("{} for {}: sent_us={} seen_us={} tx {} ({}); {} tick(s) beyond the touch {}", what,
                    plan.target, sent.sent_us, plan.seen_us or "-", (sent.result.tx_hash or "-")[:16],
                    sent.result.status.value, chase.room_ticks, touch)
    if sent.status is SendStatus.REJECTED:
        logger.warning("{} → rejected ({})", what, sent.detail)
        if not sent.result.worth_retrying:
            chase.stop(f"{sent.detail} (retrying cannot fix it)", sent.result.code)
        elif plan.any_refusal_stops and _transport_trouble(sent.order, sent.result) is None:
            chase.stop(sent.detail, sent.result.code)
        return sent.order, sent.result
    done = await orders.finish(spec.coid, attempt)
    avg = orders.average_price(spec.coid)
    logger.info("{} → {} {}{} in {:.0f} ms", what, done.state, done.filled_size,
                f" @ {avg:.{market.price_decimals + 2}f}" if avg is not None else "",
                (time.time_ns() // 1000 - sent.sent_us) / 1000)
    if pricing.end_repeats(done.end_reason):
        chase.stop(f"ended {done.end_reason} (retrying cannot fix it)", str(done.end_reason))
    return done, sent.result


def _anchor(orders: OrderExecutor, plan: ChasePlan, chase: Chase, touch: Decimal) -> tuple[Decimal, int]:
    """(first touch, room in ticks): this touch and the market's recent move over one taker speed bump for a
    new chase; for a resumed one, the touch its attempt 1's limit can have come from at worst, and no room."""
    tick = plan.market.tick
    if chase.first_limit is not None:
        return pricing.resumed_first_touch(plan.side, chase.first_limit, plan.max_slippage_bps, tick), 0
    moved = orders.account.taker_move_ticks(plan.market, pricing.MOVE_SHARE)
    return touch, pricing.first_attempt_room(touch, moved, plan.max_slippage_bps, tick)

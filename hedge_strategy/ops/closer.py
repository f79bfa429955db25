"""One account under the operator's hands for `hedgectl clear`: cancel everything, close a position.

`OperatorAccount` connects the account like A and B do (adapter, journal, tracker, reconciler), but with a
journal of its own (`<journal.dir>/ops/journal_<account>.sqlite`), so a running A or B never meets rows it
did not write. Its orders carry `Role.OPERATOR` / `Purpose.CLOSE` client order indexes numbered by that
journal's `close` sequence: unique across runs, never colliding with A's or B's.

Closing one position is B's IOC chase (`hedge_strategy.chase`): reduce-only IOC orders from the touch
(sell a long from the bid down, buy a short from the ask up), one tick wider each attempt, never beyond
`strategy.max_slippage_bps` from the first touch, up to `strategy.retry_times` attempts. Every order is
journaled before it is sent. A refused send ends the attempt at once (the second round of `clear` is for
that); an order the exchange ended for a reason another attempt would repeat (margin) too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from loguru import logger

from hedge_strategy import chase
from hedge_strategy.bus import now_ms
from hedge_strategy.config import Config, load_secret
from hedge_strategy.exchange import (
    LighterAccount,
    MarketInfo,
    OrderUpdate,
    PositionSnapshot,
    Purpose,
    Role,
    SendStatus,
    Side,
    describe_coid,
    make_coid,
)
from hedge_strategy.execution import (
    Intent,
    Journal,
    JournalOrder,
    OrderState,
    OrderTracker,
    Reconciler,
    new_order,
)
from hedge_strategy.ops.journals import operator_journal_path
from hedge_strategy.ops.venue import new_account, start_timeout_s

CLOSE_SEQUENCE = "close"
CANCEL_ROUNDS = 3  # cancel-all sent at most this often before the orders left are reported


@dataclass
class CloseResult:
    """How one round's try to close one position ended."""

    closed: bool
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    message: str = ""
    code: int | str | None = None
    orders: list[int] = field(default_factory=list)  # client order indexes sent


@dataclass
class CancelResult:
    ok: bool  # nothing rests on the account any more
    left: list[OrderUpdate]
    message: str
    code: int | None = None


class OperatorAccount:
    """Build with `await OperatorAccount.open(config, role)`; `close()` it."""

    def __init__(self, config: Config, role: str, account: LighterAccount, journal: Journal,
                 tracker: OrderTracker, reconciler: Reconciler) -> None:
        self.config = config
        self.role = role
        self.label = role.upper()
        self.account = account
        self.journal = journal
        self.tracker = tracker
        self.reconciler = reconciler

    @classmethod
    async def open(cls, config: Config, role: str) -> OperatorAccount:
        """Connect (raises ConfigError for a missing secret, anything else when the exchange fails)."""
        account = new_account(config, role, load_secret(config, role))
        events = account.subscribe()  # before start: no fill of ours is missed
        try:
            await asyncio.wait_for(account.start(), start_timeout_s(config))
            index = account.account_index
            journal = await Journal.open(operator_journal_path(config, index), index)
        except BaseException:
            await account.close()
            raise
        tracker = OrderTracker(journal, events)
        await tracker.start()
        reconciler = Reconciler(account, journal, tracker, [], config.exchange.unknown_order_grace_s)
        return cls(config, role, account, journal, tracker, reconciler)

    async def close(self) -> None:
        await self.tracker.stop()
        await self.journal.close()
        await self.account.close()

    # ---------------------------------------------------------------- reads (always from the exchange)

    async def positions(self) -> list[PositionSnapshot]:
        held = await self.account.positions()
        return sorted(held.values(), key=lambda p: p.market_id)

    async def open_orders(self) -> list[OrderUpdate]:
        return await self.account.open_orders()

    def market(self, market_id: int) -> MarketInfo:
        return self.account.market_by_id(market_id)

    # ---------------------------------------------------------------- cancel everything

    async def cancel_everything(self) -> CancelResult:
        """cancel-all, then read the open orders until none is left (a few rounds at most)."""
        left = await self.open_orders()
        found = len(left)
        last_error: tuple[str, int | None] | None = None
        for round_no in range(1, CANCEL_ROUNDS + 1):
            if not left and round_no > 1:
                return CancelResult(True, [], f"{found} resting order(s) cancelled")
            # Sent even when REST shows nothing: an order sent a moment ago may not be listed yet.
            result = await self.account.cancel_all()
            if result.status is SendStatus.REJECTED:
                last_error = (result.message, result.code)
                logger.warning("clear {}: cancel-all refused ({}); {} order(s) still resting", self.label,
                               result.detail, len(left))
                if not result.worth_retrying:
                    break
                left = await self.open_orders()
                continue
            logger.info("clear {}: cancel-all sent for {} resting order(s) ({})", self.label, len(left),
                        result.status.value)
            # The open orders are re-read rather than assumed gone: a cancel executes after its answer.
            left = await self._orders_after_cancel()
        if not left:
            return CancelResult(True, [], f"{found} resting order(s) cancelled")
        message, code = last_error or ("orders still resting after cancel-all", None)
        return CancelResult(False, left, f"{len(left)} order(s) still resting: {message}", code)

    async def _orders_after_cancel(self) -> list[OrderUpdate]:
        # A cancel executes after its answer; the stream tells when, REST decides. Bounded by the timeout.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.exchange.request_timeout_s
        while True:
            left = await self.open_orders()
            if not left or loop.time() >= deadline:
                return left
            # A one-shot CLI re-reading the exchange's answer, bounded: the orders may belong to A or B,
            # whose updates this session's tracker does not follow, so there is no local event to wait on.
            await asyncio.sleep(0.1)

    # ---------------------------------------------------------------- close one position

    async def close_position(self, position: PositionSnapshot) -> CloseResult:
        """Chase reduce-only IOCs until the position is flat, the attempts run out, or a send is refused."""
        market = self.market(position.market_id)
        side = Side.SELL if position.size > 0 else Side.BUY
        size = abs(position.size)
        strategy = self.config.strategy
        result = CloseResult(closed=False)
        fills: list[tuple[Decimal, Decimal]] = []
        first_touch: Decimal | None = None
        for attempt in range(1, strategy.retry_times + 1):
            remaining = size - result.filled
            book = await self.account.top_of_book(market)
            touch = chase.touch_price(side, book.best_bid, book.best_ask)
            if touch is None:
                result.message = f"no {'bid' if side is Side.SELL else 'ask'} in the {market.symbol} book"
                result.code = "no_liquidity"
                break
            first_touch = first_touch or touch
            price = chase.attempt_price(side, touch, attempt, first_touch, strategy.max_slippage_bps,
                                        market.tick, strategy.retry_times)
            order, refused = await self._send_ioc(market, side, remaining, price, attempt)
            result.orders.append(order.client_order_index)
            if refused is not None:
                result.message, result.code = refused
                break
            fills += [(f.size, f.price) for f in self.journal.fills_for(order.client_order_index)]
            result.filled += order.filled_size
            if not order.is_terminal:
                result.message = (f"{describe_coid(order.client_order_index)} left {order.state} by the "
                                  "exchange; not chased further rather than risk closing twice")
                result.code = "unresolved"
                break
            if chase.end_repeats(order.end_reason):
                result.message, result.code = f"order ended: {order.end_reason}", order.end_reason
                break
            if result.filled >= size:
                break
        result.avg_price = chase.average_price(fills)
        result.closed = result.filled >= size
        if result.closed:
            result.message = (f"closed: {side.value} {size} @ {result.avg_price} in "
                              f"{len(result.orders)} IOC(s)")
        elif not result.message:
            result.message = (f"{len(result.orders)} IOC attempt(s) filled {result.filled} of {size} "
                              f"(slippage cap {strategy.max_slippage_bps} bps)")
            result.code = "not_filled"
        return result

    async def _send_ioc(self, market: MarketInfo, side: Side, size: Decimal, price: Decimal,
                        attempt: int) -> tuple[JournalOrder, tuple[str, int | None] | None]:
        """One reduce-only IOC, journaled before it is sent; returns it settled, and the refusal if any."""
        coid = make_coid(Role.OPERATOR, Purpose.CLOSE, self.journal.next_sequence(CLOSE_SEQUENCE))
        order = new_order(client_order_index=coid, account_index=self.account.account_index,
                          market_id=market.market_id, intent=Intent.CLOSE, side=side, size=size, price=price,
                          order_type="ioc", now_ms=now_ms(), reduce_only=True)
        await self.journal.record_new(order)  # write-ahead: on disk before the send
        self.journal.mark_sent(coid, now_ms())
        result = await self.account.place_ioc(market, side, size, price, coid, reduce_only=True)
        what = f"clear {self.label}: close IOC {attempt} {side.value} {size} {market.symbol} @ {price}"
        if result.status is SendStatus.REJECTED:
            self.tracker.transition(coid, OrderState.REJECTED, reason=result.detail)
            logger.warning("{} refused: {}", what, result.detail)
            return self.journal.get(coid) or order, (result.message, result.code)
        if result.status is SendStatus.UNKNOWN:
            self.tracker.transition(coid, OrderState.UNKNOWN, reason=result.message)
        settle_s = self.config.exchange.unknown_order_grace_s + self.config.exchange.request_timeout_s
        done = await self.reconciler.confirm_final(coid, timeout=settle_s)
        logger.info("{} -> {} filled {}", what, done.state, done.filled_size)
        return done, None

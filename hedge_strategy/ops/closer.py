"""One account under the operator's hands for `hedgectl clear`: cancel everything, close a position.

`OperatorAccount` connects the account with the wiring A and B use (`execution.connect.open_account`), but
with a journal of its own (`<journal.dir>/ops/journal_<account>.sqlite`), so a running A or B never meets rows
it did not write. Its orders carry `Role.OPERATOR` / `Purpose.CLOSE` client order indexes numbered by that
journal's `close` sequence: unique across runs, never colliding with A's or B's.

Closing one position is B's IOC chase (`execution.chase_loop`), reduce-only: from the touch (sell a long from
the bid down, buy a short from the ask up), each attempt wider by an equal share of
`strategy.max_slippage_bps` in whole ticks, never beyond the cap from the first touch, up to
`strategy.retry_times` attempts. Every order is journaled before it is sent. Unlike B, any refused send ends
the attempt at once (the second round of `clear` is for that), and so does an empty side of the book.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from hedge_strategy.config import Config
from hedge_strategy.exchange import MarketInfo, OrderUpdate, PositionSnapshot, Purpose, Role, SendStatus, Side
from hedge_strategy.execution import Intent, OrderExecutor
from hedge_strategy.execution.chase_loop import ChasePlan, run_chase
from hedge_strategy.execution.connect import open_account, start_timeout_s
from hedge_strategy.ops.journals import operator_journal_path

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

    def __init__(self, config: Config, role: str, orders: OrderExecutor) -> None:
        self.config = config
        self.role = role
        self.label = role.upper()
        self.orders = orders
        self.account = orders.account

    @classmethod
    async def open(cls, config: Config, role: str) -> OperatorAccount:
        """Connect (raises ConfigError for a missing secret, anything else when the exchange fails)."""
        journal_file = operator_journal_path(config, config.accounts[role].account_index)
        orders = await open_account(config, role, journal_file, name=f"clear {role.upper()}",
                                    start_timeout=start_timeout_s(config))
        await orders.tracker.start()
        return cls(config, role, orders)

    async def close(self) -> None:
        await self.orders.close()

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
            result = await self.orders.cancel_all(f"{len(left)} order(s) resting")
            if result.status is SendStatus.REJECTED:
                last_error = (result.message, result.code)
                if not result.worth_retrying:
                    break
                left = await self.open_orders()
                continue
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
        plan = ChasePlan(
            market=market, side=side, size=size, intent=Intent.CLOSE,
            coid_for=lambda _attempt, _resend: self.orders.next_coid(Role.OPERATOR, Purpose.CLOSE,
                                                                     CLOSE_SEQUENCE),
            retry_times=strategy.retry_times, max_slippage_bps=strategy.max_slippage_bps,
            label=f"clear {self.label}: close",
            target=f"{market.symbol} {'long' if side is Side.SELL else 'short'} {size}",
            always_reduce_only=True, any_refusal_stops=True, transport_budget_s=strategy.transport_budget_s)
        done = await run_chase(self.orders, plan)
        result = CloseResult(closed=done.remaining == 0, filled=done.filled, avg_price=done.avg_price,
                             message=done.failure or "", code=done.code,
                             orders=[o.client_order_index for o in done.attempts])
        if result.closed:
            result.message = (f"closed: {side.value} {size} @ {result.avg_price} in {len(result.orders)} "
                              "IOC(s)")
        return result

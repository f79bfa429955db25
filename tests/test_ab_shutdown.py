"""SIGTERM with work in flight: B finishes the hedge in hand and acknowledges it; A waits (bounded) for the
outcome of its outstanding hedge. Both exit 0, nothing left pending. The taker speed bump keeps B's IOC in
flight long enough for the signal to land in the middle of it."""

from __future__ import annotations

import signal
from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory

SLOW_TAKER = {"speed_bumps": {"enabled": True, "premium": {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 2500}}}


async def test_sigterm_to_b_mid_hedge_finishes_it_publishes_and_exits_0(ab_factory: ABFactory) -> None:
    ab = await ab_factory(SLOW_TAKER, shutdown_wait_s=8)
    b = await ab.start("b", in_process=False)
    await ab.logs.wait(r"B ready")
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy")
    await ab.fill_a("sell")
    await ab.logs.wait(r"B hedge 1/5 IOC sell .* sent_us=")  # the IOC sits in the 2.5 s speed bump
    await b.send(signal.SIGTERM)

    assert await b.wait() == 0
    assert ab.logs.matching(r"B stopping: finishing the hedge in hand")
    assert ab.logs.matching(r"B hedged .*outcome published, 1 acknowledged")
    assert ab.logs.matching(r"B stopped: 1 hedges done this run")
    assert not ab.logs.matching(r"left unacknowledged")
    assert await ab.bus.pending_count() == 0
    await ab.logs.wait(r"^A: B hedged")  # A has its outcome
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1


async def test_sigterm_to_a_with_a_hedge_outstanding_waits_for_it_and_exits_0(ab_factory: ABFactory) -> None:
    ab = await ab_factory(SLOW_TAKER, shutdown_wait_s=8)
    await ab.start_b()
    await ab.logs.wait(r"^B ready")
    a = await ab.start("a", in_process=False)
    await ab.logs.wait(r"\| A \| .* - A placed post-only buy")
    await ab.fill_a("sell")
    await ab.logs.wait(r"\| A \| .* - A fill .*hedge request \S+ published")
    await ab.logs.wait(r"^B hedge 1/5 IOC sell .* sent_us=")  # B's IOC is in the speed bump
    await a.send(signal.SIGTERM)

    assert await a.wait() == 0
    said = "\n".join(ab.logs.lines)
    assert "A stopping: waiting up to 8 s for B's outcome of" in said
    assert "- A: B hedged" in said
    assert "A stopped cleanly" in said
    assert "unconfirmed" not in said
    assert await ab.bus.pending_count() == 0
    assert await ab.open_orders(A_ACCOUNT) == []
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")

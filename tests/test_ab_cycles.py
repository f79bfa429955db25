"""Full open/close cycles through A and B: every fill hedged once, A + B flat at every quiet point."""

from __future__ import annotations

from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory


async def test_forced_fills_open_and_close_flat(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy 0\.00020? ")
    await ab.fill_a("sell")
    await ab.logs.wait(r"^A: B hedged")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    await ab.logs.wait(r"^A placed post-only sell 0\.00020? .*reduce-only")
    await ab.fill_a("buy")
    await ab.logs.wait(r"^A: B hedged", count=2)
    assert await ab.position(A_ACCOUNT) == 0
    assert await ab.position(B_ACCOUNT) == 0

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


async def test_market_flow_full_cycles_end_flat(ab_factory: ABFactory) -> None:
    flow = {"enabled": True, "volatility_bps": 0.3, "taker_rate_per_s": 1.5, "liquidity_size": "0.5",
            "liquidity_levels": 10, "liquidity_spacing_ticks": 2}
    ab = await ab_factory({"flow": flow})
    b = await ab.start_b()
    a = await ab.start_a()
    await ab.logs.wait(r"^A: B hedged", count=4, timeout_s=90)  # two open/close cycles
    assert await a.stop() == 0
    assert await b.stop() == 0
    a_size, b_size = await ab.position(A_ACCOUNT), await ab.position(B_ACCOUNT)
    assert a_size + b_size == 0, (a_size, b_size)
    assert await ab.open_orders(A_ACCOUNT) == []
    assert not ab.logs.matching(r"residual hedge request|PAUSED|not flat")  # flat at every quiet point
    assert await ab.bus.get_pause() is None

"""Full open/close cycles through A and B: every fill hedged once, A + B flat at every quiet point."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory


async def test_forced_fills_open_and_close_flat(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0002"), reduce_only=False)
    await ab.fill_a("sell")
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    await ab.events.wait("a", "order_placed", side="sell", size=Decimal("0.0002"), reduce_only=True)
    await ab.fill_a("buy")
    await ab.events.wait("a", "hedge_outcome_received", count=2, state="filled")
    assert await ab.position(A_ACCOUNT) == 0
    assert await ab.position(B_ACCOUNT) == 0


async def test_market_flow_full_cycles_end_flat(ab_factory: ABFactory) -> None:
    flow = {"enabled": True, "volatility_bps": 0.3, "taker_rate_per_s": 1.5, "liquidity_size": "0.5",
            "liquidity_levels": 10, "liquidity_spacing_ticks": 2}
    ab = await ab_factory({"flow": flow})
    b = await ab.start_b()
    a = await ab.start_a()
    await ab.events.wait("a", "hedge_outcome_received", count=4, timeout_s=90, state="filled")  # two cycles
    assert await a.stop() == 0
    assert await b.stop() == 0
    a_size, b_size = await ab.position(A_ACCOUNT), await ab.position(B_ACCOUNT)
    assert a_size + b_size == 0, (a_size, b_size)
    assert await ab.open_orders(A_ACCOUNT) == []
    # Flat at every quiet point: no residual, no pause, no imbalance left unexplained.
    assert not ab.events.matching("a", "hedge_request_published", reason="residual")
    assert not ab.events.matching("a", "pause_set")
    assert not ab.events.matching("a", "hedge_unconfirmed")
    assert await ab.bus.get_pause() is None


async def test_a_and_b_on_one_shared_budget_hedge_as_usual(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    ab.config = replace(ab.config, exchange=replace(ab.config.exchange, shared_budget=True))
    budget_key = ab.bus.keys.budget("rest")
    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy", size=Decimal("0.0002"), reduce_only=False)
    await ab.fill_a("sell")
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    assert await ab.position(A_ACCOUNT) + await ab.position(B_ACCOUNT) == 0
    # Both processes took their REST reads and sends from the one budget in Redis, below its capacity.
    tokens = await ab.bus.redis.hget(budget_key, "tokens")
    assert tokens is not None and float(tokens) < 24_000 / 6

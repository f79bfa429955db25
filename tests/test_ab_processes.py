"""main_A.py and main_B.py as real processes: bad config, SIGTERM, and B killed in the middle of a hedge."""

from __future__ import annotations

import signal
from decimal import Decimal

import yaml

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory, LogLines, spawn_child


async def test_bad_config_exits_2_naming_the_key(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    body = yaml.safe_load(ab.config_path.read_text())
    body["strategy"]["retry_times"] = "many"
    body["strategy"]["colour"] = "blue"
    bad = ab.workdir / "bad.yaml"
    bad.write_text(yaml.safe_dump(body))
    for role in ("a", "b"):
        logs = LogLines()
        child = await spawn_child(role, bad, logs)
        assert await child.wait() == 2
        said = "\n".join(logs.lines)
        assert "strategy.retry_times" in said and "strategy.colour: unknown key" in said, said
    logs = LogLines()
    child = await spawn_child("a", ab.config_path, logs, "--depth", "0")  # a bad override names its key too
    assert await child.wait() == 2
    assert "strategy.depth" in "\n".join(logs.lines)


async def test_sigterm_leaves_no_resting_maker_order_and_both_exit_0(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    b = await ab.start("b", in_process=False)
    await ab.logs.wait(r"\| B \| .* - B ready")
    a = await ab.start("a", in_process=False)
    await ab.logs.wait(r"\| A \| .* - A placed post-only buy")
    assert len(await ab.open_orders(A_ACCOUNT)) == 1

    assert await a.stop(signal.SIGTERM) == 0
    assert await ab.open_orders(A_ACCOUNT) == []
    assert ab.logs.matching(r"A stopped cleanly")
    assert await b.stop(signal.SIGTERM) == 0
    assert ab.logs.matching(r"B stopped: 0 hedges")
    assert await ab.bus.heartbeat("b") is None  # B removed its heartbeat on the way out


async def test_b_killed_mid_hedge_is_resumed_without_a_double_hedge(ab_factory: ABFactory) -> None:
    bumps = {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 2500}
    slow_taker = {"speed_bumps": {"enabled": True, "premium": bumps}}
    ab = await ab_factory(slow_taker)
    b = await ab.start("b", in_process=False)
    await ab.logs.wait(r"B ready")
    await ab.start_a()
    await ab.logs.wait(r"^A placed post-only buy")
    await ab.fill_a("sell")
    await ab.logs.wait(r"B hedge 1/5 IOC sell .* sent_us=")  # the IOC sits in the 2.5 s taker speed bump
    await b.kill()  # SIGKILL: no chance to finish or acknowledge

    await ab.start("b", in_process=False)
    await ab.logs.wait(r"were already being hedged \(1 attempt\(s\) in the journal\)")
    await ab.logs.wait(r"^A: B hedged")
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # exactly one hedge order ever reached the exchange

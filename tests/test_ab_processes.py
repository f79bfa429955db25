"""main_A.py and main_B.py as real processes: bad config, SIGTERM, and B killed in the middle of a hedge."""

from __future__ import annotations

import signal
from decimal import Decimal

import yaml

from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory, spawn_child
from tests.fixtures.watch import LogLines


async def test_bad_config_exits_2_naming_the_key(ab_factory: ABFactory) -> None:
    """What the operator reads on stderr (the process exits before it has anything else to say)."""
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
    logs = LogLines()
    nowhere = ab.workdir / "no" / "such.jsonl"  # its directory does not exist
    child = await spawn_child("b", ab.config_path, logs, "--events-file", str(nowhere))
    assert await child.wait() == 2
    assert "--events-file: cannot open" in "\n".join(logs.lines)


async def test_sigterm_leaves_no_resting_maker_order_and_both_exit_0(ab_factory: ABFactory) -> None:
    ab = await ab_factory()
    # Both start at once (each process spends seconds importing lighter-sdk): A places only once B beats.
    b = await ab.start("b", in_process=False)
    a = await ab.start("a", in_process=False)
    await ab.events.wait("b", "ready")
    await ab.events.wait("a", "order_placed", side="buy")
    assert len(await ab.open_orders(A_ACCOUNT)) == 1
    # The line the README quotes, as a real process writes it: time | level | role | where - what.
    await ab.logs.wait(r"^\S+ \S+ \| INFO     \| A \| hedge_strategy\.maker:_place:\d+ - "
                       r"A placed post-only buy 0\.0002 @ [\d.]+ \(A/maker#\d+\)$")

    assert await a.stop(signal.SIGTERM) == 0
    assert await ab.open_orders(A_ACCOUNT) == []
    assert ab.events.matching("a", "stopped", reason="cleanly")
    assert await b.stop(signal.SIGTERM) == 0
    assert ab.events.matching("b", "stopped", reason="cleanly", count=0)
    assert await ab.bus.heartbeat("b") is None  # B removed its heartbeat on the way out


async def test_b_killed_mid_hedge_is_resumed_without_a_double_hedge(ab_factory: ABFactory) -> None:
    bumps = {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 2500}
    slow_taker = {"speed_bumps": {"enabled": True, "premium": bumps}}
    ab = await ab_factory(slow_taker)
    b = await ab.start("b", in_process=False)
    await ab.start_a()  # while B starts: A places only once B beats
    await ab.events.wait("b", "ready")
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    (sent,) = await ab.events.wait("b", "hedge_attempt", attempt=1, side="sell")  # in the 2.5 s speed bump
    await b.kill()  # SIGKILL: no chance to finish or acknowledge

    await ab.start("b", in_process=False)
    await ab.events.wait("b", "hedge_resumed", request_ids=sent.request_ids, count=1)  # 1 attempt journaled
    await ab.events.wait("a", "hedge_outcome_received", state="filled", request_ids=sent.request_ids)
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert len(await ab.create_orders(B_ACCOUNT)) == 1  # exactly one hedge order ever reached the exchange

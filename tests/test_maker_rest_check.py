"""A's REST look at its resting order while its account stream brings no news (`maker_rest_check.py`), fast:
the fake executor's stream is down until a time of the test's clock, and its REST look finds the fills the
test scripts (`fixtures/fake_orders.py`). The same runs against the simulator's silence in test_ab_silence.py.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from itertools import pairwise

import pytest

from hedge_strategy.bus import FILLED, HedgeOutcome, now_ms
from hedge_strategy.exchange.throttle import resting_check_interval_s
from hedge_strategy.maker_rest_check import MISSED_AFTER_S, PROBE_WAIT_S
from hedge_strategy.task_end import end_tasks
from tests.fixtures.fake_orders import UnitFactory, UnitKit, a_with_b_up

WAIT_S = 5.0  # bound on every wait for something that happens at once
PART = Decimal("0.0001")


def interval_s(kit: UnitKit) -> float:
    """The pace the tier's budget sets (the unit config leaves it unset)."""
    assert kit.config.exchange.resting_check_interval_s is None
    return resting_check_interval_s(kit.config.exchange.tier, kit.config.exchange.shared_budget)


async def test_with_the_stream_down_a_fill_found_by_rest_is_hedged_once(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    maker.hedges.outbox.start()  # what start-up does: the outbox publishes what on_fill records
    start = kit.clock.now
    kit.orders.stream_down_until = math.inf
    kit.orders.rest_fills = [(start + 2.5 * interval_s(kit), PART)]  # made between the 2nd and 3rd looks
    cycle = asyncio.create_task(maker.cycle())

    (published,) = await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    assert published.reason == "fill" and published.size == PART
    await kit.peer.publish_outcome(HedgeOutcome(
        pair=kit.config.pair, request_ids=published.request_ids, status=FILLED, market="BTC", side="sell",
        requested_size=PART, filled_size=PART, avg_price=Decimal("94998"), attempts=1, reason=None,
        hedge_client_order_indexes=(), received_ts_ms=now_ms(), sent_ts_ms=now_ms(), filled_ts_ms=now_ms(),
        latency_ms=1.0))
    await asyncio.wait_for(cycle, WAIT_S)

    (sent,) = kit.orders.sent
    looks = [at - start for at, coid in kit.orders.rest_checks if coid == sent.coid]
    assert looks == pytest.approx([interval_s(kit), 2 * interval_s(kit), 3 * interval_s(kit)])
    checked = kit.events.matching("a", "resting_checked", coid=sent.coid)
    assert [e.count for e in checked] == [0, 0, 1]
    assert checked[-1].reason == "account stream down"
    assert kit.orders.account.stream_restarts == []  # down already: nothing to leave
    assert len(kit.events.matching("a", "hedge_request_published")) == 1  # handed over once
    ((coid, why),) = kit.orders.cancelled  # the remainder, at once, as after a streamed fill
    assert coid == sent.coid and why.startswith("partly filled")


async def test_a_stream_up_but_silent_that_missed_a_fill_is_left_at_once(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    maker.hedges.outbox.start()
    start = kit.clock.now
    kit.orders.stream_silent_from = start  # up, but not a frame since the order was placed
    kit.orders.rest_fills = [(start + 0.1, PART)]  # found at the first look, a second or more later
    cycle = asyncio.create_task(maker.cycle())

    await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    (checked,) = kit.events.matching("a", "resting_checked")
    assert checked.count == 1 and checked.reason is not None and "no frame" in checked.reason
    # Asked first whether it is alive: a ping left unanswered for the probe's wait, then the REST look.
    assert [at - start for at in kit.orders.probes] == pytest.approx([interval_s(kit)])
    assert [at - start for at, _ in kit.orders.rest_checks] == pytest.approx([interval_s(kit) + PROBE_WAIT_S])
    assert interval_s(kit) - 0.1 >= MISSED_AFTER_S
    # Up, yet it missed a fill: its connection is left now, not a heartbeat later.
    (why,) = kit.orders.account.stream_restarts
    assert "missed a fill" in why
    # It waits for B's outcome now: not this test's business. Ended as `task_end` ends a task: a cancel that
    # lands as a Redis call completes is lost (the cycle then waited out B's outcome, 5 s).
    await end_tasks([cycle], "test")


async def test_a_fill_younger_than_a_second_may_still_be_on_its_way(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    maker = kit.maker()
    maker.hedges.outbox.start()
    start = kit.clock.now
    kit.orders.stream_silent_from = start
    # Half a second before the first look (which follows the unanswered ping's wait).
    kit.orders.rest_fills = [(start + interval_s(kit) + PROBE_WAIT_S - 0.5, PART)]
    cycle = asyncio.create_task(maker.cycle())
    await kit.events.wait("a", "hedge_request_published", timeout_s=WAIT_S)
    assert kit.orders.account.stream_restarts == []  # no proof that the stream is dead: it is kept
    # It waits for B's outcome now: not this test's business. Ended as `task_end` ends a task: a cancel that
    # lands as a Redis call completes is lost (the cycle then waited out B's outcome, 5 s).
    await end_tasks([cycle], "test")


async def test_checks_stop_when_the_stream_speaks_again(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    kit.orders.stream_down_until = start + 4.5 * interval_s(kit)
    await kit.maker().cycle()

    (sent,) = kit.orders.sent
    looks = [at - start for at, _ in kit.orders.rest_checks]
    assert looks == pytest.approx([k * interval_s(kit) for k in (1, 2, 3, 4)])  # none once the stream is back
    assert [e.count for e in kit.events.matching("a", "resting_checked")] == [0, 0, 0, 0]
    # The maker timeout still cancels it (the cancel is a transaction: it does not need the stream).
    assert kit.orders.cancelled == [(sent.coid, "older than 60 s")]


async def test_a_quiet_stream_that_answers_a_ping_costs_no_rest_look(unit_factory: UnitFactory) -> None:
    # A quiet market: the venue sends A's account nothing while the order rests, but the connection is alive.
    kit = await a_with_b_up(unit_factory)
    start = kit.clock.now
    kit.orders.stream_silent_from = start
    kit.orders.stream_answers_pings = True
    await kit.maker().cycle()

    (sent,) = kit.orders.sent
    assert kit.orders.rest_checks == []  # not one REST read spent on the quiet spell
    probes = [at - start for at in kit.orders.probes]
    assert len(probes) >= 3 and probes[0] == pytest.approx(interval_s(kit))
    assert all(later - earlier == pytest.approx(interval_s(kit)) for earlier, later in pairwise(probes))
    assert kit.events.matching("a", "resting_checked") == []
    assert kit.orders.cancelled == [(sent.coid, "older than 60 s")]


async def test_a_live_stream_costs_no_rest_look(unit_factory: UnitFactory) -> None:
    kit = await a_with_b_up(unit_factory)
    await kit.maker().cycle()
    assert len(kit.orders.sent) == 1 and kit.orders.rest_checks == []

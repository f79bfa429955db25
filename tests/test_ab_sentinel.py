"""Redis Sentinel (`redis.sentinels`, `redis.service_name`): A, B and hedgectl reach whichever server is the
master, and a failover (`SENTINEL FAILOVER`: the replica promoted, the old master demoted) loses nothing:
the bus goes on, and a pair trading through the failover hedges every fill once and ends flat.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal

from hedge_strategy.bus import Bus, HedgeOutcome, HedgeRequest, now_ms
from hedge_strategy.config import RedisConfig
from tests.fixtures.ab import A_ACCOUNT, B_ACCOUNT, ABFactory
from tests.fixtures.redis import SentinelSet
from tests.fixtures.sim import REPO_ROOT

UNUSED_URL = "redis://127.0.0.1:1/0"  # through Sentinel only the database number (and password) are used


def sentinel_settings(setup: SentinelSet) -> dict[str, object]:
    return {"url": UNUSED_URL, "sentinels": setup.sentinels, "service_name": setup.service}


def make_request(trade_id: int) -> HedgeRequest:
    return HedgeRequest.for_fills(pair="demo", market="BTC", market_id=1, a_fill_side="buy",
                                  size=Decimal("0.0002"), a_client_order_index=11000000000001,
                                  trade_ids=[trade_id], a_fill_price=Decimal("95000"), fill_ts_ms=now_ms())


async def test_the_bus_goes_on_through_a_failover(sentinel_redis: SentinelSet) -> None:
    bus = Bus.from_config(RedisConfig(**sentinel_settings(sentinel_redis)), "demo")  # type: ignore[arg-type]
    try:
        await bus.ensure_group()
        await bus.claim_epoch("marker")
        pause = await bus.set_pause("before the failover", by="ctl")
        await bus.publish_request(make_request(1))
        [first] = await bus.read_requests("b-1", block_ms=None)
        before = await bus.probe()

        new_master = await sentinel_redis.failover()

        await bus.publish_request(make_request(2))  # to the new master: the demoted one refuses writes
        [second] = await bus.read_requests("b-1", block_ms=None)
        outcome = HedgeOutcome.unhedged(second.request, "answered by the test")
        await bus.publish_outcome(outcome, ack=[first, second])
        after = await bus.probe()
        assert second.request.request_id == "11000000000001-2"
        assert after.run_id != before.run_id  # another server answers now...
        assert after.epoch == "marker" and after.group_exists and after.pause == pause  # ...with the data
        # Every request is there (a write retried across the failover may be there twice: B dedups by id).
        stream = await bus.redis.xrange(bus.keys.requests)
        in_stream = {HedgeRequest.from_json(fields[b"data"]).request_id for _, fields in stream}
        assert in_stream == {"11000000000001-1", "11000000000001-2"}, stream
        assert await bus.pending_count() == 0
        stored = await bus.get_outcome("11000000000001-2")
        assert stored is not None and stored.reason == "answered by the test"
        assert bus.redis.connection_pool.connection_kwargs.get("port") in (None, new_master)
    finally:
        await bus.aclose()


B_JUDGED_AFTER_S = 30


async def test_a_pair_trading_through_a_failover_hedges_every_fill_once(
    sentinel_redis: SentinelSet, ab_factory: ABFactory
) -> None:
    ab = await ab_factory(redis_url=UNUSED_URL, redis=sentinel_settings(sentinel_redis))
    await ab.start_b()
    await ab.events.wait("b", "ready")
    # B's beats stop while its client finds the new master; past A's TTL, A would cancel its resting order
    # (`maker_b_watch`, right on a real outage). This test is about a fill through the failover: a long TTL.
    await ab.start_a(heartbeat_ttl_s=B_JUDGED_AFTER_S)
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    await ab.events.wait("a", "hedge_outcome_received", side="sell", state="filled")
    await ab.events.wait("a", "order_placed", side="sell")

    await sentinel_redis.failover()  # while A's closing order rests
    (noticed,) = await ab.events.wait("a", "bus_data_lost")
    assert "run id changed" in (noticed.reason or "") and "data is gone" not in (noticed.reason or "")
    await ab.fill_a("buy")
    await ab.events.wait("a", "hedge_outcome_received", side="buy", state="filled")
    await ab.events.wait("a", "order_placed", side="buy", count=2)  # flat again: the next cycle opens
    assert await ab.position(A_ACCOUNT) == 0 and await ab.position(B_ACCOUNT) == 0
    assert len(await ab.create_orders(B_ACCOUNT)) == 2  # two fills, two hedges
    assert not ab.events.matching("a", "pause_set")

    status = await asyncio.create_subprocess_exec(  # hedgectl through the sentinels too
        sys.executable, "-m", "hedge_strategy.ctl", "status", "--json", "--redis-only", "--config",
        str(ab.config_path), cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(status.communicate(), 60)
    assert status.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["redis"].startswith(f"Sentinel service '{sentinel_redis.service}' via 127.0.0.1:")
    assert report["heartbeats"]["a"]["alive"] and report["heartbeats"]["b"]["alive"]

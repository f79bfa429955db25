"""Bus behaviour that needs a real redis-server: key expiry, a Redis that lost its data, one that is down."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from hedge_strategy.bus import Bus, HedgeRequest, now_ms
from tests.fixtures.procs import free_port
from tests.fixtures.redis import start_redis_server, stop_redis_server

WAIT_S = 5.0


def make_request(trade_id: int) -> HedgeRequest:
    return HedgeRequest.for_fills(
        pair="demo",
        market="BTC",
        market_id=1,
        a_fill_side="sell",
        size=Decimal("0.0002"),
        a_client_order_index=11000000000001,
        trade_ids=[trade_id],
        a_fill_price=Decimal("95000"),
        fill_ts_ms=now_ms(),
    )


async def test_heartbeat_expires_after_its_ttl(redis_client: aioredis.Redis) -> None:
    bus = Bus(redis_client, "demo")
    # Redis announces the expiry as an event: wait on that rather than sleeping past the TTL.
    await redis_client.config_set("notify-keyspace-events", "Ex")
    pubsub = redis_client.pubsub()
    try:
        await pubsub.subscribe("__keyevent@0__:expired")
        await pubsub.get_message(timeout=WAIT_S)  # the subscribe confirmation
        await bus.beat("B", ttl_s=0.2, info={"pending": 0})
        assert (await bus.heartbeat("B") or {}).get("pending") == 0

        async def expired_key() -> str:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=WAIT_S)
                if message is not None:
                    return str(message["data"])

        assert await asyncio.wait_for(expired_key(), WAIT_S) == bus.keys.heartbeat("B")
        assert await bus.heartbeat("B") is None
    finally:
        await pubsub.aclose()
        await redis_client.config_set("notify-keyspace-events", "")


async def test_reader_recreates_the_group_when_redis_lost_its_data(redis_client: aioredis.Redis) -> None:
    bus = Bus(redis_client, "demo")
    await bus.ensure_group()
    await redis_client.flushdb()  # a Redis restarted without persistence
    assert await bus.read_requests("b-1", block_ms=None) == []
    await bus.publish_request(make_request(1))
    assert [d.request.request_id for d in await bus.read_requests("b-1", block_ms=None)] == [
        "11000000000001-1"
    ]
    assert await bus.pending_count() == 1


async def test_non_utf8_entry_is_dead_lettered_by_a_from_url_bus(
    redis_server: str, redis_client: aioredis.Redis
) -> None:
    bus = Bus.from_url(redis_server, "demo")
    try:
        await bus.ensure_group()
        await bus.redis.xadd(bus.keys.requests, {b"data": b"\xff\xfe not text"})
        await bus.publish_request(make_request(2))
        deliveries = await bus.read_requests("b-1", block_ms=None)
        assert [d.request.request_id for d in deliveries] == ["11000000000001-2"]
        [letter] = await bus.dead_letters()
        assert "not JSON" in letter.reason and letter.fields["data"].endswith("not text")
    finally:
        await bus.aclose()


async def test_redis_down_raises_connection_error_for_the_caller_to_retry() -> None:
    port = free_port()
    server = start_redis_server(port)
    bus = Bus.from_url(f"redis://127.0.0.1:{port}/0", "demo")
    try:
        await bus.set_pause("before the outage", by="test")
        stop_redis_server(server)
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(bus.publish_request(make_request(3)), 30)
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(bus.get_pause(), 30)
    finally:
        stop_redis_server(server)
        await bus.aclose()

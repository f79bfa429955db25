"""What A reads to notice a Redis that lost its data (`bus.audit`), the pause set as it was, the wait for a
held B, and the client every process builds from the `redis:` settings (`bus.connect`); on a real
redis-server, with raw-bytes replies (as the bots read them) and decoded ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from hedge_strategy.bus import Bus, HedgeRequest, PauseState, now_ms
from hedge_strategy.bus.connect import client_options, describe_redis, open_redis
from hedge_strategy.config import RedisConfig
from tests.fixtures.redis import RedisProcess

HELD = PauseState(reason="test", by="ctl", since_ms=1_000)


def make_request(trade_id: int) -> HedgeRequest:
    return HedgeRequest.for_fills(pair="demo", market="BTC", market_id=1, a_fill_side="buy",
                                  size=Decimal("0.0002"), a_client_order_index=11000000000001,
                                  trade_ids=[trade_id], a_fill_price=Decimal("95000"), fill_ts_ms=now_ms())


@pytest.fixture(params=["bytes", "decoded"])
async def bus(request: pytest.FixtureRequest, redis_server: str,
              redis_client: aioredis.Redis) -> AsyncIterator[Bus]:
    """A bus on the session's server (flushed by `redis_client`), reading raw bytes or decoded text."""
    if request.param == "decoded":
        yield Bus(redis_client, "demo")
        return
    raw = Bus.from_url(redis_server, "demo")
    try:
        yield raw
    finally:
        await raw.aclose()


async def test_probe_of_an_empty_redis_then_of_one_a_has_used(bus: Bus) -> None:
    empty = await bus.probe()
    assert len(empty.run_id) == 40 and empty.epoch is None and not empty.group_exists and empty.pause is None

    assert await bus.claim_epoch("first") == "first"
    assert await bus.claim_epoch("second") == "first"  # the marker in place is kept
    await bus.ensure_group()
    pause = await bus.set_pause("why", by="ctl")
    used = await bus.probe()
    assert (used.run_id, used.epoch, used.group_exists, used.pause) == (empty.run_id, "first", True, pause)

    await bus.redis.flushdb()  # data gone, same server
    flushed = await bus.probe()
    assert flushed.run_id == empty.run_id and flushed.epoch is None and not flushed.group_exists


async def test_probe_names_the_requests_gone_from_the_stream(bus: Bus) -> None:
    kept, gone = await bus.publish_request(make_request(1)), await bus.publish_request(make_request(2))
    entries = {"11000000000001-1": kept, "11000000000001-2": gone}
    assert (await bus.probe(entries)).missing == ()
    await bus.redis.xdel(bus.keys.requests, gone)
    assert (await bus.probe(entries)).missing == ("11000000000001-2",)
    await bus.redis.delete(bus.keys.requests)
    assert set((await bus.probe(entries)).missing) == set(entries)
    assert (await bus.probe({})).missing == ()


async def test_put_pause_sets_the_state_as_it_was_and_announces_it(bus: Bus) -> None:
    pubsub = bus.redis.pubsub()
    try:
        await pubsub.subscribe(bus.keys.channel_pause_changed)
        assert await pubsub.get_message(timeout=5) is not None  # the subscribe confirmation
        state = PauseState(reason="kept in A's journal", by="ctl", since_ms=123)
        await bus.put_pause(state)
        assert await bus.get_pause() == state
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None and message["data"] in ("paused", b"paused")
    finally:
        await pubsub.aclose()


async def test_wait_hedger_held_reads_b_heartbeat(bus: Bus) -> None:
    assert await bus.wait_hedger_held(HELD, timeout_s=5) == ("not running (no heartbeat)", True)
    await bus.beat("b", 30, {"busy": True, "held": True, "hold_since_ms": HELD.since_ms})
    seen, settled = await bus.wait_hedger_held(HELD, timeout_s=0)
    assert not settled and seen.startswith("still busy")
    await bus.beat("b", 30, {"busy": False, "held": True, "hold_since_ms": 999})  # held by another hold
    assert (await bus.wait_hedger_held(HELD, timeout_s=0))[0].startswith("still not yet held")

    async def b_honours_the_hold() -> None:
        await bus.beat("b", 30, {"busy": False, "held": True, "hold_since_ms": HELD.since_ms})

    honour = asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(b_honours_the_hold()))
    try:
        assert (await bus.wait_hedger_held(HELD, timeout_s=10))[1]
    finally:
        honour.cancel()


async def test_a_restarted_redis_has_a_new_run_id_and_no_marker(own_redis: RedisProcess) -> None:
    bus = Bus.from_config(RedisConfig(url=own_redis.url), "demo")  # retries: a lost connection is reopened
    try:
        await bus.claim_epoch("marker")
        before = await bus.probe()
        own_redis.restart_empty()
        after = await bus.probe()  # the retry policy reconnects
        assert after.run_id != before.run_id and before.epoch == "marker" and after.epoch is None
    finally:
        await bus.aclose()


def test_client_options_follow_the_redis_settings() -> None:
    settings = RedisConfig(url="redis://h:1/0", socket_timeout_s=4, connect_timeout_s=1.5,
                           health_check_interval_s=7, retries=3, retry_backoff_base_s=0.1,
                           retry_backoff_cap_s=2)
    options = client_options(settings)
    assert options["socket_timeout"] == 4 and options["socket_connect_timeout"] == 1.5
    assert options["health_check_interval"] == 7
    assert options["retry"].get_retries() == 3
    shorter = client_options(settings, socket_timeout_s=1.2, retries=0)
    assert shorter["socket_timeout"] == 1.2 and shorter["retry"].get_retries() == 0


async def test_open_redis_direct_and_through_sentinel_without_io() -> None:
    direct = open_redis(RedisConfig(url="redis://u:secretpw@127.0.0.1:6390/2"))
    try:
        assert direct.where == "redis://u:***@127.0.0.1:6390/2"
        kwargs = direct.client.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
        assert kwargs["socket_timeout"] == 3 and kwargs["retry"].get_retries() == 2  # the config's defaults
    finally:
        await direct.aclose()
    settings = RedisConfig(url="redis://:secretpw@ignored:1/3", sentinels=("127.0.0.1:26379", "[::1]:26380"),
                           service_name="pair-master")
    assert settings.sentinel_addresses() == [("127.0.0.1", 26379), ("::1", 26380)]
    assert describe_redis(settings) == "Sentinel service 'pair-master' via 127.0.0.1:26379, [::1]:26380"
    through = open_redis(settings)
    try:
        kwargs = through.client.connection_pool.connection_kwargs
        assert kwargs["db"] == 3 and kwargs["password"] == "secretpw" and "host" not in kwargs
        assert kwargs["retry"].get_retries() == 2
        assert "secretpw" not in through.where
    finally:
        await through.aclose()

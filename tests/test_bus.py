"""The Redis bus (hedge_strategy.bus.Bus), on fakeredis and on a real redis-server.

Each test runs against three backends: fakeredis (bytes replies), the session's real redis-server
(`decode_responses=True`) and the same server over RESP3, so the reply shapes and decodings are all covered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis

from hedge_strategy.bus import Bus, HedgeOutcome, HedgeRequest, PauseState, now_ms
from tests.fixtures.common import FakeClock

WAIT_S = 5.0  # bound on every wait for something that should happen at once


class Backend:
    """Clients on one Redis (fake or real); `new_client()` stands for another process connecting."""

    def __init__(self, kind: str, url: str | None, protocol: int = 2) -> None:
        self.kind = kind
        self._protocol = protocol
        self._url = url
        self._server = FakeServer() if kind == "fakeredis" else None
        self._clients: list[aioredis.Redis] = []

    def new_client(self) -> aioredis.Redis:
        if self._server is not None:
            client: aioredis.Redis = FakeRedis(server=self._server)
        else:
            assert self._url is not None
            client = aioredis.Redis.from_url(self._url, decode_responses=True, protocol=self._protocol)
        self._clients.append(client)
        return client

    def bus(self, pair: str = "demo") -> Bus:
        return Bus(self.new_client(), pair)

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


@pytest.fixture(params=["fakeredis", "redis-server", "redis-server-resp3"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    real = request.param.startswith("redis-server")
    url = request.getfixturevalue("redis_server") if real else None
    backend = Backend(request.param, url, protocol=3 if request.param.endswith("resp3") else 2)
    await backend.new_client().flushdb()
    try:
        yield backend
    finally:
        await backend.close()


def make_request(trade_id: int = 9001, pair: str = "demo", coid: int = 11000000000042) -> HedgeRequest:
    return HedgeRequest.for_fills(
        pair=pair,
        market="BTC",
        market_id=1,
        a_fill_side="buy",
        size=Decimal("0.0002"),
        a_client_order_index=coid,
        trade_ids=[trade_id],
        a_fill_price=Decimal("95000.1"),
        fill_ts_ms=now_ms(),
    )


def make_outcome(*request_ids: str, status: str = "filled", pair: str = "demo") -> HedgeOutcome:
    filled = status == "filled"
    return HedgeOutcome(
        pair=pair,
        request_ids=request_ids,
        status=status,
        market="BTC",
        side="sell",
        requested_size=Decimal("0.0002"),
        filled_size=Decimal("0.0002") if filled else Decimal("0"),
        avg_price=Decimal("94999.9") if filled else None,
        attempts=1 if filled else 5,
        reason=None if filled else "max slippage reached",
        hedge_client_order_indexes=(22000000000001,),
        received_ts_ms=now_ms(),
        sent_ts_ms=now_ms(),
        filled_ts_ms=now_ms() if filled else None,
        latency_ms=1.5,
    )


async def test_request_round_trip(backend: Backend) -> None:
    bus = backend.bus()
    await bus.ensure_group()
    request = make_request()
    entry_id = await bus.publish_request(request)
    [delivery] = await bus.read_requests("b-1", block_ms=None)
    assert delivery.entry_id == entry_id and not delivery.redelivered
    assert delivery.request == replace(request, publish_ts_ms=delivery.request.publish_ts_ms)
    assert delivery.request.publish_ts_ms >= request.fill_ts_ms


async def test_requests_published_before_the_group_exists_are_delivered(backend: Backend) -> None:
    bus = backend.bus()
    await bus.publish_request(make_request(1))
    await bus.ensure_group()
    await bus.ensure_group()  # idempotent
    assert [d.request.request_id for d in await bus.read_requests("b-1", block_ms=None)] == [
        "11000000000042-1"
    ]


async def test_consumer_group_delivers_each_request_once_and_ack_clears_pending(backend: Backend) -> None:
    bus = backend.bus()
    await bus.ensure_group()
    for trade_id in (1, 2, 3):
        await bus.publish_request(make_request(trade_id))
    first = await bus.read_requests("b-1", count=2, block_ms=None)
    second = await bus.read_requests("b-2", count=10, block_ms=None)
    ids = [d.request.request_id for d in first + second]
    assert sorted(ids) == ["11000000000042-1", "11000000000042-2", "11000000000042-3"]
    assert await bus.read_requests("b-1", block_ms=None) == []
    assert await bus.pending_count() == 3
    assert await bus.ack(*first) == 2
    assert await bus.pending_count() == 1
    await bus.publish_outcome(make_outcome(second[0].request.request_id), ack=second)
    assert await bus.pending_count() == 0


async def test_blocking_read_wakes_when_a_request_is_published(backend: Backend) -> None:
    bus_b, bus_a = backend.bus(), backend.bus()
    await bus_b.ensure_group()
    reader = asyncio.create_task(bus_b.read_requests("b-1", block_ms=int(WAIT_S * 1000)))
    await bus_a.publish_request(make_request(7))
    deliveries = await asyncio.wait_for(reader, WAIT_S + 1)
    if not deliveries:  # the read may have started after the publish: then it is there for the next read
        deliveries = await bus_b.read_requests("b-1", block_ms=None)
    assert [d.request.request_id for d in deliveries] == ["11000000000042-7"]


async def test_crash_before_ack_is_redelivered_to_the_next_hedger(backend: Backend) -> None:
    crashed = backend.bus()
    await crashed.ensure_group()
    await crashed.publish_request(make_request(5))
    [lost] = await crashed.read_requests("b-old", block_ms=None)  # ... and B dies before acknowledging

    restarted = backend.bus()  # a new process, a new connection
    assert await restarted.read_requests("b-new", block_ms=None) == []  # not a fresh message any more
    [again] = await restarted.claim_stale("b-new", min_idle_ms=0)
    assert again.redelivered and again.entry_id == lost.entry_id
    assert again.request.request_id == lost.request.request_id == "11000000000042-5"
    assert await restarted.claim_stale("b-new", min_idle_ms=60_000) == []  # just claimed: not idle
    await restarted.ack(again)
    assert await restarted.pending_count() == 0
    assert await restarted.claim_stale("b-new", min_idle_ms=0) == []


async def test_malformed_entries_go_to_dead_letters_and_never_reach_the_reader(backend: Backend) -> None:
    bus = backend.bus()
    raw = bus.redis
    await bus.ensure_group()
    good = json.loads(make_request(1).to_json())
    bad_entries = {
        "bad json": {"data": "{oops"},
        "wrong version": {"data": json.dumps({**good, "v": 99})},
        "missing field": {"data": json.dumps({k: v for k, v in good.items() if k != "size"})},
        "no data field": {"payload": "x"},
        "other pair": {"data": make_request(2, pair="other").to_json()},
    }
    await raw.xadd(bus.keys.requests, bad_entries["bad json"])
    await raw.xadd(bus.keys.requests, bad_entries["wrong version"])
    await bus.publish_request(make_request(3))
    for name in ("missing field", "no data field", "other pair"):
        await raw.xadd(bus.keys.requests, bad_entries[name])

    deliveries = await bus.read_requests("b-1", count=100, block_ms=None)
    assert [d.request.request_id for d in deliveries] == ["11000000000042-3"]
    assert await bus.pending_count() == 1  # the malformed ones were acknowledged

    letters = list(reversed(await bus.dead_letters()))  # oldest first
    assert [letter.fields for letter in letters] == [
        bad_entries[n] for n in ("bad json", "wrong version", "missing field", "no data field", "other pair")
    ]
    reasons = [letter.reason for letter in letters]
    assert "not JSON" in reasons[0]
    assert "unsupported version 99" in reasons[1]
    assert "missing field(s) size" in reasons[2]
    assert "no 'data' field" in reasons[3]
    assert "pair 'other'" in reasons[4]
    assert all(letter.source == bus.keys.requests and letter.ts_ms > 0 for letter in letters)


async def test_outcome_published_before_the_waiter_is_found(backend: Backend) -> None:
    bus_b = backend.bus()
    outcome = make_outcome("r-1", "r-2")
    await bus_b.publish_outcome(outcome)

    bus_a = backend.bus()  # e.g. A restarted after B answered
    found = await asyncio.wait_for(bus_a.wait_outcomes(["r-1", "r-2"], timeout_s=30), WAIT_S)
    assert set(found) == {"r-1", "r-2"} and found["r-1"].request_ids == ("r-1", "r-2")
    assert found["r-1"].publish_ts_ms > 0
    assert await bus_a.get_outcome("r-2") == found["r-2"]
    assert await bus_a.get_outcome("r-3") is None
    ttl = await bus_a.redis.ttl(bus_a.keys.outcome("r-1"))
    assert 6 * 24 * 3600 < ttl <= 7 * 24 * 3600


async def test_wait_outcomes_is_woken_by_the_publish(backend: Backend) -> None:
    bus_a, bus_b = backend.bus(), backend.bus()
    # The waiter's clock stands still: it can neither time out nor reach its periodic re-read of the store,
    # so the only way it returns with the outcome is the published message waking it.
    async with bus_a.outcome_waiter(["r-1"]) as waiter:
        assert waiter.missing == ["r-1"]
        waiting = asyncio.create_task(waiter.wait(timeout_s=30, progress_interval_s=60, clock=FakeClock()))
        await bus_b.publish_outcome(make_outcome("r-1", status="failed"))
        found = await asyncio.wait_for(waiting, WAIT_S)
    assert found["r-1"].status == "failed" and found["r-1"].reason == "max slippage reached"


async def test_wait_outcomes_timeout_returns_what_arrived_and_reports_progress(backend: Backend) -> None:
    bus = backend.bus()
    await bus.publish_outcome(make_outcome("r-1"))
    progress: list[tuple[float, list[str]]] = []

    async def on_progress(elapsed_s: float, missing: list[str]) -> None:
        progress.append((elapsed_s, missing))

    # Each look at the clock moves it on by 1/8 s: a progress call every second look, the timeout at the 8th.
    clock = FakeClock(tick=0.125)
    found = await asyncio.wait_for(
        bus.wait_outcomes(["r-1", "r-2"], timeout_s=1.0, on_progress=on_progress, progress_interval_s=0.25,
                          clock=clock),
        WAIT_S,
    )
    assert list(found) == ["r-1"]
    assert progress == [(0.25, ["r-2"]), (0.5, ["r-2"]), (0.75, ["r-2"])]


async def test_malformed_outcome_messages_are_skipped(backend: Backend) -> None:
    bus_a, bus_b = backend.bus(), backend.bus()
    async with bus_a.subscribe_outcomes() as outcomes:
        await bus_b.redis.publish(bus_b.keys.channel_b_filled, "{not json")
        await bus_b.redis.publish(bus_b.keys.channel_b_filled, make_outcome("x-1", pair="other").to_json())
        await bus_b.publish_outcome(make_outcome("r-9"))
        first = await asyncio.wait_for(anext(outcomes), WAIT_S)
    assert first.request_ids == ("r-9",)


async def test_outcome_subscription_sees_filled_and_failed(backend: Backend) -> None:
    bus_a, bus_b = backend.bus(), backend.bus()
    async with bus_a.subscribe_outcomes() as outcomes:
        await bus_b.publish_outcome(make_outcome("r-1"))
        await bus_b.publish_outcome(make_outcome("r-2", status="failed"))
        got = [await asyncio.wait_for(anext(outcomes), WAIT_S) for _ in range(2)]
    assert [(o.request_ids, o.status) for o in got] == [(("r-1",), "filled"), (("r-2",), "failed")]


async def test_publish_rejects_a_message_of_another_pair(backend: Backend) -> None:
    bus = backend.bus()
    with pytest.raises(ValueError, match="pair 'other'"):
        await bus.publish_request(make_request(pair="other"))
    with pytest.raises(ValueError, match="pair 'other'"):
        await bus.publish_outcome(make_outcome("r-1", pair="other"))


async def test_heartbeat_carries_info_and_a_ttl(backend: Backend) -> None:
    bus = backend.bus()
    assert await bus.heartbeat("B") is None
    await bus.beat("B", ttl_s=5, info={"pending": 0, "account_index": 102})
    beat = await bus.heartbeat("B")
    assert beat is not None and beat["role"] == "B" and beat["pending"] == 0 and beat["ts_ms"] > 0
    assert 0 < await bus.redis.pttl(bus.keys.heartbeat("B")) <= 5000
    await bus.redis.set(bus.keys.heartbeat("A"), "garbage")
    assert await bus.heartbeat("A") is None


async def test_pause_survives_a_new_client(backend: Backend) -> None:
    bus = backend.bus()
    assert await bus.get_pause() is None
    state = await bus.set_pause("hedge failed: 21130 not enough margin", by="A")
    other = backend.bus()  # another process, e.g. `hedgectl status` or a restarted A
    assert await other.get_pause() == state
    assert await other.clear_pause() == state
    assert await bus.get_pause() is None
    assert await bus.clear_pause() is None


async def test_an_unreadable_pause_value_counts_as_paused(backend: Backend) -> None:
    bus = backend.bus()
    await bus.redis.set(bus.keys.pause, "yes please")
    pause = await bus.get_pause()
    assert isinstance(pause, PauseState) and "unreadable" in pause.reason


async def test_hold_of_b_is_separate_from_the_pause_and_announced(backend: Backend) -> None:
    bus, other = backend.bus(), backend.bus()
    assert await bus.hedger_hold() is None
    watcher = other.redis.pubsub()
    await watcher.subscribe(bus.keys.channel_hold_changed)
    await _next_message(watcher)  # the subscription's confirmation
    held = await bus.hold_hedger("close-all in progress", by="ctl")
    assert (held.reason, held.by) == ("close-all in progress", "ctl") and held.since_ms > 0
    assert _text((await _next_message(watcher))["data"]) == "held"
    assert await other.hedger_hold() == held  # another process (B) sees it
    assert await other.get_pause() is None  # holding B does not pause A
    await bus.set_pause("test", by="ctl")
    assert await other.release_hedger() == held
    assert _text((await _next_message(watcher))["data"]) == "released"
    assert await bus.hedger_hold() is None and await bus.get_pause() is not None  # releasing B keeps A paused
    assert await bus.release_hedger() is None
    await watcher.aclose()


async def test_an_unreadable_hold_value_counts_as_held(backend: Backend) -> None:
    bus = backend.bus()
    await bus.redis.set(bus.keys.hold_b, DEEP)
    hold = await bus.hedger_hold()
    assert isinstance(hold, PauseState) and "unreadable" in hold.reason
    assert await bus.release_hedger() is not None and await bus.hedger_hold() is None


async def _next_message(pubsub: Any) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            message = await pubsub.get_message(timeout=WAIT_S)
            if message is not None:
                return dict(message)


async def test_pairs_do_not_see_each_other(backend: Backend) -> None:
    one, two = backend.bus("one"), backend.bus("two")
    await one.ensure_group()
    await two.ensure_group()
    await one.publish_request(make_request(1, pair="one"))
    await one.publish_outcome(make_outcome("r-1", pair="one"))
    await one.set_pause("test", by="ctl")
    await one.beat("B", ttl_s=5, info={})

    assert await two.read_requests("b", block_ms=None) == []
    assert await two.get_outcome("r-1") is None
    assert await two.wait_outcomes(["r-1"], timeout_s=0.2) == {}
    assert await two.get_pause() is None and await two.heartbeat("B") is None
    assert [d.request.pair for d in await one.read_requests("b", block_ms=None)] == ["one"]
    keys = {_text(key) for key in await one.redis.keys("*")}
    assert {key for key in keys if not key.startswith("hedge:one:")} == {"hedge:two:requests"}


async def test_outcome_with_partial_fill_and_ack_is_atomic(backend: Backend) -> None:
    bus = backend.bus()
    await bus.ensure_group()
    await bus.publish_request(make_request(1))
    await bus.publish_request(make_request(2))
    deliveries = await bus.read_requests("b-1", block_ms=None)
    netted = replace(
        make_outcome(*(d.request.request_id for d in deliveries), status="failed"),
        filled_size=Decimal("0.0001"),
        avg_price=Decimal("94990"),
    )
    await bus.publish_outcome(netted, ack=deliveries)
    assert await bus.pending_count() == 0
    stored = await bus.get_outcomes(d.request.request_id for d in deliveries)
    assert {o.filled_size for o in stored.values()} == {Decimal("0.0001")} and len(stored) == 2
    [(_, fields)] = await bus.redis.xrange(bus.keys.outcomes)
    assert HedgeOutcome.from_json(_field(fields, "data")).request_ids == netted.request_ids


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: dict[Any, Any], name: str) -> str:
    return _text(fields.get(name, fields.get(name.encode())))


# ----- poison values: logged and skipped or dead-lettered, never raised ---------------------------------

DEEP = "[" * 100_000 + "]" * 100_000  # deep enough to crash the JSON decoder if it ever got it
HUGE_INT = "9" * 5000  # int() refuses more than 4300 digits


def _poison_requests() -> dict[str, str]:
    good = make_request(1).to_json()
    return {
        "deep": DEEP,
        "deep field": good.replace('"pair":"demo"', f'"pair":{DEEP}'),
        "huge int": good.replace('"market_id":1', f'"market_id":{HUGE_INT}'),
        "absurd size": good.replace('"size":"0.0002"', '"size":"1E+40"'),
    }


async def test_poison_request_entries_are_dead_lettered_when_read(backend: Backend) -> None:
    bus = backend.bus()
    await bus.ensure_group()
    poison = _poison_requests()
    for payload in poison.values():
        await bus.redis.xadd(bus.keys.requests, {"data": payload})
    await bus.publish_request(make_request(3))

    deliveries = await bus.read_requests("b-1", count=100, block_ms=None)
    assert [d.request.request_id for d in deliveries] == ["11000000000042-3"]
    assert await bus.pending_count() == 1  # only the good one waits for its outcome
    reasons = [letter.reason for letter in reversed(await bus.dead_letters())]
    assert len(reasons) == len(poison)
    assert "nested deeper than 32 levels" in reasons[0] and "nested deeper" in reasons[1]
    assert "market_id" in reasons[2] or "unreadable" in reasons[2]
    assert "size must be a decimal > 0 below 1E+12" in reasons[3]
    assert all(len(reason) < 400 for reason in reasons)


async def test_poison_entry_left_pending_by_a_crashed_hedger_is_dead_lettered_at_restart(
    backend: Backend,
) -> None:
    bus = backend.bus()
    await bus.ensure_group()
    for payload in _poison_requests().values():
        await bus.redis.xadd(bus.keys.requests, {"data": payload})
    # An older B read the entries and died on them before acknowledging: they sit in its pending list.
    await bus.redis.xreadgroup("hedgers", "b-old", {bus.keys.requests: ">"}, count=100)
    assert await bus.pending_count() == 4

    restarted = backend.bus()
    assert await restarted.claim_stale("b-new", min_idle_ms=0) == []
    assert await restarted.pending_count() == 0  # acknowledged: the next restart does not meet them again
    assert len(await restarted.dead_letters()) == 4


async def test_poison_outcome_messages_are_skipped(backend: Backend) -> None:
    bus_a, bus_b = backend.bus(), backend.bus()
    absurd = json.dumps({**json.loads(make_outcome("r-1").to_json()), "filled_ts_ms": 10**20})
    async with bus_a.subscribe_outcomes() as outcomes:
        for payload in (DEEP, HUGE_INT, absurd):
            await bus_b.redis.publish(bus_b.keys.channel_b_filled, payload)
        await bus_b.publish_outcome(make_outcome("r-9"))
        first = await asyncio.wait_for(anext(outcomes), WAIT_S)
    assert first.request_ids == ("r-9",)


async def test_unreadable_stored_outcome_counts_as_missing(backend: Backend) -> None:
    bus = backend.bus()
    await bus.redis.set(bus.keys.outcome("r-1"), DEEP)
    await bus.redis.set(bus.keys.outcome("r-2"), '{"v":1,"type":"hedge_outcome","attempts":' + HUGE_INT + "}")
    await bus.publish_outcome(make_outcome("r-3"))
    assert await bus.get_outcome("r-1") is None
    found = await asyncio.wait_for(bus.wait_outcomes(["r-1", "r-2", "r-3"], timeout_s=0.2), WAIT_S)
    assert list(found) == ["r-3"]


async def test_poison_pause_value_counts_as_paused_and_poison_heartbeat_as_absent(backend: Backend) -> None:
    bus = backend.bus()
    for value in (DEEP, '{"v":1,"type":"pause","reason":"r","by":"A","since_ms":' + HUGE_INT + "}"):
        await bus.redis.set(bus.keys.pause, value)
        pause = await bus.get_pause()
        assert isinstance(pause, PauseState) and "unreadable" in pause.reason
    cleared = await bus.clear_pause()
    assert cleared is not None and "unreadable" in cleared.reason
    for value in (DEEP, '{"role":"b","ts_ms":' + HUGE_INT + "}"):
        await bus.redis.set(bus.keys.heartbeat("b"), value)
        assert await bus.heartbeat("b") is None

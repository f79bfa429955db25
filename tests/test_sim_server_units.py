"""Unit tests of the sim server's parts: config validation, auth tokens, rate limits, faults, speed bumps."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from lighter_sim.auth import AuthError, check_token, parse_token
from lighter_sim.config import SimConfigError, parse_sim_section
from lighter_sim.faults import FaultError, Faults
from lighter_sim.ratelimit import RateLimiter, premium_weight
from lighter_sim.scheduler import SpeedBumps
from tests.fixtures.common import FakeClock


def test_defaults_match_config_yaml_and_overrides_apply() -> None:
    config = parse_sim_section({"seed": 3, "speed_bumps": {"enabled": False}})
    assert config.seed == 3 and config.port == 8765 and not config.speed_bumps.enabled
    assert config.speed_bumps.delay_ms("standard", "taker") == 0  # off
    assert config.speed_bumps.standard.delay_ms("taker") == 300
    assert config.speed_bumps.premium.delay_ms("maker") == 0
    # Premium at its top staking level, as the venue's captured trades show (maker 28, taker 196 millionths).
    assert config.fees.by_tier() == {
        "standard": (Decimal(0), Decimal(0)),
        "premium": (Decimal("0.000028"), Decimal("0.000196")),
    }
    limits = config.rate_limits
    assert (limits.standard_per_minute, limits.premium_weight_per_minute, limits.shared) == (60, 24000, [])
    assert [a.account_index for a in config.accounts] == [101, 102]
    assert [m.symbol for m in config.markets] == ["ETH", "BTC"]
    assert parse_sim_section(None) == parse_sim_section({}) != config
    # A tier given in part keeps that tier's defaults for the rest.
    premium = parse_sim_section({"speed_bumps": {"premium": {"taker_ms": 300}}}).speed_bumps.premium
    assert (premium.maker_ms, premium.cancel_ms, premium.taker_ms) == (0, 0, 300)


ETH = {"symbol": "ETH", "market_id": 0, "size_decimals": 4, "price_decimals": 2, "min_base_amount": "0.0050",
       "min_quote_amount": 10, "initial_price": "3000.00"}


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"markets": []}, "sim.markets"),
        (
            {
                "markets": [
                    {
                        "symbol": "X",
                        "market_id": 0,
                        "size_decimals": 2,
                        "price_decimals": 2,
                        "min_base_amount": "0.001",
                        "min_quote_amount": "10",
                        "initial_price": "1",
                    }
                ]
            },
            "sim.markets[0].min_base_amount",
        ),
        ({"accounts": [{"account_index": 2}]}, "sim.accounts[0].account_index"),
        ({"accounts": [{"account_index": 5}, {"account_index": 5}]}, "sim.accounts.account_index"),
        ({"markets": [{**ETH, "symbol": "ETH"}, {**ETH, "symbol": "ETH2"}]}, "sim.markets.market_id"),
        ({"markets": [ETH, {**ETH, "market_id": 1}]}, "sim.markets.symbol"),
        ({"fees": {"premium": {"maker": "2"}}}, "sim.fees.premium.maker"),
        ({"flow": {"taker_size_min_lots": 3, "taker_size_max_lots": 2}}, "sim.flow.taker_size_max_lots"),
        ({"flow": {"liquidity_size": "lots"}}, "sim.flow.liquidity_size"),
        ({"fees": {"premium": {"taker": "0.0000035"}}}, "sim.fees.premium.taker"),  # not whole millionths
        ({"port": 70000}, "sim.port"),
        ({"speed_bumps": {"gold": {}}}, "sim.speed_bumps.gold"),
        ({"rate_limits": {"shared": [[101]]}}, "sim.rate_limits.shared[0]"),
        ({"rate_limits": {"shared": [[101, 102], [102, 103]]}}, "sim.rate_limits.shared"),
        (
            {
                "accounts": [{"account_index": 101, "tier": "standard"}, {"account_index": 102}],
                "rate_limits": {"shared": [[101, 102]]},
            },
            "sim.rate_limits.shared[0]",
        ),
    ],
)
def test_bad_values_name_their_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(SimConfigError) as raised:
        parse_sim_section(section)
    assert raised.value.key == key and str(raised.value).startswith(key)


def test_every_bad_value_is_reported_with_what_was_expected_and_given() -> None:
    with pytest.raises(SimConfigError) as raised:
        parse_sim_section({"port": True, "flow": {"tick_interval_ms": 0}, "colour": "blue"})
    assert raised.value.lines == (
        "sim.port: expected an integer between 0 and 65535, got True",
        "sim.flow.tick_interval_ms: expected an integer between 1 and 60000, got 0",
        "sim.colour: unknown key",
    )


def test_auth_token_format_expiry_account_and_key() -> None:
    registered = {(101, 3)}

    def known(account: int, key: int) -> bool:
        return (account, key) in registered

    token = "2000:101:3:" + "ab" * 40
    assert parse_token(token).api_key_index == 3
    assert check_token(token, 101, known, now_s=1999).account_index == 101
    for bad, now, account in (
        ("2000:101:3", 0, 101),
        ("x:101:3:abab", 0, 101),
        (token, 2000, 101),  # expired at its expiry second
        (token, 0, 102),
        ("2000:101:4:" + "ab" * 40, 0, 101),
    ):
        with pytest.raises(AuthError):
            check_token(bad, account, known, now_s=now)
    # At most 8 h ahead (a 9 h token refused: rest/accountLimits capture), counted from the current second.
    eight_h = f"{1000 + 8 * 3600}:101:3:" + "ab" * 40
    assert check_token(eight_h, 101, known, now_s=999.4).expiry_s == 1000 + 8 * 3600
    with pytest.raises(AuthError, match=r"^invalid auth: invalid deadline$"):
        check_token(eight_h, 101, known, now_s=998.9)


def test_standard_budget_is_per_request_and_rolls_over_a_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(standard_per_minute=3, premium_weight_per_minute=600, clock=clock)
    assert all(limiter.allow("a", "standard", "sendTx") for _ in range(3))
    assert not limiter.allow("a", "standard", "account")
    assert limiter.allow("b", "standard", "account")  # buckets are per key
    clock.now += 59.9
    assert not limiter.allow("a", "standard", "account")
    clock.now += 0.2
    assert limiter.allow("a", "standard", "account")


@pytest.mark.parametrize("shared", [[], [[101, 102]]])
def test_a_shared_budget_is_spent_by_every_account_of_its_group(shared: list[list[int]]) -> None:
    """Sub-accounts of one L1 address share one budget on the venue: grouped, A's minute is also B's."""
    clock = FakeClock()
    limiter = RateLimiter(standard_per_minute=60, premium_weight_per_minute=24000, clock=clock, shared=shared)
    a, b, other = (limiter.account_key(account) for account in (101, 102, 103))
    assert all(limiter.allow(a, "standard", "sendTx") for _ in range(60))
    assert not limiter.allow(a, "standard", "account")
    assert limiter.allow(b, "standard", "account") == (not shared)  # refused only when B shares A's budget
    assert limiter.allow(other, "standard", "account")  # an account outside the group keeps its own
    clock.now += 60
    assert limiter.allow(b, "standard", "account")  # the shared minute rolls over like any other


def test_premium_budget_is_weighted() -> None:
    assert (premium_weight("sendTx"), premium_weight("trades"), premium_weight("account")) == (6, 600, 300)
    limiter = RateLimiter(standard_per_minute=60, premium_weight_per_minute=600, clock=FakeClock())
    assert limiter.allow("p", "premium", "account") and limiter.allow("p", "premium", "account")
    assert not limiter.allow("p", "premium", "sendTx")  # 600 used
    assert limiter.remaining("p", "premium") == 0


def test_standard_tier_is_also_held_to_the_weighted_budget() -> None:
    """The rate-limits page: where 24,000 / weight < 60, that lower limit applies to standard accounts too."""
    limiter = RateLimiter(standard_per_minute=60, premium_weight_per_minute=24000, clock=FakeClock())
    assert all(limiter.allow("s", "standard", "trades") for _ in range(40))  # 40 x 600 = 24,000
    assert not limiter.allow("s", "standard", "trades")
    assert all(limiter.allow("t", "standard", "account") for _ in range(60))  # 60 x 300 fits: 60 rules
    assert not limiter.allow("t", "standard", "sendTx")
    assert limiter.remaining("t", "standard") == 0


def test_sequencer_reject_fault_counts_filters_and_says_whether_the_nonce_goes() -> None:
    faults = Faults(clock=FakeClock())
    faults.apply({"sequencer_reject_next": {"count": 2, "account_index": 7, "consume_nonce": False}})
    assert faults.take_sequencer_reject(8) is None
    assert faults.take_sequencer_reject(7) is False
    assert faults.to_json()["sequencer_reject_next"] == {
        "remaining": 1,
        "account_index": 7,
        "consume_nonce": False,
    }
    assert faults.take_sequencer_reject(7) is False
    assert faults.take_sequencer_reject(7) is None
    faults.apply({"sequencer_reject_next": {"count": 1}})  # any account; the nonce is consumed by default
    assert faults.take_sequencer_reject(3) is True
    assert faults.to_json()["sequencer_reject_next"] is None


def test_counted_faults_run_out_and_filter_by_account() -> None:
    faults = Faults(clock=FakeClock())
    faults.apply({"reject_next_sendtx": 2, "code": 21999, "message": "no", "account_index": 7})
    assert faults.take_sendtx_rejection(8) is None
    assert faults.take_sendtx_rejection(7) == (21999, "no")
    assert faults.take_sendtx_rejection(7) == (21999, "no")
    assert faults.take_sendtx_rejection(7) is None
    faults.apply({"http_error_next": 1, "status": 502, "paths": ["/api/v1/sendTx"]})
    assert faults.take_http_error("/api/v1/account") is None
    assert faults.take_http_error("/api/v1/sendTx") == (502, None)
    assert faults.take_http_error("/api/v1/sendTx") is None
    faults.apply({"http_error_next": 1, "status": 429, "retry_after_s": 0.25})  # sent as Retry-After
    assert faults.to_json()["http_error_next"]["retry_after_s"] == 0.25
    assert faults.take_http_error("/api/v1/nextNonce") == (429, 0.25)
    faults.apply({"blackhole_next_sendtx": 1})
    assert faults.take_blackhole(1) and not faults.take_blackhole(1)


def test_silence_has_a_deadline_and_clear_removes_everything() -> None:
    clock = FakeClock()
    faults = Faults(clock=clock)
    faults.apply({"silence_ws_s": 2, "latency_ms": 50, "reject_sendtx_probability": 1.0})
    assert faults.ws_silenced() and faults.latency_ms == 50
    assert faults.take_sendtx_rejection(None) is not None
    clock.now += 2.01
    assert not faults.ws_silenced()
    faults.clear()
    assert faults.latency_ms == 0 and faults.take_sendtx_rejection(None) is None


def test_a_silence_of_one_account_covers_only_its_connections() -> None:
    clock = FakeClock()
    faults = Faults(clock=clock)
    faults.apply({"silence_ws_s": 2, "account_index": 101})
    assert faults.ws_silenced({101}) and faults.ws_silenced({101, 102})  # a connection with its channels
    assert not faults.ws_silenced({102}) and not faults.ws_silenced(set())  # others, and books only
    assert not faults.ws_silenced(None)  # not every connection: the hub still builds frames
    assert faults.to_json()["silence_ws_account"] == 101
    clock.now += 2.01
    assert not faults.ws_silenced({101}) and faults.to_json()["silence_ws_account"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"latency_ms": -1},
        {"reject_next_sendtx": 1.5},
        {"code": "x", "reject_next_sendtx": 1},
        {"paths": "/api", "http_error_next": 1},
        {"reject_sendtx_probability": 2},
        {"sequencer_reject_next": 1},
        {"sequencer_reject_next": {"consume_nonce": True}},
        {"sequencer_reject_next": {"count": -1}},
        {"sequencer_reject_next": {"count": 1, "consume_nonce": "yes"}},
        {"sequencer_reject_next": {"count": 1, "account_index": "101"}},
        {"sequencer_reject_next": {"count": 1, "oops": 1}},
    ],
)
def test_malformed_fault_bodies_are_refused(body: Any) -> None:
    with pytest.raises(FaultError):
        Faults().apply(body)


async def test_speed_bumps_keep_each_accounts_order_and_run_zero_delay_inline() -> None:
    executed: list[str] = []
    done = asyncio.Event()
    bumps = SpeedBumps(executed.append)
    bumps.submit(1, "inline", 0, lambda: None)
    assert executed == ["inline"]  # nothing queued: executed before submit returns
    bumps.submit(1, "slow-taker", 50, lambda: None)
    bumps.submit(1, "fast-maker", 0, lambda: None)  # must wait behind the taker
    bumps.submit(2, "other-account", 10, done.set)
    assert bumps.pending() == 3
    await asyncio.wait_for(done.wait(), 2)
    assert executed == ["inline", "other-account"]  # account 2 is not held up by account 1
    finished = asyncio.Event()
    bumps.submit(1, "last", 0, finished.set)
    await asyncio.wait_for(finished.wait(), 2)
    assert executed == ["inline", "other-account", "slow-taker", "fast-maker", "last"]
    assert bumps.pending() == 0


class FakeSocket:
    def __init__(self) -> None:
        self.closed_with: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def close(self, code: int, message: bytes) -> None:
        self.closed_with.set_result(code)


async def test_a_client_whose_send_queue_overflows_is_dropped_not_waited_for() -> None:
    from lighter_sim.ws import SEND_QUEUE_FRAMES, Connection, WsHub

    async def no_tx(data: dict[str, Any], key: str, batch: bool) -> dict[str, Any]:
        return {}

    hub = WsHub(object(), ping_interval_s=10, pong_timeout_s=30, silenced=lambda _accounts: False,
                send_tx=no_tx)
    socket = FakeSocket()
    conn = Connection(hub, socket, "test")  # type: ignore[arg-type]  # no writer task: nothing drains
    for _ in range(SEND_QUEUE_FRAMES):
        conn.send_text("{}")
    assert not socket.closed_with.done()
    conn.send_text("{}")  # one too many: returns at once, the connection is closed behind it
    assert await asyncio.wait_for(socket.closed_with, 2) == 1008
    conn.send_text("{}")
    assert conn.queue.qsize() == SEND_QUEUE_FRAMES  # nothing more is queued for a closing client


def test_every_error_code_is_in_the_one_table_marked_verified_or_invented() -> None:
    from lighter_sim import errors

    codes = [entry.code for entry in errors.TABLE]
    assert len(codes) == len(set(codes))
    constants = {v for name, v in vars(errors).items() if name.isupper() and isinstance(v, int)}
    assert constants <= set(codes), "a code constant outside the table"
    for entry in errors.TABLE:
        assert entry.source, entry
        assert errors.http_status_of(entry.code) == entry.http_status
    # The venue's known sendTx codes mean what the venue says they mean.
    verified = {e.code: e.name for e in errors.TABLE if e.verified}
    assert verified[21104] == "invalid nonce" and verified[21120] == "invalid signature"
    assert verified[21511] == "invalid tx type" and 21136 in errors.VENUE_CODES_NOT_PRODUCED
    assert errors.SimError(errors.INVALID_AUTH, "x").http_status == 401

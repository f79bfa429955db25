"""Prometheus metrics (hedge_strategy.observe.metrics): scraped over HTTP from a real endpoint and parsed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hedge_strategy.config import ConfigError, MetricsConfig, config_from_mapping, load_config
from hedge_strategy.exchange.parsing import fills_for_account
from hedge_strategy.execution import Journal, OrderTracker, Reconciler
from hedge_strategy.observe import STAGES, HedgeMetrics
from tests.fixtures.procs import free_port
from tests.test_reconcile import ACCOUNT, BTC, GRACE_S, ScriptedExchange

SHIPPED = Path(__file__).resolve().parents[1] / "config.yaml"
LABELS = {"pair": "t1", "role": "a"}


@pytest.fixture
async def metrics() -> AsyncIterator[HedgeMetrics]:
    served = HedgeMetrics("t1", "A", port=free_port())
    await served.start()
    yield served
    await served.stop()


async def scrape(url: str) -> tuple[dict[str, Any], str]:
    """Every sample of the endpoint as {(name, frozenset(labels)): value}, and the Content-Type."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
        content_type = response.headers["Content-Type"]
    samples: dict[Any, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, content_type


def value(samples: dict[Any, float], name: str, **extra: str) -> float:
    return samples[(name, frozenset({**LABELS, **extra}.items()))]


async def test_scrape_shows_each_event_labelled_by_pair_and_role(metrics: HedgeMetrics) -> None:
    assert metrics.url is not None and metrics.url.endswith("/metrics")
    metrics.observe_stage("hedge_sent", 0.2)
    metrics.observe_stage("hedge_sent", 0.04)
    metrics.set_exposure(Decimal("-0.0002"))
    metrics.set_paused(True)
    metrics.set_stream_up(True)
    metrics.order("maker", "filled")
    metrics.order("maker", "filled")
    metrics.order("hedge", "rejected")
    metrics.fill("maker")
    metrics.ws_reconnect()
    metrics.nonce_resync()
    metrics.nonce_resync()
    metrics.rate_limit_backoff(3)
    metrics.reconciled(at_s=1_700_000_000.5)
    metrics.alert("hedge_failed", "sent")

    samples, content_type = await scrape(metrics.url)

    assert content_type.startswith("text/plain")
    latency = "lighter_hedge_hedge_latency_seconds"
    assert value(samples, f"{latency}_count", stage="hedge_sent") == 2
    assert value(samples, f"{latency}_sum", stage="hedge_sent") == pytest.approx(0.24)
    assert value(samples, f"{latency}_bucket", stage="hedge_sent", le="0.05") == 1
    assert value(samples, f"{latency}_bucket", stage="hedge_sent", le="0.25") == 2
    for stage in STAGES:  # every stage is exported from the start, so dashboards see zeros, not gaps
        assert (f"{latency}_count", frozenset({**LABELS, "stage": stage}.items())) in samples
    assert value(samples, "lighter_hedge_net_exposure") == -0.0002
    assert value(samples, "lighter_hedge_paused") == 1
    assert value(samples, "lighter_hedge_stream_up") == 1
    assert value(samples, "lighter_hedge_orders_total", intent="maker", outcome="filled") == 2
    assert value(samples, "lighter_hedge_orders_total", intent="hedge", outcome="rejected") == 1
    assert value(samples, "lighter_hedge_fills_total", intent="maker") == 1
    assert value(samples, "lighter_hedge_fills_total", intent="hedge") == 0
    assert value(samples, "lighter_hedge_ws_reconnects_total") == 1
    assert value(samples, "lighter_hedge_nonce_resyncs_total") == 2
    assert value(samples, "lighter_hedge_rate_limit_backoffs_total") == 3
    assert value(samples, "lighter_hedge_last_reconcile_timestamp_seconds") == 1_700_000_000.5
    assert value(samples, "lighter_hedge_alerts_total", kind="hedge_failed", result="sent") == 1

    metrics.set_paused(False)
    samples, _ = await scrape(metrics.url)
    assert value(samples, "lighter_hedge_paused") == 0


async def test_fees_are_counted_in_usdc_from_the_fills_converted_fee(metrics: HedgeMetrics) -> None:
    trade = {"trade_id": 7, "market_id": 1, "size": "0.002", "price": "60000", "is_maker_ask": True,
             "ask_account_id": 11, "bid_account_id": 22, "ask_id": 1, "bid_id": 2,
             "maker_fee": 0, "taker_fee": 28, "timestamp": 1_700_000_000_000}
    (taker,) = fills_for_account(trade, 22)  # the bid side took: 28 millionths of the notional
    metrics.fill("hedge", taker.fee)
    metrics.fill("hedge", taker.fee)
    metrics.fill("maker", Decimal(0))
    assert metrics.url is not None

    samples, _ = await scrape(metrics.url)

    one_fee = 28 * 1e-6 * 0.002 * 60000  # rate x 1e-6 x size x price = 0.00336 USDC
    assert value(samples, "lighter_hedge_fees_usdc_total", intent="hedge") == pytest.approx(2 * one_fee)
    assert value(samples, "lighter_hedge_fees_usdc_total", intent="maker") == 0
    assert value(samples, "lighter_hedge_fills_total", intent="hedge") == 2


async def test_two_processes_in_one_interpreter_keep_separate_registries() -> None:
    a, b = HedgeMetrics("t1", "a", port=free_port()), HedgeMetrics("t1", "b", port=free_port())
    await a.start()
    await b.start()
    try:
        a.fill("maker")
        b.fill("hedge")
        b.fill("hedge")
        assert a.url is not None and b.url is not None
        samples_a, _ = await scrape(a.url)
        samples_b, _ = await scrape(b.url)
    finally:
        await a.stop()
        await b.stop()
    assert value(samples_a, "lighter_hedge_fills_total", intent="maker") == 1
    assert value(samples_a, "lighter_hedge_fills_total", intent="hedge") == 0
    b_hedge = ("lighter_hedge_fills_total", frozenset({"pair": "t1", "role": "b", "intent": "hedge"}.items()))
    assert samples_b[b_hedge] == 2
    assert not any(dict(labels).get("role") == "a" for _, labels in samples_b)


async def test_latency_from_timestamps_clamps_clock_skew_and_ignores_unknown_stages(
    metrics: HedgeMetrics, log_lines: list[str]
) -> None:
    metrics.observe_since_fill("hedge_filled", fill_ts_ms=1_000, at_ms=3_500)
    metrics.observe_since_fill("fill_seen", fill_ts_ms=5_000, at_ms=4_990)  # our clock 10 ms behind
    metrics.observe_stage("coffee_break", 1.0)
    assert metrics.url is not None
    samples, _ = await scrape(metrics.url)
    latency = "lighter_hedge_hedge_latency_seconds"
    assert value(samples, f"{latency}_sum", stage="hedge_filled") == pytest.approx(2.5)
    assert value(samples, f"{latency}_sum", stage="fill_seen") == 0
    assert value(samples, f"{latency}_count", stage="fill_seen") == 1
    assert not any("coffee_break" in str(labels) for _, labels in samples)
    assert any("unknown latency stage 'coffee_break'" in line for line in log_lines)


async def test_totals_kept_elsewhere_advance_the_counters_by_what_is_new(metrics: HedgeMetrics) -> None:
    for total in (3, 3, 5):
        metrics.sync_nonce_resyncs(total)
    metrics.sync_nonce_resyncs(2)  # the adapter was rebuilt and counts from zero again: 2 new ones
    metrics.sync_ws_reconnects(4)
    metrics.sync_rate_limit_backoffs(1)
    assert metrics.url is not None
    samples, _ = await scrape(metrics.url)
    assert value(samples, "lighter_hedge_nonce_resyncs_total") == 7
    assert value(samples, "lighter_hedge_ws_reconnects_total") == 4
    assert value(samples, "lighter_hedge_rate_limit_backoffs_total") == 1


async def test_stop_closes_the_endpoint() -> None:
    port = free_port()
    metrics = HedgeMetrics("t1", "a", port=port)
    await metrics.start()
    url = metrics.url
    assert url == f"http://127.0.0.1:{port}/metrics"
    await metrics.stop()
    assert metrics.url is None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(("enabled", "port"), [(False, 9), (True, 0)])
async def test_disabled_metrics_serve_nothing_and_accept_every_call(enabled: bool, port: int) -> None:
    metrics = HedgeMetrics("t1", "a", port=port, enabled=enabled)
    await metrics.start()
    assert not metrics.enabled and metrics.url is None
    metrics.observe_stage("hedge_sent", 1.0)
    metrics.set_exposure(Decimal(1))
    metrics.order("maker", "filled")
    metrics.sync_nonce_resyncs(3)
    assert b"lighter_hedge" not in metrics.render()
    await metrics.stop()


async def test_a_port_in_use_is_logged_and_trading_goes_on(log_lines: list[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        metrics = HedgeMetrics("t1", "a", port=port)
        await metrics.start()  # does not raise
        assert metrics.url is None
        metrics.fill("maker")  # still counts, for whoever reads the registry
        fills = {**LABELS, "intent": "maker"}
        counted = metrics.registry.get_sample_value("lighter_hedge_fills_total", fills)
        assert counted == 1
        await metrics.stop()
    assert any(f"cannot listen on 127.0.0.1:{port}" in line for line in log_lines)


# --- config ------------------------------------------------------------------------------------------------


def shipped() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text())


def test_shipped_metrics_config_and_the_port_of_each_role() -> None:
    config = load_config(SHIPPED)
    assert config.metrics == MetricsConfig(enabled=True, host="127.0.0.1", port_a=9101, port_b=9102)
    assert config.metrics.port_for("a") == 9101 and config.metrics.port_for("B") == 9102
    metrics_b = HedgeMetrics.from_config(config, "b")
    assert (metrics_b.pair, metrics_b.role, metrics_b.port, metrics_b.enabled) == ("demo", "b", 9102, True)
    data = shipped()
    data["metrics"]["enabled"] = False
    off = config_from_mapping(data)
    assert off.metrics.port_for("a") == 0 and not HedgeMetrics.from_config(off, "a").enabled


def test_metrics_section_may_be_omitted_and_then_matches_the_shipped_one() -> None:
    data = shipped()
    del data["metrics"]
    assert config_from_mapping(data).metrics == load_config(SHIPPED).metrics


@pytest.mark.parametrize(
    ("key", "bad", "expected"),
    [
        ("port_a", 70000, "metrics.port_a: expected an integer between 0 and 65535, got 70000"),
        ("port_b", 9101, "metrics.port_b: must differ from metrics.port_a (both are 9101)"),
        ("enabled", "yes", "metrics.enabled: expected true or false, got 'yes'"),
        ("host", "", "metrics.host: expected a non-empty string, got ''"),
        ("colour", "red", "metrics.colour: unknown key"),
    ],
)
def test_bad_metrics_values_name_the_key(key: str, bad: Any, expected: str) -> None:
    data = shipped()
    data["metrics"][key] = bad
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data)
    assert expected in str(info.value).splitlines()


def test_both_ports_off_is_valid() -> None:
    data = shipped()
    data["metrics"].update(port_a=0, port_b=0)
    assert config_from_mapping(data).metrics.port_for("a") == 0



# --- following the reconciler and the adapter --------------------------------------------------------------


class CountingExchange(ScriptedExchange):
    """The reconcile tests' exchange stand-in plus the adapter counters `follow` reads; each read of
    `stream_up` (the last thing `follow` reads in a round) is counted so the test can wait for a round."""

    def __init__(self) -> None:
        super().__init__()
        self.nonce_resyncs = 0
        self.up = True
        self.rounds = 0
        self.round_done = asyncio.Condition()

    @property
    def stream_up(self) -> bool:
        self.rounds += 1
        asyncio.get_running_loop().create_task(self._announce())
        return self.up

    async def _announce(self) -> None:
        async with self.round_done:
            self.round_done.notify_all()

    async def rounds_reach(self, count: int) -> None:
        async with self.round_done:
            await asyncio.wait_for(self.round_done.wait_for(lambda: self.rounds >= count), 5.0)


async def test_follow_records_each_reconcile_and_catches_up_the_adapter_totals(
    tmp_path: Path, metrics: HedgeMetrics
) -> None:
    exchange = CountingExchange()
    journal = await Journal.open(tmp_path / "journal_101.sqlite", ACCOUNT)
    tracker = OrderTracker(journal, asyncio.Queue(), on_fill=None)
    await tracker.start()
    reconciler = Reconciler(exchange, journal, tracker, [BTC], GRACE_S)
    start_up = await reconciler.run_once("start-up")  # before the follower starts: it must still see it
    follower = asyncio.create_task(metrics.follow(reconciler, exchange))
    try:
        await exchange.rounds_reach(1)
        sample = metrics.registry.get_sample_value
        assert sample("lighter_hedge_last_reconcile_timestamp_seconds", LABELS) == start_up.finished_ms / 1000
        assert sample("lighter_hedge_stream_up", LABELS) == 1

        exchange.nonce_resyncs, exchange.up = 2, False
        tracker.reconnects = 3
        exchange.failing.add("positions")  # an incomplete run does not count as reconciled
        await reconciler.run_once("reconnect")
        await exchange.rounds_reach(2)
        assert sample("lighter_hedge_last_reconcile_timestamp_seconds", LABELS) == start_up.finished_ms / 1000
        assert sample("lighter_hedge_nonce_resyncs_total", LABELS) == 2
        assert sample("lighter_hedge_ws_reconnects_total", LABELS) == 3
        assert sample("lighter_hedge_stream_up", LABELS) == 0

        exchange.failing.clear()
        later = await reconciler.run_once("periodic")
        await exchange.rounds_reach(3)
        assert sample("lighter_hedge_last_reconcile_timestamp_seconds", LABELS) == later.finished_ms / 1000
        assert sample("lighter_hedge_nonce_resyncs_total", LABELS) == 2  # no new resyncs: unchanged
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await tracker.stop()
        await journal.close()

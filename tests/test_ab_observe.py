"""A and B observed from outside: their Prometheus endpoints after a hedge, and the alerts a local webhook
receives when a hedge is refused (paused, hedge_failed) or B goes away (heartbeat_lost).

Each test serves A's and B's metrics on free ports and points `alerts.webhook_url` at an aiohttp server of
the test; the exposure alert is kept out of the way with a long grace (it has its own tests).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hedge_strategy.config import MetricsConfig
from hedge_strategy.observe import WEBHOOK_ENV
from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, ABFactory
from tests.fixtures.procs import free_port
from tests.fixtures.webhook import Received, Receiver

# A cancels its resting order when B's heartbeat is gone, once Redis has answered A for a whole TTL while
# the order rests (`maker_b_watch`). This test is about a fill made before A knows: A's TTL is long.
B_JUDGED_AFTER_S = 30


@pytest.fixture
def webhook(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The local alert receiver; the environment's webhook would override the config's."""
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    return receiver


def observed(ab: AB, hook: Receiver) -> tuple[str, str]:
    """Serve A's and B's metrics on free ports and send alerts to `hook`; the two metrics URLs."""
    port_a, port_b = free_port(), free_port()
    ab.config = replace(
        ab.config,
        metrics=MetricsConfig(enabled=True, host="127.0.0.1", port_a=port_a, port_b=port_b),
        alerts=replace(ab.config.alerts, webhook_url=hook.url("/alerts"), exposure_grace_s=3600,
                       exposure_check_interval_s=1, timeout_s=2),
    )
    return f"http://127.0.0.1:{port_a}/metrics", f"http://127.0.0.1:{port_b}/metrics"


def from_a(received: list[Received]) -> list[Received]:
    """A's alerts only: B alerts on A's heartbeat as soon as A stops, which these tests do not look at."""
    return [r for r in received if r.body["role"] == "a"]


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the endpoint: (sample name, its labels) -> value."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        text = await response.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


async def test_metrics_of_a_hedged_fill_on_a_and_b(ab_factory: ABFactory, webhook: Receiver) -> None:
    ab = await ab_factory()
    url_a, url_b = observed(ab, webhook)
    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.fill_a("sell")
    await ab.events.wait("b", "hedge_done", state="filled")
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    await ab.events.wait("a", "order_ended", state="filled")

    a, b = await scrape(url_a), await scrape(url_b)
    latency = "lighter_hedge_hedge_latency_seconds_count"
    for stage in ("fill_seen", "request_published"):
        assert value(a, latency, role="a", stage=stage) == 1, stage
    for stage in ("request_received", "hedge_sent", "hedge_filled"):
        assert value(b, latency, role="b", stage=stage) == 1, stage
        assert value(a, latency, stage=stage) == 0  # each stage is recorded by the process that lives it
    # Cumulative stages: B's hedge filled no earlier than A saw the fill.
    assert value(b, "lighter_hedge_hedge_latency_seconds_sum", stage="hedge_filled") >= \
        value(a, "lighter_hedge_hedge_latency_seconds_sum", stage="fill_seen")

    assert value(a, "lighter_hedge_fills_total", intent="maker") == 1
    assert value(b, "lighter_hedge_fills_total", intent="hedge") == 1
    assert value(a, "lighter_hedge_orders_total", intent="maker", outcome="filled") == 1
    assert value(b, "lighter_hedge_orders_total", intent="hedge", outcome="filled") == 1
    assert value(a, "lighter_hedge_paused", role="a") == 0
    assert value(a, "lighter_hedge_stream_up", role="a") == 1
    assert value(b, "lighter_hedge_stream_up", role="b") == 1
    assert value(a, "lighter_hedge_last_reconcile_timestamp_seconds") > 0
    assert value(a, "lighter_hedge_rate_limit_backoffs_total") == 0
    assert webhook.drain() == []  # nothing went wrong: no alert


async def test_refused_hedge_alerts_paused_and_hedge_failed_once(ab_factory: ABFactory,
                                                                webhook: Receiver) -> None:
    ab = await ab_factory()
    url_a, _ = observed(ab, webhook)
    await ab.start_b()
    a = await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    await ab.sim.faults(reject_next_sendtx=1, code=21130, message="not enough margin",
                        account_index=B_ACCOUNT)
    await ab.fill_a("sell")

    first, second = (await webhook.next()).body, (await webhook.next()).body
    by_kind = {body["kind"]: body for body in (first, second)}
    assert set(by_kind) == {"hedge_failed", "paused"}
    failed, paused = by_kind["hedge_failed"], by_kind["paused"]
    assert (failed["pair"], failed["role"], failed["severity"]) == (ab.config.pair, "a", "critical")
    assert "21130" in failed["message"] and failed["details"]["filled"] == "0"
    assert paused["severity"] == "warning" and "21130" in paused["message"]
    assert "hedgectl resume" in paused["details"]["advice"]

    await ab.events.wait("a", "paused", by="A")  # the next cycle honours the pause
    metrics_a = await scrape(url_a)
    assert value(metrics_a, "lighter_hedge_paused", role="a") == 1
    assert value(metrics_a, "lighter_hedge_orders_total", intent="maker", outcome="filled") == 1
    assert await ab.position(A_ACCOUNT) == Decimal("0.0002")

    assert await a.stop() == 0  # its alerter delivers whatever is still queued before it closes
    assert from_a(webhook.drain()) == []  # exactly one of each (B alerts on A's heartbeat as A stops)


async def test_b_stopped_alerts_heartbeat_lost_once(ab_factory: ABFactory, webhook: Receiver) -> None:
    ab = await ab_factory()
    observed(ab, webhook)
    b = await ab.start_b()
    a = await ab.start_a(heartbeat_ttl_s=B_JUDGED_AFTER_S)
    await ab.events.wait("a", "order_placed", side="buy")
    assert await b.stop() == 0
    await ab.fill_a("sell")  # A now waits for a hedge with nobody to do it

    lost = (await webhook.next()).body
    assert (lost["kind"], lost["role"], lost["severity"]) == ("heartbeat_lost", "a", "critical")
    assert "B's heartbeat is absent" in lost["message"]
    await ab.events.wait("a", "hedge_waiting", count=3, peer_up=False)  # noticed again: no new alert

    await ab.start_b()  # B back: the hedge completes and A trades on
    await ab.events.wait("a", "hedge_outcome_received", state="filled")
    await ab.events.wait("a", "order_placed", side="sell")
    assert await ab.position(B_ACCOUNT) == Decimal("-0.0002")
    assert await a.stop() == 0
    assert from_a(webhook.drain()) == []


async def test_nothing_listens_when_metrics_are_off(ab_factory: ABFactory, webhook: Receiver) -> None:
    ab = await ab_factory()
    url_a, _ = observed(ab, webhook)
    ab.config = replace(ab.config, metrics=replace(ab.config.metrics, enabled=False))
    await ab.start_b()
    await ab.start_a()
    await ab.events.wait("a", "order_placed", side="buy")
    with pytest.raises(aiohttp.ClientConnectionError):
        await scrape(url_a)

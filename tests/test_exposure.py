"""The net-exposure watchdog (hedge_strategy.observe.exposure) with a controllable reader, a real Alerter and
a local webhook server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from hedge_strategy.config import load_config
from hedge_strategy.observe import Alerter, ExposureWatchdog, HedgeMetrics
from tests.fixtures.common import FakeClock
from tests.fixtures.procs import free_port
from tests.fixtures.webhook import WAIT_S, Receiver

TOLERANCE = Decimal("0.00001")
SHIPPED = Path(__file__).resolve().parents[1] / "config.yaml"


class Reader:
    """`read_net` for the watchdog: returns `net`, raises while `fail`, hangs while `hang`; counts calls."""

    def __init__(self) -> None:
        self.net = Decimal(0)
        self.fail = False
        self.hang = False
        self.calls = 0
        self._called = asyncio.Condition()

    async def __call__(self) -> Decimal:
        async with self._called:
            self.calls += 1
            self._called.notify_all()
        if self.fail:
            raise ConnectionError("redis down")
        if self.hang:
            await asyncio.Event().wait()
        return self.net

    async def more_calls(self, count: int) -> None:
        """Wait (bounded) until the watchdog has read `count` more times than now."""
        target = self.calls + count
        async with self._called:
            await asyncio.wait_for(self._called.wait_for(lambda: self.calls >= target), WAIT_S)


@pytest.fixture
async def alerter(receiver: Receiver) -> AsyncIterator[Alerter]:
    # The default 300 s dedup window: a second episode must still alert (each episode has its own key).
    started = Alerter("t1", "a", webhook_url=receiver.url("/hook"))
    await started.start()
    yield started
    await started.stop()


async def test_alerts_after_the_grace_once_per_episode_and_again_on_a_new_break(
    receiver: Receiver, alerter: Alerter
) -> None:
    reader, clock = Reader(), FakeClock()  # the watchdog reads often; only the test moves its clock
    watchdog = ExposureWatchdog(reader, TOLERANCE, grace_s=0.25, alerter=alerter, metrics=None,
                                interval_s=0.01, market="BTC", clock=clock)
    await watchdog.start()
    try:
        await reader.more_calls(3)
        assert not watchdog.breached

        reader.net = Decimal("0.0003")  # A filled, B never hedged
        await reader.more_calls(5)  # read after read within the grace: the episode is open, no alert yet
        assert watchdog.breached and watchdog.alerts == 0
        clock.now += 0.25
        first = await receiver.next()
        assert first.body["details"]["open_for_s"] == 0.25
        assert first.body["kind"] == "exposure" and first.body["severity"] == "critical"
        assert first.body["details"]["net"] == "0.0003" and first.body["details"]["tolerance"] == "0.00001"
        assert "0.0003 on BTC" in first.body["message"]

        await reader.more_calls(20)  # still apart, read after read: no second alert for this episode
        assert await alerter.flush(WAIT_S)
        assert len(receiver.received) == 1

        reader.net = Decimal(0)
        await reader.more_calls(2)
        assert not watchdog.breached

        reader.net = Decimal("-0.0002")  # a new break, in the other direction
        await reader.more_calls(2)
        assert watchdog.breached and watchdog.alerts == 1
        clock.now += 0.25
        second = await receiver.next()
        assert second.body["details"]["net"] == "-0.0002"
    finally:
        await watchdog.stop()
    assert (watchdog.episodes, watchdog.alerts) == (2, 2)
    assert len(receiver.received) == 2


async def test_a_break_shorter_than_the_grace_does_not_alert(receiver: Receiver, alerter: Alerter) -> None:
    reader, clock = Reader(), FakeClock()
    watchdog = ExposureWatchdog(reader, TOLERANCE, grace_s=0.5, alerter=alerter, metrics=None, clock=clock)
    reader.net = Decimal("0.0002")
    await watchdog.check()
    clock.now += 0.4
    await watchdog.check()
    reader.net = Decimal("0.00001")  # at the tolerance counts as flat: the hedge landed in time
    clock.now += 0.05
    await watchdog.check()
    assert not watchdog.breached and watchdog.alerts == 0

    reader.net = Decimal("0.0002")
    clock.now += 0.05
    await watchdog.check()  # a new episode opens here: its grace starts now, not at the first break
    clock.now += 0.4
    await watchdog.check()
    assert watchdog.alerts == 0
    clock.now += 0.1
    await watchdog.check()
    assert watchdog.alerts == 1
    got = await receiver.next()
    assert got.body["details"]["open_for_s"] == 0.5
    assert await alerter.flush(WAIT_S)
    assert len(receiver.received) == 1


async def test_failed_reads_neither_close_nor_open_an_episode(
    receiver: Receiver, alerter: Alerter, log_lines: list[str]
) -> None:
    reader, clock = Reader(), FakeClock()
    watchdog = ExposureWatchdog(reader, TOLERANCE, grace_s=0.5, alerter=alerter, metrics=None, clock=clock,
                                read_timeout_s=0.05)
    reader.fail = True
    await watchdog.check()
    assert not watchdog.breached  # not knowing is not a break

    reader.fail, reader.net = False, Decimal("0.0002")
    await watchdog.check()
    reader.fail = True
    clock.now += 0.2
    await watchdog.check()
    reader.fail, reader.hang = False, True  # a read that never answers counts as failed too
    clock.now += 0.2
    await watchdog.check()
    assert watchdog.breached and watchdog.alerts == 0

    reader.hang = False
    clock.now += 0.1
    await watchdog.check()  # 0.5 s since the episode opened, failed reads in between
    assert watchdog.alerts == 1
    await receiver.next()
    failures = [line for line in log_lines if "cannot read the net position" in line]
    assert len(failures) == 2  # once per run of failures, not once per read
    assert "ConnectionError: redis down" in failures[0]
    assert sum("reads the net position again" in line for line in log_lines) == 2


async def test_the_exposure_gauge_follows_each_read() -> None:
    reader, metrics = Reader(), HedgeMetrics("t1", "a", port=free_port())
    watchdog = ExposureWatchdog(reader, TOLERANCE, grace_s=10, alerter=None, metrics=metrics)
    labels = {"pair": "t1", "role": "a"}
    for net in (Decimal("0.0002"), Decimal("-0.0001"), Decimal(0)):
        reader.net = net
        await watchdog.check()
        assert metrics.registry.get_sample_value("lighter_hedge_net_exposure", labels) == float(net)
    assert watchdog.last_net == 0


def test_from_config_takes_the_flat_tolerance_and_the_alerts_grace() -> None:
    config = load_config(SHIPPED)
    watchdog = ExposureWatchdog.from_config(config, Reader(), alerter=None, metrics=None)
    assert watchdog.tolerance == config.strategy.flat_tolerance == TOLERANCE
    assert (watchdog.grace_s, watchdog.interval_s, watchdog.market) == (30.0, 10.0, "BTC")


def test_from_config_paces_its_reads_by_the_tier_unless_told() -> None:
    shipped = load_config(SHIPPED)
    assert shipped.alerts.exposure_check_interval_s is None  # the shipped file leaves it to the tier

    def interval(tier: str, shared: bool, told: float | None = None) -> float:
        config = replace(shipped, exchange=replace(shipped.exchange, tier=tier, shared_budget=shared),
                         alerts=replace(shipped.alerts, exposure_check_interval_s=told))
        return ExposureWatchdog.from_config(config, Reader(), alerter=None, metrics=None).interval_s

    assert interval("standard", shared=False) == 12.0  # a twelfth of 60 requests a minute
    assert interval("standard", shared=True) == 24.0  # half of that when A and B share the budget
    assert interval("standard", shared=True, told=3) == 3.0

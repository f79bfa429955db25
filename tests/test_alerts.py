"""Alerts (hedge_strategy.observe.alerts) against a real local HTTP server as webhook and Telegram API."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from hedge_strategy.config import AlertsConfig, ConfigError, config_from_mapping, load_config
from hedge_strategy.observe import Alerter, AlertKind, HedgeMetrics, TelegramTarget
from tests.fixtures.common import FakeClock
from tests.fixtures.procs import free_port
from tests.fixtures.webhook import WAIT_S, Receiver

SHIPPED = Path(__file__).resolve().parents[1] / "config.yaml"
TOKEN = "123456789:AAH-test_token-not-real"
CHAT = "-1001234567890"


def counted(metrics: HedgeMetrics, kind: str, result: str) -> float:
    sample = metrics.registry.get_sample_value(
        "lighter_hedge_alerts_total", {"pair": "t1", "role": "a", "kind": kind, "result": result})
    return sample or 0.0


def unserved_metrics() -> HedgeMetrics:
    """Enabled metrics (their registry counts) that are never served: these tests read the registry."""
    return HedgeMetrics("t1", "a", port=free_port())


async def test_each_event_is_one_post_with_the_documented_payload(receiver: Receiver) -> None:
    alerter = Alerter("t1", "A", webhook_url=receiver.url("/hook/s3cret"))
    await alerter.start()
    before_ms = int(time.time() * 1000)
    assert alerter.notify(AlertKind.HEDGE_FAILED, "hedge of 0.0002 BTC failed", key="r-1",
                          details={"size": Decimal("0.0002"), "attempts": 5})
    assert alerter.notify(AlertKind.PAUSED, "paused by ctl: maintenance", key="ctl")
    first, second = await receiver.next(), await receiver.next()
    assert await alerter.flush(WAIT_S)
    await alerter.stop()

    assert first.path == "/hook/s3cret"
    assert set(first.body) == {"pair", "role", "kind", "severity", "message", "details", "ts"}
    assert first.body["pair"] == "t1" and first.body["role"] == "a"
    assert first.body["kind"] == "hedge_failed" and first.body["severity"] == "critical"
    assert first.body["message"] == "hedge of 0.0002 BTC failed"
    assert first.body["details"] == {"size": "0.0002", "attempts": 5}
    assert before_ms <= first.body["ts"] <= int(time.time() * 1000)
    assert (second.body["kind"], second.body["severity"]) == ("paused", "warning")
    assert len(receiver.received) == 2  # nothing more once the queue drained


async def test_duplicates_within_the_window_are_dropped(receiver: Receiver) -> None:
    clock, metrics = FakeClock(), unserved_metrics()
    alerter = Alerter("t1", "a", webhook_url=receiver.url("/hook"), dedup_window_s=60, clock=clock,
                      metrics=metrics)
    await alerter.start()
    sent = [alerter.notify(AlertKind.HEARTBEAT_LOST, "B silent", key="B") for _ in range(3)]
    sent.append(alerter.notify(AlertKind.HEARTBEAT_LOST, "A silent", key="A"))  # another key: its own alert
    sent.append(alerter.notify(AlertKind.PAUSED, "B silent", key="B"))  # another kind, same key: too
    clock.now += 59.9
    sent.append(alerter.notify(AlertKind.HEARTBEAT_LOST, "B still silent", key="B"))
    clock.now += 0.2  # the window of the first B alert has passed
    sent.append(alerter.notify(AlertKind.HEARTBEAT_LOST, "B still silent", key="B"))
    assert await alerter.flush(WAIT_S)
    await alerter.stop()

    assert sent == [True, False, False, True, True, False, True]
    messages = [(r.body["kind"], r.body["message"]) for r in receiver.received]
    assert sorted(messages) == sorted([("heartbeat_lost", "B silent"), ("heartbeat_lost", "A silent"),
                                       ("paused", "B silent"), ("heartbeat_lost", "B still silent")])
    assert counted(metrics, "heartbeat_lost", "deduplicated") == 3
    assert counted(metrics, "heartbeat_lost", "sent") == 3


async def test_rate_limit_caps_alerts_per_rolling_minute(receiver: Receiver) -> None:
    clock, metrics = FakeClock(), unserved_metrics()
    alerter = Alerter("t1", "a", webhook_url=receiver.url("/hook"), max_per_minute=3, clock=clock,
                      metrics=metrics)
    await alerter.start()
    first = [alerter.notify(AlertKind.HEDGE_FAILED, f"failure {n}", key=str(n)) for n in range(5)]
    clock.now += 59.0
    assert not alerter.notify(AlertKind.HEDGE_FAILED, "failure 5", key="5")
    clock.now += 1.0  # the first three are a minute old now
    later = [alerter.notify(AlertKind.HEDGE_FAILED, f"failure {n}", key=str(n)) for n in (6, 7, 8, 9)]
    assert await alerter.flush(WAIT_S)
    await alerter.stop()

    assert first == [True, True, True, False, False]
    assert later == [True, True, True, False]
    assert sorted(r.body["message"] for r in receiver.received) == [
        "failure 0", "failure 1", "failure 2", "failure 6", "failure 7", "failure 8"]
    assert counted(metrics, "hedge_failed", "rate_limited") == 4


async def test_http_500_is_logged_and_counted_not_raised(receiver: Receiver, log_lines: list[str]) -> None:
    receiver.status = 500
    metrics = unserved_metrics()
    alerter = Alerter("t1", "a", webhook_url=receiver.url("/hook/s3cret"), metrics=metrics)
    await alerter.start()
    assert alerter.notify(AlertKind.EXPOSURE, "legs apart", key="episode-1")
    await receiver.next()
    assert await alerter.flush(WAIT_S)
    await alerter.stop()
    failures = [line for line in log_lines if "not delivered" in line]
    assert len(failures) == 1
    assert "HTTP 500" in failures[0] and f"http://127.0.0.1:{receiver.port}" in failures[0]
    assert not any("s3cret" in line for line in log_lines)  # the webhook path is never logged
    assert counted(metrics, "exposure", "failed") == 1


async def test_connection_refused_is_logged_and_notify_stays_immediate(log_lines: list[str]) -> None:
    alerter = Alerter("t1", "a", webhook_url=f"http://127.0.0.1:{free_port()}/hook", timeout_s=2)
    await alerter.start()
    assert alerter.notify(AlertKind.HEDGE_FAILED, "hedge failed", key="r-1")
    assert not any("not delivered" in line for line in log_lines)  # queued: the attempt comes after notify
    assert await alerter.flush(WAIT_S)
    await alerter.stop()
    failures = [line for line in log_lines if "not delivered" in line]
    assert len(failures) == 1 and "ClientConnectorError" in failures[0]


async def test_a_hanging_webhook_times_out_without_holding_up_notify(
    receiver: Receiver, log_lines: list[str]
) -> None:
    receiver.hang = True
    alerter = Alerter("t1", "a", webhook_url=receiver.url("/hook"), timeout_s=0.3)
    await alerter.start()
    assert alerter.notify(AlertKind.HEDGE_FAILED, "first", key="1")
    await receiver.next()  # the delivery task is now stuck waiting on the server
    for n in (2, 3):
        assert alerter.notify(AlertKind.HEDGE_FAILED, f"alert {n}", key=str(n))
    # Both taken while the worker is blocked: notify never waits on a delivery (neither reached the server).
    assert [r.body["message"] for r in receiver.received] == ["first"]
    assert await alerter.flush(WAIT_S)  # each of the three gave up after its 0.3 s timeout
    await alerter.stop()
    assert sum("no answer within 0.3 s" in line for line in log_lines) == 3
    assert [r.body["message"] for r in receiver.received] == ["first", "alert 2", "alert 3"]


async def test_telegram_request_shape_with_credentials_from_the_environment(receiver: Receiver) -> None:
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": CHAT}
    telegram = TelegramTarget.from_env(receiver.url(), env)
    assert telegram is not None
    alerter = Alerter("t1", "b", telegram=telegram)
    await alerter.start()
    assert alerter.notify(AlertKind.HEDGE_FAILED, "hedge failed after 5 attempts", key="r-9",
                          details={"request_id": "r-9"})
    got = await receiver.next()
    await alerter.stop()
    assert got.path == f"/bot{TOKEN}/sendMessage"
    assert got.body["chat_id"] == CHAT
    text = got.body["text"]
    assert text.startswith("[CRITICAL] lighter-hedge t1/B: hedge_failed")
    assert "hedge failed after 5 attempts" in text and "request_id: r-9" in text


async def test_telegram_failure_never_logs_the_token(receiver: Receiver, log_lines: list[str]) -> None:
    receiver.status = 401
    telegram = TelegramTarget(token=TOKEN, chat_id=CHAT, api_url=receiver.url())
    alerter = Alerter("t1", "a", telegram=telegram)
    await alerter.start()
    alerter.notify(AlertKind.PAUSED, "paused", key="A")
    assert await alerter.flush(WAIT_S)
    await alerter.stop()
    assert any("not delivered to Telegram: HTTP 401" in line for line in log_lines)
    assert not any(TOKEN in line or TOKEN.split(":")[1] in line for line in log_lines)


async def test_from_config_sends_to_webhook_and_telegram_once_each(receiver: Receiver) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["alerts"].update(webhook_url="http://example.invalid/hook", telegram=True,
                          telegram_api_url=receiver.url())
    config = config_from_mapping(data)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": CHAT, "ALERTS_WEBHOOK_URL": receiver.url("/env")}
    alerter = Alerter.from_config(config, "a", env=env)
    assert alerter.webhook_url == receiver.url("/env")  # the environment overrides the YAML
    await alerter.start()
    alerter.notify(AlertKind.HEARTBEAT_LOST, "B heartbeat missing for 5 s", key="B")
    paths = sorted([(await receiver.next()).path, (await receiver.next()).path])
    assert await alerter.flush(WAIT_S)
    await alerter.stop()
    assert paths == sorted(["/env", f"/bot{TOKEN}/sendMessage"])
    assert len(receiver.received) == 2


async def test_telegram_without_credentials_is_off_and_logged(log_lines: list[str]) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["alerts"]["telegram"] = True
    alerter = Alerter.from_config(config_from_mapping(data), "a", env={"TELEGRAM_CHAT_ID": CHAT})
    assert alerter.telegram is None and not alerter.enabled
    assert not alerter.notify(AlertKind.PAUSED, "paused", key="A")  # nowhere to send: refused, not queued
    await alerter.start()
    await alerter.stop()
    assert any("TELEGRAM_BOT_TOKEN not set" in line for line in log_lines)


async def test_stop_delivers_what_is_queued(receiver: Receiver) -> None:
    alerter = Alerter("t1", "a", webhook_url=receiver.url("/hook"))
    for n in range(3):  # queued before start: delivered once the task runs
        alerter.notify(AlertKind.HEDGE_FAILED, f"failure {n}", key=str(n))
    await alerter.start()
    await alerter.stop()
    assert [r.body["message"] for r in receiver.received] == ["failure 0", "failure 1", "failure 2"]


async def test_a_full_queue_drops_and_counts(receiver: Receiver) -> None:
    metrics = unserved_metrics()
    alerter = Alerter("t1", "a", webhook_url=receiver.url("/hook"), queue_size=2, metrics=metrics)
    results = [alerter.notify(AlertKind.HEDGE_FAILED, f"f{n}", key=str(n)) for n in range(3)]
    assert results == [True, True, False]
    assert counted(metrics, "hedge_failed", "dropped") == 1
    await alerter.start()
    await alerter.stop()
    assert len(receiver.received) == 2


# --- config ------------------------------------------------------------------------------------------------


def test_shipped_alerts_config() -> None:
    config = load_config(SHIPPED)
    assert config.alerts == AlertsConfig()
    assert config.alerts.webhook_url is None and config.alerts.telegram is False
    assert not Alerter.from_config(config, "a", env={}).enabled


def test_alerts_section_may_be_omitted_and_then_matches_the_shipped_one() -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    del data["alerts"]
    assert config_from_mapping(data).alerts == load_config(SHIPPED).alerts


@pytest.mark.parametrize(
    ("key", "bad", "expected"),
    [
        ("webhook_url", "ftp://x/y", "alerts.webhook_url: expected a URL starting with http:// or https://"),
        ("telegram", "yes", "alerts.telegram: expected true or false, got 'yes'"),
        ("telegram_api_url", None, "alerts.telegram_api_url: expected a URL starting with http://"),
        ("max_per_minute", 0, "alerts.max_per_minute: expected an integer >= 1, got 0"),
        ("dedup_window_s", -1, "alerts.dedup_window_s: expected a number >= 0, got -1"),
        ("timeout_s", 0, "alerts.timeout_s: expected a number > 0, got 0"),
        ("exposure_grace_s", "soon", "alerts.exposure_grace_s: expected a number >= 0, got 'soon'"),
        ("exposure_check_interval_s", 0, "alerts.exposure_check_interval_s: expected a number > 0"),
        ("telegram_token", "x", "alerts.telegram_token: unknown key"),  # secrets never come from YAML
    ],
)
def test_bad_alerts_values_name_the_key(key: str, bad: Any, expected: str) -> None:
    data = yaml.safe_load(SHIPPED.read_text())
    data["alerts"][key] = bad
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data)
    assert expected in str(info.value)

"""Observability of the bot processes: Prometheus metrics, alerts, the net-exposure watchdog.

`metrics.HedgeMetrics` counts and times what a process does and serves it on a local port;
`alerts.Alerter` tells a webhook and/or Telegram about what needs a human, without ever waiting on them;
`exposure.ExposureWatchdog` turns a lasting A + B imbalance into an alert;
`events` records what a process did as typed events (`--events-file`), for programs that wait on it.
All four are no-ops when not configured.
"""

from hedge_strategy.observe.alerts import (
    DEFAULT_SEVERITY,
    TELEGRAM_CHAT_ENV,
    TELEGRAM_TOKEN_ENV,
    WEBHOOK_ENV,
    Alert,
    Alerter,
    AlertKind,
    Severity,
    TelegramTarget,
)
from hedge_strategy.observe.events import (
    NO_EVENTS,
    BotEvent,
    EventKind,
    EventSink,
    JsonLinesSink,
    RoleEvents,
    open_event_sink,
)
from hedge_strategy.observe.exposure import ExposureWatchdog
from hedge_strategy.observe.metrics import INTENTS, STAGES, HedgeMetrics

__all__ = [
    "DEFAULT_SEVERITY",
    "INTENTS",
    "NO_EVENTS",
    "STAGES",
    "TELEGRAM_CHAT_ENV",
    "TELEGRAM_TOKEN_ENV",
    "WEBHOOK_ENV",
    "Alert",
    "AlertKind",
    "Alerter",
    "BotEvent",
    "EventKind",
    "EventSink",
    "ExposureWatchdog",
    "HedgeMetrics",
    "JsonLinesSink",
    "RoleEvents",
    "Severity",
    "TelegramTarget",
    "open_event_sink",
]

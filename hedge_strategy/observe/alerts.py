"""Alerts to a webhook and/or Telegram that never delay trading.

`Alerter.notify(kind, message, ...)` is synchronous and returns at once: it decides whether the alert goes out
(deduplication, rate limit), stamps it and puts it on a queue. A background task started by `start()` delivers
each queued alert to every configured target, each attempt bounded by `timeout_s`. A delivery failure (an HTTP
error, a refused connection, a timeout) is logged and counted, never raised and not retried: an alert that
arrives minutes late is worse than a log line now.

- Deduplication: an alert with the same `kind` and `key` as one accepted less than `dedup_window_s` ago is
  dropped. The key says what the alert is about (a request id, "B", an exposure episode), so two different
  failed hedges both go out while one failure reported twice does not.
- Rate limit: at most `max_per_minute` alerts are accepted in any rolling 60 seconds; the rest are dropped.
- Every drop is logged (one line) and counted in `lighter_hedge_alerts_total{result=...}` when metrics are
  given: `deduplicated`, `rate_limited`, `dropped` (queue full). Deliveries count `sent` / `failed` once per
  target.

Webhook: a JSON POST of `{"pair", "role", "kind", "severity", "message", "details", "ts"}` (`ts` in Unix
milliseconds; `details` a JSON object, Decimals as strings). `ALERTS_WEBHOOK_URL` in the environment overrides
`alerts.webhook_url`; since such URLs often embed a secret path, logs name only the scheme and host.

Telegram: `POST {telegram_api_url}/bot<token>/sendMessage` with `{"chat_id", "text"}`, the token and the
chat id read from `TELEGRAM_BOT_TOKEN` / `TELEGRAM_CHAT_ID` (never from the YAML, never logged).

Call `notify` from the event loop's thread (the queue is an asyncio queue).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from loguru import logger

from hedge_strategy.task_end import end_tasks

if TYPE_CHECKING:
    from hedge_strategy.config import Config
    from hedge_strategy.observe.metrics import HedgeMetrics

WEBHOOK_ENV = "ALERTS_WEBHOOK_URL"
TELEGRAM_TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
TELEGRAM_CHAT_ENV = "TELEGRAM_CHAT_ID"
TELEGRAM_TEXT_LIMIT = 4096  # Telegram refuses longer messages
RATE_WINDOW_S = 60.0
DEFAULT_QUEUE_SIZE = 100


class AlertKind(StrEnum):
    PAUSED = "paused"
    HEDGE_FAILED = "hedge_failed"
    EXPOSURE = "exposure"  # |A + B| above tolerance for longer than the grace
    HEARTBEAT_LOST = "heartbeat_lost"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# A pause is deliberate or protective: the book is safe. The others can leave a leg unhedged.
DEFAULT_SEVERITY: dict[str, Severity] = {
    AlertKind.PAUSED: Severity.WARNING,
    AlertKind.HEDGE_FAILED: Severity.CRITICAL,
    AlertKind.EXPOSURE: Severity.CRITICAL,
    AlertKind.HEARTBEAT_LOST: Severity.CRITICAL,
}


@dataclass(frozen=True)
class Alert:
    pair: str
    role: str
    kind: str
    severity: str
    message: str
    details: dict[str, Any]
    ts: int  # Unix milliseconds

    def payload(self) -> dict[str, Any]:
        """The webhook body."""
        return {"pair": self.pair, "role": self.role, "kind": self.kind, "severity": self.severity,
                "message": self.message, "details": self.details, "ts": self.ts}

    def text(self) -> str:
        """The Telegram message: a headline, the message, then one line per detail."""
        lines = [f"[{self.severity.upper()}] lighter-hedge {self.pair}/{self.role.upper()}: {self.kind}",
                 self.message]
        lines += [f"{name}: {value}" for name, value in self.details.items()]
        text = "\n".join(lines)
        return text if len(text) <= TELEGRAM_TEXT_LIMIT else text[: TELEGRAM_TEXT_LIMIT - 1] + "…"


@dataclass(frozen=True)
class TelegramTarget:
    token: str
    chat_id: str
    api_url: str = "https://api.telegram.org"

    @classmethod
    def from_env(cls, api_url: str, env: Mapping[str, str] | None = None) -> TelegramTarget | None:
        """The bot token and chat id from the environment, or None (logged) when either is missing."""
        env = os.environ if env is None else env
        token, chat_id = env.get(TELEGRAM_TOKEN_ENV, "").strip(), env.get(TELEGRAM_CHAT_ENV, "").strip()
        if not token or not chat_id:
            missing = [name for name, value in ((TELEGRAM_TOKEN_ENV, token), (TELEGRAM_CHAT_ENV, chat_id))
                       if not value]
            logger.error("alerts.telegram is on but {} not set: Telegram alerts are off",
                         " and ".join(missing))
            return None
        return cls(token=token, chat_id=chat_id, api_url=api_url.rstrip("/"))

    @property
    def send_url(self) -> str:
        return f"{self.api_url}/bot{self.token}/sendMessage"

    def scrub(self, text: str) -> str:
        """`text` without the bot token (an error message could quote the request URL)."""
        return text.replace(self.token, "<token>")


class Alerter:
    """Queues alerts synchronously and delivers them in the background. See the module docstring."""

    def __init__(
        self,
        pair: str,
        role: str,
        *,
        webhook_url: str | None = None,
        telegram: TelegramTarget | None = None,
        dedup_window_s: float = 300.0,
        max_per_minute: int = 10,
        timeout_s: float = 5.0,
        metrics: HedgeMetrics | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pair = pair
        self.role = role.lower()
        self.webhook_url = webhook_url or None
        self.telegram = telegram
        self.dedup_window_s = dedup_window_s
        self.max_per_minute = max_per_minute
        self.timeout_s = timeout_s
        self._metrics = metrics
        self._clock = clock
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._last_accepted: dict[tuple[str, str], float] = {}
        self._accepted_times: deque[float] = deque()
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, config: Config, role: str, metrics: HedgeMetrics | None = None,
                    env: Mapping[str, str] | None = None) -> Alerter:
        """The alerter of `role` as `config.alerts` and the environment describe it."""
        env = os.environ if env is None else env
        cfg = config.alerts
        webhook = _webhook_from(env.get(WEBHOOK_ENV, "").strip() or None, cfg.webhook_url)
        telegram = TelegramTarget.from_env(cfg.telegram_api_url, env) if cfg.telegram else None
        return cls(config.pair, role, webhook_url=webhook, telegram=telegram,
                   dedup_window_s=cfg.dedup_window_s, max_per_minute=cfg.max_per_minute,
                   timeout_s=cfg.timeout_s, metrics=metrics)

    @property
    def enabled(self) -> bool:
        """True when there is somewhere to deliver to."""
        return self.webhook_url is not None or self.telegram is not None

    # --- accepting --------------------------------------------------------------------------------------

    def notify(self, kind: str, message: str, *, key: str = "", severity: str | None = None,
               details: Mapping[str, Any] | None = None) -> bool:
        """Queue an alert; True when it was accepted. Never blocks, never raises for a delivery problem.

        `kind`: an `AlertKind` (any short word works); `key`: what it is about, for deduplication;
        `severity`: info, warning, critical (default by kind); `details`: JSON-able extras (Decimals allowed).
        """
        if not self.enabled:
            return False
        kind = str(kind)
        now = self._clock()
        reason = self._refusal(kind, key, now)
        if reason is not None:
            logger.warning("alert {} ({}) not sent: {}: {}", kind, key or "-", reason.replace("_", " "),
                           message)
            self._count(kind, reason)
            return False
        alert = Alert(pair=self.pair, role=self.role, kind=kind,
                      severity=str(severity or DEFAULT_SEVERITY.get(kind, Severity.WARNING)),
                      message=message, details=_jsonable(details), ts=int(time.time() * 1000))
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            logger.warning("alert {} ({}) dropped: {} alerts already waiting for delivery: {}",
                           kind, key or "-", self._queue.qsize(), message)
            self._count(kind, "dropped")
            return False
        self._remember(kind, key, now)
        logger.info("alert {} ({}, {}) queued for delivery: {}", kind, key or "-", alert.severity, message)
        return True

    def _refusal(self, kind: str, key: str, now: float) -> str | None:
        """Why this alert must not go out now ("deduplicated", "rate_limited"), or None."""
        last = self._last_accepted.get((kind, key))
        if last is not None and now - last < self.dedup_window_s:
            return "deduplicated"
        while self._accepted_times and now - self._accepted_times[0] >= RATE_WINDOW_S:
            self._accepted_times.popleft()
        if len(self._accepted_times) >= self.max_per_minute:
            return "rate_limited"
        return None

    def _remember(self, kind: str, key: str, now: float) -> None:
        if len(self._last_accepted) > 1024:  # keep the dedup memory bounded on a long run
            self._last_accepted = {k: t for k, t in self._last_accepted.items()
                                   if now - t < self.dedup_window_s}
        self._last_accepted[(kind, key)] = now
        self._accepted_times.append(now)

    # --- delivering -------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._worker is not None or not self.enabled:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._worker = asyncio.create_task(self._deliver_forever(), name=f"alerts-{self.role}")
        targets = [t for t in (self.webhook_url and f"webhook {_safe_url(self.webhook_url)}",
                               self.telegram and "Telegram") if t]
        logger.info("alerts on: {} (dedup {:g} s, at most {} per minute)", " and ".join(targets),
                    self.dedup_window_s, self.max_per_minute)

    async def flush(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until every queued alert was delivered or failed. True when done."""
        if self._worker is None:
            return self._queue.empty()
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, drain_timeout_s: float | None = None) -> None:
        """Deliver what is queued (waiting at most `drain_timeout_s`, default one delivery timeout plus a
        second), then close. Alerts still waiting after that are logged as lost."""
        worker = self._worker
        if worker is None:
            return
        if not await self.flush(self.timeout_s + 1 if drain_timeout_s is None else drain_timeout_s):
            logger.warning("alerts: stopping with {} alert(s) undelivered", self._queue.qsize())
        await end_tasks([worker], "alerts")  # bounded, as every stop of a task (`task_end`)
        self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver_forever(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._deliver(alert)
            except Exception:  # a bug here must not end alerting for the rest of the run
                logger.exception("alert {} delivery crashed; continuing with the next", alert.kind)
            finally:
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        sends = []
        if self.webhook_url is not None:
            shown_as = f"webhook {_safe_url(self.webhook_url)}"
            sends.append(self._post(self.webhook_url, alert.payload(), shown_as, alert))
        if self.telegram is not None:
            body = {"chat_id": self.telegram.chat_id, "text": alert.text()}
            sends.append(self._post(self.telegram.send_url, body, "Telegram", alert))
        await asyncio.gather(*sends)

    async def _post(self, url: str, body: dict[str, Any], shown_as: str, alert: Alert) -> None:
        """POST one alert to one target; log and count the result. Never raises (lets cancellation out)."""
        assert self._session is not None
        failure: str | None = None
        try:
            async with asyncio.timeout(self.timeout_s), self._session.post(url, json=body) as response:
                if not 200 <= response.status < 300:
                    failure = f"HTTP {response.status} {(await response.text())[:200]!r}"
        except TimeoutError:
            failure = f"no answer within {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if failure is None:
            logger.info("alert {} ({}) delivered to {}", alert.kind, alert.severity, shown_as)
            self._count(alert.kind, "sent")
            return
        failure = failure.replace(url, shown_as)  # an error may quote the URL: its path can be a secret
        if self.telegram is not None:
            failure = self.telegram.scrub(failure)
        logger.warning("alert {} not delivered to {}: {}; not retried", alert.kind, shown_as, failure)
        self._count(alert.kind, "failed")

    def _count(self, kind: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.alert(kind, result)


def _webhook_from(from_env: str | None, from_config: str | None) -> str | None:
    if from_env is None:
        return from_config
    if urlsplit(from_env).scheme.lower() not in ("http", "https"):
        logger.error("{} is not an http(s) URL: ignored, using alerts.webhook_url", WEBHOOK_ENV)
        return from_config
    return from_env


def _safe_url(url: str) -> str:
    """Scheme, host and port only: a webhook's path or query often is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _jsonable(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of `details` (Decimals and other objects as strings), taken now so that later
    changes to the caller's objects do not change the alert."""
    if not details:
        return {}
    try:
        value = json.loads(json.dumps(dict(details), default=str))
    except (TypeError, ValueError) as exc:  # circular or non-string keys: keep something readable
        return {"unserializable": f"{type(exc).__name__}: {details!r}"[:1000]}
    return value if isinstance(value, dict) else {}

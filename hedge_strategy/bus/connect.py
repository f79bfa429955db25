"""One way to reach the configured Redis, for A, B and hedgectl: directly at `redis.url`, or through Redis
Sentinel (`redis.sentinels`, `redis.service_name`) to whichever server is the master now.

Every client has bounded waits, so a Redis that hangs rather than refuses (a stopped process, a host that
swallows packets) costs a caller at most about `(retries + 1) * (socket_timeout_s + backoff)` per command,
never forever: `socket_timeout_s` for each reply, `connect_timeout_s` for each connection, a PING before
using a connection idle for `health_check_interval_s`, and redis-py's `Retry` with exponential backoff and
jitter (`retry_backoff_base_s` doubling up to `retry_backoff_cap_s`) for commands that timed out or lost
their connection. A retried command may have been executed once already: everything the bus writes is safe
to repeat (requests and outcomes are deduplicated by request id, flags are whole values).

Through Sentinel, each new connection asks the sentinels for the master's address, and a connection to a
server that was demoted (it answers READONLY) is dropped and reopened to the new master; the password and
database number come from `redis.url` (the sentinels themselves are reached without a password).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hedge_strategy.config import RedisConfig

# What the direct URL's parser yields that names the server rather than the session on it: through Sentinel
# the sentinels name the server.
_SERVER_KEYS = ("host", "port", "path", "connection_class")


@dataclass
class RedisConnection:
    """A client and what must be closed with it (the sentinels' own clients)."""

    client: aioredis.Redis
    where: str  # for messages: the URL without its password, or the sentinel service
    _also_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.client.aclose()
        for close in self._also_close:
            await close()


def open_redis(
    settings: RedisConfig,
    *,
    decode_responses: bool = False,
    socket_timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
    retries: int | None = None,
) -> RedisConnection:
    """A client for the configured Redis; the keyword arguments override the config (hedgectl's shorter
    waits). No I/O happens here: the first command connects."""
    options = client_options(settings, socket_timeout_s=socket_timeout_s,
                             connect_timeout_s=connect_timeout_s, retries=retries)
    options["decode_responses"] = decode_responses
    if not settings.sentinels:
        client = aioredis.Redis.from_url(settings.url, **options)
        return RedisConnection(client, describe_redis(settings))
    session = {k: v for k, v in parse_url(settings.url).items() if k not in _SERVER_KEYS}
    if urlsplit(settings.url).scheme.lower() == "rediss":
        session["ssl"] = True
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_") or k == "retry"}
    sentinel = Sentinel(settings.sentinel_addresses(), sentinel_kwargs=sentinel_options)
    client = sentinel.master_for(settings.service_name, redis_class=aioredis.Redis, **session, **options)
    return RedisConnection(client, describe_redis(settings), [sentinel.aclose])


def client_options(
    settings: RedisConfig,
    *,
    socket_timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
    retries: int | None = None,
) -> dict[str, Any]:
    """The timeouts, health check and retry policy of `settings` as redis-py client arguments."""
    backoff = ExponentialWithJitterBackoff(cap=settings.retry_backoff_cap_s,
                                           base=settings.retry_backoff_base_s)
    connect_s = settings.connect_timeout_s if connect_timeout_s is None else connect_timeout_s
    return {
        "socket_timeout": settings.socket_timeout_s if socket_timeout_s is None else socket_timeout_s,
        "socket_connect_timeout": connect_s,
        "health_check_interval": settings.health_check_interval_s,
        "retry": Retry(backoff, settings.retries if retries is None else retries,
                       supported_errors=(RedisConnectionError, RedisTimeoutError)),
    }


def describe_redis(settings: RedisConfig) -> str:
    """Where Redis is, fit to print: the URL without its password, or the Sentinel service and sentinels."""
    if settings.sentinels:
        return f"Sentinel service {settings.service_name!r} via {', '.join(settings.sentinels)}"
    return safe_url(settings.url)


def safe_url(url: str) -> str:
    """`url` with any password replaced by `***`, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal needs its brackets back
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

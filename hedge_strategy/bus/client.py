"""`Bus`: everything A and B say to each other through Redis, namespaced by the pair name.

Keys and channels (`P` = `hedge:{pair}`):

| name | kind | what |
|---|---|---|
| `P:requests` | stream, group `hedgers` | hedge requests, A -> B; acknowledged once B published the outcome |
| `P:outcomes` | stream | every outcome B published (history, for operators) |
| `P:outcome:{request_id}` | string, TTL | the outcome of one request, so A finds it after a restart |
| `P:dead_letters` | stream | malformed entries with the reason and the raw fields |
| `P:heartbeat:{role}` | string, TTL | a process is alive (JSON: role, ts_ms and what it reported) |
| `P:pause` | string | pause state of A (reason, by, since_ms); no TTL, survives restarts |
| `P:hold_b` | string | hold of B (same shape): B reads no new request while it is set |
| `P:budget:{name}` | hash, TTL | a rate-limit budget A and B share (`budget.py`, `exchange.shared_budget`) |
| `P:epoch` | string | A's marker, written once, never deleted: gone means Redis lost its data (`audit`) |
| `P:account_a_filled` | channel | every request, as published (wake-up, `redis-cli subscribe`) |
| `P:account_b_filled` | channel | every filled outcome |
| `P:account_b_hedge_failed` | channel | every failed outcome |
| `P:pause_changed` | channel | "paused" / "resumed" |
| `P:hold_b_changed` | channel | "held" / "released" |

Pub/sub is only for wake-ups and watching: the streams and the stored outcomes are the truth.

Errors: every method sends commands to Redis and raises `redis.exceptions.ConnectionError` /
`redis.exceptions.TimeoutError` (both `RedisError`) when Redis is unreachable; the caller retries (nothing is
half-written: multi-command writes are MULTI/EXEC transactions). Malformed data read from Redis never raises:
stream entries go to the dead letters, pub/sub messages and stored values are logged and skipped.
`publish_*` raise `ValueError` for a message of another pair.

The processes build their bus with `Bus.from_config` (`bus.connect`: direct or through Sentinel, with the
configured timeouts and retry policy). Use a client whose `socket_timeout` (if any) exceeds the `block_ms` of
`read_requests` (the config requires `redis.socket_timeout_s` > 1 s, B's block). With
`decode_responses=True`, redis-py itself fails on non-UTF-8 bytes before the bus sees them;
`Bus.from_config` and `Bus.from_url` keep raw bytes so that even such an entry is dead-lettered rather than
raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import ResponseError

from hedge_strategy.bus.audit import GROUP, BusAudit
from hedge_strategy.bus.connect import RedisConnection, open_redis, safe_url
from hedge_strategy.bus.first_publish import EntryIds, id_refused
from hedge_strategy.bus.messages import (
    FILLED,
    BusMessageError,
    HedgeOutcome,
    HedgeRequest,
    decode_fields,
    decode_text,
    loads_bounded,
    now_ms,
)
from hedge_strategy.bus.outcomes import OutcomeSubscription, OutcomeWaiter, ProgressCallback
from hedge_strategy.config import RedisConfig

DATA_FIELD = "data"  # a stream entry holds one field: the message JSON
DEFAULT_OUTCOME_TTL_S = 7 * 24 * 3600
DEFAULT_MAX_STREAM_LEN = 100_000  # approximate trimming; far above any backlog a pair can build


class BusKeys:
    """The Redis key and channel names of one pair."""

    def __init__(self, pair: str) -> None:
        self.pair = pair
        self.prefix = f"hedge:{pair}"
        self.requests = f"{self.prefix}:requests"
        self.outcomes = f"{self.prefix}:outcomes"
        self.dead_letters = f"{self.prefix}:dead_letters"
        self.pause = f"{self.prefix}:pause"
        self.channel_a_filled = f"{self.prefix}:account_a_filled"
        self.channel_b_filled = f"{self.prefix}:account_b_filled"
        self.channel_b_hedge_failed = f"{self.prefix}:account_b_hedge_failed"
        self.channel_pause_changed = f"{self.prefix}:pause_changed"
        self.hold_b = f"{self.prefix}:hold_b"
        self.channel_hold_changed = f"{self.prefix}:hold_b_changed"
        self.epoch = f"{self.prefix}:epoch"
        self.maker_resting = f"{self.prefix}:maker_resting"  # A's resting order, for B (`bus.resting`)

    def outcome(self, request_id: str) -> str:
        return f"{self.prefix}:outcome:{request_id}"

    def heartbeat(self, role: str) -> str:
        return f"{self.prefix}:heartbeat:{role}"

    def stopped(self, role: str) -> str:
        return f"{self.prefix}:stopped:{role}"

    def budget(self, name: str) -> str:
        return f"{self.prefix}:budget:{name}"


@dataclass(frozen=True)
class Delivery:
    """A request handed to a consumer of the group; `ack` it (or pass it to `publish_outcome`) when done."""

    entry_id: str
    request: HedgeRequest
    redelivered: bool  # claimed from a previous consumer's pending list rather than read fresh


@dataclass(frozen=True)
class DeadLetter:
    entry_id: str
    reason: str
    source: str  # the stream the entry came from
    source_entry_id: str
    fields: dict[str, str]  # the entry's raw fields
    ts_ms: int


class Bus(BusAudit):
    """The hedge bus of one pair on one Redis. Cheap to create; share one per process."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pair: str,
        *,
        outcome_ttl_s: int = DEFAULT_OUTCOME_TTL_S,
        max_stream_len: int = DEFAULT_MAX_STREAM_LEN,
    ) -> None:
        self.redis = redis
        self.pair = pair
        self.keys = BusKeys(pair)
        self._outcome_ttl_s = outcome_ttl_s
        self._max_stream_len = max_stream_len
        self._connection: RedisConnection | None = None  # owned: closed by `aclose`
        self._entry_ids = EntryIds()  # explicit ids of first-published requests (`bus.first_publish`)

    @classmethod
    def from_url(cls, url: str, pair: str, **kwargs: Any) -> Bus:
        """A bus on its own client for `url` (raw bytes replies, redis-py's defaults: no retry); `aclose()`
        it. The processes use `from_config`."""
        client = aioredis.Redis.from_url(url, decode_responses=False)
        return cls.on(RedisConnection(client, safe_url(url)), pair, **kwargs)

    @classmethod
    def from_config(cls, settings: RedisConfig, pair: str, **kwargs: Any) -> Bus:
        """A bus on its own client for the configured Redis (direct or Sentinel, with the configured timeouts
        and retry policy: `bus.connect`); `aclose()` it."""
        return cls.on(open_redis(settings), pair, **kwargs)

    @classmethod
    def on(cls, connection: RedisConnection, pair: str, **kwargs: Any) -> Bus:
        """A bus owning `connection` (closed by `aclose`)."""
        bus = cls(connection.client, pair, **kwargs)
        bus._connection = connection
        return bus

    @property
    def where(self) -> str:
        """Where this bus's Redis is, fit to print (no password)."""
        return self._connection.where if self._connection is not None else "Redis"

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()

    # ----- requests (A -> B) -----------------------------------------------------------------------------

    async def publish_request(self, request: HedgeRequest) -> str:
        """Append `request` to the request stream and announce it; returns the stream entry id.

        Stamps `publish_ts_ms` when it is 0. Publishing the same request twice appends it twice: B dedupes by
        request id. A request marked `first_publish` is appended under an explicit id, so a retry of the
        same append is refused by Redis; it is then appended again unmarked (`bus.first_publish`).
        """
        self._check_pair(request.pair)
        if not request.publish_ts_ms:
            request = replace(request, publish_ts_ms=now_ms())
        if request.first_publish:
            try:
                return await self._append(request, self._entry_ids.next())
            except ResponseError as exc:
                if not id_refused(exc):
                    raise
                logger.info("bus {}: request {} is already in the stream, or Redis's clock is ahead of A's "
                            "({}); appended again unmarked (B checks its outcome)", self.pair,
                            request.request_id, exc)
                request = replace(request, first_publish=False, a_resting=None)
        return await self._append(request, "*")

    async def _append(self, request: HedgeRequest, entry_id: str) -> str:
        payload = request.to_json()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.requests, {DATA_FIELD: payload}, id=entry_id, maxlen=self._max_stream_len,
                      approximate=True)
            pipe.publish(self.keys.channel_a_filled, payload)
            entry, _ = await pipe.execute()
        return decode_text(entry)

    async def ensure_group(self) -> None:
        """Create the `hedgers` group (and the stream) if missing. Idempotent.

        The group starts at the beginning of the stream, so requests published before B ever ran are
        delivered.
        """
        try:
            await self.redis.xgroup_create(self.keys.requests, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_requests(
        self, consumer: str, count: int = 10, block_ms: int | None = 1000, *, own_pending: bool = False
    ) -> list[Delivery]:
        """New requests for `consumer`, waiting up to `block_ms` for one (None: do not wait; 0: forever).
        `own_pending`: instead, those delivered to `consumer` and not acknowledged (its history, at once;
        marked redelivered), such as one a read whose reply was lost took.

        A malformed entry is moved to the dead letters and acknowledged, never returned or raised.
        """
        start = "0" if own_pending else ">"
        try:
            reply = await self._xreadgroup(consumer, count, block_ms, start)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or group vanished (Redis restarted without persistence, or a FLUSHDB): recreate.
            logger.warning("bus {}: consumer group missing, recreating it", self.pair)
            await self.ensure_group()
            reply = await self._xreadgroup(consumer, count, block_ms, start)
        return await self._deliveries(_stream_entries(reply), redelivered=own_pending)

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int = 100) -> list[Delivery]:
        """Take over every request pending for at least `min_idle_ms` (XAUTOCLAIM), from any consumer.

        At start-up B calls it with `min_idle_ms=0` to reconcile what a previous B read but did not
        acknowledge.
        """
        deliveries: list[Delivery] = []
        start = "0-0"
        while True:
            try:
                reply = await self.redis.xautoclaim(
                    self.keys.requests, GROUP, consumer, min_idle_ms, start_id=start, count=count
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self.ensure_group()
                return deliveries
            deliveries += await self._deliveries(list(reply[1]), redelivered=True)
            for gone in reply[2] if len(reply) > 2 else ():
                logger.warning(
                    "bus {}: pending request entry {} was trimmed before being acknowledged; "
                    "dropped from the pending list",
                    self.pair,
                    decode_text(gone),
                )
            start = decode_text(reply[0])
            if start == "0-0":
                return deliveries

    async def pending_count(self) -> int:
        """How many requests were delivered to a consumer and not yet acknowledged."""
        try:
            summary = await self.redis.xpending(self.keys.requests, GROUP)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return 0
        return int(summary["pending"])

    async def ack(self, *deliveries: Delivery) -> int:
        """Acknowledge deliveries; returns how many were still pending."""
        if not deliveries:
            return 0
        return int(await self.redis.xack(self.keys.requests, GROUP, *(d.entry_id for d in deliveries)))

    # ----- outcomes (B -> A) -----------------------------------------------------------------------------

    async def publish_outcome(self, outcome: HedgeOutcome, ack: Sequence[Delivery] = ()) -> str:
        """Record `outcome` (stream + one key per request id, with TTL), announce it, and acknowledge `ack`.

        All in one transaction, so a request is never acknowledged without its outcome stored. Stamps
        `publish_ts_ms` when it is 0. Returns the outcome's stream entry id.
        """
        self._check_pair(outcome.pair)
        if not outcome.publish_ts_ms:
            outcome = replace(outcome, publish_ts_ms=now_ms())
        payload = outcome.to_json()
        channel = self.keys.channel_b_filled if outcome.status == FILLED else self.keys.channel_b_hedge_failed
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.keys.outcomes, {DATA_FIELD: payload}, maxlen=self._max_stream_len, approximate=True
            )
            for request_id in outcome.request_ids:
                pipe.set(self.keys.outcome(request_id), payload, ex=self._outcome_ttl_s)
            if ack:
                pipe.xack(self.keys.requests, GROUP, *(d.entry_id for d in ack))
            pipe.publish(channel, payload)
            results = await pipe.execute()
        return decode_text(results[0])

    async def get_outcome(self, request_id: str) -> HedgeOutcome | None:
        """The stored outcome of `request_id`, or None (not hedged yet, expired, or unreadable: logged)."""
        return (await self.get_outcomes([request_id])).get(request_id)

    async def get_outcomes(self, request_ids: Iterable[str]) -> dict[str, HedgeOutcome]:
        """The stored outcomes of those of `request_ids` that have one."""
        ids = list(dict.fromkeys(request_ids))
        if not ids:
            return {}
        values = await self.redis.mget([self.keys.outcome(r) for r in ids])
        found: dict[str, HedgeOutcome] = {}
        for request_id, raw in zip(ids, values, strict=True):
            if raw is not None:
                outcome = self.parse_outcome(raw, f"stored outcome of {request_id}")
                if outcome is not None:
                    found[request_id] = outcome
        return found

    def subscribe_outcomes(self) -> OutcomeSubscription:
        """Outcomes as they are published: `async with bus.subscribe_outcomes() as it: async for o in it`.

        See `OutcomeSubscription`: malformed messages are logged and skipped.
        """
        return OutcomeSubscription(self)

    def outcome_waiter(self, request_ids: Iterable[str]) -> OutcomeWaiter:
        """`async with bus.outcome_waiter(ids) as waiter: found = await waiter.wait(timeout_s)`.

        Split from `wait_outcomes` for callers that want to be listening before they do something.
        """
        return OutcomeWaiter(self, request_ids)

    async def wait_outcomes(
        self,
        request_ids: Iterable[str],
        timeout_s: float,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 10.0,
        *,
        clock: Callable[[], float] | None = None,
    ) -> dict[str, HedgeOutcome]:
        """Wait until each of `request_ids` has an outcome, or `timeout_s`; return those that arrived.

        Event-driven: it subscribes to the outcome channels (waiting for the server's confirmation), then
        reads the stored outcomes, so one published before the subscription is found; then each published
        outcome wakes it. Every `progress_interval_s` it re-reads the store (a safety net against a lost
        message) and calls `on_progress(elapsed_s, missing_ids)` (a function or coroutine function) when
        given. Raises `redis.exceptions.ConnectionError` if Redis goes away: call it again (outcomes are
        stored). `clock` (seconds) replaces the loop's clock, for tests.
        """
        async with self.outcome_waiter(request_ids) as waiter:
            return await waiter.wait(timeout_s, on_progress, progress_interval_s, clock=clock)

    # ----- heartbeats (pause and hold: `flags.PauseFlags`) ---------------------------------------------

    async def beat(self, role: str, ttl_s: float, info: Mapping[str, Any] | None = None) -> None:
        """Say `role` is alive for the next `ttl_s` seconds, with `info` (JSON-serialisable) for observers."""
        body = {**(info or {}), "role": role, "ts_ms": now_ms()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.heartbeat(role), json.dumps(body, default=str), px=max(1, int(ttl_s * 1000)))
            pipe.delete(self.keys.stopped(role))  # alive again: no longer "stopped cleanly"
            await pipe.execute()

    async def end_heartbeat(self, role: str) -> None:
        """`role` is stopping cleanly: remove its heartbeat now, so observers need not wait for the TTL, and
        say it stopped on purpose, so they raise no alert for a heartbeat that was merely switched off."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.heartbeat(role))
            pipe.set(self.keys.stopped(role), str(now_ms()))
            await pipe.execute()

    async def stopped_cleanly(self, role: str) -> bool:
        """True when `role`'s last heartbeat ended with `end_heartbeat` (a clean stop), not by expiring."""
        return bool(await self.redis.exists(self.keys.stopped(role)))

    async def heartbeat(self, role: str) -> dict[str, Any] | None:
        """The last heartbeat of `role` if it has not expired, else None."""
        raw = await self.redis.get(self.keys.heartbeat(role))
        if raw is None:
            return None
        try:
            body = loads_bounded(raw, f"heartbeat of {role}")
        except BusMessageError:
            body = None
        if not isinstance(body, dict):
            logger.warning(
                "bus {}: heartbeat of {} is not a JSON object; treating it as absent", self.pair, role
            )
            return None
        return body

    # ----- dead letters ------------------------------------------------------------------------------------

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The newest `count` dead letters, newest first."""
        letters: list[DeadLetter] = []
        for entry_id, raw_fields in await self.redis.xrevrange(self.keys.dead_letters, count=count):
            f = decode_fields(raw_fields)
            try:
                original = loads_bounded(f.get("fields", "{}"), "dead letter")
            except BusMessageError:  # written by hand, not by `_dead_letter`: show it as it is
                original = {"fields": f.get("fields", "")}
            letters.append(
                DeadLetter(
                    entry_id=decode_text(entry_id),
                    reason=f.get("reason", ""),
                    source=f.get("source", ""),
                    source_entry_id=f.get("source_entry_id", ""),
                    fields=original,
                    ts_ms=int(f["ts_ms"]) if f.get("ts_ms", "").isdigit() else 0,
                )
            )
        return letters

    # ----- internals ----------------------------------------------------------------------------------------

    def _check_pair(self, pair: str) -> None:
        if pair != self.pair:
            raise ValueError(f"message for pair {pair!r} published on the bus of pair {self.pair!r}")

    async def _xreadgroup(self, consumer: str, count: int, block_ms: int | None, start: str) -> Any:
        block = None if start != ">" else block_ms  # a consumer's history is returned at once
        return await self.redis.xreadgroup(GROUP, consumer, {self.keys.requests: start}, count=count,
                                           block=block)

    async def _deliveries(self, entries: list[Any], redelivered: bool) -> list[Delivery]:
        deliveries: list[Delivery] = []
        for entry_id_raw, raw_fields in entries:
            entry_id = decode_text(entry_id_raw)
            fields = decode_fields(raw_fields)
            try:
                request = self._parse_request(fields)
            except BusMessageError as exc:
                await self._dead_letter(entry_id, fields, str(exc))
                continue
            deliveries.append(Delivery(entry_id=entry_id, request=request, redelivered=redelivered))
        return deliveries

    def _parse_request(self, fields: dict[str, str]) -> HedgeRequest:
        if DATA_FIELD not in fields:
            raise BusMessageError(f"stream entry has no {DATA_FIELD!r} field (fields: {sorted(fields)})")
        request = HedgeRequest.from_json(fields[DATA_FIELD])
        if request.pair != self.pair:
            raise BusMessageError(f"hedge request for pair {request.pair!r} on the stream of {self.pair!r}")
        return request

    async def _dead_letter(self, entry_id: str, fields: dict[str, str], reason: str) -> None:
        """Move a malformed request entry aside: record it with the reason, then acknowledge it."""
        logger.error(
            "bus {}: malformed request entry {} moved to {}: {}",
            self.pair,
            entry_id,
            self.keys.dead_letters,
            reason,
        )
        letter = {
            "reason": reason,
            "source": self.keys.requests,
            "source_entry_id": entry_id,
            "fields": json.dumps(fields),
            "ts_ms": str(now_ms()),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.dead_letters, letter, maxlen=self._max_stream_len, approximate=True)
            pipe.xack(self.keys.requests, GROUP, entry_id)
            await pipe.execute()

    def parse_outcome(self, raw: Any, what: str) -> HedgeOutcome | None:
        """`raw` as an outcome of this pair, or None (logged) when it is malformed or of another pair."""
        try:
            outcome = HedgeOutcome.from_json(raw if isinstance(raw, str | bytes) else decode_text(raw))
        except BusMessageError as exc:
            logger.error("bus {}: ignoring malformed {}: {}", self.pair, what, exc)
            return None
        if outcome.pair != self.pair:
            logger.error("bus {}: ignoring {} of pair {!r}", self.pair, what, outcome.pair)
            return None
        return outcome


def _stream_entries(reply: Any) -> list[Any]:
    """The (entry_id, fields) pairs of an XREADGROUP reply: RESP2 `[[stream, entries]]` or RESP3
    `{stream: [entries]}`."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [entry for wrapped in reply.values() for entries in wrapped for entry in entries]
    return [entry for _, entries in reply for entry in entries]

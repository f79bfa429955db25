"""Structured events: what A and B did, as typed records a program can wait on (the log says it to people).

Each event is emitted next to the log line that tells an operator the same thing; the log line stays. A
process hands its events to an `EventSink`: by default `NO_EVENTS` (nothing is kept), or a
`JsonLinesSink` writing one JSON object per line to the file named by `--events-file` (`main_A.py`,
`main_B.py`). The tests give in-process roles a sink of their own and child processes a FIFO, and wait on
event kinds and fields instead of matching log text.

A line reads `{"kind": "order_placed", "role": "a", "ts_ms": 1735732800123, "coid": 11000000000004,
"side": "buy", "size": "0.0002", "price": "95003.1", "reduce_only": false}`: fields left unset are omitted,
decimals are strings.

An event never disturbs trading: a sink that fails is logged once and then drops everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from loguru import logger


class EventKind(StrEnum):
    """What happened; the fields each kind sets follow it (role and ts_ms are always set)."""

    # --- either role
    RECONCILE_INCOMPLETE = "reconcile_incomplete"  # start-up reconciliation failed: attempt, reason
    RECONCILED = "reconciled"  # start-up reconciliation complete, trading may start: attempt
    HEARTBEAT_SEEN = "heartbeat_seen"  # the other role's heartbeat, first seen: peer
    HEARTBEAT_ABSENT = "heartbeat_absent"  # the other role's heartbeat is absent (once per absence): peer
    # (+ A while its order rests: coid, the order it cancels, and reason)
    HEARTBEAT_BACK = "heartbeat_back"  # back after an absence: peer
    HEARTBEAT_ENDED = "heartbeat_ended"  # the other role stopped cleanly (no alert): peer
    ORDER_ENDED = "order_ended"  # an order of ours is final: coid, state, reason, size, filled (+ B: attempt)
    STOPPING = "stopping"  # stopping with work in hand: reason (+ A: request_ids; waited_s = the bound)
    LEFT_UNFINISHED = "left_unfinished"  # stopped with work left for the next start: request_ids, reason
    STOPPED = "stopped"  # the role's loop ended in order: reason (+ B: count = hedges done this run)
    # --- A, the maker
    ORDER_PLACED = "order_placed"  # a post-only order accepted: coid, side, size, price, reduce_only
    CANCEL_SENT = "cancel_sent"  # coid (none: cancel-all), reason (why cancel), state (the send's answer)
    MODIFY_SENT = "modify_sent"  # a resting order re-priced in place: coid, price (the new one), reason,
    # state (the send's answer); the price is the order's once the exchange shows it
    RESTING_CHECKED = "resting_checked"  # its stream brought no news: A looked its resting order up by REST:
    # coid, reason (the stream down, or how long without a frame), state and filled (as the journal has it
    # after the look), count (fills the look found, each handed to B like a streamed one)
    HEDGE_REQUEST_PUBLISHED = "hedge_request_published"  # request_ids, coid, side and size (B's), reason
    # (reason: "fill", "residual" with a_position and b_position; for one published again "start-up", "Redis
    # lost it" or "its stream entry is gone")
    REDIS_UNAVAILABLE = "redis_unavailable"  # A's outbox cannot reach Redis: reason (the error), count
    # (requests waiting in the outbox); once per outage
    REDIS_BACK = "redis_back"  # Redis answers A's outbox again: reason (the error of the outage)
    REDIS_SILENT = "redis_silent"  # Redis answered nothing of A's for a while its order rested: coid (the
    # order A cancels), reason (the cancel's: "Redis has not answered for N s: a fill could not reach B")
    BUS_DATA_LOST = "bus_data_lost"  # Redis may have lost what A published: reason (what A noticed),
    # request_ids (outstanding, published again unless answered)
    PAUSE_RESTORED = "pause_restored"  # A set a pause in Redis from its journal's copy: by, reason
    HEDGE_WITHDRAWN = "hedge_withdrawn"  # unconfirmed and A + B not flat: A answered the requests failed in
    # B's place (B never hedges them): request_ids, waited_s, a_position, b_position, reason (what follows)
    HEDGE_WAITING = "hedge_waiting"  # still no outcome: request_ids, waited_s, peer_up (B's heartbeat seen)
    HEDGE_OUTCOME_RECEIVED = "hedge_outcome_received"  # B's outcome: request_ids, state, side, size, filled,
    # price, attempt (attempts made), reason (why it failed)
    HEDGE_UNCONFIRMED = "hedge_unconfirmed"  # no outcome but A + B flat: request_ids, waited_s, a/b_position
    PAUSE_SET = "pause_set"  # A set the pause flag: reason
    PAUSED = "paused"  # a cycle found the pause flag set and places nothing: by, reason
    RESUMED = "resumed"  # the pause flag was cleared
    # --- B, the hedger
    READY = "ready"  # reading hedge requests
    LEFT_OVERS_CLAIMED = "left_overs_claimed"  # requests a previous B read and did not finish: count
    REQUEST_ALREADY_ANSWERED = "request_already_answered"  # its outcome was stored: acknowledged, not hedged
    # again: request_ids, state (the stored outcome's status)
    HEDGE_NETTED = "hedge_netted"  # several requests, one order: request_ids, side, size, count
    HEDGE_RESUMED = "hedge_resumed"  # a hedge a previous B started: request_ids, count (attempts journaled)
    HEDGE_FROM_FEED = "hedge_from_feed"  # A's fill seen on the trade feed (feed first, or Redis silent): B
    # hedges it as A's request asks: request_ids, side, size, price (A's fill price)
    HEDGE_ATTEMPT = "hedge_attempt"  # an IOC sent: request_ids, attempt, coid, side, size, price, state
    HEDGE_DONE = "hedge_done"  # outcome published: request_ids, state, side, size, filled, price, attempt
    # (attempt = attempts made), reason (why it failed), count (deliveries acknowledged)
    HELD = "held"  # `hedgectl clear` holds B: by, reason
    RELEASED = "released"  # the hold was lifted: by


@dataclass(frozen=True, kw_only=True)
class BotEvent:
    """One event. `role` is "a" or "b"; `ts_ms` Unix milliseconds; the other fields per `EventKind`."""

    kind: EventKind
    role: str
    ts_ms: int
    coid: int | None = None  # a client order index
    request_ids: tuple[str, ...] = ()
    side: str | None = None
    size: Decimal | None = None
    price: Decimal | None = None
    filled: Decimal | None = None
    reduce_only: bool | None = None
    state: str | None = None  # an order state, a send status, an outcome status
    reason: str | None = None  # why, in the words of the log line
    attempt: int | None = None
    count: int | None = None
    by: str | None = None  # who set a pause or a hold
    peer: str | None = None  # the other role, for heartbeat events
    peer_up: bool | None = None
    waited_s: float | None = None
    a_position: Decimal | None = None
    b_position: Decimal | None = None

    def to_json(self) -> str:
        body = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != ()}
        return json.dumps(body, default=str, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str | bytes) -> BotEvent:
        """The event of one line written by `to_json` (ValueError/KeyError/TypeError when it is not one)."""
        body: dict[str, Any] = json.loads(line)
        body["kind"] = EventKind(body["kind"])
        for name in _DECIMAL_FIELDS & body.keys():
            body[name] = Decimal(body[name])
        if "request_ids" in body:
            body["request_ids"] = tuple(body["request_ids"])
        return cls(**body)


_DECIMAL_FIELDS = {f.name for f in dataclasses.fields(BotEvent) if "Decimal" in str(f.type)}


class EventSink(Protocol):
    def emit(self, event: BotEvent) -> None:
        """Take one event; must return at once and never raise."""


class _NoEvents:
    def emit(self, event: BotEvent) -> None:
        pass


NO_EVENTS: EventSink = _NoEvents()


class JsonLinesSink:
    """Events appended to `path`, one JSON object per line, each line flushed as written.

    The file may be a FIFO (the tests read one): open it only once its reader is there, or the open blocks.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = path.open("a", encoding="utf-8", buffering=1)

    def emit(self, event: BotEvent) -> None:
        if self._file is None:
            return
        try:
            self._file.write(event.to_json() + "\n")
        except (OSError, ValueError) as exc:  # reader gone, disk full: the events stop, trading does not
            logger.warning("events: writing to {} failed ({!r}); no more events are written", self.path, exc)
            self.close()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # what was buffered is lost with the reader: nothing to do
                file.close()


def open_event_sink(path: Path | None) -> EventSink:
    """A `JsonLinesSink` on `path` (OSError when it cannot be opened), or `NO_EVENTS` without one."""
    return NO_EVENTS if path is None else JsonLinesSink(path)


class RoleEvents:
    """One role's emitter: `events.emit(EventKind.READY)` stamps the role and the time and hands it on."""

    def __init__(self, sink: EventSink, role: str) -> None:
        self.sink = sink
        self.role = role

    def emit(self, kind: EventKind, **fields: Any) -> None:
        """`fields` are `BotEvent` fields (a wrong name raises TypeError: every emit is covered by tests)."""
        self.sink.emit(BotEvent(kind=kind, role=self.role, ts_ms=time.time_ns() // 1_000_000, **fields))

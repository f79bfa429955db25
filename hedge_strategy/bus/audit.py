"""What A reads to notice that Redis lost what A had put there, mixed into `Bus` (on top of the flags).

A Redis without persistence forgets everything when it restarts; a failover to a replica can lose the last
writes it had not replicated yet; someone can FLUSHDB. A cannot ask Redis what it forgot, so it compares:

- the server's run id (`INFO server`): a new one means another server process (restart, failover);
- the epoch marker `P:epoch`, a token A writes once and never deletes: gone means the data is gone (a restart
  without persistence, a FLUSHDB), whatever the run id says; still there after a failover means the data
  came across;
- the `hedgers` consumer group of the request stream, once it existed;
- each published request's stream entry (`XRANGE id id`).

`probe` reads them all, and the pause, in one round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from hedge_strategy.bus.flags import PauseFlags
from hedge_strategy.bus.messages import PauseState, decode_text

GROUP = "hedgers"  # the consumer group of the request stream (also `client.GROUP`)


@dataclass(frozen=True)
class BusProbe:
    """One look at the server: who it is, whether A's marker, the group and A's requests are there, and the
    pause."""

    run_id: str
    epoch: str | None  # A's epoch marker, None when gone
    group_exists: bool
    pause: PauseState | None
    missing: tuple[str, ...] = ()  # those of the request ids asked about whose stream entry is gone


class BusAudit(PauseFlags):
    """The reads behind A's check for lost data; `Bus` provides the connection, keys and pair."""

    async def probe(self, entries: Mapping[str, str] | None = None) -> BusProbe:
        """The server's run id, A's epoch marker, whether the consumer group exists, the pause, and which of
        `entries` (request id -> stream entry id) are gone from the request stream: one round trip on one
        connection, so every answer comes from the same server."""
        ids = list(entries or {})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.info("server")
            pipe.get(self.keys.epoch)
            pipe.get(self.keys.pause)
            pipe.xinfo_groups(self.keys.requests)
            for request_id in ids:
                entry = (entries or {})[request_id]
                pipe.xrange(self.keys.requests, min=entry, max=entry, count=1)
            info, epoch, pause, groups, *found = await pipe.execute(raise_on_error=False)
        for reply in (info, epoch, pause, *found):
            if isinstance(reply, Exception):
                raise reply
        return BusProbe(
            run_id=decode_text(info.get("run_id", "")) if isinstance(info, dict) else "",
            epoch=None if epoch is None else decode_text(epoch),
            group_exists=_has_group(groups),
            pause=None if pause is None else self._parse_flag(pause, self.keys.pause),
            missing=tuple(request_id for request_id, entry in zip(ids, found, strict=True) if not entry),
        )

    async def claim_epoch(self, token: str) -> str:
        """Leave `token` as the epoch marker unless one is there already; returns the marker in place."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.epoch, token, nx=True)
            pipe.get(self.keys.epoch)
            _, marker = await pipe.execute()
        return decode_text(marker)


def _has_group(reply: Any) -> bool:
    """Whether an XINFO GROUPS reply names the group; a missing stream (an error reply) has none."""
    if isinstance(reply, ResponseError):
        return False
    if isinstance(reply, Exception):
        raise reply
    return any(decode_text(group.get("name", "")) == GROUP for group in reply or ())

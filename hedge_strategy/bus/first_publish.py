"""The fast path of an ordinary hedge request: B skips its stored-outcome check and its read of A's resting
order for a request A marks `first_publish`, under the rules below (issue 10 item 3; `docs/design.md`
"Hedge requests published for the first time").

**At most once.** The stored-outcome check exists for a request someone may have answered before B reads it:
B itself (the request published again: A's start-up, Redis that lost its data, a fill announced again after
A crashed, a re-send after a publish that failed or timed out), or another writer of outcomes (A withdrawing a
request it gave up on, `hedgectl clear` superseding one). A marks a request only when none of these can be:
- A marks a request for a fill of an order **this A process placed**, in the **first** publish attempt of its
  outbox, made within `window_s` of the fill being recorded. No earlier process can have seen that fill (the
  order did not exist before this process placed it), and any later attempt (after an error, a lost Redis, a
  restart: the mark lives only in memory) goes unmarked. Residual hedges are never marked.
- That attempt appends the entry with an **explicit stream id** (`EntryIds`), not `*`: should the client
  retry the transaction after a lost reply (redis-py's `Retry`), Redis refuses the second append (an id not
  above the stream's top) and the request is appended again unmarked. So a marked entry exists at most once
  per request id.
- B trusts a mark only on an entry read fresh from the group (not claimed from a pending list), whose
  `publish_ts_ms` is within `window_s` of B's clock (either way), and when every delivery of that id in the
  batch is marked. A consumer group delivers an entry once; a claimed one (a previous B read it) is checked.
  A gives a request up (withdraws it, or forgets it when A + B is flat) only `hedge_confirm_timeout_s` after
  it began waiting for it, which is after it was recorded: with `window_s` at most a quarter of that timeout,
  B trusts the mark only while A cannot have given the request up yet (as long as A's and B's clocks agree
  within half the timeout), so no withdrawal, no "flat" forgetting and no order A placed afterwards can
  precede B's read.
- B still checks its own journal first (`Hedger`): a request with orders there, or one this B process
  answered already (an operator who recreates the consumer group by hand delivers old entries again), takes
  the stored-outcome check as before.

**A's resting order.** A marked request carries A's resting order as A named it for B's wash guard at
publish time (`HedgeRequest.a_resting`, the value of `bus.resting`'s key, or none). A places no new order
while a request of its is unanswered, so until B's outcome the key can only lose that order (its final
state: A deletes it), never name a new one: the snapshot bounds as much as a read of the key at pricing time,
or more (nor does a modify move the order past it: A sends none once the order has a fill, checked after the
modify's widened entry is written, `OrderExecutor._write_ahead_modify`). B uses it for the first bound of a
hedge whose every request is trusted and carries one; the next bounds and the wait for A's order to end read
the key as before. A snapshot is trusted only with the mark
(the same window: past it A may have given the request up and placed a new order).

Old and new processes: a request without the fields is read as unmarked (B checks). An older B refuses the
unknown fields (dead-lettered): upgrade B before A.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from redis.exceptions import ResponseError

from hedge_strategy.bus.messages import now_ms

if TYPE_CHECKING:
    from hedge_strategy.bus.client import Delivery

WINDOW_S = 1.0  # how long after its recording a request may still be published marked, and read as trusted
_ID_REFUSED = "equal or smaller than the target stream top item"  # Redis's XADD error for a used id


def window_s(hedge_confirm_timeout_s: float) -> float:
    """The window on both sides: at most a quarter of the time A waits for an outcome before giving up."""
    return min(WINDOW_S, hedge_confirm_timeout_s / 4)


class EntryIds:
    """Explicit, increasing stream entry ids (`<ms>-<seq>`, A's clock) for marked appends (see above)."""

    def __init__(self) -> None:
        self._last = (0, 0)

    def next(self) -> str:
        ms, seq = self._last
        now = now_ms()
        self._last = (now, 0) if now > ms else (ms, seq + 1)
        return f"{self._last[0]}-{self._last[1]}"


def id_refused(error: ResponseError) -> bool:
    """Redis refused an explicit id: the stream already holds it or a later one (a retried append, or
    Redis's clock ahead of A's)."""
    return _ID_REFUSED in str(error)


def trusted(deliveries: Iterable[Delivery], window: float, now: int | None = None) -> bool:
    """The deliveries of one request id may skip the stored-outcome check (B's journal aside): every one
    marked, none claimed from a pending list, published within `window` of now (module docstring)."""
    now = now_ms() if now is None else now
    found = list(deliveries)
    return bool(found) and all(
        d.request.first_publish and not d.redelivered and abs(now - d.request.publish_ts_ms) <= window * 1000
        for d in found)

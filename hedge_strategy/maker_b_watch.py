"""B's heartbeat, watched while A's maker order rests (and what B may still be hedging: `b_in_hand`).

A places nothing without B's heartbeat, but an order placed while B was alive keeps resting when B dies
(kill -9, a crash): a fill then has nobody to hedge it until B is back (issue 9's chaos `kill_b`). So while
the order rests, `BWatch` reads B's heartbeat every `heartbeat_ttl_s / 3`, and the resting loop cancels the
order once B is lost; the next cycles place nothing until the heartbeat is back (`Maker._hedger_alive`).

"Lost" is decided only on Redis's word: Redis answered, promptly, that the key is gone (it expires
`heartbeat_ttl_s` after B's last beat), and it has answered every read, promptly, for a whole TTL before.
A read that fails or answers late (Redis down, hung, slow) says nothing about B: B's own beats may have been
held up by the same Redis, and a Redis that comes back can expire B's key before B's delayed write lands.
So a Redis that does not answer never cancels A's order; A's exchange events go on meanwhile (the
outbox holds the hedge requests). B's `busy` flag plays no part: a busy B beats from a task of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from loguru import logger
from redis.exceptions import RedisError

from hedge_strategy.exchange import describe_coid
from hedge_strategy.observe import EventKind
from hedge_strategy.runtime import Runtime
from hedge_strategy.task_end import end_tasks, retrieve_outcome

LOST_REASON = "B's heartbeat is absent: nobody would hedge a fill"  # the cancel's reason
MIN_LATE_S = 1.0


class BWatch:
    """`async with BWatch(rt, coid) as b_watch:` reads B's heartbeat in a task of its own for the life of the
    resting order `coid`; `lost` says B is gone (module docstring), `wait()` returns once it is. Its times are
    real ones (a heartbeat's TTL runs in Redis, on real time), not the maker's clock."""

    def __init__(self, rt: Runtime, coid: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.coid = coid
        self.clock = clock
        self.ttl_s = rt.config.strategy.heartbeat_ttl_s
        # An answer later than a beat's period (at least a second) is a Redis too slow to say B is gone
        self.late_s = max(self.ttl_s / 3, MIN_LATE_S)
        self.reads = 0  # heartbeat reads done, answered or not (tests wait on it)
        self.read_done = asyncio.Event()  # set after each read
        self._lost = asyncio.Event()
        self._answering_since: float | None = None  # from when Redis has answered every read promptly
        self._unanswered_said = False
        self._task: asyncio.Task[None] | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    async def wait(self) -> None:
        await self._lost.wait()

    async def __aenter__(self) -> BWatch:
        self._task = asyncio.create_task(self._run(), name="a-b-heartbeat-watch")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:  # bounded, as every wait at the end of the resting loop (`task_end`)
            await end_tasks([self._task], "A: the watch of B's heartbeat")

    async def _run(self) -> None:
        while not self.lost and not self.rt.stopping:
            await self.look()
            await asyncio.sleep(self.ttl_s / 3)  # the heartbeat's own cadence, not a wait for a result

    async def look(self) -> None:
        """One read of B's heartbeat; B is lost when Redis answered promptly that it is absent, having
        answered promptly for a whole TTL."""
        asked = self.clock()
        # The read runs in a task of its own, shielded: the watch is cancelled when the order ends, and a
        # cancel that lands inside redis-py's read can be swallowed there (seen in tests: the watch then
        # never ended); the read itself is bounded by the client's timeouts.
        read = asyncio.ensure_future(self.rt.bus.heartbeat("b"))
        read.add_done_callback(retrieve_outcome)  # one left behind by a cancelled watch is never unread
        try:
            beat = await asyncio.shield(read)
        except (RedisError, OSError, TimeoutError) as exc:
            self._no_answer(f"{exc!r}")
            return
        finally:
            self.reads += 1
            self.read_done.set()
        took = self.clock() - asked
        if took > self.late_s:  # as slow as a beat's period: B's own writes may be held up as well
            self._no_answer(f"answered after {took:.1f} s")
            return
        if self._unanswered_said:
            self._unanswered_said = False
            logger.info("A: Redis answers again; B's heartbeat is judged once it has answered for {:g} s",
                        self.ttl_s)
        if self._answering_since is None:
            self._answering_since = asked
        if beat is not None or self.clock() - self._answering_since < self.ttl_s:
            return
        logger.warning("A: B's heartbeat is absent (no beat for over {:g} s, per a Redis that answers): "
                       "cancelling {} so that no fill comes that nobody would hedge; no new orders until B "
                       "is back (start main_B.py)", self.ttl_s, describe_coid(self.coid))
        self.rt.events.emit(EventKind.HEARTBEAT_ABSENT, peer="b", coid=self.coid, reason=LOST_REASON)
        self._lost.set()

    def _no_answer(self, what: str) -> None:
        self._answering_since = None
        if not self._unanswered_said:
            self._unanswered_said = True
            logger.warning("A: B's heartbeat could not be read while {} rests ({}); a Redis that does not "
                           "answer says nothing about B: the order rests on", describe_coid(self.coid), what)



async def b_in_hand(rt: Runtime) -> str | None:
    """What B may still be hedging, which a residual would hedge twice: requests it read and has not
    acknowledged (it does so with the outcome, once its orders are final), or a hedge its heartbeat says
    it is doing (the one sign left when Redis lost the pending entries); None when B holds nothing."""
    pending = await rt.bus.pending_count()
    if pending:
        return f"B holds {pending} unacknowledged request(s)"
    beat = await rt.bus.heartbeat("b")
    if beat is not None and beat.get("busy"):
        return "B's heartbeat says it is hedging"
    return None


async def wait_for_b_idle(rt: Runtime) -> None:
    """Until B holds nothing (`b_in_hand`), woken by its outcomes; at most `hedge_confirm_timeout_s`."""
    timeout_s = rt.config.strategy.hedge_confirm_timeout_s
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with rt.bus.subscribe_outcomes() as outcomes:
        while await b_in_hand(rt) is not None and not rt.stopping:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                logger.warning("A: B did not finish in {} s; judging the imbalance again", timeout_s)
                return
            await outcomes.receive(timeout_s=min(left, 1.0))

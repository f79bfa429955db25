"""B's heartbeat, watched while A's maker order rests, and Redis's silence (and what B may still be hedging:
`b_in_hand`).

A places nothing without B's heartbeat, but an order placed while B was alive keeps resting when B dies
(kill -9, a crash): a fill then has nobody to hedge it until B is back (issue 9's chaos `kill_b`). So while
the order rests, `BWatch` reads B's heartbeat every `heartbeat_ttl_s / 3`, and the resting loop cancels the
order once B is lost; the next cycles place nothing until the heartbeat is back (`Maker._hedger_alive`).

"B lost" is decided only on Redis's word: Redis answered, promptly, that the key is gone (it expires
`heartbeat_ttl_s` after B's last beat), and it has answered every read, promptly, for a whole TTL before.
A read that fails or answers late (Redis down, hung, slow) says nothing about B: B's own beats may have been
held up by the same Redis, and a Redis that comes back can expire B's key before B's delayed write lands.
B's `busy` flag plays no part: a busy B beats from a task of its own.

"Redis silent" is the other reason to cancel, and says nothing about B: a Redis that answers none of A's
commands cannot carry a fill's hedge request to B either, so every fill made meanwhile stays unhedged until
Redis answers, for as long as the outage lasts. When Redis has answered neither these reads nor A's outbox
(which talks to it about every second: `maker_bus`) for `silent_s`, the order is cancelled ("Redis has not
answered for N s: a fill could not reach B"; one WARNING line, a `redis_silent` event). `silent_s` is three
beat periods (`late_s`: a third of the TTL, at least a second), the TTL itself by default (5 s): as long as
A already gives B's silence; three times as long as an answer may take before it counts as late, so one
slow answer never cancels. The cycles that follow place nothing until Redis answers (the cycle's first step,
the pause read, raises while it does not: `Maker.run` retries), then need B's heartbeat as always. A cancel
only shrinks A's footprint: B's wash guard holds regardless. A's exchange events go on meanwhile (the outbox
holds the hedge requests of fills made before the cancel took).
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
SILENT_PERIODS = 3  # beat periods (`late_s`) without any answer from Redis before the order is cancelled
# A silence past the bound is judged this much later (an answer a busy event loop has not read yet counts: a
# loop stalled for the bound must not look like a silent Redis), and no two judgements are closer
JUDGE_AFTER_S = 0.05


class BWatch:
    """`async with BWatch(rt, coid) as b_watch:` reads B's heartbeat in a task of its own for the life of the
    resting order `coid`; `lost` says B is gone, `silent` that Redis has not answered for `silent_s` (module
    docstring), `cancel_reason` why the order must end for either, `wait()` returns once it must. Its times
    are real ones (a heartbeat's TTL runs in Redis, on real time), not the maker's clock; `answered_elsewhere`
    says when Redis last answered A's outbox, on the same clock."""

    def __init__(self, rt: Runtime, coid: int, clock: Callable[[], float] = time.monotonic,
                 answered_elsewhere: Callable[[], float] | None = None) -> None:
        self.rt = rt
        self.coid = coid
        self.clock = clock
        self.ttl_s = rt.config.strategy.heartbeat_ttl_s
        # An answer later than a beat's period (at least a second) is a Redis too slow to say B is gone
        self.late_s = max(self.ttl_s / 3, MIN_LATE_S)
        self.silent_s = SILENT_PERIODS * self.late_s
        self.reads = 0  # heartbeat reads done, answered or not (tests wait on it)
        self.read_done = asyncio.Event()  # set after each read
        self._lost = asyncio.Event()
        self._silent = asyncio.Event()
        self._ended = asyncio.Event()  # lost or silent: the order must end
        self._answering_since: float | None = None  # from when Redis has answered every read promptly
        self._answered_at = clock()  # the cycle has just talked to Redis (it published the order's entry)
        self._answered_elsewhere = answered_elsewhere or (lambda: float("-inf"))
        self._unanswered_said = False
        self._task: asyncio.Task[None] | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def silent(self) -> bool:
        return self._silent.is_set()

    @property
    def cancel_reason(self) -> str | None:
        if self.lost:
            return LOST_REASON
        if self.silent:
            return silent_reason(self.silent_s)
        return None

    async def wait(self) -> None:
        await self._ended.wait()

    def silent_in(self) -> float:
        """Seconds until Redis has been silent for `silent_s` (<= 0: it has)."""
        return max(self._answered_at, self._answered_elsewhere()) + self.silent_s - self.clock()

    def judge_silence(self) -> None:
        """Redis silent once it has answered nothing of A's for `silent_s` (module docstring)."""
        if self._ended.is_set() or self.silent_in() > 0:
            return
        logger.warning("A: Redis at {} has not answered for {:g} s: cancelling {}, since a fill could not "
                       "reach B; nothing new is placed until Redis answers (B itself may be fine)",
                       self.rt.bus.where, self.silent_s, describe_coid(self.coid))
        self.rt.events.emit(EventKind.REDIS_SILENT, coid=self.coid, reason=silent_reason(self.silent_s))
        self._silent.set()
        self._ended.set()

    async def __aenter__(self) -> BWatch:
        self._task = asyncio.create_task(self._run(), name="a-b-heartbeat-watch")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:  # bounded, as every wait at the end of the resting loop (`task_end`)
            await end_tasks([self._task], "A: the watch of B's heartbeat")

    async def _run(self) -> None:
        while not self._ended.is_set() and not self.rt.stopping:
            look = asyncio.ensure_future(self.look())
            try:
                while not look.done() and not self._ended.is_set():  # silence is judged while a read is out
                    await asyncio.wait({look}, timeout=max(self.silent_in(), JUDGE_AFTER_S))
                    if self.silent_in() <= 0:
                        await asyncio.wait({look}, timeout=JUDGE_AFTER_S)
                        self.judge_silence()
            finally:
                look.cancel()  # the watch ended: so does its look (its read runs on, shielded, unread)
            if look.done() and not look.cancelled():
                look.result()  # what a look raised (not a Redis error: those are its news) goes up
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
        self._answered_at = self.clock()  # an answer, late or not: Redis is not silent
        took = self._answered_at - asked
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
        self._ended.set()

    def _no_answer(self, what: str) -> None:
        self._answering_since = None
        if not self._unanswered_said:
            self._unanswered_said = True
            logger.warning("A: B's heartbeat could not be read while {} rests ({}); a Redis that does not "
                           "answer says nothing about B, but the order is cancelled if Redis stays silent "
                           "for {:g} s", describe_coid(self.coid), what, self.silent_s)
        self.judge_silence()


def silent_reason(silent_s: float) -> str:
    """The cancel's reason when Redis is silent (module docstring)."""
    return f"Redis has not answered for {silent_s:g} s: a fill could not reach B"


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

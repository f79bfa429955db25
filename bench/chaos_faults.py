"""The chaos rehearsal's faults, one function each, and the seeded schedule that orders them.

Every fault function injects its fault, then recovers the way an operator would (`./start_hedge.sh` brings
back whatever is missing; a venue fault is waited out), writing what happened into its `FaultRun`. The pair's
pause is watched by the `Operator`, who looks at it for a moment and then runs `hedgectl resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from chaos_pair import A_ACCOUNT, B_ACCOUNT, Pair, Watchdog, now_ms

LOOK_BEFORE_RESUME_S = 3.0  # an operator reads the pause reason before resuming
REPAUSE_WINDOW_S = 30.0  # a pause this soon after a resume counts as the same pause coming back
GIVE_UP_AFTER = 3  # resumes in a row that the pause survived: `hedgectl resume` cannot clear it
SILENCE_S = 25
HANG_S = 10
HTTP_429_COUNT = 40
CONSUME_WAIT_S = 60.0  # a counted fault waits this long for the requests it targets
IN_FLIGHT_WAIT_S = 90.0  # how long to wait for B's next hedge order before killing B anyway
STORM_WAIT_S = 120.0  # how long the reject storm waits for a hedge to fail


@dataclass
class Pause:
    since_ms: int
    reason: str
    resumed_ms: int | None = None
    vanished_ms: int | None = None  # gone without a resume: Redis lost it
    answer: str = ""

    @property
    def over_ms(self) -> int | None:
        return self.resumed_ms or self.vanished_ms


@dataclass
class FaultRun:
    number: int
    kind: str
    start_ms: int
    end_ms: int = 0  # the fault was over and the pair back (as far as the harness could bring it)
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    injected: bool = True


class Operator:
    """Watches the pause (as `hedgectl status` shows it) and resumes it after a short look."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.pauses: list[Pause] = []
        self.gave_up: str | None = None
        self.repeats = 0
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (bounded) until `predicate` holds; it is checked at every change of the pause."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not predicate():
                    await self._changed.wait()
        return predicate()

    def _notify(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    @property
    def current(self) -> Pause | None:
        last = self.pauses[-1] if self.pauses else None
        return last if last is not None and last.over_ms is None else None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                state = await self.pair.pause_state()
            except Exception:  # Redis down or hung: nothing to read, nothing to resume
                continue
            current = self.current
            if state is None:
                if current is not None:
                    current.vanished_ms = now_ms()
                    self._notify()
                    print(f"  pause vanished without a resume: {current.reason}", file=sys.stderr)
                continue
            if current is None:
                self._paused(*state)
            elif self.gave_up is None and now_ms() - current.since_ms >= LOOK_BEFORE_RESUME_S * 1000:
                await self._resume(current)

    def _paused(self, reason: str, since_ms: int) -> None:
        last = self.pauses[-1] if self.pauses else None
        again = last is not None and last.resumed_ms is not None \
            and since_ms - last.resumed_ms < REPAUSE_WINDOW_S * 1000
        self.repeats = self.repeats + 1 if again else 0
        self.pauses.append(Pause(since_ms, reason))
        self._notify()
        print(f"  PAUSED{' again' if again else ''}: {reason}", file=sys.stderr)
        if self.repeats >= GIVE_UP_AFTER:
            self.gave_up = reason
            print(f"  the pause came back {self.repeats} times after `hedgectl resume`: leaving it",
                  file=sys.stderr)

    async def _resume(self, pause: Pause) -> None:
        code, answer = await self.pair.resume()
        pause.answer = answer.splitlines()[0] if answer else f"exit {code}"
        if code == 0:
            pause.resumed_ms = now_ms()
            self._notify()
            print(f"  hedgectl resume: {pause.answer}", file=sys.stderr)


@dataclass
class Ctx:
    pair: Pair
    watchdog: Watchdog
    operator: Operator
    rng: random.Random
    occurrences: Counter[str] = field(default_factory=Counter)

    def target(self, kind: str) -> int:
        """The account a sendTx fault aims at: B (the hedge path) the first time, then A and B in turn."""
        self.occurrences[kind] += 1
        return B_ACCOUNT if self.occurrences[kind] % 2 else A_ACCOUNT


# ----- recovery as an operator does it ----------------------------------------------------------------------


async def bring_back(ctx: Ctx, run: FaultRun) -> None:
    """`./start_hedge.sh` until A, B and Redis run (at most twice), saying what it took. When Redis is still
    down after it, `./start_hedge.sh --infra-only` (the README's way to start only Redis and the sim)."""
    for _ in range(2):
        missing = [n for n in ("redis", "a", "b") if ctx.pair.pid(n) is None]
        redis_down = not await ctx.pair.redis_answers()
        if not missing and not redis_down:
            return
        code, out, took = await ctx.pair.start()
        said = [line for line in out.splitlines() if "FAILED" in line or "already running:" in line]
        note = f"start_hedge.sh ({took:.0f} s, exit {code})" + (f": {said[0][:90]}" if said else "")
        if redis_down:
            back = await ctx.pair.redis_answers()
            run.notes.append(note + ("; Redis back" if back else "; Redis NOT back"))
            if not back:
                code, _, took = await ctx.pair.start("--infra-only")
                run.notes.append(f"`start_hedge.sh --infra-only` ({took:.0f} s, exit {code})")
        else:
            run.notes.append(note)
    missing = [n for n in ("redis", "a", "b") if ctx.pair.pid(n) is None]
    if missing:
        run.notes.append(f"STILL MISSING after two start_hedge.sh runs: {', '.join(missing)}")


async def kill_and_restart(ctx: Ctx, run: FaultRun, names: tuple[str, ...], sig: signal.Signals) -> None:
    pids = {name: ctx.pair.signal(name, sig) for name in names}
    run.detail = ", ".join(f"{n.upper()} pid {p}" for n, p in pids.items())
    started = time.monotonic()
    for name, pid in pids.items():
        if pid is None:
            run.notes.append(f"{name.upper()} was not running")
            continue
        patience = 40.0 if sig is signal.SIGTERM else 5.0
        if await ctx.pair.wait_gone(pid, patience):
            if sig is signal.SIGTERM:
                run.notes.append(f"{name.upper()} exited {time.monotonic() - started:.1f} s after SIGTERM")
        else:
            run.notes.append(f"{name.upper()} still running {patience:g} s after {sig.name}: SIGKILL")
            ctx.pair.signal(name, signal.SIGKILL)
            await ctx.pair.wait_gone(pid, 5.0)
    await bring_back(ctx, run)


# ----- the faults -------------------------------------------------------------------------------------------


async def kill_a(ctx: Ctx, run: FaultRun) -> None:
    await kill_and_restart(ctx, run, ("a",), signal.SIGKILL)


async def kill_b(ctx: Ctx, run: FaultRun) -> None:
    await kill_and_restart(ctx, run, ("b",), signal.SIGKILL)


async def kill_both(ctx: Ctx, run: FaultRun) -> None:
    await kill_and_restart(ctx, run, ("a", "b"), signal.SIGKILL)


async def sigterm_restart(ctx: Ctx, run: FaultRun) -> None:
    await kill_and_restart(ctx, run, (ctx.rng.choice(("a", "b")),), signal.SIGTERM)


async def kill_b_in_flight(ctx: Ctx, run: FaultRun) -> None:
    """Kill -9 B as soon as its next hedge order reaches the simulator (before the IOC executes). The fault's
    window starts when the wait for that order starts, so the fill that B was hedging is inside it."""
    since_us = time.time_ns() // 1000
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while time.monotonic() < deadline:
        sent = await ctx.pair.sim.txlog(B_ACCOUNT, since_us)
        if sent:
            pid = ctx.pair.signal("b", signal.SIGKILL)
            lag_ms = (time.time_ns() // 1000 - int(sent[0]["arrival_us"])) / 1000
            waited_s = (now_ms() - run.start_ms) / 1000
            run.detail = (f"B pid {pid} killed {lag_ms:.0f} ms after its sendTx arrived "
                          f"({sent[0]['status']}; {waited_s:.1f} s after the wait for one began)")
            if pid is not None:
                await ctx.pair.wait_gone(pid, 5.0)
            await bring_back(ctx, run)
            return
        await asyncio.sleep(0.02)
    run.injected = False
    run.detail = f"no hedge order from B within {IN_FLIGHT_WAIT_S:g} s: nothing killed"


async def redis_restart(ctx: Ctx, run: FaultRun) -> None:
    """Redis killed; it runs without persistence, so it comes back empty."""
    pid = ctx.pair.signal("redis", signal.SIGKILL)
    run.detail = f"redis-server pid {pid} killed -9"
    if pid is not None:
        await ctx.pair.wait_gone(pid, 5.0)
    await asyncio.sleep(ctx.rng.uniform(1.0, 3.0))  # the operator notices
    await bring_back(ctx, run)


async def redis_hang(ctx: Ctx, run: FaultRun) -> None:
    pid = ctx.pair.signal("redis", signal.SIGSTOP)
    run.detail = f"redis-server pid {pid} SIGSTOP for {HANG_S} s"
    await asyncio.sleep(HANG_S)
    ctx.pair.signal("redis", signal.SIGCONT)


async def ws_drop(ctx: Ctx, run: FaultRun) -> None:
    answer = await ctx.pair.sim.set_faults({"drop_websockets": True})
    run.detail = f"{answer['dropped_websockets']} WebSocket connections closed (1001)"


async def ws_silence(ctx: Ctx, run: FaultRun) -> None:
    await ctx.pair.sim.set_faults({"silence_ws_s": SILENCE_S})
    run.detail = f"no WebSocket frame for {SILENCE_S} s"
    await asyncio.sleep(SILENCE_S)


async def http_429_burst(ctx: Ctx, run: FaultRun) -> None:
    await ctx.pair.sim.set_faults({"http_error_next": HTTP_429_COUNT, "status": 429})
    run.detail = f"the next {HTTP_429_COUNT} REST requests (any account) answered HTTP 429"
    await until_consumed(ctx, run, "http_error_next")


async def reject_sendtx(ctx: Ctx, run: FaultRun) -> None:
    account, count = ctx.target("reject_sendtx"), ctx.rng.randint(1, 3)
    await ctx.pair.sim.set_faults({"reject_next_sendtx": count, "account_index": account})
    run.detail = f"the next {count} sendTx of {_name(account)} rejected (29500)"
    await until_consumed(ctx, run, "reject_next_sendtx")


async def blackhole_sendtx(ctx: Ctx, run: FaultRun) -> None:
    account = ctx.target("blackhole_sendtx")
    await ctx.pair.sim.set_faults({"blackhole_next_sendtx": 1, "account_index": account})
    run.detail = f"the next sendTx of {_name(account)} executed but never answered"
    await until_consumed(ctx, run, "blackhole_next_sendtx")


async def sequencer_reject(ctx: Ctx, run: FaultRun) -> None:
    account = ctx.target("sequencer_reject")
    await ctx.pair.sim.set_faults({"sequencer_reject_next": {"count": 1, "account_index": account}})
    run.detail = f"the next sendTx of {_name(account)} answered 200, dropped by the sequencer"
    await until_consumed(ctx, run, "sequencer_reject_next")


async def reject_storm(ctx: Ctx, run: FaultRun) -> None:
    """Every sendTx of B rejected until a hedge fails and A pauses; then the venue recovers and the operator
    resumes (the Operator task does, after its look)."""
    count = 4 * ctx.pair.retry_times
    pauses_before = len(ctx.operator.pauses)
    await ctx.pair.sim.set_faults({"reject_next_sendtx": count, "account_index": B_ACCOUNT})
    run.detail = f"the next {count} sendTx of B rejected, until A pauses"
    await ctx.operator.wait_until(lambda: len(ctx.operator.pauses) > pauses_before, STORM_WAIT_S)
    left = (await ctx.pair.sim.faults())["reject_next_sendtx"]
    await ctx.pair.sim.clear_faults()
    used = count - (left["remaining"] if left else 0)
    if len(ctx.operator.pauses) == pauses_before:
        run.notes.append(f"no pause within {STORM_WAIT_S:g} s ({used} sendTx rejected); storm lifted")
        return
    run.notes.append(f"A paused after {used} rejected sendTx of B; storm lifted")
    await ctx.operator.wait_until(lambda: ctx.operator.current is None, 30.0)


async def until_consumed(ctx: Ctx, run: FaultRun, key: str) -> None:
    """Wait until the counted fault `key` has been used up; lift it after CONSUME_WAIT_S."""
    deadline = time.monotonic() + CONSUME_WAIT_S
    while time.monotonic() < deadline:
        if (await ctx.pair.sim.faults()).get(key) is None:
            return
        await asyncio.sleep(0.3)
    left = (await ctx.pair.sim.faults()).get(key)
    await ctx.pair.sim.clear_faults()
    run.notes.append(f"not used up within {CONSUME_WAIT_S:g} s ({left}); lifted")


def _name(account: int) -> str:
    return "A" if account == A_ACCOUNT else "B"


FaultFunction = Callable[[Ctx, FaultRun], Awaitable[None]]
FAULTS: dict[str, FaultFunction] = {
    "kill_a": kill_a,
    "kill_b": kill_b,
    "kill_both": kill_both,
    "kill_b_in_flight": kill_b_in_flight,
    "sigterm_restart": sigterm_restart,
    "redis_restart": redis_restart,
    "redis_hang": redis_hang,
    "ws_drop": ws_drop,
    "ws_silence": ws_silence,
    "http_429_burst": http_429_burst,
    "reject_sendtx": reject_sendtx,
    "blackhole_sendtx": blackhole_sendtx,
    "sequencer_reject": sequencer_reject,
    "reject_storm": reject_storm,
}


def schedule(seed: int, only: list[str] | None = None) -> Iterator[str]:
    """Rounds of every fault kind (or of `only`), each round in an order drawn from the seed: the first round
    covers all."""
    rng = random.Random(seed)
    while True:
        kinds = list(only or FAULTS)
        rng.shuffle(kinds)
        yield from kinds

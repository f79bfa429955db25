"""Time in the simulator: the speed bumps between acceptance and execution, and the market-flow timer."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sim.scheduler")


@dataclass
class _Pending:
    due: float  # loop.time() at which the speed bump ends
    tx: Any  # AcceptedTx
    done: Callable[[], None]


class SpeedBumps:
    """Executes accepted transactions after their venue delay, preserving each account's order.

    A premium maker order sent after a premium taker order (200 ms) waits behind it: the venue executes an
    account's transactions in the order it accepted them, so a later one never overtakes an earlier one.
    """

    def __init__(self, execute: Callable[[Any], None]) -> None:
        self._execute = execute
        self._queues: dict[int, deque[_Pending]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}

    def submit(self, account_index: int, tx: Any, delay_ms: int, done: Callable[[], None]) -> None:
        """Execute `tx` after `delay_ms` and after the account's earlier transactions, then call `done()`."""
        queue = self._queues.get(account_index)
        if delay_ms <= 0 and not queue:
            self._run(tx, done)
            return
        loop = asyncio.get_running_loop()
        if queue is None:
            queue = self._queues[account_index] = deque()
        queue.append(_Pending(loop.time() + delay_ms / 1000.0, tx, done))
        if account_index not in self._workers:
            self._workers[account_index] = loop.create_task(self._drain(account_index, queue))

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def cancel_all(self) -> None:
        """Forget every transaction still waiting (reset, shutdown)."""
        for task in self._workers.values():
            task.cancel()
        self._workers.clear()
        self._queues.clear()

    async def _drain(self, account_index: int, queue: deque[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while queue:
                wait = queue[0].due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                item = queue.popleft()
                self._run(item.tx, item.done)
        finally:
            if self._workers.get(account_index) is asyncio.current_task():
                del self._workers[account_index]
                if self._queues.get(account_index) is queue and not queue:
                    del self._queues[account_index]

    def _run(self, tx: Any, done: Callable[[], None]) -> None:
        try:
            self._execute(tx)
        except Exception:
            # An accepted transaction failing to execute is an engine bug; keep the venue running.
            log.exception(
                "execution of accepted tx %s failed; the sim keeps running", getattr(tx, "tx_hash", tx)
            )
        done()


class Ticker:
    """Calls `step(now_ms)` every `interval_ms` of wall-clock time until stopped, and also at the moment
    `next_due()` names (an epoch ms, None: nothing due): the market flow's next taker arrival. A taker due
    between two ticks executes at its own time, not at the next tick: otherwise its trade, stamped with its
    due time, would reach the accounts up to a tick after that stamp, and every latency measured from the
    trade (a maker's fill to its hedge) would carry up to `interval_ms` that no venue adds."""

    def __init__(self, interval_ms: int, step: Callable[[int], None],
                 next_due: Callable[[], float | None] | None = None) -> None:
        self._interval = interval_ms / 1000.0
        self._step = step
        self._next_due = next_due
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                self._step(int(time.time() * 1000))
            except Exception:
                log.exception("market tick failed; the next tick retries")
            # Fixed-rate schedule; after a stall, skip missed ticks instead of bursting them.
            while next_at <= loop.time():
                next_at += self._interval
            await asyncio.sleep(max(min(next_at, self._due_at(loop)) - loop.time(), 0.0))

    def _due_at(self, loop: asyncio.AbstractEventLoop) -> float:
        """The loop time of the next due event (infinity: none); its ms stamp must have begun by then."""
        due_ms = self._next_due() if self._next_due is not None else None
        if due_ms is None:
            return math.inf
        return loop.time() + (math.floor(due_ms) + 1) / 1000.0 - time.time()

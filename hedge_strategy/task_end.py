"""Ending a task by cancelling it, bounded: a cancel can be lost.

Python 3.11's `asyncio.wait_for` returns the inner result instead of raising when the cancel lands in the
loop turn in which the inner future completes (fixed in 3.12). redis-py (8.1) sends every command through
it (`AbstractConnection.send_packed_command`), so a cancel that lands as a Redis command is written is lost:
measured against a real redis-server, 2 in 1,500 cancels of a task that subscribes to, reads
(`get_message` with a timeout) and closes a pubsub. A task that loops over Redis calls and only ends when
cancelled then runs on, and whoever awaits it after the cancel waits forever. That is, most likely, how
A's resting loop stopped after a fill in a Standard tier run of `f1143c5` (bench/README.md, "The stall"):
leaving `FailedHedges` cancelled its watch and awaited it with no bound.

So `end_tasks` cancels, waits a little, and cancels again (a lost cancel is a one-off: the next one lands in
the next await), a bounded number of times; what still runs then is logged and left behind, never waited for.
Loops that call Redis should also end on a flag of their own, so that one left behind ends by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from loguru import logger

END_ROUNDS, END_WAIT_S = 5, 1.0  # cancels sent, and how long each one is given to end the task


async def end_tasks(tasks: Iterable[asyncio.Future[Any]], owner: str, rounds: int | None = None,
                    wait_s: float | None = None) -> set[asyncio.Future[Any]]:
    """Cancel `tasks` and wait for them to end: each still running after `wait_s` (END_WAIT_S) is cancelled
    again, at most `rounds` (END_ROUNDS) cancels in all, each round logged for the operator as `owner`.
    Their results and errors are dropped. Returns those left running (logged): never waits over
    `rounds * wait_s`."""
    rounds = END_ROUNDS if rounds is None else rounds
    wait_s = END_WAIT_S if wait_s is None else wait_s
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    for round_no in range(1, rounds + 1):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait_s)
        if pending and round_no < rounds:
            logger.warning("{}: {} still running {:g} s after its cancel (a cancel lost inside a library "
                           "call); cancelling again", owner, _names(pending), wait_s)
    for task in tasks:
        if task.done():
            retrieve_outcome(task)  # a dropped error is not reported as never retrieved
    if pending:
        logger.error("{}: {} still running after {} cancels; left to end on its own, not waited for", owner,
                     _names(pending), rounds)
    return pending


def retrieve_outcome(future: asyncio.Future[Any]) -> None:
    """Take a done future's error (a done callback, or after the fact), so one whose result nobody awaits,
    a read left behind or a task ended, is never reported as "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


def _names(tasks: Iterable[asyncio.Future[Any]]) -> str:
    """Each task's name and what it runs (a task named by nobody is only "Task-N")."""
    return ", ".join(sorted(f"{t.get_name()} ({getattr(t.get_coro(), '__qualname__', '?')})"
                            if isinstance(t, asyncio.Task) else repr(t) for t in tasks))

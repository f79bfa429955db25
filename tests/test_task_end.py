"""Ending a task whose cancel can be lost (`hedge_strategy/task_end.py`): Python 3.11's `asyncio.wait_for`,
through which redis-py sends every command, returns instead of raising when the cancel lands in the turn its
call completes. Each test loses a cancel that way, deterministically: the reply and the cancel in one turn."""

from __future__ import annotations

import asyncio

import pytest

from hedge_strategy import task_end
from hedge_strategy.runtime import first_of
from hedge_strategy.task_end import end_tasks

WAIT_S = 5.0  # bound on every wait for something that happens at once


class LosingCall:
    """A call sent as redis-py sends a command (`asyncio.wait_for`); the test answers each one."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        self.lost = 0  # calls that returned although their task was cancelled

    async def __call__(self) -> None:
        reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.replies.put_nowait(reply)
        await asyncio.wait_for(reply, WAIT_S * 4)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            self.lost += 1

    async def answer(self) -> None:
        (await asyncio.wait_for(self.replies.get(), WAIT_S)).set_result(None)


async def test_a_loop_that_lost_its_cancel_is_cancelled_again_and_ends() -> None:
    call = LosingCall()

    async def loop_over_redis() -> None:  # as a heartbeat or a watch: it ends only when cancelled
        while True:
            await call()

    task = asyncio.create_task(loop_over_redis(), name="beat")
    await call.answer()  # answered in the turn the cancel below lands: the cancel is lost
    async with asyncio.timeout(WAIT_S):
        left = await end_tasks([task], "test", wait_s=0.05)
    assert call.lost == 1  # the first cancel was lost inside the call (Python 3.11)
    assert left == set() and task.cancelled()  # the second one ended it


async def test_a_task_that_never_ends_is_left_behind_after_a_bounded_wait() -> None:
    release = asyncio.Event()

    async def deaf() -> None:  # loses every cancel
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(deaf(), name="deaf")
    await asyncio.sleep(0)  # started: a task cancelled before its first step never runs
    async with asyncio.timeout(WAIT_S):
        left = await end_tasks([task], "test", rounds=3, wait_s=0.05)
    assert left == {task} and not task.done()
    release.set()
    await asyncio.wait_for(task, WAIT_S)


async def test_first_of_returns_though_an_awaitable_lost_its_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_end, "END_WAIT_S", 0.05)
    lost, done = 0, asyncio.Event()
    done.set()  # the awaitable that wins at once

    async def redis_loop() -> None:  # its first cancel lost (as above), the next call cancelled as usual
        nonlocal lost
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            lost += 1
        await asyncio.Event().wait()

    async with asyncio.timeout(WAIT_S):
        await first_of(redis_loop(), done.wait(), timeout_s=None)
    assert lost == 1

"""Shared helpers for the exchange adapter's integration tests against the simulator (no tests here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from hedge_strategy.exchange import Event, LighterAccount, Purpose, Role, make_coid
from tests.fixtures.sim import SimProcess

E = TypeVar("E")

Opener = Callable[..., Awaitable[tuple[LighterAccount, "asyncio.Queue[Event]"]]]

FAST = {
    "request_timeout_s": 2.0,
    "ws_heartbeat_timeout_s": 2.0,
    "ws_backoff_min_s": 0.05,
    "ws_backoff_max_s": 0.5,
    # A 2 s heartbeat means a ping each way every second on each connection, far more than the venue's
    # cadence: the WebSocket message budget is raised to match (it is tested in test_exchange_ws_budget.py
    # and test_exchange_stream_faults.py).
    "ws_messages_per_minute": 600,
}


MIN_SIZE = Decimal("0.0002")  # BTC's minimum order on the simulator


def maker_coid(n: int) -> int:
    """A's n-th maker client order index."""
    return make_coid(Role.A, Purpose.MAKER, n)


async def next_event(queue: asyncio.Queue[Event], kind: type[E], where: Callable[[E], bool] = lambda _: True,
                     timeout_s: float = 5.0) -> E:
    """The next event of `kind` matching `where` (others are skipped); TimeoutError after `timeout_s`."""
    async def scan() -> E:
        while True:
            event = await queue.get()
            if isinstance(event, kind) and where(event):
                return event
    return await asyncio.wait_for(scan(), timeout_s)


async def events_until(queue: asyncio.Queue[Event], done: Callable[[list[Event]], bool],
                       timeout_s: float = 5.0) -> list[Event]:
    """Every event from `queue` up to the first moment `done(seen)` holds; TimeoutError after `timeout_s`."""
    seen: list[Event] = []

    async def scan() -> list[Event]:
        while not done(seen):
            seen.append(await queue.get())
        return seen
    return await asyncio.wait_for(scan(), timeout_s)


@pytest.fixture
async def open_account() -> AsyncIterator[Opener]:
    """`await open_account(sim, account_index=101, books=("BTC",), trades=(), **LighterAccount overrides)`
    -> (started account, its event queue subscribed before start). Closed at teardown."""
    opened: list[LighterAccount] = []

    async def opener(sim: SimProcess, account_index: int = 101, books: Sequence[str] = ("BTC",),
                     trades: Sequence[str] = (), **overrides: Any
                     ) -> tuple[LighterAccount, asyncio.Queue[Event]]:
        key_index, secret = sim.accounts[account_index]
        params: dict[str, Any] = {"url": sim.url, "ws_url": sim.ws_url, "account_index": account_index,
                                  "api_key_index": key_index, "api_secret": secret, **FAST, **overrides}
        account = LighterAccount(**params)
        opened.append(account)
        queue = account.subscribe()
        await account.start(books, trades)
        return account, queue

    yield opener
    for account in opened:
        await account.close()

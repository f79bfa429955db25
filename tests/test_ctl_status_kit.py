"""Helpers for the `hedgectl status / clear / report` tests (no tests here).

`open_positions` gives both accounts a position and a resting order through the real adapter (lighter-sdk
against the simulator), the way an operator finds the pair before a clear. `run_hedgectl` runs the real
console entry point (`python -m hedge_strategy.ctl`) as a child process, so each command gets its own event
loop and logging exactly as in a shell.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedge_strategy.exchange import LighterAccount, Purpose, Role, Side, make_coid
from tests.fixtures.ab import A_ACCOUNT, AB, B_ACCOUNT, BTC
from tests.fixtures.sim import REPO_ROOT, TEST_API_KEY_INDEX, SimProcess

CTL_TIMEOUT_S = 60.0


@dataclass
class CtlRun:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def spawn_hedgectl(*argv: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`python -m hedge_strategy.ctl *argv` as a child with piped stdout and stderr."""
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    child_env["NO_PROXY"] = child_env["no_proxy"] = "127.0.0.1,localhost"
    child_env.update(env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_strategy.ctl", *argv, cwd=REPO_ROOT, env=child_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def run_hedgectl(*argv: str, env: dict[str, str] | None = None) -> CtlRun:
    proc = await spawn_hedgectl(*argv, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), CTL_TIMEOUT_S)
    assert proc.returncode is not None
    return CtlRun(proc.returncode, out.decode(), err.decode())


async def connect(sim: SimProcess, account_index: int) -> LighterAccount:
    account = LighterAccount(url=sim.url, ws_url=sim.ws_url, account_index=account_index,
                             api_key_index=TEST_API_KEY_INDEX, api_secret=sim.accounts[account_index][1],
                             request_timeout_s=3, ws_heartbeat_timeout_s=5)
    await account.start()
    return account


@dataclass
class Placed:
    """What `open_positions` did: the signed positions and the resting orders' client order indexes."""

    positions: dict[int, Decimal]
    resting: dict[int, int]


async def open_positions(ab: AB, a_size: str = "0.0004", b_size: str = "-0.0002",
                         resting_on: tuple[int, ...] = (A_ACCOUNT, B_ACCOUNT)) -> Placed:
    """A and B take liquidity from the sim's ladder (IOC); the accounts in `resting_on` leave one post-only
    order far from the touch."""
    positions = {A_ACCOUNT: Decimal(a_size), B_ACCOUNT: Decimal(b_size)}
    resting: dict[int, int] = {}
    for number, (account_index, signed) in enumerate(positions.items(), start=1):
        account = await connect(ab.sim, account_index)
        try:
            market = account.market("BTC")
            book = await account.top_of_book(market)
            assert book.best_bid is not None and book.best_ask is not None
            side = Side.BUY if signed > 0 else Side.SELL
            touch = book.best_ask if side is Side.BUY else book.best_bid
            role = Role.A if account_index == A_ACCOUNT else Role.B
            taker = await account.place_ioc(market, side, abs(signed), touch,
                                            make_coid(role, Purpose.REBALANCE, number))
            assert taker.accepted, taker
            if account_index not in resting_on:
                continue
            # A far post-only order on the side that does not cross (stays resting).
            far = (book.best_bid * Decimal("0.95")).quantize(market.tick) if side is Side.BUY else \
                (book.best_ask * Decimal("1.05")).quantize(market.tick)
            coid = make_coid(role, Purpose.MAKER, 100 + number)
            post = await account.place_post_only(market, side, Decimal("0.0002"), far, coid)
            assert post.accepted, post
            resting[account_index] = coid
        finally:
            await account.close()
    for account_index, signed in positions.items():
        assert await ab.position(account_index) == signed
        listed = [o["client_order_index"] for o in await ab.open_orders(account_index)]
        assert listed == ([resting[account_index]] if account_index in resting else [])
    return Placed(positions, resting)


def actions_lines(ab: AB) -> list[dict[str, Any]]:
    path = Path(ab.config.logging.dir) / "actions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


__all__ = ["BTC", "CtlRun", "Placed", "actions_lines", "connect", "open_positions", "run_hedgectl"]

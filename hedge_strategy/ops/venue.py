"""The exchange as `hedgectl` sees it: A's and B's accounts connected for a one-shot command, and what they
hold (positions, resting orders) read fresh from the exchange, never from local records: those say what this
bot believed, which a restart, a manual trade or a liquidation may have made wrong.

`connect_accounts` starts a `LighterAccount` for each role whose API secret is available and says why the
others are missing; a start that hangs is cut after a bounded time, so a CLI always answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedge_strategy.config import ROLES, Config, ConfigError, load_secret
from hedge_strategy.exchange import LighterAccount, OrderUpdate, PositionSnapshot, describe_coid
from hedge_strategy.execution.connect import new_account, start_timeout_s

ROLE_LABELS = {"a": "A", "b": "B"}


def describe_error(exc: BaseException) -> str:
    """One line for an exception: its text, or its type when it has none."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Connected:
    """The accounts that started (by role) and, for the others, why not."""

    accounts: dict[str, LighterAccount] = field(default_factory=dict)
    missing_secret: dict[str, str] = field(default_factory=dict)  # role -> what to do
    failed: dict[str, str] = field(default_factory=dict)  # role -> the start error

    def any(self) -> LighterAccount | None:
        return next(iter(self.accounts.values()), None)


@contextlib.asynccontextmanager
async def connect_accounts(config: Config, roles: Sequence[str] = ROLES) -> AsyncIterator[Connected]:
    """Start the accounts of `roles` that have a secret; closes them on exit. Never raises for one that
    fails to start: `Connected.failed` says why (the exchange unreachable, a refused key, a timeout)."""
    connected = Connected()
    for role in roles:
        try:
            secret = load_secret(config, role)
        except ConfigError as exc:
            connected.missing_secret[role] = "; ".join(exc.problems)
            continue
        account = new_account(config, role, secret)
        try:
            await asyncio.wait_for(account.start(), start_timeout_s(config))
        except Exception as exc:
            await account.close()
            connected.failed[role] = describe_error(exc)
            continue
        connected.accounts[role] = account
    try:
        yield connected
    finally:
        for account in connected.accounts.values():
            with contextlib.suppress(Exception):
                await account.close()


def market_label(account: LighterAccount, market_id: int) -> str:
    try:
        return account.market_by_id(market_id).symbol
    except KeyError:
        return f"market {market_id}"


def position_json(account: LighterAccount, snap: PositionSnapshot) -> dict[str, Any]:
    return {
        "market": market_label(account, snap.market_id),
        "market_id": snap.market_id,
        "size": str(snap.size),
        "avg_entry_price": str(snap.avg_entry_price),
        "unrealized_pnl": str(snap.unrealized_pnl),
    }


def order_json(account: LighterAccount, order: OrderUpdate) -> dict[str, Any]:
    return {
        "market": market_label(account, order.market_id),
        "client_order_index": order.client_order_index,
        "label": describe_coid(order.client_order_index),
        "side": order.side.value,
        "price": str(order.price),
        "remaining_size": str(order.remaining_size),
        "status": order.state.value,
    }


def net_by_market(positions: dict[str, list[dict[str, Any]]]) -> dict[str, Decimal]:
    """A + B per market symbol, from `position_json` lists keyed by role."""
    net: dict[str, Decimal] = {}
    for held in positions.values():
        for pos in held:
            net[pos["market"]] = net.get(pos["market"], Decimal(0)) + Decimal(pos["size"])
    return net

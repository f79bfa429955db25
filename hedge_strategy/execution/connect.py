"""The one wiring of an account: adapter, journal, tracker, reconciler, executor. For A and B
(`runtime.open_runtime` adds the bus, metrics, alerts, events) and `hedgectl clear` (its operator journal).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

from hedge_strategy.config import Config, ConfigError, load_secret
from hedge_strategy.exchange import LighterAccount
from hedge_strategy.exchange.throttle import RateBudget
from hedge_strategy.execution.journal import Journal
from hedge_strategy.execution.orders import OrderExecutor
from hedge_strategy.execution.reconcile import Reconciler
from hedge_strategy.execution.tracker import FillCallback, OrderTracker
from hedge_strategy.observe import NO_EVENTS, HedgeMetrics, RoleEvents

AccountT = TypeVar("AccountT", bound=LighterAccount)


def new_account(config: Config, role: str, secret: str, account_class: type[AccountT] = LighterAccount,
                budget: RateBudget | None = None) -> AccountT:  # type: ignore[assignment]
    """The account of `role` as the config describes it (`account_class`: e.g. preflight's read-only one;
    `budget`: the REST budget it shares with the other account, `bus.shared_budget`)."""
    ref, ex = config.accounts[role], config.exchange
    return account_class(
        url=ex.url, ws_url=ex.ws_url, account_index=ref.account_index, api_key_index=ref.api_key_index,
        api_secret=secret, chain_id=ex.chain_id, tier=ex.tier, request_timeout_s=ex.request_timeout_s,
        ws_heartbeat_timeout_s=ex.ws_heartbeat_timeout_s, ws_backoff_min_s=ex.ws_backoff_min_s,
        ws_backoff_max_s=ex.ws_backoff_max_s, auth_token_ttl_s=ex.auth_token_ttl_s, budget=budget,
        send_over_websocket=ex.send_over_websocket, send_timeout_s=ex.send_timeout_s,
        resting_order_expiry_s=ex.resting_order_expiry_s,
        tx_may_use_reserve=role == "b",  # B's transactions are its hedges: the shared budget keeps a reserve
    )


def start_timeout_s(config: Config) -> float:
    """How long one account's start may take: key check, markets, nonce, then the stream's bounded wait."""
    ex = config.exchange
    return 3 * ex.request_timeout_s + max(ex.request_timeout_s, ex.ws_heartbeat_timeout_s) + 5


async def open_account(config: Config, role: str, journal_file: Path, *, name: str,
                       market: str | None = None, on_fill: FillCallback | None = None,
                       events: RoleEvents | None = None, metrics: HedgeMetrics | None = None,
                       budget: RateBudget | None = None, start_timeout: float | None = None,
                       trade_feed: bool = False) -> OrderExecutor:
    """Connect account `role` with its journal at `journal_file`; its executor (not yet tracking: the caller
    starts the tracker once its fill handler is in place), named `name` in the logs.

    `market`: the symbol traded, whose book the stream follows (ConfigError naming `strategy.market` when the
    exchange does not list it); `budget`: the REST budget shared with the other account (its owner closes it);
    `start_timeout` bounds the start (a CLI must answer); `trade_feed`: the stream also follows the market's
    public trades (`PublicTrade` events: B, `hedger_feed`). Raises ConfigError for a
    missing secret, anything else when the exchange fails (the account is closed then).
    """
    account = new_account(config, role, load_secret(config, role), budget=budget)
    queue = account.subscribe()  # before start: the first snapshot's events are kept
    try:
        starting = account.start(book_symbols=[market] if market else [],
                                 trade_symbols=[market] if market and trade_feed else [])
        await (asyncio.wait_for(starting, start_timeout) if start_timeout else starting)
        try:
            markets = [account.market(market)] if market else []
        except KeyError as exc:
            raise ConfigError(f"strategy.market: {exc.args[0]}") from None
        journal = await Journal.open(journal_file, account.account_index)
    except BaseException:
        await account.close()
        raise
    tracker = OrderTracker(journal, queue, on_fill=on_fill)
    ex = config.exchange
    reconciler = Reconciler(account, journal, tracker, markets, ex.unknown_order_grace_s)
    return OrderExecutor(account, journal, tracker, reconciler, name=name,
                         events=events or RoleEvents(NO_EVENTS, role),
                         metrics=metrics or HedgeMetrics(config.pair, role, enabled=False),
                         request_timeout_s=ex.request_timeout_s, unknown_grace_s=ex.unknown_order_grace_s,
                         lookup_after_s=ex.order_lookup_after_s)

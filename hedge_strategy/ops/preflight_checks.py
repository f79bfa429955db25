"""The REST half of `hedgectl preflight`: reachability, chain id, market, API keys, tiers, quantity,
collateral and leftovers, one `Check` each (per account where it is per account).

Every read is one of `VenueReads` (read-only, bodies kept as received for `--record`); the facts are read
off the answers by the adapter's parsers (`exchange.preflight_reads`). A check that cannot run because one
it depends on failed says SKIP and why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from hedge_strategy.config import ROLES, Config
from hedge_strategy.config_error import ConfigError
from hedge_strategy.exchange.preflight_reads import (
    AccountFacts,
    CountingThrottle,
    MarketFacts,
    PreflightAccount,
    RestAnswer,
    VenueReads,
    account_facts,
    book_top,
    find_market,
    known_chain_id,
    limits_tier,
    resting_orders,
    venue_status,
)
from hedge_strategy.execution.connect import new_account
from hedge_strategy.logs import mask_secrets
from hedge_strategy.ops.venue import ROLE_LABELS
from hedge_strategy.secrets import load_secret, secret_env_var

EmitCheck = Callable[["Check"], None]

# Free collateral must cover this many times the initial margin of one order of `strategy.quantity`: the
# position it opens, an order resting beside it, and as much again for price moves and the hedge chase.
MARGIN_MULTIPLE = 3
INFERRED_PREMIUM = " (inferred: only 0 = standard is confirmed by venue traffic)"


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"  # worth a look; does not fail the preflight
    FAIL = "FAIL"
    SKIP = "SKIP"  # could not run because a check it depends on failed (so the preflight fails anyway)


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""  # what to do, shown for FAIL and WARN

    def line(self) -> str:
        text = f"{self.verdict.value:<4}  {self.name:<16} {self.detail}"
        if self.fix and self.verdict in (Verdict.FAIL, Verdict.WARN):
            text += f" | do: {self.fix}"
        return mask_secrets(text)  # a venue's error text could quote anything


@dataclass
class Venue:
    """The venue as the REST phase found it; the stream phase and the last checks build on it."""

    config: Config
    reads: VenueReads
    throttle: CountingThrottle
    status: RestAnswer | None = None
    market: MarketFacts | None = None
    price: Decimal | None = None
    accounts: dict[str, PreflightAccount] = field(default_factory=dict)  # roles whose key is valid
    facts: dict[str, AccountFacts] = field(default_factory=dict)
    # Told every API key read and auth token made, before it is used (the recorder masks them).
    on_key: Callable[[str], None] = lambda _key: None
    on_token: Callable[[str], None] = lambda _token: None

    async def token(self, role: str, fresh: bool = False) -> tuple[str, float]:
        token, expiry = await self.accounts[role].auth_token(fresh)
        self.on_token(token)
        return token, expiry

    async def close(self) -> None:
        for account in self.accounts.values():
            with contextlib.suppress(Exception):
                await account.close()
        self.accounts.clear()


def label(role: str) -> str:
    return ROLE_LABELS[role]


async def check_rest(venue: Venue) -> Check:
    url = venue.config.exchange.url
    answer = venue.status = await venue.reads.status()
    if answer.http_status is None:
        return Check("rest", Verdict.FAIL, f"{url} cannot be reached: {answer.error}",
                     "check exchange.url (mainnet: https://mainnet.zklighter.elliot.ai), the network and any "
                     "proxy")
    if not answer.ok:
        return Check("rest", Verdict.FAIL, f"GET {url}/ answered {answer.error}",
                     "exchange.url must be the venue's REST base URL, without /api/v1")
    return Check("rest", Verdict.PASS, f"GET {url}/ answered in {answer.elapsed_ms:.0f} ms")


def check_chain_id(venue: Venue) -> Check:
    configured = venue.config.exchange.chain_id
    known = known_chain_id(venue.config.exchange.url)
    network = venue_status(venue.status.body).network_id if venue.status else None
    said = f"; the venue's status says network_id {network}" if network is not None else ""
    if known is not None:
        name, chain = known
        if chain != configured:
            return Check("chain id", Verdict.FAIL,
                         f"exchange.chain_id is {configured} but {name} is chain {chain}{said}",
                         f"set exchange.chain_id: {chain} (every transaction is signed for it)")
        return Check("chain id", Verdict.PASS, f"{configured}, the chain of {name} (by its URL){said}")
    if network == configured:
        return Check("chain id", Verdict.PASS,
                     f"{configured}: the URL is no known Lighter network; the venue's status says network_id "
                     f"{network}, the same")
    return Check("chain id", Verdict.WARN,
                 f"{configured} cannot be checked: the URL is no known Lighter network (mainnet 304, testnet "
                 f"300){said or '; the venue states no network id'}",
                 "make sure exchange.chain_id is the chain of this venue")


async def check_market(venue: Venue) -> Check:
    symbol = venue.config.strategy.market
    answer = await venue.reads.order_book_details()
    if not answer.ok:
        return Check("market", Verdict.FAIL, f"orderBookDetails answered {answer.error}",
                     "the venue's market list is needed; try again later")
    try:
        market, symbols = find_market(answer.body, symbol)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return Check("market", Verdict.FAIL, f"the details of {symbol} cannot be read: {exc}",
                     "report it: the adapter cannot trade a market it cannot read")
    if market is None:
        return Check("market", Verdict.FAIL, f"no market {symbol}; the venue lists {', '.join(symbols[:20])}",
                     "set strategy.market (or --market) to one of them")
    info = market.info
    facts = (f"{symbol} is market {info.market_id} ({market.status}): size decimals {info.size_decimals} "
             f"(lot {info.lot}), price decimals {info.price_decimals} (tick {info.tick}), minimum "
             f"{info.min_base_amount} {symbol} and {info.min_quote_amount} USDC per order")
    if market.status != "active":
        return Check("market", Verdict.FAIL, facts, "trade an active market")
    venue.market = market
    top = await venue.reads.order_book_orders(info.market_id)
    bid, ask = book_top(top.body) if top.ok else (None, None)
    venue.price = (bid + ask) / 2 if bid is not None and ask is not None else (bid or ask or
                                                                                market.reference_price)
    return Check("market", Verdict.PASS, facts)


async def check_key(venue: Venue, role: str) -> Check:
    config, name = venue.config, f"api key {label(role)}"
    ref = config.accounts[role]
    who = f"account {ref.account_index} key {ref.api_key_index}"
    try:
        secret = load_secret(config, role)
    except ConfigError as exc:
        return Check(name, Verdict.FAIL, f"{who}: no private key ({'; '.join(exc.problems)})",
                     f"set {secret_env_var(role)} or add \"{ref.account_index}:{ref.api_key_index}\" to "
                     "secrets_file")
    venue.on_key(secret)
    account = new_account(config, role, secret, PreflightAccount)
    account.throttle = venue.throttle  # one count of what this run asked of the venue
    refused = await account.open_read_only()
    if refused is not None:
        await account.close()
        return Check(name, Verdict.FAIL, refused,
                     f"use the private key registered for {who} on the venue (secrets_file or "
                     f"{secret_env_var(role)}), and check accounts.{role}.account_index / api_key_index")
    venue.accounts[role] = account
    return Check(name, Verdict.PASS, f"{who}: matches the public key registered on the venue (check_client)")


async def check_auth_read(venue: Venue, role: str) -> tuple[Check | None, RestAnswer | None]:
    """An authenticated read with the key's auth token (every resting order of the account). A refusal
    fails the key: the Check returned then replaces the key's PASS."""
    if role not in venue.accounts:
        return None, None
    index = venue.config.accounts[role].account_index
    try:
        token, _ = await venue.token(role)
        answer = await venue.reads.active_orders(index, token)
        why = None if answer.ok else f"an authenticated read (accountActiveOrders) was refused: " \
                                     f"{answer.error}"
    except Exception as exc:
        answer, why = None, f"no auth token could be made: {exc}"
    if why is None:
        return None, answer
    with contextlib.suppress(Exception):
        await venue.accounts.pop(role).close()
    return Check(f"api key {label(role)}", Verdict.FAIL, f"check_client passed but {why}",
                 "the venue does not accept this key's auth tokens: check the key and the clock (a token "
                 "carries an expiry from the local clock)"), None


async def check_tier(venue: Venue, role: str) -> Check:
    config, name = venue.config, f"tier {label(role)}"
    index = config.accounts[role].account_index
    answer = await venue.reads.account(index)
    if not answer.ok:
        return Check(name, Verdict.FAIL, f"account {index} cannot be read: {answer.error}",
                     f"check accounts.{role}.account_index")
    facts = venue.facts[role] = account_facts(answer.body, index)
    from_type = facts.tier
    user_tier = None
    if role in venue.accounts:  # accountLimits needs the account's auth token
        with contextlib.suppress(Exception):  # made once already (api key); without it, account_type says
            token, _ = await venue.token(role)
            limits = await venue.reads.account_limits(index, token)
            user_tier = limits_tier(limits.body) if limits.ok else None
    sources = []
    if user_tier is not None:
        sources.append(f"accountLimits user_tier {user_tier}")
    if from_type is not None:
        tier, confirmed = from_type
        sources.append(f"account_type {facts.account_type} = {tier}"
                       f"{'' if confirmed else INFERRED_PREMIUM}")
    venue_tier = user_tier or (from_type[0] if from_type else None)
    said = "; ".join(sources)
    if venue_tier is None:
        return Check(name, Verdict.WARN, f"account {index}: the venue's answers do not say its tier "
                     f"(account_type {facts.account_type}, no accountLimits)",
                     f"make sure exchange.tier ({config.exchange.tier}) is the accounts' tier")
    if venue_tier != config.exchange.tier:
        return Check(name, Verdict.FAIL, f"exchange.tier is {config.exchange.tier} but account {index} is "
                     f"{venue_tier} ({said})",
                     f"set exchange.tier: {venue_tier} (it sets the client-side rate limit; both accounts "
                     "must be of that tier)")
    return Check(name, Verdict.PASS, f"account {index} is {venue_tier}, as exchange.tier says ({said})")


def check_quantity(venue: Venue) -> Check:
    market, quantity = venue.market, venue.config.strategy.quantity
    if market is None:
        return Check("quantity", Verdict.SKIP, "no market to check it against (see market)")
    info, symbol = market.info, market.info.symbol
    try:
        info.base_to_int(quantity)
    except ValueError:
        return Check("quantity", Verdict.FAIL,
                     f"{quantity} {symbol} is not a whole number of lots ({info.lot})",
                     f"set strategy.quantity to a multiple of {info.lot}")
    if quantity < info.min_base_amount:
        return Check("quantity", Verdict.FAIL,
                     f"{quantity} {symbol} is below the market's minimum order size {info.min_base_amount}",
                     f"set strategy.quantity (or --quantity) to at least {info.min_base_amount}")
    if venue.price is None:
        return Check("quantity", Verdict.WARN,
                     f"{quantity} {symbol} >= the minimum {info.min_base_amount}; no price to check the "
                     "minimum quote amount against",
                     f"make sure {quantity} x the price is at least {info.min_quote_amount} USDC")
    quote = quantity * venue.price
    if quote < info.min_quote_amount:
        least = (info.min_quote_amount / venue.price).quantize(info.lot, rounding=ROUND_CEILING)
        return Check("quantity", Verdict.FAIL,
                     f"{quantity} {symbol} x {venue.price} = {quote:.2f} USDC is below the market's minimum "
                     f"{info.min_quote_amount} USDC per order",
                     f"set strategy.quantity (or --quantity) to at least {least} at this price")
    return Check("quantity", Verdict.PASS,
                 f"{quantity} {symbol} >= minimum {info.min_base_amount}; {quantity} x {venue.price} = "
                 f"{quote:.2f} USDC >= minimum {info.min_quote_amount} USDC")


def check_collateral(venue: Venue, role: str) -> Check:
    name, facts, market = f"collateral {label(role)}", venue.facts.get(role), venue.market
    if facts is None or market is None or venue.price is None:
        missing = "the account" if facts is None else "the market" if market is None else "a price"
        return Check(name, Verdict.SKIP, f"needs {missing} (see above)")
    if facts.available_balance is None:
        return Check(name, Verdict.FAIL, f"account {facts.account_index}: available balance unreadable "
                     f"({'; '.join(facts.problems)})", "report it: the account answer is not as expected")
    fraction = facts.margin_fractions.get(market.info.market_id) or market.default_margin_fraction
    basis = "the account's" if market.info.market_id in facts.margin_fractions else "the market's default"
    if fraction is None:
        fraction, basis = Decimal(1), "no margin fraction stated, so no leverage assumed:"
    quantity = venue.config.strategy.quantity
    needed = MARGIN_MULTIPLE * quantity * venue.price * fraction
    rule = (f"estimate: {MARGIN_MULTIPLE} x {quantity} x {venue.price} x {basis} initial margin "
            f"{fraction:.2%}; a position, a resting order and as much again for price moves; the venue's "
            "margin engine decides")
    shown = f"account {facts.account_index}: {facts.available_balance} USDC available"
    if facts.available_balance < needed:
        return Check(name, Verdict.FAIL, f"{shown} < {needed:.2f} needed ({rule})",
                     "deposit collateral, or lower strategy.quantity")
    return Check(name, Verdict.PASS, f"{shown} >= {needed:.2f} needed ({rule})")


def check_leftovers(venue: Venue, role: str, orders_answer: RestAnswer | None) -> Check:
    name, facts, market = f"leftovers {label(role)}", venue.facts.get(role), venue.market
    if facts is None or market is None:
        return Check(name, Verdict.SKIP,
                     f"needs {'the account (see tier)' if facts is None else 'the market'}")
    orders, problems = resting_orders(orders_answer.body, facts.account_index) if orders_answer else ([], [])
    market_id = market.info.market_id
    positions, here, elsewhere = facts.positions, [], []
    for p in positions:
        (here if p.market_id == market_id else elsewhere).append(f"market {p.market_id} position {p.size:+}")
    for o in orders:
        (here if o.market_id == market_id else elsewhere).append(
            f"market {o.market_id} {o.side.value} {o.remaining_size} @ {o.price} resting")
    who = f"account {facts.account_index}"
    if here:
        return Check(name, Verdict.FAIL, f"{who} in {venue.config.strategy.market}: {', '.join(here)}",
                     "the bot starts from a flat pair with nothing resting: close them (hedgectl clear "
                     "closes both accounts) or cancel them on the venue")
    if orders_answer is None:
        return Check(name, Verdict.SKIP, f"{who}: no position in the market; resting orders not readable "
                     "without a valid API key (see api key)")
    if elsewhere or problems:
        return Check(name, Verdict.WARN, f"{who}: nothing in {venue.config.strategy.market}; elsewhere: "
                     f"{', '.join(elsewhere + problems)}",
                     "they use margin the bot does not see; close them if that matters")
    return Check(name, Verdict.PASS, f"{who}: no position and no resting order")


async def rest_checks(venue: Venue, emit: EmitCheck) -> None:
    """Run the REST checks in order, `emit`ting each as soon as it is known."""
    rest = await emit_async(emit, check_rest(venue))
    if rest.verdict is not Verdict.PASS:
        return
    emit(check_chain_id(venue))
    await emit_async(emit, check_market(venue))
    orders: dict[str, RestAnswer | None] = {}
    for role in ROLES:
        key = await check_key(venue, role)
        refused, orders[role] = await check_auth_read(venue, role)
        emit(refused or key)
    for role in ROLES:
        await emit_async(emit, check_tier(venue, role))
    emit(check_quantity(venue))
    for role in ROLES:
        emit(check_collateral(venue, role))
    for role in ROLES:
        emit(check_leftovers(venue, role, orders[role]))


async def emit_async(emit: EmitCheck, pending: Awaitable[Check]) -> Check:
    check = await pending
    emit(check)
    return check

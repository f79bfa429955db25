"""The `sim:` section of config.yaml, declared once: each setting is one line of its section below.

A line gives the setting's name, its type (which carries the constraints and the words a refusal uses) and
its default. A section or key left out takes the default; the defaults mirror the shipped config.yaml, but for
`flow.volatility_bps` (1.0 here, 0.3 there). An unknown key or a bad value raises `SimConfigError` naming
each offending key by its dotted path (`sim.flow.tick_interval_ms: expected an integer between 1 and 60000,
got 0`); the CLI turns it into exit 2.
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, Strict, TypeAdapter, model_validator

from .fees import rate_millionths
from .markets import MarketSpec
from .serialize import CHAIN_ID
from .signatures import VERIFY_MODES
from .validation import SimConfigError, broken_rule, expecting, record, validated

T = TypeVar("T")

TIERS = ("standard", "premium")

# ----------------------------------------------------------------------------------------------------
# Field types: each accepts only what it names, and a refusal says so in these words. `integer`, `number`
# and `decimal` copy the bot's (`hedge_strategy/config.py`) on purpose: the simulator may not import the bot.


def integer(ge: int | None = None, le: int | None = None) -> Any:
    """An int (never a bool, never "5") within the bounds."""
    bounds = f" between {ge} and {le}" if le is not None else f" >= {ge}" if ge is not None else ""
    return Annotated[int, Strict(), Field(ge=ge, le=le), expecting(f"an integer{bounds}")]


def number(gt: float | None = None, ge: float | None = None) -> Any:
    """A finite int or float (never a bool, never "5"), kept as a float."""
    bound = f" > {gt:g}" if gt is not None else f" >= {ge:g}"
    return Annotated[float, Strict(), Field(gt=gt, ge=ge), expecting(f"a number{bound}")]


def _to_decimal(value: Any) -> Any:
    """YAML's "0.0002", 0.0002 or 1 as a Decimal (floats through str(), so 0.1 is 0.1); others are refused."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            pass
    return value


def decimal(gt: int | None = None, ge: int | None = None) -> Any:
    """A finite Decimal, from a string or a YAML number."""
    bound = f" > {gt}" if gt is not None else f" >= {ge}"
    return Annotated[Decimal, Strict(), Field(gt=gt, ge=ge), BeforeValidator(_to_decimal),
                     expecting(f'a decimal number such as "0.5"{bound}')]


def _whole_millionths(fraction: Decimal) -> Decimal:
    rate_millionths(fraction, "")  # the venue's fee fields are integer rates: 0.000028 is 28 (fees.py)
    return fraction


Flag = Annotated[bool, Strict(), expecting("true or false")]
Text = Annotated[str, Strict(), Field(pattern=r"\S"), expecting("a non-empty string")]
_as_path = BeforeValidator(lambda v: Path(v) if isinstance(v, str) and v.strip() else v)
LocalPath = Annotated[Path, Strict(), _as_path, expecting("a non-empty string")]  # kept as written
Tier = Annotated[Literal[TIERS], expecting("one of " + ", ".join(TIERS))]
VerifySignatures = Annotated[Literal[VERIFY_MODES], expecting("one of " + ", ".join(VERIFY_MODES))]
Millis = integer(ge=0, le=60_000)
Seconds = number(gt=0)
Fee = Annotated[Decimal, Strict(), Field(ge=0, lt=1), BeforeValidator(_to_decimal),
                AfterValidator(_whole_millionths),
                expecting('a fraction of notional below 1 in whole millionths, such as "0.000028"')]
# Accounts charged to one rate-limit budget: on the venue, the sub-accounts of one L1 address share one.
AccountGroup = Annotated[list[Annotated[int, Strict(), Field(ge=3)]], Field(min_length=2),
                         expecting("a list of two or more account indexes (each >= 3)")]
# A section left empty (`flow:` reads as None) is an empty mapping: every key takes its default.
Section = Annotated[T, BeforeValidator(lambda v: {} if v is None else v)]


def defaults() -> Any:
    """The default of a section left out: an empty mapping, so each key takes its default."""
    return Field(default_factory=dict)


def listed(*items: dict[str, Any]) -> Any:
    """The default of a list left out: `items`, validated like given ones."""
    return Field(default_factory=lambda: list(items))


# ----------------------------------------------------------------------------------------------------
# The sections: one line per setting. See config.yaml for what each one does.


@record
class Market:
    symbol: Text
    market_id: integer(ge=0, le=254)
    size_decimals: integer(ge=0, le=8)
    price_decimals: integer(ge=0, le=8)
    min_base_amount: decimal(gt=0)
    min_quote_amount: decimal(ge=0)  # USDC
    initial_price: decimal(gt=0)

    def spec(self) -> MarketSpec:
        return MarketSpec(**asdict(self))

    @model_validator(mode="after")
    def _within_decimals(self) -> Market:
        for name, decimals in (("min_base_amount", "size_decimals"), ("initial_price", "price_decimals")):
            value, places = getattr(self, name), getattr(self, decimals)
            if value.as_tuple().exponent < -places:
                raise broken_rule(f"has more than {decimals}={places} decimals, got {value}", key=name)
        return self


@record
class AccountSeed:
    account_index: integer(ge=3)  # 1 and 2 are the simulator's own liquidity and taker accounts
    tier: Tier = "premium"
    collateral: decimal(ge=0) = Decimal(100000)  # USDC


@record
class TierFees:  # fractions of notional; these are standard's
    maker: Fee = Decimal(0)
    taker: Fee = Decimal(0)


@record
class PremiumFees(TierFees):  # 0.28 / 1.96 bps: the venue's captured trades (maker 28, taker 196 millionths)
    maker: Fee = Decimal("0.000028")
    taker: Fee = Decimal("0.000196")


@record
class Fees:
    standard: Section[TierFees] = defaults()
    premium: Section[PremiumFees] = defaults()

    def by_tier(self) -> dict[str, tuple[Decimal, Decimal]]:
        """tier -> (maker, taker), as the engine takes them."""
        return {tier: (fees.maker, fees.taker) for tier, fees in (("standard", self.standard),
                                                                    ("premium", self.premium))}


@record
class SpeedBump:  # these are standard's
    maker_ms: Millis = 200
    cancel_ms: Millis = 200
    taker_ms: Millis = 300

    def delay_ms(self, kind: str) -> int:
        return {"maker": self.maker_ms, "cancel": self.cancel_ms, "taker": self.taker_ms}.get(kind, 0)


@record
class PremiumBump(SpeedBump):
    maker_ms: Millis = 0
    cancel_ms: Millis = 0
    taker_ms: Millis = 200


@record
class SpeedBumps:
    enabled: Flag = True
    standard: Section[SpeedBump] = defaults()
    premium: Section[PremiumBump] = defaults()

    def delay_ms(self, tier: str, kind: str) -> int:
        """How long a `kind` ("maker", "cancel", "taker") transaction of a `tier` account waits (0: off)."""
        bump = {"standard": self.standard, "premium": self.premium}.get(tier) if self.enabled else None
        return bump.delay_ms(kind) if bump else 0


@record
class RateLimits:
    enabled: Flag = True
    standard_per_minute: integer(ge=1) = 60  # unweighted requests, sendTx included
    premium_weight_per_minute: integer(ge=1) = 24000  # weighted: see ratelimit.py
    shared: list[AccountGroup] = listed()  # groups of accounts charged to one budget (ratelimit.py)

    @model_validator(mode="after")
    def _one_group_each(self) -> RateLimits:
        members = [account for group in self.shared for account in group]
        if len(set(members)) != len(members):
            raise broken_rule(f"an account may be in one group only, got {self.shared}", key="shared")
        return self


@record
class Websocket:
    ping_interval_s: Seconds = 10
    pong_timeout_s: Seconds = 30


@record
class FlowConfig:
    enabled: Flag = True
    tick_interval_ms: integer(ge=1, le=60_000) = 100  # how often the mid-price random walk steps
    volatility_bps: number(ge=0) = 1.0  # stdev of one step of the walk
    liquidity_levels: integer(ge=0, le=1000) = 10  # background resting levels on each side
    liquidity_spacing_ticks: integer(ge=1) = 2  # between background levels
    liquidity_size: decimal(gt=0) = Decimal("0.5")  # base size of each background level
    taker_rate_per_s: number(ge=0) = 1.5  # Poisson arrivals of synthetic takers per market
    taker_size_min_lots: integer(ge=1) = 1  # taker size, uniform in [min, max] market minimums
    taker_size_max_lots: integer(ge=1) = 3

    @model_validator(mode="after")
    def _sizes_ordered(self) -> FlowConfig:
        if self.taker_size_max_lots < self.taker_size_min_lots:
            raise broken_rule(f"must be >= taker_size_min_lots ({self.taker_size_min_lots}), "
                              f"got {self.taker_size_max_lots}", key="taker_size_max_lots")
        return self


_ETH = {"symbol": "ETH", "market_id": 0, "size_decimals": 4, "price_decimals": 2,
        "min_base_amount": "0.0050", "min_quote_amount": "10", "initial_price": "3000.00"}
_BTC = {"symbol": "BTC", "market_id": 1, "size_decimals": 5, "price_decimals": 1,
        "min_base_amount": "0.00020", "min_quote_amount": "10", "initial_price": "95000.0"}


@record
class SimConfig:
    enabled: Flag = True  # read by the start scripts
    host: Text = "127.0.0.1"
    port: integer(ge=0, le=65535) = 8765
    seed: integer() = 7  # same seed, same market flow
    state_dir: LocalPath = Path("var/sim")  # registered API public keys
    chain_id: integer(ge=1) = CHAIN_ID  # GET / network_id; transactions must be signed for it
    verify_signatures: VerifySignatures = "first_per_key"  # see signatures.py
    markets: Annotated[list[Market], Field(min_length=1)] = listed(_ETH, _BTC)
    accounts: list[AccountSeed] = listed({"account_index": 101}, {"account_index": 102})
    fees: Section[Fees] = defaults()
    speed_bumps: Section[SpeedBumps] = defaults()
    rate_limits: Section[RateLimits] = defaults()
    websocket: Section[Websocket] = defaults()
    flow: Section[FlowConfig] = defaults()

    @model_validator(mode="after")
    def _consistent(self) -> SimConfig:
        for section, name, values in (
            ("markets", "market_id", [m.market_id for m in self.markets]),
            ("markets", "symbol", [m.symbol for m in self.markets]),
            ("accounts", "account_index", [a.account_index for a in self.accounts]),
        ):
            if len(set(values)) != len(values):
                raise broken_rule(f"duplicate values in {values}", key=f"{section}.{name}")
        tiers = {a.account_index: a.tier for a in self.accounts}
        for i, group in enumerate(self.rate_limits.shared):
            mixed = sorted({tiers[a] for a in group if a in tiers})
            if len(mixed) > 1:
                raise broken_rule(f"mixes tiers {mixed}: a shared budget is of one tier",
                                  key=f"rate_limits.shared[{i}]")
        return self


_SIM = TypeAdapter(Section[SimConfig])


def parse_sim_section(raw: Any) -> SimConfig:
    """Validate a `sim:` mapping (as loaded from YAML; None for an empty section) into a SimConfig."""
    return validated(lambda: _SIM.validate_python(raw), prefix="sim")


def load_sim_config(path: Path) -> SimConfig:
    """The `sim:` section of the YAML file at `path`; other sections belong to the bot and are ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SimConfigError("--config", f"{path} is not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SimConfigError("--config", f"{path} must hold a mapping at the top level")
    return parse_sim_section(document.get("sim"))

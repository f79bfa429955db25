"""The `sim:` section of config.yaml: defaults, validation, typed access.

Every key is checked: an unknown key or a bad value raises `SimConfigError` naming the key
(`sim.flow.tick_interval_ms: ...`); the CLI turns that into exit code 2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

TIERS = ("standard", "premium")

# Mirrors config.yaml; a missing key takes this value.
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "host": "127.0.0.1",
    "port": 8765,
    "seed": 7,
    "state_dir": "var/sim",
    "markets": [
        {
            "symbol": "ETH",
            "market_id": 0,
            "size_decimals": 4,
            "price_decimals": 2,
            "min_base_amount": "0.0050",
            "min_quote_amount": "10",
            "initial_price": "3000.00",
        },
        {
            "symbol": "BTC",
            "market_id": 1,
            "size_decimals": 5,
            "price_decimals": 1,
            "min_base_amount": "0.00020",
            "min_quote_amount": "10",
            "initial_price": "95000.0",
        },
    ],
    "accounts": [
        {"account_index": 101, "tier": "premium", "collateral": "100000"},
        {"account_index": 102, "tier": "premium", "collateral": "100000"},
    ],
    "fees": {
        "standard": {"maker": "0", "taker": "0"},
        "premium": {"maker": "0.000004", "taker": "0.000028"},
    },
    "speed_bumps": {
        "enabled": True,
        "standard": {"maker_ms": 200, "cancel_ms": 200, "taker_ms": 300},
        "premium": {"maker_ms": 0, "cancel_ms": 0, "taker_ms": 200},
    },
    "rate_limits": {"enabled": True, "standard_per_minute": 60, "premium_weight_per_minute": 24000},
    "websocket": {"ping_interval_s": 10, "pong_timeout_s": 30},
    "flow": {
        "enabled": True,
        "tick_interval_ms": 100,
        "volatility_bps": 1.0,
        "liquidity_levels": 10,
        "liquidity_spacing_ticks": 2,
        "liquidity_size": "0.5",
        "taker_rate_per_s": 1.5,
        "taker_size_min_lots": 1,
        "taker_size_max_lots": 3,
    },
}


class SimConfigError(ValueError):
    """A bad `sim:` key. `str(err)` names the key and what is wrong with it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class SpeedBump:
    maker_ms: int
    cancel_ms: int
    taker_ms: int

    def delay_ms(self, kind: str) -> int:
        return {"maker": self.maker_ms, "cancel": self.cancel_ms, "taker": self.taker_ms}.get(kind, 0)


@dataclass(frozen=True)
class AccountSeed:
    account_index: int
    tier: str
    collateral: Decimal


@dataclass(frozen=True)
class SimConfig:
    host: str
    port: int
    seed: int
    state_dir: Path
    markets: list[dict[str, Any]]  # validated, in config.yaml form (for market_specs_from_config)
    accounts: list[AccountSeed]
    fees: dict[str, tuple[Decimal, Decimal]]  # tier -> (maker, taker)
    speed_bumps_enabled: bool
    speed_bumps: dict[str, SpeedBump]
    rate_limits_enabled: bool
    standard_per_minute: int
    premium_weight_per_minute: int
    ping_interval_s: float
    pong_timeout_s: float
    flow_enabled: bool
    flow: dict[str, Any]  # validated flow section, passed to MarketFlow
    tick_interval_ms: int


# --- small validators: each returns the clean value or raises SimConfigError(key, ...) ---------------


def _int(key: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimConfigError(key, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SimConfigError(key, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SimConfigError(key, f"must be <= {maximum}, got {value}")
    return value


def _number(key: str, value: Any, *, positive: bool = False, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimConfigError(key, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and (positive or not allow_zero)):
        raise SimConfigError(key, f"must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


def _decimal(key: str, value: Any, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SimConfigError(key, f"must be a decimal number (preferably a quoted string), got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise SimConfigError(key, f"must be a decimal number, got {value!r}") from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise SimConfigError(key, f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return number


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SimConfigError(key, f"must be true or false, got {value!r}")
    return value


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SimConfigError(key, f"must be a non-empty string, got {value!r}")
    return value


def _mapping(key: str, value: Any, allowed: dict[str, Any]) -> dict[str, Any]:
    """`value` as a dict with only `allowed` keys, missing ones filled from `allowed` (the defaults)."""
    if not isinstance(value, dict):
        raise SimConfigError(key, f"must be a mapping, got {type(value).__name__}")
    for name in value:
        if name not in allowed:
            raise SimConfigError(f"{key}.{name}", f"unknown key (allowed: {', '.join(allowed)})")
    merged = copy.deepcopy(allowed)
    merged.update(value)
    return merged


# --- sections ---------------------------------------------------------------------------------------

_MARKET_KEYS = dict.fromkeys(DEFAULTS["markets"][0])
_ACCOUNT_KEYS = dict.fromkeys(DEFAULTS["accounts"][0])


def _market(key: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SimConfigError(key, "must be a mapping")
    for name in raw:
        if name not in _MARKET_KEYS:
            raise SimConfigError(f"{key}.{name}", f"unknown key (allowed: {', '.join(_MARKET_KEYS)})")
    for name in _MARKET_KEYS:
        if name not in raw:
            raise SimConfigError(f"{key}.{name}", "missing")
    size_dec = _int(f"{key}.size_decimals", raw["size_decimals"], minimum=0, maximum=8)
    price_dec = _int(f"{key}.price_decimals", raw["price_decimals"], minimum=0, maximum=8)
    min_base = _decimal(f"{key}.min_base_amount", raw["min_base_amount"], positive=True)
    if min_base.as_tuple().exponent < -size_dec:  # type: ignore[operator]
        raise SimConfigError(f"{key}.min_base_amount", f"has more than size_decimals={size_dec} decimals")
    initial = _decimal(f"{key}.initial_price", raw["initial_price"], positive=True)
    if initial.as_tuple().exponent < -price_dec:  # type: ignore[operator]
        raise SimConfigError(f"{key}.initial_price", f"has more than price_decimals={price_dec} decimals")
    return {
        "symbol": _str(f"{key}.symbol", raw["symbol"]),
        "market_id": _int(f"{key}.market_id", raw["market_id"], minimum=0, maximum=254),
        "size_decimals": size_dec,
        "price_decimals": price_dec,
        "min_base_amount": str(min_base),
        "min_quote_amount": str(_decimal(f"{key}.min_quote_amount", raw["min_quote_amount"])),
        "initial_price": str(initial),
    }


def _markets(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise SimConfigError("sim.markets", "must be a non-empty list")
    markets = [_market(f"sim.markets[{i}]", item) for i, item in enumerate(raw)]
    for field in ("market_id", "symbol"):
        seen = [m[field] for m in markets]
        if len(set(seen)) != len(seen):
            raise SimConfigError(f"sim.markets.{field}", f"duplicate values in {seen}")
    return markets


def _accounts(raw: Any) -> list[AccountSeed]:
    if not isinstance(raw, list):
        raise SimConfigError("sim.accounts", "must be a list")
    seeds: list[AccountSeed] = []
    for i, item in enumerate(raw):
        key = f"sim.accounts[{i}]"
        if not isinstance(item, dict):
            raise SimConfigError(key, "must be a mapping")
        for name in item:
            if name not in _ACCOUNT_KEYS:
                raise SimConfigError(f"{key}.{name}", f"unknown key (allowed: {', '.join(_ACCOUNT_KEYS)})")
        if "account_index" not in item:
            raise SimConfigError(f"{key}.account_index", "missing")
        index = _int(f"{key}.account_index", item["account_index"], minimum=3)
        tier = item.get("tier", "premium")
        if tier not in TIERS:
            raise SimConfigError(f"{key}.tier", f"must be one of {TIERS}, got {tier!r}")
        collateral = _decimal(f"{key}.collateral", item.get("collateral", "100000"))
        seeds.append(AccountSeed(index, tier, collateral))
    indexes = [s.account_index for s in seeds]
    if len(set(indexes)) != len(indexes):
        raise SimConfigError("sim.accounts.account_index", f"duplicate values in {indexes}")
    return seeds


def _fees(raw: Any) -> dict[str, tuple[Decimal, Decimal]]:
    section = _mapping("sim.fees", raw, DEFAULTS["fees"])
    fees: dict[str, tuple[Decimal, Decimal]] = {}
    for tier in TIERS:
        tier_fees = _mapping(f"sim.fees.{tier}", section[tier], DEFAULTS["fees"][tier])
        maker = _decimal(f"sim.fees.{tier}.maker", tier_fees["maker"])
        taker = _decimal(f"sim.fees.{tier}.taker", tier_fees["taker"])
        for name, fee in (("maker", maker), ("taker", taker)):
            if fee >= 1:
                raise SimConfigError(
                    f"sim.fees.{tier}.{name}", f"is a fraction of notional, must be < 1, got {fee}"
                )
        fees[tier] = (maker, taker)
    return fees


def _speed_bumps(raw: Any) -> tuple[bool, dict[str, SpeedBump]]:
    section = _mapping("sim.speed_bumps", raw, DEFAULTS["speed_bumps"])
    bumps: dict[str, SpeedBump] = {}
    for tier in TIERS:
        key = f"sim.speed_bumps.{tier}"
        tier_cfg = _mapping(key, section[tier], DEFAULTS["speed_bumps"][tier])
        bumps[tier] = SpeedBump(
            *(
                _int(f"{key}.{name}", tier_cfg[name], minimum=0, maximum=60_000)
                for name in ("maker_ms", "cancel_ms", "taker_ms")
            )
        )
    return _bool("sim.speed_bumps.enabled", section["enabled"]), bumps


def _flow(raw: Any) -> dict[str, Any]:
    section = _mapping("sim.flow", raw, DEFAULTS["flow"])
    checks: dict[str, Callable[[str, Any], Any]] = {
        "enabled": _bool,
        "tick_interval_ms": lambda k, v: _int(k, v, minimum=1, maximum=60_000),
        "volatility_bps": lambda k, v: _number(k, v),
        "liquidity_levels": lambda k, v: _int(k, v, minimum=0, maximum=1000),
        "liquidity_spacing_ticks": lambda k, v: _int(k, v, minimum=1),
        "liquidity_size": lambda k, v: str(_decimal(k, v, positive=True)),
        "taker_rate_per_s": lambda k, v: _number(k, v),
        "taker_size_min_lots": lambda k, v: _int(k, v, minimum=1),
        "taker_size_max_lots": lambda k, v: _int(k, v, minimum=1),
    }
    flow = {name: check(f"sim.flow.{name}", section[name]) for name, check in checks.items()}
    if flow["taker_size_max_lots"] < flow["taker_size_min_lots"]:
        raise SimConfigError("sim.flow.taker_size_max_lots", "must be >= taker_size_min_lots")
    return flow


def parse_sim_section(raw: Any) -> SimConfig:
    """Validate a `sim:` mapping (as loaded from YAML) into a SimConfig."""
    if raw is None:
        raw = {}
    section = _mapping("sim", raw, DEFAULTS)
    bumps_on, bumps = _speed_bumps(section["speed_bumps"])
    limits = _mapping("sim.rate_limits", section["rate_limits"], DEFAULTS["rate_limits"])
    websocket = _mapping("sim.websocket", section["websocket"], DEFAULTS["websocket"])
    flow = _flow(section["flow"])
    _bool("sim.enabled", section["enabled"])
    return SimConfig(
        host=_str("sim.host", section["host"]),
        port=_int("sim.port", section["port"], minimum=0, maximum=65535),
        seed=_int("sim.seed", section["seed"]),
        state_dir=Path(_str("sim.state_dir", section["state_dir"])),
        markets=_markets(section["markets"]),
        accounts=_accounts(section["accounts"]),
        fees=_fees(section["fees"]),
        speed_bumps_enabled=bumps_on,
        speed_bumps=bumps,
        rate_limits_enabled=_bool("sim.rate_limits.enabled", limits["enabled"]),
        standard_per_minute=_int(
            "sim.rate_limits.standard_per_minute", limits["standard_per_minute"], minimum=1
        ),
        premium_weight_per_minute=_int(
            "sim.rate_limits.premium_weight_per_minute", limits["premium_weight_per_minute"], minimum=1
        ),
        ping_interval_s=_number("sim.websocket.ping_interval_s", websocket["ping_interval_s"], positive=True),
        pong_timeout_s=_number("sim.websocket.pong_timeout_s", websocket["pong_timeout_s"], positive=True),
        flow_enabled=flow["enabled"],
        flow=flow,
        tick_interval_ms=flow["tick_interval_ms"],
    )


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

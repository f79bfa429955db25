"""Loading and validating `config.yaml`.

Every key of the bot's sections is checked at start-up. An unknown key, a missing required key, a value of the
wrong type or out of range raises `ConfigError`, whose message names each offending key by its dotted path
(`strategy.retry_times: expected an integer >= 1, got 'x'`); entry points turn it into exit code 2 with
`exit_on_config_error`. All problems of a file are reported together, one per line.

Identity keys (`pair`, the exchange URLs, `accounts`, `secrets_file`, `redis.url`, `strategy.market`,
`strategy.quantity`) are required; a tuning knob may be omitted and then takes its value from `DEFAULTS`,
which mirrors the shipped `config.yaml`. The `sim:` section belongs to the simulator, whose own loader
(`lighter_sim.config`) validates it; here it is only required to be a mapping.

Relative paths (`secrets_file`, `journal.dir`, `logging.dir`) are kept as written, so they are relative to the
working directory, as for the simulator; the start scripts run from the repository root.

Secrets never live in the YAML: `hedge_strategy.secrets.load_secret` (re-exported here) reads
`LIGHTER_API_SECRET_A` / `_B` or the 0600 secrets file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

# ROLES, ConfigError and the secret readers are re-exported: callers have always imported them from here.
from hedge_strategy.config_error import ROLES as ROLES
from hedge_strategy.config_error import ConfigError as ConfigError
from hedge_strategy.config_error import check_role, describe_yaml_error
from hedge_strategy.config_error import exit_on_config_error as exit_on_config_error
from hedge_strategy.secrets import KEYGEN_COMMAND as KEYGEN_COMMAND
from hedge_strategy.secrets import load_secret as load_secret
from hedge_strategy.secrets import secret_env_var as secret_env_var

TIERS = ("standard", "premium")
IMBALANCE_ACTIONS = ("hedge", "pause")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")

# A pair name ends up inside every Redis key (`hedge:{pair}:...`): no separators, no spaces.
_PAIR_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# loguru's rotation: a size, an interval, a frequency or a time of day; its retention: a duration.
_DURATION = r"\d+(\.\d+)?\s*(y|years?|months?|w|weeks?|d|days?|h|hours?|min(ute)?s?|s|sec(ond)?s?)"
_ROTATION_RE = re.compile(
    rf"^\s*(\d+(\.\d+)?\s*[kmgt]?i?b|{_DURATION}|hourly|daily|weekly|monthly|yearly|\d{{1,2}}:\d{{2}})\s*$",
    re.I,
)
_RETENTION_RE = re.compile(rf"^\s*{_DURATION}\s*$", re.I)

_REQUIRED = object()  # marks a key of DEFAULTS that has no default

# Mirrors config.yaml. `_REQUIRED` keys must be present; the others default to the value shown.
DEFAULTS: dict[str, Any] = {
    "pair": _REQUIRED,
    "exchange": {
        "url": _REQUIRED, "ws_url": _REQUIRED, "chain_id": 304, "tier": "premium", "request_timeout_s": 10,
        "unknown_order_grace_s": 10, "reconcile_interval_s": 30, "ws_heartbeat_timeout_s": 20,
        "ws_backoff_min_s": 0.25, "ws_backoff_max_s": 30, "auth_token_ttl_s": 600,
    },
    "accounts": _REQUIRED,
    "secrets_file": _REQUIRED,
    "redis": {"url": _REQUIRED, "start_local": True},
    "strategy": {
        "market": _REQUIRED, "quantity": _REQUIRED, "depth": 1, "maker_order_timeout_s": 30,
        "max_price_drift_ticks": 300, "hedge_confirm_timeout_s": 60, "progress_log_interval_s": 10,
        "flat_tolerance": "0.00001", "on_imbalance": "hedge", "retry_times": 5, "max_slippage_bps": 50,
        "heartbeat_ttl_s": 5, "shutdown_wait_s": 15,
    },
    "journal": {"dir": "var"},
    "logging": {"dir": "logs", "level": "INFO", "rotation": "20 MB", "retention": 10},
    "metrics": {"enabled": True, "host": "127.0.0.1", "port_a": 9101, "port_b": 9102},
    "alerts": {
        "webhook_url": None, "telegram": False, "telegram_api_url": "https://api.telegram.org",
        "dedup_window_s": 300, "max_per_minute": 10, "timeout_s": 5, "exposure_grace_s": 30,
        "exposure_check_interval_s": 10,
    },
    "sim": {},
}


@dataclass(frozen=True)
class ExchangeConfig:
    url: str
    ws_url: str
    chain_id: int
    tier: str  # "standard" | "premium"
    request_timeout_s: float
    unknown_order_grace_s: float
    reconcile_interval_s: float
    ws_heartbeat_timeout_s: float
    ws_backoff_min_s: float
    ws_backoff_max_s: float
    auth_token_ttl_s: int


@dataclass(frozen=True)
class AccountRef:
    account_index: int
    api_key_index: int

    @property
    def key_id(self) -> str:
        """The key of this account's secret in the secrets file: `"<account_index>:<api_key_index>"`."""
        return f"{self.account_index}:{self.api_key_index}"


@dataclass(frozen=True)
class RedisConfig:
    url: str
    start_local: bool


@dataclass(frozen=True)
class StrategyConfig:
    market: str
    quantity: Decimal
    depth: int
    maker_order_timeout_s: float
    max_price_drift_ticks: int
    hedge_confirm_timeout_s: float
    progress_log_interval_s: float
    flat_tolerance: Decimal
    on_imbalance: str  # "hedge" | "pause"
    retry_times: int
    max_slippage_bps: Decimal
    heartbeat_ttl_s: float
    shutdown_wait_s: float


@dataclass(frozen=True)
class JournalConfig:
    dir: Path

    def path_for(self, account_index: int) -> Path:
        """The SQLite journal of one account: `<dir>/journal_<account_index>.sqlite`."""
        return self.dir / f"journal_{account_index}.sqlite"


@dataclass(frozen=True)
class LoggingConfig:
    dir: Path
    level: str
    rotation: str | int  # loguru rotation: "20 MB", "1 day", "00:00", or a size in bytes
    retention: str | int  # loguru retention: a number of files, or a duration such as "10 days"


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port_a: int = 9101  # 0 = no endpoint for A
    port_b: int = 9102  # 0 = no endpoint for B

    def port_for(self, role: str) -> int:
        """The port of `role`'s endpoint ("a" or "b"); 0 when metrics are off for it."""
        return (self.port_a if check_role(role) == "a" else self.port_b) if self.enabled else 0


@dataclass(frozen=True)
class AlertsConfig:
    webhook_url: str | None = None  # ALERTS_WEBHOOK_URL in the environment overrides (see observe.alerts)
    telegram: bool = False  # token and chat id come from the environment, never from here
    telegram_api_url: str = "https://api.telegram.org"
    dedup_window_s: float = 300.0
    max_per_minute: int = 10
    timeout_s: float = 5.0
    exposure_grace_s: float = 30.0
    exposure_check_interval_s: float = 10.0


@dataclass(frozen=True)
class Config:
    pair: str
    exchange: ExchangeConfig
    accounts: dict[str, AccountRef]  # keys "a" (maker) and "b" (hedger)
    secrets_file: Path
    redis: RedisConfig
    strategy: StrategyConfig
    journal: JournalConfig
    logging: LoggingConfig
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    sim: Mapping[str, Any] = field(default_factory=dict, repr=False)  # validated by lighter_sim.config
    source: Path | None = None  # the file this came from


def load_config(path: Path) -> Config:
    """Read and validate `path`. Raises `ConfigError` listing every problem, each naming its dotted key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({describe_yaml_error(exc)})") from None
    return config_from_mapping(data, source=Path(path))


def config_from_mapping(data: Any, source: Path | None = None) -> Config:
    """Validate an already parsed config (what `yaml.safe_load` returns). Raises `ConfigError`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source or 'config'}: expected a mapping of sections, got {data!r}")
    problems: list[str] = []
    top = _Section.of(problems, data, "", DEFAULTS)
    config = Config(
        pair=top.text("pair", pattern=_PAIR_RE, hint="a name of letters, digits, '_', '.', '-' (1 to 64)"),
        exchange=_exchange(top.child("exchange")),
        accounts=_accounts(top.child("accounts", {role: _REQUIRED for role in ROLES})),
        secrets_file=top.path("secrets_file"),
        redis=_redis(top.child("redis")),
        strategy=_strategy(top.child("strategy")),
        journal=JournalConfig(dir=top.child("journal").path("dir")),
        logging=_logging(top.child("logging")),
        metrics=_metrics(top.child("metrics")),
        alerts=_alerts(top.child("alerts")),
        sim=top.mapping("sim"),
        source=source,
    )
    if problems:
        raise ConfigError(problems)
    return config


def apply_overrides(
    config: Config,
    market: str | None = None,
    quantity: Decimal | str | None = None,
    depth: int | None = None,
) -> Config:
    """`config` with the command-line overrides of main_A/main_B applied; `None` keeps the configured value.

    The overrides are validated like the file: a bad one raises `ConfigError` naming `strategy.<key>`.
    """
    problems: list[str] = []
    given = _Section(problems, "strategy", {"market": market, "quantity": quantity, "depth": depth})
    values: dict[str, Any] = {}
    if market is not None:
        values["market"] = given.text("market")
    if quantity is not None:
        values["quantity"] = given.decimal("quantity", positive=True)
    if depth is not None:
        values["depth"] = given.integer("depth", minimum=1)
    if problems:
        raise ConfigError(problems)
    return replace(config, strategy=replace(config.strategy, **values))


def _exchange(s: _Section) -> ExchangeConfig:
    cfg = ExchangeConfig(
        url=s.url("url", schemes=("http", "https")),
        ws_url=s.url("ws_url", schemes=("ws", "wss")),
        chain_id=s.integer("chain_id", minimum=1),
        tier=s.choice("tier", TIERS),
        request_timeout_s=s.number("request_timeout_s", positive=True),
        unknown_order_grace_s=s.number("unknown_order_grace_s", minimum=0),
        reconcile_interval_s=s.number("reconcile_interval_s", positive=True),
        ws_heartbeat_timeout_s=s.number("ws_heartbeat_timeout_s", positive=True),
        ws_backoff_min_s=s.number("ws_backoff_min_s", positive=True),
        ws_backoff_max_s=s.number("ws_backoff_max_s", positive=True),
        # The adapter refreshes tokens before expiry; under a minute it would do little else.
        auth_token_ttl_s=s.integer("auth_token_ttl_s", minimum=60),
    )
    if s.valid("ws_backoff_min_s", "ws_backoff_max_s") and cfg.ws_backoff_max_s < cfg.ws_backoff_min_s:
        s.problem("ws_backoff_max_s", f"must be >= exchange.ws_backoff_min_s ({cfg.ws_backoff_min_s:g}), "
                                      f"got {cfg.ws_backoff_max_s:g}")
    return cfg


def _accounts(s: _Section) -> dict[str, AccountRef]:
    accounts: dict[str, AccountRef] = {}
    for role in ROLES:
        account = s.child(role, {"account_index": _REQUIRED, "api_key_index": _REQUIRED})
        # Lighter API key indexes are 0..254; 255 means "the account's default key" and is not a real key.
        accounts[role] = AccountRef(
            account_index=account.integer("account_index", minimum=0),
            api_key_index=account.integer("api_key_index", minimum=0, maximum=254),
        )
    a, b = accounts["a"].account_index, accounts["b"].account_index
    if isinstance(a, int) and a == b:
        s.problem("b.account_index", f"must differ from accounts.a.account_index (both are {a})")
    return accounts


def _redis(s: _Section) -> RedisConfig:
    return RedisConfig(url=s.url("url", schemes=("redis", "rediss", "unix")),
                       start_local=s.boolean("start_local"))


def _strategy(s: _Section) -> StrategyConfig:
    return StrategyConfig(
        market=s.text("market"),
        quantity=s.decimal("quantity", positive=True),
        depth=s.integer("depth", minimum=1),
        maker_order_timeout_s=s.number("maker_order_timeout_s", positive=True),
        max_price_drift_ticks=s.integer("max_price_drift_ticks", minimum=1),
        hedge_confirm_timeout_s=s.number("hedge_confirm_timeout_s", positive=True),
        progress_log_interval_s=s.number("progress_log_interval_s", positive=True),
        flat_tolerance=s.decimal("flat_tolerance", positive=False),
        on_imbalance=s.choice("on_imbalance", IMBALANCE_ACTIONS),
        retry_times=s.integer("retry_times", minimum=1),
        max_slippage_bps=s.decimal("max_slippage_bps", positive=True),
        heartbeat_ttl_s=s.number("heartbeat_ttl_s", positive=True),
        shutdown_wait_s=s.number("shutdown_wait_s", minimum=0),
    )


def _logging(s: _Section) -> LoggingConfig:
    return LoggingConfig(
        dir=s.path("dir"),
        level=s.choice("level", LOG_LEVELS, normalize=str.upper),
        rotation=s.count_or_pattern("rotation", _ROTATION_RE,
                                    "a size ('20 MB'), an interval ('1 day'), a time ('00:00') or bytes"),
        retention=s.count_or_pattern("retention", _RETENTION_RE,
                                     "a number of files >= 1 or a duration ('10 days')"),
    )


def _metrics(s: _Section) -> MetricsConfig:
    cfg = MetricsConfig(
        enabled=s.boolean("enabled"),
        host=s.text("host"),
        port_a=s.integer("port_a", minimum=0, maximum=65535),
        port_b=s.integer("port_b", minimum=0, maximum=65535),
    )
    # A and B usually run on one host: the same port would make the second process fail to serve.
    if s.valid("port_a", "port_b") and cfg.port_a and cfg.port_a == cfg.port_b:
        s.problem("port_b", f"must differ from metrics.port_a (both are {cfg.port_a})")
    return cfg


def _alerts(s: _Section) -> AlertsConfig:
    webhook = s.values.get("webhook_url")
    return AlertsConfig(
        webhook_url=None if webhook in (None, "") else s.url("webhook_url", schemes=("http", "https")),
        telegram=s.boolean("telegram"),
        telegram_api_url=s.url("telegram_api_url", schemes=("http", "https")),
        dedup_window_s=s.number("dedup_window_s", minimum=0),
        max_per_minute=s.integer("max_per_minute", minimum=1),
        timeout_s=s.number("timeout_s", positive=True),
        exposure_grace_s=s.number("exposure_grace_s", minimum=0),
        exposure_check_interval_s=s.number("exposure_check_interval_s", positive=True),
    )


# ----------------------------------------------------------------------------------------------------
# Validation helpers. Each accessor returns the value when it is valid; otherwise it records a problem and
# returns the raw value: the Config built from such values is discarded because the problem list is not empty.

_MISSING: Any = object()  # a required key that is absent (already reported by _Section.of)


class _Section:
    def __init__(self, problems: list[str], prefix: str, values: Mapping[str, Any]) -> None:
        self._problems = problems
        self.prefix = prefix
        self.values = values

    @classmethod
    def of(cls, problems: list[str], raw: Any, prefix: str, spec: Mapping[str, Any]) -> _Section:
        """`raw` checked against `spec`: unknown or missing required keys are problems; defaults fill in."""
        section = cls(problems, prefix, {})
        if raw is None:  # an absent or empty section: only fine when it has no required keys
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append(f"{prefix}: expected a mapping, got {raw!r}")
            section.values = dict.fromkeys(spec, _MISSING)
            return section
        for key in raw:
            if key not in spec:
                section.problem(str(key), "unknown key")
        merged: dict[str, Any] = {}
        for key, default in spec.items():
            if key in raw:
                merged[key] = raw[key]
            elif default is _REQUIRED:
                section.problem(key, "missing required key")
                merged[key] = _MISSING
            else:
                merged[key] = None if isinstance(default, Mapping) else default
        section.values = merged
        return section

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def problem(self, key: str, what: str) -> None:
        self._problems.append(f"{self.name(key)}: {what}")

    def valid(self, *keys: str) -> bool:
        """True when none of `keys` has a recorded problem, so that comparing their values is meaningful."""
        names = {self.name(k) for k in keys}
        return not any(p.split(": ", 1)[0] in names for p in self._problems)

    def child(self, key: str, spec: Mapping[str, Any] | None = None) -> _Section:
        spec = spec if spec is not None else DEFAULTS[key]
        raw = self.values.get(key)
        if raw is _MISSING:  # already reported: do not report each of its keys as well
            return _Section(self._problems, self.name(key), dict.fromkeys(spec, _MISSING))
        return _Section.of(self._problems, raw, self.name(key), spec)

    def _bad(self, key: str, expected: str) -> Any:
        value = self.values.get(key, _MISSING)
        if value is not _MISSING:
            self.problem(key, f"expected {expected}, got {value!r}")
        return value

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.values.get(key, _MISSING)
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not (ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)):
            return self._bad(key, "an integer" + _bounds(minimum, maximum))
        return value

    def number(self, key: str, *, positive: bool = False, minimum: float | None = None) -> float:
        value = self.values.get(key, _MISSING)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and (not positive or value > 0) and (minimum is None or value >= minimum)):
            return self._bad(key, "a number" + (" > 0" if positive else _bounds(minimum, None)))
        return float(value)

    def decimal(self, key: str, *, positive: bool) -> Decimal:
        value = self.values.get(key, _MISSING)
        expected = 'a decimal number such as "0.0002"' + (" > 0" if positive else " >= 0")
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            return self._bad(key, expected)
        try:
            # Floats go through str() so that 0.1 becomes Decimal("0.1"), not its binary expansion.
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return self._bad(key, expected)
        if not number.is_finite() or number < 0 or (positive and number == 0):
            return self._bad(key, expected)
        return number

    def text(self, key: str, *, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        value = self.values.get(key, _MISSING)
        if not isinstance(value, str) or not value.strip():
            return self._bad(key, "a non-empty string")
        if pattern is not None and not pattern.match(value):
            return self._bad(key, hint)
        return value

    def choice(self, key: str, choices: tuple[str, ...], normalize: Callable[[str], str] = str) -> str:
        value = self.values.get(key, _MISSING)
        if not isinstance(value, str) or normalize(value) not in choices:
            return self._bad(key, f"one of {', '.join(choices)}")
        return normalize(value)

    def boolean(self, key: str) -> bool:
        value = self.values.get(key, _MISSING)
        if not isinstance(value, bool):
            return self._bad(key, "true or false")
        return value

    def path(self, key: str) -> Path:
        value = self.text(key)
        return Path(value) if isinstance(value, str) and value.strip() else value

    def url(self, key: str, schemes: tuple[str, ...]) -> str:
        value = self.values.get(key, _MISSING)
        scheme, sep, rest = value.partition("://") if isinstance(value, str) else ("", "", "")
        if not sep or scheme.lower() not in schemes or not rest.strip():
            return self._bad(key, "a URL starting with " + " or ".join(f"{s}://" for s in schemes))
        return value

    def count_or_pattern(self, key: str, pattern: re.Pattern[str], expected: str) -> str | int:
        value = self.values.get(key, _MISSING)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, str) and pattern.match(value):
            return value.strip()
        return self._bad(key, expected)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.values.get(key)
        if value is None or value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            return self._bad(key, "a mapping")
        return dict(value)


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" between {minimum} and {maximum}"
    return f" >= {minimum}" if minimum is not None else ""

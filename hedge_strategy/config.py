"""Loading and validating `config.yaml`.

Each setting is declared once, as one line of its section below: its name, its type (which carries the
constraints and the words a refusal uses), its default, and a comment; a setting without a default is
required. A section left out or left empty takes every default. An unknown key, a missing required key, a
value of the wrong type or out of range raises `ConfigError`, whose message names each offending key by its
dotted path (`strategy.retry_times: expected an integer >= 1, got 'x'`); entry points turn it into exit code
2 with `exit_on_config_error`. All problems of a file are reported together, one per line. Types are strict:
"5" is not an integer, "yes" is not a boolean; sizes and money are `Decimal`.

The defaults mirror the shipped `config.yaml`. The `sim:` section belongs to the simulator, whose own loader
(`lighter_sim.config`) validates it; here it is only required to be a mapping.

Relative paths (`secrets_file`, `journal.dir`, `logging.dir`) are kept as written, so they are relative to the
working directory, as for the simulator; the start scripts run from the repository root.

Secrets never live in the YAML: `hedge_strategy.secrets.load_secret` (re-exported here) reads
`LIGHTER_API_SECRET_A` / `_B` or the 0600 secrets file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)

# ROLES, ConfigError and the secret readers are re-exported: callers have always imported them from here.
from hedge_strategy.config_error import ROLES as ROLES
from hedge_strategy.config_error import ConfigError as ConfigError
from hedge_strategy.config_error import check_role, describe_yaml_error
from hedge_strategy.config_error import exit_on_config_error as exit_on_config_error
from hedge_strategy.secrets import KEYGEN_COMMAND as KEYGEN_COMMAND
from hedge_strategy.secrets import load_secret as load_secret
from hedge_strategy.secrets import secret_env_var as secret_env_var
from hedge_strategy.validation import Problem, Text, broken_rule, choice, expecting, problems, record

T = TypeVar("T")

TIERS = ("standard", "premium")
IMBALANCE_ACTIONS = ("hedge", "pause")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
# The longest auth token the venue takes: an 8 h one was accepted and a 9 h one refused at use with HTTP 401
# 20013 "invalid deadline" (tests/wire/rest/accountLimits/hftbacktest_testnet-2026-07-30.jsonl; research
# fact 17 puts the ceiling at 8 h).
AUTH_TOKEN_MAX_TTL_S = 8 * 3600

# A pair name ends up inside every Redis key (`hedge:{pair}:...`): no separators, no spaces.
_PAIR_RE = r"^[A-Za-z0-9_.-]{1,64}$"
# loguru's rotation: a size, an interval, a frequency or a time of day; its retention: a duration.
_DURATION = r"\d+(\.\d+)?\s*(y|years?|months?|w|weeks?|d|days?|h|hours?|min(ute)?s?|s|sec(ond)?s?)"
_ROTATION_RE = re.compile(
    rf"^\s*(\d+(\.\d+)?\s*[kmgt]?i?b|{_DURATION}|hourly|daily|weekly|monthly|yearly|\d{{1,2}}:\d{{2}})\s*$",
    re.I,
)
_RETENTION_RE = re.compile(rf"^\s*{_DURATION}\s*$", re.I)


# ----------------------------------------------------------------------------------------------------
# Field types: each accepts only what it names, and a refusal says so in these words. A new setting uses one
# of the aliases below or one of these helpers with its bounds.


def integer(ge: int | None = None, le: int | None = None) -> Any:
    """An int (never a bool, never "5") within the bounds."""
    bounds = f" between {ge} and {le}" if le is not None else f" >= {ge}" if ge is not None else ""
    return Annotated[int, Strict(), Field(ge=ge, le=le), expecting(f"an integer{bounds}")]


def number(gt: float | None = None, ge: float | None = None) -> Any:
    """A finite int or float (never a bool, never "5"), kept as a float."""
    bound = f" > {gt:g}" if gt is not None else f" >= {ge:g}" if ge is not None else ""
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
                     expecting(f'a decimal number such as "0.0002"{bound}')]


def _path(value: Any) -> Any:
    """A non-blank string as a Path, kept as written (relative to the working directory)."""
    return Path(value) if isinstance(value, str) and value.strip() else value


def url(*schemes: str) -> Any:
    """A string `<scheme>://<something>` with one of `schemes`."""

    def check(value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in schemes or not rest.strip():
            raise ValueError("not a URL of an accepted scheme")
        return value

    return Annotated[str, Strict(), AfterValidator(check),
                     expecting("a URL starting with " + " or ".join(f"{s}://" for s in schemes))]


def _count_or(pattern: re.Pattern[str], description: str) -> Any:
    """loguru's rotation or retention: a count >= 1, or a string `pattern` matches (kept stripped)."""

    def check(value: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, str) and pattern.match(value):
            return value.strip()
        raise ValueError("neither a count nor a recognised string")

    return Annotated[int | str, PlainValidator(check), expecting(description)]


Flag = Annotated[bool, Strict(), expecting("true or false")]
LocalPath = Annotated[Path, Strict(), BeforeValidator(_path), expecting("a non-empty string")]
Seconds = number(gt=0)
SecondsOrZero = number(ge=0)
Port = integer(ge=0, le=65535)
WebUrl = url("http", "https")
LogLevel = Annotated[choice(*LOG_LEVELS), BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]
Rotation = _count_or(_ROTATION_RE, "a size ('20 MB'), an interval ('1 day'), a time ('00:00') or bytes")
Retention = _count_or(_RETENTION_RE, "a number of files >= 1 or a duration ('10 days')")
# A section left empty (`alerts:` reads as None) is an empty mapping.
Section = Annotated[T, BeforeValidator(lambda v: {} if v is None else v)]


def defaults() -> Any:
    """The default of a section left out: an empty mapping, so each key takes its default (or is missing)."""
    return Field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------
# The sections: one line per setting. See config.yaml for what each one does.


@record
class ExchangeConfig:
    url: WebUrl  # REST base URL
    ws_url: url("ws", "wss")  # WebSocket URL
    chain_id: integer(ge=1) = 304  # 304 mainnet, 300 testnet
    tier: choice(*TIERS) = "premium"  # sets the client-side rate limit
    shared_budget: Flag = False  # A and B take from one rate-limit budget, kept in Redis
    hedge_reserve: integer(ge=0, le=8) = 2  # shared budget: its last N sendTx are B's hedges' only
    request_timeout_s: Seconds = 10
    send_timeout_s: Seconds = 2  # a sendTx unanswered this long is ambiguous: looked up by client order index
    unknown_order_grace_s: SecondsOrZero = 10
    order_lookup_after_s: Seconds = 1  # an IOC not final on the stream (A: a send without verdict): looked up
    reconcile_interval_s: Seconds | None = None  # None: from the tier's budget (exchange/throttle.py)
    resting_check_interval_s: Seconds | None = None  # A's REST look at its order in a silence; None: tier
    ws_heartbeat_timeout_s: Seconds = 20
    ws_backoff_min_s: Seconds = 0.25
    ws_backoff_max_s: Seconds = 30
    # Refreshed before expiry: under a minute it would do little else; over 8 h the venue refuses the token.
    auth_token_ttl_s: integer(ge=60, le=AUTH_TOKEN_MAX_TTL_S) = 600
    send_over_websocket: Flag = True  # transactions over the account's WebSocket while it is up, else HTTP
    # A resting order's own expiry (its dead-man's switch): Lighter takes 5 min to 30 days ahead; the 30 s
    # above the minimum allow for a local clock behind the venue's.
    resting_order_expiry_s: integer(ge=330, le=2_419_200) = 360

    @model_validator(mode="after")
    def _backoff_grows(self) -> ExchangeConfig:
        if self.ws_backoff_max_s < self.ws_backoff_min_s:
            raise broken_rule(f"must be >= exchange.ws_backoff_min_s ({self.ws_backoff_min_s:g}), "
                              f"got {self.ws_backoff_max_s:g}", key="ws_backoff_max_s")
        return self


@record
class AccountRef:
    account_index: integer(ge=0)
    api_key_index: integer(ge=0, le=254)  # 255 means "the account's default key", not a real key

    @property
    def key_id(self) -> str:
        """The key of this account's secret in the secrets file: `"<account_index>:<api_key_index>"`."""
        return f"{self.account_index}:{self.api_key_index}"


@record
class Accounts:
    a: Section[AccountRef]  # maker
    b: Section[AccountRef]  # hedger

    def __getitem__(self, role: str) -> AccountRef:
        return self.a if check_role(role) == "a" else self.b

    @model_validator(mode="after")
    def _distinct(self) -> Accounts:
        if self.a.account_index == self.b.account_index:
            raise broken_rule(f"must differ from accounts.a.account_index (both are {self.a.account_index})",
                              key="b.account_index")
        return self


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host.strip() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("not host:port")
    return value


HostPort = Annotated[str, Strict(), AfterValidator(_host_port), expecting('"host:port" (port 1 to 65535)')]


@record
class RedisConfig:
    url: url("redis", "rediss", "unix")  # with sentinels: only its password and database number are used
    start_local: Flag = True  # start_hedge.sh starts redis-server when the URL is local and nothing answers
    sentinels: Annotated[tuple[HostPort, ...], expecting('a list of "host:port"')] = ()  # Sentinel: HA Redis
    service_name: Text = "mymaster"  # the master's name in the sentinels' configuration
    socket_timeout_s: number(gt=1) = 3  # each reply; above 1 s, B's blocking read of requests
    connect_timeout_s: Seconds = 2
    health_check_interval_s: SecondsOrZero = 5  # a connection idle this long is PINGed before use; 0 = never
    retries: integer(ge=0) = 2  # a command that timed out or lost its connection is sent again this often
    retry_backoff_base_s: Seconds = 0.05  # first retry waits up to this; doubling, with jitter
    retry_backoff_cap_s: Seconds = 1

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """The sentinels as (host, port); empty when Redis is reached directly at `url`."""
        split = (address.rpartition(":") for address in self.sentinels)
        return [(host.strip("[]"), int(port)) for host, _, port in split]


@record
class StrategyConfig:
    market: Text  # --market overrides
    quantity: decimal(gt=0)  # --quantity overrides
    depth: integer(ge=1) = 1  # --depth overrides
    maker_order_timeout_s: Seconds = 30
    # A's resting order is modified in place to the price A would place now (`maker_reprice`) when it is
    # behind that price by more than max_price_drift_ticks, or through the book (that price the other way)
    # by more than max_through_ticks. 100 behind: bench/maker_model.py and bench/tiers.py (bench/README.md).
    max_price_drift_ticks: integer(ge=1) = 100
    max_through_ticks: integer(ge=1) = 120
    hedge_confirm_timeout_s: Seconds = 60
    progress_log_interval_s: Seconds = 10
    flat_tolerance: decimal(ge=0) = Decimal("0.00001")
    on_imbalance: choice(*IMBALANCE_ACTIONS) = "hedge"
    retry_times: integer(ge=1) = 5
    transport_budget_s: SecondsOrZero = 30  # a chase's time for transport trouble (429, 5xx, no answer)
    max_slippage_bps: decimal(gt=0) = Decimal(50)
    heartbeat_ttl_s: Seconds = 5  # also: how long a silent Redis leaves A's order resting (maker_b_watch)
    b_position_max_age_s: Seconds = 5  # B's published position older than this: A reads B over REST
    shutdown_wait_s: SecondsOrZero = 15
    # B hedges a fill of A's that it saw on the exchange's public trade feed when A's request for it has not
    # come this long after and B's Redis is silent (`hedger_feed`, docs/design.md); None: B never does.
    hedge_from_trade_feed_after_s: Seconds | None = 2
    # B hedges a fill of A's the moment the trade feed shows it, while Redis answers B, under the request id A
    # would send (`hedger_feed`, docs/design.md "B hedges from the trade feed"); A's request is then answered
    # from B's outcome. False: B waits for A's request (and the feed only serves while Redis is silent).
    hedge_from_trade_feed_first: Flag = True

    @property
    def follows_trade_feed(self) -> bool:
        """B subscribes to the exchange's public trade feed: feed first, or while Redis is silent."""
        return self.hedge_from_trade_feed_first or self.hedge_from_trade_feed_after_s is not None

    @model_validator(mode="after")
    def _feed_before_confirm_timeout(self) -> StrategyConfig:
        # A gives a request up after hedge_confirm_timeout_s (then hedges the residual itself): B hedges a
        # fill from the feed only while it is younger than half of that (`hedger_feed.FeedFills`), so its
        # wait must end well before.
        after_s = self.hedge_from_trade_feed_after_s
        if after_s is not None and after_s >= self.hedge_confirm_timeout_s / 2:
            raise broken_rule(f"must be below half of strategy.hedge_confirm_timeout_s "
                              f"({self.hedge_confirm_timeout_s:g})", key="hedge_from_trade_feed_after_s")
        return self


@record
class JournalConfig:
    dir: LocalPath = Path("var")

    def path_for(self, account_index: int) -> Path:
        """The SQLite journal of one account: `<dir>/journal_<account_index>.sqlite`."""
        return self.dir / f"journal_{account_index}.sqlite"


@record
class LoggingConfig:
    dir: LocalPath = Path("logs")
    level: LogLevel = "INFO"
    rotation: Rotation = "20 MB"
    retention: Retention = 10


@record
class MetricsConfig:
    enabled: Flag = True
    host: Text = "127.0.0.1"  # bind address
    port_a: Port = 9101  # 0 = no endpoint for A
    port_b: Port = 9102  # 0 = no endpoint for B

    def port_for(self, role: str) -> int:
        """The port of `role`'s endpoint ("a" or "b"); 0 when metrics are off for it."""
        return (self.port_a if check_role(role) == "a" else self.port_b) if self.enabled else 0

    @model_validator(mode="after")
    def _distinct_ports(self) -> MetricsConfig:
        # A and B usually run on one host: the same port would make the second process fail to serve.
        if self.port_a and self.port_a == self.port_b:
            raise broken_rule(f"must differ from metrics.port_a (both are {self.port_a})", key="port_b")
        return self


@record
class AlertsConfig:
    # ALERTS_WEBHOOK_URL in the environment overrides (see observe.alerts); "" is the same as null
    webhook_url: Annotated[WebUrl | None, BeforeValidator(lambda v: None if v == "" else v)] = None
    telegram: Flag = False  # token and chat id come from the environment, never from here
    telegram_api_url: WebUrl = "https://api.telegram.org"
    dedup_window_s: SecondsOrZero = 300
    max_per_minute: integer(ge=1) = 10
    timeout_s: Seconds = 5
    exposure_grace_s: SecondsOrZero = 30
    exposure_check_interval_s: Seconds | None = None  # None: from exchange.tier's budget (throttle.py)


@record
class Config:
    pair: Annotated[str, Strict(), Field(pattern=_PAIR_RE),
                    expecting("a name of letters, digits, '_', '.', '-' (1 to 64)")]
    accounts: Section[Accounts]  # .a (maker) and .b (hedger), also as accounts["a"]
    secrets_file: LocalPath
    exchange: Section[ExchangeConfig] = defaults()
    redis: Section[RedisConfig] = defaults()
    strategy: Section[StrategyConfig] = defaults()
    journal: Section[JournalConfig] = defaults()
    logging: Section[LoggingConfig] = defaults()
    metrics: Section[MetricsConfig] = defaults()
    alerts: Section[AlertsConfig] = defaults()
    sim: Section[dict[str, Any]] = Field(default_factory=dict, repr=False)  # validated by lighter_sim.config


_CONFIG = TypeAdapter(Config)


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
    return _checked(lambda: _CONFIG.validate_python(data))


def apply_overrides(
    config: Config,
    market: str | None = None,
    quantity: Decimal | str | None = None,
    depth: int | None = None,
) -> Config:
    """`config` with the command-line overrides of main_A/main_B applied; `None` keeps the configured value.

    The overrides are validated like the file: a bad one raises `ConfigError` naming `strategy.<key>`.
    """
    given = {"market": market, "quantity": quantity, "depth": depth}
    changes = {key: value for key, value in given.items() if value is not None}
    strategy = _checked(lambda: replace(config.strategy, **changes), prefix="strategy")
    return replace(config, strategy=strategy)


def _checked(build: Callable[[], T], prefix: str = "") -> T:
    """`build()`, its ValidationError turned into a ConfigError with one line per problem."""
    try:
        return build()
    except ValidationError as error:
        raise ConfigError([_phrase(problem, prefix) for problem in problems(error)]) from None


def _phrase(problem: Problem, prefix: str) -> str:
    key = ".".join(part for part in (prefix, problem.key) if part)
    if problem.kind == "expected":
        return f"{key}: expected {problem.text}, got {problem.given!r}"
    return f"{key}: " + {"unknown": "unknown key", "missing": "missing required key"}.get(problem.kind,
                                                                                        problem.text)

"""`hedgectl launch-env`: what `start_hedge.sh` needs from the config, as shell-safe `KEY=value` lines.

The script runs `eval "$(python -m hedge_strategy.ctl launch-env --config C)"`, so the YAML is parsed and
validated in one place (this module, through `hedge_strategy.config` and the simulator's own loader) and the
shell never parses YAML. A bad config exits 2 naming the key, before anything is started.

Paths are printed absolute, resolved against the working directory (the scripts run from the repository
root, where the config's relative paths are meant to be read).
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hedge_strategy.config import Config
from hedge_strategy.ops.common import (
    EXIT_CONFIG,
    EXIT_OK,
    add_config_argument,
    load_config_or_exit,
    run_dir,
    safe_url,
)
from hedge_strategy.sim.config import SimConfig, SimConfigError, parse_sim_section
from hedge_strategy.sim.keygen import KeygenError, read_public_keys, read_secrets

DEFAULT_REDIS_PORT = 6379
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class RedisTarget:
    """Where the configured Redis is, and whether start_hedge.sh may start it on this machine."""

    local: bool  # a plain TCP or unix-socket URL on this machine (TLS `rediss://` is never started by us)
    host: str  # the address to bind when we start it ("" for a unix socket)
    port: int  # 0 for a unix socket
    socket: str  # unix socket path, "" for TCP


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = commands.add_parser(
        "launch-env", help="print the config facts start_hedge.sh needs, as shell-safe KEY=value lines",
        description="Validate the config (exit 2 naming the key) and print KEY=value lines for `eval`.",
    )
    add_config_argument(env)
    env.set_defaults(handler=cmd_launch_env)


def cmd_launch_env(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    try:
        sim = parse_sim_section(config.sim)
    except SimConfigError as exc:
        print(f"configuration error:\n  {exc}", file=sys.stderr)
        return EXIT_CONFIG
    values = launch_values(config, sim, Path(args.config))
    if values["SIM_ENABLED"] == "1":
        warning = sim_url_mismatch(config, sim)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    for key, value in values.items():
        print(f"{key}={shlex.quote(value)}")
    return EXIT_OK


def launch_values(config: Config, sim: SimConfig, config_path: Path) -> dict[str, str]:
    """Every `KEY=value` of launch-env, as strings ("1"/"0" for booleans), in a stable order."""
    redis = redis_target(config.redis.url)
    sim_enabled = bool(config.sim.get("enabled", True))
    a, b = config.accounts["a"], config.accounts["b"]
    missing = missing_sim_keys(config, sim) if sim_enabled else []
    return {
        "HEDGE_CONFIG": str(config_path.resolve()),
        "HEDGE_PAIR": config.pair,
        "RUN_DIR": str(run_dir().resolve()),
        "LOG_DIR": str(Path(config.logging.dir).resolve()),
        "SECRETS_FILE": str(Path(config.secrets_file).resolve()),
        "REDIS_URL": safe_url(config.redis.url),
        "REDIS_LOCAL": _flag(redis.local),
        "REDIS_START_LOCAL": _flag(config.redis.start_local),
        "REDIS_HOST": redis.host,
        "REDIS_PORT": str(redis.port),
        "REDIS_SOCKET": redis.socket,
        "EXCHANGE_URL": config.exchange.url,
        "SIM_ENABLED": _flag(sim_enabled),
        "SIM_HOST": sim.host,
        "SIM_PORT": str(sim.port),
        "SIM_URL": f"http://{_url_host(sim.host)}:{sim.port}",
        "SIM_STATE_DIR": str(sim.state_dir.resolve()),
        # "<account>:<api_key_index>" pairs that keygen must create before the sim starts
        "SIM_KEYS_MISSING": " ".join(missing),
        "ACCOUNT_A": str(a.account_index),
        "ACCOUNT_B": str(b.account_index),
        "STRATEGY_MARKET": config.strategy.market,
        "STRATEGY_QUANTITY": str(config.strategy.quantity),
        "STRATEGY_DEPTH": str(config.strategy.depth),
        "HEARTBEAT_TTL_S": f"{config.strategy.heartbeat_ttl_s:g}",
    }


def redis_target(url: str) -> RedisTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        return RedisTarget(local=True, host="", port=0, socket=parts.path)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or DEFAULT_REDIS_PORT
    local = scheme == "redis" and is_local_host(host)
    bind = "127.0.0.1" if host.lower() in _LOCAL_NAMES else host
    return RedisTarget(local=local, host=bind, port=port, socket="")


def is_local_host(host: str) -> bool:
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def missing_sim_keys(config: Config, sim: SimConfig) -> list[str]:
    """`"<account>:<api_key_index>"` for each of A and B whose key pair keygen has not made yet."""
    try:
        secrets = read_secrets(Path(config.secrets_file))
    except KeygenError:
        secrets = {}  # unreadable: keygen will say why
    try:
        public = read_public_keys(sim.state_dir)
    except KeygenError:
        public = {}
    missing: list[str] = []
    for account in (config.accounts["a"], config.accounts["b"]):
        registered = account.api_key_index in public.get(account.account_index, {})
        if account.key_id not in secrets or not registered:
            missing.append(account.key_id)
    return missing


def sim_url_mismatch(config: Config, sim: SimConfig) -> str:
    """A warning when the simulator is enabled but `exchange.url` points somewhere else, else ""."""
    parts = urlsplit(config.exchange.url)
    host = parts.hostname or ""
    same_host = host == sim.host or (is_local_host(host) and is_local_host(sim.host))
    if same_host and parts.port == sim.port:
        return ""
    return (
        f"sim.enabled is true but exchange.url ({config.exchange.url}) is not the simulator "
        f"(http://{_url_host(sim.host)}:{sim.port}); A and B will not trade on it"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _flag(value: Any) -> str:
    return "1" if value else "0"

"""`hedgectl launch-env`: what `start_hedge.sh` needs from the config, as shell-safe `KEY=value` lines.

The script runs `eval "$(python -m hedge_strategy.ctl launch-env --config C)"`, so the YAML is parsed and
validated before anything starts and the shell never parses YAML. A bad config exits 2 naming the key. The
`sim:` section belongs to the simulator: when it is enabled, this runs `python -m lighter_sim launch-env` as a
process (the bot imports nothing from the simulator), which validates that section and adds its `SIM_*` lines.

Paths are printed absolute, resolved against the working directory (the scripts run from the repository
root, where the config's relative paths are meant to be read).
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hedge_strategy.bus.connect import describe_redis
from hedge_strategy.config import Config
from hedge_strategy.ops.common import (
    EXIT_CONFIG,
    EXIT_OK,
    add_config_argument,
    load_config_or_exit,
    run_dir,
)

DEFAULT_REDIS_PORT = 6379
SIM_MODULE = "lighter_sim"
SIM_LAUNCH_TIMEOUT_S = 60.0
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class RedisTarget:
    """Where the configured Redis is, and whether start_hedge.sh may start it on this machine."""

    local: bool  # a plain TCP or unix-socket URL on this machine (TLS `rediss://` is never started by us)
    host: str  # the address to bind when we start it ("" for a unix socket)
    port: int  # 0 for a unix socket
    socket: str  # unix socket path, "" for TCP


SENTINEL_TARGET = RedisTarget(local=False, host="", port=0, socket="")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = commands.add_parser(
        "launch-env", help="print the config facts start_hedge.sh needs, as shell-safe KEY=value lines",
        description="Validate the config (exit 2 naming the key) and print KEY=value lines for `eval`.",
    )
    add_config_argument(env)
    env.set_defaults(handler=cmd_launch_env)


def cmd_launch_env(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    values = launch_values(config, Path(args.config))
    if values["SIM_ENABLED"] == "1":
        sim_values = simulator_launch_values(config, Path(args.config))
        if sim_values is None:
            return EXIT_CONFIG
        values.update(sim_values)
    for key, value in values.items():
        print(f"{key}={shlex.quote(value)}")
    return EXIT_OK


def launch_values(config: Config, config_path: Path) -> dict[str, str]:
    """Every bot `KEY=value` of launch-env, as strings ("1"/"0" for booleans), in a stable order.

    With the simulator disabled the `SIM_*` facts are empty; `simulator_launch_values` fills them otherwise.
    """
    # Through Sentinel the master is wherever the sentinels say: never one start_hedge.sh would start.
    redis = redis_target(config.redis.url) if not config.redis.sentinels else SENTINEL_TARGET
    sim_enabled = bool(config.sim.get("enabled", True))
    a, b = config.accounts["a"], config.accounts["b"]
    return {
        "HEDGE_CONFIG": str(config_path.resolve()),
        "HEDGE_PAIR": config.pair,
        "RUN_DIR": str(run_dir().resolve()),
        "LOG_DIR": str(Path(config.logging.dir).resolve()),
        "SECRETS_FILE": str(Path(config.secrets_file).resolve()),
        "REDIS_URL": describe_redis(config.redis),
        "REDIS_LOCAL": _flag(redis.local),
        "REDIS_START_LOCAL": _flag(config.redis.start_local),
        "REDIS_HOST": redis.host,
        "REDIS_PORT": str(redis.port),
        "REDIS_SOCKET": redis.socket,
        "EXCHANGE_URL": config.exchange.url,
        "SIM_ENABLED": _flag(sim_enabled),
        "SIM_HOST": "",
        "SIM_PORT": "",
        "SIM_URL": "",
        "SIM_STATE_DIR": "",
        # "<account>:<api_key_index>" pairs that keygen must create before the sim starts
        "SIM_KEYS_MISSING": "",
        "ACCOUNT_A": str(a.account_index),
        "ACCOUNT_B": str(b.account_index),
        "STRATEGY_MARKET": config.strategy.market,
        "STRATEGY_QUANTITY": str(config.strategy.quantity),
        "STRATEGY_DEPTH": str(config.strategy.depth),
        "HEARTBEAT_TTL_S": f"{config.strategy.heartbeat_ttl_s:g}",
    }


def simulator_launch_values(config: Config, config_path: Path) -> dict[str, str] | None:
    """The simulator's own `SIM_*` lines (`python -m lighter_sim launch-env`, run as a process).

    None when the simulator refused its section: its message (naming the key) has been passed on to stderr.
    Its warnings (exchange.url not pointing at it) are passed on too.
    """
    keys = ",".join(config.accounts[role].key_id for role in ("a", "b"))
    command = [
        sys.executable, "-m", SIM_MODULE, "launch-env", "--config", str(config_path), "--keys", keys,
        "--secrets", str(Path(config.secrets_file)), "--exchange-url", config.exchange.url,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SIM_LAUNCH_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"configuration error:\n  sim: cannot run {SIM_MODULE} launch-env ({exc})", file=sys.stderr)
        return None
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        if not done.stderr.strip():
            failed = f"sim: {SIM_MODULE} launch-env exited {done.returncode}"
            print(f"configuration error:\n  {failed}", file=sys.stderr)
        return None
    values: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, sep, quoted = line.partition("=")
        if sep and key.startswith("SIM_"):
            parsed = shlex.split(quoted)
            values[key] = parsed[0] if parsed else ""
    return values


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


def _flag(value: Any) -> str:
    return "1" if value else "0"

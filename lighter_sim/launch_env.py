"""`python -m lighter_sim launch-env`: the simulator's facts start-up needs, as shell-safe `KEY=value` lines.

The bot's `hedgectl launch-env` runs this as a process (the bot imports nothing from the simulator), so the
`sim:` section is validated here, by the simulator that reads it, and a bad key exits 2 naming it.

    python -m lighter_sim launch-env --config config.yaml [--keys 101:3,102:3] [--secrets var/secrets.json]
                                     [--exchange-url http://127.0.0.1:8765]

Prints SIM_HOST, SIM_PORT, SIM_URL, SIM_STATE_DIR and SIM_KEYS_MISSING (the `<account>:<api_key_index>` pairs
of `--keys` that keygen has not made yet: no private key in the secrets file or no public key registered).
A warning goes to stderr when `--exchange-url` is not this simulator.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .config import SimConfig, SimConfigError, load_sim_config
from .keygen import KeygenError, read_public_keys, read_secrets

_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lighter_sim launch-env",
        description="validate the sim section and print KEY=value lines for start-up",
    )
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--keys", default="", help="comma- or space-separated <account>:<api_key_index>")
    parser.add_argument("--secrets", type=Path, default=Path("var/secrets.json"))
    parser.add_argument("--exchange-url", default="", help="the bot's exchange.url, checked against the sim")
    args = parser.parse_args(argv)
    try:
        config = load_sim_config(args.config)
    except SimConfigError as exc:
        print("configuration error:", *(f"  {line}" for line in exc.lines), sep="\n", file=sys.stderr)
        return 2
    keys = [k for k in args.keys.replace(",", " ").split() if k]
    values = {
        "SIM_HOST": config.host,
        "SIM_PORT": str(config.port),
        "SIM_URL": sim_url(config),
        "SIM_STATE_DIR": str(config.state_dir.resolve()),
        "SIM_KEYS_MISSING": " ".join(missing_keys(keys, args.secrets, config.state_dir)),
    }
    if args.exchange_url:
        warning = url_mismatch(args.exchange_url, config)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    for key, value in values.items():
        print(f"{key}={shlex.quote(value)}")
    return 0


def sim_url(config: SimConfig) -> str:
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"http://{host}:{config.port}"


def missing_keys(keys: list[str], secrets_file: Path, state_dir: Path) -> list[str]:
    """Each `"<account>:<api_key_index>"` of `keys` whose key pair keygen has not made yet."""
    try:
        secrets = read_secrets(secrets_file)
    except KeygenError:
        secrets = {}  # unreadable: keygen will say why
    try:
        public = read_public_keys(state_dir)
    except KeygenError:
        public = {}
    missing: list[str] = []
    for key in keys:
        account, _, api_key = key.partition(":")
        try:
            registered = int(api_key) in public.get(int(account), {})
        except ValueError:
            registered = False
        if key not in secrets or not registered:
            missing.append(key)
    return missing


def url_mismatch(exchange_url: str, config: SimConfig) -> str:
    """A warning when `exchange_url` is not this simulator, else ""."""
    parts = urlsplit(exchange_url)
    host = parts.hostname or ""
    same_host = host == config.host or (_is_local(host) and _is_local(config.host))
    if same_host and parts.port == config.port:
        return ""
    return (
        f"sim.enabled is true but exchange.url ({exchange_url}) is not the simulator "
        f"({sim_url(config)}); A and B will not trade on it"
    )


def _is_local(host: str) -> bool:
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

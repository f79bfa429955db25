"""Reading the API private keys of accounts A and B. They never live in `config.yaml`.

`LIGHTER_API_SECRET_A` / `_B` in the environment come first; otherwise `config.secrets_file`, a JSON file
`{"keys": {"<account_index>:<api_key_index>": "<80 hex chars>"}}` that must be mode 0600 (or stricter).
Every problem raises `ConfigError` (exit code 2) saying what to do, and never quotes the secret.
`hedge_strategy.config` re-exports `load_secret` and `secret_env_var` for older callers.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedge_strategy.config_error import ConfigError, check_role

if TYPE_CHECKING:
    from hedge_strategy.config import Config

KEYGEN_COMMAND = "python -m lighter_sim keygen"
_HEX_SECRET_RE = re.compile(r"^[0-9a-fA-F]{80}$")


def secret_env_var(role: str) -> str:
    """The environment variable that overrides the secrets file for `role` ("a" or "b")."""
    return f"LIGHTER_API_SECRET_{check_role(role).upper()}"


def load_secret(config: Config, role: str) -> str:
    """The API private key of account `role` ("a" or "b"), as 80 hex characters without `0x`.

    `LIGHTER_API_SECRET_A` / `_B` in the environment come first; otherwise the key
    `"<account_index>:<api_key_index>"` of `config.secrets_file`, which must not be readable by group or
    others (mode 0600 or stricter). Raises `ConfigError` saying what to do; the secret never appears in it.
    """
    role = check_role(role)
    env_name = secret_env_var(role)
    account = config.accounts[role]
    from_env = os.environ.get(env_name)
    if from_env is not None and from_env.strip():
        return _checked_secret(from_env, source=env_name)
    path = config.secrets_file
    keys = _read_secrets_file(path, env_name)
    value = keys.get(account.key_id)
    if value is None:
        raise ConfigError(
            f"{path}: no key \"{account.key_id}\" (account {account.account_index}, API key "
            f"{account.api_key_index}); for the simulator run `{KEYGEN_COMMAND}`, "
            f"otherwise add it to the file or set {env_name}"
        )
    return _checked_secret(value, source=f"{path} key \"{account.key_id}\"")


def _read_secrets_file(path: Path, env_name: str) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"secrets_file: {path} does not exist; for the simulator run `{KEYGEN_COMMAND}`, "
            f"otherwise create it (mode 0600) or set {env_name}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secrets_file: {path} has mode {stat.S_IMODE(mode):04o}, readable by others; "
            f"run `chmod 600 {path}` (it must be 0600 or stricter)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The parser's message could quote part of the file, which holds secrets: name only the position.
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"secrets_file: {path} is not readable JSON{where}") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, dict):
        raise ConfigError(f'secrets_file: {path} must hold {{"keys": {{"<account>:<api_key>": "<hex>"}}}}')
    return keys


def _checked_secret(value: Any, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: expected a string of 80 hex characters")
    secret = value.strip()
    if secret[:2].lower() == "0x":
        secret = secret[2:]
    if not _HEX_SECRET_RE.match(secret):
        raise ConfigError(
            f"{source}: expected 80 hex characters (a 40-byte Lighter API key), got {len(secret)} characters"
            + ("" if all(c in "0123456789abcdefABCDEF" for c in secret) else " including non-hex ones")
        )
    return secret.lower()

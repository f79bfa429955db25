"""`python -m lighter_sim keygen`: API key pairs for the simulated accounts.

Public keys go to `<sim.state_dir>/api_keys.json` (read by the sim at start), private keys to the 0600
secrets file the bot reads. Private keys are never printed or logged.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEYS_FILE = "api_keys.json"
PublicKeys = dict[int, dict[int, str]]  # account_index -> api_key_index -> public key hex (no 0x)


class KeygenError(RuntimeError):
    pass


def strip_0x(key: str) -> str:
    return key[2:] if key.startswith(("0x", "0X")) else key


def create_key_pair() -> tuple[str, str]:
    """(private, public) hex without 0x, made offline by the lighter-sdk Go signer."""
    import lighter  # imported here: it loads an 11 MB shared library and warns on import

    private, public, err = lighter.create_api_key()
    if err is not None or not private or not public:
        raise KeygenError(f"lighter.create_api_key failed: {err}")
    return strip_0x(private), strip_0x(public)


def read_public_keys(state_dir: Path) -> PublicKeys:
    path = state_dir / API_KEYS_FILE
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            int(acct): {int(k): strip_0x(str(pub)) for k, pub in keys.items()} for acct, keys in raw.items()
        }
    except (ValueError, AttributeError, TypeError) as exc:
        raise KeygenError(f"{path} is not a valid api_keys.json ({exc})") from None


def write_public_keys(state_dir: Path, keys: PublicKeys) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    payload = {str(acct): {str(k): pub for k, pub in sorted(ks.items())} for acct, ks in sorted(keys.items())}
    path = state_dir / API_KEYS_FILE
    _atomic_write(path, json.dumps(payload, indent=2) + "\n", mode=0o644)
    return path


def read_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        keys = raw.get("keys", {})
        if not isinstance(keys, dict):
            raise ValueError("'keys' is not an object")
        return {str(k): strip_0x(str(v)) for k, v in keys.items()}
    except (ValueError, AttributeError) as exc:
        raise KeygenError(f"{path} is not a valid secrets file ({exc})") from None


def write_secrets(path: Path, keys: dict[str, str]) -> None:
    """Merge `keys` into the secrets file, which is (re)created with mode 0600."""
    merged = read_secrets(path)
    merged.update(keys)
    _atomic_write(path, json.dumps({"keys": dict(sorted(merged.items()))}, indent=2) + "\n", mode=0o600)


def _atomic_write(path: Path, text: str, mode: int) -> None:
    # Write a temp file with the final mode from the start (a secret never sits in a world-readable file),
    # then rename over the target.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, mode)


@dataclass(frozen=True)
class KeygenResult:
    account_index: int
    api_key_index: int
    created: bool


def ensure_keys(
    accounts: Iterable[int], api_key_index: int, state_dir: Path, secrets_file: Path
) -> list[KeygenResult]:
    """Create a key pair for every account that lacks one (public and private half). Idempotent."""
    public = read_public_keys(state_dir)
    secrets = read_secrets(secrets_file)
    new_secrets: dict[str, str] = {}
    results: list[KeygenResult] = []
    for account in accounts:
        name = f"{account}:{api_key_index}"
        if name in secrets and api_key_index in public.get(account, {}):
            results.append(KeygenResult(account, api_key_index, created=False))
            continue
        private, pub = create_key_pair()
        new_secrets[name] = private
        public.setdefault(account, {})[api_key_index] = pub
        results.append(KeygenResult(account, api_key_index, created=True))
    if new_secrets:
        # Secrets first: a public key without its private half would lock the account out.
        write_secrets(secrets_file, new_secrets)
        write_public_keys(state_dir, public)
    return results


def registration_body(account_index: int, tier: str, collateral: str, keys: dict[int, str]) -> dict[str, Any]:
    """Body of `POST /sim/accounts` for one account."""
    return {
        "account_index": account_index,
        "tier": tier,
        "collateral": collateral,
        "api_keys": {str(k): pub for k, pub in keys.items()},
    }


async def register_with_sim(url: str, bodies: list[dict[str, Any]], timeout_s: float = 10.0) -> None:
    """POST each registration body to a running sim."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for body in bodies:
            async with session.post(f"{url.rstrip('/')}/sim/accounts", json=body) as resp:
                if resp.status != 200:
                    raise KeygenError(
                        f"registering account {body['account_index']} at {url} failed: "
                        f"HTTP {resp.status} {await resp.text()}"
                    )

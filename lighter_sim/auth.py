"""Auth tokens of the private REST routes and WebSocket channels.

A token is `"<expiry_unix_s>:<account_index>:<api_key_index>:<hex signature>"` (lighter-sdk
`create_auth_token_with_expiry`). The signature cannot be verified offline (Poseidon/Schnorr inside the Go
signer), so the sim checks what it can: the format, the expiry, that the token's account is the account
being read, and that the token's API key is registered for it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

AUTH_ERROR_CODE = 21140
_TOKEN = re.compile(r"^(\d{1,12}):(\d{1,15}):(\d{1,3}):([0-9a-fA-F]{16,})$")


class AuthError(Exception):
    """The token is unusable; the message says why (sent to the client with code 21140)."""

    code = AUTH_ERROR_CODE


@dataclass(frozen=True)
class AuthToken:
    expiry_s: int
    account_index: int
    api_key_index: int


def parse_token(token: str | None) -> AuthToken:
    if not token:
        raise AuthError("invalid auth token: missing")
    match = _TOKEN.match(token.strip())
    if match is None:
        raise AuthError(
            "invalid auth token: expected <expiry>:<account_index>:<api_key_index>:<hex signature>"
        )
    return AuthToken(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def check_token(
    token: str | None,
    account_index: int,
    key_is_registered: Callable[[int, int], bool],
    now_s: float | None = None,
) -> AuthToken:
    """The parsed token if it grants reading `account_index`, else AuthError."""
    parsed = parse_token(token)
    now = time.time() if now_s is None else now_s
    if parsed.expiry_s <= now:
        raise AuthError("invalid auth token: expired")
    if parsed.account_index != account_index:
        raise AuthError(f"invalid auth token: issued for account {parsed.account_index}, not {account_index}")
    if not key_is_registered(parsed.account_index, parsed.api_key_index):
        raise AuthError(
            f"invalid auth token: api key {parsed.api_key_index} is not registered "
            f"for account {account_index}"
        )
    return parsed

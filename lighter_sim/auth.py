"""Auth tokens of the private REST routes and WebSocket channels.

A token is `"<expiry_unix_s>:<account_index>:<api_key_index>:<hex signature>"` (lighter-sdk
`create_auth_token_with_expiry`). The sim does not verify the token's signature (only transactions'
signatures are verified, signatures.py; the auth message is not ported), so it checks the format, the expiry,
that the expiry is at most 8 h away, that the token's account is the account being read, and that the
token's API key is registered for it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import INVALID_AUTH, INVALID_PARAM

AUTH_ERROR_CODE = INVALID_AUTH  # verified: 20013 "invalid auth: ..." (REST 401 and WebSocket error frames)
# The longest lifetime the venue takes. Verified: an 8 h token was accepted and a 9 h one refused at use with
# HTTP 401 `{"code":20013,"message":"invalid auth: invalid deadline"}` (tests/wire/rest/accountLimits/
# hftbacktest_testnet-2026-07-30.jsonl lines 1, 2). Inferred: the ceiling is exactly 8 h (research fact 17),
# counted in whole seconds from the current second (the deadline is whole seconds; a client that rounds its
# issue time up to the next whole second is not refused for that fraction).
MAX_LIFETIME_S = 8 * 3600
INVALID_DEADLINE = "invalid auth: invalid deadline"
_TOKEN = re.compile(r"^(\d{1,12}):(\d{1,15}):(\d{1,3}):([0-9a-fA-F]{16,})$")


class AuthError(Exception):
    """The token is unusable; the message says why. `code` is the venue's: 20013 for a token it refuses,
    20001 (invalid param) when no token was given at all (both verified in captured error bodies)."""

    def __init__(self, message: str, code: int = AUTH_ERROR_CODE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AuthToken:
    expiry_s: int
    account_index: int
    api_key_index: int


def parse_token(token: str | None) -> AuthToken:
    if not token:
        raise AuthError("invalid param : auth is required", INVALID_PARAM)
    match = _TOKEN.match(token.strip())
    if match is None:
        raise AuthError(
            "invalid auth: malformed token, expected <expiry>:<account_index>:<api_key_index>:<hex signature>"
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
        raise AuthError("invalid auth: expired token")
    if parsed.expiry_s - math.ceil(now) > MAX_LIFETIME_S:
        raise AuthError(INVALID_DEADLINE)
    if parsed.account_index != account_index:
        raise AuthError(f"invalid auth: token issued for account {parsed.account_index}, not {account_index}")
    if not key_is_registered(parsed.account_index, parsed.api_key_index):
        raise AuthError(
            f"invalid auth: api key {parsed.api_key_index} is not registered for account {account_index}"
        )
    return parsed

"""The simulator's business errors: a Lighter-style numeric code plus the HTTP status to answer with."""

from __future__ import annotations

# Codes as listed in docs/design.md ("Error codes (sim)").
ACCOUNT_NOT_FOUND = 21100
API_KEY_NOT_FOUND = 21101
INVALID_NONCE = 21104
EXPIRED_TX = 21105
INVALID_TX = 21106
MARKET_NOT_FOUND = 21120
INVALID_SIZE = 21121
INVALID_PRICE = 21122
ORDER_NOT_FOUND = 21123
QUOTE_TOO_SMALL = 21124
TOO_MANY_ORDERS = 21125
NOT_ENOUGH_MARGIN = 21130


class SimError(Exception):
    """A request the simulated exchange refuses; `code` and `message` become the `ResultCode` body."""

    def __init__(self, code: int, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status

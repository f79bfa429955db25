"""Client order indexes: who made an order and why, readable in any log line.

Layout (docs/design.md): 14 decimal digits `R I NNNNNNNNNNNN`, always below 2^48 (Lighter's limit):
`R` role (1 A, 2 B, 3 operator), `I` intent (1 maker, 2 hedge, 3 close, 4 rebalance), `N` a 12-digit number.
Because the role is part of the index, A's and B's indexes can never collide.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

_NUMBER_SPACE = 10**12
_PURPOSE_WEIGHT = 10**12
_ROLE_WEIGHT = 10**13
MAX_CLIENT_ORDER_INDEX = 2**48 - 1


class Role(IntEnum):
    A = 1
    B = 2
    OPERATOR = 3


class Purpose(IntEnum):
    MAKER = 1
    HEDGE = 2
    CLOSE = 3
    REBALANCE = 4


def make_coid(role: Role, purpose: Purpose, number: int) -> int:
    """The client order index for `number` (0 .. 10^12-1) made by `role` for `purpose`."""
    if not 0 <= number < _NUMBER_SPACE:
        raise ValueError(f"client order number {number} outside 0 .. {_NUMBER_SPACE - 1}")
    coid = Role(role) * _ROLE_WEIGHT + Purpose(purpose) * _PURPOSE_WEIGHT + number
    assert coid <= MAX_CLIENT_ORDER_INDEX  # holds by construction: 3 4 999999999999 < 2^48
    return coid


def derived_number(key: str) -> int:
    """A stable 12-digit number from a string, so a redelivered request maps to the same indexes."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _NUMBER_SPACE


def parse_coid(coid: int) -> tuple[Role, Purpose, int]:
    """Split a client order index into (role, purpose, number); ValueError if it is not one of ours."""
    if not 0 < coid < _ROLE_WEIGHT * 10:
        raise ValueError(f"client order index {coid} is not in our 14-digit layout")
    role_digit, rest = divmod(coid, _ROLE_WEIGHT)
    purpose_digit, number = divmod(rest, _PURPOSE_WEIGHT)
    try:
        return Role(role_digit), Purpose(purpose_digit), number
    except ValueError:
        raise ValueError(f"client order index {coid} has unknown role/purpose digits") from None


def is_a_maker_coid(coid: int) -> bool:
    """True for the index of one of A's maker orders: the fills A hedges (on its stream, and B from the trade
    feed); False for any other order, foreign ones included."""
    try:
        role, purpose, _ = parse_coid(coid)
    except ValueError:
        return False
    return role is Role.A and purpose is Purpose.MAKER


def describe_coid(coid: int) -> str:
    """A short label for log lines, e.g. "A/maker#42"; never raises (foreign orders get "foreign#<n>")."""
    try:
        role, purpose, number = parse_coid(coid)
    except ValueError:
        return f"foreign#{coid}"
    role_label = "op" if role is Role.OPERATOR else role.name
    return f"{role_label}/{purpose.name.lower()}#{number}"

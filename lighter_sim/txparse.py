"""Parsing of signed tx_info JSON into typed fields (tx types 14 create, 15 cancel, 16 cancel-all, 17 modify).

Only shape is checked here; business checks (account, nonce, market, size...) live in the engine. Codes: a tx
type the sim does not simulate is the venue's 21511 (invalid tx type), a Sig that is not a signature the
venue's 21120 (invalid signature), a ClientOrderIndex out of range the venue's 21727; any other malformed
field is the sim's own 21106 (see errors.py). Whether the Sig verifies is checked later, by the engine
(signatures.py), once the account and its registered key are known.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .crypto.txhash import tx_hash_hex
from .errors import INVALID_CLIENT_ORDER_INDEX, INVALID_SIGNATURE, INVALID_TX, INVALID_TX_TYPE, SimError

TX_CREATE_ORDER = 14
TX_CANCEL_ORDER = 15
TX_CANCEL_ALL = 16
TX_MODIFY_ORDER = 17
SUPPORTED_TX_TYPES = (TX_CREATE_ORDER, TX_CANCEL_ORDER, TX_CANCEL_ALL, TX_MODIFY_ORDER)

_COMMON = ("AccountIndex", "ApiKeyIndex", "ExpiredAt", "Nonce")
_REQUIRED: dict[int, tuple[str, ...]] = {
    TX_CREATE_ORDER: (
        *_COMMON,
        "MarketIndex",
        "ClientOrderIndex",
        "BaseAmount",
        "Price",
        "IsAsk",
        "Type",
        "TimeInForce",
        "ReduceOnly",
        "TriggerPrice",
        "OrderExpiry",
    ),
    TX_CANCEL_ORDER: (*_COMMON, "MarketIndex", "Index"),
    TX_CANCEL_ALL: (*_COMMON, "TimeInForce", "Time"),
    TX_MODIFY_ORDER: (*_COMMON, "MarketIndex", "Index", "BaseAmount", "Price", "TriggerPrice"),
}
MAX_48 = (1 << 48) - 1
CANCEL_ALL_MARKET_ATTR = "5"  # L2TxAttributes key: cancel-all restricted to one market
NIL_MARKET = 255


@dataclass(frozen=True, slots=True)
class ParsedTx:
    tx_type: int
    fields: dict[str, int]
    raw: dict[str, Any]

    def __getitem__(self, key: str) -> int:
        return self.fields[key]

    @property
    def account_index(self) -> int:
        return self.fields["AccountIndex"]

    @property
    def api_key_index(self) -> int:
        return self.fields["ApiKeyIndex"]

    @property
    def cancel_all_market(self) -> int:
        attrs = self.raw.get("L2TxAttributes")
        if isinstance(attrs, dict):
            value = attrs.get(CANCEL_ALL_MARKET_ATTR)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return NIL_MARKET


SIGNATURE_BYTES = 80


def _bad(message: str) -> SimError:
    return SimError(INVALID_TX, message)


def parse_tx(tx_type: int, tx_info: str) -> ParsedTx:
    if tx_type not in SUPPORTED_TX_TYPES:
        raise SimError(INVALID_TX_TYPE, f"invalid tx type {tx_type} (the simulator supports 14, 15, 16, 17)")
    try:
        raw = json.loads(tx_info)
    except (TypeError, ValueError) as exc:
        raise _bad(f"malformed tx_info: {exc}") from None
    if not isinstance(raw, dict):
        raise _bad("malformed tx_info: not a JSON object")
    fields: dict[str, int] = {}
    for key in _REQUIRED[tx_type]:
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(f"malformed tx_info: {key} missing or not an integer")
        fields[key] = value
    _check_ranges(tx_type, fields)
    _check_signature_shape(raw.get("Sig"))
    return ParsedTx(tx_type, fields, raw)


def _check_signature_shape(sig: object) -> None:
    """The signature must be what the signer produces: base64 of 80 bytes (its verification is signatures.py,
    which the engine runs with the account's registered key)."""
    try:
        decoded = base64.b64decode(sig, validate=True) if isinstance(sig, str) else b""
    except ValueError:
        decoded = b""
    if len(decoded) != SIGNATURE_BYTES:
        raise SimError(INVALID_SIGNATURE, "invalid signature: Sig missing or not base64 of 80 bytes")


def _check_ranges(tx_type: int, f: dict[str, int]) -> None:
    if tx_type == TX_CREATE_ORDER:
        if f["Type"] not in (0, 1):
            raise _bad(f"unsupported order type {f['Type']} (the simulator supports limit 0 and market 1)")
        if f["TimeInForce"] not in (0, 1, 2):
            raise _bad(f"invalid time in force {f['TimeInForce']}")
        if f["Type"] == 1 and f["TimeInForce"] != 0:
            raise _bad("market orders must be immediate-or-cancel")
        if f["IsAsk"] not in (0, 1) or f["ReduceOnly"] not in (0, 1):
            raise _bad("IsAsk and ReduceOnly must be 0 or 1")
        if not 0 <= f["ClientOrderIndex"] <= MAX_48:
            raise SimError(INVALID_CLIENT_ORDER_INDEX, "invalid client order index")
    elif tx_type == TX_CANCEL_ALL:
        if f["TimeInForce"] not in (0, 1, 2):
            raise _bad(f"invalid cancel-all time in force {f['TimeInForce']}")
        if f["TimeInForce"] == 1 and f["Time"] <= 0:
            raise _bad("scheduled cancel-all needs Time > 0")
    if tx_type in (TX_CANCEL_ORDER, TX_MODIFY_ORDER) and f["Index"] < 0:
        raise _bad("Index must not be negative")


def venue_tx_hash(chain_id: int, tx: ParsedTx) -> str:
    """The hash the signer returned for `tx` and the venue answers (crypto/txhash.py). Only an unknown
    `L2TxAttributes` entry can fail here (parse_tx checked the fields): with signatures verified it already
    failed verification; with verification off it is refused as any other malformed tx_info."""
    try:
        return tx_hash_hex(chain_id, tx.tx_type, tx.raw)
    except (KeyError, ValueError) as exc:
        raise _bad(f"malformed tx_info: {exc}") from None

"""Signature verification of incoming transactions (`sim.verify_signatures`), as the venue does it.

A transaction's `Sig` is a Schnorr signature over ECgFp5 of a Poseidon2 hash of the chain id and the tx's
fields (`lighter_sim/crypto/`, ported from lighter-go and poseidon_crypto). The venue refuses a signature that
does not verify against the registered public key of (AccountIndex, ApiKeyIndex) with 21120 "invalid
signature" (lighter-go issue #19 / PR #9, in the corpus): a tx signed for another chain id, with another key,
or whose fields were changed after signing. The simulator answers the same, with the venue's message.

One verification takes about 15-25 ms of pure Python (more under load), and the test suite sends thousands
of transactions, so the mode is a setting:
- `first_per_key` (default): verify the first transaction of each (account, API key, registered public key)
  until one verifies, then trust that key. A client's chain id and key are the same for all its
  transactions, so the first one already shows a wrong chain id or a wrong key; a re-registered key
  (`POST /sim/accounts`, keygen) is verified again. Not caught: a later transaction whose fields were
  changed after signing, which only a hand-made client would send.
- `all`: verify every transaction, as the venue does.
- `off`: verify nothing (only the shape of `Sig`, base64 of 80 bytes, is checked, in txparse.py).
"""

from __future__ import annotations

import base64
import logging
from functools import lru_cache
from typing import Literal, get_args

from .crypto import curve, schnorr
from .crypto.txhash import tx_message
from .errors import INVALID_SIGNATURE, SimError
from .txparse import ParsedTx

log = logging.getLogger("lighter_sim.signatures")

VerifyMode = Literal["first_per_key", "all", "off"]
VERIFY_MODES: tuple[str, ...] = get_args(VerifyMode)
INVALID_SIGNATURE_MESSAGE = "invalid signature"  # the venue's words (lighter-go issue #19)
# Chains lighter-sdk 1.1.8 knows (mainnet 304, testnet 300, Robinhood 466324): on a refusal, the log says
# which of the others the signature verifies for, so an operator sees "signed for chain 300" at once.
KNOWN_CHAIN_IDS = (304, 300, 466324)


@lru_cache(maxsize=1024)
def _public_key_point(public_key_hex: str) -> curve.Point:
    """The registered key's curve point; ValueError when the hex is not a public key at all."""
    return schnorr.decode_public_key(bytes.fromhex(public_key_hex))


def signature_verifies(chain_id: int, tx: ParsedTx, public_key_hex: str) -> bool:
    """Whether `tx`'s Sig signs its fields for `chain_id` with the key `public_key_hex` (80 hex, no 0x)."""
    try:
        point = _public_key_point(public_key_hex)
        message = tx_message(chain_id, tx.tx_type, tx.raw)
        signature = base64.b64decode(tx.raw["Sig"], validate=True)
    except (KeyError, TypeError, ValueError):
        return False
    return schnorr.is_valid(point, message, signature)


class SignatureCheck:
    """Called by the engine for every tx whose account and API key exist; raises SimError 21120."""

    def __init__(self, chain_id: int, mode: VerifyMode) -> None:
        self.chain_id = chain_id
        self.mode = mode
        self._trusted: set[tuple[int, int, str]] = set()  # (account, api key, public key) seen verifying

    def __call__(self, tx: ParsedTx, public_key_hex: str) -> None:
        if self.mode == "off":
            return
        key = (tx.account_index, tx.api_key_index, public_key_hex)
        if self.mode == "first_per_key" and key in self._trusted:
            return
        if not signature_verifies(self.chain_id, tx, public_key_hex):
            self._log_refusal(tx, public_key_hex)
            raise SimError(INVALID_SIGNATURE, INVALID_SIGNATURE_MESSAGE)
        self._trusted.add(key)

    def _log_refusal(self, tx: ParsedTx, public_key_hex: str) -> None:
        others = [
            chain for chain in KNOWN_CHAIN_IDS
            if chain != self.chain_id and signature_verifies(chain, tx, public_key_hex)
        ]
        why = (
            f"it verifies for chain {others[0]}: the client signs for another chain id"
            if others
            else "signed with another key, for an unknown chain, or a field was changed after signing"
        )
        log.info(
            "signature of account %s api key %s does not verify for chain %s (%s); answering 21120",
            tx.account_index,
            tx.api_key_index,
            self.chain_id,
            why,
        )

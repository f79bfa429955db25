"""The transactions the sequencer has settled, per account: `GET /api/v1/tx` and the `account_tx` channel.

HTTP 200 from sendTx means accepted by the API, not executed (lighter-venue.md, last section). What became of
the transaction shows in the account's transactions once the sequencer took it up:

- Verified (hftbacktest testnet probe 2026-07-30, `docs/design-lighter-connector.md` §4.11 @ 103ffbf4): a
  create refused by the sequencer (a reused client order index) is listed by `GET /api/v1/tx?by=hash` with
  the SAME `status` 2 as an executed one; the verdict is only in `event_info`'s `ae` ("application error"), a
  JSON string inside the JSON string: `""` when it executed, `{"code":21728,"message":"client order index
  already exists"}` when it was refused. The refused create used its nonce there.
- Verified (corpus `ws/account_tx/qubx_mainnet-*`): an `update/account_tx` frame carries `txs`, each with
  `hash`, `type`, `info` (the signed tx, a JSON string), `event_info` (a JSON string ending in `"ae":""`),
  `status` 2, `transaction_index`, `l1_address`, `account_index`, `nonce`, `expire_at`, `block_height`,
  `queued_at`, `executed_at`, `sequence_index`, `parent_hash`; its subscription snapshot carries no `txs`.
- From lighter-sdk 1.1.8's `EnrichedTx` model: the REST answer is `code` plus those fields plus
  `api_key_index`, `transaction_time`, `committed_at`, `verified_at` (all required integers).
- Inferred: `event_info` here holds the market (`m`) and `ae` only; the venue's also summarises the trade and
  the orders (`t`, `mo`, `to`), which no client of this repository reads. A transaction still waiting for its
  speed bump is not listed yet (the venue's answer for it is not captured), nor is one refused before the
  sequencer (sendTx answered the error). The answer for an unknown hash is not captured: the simulator's own
  `{"code": 21500, "message": "transaction not found"}` with HTTP 400.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from typing import Any

from .events import TxSettled

TX_STATUS_EXECUTED = 2  # captured for executed txs, and (hftbacktest §4.11) for sequencer-refused ones too
TXS_KEPT_PER_ACCOUNT = 2000
TXS_KEPT = 20_000


def event_info(market_id: int | None, error: tuple[int, str] | None) -> str:
    """The `event_info` JSON string: `ae` empty when executed, else the refusal as a JSON string."""
    ae = "" if error is None else json.dumps({"code": error[0], "message": error[1]}, separators=(",", ":"))
    info: dict[str, Any] = {} if market_id is None else {"m": market_id}
    info["ae"] = ae
    return json.dumps(info, separators=(",", ":"))


def tx_object(
    *,
    tx_hash: str,
    tx_type: int,
    payload: dict[str, Any],
    error: tuple[int, str] | None,
    account_index: int,
    l1_address: str,
    block_height: int,
    sequence_index: int,
    queued_ms: int,
    executed_ms: int,
) -> dict[str, Any]:
    """One settled transaction as `account_tx` frames carry it (the captured key order)."""
    market = payload.get("MarketIndex")
    return {
        "hash": tx_hash,
        "type": tx_type,
        "info": json.dumps(payload, separators=(",", ":")),
        "event_info": event_info(market if isinstance(market, int) else None, error),
        "status": TX_STATUS_EXECUTED,
        "transaction_index": sequence_index % 1000,
        "l1_address": l1_address,
        "account_index": account_index,
        "nonce": payload.get("Nonce", 0),
        "expire_at": payload.get("ExpiredAt", 0),
        "block_height": block_height,
        "queued_at": queued_ms,
        "executed_at": executed_ms,
        "sequence_index": sequence_index,
        "parent_hash": "",
    }


def enriched(tx: dict[str, Any]) -> dict[str, Any]:
    """The `GET /api/v1/tx` answer (lighter-sdk 1.1.8 `EnrichedTx`) for a settled transaction."""
    payload = json.loads(tx["info"])
    return {
        "code": 200,
        **tx,
        "api_key_index": payload.get("ApiKeyIndex", 0),
        "transaction_time": tx["executed_at"] * 1000,
        "committed_at": 0,
        "verified_at": 0,
    }


class TxHistory:
    """Settled transactions, the newest `TXS_KEPT_PER_ACCOUNT` of each account (`TXS_KEPT` in all)."""

    def __init__(self) -> None:
        self._by_hash: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._by_account: dict[int, deque[str]] = {}

    def on_event(self, event: Any) -> None:
        """Engine listener: keep every `TxSettled`."""
        if isinstance(event, TxSettled):
            self.remember(event.account_index, event.tx)

    def remember(self, account_index: int, tx: dict[str, Any]) -> None:
        hashes = self._by_account.setdefault(account_index, deque())
        hashes.append(tx["hash"])
        self._by_hash[tx["hash"]] = tx
        if len(hashes) > TXS_KEPT_PER_ACCOUNT:
            self._by_hash.pop(hashes.popleft(), None)
        while len(self._by_hash) > TXS_KEPT:
            self._by_hash.popitem(last=False)

    def get(self, tx_hash: str) -> dict[str, Any] | None:
        return self._by_hash.get(tx_hash)

    def clear(self) -> None:
        self._by_hash.clear()
        self._by_account.clear()

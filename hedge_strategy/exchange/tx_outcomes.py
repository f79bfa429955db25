"""What the sequencer did with a transaction: the `account_tx` channel and `GET /api/v1/tx` → `TxOutcome`.

HTTP 200 from sendTx means accepted by the API, not executed: the sequencer can still refuse the transaction
(price band, margin, a client order index in use), and then no order ever appears (lighter-venue.md, last
section). The refusal shows only in the account's transactions. What is verified and what is inferred:

- Verified (corpus `ws/account_tx/qubx_mainnet-*`): `update/account_tx` frames carry `txs`, each with `hash`,
  `type`, `info` (the signed transaction, a JSON string: a create's `ClientOrderIndex` is in it) and
  `event_info`, a JSON string whose `ae` is `""` for an executed transaction; `status` 2.
- Verified (hftbacktest testnet probe 2026-07-30, its `docs/design-lighter-connector.md` §4.11): `GET
  /api/v1/tx?by=hash&value=...` answers a refused create with the same `status` 2 as an executed one; the
  verdict is `ae`, itself a JSON string `{"code":21728,"message":"client order index already exists"}`. So
  `status` is not the verdict: `ae` is.
- Inferred (a third-party SDK's reading of the docs, df-lighter-core `TxStatus`; no capture): `status` 1 is
  "taken, not executed yet" (read here as no outcome yet) and 0 "failed" (read as refused even without
  `ae`). The answer for a hash the venue does not know is not captured: any 4xx answer reads as "not known".
- Inferred (the venue's "most others" figure, lighter-venue.md): `tx` weighs 300 on premium accounts, the
  throttle's default weight.

A malformed item is logged and skipped (`parsing.parse_items`), never fatal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from loguru import logger

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.events import TxOutcome
from hedge_strategy.exchange.rest import VenueError, call_rest, model_dict
from hedge_strategy.exchange.throttle import RequestThrottle
from hedge_strategy.untrusted_json import loads_untrusted

if TYPE_CHECKING:
    from lighter.api.transaction_api import TransactionApi

TX_CREATE_ORDER = 14
STATUS_PENDING = 1  # inferred (module docstring)
STATUS_FAILED = 0  # inferred (module docstring)


def tx_outcome(raw: Any, account_index: int) -> TxOutcome | None:
    """One transaction object (an `account_tx` item or a `tx` answer) → its outcome; None while it has none
    yet (pending). Raises a `parsing.PARSE_ERRORS` error when malformed."""
    tx = parsing.as_dict(raw)
    tx_hash = tx["hash"]
    if not isinstance(tx_hash, str) or not tx_hash:
        raise ValueError(f"transaction without a hash: {tx_hash!r}")
    status = tx.get("status")
    if status == STATUS_PENDING:
        return None
    event_info = tx["event_info"]  # "" read as no refusal (inferred: only JSON objects were captured)
    ae = _json_object(event_info, "event_info").get("ae", "") if event_info else ""
    code, reason = _refusal(ae)
    refused = bool(ae) or status == STATUS_FAILED
    if refused and not reason:
        reason = f"status {status}"
    tx_type = parsing.to_int(tx["type"])
    return TxOutcome(account_index=parsing.to_int(tx.get("account_index", account_index)), tx_hash=tx_hash,
                     tx_type=tx_type, client_order_index=_client_order_index(tx.get("info"), tx_type),
                     refused=refused, code=code, reason=reason)


def tx_outcomes(frame: Mapping[str, Any], account_index: int) -> Iterator[TxOutcome]:
    """The outcomes in an `account_tx` frame, of `account_index` only (a snapshot carries no `txs`)."""
    for outcome in parsing.parse_items(frame.get("txs") or [], lambda raw: tx_outcome(raw, account_index),
                                       "transaction"):
        if outcome is not None and outcome.account_index == account_index:
            yield outcome


async def read_tx(tx_api: TransactionApi, tx_hash: str, account_index: int, *, throttle: RequestThrottle,
                  timeout_s: float) -> TxOutcome | None:
    """The outcome of `tx_hash` by REST: None when the venue does not know it (yet) or has no outcome for it.
    Raises `VenueError` when the exchange does not answer (timeout, 5xx, 429 past the retries)."""
    try:
        raw = await call_rest("tx", lambda: tx_api.tx(by="hash", value=tx_hash, _request_timeout=timeout_s),
                              throttle=throttle, timeout_s=timeout_s)
    except VenueError as exc:
        if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
            return None  # not known to the venue (its not-found answer is not captured: any 4xx)
        raise
    try:
        return tx_outcome(model_dict(raw), account_index)
    except parsing.PARSE_ERRORS as exc:
        logger.warning("tx {}: unreadable answer ({}: {}); its outcome stays unknown", tx_hash[:16],
                       type(exc).__name__, exc)
        return None


def _json_object(raw: Any, what: str) -> dict[str, Any]:
    """A JSON string holding an object (the venue nests JSON in strings), or an object already."""
    value = loads_untrusted(raw, what) if isinstance(raw, str | bytes) else raw
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not a JSON object: {raw!r:.80}")
    return value


def _refusal(ae: Any) -> tuple[int | None, str]:
    """`ae` → (code, message): "" is no refusal; a JSON object gives both; other text is the reason as is."""
    if not ae:
        return None, ""
    if isinstance(ae, str):
        try:
            ae = loads_untrusted(ae, "event_info.ae")
        except ValueError:
            return None, ae
    if isinstance(ae, dict):
        code = ae.get("code")
        return (code if isinstance(code, int) and not isinstance(code, bool) else None,
                str(ae.get("message") or ae))
    return None, str(ae)


def _client_order_index(info: Any, tx_type: int) -> int | None:
    """A create's client order index from the signed transaction in `info`; None otherwise."""
    if tx_type != TX_CREATE_ORDER or info is None:
        return None
    try:
        value = _json_object(info, "info").get("ClientOrderIndex")
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

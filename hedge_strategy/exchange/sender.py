"""Sending transactions safely: one nonce owner per (account, API key), sends serialized, outcomes classified.

Why this exists (lighter-sdk.md 3.4): the SDK's optimistic nonce manager leaves its counter advanced after any
exception, and its implicit `nonce=-1` path makes the Go signer do blocking HTTP. Here the counter is ours,
initialised from `nextNonce`, advanced only when the exchange accepted a transaction, and resynced after
anything ambiguous. Every outcome is one of three:

* ACCEPTED: HTTP 200 and `code == 200`. Accepted by the API, not yet executed: the sequencer can still refuse
  the transaction without an order ever appearing (lighter-venue.md, last section). Its verdict comes as a
  `TxOutcome` (tx_outcomes.py: the `account_tx` channel, or the transaction read by its hash); the caller
  settles the order by it, or by its client order index (the reconciler marks an order that never appears,
  its transaction unknown too, within the grace as never executed). After a refusal the adapter resyncs the
  nonce before the next send (`mark_stale`): whether the refused transaction used its nonce varies.
* REJECTED: the exchange answered and said no (HTTP 200 with another code, HTTP 4xx, or 429 beyond the retry
  budget), or the transaction was never sent. The order does not exist.
* UNKNOWN: timeout, 5xx, dropped connection, unreadable answer. The order may exist: the caller resolves it by
  its client order index. UNKNOWN is never reported as REJECTED.

Transport: over the account's WebSocket (`jsonapi/sendtx`, ws_tx.py) when `use_websocket` gave it one and its
connection is up and not silent (ws_tx.py), else over HTTP. The socket's answer is the body an HTTP sendTx
answers and is classified the same way; a transaction written to the socket and left without an answer
(timeout, connection lost) is UNKNOWN like an HTTP timeout; one that was not written (no connection up, or
a silent one) went nowhere and is posted over HTTP instead, the same signed transaction with the same
nonce. Both are charged to the request throttle, and a rate-limit answer (HTTP 429, or code 23000 on the
socket) is waited out and the same transaction sent again.

Every result that is not ACCEPTED carries a `Refusal` (`errors.py`): whether another try is worth it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lighter.api.transaction_api import TransactionApi
from lighter.exceptions import ApiException
from loguru import logger

from hedge_strategy.exchange.errors import OK_CODE, Refusal, RefusalKind, classify_refusal
from hedge_strategy.exchange.rest import (
    MAX_429_RETRIES,
    RATE_LIMITED_CODE,
    VenueError,
    call_rest,
    count_rate_limit_backoff,
    error_details,
    is_rate_limited,
    rate_limit_delay,
    retry_after_s,
)
from hedge_strategy.exchange.throttle import RequestThrottle
from hedge_strategy.exchange.ws_tx import TxNotSent, WsTransactions
from hedge_strategy.task_end import end_tasks

RESYNC_RETRY_S = 0.5  # a background nonce resync refused (429, no answer): read again after this, doubling
RESYNC_RETRY_MAX_S = 5.0

# A signing function: nonce -> (tx_type, tx_info, tx_hash, error) exactly as SignerClient.sign_* return it.
SignFn = Callable[[int], tuple[Any, Any, Any, Any]]


@dataclass(frozen=True)
class Prepared:
    """A transaction ready to sign: its description for the log, its signing function, and the caller's
    write-ahead record to await between signing and posting (None: nothing to wait for)."""

    what: str
    sign: SignFn
    ready: Awaitable[object] | None = None


# Called once per send, after the lock and the throttle granted it, right before signing: the transaction
# to send, built from what is true at that moment (A's maker price), or None to give it up unsent.
Prepare = Callable[[], Prepared | None]


class SendStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    code: int | None  # the venue's code, for operators' logs only: decisions use `refusal`
    message: str
    tx_hash: str | None
    refusal: Refusal | None = None  # None when ACCEPTED
    retry_after_s: float | None = None  # a rate-limit refusal's Retry-After, when the venue sent one

    @property
    def accepted(self) -> bool:
        return self.status is SendStatus.ACCEPTED

    @property
    def worth_retrying(self) -> bool:
        """False only when the venue's code or message proves another try would be refused the same way."""
        return self.refusal is None or self.refusal.worth_retrying

    @property
    def detail(self) -> str:
        """One phrase for logs and journal reasons: what the venue said and what it means."""
        cause = f" [{self.refusal.kind}: {self.refusal.cause}]" if self.refusal is not None else ""
        return f"{self.code if self.code is not None else '-'} {self.message}{cause}"


@dataclass(frozen=True)
class _Signed:
    tx_type: int
    tx_info: str
    tx_hash: str | None


class TxSender:
    """The nonce owner for one (account, API key). All sends go through `send`, one at a time."""

    def __init__(
        self,
        *,
        account_index: int,
        api_key_index: int,
        tx_api: TransactionApi,
        throttle: RequestThrottle,
        request_timeout_s: float,
        max_429_retries: int = MAX_429_RETRIES,
        answer_timeout_s: float | None = None,
    ) -> None:
        self.account_index = account_index
        self.api_key_index = api_key_index
        self._tx_api = tx_api
        self._throttle = throttle
        self._timeout_s = request_timeout_s  # nextNonce reads
        # A post left without an answer this long is UNKNOWN: its order is then looked up by client order
        # index, which settles it faster than a long wait would (None: the REST timeout).
        self._answer_timeout_s = answer_timeout_s if answer_timeout_s is not None else request_timeout_s
        self._max_429_retries = max_429_retries
        self._lock = asyncio.Lock()
        self._next_nonce: int | None = None  # None: must (re)sync from nextNonce before the next send
        # The nonce of the last send left without a verdict, while the venue has not shown it used: a send
        # that takes it again and is refused "invalid nonce" means that earlier send executed after all.
        self._ambiguous_nonce: int | None = None
        self.resyncs = 0
        self._resync: asyncio.Task[None] | None = None  # the background resync after `mark_stale`
        self._ws: WsTransactions | None = None
        self._transport = "http"  # how the last post went, for its log line

    @property
    def next_nonce(self) -> int | None:
        return self._next_nonce

    async def sync_nonce(self, reason: str = "start") -> int:
        """Load the next nonce from the exchange (raises VenueError if it cannot be read)."""
        return self._take_nonce(await self._read_next_nonce(), reason)

    async def _read_next_nonce(self) -> int:
        answer = await call_rest(
            "nextNonce",
            lambda: self._tx_api.next_nonce(
                account_index=self.account_index, api_key_index=self.api_key_index,
                _request_timeout=self._timeout_s),
            throttle=self._throttle, timeout_s=self._timeout_s)
        return nonce_of(answer)

    def _take_nonce(self, nonce: int, reason: str) -> int:
        if self._ambiguous_nonce is not None and nonce > self._ambiguous_nonce:
            self._ambiguous_nonce = None  # the venue used it: no later send can take it again
        previous, self._next_nonce = self._next_nonce, nonce
        if reason != "start":
            self.resyncs += 1
        logger.info("nonce for account {} key {} synced from exchange ({}): {} (was {})",
                    self.account_index, self.api_key_index, reason, nonce, previous)
        return nonce

    def use_websocket(self, transactions: WsTransactions | None) -> None:
        """Send over this WebSocket while its connection is up (HTTP otherwise); None: HTTP only."""
        self._ws = transactions

    def mark_stale(self) -> None:
        """Force a resync before the next send (used after an ambiguous outcome)."""
        self._next_nonce = None

    def resync_soon(self) -> None:
        """While the nonce is unknown, read it now in the background, so that the next send (B's hedge) finds
        it known and needs no REST read: that read refused (a burst of 429s) would hold the send up for as
        long as the refusals last. A send that finds the nonce still unknown stops it and reads on its own."""
        if self._next_nonce is not None or (self._resync is not None and not self._resync.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next send resyncs
            return
        self._resync = loop.create_task(self._resync_in_background())

    async def _resync_in_background(self) -> None:
        """Read the next nonce until it is known (by this read or by a send's own resync), backing off from
        RESYNC_RETRY_S doubling to RESYNC_RETRY_MAX_S. The read runs outside the send lock, so it never holds
        a send up; it is taken only while the nonce is still unknown: no send can have used a nonce since."""
        delay = RESYNC_RETRY_S
        while self._next_nonce is None:
            try:
                nonce = await self._read_next_nonce()
            except Exception as exc:  # VenueError (429s, no answer) or anything else: logged, read again
                logger.warning("nonce for account {} key {}: background resync failed ({}); again in {:g} s",
                               self.account_index, self.api_key_index, exc, delay)
                await asyncio.sleep(delay)  # a backoff between reads: nothing to wait on but the venue
                delay = min(delay * 2, RESYNC_RETRY_MAX_S)
                continue
            if self._next_nonce is None:
                self._take_nonce(nonce, "background resync")
            return

    async def close(self) -> None:
        """End a background resync (the account is closing)."""
        if self._resync is not None:
            await end_tasks([self._resync], f"account {self.account_index}: the background nonce resync")
            self._resync = None

    def _stop_resync(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            self._resync = None

    async def send(self, what: str, sign: SignFn, ready: Awaitable[object] | None = None) -> SendResult:
        """Sign with our nonce and send; returns the classified outcome. Never raises for exchange trouble.

        `ready`, when given, is awaited after signing and before posting: the caller's write-ahead record
        (the journal's commit) runs while the order is signed, and nothing is posted unless it succeeded
        (a failed `ready` answers REJECTED "not sent"; the caller awaits it to see why).
        """
        return await self.send_prepared(what, lambda: Prepared(what, sign, ready))

    async def send_prepared(self, what: str, prepare: Prepare) -> SendResult:
        """`send`, the transaction built by `prepare` at departure: after the lock and the throttle's grant
        for its first post, so what it reads (a book price) is as fresh as the client can make it. `what`
        names the send until `prepare` gives its full description; `prepare` answering None gives the send
        up: REJECTED "not sent", nothing signed, the throttle's token spent."""
        async with self._lock:
            started = time.monotonic()
            try:
                result, what = await self._send_locked(what, prepare)
            except asyncio.CancelledError:
                # Cancelled mid-send: the post may have reached the exchange and used the nonce.
                self.mark_stale()
                logger.warning("sendTx {} cancelled before its answer; nonce resynced before the next send",
                               what)
                raise
            self.resync_soon()  # the send left the nonce unknown (unanswered, refused): known before the next
            elapsed_ms = (time.monotonic() - started) * 1000
            log = logger.info if result.accepted else logger.warning
            unknown = result.status is SendStatus.UNKNOWN
            log("sendTx {} -> {} (code {}, {}) in {:.0f} ms over {}{}", what, result.status.value,
                result.code, result.message or "-", elapsed_ms, self._transport,
                "; the order may exist: resolve it by client order index" if unknown else "")
            return result

    async def _send_locked(self, what: str, prepare: Prepare) -> tuple[SendResult, str]:
        """The outcome and the send's description (the prepared one once prepared)."""
        prepared: Prepared | None = None
        for nonce_attempt in range(2):  # the second pass only after an "invalid nonce" answer
            if self._next_nonce is None:
                self._stop_resync()  # a background read still under way: this send reads the nonce itself
                try:
                    await self.sync_nonce("resync before send" if nonce_attempt == 0 else "invalid nonce")
                except VenueError as exc:
                    return _not_sent(f"nonce resync failed: {exc}", exc.code, RefusalKind.TRANSPORT), what
            nonce = self._next_nonce
            assert nonce is not None
            paid = prepared is None
            if prepared is None:
                # The throttle's wait comes before the transaction is built, so it is built with what is true
                # when it leaves (on Standard that wait can be seconds); a retry keeps what was signed.
                await self._throttle.acquire("sendTx")
                prepared = prepare()
                if prepared is None:
                    return _not_sent("given up at departure by its sender"), what
                what = prepared.what
            signed = await self._sign(prepared.sign, nonce)
            if isinstance(signed, SendResult):
                return signed, what
            if prepared.ready is not None:
                try:
                    await prepared.ready
                except Exception as exc:  # the record before the send failed: the send must not happen
                    return _not_sent(f"write-ahead record failed: {exc!r}"), what
                prepared = Prepared(prepared.what, prepared.sign)  # a retry needs no second wait
            result = await self._post_with_429_retries(what, signed, paid)
            if result.accepted:
                self._next_nonce = nonce + 1
                if self._ambiguous_nonce is not None and nonce >= self._ambiguous_nonce:
                    self._ambiguous_nonce = None  # this send took it: the earlier one can never execute
                return result, what
            if result.status is SendStatus.UNKNOWN:
                self.mark_stale()
                self._ambiguous_nonce = nonce
                return result, what
            if result.refusal is not None and result.refusal.kind is RefusalKind.NONCE:
                self.mark_stale()
                if nonce == self._ambiguous_nonce:
                    # The earlier unanswered send of this nonce executed after all (the venue had not used
                    # it at the resync, and has now). Retrying on the next nonce could put both live: never.
                    self._ambiguous_nonce = None
                    return _nonce_taken_late(result), what
                if nonce_attempt == 0:
                    logger.warning("sendTx {} refused for nonce {}: {}; resyncing and retrying once",
                                   what, nonce, result.message)
                    continue
            return result, what  # rejected: the exchange did not consume the nonce, keep the counter
        raise AssertionError("unreachable")

    async def _sign(self, sign: SignFn, nonce: int) -> _Signed | SendResult:
        # The Go signer is CPU-bound (a few ms) and could block: keep it off the event loop.
        try:
            tx_type, tx_info, tx_hash, error = await asyncio.to_thread(sign, nonce)
        except Exception as exc:  # a ctypes/argument failure: nothing was sent
            return _not_sent(f"signing failed: {exc}")
        if error or not isinstance(tx_info, str) or not tx_info.startswith("{"):
            return _not_sent(f"signer refused: {error or tx_info!r}")
        return _Signed(int(tx_type), tx_info, tx_hash)

    async def _post_with_429_retries(self, what: str, signed: _Signed, paid: bool) -> SendResult:
        """`paid`: the throttle already granted the first post (before it was prepared)."""
        for attempt in range(self._max_429_retries + 1):
            if attempt > 0 or not paid:
                await self._throttle.acquire("sendTx")
            try:
                answer = await self._post(signed)
            except Exception as exc:
                if is_rate_limited(exc) and attempt < self._max_429_retries:
                    await self._wait_out_rate_limit(what, attempt, exc)
                    continue
                return classify_failure(exc, signed.tx_hash)
            if _rate_limited_answer(answer) and attempt < self._max_429_retries:
                await self._wait_out_rate_limit(what, attempt)
                continue
            return classify_answer(answer, signed.tx_hash)
        raise AssertionError("unreachable")

    async def _post(self, signed: _Signed) -> Any:
        """One post of the signed transaction: over the WebSocket when one is up, else over HTTP."""
        if self._ws is not None:
            try:
                self._transport = "ws"
                return await self._ws.send_tx(signed.tx_type, signed.tx_info, self._answer_timeout_s)
            except TxNotSent as why:
                self._transport = f"http ({why})"
        else:
            self._transport = "http"
        async with asyncio.timeout(self._answer_timeout_s):
            return await self._tx_api.send_tx(tx_type=signed.tx_type, tx_info=signed.tx_info,
                                              _request_timeout=self._answer_timeout_s)

    async def _wait_out_rate_limit(self, what: str, attempt: int, exc: BaseException | None = None) -> None:
        # A rate-limited send was refused before processing: the same signed tx (same nonce) is sent again.
        delay = rate_limit_delay(exc, attempt)
        count_rate_limit_backoff(self._throttle)
        logger.warning("sendTx {} rate limited (429); retrying in {:.2f} s", what, delay)
        await asyncio.sleep(delay)


def _rate_limited_answer(answer: Any) -> bool:
    """A socket answer refusing for the rate limit (the venue's code 23000, as over HTTP)."""
    return isinstance(answer, dict) and answer.get("code") == RATE_LIMITED_CODE


def nonce_of(answer: Any) -> int:
    """A `nextNonce` answer (SDK model or dict) → the next nonce; VenueError without an integer one."""
    nonce = answer.get("nonce") if isinstance(answer, dict) else getattr(answer, "nonce", None)
    if isinstance(nonce, bool) or not isinstance(nonce, int):
        raise VenueError("nextNonce", f"answer without an integer nonce: {answer!r}")
    return nonce


def _nonce_taken_late(refused: SendResult) -> SendResult:
    """A refusal for a nonce an earlier unanswered send carried: FINAL, so no caller sends it again blindly
    (the earlier send's order may exist; its client order index finds it)."""
    cause = "nonce used by an earlier unanswered send, which executed after all"
    return SendResult(SendStatus.REJECTED, refused.code, f"{refused.message} ({cause})", refused.tx_hash,
                      Refusal(RefusalKind.FINAL, cause))


def _not_sent(reason: str, code: int | None = None, kind: RefusalKind = RefusalKind.UNKNOWN) -> SendResult:
    return SendResult(SendStatus.REJECTED, code, f"not sent: {reason}", None, Refusal(kind, "not sent"))


def classify_answer(answer: Any, signed_hash: str | None) -> SendResult:
    """An HTTP 200 answer (an SDK `RespSendTx` or a plain dict): accepted only with code 200."""
    body = answer if isinstance(answer, dict) else {}
    code = body.get("code") if body else getattr(answer, "code", None)
    message = str((body.get("message") if body else getattr(answer, "message", "")) or "")
    tx_hash = (body.get("tx_hash") if body else getattr(answer, "tx_hash", None)) or signed_hash
    if code == OK_CODE:
        return SendResult(SendStatus.ACCEPTED, code, message, tx_hash)
    if isinstance(code, int) and not isinstance(code, bool):
        return SendResult(SendStatus.REJECTED, code, message, tx_hash, classify_refusal(200, code, message))
    # A 200 we cannot read says nothing about whether the order exists.
    return SendResult(SendStatus.UNKNOWN, None, f"unreadable answer: {answer!r}"[:200], signed_hash,
                      Refusal(RefusalKind.TRANSPORT, "unreadable answer"))


def classify_failure(exc: BaseException, signed_hash: str | None) -> SendResult:
    """A send that raised: 4xx are answers (REJECTED), everything else is ambiguous (UNKNOWN)."""
    status, code, message = error_details(exc)
    refusal = classify_refusal(status, code, message)
    if isinstance(exc, ApiException) and status == 429:
        return SendResult(SendStatus.REJECTED, code or RATE_LIMITED_CODE,
                          f"rate limited: {message}; retry budget spent", None, refusal,
                          retry_after_s=retry_after_s(exc))
    if isinstance(exc, ApiException) and status is not None and 400 <= status < 500:
        return SendResult(SendStatus.REJECTED, code, f"HTTP {status}: {message}", None, refusal)
    detail = f"HTTP {status}: {message}" if status else message
    return SendResult(SendStatus.UNKNOWN, code, detail, signed_hash, refusal)

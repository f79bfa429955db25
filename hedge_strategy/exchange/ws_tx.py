"""Transactions over the account's WebSocket (`jsonapi/sendtx`), on the connection that carries the fills.

Why: the socket is open already, so a transaction costs one frame each way, where an HTTP sendTx costs a
request through the SDK and its connection pool (measured: bench/README.md, "hedge latency").

Frames. Sent: `{"type":"jsonapi/sendtx","data":{"tx_type":14,"tx_info":{..},"id":"<ours>"}}`, where
`tx_info` is the signer's JSON decoded into an object, not its text as a string: Lighter's own example
(lighter-python `examples/ws_send_tx.py` sends `json.loads(tx_info)`) and ccxt (`ts/src/pro/lighter.ts`: "a
single decoded tx_info object") send the object, and the one captured acknowledgement answered that form;
what the venue does with a string is not known (lighter-sdk.md 5.1 leaves it open). Answers: accepted
`{"code":200,"id":"<ours>","predicted_execution_time_ms":..,"tx_hash":"..","type":"jsonapi/sendtx"}`, the
`id` echoed back (verified: tests/wire/ws/sendtx/ccxt_ack-2026-08.jsonl, an answer to the object form);
refused, in two forms, neither captured [inferred]: flat,
`{"type":"jsonapi/sendtx","code":21727,"message":".."}` (NautilusTrader's test frames, constructed; they
carry no `id`, so an answer without one is expected; the simulator answers this form, with the `id`), and
nested, `{"error":{"code":21104,"message":".."},"id":"<ours>"}` (the form ccxt's `handleErrorMessage`,
ts/src/pro/lighter.ts, expects: an ordinary error frame carrying the request's `id`). A nested error whose
`id` is a request waiting on that connection is that request's answer (`take_refusal`), read as the flat
form; any other error frame is the session's (subscriptions). An answer is the body an HTTP sendTx answers,
and the sender classifies it the same way (`sender.classify_answer`): a refused nonce (21104) is resynced at
once instead of waiting out the send timeout as UNKNOWN.

Matching: an answer goes to the request with its `id`; one without an `id` to the oldest request still
waiting on that connection (the venue answering one connection's messages in order [inferred]). A request
given up on (timed out, cancelled) keeps its place in that order until its answer comes or the connection
ends, so a late answer is never taken for a newer request's.

What `send_tx` ends with:
- the answer (a dict);
- `TxNotSent`: nothing was written (no connection up, the one we have is closing, or it has been silent past
  half the silence limit, when the session's own ping has gone unanswered, or an earlier send on it timed out
  and nothing was heard on it since). Nothing reached the venue: the sender posts the same signed transaction
  over HTTP instead;
- `TxNoAnswer`: the frame was written (or may have been) but no answer came within the timeout, or the
  connection ended first. The order may exist: UNKNOWN, exactly like an HTTP timeout.

Budgets: a transaction is not charged to the message budget (ws_budget.py): the venue's 200 messages a minute
exclude sendTx (docs). The sender still charges it to the account's request throttle, as on HTTP: the sim
counts it against the account's sendTx limit, as the venue's docs count sendTx per account [inferred for the
socket].
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from hedge_strategy.exchange.parsing import WsError

if TYPE_CHECKING:
    from hedge_strategy.exchange.ws_link import Link
    from hedge_strategy.exchange.ws_session import Session

SENDTX = "jsonapi/sendtx"
TX_ANSWER_TYPES = frozenset({SENDTX, "jsonapi/sendtxbatch"})


class TxNotSent(Exception):
    """Nothing was written to the socket: the transaction may be sent another way."""


class TxNoAnswer(Exception):
    """The transaction was (or may have been) written, and no answer came: the order may exist."""


@dataclass
class _Waiting:
    request_id: str
    session: Session
    answer: asyncio.Future[dict[str, Any]]
    given_up: bool = False


class WsTransactions:
    """Sends transactions on a link's current connection and pairs the answers with them."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._waiting: dict[int, deque[_Waiting]] = {}  # connection serial -> requests in sending order
        self._ids = itertools.count(time.time_ns() // 1000)  # unique across reconnects and restarts
        self.sent = 0
        self.unanswered = 0  # given up on: timed out, cancelled, or their connection ended
        self._timed_out_at: dict[int, float] = {}  # connection serial -> when a send on it last timed out

    def _session(self) -> Session | None:
        """The connection to send on: the link's current one, up and writable; None when there is none."""
        session = self._link.current
        return session if self._link.up and session is not None and session.writable else None

    def _silent_s(self) -> float | None:
        """How long the link has been silent, when that is past the point where the session probes it with
        a ping (half the silence limit): a live server has answered by then, so the connection may be dead
        without having closed, and a transaction written to it may be lost (a cancel that never goes out
        until the heartbeat ends the connection). None while the link is heard."""
        quiet = self._link.seconds_since_heard()
        return quiet if quiet > self._link.silence_s / 2 else None

    def _unheard_since_timeout(self, session: Session) -> float | None:
        """Seconds since a send on `session` timed out, when nothing was heard on the link since: the venue
        answers a transaction within milliseconds, so the connection is likely dead without having closed
        (a silence shorter than the session's probe point), and the next send goes over HTTP instead of
        losing another `send_timeout_s` (chaos `ws_silence`: B's second IOC waited 2 s more for nothing)."""
        at = self._timed_out_at.get(session.serial)
        if at is None:
            return None
        since = time.monotonic() - at
        return since if self._link.seconds_since_heard() >= since else None

    async def send_tx(self, tx_type: int, tx_info: str, timeout_s: float) -> dict[str, Any]:
        """Send one signed transaction and wait for its answer (module docstring: the three endings)."""
        session = self._session()
        if session is None:
            raise TxNotSent("the WebSocket is down")
        silent_s = self._silent_s()
        if silent_s is not None:
            raise TxNotSent(f"the WebSocket has sent nothing for {silent_s:.1f} s")
        unheard_s = self._unheard_since_timeout(session)
        if unheard_s is not None:
            raise TxNotSent(f"a transaction on this connection went unanswered {unheard_s:.1f} s ago and "
                            "nothing was heard on it since")
        try:
            decoded = json.loads(tx_info)  # sent as an object (module docstring)
        except ValueError as exc:
            raise TxNotSent(f"the signed transaction is not JSON ({exc})") from None
        request_id = str(next(self._ids))
        frame = {"type": SENDTX, "data": {"tx_type": tx_type, "tx_info": decoded, "id": request_id}}
        waiting = _Waiting(request_id, session, asyncio.get_running_loop().create_future())
        # Registered before the write: the answer can come while the write still waits for the socket.
        self._waiting.setdefault(session.serial, deque()).append(waiting)
        try:
            try:
                await session.send_unmetered(json.dumps(frame, separators=(",", ":")))
            except Exception as exc:  # the frame may be partly written: the venue may have it
                raise TxNoAnswer(f"the connection failed while sending ({exc!r})") from exc
            self.sent += 1
            try:
                async with asyncio.timeout(timeout_s):
                    return await asyncio.shield(waiting.answer)
            except TimeoutError:
                self._timed_out_at[session.serial] = time.monotonic()
                raise TxNoAnswer(f"no answer within {timeout_s:g} s") from None
        finally:
            if not waiting.answer.done() or waiting.answer.exception() is not None:
                waiting.given_up = True
                self.unanswered += 1

    def answer(self, session: Session, frame: dict[str, Any]) -> None:
        """An answer frame read on `session`: to the request it answers (module docstring: matching)."""
        queue = self._waiting.get(session.serial)
        request_id = frame.get("id")
        waiting = None
        if queue:
            if request_id is None:
                waiting = queue[0]
            else:
                waiting = next((w for w in queue if w.request_id == str(request_id)), None)
        if waiting is None or queue is None:
            logger.warning("ws {}: a transaction answer for no request of ours (id {}, code {}); ignored",
                           session.name, request_id, frame.get("code"))
            return
        queue.remove(waiting)
        if waiting.given_up:
            logger.info("ws {}: late answer to a transaction given up on (code {} {}); its order is resolved "
                        "by client order index", session.name, frame.get("code"), frame.get("message", ""))
            return
        if not waiting.answer.done():
            waiting.answer.set_result(frame)

    def take_refusal(self, session: Session, frame: dict[str, Any], error: WsError) -> bool:
        """An error frame read on `session`: True when its `id` is a request waiting there (one given up on
        included, so a late refusal keeps its place), which then gets it as a flat refusal (module
        docstring)."""
        request_id = frame.get("id")
        queue = self._waiting.get(session.serial)
        if request_id is None or not queue or all(w.request_id != str(request_id) for w in queue):
            return False
        code = error.code if error.code is not None else frame.get("code")
        self.answer(session, {"type": SENDTX, "code": code, "message": error.message, "id": request_id})
        return True

    def connection_ended(self, session: Session, why: str) -> None:
        """`session` will read nothing more: every request still waiting on it gets no answer."""
        self._timed_out_at.pop(session.serial, None)
        for waiting in self._waiting.pop(session.serial, ()):
            if not waiting.answer.done():
                waiting.answer.set_exception(TxNoAnswer(f"the connection ended before the answer ({why})"))
                waiting.answer.exception()  # retrieved: a request nobody awaits any more logs nothing

    def close(self) -> None:
        for serial in list(self._waiting):
            for waiting in self._waiting.pop(serial):
                if not waiting.answer.done():
                    waiting.answer.set_exception(TxNoAnswer("the stream was closed before the answer"))
                    waiting.answer.exception()

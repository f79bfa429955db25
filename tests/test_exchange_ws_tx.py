"""Unit tests: pairing `jsonapi/sendtx` answers with their requests (ws_tx.py); the sender on the socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from websockets.protocol import State

from hedge_strategy.exchange.parsing import ws_error
from hedge_strategy.exchange.sender import SendStatus, TxSender, classify_answer
from hedge_strategy.exchange.stream import AccountStream
from hedge_strategy.exchange.throttle import RequestThrottle
from hedge_strategy.exchange.ws_link import Link
from hedge_strategy.exchange.ws_session import Session
from hedge_strategy.exchange.ws_tx import TxNoAnswer, TxNotSent, WsTransactions
from tests.fixtures import wire


class FakeSession:
    def __init__(self, serial: int = 1) -> None:
        self.serial = serial
        self.name = f"account #{serial}"
        self.writable = True
        self.frames: list[dict[str, Any]] = []
        self.written = asyncio.Event()

    async def send_unmetered(self, text: str) -> None:
        self.frames.append(json.loads(text))
        self.written.set()

    def last_id(self) -> str:
        return str(self.frames[-1]["data"]["id"])


class FakeLink:
    def __init__(self, session: FakeSession | None) -> None:
        self.current = session
        self.up = session is not None
        self.silence_s = 20.0
        self.quiet_s = 0.0  # since the link last heard a frame

    def seconds_since_heard(self) -> float:
        return self.quiet_s


def channel(session: FakeSession | None) -> WsTransactions:
    return WsTransactions(cast(Link, FakeLink(session)))


async def sent(session: FakeSession, transactions: WsTransactions, timeout_s: float = 5.0
               ) -> asyncio.Future[dict[str, Any]]:
    """Start a send and return once its frame is written."""
    session.written.clear()
    task = asyncio.ensure_future(transactions.send_tx(14, '{"Nonce":1}', timeout_s))
    await session.written.wait()
    return task


async def test_the_frame_carries_the_transaction_and_an_id_and_the_answer_with_it_returns() -> None:
    session = FakeSession()
    transactions = channel(session)
    pending = await sent(session, transactions)
    frame = session.frames[0]
    assert frame["type"] == "jsonapi/sendtx"
    # tx_info goes as a JSON object, the form Lighter's example and ccxt send and the captured ack answered
    assert frame["data"]["tx_type"] == 14 and frame["data"]["tx_info"] == {"Nonce": 1}
    answer = {"code": 200, "id": session.last_id(), "tx_hash": "ab", "type": "jsonapi/sendtx"}
    transactions.answer(cast(Session, session), answer)
    assert await pending == answer
    assert transactions.sent == 1 and transactions.unanswered == 0


async def test_answers_without_an_id_go_to_the_oldest_request_waiting() -> None:
    session = FakeSession()
    transactions = channel(session)
    first = await sent(session, transactions)
    second = await sent(session, transactions)
    for record in wire.records(kind="ws", name="sendtx"):  # the corpus's refusals carry no id
        if "id" not in record.payload:
            transactions.answer(cast(Session, session), dict(record.payload))
            break
    assert (await first)["code"] != 200 and not second.done()
    transactions.answer(cast(Session, session), {"code": 200, "id": session.last_id(), "type": "x"})
    assert (await second)["code"] == 200


async def test_a_late_answer_is_never_taken_for_a_newer_request() -> None:
    session = FakeSession()
    transactions = channel(session)
    timed_out = await sent(session, transactions, timeout_s=0.05)
    with pytest.raises(TxNoAnswer):
        await timed_out
    assert transactions.unanswered == 1
    newer = await sent(session, transactions)
    transactions.answer(cast(Session, session), {"code": 200, "type": "jsonapi/sendtx"})  # the late one's
    assert not newer.done()
    transactions.answer(cast(Session, session), {"code": 21104, "message": "invalid nonce"})
    assert (await newer)["code"] == 21104


async def test_no_connection_sends_nothing_and_an_ended_one_leaves_no_answer() -> None:
    with pytest.raises(TxNotSent):
        await channel(None).send_tx(14, "{}", 1.0)
    closing = FakeSession()
    closing.writable = False
    with pytest.raises(TxNotSent):
        await channel(closing).send_tx(14, "{}", 1.0)
    session = FakeSession()
    transactions = channel(session)
    pending = await sent(session, transactions)
    transactions.answer(cast(Session, FakeSession(serial=2)), {"code": 200})  # another connection's: not ours
    assert not pending.done()
    transactions.connection_ended(cast(Session, session), "connection closed")
    with pytest.raises(TxNoAnswer, match="connection ended"):
        await pending


async def test_a_connection_silent_past_its_probe_sends_nothing() -> None:
    # Up and writable, but nothing heard for more than half the silence limit: the session's own ping went
    # unanswered, so the connection may be dead without having closed. The sender posts over HTTP instead.
    session = FakeSession()
    transactions = channel(session)
    link = cast(FakeLink, transactions._link)
    link.quiet_s = link.silence_s / 2 + 0.5
    with pytest.raises(TxNotSent, match=r"sent nothing for 10\.5 s"):
        await transactions.send_tx(14, "{}", 1.0)
    assert session.frames == []
    link.quiet_s = link.silence_s / 2 - 0.5  # a quiet market, the probe not yet due: the socket it is
    pending = await sent(session, transactions)
    transactions.answer(cast(Session, session), {"code": 200, "id": session.last_id()})
    assert (await pending)["code"] == 200


async def test_after_a_send_timed_out_the_next_goes_over_http_until_the_connection_speaks() -> None:
    # The venue answers a transaction in milliseconds: one left unanswered on a connection that has said
    # nothing since is likely dead without having closed (a silence shorter than the probe point). The next
    # send raises TxNotSent (the sender posts it over HTTP) instead of waiting out another timeout.
    session = FakeSession()
    transactions = channel(session)
    link = cast(FakeLink, transactions._link)
    link.quiet_s = 1.0
    timed_out = await sent(session, transactions, timeout_s=0.05)
    with pytest.raises(TxNoAnswer, match="no answer"):
        await timed_out
    link.quiet_s = 5.0  # nothing heard since (longer ago than the timeout), short of the probe point (10 s)
    with pytest.raises(TxNotSent, match=r"went unanswered .* nothing was heard on it since"):
        await transactions.send_tx(14, "{}", 1.0)
    assert len(session.frames) == 1  # the second was never written
    link.quiet_s = 0.0  # a frame came: the connection is alive again, the socket it is
    pending = await sent(session, transactions)
    transactions.answer(cast(Session, session), {"code": 200, "id": session.last_id()})
    assert (await pending)["code"] == 200


class OpenSocket:
    """What a `Session` writes to: always open; remembers the frames sent."""

    def __init__(self) -> None:
        self.protocol = type("Protocol", (), {"state": State.OPEN})()
        self.frames: list[dict[str, Any]] = []
        self.written = asyncio.Event()

    async def send(self, text: str) -> None:
        self.frames.append(json.loads(text))
        self.written.set()


async def no_token(fresh: bool) -> tuple[str, float]:
    raise AssertionError("no token needed")


def account_session() -> tuple[AccountStream, Session, OpenSocket]:
    """The account stream's real link and a session of it on an open socket, as if connected."""
    stream = AccountStream(ws_url="ws://unused", account_index=1, book_market_ids=[], token_source=no_token,
                           emit=lambda event: None, heartbeat_timeout_s=20.0, backoff_min_s=1.0,
                           backoff_max_s=2.0, token_refresh_margin_s=60.0)
    link = stream._account
    session = Session(link, 1)
    socket = OpenSocket()
    session.ws = cast(Any, socket)
    link.current, link.up = session, True
    return stream, session, socket


async def test_an_error_frame_carrying_a_waiting_transactions_id_is_its_refusal() -> None:
    # The nested refusal ccxt expects ([inferred], none captured): answered at once and classified like the
    # flat form, so a refused nonce is resynced now instead of becoming UNKNOWN after the send timeout.
    stream, session, socket = account_session()
    pending = asyncio.ensure_future(stream.transactions.send_tx(14, '{"Nonce":1}', 5.0))
    await socket.written.wait()
    request_id = socket.frames[-1]["data"]["id"]
    await session._dispatch({"error": {"code": 21104, "message": "invalid nonce"}, "id": request_id})
    result = classify_answer(await pending, "signed")
    assert result.status is SendStatus.REJECTED and result.code == 21104 and result.message == "invalid nonce"
    assert stream.transactions.unanswered == 0


async def test_an_error_frame_with_no_id_or_another_id_is_no_transactions_answer() -> None:
    stream, session, socket = account_session()
    pending = asyncio.ensure_future(stream.transactions.send_tx(14, '{"Nonce":1}', 5.0))
    await socket.written.wait()
    request_id = socket.frames[-1]["data"]["id"]
    await session._dispatch({"error": {"code": 30009, "message": "Too Many Websocket Messages!"}})
    await session._dispatch({"error": {"code": 21104, "message": "invalid nonce"}, "id": "someone else's"})
    assert not pending.done()
    await session._dispatch({"type": "jsonapi/sendtx", "code": 21104, "message": "invalid nonce",
                             "id": request_id})  # the flat form still answers
    assert (await pending)["code"] == 21104


async def test_a_late_nested_refusal_keeps_its_place_and_never_answers_a_newer_request() -> None:
    session = FakeSession()
    transactions = channel(session)
    timed_out = await sent(session, transactions, timeout_s=0.05)
    late_id = session.last_id()
    with pytest.raises(TxNoAnswer):
        await timed_out
    newer = await sent(session, transactions)
    frame = {"error": {"code": 21104, "message": "invalid nonce"}, "id": late_id}
    error = ws_error(frame)
    assert error is not None and transactions.take_refusal(cast(Session, session), frame, error)
    assert not newer.done()
    transactions.answer(cast(Session, session), {"code": 200, "type": "jsonapi/sendtx"})
    assert (await newer)["code"] == 200


def test_every_corpus_answer_classifies_like_an_http_answer() -> None:
    answers = wire.records(kind="ws", name="sendtx")
    assert answers
    for record in answers:
        result = classify_answer(dict(record.payload), "signed")
        if record.payload["code"] == 200:
            assert result.status is SendStatus.ACCEPTED and result.tx_hash == record.payload["tx_hash"]
        else:
            assert result.status is SendStatus.REJECTED and result.code == record.payload["code"]


class ScriptedSocket:
    """The sender's view of the socket: answers in order, then raises what it is given."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.sent = 0

    async def send_tx(self, tx_type: int, tx_info: str, timeout_s: float) -> dict[str, Any]:
        self.sent += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class NoHttp:
    async def send_tx(self, **_: Any) -> Any:
        raise AssertionError("posted over HTTP")


def sender(socket: ScriptedSocket) -> TxSender:
    tx_sender = TxSender(account_index=1, api_key_index=3, tx_api=cast(Any, NoHttp()),
                         throttle=RequestThrottle("premium"), request_timeout_s=1.0)
    tx_sender.use_websocket(cast(WsTransactions, socket))
    tx_sender._next_nonce = 7
    return tx_sender


def signed(nonce: int) -> tuple[int, str, str, None]:
    return 14, json.dumps({"Nonce": nonce}), f"hash{nonce}", None


async def test_the_sender_waits_out_a_rate_limit_answer_and_resends_the_same_transaction() -> None:
    socket = ScriptedSocket({"code": 23000, "message": "too many requests"}, {"code": 200, "tx_hash": "h"})
    tx_sender = sender(socket)
    result = await tx_sender.send("create", signed)
    assert result.accepted and socket.sent == 2
    assert tx_sender.next_nonce == 8 and tx_sender.resyncs == 0


async def test_the_sender_keeps_its_three_outcomes_on_the_socket() -> None:
    socket = ScriptedSocket({"code": 21130, "message": "not enough margin"}, TxNoAnswer("no answer"))
    tx_sender = sender(socket)
    refused = await tx_sender.send("create", signed)
    assert refused.status is SendStatus.REJECTED and not refused.worth_retrying
    assert tx_sender.next_nonce == 7  # refused: the nonce was not consumed
    lost = await tx_sender.send("create", signed)
    assert lost.status is SendStatus.UNKNOWN and lost.tx_hash == "hash7"
    assert tx_sender.next_nonce is None  # resynced from the exchange before the next send


class Nonces:
    """The exchange's `nextNonce` answers, in order (the sender resyncs from it after an ambiguous send)."""

    def __init__(self, *nonces: int) -> None:
        self.nonces = list(nonces)

    async def next_nonce(self, **_: Any) -> dict[str, int]:
        return {"nonce": self.nonces.pop(0)}

    async def send_tx(self, **_: Any) -> Any:
        raise AssertionError("posted over HTTP")


def resyncing_sender(socket: ScriptedSocket, *nonces: int) -> TxSender:
    tx_sender = TxSender(account_index=1, api_key_index=3, tx_api=cast(Any, Nonces(*nonces)),
                         throttle=RequestThrottle("premium"), request_timeout_s=1.0)
    tx_sender.use_websocket(cast(WsTransactions, socket))
    tx_sender._next_nonce = 7
    return tx_sender


INVALID_NONCE = {"code": 21104, "message": "invalid nonce"}


async def test_a_nonce_an_unanswered_send_carried_is_never_retried_on_the_next_one() -> None:
    # Nonce 7 goes unanswered; the venue has not used it at the resync, so the next send takes 7 too (at most
    # one of the two can execute). Refused "invalid nonce": the unanswered one executed after all, and a
    # retry on nonce 8 could put both live, so the refusal is final for this send.
    socket = ScriptedSocket(TxNoAnswer("no answer"), INVALID_NONCE)
    tx_sender = resyncing_sender(socket, 7)
    assert (await tx_sender.send("create", signed)).status is SendStatus.UNKNOWN
    late = await tx_sender.send("create again", signed)
    assert late.status is SendStatus.REJECTED and not late.worth_retrying
    assert "executed after all" in late.message and socket.sent == 2
    assert tx_sender.next_nonce is None


async def test_an_invalid_nonce_unrelated_to_an_unanswered_send_is_resynced_and_retried() -> None:
    socket = ScriptedSocket(TxNoAnswer("no answer"), INVALID_NONCE, {"code": 200, "tx_hash": "h"})
    tx_sender = resyncing_sender(socket, 8, 9)  # the venue used nonce 7: the unanswered send is settled
    await tx_sender.send("create", signed)
    assert (await tx_sender.send("create again", signed)).accepted and socket.sent == 3
    assert tx_sender.next_nonce == 10


async def test_after_an_unanswered_send_the_nonce_is_read_at_once_not_at_the_next_send() -> None:
    """The next send (B's hedge) finds the nonce known: no REST read on its path, which a burst of 429s
    would hold up for as long as it lasts (chaos `http_429_burst` after `blackhole_sendtx`)."""
    socket = ScriptedSocket(TxNoAnswer("no answer"), {"code": 200, "tx_hash": "h"})
    tx_sender = resyncing_sender(socket, 8)  # one answer only: a second read would fail the send
    assert (await tx_sender.send("create", signed)).status is SendStatus.UNKNOWN
    assert tx_sender._resync is not None
    await tx_sender._resync  # the background read, started as the send left the nonce unknown
    assert tx_sender.next_nonce == 8 and tx_sender.resyncs == 1
    assert (await tx_sender.send("create again", signed)).accepted
    assert tx_sender.next_nonce == 9 and socket.sent == 2

"""The stream against a scripted WebSocket server: book continuity, malformed frames, pings, silence, tokens.

The server is real (websockets on 127.0.0.1, tests/fixtures/ws_script.py) and plays exact frames the simulator
cannot be made to send; the code under test is the real AccountStream, which keeps its books and its account
channels on two connections.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from hedge_strategy.exchange import ws_session
from hedge_strategy.exchange.adapter import IOC_BOOK_HEARD_WITHIN_S
from hedge_strategy.exchange.events import OrderUpdate, StreamDown, StreamUp, TopOfBook
from hedge_strategy.exchange.stream import PRIVATE_CHANNELS
from tests.fixtures.ws_script import ACCOUNT, WAIT_S, Scripted, account_snapshot, book_frame, next_of

ORDER = {"order_index": 281474976710700, "client_order_index": 11000000000001, "market_index": 1,
         "owner_account_index": ACCOUNT, "initial_base_amount": "0.00020", "price": "100.0",
         "remaining_base_amount": "0.00020", "filled_base_amount": "0.00000", "is_ask": False,
         "status": "open", "updated_at": 1}


async def top_with_bid(kit: Scripted, bid: str) -> TopOfBook:
    while True:
        top: TopOfBook = await next_of(kit.events, TopOfBook)
        if top.best_bid == Decimal(bid):
            return top


def requests(frames: list[dict[str, object]]) -> list[tuple[object, object]]:
    """(type, channel) of the subscribe / unsubscribe frames a client sent."""
    return [(f["type"], f["channel"]) for f in frames if f["type"] in ("subscribe", "unsubscribe")]


async def test_a_nonce_gap_resyncs_the_book_and_spares_the_account_connection(scripted: Scripted) -> None:
    stream = scripted.stream()
    account = await scripted.script.open_account()
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)
    books = await scripted.script.next_books()
    await books.expect(type="subscribe", channel="order_book/1")
    await books.send(book_frame("subscribed", [("100.0", "1"), ("99.0", "2")], [("101.0", "1")],
                                nonce=500, begin_nonce=0, offset=7))
    top = await next_of(scripted.events, TopOfBook)
    assert (top.best_bid, top.best_ask) == (Decimal("100.0"), Decimal("101.0"))

    # begin_nonce == the previous nonce: the chain holds, though the server's offset jumps by 12.
    await books.send(book_frame("update", [("100.0", "0"), ("99.5", "3")], [], nonce=530, begin_nonce=500,
                                offset=19))
    await top_with_bid(scripted, "99.5")
    assert stream.fresh_book(1) is not None

    await books.send(book_frame("update", [("98.0", "1")], [], nonce=560, begin_nonce=540, offset=20))  # gap
    await books.expect(type="unsubscribe", channel="order_book/1")
    await books.expect(type="subscribe", channel="order_book/1")
    assert stream.fresh_book(1) is None  # nobody prices off it until the new snapshot
    # What still arrives from the old subscription changes nothing and costs no message.
    await books.send(book_frame("update", [("96.0", "1")], [], nonce=590, begin_nonce=560, offset=21))
    await books.send(book_frame("subscribed", [("97.0", "1")], [("101.0", "1")], nonce=9000, begin_nonce=0,
                                offset=3))  # a new subscription: the server's offset starts elsewhere
    await top_with_bid(scripted, "97.0")
    fresh = stream.fresh_book(1)
    assert fresh is not None and fresh.seq is not None and fresh.seq.nonce == 9000
    assert stream.book_resyncs == 1
    assert requests(books.frames) == [("subscribe", "order_book/1"), ("unsubscribe", "order_book/1"),
                                      ("subscribe", "order_book/1")]
    # The account connection never noticed.
    assert stream.up and not account.closed
    assert requests(account.frames) == [("subscribe", f"{name}/{ACCOUNT}") for name in PRIVATE_CHANNELS]


async def test_a_book_whose_link_went_quiet_is_fresh_for_a_maker_price_but_not_for_an_ioc(
        scripted: Scripted) -> None:
    stream = scripted.stream(heartbeat_s=30.0)  # a silence limit far beyond the IOC's
    await scripted.script.open_account()
    books = await scripted.script.next_books()
    await books.expect(type="subscribe", channel="order_book/1")
    await books.send(book_frame("subscribed", [("100.0", "1")], [("101.0", "1")], nonce=500, begin_nonce=0,
                                offset=7))
    await top_with_bid(scripted, "100.0")
    assert stream.fresh_book(1, IOC_BOOK_HEARD_WITHIN_S) is not None
    link = stream._book_link
    assert link is not None
    link.heard(time.monotonic() - IOC_BOOK_HEARD_WITHIN_S - 1)  # nothing heard since, well within the limit
    assert stream.fresh_book(1) is not None  # a post-only price: trusted until the silence limit
    assert stream.fresh_book(1, IOC_BOOK_HEARD_WITHIN_S) is None  # an IOC's touch: read over REST instead


async def test_older_offset_form_and_malformed_frames(scripted: Scripted) -> None:
    stream = scripted.stream()
    account = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)
    books = await scripted.script.next_books()
    await books.expect(type="subscribe", channel="order_book/1")
    # The pre-Dec-2025 form (no nonces): offset +1 per update.
    await books.send(book_frame("subscribed", [("100.0", "1")], [("101.0", "1")], offset=10))
    await books.send(book_frame("update", [("100.0", "0"), ("99.5", "3")], [], offset=11))
    await top_with_bid(scripted, "99.5")

    no_book = '{"type": "update/order_book", "channel": "order_book:1"}'
    for garbage in ("not json", "[1, 2]", '{"type": 3}', '{"error": "not an object"}', no_book):
        await books.send(garbage)
    await books.expect(type="unsubscribe", channel="order_book/1")  # the malformed book frame: resync
    await books.expect(type="subscribe", channel="order_book/1")
    bad_order = dict(ORDER, price="NaN-ish", client_order_index=5)
    await account.send({"type": "update/account_all_orders", "channel": f"account_all_orders:{ACCOUNT}",
                        "orders": {"1": [bad_order, ORDER], "x": [ORDER]}})
    update = await next_of(scripted.events, OrderUpdate)  # the bad order was skipped alone
    assert update.client_order_index == ORDER["client_order_index"]
    await account.send({"type": "ping"})
    await account.expect(type="pong")

    await books.send(book_frame("subscribed", [("100.0", "1")], [("101.0", "1")], offset=40))
    await books.send(book_frame("update", [("98.0", "1")], [], offset=42))  # 41 is missing: a gap
    await books.expect(type="unsubscribe", channel="order_book/1")
    assert stream.fresh_book(1) is None
    assert stream.up and not account.closed


async def test_a_refused_token_is_replaced_at_once_on_the_same_connection(scripted: Scripted) -> None:
    stream = scripted.stream(books=(), heartbeat_s=30.0)  # a wait for silence would outlast the test
    account = await scripted.script.next_account()
    # Refused at subscribe time, in the typed form public clients parse (not captured; it names the channel):
    # a new token, and that channel again.
    first = await account.expect(type="subscribe", channel=f"account_all_trades/{ACCOUNT}")
    await account.send({"type": "error", "channel": f"account_all_trades/{ACCOUNT}", "code": 20013,
                        "message": f"invalid auth: expired token: account_all_trades:{ACCOUNT}"})
    again = await account.expect(type="subscribe", channel=f"account_all_trades/{ACCOUNT}")
    assert again["auth"] != first["auth"] and scripted.token_requests == [False, True]
    for name in PRIVATE_CHANNELS:
        await account.send(account_snapshot(name))
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)

    # Refused later on a live subscription, in the venue's form (captured text): the stream is down until
    # the channel is back, and comes back as a reconnect so that reconciliation looks for missed fills.
    await account.send({"error": {"code": 20013,
                                  "message": f"invalid auth: expired token: account_all_orders:{ACCOUNT}"}})
    down = await next_of(scripted.events, StreamDown)
    assert "auth" in down.reason
    resent = await account.expect(type="subscribe", channel=f"account_all_orders/{ACCOUNT}")
    assert resent["auth"] == f"token{len(scripted.token_requests)}" and scripted.token_requests[-1] is True
    await account.send({"type": "subscribed/account_all_orders", "channel": f"account_all_orders:{ACCOUNT}",
                        "orders": {}})
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=True)
    assert not account.closed and scripted.script.accounts.empty()  # no new connection was needed
    assert stream.connects == 2


async def test_no_greeting_costs_no_heartbeat(scripted: Scripted) -> None:
    scripted.script.greet = False
    scripted.stream(books=(), heartbeat_s=30.0)
    account = await scripted.script.next_account()  # it subscribed without a 'connected' frame
    await account.confirm_account()
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)


async def test_a_subscription_never_answered_is_sent_again_long_before_a_heartbeat(
        scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    # A reconnect into a server that is still silent: its greeting came, the snapshots do not.
    monkeypatch.setattr(ws_session, "SUBSCRIBE_CONFIRM_S", 1.0)  # the shipped 5 s, made short for the test
    scripted.stream(books=(), heartbeat_s=30.0)
    account = await scripted.script.next_account()
    channel = f"account_all_orders/{ACCOUNT}"
    await account.expect(type="subscribe", channel=channel)
    await account.expect(type="subscribe", channel=channel)  # asked again after 1 s, not after 30
    for name in PRIVATE_CHANNELS:  # the server speaks again: the stream is up at once
        await account.send({"type": f"subscribed/{name}", "channel": f"{name}:{ACCOUNT}",
                            name.removeprefix("account_all_"): {}})
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)
    assert not account.closed


async def test_a_connection_known_stale_is_left_and_the_link_reconnects_at_once(scripted: Scripted) -> None:
    stream = scripted.stream(books=(), heartbeat_s=30.0)
    account = await scripted.script.open_account()
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=False)
    # REST showed what this connection never delivered: it is left now, not after a heartbeat (30 s).
    assert stream.restart_account_link("it missed a fill")
    assert (await next_of(scripted.events, StreamDown)).reason == "it missed a fill"
    again = await scripted.script.open_account()
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=True)
    assert again.serial != account.serial and account.closed


async def test_a_missed_ping_is_a_dead_connection(scripted: Scripted) -> None:
    stream = scripted.stream(books=())
    account = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)
    await account.send({"type": "ping"})
    await account.expect(type="pong")
    # Then nothing: the client pings once to prove the link, hears nothing, and starts over.
    await account.expect(type="ping")
    down = await next_of(scripted.events, StreamDown)
    assert "no frame for" in down.reason
    again = await scripted.script.open_account()
    assert await next_of(scripted.events, StreamUp) == StreamUp(ACCOUNT, reconnect=True)
    assert again.serial != account.serial and stream.up


async def test_subscriptions_never_confirmed_means_reconnect(scripted: Scripted) -> None:
    stream = scripted.stream(books=())
    account = await scripted.script.next_account()
    # The server says nothing more; our probe ping is the only traffic, and no StreamUp is ever emitted.
    await account.expect(type="ping")
    await scripted.script.next_account()  # the client gave up and came back
    assert scripted.events.empty() and not stream.up


async def test_a_probe_of_a_quiet_connection_is_a_ping_and_its_pong_is_the_answer(scripted: Scripted) -> None:
    # Heartbeat far away: the client's own keep-alive ping (half of it) is not what the server sees here.
    stream = scripted.stream(books=(), heartbeat_s=30.0)
    account = await scripted.script.open_account()
    await next_of(scripted.events, StreamUp)

    probe = asyncio.create_task(stream.probe_account_link(timeout_s=WAIT_S))
    await account.expect(type="ping")
    assert not probe.done()  # waits for a frame
    await account.send({"type": "pong"})
    assert await probe  # alive: a quiet connection, not a dead one

    # A connection that says nothing back (dead without having closed) leaves the probe unanswered.
    assert not await stream.probe_account_link(timeout_s=0.2)
    await account.expect(type="ping")
    assert stream.up  # a probe only asks: the heartbeat still decides when a connection is dead

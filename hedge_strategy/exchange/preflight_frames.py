"""What `hedgectl preflight` reads off each WebSocket frame: its corpus name, whether the adapter's parsers
accept every item in it (strictly: where the stream logs and skips a bad item, this reports it), whether an
order book update continues the book (the adapter's own rule, `LocalBook.apply_delta`: `begin_nonce` equals
the previous frame's `nonce`; frames without nonces, `offset` + 1), and the venue's timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hedge_strategy.exchange import parsing
from hedge_strategy.exchange.book import BookSeq, DeltaResult, LocalBook, parse_levels, parse_seq
from hedge_strategy.exchange.preflight_reads import timestamp_ms
from hedge_strategy.exchange.stream import PRIVATE_CHANNELS, TX_CHANNEL
from hedge_strategy.exchange.tx_outcomes import tx_outcome

CONTROL = "control"  # the corpus name of frames that belong to no channel: connected, ping, pong, error...
BOOK = "order_book"
TRADE = "trade"  # the public trade feed B follows (`stream.py`)
SENDTX = "sendtx"  # answers to `jsonapi/sendtx` (preflight sends none; named as the corpus names them)
KEPT_EXAMPLES = 5  # examples kept per kind of problem; the counts are complete


def record_name(frame: Any) -> str:
    """The corpus name of a frame: `order_book`, `account_all_orders`, ... for a channel's snapshot or
    update, `sendtx` for a transaction's answer, `control` for the rest (connected, ping, pong, unsubscribed,
    shutdown, every error frame)."""
    kind = frame.get("type") if isinstance(frame, dict) else None
    if isinstance(kind, str):
        stage, _, family = kind.partition("/")
        if stage in ("subscribed", "update") and family:
            return family
        if stage == "jsonapi":
            return SENDTX
    return CONTROL


def frame_problems(frame: Mapping[str, Any], account_index: int) -> list[str]:
    """Why the adapter could not use (part of) a channel frame; empty when every item parses."""
    family = record_name(frame)
    try:
        if family == BOOK:
            _check_book(frame)
            return []
        if family == "account_all_orders":
            items = _items(frame, "orders")
            return _problems(items, lambda raw, _m: parsing.order_update(raw, account_index), "order")
        if family == "account_all_trades":
            items = _items(frame, "trades")
            return _problems(items, lambda raw, _m: parsing.fills_for_account(raw, account_index), "trade")
        if family == "account_all_positions":
            items = _items(frame, "positions")
            return _problems(items, lambda raw, m: parsing.position_snapshot(raw, account_index, m),
                             "position")
        if family == TRADE:
            trades = _list(frame, "trades") + _list(frame, "liquidation_trades")
            return _problems([(None, item) for item in trades], lambda raw, _m: parsing.public_trade(raw),
                             "public trade")
        if family == TX_CHANNEL:
            return _problems(_items(frame, "txs"), lambda raw, _m: tx_outcome(raw, account_index),
                             "transaction")
    except parsing.PARSE_ERRORS as exc:
        return [f"{family}: {type(exc).__name__}: {exc}"]
    return []


def _check_book(frame: Mapping[str, Any]) -> None:
    # What the adapter's book link reads: the sequence fields and the levels.
    body = frame["order_book"]
    if not isinstance(body, Mapping):
        raise TypeError("order_book is not an object")
    parse_seq(frame, body)
    parse_levels(body.get("bids"))
    parse_levels(body.get("asks"))


def _list(frame: Mapping[str, Any], key: str) -> list[Any]:
    """A plain list of a frame (the trade channel's `trades`), strictly: absent is empty."""
    payload = frame.get(key)
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise TypeError(f"{key} is not a list")
    return payload


def _items(frame: Mapping[str, Any], key: str) -> list[tuple[int | None, Any]]:
    """(market id, item) of an account channel's `{"<market_id>": [item, ...] | item}` map, strictly."""
    payload = frame.get(key)
    if payload is None:
        return []
    if isinstance(payload, list):
        return [(None, item) for item in payload]
    if not isinstance(payload, Mapping):
        raise TypeError(f"{key} is neither a map nor a list")
    items: list[tuple[int | None, Any]] = []
    for market, value in payload.items():
        market_id = parsing.to_int(market)  # ValueError for a non-numeric market key
        items.extend((market_id, item) for item in (value if isinstance(value, list) else [value]))
    return items


def _problems(items: list[tuple[int | None, Any]], parse: Callable[[Any, int | None], object],
              what: str) -> list[str]:
    problems: list[str] = []
    for market_id, item in items:
        try:
            parse(item, market_id)
        except parsing.PARSE_ERRORS as exc:
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
    return problems


class BookContinuity:
    """The adapter's continuity check of one market's book (`LocalBook`), counting breaks where the stream
    would resync; after a break it goes on checking from the update that broke the chain."""

    def __init__(self, market_id: int) -> None:
        self._book = LocalBook(market_id)
        self.updates = 0
        self.breaks = 0
        self.examples: list[str] = []
        self.rule: str | None = None  # "nonce" or "offset": how the updates were checked

    def see(self, frame: Mapping[str, Any], snapshot: bool) -> None:
        """One order_book frame that parsed (`frame_problems` found nothing)."""
        seq = parse_seq(frame, frame["order_book"])
        if snapshot:
            self._book.apply_snapshot(seq, [], [], 0)  # the levels do not matter here, the sequence does
            return
        self.updates += 1
        self.rule = self.rule or ("nonce" if seq.begin_nonce is not None else "offset")
        have = self._book.seq
        if self._book.apply_delta(seq, [], [], 0) is DeltaResult.GAP:
            self.breaks += 1
            if len(self.examples) < KEPT_EXAMPLES:
                self.examples.append(_break_text(have, seq))
            self._book.apply_snapshot(seq, [], [], 0)


def _break_text(have: BookSeq | None, seq: BookSeq) -> str:
    if have is None:
        return "an update before any snapshot"
    if seq.begin_nonce is not None:
        return f"begin_nonce {seq.begin_nonce} after nonce {have.nonce}"
    return f"offset {seq.offset} after {have.offset} (no nonces: the offset + 1 rule)"


def frame_time_ms(frame: Mapping[str, Any]) -> int | None:
    """The venue's timestamp of a frame (top-level `timestamp`, ms in captures), when it has one."""
    value, _resolution = timestamp_ms(frame.get("timestamp"))
    return value


def book_channels(market_id: int, trades: bool = False) -> list[tuple[str, bool]]:
    """(subscribe name, needs auth) of the book link of a bot process, as `AccountStream` subscribes it;
    `trades`: with the public trade feed (B, `StrategyConfig.follows_trade_feed`)."""
    return [(f"{BOOK}/{market_id}", False), *([(f"{TRADE}/{market_id}", False)] if trades else [])]


def account_channels(account_index: int) -> list[tuple[str, bool]]:
    """(subscribe name, needs auth) of the account link of a bot process, as `AccountStream` subscribes it."""
    return [(f"{name}/{account_index}", True) for name in PRIVATE_CHANNELS]

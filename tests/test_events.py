"""Structured events (hedge_strategy.observe.events): the JSON-lines format, the file sink, the role stamp."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

from hedge_strategy.observe import BotEvent, EventKind, JsonLinesSink, RoleEvents


class Collected:
    def __init__(self) -> None:
        self.events: list[BotEvent] = []

    def emit(self, event: BotEvent) -> None:
        self.events.append(event)


def test_an_event_survives_its_json_line_with_its_types() -> None:
    event = BotEvent(kind=EventKind.HEDGE_DONE, role="b", ts_ms=1_735_732_800_123, request_ids=("7-1", "7-2"),
                     state="filled", side="sell", size=Decimal("0.0004"), filled=Decimal("0.00040"),
                     price=Decimal("95000.12345"), attempt=2, count=2, reduce_only=False, waited_s=0.5)
    line = event.to_json()
    assert "\n" not in line
    body = json.loads(line)
    assert body["size"] == "0.0004" and body["request_ids"] == ["7-1", "7-2"] and body["reduce_only"] is False
    assert "coid" not in body and "reason" not in body  # unset fields are left out
    again = BotEvent.from_json(line)
    assert again == event
    assert again.kind is EventKind.HEDGE_DONE and isinstance(again.price, Decimal)


def test_role_events_stamp_the_role_and_the_time() -> None:
    sink = Collected()
    RoleEvents(sink, "a").emit(EventKind.ORDER_PLACED, coid=5, side="buy", size=Decimal("0.0002"))
    (event,) = sink.events
    assert (event.kind, event.role, event.coid, event.side) == (EventKind.ORDER_PLACED, "a", 5, "buy")
    assert event.ts_ms > 1_700_000_000_000


def test_the_file_sink_appends_one_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(BotEvent(kind=EventKind.READY, role="b", ts_ms=1).to_json() + "\n")  # an earlier run
    sink = JsonLinesSink(path)
    events = RoleEvents(sink, "b")
    events.emit(EventKind.READY)
    events.emit(EventKind.STOPPED, reason="cleanly", count=3)
    sink.close()
    read = [BotEvent.from_json(line) for line in path.read_text().splitlines()]
    assert [(e.kind, e.count) for e in read] == [(EventKind.READY, None), (EventKind.READY, None),
                                                 (EventKind.STOPPED, 3)]


def test_a_sink_whose_reader_went_away_stops_quietly(tmp_path: Path, log_lines: list[str]) -> None:
    path = tmp_path / "events.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    sink = JsonLinesSink(path)
    events = RoleEvents(sink, "a")
    events.emit(EventKind.RESUMED)
    assert BotEvent.from_json(os.read(reader, 4096)).kind is EventKind.RESUMED
    os.close(reader)  # the follower is gone: the next write fails, and nothing is raised
    events.emit(EventKind.RESUMED)
    events.emit(EventKind.RESUMED)
    assert sum("no more events are written" in line for line in log_lines) == 1

"""A's outstanding hedge requests: the outbox. Recorded the moment a fill is seen, persisted, published by
the outbox's own task (`maker_bus`), kept until B's outcome is in.

The set lives in the journal's meta (`maker.outstanding`) and is written on every change, so a crash between
a fill and its hedge loses nothing: at start-up each request is to be published again (same request id: B
dedups). In memory each request also carries where it stands on the bus: to publish (and why: a fresh
request, the start-up, or Redis lost it), or published with its stream entry id, which A checks is still
there, and whether its next publish may be marked `first_publish` (`bus.first_publish`: in memory only, so
nothing loaded at start-up is marked).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterator

from loguru import logger

from hedge_strategy.bus import HedgeRequest
from hedge_strategy.execution import Journal
from hedge_strategy.untrusted_json import loads_untrusted

OUTSTANDING_META = "maker.outstanding"
FRESH = ""  # the reason of a request never published yet
START_UP = "start-up"
MARKED_MEMORY = 4096  # request ids this process marked, remembered so that none is ever marked twice


class OutstandingRequests:
    """Request id -> request, until B's outcome is in; every change is written to the journal's meta."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._requests: dict[str, HedgeRequest] = {}
        self._to_publish: dict[str, str] = {}  # request id -> why it is (again) to be published
        self._entries: dict[str, str] = {}  # request id -> its stream entry, once published
        self._first: dict[str, float] = {}  # request id -> when recorded (monotonic), while it may be marked
        self._marked: OrderedDict[str, None] = OrderedDict()  # ids this process marked, the newest last

    def __bool__(self) -> bool:
        return bool(self._requests)

    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._requests

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._requests))

    def __getitem__(self, request_id: str) -> HedgeRequest:
        return self._requests[request_id]

    @property
    def ids(self) -> list[str]:
        return list(self._requests)

    def remember(self, request: HedgeRequest, first: bool = False) -> None:
        """A new request: persisted, and to be published. `first`: nothing before this process can have
        published it (a fill of an order this process placed), so its first publish may be marked."""
        request_id = request.request_id
        if first and request_id not in self._requests and request_id not in self._marked:
            self._first[request_id] = time.monotonic()
        else:
            self._first.pop(request_id, None)
        self._requests[request_id] = request
        self._to_publish[request_id] = FRESH
        self._persist()

    def take_first(self, request_id: str, window_s: float) -> bool:
        """Whether this publish of `request_id` may be marked `first_publish`: only its first attempt, made
        within `window_s` of its recording. Asking uses the chance up: any later attempt is unmarked."""
        recorded = self._first.pop(request_id, None)
        if recorded is None or time.monotonic() - recorded > window_s:
            return False
        self._marked[request_id] = None
        while len(self._marked) > MARKED_MEMORY:
            self._marked.popitem(last=False)
        return True

    def forget(self, request_id: str) -> None:
        if self._requests.pop(request_id, None) is not None:
            self._to_publish.pop(request_id, None)
            self._entries.pop(request_id, None)
            self._first.pop(request_id, None)
            self._persist()

    def published(self, request_id: str, entry_id: str | None) -> None:
        """The request is on the bus as stream entry `entry_id` (None: nothing to publish, it is answered)."""
        if request_id in self._requests:
            self._to_publish.pop(request_id, None)
            if entry_id is not None:
                self._entries[request_id] = entry_id

    def publish_again(self, request_ids: list[str], reason: str) -> list[str]:
        """Mark requests to be published again (Redis lost them); returns those that are outstanding."""
        marked = [r for r in request_ids if r in self._requests]
        for request_id in marked:
            self._to_publish[request_id] = reason
            self._entries.pop(request_id, None)
            self._first.pop(request_id, None)
        return marked

    def to_publish(self) -> list[tuple[HedgeRequest, str]]:
        """(request, why) of each request still to be published, in the order they were recorded."""
        return [(self._requests[r], why) for r, why in self._to_publish.items() if r in self._requests]

    def entries(self) -> dict[str, str]:
        """Request id -> stream entry id of the published requests."""
        return dict(self._entries)

    def load(self) -> list[str]:
        """Read the set the last run left in the journal, each to be published again; the ids loaded (none
        when unreadable)."""
        raw = self._journal.get_meta(OUTSTANDING_META)
        if not raw:
            return []
        try:
            for request_id, text in loads_untrusted(raw, "outstanding requests").items():
                self._requests[request_id] = HedgeRequest.from_json(text)
                self._to_publish[request_id] = START_UP
        except (ValueError, AttributeError) as exc:
            logger.error("A start-up: outstanding requests in the journal are unreadable ({}); the A + B "
                         "check decides instead", exc)
        if self._requests:
            logger.info("A start-up: {} hedge request(s) outstanding from the last run: {}",
                        len(self._requests), ", ".join(self._requests))
        return list(self._requests)

    def _persist(self) -> None:
        body = {rid: request.to_json() for rid, request in self._requests.items()}
        self._journal.set_meta(OUTSTANDING_META, json.dumps(body))

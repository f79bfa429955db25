"""A's outstanding hedge requests: published (or about to be), not yet answered by B, persisted.

The set lives in the journal's meta (`maker.outstanding`) and is written on every change, so a crash between
a fill and its hedge loses nothing: at start-up each request without a stored outcome is published again
(same request id: B dedups). Requests Redis refused to take are marked unpublished and retried before each
wait for outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from loguru import logger

from hedge_strategy.bus import HedgeRequest
from hedge_strategy.execution import Journal
from hedge_strategy.untrusted_json import loads_untrusted

OUTSTANDING_META = "maker.outstanding"


class OutstandingRequests:
    """Request id -> request, until B's outcome is in; every change is written to the journal's meta."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._requests: dict[str, HedgeRequest] = {}
        self._unpublished: set[str] = set()  # Redis refused the publish: retried before each wait

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

    def remember(self, request: HedgeRequest) -> None:
        self._requests[request.request_id] = request
        self._persist()

    def forget(self, request_id: str) -> None:
        if self._requests.pop(request_id, None) is not None:
            self._unpublished.discard(request_id)
            self._persist()

    def mark_published(self, request_id: str, published: bool) -> None:
        if published:
            self._unpublished.discard(request_id)
        else:
            self._unpublished.add(request_id)

    def unpublished(self) -> list[HedgeRequest]:
        """Outstanding requests Redis has not taken yet, in request id order."""
        return [self._requests[r] for r in sorted(self._unpublished) if r in self._requests]

    def load(self) -> list[str]:
        """Read the set the last run left in the journal; the ids loaded (none when unreadable)."""
        raw = self._journal.get_meta(OUTSTANDING_META)
        if not raw:
            return []
        try:
            for request_id, text in loads_untrusted(raw, "outstanding requests").items():
                self._requests[request_id] = HedgeRequest.from_json(text)
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

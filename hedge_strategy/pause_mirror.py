"""A's copy of the pause in its journal (meta `maker.pause`), so that a Redis that loses its data does not
silently resume trading.

Who owns the truth: Redis, as long as it has its data. A copies the pause it reads there (`observed`), so an
operator's `hedgectl resume` (or pause) while A runs is copied within a second and never undone. A's copy
wins only when Redis demonstrably lost its data (A's epoch marker is gone, `bus.audit`): then a pause the
copy holds is set again, as it was (reason, who, since when). A pause A sets itself (a failed hedge) is
written to the copy first, marked not yet in Redis, and set there as soon as Redis takes it, even across a
restart of A.
"""

from __future__ import annotations

import json

from loguru import logger

from hedge_strategy.bus import PauseState
from hedge_strategy.execution import Journal
from hedge_strategy.untrusted_json import loads_untrusted

PAUSE_META = "maker.pause"


class PauseMirror:
    """The pause as A last knew it, and whether A's own pause still has to reach Redis."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.state: PauseState | None = None
        self.unasserted = False  # `state` is A's own pause and Redis has not taken it yet
        self._load()

    def observed(self, in_redis: PauseState | None) -> None:
        """What Redis says now, while it has its data: copied, unless A's own pause is still to be set."""
        if not self.unasserted and in_redis != self.state:
            self.state = in_redis
            self._persist()

    def set_by_a(self, state: PauseState) -> None:
        """A pauses: kept here first, to be set in Redis."""
        self.state, self.unasserted = state, True
        self._persist()

    def asserted(self, state: PauseState) -> None:
        """Redis holds `state` now."""
        if self.state == state and self.unasserted:
            self.unasserted = False
            self._persist()

    def to_restore(self, in_redis: PauseState | None, data_lost: bool) -> PauseState | None:
        """The pause to set in Redis now, if any: A's own one Redis has not taken yet, or the copy when Redis
        lost its data and holds no pause."""
        if self.state is None:
            return None
        if self.unasserted and in_redis != self.state:
            return self.state
        if data_lost and in_redis is None:
            return self.state
        return None

    def _load(self) -> None:
        raw = self._journal.get_meta(PAUSE_META)
        if not raw:
            return
        try:
            body = loads_untrusted(raw, "the journal's copy of the pause")
            pause = body.get("pause")
            self.state = None if pause is None else PauseState.from_json(pause)
            self.unasserted = bool(body.get("unasserted")) and self.state is not None
        except (ValueError, AttributeError, TypeError) as exc:  # BusMessageError is a ValueError
            logger.error("A: the journal's copy of the pause is unreadable ({}); Redis's pause alone counts",
                         exc)
            self.state, self.unasserted = None, False

    def _persist(self) -> None:
        pause = None if self.state is None else self.state.to_json()
        self._journal.set_meta(PAUSE_META, json.dumps({"pause": pause, "unasserted": self.unasserted}))

"""B's work in hand: a batch of requests or a hedge from the trade feed, counted while it runs (B's heartbeat
says `busy`: `hedgectl clear` and A's withdrawal wait until B has nothing in hand), and given
`strategy.shutdown_wait_s` to finish when B stops, then cut (the next B resumes it from the journal: nothing
of it was acknowledged)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from loguru import logger

from hedge_strategy.observe import EventKind
from hedge_strategy.runtime import Runtime


class InHand:
    """`await in_hand.finish(work, request_ids)` runs one piece of B's work; `busy` while any runs or waits
    for its turn (a feed hedge queued behind a batch counts: it will trade)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._count = 0

    @property
    def busy(self) -> bool:
        return self._count > 0

    async def finish(self, handling: Coroutine[Any, Any, None], request_ids: tuple[str, ...]) -> None:
        wait_s = self.rt.config.strategy.shutdown_wait_s
        self._count += 1
        work = asyncio.ensure_future(handling)
        try:
            stop = asyncio.ensure_future(self.rt.stop.wait())
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not work.done():
                logger.info("B stopping: finishing the hedge in hand (up to {:g} s)", wait_s)
                self.rt.events.emit(EventKind.STOPPING, waited_s=wait_s, reason="finishing the hedge in hand")
                try:
                    await asyncio.wait_for(asyncio.shield(work), wait_s)
                except TimeoutError:
                    logger.warning("B stopping: the hedge in hand did not finish in {:g} s; left "
                                   "unacknowledged for the next B to resume from the journal", wait_s)
                    self.rt.events.emit(EventKind.LEFT_UNFINISHED, reason="unacknowledged",
                                        request_ids=request_ids)
                    work.cancel()
            if work.done() and not work.cancelled() and work.exception() is not None:
                exc = work.exception()
                logger.opt(exception=exc).error("B: handling {} request(s) failed ({!r}); left "
                                                "unacknowledged, retried when claimed again",
                                                len(request_ids), exc)
        finally:
            if not work.done():
                work.cancel()
            self._count -= 1

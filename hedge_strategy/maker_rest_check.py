"""A's look at its resting order by REST while its account stream brings no news (issue 9: a silent stream).

The stream is how A hears of a fill at once. When it is down, or has sent no frame at all for a whole check
interval (a connection can die without closing, and the heartbeat only declares it dead after
`exchange.ws_heartbeat_timeout_s`), "no news" no longer means "still resting": A looks the order up by client
order index (`OrderExecutor.check_by_rest`). A fill found there goes through the same tracker path as a
streamed one (applied and announced once: the journal knows each trade), so its hedge request is out at once,
and A's resting loop then cancels the remainder as after any fill.

A stream that is up but quiet (a quiet market sends the account nothing between the venue's pings) is first
asked whether it is alive: A pings the account connection (`OrderExecutor.probe_stream`, a WebSocket message,
not a REST request) and waits up to `PROBE_WAIT_S` for any frame. One that comes proves the connection alive,
so its silence meant no fill: that is news, and no REST read is spent. Without this the look ran every
interval of every quiet spell, a third of a Standard account's 60 requests a minute spent on quiet markets
(bench/README.md, "tiers (session 4)"). A connection dead without having closed answers nothing (the
simulator's `silence_ws_s` fault sends no frame, pong included), so the REST look follows the wait.

The pace is `exchange.resting_check_interval_s`, by default from the tier's budget
(`exchange/throttle.py` `resting_check_interval_s`: premium 2.25 s, standard 3 s, twice that on a shared
budget). News is a frame on the account stream or an answer to a check: so checks stop as soon as the stream
speaks again, and never run more often than the interval. A check that finds a fill the stream, though up, has
not brought for a second proves the connection dead without having closed: A has the adapter leave it at once
(`LighterAccount.restart_stream`), so the cancel of the remainder goes over HTTP and the stream comes back
(and its reconnect's reconciliation runs) without waiting for the heartbeat.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from loguru import logger

from hedge_strategy.bus import now_ms
from hedge_strategy.exchange import VenueError, describe_coid
from hedge_strategy.exchange.throttle import resting_check_interval_s
from hedge_strategy.observe import EventKind
from hedge_strategy.runtime import Runtime

MISSED_AFTER_S = 1.0  # a fill this old that a stream up has not brought proves its connection dead
# How long a ping of a quiet, up stream may take to be answered before A looks by REST: a live connection
# answers within a round trip (ms); a second adds at most that much to finding a fill on a dead one.
PROBE_WAIT_S = 1.0


def check_interval_s(rt: Runtime) -> float:
    """The configured pace, else the tier's (see the module docstring)."""
    ex = rt.config.exchange
    return ex.resting_check_interval_s or resting_check_interval_s(ex.tier, ex.shared_budget)


class RestingCheck:
    """The checks of one resting order: when the next is due, and the check itself."""

    def __init__(self, rt: Runtime, coid: int, interval_s: float, clock: Callable[[], float]) -> None:
        self.rt = rt
        self.coid = coid
        self.interval_s = interval_s
        self.clock = clock
        self.last_look = clock()  # the send's answer is the first news of the order
        self.checks = 0
        self.probes = 0  # pings of a quiet stream that answered, each a REST look saved

    def due_in(self) -> float:
        """Seconds until the next check is due (<= 0: now): an interval after the last news."""
        return self.interval_s - min(self.rt.orders.stream_quiet_s(), self.clock() - self.last_look)

    async def check(self) -> None:
        """Ask a stream that is up whether it is alive (a ping); when it does not answer, look the order up by
        REST now. An exchange that does not answer is logged and tried next time."""
        quiet = self.rt.orders.stream_quiet_s()
        if not math.isinf(quiet) and await self.rt.orders.probe_stream(PROBE_WAIT_S):
            self.last_look = self.clock()  # alive: its silence meant nothing happened to the order
            self.probes += 1
            return
        quiet = self.rt.orders.stream_quiet_s()
        why = ("account stream down" if math.isinf(quiet)
               else f"no frame from the account stream for {quiet:.1f} s")
        if self.checks == 0:  # once per order: a quiet market's stream says nothing between pings
            logger.info("A: {} while {} rests; checking it by REST every {:g} s while the stream is silent",
                        why, describe_coid(self.coid), self.interval_s)
        self.last_look = self.clock()
        self.checks += 1
        try:
            fills = await self.rt.orders.check_by_rest(self.coid)
        except (VenueError, OSError, TimeoutError) as exc:
            logger.warning("A: REST check of {} failed ({!r}); next in {:g} s", describe_coid(self.coid), exc,
                           self.interval_s)
            return
        order = self.rt.orders.order(self.coid)
        if order is None:
            return
        found = len(fills)
        if found:
            logger.warning("A: the REST check of {} found {} fill(s) the stream had not brought ({}); each "
                           "goes to B at once; {} now {}, filled {}/{}", describe_coid(self.coid), found, why,
                           describe_coid(self.coid), order.state, order.filled_size, order.size)
            missed_for_s = (now_ms() - min(fill.ts_ms for fill in fills)) / 1000
            if not math.isinf(quiet) and missed_for_s >= MISSED_AFTER_S:
                # Up, yet it has not brought a fill for a second or more (a live one brings it within ms): a
                # connection dead without having closed. Leaving it now sends the cancel of the remainder over
                # HTTP and brings the stream back without waiting for the heartbeat. A younger fill may still
                # be on its way: no proof (a trade time from the venue's clock: a local clock ahead of it by
                # the margin could take a live stream for a dead one; `hedgectl preflight` checks the skew).
                self.rt.account.restart_stream(f"it missed a fill of {describe_coid(self.coid)} made "
                                               f"{missed_for_s:.1f} s ago that a REST check found")
        self.rt.events.emit(EventKind.RESTING_CHECKED, coid=self.coid, reason=why, state=order.state,
                            filled=order.filled_size, count=found)

"""Where A takes the positions of A and B from, and the periodic REST cross-check of B's.

Each cycle checks that A + B is flat. Reading both accounts over REST every cycle spent most of a Standard
account's 60 requests a minute (issue 10), so:
- A's own position comes from A's stream when it can be acted on (`OrderExecutor.stream_position`: the stream
  is up and reported the position after A's last fill), else from REST;
- B's comes from what B published, from B's own stream the same way: the report in each outcome
  (`HedgeOutcome.b_position`) and in its heartbeat (`"position"`), which A reads every cycle anyway. The
  newest report counts when B stamped it at most `strategy.b_position_max_age_s` ago and no earlier than the
  last outcome A took (an older one may predate that hedge); otherwise, and from a B that publishes none (an
  older release), A reads B over REST.

The exchange is the single source of truth and REST the check on the streams: A only ever goes ahead on
streamed numbers that say flat; an imbalance is read again over REST before anything is done about it
(`Maker._on_imbalance`), and when no outcome comes the exchange decides over REST (`MakerHedges`).

The cross-check: the exposure watchdog's periodic read of B (`cross_check_b`, its pace from the tier's budget:
`exchange/throttle.py` `exposure_check_interval_s`) compares the exchange's answer with B's published position
while no hedge is outstanding. A disagreement is logged and settled for the exchange: A reads B over REST
until a later cross-check agrees again. A's own position is cross-checked by A's periodic reconciliation
(`Reconciler`, `reconcile_interval_s`), which replaces what the stream said with the REST answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from loguru import logger

from hedge_strategy.bus import BusMessageError, HedgeOutcome, PositionReport, now_ms
from hedge_strategy.runtime import Runtime


class PositionSource:
    """The positions of A and B for A's checks (see the module docstring)."""

    def __init__(self, rt: Runtime, busy: Callable[[], bool], clock_ms: Callable[[], int] = now_ms) -> None:
        self.rt = rt
        self.market_id = rt.market.market_id
        self.b_account = rt.config.accounts["b"].account_index
        self.max_age_ms = int(rt.config.strategy.b_position_max_age_s * 1000)
        self._busy = busy  # True while a hedge is outstanding: B's position is moving, nothing to compare
        self._clock_ms = clock_ms  # B stamps its reports with its wall clock: compared with A's (one host)
        self.rest_reads = 0  # `account` reads made here (the cycle's, the cross-check's)
        self._b_report: PositionReport | None = None  # the newest B published, for this market
        self._b_not_before_ms = 0  # a report older than the last outcome A took may not count that hedge
        self._b_distrusted = False  # a cross-check disagreed: B over REST until one agrees again
        self._bad_report_said = False

    # ---------------------------------------------------------------- what B publishes

    def take_outcome(self, outcome: HedgeOutcome) -> None:
        """An outcome A took: B's position may have moved with it, so only a report as new as it counts."""
        report = outcome.b_position
        # Without a report of its own, the outcome went out only after B waited `POSITION_WAIT_S` past its
        # fills for one: a report stamped before them is well before its publication.
        stamp = report.as_of_ms if report is not None else outcome.publish_ts_ms
        self._b_not_before_ms = max(self._b_not_before_ms, stamp)
        self._offer(report)

    def heard_heartbeat(self, beat: dict[str, Any] | None) -> None:
        """B's heartbeat as A read it: the position it carries, if any (a malformed one: logged, skipped)."""
        if beat is None:
            return
        try:
            report = PositionReport.from_wire(beat.get("position"))
        except BusMessageError as exc:
            if not self._bad_report_said:
                self._bad_report_said = True
                logger.warning("A: B's heartbeat carries an unreadable position ({}); A reads B's position "
                               "over REST", exc)
            return
        self._offer(report)

    def _offer(self, report: PositionReport | None) -> None:
        if report is None or report.market_id != self.market_id:
            return
        if self._b_report is None or report.as_of_ms >= self._b_report.as_of_ms:  # same ms: the later read
            self._b_report = report

    def _b_report_usable(self) -> PositionReport | None:
        """B's newest report when it is fresh and no older than the last outcome taken (distrust aside)."""
        report = self._b_report
        if report is None or report.as_of_ms < self._b_not_before_ms:
            return None
        if self._clock_ms() - report.as_of_ms > self.max_age_ms:
            return None
        return report

    def b_published(self) -> Decimal | None:
        """B's position as B published it, when A may act on it; None: read it over REST."""
        report = None if self._b_distrusted else self._b_report_usable()
        return report.size if report is not None else None

    # ---------------------------------------------------------------- the cycle's read

    async def both(self, exchange: bool = False) -> tuple[Decimal, Decimal]:
        """(A, B) signed positions in the market: from the streams where they can be acted on, the rest over
        REST (read together); `exchange=True`: both over REST (before acting on an imbalance)."""
        a_size = None if exchange else self.rt.orders.stream_position(self.market_id)
        b_size = None if exchange else self.b_published()
        a_read = self._rest(self.rt.account.account_index) if a_size is None else _known(a_size)
        b_read = self._rest(self.b_account) if b_size is None else _known(b_size)
        a_size, b_size = await asyncio.gather(a_read, b_read)
        return a_size, b_size

    async def _rest(self, account_index: int) -> Decimal:
        self.rest_reads += 1
        if account_index == self.rt.account.account_index:
            held = await self.rt.account.positions()
        else:
            held = await self.rt.account.positions_of(account_index)
        position = held.get(self.market_id)
        return position.size if position is not None else Decimal(0)

    # ---------------------------------------------------------------- the periodic cross-check

    async def cross_check_b(self) -> Decimal:
        """B's position over REST (the exposure watchdog's periodic read), compared with what B published
        while no hedge is outstanding; a disagreement is logged and settled for the exchange."""
        before = None if self._busy() else self._b_report_usable()
        exchange = await self._rest(self.b_account)
        if before is None or self._busy() or self._b_report_usable() is not before:
            return exchange  # nothing to compare, or B's position moved during the read
        if before.size == exchange:
            if self._b_distrusted:
                self._b_distrusted = False
                logger.info("A: B's published position agrees with the exchange again ({}); A uses it again",
                            exchange)
        elif not self._b_distrusted:
            self._b_distrusted = True
            logger.warning("A: B published its position as {} (as of {} ms) but the exchange says {}: the "
                           "exchange's value counts, and A reads B's position over REST until they agree "
                           "again", before.size, before.as_of_ms, exchange)
        return exchange


async def _known(value: Decimal) -> Decimal:
    return value

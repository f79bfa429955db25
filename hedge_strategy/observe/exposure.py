"""`ExposureWatchdog`: alert when the two legs stay apart.

Between A's fill and B's hedge the pair is briefly unhedged; that is normal and lasts well under a second.
What is not normal is |A + B| staying above the tolerance: a lost hedge, a failed one, a manual trade. The
watchdog reads the net position every `interval_s`, publishes it as the `net_exposure` gauge, and raises one
`exposure` alert per *episode*: the first read above the tolerance opens an episode, the alert goes out at the
first read at least `grace_s` later if it is still above, and a read back within tolerance closes the episode,
so a later break alerts again. Each episode has its own alert key (`episode-<n>`), so the alerter's
deduplication does not swallow a second, separate break; its rate limit still applies.

A failing read (exchange or Redis down) is logged and neither opens nor closes an episode: not knowing the
exposure is not evidence that it recovered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from hedge_strategy.exchange.throttle import exposure_check_interval_s
from hedge_strategy.observe.alerts import AlertKind
from hedge_strategy.task_end import end_tasks

if TYPE_CHECKING:
    from hedge_strategy.config import Config
    from hedge_strategy.observe.alerts import Alerter
    from hedge_strategy.observe.metrics import HedgeMetrics


class ExposureWatchdog:
    """Polls `read_net()` (A + B in base units) and alerts on a lasting imbalance. See the module docstring.

    `read_net` should be cheap (positions the process already tracks from its stream, say): it runs every
    `interval_s`. A read taking longer than `read_timeout_s` counts as a failed read.
    """

    def __init__(
        self,
        read_net: Callable[[], Awaitable[Decimal]],
        tolerance: Decimal,
        grace_s: float,
        alerter: Alerter | None,
        metrics: HedgeMetrics | None,
        *,
        interval_s: float = 2.0,
        read_timeout_s: float = 10.0,
        market: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_net = read_net
        self.tolerance = tolerance
        self.grace_s = grace_s
        self._alerter = alerter
        self._metrics = metrics
        self.interval_s = interval_s
        self.read_timeout_s = read_timeout_s
        self.market = market
        self._clock = clock
        self.episodes = 0  # breaks seen since start
        self.alerts = 0  # alerts raised (at most one per episode)
        self.last_net: Decimal | None = None
        self._since: float | None = None  # when the current episode opened
        self._alerted = False
        self._read_failing = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, config: Config, read_net: Callable[[], Awaitable[Decimal]], alerter: Alerter | None,
                    metrics: HedgeMetrics | None) -> ExposureWatchdog:
        """The watchdog of `config`: tolerance `strategy.flat_tolerance`, grace and cadence from `alerts`; the
        cadence left unset follows the tier's budget (each read of B's position costs a request of it)."""
        interval_s = config.alerts.exposure_check_interval_s or exposure_check_interval_s(
            config.exchange.tier, config.exchange.shared_budget)
        return cls(read_net, config.strategy.flat_tolerance, config.alerts.exposure_grace_s, alerter, metrics,
                   interval_s=interval_s, market=config.strategy.market)

    @property
    def breached(self) -> bool:
        """True while an episode is open (the last good read was above the tolerance)."""
        return self._since is not None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="exposure-watchdog")
            logger.info("exposure watchdog on: alert when |A + B| > {} for more than {:g} s "
                        "(read every {:g} s)", self.tolerance, self.grace_s, self.interval_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:  # bounded: its check reads Redis, where a cancel can be lost (`task_end`)
            await end_tasks([task], "exposure watchdog")

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)  # the polling cadence, not a wait for an outcome

    async def check(self) -> None:
        """One read and its consequences (also callable directly, e.g. right after a hedge completes)."""
        net = await self._read()
        if net is None:
            return
        self.last_net = net
        if self._metrics is not None:
            self._metrics.set_exposure(net)
        now = self._clock()
        if abs(net) <= self.tolerance:
            self._close_episode(net, now)
            return
        if self._since is None:
            self._since = now
            self.episodes += 1
            logger.warning("net exposure {} is above the tolerance {}; alerting if it lasts {:g} s",
                           net, self.tolerance, self.grace_s)
        if not self._alerted and now - self._since >= self.grace_s:
            self._alerted = True
            self.alerts += 1
            self._alert(net, now - self._since)

    async def _read(self) -> Decimal | None:
        try:
            async with asyncio.timeout(self.read_timeout_s):
                net = Decimal(await self._read_net())
        except Exception as exc:  # whatever the reader raises, the watchdog keeps watching
            if not self._read_failing:
                logger.warning("exposure watchdog cannot read the net position ({}: {}); keeps trying every "
                               "{:g} s", type(exc).__name__, exc, self.interval_s)
            self._read_failing = True
            return None
        if self._read_failing:
            logger.info("exposure watchdog reads the net position again: {}", net)
            self._read_failing = False
        return net

    def _close_episode(self, net: Decimal, now: float) -> None:
        if self._since is None:
            return
        logger.info("net exposure back within tolerance ({}) after {:.1f} s", net, now - self._since)
        self._since = None
        self._alerted = False

    def _alert(self, net: Decimal, open_for_s: float) -> None:
        market = f" on {self.market}" if self.market else ""
        message = (f"net exposure A + B = {net}{market} has been above the tolerance {self.tolerance} for "
                   f"{open_for_s:.1f} s")
        logger.error("{}: alerting", message)
        if self._alerter is not None:
            self._alerter.notify(AlertKind.EXPOSURE, message, key=f"episode-{self.episodes}",
                                 details={"net": net, "tolerance": self.tolerance, "market": self.market,
                                          "open_for_s": round(open_for_s, 3), "grace_s": self.grace_s})

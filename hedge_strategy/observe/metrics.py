"""Prometheus metrics of one bot process (A or B), served on a local port.

Every metric is named `lighter_hedge_*` and labelled by `pair` and `role` ("a" maker, "b" hedger):

| metric (`lighter_hedge_` + ...) | kind | extra labels | what |
|---|---|---|---|
| `hedge_latency_seconds` | histogram | `stage` | seconds from the fill's exchange time to the stage |
| `net_exposure` | gauge | | A + B position in base units (0 when hedged) |
| `paused` | gauge | | 1 while paused, else 0 |
| `orders_total` | counter | `intent`, `outcome` | orders, by what they were for and how they ended |
| `fills_total` | counter | `intent` | fills of our orders |
| `fees_usdc_total` | counter | `intent` | USDC fees of those fills (`Fill.fee`, converted from the rate) |
| `ws_reconnects_total` | counter | | WebSocket sessions re-established after a drop |
| `nonce_resyncs_total` | counter | | nonces re-read from the exchange |
| `rate_limit_backoffs_total` | counter | | 429 answers waited out |
| `last_reconcile_timestamp_seconds` | gauge | | Unix time of the last finished reconciliation |
| `stream_up` | gauge | | 1 while the account WebSocket is up |
| `alerts_total` | counter | `kind`, `result` | alerts: sent, failed, deduplicated, rate_limited, dropped |

Latency stages are **cumulative**: each observation is the time from the fill's exchange timestamp
(`HedgeRequest.fill_ts_ms`, the `Trade.timestamp` of A's fill) to the moment the stage happened, so one fill's
observations grow stage by stage and the time spent *between* two stages is the difference of their values:

- `fill_seen`: A's stream delivered the fill (A's clock).
- `request_published`: A published the hedge request (`HedgeRequest.publish_ts_ms`).
- `request_received`: B read the request (`HedgeOutcome.received_ts_ms`).
- `hedge_sent`: B's first hedge order went out (`HedgeOutcome.sent_ts_ms`).
- `hedge_filled`: B's hedge completed (`HedgeOutcome.filled_ts_ms`).

The exchange clock and ours differ a little, so a tiny negative difference is recorded as 0.

Serving: an aiohttp server on the process's own event loop rather than prometheus-client's
`start_http_server`, which runs a thread per process. On the loop, `stop()` closes the socket
deterministically (tests start and stop several in one process) and no thread reads the registry while the
loop writes it. A scrape costs the loop well under a millisecond for this handful of series.

`follow(reconciler, account)` is a background task that keeps the reconcile timestamp, the reconnect and
nonce-resync counters and the stream gauge current from what the tracker and the adapter already count.

Each `HedgeMetrics` owns a private `CollectorRegistry` (not the library's global one), so several can live
in one process. Disabled (`metrics.enabled: false` or port 0), every method is a no-op and nothing is served.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from loguru import logger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from hedge_strategy.config import Config
    from hedge_strategy.execution import Reconciler

PREFIX = "lighter_hedge"
STAGES = ("fill_seen", "request_published", "request_received", "hedge_sent", "hedge_filled")
INTENTS = ("maker", "hedge", "close", "rebalance")  # as in the client order index (exchange/coid.py)
# From a few milliseconds (a fill seen on the stream) to minutes (a hedge chased through retries).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
METRICS_PATH = "/metrics"


class AccountCounters(Protocol):
    """What `HedgeMetrics.follow` reads from the exchange adapter (`LighterAccount` has both)."""

    @property
    def nonce_resyncs(self) -> int: ...

    @property
    def stream_up(self) -> bool: ...


class _Instruments:
    """The metric families of one registry, with the `pair` and `role` label values bound in."""

    def __init__(self, registry: CollectorRegistry, pair: str, role: str) -> None:
        base = ("pair", "role")
        self.ids = (pair, role)
        self.latency = Histogram(f"{PREFIX}_hedge_latency_seconds",
                                 "Seconds from the fill's exchange time to each hedge stage (cumulative)",
                                 (*base, "stage"), registry=registry, buckets=LATENCY_BUCKETS)
        self.exposure = Gauge(f"{PREFIX}_net_exposure", "A + B position in base units", base,
                              registry=registry)
        self.paused = Gauge(f"{PREFIX}_paused", "1 while trading is paused", base, registry=registry)
        self.orders = Counter(f"{PREFIX}_orders", "Orders by intent and outcome",
                              (*base, "intent", "outcome"), registry=registry)
        self.fills = Counter(f"{PREFIX}_fills", "Fills of our orders by intent", (*base, "intent"),
                             registry=registry)
        self.fees = Counter(f"{PREFIX}_fees_usdc", "USDC paid in fees by our fills, by intent",
                            (*base, "intent"), registry=registry)
        self.ws_reconnects = Counter(f"{PREFIX}_ws_reconnects", "WebSocket sessions re-established", base,
                                     registry=registry)
        self.nonce_resyncs = Counter(f"{PREFIX}_nonce_resyncs", "Nonces re-read from the exchange", base,
                                     registry=registry)
        self.rate_limit_backoffs = Counter(f"{PREFIX}_rate_limit_backoffs", "429 answers waited out", base,
                                           registry=registry)
        self.last_reconcile = Gauge(f"{PREFIX}_last_reconcile_timestamp_seconds",
                                    "Unix time of the last finished reconciliation", base, registry=registry)
        self.stream_up = Gauge(f"{PREFIX}_stream_up", "1 while the account WebSocket is up", base,
                               registry=registry)
        self.alerts = Counter(f"{PREFIX}_alerts", "Alerts by kind and result", (*base, "kind", "result"),
                              registry=registry)
        # Series that exist from the start, so dashboards and rate() see zeros rather than gaps.
        for stage in STAGES:
            self.latency.labels(*self.ids, stage)
        for intent in INTENTS:
            self.fills.labels(*self.ids, intent)
            self.fees.labels(*self.ids, intent)
        for family in (self.exposure, self.paused, self.ws_reconnects, self.nonce_resyncs,
                       self.rate_limit_backoffs, self.last_reconcile, self.stream_up):
            family.labels(*self.ids)


class HedgeMetrics:
    """The metrics of one process: one method per event, `await start()` to serve, `await stop()` to close.

    Methods never raise for a value they cannot use (a metric must not break trading): they log and ignore it.
    """

    def __init__(self, pair: str, role: str, *, host: str = "127.0.0.1", port: int = 0,
                 enabled: bool = True) -> None:
        self.pair = pair
        self.role = role.lower()
        self.host = host
        self.port = port
        self.enabled = enabled and port > 0
        self.registry = CollectorRegistry(auto_describe=True)
        self._i = _Instruments(self.registry, pair, self.role) if self.enabled else None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._followed: dict[str, int] = {}  # last totals seen by the sync_* methods

    @classmethod
    def from_config(cls, config: Config, role: str) -> HedgeMetrics:
        """The metrics of `role` ("a" or "b") as `config.metrics` describes them."""
        cfg = config.metrics
        return cls(config.pair, role, host=cfg.host, port=cfg.port_for(role), enabled=cfg.enabled)

    @property
    def url(self) -> str | None:
        """Where the metrics are served once started (`http://host:port/metrics`), else None."""
        if self._bound_port is None:
            return None
        return f"http://{self.host}:{self._bound_port}{METRICS_PATH}"

    # --- serving --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve `GET /metrics`. A port that cannot be bound is logged, not raised: trading goes on."""
        if not self.enabled or self._runner is not None:
            return
        app = web.Application()
        app.router.add_get(METRICS_PATH, self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            logger.error("metrics not served: cannot listen on {}:{} ({}); trading continues without them",
                         self.host, self.port, exc.strerror or exc)
            return
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])
        logger.info("metrics served at {}", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            logger.info("metrics endpoint {}:{} closed", self.host, self._bound_port)
        self._bound_port = None

    async def _handle(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def render(self) -> bytes:
        """The exposition text of this registry (what a scrape returns)."""
        return generate_latest(self.registry)

    # --- events ---------------------------------------------------------------------------------------

    def observe_stage(self, stage: str, seconds: float) -> None:
        """One hedge reached `stage` `seconds` after its fill's exchange time (see the module docstring)."""
        if (i := self._i) is None:
            return
        if stage not in STAGES:
            logger.warning("metrics: unknown latency stage {!r} ignored (expected one of {})",
                           stage, ", ".join(STAGES))
            return
        i.latency.labels(*i.ids, stage).observe(max(0.0, float(seconds)))

    def observe_since_fill(self, stage: str, fill_ts_ms: int, at_ms: int | None = None) -> None:
        """`observe_stage` from timestamps: the fill's exchange time and when the stage happened (ms)."""
        at = time.time() * 1000 if at_ms is None else at_ms
        self.observe_stage(stage, (at - fill_ts_ms) / 1000)

    def set_exposure(self, value: Decimal | float) -> None:
        """The net position A + B, in base units."""
        if (i := self._i) is not None:
            i.exposure.labels(*i.ids).set(float(value))

    def set_paused(self, flag: bool) -> None:
        if (i := self._i) is not None:
            i.paused.labels(*i.ids).set(1 if flag else 0)

    def set_stream_up(self, flag: bool) -> None:
        if (i := self._i) is not None:
            i.stream_up.labels(*i.ids).set(1 if flag else 0)

    def order(self, intent: str, outcome: str) -> None:
        """An order ended (or was refused). `intent`: maker, hedge, close, rebalance; `outcome`: a short
        word: placed, filled, cancelled, rejected, expired, unknown (each is a series: keep the set small)."""
        if (i := self._i) is not None:
            i.orders.labels(*i.ids, intent, outcome).inc()

    def fill(self, intent: str, fee_usdc: Decimal | float = 0) -> None:
        """One fill of ours and the USDC fee it paid (`Fill.fee` / `JournalFill.fee`, already converted from
        the venue's rate by `exchange.parsing.fee_usdc`)."""
        if (i := self._i) is None:
            return
        i.fills.labels(*i.ids, intent).inc()
        if fee_usdc < 0:  # a counter only grows; a rebate is still in the journal and the report
            logger.warning("metrics: negative fee {} USDC of a {} fill not counted", fee_usdc, intent)
            return
        i.fees.labels(*i.ids, intent).inc(float(fee_usdc))

    def ws_reconnect(self, count: int = 1) -> None:
        if (i := self._i) is not None and count > 0:
            i.ws_reconnects.labels(*i.ids).inc(count)

    def nonce_resync(self, count: int = 1) -> None:
        if (i := self._i) is not None and count > 0:
            i.nonce_resyncs.labels(*i.ids).inc(count)

    def rate_limit_backoff(self, count: int = 1) -> None:
        if (i := self._i) is not None and count > 0:
            i.rate_limit_backoffs.labels(*i.ids).inc(count)

    def reconciled(self, at_s: float | None = None) -> None:
        """A reconciliation finished (at Unix time `at_s`, default now)."""
        if (i := self._i) is not None:
            i.last_reconcile.labels(*i.ids).set(time.time() if at_s is None else at_s)

    def alert(self, kind: str, result: str) -> None:
        """What became of an alert: sent, failed, deduplicated, rate_limited, dropped (see observe.alerts)."""
        if (i := self._i) is not None:
            i.alerts.labels(*i.ids, kind, result).inc()

    # --- totals kept elsewhere ------------------------------------------------------------------------
    # The adapter counts some events itself (`ExchangeAdapter.nonce_resyncs`, the tracker's `reconnects`).
    # Rather than hooking into it, call these with its running total now and then (each reconcile, say):
    # the counter advances by what is new since the last call.

    def sync_ws_reconnects(self, total: int) -> None:
        self.ws_reconnect(self._advance("ws_reconnects", total))

    def sync_nonce_resyncs(self, total: int) -> None:
        self.nonce_resync(self._advance("nonce_resyncs", total))

    def sync_rate_limit_backoffs(self, total: int) -> None:
        self.rate_limit_backoff(self._advance("rate_limit_backoffs", total))

    async def follow(self, reconciler: Reconciler, account: AccountCounters,
                     idle_s: float = 60.0) -> None:
        """Until cancelled: after each reconciliation (periodic, and after every stream reconnect) record when
        it finished and catch up the totals the adapter and tracker keep (reconnects, nonce resyncs) and the
        stream state; also every `idle_s` without one. Run it as a background task of the process.

        Only complete runs set `last_reconcile_timestamp_seconds`, so a reconciliation that keeps failing
        shows as a timestamp growing old.
        """
        if not self.enabled:
            return
        report = reconciler.last_report  # the start-up run may have finished before this task began
        while True:
            if report is not None and report.complete:
                self.reconciled(report.finished_ms / 1000)
            self.sync_ws_reconnects(reconciler.tracker.reconnects)
            self.sync_nonce_resyncs(account.nonce_resyncs)
            self.set_stream_up(account.stream_up)
            try:
                report = await reconciler.next_report(timeout=idle_s)
            except TimeoutError:
                report = None

    def _advance(self, name: str, total: int) -> int:
        """How much `total` grew since the last call for `name` (a total that went down starts over)."""
        last = self._followed.get(name, 0)
        self._followed[name] = total
        return total - last if total >= last else total

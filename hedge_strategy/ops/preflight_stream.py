"""The WebSocket half of `hedgectl preflight` and the checks that sum up the whole run: the bot's channels
watched for `--seconds` (every one subscribed at once, as A and B subscribe them), then rate-limit headroom
and clock skew from everything the run saw.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from hedge_strategy.config import ROLES
from hedge_strategy.exchange.preflight_reads import Observer, timestamp_ms
from hedge_strategy.exchange.preflight_watch import (
    WS_MESSAGES_PER_MINUTE,
    WatchReport,
    busiest_minute,
    skew_bound_ms,
    watch_account,
)
from hedge_strategy.ops.preflight_checks import Check, EmitCheck, Venue, Verdict, label

SKEW_WARN_MS = 1_000  # latency figures (fill on the venue -> seen here) are off by the skew
SKEW_FAIL_MS = 30_000  # auth tokens and transaction expiries are computed from the local clock
BUDGET_WARN_SHARE = 0.5


async def watch_channels(venue: Venue, seconds: float, observe: Observer, say: Callable[[str], None]
                         ) -> dict[str, WatchReport]:
    """Watch every channel the bot uses, for both accounts at once, for `seconds`."""
    market, roles = venue.market, [role for role in ROLES if role in venue.accounts]
    if market is None or not roles:
        return {}
    who = " and ".join(label(role) for role in roles)
    say(f"watching the bot's channels of {who} for {seconds:g} s ...")
    waiting = set(roles)

    def subscribed(role: str) -> None:
        waiting.discard(role)
        if not waiting:
            say(f"every channel of {who} subscribed; counting frames")

    ex = venue.config.exchange
    reports = await asyncio.gather(*(
        watch_account(ws_url=ex.ws_url, account_index=venue.config.accounts[role].account_index,
                      market_id=market.info.market_id,
                      token_source=lambda fresh, role=role: venue.token(role, fresh),
                      seconds=seconds, timeout_s=max(ex.request_timeout_s, ex.ws_heartbeat_timeout_s),
                      observe=observe, subscribed=lambda role=role: subscribed(role),
                      trades=role == "b" and venue.config.strategy.follows_trade_feed)
        for role in roles))
    return dict(zip(roles, reports, strict=True))


def stream_checks(venue: Venue, reports: dict[str, WatchReport], emit: EmitCheck) -> None:
    if not reports:
        why = "needs the market and a valid API key (see above)"
        for name in ("websocket", *(f"channels {label(r)}" for r in ROLES), "frames", "book continuity",
                     "ping/pong", "token refresh"):
            emit(Check(name, Verdict.SKIP, why))
        return
    emit(check_websocket(venue, reports))
    for role in ROLES:
        emit(check_channels(reports.get(role), role))
    connected = {role: r for role, r in reports.items() if r.connect_error is None}
    if not connected:
        for name in ("frames", "book continuity", "ping/pong", "token refresh"):
            emit(Check(name, Verdict.SKIP, "no WebSocket connection (see websocket)"))
        return
    emit(check_frames(connected))
    emit(check_continuity(connected))
    emit(check_ping_pong(connected))
    emit(check_token_refresh(connected))


def check_websocket(venue: Venue, reports: dict[str, WatchReport]) -> Check:
    url = venue.config.exchange.ws_url
    failed: dict[str, list[str]] = {}  # the error -> the connections that met it
    for role, report in reports.items():
        for link, error in report.connect_errors.items():
            failed.setdefault(error, []).append(f"{label(role)} {link}")
    if failed:
        why = "; ".join(f"{error} ({', '.join(links)})" for error, links in failed.items())
        return Check("websocket", Verdict.FAIL, f"{url} cannot be reached: {why}",
                     "check exchange.ws_url (mainnet: wss://mainnet.zklighter.elliot.ai/stream), the network "
                     "and any proxy")
    times = _per_link({role: r.connect_ms for role, r in reports.items()})
    return Check("websocket", Verdict.PASS, f"{url}: every connection said 'connected' ({times})")


def check_channels(report: WatchReport | None, role: str) -> Check:
    name = f"channels {label(role)}"
    if report is None:
        return Check(name, Verdict.SKIP, "needs a valid API key (see api key)")
    if report.connect_error is not None:
        return Check(name, Verdict.SKIP, "no WebSocket connection (see websocket)")
    counts = ", ".join(f"{channel} {n}" for channel, n in sorted(report.frames.items()))
    problems = [f"{key} refused ({error})" for key, error in report.channel_errors.items()]
    problems += [f"{key}: no snapshot" for key in report.wanted
                 if key not in report.confirmed and key not in report.channel_errors]
    problems += [f"the {link} connection was lost: {why}" for link, why in report.lost.items()]
    problems += [f"venue error: {error}" for error in report.other_errors]
    if problems:
        return Check(name, Verdict.FAIL, f"{'; '.join(problems)} (frames: {counts or 'none'})",
                     "the bot needs every one of these channels: check the key (private channels take its "
                     "auth token) and the market")
    notices = f"; {'; '.join(report.notices)}" if report.notices else ""
    return Check(name, Verdict.PASS, f"{len(report.wanted)} subscribed at once ({', '.join(report.wanted)}; "
                 f"books and account on connections of their own, as the bot keeps them); frames: "
                 f"{counts}{notices}")


def check_frames(reports: dict[str, WatchReport]) -> Check:
    total = sum(sum(r.frames.values()) for r in reports.values())
    failed = sum(r.parse_failures for r in reports.values())
    if failed:
        examples = "; ".join(e for r in reports.values() for e in r.parse_examples)
        return Check("frames", Verdict.FAIL,
                     f"the adapter could not read {failed} part(s) of {total} frames: {examples}",
                     "run again with --record FILE.jsonl and report the file: the adapter skips what it "
                     "cannot read, and a fill could be in it")
    return Check("frames", Verdict.PASS, f"all {total} frames read by the adapter's parsers")


def check_continuity(reports: dict[str, WatchReport]) -> Check:
    updates = sum(r.book.updates for r in reports.values())
    breaks = sum(r.book.breaks for r in reports.values())
    rules = {r.book.rule for r in reports.values() if r.book.rule}
    rule = ("begin_nonce = the previous nonce" if rules == {"nonce"} else
            "offset + 1: the frames carry no nonces" if rules == {"offset"} else "nonces, else offset + 1")
    if breaks:
        examples = "; ".join(e for r in reports.values() for e in r.book.examples)
        return Check("book continuity", Verdict.FAIL, f"{breaks} break(s) in {updates} updates ({rule}): "
                     f"{examples}",
                     "run again; if breaks persist, report the run (--record): the bot would resync the "
                     "book each time")
    if not updates:
        return Check("book continuity", Verdict.WARN, "no order book update during the watch (snapshots "
                     "only): nothing to check", "run longer (--seconds) while the market moves")
    return Check("book continuity", Verdict.PASS,
                 f"{updates} updates, each continuing the one before ({rule})")


def check_ping_pong(reports: dict[str, WatchReport]) -> Check:
    pings = sum(r.server_pings for r in reports.values())
    venue_pings = f"{pings} ping(s) from the venue answered with pong"
    # Every link that connected sent one ping (the renewal's short-lived connection sends none).
    silent = [f"{label(role)} {link}" for role, r in reports.items() for link in r.connect_ms
              if link not in r.pong_ms]
    if not silent:
        times = _per_link({role: r.pong_ms for role, r in reports.items()})
        return Check("ping/pong", Verdict.PASS, f"our ping answered by pong on every link ({times}); "
                     f"{venue_pings}")
    if pings:
        return Check("ping/pong", Verdict.WARN, f"no pong to our ping on {', '.join(silent)}; {venue_pings}",
                     "the link is alive, but a quiet market cannot be told from a dead link this way")
    return Check("ping/pong", Verdict.FAIL,
                 f"no pong to our ping on {', '.join(silent)} and no ping from the venue",
                 "something between here and the venue swallows frames: check proxies")


def check_token_refresh(reports: dict[str, WatchReport]) -> Check:
    failed = {role: r.refresh.detail or "not attempted" for role, r in reports.items() if not r.refresh.ok}
    if failed:
        why = "; ".join(f"{label(role)}: {detail}" for role, detail in failed.items())
        return Check("token refresh", Verdict.FAIL, why,
                     "the bot renews its auth token this way before it expires: check the key and the clock")
    done = "; ".join(f"{label(role)}: {r.refresh.detail}" for role, r in reports.items())
    return Check("token refresh", Verdict.PASS,
                 f"a fresh auth token, account_all_orders subscribed with it on a new connection ({done})")


def check_rate_limits(venue: Venue, reports: dict[str, WatchReport], elapsed_s: float) -> Check:
    throttle = venue.throttle
    requests = sum(throttle.requests.values())
    used, budget = throttle.used, throttle.budget_per_minute
    unit = "requests" if throttle.tier == "standard" else "weight"
    messages = busiest_minute([t for r in reports.values() for t in r.sent_at])
    rest_share, ws_share = used / budget, messages / WS_MESSAGES_PER_MINUTE
    detail = (f"in {elapsed_s:.1f} s: REST {requests} requests ({used} {unit} of the {throttle.tier} budget "
              f"of {budget} per minute, {rest_share:.0%}); WebSocket {messages} client messages (of "
              f"{WS_MESSAGES_PER_MINUTE} per minute, {ws_share:.0%}); {throttle.rate_limited} HTTP 429")
    if rest_share >= 1 or ws_share >= 1:
        return Check("rate limits", Verdict.FAIL, detail, "report it: preflight itself must stay in budget")
    if throttle.rate_limited:
        return Check("rate limits", Verdict.WARN, detail,
                     "the venue already limits this IP or L1 address: another client shares the budget")
    if max(rest_share, ws_share) >= BUDGET_WARN_SHARE:
        return Check("rate limits", Verdict.WARN, detail, "little headroom is left for the bot")
    return Check("rate limits", Verdict.PASS, detail)


def check_clock_skew(venue: Venue, reports: dict[str, WatchReport]) -> Check:
    """local - venue, bounded from `GET /`'s timestamp (whole seconds on the simulator) and from frame
    timestamps (a frame is stamped before it arrives, so each bounds the skew from above)."""
    low, high, sources = -math.inf, math.inf, []
    status = venue.status
    if status is not None and status.ok:
        stamp_ms, resolution = timestamp_ms(status.body.get("timestamp"))
        if stamp_ms is not None:
            low = status.sent_s * 1000 - stamp_ms - resolution
            high = status.received_s * 1000 - stamp_ms
            sources.append(f"GET / timestamp ({'s' if resolution == 1000 else 'ms'})")
    frames = [skew for r in reports.values() for skew in r.skews_ms]
    if frames:
        high = min(high, skew_bound_ms(frames))
        sources.append(f"{len(frames)} frame timestamps")
    if not sources:
        return Check("clock skew", Verdict.WARN, "no venue timestamp seen (GET / and the frames carry none)",
                     "keep the clock in sync (chrony / systemd-timesyncd)")
    if low > high:
        return Check("clock skew", Verdict.WARN, f"the venue's timestamps disagree ({', '.join(sources)}: "
                     f"{low / 1000:+.1f} s > {high / 1000:+.1f} s)", "keep the clock in sync")
    off = 0.0 if low <= 0 <= high else min(abs(low), abs(high))
    detail = f"local - venue between {_seconds(low)} and {_seconds(high)} (from {', '.join(sources)})"
    if off >= SKEW_FAIL_MS:
        return Check("clock skew", Verdict.FAIL, detail, "sync the clock: auth tokens and order expiries are "
                     "computed from it")
    if off >= SKEW_WARN_MS:
        return Check("clock skew", Verdict.WARN, detail,
                     "sync the clock: latency figures are off by the skew")
    return Check("clock skew", Verdict.PASS, detail)


def _per_link(times: dict[str, dict[str, float]]) -> str:
    """`A books 4 ms, account 5 ms; B ...` from ms by link by role."""
    return "; ".join(f"{label(role)} " + ", ".join(f"{link} {ms:.0f} ms" for link, ms in links.items())
                     for role, links in times.items())


def _seconds(ms: float) -> str:
    return "unbounded" if math.isinf(ms) else f"{ms / 1000:+.3f} s"

"""WebSocket faults behind `POST /sim/faults` (parsed here, carried out by the WsHub):

- `{"book_gap": {"market_id": 1, "count": 1}}`: the next `count` order-book updates of that market each start
  with a `begin_nonce` that skips past the previous frame's `nonce` (for every connection: the chain is the
  venue's, not a connection's), so a client sees a real continuity break and must resync.
- `{"shutdown": {"close_in_ms": 500}}`: every open connection gets `{"type":"shutdown","close_in_ms":500}` and
  is closed (1001) that long after; connections opened later are not affected.
- `{"inject_ws_frame": {"channel": "account_all_orders", "text": "<raw text>", "count": 1}}`: the raw text
  (valid JSON or not) is sent `count` times to each connection subscribed to a channel whose name starts with
  `channel` (either spelling, `/` or `:`). When no connection is subscribed to one yet, it waits and goes to
  the next connection that subscribes to a matching channel, right after that channel's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WS_FAULT_KEYS = frozenset({"book_gap", "shutdown", "inject_ws_frame"})
MAX_CLOSE_IN_MS = 600_000
MAX_INJECTED_TEXT = 1 << 16


class WsFaultError(ValueError):
    """A WebSocket fault in the body is malformed; the message names the key."""


@dataclass
class Injection:
    channel_prefix: str
    text: str
    count: int

    def matches(self, channel: str) -> bool:
        return channel.startswith(self.channel_prefix)


def _int(
    body: dict[str, Any], key: str, where: str, *, minimum: int, maximum: int, default: int | None = None
) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise WsFaultError(f"{where}.{key}: must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def _object(body: dict[str, Any], key: str, fields: str) -> dict[str, Any]:
    value = body[key]
    if not isinstance(value, dict):
        raise WsFaultError(f"{key}: must be an object {fields}")
    return value


class WsFaults:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._gaps: dict[int, int] = {}
        self._shutdown_ms: int | None = None
        self.injection: Injection | None = None

    def apply(self, body: dict[str, Any]) -> None:
        """Validate every WebSocket key of `body` first, then install them (all or nothing)."""
        gap = shutdown = injection = None
        if "book_gap" in body:
            spec = _object(body, "book_gap", '{"market_id": <int>, "count": <int>}')
            gap = (
                _int(spec, "market_id", "book_gap", minimum=0, maximum=1 << 31),
                _int(spec, "count", "book_gap", minimum=0, maximum=1_000_000, default=1),
            )
        if "shutdown" in body:
            spec = _object(body, "shutdown", '{"close_in_ms": <int>}')
            shutdown = _int(spec, "close_in_ms", "shutdown", minimum=0, maximum=MAX_CLOSE_IN_MS)
        if "inject_ws_frame" in body:
            injection = self._injection(_object(body, "inject_ws_frame", '{"channel", "text", "count"}'))
        if gap is not None:
            market_id, count = gap
            if count:
                self._gaps[market_id] = count
            else:
                self._gaps.pop(market_id, None)
        if shutdown is not None:
            self._shutdown_ms = shutdown
        if injection is not None:
            self.injection = injection

    @staticmethod
    def _injection(spec: dict[str, Any]) -> Injection:
        channel, text = spec.get("channel"), spec.get("text")
        if not isinstance(channel, str) or not channel:
            raise WsFaultError(f"inject_ws_frame.channel: a non-empty channel prefix, got {channel!r}")
        if not isinstance(text, str) or len(text) > MAX_INJECTED_TEXT:
            raise WsFaultError(f"inject_ws_frame.text: must be a string of at most {MAX_INJECTED_TEXT} chars")
        count = _int(spec, "count", "inject_ws_frame", minimum=1, maximum=100, default=1)
        return Injection(channel.replace("/", ":"), text, count)

    # --- queries used by the WsHub ----------------------------------------------------------------------

    def take_book_gap(self, market_id: int) -> bool:
        remaining = self._gaps.get(market_id)
        if not remaining:
            return False
        if remaining <= 1:
            del self._gaps[market_id]
        else:
            self._gaps[market_id] = remaining - 1
        return True

    def take_shutdown(self) -> int | None:
        close_in_ms, self._shutdown_ms = self._shutdown_ms, None
        return close_in_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "book_gap": {str(m): n for m, n in sorted(self._gaps.items())} or None,
            "inject_ws_frame": vars(self.injection) if self.injection else None,
        }

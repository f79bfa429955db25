"""Fault injection state behind `POST /sim/faults` / `DELETE /sim/faults`.

Each fault is a small counter or deadline; the server asks "does a fault apply to this request?" at the
right points (`take_*` methods consume one unit of a counted fault).
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .ws_faults import WS_FAULT_KEYS, WsFaultError, WsFaults

INJECTED_CODE = 29500
INJECTED_MESSAGE = "injected failure"
HTTP_ERROR_STATUSES = (429, 500, 502, 503)
DROP_CODES = (1001, 1011)


class FaultError(ValueError):
    """The fault request body is malformed; the message names the key."""


@dataclass
class _CountedRejection:
    remaining: int
    code: int
    message: str
    account_index: int | None


@dataclass
class _Probability:
    probability: float
    code: int
    message: str
    account_index: int | None


@dataclass
class _HttpErrors:
    remaining: int
    status: int
    paths: frozenset[str] | None
    retry_after_s: float | None = None  # sent as a Retry-After header (the venue's is not captured)


@dataclass
class _Blackhole:
    remaining: int
    account_index: int | None


# --- sequencer rejection (HTTP 200 from sendTx means accepted by the API, not executed) ------------------


@dataclass
class _SequencerReject:
    remaining: int
    account_index: int | None
    consume_nonce: bool


SEQUENCER_REJECT_KEY = "sequencer_reject_next"
_SEQUENCER_REJECT_FIELDS = {"count", "account_index", "consume_nonce"}


def _sequencer_reject_rule(value: Any) -> _SequencerReject | None:
    """`{"count": N, "account_index": A (optional), "consume_nonce": true|false (default true)}`."""
    key = SEQUENCER_REJECT_KEY
    if not isinstance(value, dict):
        raise FaultError(f'{key}: must be an object such as {{"count": 1, "consume_nonce": true}}')
    unknown = sorted(set(value) - _SEQUENCER_REJECT_FIELDS)
    if unknown:
        raise FaultError(f"{key}.{unknown[0]}: unknown field (known: count, account_index, consume_nonce)")
    if "count" not in value:
        raise FaultError(f"{key}.count: required")
    count = value["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise FaultError(f"{key}.count: must be an integer >= 0, got {count!r}")
    account = value.get("account_index")
    if account is not None and (isinstance(account, bool) or not isinstance(account, int)):
        raise FaultError(f"{key}.account_index: must be an integer, got {account!r}")
    consume = value.get("consume_nonce", True)
    if not isinstance(consume, bool):
        raise FaultError(f"{key}.consume_nonce: must be true or false, got {consume!r}")
    return _SequencerReject(count, account, consume) if count else None


# --- the fault body -------------------------------------------------------------------------------------

_KNOWN_KEYS = {
    SEQUENCER_REJECT_KEY,
    "drop_websockets",
    "drop_code",
    "silence_ws_s",
    "reject_next_sendtx",
    "reject_sendtx_probability",
    "code",
    "message",
    "latency_ms",
    "http_error_next",
    "status",
    "paths",
    "retry_after_s",
    "blackhole_next_sendtx",
    "account_index",
}


def _number(body: dict[str, Any], key: str, *, integer: bool = False, upper: float | None = None) -> float:
    value = body[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise FaultError(f"{key}: must be {'an integer' if integer else 'a number'}, got {value!r}")
    if value < 0 or (upper is not None and value > upper):
        raise FaultError(f"{key}: must be between 0 and {upper if upper is not None else 'inf'}, got {value}")
    return value


class Faults:
    def __init__(self, seed: int = 0, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._random = random.Random(seed)
        self.ws = WsFaults()
        self.clear()

    def clear(self) -> None:
        self._silence_until = 0.0
        self._silence_account: int | None = None  # None: every connection is silenced
        self._rejection: _CountedRejection | None = None
        self._probability: _Probability | None = None
        self.latency_ms = 0
        self._http_errors: _HttpErrors | None = None
        self._blackhole: _Blackhole | None = None
        self.ws.clear()
        self._sequencer_reject: _SequencerReject | None = None

    def apply(self, body: Any) -> tuple[bool, int]:
        """Install the faults in `body`. Returns (drop websockets now?, close code). Raises FaultError."""
        if not isinstance(body, dict) or not body:
            raise FaultError("body must be a non-empty JSON object")
        known = _KNOWN_KEYS | WS_FAULT_KEYS
        unknown = sorted(set(body) - known)
        if unknown:
            raise FaultError(f"{unknown[0]}: unknown fault key (known: {', '.join(sorted(known))})")
        try:
            self.ws.apply(body)  # the WebSocket faults; the WsHub carries them out
        except WsFaultError as exc:
            raise FaultError(str(exc)) from None
        account = self._account_filter(body)
        code, message = self._rejection_code(body)
        drop = False
        drop_code = 1001
        if "drop_websockets" in body:
            if not isinstance(body["drop_websockets"], bool):
                raise FaultError("drop_websockets: must be true or false")
            drop = body["drop_websockets"]
            if "drop_code" in body:
                if body["drop_code"] not in DROP_CODES:
                    raise FaultError(f"drop_code: must be one of {DROP_CODES}")
                drop_code = body["drop_code"]
        if "silence_ws_s" in body:
            self._silence_until = self._clock() + _number(body, "silence_ws_s", upper=3600)
            self._silence_account = account
        if "reject_next_sendtx" in body:
            count = int(_number(body, "reject_next_sendtx", integer=True))
            self._rejection = _CountedRejection(count, code, message, account) if count else None
        if "reject_sendtx_probability" in body:
            p = _number(body, "reject_sendtx_probability", upper=1.0)
            self._probability = _Probability(p, code, message, account) if p else None
        if "latency_ms" in body:
            self.latency_ms = int(_number(body, "latency_ms", integer=True, upper=600_000))
        if "http_error_next" in body:
            self._http_errors = self._http_error_rule(body)
        if "blackhole_next_sendtx" in body:
            count = int(_number(body, "blackhole_next_sendtx", integer=True))
            self._blackhole = _Blackhole(count, account) if count else None
        if SEQUENCER_REJECT_KEY in body:
            self._sequencer_reject = _sequencer_reject_rule(body[SEQUENCER_REJECT_KEY])
        return drop, drop_code

    # --- queries used by the server -----------------------------------------------------------------

    def ws_silenced(self, accounts: Collection[int] | None = None) -> bool:
        """Whether a connection subscribed to channels of `accounts` is silenced now. A silence with an
        `account_index` covers only connections subscribed to a channel of that account; `accounts` None
        asks whether every connection is (a silence of one account's connections is not)."""
        if self._clock() >= self._silence_until:
            return False
        wanted = self._silence_account
        return wanted is None or (accounts is not None and wanted in accounts)

    def take_sendtx_rejection(self, account_index: int | None) -> tuple[int, str] | None:
        rule = self._rejection
        if rule is not None and self._matches(rule.account_index, account_index):
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rejection = None
            return rule.code, rule.message
        chance = self._probability
        if chance is not None and self._matches(chance.account_index, account_index):
            if self._random.random() < chance.probability:
                return chance.code, chance.message
        return None

    def take_blackhole(self, account_index: int | None) -> bool:
        rule = self._blackhole
        if rule is None or not self._matches(rule.account_index, account_index):
            return False
        rule.remaining -= 1
        if rule.remaining <= 0:
            self._blackhole = None
        return True

    def take_sequencer_reject(self, account_index: int | None) -> bool | None:
        """None if the sequencer keeps this accepted tx; else whether its drop consumes the nonce."""
        rule = self._sequencer_reject
        if rule is None or not self._matches(rule.account_index, account_index):
            return None
        rule.remaining -= 1
        if rule.remaining <= 0:
            self._sequencer_reject = None
        return rule.consume_nonce

    def take_http_error(self, path: str) -> tuple[int, float | None] | None:
        """(HTTP status, Retry-After seconds or None) to answer instead of handling `path`, or None."""
        rule = self._http_errors
        if rule is None or (rule.paths is not None and path not in rule.paths):
            return None
        rule.remaining -= 1
        if rule.remaining <= 0:
            self._http_errors = None
        return rule.status, rule.retry_after_s

    def to_json(self) -> dict[str, Any]:
        silence_left = max(0.0, self._silence_until - self._clock())
        return {
            "silence_ws_s_left": round(silence_left, 3),
            "silence_ws_account": self._silence_account if silence_left > 0 else None,
            "reject_next_sendtx": vars(self._rejection) if self._rejection else None,
            "reject_sendtx_probability": vars(self._probability) if self._probability else None,
            "latency_ms": self.latency_ms,
            "http_error_next": (
                {
                    "remaining": self._http_errors.remaining,
                    "status": self._http_errors.status,
                    "paths": sorted(self._http_errors.paths) if self._http_errors.paths else None,
                    "retry_after_s": self._http_errors.retry_after_s,
                }
                if self._http_errors
                else None
            ),
            "blackhole_next_sendtx": vars(self._blackhole) if self._blackhole else None,
            **self.ws.to_json(),
            SEQUENCER_REJECT_KEY: vars(self._sequencer_reject) if self._sequencer_reject else None,
        }

    # --- parsing helpers ----------------------------------------------------------------------------

    @staticmethod
    def _matches(wanted: int | None, account_index: int | None) -> bool:
        return wanted is None or wanted == account_index

    @staticmethod
    def _account_filter(body: dict[str, Any]) -> int | None:
        value = body.get("account_index")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultError(f"account_index: must be an integer, got {value!r}")
        return value

    @staticmethod
    def _rejection_code(body: dict[str, Any]) -> tuple[int, str]:
        code = body.get("code", INJECTED_CODE)
        message = body.get("message", INJECTED_MESSAGE)
        if isinstance(code, bool) or not isinstance(code, int):
            raise FaultError(f"code: must be an integer, got {code!r}")
        if not isinstance(message, str):
            raise FaultError(f"message: must be a string, got {message!r}")
        return code, message

    @staticmethod
    def _http_error_rule(body: dict[str, Any]) -> _HttpErrors | None:
        count = int(_number(body, "http_error_next", integer=True))
        status = body.get("status", 500)
        if status not in HTTP_ERROR_STATUSES:
            raise FaultError(f"status: must be one of {HTTP_ERROR_STATUSES}, got {status!r}")
        paths = body.get("paths")
        if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
            raise FaultError('paths: must be a list of path strings such as "/api/v1/sendTx"')
        retry_after = _number(body, "retry_after_s", upper=3600) if "retry_after_s" in body else None
        return _HttpErrors(count, status, frozenset(paths) if paths else None, retry_after) if count else None

"""REST plumbing shared by reads and sends: throttling, timeouts, 429 backoff, error details."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import aiohttp
from lighter.exceptions import ApiException
from loguru import logger

from hedge_strategy.exchange.throttle import RequestThrottle, backoff_delay
from hedge_strategy.untrusted_json import UntrustedJSONError, loads_untrusted

T = TypeVar("T")

RATE_LIMITED_CODE = 23000
MAX_429_RETRIES = 5
BACKOFF_429_BASE_S = 0.2
BACKOFF_429_CAP_S = 5.0

# 429 answers waited out, per account. Keyed by the account's throttle because every REST read and send of
# an account passes its throttle along, so neither needs another argument to be counted; weak, so a closed
# account's count goes with it. `LighterAccount.rate_limit_backoffs` exposes it to the metrics.
_backoffs: WeakKeyDictionary[RequestThrottle, int] = WeakKeyDictionary()


def count_rate_limit_backoff(throttle: RequestThrottle) -> None:
    """One more 429 waited out by the account that `throttle` belongs to."""
    _backoffs[throttle] = _backoffs.get(throttle, 0) + 1


def rate_limit_backoffs(throttle: RequestThrottle) -> int:
    """How many 429 answers the account of `throttle` has waited out so far (a running total)."""
    return _backoffs.get(throttle, 0)


class VenueError(RuntimeError):
    """A REST read could not be answered (timeout, connection error, 5xx, 4xx, rate limit budget spent)."""

    def __init__(
        self, endpoint: str, detail: str, status: int | None = None, code: int | None = None
    ) -> None:
        super().__init__(f"{endpoint}: {detail}")
        self.endpoint = endpoint
        self.status = status
        self.code = code


def error_details(exc: BaseException) -> tuple[int | None, int | None, str]:
    """(HTTP status, Lighter code, message) of a failed call, as far as they can be told."""
    if isinstance(exc, ApiException):
        code, message = _body_code_message(exc)
        return exc.status, code, message or (exc.reason or "").strip() or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return None, None, "timed out"
    return None, None, f"{type(exc).__name__}: {exc}".strip()


def _body_code_message(exc: ApiException) -> tuple[int | None, str]:
    data = exc.data
    if data is not None and getattr(data, "code", None) is not None:
        return int(data.code), str(getattr(data, "message", "") or "")
    try:
        body = loads_untrusted(exc.body, "error body") if exc.body else None
    except UntrustedJSONError:
        return None, str(exc.body or "")[:200]
    if isinstance(body, dict):
        code = body.get("code")
        return (code if isinstance(code, int) else None), str(body.get("message", "") or "")
    return None, str(exc.body or "")[:200]


def is_rate_limited(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 429


def retry_after_s(exc: BaseException) -> float | None:
    """The wait a refusal asks for in its `Retry-After` header (seconds), or None. No Retry-After from the
    venue is captured (its 429 body is not either): honoured when present, never relied on."""
    headers = getattr(exc, "headers", None) if isinstance(exc, ApiException) else None
    raw = headers.get("Retry-After") if headers is not None and hasattr(headers, "get") else None
    try:
        seconds = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date, or garbage: the caller's own backoff applies
    return seconds if seconds is not None and seconds >= 0 else None


def rate_limit_delay(exc: BaseException | None, attempt: int) -> float:
    """How long to wait before retrying a rate-limited request: its Retry-After when it sends one (at most
    `BACKOFF_429_CAP_S`: past that the retry budget runs out and the caller decides, e.g. the chase within its
    transport budget), else exponential backoff with full jitter from `BACKOFF_429_BASE_S` up to the cap."""
    asked = retry_after_s(exc) if exc is not None else None
    if asked is not None:
        return min(asked, BACKOFF_429_CAP_S)
    return backoff_delay(attempt, BACKOFF_429_BASE_S, BACKOFF_429_CAP_S)


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, aiohttp.ClientError, OSError)
# pydantic's ValidationError (a body that is JSON but not an object) is a ValueError
READ_ERRORS: tuple[type[BaseException], ...] = (ApiException, ValueError, *TRANSPORT_ERRORS)


async def call_rest(
    endpoint: str,
    call: Callable[[], Awaitable[T]],
    *,
    throttle: RequestThrottle,
    timeout_s: float,
    max_429_retries: int = MAX_429_RETRIES,
) -> T:
    """Run one REST read under the throttle and a timeout, retrying 429s with jittered backoff.

    Raises VenueError for anything that leaves no usable answer.
    """
    for attempt in range(max_429_retries + 1):
        await throttle.acquire(endpoint)
        try:
            async with asyncio.timeout(timeout_s):
                return await call()
        except Exception as exc:
            status, code, message = error_details(exc)
            if is_rate_limited(exc) and attempt < max_429_retries:
                delay = rate_limit_delay(exc, attempt)
                count_rate_limit_backoff(throttle)
                logger.warning("{} rate limited (429); retrying in {:.2f} s", endpoint, delay)
                await asyncio.sleep(delay)
                continue
            if isinstance(exc, READ_ERRORS):
                raise VenueError(endpoint, message, status, code) from exc
            raise
    raise AssertionError("unreachable")  # the loop either returns or raises


def model_dict(model: Any) -> dict[str, Any]:
    """An SDK response model as a plain dict (the SDK's lenient parsing may leave fields None)."""
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    result = model.to_dict() if hasattr(model, "to_dict") else None
    return result if isinstance(result, dict) else {}

"""Unit tests: classification of sendTx answers and failures (real SDK models and exceptions)."""

import aiohttp
import pytest
from lighter.exceptions import ApiException, BadRequestException, ServiceException
from lighter.models.resp_send_tx import RespSendTx

from hedge_strategy.exchange.errors import RefusalKind, classify_refusal
from hedge_strategy.exchange.rest import BACKOFF_429_CAP_S, rate_limit_delay, retry_after_s
from hedge_strategy.exchange.sender import SendStatus, classify_answer, classify_failure


def _answer(body: dict[str, object]) -> RespSendTx:
    return RespSendTx.from_dict(body)


def test_http_200_code_200_is_accepted() -> None:
    result = classify_answer(_answer({"code": 200, "message": "", "tx_hash": "ab"}), "signed")
    assert (result.status, result.code, result.tx_hash) == (SendStatus.ACCEPTED, 200, "ab")


def test_http_200_other_code_is_rejected() -> None:
    body = {"code": 21120, "message": "invalid signature", "tx_hash": ""}
    result = classify_answer(_answer(body), "signed")
    assert (result.status, result.code, result.message) == (SendStatus.REJECTED, 21120, "invalid signature")
    assert result.refusal is not None and result.refusal.kind is RefusalKind.FINAL
    assert not result.worth_retrying


def test_http_200_without_code_is_unknown() -> None:
    assert classify_answer(_answer({"tx_hash": "ab"}), "signed").status is SendStatus.UNKNOWN


def test_http_400_is_rejected_with_code_and_message() -> None:
    body = '{"code": 21104, "message": "invalid nonce"}'
    exc = BadRequestException(status=400, reason="Bad Request", body=body)
    result = classify_failure(exc, "signed")
    assert (result.status, result.code) == (SendStatus.REJECTED, 21104)
    assert "invalid nonce" in result.message
    assert result.refusal is not None and result.refusal.kind is RefusalKind.NONCE and result.worth_retrying


def test_429_after_budget_is_rejected_23000() -> None:
    exc = ApiException(status=429, reason="Too Many Requests", body='{"code": 23000, "message": "too many"}')
    result = classify_failure(exc, None)
    assert (result.status, result.code) == (SendStatus.REJECTED, 23000)
    assert result.refusal is not None and result.refusal.kind is RefusalKind.TRANSPORT


def test_a_retry_after_header_is_the_wait_when_the_venue_sends_one() -> None:
    def limited(retry_after: str | None) -> ApiException:
        body = '{"code": 23000, "message": "too many"}'
        exc = ApiException(status=429, reason="Too Many Requests", body=body)
        exc.headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return exc

    assert retry_after_s(limited("1.5")) == 1.5
    assert classify_failure(limited("1.5"), None).retry_after_s == 1.5  # the chase waits it out too
    assert rate_limit_delay(limited("0.25"), attempt=4) == 0.25
    # A longer one is cut to the cap here; the chase waits it out whole, within its transport budget
    assert rate_limit_delay(limited("60"), attempt=0) == BACKOFF_429_CAP_S
    for absent in (limited(None), limited("Wed, 21 Oct 2026 07:28:00 GMT"), limited("-1")):
        assert retry_after_s(absent) is None
        assert 0 < rate_limit_delay(absent, attempt=0) <= BACKOFF_429_CAP_S  # the jittered backoff


def test_ambiguous_failures_are_unknown() -> None:
    for exc in (ServiceException(status=502, reason="Bad Gateway", body="<html>"), TimeoutError(),
                aiohttp.ServerDisconnectedError(), ConnectionResetError("reset"),
                ApiException(status=0, reason="Unsupported content type")):
        result = classify_failure(exc, "signed")
        assert result.status is SendStatus.UNKNOWN, exc
        assert result.tx_hash == "signed"
        assert result.worth_retrying


@pytest.mark.parametrize(("http", "code", "message", "kind"), [
    # Codes quoted from the venue (tests/wire/rest/sendTx/): decided by the code whatever the words.
    (400, 21104, "invalid nonce", RefusalKind.NONCE),
    (400, 400, "invalid nonce", RefusalKind.NONCE),  # lighter-python #60: the code is 400, the text says it
    (400, 21120, "invalid signature", RefusalKind.FINAL),
    (400, 21136, "invalid PublicKey, update the sdk to the latest version", RefusalKind.FINAL),
    (400, 21511, "invalid tx type for account", RefusalKind.FINAL),
    (400, 21120, "anything", RefusalKind.FINAL),
    # No venue code known: the message decides.
    (400, 21130, "not enough margin", RefusalKind.FINAL),
    (200, 99999, "Insufficient margin for order", RefusalKind.FINAL),
    (400, 21121, "size below minimum 0.00020", RefusalKind.FINAL),
    (400, 21124, "quote amount below minimum 10", RefusalKind.FINAL),
    # Transport: the same order may go again.
    (429, 23000, "too many requests", RefusalKind.TRANSPORT),
    (503, None, "Service Unavailable", RefusalKind.TRANSPORT),
    (None, None, "timed out", RefusalKind.TRANSPORT),
    (200, 23000, "Too Many Requests", RefusalKind.TRANSPORT),
    # Anything else is UNKNOWN: retried within the chase's attempts, never fatal by guess.
    (400, 21149, "integrator is not approved", RefusalKind.UNKNOWN),
    (400, 21727, "invalid client order index", RefusalKind.UNKNOWN),
    (400, 21105, "transaction expired", RefusalKind.UNKNOWN),
    (400, 29500, "injected failure", RefusalKind.UNKNOWN),
    (400, None, "", RefusalKind.UNKNOWN),
])
def test_refusals_are_classified_by_code_and_message(
        http: int | None, code: int | None, message: str, kind: RefusalKind) -> None:
    refusal = classify_refusal(http, code, message)
    assert refusal.kind is kind
    assert refusal.worth_retrying is (kind is not RefusalKind.FINAL)

"""Unit tests: classification of sendTx answers and failures (real SDK models and exceptions)."""

import aiohttp
from lighter.exceptions import ApiException, BadRequestException, ServiceException
from lighter.models.resp_send_tx import RespSendTx

from hedge_strategy.exchange.sender import SendStatus, classify_answer, classify_failure


def _answer(body: dict[str, object]) -> RespSendTx:
    return RespSendTx.from_dict(body)


def test_http_200_code_200_is_accepted() -> None:
    result = classify_answer(_answer({"code": 200, "message": "", "tx_hash": "ab"}), "signed")
    assert (result.status, result.code, result.tx_hash) == (SendStatus.ACCEPTED, 200, "ab")


def test_http_200_other_code_is_rejected() -> None:
    result = classify_answer(_answer({"code": 21120, "message": "market not found", "tx_hash": ""}), "signed")
    assert (result.status, result.code, result.message) == (SendStatus.REJECTED, 21120, "market not found")


def test_http_200_without_code_is_unknown() -> None:
    assert classify_answer(_answer({"tx_hash": "ab"}), "signed").status is SendStatus.UNKNOWN


def test_http_400_is_rejected_with_code_and_message() -> None:
    body = '{"code": 21104, "message": "invalid nonce"}'
    exc = BadRequestException(status=400, reason="Bad Request", body=body)
    result = classify_failure(exc, "signed")
    assert (result.status, result.code) == (SendStatus.REJECTED, 21104)
    assert "invalid nonce" in result.message


def test_429_after_budget_is_rejected_23000() -> None:
    exc = ApiException(status=429, reason="Too Many Requests", body='{"code": 23000, "message": "too many"}')
    result = classify_failure(exc, None)
    assert (result.status, result.code) == (SendStatus.REJECTED, 23000)


def test_ambiguous_failures_are_unknown() -> None:
    for exc in (ServiceException(status=502, reason="Bad Gateway", body="<html>"), TimeoutError(),
                aiohttp.ServerDisconnectedError(), ConnectionResetError("reset"),
                ApiException(status=0, reason="Unsupported content type")):
        result = classify_failure(exc, "signed")
        assert result.status is SendStatus.UNKNOWN, exc
        assert result.tx_hash == "signed"

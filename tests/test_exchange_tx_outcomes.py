"""The sequencer's verdict on a transaction, read from `account_tx` frames and `GET /api/v1/tx` answers
(`exchange/tx_outcomes.py`): the captured frames, the hftbacktest refusal, and what is malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lighter.exceptions import ApiException

from hedge_strategy.exchange.events import SEQUENCER_REFUSED, TxOutcome
from hedge_strategy.exchange.rest import VenueError
from hedge_strategy.exchange.throttle import RequestThrottle
from hedge_strategy.exchange.tx_outcomes import read_tx, tx_outcome, tx_outcomes
from tests.test_wire_contract_kit import frame, rest_body, skips

__all__ = ["skips"]  # the fixture, imported for pytest

QUBX = "ws/account_tx/qubx_mainnet-225671-2025-10-12.jsonl"
HFT_TX = "rest/tx/constructed_hftbacktest-testnet-2026-07-30.jsonl"


def tx(ae: Any = "", *, status: int = 2, tx_hash: str = "ab" * 40, coid: int = 11000000000001
       ) -> dict[str, Any]:
    return {"hash": tx_hash, "type": 14, "info": json.dumps({"ClientOrderIndex": coid, "Nonce": 3}),
            "event_info": json.dumps({"m": 1, "ae": ae}), "status": status, "account_index": 101}


def test_captured_account_tx_frames_are_executed_transactions(skips: list[str]) -> None:
    assert list(tx_outcomes(frame(QUBX, 1), 225671)) == []  # the snapshot lists none
    (outcome,) = tx_outcomes(frame(QUBX, 2), 225671)
    assert outcome == TxOutcome(
        account_index=225671,
        tx_hash="f4957a2678e459f9c882f1f8d2849c26a070ce0c5a9a963d3131e2d2040932f892f7e69a380df537",
        tx_type=14, client_order_index=None,  # Qubx sent ClientOrderIndex 0: none of ours
        refused=False, code=None, reason="")
    assert outcome.describe() == "executed"
    assert list(tx_outcomes(frame(QUBX, 2), 7)) == []  # another account's frame names nothing of 7's
    assert skips == []


async def test_a_refused_create_reads_as_refused_with_the_venues_code(skips: list[str]) -> None:
    executed = tx_outcome(await rest_body(HFT_TX, 1), 516)
    refused = tx_outcome(await rest_body(HFT_TX, 2), 516)
    assert executed is not None and (executed.refused, executed.client_order_index) == (False, 424242424249)
    assert refused is not None and refused.refused and refused.client_order_index == 424242424242
    assert (refused.code, refused.reason) == (21728, "client order index already exists")
    assert refused.describe() == f"{SEQUENCER_REFUSED}: 21728 client order index already exists"
    assert skips == []


def test_status_is_not_the_verdict_ae_is() -> None:
    assert tx_outcome(tx(json.dumps({"code": 29500, "message": "x"})), 101).refused  # status 2, ae set
    assert tx_outcome(tx(status=1), 101) is None  # pending (inferred): no verdict yet
    failed = tx_outcome(tx(status=0), 101)  # "failed" without a reason (inferred)
    assert failed is not None and failed.refused and (failed.code, failed.reason) == (None, "status 0")
    text = tx_outcome(tx("price band"), 101)  # an ae that is not JSON is the reason as is
    assert text is not None and (text.refused, text.code, text.reason) == (True, None, "price band")


def test_malformed_transactions_are_logged_and_skipped(skips: list[str]) -> None:
    good = tx(tx_hash="cd" * 40)
    bad = [{"type": 14}, {**tx(), "event_info": "not json"}, {**tx(), "event_info": "[1]"}, "x",
           {**tx(), "hash": ""}, {**tx(), "type": "fourteen"}]
    frame_ = {"type": "update/account_tx", "channel": "account_tx:101", "txs": [*bad, good]}
    assert [o.tx_hash for o in tx_outcomes(frame_, 101)] == ["cd" * 40]
    assert len(skips) == len(bad)
    no_event_info = tx_outcome({**tx(), "event_info": ""}, 101)
    assert no_event_info is not None and not no_event_info.refused
    unreadable_info = tx_outcome({**tx(), "info": "{"}, 101)
    assert unreadable_info is not None and unreadable_info.client_order_index is None


class FakeTxApi:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    async def tx(self, by: str, value: str, _request_timeout: float) -> Any:
        self.asked.append((by, value))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(("answer", "refused"), [
    (tx(json.dumps({"code": 21728, "message": "client order index already exists"})), True),
    (tx(""), False),
    (ApiException(status=400, reason="Bad Request"), None),  # not known: the venue's answer is not captured
    ({"code": 200, "hash": "ab" * 40}, None),  # unreadable: no verdict, nothing decided
])
async def test_a_read_by_hash(answer: Any, refused: bool | None) -> None:
    api = FakeTxApi(answer)
    outcome = await read_tx(api, "ab" * 40, 101, throttle=RequestThrottle("premium"), timeout_s=1.0)  # type: ignore[arg-type]
    assert api.asked == [("hash", "ab" * 40)]
    assert (outcome.refused if outcome is not None else None) is refused


async def test_a_read_the_exchange_does_not_answer_raises() -> None:
    api = FakeTxApi(ApiException(status=500, reason="Internal Server Error"))
    with pytest.raises(VenueError):
        await read_tx(api, "ab" * 40, 101, throttle=RequestThrottle("premium"), timeout_s=1.0)  # type: ignore[arg-type]

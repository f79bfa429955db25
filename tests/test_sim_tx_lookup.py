"""The simulator's record of settled transactions (lighter_sim/tx_history.py), as a client reads it:
`GET /api/v1/tx?by=hash` in lighter-sdk 1.1.8's `EnrichedTx` shape, and `update/account_tx` frames; the
sequencer's refusal is in `event_info.ae`, with the same `status` 2 as an executed transaction (captured).
A transaction's hash is the one its signer returned, as on the venue (lighter_sim/crypto/txhash.py)."""

from __future__ import annotations

import json
from typing import Any

from lighter import models

from tests.fixtures.sim import SimFactory, SimProcess, SimStream
from tests.test_sim_faults import BTC, LIMIT, MIN_LOT, POST_ONLY, place

TX_NOT_FOUND = {"code": 21500, "message": "transaction not found"}


def ae_of(tx: dict[str, Any]) -> Any:
    ae = json.loads(tx["event_info"])["ae"]
    return json.loads(ae) if ae else ae


async def settled(ws: SimStream, tx_hash: str) -> dict[str, Any]:
    frame = await ws.expect("update/account_tx")
    (tx,) = frame["txs"]
    assert tx["hash"] == tx_hash and frame["channel"] == "account_tx:101"
    return tx


async def lookup(sim: SimProcess, tx_hash: str) -> dict[str, Any]:
    body = await sim.get("/api/v1/tx", {"by": "hash", "value": tx_hash})
    models.EnrichedTx.model_validate(body)  # strict: every field the SDK requires, with its type
    return body


async def test_an_executed_and_a_refused_transaction_as_the_stream_and_rest_tell_them(
        sim: SimProcess) -> None:
    client = await sim.signer(101)
    async with sim.stream() as ws:
        await ws.subscribe("account_tx/101", auth=sim.auth_token(client))
        snapshot = await ws.expect("subscribed/account_tx")
        assert snapshot == {"channel": "account_tx:101", "type": "subscribed/account_tx"}  # as captured

        resp, err = await place(client, 11000000000071, 949000)
        assert err is None
        tx = await settled(ws, resp.tx_hash)
        assert (tx["status"], tx["type"], tx["nonce"], ae_of(tx)) == (2, 14, 0, "")
        assert json.loads(tx["info"])["ClientOrderIndex"] == 11000000000071
        body = await lookup(sim, resp.tx_hash)
        assert {k: body[k] for k in tx} == tx and body["code"] == 200

        await sim.faults(sequencer_reject_next={"count": 1, "account_index": 101, "consume_nonce": False})
        resp, err = await place(client, 11000000000072, 949000)
        assert err is None and resp.code == 200  # accepted by the API
        tx = await settled(ws, resp.tx_hash)
        assert tx["status"] == 2  # not the verdict: ae is
        dropped = "rejected by the sequencer (fault sequencer_reject_next)"
        assert ae_of(tx) == {"code": 29500, "message": dropped}
        assert ae_of(await lookup(sim, resp.tx_hash)) == ae_of(tx)

    assert await sim.get("/api/v1/tx", {"by": "hash", "value": "00" * 40}, expect=400) == TX_NOT_FOUND
    await sim.get("/api/v1/tx", {"by": "sequence_index", "value": "1"}, expect=400)


async def test_a_transaction_waiting_for_its_speed_bump_is_not_known_yet(sim_factory: SimFactory) -> None:
    standard = {"account_index": 101, "tier": "standard", "collateral": "100000"}
    sim = await sim_factory({"speed_bumps": {"enabled": True, "standard": {"maker_ms": 60_000}},
                             "accounts": [standard]})
    client = await sim.signer(101)
    resp, err = await place(client, 11000000000081, 949000)
    assert err is None and resp.code == 200
    unknown = await sim.get("/api/v1/tx", {"by": "hash", "value": resp.tx_hash}, expect=400)
    assert unknown == TX_NOT_FOUND


async def test_every_answer_and_record_carries_the_hash_the_signer_returned(sim: SimProcess) -> None:
    client = await sim.signer(101)
    signed_hashes = []
    async with sim.stream() as ws, sim.raw_session() as session:
        await ws.subscribe("account_tx/101", auth=sim.auth_token(client))
        await ws.expect("subscribed/account_tx")
        for nonce, coid in enumerate((11000000000091, 11000000000092)):
            tx_type, tx_info, tx_hash, err = client.sign_create_order(
                BTC, coid, MIN_LOT, 949000, False, LIMIT, POST_ONLY, nonce=nonce, api_key_index=3
            )
            assert err is None, err
            signed_hashes.append(tx_hash)
            if nonce == 0:  # REST sendTx
                async with session.post(
                    sim.url + "/api/v1/sendTx", data={"tx_type": str(tx_type), "tx_info": tx_info}
                ) as resp:
                    assert (await resp.json())["tx_hash"] == tx_hash
            else:  # WebSocket jsonapi/sendtx
                request = {"id": "h", "tx_type": tx_type, "tx_info": tx_info}
                await ws.send({"type": "jsonapi/sendtx", "data": request})
                assert (await ws.expect("jsonapi/sendtx"))["tx_hash"] == tx_hash
            await settled(ws, tx_hash)
            assert (await lookup(sim, tx_hash))["hash"] == tx_hash
    logged = [r.get("tx_hash") for r in (await sim.txlog(101))["101"]]
    assert logged == signed_hashes

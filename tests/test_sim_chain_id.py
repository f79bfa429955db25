"""End to end: a lighter-sdk client signing for another chain than the simulator's is refused as the venue
refuses it, 21120 "invalid signature" (lighter-go issue #19), over REST sendTx and WebSocket jsonapi/sendtx.

The SDK takes its chain id from `SignerClient(chain_id=...)`, else from the URL (`mainnet.zklighter` 304,
`testnet.zklighter` 300, anything else 304: lighter/signer_client.py). The bot always passes
`exchange.chain_id`, so the wrong client here is the one a config saying 300 (testnet) would make, against a
simulator that stands for mainnet (`sim.chain_id` 304, its default).
"""

from __future__ import annotations

import lighter

from tests.fixtures.sim import SimProcess

ACCOUNT = 1300  # used by no other test: lighter-go keeps one signer per (account, api key) per process
KEY = 3
BTC = 1
LIMIT = lighter.SignerClient.ORDER_TYPE_LIMIT
POST_ONLY = lighter.SignerClient.ORDER_TIME_IN_FORCE_POST_ONLY
MIN_LOT = 20
REFUSED = {"code": 21120, "message": "invalid signature"}


async def test_a_client_signing_for_another_chain_gets_21120_over_rest_and_websocket(sim: SimProcess) -> None:
    assert (await sim.get("/"))["network_id"] == 304
    await sim.register_account(ACCOUNT)
    testnet = await sim.signer(ACCOUNT, chain_id=300)

    _, tx_info, _, err = testnet.sign_create_order(
        BTC, 41, MIN_LOT, 949000, False, LIMIT, POST_ONLY, nonce=0, api_key_index=KEY
    )
    assert err is None, err
    async with sim.raw_session() as session:
        form = {"tx_type": "14", "tx_info": tx_info}
        async with session.post(sim.url + "/api/v1/sendTx", data=form) as resp:
            assert (resp.status, await resp.json()) == (400, REFUSED)
    async with sim.stream() as ws:
        await ws.send({"type": "jsonapi/sendtx", "data": {"id": "x", "tx_type": 14, "tx_info": tx_info}})
        assert await ws.expect("jsonapi/sendtx") == {**REFUSED, "id": "x", "type": "jsonapi/sendtx"}
    # Through the SDK's own send path the error reaches the caller with the venue's code and words.
    _, resp, err = await testnet.create_order(BTC, 42, MIN_LOT, 949000, False, LIMIT, POST_ONLY)
    assert resp is None and "21120" in err and "invalid signature" in err

    # The same key signing for the simulator's chain is accepted: the chain id was the only fault.
    mainnet = await sim.signer(ACCOUNT)
    _, resp, err = await mainnet.create_order(BTC, 43, MIN_LOT, 949000, False, LIMIT, POST_ONLY, nonce=0)
    assert err is None and resp.code == 200
    log = (await sim.txlog(ACCOUNT))[str(ACCOUNT)]
    assert [r["code"] for r in log] == [21120, 21120, 21120, 200]
    assert "it verifies for chain 300: the client signs for another chain id" in sim.log()

"""The sim as the real lighter-sdk sees it: status, keys, check_client, nonces, metadata."""

from __future__ import annotations

import asyncio

import lighter
from lighter import models

from tests.fixtures.sim import SimProcess


async def test_check_client_passes_for_registered_key_and_fails_for_another(sim: SimProcess) -> None:
    client = await sim.signer(101)
    assert await asyncio.to_thread(client.check_client) is None

    stranger_private, _ = lighter.create_api_key()[:2]
    stranger = lighter.SignerClient(
        url=sim.url, account_index=102, api_private_keys={7: stranger_private}, chain_id=304
    )
    try:
        error = await asyncio.to_thread(stranger.check_client)
    finally:
        await stranger.close()
    assert error is not None and "no api key returned for index 7" in error


async def test_status_next_nonce_and_apikeys_validate_strictly(sim: SimProcess) -> None:
    client = await sim.signer(101)
    status = await lighter.RootApi(client.api_client).status()
    assert status.status == 200
    nonce = await client.tx_api.next_nonce(account_index=101, api_key_index=3)
    models.NextNonce.model_validate(nonce.to_dict())
    assert nonce.nonce == 0
    keys = await lighter.AccountApi(client.api_client).apikeys(account_index=101)
    strict = models.AccountApiKeys.model_validate(keys.to_dict())
    assert [(k.account_index, k.api_key_index) for k in strict.api_keys] == [(101, 3)]
    assert strict.api_keys[0].public_key == sim_public_key(sim, 101)


def sim_public_key(sim: SimProcess, account: int) -> str:
    import json

    return json.loads((sim.state_dir / "api_keys.json").read_text())[str(account)]["3"]

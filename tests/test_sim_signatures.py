"""The simulator's signature check (lighter_sim/crypto/, signatures.py) against the real signer.

Ground truth is lighter-sdk's bundled Go signer (`SignerClient.sign_*`): the message our port computes must be
the tx hash the signer returns, and our Schnorr verification must accept its signatures for the chain it
signed for and refuse them for any other chain, another key or a changed field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import lighter
import pytest

from lighter_sim.config import parse_sim_section
from lighter_sim.crypto.poseidon2 import permute
from lighter_sim.crypto.txhash import tx_hash_hex
from lighter_sim.engine import Engine, SimError
from lighter_sim.markets import MarketSpec
from lighter_sim.signatures import SignatureCheck, VerifyMode, signature_verifies
from lighter_sim.txparse import parse_tx
from lighter_sim.validation import SimConfigError
from tests.fixtures.wire import CORPUS_DIR, read_file

MAINNET, TESTNET = 304, 300
KEY = 3
# Accounts no other test uses: lighter-go keeps ONE signer client per (account, api key) in the process,
# so a client for another chain on a shared account would change what other tests sign.
ON_MAINNET, ON_TESTNET = 7304, 7300
BTC = 1
SPECS = [MarketSpec("BTC", BTC, 5, 1, Decimal("0.00020"), Decimal("10"), Decimal("95000.0"))]
FEES = {"premium": (Decimal(0), Decimal(0)), "standard": (Decimal(0), Decimal(0))}

Signed = tuple[int, str, str]  # tx_type, tx_info, tx_hash

# One of each tx the simulator accepts, with and without L2TxAttributes (self-trade mode, cancel-all market,
# order version, integrator fees).
TXS: dict[str, Callable[[Any, int], Any]] = {
    "create": lambda c, n: c.sign_create_order(BTC, 17, 20, 949000, False, 0, 2, nonce=n, api_key_index=KEY),
    "create+attributes": lambda c, n: c.sign_create_order(
        BTC, 18, 20, 951000, True, 0, 1, False, 0, -1, self_trade_behavior_mode=2, nonce=n, api_key_index=KEY
    ),
    "cancel": lambda c, n: c.sign_cancel_order(BTC, 17, nonce=n, api_key_index=KEY),
    "cancel_all": lambda c, n: c.sign_cancel_all_orders(0, 0, nonce=n, api_key_index=KEY),
    "cancel_all+market": lambda c, n: c.sign_cancel_all_orders(
        0, 0, cancel_all_market_index=BTC, nonce=n, api_key_index=KEY
    ),
    "modify": lambda c, n: c.sign_modify_order(BTC, 17, 40, 948000, nonce=n, api_key_index=KEY),
    "modify+version": lambda c, n: c.sign_modify_order(
        BTC, 17, 40, 948000, order_version=3, nonce=n, api_key_index=KEY
    ),
    "create+integrator": lambda c, n: c.sign_create_order(
        BTC, 19, 20, 949000, False, 0, 2, integrator_account_index=5, integrator_taker_fee=10,
        integrator_maker_fee=5, nonce=n, api_key_index=KEY,
    ),
}


class Keyholder:
    """A key pair and a real SignerClient for one account, signing for one chain."""

    def __init__(self, account: int, chain_id: int) -> None:
        self.account = account
        private, public, err = lighter.create_api_key()
        assert err is None, err
        self.public = public.removeprefix("0x")
        self.client = lighter.SignerClient(
            url="http://127.0.0.1:1", account_index=account, api_private_keys={KEY: private},
            chain_id=chain_id,
        )

    def sign(self, kind: str, nonce: int = 0) -> Signed:
        tx_type, tx_info, tx_hash, err = TXS[kind](self.client, nonce)
        assert err is None, err
        return tx_type, tx_info, tx_hash


@pytest.fixture
async def mainnet() -> AsyncIterator[Keyholder]:
    holder = Keyholder(ON_MAINNET, MAINNET)
    yield holder
    await holder.client.close()


@pytest.fixture
async def testnet() -> AsyncIterator[Keyholder]:
    holder = Keyholder(ON_TESTNET, TESTNET)
    yield holder
    await holder.client.close()


def verifies(chain_id: int, signed: Signed, public: str) -> bool:
    tx_type, tx_info, _ = signed
    return signature_verifies(chain_id, parse_tx(tx_type, tx_info), public)


def with_fields(signed: Signed, **changes: Any) -> Signed:
    tx_type, tx_info, tx_hash = signed
    return tx_type, json.dumps({**json.loads(tx_info), **changes}), tx_hash


def test_poseidon2_permutation_matches_the_reference_vector() -> None:
    # poseidon_crypto hash/poseidon2_goldilocks_plonky2/poseidon2_test.go TestPermute (commit 315971c).
    state = [5417613058500526590, 2481548824842427254, 6473243198879784792, 1720313757066167274,
             2806320291675974571, 7407976414706455446, 1105257841424046885, 7613435757403328049,
             3376066686066811538, 5888575799323675710, 6689309723188675948, 2468250420241012720]
    assert permute(state) == [5364184781011389007, 15309475861242939136, 5983386513087443499,
                              886942118604446276, 14903657885227062600, 7742650891575941298,
                              1962182278500985790, 10213480816595178755, 3510799061817443836,
                              4610029967627506430, 7566382334276534836, 2288460879362380348]


@pytest.mark.parametrize("kind", sorted(TXS))
async def test_the_signers_tx_verifies_and_its_hash_is_our_message(mainnet: Keyholder, kind: str) -> None:
    signed = mainnet.sign(kind, nonce=5)
    tx_type, tx_info, tx_hash = signed
    assert tx_hash_hex(MAINNET, tx_type, json.loads(tx_info)) == tx_hash
    assert verifies(MAINNET, signed, mainnet.public)


def test_the_hash_the_venue_gave_captured_transactions_is_our_message() -> None:
    # Two mainnet creates as the venue listed them on account_tx, with their signed info and hash: the venue's
    # tx hash is the signed message (lighter-go `SignedHash`), so the simulator can answer the same one.
    captured = CORPUS_DIR / "ws/account_tx/qubx_mainnet-225671-2025-10-12.jsonl"
    txs = [tx for record in read_file(captured) for tx in record.payload.get("txs", [])]
    assert len(txs) == 2
    for tx in txs:
        assert tx_hash_hex(MAINNET, tx["type"], json.loads(tx["info"])) == tx["hash"]
        assert tx_hash_hex(TESTNET, tx["type"], json.loads(tx["info"])) != tx["hash"]


@pytest.mark.parametrize("kind", sorted(TXS))
async def test_a_tx_signed_for_another_chain_does_not_verify(testnet: Keyholder, kind: str) -> None:
    signed = testnet.sign(kind)
    assert not verifies(MAINNET, signed, testnet.public)
    assert verifies(TESTNET, signed, testnet.public)  # the same tx is sound on the chain it was signed for


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("create", {"Price": 949001}),
        ("create", {"BaseAmount": 2000}),
        ("create", {"Nonce": 6}),
        ("create", {"L2TxAttributes": {"6": 2}}),
        ("create+attributes", {"L2TxAttributes": None}),
        ("cancel", {"Index": 18}),
        ("cancel_all+market", {"L2TxAttributes": {"5": 0}}),
        ("modify", {"ExpiredAt": 1}),
        ("modify+version", {"L2TxAttributes": {"8": 4}}),
    ],
)
async def test_a_changed_field_does_not_verify(
    mainnet: Keyholder, kind: str, changes: dict[str, Any]
) -> None:
    signed = mainnet.sign(kind)
    assert verifies(MAINNET, signed, mainnet.public)
    assert not verifies(MAINNET, with_fields(signed, **changes), mainnet.public)


async def test_another_key_or_a_changed_signature_does_not_verify(
    mainnet: Keyholder, testnet: Keyholder
) -> None:
    signed = mainnet.sign("create")
    assert not verifies(MAINNET, signed, testnet.public)
    sig = bytearray(base64.b64decode(json.loads(signed[1])["Sig"]))
    sig[3] ^= 1  # s
    changed = with_fields(signed, Sig=base64.b64encode(bytes(sig)).decode())
    assert not verifies(MAINNET, changed, mainnet.public)
    assert not verifies(MAINNET, signed, "00" * 39 + "01")  # not a point of the curve


# --- the modes, through the engine -------------------------------------------------------------------------


def engine_for(holder: Keyholder, mode: VerifyMode) -> Engine:
    engine = Engine(SPECS, FEES, check_signature=SignatureCheck(MAINNET, mode))
    engine.upsert_account(holder.account, "premium", Decimal(100000), {KEY: holder.public})
    return engine


def send(engine: Engine, signed: Signed) -> int:
    """The code the engine answers: 200 (then the tx is executed at once), or the SimError's code (then
    nothing was consumed)."""
    account = json.loads(signed[1])["AccountIndex"]
    nonce = engine.next_nonce(account, KEY)
    try:
        engine.execute(engine.accept_tx(signed[0], signed[1], 1))
    except SimError as refused:
        assert engine.next_nonce(account, KEY) == nonce
        if refused.code == 21120:
            assert refused.message == "invalid signature"  # the venue's message (lighter-go issue #19)
        return refused.code
    return 200


async def test_first_per_key_verifies_until_a_key_proves_itself_then_again_after_re_registration(
    mainnet: Keyholder, testnet: Keyholder
) -> None:
    engine = engine_for(testnet, "first_per_key")
    assert send(engine, testnet.sign("create", nonce=0)) == 21120  # signed for 300, the sim is 304
    assert send(engine, testnet.sign("create", nonce=0)) == 21120  # a refusal proves nothing: still checked
    engine = engine_for(mainnet, "first_per_key")
    assert send(engine, mainnet.sign("create", nonce=0)) == 200
    # Trusted from now on: a changed field is not seen (the documented cost of this mode).
    assert send(engine, with_fields(mainnet.sign("cancel", nonce=1), Index=99)) == 21123
    # Another public key registered for the same account and index is verified again.
    engine.upsert_account(mainnet.account, "premium", Decimal(100000), {KEY: testnet.public})
    assert send(engine, mainnet.sign("cancel_all", nonce=1)) == 21120


async def test_all_verifies_every_tx_and_off_none(mainnet: Keyholder, testnet: Keyholder) -> None:
    every = engine_for(mainnet, "all")
    assert send(every, mainnet.sign("create", nonce=0)) == 200
    assert send(every, with_fields(mainnet.sign("modify", nonce=1), Price=948001)) == 21120
    assert send(every, mainnet.sign("modify", nonce=1)) == 200
    unchecked = engine_for(testnet, "off")
    assert send(unchecked, testnet.sign("create", nonce=0)) == 200


def test_the_setting_defaults_to_first_per_key_and_refuses_other_words() -> None:
    config = parse_sim_section({})
    assert (config.verify_signatures, config.chain_id) == ("first_per_key", MAINNET)
    assert parse_sim_section({"verify_signatures": "all", "chain_id": TESTNET}).chain_id == TESTNET
    with pytest.raises(SimConfigError) as refused:
        parse_sim_section({"verify_signatures": "sometimes"})
    assert refused.value.lines == (
        "sim.verify_signatures: expected one of first_per_key, all, off, got 'sometimes'",
    )

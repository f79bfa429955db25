"""Every error code the simulator answers, in ONE table, each marked verified (seen from the venue) or
invented.

Verified means the code, with this meaning, was seen in a body captured from Lighter or quoted from Lighter's
own documentation; the source is named. Invented means the venue's code for that situation is not known from
any public capture: the simulator uses a code of its own, and a client must not treat it as the venue's word
(an unknown code is retryable, never final by guess). Messages of verified codes are the venue's wording where
it was captured; otherwise they are ours.

REST error bodies are `{"code": N, "message": "..."}` (captured: every error body in the corpus has exactly
these two keys). The HTTP status is the captured one where known (401 for 20013 on accountLimits); 400
elsewhere, as lighter-sdk's OpenAPI declares (`'400': "ResultCode"`) and lighter-python issue #60 shows.

The WebSocket's own codes (30xxx) are here too; they travel in frames (`ws_frames.nested_error` /
`typed_error`, which hold the frame wording), never as an HTTP body, so their `http_status` is unused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    http_status: int
    verified: bool
    source: str  # where the venue showed it (verified), or why we made it up (invented)


def _v(code: int, name: str, source: str, http_status: int = 400) -> ErrorCode:
    return ErrorCode(code, name, http_status, True, source)


def _i(code: int, name: str, why: str, http_status: int = 400) -> ErrorCode:
    return ErrorCode(code, name, http_status, False, why)


TABLE: tuple[ErrorCode, ...] = (
    # --- request validation (20xxx) ----------------------------------------------------------------------
    _v(
        20001,
        "invalid param",
        "corpus rest/accountActiveOrders (testnet 2026-08-01): "
        "'invalid param : auth query param and Authorization header are empty'; ws control 'invalid param : "
        "auth field is required'. The sim also uses it for every bad query parameter (message wording ours)",
    ),
    _v(
        20013,
        "invalid auth",
        "corpus rest/accountLimits (testnet 2026-07-30, HTTP 401): 'invalid auth: invalid "
        "deadline'; ws control (Qubx, Oct 2025): 'invalid auth: expired token: <channel>'",
        http_status=401,
    ),
    # --- transactions (21xxx) ----------------------------------------------------------------------------
    _v(21100, "account not found", "lighter-python issue #132: {'code':21100,'message':'account not found'}"),
    _v(
        21104,
        "invalid nonce",
        "corpus rest/sendTx (testnet 2026-07-30); Lighter troubleshooting page; "
        "NautilusTrader LIGHTER_ERROR_CODE_INVALID_NONCE",
    ),
    _v(
        21105,
        "batch nonces not consecutive",
        "Lighter troubleshooting page ('Batch nonces must be consecutive (21105)'); the message is ours",
    ),
    _v(
        21108,
        "invalid PublicKey",
        "Lighter troubleshooting page: 'invalid PublicKey, please run changePubKey "
        "(21108)': the key at that ApiKeyIndex is not registered for that AccountIndex",
    ),
    _v(
        21120,
        "invalid signature",
        "lighter-go issue #19 / PR #9: {'code':21120,'message':'invalid signature'} (a tx signed for another "
        "chain id). The sim answers it for a Sig that is not base64 of 80 bytes, and for a Sig that does not "
        "verify for sim.chain_id and the registered key (signatures.py, sim.verify_signatures)",
    ),
    _v(21511, "invalid tx type", "lighter-go issue #5: 'invalid tx type for account'"),
    _v(21727, "invalid client order index", "corpus ws/sendtx (mainnet 2026-08 jsonapi/sendtx answer)"),
    _v(
        21728,
        "client order index already exists",
        "hftbacktest testnet probe 2026-07-30 (docs/design-lighter-connector.md §4.11): a create reusing a "
        "live client order index is answered 200 and refused by the sequencer; the code shows only in the "
        "tx's event_info.ae (GET /api/v1/tx, account_tx), never as an HTTP body",
    ),
    _i(
        21101,
        "api key not found",
        "nextNonce for an API key index the account does not have: the venue's "
        "answer to that read is not captured (sendTx with such a key answers the verified 21108)",
    ),
    _i(
        21106,
        "malformed transaction",
        "tx_info that is not the signer's JSON, or a bad sendTxBatch form; "
        "the venue's code for a malformed body is not captured",
    ),
    _i(
        21121,
        "size below minimum",
        "no public capture shows the venue's code for a size under min_base_amount",
    ),
    _i(21122, "price out of range", "no public capture shows the venue's code for a price of 0 or >= 2^32"),
    _i(21123, "order not found", "cancel/modify of an order that is not open; venue code not captured"),
    _i(
        21124,
        "quote below minimum",
        "no public capture shows the venue's code for a notional under min_quote_amount",
    ),
    _i(21125, "too many open orders", "the venue caps orders per market; its code is not captured"),
    _i(
        21901,
        "market not found",
        "was 21120 until the venue's 21120 was seen to mean 'invalid signature'; "
        "the venue's code for an unknown MarketIndex is not captured",
    ),
    _i(
        21902,
        "transaction expired",
        "ExpiredAt in the past; was 21105, which the venue uses for "
        "non-consecutive batch nonces. The venue's code for an expired tx is not captured",
    ),
    # --- transport ---------------------------------------------------------------------------------------
    _i(
        23000,
        "too many requests",
        "HTTP 429 body; no 429 body from the venue's REST API is captured",
        http_status=429,
    ),
    _i(21500, "transaction not found",
       "GET /api/v1/tx of a hash the sequencer has not settled (or never saw); the venue's answer is not "
       "captured"),
    _i(29500, "injected failure", "default code of the sendTx rejection faults (POST /sim/faults)"),
    # --- WebSocket frames (30xxx; tests/wire/README.md fact 12) ---------------------------------------------
    _v(
        30003,
        "already subscribed",
        "corpus ws/control (mainnet 2026-07): {'error':{'code':30003,'message':'Already "
        "Subscribed to : order_book:0'}}; no snapshot follows",
    ),
    _v(
        30005,
        "invalid channel",
        "corpus ws/control (mainnet 2026-07): 'Invalid Channel' (unknown channel) and "
        "'Invalid Channel:  (marketId)' (unknown market); the socket stays open",
    ),
    _i(
        30007,
        "invalid data",
        "a client frame that is not a JSON object, has no known type, or a sendtx without an object data: "
        "the code and 'Invalid Data' come from a public client's mock of the venue, not from a capture",
    ),
    _v(
        30009,
        "too many websocket messages",
        "corpus ws/control/hftbacktest_mainnet-2026-08-rate-limit: 'Too Many Websocket Messages!', "
        "one per refused frame, the connection stays open",
    ),
    _i(
        30012,
        "subscribe failed",
        "past 100 subscriptions on one connection: public clients name 30012 'subscribe failed', but "
        "neither its message nor the venue's answer to the 101st subscription is captured",
    ),
)

BY_CODE: dict[int, ErrorCode] = {entry.code: entry for entry in TABLE}

# Codes the venue is known to answer that the simulator never produces (for reference; not answered).
VENUE_CODES_NOT_PRODUCED: dict[int, str] = {
    21136: "invalid PublicKey, update the sdk to the latest version (lighter-python issues #101, #103)",
    21149: "integrator is not approved (NautilusTrader consts; corpus ws/sendtx)",
}

INVALID_PARAM = 20001
INVALID_AUTH = 20013
ACCOUNT_NOT_FOUND = 21100
API_KEY_NOT_FOUND = 21101
INVALID_NONCE = 21104
BATCH_NONCES_NOT_CONSECUTIVE = 21105
INVALID_TX = 21106
INVALID_PUBLIC_KEY = 21108
INVALID_SIGNATURE = 21120
INVALID_SIZE = 21121
INVALID_PRICE = 21122
ORDER_NOT_FOUND = 21123
QUOTE_TOO_SMALL = 21124
TOO_MANY_ORDERS = 21125
INVALID_TX_TYPE = 21511
INVALID_CLIENT_ORDER_INDEX = 21727
CLIENT_ORDER_INDEX_EXISTS = 21728
TX_NOT_FOUND = 21500
MARKET_NOT_FOUND = 21901
EXPIRED_TX = 21902
RATE_LIMITED = 23000
INJECTED = 29500
ALREADY_SUBSCRIBED = 30003
INVALID_CHANNEL = 30005
INVALID_DATA = 30007
TOO_MANY_MESSAGES = 30009
SUBSCRIBE_FAILED = 30012


def http_status_of(code: int) -> int:
    entry = BY_CODE.get(code)
    return entry.http_status if entry is not None else 400


class SimError(Exception):
    """A request the simulated exchange refuses; `code` and `message` become the `ResultCode` body."""

    def __init__(self, code: int, message: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status_of(code) if http_status is None else http_status

"""Why the exchange refused a transaction, as venue-neutral facts: is another try worth it?

`classify_refusal` reads the HTTP status, Lighter's code AND its message, and answers one of four kinds:

* TRANSPORT: the request never got a verdict (HTTP 429 past the retry budget, 5xx, timeout, dropped
  connection): the same order, at the same price, may simply be sent again.
* NONCE: the nonce was refused (code 21104, or "invalid nonce" in the text, which the venue also sends with
  code 400): the sender resyncs the nonce from the exchange; a retry then goes through.
* FINAL: the venue's code or its message PROVES that retrying cannot fix it: invalid signature (21120),
  invalid public key (21136), invalid tx type (21511), not enough margin, size or quote below the minimum.
* UNKNOWN: anything else. Retried within the chase's attempts, never declared fatal by guess.

Provenance: the codes 21104, 21120, 21136 and 21511 are quoted from the venue (tests/wire/rest/sendTx/:
hftbacktest invalid-nonce capture, lighter-go issues #19 and #5, lighter-python issues #103 and #60). No code
for margin or a minimum size was found in any capture, so those are recognised by their message text only;
the phrases below are the ones the simulator and the venue's order statuses use, and a differently worded
venue message is UNKNOWN (retried), which is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

OK_CODE = 200
INVALID_NONCE_CODE = 21104  # "invalid nonce" (captured)
INVALID_SIGNATURE_CODE = 21120  # "invalid signature" (lighter-go #19)
INVALID_PUBLIC_KEY_CODE = 21136  # "invalid PublicKey, update the sdk to ..." (lighter-python #103)
INVALID_TX_TYPE_CODE = 21511  # "invalid tx type for account" (lighter-go #5)

_FINAL_CODES: dict[int, str] = {
    INVALID_SIGNATURE_CODE: "invalid signature",
    INVALID_PUBLIC_KEY_CODE: "invalid public key",
    INVALID_TX_TYPE_CODE: "invalid tx type",
}

_NONCE_TEXT = "invalid nonce"  # what the SDK itself looks for; the venue sends it with 21104 and with 400
_TRANSPORT_TEXTS = ("too many requests", "rate limit")
# (phrase in the lowercased message, cause). Message text only: no venue code is known for these.
_FINAL_TEXTS: tuple[tuple[str, str], ...] = (
    ("invalid signature", "invalid signature"),
    ("invalid publickey", "invalid public key"),
    ("invalid public key", "invalid public key"),
    ("invalid tx type", "invalid tx type"),
    ("margin", "not enough margin"),
    ("below minimum", "size or quote below the minimum"),
    ("below the minimum", "size or quote below the minimum"),
    ("min base amount", "size below the minimum"),
    ("minimum base amount", "size below the minimum"),
    ("min quote amount", "quote below the minimum"),
    ("minimum quote amount", "quote below the minimum"),
    ("market not found", "market not found"),
)


class RefusalKind(StrEnum):
    TRANSPORT = "transport"  # no verdict: retry the same order
    NONCE = "nonce"  # the nonce was refused: resync, then retry
    FINAL = "final"  # retrying cannot fix it (proven by the venue's code or message)
    UNKNOWN = "unknown"  # not known: retry within the attempts the caller allows


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    cause: str  # venue-neutral words for logs and outcomes ("not enough margin", "HTTP 503", ...)

    @property
    def worth_retrying(self) -> bool:
        return self.kind is not RefusalKind.FINAL


def classify_refusal(http_status: int | None, code: int | None, message: str) -> Refusal:
    """A refused or failed send → its kind. `http_status` None: no HTTP answer (timeout, connection)."""
    text = message.lower()
    if code == INVALID_NONCE_CODE or _NONCE_TEXT in text:
        return Refusal(RefusalKind.NONCE, "invalid nonce")
    if code in _FINAL_CODES:
        return Refusal(RefusalKind.FINAL, _FINAL_CODES[code])
    if http_status is None and code is None:
        return Refusal(RefusalKind.TRANSPORT, message or "no answer")
    if http_status == 429 or (http_status is not None and http_status >= 500):
        return Refusal(RefusalKind.TRANSPORT, f"HTTP {http_status}")
    if any(phrase in text for phrase in _TRANSPORT_TEXTS):
        return Refusal(RefusalKind.TRANSPORT, "rate limited")
    for phrase, cause in _FINAL_TEXTS:
        if phrase in text:
            return Refusal(RefusalKind.FINAL, cause)
    return Refusal(RefusalKind.UNKNOWN, message or f"code {code}")

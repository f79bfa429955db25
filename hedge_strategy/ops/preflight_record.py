"""`hedgectl preflight --record FILE.jsonl`: every WebSocket frame and REST body the run saw, one JSON line
each, in the format of the wire corpus (`tests/wire/`), so that a capture from a user's venue can become a
test:

    {"kind": "ws" | "rest", "name": "<channel without argument | control | REST endpoint>", "payload": ...}

REST answers outside 2xx add `"http_status": N`. The payload is the parsed JSON, or the text as received when
it is not JSON. Secrets are masked in every string (and key) of it: the run's API private keys and auth
tokens wherever they appear, and anything shaped like a key or a token (`logs.mask_secrets`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from hedge_strategy.exchange.preflight_reads import Observed
from hedge_strategy.logs import SECRET_MASK, TOKEN_MASK, mask_secrets


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO = path.open("w", encoding="utf-8")
        self._secrets: dict[str, str] = {}  # exact secret -> its mask
        self.records = 0

    def mask_key(self, key: str) -> None:
        for form in (key, key.removeprefix("0x"), "0x" + key.removeprefix("0x")):
            self._secrets[form] = SECRET_MASK

    def mask_token(self, token: str) -> None:
        self._secrets[token] = TOKEN_MASK

    def __call__(self, observed: Observed) -> None:
        record: dict[str, Any] = {"kind": observed.kind, "name": observed.name,
                                  "payload": self._mask(observed.payload)}
        if observed.http_status is not None:
            record["http_status"] = observed.http_status
        self._file.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.records += 1

    def _mask(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(self._secrets, key=len, reverse=True):  # longest first: 0x-forms included
                if secret and secret in value:
                    value = value.replace(secret, self._secrets[secret])
            return mask_secrets(value)
        if isinstance(value, dict):
            return {self._mask(k): self._mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask(item) for item in value]
        return value

    def close(self) -> None:
        self._file.close()

"""Logging setup for the bot processes (loguru): one line per event, to stderr and `logs/main_<role>.log`.

Each line carries the time, the level and the process role (`A`, `B`, `ctl`), then where and what:
`2025-01-01 12:00:00.123 | INFO     | A | maker:place:88 - placed post-only buy 0.0002 @ 95000.0 ...`.

A masking patcher rewrites every message (and the text of a logged exception) so that anything shaped like an
API private key (80 hex characters) or a Lighter auth token (`<expiry>:<account>:<key>:<hex signature>`) never
reaches a sink. It is a safety net, not a licence: code must still not log secrets. Because Lighter
transaction hashes are also 80 hex characters, they are masked too; log a prefix (`tx_hash[:16]`) instead.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

    from hedge_strategy.config import LoggingConfig

# 80 or more hex characters (optionally 0x-prefixed): the shape of a Lighter API private key, or one inside
# a longer hex run.
_SECRET_RE = re.compile(r"(?<![0-9A-Fa-f])(?:0x)?[0-9A-Fa-f]{80,}")
# `<expiry>:<account_index>:<api_key_index>:<signature>`: keep who and until when, drop the signature.
_AUTH_TOKEN_RE = re.compile(r"\b(\d+:\d+:\d+:)[0-9A-Fa-f]{20,}")
_URL_PASSWORD_RE = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
SECRET_MASK = "<masked-hex80>"
TOKEN_MASK = "<masked-token>"

_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[role]} | {name}:{function}:{line} - {message}"
)


def mask_secrets(text: str) -> str:
    """`text` with API-key-shaped hex strings, auth-token signatures and URL passwords (`redis://u:pw@h`)
    replaced by placeholders."""
    text = _URL_PASSWORD_RE.sub(r"\g<1>***@", text)
    return _SECRET_RE.sub(SECRET_MASK, _AUTH_TOKEN_RE.sub(rf"\g<1>{TOKEN_MASK}", text))


def log_path(role: str, cfg: LoggingConfig) -> Path:
    """The file `setup_logging(role, cfg)` writes: `<logging.dir>/main_<role>.log`."""
    return Path(cfg.dir) / f"main_{role}.log"


def setup_logging(role: str, cfg: LoggingConfig) -> None:
    """Send this process's logs to stderr and to `log_path(role, cfg)` (rotated and retained per `cfg`).

    Replaces every loguru handler installed before (call it once, first thing in an entry point). Variable
    values are never printed in tracebacks (`diagnose=False`), since they could hold secrets.
    """
    path = log_path(role, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.remove()
    logger.configure(extra={"role": role}, patcher=_mask_record)
    common: dict[str, Any] = {"level": cfg.level, "format": _format, "backtrace": False, "diagnose": False}
    logger.add(sys.stderr, colorize=False, **common)
    logger.add(path, rotation=cfg.rotation, retention=cfg.retention, encoding="utf-8", **common)


def _mask_record(record: Record) -> None:
    record["message"] = mask_secrets(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = mask_secrets(value)


def _format(record: Record) -> str:
    """The line template; a logged exception is rendered here so that it passes through the mask too."""
    exception = record["exception"]
    if exception is None or exception.type is None:
        return _FORMAT + "\n"
    text = "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))
    # The rendered text is inserted through a field, so braces in it are not read as template fields.
    record["extra"]["masked_exception"] = mask_secrets(text)
    return _FORMAT + "\n{extra[masked_exception]}"

"""`json.loads` for input from outside the process: exchange frames and bodies, Redis messages, files.

Why not plain `json.loads`: lighter-sdk pulls in py_ecc, which raises Python's recursion limit to 100,000,
and at that limit decoding a document nested ~100,000 deep overflows the C stack and kills the whole process
with a segfault that no `except` can catch. So nesting is refused before the parser sees it, and every other
decoding failure becomes one exception type the caller handles (skip, dead-letter, or treat as missing).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 32  # far deeper than any Lighter frame or bus message (they nest 4-6 levels)
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")
_SHORTEN_AT = 120


class UntrustedJSONError(ValueError):
    """The text is not readable JSON (or nests too deep); the message says why, shortened."""


def loads_untrusted(raw: str | bytes, what: str = "message") -> Any:
    """`json.loads(raw)`, raising only `UntrustedJSONError` for anything that is not readable JSON."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        if not isinstance(text, str):
            raise TypeError(f"expected text, got {type(raw).__name__}")
        if _nesting_exceeds(text, MAX_JSON_DEPTH):
            raise UntrustedJSONError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return json.loads(text)
    except UntrustedJSONError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise UntrustedJSONError(f"{what}: not JSON ({shorten(str(exc))})") from None
    except Exception as exc:  # an integer of thousands of digits (ValueError), anything else from the parser
        why = f"{type(exc).__name__}: {shorten(str(exc))}"
        raise UntrustedJSONError(f"{what}: unreadable JSON ({why})") from None


def _nesting_exceeds(text: str, limit: int) -> bool:
    """True when `text` opens more than `limit` nested arrays/objects (brackets inside strings ignored)."""
    if text.count("[") + text.count("{") <= limit:  # most messages: no need to look closer
        return False
    depth = 0
    for match in _JSON_BRACKET_RE.finditer(_JSON_STRING_RE.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def shorten(text: str) -> str:
    """At most `_SHORTEN_AT` characters of `text`, so a huge bad value cannot flood a log line."""
    return text if len(text) <= _SHORTEN_AT else text[:_SHORTEN_AT] + "..."

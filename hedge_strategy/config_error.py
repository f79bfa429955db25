"""What `config` and `secrets` both need and neither may import from the other: the error and the roles.

`ConfigError` is raised for every configuration problem (a bad key, a missing or unreadable secret); entry
points turn it into exit code 2. Import it from `hedge_strategy.config`, which re-exports it.

A config error quotes the bad value, and the values most often wrong are URLs that carry credentials
(`redis://user:password@host`, a webhook whose path or query is its token). `ConfigError` therefore masks
every problem it is given (`mask_credentials`): whoever raises it, whatever it quotes, stderr never shows
them. `exit_on_config_error` (re-exported by `config`) prints the problems and exits 2.
"""

from __future__ import annotations

import re
import sys
from typing import NoReturn

import yaml

from hedge_strategy.logs import mask_secrets

ROLES = ("a", "b")
ROLE_NAMES = {"a": "A", "b": "B"}  # how logs and messages name the roles

CREDENTIAL_MASK = "***"
# `scheme://rest` up to whitespace or a quote: a URL as it appears inside a message or a repr().
_URL_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s'\"<>]*)")
# `user:password@` with no scheme in front (a URL written without its `redis://`, or cut by a snippet).
_BARE_USERINFO_RE = re.compile(r"([^\s'\"/:@]*):(?!//)[^\s'\"@]+@")
# `host.name[:port]/path?query` with no scheme in front: a webhook URL written without its `https://`.
_BARE_HOST_PATH_RE = re.compile(
    r"(?<![\w/.:@-])(?P<host>(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}|localhost|\d{1,3}(?:\.\d{1,3}){3})(:\d+)?"
    r"(?P<tail>[/?][^\s'\"<>]*)"
)
# What may stay of a URL's path: a Redis database number (`/0`).
_HARMLESS_PATH_RE = re.compile(r"/\d{0,3}")


class ConfigError(ValueError):
    """A configuration problem. `problems` lists each one as `"<dotted.key>: <what is wrong>"`."""

    def __init__(self, problems: str | list[str]) -> None:
        raw = (problems,) if isinstance(problems, str) else tuple(problems)
        self.problems: tuple[str, ...] = tuple(mask_credentials(p) for p in raw)
        super().__init__("\n".join(self.problems))


def exit_on_config_error(error: ConfigError) -> NoReturn:
    """Print the problems to stderr and exit with status 2 (the documented exit code for a bad config)."""
    print("configuration error:", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)
    sys.exit(2)


def mask_credentials(text: str) -> str:
    """`text` with URL passwords, URL paths and queries, and API-key-shaped hex replaced by placeholders.

    `redis://user:pw@host:6379/0` -> `redis://user:***@host:6379/0`; `https://hooks.example/T0/B0/x?k=v` ->
    `https://hooks.example/***`; a user part alone (`https://token@host`) is masked whole.
    """
    text = _URL_RE.sub(_mask_url, text)
    text = _BARE_USERINFO_RE.sub(rf"\g<1>:{CREDENTIAL_MASK}@", text)
    text = _BARE_HOST_PATH_RE.sub(_mask_bare_host_path, text)
    return mask_secrets(text)


def _mask_bare_host_path(match: re.Match[str]) -> str:
    if _HARMLESS_PATH_RE.fullmatch(match.group("tail")):
        return match.group(0)
    return match.group(0)[: match.start("tail") - match.start()] + f"/{CREDENTIAL_MASK}"


def _mask_url(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    # Everything before the last "@" is credentials: a password may hold "/" or "?" that would otherwise
    # pass for the start of the path.
    userinfo, at, location = rest.rpartition("@")
    shown_user = ""
    if at:
        user, colon, _ = userinfo.partition(":")
        safe_user = colon and not any(c in user for c in "/?#")
        shown_user = f"{user}:{CREDENTIAL_MASK}@" if safe_user else f"{CREDENTIAL_MASK}@"
    cut = min((i for i in (location.find(c) for c in "/?#") if i >= 0), default=len(location))
    host, tail = location[:cut], location[cut:]
    if tail and not _HARMLESS_PATH_RE.fullmatch(tail):
        tail = f"/{CREDENTIAL_MASK}"
    return f"{scheme}://{shown_user}{host}{tail}"


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Where and why a YAML file does not parse, without PyYAML's quote of the line.

    The quoted snippet is cut at arbitrary points (`... s.example.com/services/T0K3N: x`), so a credential
    in it would no longer look like a URL to `mask_credentials`: leave the line out, give its number.
    """
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    why = "; ".join(" ".join(str(p).split()) for p in (exc.context, exc.problem) if p)
    return where + (why or type(exc).__name__)


def check_role(role: str) -> str:
    """`role` lowered ("a" or "b"); ValueError for anything else (a programming error, not a config one)."""
    lowered = role.lower()
    if lowered not in ROLES:
        raise ValueError(f"role must be 'a' or 'b', got {role!r}")
    return lowered

"""What `config` and `secrets` both need and neither may import from the other: the error and the roles.

`ConfigError` is raised for every configuration problem (a bad key, a missing or unreadable secret); entry
points turn it into exit code 2. Import it from `hedge_strategy.config`, which re-exports it.
"""

from __future__ import annotations

ROLES = ("a", "b")


class ConfigError(ValueError):
    """A configuration problem. `problems` lists each one as `"<dotted.key>: <what is wrong>"`."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


def check_role(role: str) -> str:
    """`role` lowered ("a" or "b"); ValueError for anything else (a programming error, not a config one)."""
    lowered = role.lower()
    if lowered not in ROLES:
        raise ValueError(f"role must be 'a' or 'b', got {role!r}")
    return lowered

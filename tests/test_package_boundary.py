"""The simulator stands beside the bot: neither package imports the other, in either direction.

The bot only starts the simulator as a process (`python -m lighter_sim`); the simulator knows nothing of the
bot. A simulator written from the bot's own code would agree with it and prove nothing about the venue.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BOUNDARY = {"hedge_strategy": "lighter_sim", "lighter_sim": "hedge_strategy"}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, `importlib.import_module("x")` and `__import__` too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def crossings(package: str) -> list[str]:
    forbidden = BOUNDARY[package]
    bad: list[str] = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path.read_text(encoding="utf-8")):
            if module == forbidden or module.startswith(forbidden + "."):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(BOUNDARY))
def test_no_import_crosses_the_boundary(package: str) -> None:
    assert (REPO_ROOT / package / "__init__.py").exists()
    assert crossings(package) == []


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import lighter_sim\nfrom lighter_sim.config import X\nimport importlib\n"
        "importlib.import_module('lighter_sim.server')\n__import__('lighter_sim')\nfrom . import local\n"
    )
    modules = [module for _, module in imported_modules(source)]
    assert modules == ["lighter_sim", "lighter_sim.config", "importlib", "lighter_sim.server", "lighter_sim"]

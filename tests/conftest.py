"""Shared pytest fixtures. Each area keeps its fixtures in tests/fixtures/<area>.py, registered here."""

pytest_plugins = [
    "tests.fixtures.procs",
    "tests.fixtures.redis",
    "tests.fixtures.sim",
    "tests.fixtures.ab",
]

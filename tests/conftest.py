"""Shared pytest fixtures. Each area keeps its fixtures in tests/fixtures/<area>.py, registered here."""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.webhook",
    "tests.fixtures.procs",
    "tests.fixtures.execution",
    "tests.fixtures.redis",
    "tests.fixtures.sim",
    "tests.fixtures.ab",
    "tests.fixtures.deployment",
    "tests.fixtures.fake_orders",
    "tests.fixtures.ws_script",
]

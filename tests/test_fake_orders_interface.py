"""The in-memory executor under the unit tests (`tests/fixtures/fake_orders.py`) cannot drift from the real
one: every public method of `FakeOrders` exists on `OrderExecutor`, with the same parameters in the same
order."""

from __future__ import annotations

import inspect

import pytest

from hedge_strategy.execution import OrderExecutor
from tests.fixtures.fake_orders import FakeOrders

PUBLIC_METHODS = sorted(
    name for name, member in vars(FakeOrders).items()
    if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)))


def parameter_names(method: object) -> list[str]:
    return list(inspect.signature(method).parameters)  # type: ignore[arg-type]


def test_the_fake_has_the_methods_the_roles_call() -> None:
    assert {"submit", "finish", "cancel", "cancel_all", "wait_final", "next_coid"} <= set(PUBLIC_METHODS)


@pytest.mark.parametrize("name", PUBLIC_METHODS)
def test_each_public_method_of_the_fake_is_the_executors(name: str) -> None:
    fake = vars(FakeOrders)[name]
    real = inspect.getattr_static(OrderExecutor, name, None)
    assert real is not None, f"FakeOrders.{name} is not on OrderExecutor"
    if isinstance(fake, property):
        assert isinstance(real, property), f"FakeOrders.{name} is a property, OrderExecutor.{name} is not"
        return
    assert inspect.isfunction(real), f"OrderExecutor.{name} is not a method"
    assert parameter_names(fake) == parameter_names(real), f"{name}: the parameters differ"
    assert inspect.iscoroutinefunction(fake) == inspect.iscoroutinefunction(real), f"{name}: async differs"

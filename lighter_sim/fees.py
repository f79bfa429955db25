"""Trade fees: the one place where `sim.fees` (fractions of notional) becomes the venue's fee unit.

The venue's trades carry `maker_fee` / `taker_fee` as integers, left out when zero. The same values (maker 28,
taker 196) appear on trades of 1.18, 291 and 314 USD notional and match the premium schedule's 0.28 / 1.96
bps: so they are fee RATES in millionths of notional, not amounts. That unit is INFERRED from captured trades;
it is not documented anywhere public. `accountLimits` answers `current_maker_fee_tick` /
`current_taker_fee_tick` in the same unit (inferred: a testnet standard account answered 0 / 0).

The fee paid is rate x 1e-6 x size x price, charged to collateral, rounded to USDC's 6 decimals.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .validation import SimConfigError

RATE_SCALE = 1_000_000  # the venue's fee unit: millionths of notional
USDC_MICRO = Decimal("0.000001")


class FeeUnitError(SimConfigError):
    """A configured fee that is not a whole number of millionths (the venue's fee fields are integers)."""


def rate_millionths(fraction: Decimal, key: str) -> int:
    """`sim.fees.<tier>.<side>` (a fraction of notional, e.g. 0.000028) as the venue's integer rate (28)."""
    scaled = Decimal(fraction) * RATE_SCALE
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise FeeUnitError(
            key,
            f"{fraction} is not a whole number of millionths of notional "
            f"(the venue's fee rates are integers: 0.000028 is 28)",
        )
    return int(scaled)


def rates_of(fees: dict[str, tuple[Decimal, Decimal]]) -> dict[str, tuple[int, int]]:
    """tier -> (maker, taker) rates in millionths; raises FeeUnitError naming the `sim.fees` key."""
    return {
        tier: (
            rate_millionths(maker, f"sim.fees.{tier}.maker"),
            rate_millionths(taker, f"sim.fees.{tier}.taker"),
        )
        for tier, (maker, taker) in fees.items()
    }


def fee_paid(rate: int, notional: Decimal) -> Decimal:
    """USDC paid for a fill of `notional` USDC at `rate` millionths, rounded half up to 6 decimals."""
    return (notional * rate / RATE_SCALE).quantize(USDC_MICRO, ROUND_HALF_UP)

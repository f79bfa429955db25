"""Market specifications and the conversions between Lighter's scaled integers and decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


def _fmt_scaled(value: int, decimals: int) -> str:
    """An integer scaled by 10**decimals as a string with exactly `decimals` fractional digits."""
    sign = "-" if value < 0 else ""
    digits = str(abs(value)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def _to_scaled(value: int | Decimal | str, decimals: int) -> int:
    """A Decimal (or a scaled int, passed through) as the scaled integer; refuses extra precision."""
    if isinstance(value, int):
        return value
    scaled = Decimal(value).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {decimals} decimals")
    return int(scaled)


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    market_id: int
    size_decimals: int
    price_decimals: int
    min_base_amount: Decimal
    min_quote_amount: Decimal
    initial_price: Decimal
    # Derived scaled-integer forms, computed once so the matching loop never touches Decimal.
    min_base_int: int = field(init=False, repr=False, compare=False)
    initial_price_int: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_base_int", max(1, _to_scaled(self.min_base_amount, self.size_decimals)))
        object.__setattr__(self, "initial_price_int", _to_scaled(self.initial_price, self.price_decimals))

    # Formatting: the SDK strips "." from these strings to get integers, so the digit count must be exact.
    def fmt_size(self, value: int | Decimal) -> str:
        return _fmt_scaled(_to_scaled(value, self.size_decimals), self.size_decimals)

    def fmt_price(self, value: int | Decimal) -> str:
        return _fmt_scaled(_to_scaled(value, self.price_decimals), self.price_decimals)

    def size_from_int(self, n: int) -> Decimal:
        return Decimal(n).scaleb(-self.size_decimals)

    def price_from_int(self, n: int) -> Decimal:
        return Decimal(n).scaleb(-self.price_decimals)

    def size_to_int(self, value: Decimal) -> int:
        return _to_scaled(value, self.size_decimals)

    def price_to_int(self, value: Decimal) -> int:
        return _to_scaled(value, self.price_decimals)

    def quote_from_ints(self, price: int, size: int) -> Decimal:
        """price * size in USDC, exact (the product of two scaled ints)."""
        return Decimal(price * size).scaleb(-(self.price_decimals + self.size_decimals))


def fmt_usdc(value: Decimal) -> str:
    """USDC amounts (collateral, PnL, quote) with Lighter's 6 decimals."""
    quantized = value.quantize(Decimal("0.000001"))
    return f"{abs(quantized) if quantized == 0 else quantized:f}"  # never "-0.000000"

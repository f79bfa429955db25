"""Market metadata and the one place where Decimal amounts become the exchange's scaled integers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class MarketInfo:
    symbol: str
    market_id: int
    size_decimals: int
    price_decimals: int
    min_base_amount: Decimal
    min_quote_amount: Decimal

    @property
    def tick(self) -> Decimal:
        """Smallest price increment."""
        return Decimal(1).scaleb(-self.price_decimals)

    @property
    def lot(self) -> Decimal:
        """Smallest size increment."""
        return Decimal(1).scaleb(-self.size_decimals)

    def base_to_int(self, size: Decimal) -> int:
        """Size in base units → exchange integer; ValueError unless `size` is a whole number of lots."""
        return _scale_exact(size, self.size_decimals, f"{self.symbol} size")

    def price_to_int(self, price: Decimal) -> int:
        """Price → exchange integer; ValueError unless `price` lies exactly on the tick grid."""
        return _scale_exact(price, self.price_decimals, f"{self.symbol} price")

    def base_from_int(self, n: int) -> Decimal:
        return Decimal(n).scaleb(-self.size_decimals).quantize(self.lot)

    def price_from_int(self, n: int) -> Decimal:
        return Decimal(n).scaleb(-self.price_decimals).quantize(self.tick)

    def round_price(self, price: Decimal, side_up: bool) -> Decimal:
        """Snap a price onto the tick grid, up (toward the ask) or down (toward the bid)."""
        return price.quantize(self.tick, rounding=ROUND_CEILING if side_up else ROUND_FLOOR)

    def round_size_down(self, size: Decimal) -> Decimal:
        """Largest whole number of lots not above `size`."""
        return size.quantize(self.lot, rounding=ROUND_FLOOR)

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> MarketInfo:
        """Build from an `orderBookDetails` entry (PerpsOrderBookDetail as a dict)."""
        return cls(
            symbol=str(detail["symbol"]),
            market_id=int(detail["market_id"]),
            size_decimals=int(detail["size_decimals"]),
            price_decimals=int(detail["price_decimals"]),
            min_base_amount=Decimal(str(detail["min_base_amount"])),
            min_quote_amount=Decimal(str(detail["min_quote_amount"])),
        )


def _scale_exact(value: Decimal, decimals: int, what: str) -> int:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    try:
        scaled = value.scaleb(decimals)
        integral = scaled.to_integral_value()
    except InvalidOperation as exc:
        raise ValueError(f"{what} {value} is not a finite number") from exc
    if scaled != integral:
        raise ValueError(f"{what} {value} is not a multiple of 1e-{decimals}")
    return int(integral)

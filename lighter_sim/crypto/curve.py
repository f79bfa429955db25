"""The ECgFp5 curve in short Weierstrass form: point decoding, encoding, addition and the one product the
signature check needs, s*G + e*Q.

Ported from elliottech/poseidon_crypto curve/ecgfp5/weierstrass_point.go (`DecodeFp5AsWeierstrass`, `Encode`,
`Add`, `Double`, `MulAdd2`); constants in constants.py. Points are affine (x, y) tuples over GF(p^5), None
for the point at infinity. s*G + e*Q is computed as Go does it, with 4-bit windows of both scalars.
"""

from __future__ import annotations

from . import field as f
from .constants import CURVE_A, CURVE_B, GENERATOR_X, GENERATOR_Y, WEIERSTRASS_A
from .field import Fp5

Point = tuple[Fp5, Fp5] | None  # affine (x, y); None is the point at infinity (the group's neutral)

GENERATOR: Point = (GENERATOR_X, GENERATOR_Y)
_A_OVER_3 = f.scale(CURVE_A, f.fp_inverse(3))
_FOUR_B = f.scale(CURVE_B, 4)
_HALF = f.fp_inverse(2)
WINDOW_BITS = 4
_WINDOWS = 80  # 320-bit scalars in 4-bit digits
_DIGIT_MASK = (1 << WINDOW_BITS) - 1


def decode(w: Fp5) -> Point:
    """The point whose encoding is `w` (None for the neutral, w = 0); ValueError when `w` encodes no point.

    The curve's x solves x^2 - (w^2 - A) x + B = 0; of the two roots Go keeps x1 = (e + r) / 2 when it is a
    square, else x2 = (e - r) / 2. Exactly one root is a square, so the choice does not depend on which square
    root r of the discriminant is used.
    """
    e = f.sub(f.square(w), CURVE_A)
    delta = f.sub(f.square(e), _FOUR_B)
    r = f.sqrt(delta)
    if r is None:
        if w == f.ZERO:
            return None
        raise ValueError("not the encoding of a curve point")
    x1 = f.scale(f.add(e, r), _HALF)
    x = x1 if f.legendre(x1) == 1 else f.scale(f.sub(e, r), _HALF)
    y = f.neg(f.mul(w, x))
    return f.add(x, _A_OVER_3), y


def encode(point: Point) -> Fp5:
    """w = y / (A/3 - x) (the curve's y / x up to sign, in Weierstrass coordinates); the neutral is 0."""
    if point is None:
        return f.ZERO
    x, y = point
    return f.div(y, f.sub(_A_OVER_3, x))


def add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    (x1, y1), (x2, y2) = p, q
    if x1 == x2:
        if y1 != y2:
            return None  # q = -p
        return double(p)
    slope = f.div(f.sub(y2, y1), f.sub(x2, x1))
    x3 = f.sub(f.sub(f.square(slope), x1), x2)
    return x3, f.sub(f.mul(slope, f.sub(x1, x3)), y1)


def double(p: Point) -> Point:
    if p is None:
        return None
    x, y = p
    # The group has prime order, so no point but the neutral has y = 0: the division is safe.
    slope = f.div(f.add(f.scale(f.square(x), 3), WEIERSTRASS_A), f.add(y, y))
    x3 = f.sub(f.square(slope), f.add(x, x))
    return x3, f.sub(f.mul(slope, f.sub(x, x3)), y)


def _digits(scalar: int) -> list[int]:
    """The scalar's 80 4-bit digits, least significant first (Go's `SplitTo4BitLimbs`)."""
    return [(scalar >> (WINDOW_BITS * i)) & _DIGIT_MASK for i in range(_WINDOWS)]


def _multiples(p: Point) -> list[Point]:
    """[0, P, 2P, ..., 15P]."""
    table: list[Point] = [None, p]
    for _ in range(2, 1 << WINDOW_BITS):
        table.append(add(table[-1], p))
    return table


_generator_multiples: list[Point] = []


def mul_add_generator(s: int, q: Point, e: int) -> Point:
    """s*G + e*Q (Go's `MulAdd2(GENERATOR_WEIERSTRASS, Q, s, e)`): 4-bit windows of both scalars sharing one
    chain of doublings; G's window table is made once per process."""
    if not _generator_multiples:
        _generator_multiples.extend(_multiples(GENERATOR))
    q_multiples = _multiples(q)
    result: Point = None
    for s_digit, e_digit in zip(reversed(_digits(s)), reversed(_digits(e)), strict=True):
        for _ in range(WINDOW_BITS):
            result = double(result)
        if s_digit:
            result = add(result, _generator_multiples[s_digit])
        if e_digit:
            result = add(result, q_multiples[e_digit])
    return result

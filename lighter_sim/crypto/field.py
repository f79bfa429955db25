"""The Goldilocks field GF(p), p = 2^64 - 2^32 + 1, and its quintic extension GF(p^5) = GF(p)[x]/(x^5 - 3).

Ported from elliottech/poseidon_crypto (field/goldilocks, field/goldilocks_quintic_extension; see
constants.py for the commit). An element of GF(p) is an int in [0, p); an element of GF(p^5) is a tuple of
five of them, lowest degree first. Go keeps limbs non-canonical (any u64); every operation there is exact
modulo p, so reducing at once, as here, gives the same values. Only what signature verification needs is here.
"""

from __future__ import annotations

from .constants import FP5_DTH_ROOT, FP5_W, GOLDILOCKS_P

P = GOLDILOCKS_P
Fp5 = tuple[int, int, int, int, int]

ZERO: Fp5 = (0, 0, 0, 0, 0)
ONE: Fp5 = (1, 0, 0, 0, 0)
_TWO_ADICITY = 32  # p - 1 = 2^32 * (2^32 - 1)
_ODD_PART = (P - 1) >> _TWO_ADICITY
_NON_RESIDUE = 7  # a quadratic non-residue of GF(p): 7^((p-1)/2) = -1

# Frobenius x -> x^(p^k) multiplies limb i by (DTH_ROOT^k)^i.
_FROBENIUS = tuple(
    tuple(pow(pow(FP5_DTH_ROOT, k, P), i, P) for i in range(5)) for k in range(5)
)


def from_u64(value: int) -> int:
    """A Go `GoldilocksField(x)` of a signed or unsigned integer: its 64-bit pattern, reduced mod p."""
    return (value & 0xFFFFFFFFFFFFFFFF) % P


# --- GF(p) ---------------------------------------------------------------------------------------------


def fp_inverse(a: int) -> int:
    return pow(a, -1, P)  # extended Euclid: several times faster than a^(p-2)


def fp_sqrt(a: int) -> int | None:
    """A square root of `a` in GF(p) (Tonelli-Shanks), or None when `a` is not a square."""
    if a == 0:
        return 0
    if pow(a, (P - 1) >> 1, P) != 1:
        return None
    m, c = _TWO_ADICITY, pow(_NON_RESIDUE, _ODD_PART, P)
    t, r = pow(a, _ODD_PART, P), pow(a, (_ODD_PART + 1) >> 1, P)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2, i = t2 * t2 % P, i + 1
        b = pow(c, 1 << (m - i - 1), P)
        m, c = i, b * b % P
        t, r = t * c % P, r * b % P
    return r


# --- GF(p^5) -------------------------------------------------------------------------------------------


def add(a: Fp5, b: Fp5) -> Fp5:
    return ((a[0] + b[0]) % P, (a[1] + b[1]) % P, (a[2] + b[2]) % P, (a[3] + b[3]) % P, (a[4] + b[4]) % P)


def sub(a: Fp5, b: Fp5) -> Fp5:
    return ((a[0] - b[0]) % P, (a[1] - b[1]) % P, (a[2] - b[2]) % P, (a[3] - b[3]) % P, (a[4] - b[4]) % P)


def neg(a: Fp5) -> Fp5:
    return (-a[0] % P, -a[1] % P, -a[2] % P, -a[3] % P, -a[4] % P)


def scale(a: Fp5, k: int) -> Fp5:
    return (a[0] * k % P, a[1] * k % P, a[2] * k % P, a[3] * k % P, a[4] * k % P)


def mul(a: Fp5, b: Fp5) -> Fp5:
    a0, a1, a2, a3, a4 = a
    b0, b1, b2, b3, b4 = b
    return (
        (a0 * b0 + FP5_W * (a1 * b4 + a2 * b3 + a3 * b2 + a4 * b1)) % P,
        (a0 * b1 + a1 * b0 + FP5_W * (a2 * b4 + a3 * b3 + a4 * b2)) % P,
        (a0 * b2 + a1 * b1 + a2 * b0 + FP5_W * (a3 * b4 + a4 * b3)) % P,
        (a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + FP5_W * a4 * b4) % P,
        (a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0) % P,
    )


def square(a: Fp5) -> Fp5:
    a0, a1, a2, a3, a4 = a
    w2 = 2 * FP5_W
    return (
        (a0 * a0 + w2 * (a1 * a4 + a2 * a3)) % P,
        (2 * a0 * a1 + w2 * a2 * a4 + FP5_W * a3 * a3) % P,
        (2 * a0 * a2 + a1 * a1 + w2 * a3 * a4) % P,
        (2 * (a0 * a3 + a1 * a2) + FP5_W * a4 * a4) % P,
        (2 * (a0 * a4 + a1 * a3) + a2 * a2) % P,
    )


def square_n(a: Fp5, n: int) -> Fp5:
    for _ in range(n):
        a = square(a)
    return a


def frobenius(a: Fp5, k: int = 1) -> Fp5:
    z = _FROBENIUS[k % 5]
    return (a[0], a[1] * z[1] % P, a[2] * z[2] % P, a[3] * z[3] % P, a[4] * z[4] % P)


def _norm_parts(a: Fp5) -> tuple[Fp5, int]:
    """(f, N) with f = a^(p + p^2 + p^3 + p^4) and N = a * f = the norm of `a`, an element of GF(p)."""
    d = frobenius(a)
    e = mul(d, frobenius(d))
    f = mul(e, frobenius(e, 2))
    a0, a1, a2, a3, a4 = a
    norm = (a0 * f[0] + FP5_W * (a1 * f[4] + a2 * f[3] + a3 * f[2] + a4 * f[1])) % P
    return f, norm


def inverse(a: Fp5) -> Fp5:
    """1 / a; raises ZeroDivisionError for 0 (Go's Div panics)."""
    if a == ZERO:
        raise ZeroDivisionError("inverse of zero in GF(p^5)")
    f, norm = _norm_parts(a)
    return scale(f, fp_inverse(norm))


def div(a: Fp5, b: Fp5) -> Fp5:
    return mul(a, inverse(b))


def legendre(a: Fp5) -> int:
    """1 for a non-zero square, p - 1 for a non-square, 0 for zero (the norm's Legendre symbol in GF(p))."""
    return pow(_norm_parts(a)[1], (P - 1) >> 1, P)


def sqrt(x: Fp5) -> Fp5 | None:
    """A square root of `x`, or None (Go's `Sqrt`: reduce to a square root in GF(p)).

    Which of the two roots comes back does not matter to its only user, point decoding (curve.py).
    """
    if x == ZERO:
        return ZERO
    v = square_n(x, 31)
    d = mul(mul(x, square_n(v, 32)), inverse(v))
    e = frobenius(mul(d, frobenius(d, 2)))
    f = square(e)
    x0, x1, x2, x3, x4 = x
    g = (x0 * f[0] + FP5_W * (x1 * f[4] + x2 * f[3] + x3 * f[2] + x4 * f[1])) % P
    s = fp_sqrt(g)
    if s is None:
        return None
    return scale(inverse(e), s)


def from_le_bytes(data: bytes) -> Fp5:
    """Five 64-bit little-endian limbs (Go's FromCanonicalLittleEndianBytes takes any u64; reduced here)."""
    if len(data) != 40:
        raise ValueError(f"a GF(p^5) element is 40 bytes, got {len(data)}")
    limbs = [int.from_bytes(data[i : i + 8], "little") % P for i in range(0, 40, 8)]
    return (limbs[0], limbs[1], limbs[2], limbs[3], limbs[4])


def to_le_bytes(a: Fp5) -> bytes:
    return b"".join(limb.to_bytes(8, "little") for limb in a)

"""Schnorr signature verification over ECgFp5, as Lighter's signer checks it.

Ported from elliottech/poseidon_crypto signature/schnorr/schnorr.go (`SigFromBytes`, `Validate`,
`IsSchnorrSignatureValid`). A signature is 80 bytes: s (40 bytes little-endian) then e (40 bytes). It is valid
when e == H(encode(s*G + e*Q) || m) mod n, H being Poseidon2 to GF(p^5) and the 5 limbs read as one 320-bit
little-endian integer (Go's `FromGfp5`).
"""

from __future__ import annotations

from . import curve
from .constants import GROUP_ORDER
from .field import Fp5, from_le_bytes
from .poseidon2 import hash_to_quintic

SIGNATURE_BYTES = 80
PUBLIC_KEY_BYTES = 40


def scalar_from_le_bytes(data: bytes) -> int:
    # Go (v0.0.15, commit "Reduce instead of error") reduces a scalar >= n instead of refusing it.
    return int.from_bytes(data, "little") % GROUP_ORDER


def scalar_from_fp5(value: Fp5) -> int:
    return sum(limb << (64 * i) for i, limb in enumerate(value)) % GROUP_ORDER


def decode_public_key(public_key: bytes) -> curve.Point:
    """The curve point of a 40-byte public key; ValueError when it is not one."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"a public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return curve.decode(from_le_bytes(public_key))


def is_valid(public_key: curve.Point, message: Fp5, signature: bytes) -> bool:
    """Whether `signature` signs the hashed `message` for the decoded `public_key`."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    s = scalar_from_le_bytes(signature[:40])
    e = scalar_from_le_bytes(signature[40:])
    r = curve.encode(curve.mul_add_generator(s, public_key, e))
    return scalar_from_fp5(hash_to_quintic((*r, *message))) == e

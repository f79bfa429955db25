"""Poseidon2 over Goldilocks (width 12, rate 8) and the sponge Lighter hashes transactions with.

Ported from elliottech/poseidon_crypto hash/poseidon2_goldilocks_plonky2/poseidon2.go (`Permute`,
`HashNToMNoPad`, `HashToQuinticExtension`); constants in constants.py. The sponge has no padding: each chunk
of up to 8 inputs OVERWRITES the first lanes of the state (the other lanes keep what the last permutation
left), then the state is permuted; the output is read from the first lanes.
"""

from __future__ import annotations

from collections.abc import Sequence

from .constants import (
    EXTERNAL_ROUND_CONSTANTS,
    INTERNAL_DIAGONAL,
    INTERNAL_ROUND_CONSTANTS,
    POSEIDON2_FULL_ROUNDS_HALF,
    POSEIDON2_RATE,
    POSEIDON2_WIDTH,
)
from .field import Fp5, P

_FIRST_HALF = EXTERNAL_ROUND_CONSTANTS[:POSEIDON2_FULL_ROUNDS_HALF]
_SECOND_HALF = EXTERNAL_ROUND_CONSTANTS[POSEIDON2_FULL_ROUNDS_HALF:]


def _external_linear_layer(s: list[int]) -> list[int]:
    """Go's `externalLinearLayer`: the 4x4 matrix on each group of four lanes, then each lane plus the sum of
    the lanes at its position in the three groups."""
    out: list[int] = []
    for i in range(0, POSEIDON2_WIDTH, 4):
        x0, x1, x2, x3 = s[i], s[i + 1], s[i + 2], s[i + 3]
        t01, t23 = x0 + x1, x2 + x3
        t0123 = t01 + t23
        out += (t0123 + t01 + x1, t0123 + x1 + 2 * x2, t0123 + t23 + x3, t0123 + x3 + 2 * x0)
    sums = [out[i] + out[i + 4] + out[i + 8] for i in range(4)]
    return [(out[i] + sums[i % 4]) % P for i in range(POSEIDON2_WIDTH)]


def _sbox(x: int) -> int:
    return pow(x, 7, P)


def _full_rounds(state: list[int], constants: Sequence[Sequence[int]]) -> list[int]:
    for round_constants in constants:
        state = [_sbox((x + c) % P) for x, c in zip(state, round_constants, strict=True)]
        state = _external_linear_layer(state)
    return state


def _partial_rounds(state: list[int]) -> list[int]:
    for constant in INTERNAL_ROUND_CONSTANTS:
        state[0] = _sbox((state[0] + constant) % P)
        total = sum(state)
        state = [(total + x * d) % P for x, d in zip(state, INTERNAL_DIAGONAL, strict=True)]
    return state


def permute(state: list[int]) -> list[int]:
    state = _external_linear_layer(state)
    state = _full_rounds(state, _FIRST_HALF)
    state = _partial_rounds(state)
    return _full_rounds(state, _SECOND_HALF)


def hash_n_to_m_no_pad(inputs: Sequence[int], outputs: int) -> list[int]:
    state = [0] * POSEIDON2_WIDTH
    for start in range(0, len(inputs), POSEIDON2_RATE):
        chunk = inputs[start : start + POSEIDON2_RATE]
        state[: len(chunk)] = [x % P for x in chunk]
        state = permute(state)
    result: list[int] = []
    while True:
        for lane in state[:POSEIDON2_RATE]:
            result.append(lane)
            if len(result) == outputs:
                return result
        state = permute(state)


def hash_to_quintic(inputs: Sequence[int]) -> Fp5:
    h = hash_n_to_m_no_pad(inputs, 5)
    return (h[0], h[1], h[2], h[3], h[4])

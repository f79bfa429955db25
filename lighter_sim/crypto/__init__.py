"""Just enough of Lighter's signature scheme to VERIFY a transaction's signature, in pure Python.

Ported (code written here, constants copied as data with their provenance in constants.py) from
elliottech/lighter-go 17f2d60 (tx hashing, types/txtypes/) and elliottech/poseidon_crypto v0.0.15 = 315971c
(Goldilocks and its quintic extension, Poseidon2, ECgFp5 in Weierstrass form, Schnorr verification). Nothing
here signs or makes keys.

Verified against the real signer (lighter-sdk 1.1.8's bundled Go library) by tests/test_sim_signatures.py:
for create (with and without self-trade and integrator attributes), cancel, cancel-all (with and without a
market) and modify (with and without an order version), our message equals the tx hash the signer returns,
and our verification accepts the signer's signature for its chain and refuses it for another chain, another
key, a changed field or a changed signature. Poseidon2's permutation is also checked against
poseidon_crypto's own test vector. Not verified against the venue itself (no captured signed tx with its
public key).
"""

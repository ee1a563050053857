"""CityHash64 (v1.0.2), the string hash CatBoost applies to categorical values.

CatBoost keys its CTR tables by hashes of categorical values: the low 32 bits of
CityHash64 of the value's UTF-8 bytes. The compiler needs those hashes to find the
statistics of each known value; it never hashes at serving time.
"""

from __future__ import annotations

import struct

MASK = (1 << 64) - 1
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F
K3 = 0xC949D7C7509E6557
KMUL = 0x9DDFEA08EB382D69


def _fetch64(s: bytes, i: int) -> int:
    return struct.unpack_from("<Q", s, i)[0]


def _fetch32(s: bytes, i: int) -> int:
    return struct.unpack_from("<I", s, i)[0]


def _rotate(v: int, shift: int) -> int:
    if shift == 0:
        return v
    return ((v >> shift) | (v << (64 - shift))) & MASK


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _hash_len16(u: int, v: int) -> int:
    a = ((u ^ v) * KMUL) & MASK
    a ^= a >> 47
    b = ((v ^ a) * KMUL) & MASK
    b ^= b >> 47
    return (b * KMUL) & MASK


def _hash_len0to16(s: bytes) -> int:
    n = len(s)
    if n > 8:
        a = _fetch64(s, 0)
        b = _fetch64(s, n - 8)
        return _hash_len16(a, _rotate((b + n) & MASK, n)) ^ b
    if n >= 4:
        a = _fetch32(s, 0)
        return _hash_len16((n + (a << 3)) & MASK, _fetch32(s, n - 4))
    if n > 0:
        a, b, c = s[0], s[n >> 1], s[n - 1]
        y = (a + (b << 8)) & 0xFFFFFFFF
        z = (n + (c << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * K2) ^ (z * K3)) & MASK) * K2) & MASK
    return K2


def _hash_len17to32(s: bytes) -> int:
    n = len(s)
    a = (_fetch64(s, 0) * K1) & MASK
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * K2) & MASK
    d = (_fetch64(s, n - 16) * K0) & MASK
    return _hash_len16(
        (_rotate((a - b) & MASK, 43) + _rotate(c, 30) + d) & MASK,
        (a + _rotate(b ^ K3, 20) - c + n) & MASK,
    )


def _weak_hash_len32_with_seeds(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _fetch64(s, i), _fetch64(s, i + 8), _fetch64(s, i + 16), _fetch64(s, i + 24)
    a = (a + w) & MASK
    b = _rotate((b + a + z) & MASK, 21)
    c = a
    a = (a + x + y) & MASK
    b = (b + _rotate(a, 44)) & MASK
    return (a + z) & MASK, (b + c) & MASK


def _hash_len33to64(s: bytes) -> int:
    n = len(s)
    z = _fetch64(s, 24)
    a = (_fetch64(s, 0) + (n + _fetch64(s, n - 16)) * K0) & MASK
    b = _rotate((a + z) & MASK, 52)
    c = _rotate(a, 37)
    a = (a + _fetch64(s, 8)) & MASK
    c = (c + _rotate(a, 7)) & MASK
    a = (a + _fetch64(s, 16)) & MASK
    vf = (a + z) & MASK
    vs = (b + _rotate(a, 31) + c) & MASK
    a = (_fetch64(s, 16) + _fetch64(s, n - 32)) & MASK
    z = _fetch64(s, n - 8)
    b = _rotate((a + z) & MASK, 52)
    c = _rotate(a, 37)
    a = (a + _fetch64(s, n - 24)) & MASK
    c = (c + _rotate(a, 7)) & MASK
    a = (a + _fetch64(s, n - 16)) & MASK
    wf = (a + z) & MASK
    ws = (b + _rotate(a, 31) + c) & MASK
    r = _shift_mix(((vf + ws) * K2 + (wf + vs) * K0) & MASK)
    return (_shift_mix((r * K0 + vs) & MASK) * K2) & MASK


def city_hash64(s: bytes) -> int:
    n = len(s)
    if n <= 16:
        return _hash_len0to16(s)
    if n <= 32:
        return _hash_len17to32(s)
    if n <= 64:
        return _hash_len33to64(s)
    x = _fetch64(s, 0)
    y = _fetch64(s, n - 16) ^ K1
    z = _fetch64(s, n - 56) ^ K0
    v = _weak_hash_len32_with_seeds(s, n - 64, n, y)
    w = _weak_hash_len32_with_seeds(s, n - 32, (n * K1) & MASK, K0)
    z = (z + _shift_mix(v[1]) * K1) & MASK
    x = (_rotate((z + x) & MASK, 39) * K1) & MASK
    y = (_rotate(y, 33) * K1) & MASK
    remaining = (n - 1) & ~63
    i = 0
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(s, i + 16)) & MASK, 37) * K1) & MASK
        y = (_rotate((y + v[1] + _fetch64(s, i + 48)) & MASK, 42) * K1) & MASK
        x ^= w[1]
        y ^= v[0]
        z = _rotate(z ^ w[0], 33)
        v = _weak_hash_len32_with_seeds(s, i, (v[1] * K1) & MASK, (x + w[0]) & MASK)
        w = _weak_hash_len32_with_seeds(s, i + 32, (z + y) & MASK, (y + _fetch64(s, i + 16)) & MASK)
        z, x = x, z
        i += 64
        remaining -= 64
        if remaining == 0:
            break
    return _hash_len16(
        (_hash_len16(v[0], w[0]) + _shift_mix(y) * K1 + z) & MASK,
        (_hash_len16(v[1], w[1]) + x) & MASK,
    )


def cat_feature_hash(value: str) -> int:
    """CatBoost's 32-bit hash of a categorical value."""
    return city_hash64(value.encode("utf-8")) & 0xFFFFFFFF


_MAGIC_MULT = 0x4906BA494954CB65


def combine_hash(a: int, b: int) -> int:
    """CatBoost's hash combiner for the elements of a feature combination."""
    return (_MAGIC_MULT * ((a + _MAGIC_MULT * b) & MASK)) & MASK

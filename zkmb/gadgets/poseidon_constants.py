"""circomlib's Poseidon parameters over BN254 Fr, derived here (no pasted tables).

The round constants and MDS matrices are those of ``generate_parameters_grain.sage`` from the
Poseidon reference (hadeshash), run as circomlib did: ``1 0 254 t 8 R_P r`` (prime field, x^5
S-box, 254-bit field, width t, 8 full rounds, R_P partial rounds).  Procedure (Poseidon paper,
appendix E):

* an 80-bit Grain LFSR, ``b[i+80] = b[i+62] ^ b[i+51] ^ b[i+38] ^ b[i+23] ^ b[i+13] ^ b[i]``,
  seeded with field (2 bits) | S-box (4) | field size (12) | t (12) | R_F (10) | R_P (10) | 30 ones,
  each big-endian, and clocked 160 times before use;
* self-shrinking output: bits are taken in pairs, the second is output when the first is 1;
* a field element is 254 output bits read big-endian; round constants reject values >= r;
* ``(R_F + R_P) * t`` round constants, then ``2t`` more values ``x_0..x_{t-1}, y_0..y_{t-1}``
  (reduced mod r, not rejected) give the Cauchy matrix ``M[i][j] = 1 / (x_i + y_j)``.

The reference script also runs invariant-subspace checks on the matrix and resamples when one
fails; they are not implemented here.  The tests compare every width against circomlibjs (and a
pinned digest), which shows that the first sample was kept for all the widths circomlib ships.

:func:`params` also precomputes the optimised ("sparse partial round") form of the permutation
(Poseidon paper, appendix B), equivalent to the plain one:

* the constants a partial round adds to elements 1..t-1 commute with its S-box (which only
  touches element 0), so they are pushed forward through the MDS matrix into the next round; all
  of them end up in the first full round after the partial rounds;
* walking the partial rounds backwards, each round's matrix ``A`` is factored as
  ``A = S . diag(1, X)`` with ``X = A[1:, 1:]`` and the sparse ``S = [[A00, A[0,1:] X^-1], [A[1:,0], I]]``;
  ``diag(1, X)`` does not touch element 0, so it moves in front of the previous round's S-box
  and merges into the previous matrix (``diag(1, X) . M``); what is left after the first partial
  round merges into the last full round before them (matrix ``pre_partial``).

A partial round then costs one S-box plus ``2t - 1`` multiplications by constants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from ..algebra.params import R
from ..errors import InvalidInput

__all__ = [
    "N_ROUNDS_F",
    "N_ROUNDS_P",
    "MAX_INPUTS",
    "PoseidonParams",
    "params",
    "grain_elements",
    "constants_digest",
    "PINNED_DIGESTS",
]

N_ROUNDS_F = 8
# partial rounds for t = 2..17 (circomlib: the paper's numbers rounded up as in its script)
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)
MAX_INPUTS = len(N_ROUNDS_P)  # 16 inputs, t = 17
FIELD_BITS = 254

_TAPS = (62, 51, 38, 23, 13, 0)
_CHUNK = 16  # LFSR bits produced per step (any value <= 18 = 80 - 62 keeps the taps inside the state)
_CHUNK_MASK = (1 << _CHUNK) - 1


def _shrink_table() -> list[tuple[int, int]]:
    """For each 16-bit chunk of raw LFSR bits (bit j = j-th bit produced): (output bits, count).

    The output bits are in order, first one most significant."""
    table = []
    for chunk in range(1 << _CHUNK):
        val = cnt = 0
        for j in range(0, _CHUNK, 2):
            if (chunk >> j) & 1:
                val = (val << 1) | ((chunk >> (j + 1)) & 1)
                cnt += 1
        table.append((val, cnt))
    return table


_SHRINK: list[tuple[int, int]] | None = None


class _Grain:
    """The self-shrinking Grain LFSR of the Poseidon parameter script."""

    def __init__(self, t: int, rounds_f: int, rounds_p: int, field_bits: int = FIELD_BITS):
        seed = (
            format(1, "02b")  # prime field
            + format(0, "04b")  # S-box x^alpha, alpha > 0
            + format(field_bits, "012b")
            + format(t, "012b")
            + format(rounds_f, "010b")
            + format(rounds_p, "010b")
            + "1" * 30
        )
        # state bit k (LSB = k = 0) holds seed bit k, the oldest bit of the register
        self.state = sum(1 << k for k, c in enumerate(seed) if c == "1")
        self.acc = 0  # pending output bits, most significant first
        self.nacc = 0
        for _ in range(160 // _CHUNK):
            self._clock()

    def _clock(self) -> int:
        """Advance the register by 16 bits; returns them (bit j = j-th new bit)."""
        s = self.state
        new = ((s >> 62) ^ (s >> 51) ^ (s >> 38) ^ (s >> 23) ^ (s >> 13) ^ s) & _CHUNK_MASK
        self.state = (s >> _CHUNK) | (new << (80 - _CHUNK))
        return new

    def bits(self, n: int) -> int:
        """The next n output bits as an integer (first bit most significant)."""
        global _SHRINK
        if _SHRINK is None:
            _SHRINK = _shrink_table()
        table = _SHRINK
        acc, nacc = self.acc, self.nacc
        while nacc < n:
            val, cnt = table[self._clock()]
            acc = (acc << cnt) | val
            nacc += cnt
        extra = nacc - n
        self.acc, self.nacc = acc & ((1 << extra) - 1), extra
        return acc >> extra


def grain_elements(t: int, rounds_f: int, rounds_p: int) -> tuple[list[int], list[list[int]]]:
    """Round constants (flat, ``(rounds_f + rounds_p) * t`` of them) and the t x t MDS matrix.

    Exactly as the reference script derives them (without its matrix security checks: see above)."""
    g = _Grain(t, rounds_f, rounds_p)
    consts = []
    for _ in range((rounds_f + rounds_p) * t):
        v = g.bits(FIELD_BITS)
        while v >= R:
            v = g.bits(FIELD_BITS)
        consts.append(v)
    while True:
        xy = [g.bits(FIELD_BITS) % R for _ in range(2 * t)]
        if len(set(xy)) != 2 * t:
            continue
        xs, ys = xy[:t], xy[t:]
        if any((x + y) % R == 0 for x in xs for y in ys):
            continue
        return consts, [[pow(x + y, -1, R) for y in ys] for x in xs]


# ---------------------------------------------------------------------------------- small matrix algebra


def _mat_mul(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    n, k, m = len(a), len(b), len(b[0])
    return [[sum(a[i][q] * b[q][j] for q in range(k)) % R for j in range(m)] for i in range(n)]


def _mat_vec(a: list[list[int]], v: list[int]) -> list[int]:
    return [sum(x * y for x, y in zip(row, v, strict=True)) % R for row in a]


def _mat_inv(a: list[list[int]]) -> list[list[int]]:
    """Inverse mod r by Gauss-Jordan; raises if singular (never for the Cauchy blocks used here)."""
    n = len(a)
    m = [list(row) + [int(i == j) for j in range(n)] for i, row in enumerate(a)]
    for c in range(n):
        p = next((i for i in range(c, n) if m[i][c]), None)
        if p is None:
            raise ArithmeticError("singular matrix")
        m[c], m[p] = m[p], m[c]
        inv = pow(m[c][c], -1, R)
        m[c] = [x * inv % R for x in m[c]]
        for i in range(n):
            if i != c and m[i][c]:
                f = m[i][c]
                m[i] = [(x - f * y) % R for x, y in zip(m[i], m[c], strict=True)]
    return [row[n:] for row in m]


# ---------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class PoseidonParams:
    """Poseidon over BN254 Fr for width t (t - 1 inputs in circomlib's hash mode).

    Plain form (circomlibjs ``poseidon_reference``): for each round r, ``x += round_constants[r]``,
    S-box (all elements in full rounds, element 0 in partial rounds), ``x = mds . x``.

    Optimised form (same permutation):
    first ``rounds_f / 2`` full rounds with ``round_constants``, the last of them multiplying by
    ``pre_partial`` instead of ``mds``; then for each partial round j: ``x0 = (x0 + partial_c[j])^5``,
    ``x0' = mds[0][0] x0 + sum(partial_v[j][i] x_{i+1})``, ``x_{i+1} += partial_w[j][i] x0``; then the
    last ``rounds_f / 2`` full rounds with ``post_c`` as their constants and ``mds``.
    """

    t: int
    rounds_f: int
    rounds_p: int
    round_constants: tuple[tuple[int, ...], ...]  # (rounds_f + rounds_p) rows of t
    mds: tuple[tuple[int, ...], ...]
    pre_partial: tuple[tuple[int, ...], ...]
    partial_c: tuple[int, ...]
    partial_v: tuple[tuple[int, ...], ...]  # rounds_p rows of t - 1
    partial_w: tuple[tuple[int, ...], ...]  # rounds_p rows of t - 1
    post_c: tuple[tuple[int, ...], ...]  # rounds_f / 2 rows of t

    @property
    def n_inputs(self) -> int:
        return self.t - 1


def _optimise(t, rf, rp, rc, mds):
    half = rf // 2
    # 1. push the constants of elements 1..t-1 of the partial rounds forward
    c = [list(row) for row in rc]
    for r in range(half, half + rp):
        rest = [0] + c[r][1:]
        c[r] = [c[r][0]] + [0] * (t - 1)
        push = _mat_vec(mds, rest)
        c[r + 1] = [(a + b) % R for a, b in zip(c[r + 1], push, strict=True)]
    partial_c = tuple(c[r][0] for r in range(half, half + rp))
    post_c = tuple(tuple(c[r]) for r in range(half + rp, rf + rp))
    # 2. factor the partial-round matrices backwards
    vs: list[tuple[int, ...]] = []
    ws: list[tuple[int, ...]] = []
    a = mds
    for _ in range(rp):
        x = [row[1:] for row in a[1:]]
        xinv = _mat_inv(x)
        v = [sum(a[0][1 + k] * xinv[k][j] for k in range(t - 1)) % R for j in range(t - 1)]
        vs.append(tuple(v))
        ws.append(tuple(a[i][0] for i in range(1, t)))
        left = [[1] + [0] * (t - 1)] + [[0] + row for row in x]  # diag(1, X)
        a = _mat_mul(left, mds)
    vs.reverse()
    ws.reverse()
    return a, partial_c, tuple(vs), tuple(ws), post_c


@cache
def params(t: int) -> PoseidonParams:
    """The parameters for width t in [2, 17] (derived on first use, then cached; ~0.1 s for t = 3)."""
    if not isinstance(t, int) or not 2 <= t <= MAX_INPUTS + 1:
        raise InvalidInput(f"Poseidon width t must be in [2, {MAX_INPUTS + 1}], got {t!r}")
    rf, rp = N_ROUNDS_F, N_ROUNDS_P[t - 2]
    flat, mds = grain_elements(t, rf, rp)
    rc = [flat[r * t : (r + 1) * t] for r in range(rf + rp)]
    pre, pc, pv, pw, post = _optimise(t, rf, rp, rc, mds)
    return PoseidonParams(
        t=t,
        rounds_f=rf,
        rounds_p=rp,
        round_constants=tuple(tuple(row) for row in rc),
        mds=tuple(tuple(row) for row in mds),
        pre_partial=tuple(tuple(row) for row in pre),
        partial_c=pc,
        partial_v=pv,
        partial_w=pw,
        post_c=post,
    )


def constants_digest(round_constants, mds) -> str:
    """SHA-256 (hex) of round constants (flat or per round) and an MDS matrix.

    Serialisation: ``b"poseidon-bn254-v1\\0"``, t as u32 BE, the count of constants as u32 BE, each
    constant as 32 bytes BE, then the matrix row by row (32 bytes BE each)."""
    flat = [x for row in round_constants for x in (row if isinstance(row, (list, tuple)) else [row])]
    h = hashlib.sha256(b"poseidon-bn254-v1\0")
    h.update(len(mds).to_bytes(4, "big") + len(flat).to_bytes(4, "big"))
    for x in flat:
        h.update(int(x).to_bytes(32, "big"))
    for row in mds:
        for x in row:
            h.update(int(x).to_bytes(32, "big"))
    return h.hexdigest()


# constants_digest of circomlibjs 0.1.7's src/poseidon_constants.js (C[t-2], M[t-2]) for t = 2..17;
# tests check the derivation against these and against circomlibjs itself.
PINNED_DIGESTS: dict[int, str] = {
    2: "402d5eac4ce75d107ac9f6a8bbc06d8572dee135b9680045492db495c6e1b812",
    3: "64afdc507b6c8fa28b94c2f3123d85a7bdf6116ec009435f56c44acf4c14e3c5",
    4: "e0ac1383a5b9da403e89515345ae34f20eb209655632378a7b3a5092504d90e5",
    5: "f132f746cef3380460718258693212906054e0b2b3021840cd933dffe441aabb",
    6: "17286ad4b5353da929d3da9af895f5bcf80d3afebfe63943ee7ef70861634321",
    7: "60c1907cbc64f100a7c75e414d4e212ccc909adacdeddf8d6ce5ccb93db74d40",
    8: "52b23960c12c296c7b0e90090b7a2e98af188edb8bf2553a92493bf31f449104",
    9: "ae9b770877c24eae4636ebe1eb62d825f9cf88af3133dd712f70240292f01ac8",
    10: "c73ef99d70ba895ecd2da67e2896b3e81b4b67b905b0ec07fabe4178f4dec0b0",
    11: "6a84af7d2fd9a2115df03857a2297340a80afd5c84f2e620846460c2d774d37b",
    12: "f4df18fcbf9e0c5ca20cb8c28dedd1b1057a136b4540ece1d3acda5b17201f68",
    13: "4e6fa403228c4c07914637c8b43060b6ecfd5c5a2db5186341013d2e670f2f6e",
    14: "ff75220adb855fda5508fc9ff2c0e7f45cf581dcb30f3720a96e17e0432a5d34",
    15: "ec5ebb6d54c036f12d47d22243822cf5e6a7dfbf3097d7badb582e663f365ecf",
    16: "0e1c92cb569341dd92a65093065dfa3501739fda0cc71d48d56181fd9e138c30",
    17: "0a1b762b342fed2fb21aed76ca576d5061d57eb87a7dd36468daf895f64945bb",
}

"""AES-128 (FIPS-197) in a circuit: key expansion, block encryption and the GCM counter keystream.

Bytes are 8 known-boolean bits, least significant first (:mod:`zkmb.gadgets.bits`); a block is 16
bytes in FIPS-197 input order (state column-major: byte ``i`` is row ``i % 4``, column ``i // 4``).
The S-box is derived at import from GF(2^8) = GF(2)[x]/(x^8+x^4+x^3+x+1) with ``galois``
(inversion, then the affine map), not pasted.

In-circuit lookups (:func:`lookup8`): a table of 256 field values indexed by a byte costs **26**
constraints: the one-hot vector of the low nibble (11 products, built bit by bit, the last product
of each step derived linearly from the others), 16 linear combinations of the table with it, then
a multiplexer tree over the high nibble (8 + 4 + 2 + 1 products).  The looked-up value may pack
many bits, so a full round looks up, per byte, a "T-table" word: its S-box output already
multiplied by the MixColumns coefficients of its row, in *spread* form (bit ``i`` of the column
word at bit ``3i``).  The four words of a column and the spread round key add without carries
between the 3-bit slots (each slot holds at most 5), and one 96-bit decomposition of the sum (97
constraints) yields every slot's parity, i.e. the xor, as bit ``3i``.  The last round does the same
with base-4 slots (64-bit decomposition, 65 constraints): about 50 per byte and round.  The
alternative of S-box bits (the same lookup + 9 for the output bits) followed by bitwise xtime/xor
for MixColumns and AddRoundKey measured 81 per byte and round (77 if the xtimes are shared); an
inversion-based S-box on bits was not built, since each GF(2^8) multiplication alone takes 64
products.

Costs (all inputs variable): :func:`aes128_encrypt_block` **8,040** per block from its round keys
(initial AddRoundKey 128, nine rounds x (16 x 26 + 4 x 97) = 7,236, last round 16 x 26 + 4 x 65 =
676); :func:`aes128_expand_key` **2,650** (per round key: SubWord as 4 lookups + one 64-bit
decomposition = 169, then 3 word xors = 96).  :func:`aes_ctr_keystream` shares the nonce's
AddRoundKey and its first-round lookups between blocks (12 x 26 = 312 saved per extra block).
"""

from __future__ import annotations

from collections.abc import Sequence

import galois

from ..errors import InvalidInput
from ..r1cs import API, LC, Circuit, ConstraintSystem, Secret, compile
from ..r1cs.lc import add_terms, scale_terms
from .bits import Bits, const_bytes, const_u32, pack_bits, xor_bits
from .chacha20 import add32
from .registry import register

__all__ = [
    "GCM_FIRST_COUNTER",
    "RCON",
    "SBOX",
    "aes128_encrypt_block",
    "aes128_encrypt_block_native",
    "aes128_expand_key",
    "aes128_expand_key_native",
    "aes_ctr_keystream",
    "aes_ctr_keystream_native",
    "gcm_j0",
    "lookup8",
]

_GF = galois.GF(2**8, irreducible_poly=0x11B)


def _affine(b: int) -> int:
    out = 0
    for i in range(8):
        bit = (b >> i) ^ (b >> ((i + 4) % 8)) ^ (b >> ((i + 5) % 8)) ^ (b >> ((i + 6) % 8))
        bit ^= (b >> ((i + 7) % 8)) ^ (0x63 >> i)
        out |= (bit & 1) << i
    return out


def _make_sbox() -> tuple[int, ...]:
    elems = _GF(list(range(1, 256)))
    inv = [0, *(int(v) for v in elems**-1)]
    return tuple(_affine(v) for v in inv)


SBOX: tuple[int, ...] = _make_sbox()
"""The AES S-box: affine(x^-1) in GF(2^8), 0 -> 0x63."""

RCON = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1B, 0x36)
"""Round constants (the first byte of Rcon[i], i = 1..10)."""

GCM_FIRST_COUNTER = 2
"""For a 96-bit IV, J0 = IV || 1 masks the tag; the payload keystream starts at counter 2."""

_MIX = ((2, 3, 1, 1), (1, 2, 3, 1), (1, 1, 2, 3), (3, 1, 1, 2))


def _gmul(a: int, b: int) -> int:
    return int(_GF(a) * _GF(b))


def _spread(v: int, base_bits: int) -> int:
    return sum(((v >> i) & 1) << (base_bits * i) for i in range(8))


# T-tables: _T[j][x] = sum_r spread3(MIX[r][j] * S(x)) << 24 r (the byte at row j of a column)
_T = tuple(
    tuple(sum(_spread(_gmul(_MIX[r][j], SBOX[x]), 3) << (24 * r) for r in range(4)) for x in range(256))
    for j in range(4)
)
# last round and SubWord: _S2[r][x] = spread2(S(x)) << 16 r
_S2 = tuple(tuple(_spread(SBOX[x], 2) << (16 * r) for x in range(256)) for r in range(4))


# --------------------------------------------------------------------------- native twins


def _check_bytes(x, n: int, what: str) -> bytes:
    if not isinstance(x, (bytes, bytearray)) or len(x) != n:
        raise InvalidInput(f"{what} is {n} bytes")
    return bytes(x)


def aes128_expand_key_native(key: bytes) -> list[bytes]:
    """The 11 round keys (16 bytes each) of an AES-128 key (FIPS-197 §5.2)."""
    key = _check_bytes(key, 16, "an AES-128 key")
    w = [list(key[4 * i : 4 * i + 4]) for i in range(4)]
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= RCON[i // 4 - 1]
        w.append([a ^ b for a, b in zip(w[i - 4], t, strict=True)])
    return [bytes(sum(w[4 * r : 4 * r + 4], [])) for r in range(11)]


def _xtime_mix(col: list[int]) -> list[int]:
    return [
        _gmul(_MIX[r][0], col[0])
        ^ _gmul(_MIX[r][1], col[1])
        ^ _gmul(_MIX[r][2], col[2])
        ^ _gmul(_MIX[r][3], col[3])
        for r in range(4)
    ]


def aes128_encrypt_block_native(key: bytes, block: bytes) -> bytes:
    """AES-128 encryption of one 16-byte block (FIPS-197 §5.1)."""
    rk = aes128_expand_key_native(key)
    s = [a ^ b for a, b in zip(_check_bytes(block, 16, "an AES block"), rk[0], strict=True)]
    for rnd in range(1, 11):
        s = [SBOX[b] for b in s]
        s = [s[(r + 4 * ((c + r) % 4))] for c in range(4) for r in range(4)]  # ShiftRows
        if rnd < 10:
            s = sum((_xtime_mix(s[4 * c : 4 * c + 4]) for c in range(4)), [])
        s = [a ^ b for a, b in zip(s, rk[rnd], strict=True)]
    return bytes(s)


def gcm_j0(iv: bytes) -> bytes:
    """J0 = IV || 0x00000001 for a 96-bit IV (NIST SP 800-38D §7.1)."""
    return _check_bytes(iv, 12, "a GCM IV (96 bits)") + (1).to_bytes(4, "big")


def aes_ctr_keystream_native(key: bytes, nonce: bytes, counter: int, n_blocks: int) -> bytes:
    """E(K, nonce || be32(counter + i)) for i < n_blocks (GCM's inc32 counter; no wrap allowed)."""
    nonce = _check_bytes(nonce, 12, "a GCM nonce")
    if not isinstance(counter, int) or not isinstance(n_blocks, int) or counter < 0 or n_blocks < 0:
        raise InvalidInput("counter and n_blocks are non-negative ints")
    if counter + n_blocks - 1 > 0xFFFFFFFF:
        raise InvalidInput("the 32-bit block counter would wrap")
    return b"".join(
        aes128_encrypt_block_native(key, nonce + (counter + i).to_bytes(4, "big")) for i in range(n_blocks)
    )


# --------------------------------------------------------------------------- the gadget


def _lin(lcs: Sequence[LC], coeffs: Sequence[int]) -> LC:
    acc: dict[int, int] = {}
    for x, c in zip(lcs, coeffs, strict=True):
        if c:
            acc = add_terms(acc, scale_terms(x.t, c))
    return LC(acc)


def lookup8(api: API, x: Sequence, table: Sequence[int]) -> LC:
    """``table[x]`` for a byte x of 8 known-boolean bits (LSB first) and 256 field constants.

    26 constraints (fewer when bits are constant): the low-nibble one-hot vector e (11 products),
    ``L_h = sum_l table[16h + l] e_l`` (linear), then a multiplexer tree over the high nibble
    (15 products).  The result is exactly ``table[x]`` for boolean bits.
    """
    if len(x) != 8 or len(table) != 256:
        raise InvalidInput("lookup8 takes 8 bits and a 256-entry table")
    onehot: list = [LC.constant(1)]
    for k in range(4):
        xk = x[k]
        prods = [api.mul(e, xk) for e in onehot[:-1]]
        prods.append(api.sub(xk, *prods) if prods else api.add(xk, 0))
        onehot = [api.sub(e, p) for e, p in zip(onehot, prods, strict=True)] + prods
    level = [_lin(onehot, table[16 * h : 16 * h + 16]) for h in range(16)]
    for k in range(7, 3, -1):  # fold the top bit first: index h = h' + 2^(k-4) b
        half = len(level) // 2
        b = x[k]
        level = [api.add(level[i], api.mul(b, api.sub(level[i + half], level[i]))) for i in range(half)]
    return level[0]


def _check_block(block: Sequence[Sequence], what: str) -> list[Bits]:
    if len(block) != 16 or any(len(b) != 8 for b in block):
        raise InvalidInput(f"{what}: expected 16 bytes of 8 bits")
    return [list(b) for b in block]


def _spread_bits(byte: Sequence, base_bits: int, shift: int) -> LC:
    return pack_bits([v for bit in byte for v in [bit] + [LC.constant(0)] * (base_bits - 1)]) * (1 << shift)


def aes128_expand_key(api: API, key: Sequence[Sequence]) -> list[list[Bits]]:
    """The 11 round keys (16 bytes of known-boolean bits each) of a 16-byte key: 2,650 constraints."""
    key = _check_block(key, "aes128 key")
    w = [key[4 * i : 4 * i + 4] for i in range(4)]
    for i in range(4, 44):
        if i % 4 == 0:
            with api.scope("subword"):
                prev, old = w[i - 1], w[i - 4]
                acc = LC({})
                for r in range(4):  # RotWord: byte r of the result is S(prev[r + 1])
                    acc = acc + lookup8(api, prev[(r + 1) % 4], _S2[r]) + _spread_bits(old[r], 2, 16 * r)
                bits = api.to_bits(acc, 64)
                rcon = RCON[i // 4 - 1]
                new = []
                for r in range(4):
                    byte = [bits[16 * r + 2 * j] for j in range(8)]
                    if r == 0:
                        byte = [api.sub(1, b) if (rcon >> j) & 1 else b for j, b in enumerate(byte)]
                    new.append(byte)
        else:
            new = [xor_bits(api, a, b) for a, b in zip(w[i - 4], w[i - 1], strict=True)]
        w.append(new)
    return [[byte for word in w[4 * r : 4 * r + 4] for byte in word] for r in range(11)]


def _check_round_keys(round_keys: Sequence[Sequence[Sequence]]) -> list[list[Bits]]:
    if len(round_keys) != 11:
        raise InvalidInput("AES-128 has 11 round keys")
    return [_check_block(k, "aes128 round key") for k in round_keys]


def _first_lookups(api: API, state: list[Bits], indices: Sequence[int]) -> dict[int, LC]:
    """Round-1 T-table lookups of the given state bytes (after the initial AddRoundKey)."""
    return {i: lookup8(api, state[i], _T[i % 4]) for i in indices}


def _rounds(api: API, rk: list[list[Bits]], looked: dict[int, LC]) -> list[Bits]:
    """Rounds 1..10 given the round-1 lookups of every state byte."""
    state: list[Bits] = []
    for rnd in range(1, 11):
        with api.scope(f"round_{rnd}"):
            if rnd > 1:
                table = _T if rnd < 10 else _S2
                looked = {i: lookup8(api, state[i], table[i % 4]) for i in range(16)}
            new: list[Bits] = []
            for c in range(4):
                if rnd < 10:
                    acc = sum((looked[(c + j) % 4 * 4 + j] for j in range(4)), LC({}))
                    for r in range(4):
                        acc = acc + _spread_bits(rk[rnd][4 * c + r], 3, 24 * r)
                    bits = api.to_bits(acc, 96)
                    new.extend([bits[24 * r + 3 * j] for j in range(8)] for r in range(4))
                else:
                    acc = sum((looked[(c + r) % 4 * 4 + r] for r in range(4)), LC({}))
                    for r in range(4):
                        acc = acc + _spread_bits(rk[rnd][4 * c + r], 2, 16 * r)
                    bits = api.to_bits(acc, 64)
                    new.extend([bits[16 * r + 2 * j] for j in range(8)] for r in range(4))
            state = new
    return state


def aes128_encrypt_block(api: API, round_keys: Sequence[Sequence[Sequence]], block) -> list[Bits]:
    """AES-128 encryption of a block (16 bytes of known-boolean bits, or a bytes constant).

    ``round_keys`` from :func:`aes128_expand_key`.  Returns 16 bytes of bits, each boolean by
    construction.  8,040 constraints with a variable block (fewer for constant block bytes).
    """
    rk = _check_round_keys(round_keys)
    if isinstance(block, (bytes, bytearray)):
        block = const_bytes(_check_bytes(block, 16, "an AES block"))
    block = _check_block(block, "aes128 block")
    with api.scope("round_0"):
        state = [xor_bits(api, a, b) for a, b in zip(block, rk[0], strict=True)]
        looked = _first_lookups(api, state, range(16))
    return _rounds(api, rk, looked)


def aes_ctr_keystream(
    api: API, round_keys: Sequence[Sequence[Sequence]], nonce, counter, n_blocks: int
) -> list[Bits]:
    """The keystream bytes E(K, nonce || be32(counter + i)), i < n_blocks (GCM's inc32 counter).

    ``nonce``: 12 bytes of known-boolean bits (e.g. from :func:`~zkmb.gadgets.chacha20.tls_nonce`);
    ``counter``: an int constant (SPEC: 2 for the client Finished, 2 + 4j for PAD block j) or a
    32-bit word (LSB first; ``counter + i`` costs 33 per block after the first, and must not wrap).
    The nonce's AddRoundKey and round-1 lookups are computed once for all blocks.
    """
    rk = _check_round_keys(round_keys)
    if not isinstance(n_blocks, int) or n_blocks < 0:
        raise InvalidInput("n_blocks must be a non-negative int")
    if len(nonce) != 12 or any(len(b) != 8 for b in nonce):
        raise InvalidInput("a GCM nonce is 12 bytes of 8 bits")
    if isinstance(counter, int) and not 0 <= counter <= 0xFFFFFFFF - max(n_blocks - 1, 0):
        raise InvalidInput("the 32-bit block counter would wrap")
    if not isinstance(counter, int) and len(counter) != 32:
        raise InvalidInput("a variable counter is 32 bits")
    if n_blocks == 0:
        return []
    with api.scope("nonce_round_0"):
        head = [xor_bits(api, a, b) for a, b in zip(nonce, rk[0][:12], strict=True)]
        shared = _first_lookups(api, head + [[]] * 4, range(12))
    out: list[Bits] = []
    for i in range(n_blocks):
        with api.scope(f"block_{i}"):
            if isinstance(counter, int):
                ctr = const_u32(counter + i)
            else:
                ctr = list(counter) if i == 0 else add32(api, counter, const_u32(i))
            ctr_bytes = [ctr[24 - 8 * k : 32 - 8 * k] for k in range(4)]  # big-endian
            with api.scope("round_0"):
                tail = [xor_bits(api, a, b) for a, b in zip(ctr_bytes, rk[0][12:], strict=True)]
                looked = dict(shared)
                looked.update(_first_lookups(api, head + tail, range(12, 16)))
            out.extend(_rounds(api, rk, looked))
    return out


# --------------------------------------------------------------------------- registered circuits


class _BlockCircuit(Circuit):
    """One block from its 11 round keys, every bit a (boolean, unchecked) secret input."""

    round_keys = Secret(count=11 * 128)
    block = Secret(count=128)

    def define(self, api: API) -> None:
        rk = [[self.round_keys[128 * r + 8 * i : 128 * r + 8 * i + 8] for i in range(16)] for r in range(11)]
        aes128_encrypt_block(api, rk, [self.block[8 * i : 8 * i + 8] for i in range(16)])


class _KeyExpansionCircuit(Circuit):
    """The key expansion of a key whose 128 bits are (boolean, unchecked) secret inputs."""

    key = Secret(count=128)

    def define(self, api: API) -> None:
        aes128_expand_key(api, [self.key[8 * i : 8 * i + 8] for i in range(16)])


@register("aes128_block")
def block_circuit() -> ConstraintSystem:
    """The representative circuit of :func:`aes128_encrypt_block` (round keys and block variable)."""
    return compile(_BlockCircuit)


@register("aes128_key_expansion")
def key_expansion_circuit() -> ConstraintSystem:
    """The representative circuit of :func:`aes128_expand_key` (all 128 key bits variable)."""
    return compile(_KeyExpansionCircuit)

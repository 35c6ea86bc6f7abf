"""Bit, byte and word gadgets: values against Python integers, satisfiability, tampering, pinned counts.

One circuit with every word operation is compiled per module and solved for many inputs
(hypothesis); constant folding and the byte packing of SPEC §7 have small circuits of their own.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput
from zkmb.gadgets.bits import (
    BYTES_PER_ELEMENT,
    add_mod,
    add_u32,
    and_bits,
    bit_and,
    bit_ch,
    bit_maj,
    bit_xor,
    bit_xor3,
    bits_from_values,
    byte_from_value,
    bytes_from_values,
    bytes_to_u32_be,
    const_bits,
    const_bytes,
    const_u32,
    lazy_sum,
    lc_value,
    not_bits,
    pack_bits,
    pack_bytes,
    pack_bytes_lc,
    rotr,
    shared_products,
    shr,
    u32_from_value,
    u32_to_bytes_be,
    unpack_bytes,
    unpack_bytes_native,
    witness_bytes,
    witness_int,
    xor3_bits,
    xor_bits,
)
from zkmb.r1cs import Circuit, Secret, UnsatisfiedError, compile

from .tamper import (
    assert_fails_in,
    bit_wires,
    bump,
    flip,
    product_wires,
    rows_in_scope,
    solve_pinned,
    violated_rows,
    violated_scopes,
)

M32 = 0xFFFFFFFF
N_WORDS = 7
words_st = st.lists(st.integers(0, M32), min_size=N_WORDS, max_size=N_WORDS)


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & M32


def _maj(a: int, b: int, c: int) -> int:
    return (a & b) | (a & c) | (b & c)


# --------------------------------------------------------------------------- the word-operation circuit


class WordOps(Circuit):
    x = Secret(count=N_WORDS)

    def define(self, api):
        self.counts = {}

        def gadget(name, fn):
            n0 = api.n_constraints
            with api.scope(name):
                out = fn()
            self.counts[name] = api.n_constraints - n0
            return out

        w = gadget("inputs", lambda: [u32_from_value(api, v) for v in self.x])
        a, b, c = w[:3]
        self.w = w
        self.out = {
            "xor": gadget("xor", lambda: xor_bits(api, a, b)),
            "xor3": gadget("xor3", lambda: xor3_bits(api, a, b, c)),
            "and": gadget("and", lambda: and_bits(api, a, b)),
            "not": gadget("not", lambda: not_bits(a)),
            "ch": gadget("ch", lambda: [bit_ch(api, *t) for t in zip(a, b, c, strict=True)]),
            "maj": gadget("maj", lambda: [bit_maj(api, *t) for t in zip(a, b, c, strict=True)]),
            "rotr7": gadget("rotr7", lambda: rotr(a, 7)),
            "shr3": gadget("shr3", lambda: shr(a, 3)),
            "add_const": gadget("add_const", lambda: add_u32(api, a, M32, b)),
        }
        for k in range(2, N_WORDS + 1):
            self.out[f"add{k}"] = gadget(f"add{k}", lambda k=k: add_u32(api, *w[:k]))
        # bytes of a word and back, then a sum that mixes bits, a Lazy term and a constant
        self.out["bytes_roundtrip"] = bytes_to_u32_be(u32_to_bytes_be(c))
        lazy = lazy_sum([a, b])
        self.out["add_lazy"] = gadget("add_lazy", lambda: add_mod(api, [lazy, c, 5]))


def expected(x: list[int]) -> dict[str, int]:
    a, b, c = x[:3]
    out = {
        "xor": a ^ b,
        "xor3": a ^ b ^ c,
        "and": a & b,
        "not": a ^ M32,
        "ch": (a & b) ^ (~a & c & M32),
        "maj": _maj(a, b, c),
        "rotr7": _rotr(a, 7),
        "shr3": a >> 3,
        "add_const": (a + M32 + b) & M32,
        "bytes_roundtrip": c,
        "add_lazy": (a + b + c + 5) & M32,
    }
    for k in range(2, N_WORDS + 1):
        out[f"add{k}"] = sum(x[:k]) & M32
    return out


@pytest.fixture(scope="module")
def word_ops():
    inst = WordOps()
    return inst, compile(inst)


def check_values(word_ops, x):
    inst, cs = word_ops
    w = cs.solve({"x": x})
    assert cs.is_satisfied(w)
    ints = w.to_ints()
    got = {name: witness_int(ints, bits) for name, bits in inst.out.items()}
    assert got == expected(x)
    return w


def test_word_ops_counts(word_ops):
    inst, cs = word_ops
    assert inst.counts == {
        "inputs": N_WORDS * 33,
        "xor": 32,
        "xor3": 64,
        "and": 32,
        "not": 0,
        "ch": 32,
        "maj": 64,
        "rotr7": 0,
        "shr3": 0,
        "add_const": 35,  # bound 3 (2^32 - 1): 34 bits + 1
        "add2": 34,
        "add3": 35,
        "add4": 35,
        "add5": 36,
        "add6": 36,
        "add7": 36,
        "add_lazy": 35,
    }
    assert cs.n_constraints == sum(inst.counts.values())


@pytest.mark.parametrize(
    "x",
    [
        [0] * N_WORDS,
        [M32] * N_WORDS,
        [0x55555555, 0xAAAAAAAA, 0x0F0F0F0F, 1, 0x80000000, M32, 0],
        [1, M32, 0, M32, 1, M32, 0x7FFFFFFF],
    ],
)
def test_word_ops_boundary(word_ops, x):
    check_values(word_ops, x)


@settings(max_examples=40, deadline=None)
@given(words_st)
def test_word_ops_random(word_ops, x):
    check_values(word_ops, x)


def test_word_ops_tampered(word_ops):
    inst, cs = word_ops
    rng = random.Random(1)
    w = check_values(word_ops, [rng.getrandbits(32) for _ in range(N_WORDS)])
    # an xor output is the product wire (a - b)^2: flipping it breaks that product
    xw = inst.out["xor"][5].wire
    assert xw in product_wires(cs, "xor")
    assert_fails_in(cs, flip(w, xw), "xor")
    assert_fails_in(cs, w.replace(xw, 2), "xor")
    # the inner product of a three-input xor
    assert_fails_in(cs, bump(w, product_wires(cs, "xor3")[0]), "xor3")
    assert_fails_in(cs, bump(w, product_wires(cs, "maj")[3]), "maj")
    assert_fails_in(cs, bump(w, product_wires(cs, "ch")[7]), "ch")
    # a sum's output bit, a carry bit, an input bit: the recomposition fails in that scope
    for scope in ("add4", "add7", "add_const", "add_lazy", "inputs"):
        bits = bit_wires(cs, scope)
        assert_fails_in(cs, flip(w, bits[0]), scope)
        assert_fails_in(cs, flip(w, bits[-1]), scope)  # the top carry bit (or the top input bit)
        assert_fails_in(cs, w.replace(bits[3], 2), scope)  # not boolean
    # the same sum with a carry moved down (non-binary digits) is caught by booleanity
    w = check_values(word_ops, [M32] * N_WORDS)  # 4 * M32 = 0x3_FFFF_FFFC: carries 32 and 33 set
    b4 = bit_wires(cs, "add4")
    assert (w.value(b4[32]), w.value(b4[33])) == (1, 1)
    assert_fails_in(cs, w.replace(b4[33], 0).replace(b4[32], 3), "add4")


def test_and_bits_tampered(word_ops):
    """and_bits: every output bit is a product wire; the cheater's flipped answer breaks exactly it."""
    inst, cs = word_ops
    rng = random.Random(2)
    x = [rng.getrandbits(32) for _ in range(N_WORDS)]
    w = check_values(word_ops, x)  # value = a & b, satisfied
    outs = [bit.wire for bit in inst.out["and"]]
    assert outs == product_wires(cs, "and") and len(outs) == 32
    and_rows = rows_in_scope(cs, "and")
    for i, wire in enumerate(outs):
        cheat = flip(w, wire)  # "a_i and b_i" claimed to be the other bit
        assert_fails_in(cs, cheat, "and")
        assert violated_rows(cs, cheat) == [and_rows[i]]
    assert_fails_in(cs, w.replace(outs[0], 2), "and")
    # the cheater forges an input bit instead (so that a_i and b_i = 1), recomputing the rest: the
    # and is then right for the forged bit, and the input decomposition catches the forgery
    a, b = x[0], x[1]
    i = next(i for i in range(32) if not (a >> i) & 1 and (b >> i) & 1)
    a_bit = inst.w[0][i].wire
    cheat = solve_pinned(cs, {"x": x}, {a_bit: 1})
    assert cheat.value(outs[i]) == 1
    assert_fails_in(cs, cheat, "inputs")
    assert set(violated_scopes(cs, cheat)) == {"inputs"}


def test_bit_and_tampered():
    class T(Circuit):
        x = Secret(count=2)

        def define(self, api):
            a, b = bits_from_values(api, self.x)
            with api.scope("and"):
                self.ab = bit_and(api, a, b)
                self.a1 = bit_and(api, a, 1)  # constants fold: no constraint
                self.zb = bit_and(api, 0, b)

    inst = T()
    cs = compile(inst)
    assert cs.n_constraints == 2 + 1
    assert len(rows_in_scope(cs, "and")) == 1
    (out,) = product_wires(cs, "and")
    assert inst.ab.wire == out
    for a in (0, 1):
        for b in (0, 1):
            w = cs.solve({"x": [a, b]})
            assert cs.is_satisfied(w)
            assert [lc_value(w, v) for v in (inst.ab, inst.a1, inst.zb)] == [a & b, a, 0]
            assert_fails_in(cs, flip(w, out), "and")
            assert_fails_in(cs, w.replace(out, R - 1), "and")
    # a non-boolean "bit" 2 with b = 1/2 would make the product 1: the input check stops it first
    w = cs.solve({"x": [1, 1]})
    cheat = w.replace(cs.inputs["x"].first_wire, 2).replace(cs.inputs["x"].first_wire + 1, pow(2, -1, R))
    assert not cs.is_satisfied(cheat)
    assert set(violated_scopes(cs, cheat)) == {""}


def test_shared_products():
    """Inside ``shared_products`` a product of the same operands is made once (xors normalised, so
    ``(1 - x) xor y`` reuses ``x xor y``); the shared wire is still fixed by its one constraint."""

    class T(Circuit):
        x = Secret(count=3)

        def define(self, api):
            a, b, c = bits_from_values(api, self.x)
            with api.scope("plain"):  # outside a shared block every gadget makes its own product
                bit_xor(api, a, b)
                bit_xor(api, a, b)
            with api.scope("shared"), shared_products(api):
                self.outs = [
                    bit_xor(api, a, b),  # 1
                    bit_xor(api, b, a),  # reused
                    bit_xor(api, 1 - a, b),  # reused, flipped
                    bit_xor(api, 1 - a, 1 - b),  # reused
                    bit_xor3(api, a, b, c),  # 1 more (the first xor reused)
                    bit_xor3(api, 1 - a, b, 1 - c),  # reused
                    bit_ch(api, a, b, c),  # 1
                    bit_ch(api, a, b, c),  # reused
                    bit_maj(api, a, b, c),  # 1 (its xor of a, b reused)
                    bit_maj(api, a, b, c),  # reused
                    bit_and(api, a, c),  # 1
                    bit_and(api, c, a),  # reused
                ]
                with shared_products(api):  # nested: the outer table stays
                    self.outs.append(bit_xor(api, a, b))

    inst = T()
    cs = compile(inst)
    assert len(rows_in_scope(cs, "plain")) == 2
    assert len(rows_in_scope(cs, "shared")) == 5
    assert cs.n_constraints == 3 + 2 + 5
    for x in range(8):
        a, b, c = x & 1, x >> 1 & 1, x >> 2 & 1
        w = cs.solve({"x": [a, b, c]})
        assert cs.is_satisfied(w)
        want = (
            [a ^ b, a ^ b, 1 ^ a ^ b, a ^ b]
            + [a ^ b ^ c] * 2
            + [b if a else c] * 2
            + [int(a + b + c >= 2)] * 2
        )
        assert [lc_value(w, v) for v in inst.outs] == [*want, a & c, a & c, a ^ b]
        for wire in product_wires(cs, "shared"):  # each shared wire is still pinned by its constraint
            assert_fails_in(cs, w.replace(wire, w.value(wire) + 1), "shared")


def test_known_boolean_inputs_are_not_reasserted():
    class T(Circuit):
        x = Secret(count=3)

        def define(self, api):
            bits = bits_from_values(api, self.x)  # 3
            bits_from_values(api, self.x)  # already known boolean: 0
            self.out = add_u32(api, bits, bits[::-1])  # bound 2 * 7 -> 4 bits + 1
            self.n = api.n_constraints

    inst = T()
    cs = compile(inst)
    assert inst.n == cs.n_constraints == 3 + 5
    w = cs.solve({"x": [1, 0, 1]})
    assert witness_int(w, inst.out) == 10
    with pytest.raises(UnsatisfiedError):
        cs.solve({"x": [1, 2, 1]})


# --------------------------------------------------------------------------- constants fold


def test_constant_folding():
    class T(Circuit):
        x = Secret(count=3)

        def define(self, api):
            a, b, c = bits_from_values(api, self.x)
            n = api.n_constraints
            one, zero = const_bits(1, 1)[0], const_bits(0, 1)[0]
            self.r = {}
            counts = {}

            def run(name, fn):
                m = api.n_constraints
                self.r[name] = fn()
                counts[name] = api.n_constraints - m

            run("xor_c1", lambda: bit_xor(api, a, one))
            run("xor_c0", lambda: bit_xor(api, zero, a))
            run("xor_same", lambda: bit_xor(api, a, a))
            run("xor3_c", lambda: bit_xor3(api, a, one, b))
            run("xor3_cc", lambda: bit_xor3(api, one, a, one))
            run("maj_c0", lambda: bit_maj(api, a, b, zero))  # a and b
            run("maj_c1", lambda: bit_maj(api, one, a, b))  # a or b
            run("maj_cc", lambda: bit_maj(api, one, a, zero))  # a
            run("ch_c", lambda: bit_ch(api, one, a, b))  # a
            run("ch_fg", lambda: bit_ch(api, c, one, zero))  # c
            run("add_consts", lambda: add_u32(api, const_u32(M32), M32, 5))
            self.counts = counts
            self.total = api.n_constraints - n

    inst = T()
    cs = compile(inst)
    assert inst.counts == {
        "xor_c1": 0,
        "xor_c0": 0,
        "xor_same": 0,
        "xor3_c": 1,
        "xor3_cc": 0,
        "maj_c0": 1,
        "maj_c1": 1,
        "maj_cc": 0,
        "ch_c": 0,
        "ch_fg": 0,
        "add_consts": 0,
    }
    assert witness_int(cs.solve({"x": [0, 0, 0]}), inst.r["add_consts"]) == (2 * M32 + 5) & M32
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                w = cs.solve({"x": [a, b, c]})
                got = {k: lc_value(w, v) for k, v in inst.r.items() if k != "add_consts"}
                assert got == {
                    "xor_c1": 1 - a,
                    "xor_c0": a,
                    "xor_same": 0,
                    "xor3_c": 1 - (a ^ b),
                    "xor3_cc": a,
                    "maj_c0": a & b,
                    "maj_c1": a | b,
                    "maj_cc": a,
                    "ch_c": a,
                    "ch_fg": c,
                }


def test_lazy_sum_and_add_mod_errors():
    with pytest.raises(InvalidInput):
        lazy_sum([-1])
    with pytest.raises(InvalidInput):
        lazy_sum([(const_bits(1, 1)[0], -1)])
    with pytest.raises(InvalidInput):
        const_bits(256, 8)
    with pytest.raises(InvalidInput):
        bytes_to_u32_be([[0] * 8] * 3)
    with pytest.raises(InvalidInput):
        pack_bits(const_bits(0, 254))
    value, bound = lazy_sum([const_u32(7), 9, [const_bits(1, 1)[0]] * 3])
    assert value.const_value() == 7 + 9 + 7 and bound == 23

    class Big(Circuit):
        x = Secret()

        def define(self, api):
            add_mod(api, [(self.x, R // 2)])

    with pytest.raises(InvalidInput):
        compile(Big)


def test_short_sum_pads_with_zero_bits():
    class T(Circuit):
        x = Secret(count=2)

        def define(self, api):
            bits = bits_from_values(api, self.x)
            self.out = add_mod(api, [bits[:1], bits[1:]], n=8)  # bound 2: 2 bits, padded to 8
            self.n = api.n_constraints

    inst = T()
    cs = compile(inst)
    assert len(inst.out) == 8 and inst.n == 2 + 3
    assert witness_int(cs.solve({"x": [1, 1]}), inst.out) == 2


# --------------------------------------------------------------------------- bytes and packing (SPEC §7)


@pytest.mark.parametrize("n", [0, 1, 30, 31, 32, 61, 62, 63, 100])
def test_pack_bytes_native(n):
    data = bytes(random.Random(n).getrandbits(8) for _ in range(n))
    elems = pack_bytes(data)
    assert len(elems) == -(-n // BYTES_PER_ELEMENT)
    assert elems == [int.from_bytes(data[i : i + 31], "big") for i in range(0, n, 31)]
    assert all(e < 1 << 248 for e in elems)
    assert unpack_bytes_native(elems, n) == data


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_pack_roundtrip_native(data):
    assert unpack_bytes_native(pack_bytes(data), len(data)) == data


def test_unpack_native_rejects():
    with pytest.raises(InvalidInput):
        unpack_bytes_native([1, 2], 31)
    with pytest.raises(InvalidInput):
        unpack_bytes_native([1 << 16], 2)
    with pytest.raises(InvalidInput):
        unpack_bytes_native([-1], 2)


LEN = 70  # 31 + 31 + 8


class Packing(Circuit):
    elems = Secret(count=3)
    raw = Secret(count=5)

    def define(self, api):
        with api.scope("unpack"):
            self.data = unpack_bytes(api, self.elems, LEN)
        self.n_unpack = api.n_constraints
        with api.scope("repack"):
            for e, p in zip(self.elems, pack_bytes_lc(self.data), strict=True):
                api.assert_equal(e, p)
        with api.scope("bytes"):
            self.raw_bytes = bytes_from_values(api, self.raw)
            self.single = byte_from_value(api, self.raw[0])


@pytest.fixture(scope="module")
def packing():
    inst = Packing()
    return inst, compile(inst)


@pytest.mark.parametrize("fill", [None, 0x00, 0xFF])
def test_packing_circuit(packing, fill):
    inst, cs = packing
    rng = random.Random(7)
    data = bytes(fill if fill is not None else rng.getrandbits(8) for _ in range(LEN))
    raw = [0, 1, 127, 128, 255]
    w = cs.solve({"elems": pack_bytes(data), "raw": raw})
    assert witness_bytes(w, inst.data) == data
    assert witness_bytes(w, inst.raw_bytes) == bytes(raw)
    assert inst.n_unpack == (8 * 31 + 1) * 2 + 8 * 8 + 1
    assert cs.n_constraints == inst.n_unpack + 3 + 6 * 9


def test_packing_rejects_out_of_range(packing):
    inst, cs = packing
    data = bytes(range(LEN))
    good = pack_bytes(data)
    bads = ([good[0], good[1], good[2] + (1 << 64)], [R - 1, *good[1:]], [good[0] + (1 << 248), *good[1:]])
    for bad in bads:
        with pytest.raises(UnsatisfiedError, match="scope 'unpack'"):
            cs.solve({"elems": bad, "raw": [0] * 5})
    with pytest.raises(UnsatisfiedError, match="scope 'bytes'"):
        cs.solve({"elems": good, "raw": [0, 0, 256, 0, 0]})
    w = cs.solve({"elems": good, "raw": [0] * 5})
    # flipping one unpacked bit breaks that element's decomposition
    assert_fails_in(cs, flip(w, inst.data[40][3].wire), "unpack")


def test_bytes_words_layout():
    word = const_u32(0x01020304)
    assert [pack_bits(b).const_value() for b in u32_to_bytes_be(word)] == [1, 2, 3, 4]
    assert pack_bits(bytes_to_u32_be(const_bytes(b"\x0a\x0b\x0c\x0d"))).const_value() == 0x0A0B0C0D
    data = bytes(range(40))
    assert [p.const_value() for p in pack_bytes_lc(const_bytes(data))] == pack_bytes(data)
    assert pack_bytes_lc([]) == []


def test_witness_int_rejects_non_bits():
    assert witness_int([1, 1, 0, 1], [const_bits(1, 1)[0]]) == 1
    from zkmb.r1cs import LC

    with pytest.raises(InvalidInput):
        witness_int([1, 2], [LC({1: 1})])

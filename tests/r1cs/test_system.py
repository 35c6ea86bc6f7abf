"""Compiled systems: wire layout, CSR matrices, digest, solving, hints, input validation."""

from __future__ import annotations

import gc
import hashlib
import struct

import numpy as np
import pytest

from zkmb.algebra.params import R
from zkmb.errors import InvalidInput, ZkmbError
from zkmb.r1cs import (
    Circuit,
    CircuitError,
    Public,
    PyHint,
    Secret,
    UnsatisfiedError,
    Witness,
    compile,
    numba_hint,
)

from .util import build, py_failing_rows, rows


class Square(Circuit):
    """y = x^2 with the public inputs declared after a secret one."""

    x = Secret()
    y = Public()
    zs = Public(count=2)

    def define(self, api):
        with api.scope("square"):
            api.assert_equal(api.mul(self.x, self.x), self.y)
        api.assert_equal(api.add(self.zs[0], self.zs[1]), self.x)


class Sized(Circuit):
    """An input whose length depends on a constructor argument."""

    xs = Secret(count=lambda self: self.n)

    def __init__(self, n):
        self.n = n

    def define(self, api):
        api.assert_equal(api.mul(*self.xs), 24)


def test_wire_layout_and_counts():
    cs = compile(Square)
    # wire 0 = 1, public y, zs[0], zs[1] (declaration order), then secret x, then the product
    assert (cs.n_public, cs.n_wires, cs.n_constraints) == (3, 6, 3)
    assert (
        cs.inputs["y"].first_wire == 1 and cs.inputs["zs"].first_wire == 2 and cs.inputs["x"].first_wire == 4
    )
    assert cs.n_secret_inputs == 1 and cs.n_internal == 1
    w = cs.solve({"x": 3, "y": 9, "zs": [1, 2]})
    assert w.to_ints() == [1, 9, 1, 2, 3, 9]
    assert w.public_inputs() == [9, 1, 2]
    assert len(w) == 6
    assert "3 constraints" in repr(cs)


def test_sized_inputs_and_instances():
    cs = compile(Sized(3))
    assert cs.inputs["xs"].count == 3 and cs.n_constraints == 3
    cs.solve({"xs": [2, 3, 4]})
    assert compile(Sized(4)).n_constraints == 4
    with pytest.raises(CircuitError):
        compile(Sized(-1))
    with pytest.raises(CircuitError):
        Secret(count=-2)
    with pytest.raises(TypeError):
        compile(int)


def test_inheritance_of_inputs():
    class Base(Circuit):
        a = Public()

        def define(self, api):
            api.assert_equal(self.a, self.b)

    class Derived(Base):
        b = Secret()

    cs = compile(Derived)
    assert list(cs.inputs) == ["a", "b"]
    cs.solve({"a": 5, "b": 5})
    with pytest.raises(NotImplementedError):
        compile(Circuit)


def test_csr_matrices_sorted_and_exported():
    def define(self, api):
        t = api.mul(self.b + 2 * self.a + 3, self.a - self.b)
        api.assert_equal(t, self.a)

    _, cs = build(define, a=Secret(), b=Secret())
    for m in (cs.A, cs.B, cs.C):
        assert m.row_ptr.dtype == np.int64 and m.cols.dtype == np.int64
        assert m.coeffs.shape == (m.nnz, 4) and m.coeffs.dtype == np.uint64
        for i in range(m.n_rows):
            c = m.cols[m.row_ptr[i] : m.row_ptr[i + 1]]
            assert np.all(np.diff(c) > 0)
    assert cs.A.row(0) == {0: 3, 1: 2, 2: 1}
    assert cs.B.row(0) == {1: 1, 2: R - 1}
    assert cs.C.row(0) == {3: 1}
    assert cs.A.coeffs_int() == [3, 2, 1, R - 1, 1]
    assert cs.A.coeffs_plain()[0].tolist() == [3, 0, 0, 0]


def test_digest_is_canonical():
    def d1(self, api):
        api.assert_equal(api.mul(self.a + self.b, self.b), 7)

    def d2(self, api):  # same system, terms written in another order
        api.assert_equal(api.mul(self.b + self.a, self.b), 7)

    def d3(self, api):  # different coefficient
        api.assert_equal(api.mul(self.a + 2 * self.b, self.b), 7)

    fields = dict(a=Secret(), b=Secret())
    h1 = build(d1, **fields)[1].digest()
    assert h1 == build(d1, **fields)[1].digest()
    assert len(h1) == 32
    assert build(d2, **fields)[1].digest() == h1
    assert build(d3, **fields)[1].digest() != h1
    # the public/secret split is part of the digest
    assert build(d1, a=Public(), b=Secret())[1].digest() != h1
    assert compile(Square).digest_hex() == compile(Square).digest_hex()


def _spec_digest(cs) -> bytes:
    """The documented digest serialisation, recomputed from the rows with plain Python."""
    h = hashlib.sha256(b"zkmb-r1cs-v1\0")
    h.update(struct.pack("<QQQ", cs.n_constraints, cs.n_public, cs.n_wires))
    for m in (cs.A, cs.B, cs.C):
        rs = rows(m)
        ptr = [0]
        for r in rs:
            ptr.append(ptr[-1] + len(r))
        h.update(b"".join(struct.pack("<Q", p) for p in ptr))
        h.update(b"".join(struct.pack("<Q", k) for r in rs for k in sorted(r)))
        h.update(b"".join(r[k].to_bytes(32, "little") for r in rs for k in sorted(r)))
    return h.digest()


def test_digest_matches_spec_and_is_pinned():
    """Regression: the serialisation (and hence key-file compatibility) must not change silently."""
    cs = compile(Square)
    assert cs.digest() == _spec_digest(cs)
    assert cs.digest_hex() == "d03acceafab2240844cb5f28d40b2933423b77d9d3b057a9ae3bce52ae2a074b"
    _, big = build(lambda self, api: api.to_bits(self.a * 3 + 1, 254), a=Secret())
    assert big.digest() == _spec_digest(big)


def test_is_satisfied_checks_wire_zero_and_canonical_values():
    cs = compile(Square)
    w = cs.solve({"x": 3, "y": 9, "zs": [1, 2]})
    zero = Witness(np.zeros_like(w.values), cs.n_public)  # all-zero satisfies every A*B=C row
    assert py_failing_rows(cs, zero.to_ints()) == []
    assert not cs.is_satisfied(zero)
    assert "wire 0" in cs.which_is_unsatisfied(zero)
    bad = w.values.copy()
    bad[3] = np.array([2**64 - 1] * 4, dtype=np.uint64)  # not below r
    assert not cs.is_satisfied(Witness(bad, 3))
    with pytest.raises(InvalidInput):
        cs.is_satisfied(Witness(w.values[:-1].copy(), 3))
    with pytest.raises(TypeError):
        cs.is_satisfied(w.values)
    with pytest.raises(InvalidInput):
        Witness(np.zeros((3, 3), dtype=np.uint64), 0)


def test_solve_validates_the_assignment():
    cs = compile(Square)
    good = {"x": 3, "y": 9, "zs": [1, 2]}
    cs.solve(good)
    cs.solve({**good, "zs": np.array([1, 2])})
    for bad in (
        {"x": 3, "y": 9},  # missing
        {**good, "extra": 1},  # unknown
        {**good, "zs": [1]},  # wrong count
        {**good, "zs": 3},  # scalar for a list
        {**good, "y": R},  # not below r
        {**good, "y": -1},
        {**good, "y": 9.0},
        [1, 2],
    ):
        with pytest.raises(InvalidInput):
            cs.solve(bad)
    with pytest.raises(UnsatisfiedError, match="scope 'square'"):
        cs.solve({"x": 3, "y": 10, "zs": [1, 2]})
    w = cs.solve({"x": 3, "y": 10, "zs": [1, 2]}, check=False)
    assert not cs.is_satisfied(w)


def test_witness_helpers():
    w = Witness.from_ints([1, 5, R - 1], n_public=1)
    assert w.to_ints() == [1, 5, R - 1]
    assert w.value(2) == R - 1
    assert w.replace(1, -1).value(1) == R - 1
    assert w.value(1) == 5  # replace copies
    assert w.scalars()[1].tolist() == [5, 0, 0, 0]
    with pytest.raises(InvalidInput):
        Witness.from_ints([R])
    with pytest.raises(ZkmbError):
        Witness.from_ints([1]).public_inputs()


# --------------------------------------------------------------------------- hints


def _divmod_hint(ins, params):
    (a,) = ins
    return [a // params[0], a % params[0]]


@numba_hint
def _split_hint(ins, outs, params):
    """Low and high parts of a 64-bit input at bit params[0]."""
    v = ins[0, 0]
    s = np.uint64(params[0])
    outs[0, 0] = v & ((np.uint64(1) << s) - np.uint64(1))
    outs[1, 0] = v >> s


@numba_hint
def _bad_hint(ins, outs, params):
    outs[0, 3] = np.uint64(2**64 - 1)


@numba_hint
def _sum_hint(ins, outs, params):
    """Sum of the inputs' low limbs (tests several inputs, no params)."""
    acc = np.uint64(0)
    for i in range(ins.shape[0]):
        acc += ins[i, 0]
    outs[0, 0] = acc


def test_python_hint():
    def define(self, api):
        q, r = api.hint(_divmod_hint, [self.a + 1], 2, params=[10])
        api.assert_equal(api.add(api.mul_const(q, 10), r), self.a + 1)
        api.to_bits(r, 4)
        self.q, self.r = q, r

    inst, cs = build(define, a=Secret())
    assert cs.program.hints[0].name.endswith("_divmod_hint")
    w = cs.solve({"a": 1233})
    assert (w.value(inst.q.wire), w.value(inst.r.wire)) == (123, 4)


def test_numba_hints():
    def define(self, api):
        lo, hi = api.hint(_split_hint, [self.a], 2, params=[32])
        api.assert_equal(lo + hi * (1 << 32), self.a)
        (s,) = api.hint(_sum_hint, [self.a, 5, lo + 0], 1)
        (s2,) = api.hint(_sum_hint, [], 1)
        self.lo, self.hi, self.s, self.s2 = lo, hi, s, s2

    inst, cs = build(define, a=Secret())
    a = (77 << 32) + 99
    w = cs.solve({"a": a}, check=False)
    assert [w.value(v.wire) for v in (inst.lo, inst.hi, inst.s, inst.s2)] == [99, 77, a + 5 + 99, 0]
    assert cs.program.n_instructions == 3


def test_hint_failures():
    def boom(ins, params):
        raise ValueError("nope")

    for fn, n_out, match in (
        (boom, 1, "raised ValueError"),
        (lambda ins, p: [1, 2], 1, "returned 2 values"),
        (_bad_hint, 1, "not below r"),
    ):
        _, cs = build(lambda self, api, fn=fn, n_out=n_out: api.hint(fn, [self.a], n_out), a=Secret())
        with pytest.raises(UnsatisfiedError, match=match):
            cs.solve({"a": 1})
    for bad in (
        lambda self, api: api.hint(3, [self.a], 1),
        lambda self, api: api.hint(_divmod_hint, [self.a], -1),
        lambda self, api: api.hint(_divmod_hint, [self.a], 1, params=[1 << 70]),
    ):
        with pytest.raises((CircuitError, TypeError)):
            build(bad, a=Secret())
    assert repr(PyHint(boom)).startswith("PyHint(")
    assert repr(_split_hint) == "NumbaHint(_split_hint)"


def test_python_hint_outputs_reduced_mod_r():
    def define(self, api):
        (self.o,) = api.hint(lambda ins, p: [-ins[0]], [self.a], 1)

    inst, cs = build(define, a=Secret())
    assert cs.solve({"a": 5}).value(inst.o.wire) == R - 5


# --------------------------------------------------------------------------- misc


def test_compile_restores_gc_and_rejects_open_scope():
    assert gc.isenabled()
    compile(Square)
    assert gc.isenabled()

    def leave_open(self, api):
        self.cm = api.scope("x")  # keep the generator alive so its finally does not run
        self.cm.__enter__()

    with pytest.raises(CircuitError, match="open scope"):
        build(leave_open, a=Secret())
    assert gc.isenabled()


def test_empty_circuit():
    class Empty(Circuit):
        def define(self, api):
            pass

    cs = compile(Empty)
    assert (cs.n_constraints, cs.n_wires, cs.n_public) == (0, 1, 0)
    w = cs.solve({})
    assert cs.is_satisfied(w) and w.to_ints() == [1]
    assert rows(cs.A) == []


def test_chunked_build_matches_single_chunk(monkeypatch):
    """Flushing rows, hint LCs and instructions in small chunks changes nothing in the result."""
    import zkmb.r1cs.api as api_mod

    def define(self, api):
        acc = self.x
        for i in range(6):
            with api.scope(f"s{i}"):
                acc = api.mul(acc, acc) + i
                bits = api.to_bits(acc, 254 if i % 2 else 20)
                acc = api.from_bits(bits[:16]) + api.is_zero(acc - 3) + api.div(acc, self.x)
                h, _ = api.hint(_divmod_hint, [acc], 2, params=[7])
                acc = acc + h
        api.assert_equal(acc, acc)

    _, ref = build(define, x=Secret())
    monkeypatch.setattr(api_mod, "_CHUNK", 5)
    _, chunked = build(define, x=Secret())
    assert chunked.digest() == ref.digest()
    assert np.array_equal(chunked.program.instr, ref.program.instr)
    assert chunked.program.lc.row_ptr.tolist() == ref.program.lc.row_ptr.tolist()
    assert [chunked.scope_of(i) for i in range(ref.n_constraints)] == [
        ref.scope_of(i) for i in range(ref.n_constraints)
    ]
    w1 = ref.solve({"x": 5}, check=False)
    w2 = chunked.solve({"x": 5}, check=False)
    assert w1.to_ints() == w2.to_ints()


def test_hint_table_has_one_entry_per_function():
    def define(self, api):
        for i in range(5):
            api.hint(_divmod_hint, [self.a + i], 2, params=[3])
            api.hint(_split_hint, [self.a], 2, params=[8])

    _, cs = build(define, a=Secret())
    assert len(cs.program.hints) == 2 and cs.program.call_fn.tolist() == [0, 1] * 5


def test_large_system_uses_the_threaded_check():
    n = 40_000  # above the serial/threaded threshold

    def define(self, api):
        y = self.x
        for i in range(n):
            with api.scope(f"step{i // 1000}"):
                y = api.mul(y, y) + i

    _, cs = build(define, x=Secret())
    assert cs.n_constraints == n
    w = cs.solve({"x": 3})
    assert cs.is_satisfied(w)
    # the product of row 25_000 is wire 25_002 (wire 1 is x)
    bad = w.replace(25_002, 0)
    assert cs.first_unsatisfied(bad) == 25_000
    assert cs.which_is_unsatisfied(bad) == "constraint 25000 in scope 'step25'"


def test_solve_keeps_the_product_rows_values():
    """solve(rows=True) keeps A_i . w and B_i . w of exactly the rows the program evaluates for its
    products, equal to the final witness's values (the QAP step of a proof takes them); a circuit
    whose product rows read every wire after it is written qualifies; without rows=True, and for a
    tampered copy, there are none."""
    from zkmb.algebra.fast import fr_to_ints
    from zkmb.r1cs import solver

    def define(self, api):
        q, r = api.hint(_divmod_hint, [self.a + 1], 2, params=[10])
        api.assert_equal(api.add(api.mul_const(q, 10), r), self.a + 1)
        bits = api.to_bits(r, 4)
        inv = api.inverse(api.add(self.a, 3))
        z = api.mul(api.mul(inv, self.b), api.add(bits[0], q))
        api.assert_equal(api.is_zero(api.add(z, -z)), 1)
        self.z = z

    _, cs = build(define, a=Secret(), b=Public())
    w = cs.solve({"a": 1233, "b": 7}, rows=True)
    assert cs.solve({"a": 1233, "b": 7}).rows is None
    kept = w.rows
    instr = cs.program.instr
    products = np.unique(instr[instr[:, 0] == solver.OP_MUL, 1])
    assert products.size and np.array_equal(np.flatnonzero(kept.known), products)
    for m, got in ((cs.A, kept.a), (cs.B, kept.b)):
        want = solver.eval_rows(m.row_ptr, m.cols, m.coeffs, products, w.values)
        assert fr_to_ints(got[products]) == fr_to_ints(want)
    assert w.replace(1, 5).rows is None
    from zkmb.groth16.r1cs_to_qap import qap_matrices
    from zkmb.r1cs.system import WitnessSolver

    a_rows, b_rows, _ = qap_matrices(cs)
    again = WitnessSolver(cs, a_rows, b_rows).solve({"a": 1233, "b": 7}, rows=True).rows
    assert np.array_equal(again.known, kept.known) and np.array_equal(again.a[products], kept.a[products])


def test_products_read_final_wires_detects_early_reads_and_rewrites():
    """The static check behind solve(rows=True): a product row that reads a wire written only later,
    or a wire written twice, disqualifies the program (its rows' values would not be the final ones)."""
    from zkmb.r1cs import solver

    def define(self, api):
        x2 = api.mul(self.x, self.x)
        x3 = api.mul(x2, self.x)
        api.assert_equal(api.mul(x3, x3), self.y)

    _, cs = build(define, x=Secret(), y=Public())
    prog = cs.program
    fixed = 1 + cs.n_public + cs.n_secret_inputs

    def ok(instr):
        return solver.products_read_final_wires(
            instr, cs.A.row_ptr, cs.A.cols, cs.B.row_ptr, cs.B.cols, prog.call_out, prog.call_nout,
            cs.n_wires, fixed,
        )  # fmt: skip

    muls = np.flatnonzero(prog.instr[:, 0] == solver.OP_MUL)
    assert ok(prog.instr) and muls.size >= 2
    swapped = prog.instr.copy()
    swapped[[muls[0], muls[1]]] = swapped[[muls[1], muls[0]]]  # x3 before the x2 it reads
    assert not ok(swapped)
    twice = prog.instr.copy()
    twice[muls[1], 2] = twice[muls[0], 2]  # the second product overwrites the first's wire
    assert not ok(twice)
    assert cs.solve({"x": 3, "y": 729}, rows=True).rows is not None

"""Builder gadgets: satisfied witnesses pass, tampered ones fail in the right scope, counts are pinned.

Each gadget sits in a scope after one unrelated constraint, so a failure reported in the gadget's
scope really comes from the gadget's own constraints.  Every failing-row claim is cross-checked
against the pure-Python evaluation in :mod:`tests.r1cs.util`.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkmb.algebra.params import R
from zkmb.r1cs import CircuitError, Public, Secret, UnsatisfiedError, Witness

from .util import build, lc_value, py_failing_rows, resolve_products


def assert_fails_in(cs, w, scope: str) -> None:
    """w violates the system, and the first violated constraint lies in ``scope`` (numba and Python agree)."""
    ints = w.to_ints()
    failing = py_failing_rows(cs, ints)
    assert failing, "the tampered witness still satisfies the system"
    assert not cs.is_satisfied(w)
    assert cs.first_unsatisfied(w) == failing[0]
    assert cs.which_is_unsatisfied(w) == f"constraint {failing[0]} in scope '{scope}'"


def tamper(w, wire: int, delta: int = 1):
    return w.replace(wire, w.value(wire) + delta)


def gadget_rows(cs, scope: str) -> list[int]:
    return [i for i in range(cs.n_constraints) if cs.scope_of(i) == scope]


# --------------------------------------------------------------------------- mul


def test_mul():
    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("gadget"):
            self.out = api.mul(self.a, self.b)
        api.assert_equal(self.out, self.c)

    inst, cs = build(define, c=Public(), f=Secret(), a=Secret(), b=Secret())
    assert cs.n_constraints == 3
    assert gadget_rows(cs, "gadget") == [1]
    w = cs.solve({"c": 15, "f": 1, "a": 3, "b": 5})
    assert cs.is_satisfied(w) and cs.which_is_unsatisfied(w) is None
    assert py_failing_rows(cs, w.to_ints()) == []
    assert w.value(inst.out.wire) == 15
    assert_fails_in(cs, tamper(w, inst.out.wire), "gadget")
    assert_fails_in(cs, tamper(w, inst.a.wire), "gadget")
    with pytest.raises(UnsatisfiedError, match="constraint 2 in scope '<root>'"):
        cs.solve({"c": 16, "f": 1, "a": 3, "b": 5})


def test_mul_constant_side_is_not_a_constraint():
    def define(self, api):
        self.p = api.mul(self.a, 5)
        self.q = api.mul(7, self.a, 2)
        self.r = api.mul(api.constant(3), 4)
        self.s = api.mul(self.a + 1, self.a - 1)  # the only real product

    inst, cs = build(define, a=Secret())
    assert cs.n_constraints == 1
    assert inst.p.terms() == {1: 5}
    assert inst.q.terms() == {1: 14}
    assert inst.r.const_value() == 12
    w = cs.solve({"a": 9})
    assert w.value(inst.s.wire) == 80


def test_mul_variadic():
    def define(self, api):
        api.assert_equal(api.mul(self.a, self.b, self.a, 2), self.c)

    _, cs = build(define, c=Public(), a=Secret(), b=Secret())
    assert cs.n_constraints == 3
    cs.solve({"c": 2 * 3 * 5 * 3, "a": 3, "b": 5})


# --------------------------------------------------------------------------- select


def test_select():
    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("gadget"):
            self.out = api.select(self.b, self.x, self.y)
        api.assert_equal(self.out, self.c)

    inst, cs = build(define, c=Public(), f=Secret(), b=Secret(), x=Secret(), y=Secret())
    assert cs.n_constraints == 1 + 2 + 1  # b's booleanity + the product
    assert gadget_rows(cs, "gadget") == [1, 2]
    for b, expect in ((1, 11), (0, 22)):
        w = cs.solve({"c": expect, "f": 0, "b": b, "x": 11, "y": 22})
        assert cs.is_satisfied(w)
    # the product wire b * (x - y) is the only internal wire
    (t,) = [k for k in inst.out.terms() if k > 5]
    assert_fails_in(cs, tamper(w, t), "gadget")
    # a non-boolean condition that selects a third value (b = 2: y + 2(x - y)) is rejected
    bad = resolve_products(cs, w.replace(inst.b.wire, 2).to_ints())
    failing = py_failing_rows(cs, bad)
    assert failing and cs.scope_of(failing[0]) == "gadget"


def test_select_counts_and_folding():
    def define(self, api):
        bits = api.to_bits(self.x, 2)  # 3 constraints, bits known boolean
        self.s1 = api.select(bits[0], self.x, 5)  # 1
        self.s2 = api.select(1, self.x, 5)  # 0
        self.s3 = api.select(0, self.x, 5)  # 0
        self.s4 = api.select(bits[1], self.x, self.x)  # 0
        self.s5 = api.select(1 - bits[1], 3, 4)  # 0: a constant difference is a scaling

    inst, cs = build(define, x=Secret())
    assert cs.n_constraints == 4
    assert inst.s2.terms() == {1: 1}
    assert inst.s3.const_value() == 5
    assert inst.s4.terms() == {1: 1}
    w = cs.solve({"x": 2})
    assert lc_value(w, inst.s1) == 5 and lc_value(w, inst.s5) == 4
    w = cs.solve({"x": 1})
    assert lc_value(w, inst.s1) == 1 and lc_value(w, inst.s5) == 3
    with pytest.raises(CircuitError):
        build(lambda self, api: api.select(2, self.x, 1), x=Secret())


# --------------------------------------------------------------------------- to_bits / from_bits


def test_to_bits_non_strict():
    n = 8

    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("bits"):
            self.bits = api.to_bits(self.x, n)
        api.assert_equal(api.from_bits(self.bits), self.x)

    inst, cs = build(define, x=Public(), f=Secret())
    assert cs.n_constraints == 1 + (n + 1) + 1
    x = 0b10110101
    w = cs.solve({"x": x, "f": 1})
    assert [w.value(b.wire) for b in inst.bits] == [(x >> i) & 1 for i in range(n)]
    for i in (0, 3, 7):
        assert_fails_in(cs, tamper(w, inst.bits[i].wire), "bits")
    # keeping the sum but leaving {0, 1}: bit0 = 3, bit1 = 0 instead of bit0 = 1, bit1 = 1 (x = 3)
    w3 = cs.solve({"x": 3, "f": 0})
    bad = w3.replace(inst.bits[0].wire, 3).replace(inst.bits[1].wire, 0)
    assert_fails_in(cs, bad, "bits")
    with pytest.raises(UnsatisfiedError, match="scope 'bits'"):
        cs.solve({"x": 256, "f": 0})


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 253), st.data())
def test_to_bits_range(n, data):
    """x < 2^n decomposes; 2^n <= x < r does not."""

    def define(self, api):
        self.bits = api.to_bits(self.x, n)

    inst, cs = _cached_bits_circuit(n, define)
    x = data.draw(st.integers(0, (1 << n) - 1))
    w = cs.solve({"x": x})
    assert sum(w.value(b.wire) << i for i, b in enumerate(inst.bits)) == x
    big = data.draw(st.integers(1 << n, R - 1))
    with pytest.raises(UnsatisfiedError):
        cs.solve({"x": big})


_bits_cache: dict = {}


def _cached_bits_circuit(n, define):
    if n not in _bits_cache:
        _bits_cache[n] = build(define, x=Secret())
    return _bits_cache[n]


def _strict_circuit():
    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("strict"):
            self.bits = api.to_bits(self.x, 254)

    return build(define, x=Public(), f=Secret())


def test_to_bits_strict_counts_and_edges():
    inst, cs = _strict_circuit()
    popcount = bin(R - 1).count("1")
    assert popcount == 100
    assert cs.n_constraints == 1 + 254 + 1 + (popcount - 1) == 355
    rng = random.Random(5)
    for x in [0, 1, 2, R - 1, R - 2, (1 << 253) - 1, 1 << 253, R >> 1] + [
        rng.randrange(R) for _ in range(20)
    ]:
        w = cs.solve({"x": x, "f": 0})
        assert sum(w.value(b.wire) << i for i, b in enumerate(inst.bits)) == x


@pytest.mark.parametrize("x", [0, 5, (1 << 254) - R - 1], ids=["0", "5", "max"])
def test_to_bits_strict_rejects_alias(x):
    """The bits of x + r (< 2^254) satisfy booleanity and recomposition but not the comparison with r - 1."""
    inst, cs = _strict_circuit()
    w = cs.solve({"x": x, "f": 1})
    alias = x + R
    assert alias < 1 << 254
    ints = w.to_ints()
    for i, b in enumerate(inst.bits):
        ints[b.wire] = (alias >> i) & 1
    ints = resolve_products(cs, ints)  # make the prefix products consistent with the forged bits
    # a naive decomposition would accept it: every bit is boolean and they recompose to x mod r
    assert all(ints[b.wire] in (0, 1) for b in inst.bits)
    assert sum(ints[b.wire] << i for i, b in enumerate(inst.bits)) % R == x
    recomposition = max(gadget_rows(cs, "strict"))
    failing = py_failing_rows(cs, ints)
    assert failing and recomposition not in failing
    assert all(cs.scope_of(i) == "strict" for i in failing)
    forged = Witness.from_ints(ints, cs.n_public)
    assert_fails_in(cs, forged, "strict")


def test_to_bits_validation_and_constants():
    with pytest.raises(CircuitError):
        build(lambda self, api: api.to_bits(self.x, 255), x=Secret())
    with pytest.raises(CircuitError):
        build(lambda self, api: api.to_bits(self.x, 0), x=Secret())
    with pytest.raises(CircuitError):
        build(lambda self, api: api.to_bits(300, 8), x=Secret())

    def define(self, api):
        self.bits = api.to_bits(6, 4)

    inst, cs = build(define, x=Secret())
    assert cs.n_constraints == 0
    assert [b.const_value() for b in inst.bits] == [0, 1, 1, 0]


def test_from_bits_booleanity():
    def define(self, api):
        self.v = api.from_bits(self.bs)  # 4 booleanity constraints
        self.v2 = api.from_bits(self.bs)  # already known boolean: none
        self.v3 = api.from_bits([1, 0, self.bs[0]])

    inst, cs = build(define, bs=Secret(count=4))
    assert cs.n_constraints == 4
    assert inst.v.terms() == {1: 1, 2: 2, 3: 4, 4: 8}
    assert inst.v3.terms() == {0: 1, 1: 4}
    cs.solve({"bs": [1, 0, 1, 1]})
    with pytest.raises(UnsatisfiedError):
        cs.solve({"bs": [1, 2, 1, 1]})

    def define_dup(self, api):
        self.v = api.from_bits([self.b, self.b])

    inst, cs = build(define_dup, b=Secret())
    assert inst.v.terms() == {1: 3}


# --------------------------------------------------------------------------- is_zero / is_equal


def test_is_zero():
    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("iz"):
            self.out = api.is_zero(self.x)
        api.assert_equal(self.out, self.expect)

    inst, cs = build(define, expect=Public(), x=Secret(), f=Secret())
    assert cs.n_constraints == 1 + 2 + 1
    assert gadget_rows(cs, "iz") == [1, 2]
    w0 = cs.solve({"expect": 1, "x": 0, "f": 0})
    w5 = cs.solve({"expect": 0, "x": 5, "f": 0})
    wr = cs.solve({"expect": 0, "x": R - 1, "f": 0})
    assert all(cs.is_satisfied(w) for w in (w0, w5, wr))
    (t,) = [k for k in inst.out.terms() if k != 0]
    m = t - 1  # the inverse hint wire precedes the product wire
    # claiming x = 5 is zero (t = 0, m = 0) or x = 0 is non-zero (t = 1) fails inside the gadget
    assert_fails_in(cs, w5.replace(t, 0).replace(m, 0), "iz")
    assert_fails_in(cs, w0.replace(t, 1), "iz")
    assert_fails_in(cs, tamper(w5, m), "iz")
    with pytest.raises(UnsatisfiedError, match="constraint 3"):
        cs.solve({"expect": 1, "x": 5, "f": 0})


def test_is_equal_and_constants():
    def define(self, api):
        self.e = api.is_equal(self.a, self.b)
        self.c1 = api.is_zero(0)
        self.c0 = api.is_zero(3)
        api.assert_boolean(self.e)  # known boolean (1 - t): no constraint

    inst, cs = build(define, a=Secret(), b=Secret())
    assert cs.n_constraints == 2
    assert inst.c1.const_value() == 1 and inst.c0.const_value() == 0
    for a, b in ((4, 4), (4, 5), (0, R - 1)):
        w = cs.solve({"a": a, "b": b})
        assert lc_value(w, inst.e) == (1 if a == b else 0)


# --------------------------------------------------------------------------- div / inverse


def test_div():
    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("div"):
            self.q = api.div(self.a, self.b)
        api.assert_equal(self.q, self.c)

    inst, cs = build(define, c=Public(), a=Secret(), b=Secret(), f=Secret())
    assert cs.n_constraints == 1 + 2 + 1
    w = cs.solve({"c": 7, "a": 21, "b": 3, "f": 1})
    q = inst.q.wire
    inv = q - 1
    assert w.value(inv) == pow(3, -1, R)
    assert_fails_in(cs, tamper(w, inv), "div")
    assert_fails_in(cs, tamper(w, q), "div")
    # b = 0 has no inverse: unsatisfiable whatever the numerator
    with pytest.raises(UnsatisfiedError, match="scope 'div'"):
        cs.solve({"c": 0, "a": 0, "b": 0, "f": 1})
    c = (5 * pow(R - 2, -1, R)) % R
    cs.solve({"c": c, "a": 5, "b": R - 2, "f": 0})


def test_div_counts_and_constants():
    def define(self, api):
        self.d1 = api.div(self.a, 4)  # 0
        self.d2 = api.div(1, self.a)  # 1: the inverse only
        self.d3 = api.inverse(self.a)  # 1
        self.d4 = api.div_unchecked(self.a, self.b)  # 1
        self.d5 = api.inverse(4)  # 0

    inst, cs = build(define, a=Secret(), b=Secret())
    assert cs.n_constraints == 3
    assert inst.d1.terms() == {1: pow(4, -1, R)}
    assert inst.d5.const_value() == pow(4, -1, R)
    w = cs.solve({"a": 6, "b": 3})
    assert w.value(inst.d2.wire) == pow(6, -1, R) == w.value(inst.d3.wire)
    assert w.value(inst.d4.wire) == 2
    for bad in (
        lambda s, api: api.div(s.a, 0),
        lambda s, api: api.inverse(0),
        lambda s, api: api.div_unchecked(1, 0),
    ):
        with pytest.raises(CircuitError):
            build(bad, a=Secret())


def test_div_unchecked():
    def define(self, api):
        with api.scope("du"):
            self.q = api.div_unchecked(self.a, self.b)

    inst, cs = build(define, a=Secret(), b=Secret())
    assert cs.n_constraints == 1
    w = cs.solve({"a": 21, "b": 7})
    assert w.value(inst.q.wire) == 3
    assert_fails_in(cs, tamper(w, inst.q.wire), "du")
    with pytest.raises(UnsatisfiedError):
        cs.solve({"a": 1, "b": 0})
    # documented caveat: 0 / 0 leaves the quotient unconstrained
    w00 = cs.solve({"a": 0, "b": 0})
    assert cs.is_satisfied(tamper(w00, inst.q.wire, 12345))


# --------------------------------------------------------------------------- assertions


def test_assert_boolean():
    def define(self, api):
        api.assert_equal(self.f, self.f + 0)  # no constraint: difference is the constant 0
        api.assert_equal(api.mul(self.f, self.f), api.mul(self.f, self.f))
        with api.scope("bool"):
            api.assert_boolean(self.x)
            api.assert_boolean(self.x)  # known boolean now: no second constraint
            api.assert_boolean(1 - self.x)  # 1 - boolean is boolean
            api.assert_boolean(1)

    inst, cs = build(define, f=Secret(), x=Secret())
    assert cs.n_constraints == 3 + 1
    assert gadget_rows(cs, "bool") == [3]
    for x in (0, 1):
        assert cs.is_satisfied(cs.solve({"f": 3, "x": x}))
    with pytest.raises(UnsatisfiedError, match="constraint 3 in scope 'bool'"):
        cs.solve({"f": 3, "x": 2})
    w = cs.solve({"f": 3, "x": 1})
    assert_fails_in(cs, w.replace(inst.x.wire, R - 1), "bool")
    with pytest.raises(CircuitError):
        build(lambda self, api: api.assert_boolean(2), x=Secret())
    with pytest.raises(CircuitError):
        build(lambda self, api: api.assert_equal(3, 4), x=Secret())


def test_assert_mul():
    """a * b = c in one row and no new wire; a constant side makes it the linear assert_equal."""

    def define(self, api):
        api.assert_boolean(self.f)
        with api.scope("gadget"):
            api.assert_mul(self.a, self.b + 1, self.c - self.a)
            api.assert_mul(3, self.a, self.d)  # linear: 3 a = d
            api.assert_mul(2, 5, 10)  # constant: nothing

    _, cs = build(define, c=Public(), f=Secret(), a=Secret(), b=Secret(), d=Secret())
    assert cs.n_constraints == 1 + 2 and gadget_rows(cs, "gadget") == [1, 2]
    assert cs.n_wires == 1 + 5  # no internal wire
    w = cs.solve({"c": 3 * 5 + 3, "f": 0, "a": 3, "b": 4, "d": 9})
    assert cs.is_satisfied(w)
    for name in ("a", "b", "c", "d"):
        assert_fails_in(cs, tamper(w, cs.inputs[name].first_wire), "gadget")
    with pytest.raises(UnsatisfiedError, match="scope 'gadget'"):
        cs.solve({"c": 3 * 5 + 4, "f": 0, "a": 3, "b": 4, "d": 9})
    with pytest.raises(CircuitError):
        build(lambda self, api: api.assert_mul(2, 5, 11), x=Secret())


def test_assert_boolean_of_lc():
    def define(self, api):
        api.assert_boolean(self.a + self.b)

    _, cs = build(define, a=Secret(), b=Secret())
    assert cs.n_constraints == 1
    cs.solve({"a": 3, "b": R - 2})
    with pytest.raises(UnsatisfiedError):
        cs.solve({"a": 3, "b": 3})


# --------------------------------------------------------------------------- scopes


def test_nested_scopes_and_api_counters():
    seen = {}

    def define(self, api):
        api.assert_boolean(self.a)
        with api.scope("outer"):
            api.assert_boolean(self.b)
            with api.scope("inner"):
                seen["path"] = api.scope_path
                seen["before"] = api.n_constraints
                api.assert_boolean(self.c)
            api.assert_boolean(self.d)
        api.assert_boolean(self.e)
        with api.scope("empty"):
            pass
        with api.scope("sha256/round3"):
            api.assert_boolean(self.a + self.b)

    _, cs = build(define, a=Secret(), b=Secret(), c=Secret(), d=Secret(), e=Secret())
    assert seen == {"path": "outer/inner", "before": 2}
    assert [cs.scope_of(i) for i in range(cs.n_constraints)] == [
        "",
        "outer",
        "outer/inner",
        "outer",
        "",
        "sha256/round3",
    ]
    w = cs.solve({"a": 1, "b": 0, "c": 1, "d": 0, "e": 1})
    assert cs.which_is_unsatisfied(tamper(w, 3)) == "constraint 2 in scope 'outer/inner'"
    assert cs.which_is_unsatisfied(tamper(w, 1)) == "constraint 0 in scope '<root>'"
    with pytest.raises(CircuitError):
        build(lambda self, api: api.scope("").__enter__(), a=Secret())


def test_scope_exception_unwinds():
    def define(self, api):
        try:
            with api.scope("boom"):
                raise KeyError("x")
        except KeyError:
            pass
        api.assert_boolean(self.a)

    _, cs = build(define, a=Secret())
    assert cs.scope_of(0) == ""


# --------------------------------------------------------------------------- random programs


_OPS = ["add", "sub", "mul", "mulc", "select", "is_zero", "is_equal", "bits", "div"]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_OPS), st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=30
    ),
    st.lists(st.integers(0, R - 1), min_size=3, max_size=3),
)
def test_random_programs_match_python(ops, inputs):
    """A random gadget program computes what Python computes, and its witness satisfies the system."""
    ref = list(inputs)
    for op, i, j in ops:  # Python semantics, same index rules as the circuit below
        a, b = ref[i % len(ref)], ref[j % len(ref)]
        ref.append(_py(op, a, b, j))

    def define(self, api):
        vals = list(self.xs)
        for op, i, j in ops:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            vals.append(_circ(api, op, a, b, j))
        for v, p in zip(vals[3:], self.out, strict=True):
            api.assert_equal(v, p)

    _, cs = build(define, out=Public(count=len(ops)), xs=Secret(count=3))
    w = cs.solve({"out": ref[3:], "xs": inputs})
    assert py_failing_rows(cs, w.to_ints()) == []
    assert w.public_inputs() == ref[3:]
    if any(v != 0 for v in ref[3:]):
        wrong = [(v + 1) % R for v in ref[3:]]
        with pytest.raises(UnsatisfiedError):
            cs.solve({"out": wrong, "xs": inputs})


def _py(op, a, b, j):
    if op == "add":
        return (a + b) % R
    if op == "sub":
        return (a - b) % R
    if op == "mul":
        return a * b % R
    if op == "mulc":
        return a * (j + 2) % R
    if op == "select":
        return a if j % 2 else b
    if op == "is_zero":
        return int(a == 0)
    if op == "is_equal":
        return int(a == b)
    if op == "bits":
        return a & 0xFF
    return a * pow(b, -1, R) % R if b else 0  # div by a nonzero-ified divisor below


def _circ(api, op, a, b, j):
    if op == "add":
        return api.add(a, b)
    if op == "sub":
        return api.sub(a, b)
    if op == "mul":
        return api.mul(a, b)
    if op == "mulc":
        return api.mul_const(a, j + 2)
    if op == "select":
        return api.select(j % 2, a, b)
    if op == "is_zero":
        return api.is_zero(a)
    if op == "is_equal":
        return api.is_equal(a, b)
    if op == "bits":
        # low byte of a: decompose fully (strict), recompose the low 8 bits
        return api.from_bits(api.to_bits(a, 254)[:8])
    # div: select a nonzero divisor (1 when b = 0) so the circuit stays satisfiable
    z = api.is_zero(b)
    q = api.div(a, api.add(b, z))
    return api.select(z, 0, q)

"""Fq and Fr vectors: both backends agree with Python-int arithmetic on random and edge inputs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkmb.algebra.params import P, R
from zkmb.errors import InvalidInput

MODULI = {"fq": P, "fr": R}


def _edge(m: int) -> list[int]:
    return [0, 1, 2, m - 1, m - 2, (m - 1) // 2, (m + 1) // 2, 1 << 64, (1 << 128) - 1, (1 << 253) % m]


@pytest.fixture(params=["fq", "fr"])
def field(request):
    return request.param, MODULI[request.param]


def _ops(backend, name):
    return {
        op: getattr(backend, f"{name}_{op}")
        for op in ("from_ints", "to_ints", "add", "sub", "mul", "neg", "inv")
    }


def test_binary_ops_random_and_edges(backend, field):
    name, m = field
    f = _ops(backend, name)
    rng = random.Random(1)
    edge = _edge(m)
    xs = [rng.randrange(m) for _ in range(200)] + [a for a in edge for _ in edge]
    ys = [rng.randrange(m) for _ in range(200)] + [b for _ in edge for b in edge]
    a, b = f["from_ints"](xs), f["from_ints"](ys)
    assert f["to_ints"](a) == xs
    assert f["to_ints"](f["add"](a, b)) == [(x + y) % m for x, y in zip(xs, ys, strict=True)]
    assert f["to_ints"](f["sub"](a, b)) == [(x - y) % m for x, y in zip(xs, ys, strict=True)]
    assert f["to_ints"](f["mul"](a, b)) == [x * y % m for x, y in zip(xs, ys, strict=True)]
    assert f["to_ints"](f["neg"](a)) == [-x % m for x in xs]


def test_batch_inverse_with_zeros(backend, field):
    name, m = field
    f = _ops(backend, name)
    rng = random.Random(2)
    xs = [0] + [rng.randrange(m) for _ in range(50)] + [0, 1, m - 1, 0]
    inv = f["to_ints"](f["inv"](f["from_ints"](xs)))
    assert inv == [pow(x, -1, m) if x else 0 for x in xs]


def test_empty_vectors(backend, field):
    name, _ = field
    f = _ops(backend, name)
    e = f["from_ints"]([])
    assert f["to_ints"](f["mul"](e, e)) == []
    assert f["to_ints"](f["inv"](e)) == []


@pytest.mark.parametrize("bad", [-1, "m", "m+1", 1 << 256])
def test_out_of_range_rejected(backend, field, bad):
    name, m = field
    value = {"m": m, "m+1": m + 1}.get(bad, bad)
    with pytest.raises(InvalidInput):
        getattr(backend, f"{name}_from_ints")([1, value])


def test_length_mismatch_rejected(backend, field):
    name, _ = field
    f = _ops(backend, name)
    with pytest.raises(InvalidInput):
        f["mul"](f["from_ints"]([1, 2]), f["from_ints"]([3]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, R - 1), min_size=3, max_size=3),
    st.sampled_from(["fq", "fr"]),
)
def test_field_axioms(xyz, name):
    """Associativity, commutativity, distributivity and inverses, on the fast backend vs ints."""
    from zkmb.algebra import fast

    m = MODULI[name]
    f = _ops(fast, name)
    x, y, z = (f["from_ints"]([v % m]) for v in xyz)
    mul, add, to = f["mul"], f["add"], f["to_ints"]
    assert to(mul(mul(x, y), z)) == to(mul(x, mul(y, z)))
    assert to(mul(x, y)) == to(mul(y, x))
    assert to(mul(x, add(y, z))) == to(add(mul(x, y), mul(x, z)))
    assert to(add(x, f["neg"](x))) == [0]
    if xyz[0] % m:
        assert to(mul(x, f["inv"](x))) == [1]

"""Linear combinations: simplification (merged terms, no zeros, folded constants) and misuse guards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkmb.algebra.params import R
from zkmb.r1cs import LC

x, y, z = LC({1: 1}), LC({2: 1}), LC({3: 1})


def test_merge_and_drop_zero_terms():
    assert (x + x).terms() == {1: 2}
    assert (x - x).terms() == {}
    assert (x + y - x).terms() == {2: 1}
    assert (x * (R - 1) + x).terms() == {}
    assert (3 * x - 2 * x).terms() == {1: 1}
    assert (x * R).terms() == {}
    assert (-x).terms() == {1: R - 1}
    assert (x + 0).terms() == {1: 1}


def test_constants_fold():
    c = LC.constant(5) + 3
    assert c.const_value() == 8
    assert LC.constant(-1).const_value() == R - 1
    assert LC.constant(R).terms() == {}
    assert LC.constant(0).const_value() == 0
    assert ((x + 7) - x).const_value() == 7
    assert (x + 7).const_value() is None
    assert (7 - x + x).const_value() == 7
    assert ((x + 1) - 1).terms() == {1: 1}
    assert (x + np.int64(4)).terms() == {1: 1, 0: 4}


def test_wire_property():
    assert x.wire == 1
    assert (2 * x).wire is None
    assert (x + 1).wire is None
    assert LC.constant(1).wire is None


def test_products_of_lcs():
    assert (x * LC.constant(3)).terms() == {1: 3}
    assert (LC.constant(3) * x).terms() == {1: 3}
    with pytest.raises(TypeError, match="api.mul"):
        _ = x * y
    with pytest.raises(TypeError):
        _ = x * 1.5


def test_misuse_guards():
    with pytest.raises(TypeError):
        bool(x)
    with pytest.raises(TypeError):
        _ = x == y
    with pytest.raises(TypeError):
        hash(x)
    with pytest.raises(TypeError):
        _ = x + "a"


def test_repr():
    assert repr(LC({})) == "LC(0)"
    assert repr(x - 1) == "LC(-1 + w1)"
    assert repr(3 * y + x) == "LC(w1 + 3*w2)"


_coef = st.one_of(st.integers(-5, 5), st.integers(0, R - 1), st.just(R - 1))
_ops = st.lists(
    st.tuples(st.sampled_from(["add", "sub", "scale", "const"]), st.integers(0, 3), _coef), max_size=25
)


@settings(max_examples=200, deadline=None)
@given(_ops, st.lists(st.integers(0, R - 1), min_size=4, max_size=4))
def test_lc_arithmetic_matches_evaluation(ops, vals):
    """Any sequence of linear operations evaluates like integer arithmetic mod r and stays simplified."""
    wires = [LC.constant(1), x, y, z]
    w = [1] + vals[1:]
    acc, ref = LC.constant(0), 0
    for op, i, c in ops:
        if op == "add":
            acc, ref = acc + wires[i], ref + w[i]
        elif op == "sub":
            acc, ref = acc - wires[i], ref - w[i]
        elif op == "scale":
            acc, ref = acc * c, ref * c
        else:
            acc, ref = c + acc, ref + c
    t = acc.terms()
    assert all(0 < v < R for v in t.values())
    assert sum(v * w[k] for k, v in t.items()) % R == ref % R

"""Comparisons, prefix tests, multiplexers and a barrel shifter (with their native twins).

Integers are compared as n-bit values, n in [1, 252].  Every comparison takes ``assume_range``:

* ``assume_range=False`` (default): the inputs are range-checked to n bits here (n + 1 constraints
  each), so an out-of-range input makes the system unsatisfiable.
* ``assume_range=True``: the caller guarantees the inputs fit in n bits (e.g. they are packed from
  range-checked bytes).  Guarantee when they do not: for any inputs below ``2^253`` the gadget still
  never returns a wrong answer (the system is unsatisfiable instead); only values in
  ``[2^253, r)`` (e.g. ``r - 1``, i.e. "-1") can make it claim a wrong order.  The tests show both.

Byte strings compared lexicographically are given packed (:func:`zkmb.gadgets.bits.pack_bytes`:
31 bytes per element, big-endian): for two strings of the same length the lexicographic order is the
order of the element tuples, compared element by element from the first.

Constraint counts (variable inputs, ``assume_range=True``; add n + 1 per range-checked input):

================================  ===========================================================
``less_than(n)``                  n + 2
``less_or_equal(n)``              n + 2
``assert_less_than(n)``           n + 1
``less_than_packed(m, n)``        m (n + 2) + 3 (m - 1)  (a bit: lexicographic a < b)
``assert_less_packed(m, n)``      n + 4m   (one-hot first difference from a hint)
``assert_strictly_between``       2 (n + 4m)
``one_hot(n)``                    n + 2    (unsatisfiable unless index in [0, n))
``mux``                           1 per non-constant value component
``prefix_mask(size)``             size + 3
``is_prefix(size)``               4 size + 5
``assert_prefix(size)``           3 size + 3
``shift_left/right(N, max)``      N K + K + 1 (+ K + 1 if max + 1 is not a power of 2), K = bits of max
``assert_nonzero`` / ``_not_equal``  1
================================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ..errors import InvalidInput
from ..r1cs import LC
from ..r1cs.hints import NumbaHint
from ..r1cs.lc import as_terms, const_value

__all__ = [
    "MAX_BITS",
    "assert_in_range",
    "assert_less_packed",
    "assert_less_than",
    "assert_nonzero",
    "assert_not_equal",
    "assert_prefix",
    "assert_strictly_between",
    "is_prefix",
    "is_prefix_native",
    "less_or_equal",
    "less_than",
    "less_than_packed",
    "mux",
    "one_hot",
    "prefix_mask",
    "select_index",
    "shift_left",
    "shift_left_native",
    "shift_right",
    "shift_right_native",
]

MAX_BITS = 252


def _sum(xs) -> LC:
    """The sum of LCs/ints (no constraints)."""
    return sum(xs, LC.constant(0))


def _check_n(n: int) -> None:
    if not isinstance(n, int) or not 1 <= n <= MAX_BITS:
        raise InvalidInput(f"comparison width n must be an int in [1, {MAX_BITS}], got {n!r}")


# ---------------------------------------------------------------------------------------- integers


def assert_in_range(api, a, n: int) -> None:
    """Constrain 0 <= a < 2^n (n + 1 constraints; none for a constant, which is checked at compile time)."""
    _check_n(n)
    api.to_bits(a, n)


def less_than(api, a, b, n: int, *, assume_range: bool = False) -> LC:
    """1 if a < b else 0, for n-bit a, b (see the module docstring for ``assume_range``).

    ``d = 2^n + a - b`` lies in [1, 2^(n+1)) for n-bit inputs and bit n of d is 1 iff a >= b.
    """
    _check_n(n)
    if not assume_range:
        api.to_bits(a, n)
        api.to_bits(b, n)
    bits = api.to_bits(api.sub(api.add(a, 1 << n), b), n + 1)
    return 1 - bits[n]


def less_or_equal(api, a, b, n: int, *, assume_range: bool = False) -> LC:
    """1 if a <= b else 0, for n-bit a, b."""
    return 1 - less_than(api, b, a, n, assume_range=assume_range)


def assert_less_than(api, a, b, n: int, *, assume_range: bool = False) -> None:
    """Constrain a < b for n-bit a, b: ``b - a - 1`` in [0, 2^n) (n + 1 constraints)."""
    _check_n(n)
    if not assume_range:
        api.to_bits(a, n)
        api.to_bits(b, n)
    api.to_bits(api.sub(b, a) - 1, n)


def assert_nonzero(api, x) -> None:
    """Constrain x != 0 (1 constraint: x has an inverse)."""
    api.inverse(x)


def assert_not_equal(api, a, b) -> None:
    """Constrain a != b (1 constraint)."""
    api.inverse(api.sub(a, b))


# ---------------------------------------------------------------------------------------- packed strings


def _pair_lists(a: Sequence, b: Sequence) -> int:
    if len(a) != len(b) or not a:
        raise InvalidInput("packed comparisons need two non-empty sequences of the same length")
    return len(a)


def less_than_packed(api, a: Sequence, b: Sequence, n: int = 248, *, assume_range: bool = False) -> LC:
    """1 if the tuple a is lexicographically below b (each element an n-bit value), else 0.

    For strings packed by ``pack_bytes`` (same length; n = 248 fits any 31-byte element) this is the
    lexicographic byte order.  ``lt = lt_0 + eq_0 (lt_1 + eq_1 (...))``, exact since lt_i and eq_i
    exclude each other.
    """
    m = _pair_lists(a, b)
    res = less_than(api, a[m - 1], b[m - 1], n, assume_range=assume_range)
    for i in range(m - 2, -1, -1):
        lt = less_than(api, a[i], b[i], n, assume_range=assume_range)
        eq = api.is_equal(a[i], b[i])
        res = lt + api.mul(eq, res)
    return res


@njit(cache=True, nogil=True)
def _first_difference_kernel(ins, outs, params):  # pragma: no cover - runs inside the solver
    m = ins.shape[0] // 2
    for i in range(m):
        if (
            ins[i, 0] != ins[m + i, 0]
            or ins[i, 1] != ins[m + i, 1]
            or ins[i, 2] != ins[m + i, 2]
            or ins[i, 3] != ins[m + i, 3]
        ):
            outs[i, 0] = 1
            return


_FIRST_DIFF = NumbaHint(_first_difference_kernel, name="first_difference")
"""Hint: one-hot vector of the first index where the two halves of the inputs differ (all 0 if none)."""


def assert_less_packed(api, a: Sequence, b: Sequence, n: int = 248, *, assume_range: bool = False) -> None:
    """Constrain a < b lexicographically (tuples of n-bit values; strict: equal tuples are rejected).

    The prover supplies a one-hot ``s`` at the first differing index i (a hint, constrained here):
    ``s`` boolean with sum 1; ``(a_j - b_j) * [j < i] = 0`` for every j; ``sum s_j (b_j - a_j) - 1`` in
    [0, 2^n), i.e. a_i < b_i.  Any satisfying ``s`` therefore proves a < b.
    """
    m = _pair_lists(a, b)
    _check_n(n)
    if not assume_range:
        for x in (*a, *b):
            api.to_bits(x, n)
    with api.scope("less_packed"):
        s = api.hint(_FIRST_DIFF, [*a, *b], m)
        for x in s:
            api.assert_boolean(x)
        api.assert_equal(_sum(s), 1)
        before = LC.constant(0)  # [j < i] = sum of s_k for k > j
        for j in range(m - 1, -1, -1):
            if j < m - 1:
                api.assert_equal(api.mul(before, api.sub(a[j], b[j])), 0)
            before = before + s[j]
        diff = _sum(api.mul(s[j], api.sub(b[j], a[j])) for j in range(m))
        api.to_bits(diff - 1, n)


def assert_strictly_between(
    api, lo: Sequence, x: Sequence, hi: Sequence, n: int = 248, *, assume_range: bool = False
) -> None:
    """Constrain lo < x < hi lexicographically (packed tuples of n-bit values)."""
    _check_n(n)
    if not assume_range:
        for v in (*lo, *x, *hi):
            api.to_bits(v, n)
    assert_less_packed(api, lo, x, n, assume_range=True)
    assert_less_packed(api, x, hi, n, assume_range=True)


# ---------------------------------------------------------------------------------------- selection


@njit(cache=True, nogil=True)
def _one_hot_kernel(ins, outs, params):  # pragma: no cover - runs inside the solver
    if ins[0, 1] == 0 and ins[0, 2] == 0 and ins[0, 3] == 0 and ins[0, 0] < np.uint64(params[0]):
        outs[ins[0, 0], 0] = 1


_ONE_HOT = NumbaHint(_one_hot_kernel, name="one_hot")
"""Hint: e_i = [i == index] for i < params[0] (all 0 when the index is out of range)."""


def one_hot(api, index, n: int) -> list[LC]:
    """e with e_i = [i == index] for i < n; unsatisfiable unless 0 <= index < n (n + 2 constraints).

    Booleans with ``sum e = 1`` and ``sum i e_i = index``: exactly one e_i is 1, at i = index.
    """
    if not isinstance(n, int) or n < 1:
        raise InvalidInput("one_hot: n must be a positive int")
    c = const_value(as_terms(index))
    if c is not None:
        if c >= n:
            raise InvalidInput("one_hot: constant index out of range")
        return [LC.constant(int(i == c)) for i in range(n)]
    e = api.hint(_ONE_HOT, [index], n, [n])
    for x in e:
        api.assert_boolean(x)
    api.assert_equal(_sum(e), 1)
    api.assert_equal(_sum(x * i for i, x in enumerate(e)), index)
    return e


def _dot_item(api, sel: Sequence, values: Sequence):
    first = values[0]
    if isinstance(first, (list, tuple)):
        return [_dot_item(api, sel, [v[k] for v in values]) for k in range(len(first))]
    return _sum(api.mul(s, v) for s, v in zip(sel, values, strict=True))


def mux(api, selector: Sequence, values: Sequence):
    """sum selector_i * values_i: the selected value for a one-hot selector (e.g. from :func:`one_hot`).

    A value may be a scalar or a (nested) list of scalars of a common shape (selected componentwise).
    The selector is not re-checked: pass one constrained one-hot.
    """
    if len(selector) != len(values) or not values:
        raise InvalidInput("mux: one selector entry per value, at least one value")
    return _dot_item(api, selector, values)


def select_index(api, index, values: Sequence):
    """values[index] for a variable index (unsatisfiable unless 0 <= index < len(values))."""
    return mux(api, one_hot(api, index, len(values)), values)


# ---------------------------------------------------------------------------------------- prefixes


def prefix_mask(api, length, size: int) -> list[LC]:
    """m with m_i = [i < length] for i < size; unsatisfiable unless 0 <= length <= size (size + 3)."""
    e = one_hot(api, length, size + 1)
    out: list[LC] = []
    acc = LC.constant(0)
    for i in range(size, 0, -1):
        acc = acc + e[i]
        out.append(acc)
    out.reverse()
    return out


def is_prefix(api, prefix: Sequence, data: Sequence, length) -> LC:
    """1 if data[i] == prefix[i] for every i < length, else 0 (sequences of equal size >= length).

    Counts the mismatches below ``length`` (at most ``size`` < r, so no wrap) and tests for zero.
    """
    size = len(prefix)
    if len(data) != size or size == 0:
        raise InvalidInput("is_prefix: prefix and data must have the same non-zero size")
    mask = prefix_mask(api, length, size)
    bad = [api.mul(m, 1 - api.is_equal(p, d)) for m, p, d in zip(mask, prefix, data, strict=True)]
    return api.is_zero(_sum(bad))


def assert_prefix(api, prefix: Sequence, data: Sequence, length) -> None:
    """Constrain data[i] == prefix[i] for every i < length (0 <= length <= size)."""
    size = len(prefix)
    if len(data) != size or size == 0:
        raise InvalidInput("assert_prefix: prefix and data must have the same non-zero size")
    mask = prefix_mask(api, length, size)
    for m, p, d in zip(mask, prefix, data, strict=True):
        api.assert_equal(api.mul(m, api.sub(p, d)), 0)


def is_prefix_native(prefix: Sequence, data: Sequence, length: int) -> int:
    """Twin of :func:`is_prefix`."""
    if not 0 <= length <= len(prefix) or len(prefix) != len(data):
        raise InvalidInput("is_prefix_native: bad sizes")
    return int(all(prefix[i] == data[i] for i in range(length)))


# ---------------------------------------------------------------------------------------- shifts


def _select_item(api, b, x, y):
    """x if b else y, componentwise for (nested) lists; b known boolean."""
    if isinstance(y, (list, tuple)):
        xs = x if isinstance(x, (list, tuple)) else [x] * len(y)
        return [_select_item(api, b, xi, yi) for xi, yi in zip(xs, y, strict=True)]
    return api.select(b, x, y)


def _zero_like(item):
    if isinstance(item, (list, tuple)):
        return [_zero_like(x) for x in item]
    return 0


def _shift(api, items: Sequence, amount, max_shift: int, sign: int) -> list:
    if not isinstance(max_shift, int) or max_shift < 0:
        raise InvalidInput("shift: max_shift must be a non-negative int")
    n = len(items)
    cur = list(items)
    if max_shift == 0 or n == 0:
        api.assert_equal(amount, 0)
        return cur
    k = max_shift.bit_length()
    bits = api.to_bits(amount, k)
    if max_shift != (1 << k) - 1:
        api.to_bits(api.sub(max_shift, amount), k)  # amount <= max_shift
    zero = _zero_like(items[0])
    for level, b in enumerate(bits):
        step = 1 << level
        nxt = []
        for i in range(n):
            j = i + sign * step
            src = cur[j] if 0 <= j < n else zero
            nxt.append(_select_item(api, b, src, cur[i]))
        cur = nxt
    return cur


def shift_left(api, items: Sequence, amount, max_shift: int) -> list:
    """out[i] = items[i + amount] (0 past the end), for 0 <= amount <= max_shift (else unsatisfiable).

    A log-depth barrel shifter: one select per item per bit of ``amount``.  Items are scalars or
    (nested) lists such as a byte's bits, shifted as units.
    """
    return _shift(api, items, amount, max_shift, 1)


def shift_right(api, items: Sequence, amount, max_shift: int) -> list:
    """out[i] = items[i - amount] (0 before the start), for 0 <= amount <= max_shift."""
    return _shift(api, items, amount, max_shift, -1)


def shift_left_native(items: Sequence, amount: int, fill=0) -> list:
    """Twin of :func:`shift_left`."""
    n = len(items)
    return [items[i + amount] if i + amount < n else fill for i in range(n)]


def shift_right_native(items: Sequence, amount: int, fill=0) -> list:
    """Twin of :func:`shift_right`."""
    return [items[i - amount] if i >= amount else fill for i in range(len(items))]

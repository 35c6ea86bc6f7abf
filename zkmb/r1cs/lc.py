"""Linear combinations over Fr: the values a circuit's ``define`` code manipulates.

An :class:`LC` is ``sum c_i * w_i`` with wire 0 the constant 1.  It is kept simplified: each wire
appears once, every coefficient is in ``[1, r)`` (zero terms are dropped), so a constant is an LC
whose only wire is 0 and the zero LC has no terms.  LCs are immutable; their term dicts may be
shared between LCs and the constraint lists of the builder, so nothing may mutate them.

Linear operations (``+``, ``-``, unary ``-``, ``*`` by an int) are plain Python operators and
never create constraints; products of two LCs go through ``api.mul``.
"""

from __future__ import annotations

from ..algebra.params import R

__all__ = ["LC", "Value", "as_terms", "const_value"]

Terms = dict[int, int]

_EMPTY: Terms = {}


def _const_terms(c: int) -> Terms:
    c %= R
    return {0: c} if c else _EMPTY


def as_terms(x) -> Terms:
    """The (shared, read-only) term dict of an LC or an integer constant."""
    if type(x) is LC:
        return x.t
    if isinstance(x, LC):
        return x.t
    if isinstance(x, int):
        return _const_terms(x)
    try:  # numpy integers and other objects with __index__
        return _const_terms(x.__index__())
    except AttributeError:
        raise TypeError(f"expected an LC or an int, got {type(x).__name__}") from None


def const_value(t: Terms) -> int | None:
    """The value of a constant term dict, or None if it involves a wire."""
    n = len(t)
    if n == 0:
        return 0
    if n == 1 and 0 in t:
        return t[0]
    return None


def add_terms(d1: Terms, d2: Terms) -> Terms:
    """d1 + d2, simplified."""
    if not d2:
        return d1
    if not d1:
        return d2
    if len(d1) < len(d2):
        d1, d2 = d2, d1
    out = dict(d1)
    get = out.get
    for k, v in d2.items():
        nv = get(k, 0) + v
        if nv >= R:
            nv -= R
        if nv:
            out[k] = nv
        else:
            del out[k]
    return out


def sub_terms(d1: Terms, d2: Terms) -> Terms:
    """d1 - d2, simplified."""
    if not d2:
        return d1
    out = dict(d1)
    get = out.get
    for k, v in d2.items():
        nv = get(k, 0) - v
        if nv < 0:
            nv += R
        if nv:
            out[k] = nv
        else:
            del out[k]
    return out


def scale_terms(d: Terms, c: int) -> Terms:
    """c * d, simplified (c any integer)."""
    c %= R
    if c == 1:
        return d
    if c == 0:
        return _EMPTY
    return {k: v * c % R for k, v in d.items()}


class LC:
    """An immutable, simplified linear combination of wires (see the module docstring)."""

    __slots__ = ("t",)

    def __init__(self, terms: Terms):
        self.t = terms

    # ------------------------------------------------------------------ inspection

    @staticmethod
    def constant(c: int) -> LC:
        """The constant c (mod r)."""
        return LC(_const_terms(c))

    def const_value(self) -> int | None:
        """The value in [0, r) if this LC is a constant, else None."""
        return const_value(self.t)

    @property
    def wire(self) -> int | None:
        """The wire index if this LC is exactly one wire with coefficient 1, else None."""
        t = self.t
        if len(t) == 1:
            for k, v in t.items():
                if v == 1 and k != 0:
                    return k
        return None

    def terms(self) -> dict[int, int]:
        """A copy of ``{wire: coefficient}`` (coefficients canonical in [1, r))."""
        return dict(self.t)

    def __repr__(self) -> str:
        if not self.t:
            return "LC(0)"

        def term(k: int, v: int) -> str:
            sv = str(v) if v <= R // 2 else f"-{R - v}"
            if k == 0:
                return sv
            return f"w{k}" if v == 1 else f"{sv}*w{k}"

        return "LC(" + " + ".join(term(k, v) for k, v in sorted(self.t.items())) + ")"

    # ------------------------------------------------------------------ linear arithmetic

    def __add__(self, other) -> LC:
        return LC(add_terms(self.t, as_terms(other)))

    __radd__ = __add__

    def __sub__(self, other) -> LC:
        return LC(sub_terms(self.t, as_terms(other)))

    def __rsub__(self, other) -> LC:
        return LC(sub_terms(as_terms(other), self.t))

    def __neg__(self) -> LC:
        return LC(scale_terms(self.t, -1))

    def __pos__(self) -> LC:
        return self

    def __mul__(self, other) -> LC:
        if isinstance(other, LC):
            c = const_value(other.t)
            if c is None:
                c2 = const_value(self.t)
                if c2 is None:
                    raise TypeError("the product of two non-constant LCs needs a constraint: use api.mul")
                return LC(scale_terms(other.t, c2))
            return LC(scale_terms(self.t, c))
        try:
            c = other.__index__()
        except AttributeError:
            return NotImplemented
        return LC(scale_terms(self.t, c))

    __rmul__ = __mul__

    # ------------------------------------------------------------------ misuse guards

    def __bool__(self) -> bool:
        raise TypeError("an LC has no truth value at compile time (use api.select / api.is_zero)")

    def __eq__(self, other) -> bool:  # type: ignore[override]
        raise TypeError("LCs cannot be compared in Python: use api.assert_equal or api.is_equal")

    __ne__ = __eq__
    __hash__ = None  # type: ignore[assignment]


Value = LC | int
"""What the builder API accepts wherever a field value is expected."""

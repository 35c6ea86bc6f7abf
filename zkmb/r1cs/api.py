"""The circuit builder handed to ``Circuit.define``: records constraints and the witness program.

Every method takes LCs or ints and returns LCs.  Linear operations never add constraints; a
product with a constant side is a scaling, not a constraint.  Each constraint records the scope
path active when it was added (see :meth:`API.scope`).  Constraint counts per gadget (regression
numbers, checked by the tests):

=====================  ===============================================================
``mul``                1 per non-constant product
``div``                2 (``b * inv = 1``, ``a * inv = out``); 1 if ``a`` is constant
``div_unchecked``      1 (``b * out = a``; any ``out`` satisfies it when ``a = b = 0``)
``inverse``            1
``assert_equal``       1 (0 when the difference is the constant 0)
``assert_mul``         1 (``a * b = c``, no new wire; as ``assert_equal`` when a or b is constant)
``assert_boolean``     1 (0 when the value is already known boolean)
``select``             1 (+1 if ``b`` is not known boolean)
``to_bits(x, n<254)``  n + 1
``to_bits(x, 254)``    254 + 1 + (popcount(r - 1) - 1) = 354: strict, the bits encode a value < r
``from_bits``          0 (+1 per bit not known boolean)
``is_zero/is_equal``   2
=====================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain

import numpy as np

from ..algebra.fast.fields import fr_from_ints
from ..algebra.params import R
from . import solver
from .hints import NumbaHint, as_hint
from .lc import LC, Terms, add_terms, as_terms, const_value, scale_terms, sub_terms
from .system import CircuitError, ConstraintSystem, InputSpec, SparseMatrix, WitnessProgram

__all__ = ["API"]

_EMPTY: Terms = {}
_ONE: Terms = {0: 1}
_MINUS_ONE = R - 1
_POW2 = [1 << i for i in range(254)]
_BOUND = R - 1  # strict 254-bit decompositions must encode a value <= r - 1
_BOUND_BITS = [(_BOUND >> i) & 1 for i in range(254)]
_BOUND_LOWEST_ZERO = min(i for i in range(254) if not _BOUND_BITS[i])
_I64_MAX = (1 << 63) - 1
_OP_MUL = solver.OP_MUL
_CHUNK = 1 << 20


class API:
    """Constraint builder (one per compile).  See the module docstring for constraint counts."""

    def __init__(self, n_fixed_wires: int):
        self._nw = n_fixed_wires  # wire 0 and the inputs; internal wires follow
        # recent rows as term dicts; every _CHUNK rows they are flushed to numpy chunks, which bounds
        # memory for very large circuits (a dict per row costs ~200 bytes).  Flushing mid-define makes
        # the flattening ~2x slower per row (measured), hence the large chunk.
        self._a: list[Terms] = []
        self._b: list[Terms] = []
        self._c: list[Terms] = []
        self._row_base = 0  # rows already flushed
        self._pool: list[Terms] = []  # LCs read by hint instructions
        self._pool_base = 0
        self._chunks: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
            "a": [],
            "b": [],
            "c": [],
            "pool": [],
        }
        self._coef_index: dict[int, int] = {}  # coefficient -> id in the coefficient table
        self._prog: list[int] = []  # flat (op, x, out, y) quadruples
        self._prog_chunks: list[np.ndarray] = []
        self._bool: set[int] = set()  # wires known to be constrained boolean
        self._scope_stack: list[str] = []
        self._scope_ids: dict[str, int] = {"": 0}
        self._scope_marks: list[list[int]] = [[0, 0]]  # [first row, scope id]
        self._hints: list = []
        self._hint_ids: dict[int, int] = {}
        self._hint_fns: list = []
        self._call_fn: list[int] = []
        self._call_in: list[int] = []
        self._call_in_ptr: list[int] = [0]
        self._call_out: list[int] = []
        self._call_nout: list[int] = []
        self._call_par: list[int] = []
        self._call_par_ptr: list[int] = [0]

    # ------------------------------------------------------------------ bookkeeping

    @property
    def n_constraints(self) -> int:
        """Constraints added so far."""
        return self._row_base + len(self._a)

    @property
    def n_wires(self) -> int:
        """Wires allocated so far (including wire 0 and the inputs)."""
        return self._nw

    def _alloc(self, n: int) -> int:
        w = self._nw
        self._nw = w + n
        return w

    def _constrain(self, a: Terms, b: Terms, c: Terms) -> None:
        self._a.append(a)
        self._b.append(b)
        self._c.append(c)
        if len(self._a) >= _CHUNK:
            self._flush_rows()

    def _pool_id(self, t: Terms) -> int:
        pool = self._pool
        pool.append(t)
        k = self._pool_base + len(pool) - 1
        if len(pool) >= _CHUNK:
            self._chunks["pool"].append(_flatten(pool, self._coef_index))
            self._pool_base += len(pool)
            self._pool = []
            self._flush_prog()
        return k

    def _flush_rows(self) -> None:
        for name, rows in (("a", self._a), ("b", self._b), ("c", self._c)):
            self._chunks[name].append(_flatten(rows, self._coef_index))
        self._row_base += len(self._a)
        self._a, self._b, self._c = [], [], []
        self._flush_prog()

    def _flush_prog(self) -> None:
        if self._prog:
            self._prog_chunks.append(np.array(self._prog, dtype=np.int64))
            self._prog = []

    def _is_bool(self, t: Terms) -> bool:
        n = len(t)
        if n == 0:
            return True
        if n == 1:
            for k, v in t.items():
                return v == 1 and (k == 0 or k in self._bool)
        if n == 2 and t.get(0) == 1:  # 1 - b
            for k, v in t.items():
                if k != 0:
                    return v == _MINUS_ONE and k in self._bool
        return False

    def _mul2(self, ta: Terms, tb: Terms) -> Terms:
        if len(ta) < 2 and (not ta or 0 in ta):  # constant side: a scaling, not a constraint
            return scale_terms(tb, ta.get(0, 0))
        if len(tb) < 2 and (not tb or 0 in tb):
            return scale_terms(ta, tb.get(0, 0))
        w = self._nw
        self._nw = w + 1
        out = {w: 1}
        self._prog += (_OP_MUL, self._row_base + len(self._a), w, 0)
        self._a.append(ta)
        self._b.append(tb)
        self._c.append(out)
        if len(self._a) >= _CHUNK:
            self._flush_rows()
        return out

    # ------------------------------------------------------------------ scopes

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Record constraints added inside the block under ``outer/.../name``."""
        if not isinstance(name, str) or not name:
            raise CircuitError("a scope name must be a non-empty string")
        self._scope_stack.append(name)
        self._mark_scope()
        try:
            yield
        finally:
            self._scope_stack.pop()
            self._mark_scope()

    def _mark_scope(self) -> None:
        path = "/".join(self._scope_stack)
        sid = self._scope_ids.setdefault(path, len(self._scope_ids))
        row = self._row_base + len(self._a)
        last = self._scope_marks[-1]
        if last[0] == row:
            last[1] = sid
        else:
            self._scope_marks.append([row, sid])

    @property
    def scope_path(self) -> str:
        """The current scope path ('' at the top level)."""
        return "/".join(self._scope_stack)

    # ------------------------------------------------------------------ values

    @staticmethod
    def constant(c: int) -> LC:
        """The constant c (mod r) as an LC."""
        return LC.constant(c)

    @staticmethod
    def constant_value(x) -> int | None:
        """The value of x in [0, r) if it is a compile-time constant, else None."""
        return const_value(as_terms(x))

    # ------------------------------------------------------------------ linear operations (no constraints)

    def add(self, a, b, *more) -> LC:
        """a + b + ..."""
        t = add_terms(as_terms(a), as_terms(b))
        for m in more:
            t = add_terms(t, as_terms(m))
        return LC(t)

    def sub(self, a, b, *more) -> LC:
        """a - b - ..."""
        t = sub_terms(as_terms(a), as_terms(b))
        for m in more:
            t = sub_terms(t, as_terms(m))
        return LC(t)

    def neg(self, a) -> LC:
        """-a"""
        return LC(scale_terms(as_terms(a), -1))

    def mul_const(self, a, c: int) -> LC:
        """c * a for an integer constant c."""
        return LC(scale_terms(as_terms(a), c.__index__()))

    # ------------------------------------------------------------------ products and division

    def mul(self, a, b, *more) -> LC:
        """a * b * ...: one constraint per product of two non-constant operands."""
        t = self._mul2(a.t if type(a) is LC else as_terms(a), b.t if type(b) is LC else as_terms(b))
        for m in more:
            t = self._mul2(t, as_terms(m))
        return LC(t)

    def inverse(self, a) -> LC:
        """1/a, constrained by ``a * inv = 1`` (unsatisfiable when a = 0)."""
        ta = as_terms(a)
        c = const_value(ta)
        if c is not None:
            if c == 0:
                raise CircuitError("inverse of the constant 0")
            return LC.constant(pow(c, -1, R))
        w = self._alloc(1)
        lid = self._pool_id(ta)  # may flush self._prog: take the id before touching the list
        self._prog += (solver.OP_INV, lid, w, 0)
        out = {w: 1}
        self._constrain(ta, out, _ONE)
        return LC(out)

    def div(self, a, b) -> LC:
        """a / b; unsatisfiable when b = 0 (see the counts in the module docstring)."""
        ta, tb = as_terms(a), as_terms(b)
        c = const_value(tb)
        if c is not None:
            if c == 0:
                raise CircuitError("division by the constant 0")
            return LC(scale_terms(ta, pow(c, -1, R)))
        return LC(self._mul2(ta, self.inverse(b).t))

    def div_unchecked(self, a, b) -> LC:
        """a / b with one constraint ``b * out = a``.

        Unsatisfiable if b = 0 != a; ``out`` is unconstrained if a = b = 0.
        """
        ta, tb = as_terms(a), as_terms(b)
        c = const_value(tb)
        if c is not None:
            if c == 0:
                raise CircuitError("division by the constant 0")
            return LC(scale_terms(ta, pow(c, -1, R)))
        w = self._alloc(1)
        la, lb = self._pool_id(ta), self._pool_id(tb)
        self._prog += (solver.OP_DIV, la, w, lb)
        out = {w: 1}
        self._constrain(tb, out, ta)
        return LC(out)

    # ------------------------------------------------------------------ assertions

    def assert_equal(self, a, b) -> None:
        """Constrain a = b (``(a - b) * 1 = 0``)."""
        d = sub_terms(as_terms(a), as_terms(b))
        c = const_value(d)
        if c is not None:
            if c:
                raise CircuitError("assert_equal on two different constants")
            return
        self._constrain(d, _ONE, _EMPTY)

    def assert_mul(self, a, b, c) -> None:
        """Constrain a * b = c in one constraint without a new wire (``mul`` then ``assert_equal``
        would take two); with a constant a or b it is the linear ``assert_equal``."""
        ta, tb, tc = as_terms(a), as_terms(b), as_terms(c)
        ca, cb = const_value(ta), const_value(tb)
        if ca is not None or cb is not None:
            prod = scale_terms(tb, ca) if ca is not None else scale_terms(ta, cb)
            self.assert_equal(LC(prod), LC(tc))
            return
        self._constrain(ta, tb, tc)

    def assert_boolean(self, a) -> None:
        """Constrain a in {0, 1} (``a * (a - 1) = 0``) unless a is already known boolean."""
        t = as_terms(a)
        c = const_value(t)
        if c is not None:
            if c > 1:
                raise CircuitError("assert_boolean on a constant that is not 0 or 1")
            return
        if self._is_bool(t):
            return
        self._constrain(t, sub_terms(t, _ONE), _EMPTY)
        if len(t) == 1:
            for k, v in t.items():
                if v == 1:
                    self._bool.add(k)

    def is_boolean(self, a) -> bool:
        """True if a is a constant 0/1 or a wire (or 1 - wire) already constrained boolean."""
        return self._is_bool(as_terms(a))

    # ------------------------------------------------------------------ selection and comparison

    def select(self, b, x, y) -> LC:
        """x if b else y: ``y + b * (x - y)``; b is constrained boolean."""
        tb = as_terms(b)
        cb = const_value(tb)
        if cb is not None:
            if cb > 1:
                raise CircuitError("select on a constant condition that is not 0 or 1")
            return LC(as_terms(x)) if cb else LC(as_terms(y))
        self.assert_boolean(b)
        ty = as_terms(y)
        d = sub_terms(as_terms(x), ty)
        return LC(add_terms(ty, self._mul2(tb, d)))

    def is_zero(self, a) -> LC:
        """1 if a = 0 else 0: ``a * m = t``, ``a * (1 - t) = 0``, out = 1 - t (m = 1/a from a hint)."""
        ta = as_terms(a)
        c = const_value(ta)
        if c is not None:
            return LC.constant(1 if c == 0 else 0)
        m = self._alloc(1)
        lid = self._pool_id(ta)
        self._prog += (solver.OP_INV, lid, m, 0)
        t = self._mul2(ta, {m: 1})
        (tw,) = t
        out = {0: 1, tw: _MINUS_ONE}
        self._constrain(ta, out, _EMPTY)
        self._bool.add(tw)
        return LC(out)

    def is_equal(self, a, b) -> LC:
        """1 if a = b else 0 (2 constraints)."""
        return self.is_zero(LC(sub_terms(as_terms(a), as_terms(b))))

    # ------------------------------------------------------------------ binary decomposition

    def to_bits(self, a, n: int) -> list[LC]:
        """The n low bits of a (LSB first), constrained boolean and recomposing to a.

        n must be in [1, 254].  For n < 254 the decomposition is unique (2^n <= r).  For n = 254
        it is strict: the bits are also constrained to encode a value <= r - 1, which rules out the
        alias a + r.
        """
        if not isinstance(n, int) or not 1 <= n <= 254:
            raise CircuitError(f"to_bits: n must be an int in [1, 254], got {n!r}")
        ta = as_terms(a)
        c = const_value(ta)
        if c is not None:
            if c >> n:
                raise CircuitError(f"to_bits: the constant does not fit in {n} bits")
            return [LC(_ONE if (c >> i) & 1 else _EMPTY) for i in range(n)]
        w0 = self._alloc(n)
        lid = self._pool_id(ta)
        self._prog += (solver.OP_BITS, lid, w0, n)
        wires = range(w0, w0 + n)
        bits = [{w: 1} for w in wires]
        self._bool.update(wires)
        if n == 254:
            self._strict_bits(bits, w0)
        else:
            self._a.extend(bits)
            self._b.extend([{w: 1, 0: _MINUS_ONE} for w in wires])
            self._c.extend([_EMPTY] * n)
            if len(self._a) >= _CHUNK:
                self._flush_rows()
        self._constrain(dict(zip(wires, _POW2, strict=False)), _ONE, ta)
        return [LC(t) for t in bits]

    def _strict_bits(self, bits: list[Terms], w0: int) -> None:
        """Booleanity of 254 bits plus ``bits <= r - 1`` (MSB-first comparison against a constant).

        ``p`` is 1 iff the bits above the current position equal those of r - 1.  Where r - 1 has
        a 1 bit, the bit is boolean and p becomes p * bit; where it has a 0 bit, the single
        constraint ``b * (b - 1 + p) = 0`` makes b boolean and forces b = 0 while p = 1.
        """
        p: Terms | None = None  # None: the constant 1
        for i in range(253, -1, -1):
            w = w0 + i
            if _BOUND_BITS[i]:
                self._constrain(bits[i], {w: 1, 0: _MINUS_ONE}, _EMPTY)
                if i > _BOUND_LOWEST_ZERO:
                    p = bits[i] if p is None else self._mul2(p, bits[i])
            elif p is None:
                self._constrain(bits[i], bits[i], _EMPTY)
            else:
                self._constrain(bits[i], add_terms(p, {w: 1, 0: _MINUS_ONE}), _EMPTY)

    def from_bits(self, bits: Sequence) -> LC:
        """sum bits[i] * 2^i; each bit is constrained boolean unless already known boolean.

        With 254 bits the sum can exceed r and wrap: it is only unique for bits that come from a
        strict ``to_bits(x, 254)`` (or fewer than 254 bits).
        """
        if len(bits) > 254:
            raise CircuitError("from_bits: more than 254 bits")
        ts = [as_terms(b) for b in bits]
        for t in ts:
            if not self._is_bool(t):
                self.assert_boolean(LC(t))
        out: Terms = {}
        simple = True
        for i, t in enumerate(ts):
            if not t:
                continue
            if len(t) == 1:
                k, v = next(iter(t.items()))
                if v == 1 and k != 0 and k not in out:
                    out[k] = _POW2[i]
                    continue
            simple = False
            break
        if simple:
            return LC(out)
        out = {}
        for i, t in enumerate(ts):
            out = add_terms(out, scale_terms(t, _POW2[i]))
        return LC(out)

    # ------------------------------------------------------------------ user hints

    def hint(self, fn, inputs: Sequence, n_out: int, params: Sequence[int] = ()) -> list[LC]:
        """n_out new wires computed by a user hint from ``inputs`` (see :mod:`zkmb.r1cs.hints`).

        The outputs are NOT constrained: the caller must constrain them.
        """
        if not isinstance(n_out, int) or n_out < 0:
            raise CircuitError("hint: n_out must be a non-negative int")
        pars = [int(p) for p in params]
        if any(not -_I64_MAX <= p <= _I64_MAX for p in pars):
            raise CircuitError("hint: params must fit in int64")
        fid = self._hint_ids.get(id(fn))  # one table entry per distinct function
        if fid is None:
            h = as_hint(fn)
            fid = self._hint_ids[id(fn)] = len(self._hints)
            self._hints.append(h)
            self._hint_fns.append(fn)  # keeps fn alive, so its id is not reused
        h = self._hints[fid]
        k = len(self._call_fn)
        self._call_fn.append(fid)
        self._call_in.extend(self._pool_id(as_terms(v)) for v in inputs)
        self._call_in_ptr.append(len(self._call_in))
        w0 = self._alloc(n_out)
        self._call_out.append(w0)
        self._call_nout.append(n_out)
        self._call_par.extend(pars)
        self._call_par_ptr.append(len(self._call_par))
        op = solver.OP_NHINT if isinstance(h, NumbaHint) else solver.OP_PYHINT
        self._prog += (op, k, w0, 0)
        return [LC({w: 1}) for w in range(w0, w0 + n_out)]

    # ------------------------------------------------------------------ compilation

    def build(self, name: str, inputs: dict[str, InputSpec], n_public: int) -> ConstraintSystem:
        """The ConstraintSystem of everything recorded (matrices in CSR, program as arrays)."""
        self._flush_rows()
        if self._pool:
            self._chunks["pool"].append(_flatten(self._pool, self._coef_index))
            self._pool_base += len(self._pool)
            self._pool = []
        self._flush_prog()
        index = self._coef_index
        table = fr_from_ints(list(index)) if index else np.zeros((0, 4), dtype=np.uint64)
        mats = []
        for key in ("a", "b", "c", "pool"):
            chunks = self._chunks[key]
            lens = np.concatenate([ch[0] for ch in chunks]) if chunks else np.zeros(0, dtype=np.int64)
            cols = np.concatenate([ch[1] for ch in chunks]) if chunks else np.zeros(0, dtype=np.int64)
            ids = np.concatenate([ch[2] for ch in chunks]) if chunks else np.zeros(0, dtype=np.int64)
            ptr = np.zeros(lens.shape[0] + 1, dtype=np.int64)
            np.cumsum(lens, out=ptr[1:])
            if not solver.sort_rows(ptr, cols, ids):
                # LC terms are unique by construction
                raise RuntimeError("internal error: a row repeats a wire")
            mats.append(SparseMatrix(ptr, cols, table[ids]))
        a, b, c, pool = mats
        prog = np.concatenate(self._prog_chunks) if self._prog_chunks else np.zeros(0, dtype=np.int64)
        instr = prog.reshape(-1, 4)
        program = WitnessProgram(
            instr=instr,
            lc=pool,
            hints=list(self._hints),
            call_fn=np.array(self._call_fn, dtype=np.int64),
            call_in_ptr=np.array(self._call_in_ptr, dtype=np.int64),
            call_in=np.array(self._call_in, dtype=np.int64),
            call_out=np.array(self._call_out, dtype=np.int64),
            call_nout=np.array(self._call_nout, dtype=np.int64),
            call_par_ptr=np.array(self._call_par_ptr, dtype=np.int64),
            call_par=np.array(self._call_par, dtype=np.int64),
        )
        marks = np.array(self._scope_marks, dtype=np.int64).reshape(-1, 2)
        return ConstraintSystem(
            n_public=n_public,
            n_wires=self._nw,
            A=a,
            B=b,
            C=c,
            inputs=inputs,
            scope_names=list(self._scope_ids),
            scope_rows=marks[:, 0].copy(),
            scope_ids=marks[:, 1].copy(),
            program=program,
            name=name,
        )


def _flatten(rows: list[Terms], index: dict[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row lengths, columns and coefficient ids of a list of term dicts (new coefficients join ``index``)."""
    m = len(rows)
    lens = np.fromiter(map(len, rows), dtype=np.int64, count=m)
    nnz = int(lens.sum())
    cols = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=nnz)
    vals = list(chain.from_iterable(map(dict.values, rows)))
    for v in dict.fromkeys(vals):
        if v not in index:
            index[v] = len(index)
    ids = np.fromiter(map(index.__getitem__, vals), dtype=np.int64, count=nnz)
    return lens, cols, ids

"""The compiled constraint system: sparse A/B/C matrices, input layout, scopes, witness program.

Wire layout (circom's convention): wire 0 is the constant 1, wires ``1..n_public`` the public
inputs, then the secret inputs, then every internal wire.  A witness satisfies the system when
``w[0] = 1`` and ``(A w) * (B w) = C w`` row by row.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import struct
from dataclasses import dataclass, field

import numpy as np

from ..algebra.fast.fields import fr_from_ints, fr_from_mont_limbs, fr_to_ints
from ..algebra.kernels.mont import FR_ONE
from ..algebra.params import R
from ..errors import InvalidInput, ZkmbError
from . import solver
from .hints import NumbaHint, PyHint

__all__ = [
    "CircuitError",
    "ConstraintSystem",
    "InputSpec",
    "SparseMatrix",
    "UnsatisfiedError",
    "Witness",
    "WitnessProgram",
    "WitnessSolver",
]

_FR_ONE_ARR = np.array(FR_ONE, dtype=np.uint64)
_PARALLEL_ROWS = 1 << 15  # below this, checking on one thread is faster than starting the pool


class CircuitError(ZkmbError, ValueError):
    """The circuit definition is invalid (e.g. a constant assertion that can never hold)."""


class UnsatisfiedError(InvalidInput):
    """The assignment does not satisfy the circuit (or a hint failed while solving)."""


def _limbs_to_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<u8").tobytes()


@dataclass(frozen=True, eq=False)
class SparseMatrix:
    """A CSR matrix over Fr: row i has columns ``cols[row_ptr[i]:row_ptr[i+1]]`` (strictly increasing).

    ``coeffs`` holds the coefficients as ``(nnz, 4)`` uint64 Montgomery limbs.
    """

    row_ptr: np.ndarray
    cols: np.ndarray
    coeffs: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.row_ptr.shape[0] - 1)

    @property
    def nnz(self) -> int:
        return int(self.cols.shape[0])

    def coeffs_int(self) -> list[int]:
        """The coefficients as canonical integers in [0, r), in storage order."""
        return fr_to_ints(self.coeffs)

    def coeffs_plain(self) -> np.ndarray:
        """The coefficients as canonical (non-Montgomery) little-endian limbs, shape (nnz, 4)."""
        return fr_from_mont_limbs(self.coeffs)

    def row(self, i: int) -> dict[int, int]:
        """Row i as ``{wire: coefficient}`` with canonical integer coefficients (for tests and debugging)."""
        lo, hi = int(self.row_ptr[i]), int(self.row_ptr[i + 1])
        return dict(zip(self.cols[lo:hi].tolist(), fr_to_ints(self.coeffs[lo:hi]), strict=True))


@dataclass(frozen=True)
class InputSpec:
    """One declared input: ``count`` wires from ``first_wire``; ``count is None`` for a scalar."""

    name: str
    public: bool
    first_wire: int
    count: int | None

    @property
    def n_wires(self) -> int:
        return 1 if self.count is None else self.count


@dataclass(eq=False)
class WitnessProgram:
    """The compiled solver program (see :mod:`zkmb.r1cs.solver` for the instruction set)."""

    instr: np.ndarray  # (n, 4) int64
    lc: SparseMatrix  # the LC pool read by hint instructions
    hints: list  # NumbaHint | PyHint, indexed by call_fn
    call_fn: np.ndarray
    call_in_ptr: np.ndarray
    call_in: np.ndarray
    call_out: np.ndarray
    call_nout: np.ndarray
    call_par_ptr: np.ndarray
    call_par: np.ndarray

    @property
    def n_instructions(self) -> int:
        return int(self.instr.shape[0])


class RowValues:
    """``A_i . w`` (``a[i]``) and ``B_i . w`` (``b[i]``) for the constraints ``i`` with ``known[i]``, as
    the witness solver computed them while solving ``w`` (its product rows: 93 % of a query circuit's
    A and B entries), so that a proof's QAP step evaluates only the other rows."""

    __slots__ = ("a", "b", "known")

    def __init__(self, a: np.ndarray, b: np.ndarray, known: np.ndarray):
        self.a, self.b, self.known = a, b, known


class Witness:
    """A full assignment of the wires: ``values`` is ``(n_wires, 4)`` uint64 Montgomery Fr.

    ``n_public`` counts the public inputs (wires ``1..n_public``); None when unknown (a bare .wtns).
    """

    __slots__ = ("values", "n_public", "rows")

    def __init__(self, values: np.ndarray, n_public: int | None, rows: RowValues | None = None):
        if values.ndim != 2 or values.shape[1] != 4 or values.dtype != np.uint64:
            raise InvalidInput("witness values must be an (n, 4) uint64 array")
        self.values = values
        self.n_public = n_public
        self.rows = rows
        """A w and B w on the rows the solver evaluated for this witness (``solve(rows=True)``)."""

    @classmethod
    def from_ints(cls, values: list[int], n_public: int | None = None) -> Witness:
        """From canonical integers (wire 0 first); raises InvalidInput for values outside [0, r)."""
        return cls(fr_from_ints(values), n_public)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def to_ints(self) -> list[int]:
        """All wire values as canonical integers."""
        return fr_to_ints(self.values)

    def value(self, i: int) -> int:
        """Wire i as a canonical integer."""
        return fr_to_ints(self.values[i : i + 1])[0]

    def public_inputs(self) -> list[int]:
        """The public inputs (wires 1..n_public) as canonical integers."""
        if self.n_public is None:
            raise ZkmbError("this witness does not know its number of public inputs")
        return fr_to_ints(self.values[1 : 1 + self.n_public])

    def scalars(self) -> np.ndarray:
        """All wire values as canonical little-endian limbs (n_wires, 4), e.g. MSM scalars."""
        return fr_from_mont_limbs(self.values)

    def replace(self, i: int, value: int) -> Witness:
        """A copy with wire i set to ``value`` (mod r) — for tests that tamper with a witness."""
        vals = self.values.copy()
        vals[i] = fr_from_ints([value % R])[0]
        return Witness(vals, self.n_public)


@dataclass(eq=False)
class ConstraintSystem:
    """An R1CS over BN254 Fr with its input layout, scopes and (optionally) a witness program."""

    n_public: int
    n_wires: int
    A: SparseMatrix
    B: SparseMatrix
    C: SparseMatrix
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    scope_names: list[str] = field(default_factory=lambda: [""])
    scope_rows: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    scope_ids: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    program: WitnessProgram | None = None
    name: str = ""
    labels: np.ndarray | None = None  # circom wire -> label map, when read from a .r1cs
    _digest: bytes | None = field(default=None, repr=False)
    _rows_final: bool | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ counts

    @property
    def n_constraints(self) -> int:
        return self.A.n_rows

    @property
    def n_secret_inputs(self) -> int:
        return sum(s.n_wires for s in self.inputs.values() if not s.public)

    @property
    def n_internal(self) -> int:
        return self.n_wires - 1 - self.n_public - self.n_secret_inputs

    def __repr__(self) -> str:
        return (
            f"ConstraintSystem({self.name or 'anonymous'}: {self.n_constraints} constraints, "
            f"{self.n_public} public, {self.n_wires} wires, "
            f"nnz A/B/C = {self.A.nnz}/{self.B.nnz}/{self.C.nnz})"
        )

    # ------------------------------------------------------------------ digest

    def digest(self) -> bytes:
        """SHA-256 over a canonical serialisation of the counts and the A, B, C matrices.

        Serialisation: ``b"zkmb-r1cs-v1\\0"``, then n_constraints, n_public, n_wires as u64 LE, then
        for A, B, C: row_ptr (u64 LE each), cols (u64 LE each), coefficients (32-byte LE canonical).
        Rows are sorted by column with no zero or repeated entries, so the digest depends only on
        the constraint system, not on how it was built.
        """
        if self._digest is None:
            h = hashlib.sha256(b"zkmb-r1cs-v1\0")
            h.update(struct.pack("<QQQ", self.n_constraints, self.n_public, self.n_wires))
            for m in (self.A, self.B, self.C):
                h.update(m.row_ptr.astype("<u8").tobytes())
                h.update(m.cols.astype("<u8").tobytes())
                h.update(_limbs_to_bytes(m.coeffs_plain()))
            self._digest = h.digest()
        return self._digest

    def digest_hex(self) -> str:
        return self.digest().hex()

    # ------------------------------------------------------------------ scopes

    def scope_of(self, row: int) -> str:
        """The scope path that was active when constraint ``row`` was added ('' at the top level)."""
        k = bisect.bisect_right(self.scope_rows, row) - 1
        return self.scope_names[int(self.scope_ids[max(k, 0)])]

    # ------------------------------------------------------------------ checking

    def _check_witness(self, witness: Witness) -> np.ndarray:
        if not isinstance(witness, Witness):
            raise TypeError("expected a Witness")
        if len(witness) != self.n_wires:
            raise InvalidInput(f"witness has {len(witness)} wires, the system has {self.n_wires}")
        return witness.values

    def _row_ok(self, w: np.ndarray) -> np.ndarray:
        ok = np.empty(self.n_constraints, dtype=np.bool_)
        a, b, c = self.A, self.B, self.C
        kernel = solver.check_rows if self.n_constraints >= _PARALLEL_ROWS else solver.check_rows_serial
        kernel(a.row_ptr, a.cols, a.coeffs, b.row_ptr, b.cols, b.coeffs, c.row_ptr, c.cols, c.coeffs, w, ok)
        return ok

    def first_unsatisfied(self, witness: Witness) -> int | None:
        """Index of the first violated constraint, -1 if wire 0 is not 1, None if all hold."""
        w = self._check_witness(witness)
        if not np.array_equal(w[0], _FR_ONE_ARR) or not solver.all_below_r(w):
            return -1
        ok = self._row_ok(w)
        if ok.all():
            return None
        return int(np.argmin(ok))

    def is_satisfied(self, witness: Witness) -> bool:
        """True iff wire 0 is 1, every value is canonical and every constraint holds."""
        return self.first_unsatisfied(witness) is None

    def which_is_unsatisfied(self, witness: Witness) -> str | None:
        """A description naming the first failing constraint and its scope, or None if satisfied."""
        i = self.first_unsatisfied(witness)
        if i is None:
            return None
        if i < 0:
            return "wire 0 (the constant one) is not 1, or a value is not a canonical field element"
        scope = self.scope_of(i)
        return f"constraint {i} in scope '{scope or '<root>'}'"

    # ------------------------------------------------------------------ solving

    def _input_values(self, assignment: dict) -> list[int]:
        if not isinstance(assignment, dict):
            raise InvalidInput("the assignment must be a dict {input name: value or list of values}")
        unknown = set(assignment) - set(self.inputs)
        if unknown:
            raise InvalidInput(f"unknown inputs: {sorted(unknown)}")
        values: list[int] = []
        for spec in sorted(self.inputs.values(), key=lambda s: s.first_wire):
            if spec.name not in assignment:
                raise InvalidInput(f"missing input {spec.name!r}")
            v = assignment[spec.name]
            if spec.count is None:
                vs = [v]
            else:
                try:
                    vs = list(v)
                except TypeError:
                    raise InvalidInput(f"input {spec.name!r} needs {spec.count} values") from None
                if len(vs) != spec.count:
                    raise InvalidInput(f"input {spec.name!r} needs {spec.count} values, got {len(vs)}")
            for x in vs:
                try:
                    xi = x.__index__()
                except AttributeError:
                    raise InvalidInput(f"input {spec.name!r}: {type(x).__name__} is not an integer") from None
                if not 0 <= xi < R:
                    raise InvalidInput(f"input {spec.name!r}: value not in [0, r)")
                values.append(xi)
        return values

    def solve(self, assignment: dict, check: bool = True, rows: bool = False) -> Witness:
        """Run the witness program on the inputs; with ``check`` raise UnsatisfiedError unless satisfied;
        with ``rows`` keep the product rows' A and B values (:class:`RowValues`, where the program
        evaluates each of them on final wire values: :func:`solver.products_read_final_wires`)."""
        if self.program is None:
            raise ZkmbError("this constraint system has no witness program (circom: read a .wtns instead)")
        keep = _keeps_rows(self, self.n_secret_inputs) if rows else False
        w, kept = _run(self.program, self.A, self.B, self.n_wires, self._input_values(assignment), keep)
        witness = Witness(w, self.n_public, kept)
        if check:
            msg = self.which_is_unsatisfied(witness)
            if msg is not None:
                raise UnsatisfiedError(f"the assignment does not satisfy {self.name or 'the circuit'}: {msg}")
        return witness


class WitnessSolver:
    """Only what solving a circuit's witness needs: its program and input layout, with the A and B rows
    the program reads taken from elsewhere -- a proving key's QAP rows, the same rows plus the public
    rows after them (:func:`zkmb.groth16.r1cs_to_qap.qap_matrices`), which the client's key check
    compares with the circuit.  A large circuit's own A/B/C (190 MB for the channel opening) can then
    be freed.  :meth:`solve` never checks the result against the constraints (there is no C)."""

    def __init__(self, cs: ConstraintSystem, a_rows, b_rows):
        if cs.program is None:
            raise ZkmbError("this constraint system has no witness program")
        if a_rows.n_rows < cs.n_constraints or b_rows.n_rows < cs.n_constraints:
            raise InvalidInput("the given rows do not cover the circuit's constraints")
        self.name, self.n_wires, self.n_public = cs.name, cs.n_wires, cs.n_public
        self.inputs, self.program = cs.inputs, cs.program
        self.A = SparseMatrix(a_rows.ptr, a_rows.cols, a_rows.vals)
        self.B = SparseMatrix(b_rows.ptr, b_rows.cols, b_rows.vals)
        self.n_constraints, self.n_secret = cs.n_constraints, cs.n_secret_inputs
        self._input_values = functools.partial(ConstraintSystem._input_values, self)
        self._rows_final: bool | None = None

    def solve(self, assignment: dict, rows: bool = False) -> Witness:
        """The witness of ``assignment`` (unchecked: the proof's verification is the check); ``rows`` as
        for :meth:`ConstraintSystem.solve` (the rows are the given ones)."""
        keep = _keeps_rows(self, self.n_secret) if rows else False
        w, kept = _run(
            self.program,
            self.A,
            self.B,
            self.n_wires,
            self._input_values(assignment),
            keep,
            self.n_constraints,
        )
        return Witness(w, self.n_public, kept)


def _keeps_rows(s: ConstraintSystem | WitnessSolver, n_secret: int) -> bool:
    """Whether ``s``'s program evaluates its product rows on final wire values
    (:func:`solver.products_read_final_wires`), so that ``solve(rows=True)`` may keep them: checked
    once per solver and only when asked (a CO's program is 786k rows), remembered in ``_rows_final``."""
    if s._rows_final is None:
        prog, a, b = s.program, s.A, s.B
        s._rows_final = bool(
            solver.products_read_final_wires(
                prog.instr,
                a.row_ptr,
                a.cols,
                b.row_ptr,
                b.cols,
                prog.call_out,
                prog.call_nout,
                s.n_wires,
                1 + s.n_public + n_secret,
            )
        )
    return s._rows_final


_NO_ROWS = np.zeros((0, 4), dtype=np.uint64)
_NO_KNOWN = np.zeros(0, dtype=np.uint8)


def _run(
    prog: WitnessProgram,
    a: SparseMatrix,
    b: SparseMatrix,
    n_wires: int,
    vals: list[int],
    keep: bool = False,
    n_rows: int | None = None,
) -> tuple[np.ndarray, RowValues | None]:
    """The wires computed by ``prog`` from the input values (the solver's loop, Python hints between),
    and with ``keep`` the A and B values of its product rows (the first ``n_rows`` rows of a, b)."""
    w = np.zeros((n_wires, 4), dtype=np.uint64)
    w[0] = _FR_ONE_ARR
    if vals:
        w[1 : 1 + len(vals)] = fr_from_ints(vals)
    m = a.n_rows if n_rows is None else n_rows
    row_a, row_b, known = (
        (np.empty((m, 4), dtype=np.uint64), np.empty((m, 4), dtype=np.uint64), np.zeros(m, dtype=np.uint8))
        if keep
        else (_NO_ROWS, _NO_ROWS, _NO_KNOWN)
    )
    addrs = np.array([h.address if isinstance(h, NumbaHint) else 0 for h in prog.hints], dtype=np.int64)
    if addrs.shape[0] == 0:
        addrs = np.zeros(1, dtype=np.int64)
    lc = prog.lc
    pc = 0
    while True:
        st, pc = solver.run_program(
            w, prog.instr, pc, a.row_ptr, a.cols, a.coeffs, b.row_ptr, b.cols, b.coeffs,
            lc.row_ptr, lc.cols, lc.coeffs, prog.call_fn, prog.call_in_ptr, prog.call_in,
            prog.call_out, prog.call_nout, prog.call_par_ptr, prog.call_par, addrs, row_a, row_b, known,
        )  # fmt: skip
        if st == solver.ST_DONE:
            return w, (RowValues(row_a, row_b, known) if keep else None)
        k = int(prog.instr[pc, 1])
        hint = prog.hints[int(prog.call_fn[k])]
        if st == solver.ST_PYHINT:
            _run_py_hint(prog, w, k, hint)
            pc += 1
        elif st == solver.ST_HINT_FAILED:
            raise UnsatisfiedError(f"hint {hint.name} failed")
        else:
            raise UnsatisfiedError(f"hint {hint.name} returned a value not below r")


def _run_py_hint(prog: WitnessProgram, w: np.ndarray, k: int, hint: PyHint) -> None:
    ids = prog.call_in[prog.call_in_ptr[k] : prog.call_in_ptr[k + 1]]
    lc = prog.lc
    ins = fr_to_ints(solver.eval_rows(lc.row_ptr, lc.cols, lc.coeffs, ids, w))
    params = tuple(prog.call_par[prog.call_par_ptr[k] : prog.call_par_ptr[k + 1]].tolist())
    n_out = int(prog.call_nout[k])
    try:
        outs = [int(v) % R for v in hint(ins, params)]
    except Exception as e:  # a user hint may raise anything; report it as a solve failure
        raise UnsatisfiedError(f"hint {hint.name} raised {type(e).__name__}: {e}") from e
    if len(outs) != n_out:
        raise UnsatisfiedError(f"hint {hint.name} returned {len(outs)} values, expected {n_out}")
    if n_out:
        o = int(prog.call_out[k])
        w[o : o + n_out] = fr_from_ints(outs)

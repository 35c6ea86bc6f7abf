"""Circuit frontend: R1CS builder, compiled constraint systems and the fast witness solver.

Write a :class:`Circuit` (inputs as :class:`Public`/:class:`Secret` fields, constraints in
``define(api)``), :func:`compile` it to a :class:`ConstraintSystem` (sparse A/B/C matrices over
BN254 Fr plus a witness program), then :meth:`ConstraintSystem.solve` an assignment to a
:class:`Witness`.  circom ``.r1cs``/``.wtns`` files are read into the same types by
:mod:`zkmb.r1cs.circom`.
"""

from .api import API
from .circom import read_r1cs, read_wtns, write_r1cs, write_wtns
from .circuit import Circuit, Public, Secret, compile
from .hints import NumbaHint, PyHint, numba_hint
from .lc import LC, Value
from .system import (
    CircuitError,
    ConstraintSystem,
    InputSpec,
    SparseMatrix,
    UnsatisfiedError,
    Witness,
    WitnessProgram,
)

__all__ = [
    "API",
    "LC",
    "Circuit",
    "CircuitError",
    "ConstraintSystem",
    "InputSpec",
    "NumbaHint",
    "Public",
    "PyHint",
    "Secret",
    "SparseMatrix",
    "UnsatisfiedError",
    "Value",
    "Witness",
    "WitnessProgram",
    "compile",
    "numba_hint",
    "read_r1cs",
    "read_wtns",
    "write_r1cs",
    "write_wtns",
]

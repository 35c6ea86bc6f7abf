"""Hints: values the witness solver computes outside the constraints (the circuit must constrain them).

Built-in hints (field inverse, division, bit decomposition) are opcodes of the numba interpreter
in :mod:`zkmb.r1cs.solver`.  User hints come in two kinds:

* :class:`NumbaHint` (decorator :func:`numba_hint`): ``fn(ins, outs, params)`` where ``ins`` is a
  ``(k, 4)`` uint64 array of the inputs as canonical little-endian limbs (plain integers, not
  Montgomery), ``outs`` a zeroed ``(n_out, 4)`` array to fill with canonical limbs (each below r),
  ``params`` an int64 array of the call's constant parameters.  It is compiled to a C callback
  and called from inside the interpreter, so it costs no Python round trip.  Its return value is
  ignored and it must not raise; an output that is not below r makes the solve fail.
* :class:`PyHint` (any Python callable): ``fn(inputs: list[int], params: tuple[int, ...])`` returning
  ``n_out`` integers (reduced mod r).  The interpreter pauses and returns to Python for each call;
  use it for rare hints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic

__all__ = ["NumbaHint", "PyHint", "numba_hint", "as_hint"]

_CB_SIG = types.int64(
    types.CPointer(types.uint64),
    types.int64,
    types.CPointer(types.uint64),
    types.int64,
    types.CPointer(types.int64),
    types.int64,
)


@intrinsic
def call_hint_ptr(typingctx, addr, ins, n_in, outs, n_out, params, n_params):
    """Call the C callback at address ``addr`` (signature of :data:`_CB_SIG`; pointers as ints)."""
    sig = types.int64(*([types.int64] * 7))

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        p64 = i64.as_pointer()
        fnty = ir.FunctionType(i64, [p64, i64, p64, i64, p64, i64])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(
            fn,
            [
                builder.inttoptr(args[1], p64),
                args[2],
                builder.inttoptr(args[3], p64),
                args[4],
                builder.inttoptr(args[5], p64),
                args[6],
            ],
        )

    return sig, codegen


class NumbaHint:
    """A user hint run inside the numba interpreter (see the module docstring for the contract)."""

    def __init__(self, fn: Callable, name: str | None = None):
        self.name = name or getattr(fn, "__qualname__", repr(fn))
        # a dispatcher passed in keeps its own options (e.g. cache=True from a module file)
        self.kernel = fn if isinstance(fn, CPUDispatcher) else njit(nogil=True)(fn)
        self._cb = None

    @property
    def address(self) -> int:
        """Address of the C callback (compiled on first use; not cached on disk)."""
        if self._cb is None:
            kernel = self.kernel

            def callback(ip, n_in, op, n_out, pp, n_par):
                kernel(carray(ip, (n_in, 4)), carray(op, (n_out, 4)), carray(pp, (n_par,)))
                return 0

            self._cb = cfunc(_CB_SIG, nogil=True)(callback)
        return self._cb.address

    def __repr__(self) -> str:
        return f"NumbaHint({self.name})"


def numba_hint(fn: Callable | None = None, *, name: str | None = None):
    """Decorator: make ``fn(ins, outs, params)`` a :class:`NumbaHint`."""
    if fn is None:
        return lambda f: NumbaHint(f, name)
    return NumbaHint(fn, name)


class PyHint:
    """A user hint evaluated in Python: ``fn(inputs, params) -> sequence of n_out ints``."""

    def __init__(self, fn: Callable[[list[int], tuple[int, ...]], Sequence[int]], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", repr(fn))

    def __call__(self, inputs: list[int], params: tuple[int, ...]) -> Sequence[int]:
        return self.fn(inputs, params)

    def __repr__(self) -> str:
        return f"PyHint({self.name})"


def as_hint(fn) -> NumbaHint | PyHint:
    """A NumbaHint or PyHint as is; any other callable becomes a PyHint."""
    if isinstance(fn, (NumbaHint, PyHint)):
        return fn
    if callable(fn):
        return PyHint(fn)
    raise TypeError(f"not a hint: {fn!r}")

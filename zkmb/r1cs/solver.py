"""Numba kernels of the constraint system: the witness-program interpreter and the constraint check.

Sparse rows are CSR triples ``(ptr, col, coef)``: row ``i`` is ``sum coef[j] * w[col[j]]`` over
``ptr[i] <= j < ptr[i+1]``, coefficients ``(nnz, 4)`` uint64 Montgomery Fr.  The witness ``w`` is an
``(n_wires, 4)`` Montgomery array with ``w[0] = 1``.

The witness program is an ``(n, 4)`` int64 array of instructions ``(op, x, out, y)``:

* ``OP_MUL``   ``w[out] = A_x . w * B_x . w`` (the product constraint ``x`` itself);
* ``OP_INV``   ``w[out] = 1 / (L_x . w)`` (0 for 0), ``L`` the program's own LC pool;
* ``OP_DIV``   ``w[out] = (L_x . w) / (L_y . w)`` (0 when the divisor is 0);
* ``OP_BITS``  ``w[out + i]`` = bit ``i`` of the canonical value of ``L_x . w``, ``i < y``;
* ``OP_NHINT`` user numba hint call ``x`` (a C callback, see :mod:`zkmb.r1cs.hints`);
* ``OP_PYHINT`` user Python hint call ``x``: the interpreter returns so Python can run it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..algebra.kernels.mont import (
    FR_MOD,
    FR_ONE,
    ZERO4,
    _lt_mod,
    eq,
    fr_add,
    fr_from_mont,
    fr_inv,
    fr_mul,
    fr_to_mont,
    load,
    store,
)
from .hints import call_hint_ptr

U64 = np.uint64
_jit = dict(cache=True, nogil=True)

OP_MUL = 0
OP_INV = 1
OP_DIV = 2
OP_BITS = 3
OP_NHINT = 4
OP_PYHINT = 5

ST_DONE = 0
ST_PYHINT = 1
ST_HINT_FAILED = 2
ST_HINT_BAD_OUTPUT = 3


@njit(inline="always", **_jit)
def eval_row(ptr, col, coef, i, w):
    """The value of sparse row i at the witness w (Montgomery)."""
    acc = ZERO4
    for j in range(ptr[i], ptr[i + 1]):
        c = load(coef, j)
        k = col[j]
        if k == 0:
            acc = fr_add(acc, c)
        elif eq(c, FR_ONE):
            acc = fr_add(acc, load(w, k))
        else:
            acc = fr_add(acc, fr_mul(c, load(w, k)))
    return acc


@njit(**_jit)
def _numba_hint(
    w,
    k,
    l_ptr,
    l_col,
    l_coef,
    call_fn,
    call_in_ptr,
    call_in,
    call_out,
    call_nout,
    call_par_ptr,
    call_par,
    fn_addr,
):
    i0 = call_in_ptr[k]
    n_in = call_in_ptr[k + 1] - i0
    ins = np.empty((n_in, 4), dtype=np.uint64)
    for j in range(n_in):
        store(ins, j, fr_from_mont(eval_row(l_ptr, l_col, l_coef, call_in[i0 + j], w)))
    n_out = call_nout[k]
    outs = np.zeros((max(n_out, 1), 4), dtype=np.uint64)
    params = call_par[call_par_ptr[k] : call_par_ptr[k + 1]].copy()
    addr = fn_addr[call_fn[k]]
    st = call_hint_ptr(
        addr, ins.ctypes.data, n_in, outs.ctypes.data, n_out, params.ctypes.data, params.shape[0]
    )
    if st != 0:
        return ST_HINT_FAILED
    o = call_out[k]
    for j in range(n_out):
        v = load(outs, j)
        if not _lt_mod(v, FR_MOD):
            return ST_HINT_BAD_OUTPUT
        store(w, o + j, fr_to_mont(v))
    return ST_DONE


@njit(**_jit)
def run_program(
    w,
    instr,
    start,
    a_ptr,
    a_col,
    a_coef,
    b_ptr,
    b_col,
    b_coef,
    l_ptr,
    l_col,
    l_coef,
    call_fn,
    call_in_ptr,
    call_in,
    call_out,
    call_nout,
    call_par_ptr,
    call_par,
    fn_addr,
    row_a,
    row_b,
    row_known,
):
    """Run instructions from ``start``; returns (status, pc): ST_DONE, or where it stopped and why.

    Where ``row_known`` has rows (one per constraint), each product row ``x`` the program evaluates
    leaves ``A_x . w`` in ``row_a[x]``, ``B_x . w`` in ``row_b[x]`` and 1 in ``row_known[x]`` (see
    :func:`products_read_final_wires` for when those are the final witness's values)."""
    n = instr.shape[0]
    keep = row_known.shape[0] > 0
    for pc in range(start, n):
        op = instr[pc, 0]
        x = instr[pc, 1]
        out = instr[pc, 2]
        if op == OP_MUL:
            va = eval_row(a_ptr, a_col, a_coef, x, w)
            vb = eval_row(b_ptr, b_col, b_coef, x, w)
            store(w, out, fr_mul(va, vb))
            if keep:
                store(row_a, x, va)
                store(row_b, x, vb)
                row_known[x] = 1
        elif op == OP_BITS:
            v = fr_from_mont(eval_row(l_ptr, l_col, l_coef, x, w))
            nb = instr[pc, 3]
            for i in range(nb):
                if (v[i >> 6] >> U64(i & 63)) & U64(1):
                    store(w, out + i, FR_ONE)
                else:
                    store(w, out + i, ZERO4)
        elif op == OP_INV:
            store(w, out, fr_inv(eval_row(l_ptr, l_col, l_coef, x, w)))
        elif op == OP_DIV:
            num = eval_row(l_ptr, l_col, l_coef, x, w)
            den = eval_row(l_ptr, l_col, l_coef, instr[pc, 3], w)
            store(w, out, fr_mul(num, fr_inv(den)))
        elif op == OP_NHINT:
            st = _numba_hint(
                w,
                x,
                l_ptr,
                l_col,
                l_coef,
                call_fn,
                call_in_ptr,
                call_in,
                call_out,
                call_nout,
                call_par_ptr,
                call_par,
                fn_addr,
            )
            if st != ST_DONE:
                return st, pc
        else:
            return ST_PYHINT, pc
    return ST_DONE, n


@njit(**_jit)
def products_read_final_wires(instr, a_ptr, a_col, b_ptr, b_col, call_out, call_nout, n_wires, n_fixed):
    """Whether the A and B rows of every product instruction read only wires already written when it
    runs (wires below ``n_fixed``: the constant and the inputs, set before the program) and no wire is
    written twice: then the values the solver computes for those rows are those of the final witness."""
    written = np.zeros(n_wires, dtype=np.bool_)
    for k in range(min(n_fixed, n_wires)):
        written[k] = True
    for pc in range(instr.shape[0]):
        op = instr[pc, 0]
        x = instr[pc, 1]
        lo = instr[pc, 2]
        hi = lo + 1
        if op == OP_MUL:
            for j in range(a_ptr[x], a_ptr[x + 1]):
                if not written[a_col[j]]:
                    return False
            for j in range(b_ptr[x], b_ptr[x + 1]):
                if not written[b_col[j]]:
                    return False
        elif op == OP_BITS:
            hi = lo + instr[pc, 3]
        elif op == OP_NHINT or op == OP_PYHINT:
            lo = call_out[x]
            hi = lo + call_nout[x]
        for k in range(lo, hi):
            if k < 0 or k >= n_wires or written[k]:
                return False
            written[k] = True
    return True


@njit(**_jit)
def eval_rows(ptr, col, coef, rows, w):
    """Values (Montgomery) of the given sparse rows."""
    out = np.empty((rows.shape[0], 4), dtype=np.uint64)
    for i in range(rows.shape[0]):
        store(out, i, eval_row(ptr, col, coef, rows[i], w))
    return out


@njit(inline="always", **_jit)
def _row_ok(a_ptr, a_col, a_coef, b_ptr, b_col, b_coef, c_ptr, c_col, c_coef, w, i):
    va = eval_row(a_ptr, a_col, a_coef, i, w)
    vb = eval_row(b_ptr, b_col, b_coef, i, w)
    return eq(fr_mul(va, vb), eval_row(c_ptr, c_col, c_coef, i, w))


@njit(parallel=True, **_jit)
def check_rows(a_ptr, a_col, a_coef, b_ptr, b_col, b_coef, c_ptr, c_col, c_coef, w, ok):
    """ok[i] = (A_i . w) * (B_i . w) == C_i . w for every row i (threads over rows)."""
    for i in prange(ok.shape[0]):
        ok[i] = _row_ok(a_ptr, a_col, a_coef, b_ptr, b_col, b_coef, c_ptr, c_col, c_coef, w, i)


@njit(**_jit)
def check_rows_serial(a_ptr, a_col, a_coef, b_ptr, b_col, b_coef, c_ptr, c_col, c_coef, w, ok):
    """check_rows on one thread (small systems: no thread start-up or barrier cost)."""
    for i in range(ok.shape[0]):
        ok[i] = _row_ok(a_ptr, a_col, a_coef, b_ptr, b_col, b_coef, c_ptr, c_col, c_coef, w, i)


@njit(**_jit)
def sort_rows(ptr, col, ids):
    """Sort each row's terms by column (in place, moving ``ids`` along); False if a row repeats a column."""
    ok = True
    for i in range(ptr.shape[0] - 1):
        lo = ptr[i]
        hi = ptr[i + 1]
        if hi - lo <= 24:
            for j in range(lo + 1, hi):
                c = col[j]
                d = ids[j]
                k = j - 1
                while k >= lo and col[k] > c:
                    col[k + 1] = col[k]
                    ids[k + 1] = ids[k]
                    k -= 1
                col[k + 1] = c
                ids[k + 1] = d
        else:
            order = np.argsort(col[lo:hi], kind="mergesort")
            col[lo:hi] = col[lo:hi][order]
            ids[lo:hi] = ids[lo:hi][order]
        for j in range(lo + 1, hi):
            if col[j] == col[j - 1]:
                ok = False
    return ok


@njit(**_jit)
def all_below_r(a):
    """True if every row of an (n, 4) limb array is a canonical value below r."""
    for i in range(a.shape[0]):
        if not _lt_mod(load(a, i), FR_MOD):
            return False
    return True

"""AVX-512 IFMA: eight Fq or Fr multiplications at once, the G1/G2 batch-affine tree reduction and
the NTT stages on them.

The scalar Fq multiplication (:mod:`.mont`, 4 x 64-bit limbs) is bound by the one 64x64-bit
multiplier port: 36 products, 17.5 ns on this Xeon.  ``vpmadd52luq``/``vpmadd52huq`` multiply eight
pairs of 52-bit limbs per instruction on both 512-bit ports, so a Montgomery product of eight lanes
in radix 2^52 (five limbs, R' = 2^260, 105 of those instructions) costs 2.6 ns per element when the
lanes are independent (28 ns for one dependent 8-lane product), measured.

Layout ("lane vectors"): 40 uint64 at an offset of a 1-D array, limb k of lane l at ``8 k + l``,
every limb below 2^52, the array 64-byte aligned at every offset used (a 64-byte vector store that
straddles two cache lines is not forwarded to the next load: ten times slower chains).  Values are
Montgomery with R' = 2^260 and lazily reduced: a product of inputs below 16p is below 2p.

:func:`tree_reduce_v` is :func:`.curve.tree_reduce` with every generic pair addition done eight at
a time (G1, and G2 with its Fq2 coordinates as two lane vectors): points come in and go out as the
usual affine arrays (Montgomery R = 2^256, fully reduced); the special cases (infinity, P + P,
P + (-P)) stay scalar.  :func:`tree_reduce_any` picks it when the CPU has IFMA (``HAVE_IFMA``;
``ZKMB_NO_IFMA=1`` turns it off) and the scalar reduction otherwise.
"""

from __future__ import annotations

import os

import llvmlite.binding as llb
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..params import P, R
from .curve import (
    _point_ndim,
    aff_load,
    aff_store,
    f_inv_by_norm,
    f_norm,
    pair_den,
    pair_finish,
    tree_reduce,
)
from .intrinsics import sbb
from .mont import FQ_MOD, FR_MOD, fq_inv, fq_mul

U64 = np.uint64
_jit = dict(cache=True, nogil=True)

LIMBS = 5
LANES = 8
VEC = LIMBS * LANES
"""uint64 per lane vector."""
_MASK = (1 << 52) - 1


def _has_feature() -> bool:
    try:
        return bool(llb.get_host_cpu_features().get("avx512ifma", False))
    except RuntimeError:  # llvmlite cannot read the features on this host
        return False


HAVE_IFMA = _has_feature() and os.environ.get("ZKMB_NO_IFMA", "") != "1"
"""The host CPU has AVX-512 IFMA (and it is not turned off by ``ZKMB_NO_IFMA=1``)."""

# --------------------------------------------------------------------------- LLVM codegen

_I64 = ir.IntType(64)
_V = ir.VectorType(_I64, LANES)


def _splat(x: int) -> ir.Constant:
    return ir.Constant(_V, [ir.Constant(_I64, x)] * LANES)


def _ifma(builder, hi: bool):
    name = "llvm.x86.avx512.vpmadd52h.uq.512" if hi else "llvm.x86.avx512.vpmadd52l.uq.512"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V, [_V, _V, _V]), name)


def _vptr(context, builder, aryty, ary, off):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [off]), _V.as_pointer())


def _vload(builder, ptr) -> list:
    return [builder.load(builder.gep(ptr, [ir.Constant(_I64, k)]), align=64) for k in range(LIMBS)]


def _vstore(builder, ptr, limbs) -> None:
    for k in range(LIMBS):
        builder.store(limbs[k], builder.gep(ptr, [ir.Constant(_I64, k)]), align=64)


def _limbs(x: int) -> list[int]:
    """The 52-bit limbs of x (the top one takes what is left above 2^208)."""
    return [(x >> (52 * j)) & _MASK for j in range(LIMBS - 1)] + [x >> (52 * (LIMBS - 1))]


def _normalise(builder, r: list, signed: bool = False) -> list:
    """Carry each limb's bits above 52 into the next (arithmetic shifts where limbs may be negative)."""
    s52, mask = _splat(52), _splat(_MASK)
    shift = builder.ashr if signed else builder.lshr
    for j in range(LIMBS - 1):
        r[j + 1] = builder.add(r[j + 1], shift(r[j], s52))
        r[j] = builder.and_(r[j], mask)
    return r


def _mont_mul(builder, a: list, b: list, mod: int = P) -> list:
    """a * b / 2^260 mod ``mod`` (p or r), limbs normalised (operand scanning with one reduction step
    per limb of a)."""
    m52 = _limbs(mod)
    minv = (-pow(mod, -1, 1 << 52)) % (1 << 52)
    lo, hi = _ifma(builder, False), _ifma(builder, True)
    zero = _splat(0)
    s52 = _splat(52)
    t = [zero] * (LIMBS + 1)
    for i in range(LIMBS):
        for j in range(LIMBS):
            t[j] = builder.call(lo, [t[j], a[i], b[j]])
            t[j + 1] = builder.call(hi, [t[j + 1], a[i], b[j]])
        m = builder.call(lo, [zero, t[0], _splat(minv)])  # the low 52 bits of t0 * (-1/mod)
        for j in range(LIMBS):
            t[j] = builder.call(lo, [t[j], m, _splat(m52[j])])
            t[j + 1] = builder.call(hi, [t[j + 1], m, _splat(m52[j])])
        t = [builder.add(t[1], builder.lshr(t[0], s52)), *t[2:], zero]  # t0 = 0 mod 2^52: shift
    return _normalise(builder, t[:LIMBS])


def _sub_kp(builder, a: list, b: list, k: int, mod: int = P) -> list:
    """a + k mod - b with limbs normalised (b below k mod: the result is positive)."""
    kl = _limbs(k * mod)
    r = [builder.sub(builder.add(a[j], _splat(kl[j])), b[j]) for j in range(LIMBS)]
    return _normalise(builder, r, signed=True)


def _binary(op, doc: str):
    """An intrinsic ``f(out, io, a, ia, b, ib)``: out[io:] = op(a[ia:], b[ib:]) on lane vectors, where
    ``op(builder, a_limbs, b_limbs)`` emits the operation."""

    @intrinsic
    def f(typingctx, out, io, a, ia, b, ib):
        sig = types.void(out, io, a, ia, b, ib)

        def codegen(context, builder, signature, args):
            ty = signature.args
            va = _vload(builder, _vptr(context, builder, ty[2], args[2], args[3]))
            vb = _vload(builder, _vptr(context, builder, ty[4], args[4], args[5]))
            _vstore(builder, _vptr(context, builder, ty[0], args[0], args[1]), op(builder, va, vb))
            return context.get_dummy_value()

        return sig, codegen

    f.__doc__ = doc
    return f


vmul = _binary(
    lambda bd, a, b: _mont_mul(bd, a, b, P),
    "out[io:] = a[ia:] * b[ib:] / 2^260 mod p (lane vectors; inputs below 16p, the result below 2p).",
)
vsub2, vsub6, vsub8 = (
    _binary(
        lambda bd, a, b, k=k: _sub_kp(bd, a, b, k, P),
        f"out[io:] = a[ia:] + {k} p - b[ib:] (lane vectors; b below {k} p).",
    )
    for k in (2, 6, 8)
)
vadd = _binary(
    lambda bd, a, b: _add_norm(bd, a, b),
    "out[io:] = a[ia:] + b[ib:] (lane vectors, limbs normalised, not reduced).",
)


def _add_norm(builder, a: list, b: list) -> list:
    """a + b, limbs normalised (not reduced)."""
    return _normalise(builder, [builder.add(a[j], b[j]) for j in range(LIMBS)])


# --------------------------------------------------------------------------- lanes <-> Fq tuples


@intrinsic
def vreduce(typingctx, out, io, a, ia):
    """out[io:] = a[ia:] mod p, fully reduced (a below 8p)."""
    sig = types.void(out, io, a, ia)

    def codegen(context, builder, signature, args):
        ty = signature.args
        v = _vload(builder, _vptr(context, builder, ty[2], args[2], args[3]))
        for k in (4, 2, 1):
            v = _cond_sub(builder, v, k, P)
        _vstore(builder, _vptr(context, builder, ty[0], args[0], args[1]), v)
        return context.get_dummy_value()

    return sig, codegen


_S12, _S16, _S24, _S28, _S36, _S40, _S52 = (U64(s) for s in (12, 16, 24, 28, 36, 40, 52))
_M52 = U64(_MASK)


def _vec_const(x: int) -> np.ndarray:
    v = np.zeros(VEC, dtype=np.uint64)
    for k, limb in enumerate(_limbs(x)):
        v[8 * k : 8 * k + 8] = limb
    return v


_CONSTS = np.concatenate(
    [_vec_const(pow(2, 264, P)), _vec_const(pow(2, 256, P)), _vec_const(pow(2, 268, P)), _vec_const(0)]
)
"""Lane vectors of 2^264, 2^256 and 2^268 mod p and of zero.  With M(a, b) = a b / 2^260: M(x 2^256,
2^264) = x 2^260 (R = 2^256 -> R' = 2^260), M(x 2^260, 2^256) = x 2^256 (back), M(x 2^256, 2^268) =
x 2^264 (the inverses' form, see :func:`_block_g1`)."""
N_CONSTS = 4


@njit(inline="always", **_jit)
def lane_in(buf, off, lane, v):
    """Lane ``lane`` of the vector at ``off`` = the Fq element v (4 x 64-bit limbs)."""
    buf[off + lane] = v[0] & _M52
    buf[off + 8 + lane] = (v[0] >> _S52) | ((v[1] << _S12) & _M52)
    buf[off + 16 + lane] = (v[1] >> _S40) | ((v[2] << _S24) & _M52)
    buf[off + 24 + lane] = (v[2] >> _S28) | ((v[3] << _S36) & _M52)
    buf[off + 32 + lane] = v[3] >> _S16


@njit(inline="always", **_jit)
def lane_out(buf, off, lane):
    """The Fq element in lane ``lane`` of the vector at ``off`` (below 2p), fully reduced."""
    return lane_out_mod(buf, off, lane, FQ_MOD)


def _i64(x: int) -> ir.Constant:
    return ir.Constant(_I64, x)


@intrinsic
def vgather(typingctx, out, io, src, pos, ip, stride, coff):
    """out[io:] = the lane vector of eight Fq elements (4 x 64-bit limbs each): lane l takes the one at
    flat offset ``pos[ip + l] * stride + coff`` of the C-contiguous uint64 array ``src`` (a coordinate of
    point pos[ip + l]).  Scalar loads, the 64 -> 52-bit limb split on whole vectors."""
    if getattr(src, "layout", "") != "C" or getattr(pos, "layout", "") != "C":
        return None
    sig = types.void(out, types.intp, src, pos, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        ty = signature.args
        sdata = context.make_array(ty[2])(context, builder, args[2]).data
        pdata = context.make_array(ty[3])(context, builder, args[3]).data
        ip, stride, coff = args[4], args[5], args[6]
        w = [_splat(0)] * 4
        for lane in range(LANES):
            p = builder.load(builder.gep(pdata, [builder.add(ip, _i64(lane))]))
            base = builder.add(builder.mul(p, stride), coff)
            for k in range(4):
                v = builder.load(builder.gep(sdata, [builder.add(base, _i64(k))]))
                w[k] = builder.insert_element(w[k], v, ir.Constant(ir.IntType(32), lane))
        mask = _splat(_MASK)
        shl, shr, or_, and_ = builder.shl, builder.lshr, builder.or_, builder.and_
        limbs = [
            and_(w[0], mask),
            or_(shr(w[0], _splat(52)), and_(shl(w[1], _splat(12)), mask)),
            or_(shr(w[1], _splat(40)), and_(shl(w[2], _splat(24)), mask)),
            or_(shr(w[2], _splat(28)), and_(shl(w[3], _splat(36)), mask)),
            shr(w[3], _splat(16)),
        ]
        _vstore(builder, _vptr(context, builder, ty[0], args[0], args[1]), limbs)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vscatter(typingctx, dst, pos, ip, stride, coff, n, buf, ib):
    """The inverse of :func:`vgather` for the first ``n`` lanes: the lane vector at buf[ib:] (limbs below
    2^52 except the top one, value below 2^256) goes as 4 x 64-bit limbs, as is, to flat offset
    ``pos[ip + l] * stride + coff`` of ``dst``, lane l < n."""
    if getattr(dst, "layout", "") != "C" or getattr(pos, "layout", "") != "C":
        return None
    sig = types.void(dst, pos, types.intp, types.intp, types.intp, types.intp, buf, types.intp)

    def codegen(context, builder, signature, args):
        ty = signature.args
        ddata = context.make_array(ty[0])(context, builder, args[0]).data
        pdata = context.make_array(ty[1])(context, builder, args[1]).data
        ip, stride, coff, n = args[2], args[3], args[4], args[5]
        v = _vload(builder, _vptr(context, builder, ty[6], args[6], args[7]))
        shl, shr, or_ = builder.shl, builder.lshr, builder.or_
        w = [
            or_(v[0], shl(v[1], _splat(52))),
            or_(shr(v[1], _splat(12)), shl(v[2], _splat(40))),
            or_(shr(v[2], _splat(24)), shl(v[3], _splat(28))),
            or_(shr(v[3], _splat(36)), shl(v[4], _splat(16))),
        ]
        for lane in range(LANES):
            with builder.if_then(builder.icmp_signed("<", _i64(lane), n), likely=True):
                p = builder.load(builder.gep(pdata, [builder.add(ip, _i64(lane))]))
                base = builder.add(builder.mul(p, stride), coff)
                for k in range(4):
                    x = builder.extract_element(w[k], ir.Constant(ir.IntType(32), lane))
                    builder.store(x, builder.gep(ddata, [builder.add(base, _i64(k))]))
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always", **_jit)
def lane_out_mod(buf, off, lane, mod):
    """The element in lane ``lane`` of the vector at ``off`` (below 2 mod), fully reduced mod ``mod``."""
    l1 = buf[off + 8 + lane]
    l2 = buf[off + 16 + lane]
    l3 = buf[off + 24 + lane]
    w0 = buf[off + lane] | (l1 << _S52)
    w1 = (l1 >> _S12) | (l2 << _S40)
    w2 = (l2 >> _S24) | (l3 << _S28)
    w3 = (l3 >> _S36) | (buf[off + 32 + lane] << _S16)
    r0, b = sbb(w0, mod[0], U64(0))
    r1, b = sbb(w1, mod[1], b)
    r2, b = sbb(w2, mod[2], b)
    r3, b = sbb(w3, mod[3], b)
    if b:
        return (w0, w1, w2, w3)
    return (r0, r1, r2, r3)


@njit(**_jit)
def aligned_buffer(n):
    """A uint64 array of n elements starting on a 64-byte boundary."""
    raw = np.empty(n + LANES, dtype=np.uint64)
    skip = ((64 - raw.ctypes.data % 64) % 64) // 8
    return raw[skip : skip + n]


# --------------------------------------------------------------------------- tree reduction

BLOCK_CHUNKS = 256
"""Chunks of eight pairs per batch inversion: 2,048 pairs, 490 KB of lane vectors for G1 (980 KB for
G2), within L2.  Measured per G1 addition (one layer of 2^14 random points): 512 chunks 79-92 ns,
256: 72-80, 128: 73-78, 64: 76-77; inside the MSMs of a Q-64 or PAD-3 proof 256 and 512 are equal."""
PER_CHUNK = 12
"""Lane vectors per chunk (G2: x1, y1, x2, y2 of two coordinates each, the denominator's two, its norm
and the prefix product; G1 uses six)."""
TEMPS = 12


@njit(**_jit)
def _invert_lanes(buf, src_off, t, dst_off):
    """dst = 2^264 / src lane by lane (src below 2p, R' form, i.e. x 2^260: dst = 2^264 / x): one Fq
    inversion for eight."""
    cout = buf.shape[0] - (N_CONSTS - 1) * VEC
    cin = buf.shape[0] - 2 * VEC  # 2^268: the inverse comes out of the scalar code as 2^256 / x
    vmul(buf, t, buf, src_off, buf, cout)
    pref = np.empty((LANES, 4), dtype=np.uint64)
    acc = lane_out(buf, t, 0)
    for lane in range(LANES):
        if lane > 0:
            acc = fq_mul(acc, lane_out(buf, t, lane))
        for j in range(4):
            pref[lane, j] = acc[j]
    inv = fq_inv(acc)
    for lane in range(LANES - 1, -1, -1):
        v = lane_out(buf, t, lane)
        if lane > 0:
            prev = (pref[lane - 1, 0], pref[lane - 1, 1], pref[lane - 1, 2], pref[lane - 1, 3])
            lane_in(buf, t + VEC, lane, fq_mul(inv, prev))
            inv = fq_mul(inv, v)
        else:
            lane_in(buf, t + VEC, lane, inv)
    vmul(buf, dst_off, buf, t + VEC, buf, cin)


@njit(**_jit)
def _block_g1(src, dst, idx, pa, pb, k, buf, nch_max):
    """dst[idx[e]] = src[pa[e]] + src[pb[e]] for the k generic pairs (both finite, distinct x; e < k)
    that :func:`_generic_g1` passed: eight pairs per lane vector, one inversion for all.

    The coordinates stay in their Montgomery form x 2^256 (s form): only the denominators go to R'
    (d 2^260), and the lane inverses come out as 2^264 / d, so that M(dy 2^256, 2^264 / d) = lambda 2^260
    (R') and M(lambda 2^260, u 2^256) = lambda u 2^256: x3 and y3 come out in s form (three products
    fewer than converting every coordinate, measured 10 % of an addition)."""
    S = VEC * nch_max
    X1, Y1, X2, Y2, D, PRE = 0, S, 2 * S, 3 * S, 4 * S, 5 * S
    T = PER_CHUNK * S
    T1, T2, T3, INV = T, T + VEC, T + 2 * VEC, T + 3 * VEC
    CIN, COUT = buf.shape[0] - N_CONSTS * VEC, buf.shape[0] - (N_CONSTS - 1) * VEC
    nch = (k + LANES - 1) // LANES
    _pad_pairs(pa, pb, k)
    for ch in range(nch):
        o = ch * VEC
        e0 = ch * LANES
        vgather(buf, X1 + o, src, pa, e0, 8, 0)
        vgather(buf, Y1 + o, src, pa, e0, 8, 4)
        vgather(buf, X2 + o, src, pb, e0, 8, 0)
        vgather(buf, Y2 + o, src, pb, e0, 8, 4)
        vsub2(buf, D + o, buf, X2 + o, buf, X1 + o)  # s form, below 3p
        vmul(buf, D + o, buf, D + o, buf, CIN)  # R' form, below 2p
        if ch == 0:
            buf[PRE : PRE + VEC] = buf[D : D + VEC]
        else:
            vmul(buf, PRE + o, buf, PRE + o - VEC, buf, D + o)
    _invert_lanes(buf, PRE + (nch - 1) * VEC, T1, INV)
    for ch in range(nch - 1, -1, -1):
        o = ch * VEC
        if ch > 0:
            vmul(buf, T1, buf, INV, buf, PRE + o - VEC)  # 2^264 / den of this chunk
            vmul(buf, INV, buf, INV, buf, D + o)
        else:
            buf[T1 : T1 + VEC] = buf[INV : INV + VEC]
        vsub2(buf, T2, buf, Y2 + o, buf, Y1 + o)  # dy, s form, below 3p
        vmul(buf, T3, buf, T2, buf, T1)  # lambda, R' form
        vmul(buf, T2, buf, T3, buf, T3)
        vmul(buf, T2, buf, T2, buf, COUT)  # lambda^2, s form
        vsub2(buf, T2, buf, T2, buf, X1 + o)
        vsub2(buf, T2, buf, T2, buf, X2 + o)  # x3 = lambda^2 - x1 - x2, below 6p
        vsub6(buf, T1, buf, X1 + o, buf, T2)  # below 7p
        vmul(buf, T1, buf, T3, buf, T1)
        vsub2(buf, T1, buf, T1, buf, Y1 + o)  # y3 = lambda (x1 - x3) - y1, below 4p
        vreduce(buf, T2, buf, T2)
        vreduce(buf, T1, buf, T1)
        nl = min(LANES, k - ch * LANES)
        vscatter(dst, idx, ch * LANES, 8, 0, nl, buf, T2)
        vscatter(dst, idx, ch * LANES, 8, 4, nl, buf, T1)


@njit(**_jit)
def _block_g2(src, dst, idx, pa, pb, k, buf, nch_max):
    """:func:`_block_g1` for G2: Fq2 = Fq[u]/(u^2 + 1) coordinates as two lane vectors each, the
    batch inversion on the denominators' norms (1/d = conj(d) / N(d))."""
    S = VEC * nch_max
    X1a, X1b, Y1a, Y1b, X2a, X2b, Y2a, Y2b = 0, S, 2 * S, 3 * S, 4 * S, 5 * S, 6 * S, 7 * S
    D0, D1, NRM, PRE = 8 * S, 9 * S, 10 * S, 11 * S
    T = PER_CHUNK * S
    T1, T2, T3, T4, T5, T6, T7, T8 = (
        T,
        T + VEC,
        T + 2 * VEC,
        T + 3 * VEC,
        T + 4 * VEC,
        T + 5 * VEC,
        T + 6 * VEC,
        T + 7 * VEC,
    )
    INV = T + 8 * VEC
    CIN, COUT = buf.shape[0] - N_CONSTS * VEC, buf.shape[0] - (N_CONSTS - 1) * VEC
    ZERO = buf.shape[0] - VEC
    nch = (k + LANES - 1) // LANES
    _pad_pairs(pa, pb, k)
    for ch in range(nch):
        o = ch * VEC
        e0 = ch * LANES
        for r in range(4):  # x1, y1 of src[pa], then x2, y2 of src[pb]: two Fq each
            vgather(buf, (2 * r) * S + o, src, pa if r < 2 else pb, e0, 16, 8 * (r % 2))
            vgather(buf, (2 * r + 1) * S + o, src, pa if r < 2 else pb, e0, 16, 8 * (r % 2) + 4)
        vsub2(buf, D0 + o, buf, X2a + o, buf, X1a + o)  # s form, below 3p
        vsub2(buf, D1 + o, buf, X2b + o, buf, X1b + o)
        vmul(buf, D0 + o, buf, D0 + o, buf, CIN)  # R' form
        vmul(buf, D1 + o, buf, D1 + o, buf, CIN)
        vmul(buf, T1, buf, D0 + o, buf, D0 + o)
        vmul(buf, T2, buf, D1 + o, buf, D1 + o)
        vadd(buf, NRM + o, buf, T1, buf, T2)  # N(d) = d0^2 + d1^2, R' form, below 4p
        if ch == 0:
            buf[PRE : PRE + VEC] = buf[NRM : NRM + VEC]
        else:
            vmul(buf, PRE + o, buf, PRE + o - VEC, buf, NRM + o)
    _invert_lanes(buf, PRE + (nch - 1) * VEC, T1, INV)
    for ch in range(nch - 1, -1, -1):
        o = ch * VEC
        if ch > 0:
            vmul(buf, T1, buf, INV, buf, PRE + o - VEC)  # 2^264 / N(d) of this chunk
            vmul(buf, INV, buf, INV, buf, NRM + o)
        else:
            buf[T1 : T1 + VEC] = buf[INV : INV + VEC]
        vmul(buf, T2, buf, D0 + o, buf, T1)  # 2^264 / d = (d0, -d1) 2^264 / N(d)
        vmul(buf, T3, buf, D1 + o, buf, T1)
        vsub2(buf, T3, buf, ZERO, buf, T3)
        vsub2(buf, T4, buf, Y2a + o, buf, Y1a + o)  # dy, s form, below 3p
        vsub2(buf, T5, buf, Y2b + o, buf, Y1b + o)
        # lambda = dy / d in R' form: (l0, l1) in (T6, T7)
        vmul(buf, T6, buf, T4, buf, T2)
        vmul(buf, T1, buf, T5, buf, T3)
        vsub2(buf, T6, buf, T6, buf, T1)  # below 4p
        vmul(buf, T7, buf, T4, buf, T3)
        vmul(buf, T1, buf, T5, buf, T2)
        vadd(buf, T7, buf, T7, buf, T1)  # below 4p
        # lambda^2 = (l0^2 - l1^2, 2 l0 l1) to s form, then x3 = lambda^2 - x1 - x2 in (T2, T3), below 6p
        vmul(buf, T2, buf, T6, buf, T6)
        vmul(buf, T1, buf, T7, buf, T7)
        vsub2(buf, T2, buf, T2, buf, T1)
        vmul(buf, T3, buf, T6, buf, T7)
        vadd(buf, T3, buf, T3, buf, T3)
        vmul(buf, T2, buf, T2, buf, COUT)
        vmul(buf, T3, buf, T3, buf, COUT)
        vsub2(buf, T2, buf, T2, buf, X1a + o)
        vsub2(buf, T2, buf, T2, buf, X2a + o)
        vsub2(buf, T3, buf, T3, buf, X1b + o)
        vsub2(buf, T3, buf, T3, buf, X2b + o)
        # u = x1 - x3 (below 7p); y3 = lambda u - y1 in (T4, T5), s form, below 6p
        vsub6(buf, T4, buf, X1a + o, buf, T2)
        vsub6(buf, T5, buf, X1b + o, buf, T3)
        vmul(buf, T8, buf, T6, buf, T4)
        vmul(buf, T1, buf, T7, buf, T5)
        vsub2(buf, T8, buf, T8, buf, T1)
        vmul(buf, T1, buf, T6, buf, T5)
        vmul(buf, T5, buf, T7, buf, T4)
        vadd(buf, T5, buf, T5, buf, T1)
        vsub2(buf, T4, buf, T8, buf, Y1a + o)
        vsub2(buf, T5, buf, T5, buf, Y1b + o)
        for v in (T2, T3, T4, T5):
            vreduce(buf, v, buf, v)
        nl = min(LANES, k - ch * LANES)
        vscatter(dst, idx, ch * LANES, 16, 0, nl, buf, T2)
        vscatter(dst, idx, ch * LANES, 16, 4, nl, buf, T3)
        vscatter(dst, idx, ch * LANES, 16, 8, nl, buf, T4)
        vscatter(dst, idx, ch * LANES, 16, 12, nl, buf, T5)


@njit(inline="always", **_jit)
def _pad_pairs(pa, pb, k):
    """Fill the lanes after the k-th of the last chunk with its first pair (valid pairs: the batch
    inversion never sees a zero; their results are not stored)."""
    e0 = (k // LANES) * LANES
    if e0 == k:
        return
    for e in range(k, e0 + LANES):
        pa[e] = pa[e0]
        pb[e] = pb[e0]


@njit(inline="always", **_jit)
def _generic_g1(src, i, j):
    """The pair (src[i], src[j]) of a G1 array (n, 2, 4) is generic (distinct x, both finite: not all
    zeros): the lanes add it (True); else the scalar path does (False).  Straight-line reads and one OR
    per point: 5 ns a pair, where loops with early returns over the limbs took 35 ns (measured)."""
    if (
        src[i, 0, 0] == src[j, 0, 0]
        and src[i, 0, 1] == src[j, 0, 1]
        and src[i, 0, 2] == src[j, 0, 2]
        and src[i, 0, 3] == src[j, 0, 3]
    ):
        return False
    fi = src[i, 0, 0] | src[i, 0, 1] | src[i, 0, 2] | src[i, 0, 3]
    fi |= src[i, 1, 0] | src[i, 1, 1] | src[i, 1, 2] | src[i, 1, 3]
    fj = src[j, 0, 0] | src[j, 0, 1] | src[j, 0, 2] | src[j, 0, 3]
    fj |= src[j, 1, 0] | src[j, 1, 1] | src[j, 1, 2] | src[j, 1, 3]
    return fi != 0 and fj != 0


@njit(inline="always", **_jit)
def _or_limbs2(src, i):
    """The OR of every limb of point i of a G2 array (n, 2, 2, 4): zero only at infinity."""
    acc = src[i, 0, 0, 0] | src[i, 0, 0, 1] | src[i, 0, 0, 2] | src[i, 0, 0, 3]
    acc |= src[i, 0, 1, 0] | src[i, 0, 1, 1] | src[i, 0, 1, 2] | src[i, 0, 1, 3]
    acc |= src[i, 1, 0, 0] | src[i, 1, 0, 1] | src[i, 1, 0, 2] | src[i, 1, 0, 3]
    acc |= src[i, 1, 1, 0] | src[i, 1, 1, 1] | src[i, 1, 1, 2] | src[i, 1, 1, 3]
    return acc


@njit(inline="always", **_jit)
def _generic_g2(src, i, j):
    """:func:`_generic_g1` for G2 arrays (n, 2, 2, 4)."""
    if (
        src[i, 0, 0, 0] == src[j, 0, 0, 0]
        and src[i, 0, 0, 1] == src[j, 0, 0, 1]
        and src[i, 0, 0, 2] == src[j, 0, 0, 2]
        and src[i, 0, 0, 3] == src[j, 0, 0, 3]
        and src[i, 0, 1, 0] == src[j, 0, 1, 0]
        and src[i, 0, 1, 1] == src[j, 0, 1, 1]
        and src[i, 0, 1, 2] == src[j, 0, 1, 2]
        and src[i, 0, 1, 3] == src[j, 0, 1, 3]
    ):
        return False
    return _or_limbs2(src, i) != 0 and _or_limbs2(src, j) != 0


def _generic(src, i, j):
    raise NotImplementedError("numba only")


@overload(_generic, jit_options=_jit)
def _generic_any(src, i, j):
    if _point_ndim(src) == 1:
        return lambda src, i, j: _generic_g1(src, i, j)
    return lambda src, i, j: _generic_g2(src, i, j)


def _block(src, dst, idx, pa, pb, k, buf, nch_max):
    raise NotImplementedError("numba only")


@overload(_block, jit_options=_jit)
def _block_any(src, dst, idx, pa, pb, k, buf, nch_max):
    if _point_ndim(src) == 1:
        return lambda src, dst, idx, pa, pb, k, buf, nch_max: _block_g1(
            src, dst, idx, pa, pb, k, buf, nch_max
        )
    return lambda src, dst, idx, pa, pb, k, buf, nch_max: _block_g2(src, dst, idx, pa, pb, k, buf, nch_max)


@njit(**_jit)
def tree_reduce_v(src, dst, offsets, counts, nb):
    """:func:`.curve.tree_reduce` (G1 or G2 affine arrays, same contract: returns the array holding the
    sums, counts updated, src and dst clobbered) with every generic pair addition eight at a time on
    IFMA; the special cases (infinity, P + P, P + (-P)) are added one by one as there."""
    total = 0
    for g in range(nb):
        total += counts[g] >> 1
    nch_max = max(1, min(BLOCK_CHUNKS, (total + LANES - 1) // LANES))
    cap = nch_max * LANES
    buf = aligned_buffer(VEC * (PER_CHUNK * nch_max + TEMPS + N_CONSTS))
    buf[buf.shape[0] - N_CONSTS * VEC :] = _CONSTS
    idx = np.empty(cap, dtype=np.int64)  # the destination of each pair in the lanes
    pa = np.empty(cap, dtype=np.int64)  # its two points
    pb = np.empty(cap, dtype=np.int64)
    while True:
        npairs = 0
        for g in range(nb):
            npairs += counts[g] >> 1
        if npairs == 0:
            return src
        k = 0
        for g in range(nb):
            o = offsets[g]
            c = counts[g]
            h = c >> 1
            if c & 1:
                aff_store(dst, o + h, aff_load(src, o + c - 1))
            for t in range(h):
                i, j = o + 2 * t, o + 2 * t + 1
                if _generic(src, i, j):
                    idx[k] = o + t
                    pa[k] = i
                    pb[k] = j
                    k += 1
                    if k == cap:
                        _block(src, dst, idx, pa, pb, k, buf, nch_max)
                        k = 0
                    continue
                p = aff_load(src, i)
                q = aff_load(src, j)
                den, case = pair_den(p, q)
                if case == 3:  # doubling: rare, one inversion of its own
                    ninv = fq_inv(f_norm(den))
                    aff_store(dst, o + t, pair_finish(p, q, case, f_inv_by_norm(den, ninv)))
                else:  # infinity involved or P + (-P): the denominator is one
                    aff_store(dst, o + t, pair_finish(p, q, case, den))
            counts[g] = (c + 1) >> 1
        if k:
            _block(src, dst, idx, pa, pb, k, buf, nch_max)
        src, dst = dst, src


def tree_reduce_any(src, dst, pre, nrms, offsets, counts, nb):
    """:func:`.curve.tree_reduce`, on IFMA where the CPU has it (numba-only dispatcher)."""
    raise NotImplementedError("tree_reduce_any is for numba-compiled callers")


@overload(tree_reduce_any, jit_options=_jit)
def _tree_reduce_any(src, dst, pre, nrms, offsets, counts, nb):
    if HAVE_IFMA and _point_ndim(src) in (1, 2):
        return lambda src, dst, pre, nrms, offsets, counts, nb: tree_reduce_v(src, dst, offsets, counts, nb)
    return lambda src, dst, pre, nrms, offsets, counts, nb: tree_reduce(
        src, dst, pre, nrms, offsets, counts, nb
    )


# --------------------------------------------------------------------------- NTT stages over Fr


def _cond_sub(builder, v: list, k: int, mod: int) -> list:
    """v - k mod if that is not negative, else v (limbs normalised)."""
    kl = _limbs(k * mod)
    d = _normalise(builder, [builder.sub(v[j], _splat(kl[j])) for j in range(LIMBS)], signed=True)
    neg = builder.icmp_signed("<", d[LIMBS - 1], _splat(0))
    return [builder.select(neg, v[j], d[j]) for j in range(LIMBS)]


vmul_r = _binary(lambda bd, a, b: _mont_mul(bd, a, b, R), ":func:`vmul` over Fr (mod r).")


@intrinsic
def vbutterfly_r(typingctx, x, iu, iv, tw, iw):
    """(x[iu], x[iv]) <- (u + w v, u - w v) over Fr for eight butterflies (lane vectors, every value
    below 2r before and after; w = tw[iw:])."""
    sig = types.void(x, iu, iv, tw, iw)

    def codegen(context, builder, signature, args):
        ty = signature.args
        pu = _vptr(context, builder, ty[0], args[0], args[1])
        pv = _vptr(context, builder, ty[0], args[0], args[2])
        pw = _vptr(context, builder, ty[3], args[3], args[4])
        u = _vload(builder, pu)
        t = _mont_mul(builder, _vload(builder, pv), _vload(builder, pw), R)
        _vstore(builder, pu, _cond_sub(builder, _add_norm(builder, u, t), 2, R))
        _vstore(builder, pv, _cond_sub(builder, _sub_kp(builder, u, t, 2, R), 2, R))
        return context.get_dummy_value()

    return sig, codegen


def lanes_const_r(x: int) -> np.ndarray:
    """One lane vector holding the Fr integer x in every lane (64-byte aligned)."""
    out = aligned_buffer(VEC)
    out[:] = _vec_const(x % R)
    return out


CIN_R = 2**264
"""A product with this (mod r) takes a value from Montgomery R = 2^256 to R' = 2^260."""
COUT_R = 2**256
"""A product with this (mod r) takes a value from R' back to R."""


@njit(parallel=True, **_jit)
def to_lanes_r(x, out, mul):
    """out (lane vectors, R' form, below 2r) <- x ((n, 4) Fr, Montgomery R = 2^256) times ``mul``: one lane
    vector for all (``lanes_const_r(CIN_R)``: x itself), or one per vector of x (a table in R' form
    times 2^4, e.g. made by this function with ``lanes_const_r(2**268)``); n % 8 == 0."""
    per = mul.shape[0] > VEC
    for v in prange(x.shape[0] // LANES):
        o = v * VEC
        for lane in range(LANES):
            i = v * LANES + lane
            lane_in(out, o, lane, (x[i, 0], x[i, 1], x[i, 2], x[i, 3]))
        vmul_r(out, o, out, o, mul, o if per else 0)


@njit(parallel=True, **_jit)
def from_lanes_r(buf, x, mul):
    """x ((n, 4) Fr, Montgomery R = 2^256, fully reduced) <- buf (lane vectors below 2r) times the lane
    vector ``mul`` (``lanes_const_r(COUT_R)``: buf itself; ``COUT_R / n``: scaled by 1/n); buf clobbered."""
    for v in prange(x.shape[0] // LANES):
        o = v * VEC
        vmul_r(buf, o, buf, o, mul, 0)
        for lane in range(LANES):
            w = lane_out_mod(buf, o, lane, FR_MOD)
            i = v * LANES + lane
            x[i, 0], x[i, 1], x[i, 2], x[i, 3] = w[0], w[1], w[2], w[3]


def _shuffle(builder, v: list, idx: list[int]) -> list:
    mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [ir.Constant(ir.IntType(32), i) for i in idx])
    return [builder.shuffle_vector(x, x, mask) for x in v]


def _lane_stage(builder, x: list, ia: list[int], ib: list[int], w, top: list[int]) -> list:
    """One DIT stage inside the vector: lanes ia[l] and ib[l] are butterfly partners, w the twiddles
    (None: all one), ``top[l]`` whether lane l takes the sum (else the difference)."""
    a = _shuffle(builder, x, ia)
    b = _shuffle(builder, x, ib)
    t = b if w is None else _mont_mul(builder, b, w, R)
    plus = _cond_sub(builder, _add_norm(builder, a, t), 2, R)
    minus = _cond_sub(builder, _sub_kp(builder, a, t, 2, R), 2, R)
    sel = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [ir.Constant(ir.IntType(1), f) for f in top])
    return [builder.select(sel, plus[k], minus[k]) for k in range(LIMBS)]


@intrinsic
def vfirst3_r(typingctx, x, ix, w, iw):
    """The DIT stages of half-width 1, 2 and 4 on the eight elements of one lane vector (bit-reversed
    input order); w[iw:] holds two lane vectors: the twiddles of stage 2 (1, w4, 1, w4, ...) and of
    stage 4 (1, w8, w8^2, w8^3, twice), R' form."""
    sig = types.void(x, ix, w, iw)

    def codegen(context, builder, signature, args):
        ty = signature.args
        px = _vptr(context, builder, ty[0], args[0], args[1])
        pw = _vptr(context, builder, ty[2], args[2], args[3])
        v = _vload(builder, px)
        w2 = _vload(builder, pw)
        w4 = [builder.load(builder.gep(pw, [ir.Constant(_I64, LIMBS + k)]), align=64) for k in range(LIMBS)]
        v = _lane_stage(builder, v, [0, 0, 2, 2, 4, 4, 6, 6], [1, 1, 3, 3, 5, 5, 7, 7], None, [1, 0] * 4)
        v = _lane_stage(builder, v, [0, 1, 0, 1, 4, 5, 4, 5], [2, 3, 2, 3, 6, 7, 6, 7], w2, [1, 1, 0, 0] * 2)
        v = _lane_stage(builder, v, [0, 1, 2, 3] * 2, [4, 5, 6, 7] * 2, w4, [1] * 4 + [0] * 4)
        _vstore(builder, px, v)
        return context.get_dummy_value()

    return sig, codegen


@njit(parallel=True, **_jit)
def first3_lanes_r(buf, w):
    """:func:`vfirst3_r` on every lane vector of buf."""
    for v in prange(buf.shape[0] // VEC):
        vfirst3_r(buf, v * VEC, w, 0)


@njit(parallel=True, **_jit)
def stage_lanes_r(buf, twl, s):
    """The DIT stage of half-width m = 2^s (m >= 8) on lane vectors: butterflies eight at a time,
    twiddles ``twl`` (lane vectors of the twiddle table, vector k = tw[8k : 8k + 8])."""
    m = 1 << s
    nvec = buf.shape[0] // VEC
    for t in prange(nvec // 2):
        e = t * LANES
        j = e & (m - 1)
        i = ((e >> s) << (s + 1)) + j
        vbutterfly_r(buf, (i // LANES) * VEC, ((i + m) // LANES) * VEC, twl, ((m + j) // LANES) * VEC)

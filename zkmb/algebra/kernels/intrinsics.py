"""LLVM intrinsics that numba lacks: 64x64->128-bit multiply-accumulate and carry chains.

numba has no 128-bit integer type; these emit LLVM ``i128`` arithmetic directly, which the
backend lowers to ``mul``/``mulx`` and ``adc`` sequences.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_U64x2 = types.UniTuple(types.uint64, 2)


def _pair(context, builder, sig, wide):
    i64 = ir.IntType(64)
    lo = builder.trunc(wide, i64)
    hi = builder.trunc(builder.lshr(wide, ir.Constant(wide.type, 64)), i64)
    return context.make_tuple(builder, sig.return_type, [lo, hi])


@intrinsic
def mac(typingctx, a, b, c, d):
    """(lo, hi) of a + b*c + d, exact in 128 bits (all operands uint64)."""
    sig = _U64x2(types.uint64, types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        a_, b_, c_, d_ = (builder.zext(v, i128) for v in args)
        wide = builder.add(builder.add(a_, builder.mul(b_, c_)), d_)
        return _pair(context, builder, signature, wide)

    return sig, codegen


@intrinsic
def mul_wide(typingctx, a, b):
    """(lo, hi) of a*b."""
    sig = _U64x2(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        wide = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return _pair(context, builder, signature, wide)

    return sig, codegen


@intrinsic
def adc(typingctx, a, b, carry):
    """(sum, carry_out) of a + b + carry, carry in {0, 1}."""
    sig = _U64x2(types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        a_, b_, c_ = (builder.zext(v, i128) for v in args)
        wide = builder.add(builder.add(a_, b_), c_)
        return _pair(context, builder, signature, wide)

    return sig, codegen


@intrinsic
def sbb(typingctx, a, b, borrow):
    """(a - b - borrow mod 2^64, borrow_out in {0, 1})."""
    sig = _U64x2(types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        a_, b_, c_ = (builder.zext(v, i128) for v in args)
        wide = builder.sub(builder.sub(a_, b_), c_)
        i64 = ir.IntType(64)
        lo = builder.trunc(wide, i64)
        # the high half is all ones exactly when the subtraction borrowed
        hi = builder.and_(builder.trunc(builder.lshr(wide, ir.Constant(i128, 64)), i64), ir.Constant(i64, 1))
        return context.make_tuple(builder, signature.return_type, [lo, hi])

    return sig, codegen

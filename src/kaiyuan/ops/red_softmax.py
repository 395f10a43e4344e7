"""ONNX Softmax, LogSoftmax, Hardmax (opset 13: one axis), LpNormalization, MeanVarianceNormalization.

Each normalises x over some dims and writes a tensor of x's shape:
    Softmax     exp(x - max) / sum(exp(x - max))          axis (default -1)
    LogSoftmax  x - max - log(sum(exp(x - max)))          axis (default -1)
    Hardmax     1 at the first max along axis, 0 elsewhere (NaN counts as the max, as numpy)
    LpNorm      x / ||x||_p along axis (default -1), p in {1, 2}; 0 where the norm is 0
    MVN         (x - mean) / (sqrt(E[x^2] - mean^2) + 1e-9) over axes (default [0, 2, 3])
dtypes: fp32, fp64, fp16, bf16 (fp16/bf16 computed in fp32, fp64 in fp64; LpNormalization: no
bf16 before opset 22, as ONNX; opset 22 is registered too).
Kernels: Softmax over the last axis is activations.softmax_kernel (the row kernel of
ky.ops.softmax). Everything else is normalize_kernel over red_layout's kept x reduced view: a
statistics pass (max, then the sum of exp(x - max) for the softmaxes; per-lane best value and index
for Hardmax; sums for the norms) then a write pass, both over BLOCK_R x BLOCK_I tiles, so a softmax
over a leading axis reads contiguous rows of the kept dim instead of one strided element at a time.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import UnsupportedError
from ._common import rows_view
from .activations import CHUNK, SINGLE_MAX, softmax_kernel
from .red_common import FLOATS, acc_type, begin, check_dtype, lowest, norm_axes, norm_axis, scalar_view
from .red_kernels import (SHAPE_ARGS, along_i, along_r, arg_scan, kept_cols, load_mask, new_tile, outer_add, outer_and,
                          unit)
from .red_layout import plan
from .schema import OpDef, TensorType, register

MODES = {"Softmax": 0, "LogSoftmax": 1, "Hardmax": 2, "Lp1": 3, "Lp2": 4, "MeanVarianceNormalization": 5}
NEG_INF = float("-inf")


@jit
def sum_stats(x_ptr, Q0, Q1, Q2, sxq0, sxq1, sxq2, cols, imask, SQUARE: kl.constexpr, ABS: kl.constexpr,
              ACC: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr, ROW: kl.constexpr):
    """Per output: (sum of x or |x|, sum of x*x) over every reduced element."""
    rows = kl.arange(0, BLOCK_R)
    s1 = new_tile(0, ACC, BLOCK_R, BLOCK_I, ROW)
    s2 = new_tile(0, ACC, BLOCK_R, BLOCK_I, ROW)
    for q0 in range(Q0):
        for q1 in range(Q1):
            p = x_ptr + q0 * sxq0 + q1 * sxq1
            for r in range(0, Q2, BLOCK_R):
                rr = r + rows
                x = kl.load(p + outer_add(rr * sxq2, cols, ROW), mask=load_mask(rr < Q2, imask, ROW), other=0).to(ACC)
                if ABS:
                    s1 += kl.abs(x)
                else:
                    s1 += x
                if SQUARE:
                    s2 += x * x
    return kl.sum(s1, axis=ROW), kl.sum(s2, axis=ROW)


@jit
def exp_stats(x_ptr, Q2, sxq2, cols, imask, ACC: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr,
              ROW: kl.constexpr):
    """Per output: (max made finite, sum of exp(x - max)) along Q2. Two passes: an online
    rescale would cost two exps per element, a second read of the row (from cache) costs less."""
    rows = kl.arange(0, BLOCK_R)
    m = new_tile(NEG_INF, ACC, BLOCK_R, BLOCK_I, ROW)
    for r in range(0, Q2, BLOCK_R):
        rr = r + rows
        x = kl.load(x_ptr + outer_add(rr * sxq2, cols, ROW), mask=load_mask(rr < Q2, imask, ROW),
                    other=NEG_INF)
        m = kl.maximum(m, x.to(ACC))
    top = kl.max(m, axis=ROW)
    top = kl.where(top == NEG_INF, 0.0, top)   # a row of -inf: exp(-inf - 0) = 0
    shift = along_i(top, ROW)
    l = new_tile(0, ACC, BLOCK_R, BLOCK_I, ROW)
    for r in range(0, Q2, BLOCK_R):
        rr = r + rows
        x = kl.load(x_ptr + outer_add(rr * sxq2, cols, ROW), mask=load_mask(rr < Q2, imask, ROW),
                    other=NEG_INF)
        l += kl.exp(x.to(ACC) - shift)
    return top, kl.sum(l, axis=ROW)


@jit(do_not_specialize=SHAPE_ARGS)
def normalize_kernel(x_ptr, y_ptr, O1, I, Q0, Q1, Q2, sxo0, sxo1, sxi, syo0, syo1, syi, sxq0, sxq1, sxq2,
                     syq0, syq1, syq2, N, MODE: kl.constexpr, ACC: kl.constexpr, WORST: kl.constexpr,
                     XC: kl.constexpr, XR: kl.constexpr, YC: kl.constexpr, YR: kl.constexpr,
                     ROW: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr):
    sxi, sxq2, syi, syq2 = unit(sxi, XC), unit(sxq2, XR), unit(syi, YC), unit(syq2, YR)
    pid = kl.program_id(0)
    o0 = pid // O1
    o1 = pid % O1
    ii = kl.program_id(1) * BLOCK_I + kl.arange(0, BLOCK_I)
    imask = ii < I
    x_ptr += o0 * sxo0 + o1 * sxo1
    y_ptr += o0 * syo0 + o1 * syo1
    xcols = kept_cols(ii, I, sxi, ROW)
    # statistics pass: per output a value a (and b), per MODE
    if MODE <= 1:   # softmaxes: a = max, b = sum of exp(x - max) (Q0 = Q1 = 1)
        a, b = exp_stats(x_ptr, Q2, sxq2, xcols, imask, ACC, BLOCK_R, BLOCK_I, ROW)
        if MODE == 1:
            a = a + kl.log(b)
    elif MODE == 2:   # hardmax: a = index of the first max
        a = arg_scan(x_ptr, Q2, sxq2, xcols, imask, False, False, ACC, WORST, True, BLOCK_R, BLOCK_I, ROW)
        b = a
    else:
        s1, s2 = sum_stats(x_ptr, Q0, Q1, Q2, sxq0, sxq1, sxq2, xcols, imask, MODE != 3, MODE == 3,
                           ACC, BLOCK_R, BLOCK_I, ROW)
        if MODE == 3:
            a = s1
            b = a
        elif MODE == 4:
            a = kl.sqrt(s2)
            b = a
        else:
            a = s1 / N
            b = kl.sqrt(kl.maximum(s2 / N - a * a, 0.0)) + 1e-9
    a = along_i(a, ROW)
    b = along_i(b, ROW)
    # write pass
    rows = kl.arange(0, BLOCK_R)
    ycols = ii * syi
    for q0 in range(Q0):
        for q1 in range(Q1):
            px = x_ptr + q0 * sxq0 + q1 * sxq1
            py = y_ptr + q0 * syq0 + q1 * syq1
            for r in range(0, Q2, BLOCK_R):
                rr = r + rows
                x = kl.load(px + outer_add(rr * sxq2, xcols, ROW), mask=load_mask(rr < Q2, imask, ROW), other=0).to(ACC)
                if MODE == 0:
                    y = kl.exp(x - a) / b
                elif MODE == 1:
                    y = x - a
                elif MODE == 2:
                    y = kl.where(along_r(rr, ROW) == a, 1.0, 0.0)
                elif MODE <= 4:
                    y = kl.where(a == 0.0, 0.0, x / a)
                else:
                    y = (x - a) / b
                kl.store(py + outer_add(rr * syq2, ycols, ROW), y, mask=outer_and(rr < Q2, imask, ROW))


def normalize_into(mode: str, input, axes, out) -> None:
    """out (x's shape, contiguous) = `mode` (a key of MODES) of input over `axes` (non-negative)."""
    ctx, (x,), (y,) = begin(mode, [input], [out])
    x, y = scalar_view(x), scalar_view(y)
    if x.shape and mode == "Softmax" and axes == [x.ndim - 1]:
        x2, (R0, R1, N), sx, sy = rows_view(mode, x, y, 1)
        if R0 * R1 * N:
            single = N <= SINGLE_MAX
            softmax_kernel[(R0 * R1,)](x2.obj, y.obj, R1, N, *sx, *sy, FP64=x.dtype.name == "fp64",
                                       BLOCK=N if single else CHUNK, SINGLE=single)
        return
    L = plan(mode, x, axes, y.strides, sort_reduced=mode == "MeanVarianceNormalization")
    if L.outputs * L.count == 0:
        return
    acc = acc_type(x.dtype.name)
    normalize_kernel[L.grid](L.x.obj, y.obj, *L.args(), L.count, MODE=MODES[mode], ACC=acc, WORST=lowest(acc),
                             **L.meta())


# ----------------------------------------------------------------------------- definitions
def _same_shape(op: str, dtypes: tuple):
    def infer(types, attrs, consts):
        check_dtype(op, types[0], dtypes)
        _op_axes(op, attrs, types[0].rank)
        return [TensorType(types[0].dtype, tuple(types[0].shape))]
    return infer


def _op_axes(op: str, attrs, rank: int) -> list[int]:
    if op == "MeanVarianceNormalization":
        return norm_axes(op, attrs["axes"], rank)
    if op == "LpNormalization" and attrs["p"] not in (1, 2):
        raise UnsupportedError(f"LpNormalization: p={attrs['p']}", hint="ONNX defines p = 1 or 2")
    return [norm_axis(op, attrs["axis"], rank)] if rank else []


def _run(op: str):
    def run(inputs, attrs, consts, outputs):
        x = inputs[0]
        axes = _op_axes(op, attrs, len(x.shape))
        mode = f"Lp{attrs['p']}" if op == "LpNormalization" else op
        normalize_into(mode, x, axes, outputs[0])
    return run


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    register(OpDef(_op, _same_shape(_op, FLOATS), _run(_op), since=13, attrs={"axis": -1}, dtypes=FLOATS,
                   doc="one axis (opset 13 semantics)"))
_LP = ("float32", "float64", "float16")
register(OpDef("LpNormalization", _same_shape("LpNormalization", _LP), _run("LpNormalization"), since=1, until=21,
               attrs={"axis": -1, "p": 2}, dtypes=_LP))
register(OpDef("LpNormalization", _same_shape("LpNormalization", FLOATS), _run("LpNormalization"), since=22,
               attrs={"axis": -1, "p": 2}, dtypes=FLOATS, doc="opset 22: bf16 too"))
register(OpDef("MeanVarianceNormalization", _same_shape("MeanVarianceNormalization", FLOATS),
               _run("MeanVarianceNormalization"), since=13, attrs={"axes": [0, 2, 3]}, dtypes=FLOATS))

"""ONNX CumSum (opset 11; fp16/bf16 from 14): running sums along one axis.

Definition
    y[..., j, ...] = sum of x[..., i, ...] for i <= j (exclusive=1: i < j; reverse=1: i >= j, or
    i > j when exclusive). The axis is input 1, a constant 0-d or 1-element int32/int64 tensor.
dtypes
    fp32, fp64, int32, int64, uint32, uint64; fp16, bf16 from opset 14 (summed in fp32, so the
    result is closer to the exact sum than onnx's reference, which sums in fp16).
Kernel
    scan_kernel over red_layout's view with the axis as the reduced dim: tiles of BLOCK_R positions
    along the axis by BLOCK_I kept elements (see red_kernels: ROW orientation); each chunk is
    scanned with kl.cumsum and
    offset by the running total (carry) of the chunks before it. reverse walks the axis from its
    end (loads and stores at Q2-1-j); exclusive stores element j's inclusive sum at j+1 and a 0
    at the first position, so no subtraction rounds the result.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError
from .red_common import FLOATS, INTS32_64, acc_type, begin, check_dtype, const_ints, norm_axis, scalar_view
from .red_kernels import SHAPE_ARGS, along_i, kept_cols, load_mask, outer_add, outer_and, unit
from .red_layout import plan
from .schema import OpDef, TensorType, register


@jit(do_not_specialize=SHAPE_ARGS)
def scan_kernel(x_ptr, y_ptr, O1, I, Q0, Q1, Q2, sxo0, sxo1, sxi, syo0, syo1, syi, sxq0, sxq1, sxq2,
                syq0, syq1, syq2, EXCLUSIVE: kl.constexpr, REVERSE: kl.constexpr, ACC: kl.constexpr,
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
    rows = kl.arange(0, BLOCK_R)
    carry = along_i(kl.zeros((BLOCK_I,), ACC), ROW)
    for r in range(0, Q2, BLOCK_R):
        j = r + rows                       # position in scan order
        if REVERSE:
            pos = Q2 - 1 - j
            nxt = pos - 1
        else:
            pos = j
            nxt = pos + 1
        m = outer_and(j < Q2, imask, ROW)
        x = kl.load(x_ptr + outer_add(pos * sxq2, xcols, ROW), mask=load_mask(j < Q2, imask, ROW), other=0).to(ACC)
        inc = kl.cumsum(x, axis=ROW) + carry
        if EXCLUSIVE:
            kl.store(y_ptr + outer_add(nxt * syq2, ii * syi, ROW), inc, mask=outer_and(j + 1 < Q2, imask, ROW))
        else:
            kl.store(y_ptr + outer_add(pos * syq2, ii * syi, ROW), inc, mask=m)
        carry += along_i(kl.sum(x, axis=ROW), ROW)
    if EXCLUSIVE:
        if REVERSE:
            first = Q2 - 1
        else:
            first = 0
        kl.store(y_ptr + first * syq2 + ii * syi, kl.zeros((BLOCK_I,), ACC), mask=imask & (Q2 > 0))


def cumsum_into(input, axis: int, exclusive: bool, reverse: bool, out) -> None:
    """out (x's shape, contiguous) = running sums of input along `axis` (non-negative)."""
    ctx, (x,), (y,) = begin("CumSum", [input], [out])
    x, y = scalar_view(x), scalar_view(y)
    L = plan("CumSum", x, [axis], y.strides)
    if L.outputs * L.count == 0:
        return
    scan_kernel[L.grid](L.x.obj, y.obj, *L.args(), EXCLUSIVE=bool(exclusive), REVERSE=bool(reverse),
                        ACC=acc_type(x.dtype.name), **L.meta())


def _axis(types, consts) -> int:
    v = const_ints("CumSum", consts, types, 1, "axis")
    if v is None or len(v) != 1:
        raise ArgumentError("CumSum: axis must be a 0-d (or 1-element) integer tensor")
    return norm_axis("CumSum", v[0], types[0].rank)


def _cumsum_def(since: int, until: int, dtypes: tuple) -> OpDef:
    def infer(types, attrs, consts):
        check_dtype("CumSum", types[0], dtypes)
        _axis(types, consts)
        return [TensorType(types[0].dtype, tuple(types[0].shape))]

    def run(inputs, attrs, consts, outputs):
        types = [TensorType(a.dtype, tuple(a.shape)) for a in inputs]
        cumsum_into(inputs[0], _axis(types, consts), attrs["exclusive"], attrs["reverse"], outputs[0])

    return OpDef("CumSum", infer, run, since=since, until=until, inputs=(2, 2), value_inputs=(1,),
                 attrs={"exclusive": 0, "reverse": 0}, dtypes=dtypes)


register(_cumsum_def(11, 13, ("float32", "float64") + INTS32_64))
register(_cumsum_def(14, 10**9, FLOATS + INTS32_64))

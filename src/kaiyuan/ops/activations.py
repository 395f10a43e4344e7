"""`ky.ops.softmax`, `ky.ops.gelu`, `ky.ops.silu` (torch.nn.functional's names and arguments).

Definition
    softmax(input, dim=-1): exp(x - max) / sum(exp(x - max)) along `dim`; same shape and dtype.
    gelu(input, approximate="none"): x * Phi(x) (erf form); approximate="tanh" is
        0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    silu(input): x * sigmoid(x).
dtypes
    fp32, fp16, bf16 (computed in fp32, one rounding at the store), fp64 (computed in fp64).
Kernels
    Row kernels: the reduced dim (softmax) or the last dim (gelu, silu) is the column dim, all
    other dims fold into at most two row dims through their strides, so a permuted or strided
    input is read in place (and a layout that does not fold is copied once).
    softmax: one program per row; rows up to 8192 elements are one tile (read once, written
    once), longer rows use an online max/sum over 4096-element chunks then a write pass.
    gelu/silu: grid (rows, column blocks of 1024). No tuning.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import Context, check_dtype, collapse, rows_view
from .norms import to_compute

DTYPES = ("fp32", "fp64", "fp16", "bf16")
SINGLE_MAX = 8192
CHUNK = 4096
EW_BLOCK = 1024
NEG_INF = float("-inf")


@jit
def softmax_kernel(x_ptr, y_ptr, R1, N, sx0, sx1, sxc, sy0, sy1, syc,
                   FP64: kl.constexpr, BLOCK: kl.constexpr, SINGLE: kl.constexpr):
    row = kl.program_id(0)
    r0 = row // R1
    r1 = row % R1
    x_ptr += r0 * sx0 + r1 * sx1
    y_ptr += r0 * sy0 + r1 * sy1
    cols = kl.arange(0, BLOCK)
    if SINGLE:
        mask = cols < N
        x = to_compute(kl.load(x_ptr + cols * sxc, mask=mask, other=NEG_INF), FP64)
        e = kl.exp(x - kl.max(x, axis=0))
        kl.store(y_ptr + cols * syc, e / kl.sum(e, axis=0), mask=mask)
    else:
        # online: per lane a running max m and a sum l of exp(x - m)
        m = to_compute(kl.full((BLOCK,), NEG_INF, kl.float32), FP64)
        l = to_compute(kl.zeros((BLOCK,), kl.float32), FP64)
        for off in range(0, N, BLOCK):
            c = off + cols
            x = to_compute(kl.load(x_ptr + c * sxc, mask=c < N, other=NEG_INF), FP64)
            m_new = kl.maximum(m, x)
            m_safe = kl.where(m_new == NEG_INF, 0.0, m_new)
            l = l * kl.exp(m - m_safe) + kl.exp(x - m_safe)
            m = m_new
        row_max = kl.max(m, axis=0)
        total = kl.sum(l * kl.exp(m - row_max), axis=0)
        for off in range(0, N, BLOCK):
            c = off + cols
            mask = c < N
            x = to_compute(kl.load(x_ptr + c * sxc, mask=mask, other=NEG_INF), FP64)
            kl.store(y_ptr + c * syc, kl.exp(x - row_max) / total, mask=mask)


@jit
def pointwise_kernel(x_ptr, y_ptr, R1, N, sx0, sx1, sxc, sy0, sy1, syc,
                     OP: kl.constexpr, FP64: kl.constexpr, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    r0 = row // R1
    r1 = row % R1
    cols = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    mask = cols < N
    x = to_compute(kl.load(x_ptr + r0 * sx0 + r1 * sx1 + cols * sxc, mask=mask, other=0), FP64)
    if OP == 0:  # gelu, erf form
        y = 0.5 * x * (1.0 + kl.erf(x * 0.7071067811865476))
    elif OP == 1:  # gelu, tanh approximation
        y = 0.5 * x * (1.0 + kl.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    else:  # silu
        y = x / (1.0 + kl.exp(-x))
    kl.store(y_ptr + r0 * sy0 + r1 * sy1 + cols * syc, y, mask=mask)


def _start(op: str, input):
    ctx = Context(op, (input,))
    x = ctx.operand(input, "input")
    check_dtype(op, x, DTYPES)
    return ctx, x, ctx.output(x.shape, x.dtype)


def softmax(input, dim=-1):
    """torch.nn.functional.softmax(input, dim): one pass over each row (see the module doc)."""
    ctx, x, y = _start("softmax", input)
    if x.ndim == 0:
        xs, ys = x.reshaped((1,), (0,)), y.reshaped((1,), (0,))
    else:
        if not -x.ndim <= dim < x.ndim:
            raise ArgumentError(f"softmax: dim {dim} is out of range for a {x.ndim}-d input")
        d = dim % x.ndim
        order = [i for i in range(x.ndim) if i != d] + [d]  # the reduced dim last
        xs = x.reshaped([x.shape[i] for i in order], [x.strides[i] for i in order])
        ys = y.reshaped([y.shape[i] for i in order], [y.strides[i] for i in order])
    x2, (R0, R1, N), sx, sy = rows_view("softmax", xs, ys, 1)
    if R0 * R1 * N:
        single = N <= SINGLE_MAX
        softmax_kernel[(R0 * R1,)](x2.obj, y.obj, R1, N, *sx, *sy, FP64=x.dtype.name == "fp64",
                                   BLOCK=N if single else CHUNK, SINGLE=single)
    return ctx.result(y)


def _pointwise(op: str, input, code: int):
    ctx, x, y = _start(op, input)
    if x.ndim == 0:
        x, y2 = x.reshaped((1,), (0,)), y.reshaped((1,), (0,))
    else:
        y2 = y
    whole = len(collapse(x.shape, x.strides, y2.strides)[0]) == 1  # one flat run: tile all of it
    x2, (R0, R1, N), sx, sy = rows_view(op, x, y2, x.ndim if whole else 1)
    if R0 * R1 * N:
        block = min(EW_BLOCK, N)
        pointwise_kernel[(R0 * R1, -(-N // block))](x2.obj, y.obj, R1, N, *sx, *sy, OP=code,
                                                    FP64=x.dtype.name == "fp64", BLOCK=block)
    return ctx.result(y)


def gelu(input, approximate="none"):
    """torch.nn.functional.gelu: erf form, or approximate="tanh"."""
    codes = {"none": 0, "tanh": 1}
    if approximate not in codes:
        raise UnsupportedError(f"gelu: approximate={approximate!r}", hint="use 'none' or 'tanh'")
    return _pointwise("gelu", input, codes[approximate])


def silu(input):
    """torch.nn.functional.silu: x * sigmoid(x)."""
    return _pointwise("silu", input, 2)

"""`ky.ops.layer_norm` and `ky.ops.rms_norm` (torch.nn.functional's names and arguments).

Definition
    layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5)
        normalises over the trailing dims `normalized_shape`: (x - mean) / sqrt(var + eps) * weight
        + bias (biased variance, as torch); weight and bias have shape normalized_shape.
    rms_norm(input, normalized_shape, weight=None, eps=None)
        x / sqrt(mean(x**2) + eps) * weight; eps=None is torch.finfo(input.dtype).eps, as torch.
dtypes
    fp32, fp16, bf16 (statistics in fp32, one rounding at the store), fp64 (all in fp64).
    weight/bias may have any of these dtypes.
Kernel
    One program per row (the leading dims fold into at most two row dims through their strides,
    so strided inputs are read in place). A row of up to 8192 elements is one tile: read once,
    written once; longer rows are walked in 4096-element chunks (sum pass, variance pass, write).
    No tuning: the tile is the row.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError
from ._common import Context, check_dtype, rows_view

DTYPES = ("fp32", "fp64", "fp16", "bf16")
SINGLE_MAX = 8192
CHUNK = 4096


@jit
def to_compute(x, FP64: kl.constexpr):
    """fp64 stays fp64; every other float computes in fp32."""
    if not FP64:
        x = x.to(kl.float32)
    return x


@jit
def norm_kernel(x_ptr, y_ptr, w_ptr, b_ptr, R1, N, eps, sx0, sx1, sxc, sy0, sy1, syc, sw, sb,
                RMS: kl.constexpr, HAS_W: kl.constexpr, HAS_B: kl.constexpr, FP64: kl.constexpr,
                BLOCK: kl.constexpr, SINGLE: kl.constexpr):
    row = kl.program_id(0)
    r0 = row // R1
    r1 = row % R1
    x_ptr += r0 * sx0 + r1 * sx1
    y_ptr += r0 * sy0 + r1 * sy1
    cols = kl.arange(0, BLOCK)
    if SINGLE:
        mask = cols < N
        x = to_compute(kl.load(x_ptr + cols * sxc, mask=mask, other=0), FP64)
        if RMS:
            xc = x
        else:
            xc = kl.where(mask, x - kl.sum(x, axis=0) / N, 0.0)
        rstd = 1.0 / kl.sqrt(kl.sum(xc * xc, axis=0) / N + eps)
        y = xc * rstd
        if HAS_W:
            y = y * to_compute(kl.load(w_ptr + cols * sw, mask=mask), FP64)
        if HAS_B:
            y = y + to_compute(kl.load(b_ptr + cols * sb, mask=mask), FP64)
        kl.store(y_ptr + cols * syc, y, mask=mask)
    else:
        mean = 0.0
        if not RMS:
            acc = to_compute(kl.zeros((BLOCK,), kl.float32), FP64)
            for off in range(0, N, BLOCK):
                c = off + cols
                acc += to_compute(kl.load(x_ptr + c * sxc, mask=c < N, other=0), FP64)
            mean = kl.sum(acc, axis=0) / N
        acc = to_compute(kl.zeros((BLOCK,), kl.float32), FP64)
        for off in range(0, N, BLOCK):
            c = off + cols
            x = to_compute(kl.load(x_ptr + c * sxc, mask=c < N, other=0), FP64)
            d = kl.where(c < N, x - mean, 0.0)
            acc += d * d
        rstd = 1.0 / kl.sqrt(kl.sum(acc, axis=0) / N + eps)
        for off in range(0, N, BLOCK):
            c = off + cols
            mask = c < N
            y = (to_compute(kl.load(x_ptr + c * sxc, mask=mask, other=0), FP64) - mean) * rstd
            if HAS_W:
                y = y * to_compute(kl.load(w_ptr + c * sw, mask=mask), FP64)
            if HAS_B:
                y = y + to_compute(kl.load(b_ptr + c * sb, mask=mask), FP64)
            kl.store(y_ptr + c * syc, y, mask=mask)


def _norm(op: str, input, normalized_shape, weight, bias, eps, rms: bool):
    ctx = Context(op, (input, weight, bias))
    x = ctx.operand(input, "input")
    check_dtype(op, x, DTYPES)
    ns = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if len(ns) == 0 or len(ns) > x.ndim or tuple(x.shape[x.ndim - len(ns):]) != ns:
        raise ArgumentError(f"{op}: normalized_shape {ns} is not the trailing dims of input {tuple(x.shape)}")
    params = []
    for t, name in ((weight, "weight"), (bias, "bias")):
        if t is None:
            params.append(None)
            continue
        p = ctx.operand(t, name)
        check_dtype(op, p, DTYPES)
        if tuple(p.shape) != ns:
            raise ArgumentError(f"{op}: {name} has shape {tuple(p.shape)}, expected normalized_shape {ns}")
        params.append(p)
    y = ctx.output(x.shape, x.dtype)
    if eps is None:
        eps = float(np.finfo(x.dtype.np).eps) if x.dtype.name != "bf16" else 2.0**-7
    x2, (R0, R1, N), sx, sy = rows_view(op, x, y, len(ns))
    pw = []
    for p in params:
        if p is None:
            pw.append((y.obj, 0))
        else:
            p2, _dims, s, _sy = rows_view(op, p, p, len(ns))  # a contiguous copy if it does not fold
            pw.append((p2.obj, s[2]))
    if R0 * R1 * N == 0:
        return ctx.result(y)
    single = N <= SINGLE_MAX
    kern = norm_kernel[(R0 * R1,)]
    kern(x2.obj, y.obj, pw[0][0], pw[1][0], R1, N, float(eps), *sx, *sy, pw[0][1], pw[1][1],
         RMS=rms, HAS_W=params[0] is not None, HAS_B=params[1] is not None, FP64=x.dtype.name == "fp64",
         BLOCK=N if single else CHUNK, SINGLE=single)
    return ctx.result(y)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.layer_norm: normalise over the trailing `normalized_shape` dims."""
    return _norm("layer_norm", input, normalized_shape, weight, bias, eps, rms=False)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """torch.nn.functional.rms_norm: x / sqrt(mean(x**2) + eps) * weight over the trailing dims."""
    return _norm("rms_norm", input, normalized_shape, weight, None, eps, rms=True)

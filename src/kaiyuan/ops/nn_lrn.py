"""ONNX LRN (local response normalisation across channels, opsets 13-21; AlexNet, GoogLeNet v1).

    y[n, c, ...] = x[n, c, ...] / (bias + alpha / size * sum(x[n, c', ...]^2 over
                   c' in [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)] inside [0, C)))^beta
Attributes alpha (1e-4), beta (0.75), bias (1.0), size (required, odd or even). X (N, C, ...)
of any rank >= 3. dtypes: fp32, fp16, bf16 (computed in fp32), fp64 (alpha, beta, bias rounded to fp32).
Kernel `lrn_kernel`: one program per (n, c) and BLOCK spatial positions; the channel window is
a run-time loop (size is an argument, not a specialisation), channels outside [0, C) masked.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError
from ._common import Operand, collapse, contiguous
from .nn_util import FLOATS, kind, np_names, out_type, require, shape_of, strides_of
from .norms import to_compute
from .schema import REQUIRED, OpDef, register

BLOCK = 256


@jit
def lrn_kernel(x_ptr, y_ptr, C, S, size, lo, alpha_n, beta, bias, sxn, sxc, sxs, FP64: kl.constexpr,
               BLOCK: kl.constexpr):
    # y (N, C, S) contiguous; x read through strides (spatial dims folded to one)
    nc = kl.program_id(0)
    n = nc // C
    c = nc % C
    s = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    s_ok = s < S
    base = x_ptr + n * sxn + s * sxs
    sq = to_compute(kl.zeros((BLOCK,), kl.float32), FP64)
    for j in range(0, size):
        cj = c - lo + j
        ok = s_ok & (cj >= 0) & (cj < C)
        v = to_compute(kl.load(base + kl.where(ok, cj, 0) * sxc, mask=ok, other=0), FP64)
        sq = sq + v * v
    x = to_compute(kl.load(base + c * sxc, mask=s_ok, other=0), FP64)
    d = bias + alpha_n * sq
    kl.store(y_ptr + nc * S + s, x / kl.exp(beta * kl.log(d)), mask=s_ok)


def _infer(types, attrs, consts):
    x = types[0]
    require("LRN", x.dtype, FLOATS, "X")
    if len(x.shape) < 3:
        raise ArgumentError(f"LRN: X must be (N, C, spatial...), got {tuple(x.shape)}")
    if int(attrs["size"]) < 1:
        raise ArgumentError(f"LRN: size {attrs['size']} must be positive")
    return [out_type(x.dtype, x.shape)]


def _run(inputs, attrs, consts, outputs):
    x, y = inputs[0], outputs[0]
    shape, st = shape_of(x), strides_of(x)
    N, C, S = shape[0], shape[1], int(np.prod(shape[2:]))
    if N * C * S == 0:
        return
    dims, (sst,) = collapse(shape[2:], st[2:])
    if len(dims) != 1:  # spatial dims that do not fold: a contiguous copy
        x = contiguous(Operand(x, shape, st, to_dtype(x.dtype), "X")).obj
        st, sst = strides_of(x), (1,)
    size = int(attrs["size"])
    fp64 = kind("LRN", x.dtype) == "fp64"
    b = min(BLOCK, 1 << max(0, (S - 1).bit_length()))
    # alpha / size, beta and bias are run-time fp32 arguments (no specialisation per layer);
    # an fp64 LRN computes in fp64 with them rounded to fp32 (relative error ~1e-7)
    lrn_kernel[(N * C, -(-S // b))](x, y, C, S, size, (size - 1) // 2, float(attrs["alpha"]) / size,
                                    float(attrs["beta"]), float(attrs["bias"]), st[0], st[1], sst[0], FP64=fp64,
                                    BLOCK=b)


register(OpDef("LRN", _infer, _run, since=13, attrs={"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "size": REQUIRED},
               dtypes=np_names(FLOATS), doc="local response normalisation across channels"))

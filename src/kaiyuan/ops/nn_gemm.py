"""ONNX MatMul and Gemm, and kaiyuan's fused Linear: operator definitions on the GEMM kernel.

MatMul (opsets 13-21)
    numpy.matmul semantics: 1-D operands are a row / a column whose dim is dropped from the
    result, leading (batch) dims broadcast. Runs `ops.matmul` (transposed and strided inputs are
    read in place through their strides). dtypes: fp32, fp64, fp16, bf16 (fp32 accumulation for
    the 16-bit types); ONNX's integer MatMul types are UnsupportedError.
Gemm (opsets 13-21)
    Y = alpha * A' @ B' + beta * C, A' = A or A.T (transA), B' = B or B.T (transB), C optional and
    broadcast (unidirectionally) to (M, N). With alpha == beta == 1 the whole of it is one
    `ops.linear` launch: C is the GEMM epilogue's bias when it is a row of N values, else its
    residual. Other alpha/beta: the product is written to Y, then `gemm_scale_kernel` computes
    Y = alpha * Y + beta * C in place (one more pass; for fp16/bf16 the product is rounded to the
    dtype before the scaling). dtypes as MatMul.
kaiyuan.Linear (domain "kaiyuan", produced by the graph engine's GEMM epilogue fusion)
    inputs  x (..., K), W (K, N) (ONNX MatMul's B layout), bias (N,) optional, residual optional
            (broadcasts to the output (..., N))
    attrs   activation: "" | "relu" | "gelu" (erf) | "gelu_tanh" | "silu"
    Y = act(x @ W + bias) + residual: the activation is applied before the residual is added (a
    transformer block's residual connection), all in the GEMM's epilogue, one rounding at the
    store. One `ops.linear` launch with W read transposed through its strides.
    out_features (int, default 0): when set, W is packed into panels by the graph engine's
    `pack_weights` pass (`gemm.pack_b`: (ceil(N / P), K, P), zero-padded) and N = out_features;
    the launch is `dense.linear_packed`, each GEMM tile reading its panel as one stream.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from . import dense, gemm
from .nn_util import (FLOATS, broadcasts_to, kind, np_names, out_type, permute, require, same_dtype, shape_of,
                      strides_of, text, view)
from .norms import to_compute
from .schema import OpDef, register

SCALE_BLOCK = 1024


def matmul_shape(op: str, a: tuple, b: tuple) -> tuple:
    """numpy.matmul's result shape; ArgumentError when the operands do not fit."""
    if len(a) == 0 or len(b) == 0:
        raise ArgumentError(f"{op}: operands must have at least 1 dim, got {a} and {b}")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ArgumentError(f"{op}: shapes {a} and {b} do not match in the contracted dim ({a2[-1]} != {b2[-2]})")
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise ArgumentError(f"{op}: batch dims of {a} and {b} do not broadcast") from None
    return tuple(batch) + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())


# ------------------------------------------------------------------------------------ MatMul


def _matmul_infer(types, attrs, consts):
    a, b = types
    require("MatMul", a.dtype, FLOATS, "A")
    same_dtype("MatMul", [a, b], ["A", "B"])
    return [out_type(a.dtype, matmul_shape("MatMul", a.shape, b.shape))]


def _matmul_run(inputs, attrs, consts, outputs):
    gemm.matmul(inputs[0], inputs[1], out=outputs[0])


register(OpDef("MatMul", _matmul_infer, _matmul_run, since=13, inputs=(2, 2), dtypes=np_names(FLOATS),
               doc="numpy.matmul semantics (1-D operands, batch broadcasting) via ops.matmul"))


# -------------------------------------------------------------------------------------- Gemm


@jit
def gemm_scale_kernel(y_ptr, c_ptr, N, scm, scn, ALPHA: kl.constexpr, BETA: kl.constexpr, HAS_C: kl.constexpr,
                      FP64: kl.constexpr, BLOCK: kl.constexpr):
    # y (M, N) contiguous, in place: y = ALPHA * y + BETA * c; c read through broadcast strides
    row = kl.program_id(0)
    cols = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    mask = cols < N
    y = to_compute(kl.load(y_ptr + row * N + cols, mask=mask, other=0), FP64) * ALPHA
    if HAS_C:
        y = y + to_compute(kl.load(c_ptr + row * scm + cols * scn, mask=mask, other=0), FP64) * BETA
    kl.store(y_ptr + row * N + cols, y, mask=mask)


def _gemm_operands(types, attrs):
    a, b = types[0].shape, types[1].shape
    if len(a) != 2 or len(b) != 2:
        raise ArgumentError(f"Gemm: A and B must be 2-D, got {a} and {b}")
    M, K = a[::-1] if attrs["transA"] else a
    K2, N = b[::-1] if attrs["transB"] else b
    if K != K2:
        raise ArgumentError(f"Gemm: A' {(M, K)} and B' {(K2, N)} do not match in K (transA={attrs['transA']}, "
                            f"transB={attrs['transB']})")
    return M, K, N


def _gemm_infer(types, attrs, consts):
    require("Gemm", types[0].dtype, FLOATS, "A")
    same_dtype("Gemm", list(types), ["A", "B", "C"][: len(types)])
    M, _, N = _gemm_operands(types, attrs)
    c = types[2] if len(types) > 2 else None
    if c is not None and not broadcasts_to(c.shape, (M, N)):
        raise ArgumentError(f"Gemm: C of shape {tuple(c.shape)} does not broadcast to ({M}, {N})")
    return [out_type(types[0].dtype, (M, N))]


def _epilogue_operands(c, N: int):
    """C as linear's (bias, residual): a row of N values is the epilogue's bias, any other shape
    its (broadcast) residual."""
    if c is None:
        return None, None
    cshape = shape_of(c)
    if len(cshape) >= 1 and cshape[-1] == N and int(np.prod(cshape)) == N:
        return view(c, (N,), (strides_of(c)[-1],)), None
    return None, c


def _gemm_run(inputs, attrs, consts, outputs):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    y = outputs[0]
    alpha, beta = float(attrs["alpha"]), float(attrs["beta"])
    if attrs["transA"]:
        a = permute(a, (1, 0))
    weight = b if attrs["transB"] else permute(b, (1, 0))  # linear's weight is (N, K): B'.T
    M, N = y.shape
    if c is not None and beta == 0.0:
        c = None
    if alpha == 1.0 and (c is None or beta == 1.0):  # all of it in one GEMM
        bias, residual = _epilogue_operands(c, N)
        dense.linear(a, weight, bias=bias, residual=residual, out=y)
        return
    dense.linear(a, weight, out=y)
    if M * N == 0:
        return
    scm = scn = 0
    if c is not None:  # C's strides broadcast to (M, N)
        nd = len(shape_of(c))
        cs, cst = (1,) * (2 - nd) + shape_of(c), (0,) * (2 - nd) + strides_of(c)
        scm, scn = (0 if cs[0] == 1 else cst[0]), (0 if cs[1] == 1 else cst[1])
    block = min(SCALE_BLOCK, N)
    gemm_scale_kernel[(M, -(-N // block))](y, c if c is not None else y, N, scm, scn, ALPHA=alpha, BETA=beta,
                                           HAS_C=c is not None, FP64=kind("Gemm", y.dtype) == "fp64", BLOCK=block)


register(OpDef("Gemm", _gemm_infer, _gemm_run, since=13, inputs=(2, 3), dtypes=np_names(FLOATS),
               attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
               doc="alpha * A' @ B' + beta * C; alpha = beta = 1 is one GEMM with C in the epilogue"))


# ---------------------------------------------------------------------------- kaiyuan.Linear

LINEAR_ACTIVATIONS = {"": None, "relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_tanh", "silu": "silu"}


def _activation(attrs) -> str | None:
    act = text(attrs["activation"])
    if act not in LINEAR_ACTIVATIONS:
        raise UnsupportedError(f"kaiyuan.Linear: activation {act!r} is not supported",
                               hint=f"use one of {sorted(LINEAR_ACTIVATIONS)}")
    return LINEAR_ACTIVATIONS[act]


def _packed(w_shape, attrs) -> bool:
    """W is packed into panels (gemm.pack_b: (ceil(N / P), K, P)) for out_features = N."""
    n = int(attrs.get("out_features") or 0)
    if not n:
        return False
    if len(w_shape) != 3 or w_shape[0] * w_shape[2] < n or w_shape[0] * w_shape[2] >= n + w_shape[2]:
        raise ArgumentError(f"kaiyuan.Linear: a packed W has shape (ceil(N / P), K, P); got {tuple(w_shape)} for "
                            f"out_features {n}")
    return True


def _linear_infer(types, attrs, consts):
    x, w = types[0], types[1]
    require("kaiyuan.Linear", x.dtype, FLOATS, "x")
    same_dtype("kaiyuan.Linear", list(types), ["x", "W", "bias", "residual"][: len(types)])
    _activation(attrs)
    packed = _packed(w.shape, attrs)
    k_w = w.shape[1] if packed else (w.shape[0] if len(w.shape) == 2 else None)
    if (len(w.shape) != 2 and not packed) or len(x.shape) == 0 or x.shape[-1] != k_w:
        raise ArgumentError(f"kaiyuan.Linear: x {tuple(x.shape)} and W {tuple(w.shape)} do not fit: need "
                            "x (..., K) and W (K, N)")
    N = int(attrs["out_features"]) if packed else w.shape[1]
    shape = tuple(x.shape[:-1]) + (N,)
    bias = types[2] if len(types) > 2 else None
    if bias is not None and tuple(bias.shape) != (N,):
        raise ArgumentError(f"kaiyuan.Linear: bias must have shape ({N},), got {tuple(bias.shape)}")
    res = types[3] if len(types) > 3 else None
    if res is not None and not broadcasts_to(res.shape, shape):
        raise ArgumentError(f"kaiyuan.Linear: residual {tuple(res.shape)} does not broadcast to {shape}")
    return [out_type(x.dtype, shape)]


def _linear_run(inputs, attrs, consts, outputs):
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    res = inputs[3] if len(inputs) > 3 else None
    if _packed(w.shape, attrs):
        dense.linear_packed(x, w, int(attrs["out_features"]), bias=bias, activation=_activation(attrs), residual=res,
                            out=outputs[0])
        return
    dense.linear(x, permute(w, (1, 0)), bias=bias, activation=_activation(attrs), residual=res, out=outputs[0])


register(OpDef("Linear", _linear_infer, _linear_run, domain="kaiyuan", since=1, inputs=(2, 4), dtypes=np_names(FLOATS),
               attrs={"activation": "", "out_features": 0},
               doc="act(x @ W + bias) + residual in one GEMM (W is (K, N), as MatMul's B, or packed into "
                   "panels (ceil(N / P), K, P) with out_features = N); activation '', relu, gelu, gelu_tanh "
                   "or silu, applied before the residual is added"))

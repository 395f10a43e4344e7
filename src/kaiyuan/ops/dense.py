"""`ky.ops.linear` and `ky.ops.swiglu_linear`: x @ W.T with the epilogue fused into the GEMM.

Definition
    linear(input, weight, bias=None, activation=None, residual=None)
        input (..., in_features), weight (out_features, in_features), bias (out_features,)
        -> act(input @ weight.T + bias) + residual, shape (..., out_features)
        activation: None, "relu", "gelu" (erf form, torch's default), "gelu_tanh" (torch's
        approximate="tanh"), "silu". residual broadcasts to the output's shape and is added
        after the activation (a transformer's residual connection).
    swiglu_linear(input, w_gate, w_up, residual=None)
        -> silu(input @ w_gate.T) * (input @ w_up.T) (+ residual), both products in one kernel.
dtypes
    fp32, fp64, fp16, bf16 (fp32 accumulation and epilogue, one rounding at the store).
    Every operand has the input's dtype.
Kernels
    linear: matmul's `gemm_kernel` with B = weight read transposed through its strides and the
    epilogue constexprs HAS_BIAS / ACT / HAS_RES. Leading dims of input are folded into M when
    their strides allow (always for contiguous input), else they are the kernel's batch dims.
    swiglu: `swiglu_kernel`, one program per output tile, two accumulators fed from the same A
    tile in each K step; tile addresses recomputed from k in every step and rows/columns past
    M/N masked (as gemm_kernel: contiguous vector loads on cpu). Tuning as in matmul (cpu:
    autotuned over matmul's configs, pow2 size buckets; interp: one fixed config).
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..compiler.autotune import Config, autotune, heuristics
from ..runtime.errors import ArgumentError
from ..runtime.tensor import contiguous_strides
from ._common import (Context, Operand, broadcast_strides, check_dtype, check_offsets, check_same_dtype, collapse,
                      contiguous, launch)
from ._replay import replayable
from .gemm import (CPU_CONFIGS, INTERP_CONFIG, acc_code, check_activation, grouped_tile, launch_gemm, out_operand,
                   zeros_acc)

DTYPES = ("fp32", "fp64", "fp16", "bf16")


def _prepare(op: str, ctx: Context, x: Operand, weights: list[Operand]):
    check_dtype(op, x, DTYPES)
    for w in weights:
        check_dtype(op, w, DTYPES)
        check_same_dtype(op, x, w)
        if w.ndim != 2:
            raise ArgumentError(f"{op}: {w.name} must be 2-D (out_features, in_features), got shape {tuple(w.shape)}")
        if w.shape != weights[0].shape:
            raise ArgumentError(f"{op}: {w.name} has shape {tuple(w.shape)}, {weights[0].name} {tuple(weights[0].shape)}")
    if x.ndim == 0:
        raise ArgumentError(f"{op}: input must have at least 1 dimension (..., in_features)")
    N, K = weights[0].shape
    if x.shape[-1] != K:
        raise ArgumentError(f"{op}: input has {x.shape[-1]} features but weight expects {K}",
                            hint="input (..., in_features), weight (out_features, in_features)")
    return x.shape[:-1] + (N,), N, K


def _residual(op: str, ctx: Context, residual, out_shape) -> Operand | None:
    if residual is None:
        return None
    r = ctx.operand(residual, "residual")
    check_dtype(op, r, DTYPES)
    try:
        import numpy as np

        if np.broadcast_shapes(tuple(r.shape), tuple(out_shape)) != tuple(out_shape):
            raise ValueError
    except ValueError:
        raise ArgumentError(f"{op}: residual of shape {tuple(r.shape)} does not broadcast to the output's "
                            f"{tuple(out_shape)}") from None
    return r.reshaped(out_shape, broadcast_strides(r, r.ndim, out_shape))


def _fold(x: Operand, c: Operand, r: Operand | None, K: int):
    """Fold input's leading dims into M where all strides allow: (a, c, r, batch, M)."""
    lead = x.shape[:-1]
    ops = [x, c] + ([r] if r is not None else [])
    dims, sts = collapse(lead, *[o.strides[:-1] for o in ops])
    if len(lead) == 0:
        dims, sts = (1,), [(0,)] * len(ops)
    if len(dims) == 1:
        M = dims[0]
        x = x.reshaped((M, K), (sts[0][0], x.strides[-1]))
        c2 = c.reshaped((M, c.shape[-1]), (sts[1][0], c.strides[-1]))
        r2 = r.reshaped((M, r.shape[-1]), (sts[2][0], r.strides[-1])) if r is not None else None
        return x, c2, r2, (), M
    return x, c, r, lead[:-1], lead[-1]


@replayable
def linear(input, weight, bias=None, activation=None, residual=None, out=None):
    """act(input @ weight.T + bias) + residual in one kernel (torch.nn.functional.linear + epilogue).
    `out`: an optional preallocated contiguous result (see gemm.out_operand), which is returned."""
    act = check_activation("linear", activation)
    ctx = Context("linear", (input, weight, bias, residual, out))
    x, w = ctx.operand(input, "input"), ctx.operand(weight, "weight")
    _, N, K = _prepare("linear", ctx, x, [w])
    wt = w.reshaped((K, N), (w.strides[1], w.strides[0]))  # weight.T, read in place
    return _linear_gemm(ctx, x, wt, N, K, bias, act, residual, out)


@replayable
def linear_packed(input, packed, out_features: int, bias=None, activation=None, residual=None, out=None):
    """`linear` for a weight packed once by `gemm.pack_b` (W (in_features, out_features) as panels:
    the graph engine packs constant weights): act(input @ W + bias) + residual. Each GEMM tile
    reads its rows of W as one sequential stream (see pack_b)."""
    act = check_activation("linear", activation)
    ctx = Context("linear", (input, packed, bias, residual, out))
    x, p = ctx.operand(input, "input"), ctx.operand(packed, "weight")
    check_dtype("linear", x, DTYPES)
    check_same_dtype("linear", x, p)
    N, K = out_features, x.shape[-1] if x.ndim else 0
    panels = p.shape[0] * p.shape[2] if p.ndim == 3 else 0
    dense_layout = all(n == 1 or st == want for n, st, want in zip(p.shape, p.strides, contiguous_strides(p.shape)))
    if x.ndim == 0 or p.ndim != 3 or p.shape[1] != K or not N <= panels < N + p.shape[2] or not dense_layout:
        raise ArgumentError(f"linear: packed weight {tuple(p.shape)} does not hold a ({K}, {N}) weight for input "
                            f"{tuple(x.shape)}", hint="pack W (in_features, out_features) with kaiyuan.ops.gemm.pack_b")
    wv = Operand(p.obj, (K, N), (p.shape[2], 1), p.dtype, "weight")
    return _linear_gemm(ctx, x, wv, N, K, bias, act, residual, out, b_pack=p.shape[2])


def _linear_gemm(ctx: Context, x: Operand, wt: Operand, N: int, K: int, bias, act: int, residual, out,
                 b_pack: int = 0):
    """The GEMM of linear / linear_packed: x (..., K) @ wt (K, N) with the bias, activation and
    residual epilogue, into `out` or a new result."""
    b = None
    if bias is not None:
        b = ctx.operand(bias, "bias")
        check_dtype("linear", b, DTYPES)
        if tuple(b.shape) != (N,):
            raise ArgumentError(f"linear: bias must have shape ({N},), got {tuple(b.shape)}")
    out_shape = x.shape[:-1] + (N,)
    r = _residual("linear", ctx, residual, out_shape)
    c = out_operand(ctx, out, out_shape, x.dtype)
    a, c2, r2, batch, M = _fold(x, c, r, K)
    if a.ndim == 1:
        a = a.reshaped((1, K), (0, a.strides[0]))
    launch_gemm(ctx, a, wt, c2, batch, M, N, K, bias=b, act=act, residual=r2, b_pack=b_pack)
    return out if out is not None else ctx.result(c)


@jit
def swiglu_kernel(a_ptr, g_ptr, u_ptr, c_ptr, r_ptr, M, N, K, sam, sak, sgk, sgn, suk, sun, scm, scn, srm, srn,
                  HAS_RES: kl.constexpr, ACC: kl.constexpr, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr,
                  BLOCK_K: kl.constexpr, GROUP_M: kl.constexpr, EVEN_K: kl.constexpr):
    pid_m, pid_n = grouped_tile(kl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + kl.arange(0, BLOCK_N)
    rk = kl.arange(0, BLOCK_K)
    row_ok = rm[None, :] < M
    col_ok = rn[:, None] < N
    # computed transposed, out^T = silu(Wg @ x^T) * (Wu @ x^T): the weights' rows (contiguous in
    # their (out, in) layout) are the dot's A tiles, and the one x tile per K step is transposed
    # in the tile (W^T tiles read through strides would be two element gathers per step)
    acc_g = zeros_acc(BLOCK_N, BLOCK_M, ACC)
    acc_u = zeros_acc(BLOCK_N, BLOCK_M, ACC)
    for k in range(0, K, BLOCK_K):
        # addresses recomputed from k (affine in the tile indices, as in gemm_kernel): each tile
        # row is one contiguous vector load on cpu; rows/columns past M/N are masked, not wrapped
        a_ptrs = a_ptr + rm[None, :] * sam + (k + rk)[:, None] * sak
        g_ptrs = g_ptr + (k + rk)[None, :] * sgk + rn[:, None] * sgn
        u_ptrs = u_ptr + (k + rk)[None, :] * suk + rn[:, None] * sun
        if EVEN_K:
            at = kl.trans(kl.load(kl.trans(a_ptrs), mask=kl.trans(row_ok), other=0))
            g = kl.load(g_ptrs, mask=col_ok, other=0)
            u = kl.load(u_ptrs, mask=col_ok, other=0)
        else:
            k_ok = k + rk < K
            at = kl.trans(kl.load(kl.trans(a_ptrs), mask=kl.trans(row_ok & k_ok[:, None]), other=0))
            g = kl.load(g_ptrs, mask=k_ok[None, :] & col_ok, other=0)
            u = kl.load(u_ptrs, mask=k_ok[None, :] & col_ok, other=0)
        acc_g = kl.dot(g, at, acc_g)
        acc_u = kl.dot(u, at, acc_u)
    out_t = acc_g / (1.0 + kl.exp(-acc_g)) * acc_u
    out = kl.trans(out_t)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if HAS_RES:
        out = out + kl.load(r_ptr + rm[:, None] * srm + rn[None, :] * srn, mask=mask, other=0).to(out.dtype)
    kl.store(c_ptr + rm[:, None] * scm + rn[None, :] * scn, out, mask=mask)


def _even_k(args) -> bool:
    return args["K"] % args["BLOCK_K"] == 0


SWIGLU_CPU_CONFIGS = CPU_CONFIGS  # gemm.py's large tiles (two accumulators: twice the dot work per A tile)
swiglu_fixed = heuristics({"EVEN_K": _even_k})(swiglu_kernel)
swiglu_tuned = autotune(configs=SWIGLU_CPU_CONFIGS, key=["M", "N", "K", "a_ptr", "g_ptr"],
                        key_bucket="pow2")(swiglu_fixed)


def swiglu_linear(input, w_gate, w_up, residual=None):
    """silu(input @ w_gate.T) * (input @ w_up.T) (+ residual): the SwiGLU MLP's first half, one kernel."""
    ctx = Context("swiglu_linear", (input, w_gate, w_up, residual))
    x = ctx.operand(input, "input")
    g, u = ctx.operand(w_gate, "w_gate"), ctx.operand(w_up, "w_up")
    out_shape, N, K = _prepare("swiglu_linear", ctx, x, [g, u])
    r = _residual("swiglu_linear", ctx, residual, out_shape)
    c = ctx.output(out_shape, x.dtype)
    a, c2, r2, batch, M = _fold(x, c, r, K)
    if batch:  # leading dims that do not fold into M: read contiguous copies
        a, c2, r2, batch, M = _fold(contiguous(x), c, contiguous(r) if r is not None else None, K)
    if a.ndim == 1:
        a = a.reshaped((1, K), (0, a.strides[0]))
    check_offsets("swiglu_linear", a, g, u, c2, *([r2] if r2 is not None else []))
    if M == 0 or N == 0:
        return ctx.result(c)
    if r2 is None:
        r2 = c2
        has_res = False
    else:
        has_res = True
    args = (a.obj, g.obj, u.obj, c2.obj, r2.obj, M, N, K, a.strides[0], a.strides[1], g.strides[1], g.strides[0],
            u.strides[1], u.strides[0], c2.strides[0], c2.strides[1], r2.strides[0], r2.strides[1])

    def grid(meta):
        return (-(-M // meta["BLOCK_M"]) * -(-N // meta["BLOCK_N"]),)

    flags = {"HAS_RES": has_res, "ACC": acc_code(x.dtype.name)}
    launch(ctx, swiglu_fixed, swiglu_tuned, SWIGLU_CPU_CONFIGS, INTERP_CONFIG, grid, args, flags)
    return ctx.result(c)

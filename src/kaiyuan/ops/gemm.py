"""`ky.ops.matmul(input, other)`: matrix product with numpy's / torch.matmul's broadcasting.

Definition
    input (..., M, K) @ other (..., K, N) -> (..., M, N); leading (batch) dims broadcast.
    A 1-D input is a row (1, K) whose M dim is dropped from the result; a 1-D other is a
    column (K, 1) whose N dim is dropped. 0-d operands: ArgumentError (as numpy).
dtypes
    fp32, fp64, fp16, bf16 (products accumulated in fp32, result rounded once to the input
    dtype), int8 (int32 accumulation and result). Both operands must have the same dtype.
Kernel
    `gemm_kernel`: one program per BLOCK_M x BLOCK_N tile of one batch entry (grid axis 0: tiles
    in grouped order, axis 1: batch). The K loop loads a BLOCK_M x BLOCK_K tile of A and a
    BLOCK_K x BLOCK_N tile of B through their strides (transposed and strided inputs are read in
    place; broadcast batch dims have stride 0) and accumulates with `kl.dot(a, b, acc)`.
    Addresses are recomputed from k in every step (affine: the cpu backend reads interior tiles
    in place, with no copy, and edge tiles with one contiguous vector load per row); rows/columns
    past M/N are masked; whole BLOCK_K steps carry no K mask and a ragged K ends with one masked
    tail step (`gemm_step`). The epilogue (bias, activation, residual: used by `linear`) runs on
    the accumulator before the one store.
Tuning
    cpu: `@ky.autotune` over four tile shapes keyed on M, N, K and the operands' dtype/shape
    (tiles larger than the problem pruned); interp: one fixed small config, never tuned.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..compiler.autotune import Config, autotune, heuristics, launch_device
from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import Tensor, contiguous_strides
from ._common import (Context, Operand, broadcast_strides, check_dtype, check_offsets, check_same_dtype, collapse,
                      launch, pad_dims)
from ._replay import replayable

DTYPES = ("fp32", "fp64", "fp16", "bf16", "i8")
OUT_DTYPE = {"i8": "i32"}

# activation codes (constexpr ACT of the GEMM kernels)
ACTIVATIONS = {None: 0, "relu": 1, "gelu": 2, "gelu_tanh": 3, "silu": 4}


def check_activation(op: str, activation) -> int:
    """The ACT code of an epilogue activation name (see ACTIVATIONS); UnsupportedError otherwise."""
    if activation not in ACTIVATIONS:
        raise UnsupportedError(f"{op}: activation {activation!r} is not supported",
                               hint=f"use one of {', '.join(repr(a) for a in ACTIVATIONS)}")
    return ACTIVATIONS[activation]


@jit
def activation(x, ACT: kl.constexpr):
    """The epilogue activation `ACT` (see ACTIVATIONS) applied to an accumulator tile."""
    if ACT == 1:
        x = kl.maximum(x, 0.0)
    if ACT == 2:
        x = 0.5 * x * (1.0 + kl.erf(x * 0.7071067811865476))
    if ACT == 3:
        x = 0.5 * x * (1.0 + kl.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    if ACT == 4:
        x = x / (1.0 + kl.exp(-x))
    return x


@jit
def zeros_acc(BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, ACC: kl.constexpr):
    """A zero accumulator tile: ACC 0 = fp32, 1 = fp64, 2 = int32 (see acc_code)."""
    if ACC == 1:
        acc = kl.zeros((BLOCK_M, BLOCK_N), dtype=kl.float64)
    elif ACC == 2:
        acc = kl.zeros((BLOCK_M, BLOCK_N), dtype=kl.int32)
    else:
        acc = kl.zeros((BLOCK_M, BLOCK_N), dtype=kl.float32)
    return acc


def acc_code(dtype_name: str) -> int:
    return {"fp64": 1, "i8": 2}.get(dtype_name, 0)


@jit
def grouped_tile(pid, M, N, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, GROUP_M: kl.constexpr):
    """(pid_m, pid_n) of program `pid` in grouped order: GROUP_M rows of tiles share B tiles
    while they are in cache (Triton's matmul tutorial ordering)."""
    num_pid_m = kl.cdiv(M, BLOCK_M)
    num_pid_n = kl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    group_m = kl.minimum(num_pid_m - first_m, GROUP_M)
    return first_m + (pid % group) % group_m, (pid % group) // group_m


@jit
def gemm_step(acc, k, rk, rm, rn, a_ptr, b_ptr, M, N, K, sam, sak, sbk, sbn,
              TAIL: kl.constexpr, A_T: kl.constexpr, B_T: kl.constexpr, B_PACK: kl.constexpr = 0):
    """acc += A[rm, k:k+BLOCK_K] @ B[k:k+BLOCK_K, rn]. Addresses are recomputed from k (affine in
    the tile indices: the cpu backend reads interior tiles in place, or copies a tile row as one
    vector load); carried pointer tiles would be gathers. Only the TAIL step masks K."""
    k_ok = ((k + rk) < K) | (not TAIL)
    if A_T:  # A is stored K-major (e.g. x.T): load rows along M, transpose the tile in cache
        a = kl.trans(kl.load(a_ptr + (k + rk)[:, None] * sak + rm[None, :] * sam,
                             mask=(rm[None, :] < M) & k_ok[:, None], other=0))
    else:
        a = kl.load(a_ptr + rm[:, None] * sam + (k + rk)[None, :] * sak, mask=(rm[:, None] < M) & k_ok[None, :],
                    other=0)
    if B_PACK:  # B_ptr is this tile's panel: K rows of B_PACK (= BLOCK_N) contiguous columns
        b = kl.load(b_ptr + (k + rk)[:, None] * B_PACK + kl.arange(0, B_PACK)[None, :], mask=k_ok[:, None], other=0)
    elif B_T:  # B is stored N-major (linear's weight.T): rows along K, transposed in cache
        b = kl.trans(kl.load(b_ptr + rn[:, None] * sbn + (k + rk)[None, :] * sbk,
                             mask=(rn[:, None] < N) & k_ok[None, :], other=0))
    else:
        b = kl.load(b_ptr + (k + rk)[:, None] * sbk + rn[None, :] * sbn, mask=k_ok[:, None] & (rn[None, :] < N),
                    other=0)
    return kl.dot(a, b, acc)


@jit
def gemm_kernel(a_ptr, b_ptr, c_ptr, bias_ptr, r_ptr, M, N, K, B1, B2,
                sa0, sa1, sa2, sam, sak, sb0, sb1, sb2, sbk, sbn, sc0, sc1, sc2, scm, scn,
                s_bias, sr0, sr1, sr2, srm, srn,
                HAS_BIAS: kl.constexpr, ACT: kl.constexpr, HAS_RES: kl.constexpr,
                BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, BLOCK_K: kl.constexpr, GROUP_M: kl.constexpr,
                ACC: kl.constexpr, A_T: kl.constexpr, B_T: kl.constexpr, B_PACK: kl.constexpr = 0):
    pid_m, pid_n = grouped_tile(kl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    # batch entry: program_id(1) = (b0 * B1 + b1) * B2 + b2
    pid_b = kl.program_id(1)
    b2 = pid_b % B2
    b1 = (pid_b // B2) % B1
    b0 = pid_b // (B2 * B1)
    a_ptr += b0 * sa0 + b1 * sa1 + b2 * sa2
    b_ptr += b0 * sb0 + b1 * sb1 + b2 * sb2
    if B_PACK:  # packed panels (see pack_b): panel pid_n holds columns pid_n*BLOCK_N.. as K x BLOCK_N
        b_ptr += pid_n * K * B_PACK
    c_ptr += b0 * sc0 + b1 * sc1 + b2 * sc2

    rm = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + kl.arange(0, BLOCK_N)
    rk = kl.arange(0, BLOCK_K)
    rbn = rn % N
    acc = zeros_acc(BLOCK_M, BLOCK_N, ACC)
    # whole BLOCK_K steps without a K mask, then at most one masked tail step
    k_full = (K // BLOCK_K) * BLOCK_K
    for k in range(0, k_full, BLOCK_K):
        acc = gemm_step(acc, k, rk, rm, rn, a_ptr, b_ptr, M, N, K, sam, sak, sbk, sbn, False, A_T, B_T, B_PACK)
    for k in range(k_full, K, BLOCK_K):
        acc = gemm_step(acc, k, rk, rm, rn, a_ptr, b_ptr, M, N, K, sam, sak, sbk, sbn, True, A_T, B_T, B_PACK)

    # epilogue, on the accumulator: + bias, activation, + residual; then one store
    if HAS_BIAS:
        bias = kl.load(bias_ptr + rbn * s_bias)
        acc = acc + bias[None, :].to(acc.dtype)
    acc = activation(acc, ACT)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if HAS_RES:
        r_ptr += b0 * sr0 + b1 * sr1 + b2 * sr2
        res = kl.load(r_ptr + rm[:, None] * srm + rn[None, :] * srn, mask=mask, other=0)
        acc = acc + res.to(acc.dtype)
    kl.store(c_ptr + rm[:, None] * scm + rn[None, :] * scn, acc, mask=mask)


def _a_t(args) -> bool:
    """A's rows are strided but its columns contiguous: read it K-major and transpose in cache."""
    return args["sam"] == 1 and args["sak"] != 1


def _b_t(args) -> bool:
    """B's K dim is contiguous but N is strided (weight.T): read rows along K, transpose in cache."""
    return args["sbk"] == 1 and args["sbn"] != 1


# The cpu backend reads interior tiles in place (no copy per K step), so tile size matters little at
# 1024-2048 on one core (128x128x128 .. 256x256x256 within 3% on Zen 4); what decides with two
# cores is an even share of programs: 128x64 splits a 128-row (one-token-block) problem into six.
# 64x64x64 serves small problems. Configs with tiles larger than the problem are pruned.
CPU_CONFIGS = [
    Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 128, "GROUP_M": 8}),
    Config({"BLOCK_M": 256, "BLOCK_N": 256, "BLOCK_K": 256, "GROUP_M": 4}),
    Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 128, "GROUP_M": 8}),
    Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8}),
    Config({"BLOCK_M": 16, "BLOCK_N": 128, "BLOCK_K": 128, "GROUP_M": 1}),
    Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 128, "GROUP_M": 1}),
    Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128, "GROUP_M": 1}),
]
# configs with fewer rows than 64 serve only problems this short (a few tokens; packed weights
# need BLOCK_N 64: 16 x 64 tiles ran a 16x1536x384 linear at 88 GFLOP/s, 32 x 64 at 50, and
# 32-row tiles a 55-row one 5-10% faster than 64-row tiles)
SKINNY_M = 64


def fitting_configs(configs, args, **_):
    """The configs whose tile is not larger than the problem (the smallest if none is); the
    short-row configs only for problems of at most SKINNY_M rows; of those, the ones that share
    the problem's tiles most evenly among the device's compute units (see even_share)."""
    M, N = args["M"], args["N"]
    if args.get("B_PACK"):
        configs = [c for c in configs if c.kwargs["BLOCK_N"] == args["B_PACK"]]
    fit = [c for c in configs if c.kwargs["BLOCK_M"] <= max(M, 64) and c.kwargs["BLOCK_N"] <= max(N, 64)
           and (c.kwargs["BLOCK_M"] >= 64 or M <= SKINNY_M)]
    if not fit:
        return [min(configs, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"])]
    return even_share(fit, lambda c: -(-M // c.kwargs["BLOCK_M"]) * -(-N // c.kwargs["BLOCK_N"]),
                      launch_device(args).capabilities.compute_units)


def even_share(configs, programs, units: int):
    """The configs whose grid of `programs(config)` programs keeps `units` compute units busiest:
    p programs run in ceil(p / units) rounds, so 3 tiles on 2 cores leave a core idle for a third
    of the time (128x384x384 on 2 cores: 104 GFLOP/s with 128x128 tiles, 130 with 128x64). Keeps
    every config within 10% of the best share; the timing decides among them."""
    def share(c):
        p = max(1, programs(c))
        return p / (units * -(-p // units))

    best = max(share(c) for c in configs)
    return [c for c in configs if share(c) >= 0.9 * best]


INTERP_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 8}

gemm_fixed = heuristics({"A_T": _a_t, "B_T": _b_t})(gemm_kernel)
gemm_tuned = autotune(configs=CPU_CONFIGS, key=["M", "N", "K", "a_ptr", "b_ptr", "B_PACK"], key_bucket="pow2",
                      prune_configs_by={"early_config_prune": fitting_configs})(gemm_fixed)


def launch_gemm(ctx: Context, a: Operand, b: Operand, c: Operand, batch: tuple, M: int, N: int, K: int,
                bias: Operand | None = None, act: int = 0, residual: Operand | None = None, b_pack: int = 0) -> None:
    """c[batch] = epilogue(a[batch] @ b[batch]); a (..., M, K), b (..., K, N), c (batch..., M, N).

    `bias` is 1-D (N,), `residual` broadcasts to c's shape. `b_pack`: b is a 2-D operand packed
    by `pack_b` into panels of that many columns (b.obj the packed array)."""
    operands = [a, b, c] + ([residual] if residual is not None else [])
    check_offsets(ctx.op, *operands)
    bstrides = [broadcast_strides(x, x.ndim - 2, batch) for x in operands]
    dims, bstrides = collapse(batch, *bstrides)
    if len(dims) > 3:
        raise UnsupportedError(f"{ctx.op}: the batch dims {batch} do not collapse to 3 or fewer",
                               hint="make the inputs contiguous, or reshape the batch dims")
    if M == 0 or N == 0 or any(n == 0 for n in batch):
        return
    dims, _ = pad_dims(dims, dims, 3)
    bst = [pad_dims(s, s, 3)[1] for s in bstrides]
    rst = bst[3] if residual is not None else (0, 0, 0)
    r_mn = residual.strides[-2:] if residual is not None else (0, 0)
    if residual is not None:
        r_mn = tuple(0 if residual.shape[-2 + i] == 1 else residual.strides[-2 + i] for i in range(2))
    nbatch = dims[0] * dims[1] * dims[2]
    args = (a.obj, b.obj, c.obj, bias.obj if bias is not None else c.obj,
            residual.obj if residual is not None else c.obj, M, N, K, dims[1], dims[2],
            *bst[0], a.strides[-2], a.strides[-1], *bst[1], b.strides[-2], b.strides[-1],
            *bst[2], c.strides[-2], c.strides[-1], bias.strides[0] if bias is not None else 0, *rst, *r_mn)
    flags = {"HAS_BIAS": bias is not None, "ACT": act, "HAS_RES": residual is not None, "ACC": acc_code(a.dtype.name)}
    configs, interp_config = CPU_CONFIGS, INTERP_CONFIG
    if b_pack:  # the tile width is the panel width
        flags["B_PACK"] = b_pack
        configs = [cfg for cfg in CPU_CONFIGS if cfg.kwargs["BLOCK_N"] == b_pack]
        interp_config = {**INTERP_CONFIG, "BLOCK_N": b_pack}

    def grid(meta):
        return (-(-M // meta["BLOCK_M"]) * -(-N // meta["BLOCK_N"]), nbatch)

    launch(ctx, gemm_fixed, gemm_tuned, configs, interp_config, grid, args, flags)


PANEL = 64  # columns per packed panel: the BLOCK_N of the cpu configs that read packed weights


def pack_b(w: np.ndarray, panel: int = PANEL) -> np.ndarray:
    """A constant B (K, N) as ceil(N / panel) panels of K x panel contiguous elements (the last
    zero-padded): (N / panel, K, panel). A GEMM tile then reads its K rows of B as one sequential
    stream instead of K pieces N elements apart (a new page every row for a transformer's weight),
    which is what a run that streams its weights from memory once is bound by (the layout oneDNN
    and MLAS prepack weights to)."""
    K, N = w.shape
    n = -(-N // panel)
    padded = np.zeros((K, n * panel), w.dtype)
    padded[:, :N] = w
    return np.ascontiguousarray(padded.reshape(K, n, panel).transpose(1, 0, 2))


def out_operand(ctx: Context, out, shape, dtype) -> Operand:
    """The Operand an op writes its result to: a new tensor when `out` is None, else `out` itself
    (a preallocated contiguous numpy array or ky.Tensor of exactly `shape` and `dtype`), so that a
    caller that planned the memory (the graph engine) gets the result where it wants it."""
    if out is None:
        return ctx.output(shape, dtype)
    if not isinstance(out, (Tensor, np.ndarray)):
        raise ArgumentError(f"{ctx.op}: out must be a numpy array or a ky.Tensor, got {type(out).__name__}")
    o = ctx.operand(out, "out")
    want = to_dtype(dtype)
    if tuple(o.shape) != tuple(shape) or o.dtype != want:
        raise ArgumentError(f"{ctx.op}: out has shape {tuple(o.shape)} and dtype {o.dtype.name}; the result is "
                            f"{tuple(shape)} {want.name}")
    contiguous = out.is_contiguous() if isinstance(out, Tensor) else out.flags.c_contiguous
    if not contiguous:
        raise ArgumentError(f"{ctx.op}: out must be contiguous", hint="pass a contiguous array, or leave out=None")
    return Operand(out, tuple(shape), contiguous_strides(tuple(shape)), want, "out")


def as_shape(c: Operand, shape) -> Operand:
    """The contiguous result `c` seen with another shape of the same size (dims of size 1 added
    or dropped)."""
    return Operand(c.obj, tuple(shape), contiguous_strides(tuple(shape)), c.dtype, c.name)


@replayable
def matmul(input, other, out=None):
    """Matrix product of `input` and `other` with numpy.matmul's rules (see the module doc).
    `out`: an optional preallocated contiguous result (see out_operand), which is returned."""
    ctx = Context("matmul", (input, other, out))
    a, b = ctx.operand(input, "input"), ctx.operand(other, "other")
    check_dtype("matmul", a, DTYPES)
    check_dtype("matmul", b, DTYPES)
    check_same_dtype("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ArgumentError("matmul: both arguments need at least 1 dimension",
                            hint="use multiplication (*) for scalars")
    drop_m, drop_n = a.ndim == 1, b.ndim == 1
    if drop_m:
        a = a.reshaped((1,) + a.shape, (0,) + a.strides)
    if drop_n:
        b = b.reshaped(b.shape + (1,), b.strides + (0,))
    (M, K), (K2, N) = a.shape[-2:], b.shape[-2:]
    if K != K2:
        raise ArgumentError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match in the contracted dim "
                            f"({K} != {K2})", hint="input (..., M, K) @ other (..., K, N)")
    batch = broadcast_batch("matmul", a.shape[:-2], b.shape[:-2])
    shape = batch + ((M,) if not drop_m else ()) + ((N,) if not drop_n else ())
    if out is not None:
        c = as_shape(out_operand(ctx, out, shape, OUT_DTYPE.get(a.dtype.name, a.dtype.name)), batch + (M, N))
        launch_gemm(ctx, a, b, c, batch, M, N, K)
        return out
    c = ctx.output(batch + (M, N), OUT_DTYPE.get(a.dtype.name, a.dtype.name))
    launch_gemm(ctx, a, b, c, batch, M, N, K)
    t = c.obj
    c = c.reshaped(shape, ())
    c.obj = Tensor(t.buffer, shape, t.dtype, None, t.offset)
    return ctx.result(c)


def broadcast_batch(op: str, *shapes) -> tuple:
    out: list = []
    for shape in shapes:
        pad = len(shape) - len(out)
        if pad > 0:
            out = [1] * pad + out
        for i, n in enumerate(shape):
            j = len(out) - len(shape) + i
            if n != 1 and out[j] != 1 and out[j] != n:
                raise ArgumentError(f"{op}: batch dims {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast",
                                    hint="batch dims must be equal or 1 (numpy broadcasting)")
            if n != 1:
                out[j] = n
    return tuple(out)

"""ONNX MatMulInteger (opsets 13-21): (A - a_zero_point) @ (B - b_zero_point) in int32.

Definition
    A (..., M, K) and B (..., K, N), each uint8 or int8 (they may differ), with numpy.matmul's
    rules (1-D operands, broadcast batch dims); result int32 (..., M, N), exact (int32 products
    and sums). a_zero_point (A's dtype): a scalar / 1 element (per tensor), M values (per row of a
    2-D A) or (..., M, 1) (per row of each batch entry); b_zero_point: a scalar, N values (per
    column) or (..., 1, N).
Kernel
    `matmul_integer_kernel`: one program per BLOCK_M x BLOCK_N tile of one batch entry (batch dims
    folded to at most three through their strides, as ops.matmul). Each K step loads the A and B
    tiles through their strides, widens them to int32, subtracts the zero points (zeroing the
    K tail, so masked lanes add nothing) and accumulates with an int32 `kl.dot`. Fixed tiles
    (64 x 64 x 32 on cpu, 16 on interp): quantised MatMul is not a hot path worth tuning yet.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import contiguous_strides
from ._common import collapse, pad_dims
from .nn_gemm import matmul_shape
from .nn_util import is_reference, kind, np_names, out_type, require, shape_of, strides_of, unsqueeze, view
from .schema import OpDef, register

OP = "MatMulInteger"
TYPES = ("u8", "i8")
CPU_TILE = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}
INTERP_TILE = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16}


@jit
def matmul_integer_kernel(a_ptr, b_ptr, c_ptr, za_ptr, zb_ptr, M, N, K, B1, B2,
                          sa0, sa1, sa2, sam, sak, sb0, sb1, sb2, sbk, sbn, sc0, sc1, sc2, scm, scn,
                          sza0, sza1, sza2, szam, szb0, szb1, szb2, szbn,
                          HAS_ZA: kl.constexpr, HAS_ZB: kl.constexpr,
                          BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, BLOCK_K: kl.constexpr):
    num_pid_n = kl.cdiv(N, BLOCK_N)
    pid_m = kl.program_id(0) // num_pid_n
    pid_n = kl.program_id(0) % num_pid_n
    pid_b = kl.program_id(1)  # = (b0 * B1 + b1) * B2 + b2
    b2 = pid_b % B2
    b1 = (pid_b // B2) % B1
    b0 = pid_b // (B2 * B1)
    rm = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + kl.arange(0, BLOCK_N)
    rk = kl.arange(0, BLOCK_K)
    a_base = a_ptr + b0 * sa0 + b1 * sa1 + b2 * sa2
    b_base = b_ptr + b0 * sb0 + b1 * sb1 + b2 * sb2
    za = 0
    zb = 0
    if HAS_ZA:
        za = kl.load(za_ptr + b0 * sza0 + b1 * sza1 + b2 * sza2 + rm * szam, mask=rm < M, other=0).to(kl.int32)
    if HAS_ZB:
        zb = kl.load(zb_ptr + b0 * szb0 + b1 * szb1 + b2 * szb2 + rn * szbn, mask=rn < N, other=0).to(kl.int32)
    acc = kl.zeros((BLOCK_M, BLOCK_N), dtype=kl.int32)
    for k in range(0, K, BLOCK_K):
        k_ok = (k + rk) < K
        a = kl.load(a_base + rm[:, None] * sam + (k + rk)[None, :] * sak, mask=(rm[:, None] < M) & k_ok[None, :],
                    other=0).to(kl.int32)
        b = kl.load(b_base + (k + rk)[:, None] * sbk + rn[None, :] * sbn, mask=k_ok[:, None] & (rn[None, :] < N),
                    other=0).to(kl.int32)
        if HAS_ZA:  # the K tail stays 0 after the zero point is taken away
            a = kl.where(k_ok[None, :], a - za[:, None], 0)
        if HAS_ZB:
            b = kl.where(k_ok[:, None], b - zb[None, :], 0)
        acc = kl.dot(a, b, acc)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    kl.store(c_ptr + b0 * sc0 + b1 * sc1 + b2 * sc2 + rm[:, None] * scm + rn[None, :] * scn, acc, mask=mask)


def _zp_shape(which: str, zp: tuple, operand: tuple) -> None:
    """ArgumentError unless zp is per tensor, per row of A / per column of B, or the N-D form."""
    M_or_N = operand[-2] if which == "a" else operand[-1]
    size = int(np.prod(zp)) if zp else 1
    if size == 1 or (len(zp) == 1 and zp[0] == M_or_N):
        return
    want = operand[:-1] + (1,) if which == "a" else operand[:-2] + (1, operand[-1])
    try:
        ok = len(zp) == len(operand) and np.broadcast_shapes(zp, want) == want
    except ValueError:
        ok = False
    if not ok:
        raise ArgumentError(f"{OP}: {which}_zero_point of shape {zp} fits neither per tensor, per "
                            f"{'row' if which == 'a' else 'column'} ({M_or_N} values) nor {want}")


def _infer(types, attrs, consts):
    a, b = types[0], types[1]
    za = types[2] if len(types) > 2 else None
    zb = types[3] if len(types) > 3 else None
    an, bn = require(OP, a.dtype, TYPES, "A"), require(OP, b.dtype, TYPES, "B")
    shape = matmul_shape(OP, tuple(a.shape), tuple(b.shape))
    a2 = (1,) + tuple(a.shape) if len(a.shape) == 1 else tuple(a.shape)
    b2 = tuple(b.shape) + (1,) if len(b.shape) == 1 else tuple(b.shape)
    for which, z, name, op2 in (("a", za, an, a2), ("b", zb, bn, b2)):
        if z is not None:
            if kind(OP, z.dtype) != name:
                raise UnsupportedError(f"{OP}: {which}_zero_point is {z.dtype} but {which.upper()} is {name}")
            _zp_shape(which, tuple(z.shape), op2)
    return [out_type(np.int32, shape)]


def _bstrides(shape: tuple, strides: tuple, batch: tuple) -> tuple:
    """Strides of an array's batch dims broadcast to `batch` (0 where they broadcast)."""
    pad = len(batch) - len(shape)
    return tuple(0 if i < pad or shape[i - pad] == 1 else strides[i - pad] for i in range(len(batch)))


def _zp_view(z, which: str):
    """The zero point as (batch..., M) for A / (batch..., N) for B: (shape, strides)."""
    zs, st = shape_of(z), strides_of(z)
    if int(np.prod(zs)) == 1:
        return (1,), (0,)
    if len(zs) == 1:
        return zs, st
    drop = len(zs) - 1 if which == "a" else len(zs) - 2  # the size-1 K dim of the N-D form
    return tuple(d for i, d in enumerate(zs) if i != drop), tuple(s for i, s in enumerate(st) if i != drop)


def _batch_strides(arrays: list, batch: tuple):
    """The batch dims of every (array, batch shape, batch strides) broadcast to `batch` and folded
    together to 3 dims: (B0, B1, B2), [(s0, s1, s2) per array]."""
    dims, bst = collapse(batch, *[_bstrides(s, st, batch) for _, s, st in arrays])
    if len(dims) > 3:
        raise UnsupportedError(f"{OP}: the batch dims {batch} do not fold to 3 or fewer",
                               hint="make the inputs contiguous, or reshape the batch dims")
    return pad_dims(dims, dims, 3)[0], [pad_dims(s, s, 3)[1] for s in bst]


def _run(inputs, attrs, consts, outputs):
    a, b = inputs[0], inputs[1]
    zero_points = {"a": inputs[2] if len(inputs) > 2 else None, "b": inputs[3] if len(inputs) > 3 else None}
    a2 = unsqueeze(a, 0) if len(shape_of(a)) == 1 else a  # numpy.matmul's 1-D operands
    b2 = unsqueeze(b, 1) if len(shape_of(b)) == 1 else b
    (M, K), N = shape_of(a2)[-2:], shape_of(b2)[-1]
    batch = tuple(np.broadcast_shapes(shape_of(a2)[:-2], shape_of(b2)[:-2]))
    y = view(outputs[0], batch + (M, N), contiguous_strides(batch + (M, N)))
    arrays = [(x, shape_of(x)[:-2], strides_of(x)[:-2]) for x in (a2, b2, y)]
    zp_args = {}  # which -> (array, stride along M / N)
    for which, z in zero_points.items():
        if z is not None:
            zshape, zst = _zp_view(z, which)
            arrays.append((z, zshape[:-1], zst[:-1]))
            zp_args[which] = (z, 0 if zshape[-1] == 1 else zst[-1])
    if M * N * int(np.prod(batch)) == 0:
        return
    dims, bst = _batch_strides(arrays, batch)
    zp_bst = iter(bst[3:])
    zargs = []
    for which in ("a", "b"):  # pointer and (s0, s1, s2, s_m / s_n); y stands in for an absent one
        z, s_mn = zp_args.get(which, (y, 0))
        zargs.append((z, (*next(zp_bst), s_mn) if which in zp_args else (0, 0, 0, 0)))
    tile = INTERP_TILE if is_reference(y) else CPU_TILE
    sa, sb = strides_of(a2), strides_of(b2)
    grid = (-(-M // tile["BLOCK_M"]) * -(-N // tile["BLOCK_N"]), dims[0] * dims[1] * dims[2])
    matmul_integer_kernel[grid](a2, b2, y, zargs[0][0], zargs[1][0], M, N, K, dims[1], dims[2],
                                *bst[0], sa[-2], sa[-1], *bst[1], sb[-2], sb[-1], *bst[2], N, 1,
                                *zargs[0][1], *zargs[1][1], HAS_ZA="a" in zp_args, HAS_ZB="b" in zp_args, **tile)


register(OpDef(OP, _infer, _run, since=10, inputs=(2, 4), dtypes=np_names(TYPES),
               doc="(A - a_zero_point) @ (B - b_zero_point) in int32; uint8/int8, per tensor/row/column zero points"))

"""kl.dot: fp32, fp16/bf16 inputs with fp32 accumulation, int8 with int32 accumulation, fp64;
single-tile 16x16 and a blocked matmul with a K loop over ragged M, N, K.

Tolerances: products of fp16/bf16 are exact in fp32, so results are compared with the fp64
matmul of the (rounded) inputs at rtol 1e-4 / atol 1e-4 (any summation order in fp32); fp32
inputs likewise; int8 → int32 is exact; fp64 at 1e-12.
"""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import NP, cdiv, rand


@ky.jit
def dot_tile_kernel(a_ptr, b_ptr, c_ptr, M: kl.constexpr, N: kl.constexpr, K: kl.constexpr):
    rm = kl.arange(0, M)
    rn = kl.arange(0, N)
    rk = kl.arange(0, K)
    a = kl.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = kl.load(b_ptr + rk[:, None] * N + rn[None, :])
    c = kl.dot(a, b)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], c)


@pytest.mark.parametrize("name,acc", [("fp32", "fp32"), ("fp16", "fp32"), ("bf16", "fp32"), ("i8", "i32"),
                                      ("fp64", "fp64")])
@pytest.mark.parametrize("shape", [(16, 16, 16), (32, 64, 16)])
def test_dot_single_tile(device, name, acc, shape):
    M, N, K = shape
    rng = np.random.default_rng(M + N + K)
    a = rand(rng, (M, K), name, -2, 2) if name != "i8" else rand(rng, (M, K), name)
    b = rand(rng, (K, N), name, -2, 2) if name != "i8" else rand(rng, (K, N), name)
    c = np.zeros((M, N), NP[acc])
    dot_tile_kernel[(1,)](a, b, c, M=M, N=N, K=K)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    if name == "i8":
        np.testing.assert_array_equal(c, (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32))
    else:
        tol = 1e-12 if name == "fp64" else 1e-4
        np.testing.assert_allclose(c.astype(np.float64), ref, rtol=tol, atol=tol)


@ky.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    pid_m = kl.program_id(0)
    pid_n = kl.program_id(1)
    rm = pid_m * BM + kl.arange(0, BM)
    rn = pid_n * BN + kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    for k in range(0, K, BK):
        a = kl.load(a_ptr + rm[:, None] * stride_am + (k + rk)[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & ((k + rk)[None, :] < K), other=0.0)
        b = kl.load(b_ptr + (k + rk)[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=((k + rk)[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = kl.dot(a, b, acc)  # acc += a @ b
    c = acc.to(c_ptr.dtype.element_ty)
    kl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, c, mask=(rm[:, None] < M) & (rn[None, :] < N))


@pytest.mark.parametrize("name", ["fp32", "fp16"])
@pytest.mark.parametrize("M,N,K", [(32, 64, 64), (37, 45, 70)])
def test_blocked_matmul_with_k_loop(device, name, M, N, K):
    rng = np.random.default_rng(M * N)
    a = rand(rng, (M, K), name, -1, 1)
    b = rand(rng, (K, N), name, -1, 1)
    c = np.zeros((M, N), NP[name])
    BM, BN, BK = 16, 32, 16
    matmul_kernel[(cdiv(M, BM), cdiv(N, BN))](a, b, c, M, N, K, *[s // a.itemsize for s in a.strides],
                                             *[s // b.itemsize for s in b.strides],
                                             *[s // c.itemsize for s in c.strides], BM=BM, BN=BN, BK=BK)
    ref = (a.astype(np.float64) @ b.astype(np.float64))
    if name == "fp16":  # the fp32 accumulator is rounded once to fp16 at the end
        np.testing.assert_allclose(c.astype(np.float64), ref.astype(np.float16).astype(np.float64), rtol=2e-3, atol=2e-3)
    else:
        np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4)


def test_matmul_with_transposed_operand_strides(device):
    # B given as a transposed view (column-major): strides carry the layout
    rng = np.random.default_rng(4)
    M, N, K = 20, 24, 40
    a = rng.standard_normal((M, K)).astype(np.float32)
    bt = rng.standard_normal((N, K)).astype(np.float32)
    c = np.zeros((M, N), np.float32)
    matmul_kernel[(cdiv(M, 16), cdiv(N, 32))](a, bt, c, M, N, K, K, 1, 1, K, N, 1, BM=16, BN=32, BK=16)
    np.testing.assert_allclose(c, a.astype(np.float64) @ bt.T.astype(np.float64), rtol=1e-4, atol=1e-4)

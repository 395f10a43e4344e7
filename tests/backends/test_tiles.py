"""2-D tiles: broadcasting (x[:, None] + y[None, :]), expand_dims, reshape, trans/permute,
broadcast_to, full/zeros, and 2-D masked loads/stores with row strides. All exact."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import cdiv


@ky.jit
def outer_kernel(x_ptr, y_ptr, out_ptr, M, N, stride_om, BM: kl.constexpr, BN: kl.constexpr):
    rm = kl.program_id(0) * BM + kl.arange(0, BM)
    rn = kl.program_id(1) * BN + kl.arange(0, BN)
    x = kl.load(x_ptr + rm, mask=rm < M)
    y = kl.load(y_ptr + rn, mask=rn < N)
    z = x[:, None] * 10 + y[None, :]
    kl.static_assert(z.shape == (BM, BN))
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    kl.store(out_ptr + rm[:, None] * stride_om + rn[None, :], z, mask=mask)


@pytest.mark.parametrize("M,N", [(16, 16), (37, 50), (1, 70)])
def test_outer_broadcast_on_2d_grid(device, M, N):
    x = np.arange(M, dtype=np.float32)
    y = np.arange(N, dtype=np.float32) / 100
    out = np.full((M, N + 3), -1, np.float32)  # row stride N + 3: the last 3 columns must stay -1
    outer_kernel[(cdiv(M, 16), cdiv(N, 32))](x, y, out, M, N, N + 3, BM=16, BN=32)
    np.testing.assert_array_equal(out[:, :N], x[:, None] * 10 + y[None, :])
    assert (out[:, N:] == -1).all()


@ky.jit
def shape_ops_kernel(x_ptr, out_ptr, BM: kl.constexpr, BN: kl.constexpr):
    rm = kl.arange(0, BM)
    rn = kl.arange(0, BN)
    x = kl.load(x_ptr + kl.expand_dims(rm, 1) * BN + kl.expand_dims(rn, 0))  # BM x BN
    # trans
    t = kl.trans(x)
    kl.static_assert(t.shape == (BN, BM))
    kl.store(out_ptr + rn[:, None] * BM + rm[None, :], t)
    # reshape (row-major order is kept)
    r = kl.reshape(x, (BM * BN // 4, 4))
    base = BM * BN
    kl.store(out_ptr + base + kl.arange(0, BM * BN // 4)[:, None] * 4 + kl.arange(0, 4)[None, :], r)
    # .T and permute spellings, and ravel
    kl.store(out_ptr + 2 * base + kl.arange(0, BM * BN), kl.ravel(x.T))
    p = kl.permute(x, (1, 0))
    kl.store(out_ptr + 3 * base + rn[:, None] * BM + rm[None, :], p)
    # broadcast_to + full + zeros
    col = kl.broadcast_to(kl.expand_dims(rm, 1), (BM, BN)) + kl.full((BM, BN), 100, kl.int32) + kl.zeros((BM, BN), kl.int32)
    kl.store(out_ptr + 4 * base + rm[:, None] * BN + rn[None, :], col.to(kl.float32))
    # 3-D tile via reshape, reduced over the middle axis
    three = kl.reshape(x, (BM, BN // 2, 2))
    kl.store(out_ptr + 5 * base + rm[:, None] * 2 + kl.arange(0, 2)[None, :], kl.sum(three, axis=1))


def test_reshape_trans_expand_dims(device):
    BM, BN = 8, 16
    x = np.arange(BM * BN, dtype=np.float32).reshape(BM, BN)
    out = np.zeros(6 * BM * BN, np.float32)
    shape_ops_kernel[(1,)](x, out, BM=BM, BN=BN)
    base = BM * BN
    np.testing.assert_array_equal(out[:base].reshape(BN, BM), x.T)
    np.testing.assert_array_equal(out[base:2 * base].reshape(-1, 4), x.reshape(-1, 4))
    np.testing.assert_array_equal(out[2 * base:3 * base], x.T.ravel())
    np.testing.assert_array_equal(out[3 * base:4 * base].reshape(BN, BM), x.T)
    np.testing.assert_array_equal(out[4 * base:5 * base].reshape(BM, BN), np.arange(BM)[:, None] + 100 + 0 * x)
    np.testing.assert_array_equal(out[5 * base:5 * base + BM * 2].reshape(BM, 2), x.reshape(BM, BN // 2, 2).sum(1))


@ky.jit
def row_broadcast_kernel(x_ptr, b_ptr, out_ptr, M, N, BM: kl.constexpr, BN: kl.constexpr):
    rm = kl.arange(0, BM)[:, None]
    rn = kl.arange(0, BN)[None, :]
    mask = (rm < M) & (rn < N)
    x = kl.load(x_ptr + rm * N + rn, mask=mask, other=0.0)
    b = kl.load(b_ptr + rn, mask=rn < N, other=0.0)  # 1 x BN, broadcast over the rows
    s = kl.load(b_ptr)  # a scalar, splat over the tile
    kl.store(out_ptr + rm * N + rn, x * b - s, mask=mask)


def test_row_and_scalar_broadcast(device):
    rng = np.random.default_rng(1)
    M, N = 5, 21
    x = rng.standard_normal((M, N)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    out = np.zeros_like(x)
    row_broadcast_kernel[(1,)](x, b, out, M, N, BM=8, BN=32)
    np.testing.assert_allclose(out, x * b[None, :] - b[0], rtol=1e-6, atol=1e-6)

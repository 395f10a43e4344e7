"""Reductions (sum/max/min/argmax/argmin, keep_dims) and scans (cumsum) of 1-D and 2-D tiles.

A 2-D tile of BM x BN is loaded from an M x N array (M, N not multiples of the block: masked
lanes get the reduction's neutral element through `other=`). Exact for integers and for
max/min/arg*; sums of floats are compared with tolerances that allow any summation order:
fp32 rtol 1e-5, fp64 1e-12; fp16 sums accumulate in fp16 (Triton's rule), so their bound is the
worst case of that: (terms - 1) roundings of half an fp16 ulp of the largest partial sum.
"""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import NP, rand

SUM_TOL = {"fp32": (1e-5, 1e-5), "fp64": (1e-12, 1e-12)}
LIMITS = {"i8": (-128, 127)}  # `other=` values that are neutral for max/min in each dtype


@ky.jit
def reduce2d_kernel(x_ptr, sum_ptr, max_ptr, min_ptr, amax_ptr, amin_ptr, M, N, stride,
                    AXIS: kl.constexpr, LO: kl.constexpr, HI: kl.constexpr, BM: kl.constexpr, BN: kl.constexpr):
    rows = kl.arange(0, BM)[:, None]
    cols = kl.arange(0, BN)[None, :]
    mask = (rows < M) & (cols < N)
    ptrs = x_ptr + rows * stride + cols
    x0 = kl.load(ptrs, mask=mask, other=0)
    lo = kl.load(ptrs, mask=mask, other=LO)  # below every element: neutral for max / argmax
    hi = kl.load(ptrs, mask=mask, other=HI)
    s = kl.sum(x0, axis=AXIS)
    mx = kl.max(lo, axis=AXIS)
    mn = kl.min(hi, axis=AXIS)
    am = kl.argmax(lo, axis=AXIS)
    an = kl.argmin(hi, axis=AXIS)
    # the reduced axis disappears: 1-D results of the other axis' length
    kl.static_assert(len(s.shape) == 1)
    out = kl.arange(0, BN if AXIS == 0 else BM)
    omask = out < (N if AXIS == 0 else M)
    kl.store(sum_ptr + out, s, mask=omask)
    kl.store(max_ptr + out, mx, mask=omask)
    kl.store(min_ptr + out, mn, mask=omask)
    kl.store(amax_ptr + out, am, mask=omask)
    kl.store(amin_ptr + out, an, mask=omask)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", ["fp32", "i32", "fp16", "i8", "fp64"])
def test_reduce_2d(device, name, axis):
    rng = np.random.default_rng(axis * 7 + len(name))
    M, N = 13, 29
    x = rand(rng, (M, N), name, -4, 4) if name == "fp16" else rand(rng, (M, N), name, -100, 100)
    if name in ("i32", "i8"):
        x = rng.integers(-5, 5, (M, N)).astype(NP[name])  # many ties: arg* must pick the first index
    length = N if axis == 0 else M
    sum_t = "i32" if name == "i8" else name  # sums of narrow integers accumulate in i32 (Triton)
    outs = [np.zeros(length, NP[sum_t]), np.zeros(length, NP[name]), np.zeros(length, NP[name]),
            np.zeros(length, np.int32), np.zeros(length, np.int32)]
    lo, hi = LIMITS.get(name, (-1000, 1000))
    reduce2d_kernel[(1,)](x, *outs, M, N, N, AXIS=axis, LO=lo, HI=hi, BM=16, BN=32)
    s, mx, mn, am, an = outs
    if name == "fp16":
        terms = x.shape[axis]
        bound = (terms - 1) * 0.5 * np.spacing(np.float16(np.abs(x.astype(np.float64)).sum(axis).max()))
        np.testing.assert_allclose(s.astype(np.float64), x.astype(np.float64).sum(axis), rtol=0, atol=bound)
    elif name in SUM_TOL:
        rtol, atol = SUM_TOL[name]
        np.testing.assert_allclose(s.astype(np.float64), x.astype(np.float64).sum(axis), rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(s, x.astype(np.int64).sum(axis))
    np.testing.assert_array_equal(mx, x.max(axis))
    np.testing.assert_array_equal(mn, x.min(axis))
    np.testing.assert_array_equal(am, x.argmax(axis))
    np.testing.assert_array_equal(an, x.argmin(axis))


@ky.jit
def reduce_keepdims_kernel(x_ptr, out_ptr, M, N, BM: kl.constexpr, BN: kl.constexpr):
    rows = kl.arange(0, BM)[:, None]
    cols = kl.arange(0, BN)[None, :]
    mask = (rows < M) & (cols < N)
    x = kl.load(x_ptr + rows * N + cols, mask=mask, other=-float("inf"))
    m = kl.max(x, axis=1, keep_dims=True)  # BM x 1, broadcasts back against x
    kl.static_assert(m.shape == (BM, 1))
    e = kl.where(mask, kl.exp(x - m), 0.0)  # padded rows are all -inf: keep their NaNs out of the sum
    s = kl.sum(e, axis=0, keep_dims=True)  # 1 x BN
    kl.static_assert(s.shape == (1, BN))
    kl.store(out_ptr + rows * N + cols, e / s + m, mask=mask)


def test_keep_dims(device):
    rng = np.random.default_rng(3)
    M, N = 10, 20
    x = rng.standard_normal((M, N)).astype(np.float32)
    out = np.zeros_like(x)
    reduce_keepdims_kernel[(1,)](x, out, M, N, BM=16, BN=32)
    m = x.max(1, keepdims=True)
    e = np.exp(x - m)
    np.testing.assert_allclose(out, e / e.sum(0, keepdims=True) + m, rtol=1e-5, atol=1e-6)


@ky.jit
def reduce_all_kernel(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs, mask=offs < n, other=0)
    x2 = kl.reshape(x, (BLOCK // 8, 8))
    kl.store(out_ptr, kl.sum(x2))  # axis=None: the whole tile, a scalar
    kl.store(out_ptr + 1, kl.sum(x, axis=0))
    kl.store(out_ptr + 2, x.sum(axis=0))  # method spelling
    kl.store(out_ptr + 3, kl.max(x2, axis=None))
    v, i = kl.max(x, axis=0, return_indices=True)
    kl.store(out_ptr + 4, v)
    kl.store(out_ptr + 5, i)


def test_reduce_to_scalar(device):
    x = np.arange(100, dtype=np.int32) * 3 - 50
    x[60] = 400
    out = np.zeros(6, np.int32)
    reduce_all_kernel[(1,)](x, out, 100, BLOCK=128)
    np.testing.assert_array_equal(out, [x.sum(), x.sum(), x.sum(), 400, 400, 60])


@ky.jit
def cumsum_kernel(x_ptr, out_ptr, M, N, AXIS: kl.constexpr, BM: kl.constexpr, BN: kl.constexpr):
    rows = kl.arange(0, BM)[:, None]
    cols = kl.arange(0, BN)[None, :]
    mask = (rows < M) & (cols < N)
    x = kl.load(x_ptr + rows * N + cols, mask=mask, other=0)
    kl.store(out_ptr + rows * N + cols, kl.cumsum(x, axis=AXIS), mask=mask)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", ["fp32", "i32", "i64"])
def test_cumsum_2d(device, name, axis):
    rng = np.random.default_rng(5)
    M, N = 7, 45
    x = rand(rng, (M, N), name, -100, 100)
    out = np.zeros_like(x)
    cumsum_kernel[(1,)](x, out, M, N, AXIS=axis, BM=8, BN=64)
    if name == "fp32":
        np.testing.assert_allclose(out, np.cumsum(x.astype(np.float64), axis), rtol=1e-5, atol=1e-4)
    else:
        np.testing.assert_array_equal(out, np.cumsum(x, axis))


@ky.jit
def cumsum1d_kernel(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs, mask=offs < n, other=0)
    kl.store(out_ptr + offs, kl.cumsum(x, 0), mask=offs < n)


def test_cumsum_1d_of_int8_accumulates_in_int32(device):
    x = np.full(100, 100, np.int8)  # the running sum leaves int8's range
    out = np.zeros(100, np.int32)
    cumsum1d_kernel[(1,)](x, out, 100, BLOCK=128)
    np.testing.assert_array_equal(out, np.cumsum(x.astype(np.int32)))


@ky.jit
def _add_combine(a, b):
    return a + b


@ky.jit
def _argmax_combine(v1, i1, v2, i2):
    better = (v2 > v1) | ((v2 == v1) & (i2 < i1))
    return kl.where(better, v2, v1), kl.where(better, i2, i1)


@ky.jit
def generic_reduce_kernel(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.store(out_ptr, kl.reduce(x, 0, _add_combine))
    v, i = kl.reduce((x, offs), 0, _argmax_combine)
    kl.store(out_ptr + 1, v)
    kl.store(out_ptr + 2, i.to(kl.float32))


def test_reduce_with_jit_combine_fn(device):
    x = np.random.default_rng(8).standard_normal(64).astype(np.float32)
    out = np.zeros(3, np.float32)
    generic_reduce_kernel[(1,)](x, out, BLOCK=64)
    np.testing.assert_allclose(out[0], x.astype(np.float64).sum(), rtol=1e-5, atol=1e-5)
    assert out[1] == x.max() and out[2] == x.argmax()


@ky.jit
def unsigned_reduce_kernel(x_ptr, out_ptr, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.store(out_ptr, kl.max(x, axis=0))
    kl.store(out_ptr + 1, kl.min(x, axis=0))
    kl.store(out_ptr + 2, kl.argmax(x, axis=0).to(out_ptr.dtype.element_ty))


@pytest.mark.parametrize("name", ["u8", "u32"])
def test_unsigned_max_min_reductions(device, name):
    t = np.dtype(np.uint8 if name == "u8" else np.uint32)
    top = np.iinfo(t).max
    x = np.array([3, top - 55, top, 100, 7, top // 2 + 1, 1, 2], t)  # values with the top bit set
    out = np.zeros(3, t)
    unsigned_reduce_kernel[(1,)](x, out, BLOCK=8)
    np.testing.assert_array_equal(out, [x.max(), x.min(), x.argmax()])


@ky.jit
def count_true_kernel(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask, other=0.0)
    kl.store(out_ptr, kl.sum(x > 0, axis=0))  # a bool tile sums as i32: a count
    kl.store(out_ptr + 1, kl.sum(mask.to(kl.int32), axis=0))


def test_sum_of_bool_counts(device):
    x = np.array([1.0, -1.0, 2.0, 0.0, 5.0, -3.0], np.float32)
    out = np.zeros(2, np.int32)
    count_true_kernel[(1,)](x, out, 6, BLOCK=8)
    np.testing.assert_array_equal(out, [3, 6])

"""Kernels compiled offline for CUDA by test_offline.py (their specialisations are given there)."""

import kaiyuan as ky
import kaiyuan.language as kl


@ky.jit
def vector_add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=mask) + kl.load(y_ptr + offs, mask=mask), mask=mask)


@ky.jit
def softmax(x_ptr, y_ptr, n_cols, stride, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    cols = kl.arange(0, BLOCK)
    mask = cols < n_cols
    x = kl.load(x_ptr + row * stride + cols, mask=mask, other=-float("inf")).to(kl.float32)
    e = kl.exp(x - kl.max(x, axis=0))
    kl.store(y_ptr + row * stride + cols, e / kl.sum(e, axis=0), mask=mask)


@ky.jit
def matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    rm = kl.program_id(0) * BM + kl.arange(0, BM)
    rn = kl.program_id(1) * BN + kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    for k in range(0, K, BK):
        kk = k + rk
        a = kl.load(a_ptr + rm[:, None] * K + kk[None, :], mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = kl.load(b_ptr + kk[:, None] * N + rn[None, :], mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc += kl.dot(a, b)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


@ky.jit
def histogram(x_ptr, bins_ptr, total_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask, other=0)
    kl.atomic_add(bins_ptr + (x & 15), 1, mask=mask)
    kl.atomic_add(total_ptr, kl.sum(kl.where(mask, x, 0).to(kl.float32), axis=0))


@ky.jit
def spin_lock(lock_ptr, count_ptr):
    while kl.atomic_cas(lock_ptr, 0, 1) != 0:
        pass
    kl.store(count_ptr, kl.load(count_ptr) + 1)
    kl.atomic_xchg(lock_ptr, 0)


@ky.jit
def cast_halves(x_ptr, h_ptr, b_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(h_ptr + offs, (x * 2).to(kl.float16), mask=mask)
    kl.store(b_ptr + offs, (x + 1).to(kl.bfloat16), mask=mask)


@ky.jit
def checked(x_ptr, n):
    kl.device_assert(n > 0, "n must be positive")
    kl.store(x_ptr, n)

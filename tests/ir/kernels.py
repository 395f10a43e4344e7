"""Kernels whose frontend-generated IR the round-trip tests print and re-parse."""

import kaiyuan as ky
import kaiyuan.language as kl


@ky.jit
def k_loop(x_ptr, y_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    acc = kl.zeros((BLOCK,), kl.float32)
    for i in range(n):
        acc += kl.load(x_ptr + i * BLOCK + offs, mask=offs < n, other=0.0)
    kl.store(y_ptr + offs, acc, mask=offs < n)


@ky.jit
def k_if_while(x_ptr, y_ptr, n, BLOCK: kl.constexpr):
    v = kl.load(x_ptr)
    if n > 3:
        v = v * 2.0
    else:
        v = -v
    i = 0
    while i < n:
        v += 1.0
        i += kl.num_programs(0)
    kl.store(y_ptr, v)


@ky.jit
def k_reduce_dot(x_ptr, y_ptr, n, BLOCK: kl.constexpr):
    r = kl.arange(0, BLOCK)
    offs = r[:, None] * BLOCK + r[None, :]
    a = kl.load(x_ptr + offs)
    c = kl.dot(a, kl.trans(a))
    s = kl.sum(c, axis=1)
    m, idx = kl.max(c, axis=0, return_indices=True)
    kl.store(y_ptr + r, s + m + kl.cumsum(s, axis=0) + idx)
    kl.store(y_ptr + kl.reshape(offs, (BLOCK * BLOCK,)), kl.reshape(c, (BLOCK * BLOCK,)))


@ky.jit
def k_atomics(x_ptr, y_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.atomic_add(y_ptr + offs, kl.load(x_ptr + offs), mask=offs < n)
    kl.atomic_max(y_ptr, 1.0)
    kl.atomic_cas(y_ptr, 0.0, 1.0)
    kl.device_print("n =", n)
    kl.device_assert(n > 0, "n must be positive")


@ky.jit
def k_casts(x_ptr, y_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    v = kl.load(x_ptr + offs)
    i = v.to(kl.int32)
    u = (i & 0xFF).to(kl.uint8)
    h = v.to(kl.float16)
    w = kl.where(u > 3, h.to(kl.float32), i.to(kl.float32) / n)
    kl.store(y_ptr + offs, w + u.to(kl.float32) + v.to(kl.int32, bitcast=True).to(kl.float32))


ALL = [k_loop, k_if_while, k_reduce_dot, k_atomics, k_casts]
SIG = {"x_ptr": "*fp32", "y_ptr": "*fp32", "n": "i32"}

"""Program ids and grids (1-D, 2-D, 3-D, callable of meta), num_programs, and atomics from many
programs (exact for integers; fp32 adds of values whose sums are exact in any order)."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl
import kaiyuan.triton as triton

from ._support import NP


@ky.jit
def grid_kernel(out_ptr):
    x, y, z = kl.program_id(0), kl.program_id(1), kl.program_id(2)
    nx, ny, nz = kl.num_programs(0), kl.num_programs(1), kl.num_programs(2)
    flat = (z * ny + y) * nx + x
    kl.store(out_ptr + flat * 6 + 0, x)
    kl.store(out_ptr + flat * 6 + 1, y)
    kl.store(out_ptr + flat * 6 + 2, z)
    kl.store(out_ptr + flat * 6 + 3, nx)
    kl.store(out_ptr + flat * 6 + 4, ny)
    kl.store(out_ptr + flat * 6 + 5, nz)


@pytest.mark.parametrize("grid", [(5,), (3, 4), (2, 3, 4), (1, 1, 1), 7])
def test_program_ids_and_num_programs(device, grid):
    g = (grid,) if isinstance(grid, int) else grid
    g3 = tuple(g) + (1,) * (3 - len(g))
    total = g3[0] * g3[1] * g3[2]
    out = np.full((total, 6), -1, np.int32)
    grid_kernel[grid](out)
    expect = [(x, y, z, *g3) for z in range(g3[2]) for y in range(g3[1]) for x in range(g3[0])]
    np.testing.assert_array_equal(out, np.array(expect, np.int32))


@ky.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


@pytest.mark.parametrize("block", [16, 64])
def test_grid_callable_of_meta(device, block):
    n = 1000
    x = np.arange(n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    seen = {}

    def grid(meta):
        seen.update(meta)
        return (triton.cdiv(meta["n"], meta["BLOCK"]),)

    copy_kernel[grid](x, out, n, BLOCK=block)
    assert seen["BLOCK"] == block and seen["n"] == n
    np.testing.assert_array_equal(out, x)  # every block was launched


def test_empty_grid_launches_nothing(device):
    out = np.zeros(4, np.float32)
    copy_kernel[(0,)](np.ones(4, np.float32), out, 4, BLOCK=16)
    assert (out == 0).all()


@ky.jit
def counter_kernel(counter_ptr, tickets_ptr, fsum_ptr, hist_ptr, x_ptr, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    old = kl.atomic_add(counter_ptr, 1)  # scalar atomic: returns the old value (a ticket)
    kl.store(tickets_ptr + pid, old)
    kl.atomic_add(fsum_ptr, 0.5)  # fp32 atomic add; 0.5 * P is exact in any order
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    bins = kl.load(x_ptr + offs) % 8
    kl.atomic_add(hist_ptr + bins, 1)  # many lanes of one op hit the same bin


@pytest.mark.parametrize("name", ["i32", "i64", "u32"])
def test_atomic_add_from_many_programs(device, name):
    P, BLOCK = 64, 32
    t = np.dtype({"i32": np.int32, "i64": np.int64, "u32": np.uint32}[name])
    counter = np.zeros(1, t)
    tickets = np.full(P, -1, np.int64)
    fsum = np.zeros(1, np.float32)
    hist = np.zeros(8, t)
    x = np.random.default_rng(0).integers(0, 1000, P * BLOCK).astype(np.int32)
    counter_kernel[(P,)](counter, tickets, fsum, hist, x, BLOCK=BLOCK)
    assert counter[0] == P
    np.testing.assert_array_equal(np.sort(tickets), np.arange(P))  # each program got a distinct ticket
    assert fsum[0] == 0.5 * P
    np.testing.assert_array_equal(hist, np.bincount(x % 8, minlength=8))


@ky.jit
def minmax_atomics_kernel(x_ptr, max_ptr, min_ptr, bits_ptr, BLOCK: kl.constexpr):
    pid = kl.program_id(0)
    offs = pid * BLOCK + kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs)
    kl.atomic_max(max_ptr, kl.max(x, axis=0))
    kl.atomic_min(min_ptr, kl.min(x, axis=0))
    kl.atomic_max(max_ptr + 1 + kl.arange(0, BLOCK), x)  # element-wise across programs
    kl.atomic_or(bits_ptr, 1 << (pid % 31))
    kl.atomic_xor(bits_ptr + 1, pid)
    kl.atomic_and(bits_ptr + 2, ~(1 << (pid % 31)))


@pytest.mark.parametrize("name", ["i32", "fp32"])
def test_atomic_max_min_and_bitwise(device, name):
    P, BLOCK = 40, 16
    rng = np.random.default_rng(1)
    x = (rng.integers(-10**6, 10**6, (P, BLOCK))).astype(NP[name])
    mx = np.full(1 + BLOCK, -(10**7), NP[name])
    mn = np.full(1, 10**7, NP[name])
    bits = np.array([0, 0, -1], np.int32)
    minmax_atomics_kernel[(P,)](x, mx, mn, bits, BLOCK=BLOCK)
    assert mx[0] == x.max() and mn[0] == x.min()
    np.testing.assert_array_equal(mx[1:], x.max(0))
    ref_or = 0
    ref_xor = 0
    for pid in range(P):
        ref_or |= 1 << (pid % 31)
        ref_xor ^= pid
    assert bits[0] == ref_or and bits[1] == ref_xor
    assert bits[2] == np.int32(-1) & ~np.int32(ref_or)


@ky.jit
def unsigned_atomic_max_kernel(x_ptr, out_ptr):
    kl.atomic_max(out_ptr, kl.load(x_ptr + kl.program_id(0)))


def test_atomic_max_unsigned_order(device):
    x = np.array([1, 200, 255, 7, 128], np.uint32) * np.uint32(2**24)  # top bit set: negative if signed
    out = np.zeros(1, np.uint32)
    unsigned_atomic_max_kernel[(5,)](x, out)
    assert out[0] == x.max()


@ky.jit
def once_kernel(flag_ptr, winners_ptr, out_ptr):
    pid = kl.program_id(0)
    old = kl.atomic_cas(flag_ptr, 0, pid + 1)  # spin-free: exactly one program sees 0
    if old == 0:
        kl.atomic_add(winners_ptr, 1)
        kl.store(out_ptr, pid)
    old2 = kl.atomic_xchg(flag_ptr + 1, pid + 1)  # every program swaps once
    kl.atomic_add(winners_ptr + 1, (old2 == 0).to(kl.int32))


def test_atomic_cas_once_only_flag(device):
    P = 50
    flag = np.zeros(2, np.int32)
    winners = np.zeros(2, np.int32)
    out = np.full(1, -1, np.int32)
    once_kernel[(P,)](flag, winners, out)
    assert winners[0] == 1, "exactly one program wins the compare-and-swap"
    assert 0 <= out[0] < P and flag[0] == out[0] + 1
    assert winners[1] == 1, "exactly one program saw the initial 0 through xchg"
    assert 1 <= flag[1] <= P


@ky.jit
def masked_atomic_kernel(acc_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    old = kl.atomic_add(acc_ptr + offs, offs + 1, mask=offs < n)
    kl.static_assert(old.shape == (BLOCK,))


def test_masked_tile_atomic(device):
    acc = np.zeros(16, np.int32)
    masked_atomic_kernel[(3,)](acc, 10, BLOCK=16)
    np.testing.assert_array_equal(acc, np.where(np.arange(16) < 10, 3 * (np.arange(16) + 1), 0))

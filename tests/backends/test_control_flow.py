"""Control flow in kernels: `for` with carried tiles, `if` on run-time scalars with results,
`while`, `static_range` unrolling, constexpr `if`, inlined @ky.jit calls (incl. tuple returns),
and scalar loads/stores."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl


@ky.jit
def row_sums_kernel(x_ptr, out_ptr, n_cols, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    acc = kl.zeros((BLOCK,), kl.float32)  # a tile carried through the loop
    count = 0  # a scalar carried through the loop (i32)
    for start in range(0, n_cols, BLOCK):
        offs = start + kl.arange(0, BLOCK)
        acc += kl.load(x_ptr + row * n_cols + offs, mask=offs < n_cols, other=0.0)
        count += 1
    kl.store(out_ptr + 2 * row, kl.sum(acc, axis=0))
    kl.store(out_ptr + 2 * row + 1, count.to(kl.float32))


@pytest.mark.parametrize("n_cols", [0, 5, 64, 200])
def test_for_loop_with_carried_tile(device, n_cols):
    rng = np.random.default_rng(n_cols)
    x = rng.standard_normal((3, n_cols)).astype(np.float32)
    out = np.full(6, -1, np.float32)
    row_sums_kernel[(3,)](x, out, n_cols, BLOCK=32)
    np.testing.assert_allclose(out[0::2], x.astype(np.float64).sum(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[1::2], -(-n_cols // 32))


@ky.jit
def loop_forms_kernel(out_ptr, lo, hi, step):
    s = 0
    for i in range(hi):  # one-argument range
        s += i
    kl.store(out_ptr, s)
    t = 0
    for i in range(lo, hi, step):  # run-time bounds and step
        t += i * i
    kl.store(out_ptr + 1, t)
    p = 1
    for i in range(3):
        for j in range(lo, lo + 2):  # nested loops
            p = p * 2 + j
    kl.store(out_ptr + 2, p)


def test_loop_forms(device):
    out = np.zeros(3, np.int32)
    loop_forms_kernel[(1,)](out, 2, 11, 3)
    p = 1
    for _ in range(3):
        for j in range(2, 4):
            p = p * 2 + j
    np.testing.assert_array_equal(out, [sum(range(11)), sum(i * i for i in range(2, 11, 3)), p])


@ky.jit
def if_kernel(x_ptr, out_ptr, n, threshold):
    pid = kl.program_id(0)
    v = kl.load(x_ptr + pid)
    if v > threshold:  # run-time scalar condition → scf.if with results
        r = v * 2.0
        tag = 1
    elif v < -threshold:
        r = -v
        tag = 2
    else:
        r = 0.0
        tag = 3
    offs = kl.arange(0, 4)
    if pid % 2 == 0:  # a tile defined in both branches
        t = offs * 10
    else:
        t = offs + 100
    kl.store(out_ptr + pid * 6, r)
    kl.store(out_ptr + pid * 6 + 1, tag.to(kl.float32))
    kl.store(out_ptr + pid * 6 + 2 + offs, t.to(kl.float32))


def test_if_on_runtime_scalar_with_results(device):
    x = np.array([3.0, -4.0, 0.5, 10.0, -0.25], np.float32)
    out = np.zeros(6 * 5, np.float32).reshape(5, 6)
    if_kernel[(5,)](x, out, 5, 1.0)
    np.testing.assert_array_equal(out[:, 0], [6.0, 4.0, 0.0, 20.0, 0.0])
    np.testing.assert_array_equal(out[:, 1], [1, 2, 3, 1, 3])
    for pid in range(5):
        ref = np.arange(4) * 10 if pid % 2 == 0 else np.arange(4) + 100
        np.testing.assert_array_equal(out[pid, 2:], ref)


@ky.jit
def if_without_else_kernel(out_ptr, n):
    x = 5
    if n > 10:
        x = x + n  # only one branch assigns: x keeps its old value otherwise
    kl.store(out_ptr, x)


@pytest.mark.parametrize("n,expect", [(3, 5), (20, 25)])
def test_if_without_else(device, n, expect):
    out = np.zeros(1, np.int32)
    if_without_else_kernel[(1,)](out, n)
    assert out[0] == expect


@ky.jit
def collatz_kernel(x_ptr, out_ptr):
    pid = kl.program_id(0)
    v = kl.load(x_ptr + pid)
    steps = 0
    while v != 1:
        if v % 2 == 0:
            v = v // 2
        else:
            v = 3 * v + 1
        steps += 1
    kl.store(out_ptr + pid, steps)


def test_while_loop(device):
    x = np.array([1, 6, 7, 27], np.int32)
    out = np.full(4, -1, np.int32)
    collatz_kernel[(4,)](x, out)

    def collatz(v):
        s = 0
        while v != 1:
            v = v // 2 if v % 2 == 0 else 3 * v + 1
            s += 1
        return s

    np.testing.assert_array_equal(out, [collatz(v) for v in x])


@ky.jit
def static_range_kernel(x_ptr, out_ptr, N: kl.constexpr, UNROLL: kl.constexpr):
    offs = kl.arange(0, N)
    acc = kl.zeros((N,), kl.float32)
    for i in kl.static_range(UNROLL):  # unrolled at compile time: i is a constexpr
        acc += kl.load(x_ptr + i * N + offs) * (i + 1)
    if UNROLL > 2:  # constexpr if: resolved while compiling
        acc = acc * 10
    kl.store(out_ptr + offs, acc)


@pytest.mark.parametrize("unroll", [2, 4])
def test_static_range_and_constexpr_if(device, unroll):
    x = np.random.default_rng(2).standard_normal((unroll, 16)).astype(np.float32)
    out = np.zeros(16, np.float32)
    kernel = static_range_kernel[(1,)](x, out, N=16, UNROLL=unroll)
    ref = sum(x[i].astype(np.float64) * (i + 1) for i in range(unroll)) * (10 if unroll > 2 else 1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert "scf.for" not in kernel.asm["ky"]  # unrolled, no loop left


@ky.jit
def _scale_shift(x, scale, SHIFT: kl.constexpr):
    return x * scale + SHIFT


@ky.jit
def _min_max(x):
    return kl.min(x, axis=0), kl.max(x, axis=0)


@ky.jit
def _norm_helper(x):
    lo, hi = _min_max(x)  # nested inlined call
    return (x - lo) / (hi - lo)


@ky.jit
def jit_calls_kernel(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask, other=0.0)
    y = _scale_shift(x, 2.0, 1)
    lo, hi = _min_max(kl.load(x_ptr + offs, mask=mask, other=float("inf")))  # a tuple result, unpacked
    kl.store(out_ptr + offs, y, mask=mask)
    kl.store(out_ptr + n, lo)
    kl.store(out_ptr + n + 1, _min_max(kl.load(x_ptr + offs, mask=mask, other=-float("inf")))[1])  # indexed
    kl.store(out_ptr + n + 2 + offs, _norm_helper(kl.load(x_ptr + offs, mask=mask, other=x_first(x_ptr))), mask=mask)


@ky.jit
def x_first(p):
    return kl.load(p)


def test_inlined_jit_calls(device):
    x = np.random.default_rng(3).standard_normal(20).astype(np.float32)
    out = np.zeros(20 + 2 + 20, np.float32)
    kernel = jit_calls_kernel[(1,)](x, out, 20, BLOCK=32)
    np.testing.assert_allclose(out[:20], x * 2 + 1, rtol=1e-6)
    assert out[20] == x.min() and out[21] == x.max()
    np.testing.assert_allclose(out[22:], (x - x.min()) / (x.max() - x.min()), rtol=1e-5, atol=1e-6)
    assert "func.call" not in kernel.asm["ky"]  # calls are inlined


@ky.jit
def scalar_kernel(x_ptr, out_ptr, n):
    a = kl.load(x_ptr)  # scalar load
    b = kl.load(x_ptr + n - 1)
    kl.store(out_ptr, a + b)  # scalar store
    kl.store(out_ptr + 1, a * b)
    kl.store(out_ptr + 2, n)  # a Python-int argument stored into fp64 memory


def test_scalar_loads_and_stores(device):
    x = np.array([1.5, 2.0, -3.25], np.float64)
    out = np.zeros(3, np.float64)
    scalar_kernel[(1,)](x, out, 3)
    np.testing.assert_array_equal(out, [1.5 - 3.25, 1.5 * -3.25, 3.0])


@ky.jit
def optional_bias_kernel(x_ptr, b_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    if b_ptr is not None:  # an optional pointer argument: None is a compile-time constant
        x += kl.load(b_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, x, mask=mask)


def test_optional_pointer_argument(device):
    x = np.arange(5, dtype=np.float32)
    b = np.full(5, 10, np.float32)
    out = np.zeros(5, np.float32)
    optional_bias_kernel[(1,)](x, b, out, 5, BLOCK=8)
    np.testing.assert_array_equal(out, x + 10)
    optional_bias_kernel[(1,)](x, None, out, 5, BLOCK=8)
    np.testing.assert_array_equal(out, x)


@ky.jit
def while_tile_kernel(out_ptr, limit):
    t = kl.arange(0, 8) + 1  # a tile carried through a while loop
    rounds = 0
    while kl.max(t, axis=0) < limit:
        t = t * 2
        rounds += 1
    kl.store(out_ptr + kl.arange(0, 8), t)
    kl.store(out_ptr + 8, rounds)


def test_while_loop_with_carried_tile(device):
    out = np.zeros(9, np.int32)
    while_tile_kernel[(1,)](out, 100)
    np.testing.assert_array_equal(out[:8], (np.arange(8) + 1) * 16)
    assert out[8] == 4


@ky.jit
def pointer_select_kernel(a_ptr, b_ptr, out_ptr):
    if kl.program_id(0) == 0:  # a pointer as the result of a run-time if
        p = a_ptr
    else:
        p = b_ptr
    kl.store(out_ptr + kl.program_id(0), kl.load(p))


def test_pointer_from_runtime_if(device):
    out = np.zeros(2, np.float32)
    pointer_select_kernel[(2,)](np.array([1.5], np.float32), np.array([-2.0], np.float32), out)
    np.testing.assert_array_equal(out, [1.5, -2.0])

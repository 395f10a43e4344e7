"""CpuProgram.bind_list through kaiyuan.runtime.capture.replay_list: captured launches of several
kernels replayed by one C call (ky_run_list), in order, with a failed assert tagged by the index
of the launch that failed."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan.runtime.capture import capture, replay_list


@ky.jit
def axpy(x_ptr, y_ptr, a, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    kl.store(y_ptr + offs, kl.load(y_ptr + offs, mask=m) + a * kl.load(x_ptr + offs, mask=m), mask=m)


@ky.jit
def check_positive(y_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.device_assert(kl.load(y_ptr + offs, mask=offs < n, other=1.0) > 0, "y must stay positive")


def test_a_captured_run_replays_in_order_as_one_batch():
    with ky.device("cpu"):
        x, y = np.arange(100, dtype=np.float32), np.ones(100, np.float32)
        with capture() as launches:
            axpy[(4,)](x, y, 2.0, 100, BLOCK=32)         # y = 1 + 2x
            axpy[(4,)](y, x, -1.0, 100, BLOCK=32)        # x = x - y = -1 - x  (reads the new y)
        assert len(launches) == 2
        x0, y0 = x.copy(), y.copy()
        replay_list(launches)()                          # the same two launches, in order
        y1 = y0 + 2 * x0
        np.testing.assert_array_equal(y, y1)
        np.testing.assert_array_equal(x, x0 - y1)


def test_a_failed_assert_names_the_launch_in_the_batch():
    with ky.device("cpu"):
        x, y = np.ones(64, np.float32), np.ones(64, np.float32)
        with capture() as launches:
            axpy[(2,)](x, y, -0.5, 64, BLOCK=32)         # y = 0.5: still positive
            check_positive[(2,)](y, 64, BLOCK=32)
        replay = replay_list(launches)
        with pytest.raises(ky.DeviceAssertError, match="y must stay positive") as e:
            replay()                                     # y = 0.0: the check fails
        assert e.value.launch_index == 1


@ky.jit
def block_sum(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    # one program: out[0] = sum(x[:n]) — reads what every thread wrote in the launch before
    acc = kl.zeros((BLOCK,), kl.float32)
    for start in range(0, n, BLOCK):
        offs = start + kl.arange(0, BLOCK)
        acc += kl.load(x_ptr + offs, mask=offs < n, other=0.0)
    kl.store(out_ptr + kl.arange(0, 1), kl.sum(acc, axis=0) + kl.zeros((1,), kl.float32))


@ky.jit
def add_scalar_at(x_ptr, s_ptr, n, BLOCK: kl.constexpr):
    # x += s[0], every program: reads what one thread wrote in the launch before
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    s = kl.load(s_ptr + offs * 0, mask=m)
    kl.store(x_ptr + offs, kl.load(x_ptr + offs, mask=m) + s, mask=m)


def test_one_region_orders_single_and_multi_program_launches():
    # multi (8 programs) -> single -> single -> multi: the barriers between the kinds must make
    # each launch see all of the previous one, whichever thread ran it
    with ky.device("cpu"):
        n = 1000
        x, y = np.arange(n, dtype=np.float32), np.zeros(n, np.float32)
        s, t = np.zeros(1, np.float32), np.zeros(1, np.float32)
        with capture() as launches:
            axpy[(8,)](x, y, 1.0, n, BLOCK=128)          # y += x       (multi)
            block_sum[(1,)](y, s, n, BLOCK=128)          # s = sum(y)   (single, thread 0)
            block_sum[(1,)](s, t, 1, BLOCK=128)          # t = s        (single, after the last)
            add_scalar_at[(8,)](y, t, n, BLOCK=128)      # y += t       (multi)
        for _ in range(3):
            y0 = y.copy()
            replay_list(launches)()
            y1 = y0 + x
            np.testing.assert_allclose(s, [y1.sum(dtype=np.float64)], rtol=1e-5)
            np.testing.assert_allclose(t, s)
            np.testing.assert_allclose(y, y1 + s[0], rtol=1e-5)


@pytest.mark.parametrize("failing_grid", [1, 2])
def test_nothing_runs_after_the_launch_that_failed(failing_grid):
    # the failing launch is a single program (thread 0, no barrier after it) or a multi-program
    # one; the launches after it, single and multi, must not run
    with ky.device("cpu"):
        x, y = np.ones(64, np.float32), np.zeros(64, np.float32)
        z = np.zeros(64, np.float32)
        with capture() as launches:
            axpy[(2,)](x, y, 1.0, 64, BLOCK=32)                      # 0: y = 1
            check_positive[(failing_grid,)](y, 64, BLOCK=64 // failing_grid)  # 1: passes now
            axpy[(1,)](x, z, 1.0, 64, BLOCK=64)                      # 2: z += 1 (single)
            axpy[(2,)](x, z, 1.0, 64, BLOCK=32)                      # 3: z += 1 (multi)
        np.testing.assert_array_equal(z, 2.0)
        replay = replay_list(launches)
        y[:] = -2.0                                                  # launch 0 leaves y = -1
        with pytest.raises(ky.DeviceAssertError, match="y must stay positive") as e:
            replay()
        assert e.value.launch_index == 1
        np.testing.assert_array_equal(y, -1.0)
        np.testing.assert_array_equal(z, 2.0)                        # 2 and 3 did not run
        y[:] = 0.0                                                   # and the list still runs
        replay()
        np.testing.assert_array_equal(z, 4.0)


@ky.jit
def uneven(count_ptr, out_ptr, heavy, BLOCK: kl.constexpr):
    # the first programs of the grid run `heavy` trips, the rest one: thread 0's share takes far
    # longer than the others', which then claim programs from its back
    pid = kl.program_id(0) + kl.num_programs(0) * (kl.program_id(1) + kl.num_programs(1) * kl.program_id(2))
    acc = kl.zeros((BLOCK,), kl.float32)
    for _ in range(0, 1 + heavy * (pid < 4).to(kl.int32)):
        acc += 1.0
    kl.store(out_ptr + pid * BLOCK + kl.arange(0, BLOCK), acc)
    kl.atomic_add(count_ptr + pid, 1)


@pytest.mark.parametrize("grid", [(97,), (5, 3, 7)])
def test_every_program_runs_once_when_the_shares_are_uneven(grid):
    # the threads share a launch's programs out at run time (prelude.h, ky_share_run): whether
    # launched alone (ky_run_one) or in a list, each program must run exactly once
    total, heavy = int(np.prod(grid)), 20000
    trips = np.where(np.arange(total) < 4, 1 + heavy, 1).astype(np.float32)
    with ky.device("cpu"):
        count, out = np.zeros(total, np.int32), np.zeros((total, 16), np.float32)
        with capture() as launches:
            uneven[grid](count, out, heavy, BLOCK=16)
            uneven[grid](count, out, heavy, BLOCK=16)
        np.testing.assert_array_equal(count, 2)
        np.testing.assert_array_equal(out, np.repeat(trips[:, None], 16, axis=1))
        for _ in range(3):
            replay_list(launches)()
        np.testing.assert_array_equal(count, 8)

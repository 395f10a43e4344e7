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

"""device_print writes one line per program to stdout (fd 1: C printf too, hence capfd);
a failing device_assert raises kaiyuan.DeviceAssertError naming the kernel's file and line."""

import inspect
import os

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl


@ky.jit
def print_kernel(x_ptr, n):
    pid = kl.program_id(0)
    v = kl.load(x_ptr + pid)
    kl.device_print("value is", v)
    kl.device_print("tile", kl.arange(0, 4) + pid * 10)


def test_device_print(device, capfd):
    x = np.array([7, 42], np.int32)
    print_kernel[(2,)](x, 2)
    ky.synchronize()
    out = capfd.readouterr().out
    lines = [line for line in out.splitlines() if "value is" in line]
    assert len(lines) == 2, out
    assert any("42" in line for line in lines) and any("7" in line for line in lines)
    tile_lines = [line for line in out.splitlines() if "tile" in line]
    assert len(tile_lines) == 2, out
    assert any(all(s in line for s in ("10", "11", "12", "13")) for line in tile_lines), out


@ky.jit
def assert_kernel(x_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    x = kl.load(x_ptr + offs, mask=offs < n, other=0)
    kl.device_assert(x >= 0, "x must be non-negative")  # ASSERT-LINE
    kl.store(x_ptr + offs, x + 1, mask=offs < n)


def _assert_line() -> int:
    lines, first = inspect.getsourcelines(assert_kernel.fn)
    return first + next(i for i, s in enumerate(lines) if "ASSERT-LINE" in s)


def test_device_assert_passes(device):
    x = np.arange(10, dtype=np.int32)
    assert_kernel[(1,)](x, 10, BLOCK=16)
    ky.synchronize()
    np.testing.assert_array_equal(x, np.arange(10) + 1)


def test_device_assert_fails_with_location(device):
    x = np.arange(10, dtype=np.int32)
    x[6] = -3
    with pytest.raises(ky.DeviceAssertError) as info:
        assert_kernel[(1,)](x, 10, BLOCK=16)
        ky.synchronize()
    msg = str(info.value)
    assert os.path.basename(__file__) in msg, msg
    assert f"{os.path.basename(__file__)}:{_assert_line()}" in msg, msg
    assert "x must be non-negative" in msg


def test_masked_lanes_do_not_trip_asserts(device):
    x = np.array([1, 2, 3, -1], np.int32)  # x[3] is beyond n
    assert_kernel[(1,)](x, 3, BLOCK=16)
    ky.synchronize()
    np.testing.assert_array_equal(x, [2, 3, 4, -1])

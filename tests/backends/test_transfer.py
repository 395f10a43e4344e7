"""Data between devices: `tensor.to(other)` from this device to every other available one and
back (through host memory where no direct path exists), values, dtype and shape kept; strided
views arrive dense; copies wait for kernels still running on the source; and a kernel refuses
tensors of two devices, naming both and the kernel's file:line.

The other devices are whatever `ky.devices()` lists here (interp, cpu, opencl:0, vcpu...), not
just those KAIYUAN_TEST_DEVICES selects, so a new backend is checked against all of them."""

import re
import time

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import ALL, rand


def other_devices(device) -> list:
    return [ky.device(i.name) for i in ky.devices() if i.available and i.name != device.name]


@pytest.mark.parametrize("name", ALL)
def test_round_trip_through_every_device(device, name):
    rng = np.random.default_rng(5)
    data = rand(rng, (3, 5), name)
    t = ky.tensor(data, device=device)
    assert t.device is device
    for other in other_devices(device):
        u = t.to(other)
        assert u.device is other and u.dtype == t.dtype and u.shape == (3, 5) and u.is_contiguous()
        back = u.to(device)
        assert back.device is device and back is not t
        np.testing.assert_array_equal(u.numpy(), data, err_msg=f"{device.name} -> {other.name}")
        np.testing.assert_array_equal(back.numpy(), data, err_msg=f"{other.name} -> {device.name}")
        by_name = t.to(other.name)  # a name works as well as a Device
        assert by_name.device is other and np.array_equal(by_name.numpy(), data)


def test_to_same_device_is_identity_and_copies_are_independent(device):
    t = ky.tensor(np.arange(6, dtype=np.int32), device=device)
    assert t.to(device) is t and t.to(device.name) is t and t.to() is t
    for other in other_devices(device):
        u = t.to(other)
        t.copy_(np.full(6, -1, np.int32))  # changing the source later leaves the copy alone
        np.testing.assert_array_equal(u.numpy(), np.arange(6))
        t.copy_(u)  # copy_ from another device's tensor
        np.testing.assert_array_equal(t.numpy(), np.arange(6))


def test_strided_views_arrive_dense(device):
    base = ky.tensor(np.arange(24, dtype=np.float32).reshape(4, 6), device=device)
    size = base.dtype.itemsize
    # rows 3, 2, 1 and every other column from column 1: negative and gapped strides
    view = ky.Tensor(base.buffer, (3, 3), base.dtype, (-6, 2), offset=base.offset + size * (3 * 6 + 1))
    bcast = ky.Tensor(base.buffer, (2, 6), base.dtype, (0, 1), offset=base.offset + size * 6)  # row 1, twice
    expect = np.arange(24, dtype=np.float32).reshape(4, 6)
    for other in [device, *other_devices(device)]:
        for t, ref in ((view, expect[3:0:-1, 1::2]), (bcast, np.broadcast_to(expect[1], (2, 6)))):
            u = t.to(other) if other is not device else t.contiguous()
            assert u.device is other and u.is_contiguous() and u.stride() == (t.shape[1], 1)
            np.testing.assert_array_equal(u.numpy(), ref, err_msg=f"{device.name} -> {other.name}")


def test_empty_and_zero_dim(device):
    for other in other_devices(device):
        e = ky.empty((0, 3), "fp16", device=device).to(other)
        assert e.shape == (0, 3) and e.numpy().shape == (0, 3)
        s = ky.tensor(np.float64(2.5), device=device).to(other)
        assert s.shape == () and s.item() == 2.5


def test_dtype_conversion_with_move(device):
    t = ky.tensor(np.array([1.75, -2.5, 300.0], np.float32), device=device)
    h = t.to(ky.fp16)
    assert h.device is device and h.dtype == ky.fp16
    np.testing.assert_array_equal(h.numpy(), np.array([1.75, -2.5, 300.0], np.float16))
    for other in other_devices(device):
        i = t.to(other, "i32")  # float -> int truncates toward zero, as numpy does
        assert i.device is other and i.dtype == ky.i32
        np.testing.assert_array_equal(i.numpy(), [1, -2, 300])


@ky.jit
def fill_kernel(out_ptr, value, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.zeros([BLOCK], kl.float32) + value, mask=offs < n)


def test_copy_waits_for_the_kernel_that_writes_the_source(device):
    t = ky.zeros((1000,), "fp32", device=device)
    s = ky.Stream(device)
    s.submit(lambda: time.sleep(0.2))  # holds the stream back: the fills below are still queued
    with ky.stream(s):
        for k in range(1, 6):
            fill_kernel[(8,)](t, float(k), 1000, BLOCK=128)
        copies = [t.to(other, non_blocking=True) for other in other_devices(device)]
    for c in copies:
        ky.synchronize(c.device)
        np.testing.assert_array_equal(c.numpy(), np.full(1000, 5.0, np.float32), err_msg=c.device.name)
    s.synchronize()


@ky.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, kl.load(x_ptr + offs) + kl.load(y_ptr + offs), mask=offs < n)


ADD_KERNEL_LINE = add_kernel.fn.__code__.co_firstlineno


def test_kernel_refuses_tensors_of_two_devices(device):
    x = ky.tensor(np.ones(4, np.float32), device=device)
    out = ky.empty((4,), device=device)
    for other in other_devices(device):
        y = ky.tensor(np.ones(4, np.float32), device=other)
        with pytest.raises(ky.LaunchError) as err:
            add_kernel[(1,)](x, y, out, 4, BLOCK=4)  # LAUNCH-LINE
        msg = str(err.value)
        assert device.name in msg and other.name in msg, msg
        assert re.search(rf"test_transfer\.py:{ADD_KERNEL_LINE}\b", msg), msg  # where the kernel is defined
        launch_line = next(i for i, line in enumerate(open(__file__), 1) if "# LAUNCH-LINE" in line)
        assert err.value.loc.endswith(f"test_transfer.py:{launch_line}"), err.value.loc  # the user's launch
        assert ".to(" in (err.value.hint or "")
        moved = y.to(device)  # the hint's fix works
        add_kernel[(1,)](x, moved, out, 4, BLOCK=4)
        ky.synchronize(device)
        np.testing.assert_array_equal(out.numpy(), np.full(4, 2.0, np.float32))

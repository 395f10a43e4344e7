"""Kernel arguments: numpy arrays, ky.Tensor, torch CPU tensors through __dlpack__, non-contiguous
numpy views with explicit strides, scalar argument types; and the per-kernel compile cache."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import cdiv


@ky.jit
def axpy_kernel(x_ptr, y_ptr, out_ptr, a, n, stride_x, stride_y, stride_o, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs * stride_x, mask=mask)
    y = kl.load(y_ptr + offs * stride_y, mask=mask)
    kl.store(out_ptr + offs * stride_o, a * x + y, mask=mask)


def _axpy(x, y, out, a, n, strides=(1, 1, 1)):
    return axpy_kernel[(cdiv(n, 32),)](x, y, out, a, n, *strides, BLOCK=32)


def test_numpy_arguments(device):
    x = np.arange(100, dtype=np.float32)
    y = np.ones(100, np.float32)
    out = np.zeros(100, np.float32)
    _axpy(x, y, out, 2.0, 100)
    np.testing.assert_array_equal(out, 2 * x + 1)


def test_ky_tensor_arguments(device):
    x = np.arange(70, dtype=np.float32)
    tx = ky.tensor(x, device=device.name)
    ty = ky.tensor(np.full(70, 3, np.float32), device=device.name)
    to = ky.zeros((70,), "fp32", device=device.name)
    assert tx.device is device
    _axpy(tx, ty, to, 0.5, 70)
    ky.synchronize(device)
    np.testing.assert_array_equal(to.numpy(), 0.5 * x + 3)


def test_torch_tensors_via_dlpack(device):
    torch = pytest.importorskip("torch")
    x = torch.arange(50, dtype=torch.float32)
    y = torch.full((50,), 2.0)
    out = torch.zeros(50)
    _axpy(x, y, out, -1.0, 50)
    ky.synchronize()
    assert torch.equal(out, -x + 2)
    # a strided torch view: every other element
    big = torch.arange(100, dtype=torch.float32)
    out2 = torch.zeros(50)
    _axpy(big[::2], y, out2, 1.0, 50, strides=(2, 1, 1))  # the view's pointer, our explicit stride
    ky.synchronize()
    assert torch.equal(out2, big[::2] + 2)


def test_non_contiguous_numpy_views(device):
    base = np.arange(300, dtype=np.float32)
    x = base[10::3]  # offset start, stride 3
    n = x.size
    y = np.arange(n * 2, dtype=np.float32)[::-2]  # reversed view: negative stride
    out_base = np.zeros((n, 4), np.float32)
    out = out_base[:, 2]  # a column: stride 4
    _axpy(x, y, out, 3.0, n, strides=(3, -2, 4))
    np.testing.assert_array_equal(out_base[:, 2], 3 * x + y)
    assert (out_base[:, [0, 1, 3]] == 0).all()


@ky.jit
def scalar_types_kernel(out_ptr, i, big, f, flag):
    kl.store(out_ptr, i.to(kl.float64))
    kl.store(out_ptr + 1, big.to(kl.float64))
    kl.store(out_ptr + 2, f.to(kl.float64))
    kl.store(out_ptr + 3, flag.to(kl.float64))
    kl.static_assert(i.dtype == kl.int32)
    kl.static_assert(big.dtype == kl.int64)  # too big for i32
    kl.static_assert(f.dtype == kl.float32)
    kl.static_assert(flag.dtype == kl.int1)


def test_scalar_argument_types(device):
    out = np.zeros(4, np.float64)
    scalar_types_kernel[(1,)](out, -7, 2**40, 0.25, True)
    np.testing.assert_array_equal(out, [-7, 2**40, 0.25, 1])


def test_same_specialisation_does_not_recompile(device):
    x = np.arange(64, dtype=np.float32)
    y = np.zeros(64, np.float32)
    before = len(axpy_kernel.cache)
    k1 = _axpy(x, y, np.zeros(64, np.float32), 1.0, 64)
    size = len(axpy_kernel.cache)
    assert size <= before + 1
    k2 = _axpy(x + 1, y, np.zeros(64, np.float32), 2.0, 64)  # same types, divisibility and constexprs
    assert k2 is k1
    assert len(axpy_kernel.cache) == size
    k3 = _axpy(x, y, np.zeros(63, np.float32), 1.0, 63)  # n % 16 != 0: a new specialisation
    assert k3 is not k1
    assert len(axpy_kernel.cache) == size + 1 or k3 in axpy_kernel.cache.values()
    k4 = _axpy(x, y, np.zeros(63, np.float32), 5.0, 63)
    assert k4 is k3
    k5 = axpy_kernel[(2,)](x, y, np.zeros(64, np.float32), 1.0, 64, 1, 1, 1, BLOCK=64)  # new constexpr
    assert k5 is not k1
    assert all(k.device is device for k in (k1, k3, k5))


def test_pointer_dtype_specialises(device):
    k32 = _axpy(np.ones(8, np.float32), np.ones(8, np.float32), np.zeros(8, np.float32), 1.0, 8)
    k64 = _axpy(np.ones(8, np.float64), np.ones(8, np.float64), np.zeros(8, np.float64), 1.0, 8)
    assert k32 is not k64
    assert "f64" in k64.asm["ky"] and "f64" not in k32.asm["ky"]


@ky.jit
def fill_kernel(out_ptr, n, value, BLOCK: kl.constexpr = 32):
    offs = kl.arange(0, BLOCK)
    kl.store(out_ptr + offs, value, mask=offs < n)


def test_keyword_arguments_and_constexpr_defaults(device):
    out = np.zeros(40, np.float32)
    k_default = fill_kernel[(1,)](value=2.5, n=20, out_ptr=out)  # BLOCK takes its default, 32
    np.testing.assert_array_equal(out, np.where(np.arange(40) < 20, 2.5, 0))
    k_explicit = fill_kernel[(1,)](out, 40, -1.0, BLOCK=64)
    np.testing.assert_array_equal(out, -1.0)
    assert k_default is not k_explicit


def test_bad_launch_arguments_are_errors(device):
    out = np.zeros(4, np.float32)
    with pytest.raises(ky.ArgumentError):
        fill_kernel[(1,)](out, 4, 1.0, NOT_A_PARAM=3)
    with pytest.raises(ky.ArgumentError):
        fill_kernel[(1,)](out, 4)  # `value` missing
    with pytest.raises(ky.LaunchError):
        fill_kernel(out, 4, 1.0)  # called without a grid


def test_tensors_on_different_devices_are_an_error():
    names = [d.name for d in ky.devices() if d.available]
    if len(names) < 2:
        pytest.skip("needs two devices")
    a = ky.zeros((8,), "fp32", device=names[0])
    b = ky.zeros((8,), "fp32", device=names[1])
    with pytest.raises(ky.LaunchError):
        axpy_kernel[(1,)](a, b, a, 1.0, 8, 1, 1, 1, BLOCK=32)


def test_ky_tensor_runs_on_its_own_device(device):
    # a tensor's device wins over the `with ky.device(...)` default
    other = [d.name for d in ky.devices() if d.available and d.name != device.name]
    if not other:
        pytest.skip("needs two devices")
    t = ky.tensor(np.zeros(8, np.float32), device=other[0])
    kernel = fill_kernel[(1,)](t, 8, 4.0)
    ky.synchronize(t.device)
    assert kernel.device.name == other[0]
    np.testing.assert_array_equal(t.numpy(), 4.0)

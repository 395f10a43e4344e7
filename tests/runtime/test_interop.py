import sys
import timeit
import types

import ml_dtypes
import numpy as np
import pytest

import kaiyuan.runtime as ky
from kaiyuan.runtime.errors import ArgumentError


def element_address(p):
    return p.buffer.handle.ctypes.data + p.offset


def test_tensor_pointer_keeps_device_and_offset():
    t = ky.tensor(np.arange(8, dtype=np.float32), device="fakedev")
    p, dev, dt = ky.as_kernel_pointer(t)
    assert p.buffer is t.buffer and p.offset == t.offset and dev is t.device and dt == ky.fp32


@pytest.mark.parametrize("make", [
    lambda a: a,
    lambda a: a[3:],
    lambda a: a[::-1],
    lambda a: a.reshape(4, 6)[::-1, 1::2],
    lambda a: a.reshape(4, 6)[1:, ::-3],
    lambda a: a.reshape(4, 6).T,
    lambda a: a.reshape(4, 6)[:, ::-1].copy(order="F"),
])
def test_host_array_pointer_offset(make):
    view = make(np.arange(24, dtype=np.float64))
    p, dev, dt = ky.as_kernel_pointer(view)
    assert dev is None and dt == ky.fp64
    assert element_address(p) == view.ctypes.data
    assert 0 <= p.offset < p.buffer.nbytes
    lo = view.ctypes.data + sum(min(0, s * (n - 1)) for n, s in zip(view.shape, view.strides))
    assert p.buffer.handle.ctypes.data == lo  # the buffer starts at the lowest element reached
    assert p.buffer.device.name == "fakehost" and p.buffer.owner is view


def test_host_array_pointer_without_fast_path_matches():
    view = np.arange(24, dtype=np.int32).reshape(4, 6)[::-1, ::2]
    dev = ky.get_device("fakehost")
    slow = dev.allocator.wrap_host(view)
    p, _, _ = ky.as_kernel_pointer(view)
    assert p.buffer.nbytes == slow.nbytes
    assert p.buffer.handle.ctypes.data == slow.handle.ctypes.data


def test_host_array_wrapped_on_host_device_when_default_is_not(monkeypatch):
    from kaiyuan.runtime import registry

    real = registry.get_device
    monkeypatch.setattr(registry, "get_device",
                        lambda spec=None: real("fakemulti:1" if spec == "interp" else spec))
    with ky.device("fakedev"):
        p, dev, _ = ky.as_kernel_pointer(np.zeros(3))
        assert dev is None and p.buffer.device.is_host


def test_host_array_without_any_host_device(monkeypatch):
    from kaiyuan.runtime import registry

    real = registry.get_device

    def no_host(spec=None):  # every device but the non-host fake is absent
        if isinstance(spec, str) and spec != "fakedev":
            raise ky.DeviceError(f"{spec} absent")
        return real(spec)

    monkeypatch.setattr(registry, "get_device", no_host)
    with ky.device("fakedev"), pytest.raises(ky.DeviceError, match="no host device"):
        ky.as_kernel_pointer(np.zeros(3))
    p, _, _ = ky.as_kernel_pointer(np.zeros(3), device=real("fakehost"))
    assert p.buffer.device.name == "fakehost"


def test_dlpack_producer_pointer_is_zero_copy():
    src = np.arange(10, dtype=np.int32)

    class Producer:
        def __dlpack__(self, **kw):
            return src.__dlpack__(**kw)

        def __dlpack_device__(self):
            return (1, 0)

    p, dev, dt = ky.as_kernel_pointer(Producer())
    assert dt == ky.i32 and element_address(p) == src.ctypes.data


def test_bf16_dlpack_producer_goes_through_int16_view(monkeypatch):
    bits = np.array([1.5, -2.0], ml_dtypes.bfloat16).view(np.int16)
    lib = types.ModuleType("fakelib")
    lib.int16 = "fakelib.int16"

    class FakeTensor:
        __module__ = "fakelib"
        dtype = "fakelib.bfloat16"

        def __dlpack__(self, **kw):
            raise BufferError("bf16 cannot be exported")

        def __dlpack_device__(self):
            return (1, 0)

        def view(self, dt):
            assert dt == "fakelib.int16"
            return bits

    monkeypatch.setitem(sys.modules, "fakelib", lib)
    p, _, dt = ky.as_kernel_pointer(FakeTensor())
    assert dt == ky.bf16 and element_address(p) == bits.ctypes.data
    assert ky.tensor(FakeTensor()).numpy().astype(np.float32).tolist() == [1.5, -2.0]


def test_non_host_dlpack_and_junk_rejected():
    class OnGpu:
        def __dlpack__(self, **kw):
            raise AssertionError("must not be called")

        def __dlpack_device__(self):
            return (2, 0)

    with pytest.raises(ArgumentError, match="not in host memory"):
        ky.as_kernel_pointer(OnGpu())
    with pytest.raises(ArgumentError):
        ky.as_kernel_pointer("not an array")


def test_dtype_of():
    assert ky.dtype_of(True) == ky.i1
    assert ky.dtype_of(3) == ky.i32 and ky.dtype_of(2**40) == ky.i64 and ky.dtype_of(2**63) == ky.u64
    assert ky.dtype_of(1.0) == ky.fp32
    assert ky.dtype_of(np.zeros(2, np.uint16)) == ky.u16
    assert ky.dtype_of(ky.zeros(2, "fp16")) == ky.fp16
    assert ky.dtype_of(types.SimpleNamespace(dtype="torch.bfloat16")) == ky.bf16
    with pytest.raises(ArgumentError):
        ky.dtype_of(object())


def test_pointer_for_host_array_is_cheap():
    arr = np.zeros(1024, np.float32)
    dev = ky.get_device("fakehost")
    per_call = min(timeit.repeat(lambda: ky.as_kernel_pointer(arr, dev), number=2000, repeat=5)) / 2000
    assert per_call < 50e-6  # generous for loaded CI machines; ~2 µs when idle

import gc

import ml_dtypes
import numpy as np
import pytest

import kaiyuan.runtime as ky
from kaiyuan.runtime.dtypes import BY_NAME
from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

ALL_DTYPES = list(BY_NAME)


def sample(name, shape=(3, 5)):
    dt = BY_NAME[name]
    values = np.arange(np.prod(shape)).reshape(shape) % 7
    return (values % 2 == 1) if dt.kind == "bool" else values.astype(dt.np)


@pytest.mark.parametrize("device", ["fakehost", "fakedev"])
@pytest.mark.parametrize("name", ALL_DTYPES)
def test_numpy_round_trip_all_dtypes(name, device):
    arr = sample(name)
    t = ky.tensor(arr, device=device)
    assert t.dtype == BY_NAME[name] and t.shape == (3, 5) and t.device.name == device
    assert t.stride() == (5, 1) and t.stride(0) == 5
    assert t.numel() == 15 and t.ndim == 2 and t.nbytes == arr.nbytes
    back = t.numpy()
    assert back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)


def test_tensor_always_copies():
    arr = np.arange(4, dtype=np.int32)
    t = ky.tensor(arr)
    arr[0] = 99
    assert t.numpy()[0] == 0


def test_python_data_defaults_and_explicit_dtype():
    assert ky.tensor([1.0, 2.0]).dtype == ky.fp32
    assert ky.tensor([1, 2]).dtype == ky.i64
    assert ky.tensor(True).dtype == ky.i1 and ky.tensor(3.5).shape == ()
    t = ky.tensor([[1, 2], [3, 4]], dtype="fp16")
    assert t.dtype == ky.fp16 and t.numpy().tolist() == [[1, 2], [3, 4]]
    assert ky.tensor(np.float64(1.0)).dtype == ky.fp64  # numpy data keeps its dtype


def test_unsupported_numpy_dtype():
    with pytest.raises(UnsupportedError):
        ky.tensor(np.zeros(3, np.complex64))


def test_non_contiguous_input_is_copied_correctly():
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    view = base[::-2, 1::3]
    t = ky.tensor(view, device="fakedev")
    assert t.is_contiguous()
    np.testing.assert_array_equal(t.numpy(), view)


def test_from_numpy_is_zero_copy_on_host():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = ky.from_numpy(arr)
    assert np.shares_memory(t.numpy(), arr)
    arr[1, 2] = -1
    assert t.numpy()[1, 2] == -1
    assert t.data_ptr() == arr.ctypes.data


def test_from_numpy_strided_negative_view():
    base = np.arange(24, dtype=np.int16).reshape(4, 6)
    view = base[::-1, 1::2]
    t = ky.from_numpy(view)
    assert t.stride() == (-6, 2)
    assert t.data_ptr() == view.ctypes.data
    np.testing.assert_array_equal(t.numpy(), view)
    assert np.shares_memory(t.numpy(), base)


def test_from_numpy_on_device_memory_copies():
    arr = np.arange(5, dtype=np.int64)
    t = ky.from_numpy(arr, device="fakedev")
    arr[0] = 7
    assert t.numpy()[0] == 0


def test_to_copies_between_devices_and_back():
    arr = np.arange(10, dtype=np.float64)
    h = ky.from_numpy(arr)
    d = h.to("fakedev")
    assert d.device.name == "fakedev"
    other = h.to("fakemulti:1")
    arr[:] = 0  # the copies are independent of the source
    np.testing.assert_array_equal(d.numpy(), np.arange(10))
    np.testing.assert_array_equal(other.numpy(), np.arange(10))
    np.testing.assert_array_equal(d.to("fakehost").numpy(), np.arange(10))
    assert h.to("fakehost") is h


def test_strided_tensor_on_device_memory():
    d = ky.tensor(np.arange(12, dtype=np.int32).reshape(3, 4), device="fakedev")
    t = ky.Tensor(d.buffer, (2, 4), d.dtype, (-4, 1), offset=2 * 4 * 4)  # rows 2 and 1
    np.testing.assert_array_equal(t.numpy(), [[8, 9, 10, 11], [4, 5, 6, 7]])
    t.copy_(np.full((2, 4), -1, np.int32))  # read-modify-write of a strided span
    np.testing.assert_array_equal(d.numpy(), [[0, 1, 2, 3], [-1] * 4, [-1] * 4])
    np.testing.assert_array_equal(t.contiguous().numpy(), np.full((2, 4), -1))


def test_contiguous_and_array_protocol():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = ky.from_numpy(arr.T)
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c is not t and c.contiguous() is c
    np.testing.assert_array_equal(np.asarray(c), arr.T)
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float64), arr.T)


def test_empty_zeros_like():
    z = ky.zeros((2, 3), "i32", device="fakedev")
    assert z.numpy().tolist() == [[0] * 3] * 2
    e = ky.empty(4)
    assert e.shape == (4,) and e.dtype == ky.fp32
    zl = ky.zeros_like(z)
    assert zl.device is z.device and zl.dtype == ky.i32 and zl.shape == (2, 3)
    el = ky.empty_like(z, dtype="u8", device="fakehost")
    assert el.dtype == ky.u8 and el.device.name == "fakehost"
    assert ky.zeros(0).numel() == 0 and ky.zeros(0).numpy().shape == (0,)
    with pytest.raises(ArgumentError):
        ky.empty((-1, 2))


def test_numpy_view_keeps_memory_alive():
    view = ky.tensor(np.arange(100, dtype=np.int64)).numpy()
    gc.collect()
    ky.tensor(np.full(100, -5, np.int64))  # would reuse the block if it had been released
    np.testing.assert_array_equal(view, np.arange(100))


def test_tensor_from_tensor_and_dtype_conversion():
    t = ky.tensor([1.5, 2.5], device="fakedev")
    u = ky.tensor(t)
    assert u is not t and u.device is t.device and u.numpy().tolist() == [1.5, 2.5]
    v = ky.tensor(t, dtype="fp64", device="fakehost")
    assert v.dtype == ky.fp64 and v.numpy().tolist() == [1.5, 2.5]


def test_bf16_values_survive():
    arr = np.array([1.5, -2.0, 3.25], ml_dtypes.bfloat16)
    t = ky.tensor(arr)
    assert t.dtype == ky.bf16
    np.testing.assert_array_equal(t.numpy(), arr)
    assert "1.5" in repr(t)


def test_repr_and_item():
    t = ky.tensor([[1, 2], [3, 4]], dtype="i32", device="fakedev")
    r = repr(t)
    assert "dtype=ky.i32" in r and "device='fakedev'" in r and "4" in r
    assert ky.tensor(7).item() == 7 and len(t) == 2


def test_dlpack_to_numpy():
    t = ky.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert t.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t.numpy())
    with pytest.raises(UnsupportedError):
        ky.tensor([1.0], device="fakedev").__dlpack__()


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    src = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    t = ky.tensor(src)
    np.testing.assert_array_equal(t.numpy(), src.numpy())
    back = torch.from_dlpack(ky.from_numpy(np.arange(4, dtype=np.int32)))
    assert back.tolist() == [0, 1, 2, 3]
    bf = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    tb = ky.tensor(bf)
    assert tb.dtype == ky.bf16 and tb.numpy().astype(np.float32).tolist() == [1.5, -2.0]
    g = torch.ones(3, requires_grad=True)
    assert ky.tensor(g).numpy().tolist() == [1.0, 1.0, 1.0]


def test_copy_on_user_stream_is_ordered():
    s = ky.Stream("fakedev")
    src = ky.tensor(np.arange(1000, dtype=np.float32))
    with ky.stream(s):
        d = src.to("fakedev", non_blocking=True)
        assert ky.current_stream("fakedev") is s
        s.synchronize()
    np.testing.assert_array_equal(d.numpy(), np.arange(1000))

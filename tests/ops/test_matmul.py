"""ky.ops.matmul against numpy in float64: shapes, dtypes, layouts, broadcasting, errors."""

import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan import ops

from .conftest import assert_close, rand, to_f64

CPU_SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 9), (17, 13, 29), (67, 45, 130), (128, 64, 64)]
INTERP_SHAPES = [(1, 1, 1), (5, 3, 7), (17, 13, 29)]


def shapes(device, dtype="fp32"):
    if device.name == "interp":
        return INTERP_SHAPES
    return CPU_SHAPES if dtype == "fp32" else CPU_SHAPES[2:5]  # every dtype: odd, > 1 tile; fp32: all


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16", "i8"])
def test_dtypes_and_odd_shapes(device, rng, dtype):
    for M, N, K in shapes(device, dtype):
        a, b = rand(rng, (M, K), dtype), rand(rng, (K, N), dtype)
        out = ops.matmul(a, b)
        assert isinstance(out, np.ndarray)
        assert out.dtype == ky.dtype("i32" if dtype == "i8" else dtype).np
        ref = to_f64(a) @ to_f64(b)
        if dtype == "i8":
            np.testing.assert_array_equal(out, ref.astype(np.int32))
        else:
            assert_close(out, ref, dtype, scale=max(1.0, np.sqrt(K)))


def test_transposed_and_strided_inputs(device, rng):
    M, N, K = (9, 11, 13) if device.name == "interp" else (37, 41, 70)
    big_a = rng.standard_normal((2 * K, 3 * M)).astype(np.float32)
    big_b = rng.standard_normal((N, 2 * K)).astype(np.float32)
    a = big_a[::2, 1::3].T          # (M, K), both strides non-unit, transposed
    b = big_b.T[::2]                # (K, N), column-major
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    assert_close(ops.matmul(a, b), to_f64(a) @ to_f64(b), "fp32", scale=np.sqrt(K))


def test_batched_broadcasting(device, rng):
    a = rng.standard_normal((2, 1, 4, 6)).astype(np.float32)
    b = rng.standard_normal((3, 6, 5)).astype(np.float32)
    out = ops.matmul(a, b)
    assert out.shape == (2, 3, 4, 5)
    assert_close(out, to_f64(a) @ to_f64(b), "fp32")
    # a batched operand whose batch dims do not fold (transposed batch dims)
    c = rng.standard_normal((3, 2, 6, 4)).astype(np.float32).transpose(1, 0, 3, 2)  # (2, 3, 4, 6)
    assert_close(ops.matmul(c, b), to_f64(c) @ to_f64(b), "fp32")
    d = rng.standard_normal((2, 2, 2, 3, 4)).astype(np.float32)
    e = rng.standard_normal((4, 5)).astype(np.float32)
    assert_close(ops.matmul(d, e), to_f64(d) @ to_f64(e), "fp32")


def test_one_dimensional_operands(device, rng):
    a = rng.standard_normal((3, 4, 6)).astype(np.float32)
    v = rng.standard_normal(6).astype(np.float32)
    w = rng.standard_normal(4).astype(np.float32)
    for x, y in [(a, v), (w, a), (v, v), (v, rng.standard_normal((6, 2)).astype(np.float32))]:
        out, ref = ops.matmul(x, y), to_f64(x) @ to_f64(y)
        assert np.shape(out) == np.shape(ref)
        assert_close(out, ref, "fp32")


def test_ky_tensor_in_tensor_out(device, rng):
    a, b = rng.standard_normal((5, 6)).astype(np.float32), rng.standard_normal((6, 3)).astype(np.float32)
    out = ops.matmul(ky.tensor(a), ky.tensor(b))
    assert isinstance(out, ky.Tensor) and out.device is device and out.shape == (5, 3)
    assert_close(out, to_f64(a) @ to_f64(b), "fp32")


def test_zero_sizes(device):
    assert_close(ops.matmul(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32)), np.zeros((3, 4)), "fp32")
    assert ops.matmul(np.ones((0, 2), np.float32), np.ones((2, 4), np.float32)).shape == (0, 4)


def test_errors(device):
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ky.UnsupportedError, match="supported dtypes"):
        ops.matmul(a.astype(np.int32), a.T.astype(np.int32))
    with pytest.raises(ky.UnsupportedError):
        ops.matmul(a, a.T.astype(np.float64))
    with pytest.raises(ky.ArgumentError, match="contracted"):
        ops.matmul(a, a)
    with pytest.raises(ky.ArgumentError):
        ops.matmul(np.ones((2, 2, 3), np.float32), np.ones((3, 3, 2), np.float32))
    with pytest.raises(ky.ArgumentError):
        ops.matmul(np.float32(2.0), a)

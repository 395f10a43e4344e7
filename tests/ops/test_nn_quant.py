"""QuantizeLinear, DequantizeLinear and MatMulInteger against onnx's reference evaluator.

Quantized outputs and MatMulInteger are compared exactly (integers). Dequantized fp32 outputs
are exact too (one multiply, as the reference); fp16/bf16 scales allow one rounding of the dtype
(rtol 1e-3 / 1e-2). Per-row MatMulInteger zero points given as M values (which the reference
evaluator does not broadcast) are checked against numpy.
"""

import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import rand
from .onnx_node import check, run_kaiyuan

Q = "QuantizeLinear"
DQ = "DequantizeLinear"


def _x(rng, *shape):
    return (rng.standard_normal(shape) * 3).astype(np.float32)


def test_quantize_per_tensor(device, rng):
    x = _x(rng, 4, 7)
    check(Q, [x, np.array(0.02, np.float32)], device=device.name)                          # uint8, no zero point
    check(Q, [x, np.array([0.05], np.float32), np.array([-3], np.int8)], device=device.name)  # 1 element
    check(Q, [x.T, np.array(0.1, np.float32), np.array(100, np.uint8)], device=device.name)  # transposed x
    check(Q, [np.array(1.7, np.float32), np.array(0.5, np.float32), np.array(2, np.int8)], device=device.name)


def test_quantize_rounds_half_to_even_and_saturates(device):
    x = np.array([0.25, 0.75, -0.25, -0.75, 1.25, 2.5, -2.5, 1000.0, -1000.0, 0.0], np.float32)
    for zp in (np.array(0, np.int8), np.array(128, np.uint8), np.array(-7, np.int8)):
        check(Q, [x, np.array(0.5, np.float32), zp], device=device.name)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_per_axis(device, rng, axis):
    x = _x(rng, 3, 5, 6)
    n = x.shape[axis]
    scale = (rng.random(n) * 0.1 + 0.01).astype(np.float32)
    zp = rng.integers(-20, 20, n).astype(np.int8)
    check(Q, [x, scale, zp], {"axis": axis}, device=device.name)
    check(Q, [x[:, ::2], (rng.random(x[:, ::2].shape[axis]) * 0.1 + 0.01).astype(np.float32)], {"axis": axis},
          device=device.name)


@pytest.mark.parametrize("block", [2, 3])
def test_quantize_blocked(device, rng, block):
    x = _x(rng, 4, 7)  # 7 is not a multiple of the block: a remainder block
    scale = (rng.random((4, -(-7 // block))) * 0.1 + 0.01).astype(np.float32)
    zp = rng.integers(0, 255, scale.shape).astype(np.uint8)
    check(Q, [x, scale, zp], {"axis": 1, "block_size": block}, opset=21, device=device.name)
    check(DQ, [zp.repeat(block, 1)[:, :7].copy(), scale, zp], {"axis": 1, "block_size": block}, opset=21,
          device=device.name)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_quantize_16_bit_inputs(device, rng, dtype):
    x = rand(rng, (3, 9), dtype)
    scale = np.array(0.03, x.dtype)
    check(Q, [x, scale, np.array(3, np.int8)], opset=19, device=device.name)
    if dtype == "fp16":  # x / scale rounds to fp16 first: these differ from rint of the fp32 quotient
        x = np.array([116.5, -148.8, 102.9, -19.55], np.float16)
        check(Q, [x, np.array(1.7, np.float16), np.array(0, np.int8)], opset=19, device=device.name)


def test_quantize_int32_and_wider_outputs(device, rng):
    xi = rng.integers(-50000, 50000, (3, 5)).astype(np.int32)
    check(Q, [xi, np.array(7.0, np.float32), np.array(-5, np.int16)], opset=21, device=device.name)
    x = _x(rng, 3, 5) * 1000
    check(Q, [x, np.array(0.5, np.float32), np.array(40000, np.uint16)], opset=21, device=device.name)
    check(Q, [x, np.array(0.5, np.float32)], {"output_dtype": 3}, opset=21, device=device.name)  # int8


def test_quantize_errors(rng):
    x = _x(rng, 3, 4)
    with pytest.raises(ArgumentError, match="per axis"):
        run_kaiyuan(Q, [x, np.ones(3, np.float32)])  # axis 1 has 4 elements
    with pytest.raises(ArgumentError, match="out of range"):
        run_kaiyuan(Q, [x, np.ones(4, np.float32)], {"axis": 2})
    with pytest.raises(UnsupportedError, match="output_dtype 17"):
        run_kaiyuan(Q, [x, np.array(1.0, np.float32)], {"output_dtype": 17}, opset=21)  # float8e4m3fn
    with pytest.raises(UnsupportedError, match="float64"):
        run_kaiyuan(Q, [x.astype(np.float64), np.array(1.0, np.float32)])
    with pytest.raises(ArgumentError, match="disagree"):
        run_kaiyuan(Q, [x, np.array(1.0, np.float32), np.array(0, np.uint8)], {"output_dtype": 3}, opset=21)
    with pytest.raises(ArgumentError, match="blocked"):
        run_kaiyuan(Q, [x, np.ones((3, 3), np.float32)], {"axis": 1, "block_size": 2}, opset=21)


def test_dequantize(device, rng):
    q = rng.integers(0, 255, (4, 6)).astype(np.uint8)
    s = (rng.random(6) * 0.1).astype(np.float32)
    check(DQ, [q, s, rng.integers(0, 255, 6).astype(np.uint8)], opset=19, device=device.name)
    check(DQ, [q.T, np.array(0.1, np.float32)], opset=19, device=device.name)
    qi = rng.integers(-128, 127, (2, 3, 5)).astype(np.int8)
    check(DQ, [qi, s[:3], np.array([1, -2, 3], np.int8)], opset=19, device=device.name)  # axis 1
    check(DQ, [qi, s[:5], np.zeros(5, np.int8)], {"axis": -1}, opset=21, device=device.name)
    big = rng.integers(-2**30, 2**30, (3, 4)).astype(np.int32)
    check(DQ, [big, np.array(1e-3, np.float32), np.array(5, np.int32)], opset=19, device=device.name)
    check(DQ, [rng.integers(-30000, 30000, (3, 4)).astype(np.int16), np.array(0.01, np.float32)], opset=21,
          device=device.name)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_dequantize_16_bit_scales(device, rng, dtype):
    q = rng.integers(-128, 127, (3, 7)).astype(np.int8)
    s = rand(rng, (7,), dtype)
    out = check(DQ, [q, s, np.full(7, 4, np.int8)], opset=19, rtol=1e-3 if dtype == "fp16" else 1e-2,
                atol=1e-3, device=device.name)
    assert out[0].dtype == s.dtype


def test_dequantize_errors(rng):
    q = rng.integers(0, 255, (3, 4)).astype(np.uint8)
    with pytest.raises(ArgumentError, match="must agree"):
        run_kaiyuan(DQ, [q, np.array(0.1, np.float32), np.array(0, np.int8)], opset=19)
    with pytest.raises(UnsupportedError, match="float64"):
        run_kaiyuan(DQ, [q, np.array(0.1, np.float64)], opset=19)
    with pytest.raises(ArgumentError, match="one shape"):
        run_kaiyuan(DQ, [q, np.ones(4, np.float32), np.zeros(3, np.uint8)], opset=19)


# ---------------------------------------------------------------------------- MatMulInteger


def _u8(rng, *s):
    return rng.integers(0, 256, s).astype(np.uint8)


def _i8(rng, *s):
    return rng.integers(-128, 128, s).astype(np.int8)


def test_matmul_integer_types_and_zero_points(device, rng):
    M, K, N = (3, 5, 4) if device.name == "interp" else (67, 70, 65)  # cpu: more than one tile each way
    a, b = _u8(rng, M, K), _i8(rng, K, N)
    check("MatMulInteger", [a, b], device=device.name)
    check("MatMulInteger", [a, b, np.array(12, np.uint8), np.array([-3], np.int8)], device=device.name)
    check("MatMulInteger", [_i8(rng, M, K), _u8(rng, K, N), _i8(rng, M, 1), _u8(rng, N)], device=device.name)
    check("MatMulInteger", [a, _u8(rng, K, N), None, _u8(rng, 1, N)], device=device.name)


def test_matmul_integer_per_row_vector(device, rng):
    a, b, za, zb = _u8(rng, 4, 6), _u8(rng, 6, 3), _u8(rng, 4), _u8(rng, 3)
    got = run_kaiyuan("MatMulInteger", [a, b, za, zb], device=device.name)[0]
    want = (a.astype(np.int32) - za[:, None]) @ (b.astype(np.int32) - zb)
    np.testing.assert_array_equal(got, want)


def test_matmul_integer_batches_and_layouts(device, rng):
    check("MatMulInteger", [_u8(rng, 2, 3, 5), _i8(rng, 5, 4), _u8(rng, 2, 3, 1)], device=device.name)
    check("MatMulInteger", [_u8(rng, 2, 1, 3, 5), _u8(rng, 3, 5, 2), None, _u8(rng, 3, 1, 2)], device=device.name)
    check("MatMulInteger", [_u8(rng, 5), _i8(rng, 2, 5, 3)], device=device.name)
    check("MatMulInteger", [_i8(rng, 2, 3, 5), _i8(rng, 5)], device=device.name)
    check("MatMulInteger", [_u8(rng, 8, 6)[::2].T, _u8(rng, 4, 3), np.array(9, np.uint8)], device=device.name)
    check("MatMulInteger", [_u8(rng, 0, 4), _u8(rng, 4, 3)], device=device.name)


def test_matmul_integer_errors(rng):
    a, b = _u8(rng, 3, 4), _i8(rng, 4, 2)
    with pytest.raises(UnsupportedError, match="int16"):
        run_kaiyuan("MatMulInteger", [a.astype(np.int16), b])
    with pytest.raises(UnsupportedError, match="a_zero_point"):
        run_kaiyuan("MatMulInteger", [a, b, np.array(1, np.int8)])
    with pytest.raises(ArgumentError, match="per row"):
        run_kaiyuan("MatMulInteger", [a, b, _u8(rng, 5)])
    with pytest.raises(ArgumentError, match="contracted"):
        run_kaiyuan("MatMulInteger", [a, _i8(rng, 3, 2)])

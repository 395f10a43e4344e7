"""MatMul and Gemm against onnx's reference evaluator; kaiyuan.Linear against numpy in float64.

Tolerances (relative to values of order 1..10): fp32 GEMMs rtol 1e-4 / atol 1e-4 (fp32
accumulation in another order than the reference's BLAS); fp64 1e-10; fp16 2e-2 and bf16 6e-2
(the reference multiplies in the 16-bit type, kaiyuan accumulates in fp32 and rounds once).
Interp runs a subset with small shapes.
"""

import math

import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import rand
from .onnx_node import check, run_kaiyuan

TOL = {"fp32": (1e-4, 1e-4), "fp64": (1e-10, 1e-10), "fp16": (2e-2, 2e-2), "bf16": (6e-2, 6e-2)}

# (A shape, B shape): 1-D operands, odd sizes, batch broadcasting, size 1, empty M, empty K
MATMUL_CASES = [((7,), (7,)), ((5,), (2, 5, 3)), ((2, 3, 5), (5,)), ((13, 29), (29, 17)),
                ((2, 1, 3, 5), (3, 5, 4)), ((1, 1), (1, 1)), ((0, 5), (5, 3)), ((3, 0), (0, 4)),
                ((4, 1, 2, 3), (1, 5, 3, 2))]
INTERP_MATMUL = [0, 1, 3, 4, 7]


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("case", range(len(MATMUL_CASES)))
def test_matmul_shapes(device, rng, case):
    if device.name == "interp" and case not in INTERP_MATMUL:
        pytest.skip("cpu only: interp runs a subset")
    sa, sb = MATMUL_CASES[case]
    check("MatMul", [_f32(rng, *sa), _f32(rng, *sb)], rtol=1e-4, atol=1e-4, device=device.name)


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "fp16", "bf16"])
def test_matmul_dtypes(device, rng, dtype):
    M, K, N = (3, 5, 4) if device.name == "interp" else (11, 37, 9)
    check("MatMul", [rand(rng, (2, M, K), dtype), rand(rng, (K, N), dtype)], rtol=TOL[dtype][0],
          atol=TOL[dtype][1] * math.sqrt(K), device=device.name)


def test_matmul_transposed_and_strided_inputs(device, rng):
    a = _f32(rng, 2, 12, 7)[:, ::2].transpose(0, 2, 1)   # (2, 7, 6), not contiguous
    b = _f32(rng, 5, 12)[:, ::2].T                        # (6, 5), strided columns
    check("MatMul", [a, b], rtol=1e-4, atol=1e-4, device=device.name)


def test_matmul_errors():
    with pytest.raises(ArgumentError, match="contracted"):
        run_kaiyuan("MatMul", [np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32)])
    with pytest.raises(ArgumentError, match="broadcast"):
        run_kaiyuan("MatMul", [np.zeros((2, 2, 3), np.float32), np.zeros((3, 3, 2), np.float32)])
    with pytest.raises(UnsupportedError, match="int32"):
        run_kaiyuan("MatMul", [np.zeros((2, 3), np.int32), np.zeros((3, 2), np.int32)])


# (transA, transB, alpha, beta, C shape or None)
GEMM_CASES = [(0, 0, 1.0, 1.0, None), (0, 0, 1.0, 1.0, "N"), (1, 0, 1.0, 1.0, "1N"), (0, 1, 1.0, 1.0, "M1"),
              (1, 1, 1.0, 1.0, "MN"), (0, 0, 1.0, 1.0, "()"), (1, 1, 0.5, 2.0, "MN"), (0, 1, 2.5, 0.0, "N"),
              (1, 0, -1.5, 1.0, "1"), (0, 0, 0.25, 1.0, None), (0, 0, 1.0, -3.0, "M1")]
INTERP_GEMM = [1, 4, 6]


def _c_shape(code, M, N):
    return {"N": (N,), "1N": (1, N), "M1": (M, 1), "MN": (M, N), "()": (), "1": (1,)}[code]


@pytest.mark.parametrize("case", range(len(GEMM_CASES)))
def test_gemm_attributes(device, rng, case):
    if device.name == "interp" and case not in INTERP_GEMM:
        pytest.skip("cpu only: interp runs a subset")
    ta, tb, alpha, beta, cs = GEMM_CASES[case]
    M, K, N = (3, 5, 4) if device.name == "interp" else (13, 31, 7)
    a = _f32(rng, *((K, M) if ta else (M, K)))
    b = _f32(rng, *((N, K) if tb else (K, N)))
    inputs = [a, b] + ([] if cs is None else [_f32(rng, *_c_shape(cs, M, N))])
    check("Gemm", inputs, {"transA": ta, "transB": tb, "alpha": alpha, "beta": beta}, rtol=1e-4, atol=1e-4,
          device=device.name)


@pytest.mark.parametrize("dtype", ["fp64", "fp16", "bf16"])
def test_gemm_dtypes(device, rng, dtype):
    M, K, N = 3, 6, 5
    inputs = [rand(rng, (K, M), dtype), rand(rng, (K, N), dtype), rand(rng, (N,), dtype)]
    check("Gemm", inputs, {"transA": 1}, rtol=TOL[dtype][0], atol=TOL[dtype][1] * 3, device=device.name)
    check("Gemm", inputs, {"transA": 1, "alpha": 0.5, "beta": 2.0}, rtol=TOL[dtype][0], atol=TOL[dtype][1] * 3,
          device=device.name)


def test_gemm_empty_k_is_c(rng):
    c = _f32(rng, 3, 4)
    check("Gemm", [np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), c], {"beta": 2.0})


def test_gemm_errors():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ArgumentError, match="broadcast"):
        run_kaiyuan("Gemm", [z, z.T, np.zeros((2, 3), np.float32)])
    with pytest.raises(ArgumentError, match="2-D"):
        run_kaiyuan("Gemm", [np.zeros((2, 3, 4), np.float32), z])
    with pytest.raises(ArgumentError, match="do not match in K"):
        run_kaiyuan("Gemm", [z, z])


# ---------------------------------------------------------------------------- kaiyuan.Linear


def ref_linear(x, w, b, r, act):
    z = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        z = z + b
    z = {"": lambda v: v, "relu": lambda v: np.maximum(v, 0), "silu": lambda v: v / (1 + np.exp(-v)),
         "gelu": lambda v: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2))),
         "gelu_tanh": lambda v: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))}[act](z)
    return z if r is None else z + r


def linear(inputs, act, device="cpu"):
    return run_kaiyuan("Linear", inputs, {"activation": act}, opset=1, domain="kaiyuan", device=device)[0]


@pytest.mark.parametrize("act", ["", "relu", "gelu", "gelu_tanh", "silu"])
def test_linear_activation_then_residual(device, rng, act):
    lead, K, N = ((2,), 5, 3) if device.name == "interp" else ((2, 3), 37, 19)
    x, w, b, r = _f32(rng, *lead, K), _f32(rng, K, N), _f32(rng, N), _f32(rng, *lead, N)
    y = linear([x, w, b, r], act, device.name)
    assert y.shape == lead + (N,) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref_linear(x, w, b, r, act), rtol=1e-4, atol=1e-4)


def test_linear_optional_inputs_and_layouts(device, rng):
    x = _f32(rng, 3, 10)[:, ::2]                   # (3, 5), strided rows
    w = _f32(rng, 4, 5).T                          # (5, 4) read transposed
    np.testing.assert_allclose(linear([x, w], "", device.name), ref_linear(x, w, None, None, ""), rtol=1e-4,
                               atol=1e-4)
    r = _f32(rng, 1, 4)                            # residual broadcast over rows, no bias
    np.testing.assert_allclose(linear([x, w, None, r], "relu", device.name), ref_linear(x, w, None, r, "relu"),
                               rtol=1e-4, atol=1e-4)
    v = _f32(rng, 5)                               # 1-D x
    np.testing.assert_allclose(linear([v, w], "silu", device.name), ref_linear(v, w, None, None, "silu"),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["fp16", "fp64"])
def test_linear_dtypes(rng, dtype):
    x, w, b, r = (rand(rng, s, dtype) for s in ((4, 9), (9, 6), (6,), (4, 6)))
    y = linear([x, w, b, r], "gelu")
    assert y.dtype == x.dtype
    tol = 2e-2 if dtype == "fp16" else 1e-10
    np.testing.assert_allclose(y.astype(np.float64), ref_linear(x, w, b, r, "gelu"), rtol=tol, atol=tol)


def test_linear_errors(rng):
    x, w = _f32(rng, 2, 5), _f32(rng, 5, 3)
    with pytest.raises(UnsupportedError, match="tanh"):
        linear([x, w], "tanh")
    with pytest.raises(ArgumentError, match="do not fit"):
        linear([x, w.T], "")
    with pytest.raises(ArgumentError, match="bias"):
        linear([x, w, _f32(rng, 5)], "")
    with pytest.raises(ArgumentError, match="residual"):
        linear([x, w, None, _f32(rng, 3, 3)], "")

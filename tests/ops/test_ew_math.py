"""ONNX arithmetic, math and activation operators (ew_onnx_math) against onnx's reference evaluator.

Tolerances (relative and absolute, on the output's dtype): fp32 1e-5 / 1e-6 (one rounding of an
fp32 result, a few ulps for transcendental functions); fp64 1e-12 / 1e-14; fp16 2e-3 (fp32
compute, one rounding to fp16, against numpy's fp16 result which also rounds once); bf16 1e-2
(8-bit mantissa). Integer and bool results are exact.

Each case is a distinct kernel (expression + dtypes + layout), so the cases are chosen to cover
every operator and dtype family without compiling hundreds of kernels.
"""

import math

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError
from tests.ops.onnx_node import check, run_kaiyuan

BF16 = ml_dtypes.bfloat16
TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-14), "float16": (2e-3, 2e-3), "bfloat16": (1e-2, 1e-2)}


def tol(dtype) -> dict:
    r, a = TOL[np.dtype(dtype).name]
    return {"rtol": r, "atol": a}


def data(dtype, shape=(3, 7), lo=-3.0, hi=3.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, shape).astype(dtype)


# Domain of each unary float op: (lo, hi) for uniform samples
UNARY = {
    "Exp": (-5, 5), "Log": (0.01, 50), "Sqrt": (0, 50), "Reciprocal": (0.1, 5), "Tanh": (-5, 5),
    "Sigmoid": (-20, 20), "Erf": (-3, 3), "Floor": (-5, 5), "Ceil": (-5, 5), "Round": (-5, 5),
    "Sin": (-6, 6), "Cos": (-6, 6), "Tan": (-1.5, 1.5), "Asin": (-1, 1), "Acos": (-1, 1), "Atan": (-20, 20),
    "Sinh": (-5, 5), "Cosh": (-5, 5), "Asinh": (-50, 50), "Acosh": (1, 50), "Atanh": (-0.99, 0.99),
    "Softplus": (-30, 30), "Softsign": (-5, 5), "Neg": (-5, 5), "Abs": (-5, 5), "Sign": (-2, 2),
    "Relu": (-2, 2), "LeakyRelu": (-2, 2), "Elu": (-3, 3), "Selu": (-3, 3), "Celu": (-3, 3),
    "ThresholdedRelu": (-3, 3), "HardSigmoid": (-5, 5), "HardSwish": (-5, 5), "Mish": (-5, 5),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_fp32(op):
    lo, hi = UNARY[op]
    x = data(np.float32, (5, 13), lo, hi)
    if op in ("Round", "Sign", "Relu", "Floor", "Ceil"):
        x.flat[:6] = [0.5, -0.5, 1.5, 2.5, -2.5, 0.0]  # ties and zero
    check(op, [x], **tol(np.float32))


WIDE_SPECIALS = np.array([0.0, -0.0, 1e-300, -1e-30, 1e-8, 0.5, -0.5, 1.0, -1.0, 2.5, 1e10, -1e200, 1e300,
                          np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("op", ["Atan", "Asin", "Acos", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Round", "Exp",
                                "Softplus"])
def test_unary_fp64_with_special_values(op):
    lo, hi = UNARY[op]
    x = np.concatenate([data(np.float64, (40,), lo, hi), WIDE_SPECIALS])
    if op in ("Sinh", "Cosh", "Exp"):
        x = x[np.abs(x) < 700]  # the expm1/exp formulas overflow a little before the true result
    with np.errstate(all="ignore"):
        check(op, [x], **tol(np.float64))


def test_erf_fp64_against_math_erf():
    """onnx's reference Erf rounds through fp32, so fp64 is checked against math.erf."""
    x = np.concatenate([data(np.float64, (40,)), WIDE_SPECIALS])
    (got,) = run_kaiyuan("Erf", [x])
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float16, BF16])
@pytest.mark.parametrize("op", ["Add", "Div", "Sigmoid", "Relu"])
def test_half_types(op, dtype):
    x, y = data(dtype, (4, 9)), data(dtype, (9,), 0.5, 2.0, seed=1)
    check(op, [x, y] if op in ("Add", "Div") else [x], **tol(dtype))


def test_gelu_fp16_and_tanh_form():
    check("Gelu", [data(np.float16, (33,))], opset=20, **tol(np.float16))
    check("Gelu", [data(np.float32, (33,))], {"approximate": "tanh"}, opset=20, **tol(np.float32))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.int64, np.uint64, np.float64])
def test_add_dtypes(dtype):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    rng = np.random.default_rng(3)
    if info is not None:  # full range: sums wrap as in numpy
        x = rng.integers(info.min, info.max, (4, 6), dtype=dtype, endpoint=True)
        y = rng.integers(info.min, info.max, (6,), dtype=dtype, endpoint=True)
    else:
        x, y = data(dtype, (4, 6)), data(dtype, (6,), seed=1)
    check("Add", [x, y], **(tol(dtype) if info is None else {}))


@pytest.mark.parametrize("op", ["Sub", "Mul"])
def test_sub_mul_int32(op):
    rng = np.random.default_rng(4)
    check(op, [rng.integers(-1000, 1000, (5, 7), dtype=np.int32), rng.integers(-1000, 1000, (7,), dtype=np.int32)])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint32])
def test_div_integers_truncate(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    x = rng.integers(info.min, info.max, 64, dtype=dtype, endpoint=True)
    y = rng.integers(-9 if info.min else 1, 10, 64).astype(dtype)
    y[y == 0] = 3
    x[:4] = [info.max, info.min, 7, 0] if info.min else [info.max, 0, 7, 9]
    y[:4] = [-1 if info.min else 1, 2, 2, 5]
    check("Div", [x, y])


def test_div_float64():
    check("Div", [data(np.float64, (6, 5)), data(np.float64, (5,), 0.5, 3, seed=2)], **tol(np.float64))


@pytest.mark.parametrize("dtype,fmod", [(np.int32, 0), (np.int32, 1), (np.int8, 0), (np.uint16, 0),
                                        (np.float32, 1), (np.float64, 1)])
def test_mod(dtype, fmod):
    if np.dtype(dtype).kind == "f":
        x, y = data(dtype, (40,), -20, 20), data(dtype, (40,), -4, 4, seed=1)
    else:
        lo = -50 if np.dtype(dtype).kind == "i" else 0
        x = np.arange(lo, lo + 40).astype(dtype)
        y = np.resize(np.array([3, 7, 5] if lo == 0 else [3, -4, 7, -5], dtype), 40)
    check("Mod", [x, y], {"fmod": fmod}, **(tol(dtype) if np.dtype(dtype).kind == "f" else {}))


@pytest.mark.parametrize("case", ["f32^f32", "f32^i64", "i32^i32", "i64^i64", "i32^f32"])
def test_pow(case):
    rng = np.random.default_rng(6)
    if case == "f32^f32":
        args = [data(np.float32, (4, 5), 0.1, 3), data(np.float32, (5,), -2, 2, seed=1)]
    elif case == "f32^i64":
        args = [data(np.float32, (4, 5), -3, 3), np.array([0, 1, 2, 3, 5], np.int64)]
    elif case == "i32^f32":
        args = [rng.integers(0, 9, (4, 5), dtype=np.int32), data(np.float32, (5,), 0, 2.5)]
    else:
        dt = np.int32 if case == "i32^i32" else np.int64
        args = [rng.integers(-9, 10, (4, 5)).astype(dt), rng.integers(0, 40, (5,)).astype(dt)]
    check("Pow", args, **tol(np.float32))


@pytest.mark.parametrize("op,dtype", [("Abs", np.int8), ("Abs", np.uint8), ("Sign", np.int32), ("Sign", np.uint32),
                                      ("Neg", np.int64), ("Relu", np.int16)])
def test_integer_unary(op, dtype):
    info = np.iinfo(dtype)
    x = np.random.default_rng(7).integers(max(info.min, -1000), min(info.max, 1000), 50, dtype=dtype)
    x[:2] = [0, info.max]
    check(op, [x], opset=18)


def test_activations_with_attributes():
    x = data(np.float32, (6, 11), -4, 4)
    check("LeakyRelu", [x], {"alpha": 0.3}, **tol(np.float32))
    check("Elu", [x], {"alpha": 0.7}, **tol(np.float32))
    check("Selu", [x], {"alpha": 1.5, "gamma": 2.0}, **tol(np.float32))
    check("Celu", [x], {"alpha": 2.0}, **tol(np.float32))
    check("ThresholdedRelu", [x], {"alpha": 0.5}, **tol(np.float32))
    check("HardSigmoid", [x], {"alpha": 0.3, "beta": 0.4}, **tol(np.float32))


@pytest.mark.parametrize("slope_shape", [(11,), (6, 1), ()])
def test_prelu(slope_shape):
    x = data(np.float32, (6, 11))
    slope = data(np.float32, slope_shape, 0, 0.5, seed=2)
    check("PRelu", [x, slope], **tol(np.float32))


def test_clip_variants():
    x = data(np.float32, (5, 7))
    lo, hi = np.array(-0.5, np.float32), np.array(0.8, np.float32)
    check("Clip", [x, lo, hi])
    check("Clip", [x, None, hi])
    check("Clip", [x])
    check("Clip", [np.arange(-10, 10, dtype=np.int32), np.array(-3, np.int32), np.array(4, np.int32)])


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
def test_variadic_with_broadcasting(op):
    a, b, c = data(np.float32, (3, 4, 5)), data(np.float32, (4, 1), seed=1), data(np.float32, (5,), seed=2)
    a.flat[0] = np.nan  # Max/Min propagate NaN as numpy does
    check(op, [a, b, c], **tol(np.float32))
    check(op, [a], **tol(np.float32))


def test_max_integers_two_inputs():
    check("Max", [np.array([[1, -5, 7]], np.int64), np.array([[2], [-9]], np.int64)])


def test_non_contiguous_and_empty_inputs():
    base = data(np.float32, (7, 9))
    check("Mul", [base.T, base[::-1, 4]])  # transposed x (9, 7), reversed column (7,)
    check("Sub", [base[::2, ::3], base[1, ::-3]])  # stepped views
    check("Add", [np.zeros((0, 3), np.float32), np.ones(3, np.float32)])
    check("Sigmoid", [np.zeros((2, 0, 4), np.float32)])


def test_interp_subset():
    x, y = data(np.float32, (3, 5)), data(np.float32, (5,), 0.5, 2, seed=1)
    check("Div", [x, y], device="interp", **tol(np.float32))
    check("Atan", [x * 4], device="interp", **tol(np.float32))
    check("Round", [np.array([0.5, 1.5, 2.5, -0.5, -1.7], np.float32)], device="interp")
    check("Mod", [np.arange(-6, 6, dtype=np.int32), np.array([4, -4, 0], np.int32).repeat(4)], device="interp")
    check("HardSwish", [x], device="interp", **tol(np.float32))


# --------------------------------------------------------------------------------------- errors


def test_errors():
    f32, i32 = np.ones(3, np.float32), np.ones(3, np.int32)
    with pytest.raises(ArgumentError, match="dtypes"):
        run_kaiyuan("Add", [f32, i32])
    with pytest.raises(ArgumentError, match="broadcast"):
        run_kaiyuan("Add", [np.ones((2, 3), np.float32), np.ones((2,), np.float32)])
    with pytest.raises(UnsupportedError, match="int32"):
        run_kaiyuan("Exp", [i32])
    with pytest.raises(UnsupportedError, match="fmod"):
        run_kaiyuan("Mod", [f32, f32], {"fmod": 0})
    with pytest.raises(UnsupportedError, match="approximate"):
        run_kaiyuan("Gelu", [f32], {"approximate": "fast"}, opset=20)
    with pytest.raises(UnsupportedError, match="float64"):
        run_kaiyuan("Celu", [np.ones(3, np.float64)])
    with pytest.raises(UnsupportedError, match="int8"):
        run_kaiyuan("Relu", [np.ones(3, np.int8)], opset=13)
    with pytest.raises(UnsupportedError, match="uint8"):
        run_kaiyuan("Add", [np.ones(3, np.uint8)] * 2, opset=13)
    with pytest.raises(UnsupportedError, match="Gelu"):
        run_kaiyuan("Gelu", [f32], opset=19)
    with pytest.raises(ArgumentError, match="input 0's shape"):
        run_kaiyuan("PRelu", [np.ones((3,), np.float32), np.ones((2, 3), np.float32)])
    with pytest.raises(UnsupportedError, match="input 1"):
        run_kaiyuan("Pow", [f32, np.ones(3, bool)])
    with pytest.raises(UnsupportedError, match="complex64"):
        run_kaiyuan("Abs", [np.ones(3, np.complex64)])

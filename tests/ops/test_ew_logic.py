"""ONNX comparison, logical, bitwise, Where, IsNaN/IsInf, Cast/CastLike and Identity operators
(ew_onnx_logic) against onnx's reference evaluator.

Results are bool or integers (exact), or casts to floats: a cast rounds once, as numpy's astype
does, so float results are compared exactly too (rtol=0), except where noted.
"""

import ml_dtypes
import numpy as np
import pytest

from kaiyuan.ops.schema import lookup
from kaiyuan.runtime.errors import ArgumentError, UnsupportedError
from tests.ops.onnx_node import check, run_kaiyuan

BF16 = ml_dtypes.bfloat16
EXACT = {"rtol": 0, "atol": 0}


def floats(shape, seed=0, dtype=np.float32):
    x = np.random.default_rng(seed).uniform(-3, 3, shape).astype(dtype)
    x.flat[:3] = [0.0, 1.0, -1.0]  # equal values across the two inputs below
    return x


@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
def test_comparisons_fp32_with_nan(op):
    x, y = floats((4, 7)), floats((7,), seed=1)
    x[1, 3] = np.nan
    check(op, [x, y])


@pytest.mark.parametrize("op,x,y", [
    ("Equal", np.array([[1, -2, 3]], np.int64), np.array([[1], [3]], np.int64)),
    ("Equal", np.array([True, False, True]), np.array([True, True, False])),
    ("Less", np.array([0, 200, 255], np.uint8), np.array([1, 100, 255], np.uint8)),
    ("GreaterOrEqual", np.array([0.5, -1, 2], BF16), np.array([0.5, 0, 1], BF16)),
])
def test_comparisons_other_dtypes(op, x, y):
    check(op, [x, y])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical_with_broadcasting(op):
    a = np.array([[True, False, True, False]])
    b = np.array([[True], [False], [True]])
    check(op, [a, b])


def test_not():
    check("Not", [np.random.default_rng(0).random((3, 5)) > 0.5])


@pytest.mark.parametrize("op,dtype", [("BitwiseAnd", np.uint8), ("BitwiseOr", np.int32), ("BitwiseXor", np.int64),
                                      ("BitwiseNot", np.uint16), ("BitwiseNot", np.int8)])
def test_bitwise(op, dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(2)
    x = rng.integers(info.min, info.max, (3, 6), dtype=dtype, endpoint=True)
    y = rng.integers(info.min, info.max, (6,), dtype=dtype, endpoint=True)
    check(op, [x, y] if op != "BitwiseNot" else [x])


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint64])
def test_bitshift_including_out_of_range_shifts(direction, dtype):
    bits = np.iinfo(dtype).bits
    rng = np.random.default_rng(3)
    x = rng.integers(0, np.iinfo(dtype).max, 20, dtype=dtype, endpoint=True)
    s = np.resize(np.array([0, 1, 3, bits - 1, bits, bits + 5], dtype), 20)
    check("BitShift", [x, s], {"direction": direction})


@pytest.mark.parametrize("dtype", [np.float32, np.int64, BF16])
def test_where_broadcasting(dtype):
    c = np.array([[True], [False], [True]])
    x = np.arange(4).astype(dtype)
    y = np.array(-7).astype(dtype)
    check("Where", [c, x, y])


def test_isnan_isinf_variants():
    x = floats((3, 8))
    x.flat[[0, 5, 9]] = [np.inf, -np.inf, np.nan]
    check("IsNaN", [x])
    check("IsInf", [x])
    check("IsInf", [x], {"detect_negative": 0})
    check("IsInf", [x], {"detect_positive": 0})
    check("IsInf", [x], {"detect_positive": 0, "detect_negative": 0})
    check("IsInf", [x.astype(np.float16)], opset=20)


# ONNX TensorProto codes
CODES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
         "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "bfloat16": 16}


@pytest.mark.parametrize("to", ["float16", "bfloat16", "float64", "int8", "int32", "int64", "uint8", "bool"])
def test_cast_from_fp32(to):
    x = np.random.default_rng(4).uniform(-100, 100, (5, 7)).astype(np.float32)
    x.flat[:4] = [0.0, -0.0, 0.4999, 99.99]
    if to == "uint8":
        x = np.abs(x)  # negative floats to unsigned are undefined in ONNX
    check("Cast", [x], {"to": CODES[to]}, **EXACT)


@pytest.mark.parametrize("src", ["int64", "uint8", "bool", "float16", "bfloat16", "float64"])
def test_cast_to_fp32(src):
    rng = np.random.default_rng(5)
    if src == "bool":
        x = rng.random(12) > 0.5
    elif src in ("int64", "uint8"):
        info = np.iinfo(src)
        x = rng.integers(max(info.min, -2**40), min(info.max, 2**40), 12, dtype=src)
    else:
        x = rng.uniform(-1e3, 1e3, 12).astype(BF16 if src == "bfloat16" else src)
    check("Cast", [x], {"to": CODES["float32"]}, **EXACT)


@pytest.mark.parametrize("src,to", [("int32", "int8"), ("int64", "uint16"), ("bool", "int32"), ("float64", "float16"),
                                    ("uint64", "float64")])
def test_cast_between_other_types(src, to):
    rng = np.random.default_rng(6)
    if src == "bool":
        x = rng.random(10) > 0.5
    elif src == "float64":
        x = rng.uniform(-1e4, 1e4, 10)
    else:
        info = np.iinfo(src)
        x = rng.integers(info.min, info.max, 10, dtype=src, endpoint=True)
    check("Cast", [x], {"to": CODES[to]}, opset=19, **EXACT)


def test_cast_like():
    check("CastLike", [floats((2, 3)), np.zeros((4,), np.int32)], opset=15, **EXACT)


def test_identity_is_a_view_and_run_copies_strided_input():
    op = lookup("Identity", 18)
    assert op.view
    x = np.arange(12, dtype=np.float32).reshape(3, 4).T  # non-contiguous
    out = np.empty((4, 3), np.float32)
    op.run([x], {}, [None], [out])
    np.testing.assert_array_equal(out, x)
    check("Identity", [np.arange(5, dtype=np.int16)])


def test_interp_subset():
    x, y = floats((3, 5)), floats((5,), seed=1)
    check("Less", [x, y], device="interp")
    check("Where", [x > 0, x, y], device="interp")
    check("Cast", [x * 10], {"to": CODES["int16"]}, device="interp")
    check("BitShift", [np.array([1, 2, 255], np.uint8), np.array([1, 8, 3], np.uint8)], {"direction": "LEFT"},
          device="interp")


# --------------------------------------------------------------------------------------- errors


def test_errors():
    f32 = np.ones(3, np.float32)
    with pytest.raises(UnsupportedError, match="string"):
        run_kaiyuan("Cast", [f32], {"to": 8})
    with pytest.raises(UnsupportedError, match="direction"):
        run_kaiyuan("BitShift", [np.ones(3, np.uint8)] * 2, {"direction": "UP"})
    with pytest.raises(UnsupportedError, match="int32"):
        run_kaiyuan("BitShift", [np.ones(3, np.int32)] * 2, {"direction": "LEFT"})
    with pytest.raises(UnsupportedError, match="float32"):
        run_kaiyuan("Where", [f32, f32, f32])
    with pytest.raises(UnsupportedError, match="bfloat16"):
        run_kaiyuan("Where", [f32 > 0, np.ones(3, BF16), np.ones(3, BF16)], opset=15)
    with pytest.raises(UnsupportedError, match="float32"):
        run_kaiyuan("And", [f32, f32])
    with pytest.raises(UnsupportedError, match="float16"):
        run_kaiyuan("IsInf", [np.ones(3, np.float16)], opset=19)
    with pytest.raises(ArgumentError, match="dtypes"):
        run_kaiyuan("Equal", [f32, np.ones(3, np.float64)])
    with pytest.raises(UnsupportedError, match="to"):
        run_kaiyuan("Cast", [f32], {})
